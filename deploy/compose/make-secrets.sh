#!/usr/bin/env bash
# Creates every file compose.yaml expects under secrets/ (once; existing files are kept):
#
#   secrets/keys/{token-signing,server-secret,audit-signing}.key, master.key
#                           by `tsunagu-server keys init` (the same files for every node)
#   secrets/metrics-token   the bearer token the collector presents at /metrics
#   secrets/postgres-password, db-owner-password, db-app-password
#
#   ./make-secrets.sh [--server-bin PATH | --image IMAGE]
#
# tsunagu-server comes from --server-bin, else from PATH, else it runs from the image
# (default tsunagu:local, built by `docker compose build`) with docker or podman.
#
# Everything is created mode 0600 in directories of mode 0700. Back the key files up at
# once, apart from the database backups (docs/operations.md, "Key files"): without
# master.key no patient data can ever be read again.

set -euo pipefail
umask 077

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
secrets=$here/secrets
server_bin=
image=${TSUNAGU_IMAGE:-tsunagu:local}

while (($#)); do
    case $1 in
        --server-bin) server_bin=${2:?}; shift 2 ;;
        --image) image=${2:?}; shift 2 ;;
        -h | --help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "make-secrets: unknown argument $1" >&2; exit 2 ;;
    esac
done

mkdir -p "$secrets/keys"
chmod 0700 "$secrets" "$secrets/keys"

# 32 random bytes as 64 hex digits: safe in URLs, pgpass files and HTTP headers.
random_hex() {
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
}

for name in metrics-token postgres-password db-owner-password db-app-password; do
    if [[ -e $secrets/$name ]]; then
        echo "kept    secrets/$name"
    else
        random_hex >"$secrets/$name"
        echo "created secrets/$name"
    fi
done

if [[ -z $server_bin ]] && command -v tsunagu-server >/dev/null 2>&1; then
    server_bin=$(command -v tsunagu-server)
fi
if [[ -n $server_bin ]]; then
    "$server_bin" keys init --keys-dir "$secrets/keys"
else
    engine=$(command -v docker || command -v podman || true)
    [[ -n $engine ]] || {
        echo "make-secrets: no tsunagu-server on PATH and no docker or podman: give --server-bin" >&2
        exit 1
    }
    # As the calling user, so that the files belong to whoever runs compose.
    "$engine" run --rm --network none --user "$(id -u):$(id -g)" \
        -v "$secrets/keys:/keys" --entrypoint tsunagu-server "$image" \
        keys init --keys-dir /keys
fi
# keys init takes a lock file beside master.key; it is not a secret and not needed here.
rm -f "$secrets/keys/master.key.lock"
chmod 0600 "$secrets"/keys/*.key "$secrets"/metrics-token "$secrets"/*-password
ls -l "$secrets" "$secrets/keys"
