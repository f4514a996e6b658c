-- The timeline of each room: posts, corrections, deletions and system events, numbered per
-- room without gaps (`seq`, every event, for care professionals) and, for events visible to
-- everyone, in a second gapless stream (`public_seq`, for family members and patients).
-- Acknowledgements (見ました) and each member's read position.
--
-- Content (text, reasons, system details) is kept in `body`, one blob per event, so that
-- encryption at rest replaces it without changing the schema.

alter table room add column last_public_seq bigint not null default 0;
alter table room_member add column read_seq bigint not null default 0;

create table timeline_event (
    room_id text not null references room (room_id),
    seq bigint not null,
    public_seq bigint,
    entry_id text not null,
    change text not null check (change in ('posted', 'edited', 'deleted', 'system')),
    entry_kind text check (entry_kind in ('text', 'urgent')),
    visibility text not null check (visibility in ('care_team', 'everyone')),
    version bigint not null,
    author_id text not null references app_user (user_id),
    author_role text not null,
    author_organisation_id text,
    client_id text,
    body bytea not null,
    created_at bigint not null,
    primary key (room_id, seq)
);
create unique index timeline_event_public on timeline_event (room_id, public_seq)
    where public_seq is not null;
create unique index timeline_event_client on timeline_event (room_id, author_id, client_id)
    where client_id is not null;
create index timeline_event_entry on timeline_event (room_id, entry_id, version);

create table entry_ack (
    room_id text not null references room (room_id),
    entry_id text not null,
    user_id text not null references app_user (user_id),
    acknowledged_at bigint not null,
    primary key (room_id, entry_id, user_id)
);
