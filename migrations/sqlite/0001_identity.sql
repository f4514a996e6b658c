-- Identity: organisations, users, role grants, invitations, sessions, login throttling, and the
-- append-only audit trail they write to.

create table organisation (
    organisation_id text primary key,
    name text not null,
    kind text not null,
    require_totp_for_all integer not null default 0 check (require_totp_for_all in (0, 1)),
    created_at integer not null,
    created_by text
);

create table app_user (
    user_id text primary key,
    organisation_id text references organisation (organisation_id),
    username text not null unique,
    display_name text not null,
    role text not null,
    status text not null check (status in ('active', 'disabled')),
    password_hash text not null,
    must_change_password integer not null default 0 check (must_change_password in (0, 1)),
    totp_enabled integer not null default 0 check (totp_enabled in (0, 1)),
    totp_secret_sealed blob,
    totp_pending_sealed blob,
    totp_last_step integer not null default 0,
    created_at integer not null,
    updated_at integer not null,
    check (organisation_id is not null or role = 'system_admin')
);
create index app_user_organisation on app_user (organisation_id);

create table role_grant (
    role_grant_id text primary key,
    user_id text not null references app_user (user_id),
    role text not null,
    granted_by text references app_user (user_id),
    reason text not null,
    granted_at integer not null
);
create index role_grant_user on role_grant (user_id, granted_at);

create table invitation (
    invitation_id text primary key,
    organisation_id text not null references organisation (organisation_id),
    role text not null,
    invitee_name text,
    code_digest blob not null unique,
    created_by text not null references app_user (user_id),
    created_at integer not null,
    expires_at integer not null,
    accepted_by text references app_user (user_id),
    accepted_at integer,
    revoked_at integer
);
create index invitation_organisation on invitation (organisation_id, created_at);

create table recovery_code (
    user_id text not null references app_user (user_id),
    code_digest blob not null,
    used_at integer,
    primary key (user_id, code_digest)
);

create table login_session (
    session_id text primary key,
    user_id text not null references app_user (user_id),
    created_at integer not null,
    last_seen_at integer not null,
    idle_timeout_s integer not null,
    expires_at integer not null,
    revoked_at integer,
    revoked_reason text,
    user_agent text,
    source_address text
);
create index login_session_user on login_session (user_id, revoked_at);

create table refresh_token (
    token_digest blob primary key,
    session_id text not null references login_session (session_id),
    issued_at integer not null,
    used_at integer
);
create index refresh_token_session on refresh_token (session_id);

-- Keyed by an HMAC of the login name, whether or not such an account exists, so that lockout
-- behaves the same for unknown names and reveals nothing.
create table login_throttle (
    login_key blob primary key,
    failures integer not null,
    locked_until integer not null,
    last_failure_at integer not null
);

create table audit_event (
    audit_event_id integer primary key autoincrement,
    occurred_at integer not null,
    actor_user_id text,
    actor_role text,
    actor_organisation_id text,
    session_id text,
    source_address text,
    user_agent text,
    action text not null,
    object_type text,
    object_id text,
    outcome text not null check (outcome in ('success', 'failure', 'refused')),
    reason text
);
create index audit_event_actor on audit_event (actor_user_id, occurred_at);

create trigger audit_event_no_update before update on audit_event
begin
    select raise(abort, 'audit_event is append-only');
end;

create trigger audit_event_no_delete before delete on audit_event
begin
    select raise(abort, 'audit_event is append-only');
end;
