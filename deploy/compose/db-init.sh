#!/usr/bin/env bash
# One-shot (compose service db-init, postgres image, as root so it can read the secrets):
# creates or updates the two roles and the database, idempotently, so that it can run at
# every `docker compose up`.
#
#   TSUNAGU_OWNER_ROLE  owns the schema; `tsunagu-server migrate` and roles.sql run as it
#   TSUNAGU_APP_ROLE    the nodes run as it; roles.sql gives it only what the server needs
#
# Passwords are read from the secret files by psql itself (\set with backquotes), so they
# appear neither on a command line nor in the environment; ALTER ROLE re-applies them, so a
# changed secret file takes effect at the next `up`.

set -euo pipefail

for file in postgres_password db_owner_password db_app_password; do
    [[ -s /run/secrets/$file ]] || { echo "db-init: secret $file is missing or empty" >&2; exit 1; }
done
PGPASSWORD=$(cat /run/secrets/postgres_password)
export PGPASSWORD

psql -X -q -v ON_ERROR_STOP=1 -d postgres \
    -v owner="$TSUNAGU_OWNER_ROLE" -v app="$TSUNAGU_APP_ROLE" -v db="$TSUNAGU_DB" <<'SQL'
\set owner_password `cat /run/secrets/db_owner_password`
\set app_password `cat /run/secrets/db_app_password`

select format('create role %I', :'owner')
 where not exists (select from pg_roles where rolname = :'owner') \gexec
select format('create role %I', :'app')
 where not exists (select from pg_roles where rolname = :'app') \gexec

-- Neither role may create roles or databases, nor bypass row security; only the owner owns
-- anything. The application role must not own the tables (owners can disable triggers).
alter role :"owner" with login nosuperuser nocreatedb nocreaterole password :'owner_password';
alter role :"app" with login nosuperuser nocreatedb nocreaterole password :'app_password';

select format('create database %I owner %I encoding ''UTF8'' template template0', :'db', :'owner')
 where not exists (select from pg_database where datname = :'db') \gexec

-- Nobody else connects to it.
revoke all on database :"db" from public;
grant connect on database :"db" to :"owner", :"app";
SQL

echo "db-init: roles $TSUNAGU_OWNER_ROLE and $TSUNAGU_APP_ROLE and database $TSUNAGU_DB are ready"
