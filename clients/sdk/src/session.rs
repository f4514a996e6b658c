//! A logged-in session: the current token pair, the automatic refresh on an expired access
//! token, and one typed method per authenticated endpoint (own account, administration,
//! patient rooms, the directory and the room timeline).

use std::sync::{Arc, Mutex, PoisonError};

use reqwest::Method;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use tsunagu_protocol::auth::{
    ChangePasswordRequest, ConfirmTotpRequest, Me, PendingStep, RecoveryCodes, SessionInfo,
    TokenResponse, TotpEnrolment,
};
use tsunagu_protocol::identity::{
    ChangeRoleRequest, CreateInvitationRequest, CreateOrganisationRequest, Invitation,
    InvitationCreated, Organisation, PasswordReset, RoleGrant, UpdateOrganisationRequest, User,
};
use tsunagu_protocol::rooms::{
    Consent, CreateRoomRequest, DirectoryEntry, InviteMemberRequest, Member, RecordConsentRequest,
    RespondToInvitationRequest, Room, RoomSummary, WithdrawConsentRequest,
};
use tsunagu_protocol::timeline::{
    Acknowledgement, DeleteEntryRequest, EditEntryRequest, EntryVersion, MarkReadRequest,
    PostEntryRequest, PostedEntry, TimelineEvent, TimelinePage,
};
use tsunagu_protocol::ws::WsTicket;
use tsunagu_protocol::{
    ConsentId, EntryId, ErrorCode, InvitationId, OrganisationId, RoomId, SessionId, UserId, routes,
};

use crate::client::{Client, encode, path, path2};
use crate::error::ClientError;

/// The most events one timeline page may hold: the server refuses a larger `limit`.
pub const MAX_TIMELINE_PAGE: u32 = 500;

/// The credentials of a session: what a caller needs to keep to resume it later.
///
/// `Debug` never shows the tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque, single-use refresh token.
    pub refresh_token: String,
    /// The session these tokens belong to.
    pub session_id: SessionId,
    /// The steps the session must complete, as of the last token response (this client removes
    /// `enrol_totp` itself once TOTP is confirmed).
    #[serde(default)]
    pub pending: Vec<PendingStep>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("session_id", &self.session_id)
            .field("pending", &self.pending)
            .finish()
    }
}

impl From<&TokenResponse> for Tokens {
    fn from(response: &TokenResponse) -> Self {
        Self {
            access_token: response.access_token.clone(),
            refresh_token: response.refresh_token.clone(),
            session_id: response.session_id,
            pending: response.pending.clone(),
        }
    }
}

impl From<TokenResponse> for Tokens {
    fn from(response: TokenResponse) -> Self {
        Self {
            access_token: response.access_token,
            refresh_token: response.refresh_token,
            session_id: response.session_id,
            pending: response.pending,
        }
    }
}

/// A logged-in client. Cheap to clone; clones share the tokens, so a refresh made through one
/// is seen by all.
///
/// Every request carries the current access token. If the server answers `token_expired`, the
/// session exchanges its refresh token for a new pair and retries the request once. Concurrent
/// requests that hit the expiry together refresh only once (a second use of the same refresh
/// token would end the session). Callers that persist tokens should save [`Session::tokens`]
/// after their calls, whether they succeeded or not.
#[derive(Debug, Clone)]
pub struct Session {
    client: Client,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    tokens: Mutex<Tokens>,
    /// Held while refreshing, so that only one refresh is in flight.
    refresh_gate: tokio::sync::Mutex<()>,
}

impl Session {
    /// A session using `tokens` on `client`'s server. Same as [`Client::authed`].
    pub fn new(client: Client, tokens: Tokens) -> Self {
        Self {
            client,
            state: Arc::new(State {
                tokens: Mutex::new(tokens),
                refresh_gate: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The client this session uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The current tokens (after any automatic refresh or password change).
    pub fn tokens(&self) -> Tokens {
        self.state
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The current session id (it changes when the password is changed).
    pub fn session_id(&self) -> SessionId {
        self.state
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .session_id
    }

    /// The steps this session must complete, as far as this client knows.
    pub fn pending(&self) -> Vec<PendingStep> {
        self.state
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pending
            .clone()
    }

    pub(crate) fn access_token(&self) -> String {
        self.state
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .access_token
            .clone()
    }

    fn set_tokens(&self, tokens: Tokens) {
        *self
            .state
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = tokens;
    }

    /// `POST /api/auth/refresh` now, replacing the session's tokens with the new pair.
    pub async fn refresh(&self) -> Result<TokenResponse, ClientError> {
        let _gate = self.state.refresh_gate.lock().await;
        let refresh_token = self.tokens().refresh_token;
        let response = self.client.refresh(&refresh_token).await?;
        self.set_tokens(Tokens::from(&response));
        Ok(response)
    }

    /// Refreshes after a request made with `stale_access_token` was refused as expired, unless
    /// another request has refreshed in the meantime.
    pub(crate) async fn refresh_after_expiry(
        &self,
        stale_access_token: &str,
    ) -> Result<(), ClientError> {
        let _gate = self.state.refresh_gate.lock().await;
        let current = self.tokens();
        if current.access_token != stale_access_token {
            return Ok(());
        }
        let response = self.client.refresh(&current.refresh_token).await?;
        self.set_tokens(Tokens::from(response));
        Ok(())
    }

    /// [`Session::call_with_query`] without query parameters: what almost every call uses.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        self.call_with_query(method, path, &[], body).await
    }

    /// The one request path of every authenticated call: sends with the current access token,
    /// and on `token_expired` refreshes once and retries once. `query` pairs are form-encoded
    /// into the URL.
    pub(crate) async fn call_with_query<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let access_token = self.access_token();
        match self
            .client
            .request(
                method.clone(),
                path,
                query,
                body.as_deref(),
                Some(&access_token),
            )
            .await
        {
            Err(err) if err.is(ErrorCode::TokenExpired) => {
                self.refresh_after_expiry(&access_token).await?;
                let access_token = self.access_token();
                self.client
                    .request(method, path, query, body.as_deref(), Some(&access_token))
                    .await
            }
            result => result,
        }
    }

    /// [`Session::call_with_query`] for an answer that is not JSON: its body as sent.
    pub(crate) async fn call_bytes(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<u8>, ClientError> {
        let access_token = self.access_token();
        match self
            .client
            .request_bytes(Method::GET, path, query, Some(&access_token))
            .await
        {
            Err(err) if err.is(ErrorCode::TokenExpired) => {
                self.refresh_after_expiry(&access_token).await?;
                let access_token = self.access_token();
                self.client
                    .request_bytes(Method::GET, path, query, Some(&access_token))
                    .await
            }
            result => result,
        }
    }

    /// [`Session::call`] for an answer without a body (204).
    async fn call_empty(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(), ClientError> {
        self.call::<IgnoredAny>(method, path, body).await.map(drop)
    }

    // ----- Own account and sessions -----

    /// `GET /api/auth/me`: who this session belongs to, and its pending steps.
    pub async fn me(&self) -> Result<Me, ClientError> {
        self.call(Method::GET, routes::ME, None).await
    }

    /// `GET /api/policy`: the deployment's operating policy (運用ポリシー) and the version this
    /// user accepted; `not_found` when the deployment has none.
    pub async fn policy(&self) -> Result<tsunagu_protocol::auth::OperatingPolicy, ClientError> {
        self.call(Method::GET, routes::POLICY, None).await
    }

    /// `POST /api/policy/accept`: accepts `version` of the operating policy (the one read).
    pub async fn accept_policy(&self, version: &str) -> Result<(), ClientError> {
        let request = tsunagu_protocol::auth::AcceptPolicyRequest {
            version: version.to_owned(),
        };
        self.call_empty(Method::POST, routes::POLICY_ACCEPT, Some(encode(&request)?))
            .await
    }

    /// `POST /api/auth/logout`: ends every session of the user, this one included.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.call_empty(Method::POST, routes::LOGOUT, None).await
    }

    /// `POST /api/auth/password`: changes the password. Every session of the user is revoked;
    /// this session switches to the fresh one in the answer (which is also returned).
    pub async fn change_password(
        &self,
        current_password: &str,
        new_password: &str,
    ) -> Result<TokenResponse, ClientError> {
        let request = ChangePasswordRequest {
            current_password: current_password.to_owned(),
            new_password: new_password.to_owned(),
        };
        let response: TokenResponse = self
            .call(Method::POST, routes::PASSWORD, Some(encode(&request)?))
            .await?;
        self.set_tokens(Tokens::from(&response));
        Ok(response)
    }

    /// `POST /api/auth/totp/enrol`: a new TOTP secret, inactive until confirmed.
    pub async fn enrol_totp(&self) -> Result<TotpEnrolment, ClientError> {
        self.call(Method::POST, routes::TOTP_ENROL, None).await
    }

    /// `POST /api/auth/totp/confirm`: activates TOTP with a current code from the
    /// authenticator; the answer holds the recovery codes, shown once.
    pub async fn confirm_totp(&self, code: &str) -> Result<RecoveryCodes, ClientError> {
        let request = ConfirmTotpRequest {
            code: code.to_owned(),
        };
        let codes = self
            .call(Method::POST, routes::TOTP_CONFIRM, Some(encode(&request)?))
            .await?;
        self.state
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pending
            .retain(|step| *step != PendingStep::EnrolTotp);
        Ok(codes)
    }

    /// `GET /api/auth/sessions`: the user's own sessions (`current` marks this one).
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, ClientError> {
        self.call(Method::GET, routes::SESSIONS, None).await
    }

    /// `DELETE /api/auth/sessions/{id}`: ends one of the user's own sessions.
    pub async fn revoke_session(&self, session: SessionId) -> Result<(), ClientError> {
        self.call_empty(Method::DELETE, &path(routes::SESSION, session), None)
            .await
    }

    // ----- Organisations and invitations (administrators) -----

    /// `GET /api/admin/organisations`.
    pub async fn organisations(&self) -> Result<Vec<Organisation>, ClientError> {
        self.call(Method::GET, routes::ORGANISATIONS, None).await
    }

    /// `POST /api/admin/organisations` (system admin).
    pub async fn create_organisation(
        &self,
        request: &CreateOrganisationRequest,
    ) -> Result<Organisation, ClientError> {
        self.call(Method::POST, routes::ORGANISATIONS, Some(encode(request)?))
            .await
    }

    /// `GET /api/admin/organisations/{id}`.
    pub async fn organisation(&self, id: OrganisationId) -> Result<Organisation, ClientError> {
        self.call(Method::GET, &path(routes::ORGANISATION, id), None)
            .await
    }

    /// `PATCH /api/admin/organisations/{id}`: changes the name or the TOTP policy.
    pub async fn update_organisation(
        &self,
        id: OrganisationId,
        request: &UpdateOrganisationRequest,
    ) -> Result<Organisation, ClientError> {
        self.call(
            Method::PATCH,
            &path(routes::ORGANISATION, id),
            Some(encode(request)?),
        )
        .await
    }

    /// `POST /api/admin/organisations/{id}/invitations`: the answer holds the one-time code.
    pub async fn create_invitation(
        &self,
        organisation: OrganisationId,
        request: &CreateInvitationRequest,
    ) -> Result<InvitationCreated, ClientError> {
        let path = path(routes::ORGANISATION_INVITATIONS, organisation);
        self.call(Method::POST, &path, Some(encode(request)?)).await
    }

    /// `GET /api/admin/organisations/{id}/invitations`.
    pub async fn invitations(
        &self,
        organisation: OrganisationId,
    ) -> Result<Vec<Invitation>, ClientError> {
        self.call(
            Method::GET,
            &path(routes::ORGANISATION_INVITATIONS, organisation),
            None,
        )
        .await
    }

    /// `DELETE /api/admin/invitations/{id}`: revokes a pending invitation.
    pub async fn revoke_invitation(&self, id: InvitationId) -> Result<(), ClientError> {
        self.call_empty(Method::DELETE, &path(routes::INVITATION, id), None)
            .await
    }

    // ----- Users (administrators) -----

    /// `GET /api/admin/organisations/{id}/users`.
    pub async fn organisation_users(
        &self,
        organisation: OrganisationId,
    ) -> Result<Vec<User>, ClientError> {
        self.call(
            Method::GET,
            &path(routes::ORGANISATION_USERS, organisation),
            None,
        )
        .await
    }

    /// `GET /api/admin/users/{id}`.
    pub async fn user(&self, id: UserId) -> Result<User, ClientError> {
        self.call(Method::GET, &path(routes::USER, id), None).await
    }

    /// `PUT /api/admin/users/{id}/role`: changes the role; the grant is recorded with the reason.
    pub async fn change_role(
        &self,
        id: UserId,
        request: &ChangeRoleRequest,
    ) -> Result<User, ClientError> {
        self.call(
            Method::PUT,
            &path(routes::USER_ROLE, id),
            Some(encode(request)?),
        )
        .await
    }

    /// `GET /api/admin/users/{id}/role-grants`: the user's role history.
    pub async fn role_grants(&self, id: UserId) -> Result<Vec<RoleGrant>, ClientError> {
        self.call(Method::GET, &path(routes::USER_ROLE_GRANTS, id), None)
            .await
    }

    /// `POST /api/admin/users/{id}/disable`: the account can no longer log in.
    pub async fn disable_user(&self, id: UserId) -> Result<User, ClientError> {
        self.call(Method::POST, &path(routes::USER_DISABLE, id), None)
            .await
    }

    /// `POST /api/admin/users/{id}/enable`.
    pub async fn enable_user(&self, id: UserId) -> Result<User, ClientError> {
        self.call(Method::POST, &path(routes::USER_ENABLE, id), None)
            .await
    }

    /// `POST /api/admin/users/{id}/reset-password`: a one-time password, to be changed at the
    /// next login.
    pub async fn reset_password(&self, id: UserId) -> Result<PasswordReset, ClientError> {
        self.call(Method::POST, &path(routes::USER_RESET_PASSWORD, id), None)
            .await
    }

    /// `POST /api/admin/users/{id}/reset-totp`: removes the user's TOTP enrolment.
    pub async fn reset_totp(&self, id: UserId) -> Result<User, ClientError> {
        self.call(Method::POST, &path(routes::USER_RESET_TOTP, id), None)
            .await
    }

    /// `GET /api/admin/users/{id}/sessions`.
    pub async fn user_sessions(&self, id: UserId) -> Result<Vec<SessionInfo>, ClientError> {
        self.call(Method::GET, &path(routes::USER_SESSIONS, id), None)
            .await
    }

    /// `DELETE /api/admin/users/{id}/sessions`: ends every session of the user.
    pub async fn revoke_user_sessions(&self, id: UserId) -> Result<(), ClientError> {
        self.call_empty(Method::DELETE, &path(routes::USER_SESSIONS, id), None)
            .await
    }

    // ----- Patient rooms -----

    /// `GET /api/rooms`: the rooms the caller is invited to or has accepted, with the
    /// patient's name only.
    pub async fn rooms(&self) -> Result<Vec<RoomSummary>, ClientError> {
        self.call(Method::GET, routes::ROOMS, None).await
    }

    /// `POST /api/rooms` (professionals): opens a room for one patient; the caller becomes its
    /// first, accepted member.
    pub async fn create_room(&self, request: &CreateRoomRequest) -> Result<Room, ClientError> {
        self.call(Method::POST, routes::ROOMS, Some(encode(request)?))
            .await
    }

    /// `GET /api/rooms/{id}` (accepted members): the room with the patient's details. Every
    /// read is audited by the server.
    pub async fn room(&self, room: RoomId) -> Result<Room, ClientError> {
        self.call(Method::GET, &path(routes::ROOM, room), None)
            .await
    }

    /// `GET /api/rooms/{id}/members` (accepted members): the care team and its invitees.
    pub async fn room_members(&self, room: RoomId) -> Result<Vec<Member>, ClientError> {
        self.call(Method::GET, &path(routes::ROOM_MEMBERS, room), None)
            .await
    }

    /// `POST /api/rooms/{id}/members` (accepted professional members): invites a person, who
    /// must accept before seeing the patient's details.
    pub async fn invite_member(&self, room: RoomId, user: UserId) -> Result<Member, ClientError> {
        let request = InviteMemberRequest { user_id: user };
        self.call(
            Method::POST,
            &path(routes::ROOM_MEMBERS, room),
            Some(encode(&request)?),
        )
        .await
    }

    /// `DELETE /api/rooms/{id}/members/{user_id}` (accepted professional members): revokes a
    /// membership or a pending invitation.
    pub async fn revoke_member(&self, room: RoomId, user: UserId) -> Result<(), ClientError> {
        self.call_empty(
            Method::DELETE,
            &path2(routes::ROOM_MEMBER, room, user),
            None,
        )
        .await
    }

    /// `PUT /api/rooms/{id}/membership`: accepts (`true`) or declines (`false`) the caller's
    /// own invitation; the answer is the caller's membership afterwards.
    pub async fn respond_to_invitation(
        &self,
        room: RoomId,
        accept: bool,
    ) -> Result<Member, ClientError> {
        let request = RespondToInvitationRequest { accept };
        self.call(
            Method::PUT,
            &path(routes::ROOM_MEMBERSHIP, room),
            Some(encode(&request)?),
        )
        .await
    }

    /// `POST /api/rooms/search`: the caller's rooms whose patient has this insurer number
    /// (sent in the body, never in a URL).
    pub async fn search_rooms(
        &self,
        insurer_number: &str,
    ) -> Result<Vec<RoomSummary>, ClientError> {
        let request = tsunagu_protocol::rooms::PatientSearchRequest {
            insurer_number: insurer_number.to_owned(),
        };
        self.call(Method::POST, routes::ROOM_SEARCH, Some(encode(&request)?))
            .await
    }

    /// `POST /api/rooms/{id}/close`: care has ended; the room is kept for its retention
    /// period and takes no more posts.
    pub async fn close_room(
        &self,
        room: RoomId,
    ) -> Result<tsunagu_protocol::rooms::RoomRetention, ClientError> {
        self.call(Method::POST, &path(routes::ROOM_CLOSE, room), None)
            .await
    }

    /// `POST /api/admin/rooms/{id}/purge` (system administrators): destroys the keys of a
    /// closed room whose retention has ended.
    pub async fn purge_room(
        &self,
        room: RoomId,
    ) -> Result<tsunagu_protocol::rooms::PurgeReport, ClientError> {
        self.call(Method::POST, &path(routes::ADMIN_ROOM_PURGE, room), None)
            .await
    }

    /// `POST /api/admin/rooms/{id}/rotate-key` (system administrators): a new key version for
    /// the room's new values.
    pub async fn rotate_room_key(
        &self,
        room: RoomId,
    ) -> Result<tsunagu_protocol::rooms::RoomKeyRotation, ClientError> {
        self.call(
            Method::POST,
            &path(routes::ADMIN_ROOM_ROTATE_KEY, room),
            None,
        )
        .await
    }

    /// `DELETE /api/rooms/{id}/membership`: the caller leaves the room.
    pub async fn leave_room(&self, room: RoomId) -> Result<(), ClientError> {
        self.call_empty(Method::DELETE, &path(routes::ROOM_MEMBERSHIP, room), None)
            .await
    }

    /// `GET /api/rooms/{id}/consents`: the room's consent records, withdrawn ones included.
    pub async fn consents(&self, room: RoomId) -> Result<Vec<Consent>, ClientError> {
        self.call(Method::GET, &path(routes::ROOM_CONSENTS, room), None)
            .await
    }

    /// `POST /api/rooms/{id}/consents`: records a consent to sharing that the caller obtained.
    pub async fn record_consent(
        &self,
        room: RoomId,
        request: &RecordConsentRequest,
    ) -> Result<Consent, ClientError> {
        self.call(
            Method::POST,
            &path(routes::ROOM_CONSENTS, room),
            Some(encode(request)?),
        )
        .await
    }

    /// `POST /api/rooms/{id}/consents/{consent_id}/withdraw`: records the withdrawal of a
    /// consent, with the reason; the answer is the updated record.
    pub async fn withdraw_consent(
        &self,
        room: RoomId,
        consent: ConsentId,
        reason: &str,
    ) -> Result<Consent, ClientError> {
        let request = WithdrawConsentRequest {
            reason: reason.to_owned(),
        };
        self.call(
            Method::POST,
            &path2(routes::ROOM_CONSENT_WITHDRAW, room, consent),
            Some(encode(&request)?),
        )
        .await
    }

    /// `GET /api/directory?q=…`: people who can be invited into rooms whose display name or
    /// username matches `query` (1–100 characters; at most 20 results). The query is
    /// URL-encoded here, so any text (Japanese names, spaces, `&`) may be passed as is.
    pub async fn directory(&self, query: &str) -> Result<Vec<DirectoryEntry>, ClientError> {
        self.call_with_query(Method::GET, routes::DIRECTORY, &[("q", query)], None)
            .await
    }

    // ----- Timeline -----
    //
    // Sequence numbers are always those of the caller's own stream: care professionals see
    // every event, family members and patients only those visible to everyone, numbered apart
    // and without gaps (see `tsunagu_protocol::timeline`).

    /// `GET /api/rooms/{id}/timeline?after=SEQ&limit=N` (accepted members): at most `limit`
    /// events (1–[`MAX_TIMELINE_PAGE`]) after sequence number `after` (exclusive; 0 for the
    /// start), oldest first, with the stream's current head. Every read is audited.
    pub async fn timeline(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> Result<TimelinePage, ClientError> {
        let (after, limit) = (after.to_string(), limit.to_string());
        self.call_with_query(
            Method::GET,
            &path(routes::TIMELINE, room),
            &[("after", &after), ("limit", &limit)],
            None,
        )
        .await
    }

    /// Every event after `after` up to the stream's head, fetched in pages of
    /// [`MAX_TIMELINE_PAGE`] until a page reaches the head it reports. Events posted while
    /// paging may or may not be included; none is ever skipped or repeated.
    pub async fn timeline_all(
        &self,
        room: RoomId,
        after: u64,
    ) -> Result<Vec<TimelineEvent>, ClientError> {
        let mut events = Vec::new();
        let mut cursor = after;
        loop {
            let page = self.timeline(room, cursor, MAX_TIMELINE_PAGE).await?;
            let Some(last) = page.events.last().map(|event| event.seq) else {
                return Ok(events);
            };
            if last <= cursor {
                // A server that does not move forward would otherwise keep us here forever.
                return Err(ClientError::Decode {
                    status: 200,
                    message: format!(
                        "the timeline page after {cursor} ends at {last}: sequence numbers must \
                         increase"
                    ),
                });
            }
            cursor = last;
            events.extend(page.events);
            if cursor >= page.head {
                return Ok(events);
            }
        }
    }

    /// The newest sequence number of the caller's stream (one audited, one-event timeline
    /// read).
    pub async fn timeline_head(&self, room: RoomId) -> Result<u64, ClientError> {
        Ok(self.timeline(room, 0, 1).await?.head)
    }

    /// `POST /api/rooms/{id}/entries`: posts an entry (needs consent in force). The answer
    /// comes after the entry is durably stored. Sending the same `client_id` again (a retry
    /// after a lost answer) stores nothing new and answers the stored entry with
    /// `duplicate: true`.
    pub async fn post_entry(
        &self,
        room: RoomId,
        request: &PostEntryRequest,
    ) -> Result<PostedEntry, ClientError> {
        self.call(
            Method::POST,
            &path(routes::ENTRIES, room),
            Some(encode(request)?),
        )
        .await
    }

    /// `POST /api/rooms/{id}/entries/{entry_id}/edit` (the author): a correction, stored as a
    /// new version with its reason; the answer is the correction's timeline event.
    pub async fn edit_entry(
        &self,
        room: RoomId,
        entry: EntryId,
        request: &EditEntryRequest,
    ) -> Result<TimelineEvent, ClientError> {
        self.call(
            Method::POST,
            &path2(routes::ENTRY_EDIT, room, entry),
            Some(encode(request)?),
        )
        .await
    }

    /// `POST /api/rooms/{id}/entries/{entry_id}/delete` (the author): a tombstone with its
    /// reason (earlier versions stay readable to professionals); the answer is the deletion's
    /// timeline event.
    pub async fn delete_entry(
        &self,
        room: RoomId,
        entry: EntryId,
        reason: &str,
    ) -> Result<TimelineEvent, ClientError> {
        let request = DeleteEntryRequest {
            reason: reason.to_owned(),
        };
        self.call(
            Method::POST,
            &path2(routes::ENTRY_DELETE, room, entry),
            Some(encode(&request)?),
        )
        .await
    }

    /// `GET /api/rooms/{id}/entries/{entry_id}/versions` (care professionals): every version
    /// of an entry, oldest first, the deletion included. Audited.
    pub async fn entry_versions(
        &self,
        room: RoomId,
        entry: EntryId,
    ) -> Result<Vec<EntryVersion>, ClientError> {
        self.call(
            Method::GET,
            &path2(routes::ENTRY_VERSIONS, room, entry),
            None,
        )
        .await
    }

    /// `GET /api/rooms/{id}/entries/{entry_id}/acks`: who has acknowledged an entry (見ました),
    /// and when.
    pub async fn acknowledgements(
        &self,
        room: RoomId,
        entry: EntryId,
    ) -> Result<Vec<Acknowledgement>, ClientError> {
        self.call(Method::GET, &path2(routes::ENTRY_ACKS, room, entry), None)
            .await
    }

    /// `POST /api/rooms/{id}/entries/{entry_id}/acks`: acknowledges an entry (見ました;
    /// doing it twice is harmless); the answer is the updated list.
    pub async fn acknowledge(
        &self,
        room: RoomId,
        entry: EntryId,
    ) -> Result<Vec<Acknowledgement>, ClientError> {
        self.call(Method::POST, &path2(routes::ENTRY_ACKS, room, entry), None)
            .await
    }

    /// `POST /api/ws/ticket`: a one-time ticket (valid for 30 seconds) for opening the live
    /// WebSocket. [`Session::connect_live`] and [`crate::live::LiveClient`] fetch one
    /// themselves; like every call, an expired access token is refreshed first.
    pub async fn ws_ticket(&self) -> Result<WsTicket, ClientError> {
        self.call(Method::POST, routes::WS_TICKET, None).await
    }

    /// `PUT /api/rooms/{id}/read`: marks the caller's stream read up to `seq` (not beyond its
    /// head; an older position than the stored one changes nothing). Drives the unread counts
    /// of [`Session::rooms`].
    pub async fn mark_read(&self, room: RoomId, seq: u64) -> Result<(), ClientError> {
        self.call_empty(
            Method::PUT,
            &path(routes::ROOM_READ, room),
            Some(encode(&MarkReadRequest { seq })?),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    //! The refresh logic against a scripted in-process HTTP/1.1 server.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tsunagu_protocol::rooms::{ConsentGiver, ConsentState, MemberState};

    use super::*;

    /// One request as the fake server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        bearer: Option<String>,
        body: String,
    }

    type Handler = Arc<dyn Fn(&Seen) -> (u16, String) + Send + Sync>;

    /// Serves `handler` on a local port (one request per connection); returns the base URL
    /// and the log of requests.
    async fn serve(handler: Handler) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let handler = handler.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    let mut line = String::new();
                    reader.read_line(&mut line).await.unwrap();
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_owned();
                    let path = parts.next().unwrap_or_default().to_owned();
                    let (mut length, mut bearer) = (0, None);
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).await.unwrap();
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        let (name, value) = header.split_once(':').unwrap();
                        let value = value.trim();
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.parse().unwrap(),
                            "authorization" => {
                                bearer = value.strip_prefix("Bearer ").map(str::to_owned);
                            }
                            _ => {}
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.unwrap();
                    let request = Seen {
                        method,
                        path,
                        bearer,
                        body: String::from_utf8(body).unwrap(),
                    };
                    let (status, body) = handler(&request);
                    seen.lock().unwrap().push(request);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    reader
                        .get_mut()
                        .write_all(response.as_bytes())
                        .await
                        .unwrap();
                });
            }
        });
        (url, log)
    }

    const SESSION: &str = "0190a5b4-0000-7000-8000-000000000001";

    fn token_response(access: &str, refresh: &str) -> String {
        format!(
            r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":300,
               "refresh_token":"{refresh}","session_id":"{SESSION}","pending":[]}}"#
        )
    }

    fn error(code: ErrorCode) -> String {
        serde_json::to_string(&tsunagu_protocol::ErrorBody::new(code)).unwrap()
    }

    fn me() -> String {
        format!(
            r#"{{"user":{{"id":"0190a5b4-0000-7000-8000-000000000002","organisation_id":null,
            "username":"admin","display_name":"管理者","role":"system_admin","status":"active",
            "totp_enabled":true,"must_change_password":false,
            "created_at":"2026-01-01T00:00:00Z"}},"organisation":null,
            "session_id":"{SESSION}","pending":[],"totp_required":true}}"#
        )
    }

    fn tokens(access: &str, refresh: &str) -> Tokens {
        Tokens {
            access_token: access.to_owned(),
            refresh_token: refresh.to_owned(),
            session_id: SESSION.parse().unwrap(),
            pending: vec![PendingStep::EnrolTotp],
        }
    }

    /// Accepts access token `new`; refresh token `r1` works once and yields `new`/`r2`.
    fn rotating_server(refreshes: Arc<AtomicUsize>) -> Handler {
        Arc::new(
            move |req: &Seen| match (req.method.as_str(), req.path.as_str()) {
                ("POST", routes::REFRESH) => {
                    if refreshes.fetch_add(1, Ordering::SeqCst) == 0
                        && req.body == r#"{"refresh_token":"r1"}"#
                    {
                        (200, token_response("new", "r2"))
                    } else {
                        (401, error(ErrorCode::SessionExpired))
                    }
                }
                ("GET", routes::ME) if req.bearer.as_deref() == Some("new") => (200, me()),
                ("GET", routes::ME) => (401, error(ErrorCode::TokenExpired)),
                _ => (404, error(ErrorCode::NotFound)),
            },
        )
    }

    #[tokio::test]
    async fn refreshes_once_and_retries_on_an_expired_token() {
        let refreshes = Arc::new(AtomicUsize::new(0));
        let (url, log) = serve(rotating_server(refreshes.clone())).await;
        let session = Client::new(&url).unwrap().authed(tokens("old", "r1"));

        let me = session.me().await.unwrap();
        assert_eq!(me.user.username, "admin");
        assert_eq!(refreshes.load(Ordering::SeqCst), 1);
        let now = session.tokens();
        assert_eq!(
            (now.access_token.as_str(), now.refresh_token.as_str()),
            ("new", "r2")
        );
        assert!(
            now.pending.is_empty(),
            "pending comes from the refresh answer"
        );

        let log = log.lock().unwrap();
        let bearers: Vec<_> = log.iter().map(|s| s.bearer.clone()).collect();
        assert_eq!(
            bearers,
            [Some("old".to_owned()), None, Some("new".to_owned())]
        );
    }

    #[tokio::test]
    async fn concurrent_expiries_refresh_only_once() {
        let refreshes = Arc::new(AtomicUsize::new(0));
        let (url, _log) = serve(rotating_server(refreshes.clone())).await;
        let session = Client::new(&url).unwrap().authed(tokens("old", "r1"));

        let (a, b, c) = tokio::join!(session.me(), session.me(), session.me());
        a.unwrap();
        b.unwrap();
        c.unwrap();
        assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn retries_only_once() {
        let refreshes = Arc::new(AtomicUsize::new(0));
        let counter = refreshes.clone();
        let handler: Handler = Arc::new(move |req: &Seen| match req.path.as_str() {
            routes::REFRESH => {
                counter.fetch_add(1, Ordering::SeqCst);
                (200, token_response("new", "r2"))
            }
            _ => (401, error(ErrorCode::TokenExpired)),
        });
        let (url, log) = serve(handler).await;
        let session = Client::new(&url).unwrap().authed(tokens("old", "r1"));

        let err = session.me().await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::TokenExpired));
        assert_eq!(refreshes.load(Ordering::SeqCst), 1);
        assert_eq!(log.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_failed_refresh_is_reported_and_keeps_the_tokens() {
        let handler: Handler = Arc::new(|req: &Seen| match req.path.as_str() {
            routes::REFRESH => (401, error(ErrorCode::SessionExpired)),
            _ => (401, error(ErrorCode::TokenExpired)),
        });
        let (url, _log) = serve(handler).await;
        let session = Client::new(&url).unwrap().authed(tokens("old", "r1"));

        let err = session.logout().await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::SessionExpired));
        assert_eq!(session.tokens(), tokens("old", "r1"));
    }

    #[tokio::test]
    async fn no_content_and_paths() {
        let handler: Handler = Arc::new(|req: &Seen| match req.method.as_str() {
            "DELETE" => (204, String::new()),
            _ => (404, error(ErrorCode::NotFound)),
        });
        let (url, log) = serve(handler).await;
        let session = Client::new(&url).unwrap().authed(tokens("t", "r"));
        let user = UserId::generate();
        session.revoke_user_sessions(user).await.unwrap();
        let invitation = InvitationId::generate();
        session.revoke_invitation(invitation).await.unwrap();
        let err = session.user(user).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::NotFound));
        assert_eq!(err.status(), Some(404));

        let paths: Vec<_> = log.lock().unwrap().iter().map(|s| s.path.clone()).collect();
        assert_eq!(
            paths,
            [
                format!("/api/admin/users/{user}/sessions"),
                format!("/api/admin/invitations/{invitation}"),
                format!("/api/admin/users/{user}"),
            ]
        );
    }

    #[tokio::test]
    async fn confirming_totp_clears_the_pending_step() {
        let handler: Handler =
            Arc::new(|_: &Seen| (200, r#"{"recovery_codes":["a-b","c-d"]}"#.to_owned()));
        let (url, log) = serve(handler).await;
        let session = Client::new(&url).unwrap().authed(tokens("t", "r"));
        let codes = session.confirm_totp("123456").await.unwrap();
        assert_eq!(codes.recovery_codes.len(), 2);
        assert!(session.pending().is_empty());
        assert_eq!(log.lock().unwrap()[0].body, r#"{"code":"123456"}"#);
    }

    const ROOM: &str = "0190a5b4-0000-7000-8000-0000000000a1";
    const USER: &str = "0190a5b4-0000-7000-8000-000000000002";
    const CONSENT: &str = "0190a5b4-0000-7000-8000-0000000000c1";

    fn member(state: &str) -> String {
        format!(
            r#"{{"user_id":"{USER}","display_name":"佐藤 花子","role":"nurse",
            "organisation_id":null,"organisation_name":null,"state":"{state}",
            "invited_by":null,"invited_at":"2026-01-01T00:00:00Z","responded_at":null}}"#
        )
    }

    fn consent() -> String {
        format!(
            r#"{{"id":"{CONSENT}","room_id":"{ROOM}","given_by":"family","giver_name":"山田 花子",
            "obtained_on":"2026-11-20","scope":"情報共有","document_reference":null,
            "recorded_by":"{USER}","recorded_at":"2026-11-21T00:00:00Z",
            "withdrawn_by":"{USER}","withdrawn_at":"2026-11-22T00:00:00Z",
            "withdrawal_reason":"家族の希望"}}"#
        )
    }

    #[tokio::test]
    async fn room_calls_use_the_routes_methods_and_bodies_of_the_contract() {
        let handler: Handler = Arc::new(|req: &Seen| {
            match (
                req.method.as_str(),
                req.path.rsplit('/').next().unwrap_or(""),
            ) {
                ("DELETE", _) => (204, String::new()),
                (_, "members") => (201, member("invited")),
                (_, "membership") => (200, member("declined")),
                (_, "withdraw") => (200, consent()),
                _ => (200, "[]".to_owned()),
            }
        });
        let (url, log) = serve(handler).await;
        let session = Client::new(&url).unwrap().authed(tokens("t", "r"));
        let room: RoomId = ROOM.parse().unwrap();
        let user: UserId = USER.parse().unwrap();
        let consent: ConsentId = CONSENT.parse().unwrap();

        assert!(session.rooms().await.unwrap().is_empty());
        let invited = session.invite_member(room, user).await.unwrap();
        assert_eq!(invited.state, MemberState::Invited);
        session.revoke_member(room, user).await.unwrap();
        let declined = session.respond_to_invitation(room, false).await.unwrap();
        assert_eq!(declined.state, MemberState::Declined);
        session.leave_room(room).await.unwrap();
        assert!(session.consents(room).await.unwrap().is_empty());
        let withdrawn = session
            .withdraw_consent(room, consent, "家族の希望")
            .await
            .unwrap();
        assert_eq!(withdrawn.withdrawal_reason.as_deref(), Some("家族の希望"));

        let log = log.lock().unwrap();
        let seen: Vec<_> = log
            .iter()
            .map(|s| (s.method.as_str(), s.path.as_str(), s.body.as_str()))
            .collect();
        let members = format!("/api/rooms/{ROOM}/members");
        let member = format!("/api/rooms/{ROOM}/members/{USER}");
        let membership = format!("/api/rooms/{ROOM}/membership");
        let consents = format!("/api/rooms/{ROOM}/consents");
        let withdraw = format!("/api/rooms/{ROOM}/consents/{CONSENT}/withdraw");
        let invite_body = format!(r#"{{"user_id":"{USER}"}}"#);
        assert_eq!(
            seen,
            [
                ("GET", "/api/rooms", ""),
                ("POST", members.as_str(), invite_body.as_str()),
                ("DELETE", member.as_str(), ""),
                ("PUT", membership.as_str(), r#"{"accept":false}"#),
                ("DELETE", membership.as_str(), ""),
                ("GET", consents.as_str(), ""),
                ("POST", withdraw.as_str(), r#"{"reason":"家族の希望"}"#),
            ]
        );
    }

    #[tokio::test]
    async fn directory_queries_are_url_encoded_and_survive_a_refresh() {
        let refreshes = Arc::new(AtomicUsize::new(0));
        let counter = refreshes.clone();
        let handler: Handler = Arc::new(move |req: &Seen| match req.path.as_str() {
            routes::REFRESH => {
                counter.fetch_add(1, Ordering::SeqCst);
                (200, token_response("new", "r2"))
            }
            _ if req.bearer.as_deref() == Some("new") => (
                200,
                format!(
                    r#"[{{"user_id":"{USER}","display_name":"山田 太郎","role":"physician",
                    "organisation_id":null,"organisation_name":null}}]"#
                ),
            ),
            _ => (401, error(ErrorCode::TokenExpired)),
        });
        let (url, log) = serve(handler).await;
        let session = Client::new(&url).unwrap().authed(tokens("old", "r1"));

        let found = session.directory("山田 太郎&role=x").await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].display_name, "山田 太郎");
        assert_eq!(refreshes.load(Ordering::SeqCst), 1);

        let expected = "/api/directory?q=%E5%B1%B1%E7%94%B0+%E5%A4%AA%E9%83%8E%26role%3Dx";
        let paths: Vec<_> = log.lock().unwrap().iter().map(|s| s.path.clone()).collect();
        assert_eq!(paths, [expected, routes::REFRESH, expected]);
    }

    #[tokio::test]
    async fn creating_a_room_and_recording_a_consent_send_the_protocol_bodies() {
        // Answers a room whose patient is the one sent, and a fixed consent.
        let handler: Handler = Arc::new(|req: &Seen| {
            if req.path.ends_with("/consents") {
                return (201, consent());
            }
            let sent: serde_json::Value = serde_json::from_str(&req.body).unwrap();
            let room = serde_json::json!({
                "id": ROOM, "patient": sent["patient"], "consent": "missing",
                "created_by": USER, "created_at": "2026-11-21T00:00:00Z"
            });
            (201, room.to_string())
        });
        let (url, log) = serve(handler).await;
        let session = Client::new(&url).unwrap().authed(tokens("t", "r"));

        let patient = serde_json::json!({
            "name": "山田 太郎", "name_kana": "ヤマダ タロウ", "date_of_birth": "1938-04-01",
            "insurer_numbers": [{"kind": "long_term_care", "number": "0123456789"}]
        });
        let request: CreateRoomRequest =
            serde_json::from_value(serde_json::json!({ "patient": patient })).unwrap();
        let room = session.create_room(&request).await.unwrap();
        assert_eq!(room.patient, request.patient);
        assert_eq!(room.consent, ConsentState::Missing);

        let consent_body = serde_json::json!({"given_by": "family", "giver_name": "山田 花子",
            "obtained_on": "2026-11-20", "scope": "情報共有"});
        let consent_request: RecordConsentRequest =
            serde_json::from_value(consent_body.clone()).unwrap();
        let recorded = session
            .record_consent(room.id, &consent_request)
            .await
            .unwrap();
        assert_eq!(recorded.given_by, ConsentGiver::Family);

        let log = log.lock().unwrap();
        let bodies: Vec<serde_json::Value> = log
            .iter()
            .map(|s| serde_json::from_str(&s.body).unwrap())
            .collect();
        assert_eq!(
            (log[0].method.as_str(), log[0].path.as_str()),
            ("POST", "/api/rooms")
        );
        assert_eq!(bodies[0], serde_json::json!({ "patient": patient }));
        assert_eq!(log[1].path, format!("/api/rooms/{ROOM}/consents"));
        assert_eq!(bodies[1], consent_body);
    }

    const ENTRY: &str = "0190a5b4-0000-7000-8000-0000000000e1";
    const CLIENT_POST: &str = "0190a5b4-0000-7000-8000-0000000000f1";

    /// A post by [`USER`] with sequence number `seq`, as the server sends it.
    fn posted_event(seq: u64) -> serde_json::Value {
        serde_json::json!({
            "seq": seq, "entry_id": ENTRY, "visibility": "care_team",
            "author": {"user_id": USER, "display_name": "佐藤 花子", "role": "nurse",
                       "organisation_id": null, "organisation_name": null},
            "created_at": "2026-11-21T00:00:00Z",
            "type": "posted", "kind": "text", "text": format!("投稿 {seq}")
        })
    }

    /// The value of query parameter `name` in a request target.
    fn query_param(target: &str, name: &str) -> Option<u64> {
        let (_, query) = target.split_once('?')?;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
    }

    /// Serves a timeline of `head` events (answering `after` and `limit` like the server).
    fn timeline_server(head: u64) -> Handler {
        Arc::new(move |req: &Seen| {
            let after = query_param(&req.path, "after").unwrap_or(0);
            let limit = query_param(&req.path, "limit").unwrap_or(100);
            let events: Vec<_> = (after + 1..=head)
                .take(limit as usize)
                .map(posted_event)
                .collect();
            (
                200,
                serde_json::json!({"events": events, "head": head}).to_string(),
            )
        })
    }

    #[tokio::test]
    async fn timeline_pages_by_after_and_limit() {
        let (url, log) = serve(timeline_server(3)).await;
        let session = Client::new(&url).unwrap().authed(tokens("t", "r"));
        let room: RoomId = ROOM.parse().unwrap();

        let page = session.timeline(room, 1, 1).await.unwrap();
        assert_eq!(page.head, 3);
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.events[0].seq, 2);
        assert!(matches!(
            &page.events[0].change,
            tsunagu_protocol::timeline::Change::Posted { text, .. } if text == "投稿 2"
        ));
        assert_eq!(session.timeline_head(room).await.unwrap(), 3);

        let log = log.lock().unwrap();
        let seen: Vec<_> = log
            .iter()
            .map(|s| (s.method.as_str(), s.path.as_str(), s.body.as_str()))
            .collect();
        let first = format!("/api/rooms/{ROOM}/timeline?after=1&limit=1");
        let head = format!("/api/rooms/{ROOM}/timeline?after=0&limit=1");
        assert_eq!(
            seen,
            [("GET", first.as_str(), ""), ("GET", head.as_str(), "")]
        );
    }

    #[tokio::test]
    async fn timeline_all_pages_until_the_head() {
        let (url, log) = serve(timeline_server(1_200)).await;
        let session = Client::new(&url).unwrap().authed(tokens("t", "r"));
        let room: RoomId = ROOM.parse().unwrap();

        let events = session.timeline_all(room, 0).await.unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=1_200).collect::<Vec<_>>());
        let events = session.timeline_all(room, 1_000).await.unwrap();
        assert_eq!(events.len(), 200);
        // Already at the head: one request, nothing returned.
        assert!(session.timeline_all(room, 1_200).await.unwrap().is_empty());

        let paths: Vec<_> = log.lock().unwrap().iter().map(|s| s.path.clone()).collect();
        let page = |after: u64| format!("/api/rooms/{ROOM}/timeline?after={after}&limit=500");
        assert_eq!(
            paths,
            [page(0), page(500), page(1_000), page(1_000), page(1_200)]
        );
    }

    #[tokio::test]
    async fn timeline_all_stops_at_a_full_page_that_reaches_the_head() {
        let (url, log) = serve(timeline_server(500)).await;
        let session = Client::new(&url).unwrap().authed(tokens("t", "r"));
        let room: RoomId = ROOM.parse().unwrap();
        assert_eq!(session.timeline_all(room, 0).await.unwrap().len(), 500);
        assert_eq!(log.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn timeline_all_refuses_a_page_that_does_not_advance() {
        // Always answers event 1 with head 5, whatever `after` says.
        let handler: Handler = Arc::new(|_: &Seen| {
            let page = serde_json::json!({"events": [posted_event(1)], "head": 5});
            (200, page.to_string())
        });
        let (url, log) = serve(handler).await;
        let session = Client::new(&url).unwrap().authed(tokens("t", "r"));
        let err = session
            .timeline_all(ROOM.parse().unwrap(), 0)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
        assert_eq!(log.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn entry_calls_use_the_routes_methods_and_bodies_of_the_contract() {
        let handler: Handler = Arc::new(|req: &Seen| {
            let last = req.path.rsplit('/').next().unwrap_or("");
            match (req.method.as_str(), last) {
                ("PUT", "read") => (204, String::new()),
                (_, "entries") => (
                    201,
                    serde_json::json!({"entry_id": ENTRY, "client_id": CLIENT_POST, "seq": 7,
                        "created_at": "2026-11-21T00:00:00Z", "duplicate": true})
                    .to_string(),
                ),
                (_, "edit") => {
                    let mut event = posted_event(8);
                    event["type"] = "edited".into();
                    event["version"] = 2.into();
                    event["reason"] = "誤記".into();
                    (201, event.to_string())
                }
                (_, "delete") => {
                    let mut event = posted_event(9);
                    event["type"] = "deleted".into();
                    event["reason"] = "誤投稿".into();
                    (201, event.to_string())
                }
                (_, "versions") => (
                    200,
                    serde_json::json!([{"version": 1, "text": "a", "reason": null,
                        "deleted": false, "author": posted_event(1)["author"],
                        "created_at": "2026-11-21T00:00:00Z"}])
                    .to_string(),
                ),
                (_, "acks") => (
                    200,
                    serde_json::json!([{"entry_id": ENTRY, "user_id": USER,
                        "display_name": "佐藤 花子", "role": "nurse",
                        "acknowledged_at": "2026-11-21T00:00:00Z"}])
                    .to_string(),
                ),
                _ => (404, error(ErrorCode::NotFound)),
            }
        });
        let (url, log) = serve(handler).await;
        let session = Client::new(&url).unwrap().authed(tokens("t", "r"));
        let room: RoomId = ROOM.parse().unwrap();
        let entry: EntryId = ENTRY.parse().unwrap();

        let request = PostEntryRequest {
            client_id: CLIENT_POST.parse().unwrap(),
            kind: tsunagu_protocol::timeline::EntryKind::Urgent,
            visibility: tsunagu_protocol::timeline::Visibility::Everyone,
            text: "発熱 38.5℃".into(),
        };
        let posted = session.post_entry(room, &request).await.unwrap();
        assert_eq!((posted.seq, posted.duplicate), (7, true));
        let edit = EditEntryRequest {
            text: "発熱 37.5℃".into(),
            reason: "誤記".into(),
        };
        let edited = session.edit_entry(room, entry, &edit).await.unwrap();
        assert_eq!(edited.seq, 8);
        let deleted = session.delete_entry(room, entry, "誤投稿").await.unwrap();
        assert!(matches!(
            deleted.change,
            tsunagu_protocol::timeline::Change::Deleted { ref reason } if reason == "誤投稿"
        ));
        assert_eq!(session.entry_versions(room, entry).await.unwrap().len(), 1);
        assert_eq!(
            session.acknowledgements(room, entry).await.unwrap().len(),
            1
        );
        let acks = session.acknowledge(room, entry).await.unwrap();
        assert_eq!(acks[0].display_name, "佐藤 花子");
        session.mark_read(room, 9).await.unwrap();

        let log = log.lock().unwrap();
        let seen: Vec<_> = log
            .iter()
            .map(|s| (s.method.as_str(), s.path.as_str()))
            .collect();
        let entries = format!("/api/rooms/{ROOM}/entries");
        let edit_path = format!("/api/rooms/{ROOM}/entries/{ENTRY}/edit");
        let delete = format!("/api/rooms/{ROOM}/entries/{ENTRY}/delete");
        let versions = format!("/api/rooms/{ROOM}/entries/{ENTRY}/versions");
        let acks = format!("/api/rooms/{ROOM}/entries/{ENTRY}/acks");
        let read = format!("/api/rooms/{ROOM}/read");
        assert_eq!(
            seen,
            [
                ("POST", entries.as_str()),
                ("POST", edit_path.as_str()),
                ("POST", delete.as_str()),
                ("GET", versions.as_str()),
                ("GET", acks.as_str()),
                ("POST", acks.as_str()),
                ("PUT", read.as_str()),
            ]
        );
        let bodies: Vec<serde_json::Value> = log
            .iter()
            .map(|s| {
                serde_json::from_str(if s.body.is_empty() { "null" } else { &s.body }).unwrap()
            })
            .collect();
        assert_eq!(
            bodies,
            [
                serde_json::json!({"client_id": CLIENT_POST, "kind": "urgent",
                    "visibility": "everyone", "text": "発熱 38.5℃"}),
                serde_json::json!({"text": "発熱 37.5℃", "reason": "誤記"}),
                serde_json::json!({"reason": "誤投稿"}),
                serde_json::Value::Null,
                serde_json::Value::Null,
                serde_json::Value::Null,
                serde_json::json!({"seq": 9}),
            ]
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_recognised() {
        // Bind then drop, so that the port is (almost certainly) closed.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = Client::new(&format!("http://{addr}")).unwrap();
        let err = client.healthz().await.unwrap_err();
        assert!(err.is_unreachable(), "{err:?}");
        assert_eq!(err.code(), None);
    }

    #[test]
    fn debug_never_shows_tokens() {
        let shown = format!("{:?}", tokens("secret-access", "secret-refresh"));
        assert!(!shown.contains("secret-"), "{shown}");
        assert!(shown.contains(SESSION));
    }
}
