-- Structured forms and the emergency information sheet (see protocol/src/forms.rs and
-- protocol/src/sheet.rs).
--
-- `form_template` holds every version of every template, as JSON. Templates are not patient
-- data, so their definitions are stored readable. `scope` is '' for the templates the system
-- ships and the organisation's id for an organisation's own; a new definition with an existing
-- key is the next version in its scope.
--
-- `form` is a form sent into a patient room, from one version of a template, addressed either
-- to a role (`addressed_role`; every accepted member with that role becomes a recipient, and
-- one answer completes the form) or to members (`addressed_role` null; each must answer or
-- acknowledge). `client_id` makes a retried send return the stored form. `reply_to` links an
-- answer to the request it answers. A sent form never changes: each correction is a new
-- `form_version` (written once; only a purge deletes it), whose `body` holds the data and the
-- correction reason, serialised and sealed under the room's key; `current_version` names the
-- newest and moves by compare-and-set. `form_recipient` holds each recipient's progress.
--
-- `sheet_version` holds every version of a room's emergency information sheet (written once;
-- `changed` names the parts that differ from the previous version, e.g. `allergies,dnar`, and
-- is not patient data; `body` is sealed). `sheet_confirmation` records who confirmed which
-- version.
--
-- An attachment is bound either to a post (`entry_id`) or to a form (`form_id`), once.
--
-- deploy/postgres/roles.sql also takes UPDATE on the written-once tables from the
-- application role.

create table form_template (
    scope text not null,
    key text not null,
    version bigint not null check (version >= 1),
    organisation_id text references organisation (organisation_id),
    definition text not null,
    created_by text references app_user (user_id),
    created_at bigint not null,
    primary key (scope, key, version),
    check ((scope = '' and organisation_id is null)
        or (organisation_id is not null and scope = organisation_id))
);

create table form (
    form_id text primary key,
    room_id text not null references room (room_id),
    sender_id text not null references app_user (user_id),
    sender_role text not null,
    sender_organisation_id text,
    client_id text not null,
    template_scope text not null,
    template_key text not null,
    template_version bigint not null,
    addressed_role text,
    visibility text not null check (visibility in ('care_team', 'everyone')),
    due_on text check (due_on is null or length(due_on) = 10),
    reply_to text references form (form_id),
    current_version bigint not null check (current_version >= 1),
    status text not null check (status in ('open', 'completed')),
    sent_at bigint not null,
    completed_at bigint,
    foreign key (template_scope, template_key, template_version)
        references form_template (scope, key, version),
    unique (room_id, sender_id, client_id),
    check ((status = 'completed') = (completed_at is not null))
);
create index form_room on form (room_id, sent_at);
create index form_reply_to on form (reply_to) where reply_to is not null;

create function written_once() returns trigger language plpgsql as $$
begin
    raise exception '% rows are written once', tg_table_name;
end;
$$;

create table form_version (
    form_id text not null references form (form_id),
    version bigint not null check (version >= 1),
    author_id text not null references app_user (user_id),
    created_at bigint not null,
    body bytea not null,
    primary key (form_id, version)
);

create trigger form_version_no_update before update on form_version
    for each statement execute function written_once();

create table form_recipient (
    form_id text not null references form (form_id),
    user_id text not null references app_user (user_id),
    status text not null check (status in ('sent', 'opened', 'answered', 'acknowledged')),
    opened_at bigint,
    done_at bigint,
    answer_form_id text references form (form_id),
    primary key (form_id, user_id),
    check ((status in ('answered', 'acknowledged')) = (done_at is not null)),
    check (status <> 'opened' or opened_at is not null),
    check (status <> 'answered' or answer_form_id is not null)
);
create index form_recipient_user on form_recipient (user_id, status);

create table sheet_version (
    room_id text not null references room (room_id),
    version bigint not null check (version >= 1),
    author_id text not null references app_user (user_id),
    author_role text not null,
    author_organisation_id text,
    created_at bigint not null,
    changed text not null,
    body bytea not null,
    primary key (room_id, version)
);

create trigger sheet_version_no_update before update on sheet_version
    for each statement execute function written_once();

create table sheet_confirmation (
    room_id text not null,
    version bigint not null,
    user_id text not null references app_user (user_id),
    confirmed_at bigint not null,
    primary key (room_id, version, user_id),
    foreign key (room_id, version) references sheet_version (room_id, version)
);

alter table attachment add column form_id text references form (form_id);
drop index attachment_unbound;
create index attachment_unbound on attachment (created_at)
    where entry_id is null and form_id is null;
create index attachment_form on attachment (form_id) where form_id is not null;
