-- One-time tickets for opening a WebSocket: obtained over HTTPS with a bearer token, valid
-- for 30 seconds, used once. Stored as keyed digests, in the database so that any node can
-- redeem a ticket another node issued.

create table ws_ticket (
    ticket_digest bytea primary key,
    session_id text not null references login_session (session_id),
    expires_at bigint not null,
    used_at bigint
);
