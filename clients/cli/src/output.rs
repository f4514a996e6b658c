//! Rendering: pretty JSON of protocol values for `--json`, and otherwise short human-readable
//! lines and aligned tables with Japanese labels first. Also the error report on stderr.
//!
//! Timestamps are shown in RFC 3339, UTC, to the second. Column alignment counts East Asian
//! wide characters as two columns.

use std::io::{self, Write};

use serde::Serialize;
use tsunagu_protocol::Timestamp;
use tsunagu_protocol::auth::{Me, PendingStep, RecoveryCodes, SessionInfo, TotpEnrolment};
use tsunagu_protocol::identity::{
    Invitation, InvitationCreated, InvitationStatus, Organisation, OrganisationKind, PasswordReset,
    Role, RoleGrant, User, UserStatus,
};

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
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Io {
            what: "could not write the output".to_owned(),
            source: err,
        }),
        _ => Ok(()),
    }
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
    }
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
        });
    }
    if !pending.is_empty() {
        text.push_str("それまでは他の操作はできません。 Until then, nothing else is allowed.\n");
    }
    text
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
}
