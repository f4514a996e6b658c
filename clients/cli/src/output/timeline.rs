//! Human-readable rendering of a room's timeline: one line per event (shared by
//! `tsunagu history` and `tsunagu tail`), the versions of an entry, acknowledgements and the
//! answer to a post.
//!
//! An event line reads
//!
//! ```text
//! #12  2026-11-21T09:30:00Z  佐藤 花子 (看護師 Nurse/みどり訪問看護)  [緊急 urgent] [ケアチーム care-team]  発熱 38.5℃
//! #14  2026-11-21T09:40:00Z  佐藤 花子 (看護師 Nurse/みどり訪問看護)  [ケアチーム care-team]  訂正 corrected #12 v2: 発熱 37.5℃ (理由 reason: 誤記)
//! ```
//!
//! Further lines of a multi-line text are indented under the first. Text from the server
//! (entries, reasons, names) is shown with control characters other than line breaks and tabs
//! replaced, so that nobody can move the cursor or recolour the terminal through a post.

use std::collections::HashMap;

use tsunagu_protocol::attachments::Attachment;
use tsunagu_protocol::timeline::{
    Acknowledgement, Author, Change, EntryKind, EntryVersion, PostedEntry, SystemEvent,
    TimelineEvent, Visibility,
};
use tsunagu_protocol::{EntryId, UserId};

use super::{role, table, timestamp};

/// Indentation of the continuation lines of a text.
const INDENT: &str = "    ";

/// Renders timeline events, remembering what it has seen so that later events can refer to
/// earlier ones: the number of each post (a correction names the post it corrects as `#12`)
/// and the names of authors (a system event names the member concerned). A correction of a
/// post it has not seen names the entry by its id.
#[derive(Debug, Default)]
pub(crate) struct TimelineView {
    posts: HashMap<EntryId, u64>,
    names: HashMap<UserId, String>,
}

impl TimelineView {
    /// A view that has seen nothing yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records what `event` tells about the timeline without rendering it.
    pub(crate) fn remember(&mut self, event: &TimelineEvent) {
        if matches!(event.change, Change::Posted { .. }) {
            self.posts.insert(event.entry_id, event.seq);
        }
        self.names
            .insert(event.author.user_id, event.author.display_name.clone());
    }

    /// Renders a list of events, oldest first; `（なし） None` for none.
    pub(crate) fn render_all(&mut self, events: &[TimelineEvent]) -> String {
        if events.is_empty() {
            return "（なし） None\n".to_owned();
        }
        events.iter().map(|event| self.render(event)).collect()
    }

    /// Renders one event as its line (and the continuation lines of its text).
    pub(crate) fn render(&mut self, event: &TimelineEvent) -> String {
        self.remember(event);
        let mut tags = Vec::new();
        if matches!(
            event.change,
            Change::Posted {
                kind: EntryKind::Urgent,
                ..
            }
        ) {
            tags.push("[緊急 urgent]");
        }
        if event.visibility == Visibility::CareTeam {
            tags.push("[ケアチーム care-team]");
        }
        let tags = if tags.is_empty() {
            String::new()
        } else {
            tags.join(" ") + "  "
        };
        let body = match &event.change {
            Change::Posted {
                text, attachments, ..
            } => {
                let mut parts: Vec<String> = attachments.iter().map(attachment).collect();
                if !text.is_empty() {
                    parts.insert(0, multiline(text));
                }
                parts.join(&format!("\n{INDENT}"))
            }
            Change::Edited {
                version,
                text,
                reason,
            } => format!(
                "訂正 corrected {} v{version}: {} (理由 reason: {})",
                self.entry(event.entry_id),
                multiline(text),
                one_line(reason)
            ),
            Change::Deleted { reason } => format!(
                "削除 deleted {} (理由 reason: {})",
                self.entry(event.entry_id),
                one_line(reason)
            ),
            Change::System { event: system } => self.system(system, &event.author),
        };
        format!(
            "#{}  {}  {}  {tags}{body}\n",
            event.seq,
            timestamp(event.created_at),
            author(&event.author)
        )
    }

    /// `#12` for a post this view has seen, else the entry's id.
    fn entry(&self, entry: EntryId) -> String {
        self.posts
            .get(&entry)
            .map_or_else(|| format!("entry {entry}"), |seq| format!("#{seq}"))
    }

    /// A member by name when known, else by id.
    fn member(&self, user: UserId) -> String {
        self.names
            .get(&user)
            .map_or_else(|| format!("user {user}"), |name| one_line(name))
    }

    /// A system event in words; the member concerned is named when it is not the author.
    fn system(&self, event: &SystemEvent, author: &Author) -> String {
        let (words, user): (String, Option<UserId>) = match event {
            SystemEvent::RoomCreated => ("部屋作成 room created".to_owned(), None),
            SystemEvent::MemberJoined { user_id } => ("参加 joined".to_owned(), Some(*user_id)),
            SystemEvent::MemberLeft { user_id } => ("退出 left".to_owned(), Some(*user_id)),
            SystemEvent::MemberRevoked { user_id } => (
                "参加・招待取消 membership revoked".to_owned(),
                Some(*user_id),
            ),
            SystemEvent::ConsentRecorded { .. } => ("同意記録 consent recorded".to_owned(), None),
            SystemEvent::ConsentWithdrawn { .. } => ("同意撤回 consent withdrawn".to_owned(), None),
            SystemEvent::FormSent {
                form_id,
                title_ja,
                title_en,
                ..
            } => (
                format!(
                    "書式送信 form sent: {} / {} ({form_id})",
                    one_line(title_ja),
                    one_line(title_en)
                ),
                None,
            ),
            SystemEvent::FormCorrected { form_id, version } => (
                format!("書式訂正 form corrected: {form_id} 第{version}版 version {version}"),
                None,
            ),
            SystemEvent::FormAnswered {
                form_id,
                answer_form_id,
            } => (
                format!("書式回答 form answered: {form_id} → {answer_form_id}"),
                None,
            ),
            SystemEvent::FormAcknowledged { form_id } => {
                (format!("書式確認 form acknowledged: {form_id}"), None)
            }
            SystemEvent::SheetUpdated { version } => (
                format!(
                    "救急医療情報 更新 emergency sheet updated: 第{version}版 version {version}"
                ),
                None,
            ),
        };
        match user {
            Some(user) if user != author.user_id => format!("{words}: {}", self.member(user)),
            _ => words,
        }
    }
}

/// `佐藤 花子 (看護師 Nurse/みどり訪問看護)`, or without the organisation when it has none.
fn author(author: &Author) -> String {
    let name = one_line(&author.display_name);
    match &author.organisation_name {
        Some(organisation) => format!("{name} ({}/{})", role(author.role), one_line(organisation)),
        None => format!("{name} ({})", role(author.role)),
    }
}

/// Replaces control characters other than line breaks and tabs.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// A text on one line: line breaks and tabs become spaces.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n', '\t'])
        .filter(|part| !part.is_empty())
        .map(clean)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A text whose further lines are indented under the first (trailing line breaks dropped).
fn multiline(text: &str) -> String {
    clean(&text.trim_end_matches(['\r', '\n']).replace("\r\n", "\n"))
        .replace('\n', &format!("\n{INDENT}"))
}

/// An attachment in one line: name, type, size and id (for `tsunagu attachment get`).
pub(crate) fn attachment(attachment: &Attachment) -> String {
    format!(
        "添付 attachment: {}  {}  {}  {}",
        one_line(&attachment.file_name),
        attachment.media_type,
        size(attachment.byte_size),
        attachment.attachment_id
    )
}

/// A size in bytes, KiB or MiB.
pub(crate) fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    match bytes {
        0..KIB => format!("{bytes} B"),
        KIB..0x10_0000 => format!("{:.1} KiB", bytes as f64 / KIB as f64),
        _ => format!("{:.1} MiB", bytes as f64 / (KIB * KIB) as f64),
    }
}

/// The answer to `tsunagu post`: the number, and whether the post had been stored before.
pub(crate) fn posted(posted: &PostedEntry) -> String {
    let head = if posted.duplicate {
        format!(
            "この投稿 ID では既に投稿されています（新たには保存していません）: #{seq}\n\
             Already posted with this client id; nothing new was stored: #{seq}\n",
            seq = posted.seq
        )
    } else {
        format!(
            "投稿しました: #{seq}\nPosted as #{seq}.\n",
            seq = posted.seq
        )
    };
    format!(
        "{head}投稿 ID client id: {} (再送するときは --client-id に指定 / pass it as --client-id \
         to retry)\n",
        posted.client_id
    )
}

/// `tsunagu versions`: every version, oldest first, its text indented under it.
pub(crate) fn versions(seq: u64, versions: &[EntryVersion]) -> String {
    let mut text = format!("#{seq} の版 Versions of #{seq}:\n");
    if versions.is_empty() {
        text.push_str("（なし） None\n");
    }
    for version in versions {
        let mut line = format!(
            "v{}  {}  {}",
            version.version,
            timestamp(version.created_at),
            author(&version.author)
        );
        match (version.deleted, &version.reason) {
            (true, Some(reason)) => {
                line.push_str(&format!(
                    "  削除 deleted (理由 reason: {})",
                    one_line(reason)
                ));
            }
            (true, None) => line.push_str("  削除 deleted"),
            (false, Some(reason)) => {
                line.push_str(&format!("  理由 reason: {}", one_line(reason)));
            }
            (false, None) => {}
        }
        text.push_str(&line);
        text.push('\n');
        if let Some(body) = &version.text {
            text.push_str(&format!("{INDENT}{}\n", multiline(body)));
        }
    }
    text
}

/// `tsunagu ack` and `tsunagu acks`: who has acknowledged post `#seq`, and when.
pub(crate) fn acknowledgements(seq: u64, acks: &[Acknowledgement]) -> String {
    if acks.is_empty() {
        return format!(
            "#{seq} はまだ誰も確認していません。\nNobody has acknowledged #{seq} yet.\n"
        );
    }
    let rows: Vec<Vec<String>> = acks
        .iter()
        .map(|ack| {
            vec![
                one_line(&ack.display_name),
                role(ack.role),
                timestamp(ack.acknowledged_at),
            ]
        })
        .collect();
    format!(
        "#{seq} を確認した人（{n}人） Acknowledged #{seq} by {n}:\n{}",
        table(&["名前 Name", "役割 Role", "確認 Acknowledged"], &rows),
        n = acks.len()
    )
}

#[cfg(test)]
mod tests {
    use tsunagu_protocol::identity::Role;
    use tsunagu_protocol::{ClientPostId, ConsentId, OrganisationId};

    use super::*;

    fn nurse() -> Author {
        Author {
            user_id: UserId::generate(),
            display_name: "佐藤 花子".into(),
            role: Role::Nurse,
            organisation_id: Some(OrganisationId::generate()),
            organisation_name: Some("みどり訪問看護".into()),
        }
    }

    fn event(seq: u64, entry: EntryId, author: &Author, change: Change) -> TimelineEvent {
        TimelineEvent {
            seq,
            entry_id: entry,
            visibility: Visibility::CareTeam,
            author: author.clone(),
            created_at: time::macros::datetime!(2026-11-21 18:30:00 +09:00),
            change,
        }
    }

    #[test]
    fn posts_show_number_time_author_tags_and_text() {
        let nurse = nurse();
        let post = event(
            12,
            EntryId::generate(),
            &nurse,
            Change::Posted {
                kind: EntryKind::Urgent,
                text: "発熱 38.5℃".into(),
                client_id: None,
                attachments: Vec::new(),
            },
        );
        let line = TimelineView::new().render(&post);
        assert_eq!(
            line,
            "#12  2026-11-21T09:30:00Z  佐藤 花子 (看護師 Nurse/みどり訪問看護)  \
             [緊急 urgent] [ケアチーム care-team]  発熱 38.5℃\n"
        );

        let family = Author {
            role: Role::Family,
            organisation_id: None,
            organisation_name: None,
            display_name: "山田 花子".into(),
            ..nurse
        };
        let shared = TimelineEvent {
            visibility: Visibility::Everyone,
            ..event(
                3,
                EntryId::generate(),
                &family,
                Change::Posted {
                    kind: EntryKind::Text,
                    text: "夜は眠れています\n食欲もあります\n".into(),
                    client_id: Some(ClientPostId::generate()),
                    attachments: Vec::new(),
                },
            )
        };
        let text = TimelineView::new().render(&shared);
        assert_eq!(
            text,
            "#3  2026-11-21T09:30:00Z  山田 花子 (家族 Family)  夜は眠れています\n    食欲もあります\n"
        );
    }

    #[test]
    fn attachments_are_listed_under_their_post() {
        use tsunagu_protocol::AttachmentId;
        use tsunagu_protocol::attachments::MediaType;

        let photo = Attachment {
            attachment_id: AttachmentId::generate(),
            media_type: MediaType::Jpeg,
            byte_size: 1_572_864,
            sha256: "0".repeat(64),
            file_name: "傷\u{1b}[31m.jpg".into(),
        };
        let report = Attachment {
            attachment_id: AttachmentId::generate(),
            media_type: MediaType::Pdf,
            byte_size: 2048,
            sha256: "1".repeat(64),
            file_name: "報告書.pdf".into(),
        };
        let post = |text: &str| {
            event(
                5,
                EntryId::generate(),
                &nurse(),
                Change::Posted {
                    kind: EntryKind::Text,
                    text: text.into(),
                    client_id: None,
                    attachments: vec![photo.clone(), report.clone()],
                },
            )
        };
        let with_text = TimelineView::new().render(&post("写真です"));
        assert_eq!(
            with_text,
            format!(
                "#5  2026-11-21T09:30:00Z  佐藤 花子 (看護師 Nurse/みどり訪問看護)  \
                 [ケアチーム care-team]  写真です\n    \
                 添付 attachment: 傷\u{fffd}[31m.jpg  image/jpeg  1.5 MiB  {}\n    \
                 添付 attachment: 報告書.pdf  application/pdf  2.0 KiB  {}\n",
                photo.attachment_id, report.attachment_id
            )
        );
        let without_text = TimelineView::new().render(&post(""));
        assert!(
            without_text.contains("[ケアチーム care-team]  添付 attachment: 傷"),
            "{without_text}"
        );
        assert_eq!(
            (size(0), size(1023), size(1024)),
            ("0 B".into(), "1023 B".into(), "1.0 KiB".into())
        );
    }

    #[test]
    fn corrections_and_deletions_name_the_post_they_change() {
        let nurse = nurse();
        let entry = EntryId::generate();
        let events = [
            event(
                12,
                entry,
                &nurse,
                Change::Posted {
                    kind: EntryKind::Text,
                    text: "発熱 38.5℃".into(),
                    client_id: None,
                    attachments: Vec::new(),
                },
            ),
            event(
                14,
                entry,
                &nurse,
                Change::Edited {
                    version: 2,
                    text: "発熱 37.5℃".into(),
                    reason: "誤記".into(),
                },
            ),
            event(
                15,
                entry,
                &nurse,
                Change::Deleted {
                    reason: "別の患者の記録".into(),
                },
            ),
        ];
        let text = TimelineView::new().render_all(&events);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].ends_with(
                "[ケアチーム care-team]  訂正 corrected #12 v2: 発熱 37.5℃ (理由 reason: 誤記)"
            ),
            "{text}"
        );
        assert!(
            lines[2].ends_with("削除 deleted #12 (理由 reason: 別の患者の記録)"),
            "{text}"
        );

        // Without the post in view, the entry is named by its id.
        let alone = TimelineView::new().render(&events[1]);
        assert!(
            alone.contains(&format!("corrected entry {entry} v2")),
            "{alone}"
        );
    }

    #[test]
    fn system_events_are_in_words() {
        let nurse = nurse();
        let doctor = Author {
            user_id: UserId::generate(),
            display_name: "山田 一郎".into(),
            role: Role::Physician,
            ..nurse.clone()
        };
        let system = |seq, author: &Author, event| {
            self::event(seq, EntryId::generate(), author, Change::System { event })
        };
        let consent = ConsentId::generate();
        let stranger = UserId::generate();
        let events = [
            system(1, &nurse, SystemEvent::RoomCreated),
            system(
                2,
                &doctor,
                SystemEvent::MemberJoined {
                    user_id: doctor.user_id,
                },
            ),
            system(
                3,
                &nurse,
                SystemEvent::ConsentRecorded {
                    consent_id: consent,
                },
            ),
            system(
                4,
                &nurse,
                SystemEvent::MemberRevoked {
                    user_id: doctor.user_id,
                },
            ),
            system(5, &nurse, SystemEvent::MemberRevoked { user_id: stranger }),
            system(
                6,
                &doctor,
                SystemEvent::MemberLeft {
                    user_id: doctor.user_id,
                },
            ),
            system(
                7,
                &nurse,
                SystemEvent::ConsentWithdrawn {
                    consent_id: consent,
                },
            ),
        ];
        let text = TimelineView::new().render_all(&events);
        let ends: Vec<&str> = text
            .lines()
            .map(|line| line.rsplit(")  ").next().unwrap_or_default())
            .collect();
        assert_eq!(
            ends,
            [
                "[ケアチーム care-team]  部屋作成 room created",
                "[ケアチーム care-team]  参加 joined",
                "[ケアチーム care-team]  同意記録 consent recorded",
                "[ケアチーム care-team]  参加・招待取消 membership revoked: 山田 一郎",
                &format!(
                    "[ケアチーム care-team]  参加・招待取消 membership revoked: user {stranger}"
                ),
                "[ケアチーム care-team]  退出 left",
                "[ケアチーム care-team]  同意撤回 consent withdrawn",
            ]
        );
        assert_eq!(TimelineView::new().render_all(&[]), "（なし） None\n");
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let mut author = nurse();
        author.display_name = "佐藤\u{1b}[31m\n花子".into();
        let post = event(
            1,
            EntryId::generate(),
            &author,
            Change::Posted {
                kind: EntryKind::Text,
                text: "a\u{1b}]0;title\u{7}b\r\nc\td".into(),
                client_id: None,
                attachments: Vec::new(),
            },
        );
        let text = TimelineView::new().render(&post);
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{text:?}"
        );
        assert!(text.contains("佐藤\u{FFFD}[31m 花子 ("), "{text:?}");
        assert!(
            text.ends_with("a\u{FFFD}]0;title\u{FFFD}b\n    c\td\n"),
            "{text:?}"
        );
    }

    #[test]
    fn versions_acknowledgements_and_posts() {
        let nurse = nurse();
        let version = |number, text: Option<&str>, reason: Option<&str>, deleted| EntryVersion {
            version: number,
            text: text.map(str::to_owned),
            reason: reason.map(str::to_owned),
            deleted,
            author: nurse.clone(),
            created_at: time::macros::datetime!(2026-11-21 00:00:00 UTC),
        };
        let text = versions(
            12,
            &[
                version(1, Some("発熱 38.5℃"), None, false),
                version(2, Some("発熱 37.5℃"), Some("誤記"), false),
                version(3, None, Some("重複"), true),
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#12 の版 Versions of #12:");
        assert!(
            lines[1].starts_with("v1  2026-11-21T00:00:00Z  佐藤 花子"),
            "{text}"
        );
        assert_eq!(lines[2], "    発熱 38.5℃");
        assert!(lines[3].ends_with("理由 reason: 誤記"), "{text}");
        assert_eq!(lines[4], "    発熱 37.5℃");
        assert!(
            lines[5].ends_with("削除 deleted (理由 reason: 重複)"),
            "{text}"
        );
        assert_eq!(lines.len(), 6);

        let ack = Acknowledgement {
            entry_id: EntryId::generate(),
            user_id: nurse.user_id,
            display_name: "佐藤 花子".into(),
            role: Role::Nurse,
            acknowledged_at: time::macros::datetime!(2026-11-21 00:00:00 UTC),
        };
        let text = acknowledgements(12, &[ack]);
        assert!(
            text.starts_with("#12 を確認した人（1人） Acknowledged #12 by 1:\n"),
            "{text}"
        );
        assert!(text.contains("看護師 Nurse"), "{text}");
        assert!(text.contains("2026-11-21T00:00:00Z"), "{text}");
        assert!(acknowledgements(12, &[]).contains("Nobody has acknowledged #12 yet"));

        let mut answer = PostedEntry {
            entry_id: EntryId::generate(),
            client_id: ClientPostId::generate(),
            seq: 7,
            created_at: time::macros::datetime!(2026-11-21 00:00:00 UTC),
            duplicate: false,
        };
        let text = posted(&answer);
        assert!(
            text.starts_with("投稿しました: #7\nPosted as #7.\n"),
            "{text}"
        );
        assert!(text.contains(&answer.client_id.to_string()), "{text}");
        answer.duplicate = true;
        assert!(posted(&answer).contains("nothing new was stored: #7"));
    }
}
