-- Privileges of the role the Tsunagu server runs as on PostgreSQL, so that the application
-- cannot UPDATE or DELETE audit records even if it is compromised: it may only append them and
-- set a record's place in the hash chain (once; the schema's triggers refuse a second time).
--
-- Run as the owner of the schema, after every upgrade (`tsunagu-server migrate` with the
-- owner's URL), with the application role's name:
--
--     psql "$OWNER_URL" -v ON_ERROR_STOP=1 -v app_role=tsunagu_app -f deploy/postgres/roles.sql
--
-- The application role must not own the tables (owners can disable triggers). See
-- docs/operations.md, "PostgreSQL roles".

grant usage, create on schema public to :"app_role";
grant select, insert, update, delete on all tables in schema public to :"app_role";
grant usage, select on all sequences in schema public to :"app_role";

-- The migrations table: read only (the owner migrates).
revoke insert, update, delete, truncate on _sqlx_migrations from :"app_role";

-- The audit trail: append and read only.
revoke update, delete, truncate on audit_event, audit_log, audit_checkpoint, audit_review
    from :"app_role";
-- The sequencer places records (once) and moves the chain's head.
grant update (position, chain) on audit_event to :"app_role";
grant update (size, head, updated_at) on audit_log to :"app_role";

-- Form versions and emergency sheet versions are written once (the schema's triggers refuse
-- an UPDATE too); a purge deletes them.
revoke update on form_version, sheet_version from :"app_role";
