//! Rendering: pretty JSON of protocol values for `--json`, and otherwise short human-readable
//! lines and aligned tables with Japanese labels first. Also the error report on stderr.
//! Timeline events, versions and acknowledgements are rendered in [`timeline`]; forms,
//! templates and the emergency information sheet in [`forms`].
//!
//! Timestamps are shown in RFC 3339, UTC, to the second; calendar dates as `YYYY-MM-DD`.
//! Column alignment counts East Asian wide characters as two columns.

mod forms;
mod timeline;

pub(crate) use forms::{
    form, form_header, form_summaries, sheet, sheet_history, template, templates,
};
pub(crate) use timeline::{TimelineView, acknowledgements, attachment, posted, size, versions};

use std::io::{self, Write};

use serde::Serialize;
use tsunagu_protocol::OrganisationId;
use tsunagu_protocol::Timestamp;
use tsunagu_protocol::audit::{
    AuditPage, AuditRecord, AuditReport, AuditVerification, ClockStatus, ReportKind, Review,
};
use tsunagu_protocol::auth::{Me, PendingStep, RecoveryCodes, SessionInfo, TotpEnrolment};
use tsunagu_protocol::identity::{
    Invitation, InvitationCreated, InvitationStatus, Organisation, OrganisationKind, PasswordReset,
    Role, RoleGrant, User, UserStatus,
};
use tsunagu_protocol::rooms::{
    Consent, ConsentState, Date, DirectoryEntry, Member, MemberState, Room, RoomSummary,
};

use crate::cli::WireEnum;
use crate::error::{CliError, Report};

/// Where command output goes, and in which form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    /// Human-readable output, or JSON when `json`.
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// Prints a result: its JSON with `--json`, otherwise `human()`.
    pub(crate) fn value<T: Serialize + ?Sized>(
        self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> Result<(), CliError> {
        if self.json {
            let mut text = serde_json::to_string_pretty(value).map_err(|err| CliError::Io {
                what: "could not encode the output as JSON".to_owned(),
                source: io::Error::other(err),
            })?;
            text.push('\n');
            stdout(&text)
        } else {
            stdout(&human())
        }
    }

    /// Prints one item of a stream that may go on indefinitely (`tsunagu tail`): one line of
    /// compact JSON with `--json` (JSON Lines), otherwise `human()`. Returns `false` once
    /// stdout is closed (`tsunagu tail … | head`), so that the caller can stop.
    pub(crate) fn stream_item<T: Serialize + ?Sized>(
        self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> Result<bool, CliError> {
        let text = if self.json {
            let mut line = serde_json::to_string(value).map_err(|err| CliError::Io {
                what: "could not encode the output as JSON".to_owned(),
                source: io::Error::other(err),
            })?;
            line.push('\n');
            line
        } else {
            human()
        };
        match write_stdout(&text) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(false),
            Err(source) => Err(CliError::Io {
                what: "could not write the output".to_owned(),
                source,
            }),
        }
    }

    /// A message for people (confirmation, next steps): stdout normally, stderr with `--json`
    /// so that stdout holds only JSON.
    pub(crate) fn notice(self, text: &str) -> Result<(), CliError> {
        if self.json {
            stderr(text);
            Ok(())
        } else {
            stdout(text)
        }
    }
}

/// Writes to stdout. A closed pipe (`tsunagu … | head`) is not an error.
fn stdout(text: &str) -> Result<(), CliError> {
    match write_stdout(text) {
        Err(err) if err.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Io {
            what: "could not write the output".to_owned(),
            source: err,
        }),
        _ => Ok(()),
    }
}

/// Writes to stdout and flushes.
fn write_stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush())
}

/// Writes to stderr; there is nowhere to report a failure to.
pub(crate) fn stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// Prints an error report on stderr:
/// `エラー: <ja>` / `error: <en> (<code>)`, then field errors, wait time and a hint.
pub(crate) fn print_error(err: &CliError) {
    stderr(&render_error(&err.report()));
}

fn render_error(report: &Report) -> String {
    let mut text = format!("エラー: {}\nerror: {}", report.ja, report.en);
    if let Some(code) = &report.code {
        text.push_str(&format!(" ({code})"));
    }
    text.push('\n');
    for field in &report.fields {
        text.push_str(&format!(
            "  - {}: {} / {} ({})\n",
            field.field, field.message_ja, field.message_en, field.code
        ));
    }
    if let Some(seconds) = report.retry_after_seconds {
        text.push_str(&format!(
            "{seconds} 秒後に再度お試しください。 Try again in {seconds} seconds.\n"
        ));
    }
    if let Some((ja, en)) = report.hint {
        text.push_str(&format!("{ja}\n{en}\n"));
    }
    text
}

// ----- Labels -----

pub(crate) fn role(role: Role) -> String {
    format!("{} {}", role.label_ja(), role.label_en())
}

pub(crate) fn kind(kind: OrganisationKind) -> String {
    format!("{} {}", kind.label_ja(), kind.label_en())
}

fn user_status(status: UserStatus) -> &'static str {
    match status {
        UserStatus::Active => "有効 Active",
        UserStatus::Disabled => "無効 Disabled",
    }
}

fn invitation_status(status: InvitationStatus) -> &'static str {
    match status {
        InvitationStatus::Pending => "未使用 Pending",
        InvitationStatus::Accepted => "受諾済み Accepted",
        InvitationStatus::Expired => "期限切れ Expired",
        InvitationStatus::Revoked => "取消済み Revoked",
    }
}

fn pending_step(step: PendingStep) -> &'static str {
    match step {
        PendingStep::ChangePassword => "パスワード変更 Change password",
        PendingStep::EnrolTotp => "二要素認証の設定 Enrol TOTP",
        PendingStep::AcceptPolicy => "運用ポリシーへの同意 Accept the operating policy",
    }
}

fn consent_state(state: ConsentState) -> &'static str {
    match state {
        ConsentState::Given => "同意あり Given",
        ConsentState::Missing => "同意なし Missing",
        ConsentState::Withdrawn => "撤回 Withdrawn",
    }
}

fn member_state(state: MemberState) -> &'static str {
    match state {
        MemberState::Invited => "招待中 Invited",
        MemberState::Accepted => "参加 Accepted",
        MemberState::Declined => "辞退 Declined",
        MemberState::Revoked => "取消 Revoked",
        MemberState::Left => "退出 Left",
    }
}

/// The organisation of a member or directory entry: its name, else its id, else "－".
fn member_organisation(name: Option<&str>, id: Option<OrganisationId>) -> String {
    match (name, id) {
        (Some(name), _) => name.to_owned(),
        (None, Some(id)) => id.to_string(),
        (None, None) => none(),
    }
}

/// `YYYY-MM-DD`.
fn date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn yes_no(value: bool) -> &'static str {
    if value { "はい Yes" } else { "いいえ No" }
}

fn totp(enabled: bool) -> &'static str {
    if enabled {
        "設定済み Enabled"
    } else {
        "未設定 Not enrolled"
    }
}

fn none() -> String {
    "－".to_owned()
}

/// RFC 3339, UTC, whole seconds.
pub(crate) fn timestamp(at: Timestamp) -> String {
    let at = at.to_offset(time::UtcOffset::UTC).truncate_to_second();
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

// ----- Layout -----

/// Terminal columns taken by `text`: East Asian wide and full-width characters take two.
fn width(text: &str) -> usize {
    text.chars()
        .map(|c| match u32::from(c) {
            0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
}

fn pad(text: &str, columns: usize) -> String {
    let mut padded = text.to_owned();
    padded.extend(std::iter::repeat_n(
        ' ',
        columns.saturating_sub(width(text)),
    ));
    padded
}

/// `label  value` lines with the values aligned.
fn fields(rows: &[(&str, String)]) -> String {
    let label_width = rows
        .iter()
        .map(|(label, _)| width(label))
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(label, value)| format!("{}  {value}\n", pad(label, label_width)))
        .collect()
}

/// An aligned table with a header row; "（なし） None" when there are no rows.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "（なし） None\n".to_owned();
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(column) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = cells
            .iter()
            .zip(&widths)
            .map(|(cell, w)| pad(cell, *w))
            .collect::<Vec<_>>()
            .join("  ");
        text.truncate(text.trim_end().len());
        text.push('\n');
        text
    };
    let mut text = line(headers.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

// ----- Values -----

/// `tsunagu whoami`.
pub(crate) fn me(me: &Me, server: &str) -> String {
    let organisation = match &me.organisation {
        Some(org) => format!("{}（{}）{}", org.name, org.kind.label_ja(), org.id),
        None => none(),
    };
    let pending = if me.pending.is_empty() {
        none()
    } else {
        me.pending
            .iter()
            .map(|s| pending_step(*s))
            .collect::<Vec<_>>()
            .join(", ")
    };
    fields(&[
        ("ユーザー名 Username", me.user.username.clone()),
        ("表示名 Display name", me.user.display_name.clone()),
        ("役割 Role", role(me.user.role)),
        ("組織 Organisation", organisation),
        ("二要素認証 TOTP", totp(me.user.totp_enabled).to_owned()),
        (
            "二要素認証必須 TOTP required",
            yes_no(me.totp_required).to_owned(),
        ),
        ("未完了の手順 Pending", pending),
        ("ユーザー ID User id", me.user.id.to_string()),
        ("セッション Session", me.session_id.to_string()),
        ("サーバー Server", server.to_owned()),
    ])
}

/// One organisation.
pub(crate) fn organisation(org: &Organisation) -> String {
    fields(&[
        ("ID", org.id.to_string()),
        ("名前 Name", org.name.clone()),
        ("種別 Kind", kind(org.kind)),
        (
            "全員に二要素認証 TOTP for all",
            yes_no(org.require_totp_for_all).to_owned(),
        ),
        ("作成 Created", timestamp(org.created_at)),
    ])
}

/// A list of organisations.
pub(crate) fn organisations(orgs: &[Organisation]) -> String {
    let rows: Vec<Vec<String>> = orgs
        .iter()
        .map(|org| {
            vec![
                org.id.to_string(),
                org.name.clone(),
                kind(org.kind),
                yes_no(org.require_totp_for_all).to_owned(),
                timestamp(org.created_at),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "名前 Name",
            "種別 Kind",
            "全員TOTP TOTP for all",
            "作成 Created",
        ],
        &rows,
    )
}

/// One user.
pub(crate) fn user(user: &User) -> String {
    fields(&[
        ("ID", user.id.to_string()),
        ("ユーザー名 Username", user.username.clone()),
        ("表示名 Display name", user.display_name.clone()),
        ("役割 Role", role(user.role)),
        (
            "組織 Organisation",
            user.organisation_id.map_or_else(none, |id| id.to_string()),
        ),
        ("状態 Status", user_status(user.status).to_owned()),
        ("二要素認証 TOTP", totp(user.totp_enabled).to_owned()),
        (
            "パスワード変更要 Must change password",
            yes_no(user.must_change_password).to_owned(),
        ),
        ("作成 Created", timestamp(user.created_at)),
    ])
}

/// A list of users.
pub(crate) fn users(users: &[User]) -> String {
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|user| {
            vec![
                user.id.to_string(),
                user.username.clone(),
                user.display_name.clone(),
                role(user.role),
                user_status(user.status).to_owned(),
                totp(user.totp_enabled).to_owned(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "ユーザー名 Username",
            "表示名 Name",
            "役割 Role",
            "状態 Status",
            "二要素 TOTP",
        ],
        &rows,
    )
}

fn invitation_fields(invitation: &Invitation) -> String {
    fields(&[
        ("招待 ID Invitation", invitation.id.to_string()),
        ("組織 Organisation", invitation.organisation_id.to_string()),
        ("役割 Role", role(invitation.role)),
        (
            "招待相手 Invitee",
            invitation.invitee_name.clone().unwrap_or_else(none),
        ),
        (
            "状態 Status",
            invitation_status(invitation.status).to_owned(),
        ),
        ("有効期限 Expires", timestamp(invitation.expires_at)),
        ("作成者 Created by", invitation.created_by.to_string()),
        ("作成 Created", timestamp(invitation.created_at)),
    ])
}

/// A new invitation, with its one-time code shown prominently.
pub(crate) fn invitation_created(created: &InvitationCreated) -> String {
    format!(
        "招待コード（この一度だけ表示されます） Invitation code (shown only once):\n\n\
         \x20   {}\n\n\
         招待された方に安全な方法で伝えてください。\n\
         Give it to the invitee through a safe channel: it cannot be shown again.\n\n{}",
        created.code,
        invitation_fields(&created.invitation)
    )
}

/// A list of invitations.
pub(crate) fn invitations(invitations: &[Invitation]) -> String {
    let rows: Vec<Vec<String>> = invitations
        .iter()
        .map(|inv| {
            vec![
                inv.id.to_string(),
                role(inv.role),
                inv.invitee_name.clone().unwrap_or_else(none),
                invitation_status(inv.status).to_owned(),
                timestamp(inv.expires_at),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "役割 Role",
            "招待相手 Invitee",
            "状態 Status",
            "有効期限 Expires",
        ],
        &rows,
    )
}

/// A user's role history.
pub(crate) fn role_grants(grants: &[RoleGrant]) -> String {
    let rows: Vec<Vec<String>> = grants
        .iter()
        .map(|grant| {
            vec![
                timestamp(grant.granted_at),
                role(grant.role),
                grant
                    .granted_by
                    .map_or_else(|| "（初期設定） bootstrap".to_owned(), |id| id.to_string()),
                grant.reason.clone(),
            ]
        })
        .collect();
    table(
        &[
            "日時 Granted at",
            "役割 Role",
            "付与者 Granted by",
            "理由 Reason",
        ],
        &rows,
    )
}

/// A list of sessions; `*` marks the one making the request.
pub(crate) fn sessions(sessions: &[SessionInfo]) -> String {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                if s.current {
                    "*".to_owned()
                } else {
                    String::new()
                },
                s.id.to_string(),
                timestamp(s.created_at),
                timestamp(s.last_seen_at),
                timestamp(s.expires_at),
                s.source_address.clone().unwrap_or_else(none),
                s.user_agent.clone().unwrap_or_else(none),
            ]
        })
        .collect();
    table(
        &[
            "現在 Current",
            "ID",
            "開始 Created",
            "最終利用 Last seen",
            "期限 Expires",
            "接続元 Address",
            "クライアント Client",
        ],
        &rows,
    )
}

/// A new room: its id, the patient's name and what to do next (the details are for
/// `room show`).
pub(crate) fn room_created(room: &Room) -> String {
    format!(
        "部屋を作成しました。 The room has been created.\n\n{}\n\
         同意が記録されるまで記録は投稿できません。次に同意を記録してください:\n\
         Nothing clinical can be posted until consent is recorded. Next, record it:\n\n\
         \x20   tsunagu room consent {} --given-by patient|family|legal_representative \
         --giver-name NAME --obtained-on YYYY-MM-DD --scope TEXT\n",
        fields(&[
            ("ID", room.id.to_string()),
            ("患者 Patient", room.patient.name.clone()),
            ("同意 Consent", consent_state(room.consent).to_owned()),
        ]),
        room.id
    )
}

/// The unread column of `tsunagu room list`: `3`, `3 (緊急 1)` with urgent notices among
/// them, `－` for an invitation (nothing can be read before accepting).
fn unread(room: &RoomSummary) -> String {
    match (room.my_state, room.urgent_unread) {
        (MemberState::Invited, _) => none(),
        (_, 0) => room.unread.to_string(),
        (_, urgent) => format!("{} (緊急 {urgent})", room.unread),
    }
}

/// `tsunagu room list`: the patient's name only, the unread counts, and hints when
/// invitations or urgent notices are waiting.
pub(crate) fn room_summaries(rooms: &[RoomSummary]) -> String {
    let rows: Vec<Vec<String>> = rooms
        .iter()
        .map(|room| {
            vec![
                room.id.to_string(),
                room.patient_name.clone(),
                unread(room),
                consent_state(room.consent).to_owned(),
                member_state(room.my_state).to_owned(),
                timestamp(room.created_at),
            ]
        })
        .collect();
    let mut text = table(
        &[
            "ID",
            "患者 Patient",
            "未読 Unread (緊急 urgent)",
            "同意 Consent",
            "参加状況 My state",
            "作成 Created",
        ],
        &rows,
    );
    if rooms
        .iter()
        .any(|room| room.my_state == MemberState::Accepted && room.urgent_unread > 0)
    {
        text.push_str(
            "\n⚠ 未読の緊急連絡があります: `tsunagu history ID` で確認し、`tsunagu read ID` で既読に\
             してください。\n\
             ⚠ Urgent notices are unread: see them with `tsunagu history ID`, then mark them read \
             with `tsunagu read ID`.\n",
        );
    }
    if rooms
        .iter()
        .any(|room| room.my_state == MemberState::Invited)
    {
        text.push_str(
            "\n招待への回答: `tsunagu room accept ID` または `tsunagu room decline ID`\n\
             To answer an invitation: `tsunagu room accept ID` or `tsunagu room decline ID`\n",
        );
    }
    text
}

/// `tsunagu room show`: the room with the patient's details.
pub(crate) fn room(room: &Room) -> String {
    let patient = &room.patient;
    let mut rows = vec![
        ("ID", room.id.to_string()),
        ("氏名 Name", patient.name.clone()),
        ("フリガナ Kana", patient.name_kana.clone()),
        ("生年月日 Date of birth", date(patient.date_of_birth)),
        ("住所 Address", patient.address.clone().unwrap_or_else(none)),
    ];
    if patient.insurer_numbers.is_empty() {
        rows.push(("保険 Insurance", none()));
    }
    for (index, insurer) in patient.insurer_numbers.iter().enumerate() {
        let label = if index == 0 { "保険 Insurance" } else { "" };
        rows.push((
            label,
            format!("{}: {}", insurer.kind.label(), insurer.number),
        ));
    }
    rows.extend([
        ("同意 Consent", consent_state(room.consent).to_owned()),
        ("作成者 Created by", room.created_by.to_string()),
        ("作成 Created", timestamp(room.created_at)),
    ]);
    fields(&rows)
}

/// One member or invitee.
pub(crate) fn member(member: &Member) -> String {
    fields(&[
        ("ユーザー ID User id", member.user_id.to_string()),
        ("表示名 Name", member.display_name.clone()),
        ("役割 Role", role(member.role)),
        (
            "組織 Organisation",
            member_organisation(member.organisation_name.as_deref(), member.organisation_id),
        ),
        ("状態 State", member_state(member.state).to_owned()),
        (
            "招待者 Invited by",
            member
                .invited_by
                .map_or_else(|| "（作成者） creator".to_owned(), |id| id.to_string()),
        ),
        ("招待 Invited", timestamp(member.invited_at)),
        (
            "回答 Responded",
            member.responded_at.map_or_else(none, timestamp),
        ),
    ])
}

/// `tsunagu room members`.
pub(crate) fn members(members: &[Member]) -> String {
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|member| {
            vec![
                member.user_id.to_string(),
                member.display_name.clone(),
                role(member.role),
                member_organisation(member.organisation_name.as_deref(), member.organisation_id),
                member_state(member.state).to_owned(),
                timestamp(member.invited_at),
            ]
        })
        .collect();
    table(
        &[
            "ユーザー ID User id",
            "表示名 Name",
            "役割 Role",
            "組織 Organisation",
            "状態 State",
            "招待 Invited",
        ],
        &rows,
    )
}

/// One consent record.
pub(crate) fn consent(consent: &Consent) -> String {
    let mut rows = vec![
        ("ID", consent.id.to_string()),
        (
            "状態 Status",
            if consent.withdrawn_at.is_some() {
                "撤回 Withdrawn"
            } else {
                "有効 In force"
            }
            .to_owned(),
        ),
        ("同意者 Given by", consent.given_by.label()),
        ("同意者氏名 Giver's name", consent.giver_name.clone()),
        ("取得日 Obtained on", date(consent.obtained_on)),
        ("範囲 Scope", consent.scope.clone()),
        (
            "同意書 Document",
            consent.document_reference.clone().unwrap_or_else(none),
        ),
        ("記録者 Recorded by", consent.recorded_by.to_string()),
        ("記録 Recorded", timestamp(consent.recorded_at)),
    ];
    if consent.withdrawn_at.is_some() || consent.withdrawn_by.is_some() {
        rows.extend([
            (
                "撤回者 Withdrawn by",
                consent.withdrawn_by.map_or_else(none, |id| id.to_string()),
            ),
            (
                "撤回 Withdrawn",
                consent.withdrawn_at.map_or_else(none, timestamp),
            ),
            (
                "撤回理由 Reason",
                consent.withdrawal_reason.clone().unwrap_or_else(none),
            ),
        ]);
    }
    fields(&rows)
}

/// `tsunagu room consents`: one block per record (scopes can be long), oldest first as sent.
pub(crate) fn consents(consents: &[Consent]) -> String {
    if consents.is_empty() {
        return "（なし） None\n".to_owned();
    }
    consents.iter().map(consent).collect::<Vec<_>>().join("\n")
}

/// The most entries the directory answers with.
const DIRECTORY_LIMIT: usize = 20;

/// `tsunagu directory`.
pub(crate) fn directory_entries(entries: &[DirectoryEntry]) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|entry| {
            vec![
                entry.user_id.to_string(),
                entry.display_name.clone(),
                role(entry.role),
                member_organisation(entry.organisation_name.as_deref(), entry.organisation_id),
            ]
        })
        .collect();
    let mut text = table(
        &[
            "ユーザー ID User id",
            "表示名 Name",
            "役割 Role",
            "組織 Organisation",
        ],
        &rows,
    );
    if entries.len() >= DIRECTORY_LIMIT {
        text.push_str(&format!(
            "\n最大 {DIRECTORY_LIMIT} 件まで表示されます。絞り込むには検索語を長くしてください。\n\
             At most {DIRECTORY_LIMIT} people are shown: use a longer query to narrow it down.\n"
        ));
    }
    text
}

/// An administrator's password reset: the one-time password, shown prominently.
pub(crate) fn password_reset(reset: &PasswordReset) -> String {
    format!(
        "一時パスワード（この一度だけ表示されます） One-time password (shown only once):\n\n\
         \x20   {}\n\n\
         本人に安全な方法で伝えてください。次回ログイン時に変更が必要です。\n\
         Give it to the user through a safe channel; it must be changed at the next login.\n",
        reset.one_time_password
    )
}

/// A new TOTP secret to enter in the authenticator app.
pub(crate) fn totp_enrolment(enrolment: &TotpEnrolment) -> String {
    format!(
        "認証アプリに次のシークレットを登録してください（QR コードは URI から作成できます）。\n\
         Add this secret to your authenticator app (or make a QR code of the URI).\n\n{}",
        fields(&[
            ("シークレット Secret", enrolment.secret_base32.clone()),
            ("URI", enrolment.otpauth_uri.clone()),
            ("桁数 Digits", enrolment.digits.to_string()),
            ("間隔 Period", format!("{} 秒 s", enrolment.period_seconds)),
        ])
    )
}

/// Recovery codes, shown once, with the warning to keep them.
pub(crate) fn recovery_codes(codes: &RecoveryCodes) -> String {
    let mut text = "二要素認証を有効にしました。 Two-factor authentication is now active.\n\n\
                    リカバリーコード Recovery codes:\n\n"
        .to_owned();
    for code in &codes.recovery_codes {
        text.push_str(&format!("    {code}\n"));
    }
    text.push_str(
        "\n⚠ これらのコードは二度と表示されません。安全な場所に保管してください。\
         認証アプリが使えないとき、各コードを一度だけ確認コードの代わりに使えます。\n\
         ⚠ These codes will not be shown again. Store them somewhere safe: each can be used \
         once instead of an authenticator code.\n",
    );
    text
}

/// The operating policy, with the command that accepts it.
pub(crate) fn operating_policy(policy: &tsunagu_protocol::auth::OperatingPolicy) -> String {
    let mut text = format!("{}\n\n{}\n\n", policy.title, policy.text);
    if policy.accepted_version.as_deref() == Some(policy.version.as_str()) {
        text.push_str("この版に同意済みです。 You have accepted this version.\n");
    } else {
        text.push_str(&format!(
            "同意するには / To accept: tsunagu policy accept --version {}\n",
            policy.version
        ));
    }
    text
}

/// What a session with pending steps must do next, Japanese then English for each step.
pub(crate) fn pending_guidance(pending: &[PendingStep]) -> String {
    let mut text = String::new();
    for step in pending {
        text.push_str(match step {
            PendingStep::ChangePassword => {
                "次に `tsunagu password` でパスワードを変更してください。\n\
                 Next, change your password with `tsunagu password`.\n"
            }
            PendingStep::EnrolTotp => {
                "次に `tsunagu totp enrol` で二要素認証（認証アプリ）を設定してください。\n\
                 Next, set up two-factor authentication with `tsunagu totp enrol`.\n"
            }
            PendingStep::AcceptPolicy => {
                "次に `tsunagu policy show` で運用ポリシーを読み、`tsunagu policy accept` で同意してください。\n\
                 Next, read the operating policy with `tsunagu policy show` and accept it with `tsunagu policy accept`.\n"
            }
        });
    }
    if !pending.is_empty() {
        text.push_str("それまでは他の操作はできません。 Until then, nothing else is allowed.\n");
    }
    text
}

// ----- The audit trail -----

/// A value from the audit trail on one line: line breaks and tabs become spaces and other
/// control characters are replaced, so that a stored text (a user agent, a reason) cannot
/// move the cursor or recolour the terminal.
fn audit_cell(text: &str) -> String {
    text.split(['\r', '\n', '\t'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.chars()
                .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An audit outcome in words: `成功 success`, `失敗 failure`, `拒否 refused`.
fn audit_outcome(outcome: &str) -> String {
    match outcome {
        "success" => "成功 success".to_owned(),
        "failure" => "失敗 failure".to_owned(),
        "refused" => "拒否 refused".to_owned(),
        other => audit_cell(other),
    }
}

/// The actor's role by its label when it is a known role, else as stored.
fn audit_role(stored: Option<&str>) -> String {
    match stored {
        Some(name) => Role::parse(name).map_or_else(|| audit_cell(name), role),
        None => none(),
    }
}

/// `room 0190…`, the type alone, or "－".
fn audit_object(record: &AuditRecord) -> String {
    match (&record.object_type, &record.object_id) {
        (Some(kind), Some(id)) => format!("{} {}", audit_cell(kind), audit_cell(id)),
        (Some(kind), None) => audit_cell(kind),
        (None, Some(id)) => audit_cell(id),
        (None, None) => none(),
    }
}

/// Audit records as a table, oldest first: time, position in the log (`－` until placed),
/// actor, role, action, object, outcome and reason.
pub(crate) fn audit_records(records: &[AuditRecord]) -> String {
    let optional = |value: &Option<String>| value.as_deref().map_or_else(none, audit_cell);
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|record| {
            vec![
                timestamp(record.occurred_at),
                record
                    .position
                    .map_or_else(none, |position| position.to_string()),
                optional(&record.actor_user_id),
                audit_role(record.actor_role.as_deref()),
                audit_cell(&record.action),
                audit_object(record),
                audit_outcome(&record.outcome),
                optional(&record.reason),
            ]
        })
        .collect();
    table(
        &[
            "日時 Time",
            "位置 Position",
            "操作者 Actor",
            "役割 Role",
            "操作 Action",
            "対象 Object",
            "結果 Outcome",
            "理由 Reason",
        ],
        &rows,
    )
}

/// `tsunagu audit search`: the records, their number, and how to see more when the page is
/// full.
pub(crate) fn audit_page(page: &AuditPage) -> String {
    let mut text = audit_records(&page.records);
    text.push_str(&format!(
        "\n{count} 件 {count} record(s)\n",
        count = page.records.len()
    ));
    if page.next_after.is_some() {
        text.push_str(
            "さらに記録があります。すべて表示するには --all を指定するか、条件を絞り込んで\
             ください。\n\
             More records match: pass --all to fetch them all, or narrow the search.\n",
        );
    }
    text
}

/// The clock's state in words.
fn clock_state(state: &str) -> String {
    match state {
        "synchronised" => "同期済み synchronised".to_owned(),
        "unsynchronised" => "⚠ 未同期 unsynchronised".to_owned(),
        "unknown" => "不明 unknown".to_owned(),
        other => audit_cell(other),
    }
}

/// One line about the server's clock: its state, how it was found and when.
fn clock_line(clock: &ClockStatus) -> String {
    let mut text = clock_state(&clock.state);
    if let Some(source) = &clock.source {
        text.push_str(&format!(" ({})", audit_cell(source)));
    }
    text.push_str(&format!("  確認 checked {}", timestamp(clock.checked_at)));
    text
}

/// `tsunagu clock`.
pub(crate) fn clock_status(clock: &ClockStatus) -> String {
    let mut text = fields(&[
        ("時刻同期 Clock", clock_state(&clock.state)),
        (
            "確認方法 Source",
            clock.source.as_deref().map_or_else(none, audit_cell),
        ),
        ("確認 Checked at", timestamp(clock.checked_at)),
    ]);
    if clock.state != "synchronised" {
        text.push_str(
            "\n⚠ 時刻同期を確認できません。監査記録の日時が不正確になるおそれがあります。\n\
             ⚠ The clock is not known to be synchronised: audit records may carry wrong times.\n",
        );
    }
    text
}

/// `tsunagu audit verify`: the verdict first, then the figures and every problem.
pub(crate) fn audit_verification(verification: &AuditVerification) -> String {
    let mut text = if verification.clean {
        "監査ログに問題はありません。 The audit log is clean.\n\n".to_owned()
    } else {
        "⚠ 監査ログに問題があります。 The audit log has problems.\n\n".to_owned()
    };
    text.push_str(&fields(&[
        ("記録数 Records in the chain", verification.size.to_string()),
        (
            "チェックポイント Checkpoints checked",
            verification.checkpoints.to_string(),
        ),
        (
            "未配置 Pending (not placed yet)",
            verification.pending.to_string(),
        ),
        (
            "最初の不正位置 First bad position",
            verification
                .first_bad_position
                .map_or_else(none, |position| position.to_string()),
        ),
        ("時刻同期 Clock", clock_line(&verification.clock)),
    ]));
    if !verification.problems.is_empty() {
        text.push_str("\n問題 Problems:\n");
        for problem in &verification.problems {
            text.push_str(&format!("  - {}\n", audit_cell(problem)));
        }
    }
    text
}

/// A review report's name, Japanese then English.
pub(crate) fn report_kind(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::OutsideCareTeam => {
            "ケアチーム外からのアクセス Access from outside the care team"
        }
        ReportKind::OutOfHours => "時間外のアクセス Access out of office hours",
        ReportKind::BulkExports => "書き出しと大量閲覧 Exports and large reads",
        ReportKind::FailedLogins => "ログイン失敗 Failed logins",
        ReportKind::ManyRefusals => "拒否の多いアカウント Accounts refused many times",
        ReportKind::ClockUnsynchronised => "時刻の非同期 Clock not synchronised",
    }
}

/// `tsunagu audit report`: the report and its period, the counts per account, then the
/// records.
pub(crate) fn audit_report(report: &AuditReport) -> String {
    let mut text = fields(&[
        ("レポート Report", report_kind(report.kind).to_owned()),
        (
            "期間 Period",
            format!("{} – {}", timestamp(report.from), timestamp(report.until)),
        ),
        ("記録数 Records", report.records.len().to_string()),
    ]);
    if report.truncated {
        text.push_str(
            "⚠ 記録が多いため先頭の 10,000 件のみ表示しています。期間を短くしてください。\n\
             ⚠ Only the first 10,000 records are listed: shorten the period.\n",
        );
    }
    if !report.counts.is_empty() {
        text.push_str("\nアカウント別 Per account:\n");
        let rows: Vec<Vec<String>> = report
            .counts
            .iter()
            .map(|count| {
                let account = match count.account.as_str() {
                    "unknown" => "（不明な名前） unknown name".to_owned(),
                    account => audit_cell(account),
                };
                vec![account, count.count.to_string()]
            })
            .collect();
        text.push_str(&table(&["アカウント Account", "件数 Count"], &rows));
    }
    text.push_str("\n記録 Records:\n");
    text.push_str(&audit_records(&report.records));
    text
}

/// A text over several lines, each further line indented under the first.
fn audit_text(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(audit_cell)
        .collect::<Vec<_>>()
        .join("\n    ")
}

/// One review sign-off.
pub(crate) fn review(review: &Review) -> String {
    fields(&[
        ("点検 ID Review", review.review_id.clone()),
        (
            "期間 Period",
            format!(
                "{} – {}",
                timestamp(review.period_start),
                timestamp(review.period_end)
            ),
        ),
        (
            "対象の記録 Covers positions up to",
            review.through_position.to_string(),
        ),
        ("点検者 Reviewed by", review.reviewed_by.to_string()),
        ("記録 Signed at", timestamp(review.reviewed_at)),
        ("所見 Findings", audit_text(&review.findings)),
    ])
}

/// `tsunagu audit reviews`: one block per sign-off, newest period first as sent.
pub(crate) fn reviews(reviews: &[Review]) -> String {
    if reviews.is_empty() {
        return "（なし） None\n".to_owned();
    }
    reviews
        .iter()
        .map(self::review)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `tsunagu audit export -o FILE`: where the export went.
pub(crate) fn audit_exported(path: &std::path::Path, format: &str, bytes: usize) -> String {
    format!(
        "監査記録を書き出しました: {path}（{format}、{size}）\n\
         Exported the audit records to {path} ({format}, {size}).\n",
        path = path.display(),
        size = size(bytes as u64)
    )
}

#[cfg(test)]
mod tests {
    use tsunagu_protocol::{ErrorCode, FieldError, OrganisationId, UserId};

    use super::*;

    #[test]
    fn wide_characters_count_twice() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("看護師"), 6);
        assert_eq!(width("看護師 Nurse"), 12);
        assert_eq!(width("（なし）"), 8);
        assert_eq!(pad("役割", 6), "役割  ");
    }

    #[test]
    fn tables_align_mixed_scripts() {
        let text = table(
            &["名前 Name", "X"],
            &[
                vec!["あおば".to_owned(), "1".to_owned()],
                vec!["Aoba".to_owned(), "2".to_owned()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, ["名前 Name  X", "あおば     1", "Aoba       2"]);
        assert_eq!(table(&["a"], &[]), "（なし） None\n");
    }

    #[test]
    fn timestamps_are_utc_seconds() {
        let at = time::macros::datetime!(2026-11-21 18:30:00.123456 +09:00);
        assert_eq!(timestamp(at), "2026-11-21T09:30:00Z");
    }

    #[test]
    fn users_show_labels() {
        let user = User {
            id: UserId::generate(),
            organisation_id: Some(OrganisationId::generate()),
            username: "nurse.sato".into(),
            display_name: "佐藤 花子".into(),
            role: Role::Nurse,
            status: UserStatus::Active,
            totp_enabled: false,
            must_change_password: true,
            created_at: time::macros::datetime!(2026-01-02 03:04:05 UTC),
        };
        let text = users(std::slice::from_ref(&user));
        assert!(text.contains("看護師 Nurse"), "{text}");
        assert!(text.contains("佐藤 花子"));
        let text = self::user(&user);
        assert!(text.contains("2026-01-02T03:04:05Z"), "{text}");
    }

    #[test]
    fn errors_show_japanese_first_then_english_and_details() {
        let report = Report {
            ja: ErrorCode::WeakPassword.message_ja().to_owned(),
            en: ErrorCode::WeakPassword.message_en().to_owned(),
            code: Some("weak_password".to_owned()),
            fields: vec![FieldError {
                field: "new_password".into(),
                code: "too_short".into(),
                message_ja: "短すぎます".into(),
                message_en: "too short".into(),
            }],
            retry_after_seconds: Some(30),
            hint: None,
        };
        let text = render_error(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("エラー: "), "{text}");
        assert!(lines[1].starts_with("error: ") && lines[1].ends_with("(weak_password)"));
        assert_eq!(
            lines[2],
            "  - new_password: 短すぎます / too short (too_short)"
        );
        assert!(lines[3].contains("30"));
    }

    #[test]
    fn pending_guidance_names_the_commands() {
        let text = pending_guidance(&[PendingStep::ChangePassword, PendingStep::EnrolTotp]);
        assert!(text.contains("tsunagu password"));
        assert!(text.contains("tsunagu totp enrol"));
        assert!(pending_guidance(&[]).is_empty());
    }
    fn sample_room() -> Room {
        serde_json::from_value(serde_json::json!({
            "id": "0190a5b4-0000-7000-8000-0000000000a1",
            "patient": {
                "name": "山田 太郎", "name_kana": "ヤマダ タロウ", "date_of_birth": "1938-04-01",
                "address": "東京都世田谷区1-2-3",
                "insurer_numbers": [
                    {"kind": "medical", "number": "39-123456"},
                    {"kind": "long_term_care", "number": "0123456789"}
                ]
            },
            "consent": "missing",
            "created_by": "0190a5b4-0000-7000-8000-000000000002",
            "created_at": "2026-11-21T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn room_show_has_the_details_and_the_list_only_the_name() {
        let room = sample_room();
        let text = self::room(&room);
        for expected in [
            "山田 太郎",
            "ヤマダ タロウ",
            "1938-04-01",
            "東京都世田谷区1-2-3",
            "医療保険 Health insurance: 39-123456",
            "介護保険 Long-term care insurance: 0123456789",
            "同意なし Missing",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        // The second insurance number is aligned under the first, without a label.
        let lines: Vec<&str> = text.lines().collect();
        let first = lines.iter().position(|l| l.contains("39-123456")).unwrap();
        assert_eq!(
            width(&lines[first][..lines[first].find('医').unwrap()]),
            width(&lines[first + 1][..lines[first + 1].find('介').unwrap()])
        );
        assert!(lines[first + 1].trim_start().starts_with("介護保険"));

        let created = room_created(&room);
        assert!(created.contains("山田 太郎"), "{created}");
        assert!(created.contains("tsunagu room consent"), "{created}");
        for hidden in ["ヤマダ", "1938", "世田谷", "0123456789"] {
            assert!(!created.contains(hidden), "{hidden}: {created}");
        }

        let summary = RoomSummary {
            id: room.id,
            patient_name: room.patient.name.clone(),
            consent: ConsentState::Given,
            my_state: MemberState::Invited,
            head: 0,
            unread: 0,
            urgent_unread: 0,
            created_at: room.created_at,
        };
        let text = room_summaries(std::slice::from_ref(&summary));
        assert!(text.contains("山田 太郎"), "{text}");
        assert!(text.contains("同意あり Given"), "{text}");
        assert!(text.contains("招待中 Invited"), "{text}");
        assert!(text.contains("tsunagu room accept"), "{text}");
        assert!(text.contains("未読 Unread"), "{text}");
        assert_eq!(room_summaries(&[]), "（なし） None\n");

        let member = |unread, urgent_unread| RoomSummary {
            my_state: MemberState::Accepted,
            head: 9,
            unread,
            urgent_unread,
            ..summary.clone()
        };
        assert_eq!(self::unread(&summary), "－");
        assert_eq!(self::unread(&member(0, 0)), "0");
        assert_eq!(self::unread(&member(3, 0)), "3");
        assert_eq!(self::unread(&member(3, 1)), "3 (緊急 1)");
        let text = room_summaries(&[member(3, 1)]);
        assert!(text.contains("3 (緊急 1)"), "{text}");
        assert!(text.contains("Urgent notices are unread"), "{text}");
        assert!(!room_summaries(&[member(3, 0)]).contains("Urgent"));
    }

    #[test]
    fn members_and_consents_show_labels() {
        let member: Member = serde_json::from_value(serde_json::json!({
            "user_id": "0190a5b4-0000-7000-8000-000000000002", "display_name": "佐藤 花子",
            "role": "nurse", "organisation_id": null, "organisation_name": "みどり訪問看護",
            "state": "left", "invited_by": null, "invited_at": "2026-11-21T00:00:00Z",
            "responded_at": null
        }))
        .unwrap();
        let text = members(std::slice::from_ref(&member));
        for expected in ["佐藤 花子", "看護師 Nurse", "みどり訪問看護", "退出 Left"]
        {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        assert!(self::member(&member).contains("（作成者） creator"));

        let consent: Consent = serde_json::from_value(serde_json::json!({
            "id": "0190a5b4-0000-7000-8000-0000000000c1",
            "room_id": "0190a5b4-0000-7000-8000-0000000000a1",
            "given_by": "family", "giver_name": "山田 花子", "obtained_on": "2026-11-20",
            "scope": "医療・介護関係者間での情報共有", "document_reference": null,
            "recorded_by": "0190a5b4-0000-7000-8000-000000000002",
            "recorded_at": "2026-11-21T00:00:00Z", "withdrawn_by": null, "withdrawn_at": null,
            "withdrawal_reason": null
        }))
        .unwrap();
        let text = consents(std::slice::from_ref(&consent));
        for expected in ["有効 In force", "家族 Family", "山田 花子", "2026-11-20"] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        assert!(!text.contains("撤回"), "{text}");
        let withdrawn = Consent {
            withdrawn_by: Some(consent.recorded_by),
            withdrawn_at: Some(consent.recorded_at),
            withdrawal_reason: Some("本人の希望".into()),
            ..consent
        };
        let text = self::consent(&withdrawn);
        assert!(text.contains("撤回 Withdrawn"), "{text}");
        assert!(text.contains("本人の希望"), "{text}");
        assert_eq!(consents(&[]), "（なし） None\n");
    }

    #[test]
    fn audit_records_reports_and_verification_are_readable() {
        let record: AuditRecord = serde_json::from_value(serde_json::json!({
            "id": 7, "occurred_at": "2026-11-21T09:30:00+09:00",
            "actor_user_id": "0190a5b4-0000-7000-8000-000000000002", "actor_role": "nurse",
            "action": "room.view", "object_type": "room",
            "object_id": "0190a5b4-0000-7000-8000-0000000000a1", "outcome": "refused",
            "reason": "not_member\n\u{1b}[31m"
        }))
        .unwrap();
        let placed = AuditRecord {
            position: Some(41),
            outcome: "success".into(),
            reason: None,
            ..record.clone()
        };
        let page = AuditPage {
            records: vec![record.clone(), placed],
            next_after: Some(8),
        };
        let text = audit_page(&page);
        for expected in [
            "2026-11-21T00:30:00Z",
            "看護師 Nurse",
            "room 0190a5b4-0000-7000-8000-0000000000a1",
            "拒否 refused",
            "成功 success",
            "not_member \u{FFFD}[31m",
            "2 件 2 record(s)",
            "--all",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        assert!(!text.contains('\u{1b}'), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("  －  "), "not placed yet: {text}");
        assert!(lines[2].contains("  41  "), "{text}");
        assert!(
            !audit_page(&AuditPage {
                records: Vec::new(),
                next_after: None
            })
            .contains("--all")
        );

        let clock: ClockStatus = serde_json::from_value(serde_json::json!({
            "state": "unsynchronised", "source": "command", "checked_at": "2026-11-21T00:00:00Z"
        }))
        .unwrap();
        let verification = AuditVerification {
            clean: false,
            size: 120,
            checkpoints: 3,
            pending: 2,
            first_bad_position: Some(57),
            problems: vec!["record 57: MAC mismatch".into()],
            clock: clock.clone(),
        };
        let text = audit_verification(&verification);
        for expected in [
            "The audit log has problems",
            "120",
            "57",
            "  - record 57: MAC mismatch",
            "未同期 unsynchronised (command)",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        let clean = audit_verification(&AuditVerification {
            clean: true,
            first_bad_position: None,
            problems: Vec::new(),
            ..verification
        });
        assert!(clean.starts_with("監査ログに問題はありません。"), "{clean}");
        assert!(!clean.contains("Problems"), "{clean}");
        assert!(clock_status(&clock).contains("may carry wrong times"));

        let report = AuditReport {
            kind: ReportKind::FailedLogins,
            from: record.occurred_at,
            until: record.occurred_at,
            records: vec![record],
            counts: vec![
                tsunagu_protocol::audit::AccountCount {
                    account: "0190a5b4-0000-7000-8000-000000000002".into(),
                    count: 3,
                },
                tsunagu_protocol::audit::AccountCount {
                    account: "unknown".into(),
                    count: 1,
                },
            ],
            truncated: false,
        };
        let text = audit_report(&report);
        for expected in [
            "ログイン失敗 Failed logins",
            "アカウント別 Per account",
            "0190a5b4-0000-7000-8000-000000000002  3",
            "unknown name",
            "room.view",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }

        let review: Review = serde_json::from_value(serde_json::json!({
            "review_id": "0190a5b4-0000-7000-8000-0000000000f1",
            "period_start": "2026-10-01T00:00:00Z", "period_end": "2026-11-01T00:00:00Z",
            "through_position": 41, "reviewed_by": "0190a5b4-0000-7000-8000-000000000003",
            "reviewed_at": "2026-11-02T00:00:00Z", "findings": "不審なし\n対応不要"
        }))
        .unwrap();
        let text = reviews(std::slice::from_ref(&review));
        assert!(
            text.contains("2026-10-01T00:00:00Z – 2026-11-01T00:00:00Z"),
            "{text}"
        );
        assert!(text.contains("不審なし\n    対応不要"), "{text}");
        assert_eq!(reviews(&[]), "（なし） None\n");
    }

    #[test]
    fn a_full_directory_answer_suggests_narrowing() {
        let entry: DirectoryEntry = serde_json::from_value(serde_json::json!({
            "user_id": "0190a5b4-0000-7000-8000-000000000002", "display_name": "山田 一郎",
            "role": "physician", "organisation_id": null, "organisation_name": null
        }))
        .unwrap();
        let one = directory_entries(std::slice::from_ref(&entry));
        assert!(one.contains("医師 Physician"), "{one}");
        assert!(!one.contains("At most"), "{one}");
        let full = directory_entries(&vec![entry; DIRECTORY_LIMIT]);
        assert!(full.contains("At most 20"), "{full}");
    }
}
