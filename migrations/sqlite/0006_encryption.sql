-- Encryption at rest (see docs/security.md).
--
-- Every room has data keys (DEKs), one per version, kept wrapped by the master key (KEK) in
-- `room_key`; the room names its current version and how many values were sealed under it,
-- so that it rotates well before AES-GCM's limit of 2^32 random nonces per key. Sealed
-- values name their key version in their own header, so existing columns keep their types.
-- `key_state` holds the master key version that new wraps use and the key of the blind
-- indexes (wrapped). `patient_lookup` holds keyed digests (HMAC-SHA-256) of normalised
-- insurer numbers, for exact-match search without storing them readable.
--
-- A room's care ends when it is closed; it is kept until `retain_until`, after which a system
-- administrator may purge it: its data keys are destroyed (crypto-shredding) and `purged_at`
-- set.

create table key_state (
    key_state_id integer primary key check (key_state_id = 1),
    master_version integer not null,
    index_key_wrapped blob not null,
    index_key_master_version integer not null,
    updated_at integer not null
);

create table room_key (
    room_id text not null references room (room_id),
    version integer not null,
    master_version integer not null,
    wrapped_key blob not null,
    created_at integer not null,
    primary key (room_id, version)
);
create index room_key_master on room_key (master_version);

alter table room add column key_version integer not null default 0;
alter table room add column key_uses integer not null default 0;
alter table room add column key_created_at integer not null default 0;
alter table room add column closed_at integer;
alter table room add column retain_until integer;
alter table room add column purged_at integer;

create table patient_lookup (
    digest blob not null,
    room_id text not null references room (room_id),
    primary key (digest, room_id)
);
create index patient_lookup_room on patient_lookup (room_id);
