-- Tamper-evident audit trail (see docs/security.md, "Audit trail").
--
-- Each record is written with a MAC (HMAC-SHA-256 under a key derived from the server secret,
-- over its canonical form `format`) in the transaction of the action it records. A sequencer
-- then places committed records, in id order, at consecutive `position`s of one hash chain:
-- `chain` = SHA-256(0x01 || previous chain || leaf), leaf = SHA-256(0x00 || canonical || mac).
-- Placing sets `position` and `chain` once; nothing else in a record can ever change, and no
-- record can be deleted. Records written before this migration (ids up to `legacy_through`)
-- carry no MAC and are placed first.
--
-- `audit_log` holds the chain's size and head. `audit_checkpoint` holds signed statements
-- (Ed25519, key outside the database) of a size and head, also appended to a file kept on
-- other storage, so that cutting off the tail is detected. `audit_review` holds security
-- officers' periodic review sign-offs.

alter table audit_event add column format integer;
alter table audit_event add column mac blob;
alter table audit_event add column position integer;
alter table audit_event add column chain blob;

create unique index audit_event_position on audit_event (position);
create index audit_event_unplaced on audit_event (audit_event_id) where position is null;
create index audit_event_time on audit_event (occurred_at);
create index audit_event_object on audit_event (object_type, object_id, occurred_at);
create index audit_event_action on audit_event (action, occurred_at);

drop trigger audit_event_no_update;

create trigger audit_event_place_once before update on audit_event
when old.position is not null or new.position is null or new.chain is null
    or new.audit_event_id is not old.audit_event_id
    or new.occurred_at is not old.occurred_at
    or new.actor_user_id is not old.actor_user_id
    or new.actor_role is not old.actor_role
    or new.actor_organisation_id is not old.actor_organisation_id
    or new.session_id is not old.session_id
    or new.source_address is not old.source_address
    or new.user_agent is not old.user_agent
    or new.action is not old.action
    or new.object_type is not old.object_type
    or new.object_id is not old.object_id
    or new.outcome is not old.outcome
    or new.reason is not old.reason
    or new.format is not old.format
    or new.mac is not old.mac
begin
    select raise(abort, 'audit_event is append-only');
end;

create table audit_log (
    audit_log_id integer primary key check (audit_log_id = 1),
    size integer not null,
    head blob not null,
    legacy_through integer not null,
    updated_at integer not null
);
insert into audit_log (audit_log_id, size, head, legacy_through, updated_at)
values (1, 0, zeroblob(32), coalesce((select max(audit_event_id) from audit_event), 0), 0);

create trigger audit_log_no_delete before delete on audit_log
begin
    select raise(abort, 'audit_log cannot be deleted');
end;

create table audit_checkpoint (
    size integer primary key,
    origin text not null,
    head text not null,
    signed_at integer not null,
    key_id text not null,
    signature text not null
);

create trigger audit_checkpoint_no_update before update on audit_checkpoint
begin
    select raise(abort, 'audit_checkpoint is append-only');
end;

create trigger audit_checkpoint_no_delete before delete on audit_checkpoint
begin
    select raise(abort, 'audit_checkpoint is append-only');
end;

create table audit_review (
    audit_review_id text primary key,
    period_start integer not null,
    period_end integer not null,
    through_position integer not null,
    reviewed_by text not null references app_user (user_id),
    reviewed_at integer not null,
    findings_sealed blob not null
);
create index audit_review_period on audit_review (period_end);

create trigger audit_review_no_update before update on audit_review
begin
    select raise(abort, 'audit_review is append-only');
end;

create trigger audit_review_no_delete before delete on audit_review
begin
    select raise(abort, 'audit_review is append-only');
end;
