-- Patient rooms, their members and the patient's consent to sharing.
--
-- Sensitive details (the patient's name, kana, date of birth, address and insurance numbers;
-- the content of consent records) are kept in blob columns, one per record, so that
-- encryption at rest replaces their content without changing the schema.

create table room (
    room_id text primary key,
    patient_details blob not null,
    created_by text not null references app_user (user_id),
    created_at integer not null,
    last_seq integer not null default 0
);

create table room_member (
    room_id text not null references room (room_id),
    user_id text not null references app_user (user_id),
    state text not null check (state in ('invited', 'accepted', 'declined', 'revoked', 'left')),
    invited_by text references app_user (user_id),
    invited_at integer not null,
    responded_at integer,
    primary key (room_id, user_id)
);
create index room_member_user on room_member (user_id, state);

create table consent (
    consent_id text primary key,
    room_id text not null references room (room_id),
    details blob not null,
    recorded_by text not null references app_user (user_id),
    recorded_at integer not null,
    withdrawn_by text references app_user (user_id),
    withdrawn_at integer,
    withdrawal_details blob
);
create index consent_room on consent (room_id, recorded_at);
