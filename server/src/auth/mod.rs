//! Authentication and sessions: password plus TOTP login with back-off and lockout, access
//! tokens, rotating refresh tokens with reuse detection, idle and absolute timeouts, logout,
//! password change, TOTP enrolment and recovery codes.
//!
//! Every step that changes state writes its audit event in the same transaction.

pub mod password;
pub mod tokens;
pub mod totp;

use tsunagu_protocol::auth::{
    ChangePasswordRequest, LoginRequest, PendingStep, RecoveryCodes, RefreshRequest, SessionInfo,
    TokenResponse, TotpEnrolment,
};
use tsunagu_protocol::identity::Role;
use tsunagu_protocol::{OrganisationId, SessionId, UserId};
use zeroize::Zeroizing;

use crate::audit::{Action, Actor, Event, Origin, Outcome};
use crate::config::{AuthSettings, OperatingPolicyText};
use crate::crypto::{ServerKeys, normalise_code, random_code, random_token};
use crate::error::{AppError, Result};
use crate::store::{RefreshTokenUse, SessionPrincipalRow, SessionRow, Store, StoreTx, UserRow};
use crate::time::{from_micros, now_micros, now_seconds, seconds};
use tokens::{TokenError, TokenKeys};

const RECOVERY_CODES: usize = 10;
/// Seconds a WebSocket ticket stays valid.
pub const WS_TICKET_SECONDS: u64 = 30;
const RECOVERY_CODE_CHARS: usize = 12;
/// Activity is written back at most this often per session (idle-timeout precision).
const TOUCH_INTERVAL_MICROS: i64 = seconds(60);

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub username: String,
    pub role: Role,
    pub organisation_id: Option<OrganisationId>,
    pub session_id: SessionId,
    /// Steps this session must complete before anything else.
    pub pending: Vec<PendingStep>,
    pub origin: Origin,
}

impl Principal {
    /// Refuses a session with pending steps.
    ///
    /// # Errors
    /// [`AppError::Pending`] with the first pending step.
    pub fn require_full(&self) -> Result<()> {
        match self.pending.first() {
            Some(step) => Err(AppError::Pending(*step)),
            None => Ok(()),
        }
    }
}

/// Parses a stored role.
pub(crate) fn stored_role(row: &UserRow) -> Result<Role> {
    Role::parse(&row.role)
        .ok_or_else(|| AppError::Store(crate::store::Error::Corrupt("role".into())))
}

/// Whether the user must use TOTP: every role but family and patient, and those too if their
/// organisation says so.
pub(crate) fn totp_required(role: Role, row: &UserRow) -> bool {
    !role.is_lay_person() || row.org_require_totp == 1
}

/// The steps a session of this user must complete first, in order: the password, TOTP, then
/// the operating policy (when the deployment has one and the user has not accepted its
/// current version).
fn pending_steps(
    role: Role,
    row: &UserRow,
    policy: Option<&OperatingPolicyText>,
) -> Vec<PendingStep> {
    let mut pending = Vec::new();
    if row.must_change_password == 1 {
        pending.push(PendingStep::ChangePassword);
    }
    if totp_required(role, row) && row.totp_enabled == 0 {
        pending.push(PendingStep::EnrolTotp);
    }
    if policy.is_some_and(|policy| row.accepted_policy_version.as_deref() != Some(&policy.version))
    {
        pending.push(PendingStep::AcceptPolicy);
    }
    pending
}

fn parse_id<T: std::str::FromStr>(value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| AppError::Store(crate::store::Error::Corrupt("id".into())))
}

/// Associated data that binds a sealed TOTP seed to its user.
fn totp_seal_context(user: UserId) -> Vec<u8> {
    format!("tsunagu/totp-seed/v1/{user}").into_bytes()
}

/// The authentication service.
#[derive(Debug, Clone)]
pub struct AuthService {
    store: Store,
    keys: ServerKeys,
    tokens: TokenKeys,
    settings: AuthSettings,
    decoy_hash: String,
}

impl AuthService {
    /// A service over `store` with `keys`.
    ///
    /// # Errors
    /// The token-signing key is unusable.
    pub fn new(store: Store, keys: ServerKeys, settings: AuthSettings) -> Result<Self> {
        let tokens = TokenKeys::new(
            keys.token_signing_seed(),
            &settings.issuer,
            settings.access_token_seconds,
        )
        .map_err(|_| AppError::Internal("token signing key"))?;
        Ok(Self {
            store,
            keys,
            tokens,
            settings,
            decoy_hash: password::decoy_hash(),
        })
    }

    /// The server keys (for digests of codes elsewhere).
    pub fn keys(&self) -> &ServerKeys {
        &self.keys
    }

    // ---- login ---------------------------------------------------------------------------

    /// Password, then TOTP or a recovery code. Fails the same way for an unknown login name as
    /// for a wrong password, and takes the same time.
    ///
    /// # Errors
    /// `authentication_failed`, `totp_required`, `totp_invalid`, `account_locked`.
    pub async fn login(&self, request: LoginRequest, origin: &Origin) -> Result<TokenResponse> {
        let username = request.username.trim().to_lowercase();
        let login_key = self
            .keys
            .digester()
            .digest("login-name", username.as_bytes());
        let now = now_micros();
        let unknown_actor = Actor::default();

        if let Some(throttle) = self.store.login_throttle(&login_key).await?
            && throttle.locked_until > now
        {
            crate::metrics::get().auth_failure("locked");
            Event::new(Action::Login, Outcome::Refused, &unknown_actor, origin)
                .reason("locked")
                .record(&self.store)
                .await?;
            return Err(AppError::AccountLocked {
                retry_after_seconds: retry_after(throttle.locked_until, now),
            });
        }

        let user = self.store.user_by_username(&username).await?;
        let stored_hash = user
            .as_ref()
            .map_or_else(|| self.decoy_hash.clone(), |u| u.password_hash.clone());
        let password_ok = password::verify(Zeroizing::new(request.password.clone()), stored_hash)
            .await
            .map_err(|_| AppError::Internal("password hashing"))?;

        let user = match user {
            Some(user) if password_ok && user.status == "active" => user,
            other => {
                let reason = match other {
                    None => "unknown_user",
                    Some(ref u) if u.status != "active" && password_ok => "account_disabled",
                    Some(_) => "bad_password",
                };
                let actor = other
                    .as_ref()
                    .map(actor_of_row)
                    .transpose()?
                    .unwrap_or_default();
                self.fail_login(&login_key, actor, origin, reason).await?;
                return Err(AppError::AuthenticationFailed);
            }
        };
        let role = stored_role(&user)?;
        let user_id: UserId = parse_id(&user.user_id)?;
        let actor = actor_of_row(&user)?;

        let mut tx = self.store.begin().await?;
        let factors = if user.totp_enabled == 1 {
            match (&request.totp_code, &request.recovery_code) {
                (Some(code), _) => {
                    let seed = self.open_totp_seed(user_id, user.totp_secret_sealed.as_deref())?;
                    let last = u64::try_from(user.totp_last_step).unwrap_or(0);
                    let step = totp::verify(&seed, code, now_seconds(), last)
                        .map_err(|_| AppError::Internal("stored TOTP seed"))?;
                    let accepted = match step {
                        Some(step) => tx.advance_totp_step(user_id, step as i64).await?,
                        None => false,
                    };
                    if !accepted {
                        drop(tx);
                        self.fail_login(&login_key, actor, origin, "bad_totp")
                            .await?;
                        return Err(AppError::TotpInvalid);
                    }
                    "password+totp"
                }
                (None, Some(code)) => {
                    let digest = self.recovery_digest(user_id, code);
                    if !tx.use_recovery_code(user_id, &digest, now).await? {
                        drop(tx);
                        self.fail_login(&login_key, actor, origin, "bad_recovery_code")
                            .await?;
                        return Err(AppError::TotpInvalid);
                    }
                    "password+recovery_code"
                }
                (None, None) => {
                    drop(tx);
                    crate::metrics::get().auth_failure("second_factor_missing");
                    Event::new(Action::Login, Outcome::Failure, &actor, origin)
                        .reason("second_factor_missing")
                        .record(&self.store)
                        .await?;
                    return Err(AppError::TotpRequired);
                }
            }
        } else {
            "password"
        };

        tx.clear_login_throttle(&login_key).await?;
        let pending = self.pending_steps(role, &user);
        let response = self
            .open_session(&mut tx, user_id, pending, origin, now)
            .await?;
        let actor = Actor {
            session_id: Some(response.session_id),
            ..actor
        };
        Event::new(Action::Login, Outcome::Success, &actor, origin)
            .reason(format!("factors={factors}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(response)
    }

    /// Counts a failure against the login name, locks it if needed, and records it.
    async fn fail_login(
        &self,
        login_key: &[u8],
        actor: Actor,
        origin: &Origin,
        reason: &'static str,
    ) -> Result<()> {
        crate::metrics::get().auth_failure(reason);
        let now = now_micros();
        let mut tx = self.store.begin().await?;
        let threshold = i64::from(self.settings.lockout_threshold);
        let failures = tx.record_login_failure(login_key, now, threshold).await?;
        let wait = self.backoff_seconds(failures);
        if wait > 0 {
            tx.lock_login(login_key, now + seconds(wait)).await?;
        }
        let reason = if failures >= i64::from(self.settings.lockout_threshold) {
            format!("{reason};locked")
        } else {
            reason.to_owned()
        };
        Event::new(Action::Login, Outcome::Failure, &actor, origin)
            .reason(reason)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Seconds to refuse further attempts after `failures` consecutive failures: none after
    /// the first, then 1, 2, 4 … seconds, and the full lockout at the threshold.
    fn backoff_seconds(&self, failures: i64) -> u64 {
        if failures >= i64::from(self.settings.lockout_threshold) {
            self.settings.lockout_seconds
        } else if failures >= 2 {
            (1u64 << (failures - 2).min(6)).min(60)
        } else {
            0
        }
    }

    fn open_totp_seed(&self, user: UserId, sealed: Option<&[u8]>) -> Result<Zeroizing<Vec<u8>>> {
        let sealed = sealed.ok_or(AppError::Internal("TOTP enabled without a seed"))?;
        self.keys
            .sealer()
            .open(sealed, &totp_seal_context(user))
            .map_err(|_| AppError::Internal("TOTP seed failed its integrity check"))
    }

    fn recovery_digest(&self, user: UserId, code: &str) -> Vec<u8> {
        let value = format!("{user}/{}", normalise_code(code));
        self.keys
            .digester()
            .digest("recovery-code", value.as_bytes())
    }

    /// Opens a session in `tx` and issues its first tokens.
    pub(crate) async fn open_session(
        &self,
        tx: &mut StoreTx,
        user: UserId,
        pending: Vec<PendingStep>,
        origin: &Origin,
        now: i64,
    ) -> Result<TokenResponse> {
        let session_id = SessionId::generate();
        let refresh_token = random_token();
        let refresh_digest = self
            .keys
            .digester()
            .digest("refresh-token", refresh_token.as_bytes());
        let row = SessionRow {
            session_id: session_id.to_string(),
            user_id: user.to_string(),
            created_at: now,
            last_seen_at: now,
            idle_timeout_s: self.settings.session_idle_seconds as i64,
            expires_at: now + seconds(self.settings.session_seconds),
            user_agent: origin.user_agent.clone(),
            source_address: origin.source_address.clone(),
        };
        tx.insert_session(&row, &refresh_digest).await?;
        self.token_response(user, session_id, refresh_token, pending)
    }

    fn token_response(
        &self,
        user: UserId,
        session_id: SessionId,
        refresh_token: Zeroizing<String>,
        pending: Vec<PendingStep>,
    ) -> Result<TokenResponse> {
        let access_token = self
            .tokens
            .issue(user, session_id, now_seconds())
            .map_err(|_| AppError::Internal("signing"))?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: self.tokens.lifetime_seconds(),
            refresh_token: refresh_token.to_string(),
            session_id,
            pending,
        })
    }

    // ---- refresh -------------------------------------------------------------------------

    /// Exchanges a refresh token for a new pair. A token presented a second time ends its
    /// session: either it was stolen or the legitimate client lost track, and both call for a
    /// fresh login.
    ///
    /// # Errors
    /// `token_invalid` for an unknown token, `session_expired` for a reused token or an ended
    /// session.
    pub async fn refresh(&self, request: RefreshRequest, origin: &Origin) -> Result<TokenResponse> {
        let digest = self
            .keys
            .digester()
            .digest("refresh-token", request.refresh_token.as_bytes());
        let now = now_micros();
        let mut tx = self.store.begin().await?;
        match tx.consume_refresh_token(&digest, now).await? {
            RefreshTokenUse::Unknown => {
                crate::metrics::get().auth_failure("unknown_refresh_token");
                Event::new(Action::Refresh, Outcome::Failure, &Actor::default(), origin)
                    .reason("unknown_refresh_token")
                    .append(&mut tx)
                    .await?;
                tx.commit().await?;
                Err(AppError::TokenInvalid)
            }
            RefreshTokenUse::Reused(session_id) => {
                crate::metrics::get().auth_failure("refresh_token_reuse");
                let session_id: SessionId = parse_id(&session_id)?;
                let revoked = tx
                    .revoke_session(session_id, "refresh_token_reuse", now)
                    .await?;
                let actor = match self.store.session_principal(session_id).await? {
                    Some(row) => Actor {
                        session_id: Some(session_id),
                        ..actor_of_row(&row.user)?
                    },
                    None => Actor {
                        session_id: Some(session_id),
                        ..Actor::default()
                    },
                };
                Event::new(Action::Refresh, Outcome::Failure, &actor, origin)
                    .object("session", session_id)
                    .reason(if revoked > 0 {
                        "refresh_token_reuse;session_revoked"
                    } else {
                        "refresh_token_reuse"
                    })
                    .append(&mut tx)
                    .await?;
                tx.commit().await?;
                Err(AppError::SessionExpired)
            }
            RefreshTokenUse::Fresh(session_id) => {
                let session_id: SessionId = parse_id(&session_id)?;
                let row = self
                    .store
                    .session_principal(session_id)
                    .await?
                    .ok_or(AppError::SessionExpired)?;
                let user_id: UserId = parse_id(&row.user.user_id)?;
                let actor = Actor {
                    session_id: Some(session_id),
                    ..actor_of_row(&row.user)?
                };
                if let Err(reason) = self.check_session_live(&row, now) {
                    if reason == "idle_timeout" {
                        tx.revoke_session(session_id, reason, now).await?;
                    }
                    Event::new(Action::Refresh, Outcome::Failure, &actor, origin)
                        .reason(reason)
                        .append(&mut tx)
                        .await?;
                    tx.commit().await?;
                    return Err(AppError::SessionExpired);
                }
                let refresh_token = random_token();
                let new_digest = self
                    .keys
                    .digester()
                    .digest("refresh-token", refresh_token.as_bytes());
                tx.insert_refresh_token(&row.session_id, &new_digest, now)
                    .await?;
                tx.touch_session(session_id, now).await?;
                Event::new(Action::Refresh, Outcome::Success, &actor, origin)
                    .append(&mut tx)
                    .await?;
                tx.commit().await?;
                let role = stored_role(&row.user)?;
                self.token_response(
                    user_id,
                    session_id,
                    refresh_token,
                    self.pending_steps(role, &row.user),
                )
            }
        }
    }

    /// Why a session is no longer usable, if it is not.
    fn check_session_live(
        &self,
        row: &SessionPrincipalRow,
        now: i64,
    ) -> std::result::Result<(), &'static str> {
        if row.revoked_at.is_some() {
            Err("session_revoked")
        } else if row.expires_at <= now {
            Err("absolute_timeout")
        } else if now - row.last_seen_at > seconds(u64::try_from(row.idle_timeout_s).unwrap_or(0)) {
            Err("idle_timeout")
        } else if row.user.status != "active" {
            Err("account_disabled")
        } else {
            Ok(())
        }
    }

    // ---- per-request authentication ------------------------------------------------------

    /// Checks a bearer token and its session.
    ///
    /// # Errors
    /// `token_invalid`, `token_expired` or `session_expired`.
    pub async fn authenticate(&self, bearer: Option<&str>, origin: Origin) -> Result<Principal> {
        let token = bearer.ok_or(AppError::TokenInvalid)?;
        let claims = self
            .tokens
            .verify(token, now_seconds())
            .map_err(|error| match error {
                TokenError::Expired => AppError::TokenExpired,
                TokenError::Invalid | TokenError::Key => AppError::TokenInvalid,
            })?;
        self.session(claims.sid, Some(claims.sub), origin, true)
            .await
    }

    /// The principal of a live session. `expected_user` guards against a token whose `sub`
    /// and `sid` disagree; `touch` notes activity for the idle timeout. An idle session found
    /// here is revoked (and the expiry audited).
    ///
    /// # Errors
    /// `session_expired`, `token_invalid`.
    pub async fn session(
        &self,
        session_id: SessionId,
        expected_user: Option<UserId>,
        origin: Origin,
        touch: bool,
    ) -> Result<Principal> {
        let row = self
            .store
            .session_principal(session_id)
            .await?
            .ok_or(AppError::SessionExpired)?;
        let user_id: UserId = parse_id(&row.user.user_id)?;
        if expected_user.is_some_and(|expected| expected != user_id) {
            return Err(AppError::TokenInvalid);
        }
        let now = now_micros();
        if let Err(reason) = self.check_session_live(&row, now) {
            if reason == "idle_timeout" {
                let actor = Actor {
                    session_id: Some(session_id),
                    ..actor_of_row(&row.user)?
                };
                let mut tx = self.store.begin().await?;
                if tx.revoke_session(session_id, reason, now).await? > 0 {
                    Event::new(Action::SessionExpire, Outcome::Success, &actor, &origin)
                        .object("session", session_id)
                        .reason(reason)
                        .append(&mut tx)
                        .await?;
                }
                tx.commit().await?;
            }
            return Err(AppError::SessionExpired);
        }
        if touch && now - row.last_seen_at > TOUCH_INTERVAL_MICROS {
            let mut tx = self.store.begin().await?;
            tx.touch_session(session_id, now).await?;
            tx.commit().await?;
        }
        let role = stored_role(&row.user)?;
        Ok(Principal {
            user_id,
            username: row.user.username.clone(),
            role,
            organisation_id: row
                .user
                .organisation_id
                .as_deref()
                .map(parse_id)
                .transpose()?,
            session_id,
            pending: self.pending_steps(role, &row.user),
            origin,
        })
    }

    /// A one-time ticket, valid for [`WS_TICKET_SECONDS`], for opening a WebSocket as the
    /// caller's session. Stored as a keyed digest.
    ///
    /// # Errors
    /// Database failures.
    pub async fn issue_ws_ticket(
        &self,
        principal: &Principal,
    ) -> Result<tsunagu_protocol::ws::WsTicket> {
        let ticket = random_token();
        let digest = self.keys.digester().digest("ws-ticket", ticket.as_bytes());
        let mut tx = self.store.begin().await?;
        // Expired tickets are useless; keep the table small.
        tx.delete_expired_ws_tickets(now_micros() - seconds(3600))
            .await?;
        tx.insert_ws_ticket(
            &digest,
            principal.session_id,
            now_micros() + seconds(WS_TICKET_SECONDS),
        )
        .await?;
        tx.commit().await?;
        Ok(tsunagu_protocol::ws::WsTicket {
            ticket: ticket.to_string(),
            expires_in: WS_TICKET_SECONDS,
        })
    }

    /// Redeems a WebSocket ticket (once) for its session's principal, which must be full.
    ///
    /// # Errors
    /// `token_invalid` for an unknown, used or expired ticket; `session_expired`; a pending
    /// step.
    pub async fn redeem_ws_ticket(&self, ticket: &str, origin: Origin) -> Result<Principal> {
        let digest = self.keys.digester().digest("ws-ticket", ticket.as_bytes());
        let mut tx = self.store.begin().await?;
        let session = tx.redeem_ws_ticket(&digest, now_micros()).await?;
        tx.commit().await?;
        let Some(session) = session else {
            crate::metrics::get().auth_failure("ws_ticket");
            return Err(AppError::TokenInvalid);
        };
        let session: SessionId = parse_id(&session)?;
        let principal = self.session(session, None, origin, false).await?;
        principal.require_full()?;
        Ok(principal)
    }

    // ---- logout, password, sessions ------------------------------------------------------

    /// Ends every session of the caller.
    ///
    /// # Errors
    /// Database failures.
    pub async fn logout(&self, principal: &Principal) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let revoked = tx
            .revoke_user_sessions(principal.user_id, "logout", now_micros())
            .await?;
        Event::by(principal, Action::Logout, Outcome::Success)
            .reason(format!("sessions_revoked={revoked}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes the caller's password, ends all their sessions and opens a new one.
    ///
    /// # Errors
    /// `authentication_failed` for a wrong current password, `weak_password`.
    pub async fn change_password(
        &self,
        principal: &Principal,
        request: ChangePasswordRequest,
    ) -> Result<TokenResponse> {
        let user = self
            .store
            .user(principal.user_id)
            .await?
            .ok_or(AppError::SessionExpired)?;
        let ok = password::verify(
            Zeroizing::new(request.current_password.clone()),
            user.password_hash.clone(),
        )
        .await
        .map_err(|_| AppError::Internal("password hashing"))?;
        if !ok {
            crate::metrics::get().auth_failure("bad_current_password");
            Event::by(principal, Action::PasswordChange, Outcome::Failure)
                .reason("bad_current_password")
                .record(&self.store)
                .await?;
            return Err(AppError::AuthenticationFailed);
        }
        if request.new_password == request.current_password {
            return Err(AppError::WeakPassword(crate::error::field_error(
                "new_password",
                "unchanged",
                "現在と異なるパスワードにしてください。",
                "Choose a password different from the current one.",
            )));
        }
        password::check_policy(
            &request.new_password,
            &[&user.username, &user.display_name],
            "new_password",
            totp_required(principal.role, &user),
        )
        .map_err(AppError::WeakPassword)?;
        let hash = password::hash(Zeroizing::new(request.new_password.clone()))
            .await
            .map_err(|_| AppError::Internal("password hashing"))?;
        let now = now_micros();
        let mut tx = self.store.begin().await?;
        tx.set_password(principal.user_id, &hash, false, now)
            .await?;
        let revoked = tx
            .revoke_user_sessions(principal.user_id, "password_change", now)
            .await?;
        let mut changed = user.clone();
        changed.must_change_password = 0;
        let response = self
            .open_session(
                &mut tx,
                principal.user_id,
                self.pending_steps(principal.role, &changed),
                &principal.origin,
                now,
            )
            .await?;
        Event::by(principal, Action::PasswordChange, Outcome::Success)
            .reason(format!("sessions_revoked={revoked}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(response)
    }

    /// The caller's live sessions (audited, `auth.session_list` with `count=N`, before they
    /// are returned).
    ///
    /// # Errors
    /// Database failures.
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionInfo>> {
        let sessions = self
            .user_sessions(principal.user_id, Some(principal.session_id))
            .await?;
        Event::by(principal, Action::OwnSessionList, Outcome::Success)
            .object("user", principal.user_id)
            .reason(format!("count={}", sessions.len()))
            .record(&self.store)
            .await?;
        Ok(sessions)
    }

    /// A user's live sessions; `current` marks the caller's.
    ///
    /// # Errors
    /// Database failures.
    pub async fn user_sessions(
        &self,
        user: UserId,
        current: Option<SessionId>,
    ) -> Result<Vec<SessionInfo>> {
        let rows = self.store.live_sessions(user, now_micros()).await?;
        rows.into_iter()
            .map(|row| {
                let id: SessionId = parse_id(&row.session_id)?;
                Ok(SessionInfo {
                    id,
                    created_at: from_micros(row.created_at),
                    last_seen_at: from_micros(row.last_seen_at),
                    expires_at: from_micros(row.expires_at),
                    user_agent: row.user_agent,
                    source_address: row.source_address,
                    current: Some(id) == current,
                })
            })
            .collect()
    }

    /// Ends one of the caller's own sessions.
    ///
    /// # Errors
    /// `not_found` if it is not the caller's live session.
    pub async fn revoke_own_session(
        &self,
        principal: &Principal,
        session: SessionId,
    ) -> Result<()> {
        let row = self.store.session_principal(session).await?;
        let owned = row.is_some_and(|row| {
            row.user.user_id == principal.user_id.to_string() && row.revoked_at.is_none()
        });
        if !owned {
            return Err(AppError::NotFound);
        }
        let mut tx = self.store.begin().await?;
        tx.revoke_session(session, "revoked_by_user", now_micros())
            .await?;
        Event::by(principal, Action::SessionRevoke, Outcome::Success)
            .object("session", session)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- TOTP enrolment ------------------------------------------------------------------

    /// Starts TOTP enrolment with a new seed (replacing an unconfirmed one).
    ///
    /// # Errors
    /// `conflict` if TOTP is already active (an administrator must reset it first).
    pub async fn start_totp_enrolment(&self, principal: &Principal) -> Result<TotpEnrolment> {
        let seed = totp::new_seed();
        let sealed = self
            .keys
            .sealer()
            .seal(&seed, &totp_seal_context(principal.user_id))
            .map_err(|_| AppError::Internal("sealing"))?;
        let mut tx = self.store.begin().await?;
        if tx
            .set_pending_totp(principal.user_id, &sealed, now_micros())
            .await?
            == 0
        {
            return Err(AppError::Conflict(vec![crate::error::field_error(
                "totp",
                "already_enabled",
                "二要素認証は設定済みです。再設定は管理者に依頼してください。",
                "Two-factor authentication is already set up; ask an administrator to reset it.",
            )]));
        }
        Event::by(principal, Action::TotpEnrol, Outcome::Success)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        let (secret_base32, otpauth_uri) = totp::enrolment(&seed, &principal.username)
            .map_err(|_| AppError::Internal("TOTP seed"))?;
        let qr_svg = totp::qr_svg(&otpauth_uri).map_err(|_| AppError::Internal("TOTP QR code"))?;
        Ok(TotpEnrolment {
            secret_base32: secret_base32.to_string(),
            otpauth_uri: otpauth_uri.to_string(),
            qr_svg,
            digits: totp::DIGITS as u32,
            period_seconds: totp::STEP_SECONDS,
        })
    }

    /// A keyed digest (`purpose`) of `value`, base64url: tokens any node can recompute.
    fn keyed_token(&self, purpose: &str, value: &str) -> String {
        use base64::Engine as _;
        let digest = self.keys.digester().digest(purpose, value.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    }

    /// The CSRF token of a browser session: a keyed digest of its id, so that any node can
    /// check it and it dies with the session.
    pub fn csrf_token(&self, session: SessionId) -> String {
        self.keyed_token("csrf-token", &session.to_string())
    }

    /// The key that seals a user's offline outbox in the web client: a keyed digest of the
    /// user id (purpose `outbox-key`), the same for each of the user's sessions.
    pub fn outbox_key(&self, user: UserId) -> String {
        self.keyed_token("outbox-key", &user.to_string())
    }

    /// Whether `presented` is the CSRF token of `session` (constant time).
    pub fn csrf_matches(&self, session: SessionId, presented: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        let expected = self.csrf_token(session);
        expected.len() == presented.len()
            && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// The operating policy users must accept, if the deployment has one.
    pub fn policy(&self) -> Option<&OperatingPolicyText> {
        self.settings.policy.as_ref()
    }

    /// The pending steps of a session of this user under this server's settings.
    pub(crate) fn pending_steps(&self, role: Role, row: &UserRow) -> Vec<PendingStep> {
        pending_steps(role, row, self.policy())
    }

    /// Records that the caller accepted `version` of the operating policy (audited in the same
    /// transaction). Only once the password and TOTP steps are done.
    ///
    /// # Errors
    /// `not_found` without a policy; `conflict` when `version` is not the current one (the
    /// policy changed since it was read); the earlier pending step.
    pub async fn accept_policy(&self, principal: &Principal, version: &str) -> Result<()> {
        let policy = self.policy().ok_or(AppError::NotFound)?;
        if let Some(step) = principal
            .pending
            .iter()
            .find(|step| **step != PendingStep::AcceptPolicy)
        {
            return Err(AppError::Pending(*step));
        }
        if version != policy.version {
            return Err(AppError::Conflict(vec![crate::error::field_error(
                "version",
                "policy_changed",
                "運用ポリシーが更新されました。最新の内容を確認してください。",
                "The operating policy has changed; read the current version.",
            )]));
        }
        let mut tx = self.store.begin().await?;
        tx.accept_policy(principal.user_id, version, now_micros())
            .await?;
        Event::by(principal, Action::PolicyAccept, Outcome::Success)
            .reason(format!("version={version}"))
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Confirms enrolment with a first code and issues recovery codes.
    ///
    /// # Errors
    /// `totp_invalid` for a wrong code, `conflict` if no enrolment is pending.
    pub async fn confirm_totp(&self, principal: &Principal, code: &str) -> Result<RecoveryCodes> {
        let user = self
            .store
            .user(principal.user_id)
            .await?
            .ok_or(AppError::SessionExpired)?;
        let Some(pending) = user
            .totp_pending_sealed
            .as_deref()
            .filter(|_| user.totp_enabled == 0)
        else {
            return Err(AppError::Conflict(vec![crate::error::field_error(
                "totp",
                "no_enrolment",
                "先に二要素認証の設定を開始してください。",
                "Start two-factor enrolment first.",
            )]));
        };
        let seed = self
            .keys
            .sealer()
            .open(pending, &totp_seal_context(principal.user_id))
            .map_err(|_| AppError::Internal("TOTP seed failed its integrity check"))?;
        let last = u64::try_from(user.totp_last_step).unwrap_or(0);
        let step = totp::verify(&seed, code, now_seconds(), last)
            .map_err(|_| AppError::Internal("TOTP seed"))?;
        let Some(step) = step else {
            crate::metrics::get().auth_failure("bad_totp_enrolment");
            Event::by(principal, Action::TotpConfirm, Outcome::Failure)
                .reason("bad_totp")
                .record(&self.store)
                .await?;
            return Err(AppError::TotpInvalid);
        };
        let codes: Vec<Zeroizing<String>> = (0..RECOVERY_CODES)
            .map(|_| random_code(RECOVERY_CODE_CHARS))
            .collect();
        let digests: Vec<Vec<u8>> = codes
            .iter()
            .map(|code| self.recovery_digest(principal.user_id, code))
            .collect();
        let mut tx = self.store.begin().await?;
        if tx
            .enable_totp(principal.user_id, step as i64, &digests, now_micros())
            .await?
            == 0
        {
            return Err(AppError::Conflict(Vec::new()));
        }
        Event::by(principal, Action::TotpConfirm, Outcome::Success)
            .append(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(RecoveryCodes {
            recovery_codes: codes.iter().map(|code| code.to_string()).collect(),
        })
    }
}

fn retry_after(locked_until: i64, now: i64) -> u64 {
    u64::try_from((locked_until - now + 999_999) / 1_000_000)
        .unwrap_or(1)
        .max(1)
}

/// The audit actor for a stored user (no session yet).
pub(crate) fn actor_of_row(row: &UserRow) -> Result<Actor> {
    Ok(Actor {
        user_id: Some(parse_id(&row.user_id)?),
        role: Some(stored_role(row)?.as_str()),
        organisation_id: row.organisation_id.as_deref().map(parse_id).transpose()?,
        session_id: None,
    })
}
