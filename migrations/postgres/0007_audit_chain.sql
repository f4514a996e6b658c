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
--
-- Beyond these triggers, deployments run the server as a role that holds only INSERT and
-- SELECT on the audit tables and UPDATE of (position, chain): deploy/postgres/roles.sql.

alter table audit_event add column format bigint;
alter table audit_event add column mac bytea;
alter table audit_event add column position bigint;
alter table audit_event add column chain bytea;

create unique index audit_event_position on audit_event (position);
create index audit_event_unplaced on audit_event (audit_event_id) where position is null;
create index audit_event_time on audit_event (occurred_at);
create index audit_event_object on audit_event (object_type, object_id, occurred_at);
create index audit_event_action on audit_event (action, occurred_at);

drop trigger audit_event_no_update on audit_event;

create trigger audit_event_no_delete before delete on audit_event
    for each statement execute function audit_event_append_only();

create function audit_event_place_once() returns trigger language plpgsql as $$
begin
    if old.position is not null or new.position is null or new.chain is null
        or (to_jsonb(new) - 'position' - 'chain') is distinct from
           (to_jsonb(old) - 'position' - 'chain') then
        raise exception 'audit_event is append-only';
    end if;
    return new;
end;
$$;

create trigger audit_event_place_once before update on audit_event
    for each row execute function audit_event_place_once();

create table audit_log (
    audit_log_id bigint primary key check (audit_log_id = 1),
    size bigint not null,
    head bytea not null,
    legacy_through bigint not null,
    updated_at bigint not null
);
insert into audit_log (audit_log_id, size, head, legacy_through, updated_at)
values (1, 0, decode(repeat('00', 32), 'hex'),
        coalesce((select max(audit_event_id) from audit_event), 0), 0);

create function audit_append_only() returns trigger language plpgsql as $$
begin
    raise exception '% is append-only', tg_table_name;
end;
$$;

create trigger audit_log_no_delete before delete or truncate on audit_log
    for each statement execute function audit_append_only();

create table audit_checkpoint (
    size bigint primary key,
    origin text not null,
    head text not null,
    signed_at bigint not null,
    key_id text not null,
    signature text not null
);

create trigger audit_checkpoint_append_only before update or delete or truncate
    on audit_checkpoint for each statement execute function audit_append_only();

create table audit_review (
    audit_review_id text primary key,
    period_start bigint not null,
    period_end bigint not null,
    through_position bigint not null,
    reviewed_by text not null references app_user (user_id),
    reviewed_at bigint not null,
    findings_sealed bytea not null
);
create index audit_review_period on audit_review (period_end);

create trigger audit_review_append_only before update or delete or truncate
    on audit_review for each statement execute function audit_append_only();
