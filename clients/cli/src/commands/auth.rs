//! The account commands: `login`, `logout`, `whoami`, `sessions`, `password`, `totp` and
//! `accept-invitation`. Passwords and codes are read without echo (or from stdin on request)
//! and never printed; tokens are never printed, not even with `--json`.

use serde::Serialize;
use tsunagu_client::{Client, Session, Tokens};
use tsunagu_protocol::auth::{LoginRequest, PendingStep, TokenResponse};
use tsunagu_protocol::identity::AcceptInvitationRequest;
use tsunagu_protocol::{ErrorCode, SessionId};

use super::Context;
use crate::cli::{
    AcceptInvitationArgs, LoginArgs, PasswordArgs, PolicyCommand, SessionsArgs, SessionsCommand,
    TotpCommand,
};
use crate::error::CliError;
use crate::output::{self, Output};
use crate::prompt::{self, StdinLines};

/// What `--json` prints for a new session (login, invitation acceptance, password change):
/// everything about the session except its tokens.
#[derive(Debug, Serialize)]
struct SessionSummary<'a> {
    server: &'a str,
    username: &'a str,
    session_id: SessionId,
    /// Seconds until the access token expires (it is refreshed automatically).
    expires_in: u64,
    pending: &'a [PendingStep],
}

/// Prints a new session (summary with `--json`, else `human`) and what must happen next.
fn report_new_session(
    out: Output,
    server: &str,
    username: &str,
    response: &TokenResponse,
    human: String,
) -> Result<(), CliError> {
    let summary = SessionSummary {
        server,
        username,
        session_id: response.session_id,
        expires_in: response.expires_in,
        pending: &response.pending,
    };
    out.value(&summary, || human)?;
    let guidance = output::pending_guidance(&response.pending);
    if !guidance.is_empty() {
        out.notice(&guidance)?;
    }
    Ok(())
}

/// `tsunagu login`.
pub(super) async fn login(ctx: &Context, args: LoginArgs) -> Result<(), CliError> {
    let (client, ca_cert) = ctx.client_for_new_login()?;
    let password = if args.password_stdin {
        StdinLines::stdin().password("password")?
    } else {
        prompt::secret("パスワード Password: ")?
    };
    let mut request = LoginRequest {
        username: args.username.clone(),
        password,
        totp_code: args.totp,
        recovery_code: args.recovery_code,
    };
    let response = match client.login(&request).await {
        Err(err)
            if err.is(ErrorCode::TotpRequired)
                && request.totp_code.is_none()
                && request.recovery_code.is_none() =>
        {
            if args.password_stdin || !prompt::interactive() {
                return Err(CliError::TotpCodeNeeded);
            }
            request.totp_code = Some(prompt::secret(
                "確認コード（認証アプリ） Authenticator code: ",
            )?);
            client.login(&request).await?
        }
        result => result?,
    };
    ctx.save_login(&client, &args.username, ca_cert, Tokens::from(&response))?;
    let server = client.base_url();
    let human = format!(
        "ログインしました: {user}（{server}）\nLogged in as {user} at {server}.\n",
        user = args.username
    );
    report_new_session(ctx.out(), server, &args.username, &response, human)
}

/// `tsunagu logout`: ends every session of the user on the server and deletes the stored
/// credentials. If the server says the session has already ended, the credentials are deleted
/// all the same.
pub(super) async fn logout(ctx: &Context) -> Result<(), CliError> {
    let outcome = ctx
        .with_session(async |session, _| Ok(session.logout().await))
        .await?;
    match outcome {
        Ok(()) => {
            ctx.store().delete()?;
            ctx.out().notice(
                "ログアウトしました。すべてのセッションを終了しました。\n\
                 Logged out: all your sessions have ended.\n",
            )
        }
        Err(err)
            if matches!(
                err.code(),
                Some(ErrorCode::SessionExpired | ErrorCode::TokenInvalid | ErrorCode::TokenExpired)
            ) =>
        {
            ctx.store().delete()?;
            ctx.out().notice(
                "セッションは既に終了していました。保存していた認証情報を削除しました。\n\
                 The session had already ended; the stored credentials have been deleted.\n",
            )
        }
        Err(err) => Err(err.into()),
    }
}

/// `tsunagu whoami`.
pub(super) async fn whoami(ctx: &Context) -> Result<(), CliError> {
    let (me, server) = ctx
        .with_session(async |session, credentials| {
            Ok((session.me().await?, credentials.server.clone()))
        })
        .await?;
    ctx.out().value(&me, || output::me(&me, &server))
}

/// `tsunagu sessions` and `tsunagu sessions revoke ID`.
pub(super) async fn sessions(ctx: &Context, args: SessionsArgs) -> Result<(), CliError> {
    match args.action {
        None => {
            let sessions = ctx.call(async |session| session.sessions().await).await?;
            ctx.out().value(&sessions, || output::sessions(&sessions))
        }
        Some(SessionsCommand::Revoke { id }) => {
            let was_current = ctx
                .call(async |session| {
                    session.revoke_session(id).await?;
                    Ok(session.session_id() == id)
                })
                .await?;
            if was_current {
                ctx.store().delete()?;
                ctx.out().notice(
                    "現在のセッションを終了しました。保存していた認証情報を削除しました。\n\
                     This session has ended; the stored credentials have been deleted.\n",
                )
            } else {
                ctx.out().notice(&format!(
                    "セッション {id} を終了しました。\nSession {id} has been revoked.\n"
                ))
            }
        }
    }
}

/// `tsunagu password`: changes the password; the new session replaces the stored one.
pub(super) async fn password(ctx: &Context, args: PasswordArgs) -> Result<(), CliError> {
    let (current, new) = if args.stdin {
        let mut lines = StdinLines::stdin();
        (
            lines.password("current password")?,
            lines.password("new password")?,
        )
    } else {
        (
            prompt::secret("現在のパスワード Current password: ")?,
            prompt::new_password()?,
        )
    };
    let (response, credentials) = ctx
        .with_session(async |session, credentials| {
            Ok((
                session.change_password(&current, &new).await?,
                credentials.clone(),
            ))
        })
        .await?;
    report_new_session(
        ctx.out(),
        &credentials.server,
        &credentials.username,
        &response,
        "パスワードを変更しました。他のセッションはすべて終了しました。\n\
         Password changed; all your other sessions have ended.\n"
            .to_owned(),
    )
}

/// `tsunagu totp enrol` and `tsunagu totp confirm`.
pub(super) async fn totp(ctx: &Context, command: TotpCommand) -> Result<(), CliError> {
    let out = ctx.out();
    match command {
        TotpCommand::Enrol { code, no_confirm } => {
            ctx.with_session(async |session, _| {
                let enrolment = session.enrol_totp().await?;
                if no_confirm {
                    return out.value(&enrolment, || {
                        output::totp_enrolment(&enrolment)
                            + "\n登録を完了するには: tsunagu totp confirm <確認コード>\n\
                               To complete the enrolment: tsunagu totp confirm <CODE>\n"
                    });
                }
                // The person asked for the secret; with --json it goes to stderr, since stdout
                // carries the result.
                out.notice(&output::totp_enrolment(&enrolment))?;
                let code = match code {
                    Some(code) => code,
                    None if prompt::interactive() => {
                        prompt::secret("\n認証アプリの確認コード Code from the app: ")?
                    }
                    None => {
                        return Err(CliError::Input {
                            ja: "確認コードが必要です（--code、または --no-confirm の後で \
                                 `tsunagu totp confirm`）。",
                            en: "A code is required: pass --code, or use --no-confirm and then \
                                 `tsunagu totp confirm CODE`.",
                        });
                    }
                };
                confirm(out, session, &code).await
            })
            .await
        }
        TotpCommand::Confirm { code } => {
            ctx.with_session(async |session, _| confirm(out, session, &code).await)
                .await
        }
    }
}

/// `tsunagu policy show` and `tsunagu policy accept --version V`.
pub(super) async fn policy(ctx: &Context, command: PolicyCommand) -> Result<(), CliError> {
    let out = ctx.out();
    match command {
        PolicyCommand::Show => {
            ctx.with_session(async |session, _| {
                let policy = session.policy().await?;
                out.value(&policy, || output::operating_policy(&policy))
            })
            .await
        }
        PolicyCommand::Accept { version } => {
            ctx.with_session(async |session, _| {
                session.accept_policy(&version).await?;
                out.value(&serde_json::json!({"accepted_version": version}), || {
                    "運用ポリシーに同意しました。 You accepted the operating policy.\n".to_owned()
                })
            })
            .await
        }
    }
}

/// Confirms a TOTP enrolment and shows the recovery codes once.
async fn confirm(out: Output, session: &Session, code: &str) -> Result<(), CliError> {
    let codes = session.confirm_totp(code).await?;
    out.value(&codes, || output::recovery_codes(&codes))
}

/// `tsunagu accept-invitation`: creates the account and stores its first session.
pub(super) async fn accept_invitation(
    ctx: &Context,
    args: AcceptInvitationArgs,
) -> Result<(), CliError> {
    let (client, ca_cert): (Client, _) = ctx.client_for_new_login()?;
    let password = if args.password_stdin {
        StdinLines::stdin().password("password")?
    } else {
        prompt::new_password()?
    };
    let request = AcceptInvitationRequest {
        code: args.code,
        username: args.username.clone(),
        display_name: args.display_name,
        password,
    };
    let response = client.accept_invitation(&request).await?;
    ctx.save_login(&client, &args.username, ca_cert, Tokens::from(&response))?;
    let server = client.base_url();
    let human = format!(
        "アカウントを作成し、ログインしました: {user}（{server}）\n\
         Account created; logged in as {user} at {server}.\n",
        user = args.username
    );
    report_new_session(ctx.out(), server, &args.username, &response, human)
}
