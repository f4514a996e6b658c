#!/usr/bin/env bash
# One-shot (compose service secrets-init, the tsunagu image, as root with CHOWN,
# DAC_OVERRIDE and FOWNER only, no network). Compose mounts secret files with their owner and
# mode on the host; the server (uid 10001) refuses key files that group or others can read
# and could not read a file owned by someone else. So the secrets are copied, with the owner
# and mode each reader needs, into volumes:
#
#   keys               /run/tsunagu/keys      the four key files, 0600, uid 10001 (nodes)
#   node-secrets       /run/tsunagu/secrets   pgpass (app role), metrics-token (nodes)
#   owner-secrets      /run/tsunagu/owner     pgpass (schema owner; migrate only)
#   collector-secrets  /run/collector         metrics-token, uid 10002 (collector)
#
# master.key is only seeded: `keys rotate-master` and room purges rewrite it in the volume,
# which is from then on newer than secrets/keys/master.key. Overwriting it would put back
# versions whose room keys are gone, so the volume's copy wins; back up that copy
# (docs/deployment.md, "Key distribution").

set -euo pipefail
umask 077

node_uid=10001
collector_uid=10002

fail() {
    echo "secrets-init: $*" >&2
    exit 1
}

# install FILE DEST MODE UID
put() {
    install -m "$3" -o "$4" -g "$4" -- "$1" "$2"
}

for dir in /run/tsunagu/keys /run/tsunagu/secrets /run/tsunagu/owner /var/lib/tsunagu/checkpoints; do
    chown "$node_uid:$node_uid" "$dir"
    chmod 0700 "$dir"
done
for dir in /run/collector /var/lib/otelcol; do
    chown "$collector_uid:$collector_uid" "$dir"
    chmod 0700 "$dir"
done

for pair in token_signing_key:token-signing.key server_secret_key:server-secret.key \
    audit_signing_key:audit-signing.key; do
    source=/run/secrets/${pair%%:*}
    [[ -f $source ]] || fail "secret ${pair%%:*} is missing (run ./make-secrets.sh)"
    size=$(stat -c %s "$source")
    ((size == 32)) || fail "secret ${pair%%:*} holds $size bytes, not 32"
    put "$source" "/run/tsunagu/keys/${pair#*:}" 0600 "$node_uid"
done

master=/run/tsunagu/keys/master.key
[[ -f /run/secrets/master_key ]] || fail "secret master_key is missing (run ./make-secrets.sh)"
[[ $(head -n 1 /run/secrets/master_key) == "tsunagu-master-key 1" ]] ||
    fail "secret master_key is not a Tsunagu master key file"
if [[ ! -e $master ]]; then
    put /run/secrets/master_key "$master" 0600 "$node_uid"
    echo "secrets-init: master.key seeded from secrets/keys/master.key"
elif ! cmp -s /run/secrets/master_key "$master"; then
    echo "secrets-init: master.key in the keys volume differs from secrets/keys/master.key" \
        "(rotated since): the volume's copy is kept and is the one to back up" >&2
fi
# Whatever happened before (a restore, a manual copy), the server needs these.
chown "$node_uid:$node_uid" "$master"
chmod 0600 "$master"

# pgpass lines: host:port:database:user:password, with : and \ escaped.
pgpass_line() {
    local password
    password=$(sed 's/[\\:]/\\&/g' "$2")
    printf 'postgres:5432:%s:%s:%s\n' "$TSUNAGU_DB" "$1" "$password"
}
for file in db_app_password db_owner_password metrics_token; do
    [[ -s /run/secrets/$file ]] || fail "secret $file is missing or empty (run ./make-secrets.sh)"
done
pgpass_line "$TSUNAGU_APP_ROLE" /run/secrets/db_app_password >/run/tsunagu/secrets/pgpass.new
pgpass_line "$TSUNAGU_OWNER_ROLE" /run/secrets/db_owner_password >/run/tsunagu/owner/pgpass.new
for dir in /run/tsunagu/secrets /run/tsunagu/owner; do
    chown "$node_uid:$node_uid" "$dir/pgpass.new"
    chmod 0600 "$dir/pgpass.new"
    mv "$dir/pgpass.new" "$dir/pgpass"
done

put /run/secrets/metrics_token /run/tsunagu/secrets/metrics-token 0600 "$node_uid"
put /run/secrets/metrics_token /run/collector/metrics-token 0400 "$collector_uid"

echo "secrets-init: key files, pgpass files and metrics tokens are in place"
