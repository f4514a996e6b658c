-- Attachments of timeline entries (JPEG, PNG, PDF; at most 20 MiB), kept in the database so
-- that every node of a cluster serves them. A file is uploaded first (`uploading`, its chunks
-- written as the body streams in), marked `ready` once its type, size and digest are checked,
-- and bound to a post (`entry_id`) in the post's transaction. `meta` holds the file name (JSON,
-- patient data) and `attachment_chunk.bytes` the content in chunks of 256 KiB, so that
-- encryption at rest can seal each chunk on its own (AES-GCM per chunk) without a schema
-- change. Uploads left `uploading` and attachments never bound are deleted after a while.

create table attachment (
    attachment_id text primary key,
    room_id text not null references room (room_id),
    uploader_id text not null references app_user (user_id),
    entry_id text,
    media_type text not null check (media_type in ('image/jpeg', 'image/png', 'application/pdf')),
    byte_size bigint,
    sha256 text,
    chunk_count bigint,
    state text not null check (state in ('uploading', 'ready')),
    meta bytea not null,
    created_at bigint not null,
    check (state = 'uploading' or (byte_size is not null and sha256 is not null
        and chunk_count is not null))
);
create index attachment_entry on attachment (room_id, entry_id) where entry_id is not null;
create index attachment_unbound on attachment (created_at) where entry_id is null;

create table attachment_chunk (
    attachment_id text not null references attachment (attachment_id),
    idx bigint not null,
    bytes bytea not null,
    primary key (attachment_id, idx)
);
