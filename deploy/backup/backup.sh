#!/usr/bin/env bash
# Backs up a Tsunagu installation on PostgreSQL: the database (pg_dump custom format) and the
# key files, into separate subdirectories of one dated directory, with SHA-256 sums.
#
#   backup.sh --out /var/backups/tsunagu \
#             [--database-url postgres://tsunagu@db.internal:5432/tsunagu] \
#             [--keys-dir /etc/tsunagu/keys] [--master-key-file FILE] \
#             [--audit-signing-key-file FILE] [--checkpoints FILE]... [--generations N]
#
# Defaults come from the server's own variables (TSUNAGU_DATABASE_URL, TSUNAGU_KEYS_DIR,
# TSUNAGU_MASTER_KEY_FILE, TSUNAGU_AUDIT_SIGNING_KEY_FILE, TSUNAGU_AUDIT_CHECKPOINT_FILE), so
# that `set -a; . /etc/tsunagu/tsunagu.env; set +a` is enough on a systemd host.
#
# It writes OUT/tsunagu-YYYYMMDDTHHMMSSZ/:
#
#   database/tsunagu.dump      pg_dump -Fc (restore with pg_restore, see README.md)
#   database/row-counts.tsv    rows per table, counted in the same snapshot as the dump
#   keys/*.key                 the four key files, mode 0600
#   checkpoints/*.jsonl        copies of the external audit checkpoint files, if given
#   MANIFEST                   what, when, from where (no secrets)
#   SHA256SUMS                 sha256sum -c SHA256SUMS checks everything above
#
# and prints that directory's path as the last line on stdout. database/ and keys/ are separate
# so that they can be shipped to different storage: the dump together with server-secret.key
# and master.key opens everything (docs/operations.md, "Key files").
#
# Consistency: the row counts and pg_dump share one exported snapshot, so they describe the
# same database state even while servers write. The master key file is compared before and
# after the dump: a rotation in between (keys rotate-master, or a room purge) would pair a
# dump with a key file that no longer opens it, so the backup is taken again.
#
# Exit status: 0 on success; 1 on any failure (nothing half-written is left under its final
# name); 2 for a usage error.

set -euo pipefail
umask 077

PROG=backup.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

database_url=${TSUNAGU_DATABASE_URL:-}
keys_dir=${TSUNAGU_KEYS_DIR:-}
master_key_file=${TSUNAGU_MASTER_KEY_FILE:-}
audit_signing_key_file=${TSUNAGU_AUDIT_SIGNING_KEY_FILE:-}
checkpoints=()
if [[ -n ${TSUNAGU_AUDIT_CHECKPOINT_FILE:-} && -e ${TSUNAGU_AUDIT_CHECKPOINT_FILE} ]]; then
    checkpoints+=("$TSUNAGU_AUDIT_CHECKPOINT_FILE")
fi
out=
generations=0

while (($#)); do
    case $1 in
        --database-url) database_url=${2:?}; shift 2 ;;
        --keys-dir) keys_dir=${2:?}; shift 2 ;;
        --master-key-file) master_key_file=${2:?}; shift 2 ;;
        --audit-signing-key-file) audit_signing_key_file=${2:?}; shift 2 ;;
        --checkpoints) checkpoints+=("${2:?}"); shift 2 ;;
        --out) out=${2:?}; shift 2 ;;
        --generations) generations=${2:?}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done

[[ -n $database_url ]] || usage_error "--database-url (or TSUNAGU_DATABASE_URL) is required"
[[ -n $keys_dir ]] || usage_error "--keys-dir (or TSUNAGU_KEYS_DIR) is required"
[[ -n $out ]] || usage_error "--out is required"
[[ $generations =~ ^[0-9]+$ ]] || usage_error "--generations takes a number"
master_key_file=${master_key_file:-$keys_dir/master.key}
audit_signing_key_file=${audit_signing_key_file:-$keys_dir/audit-signing.key}

need_commands pg_dump pg_restore psql sha256sum du stat flock

url_parse "$database_url"
source_password=$URL_PASSWORD
source_url=$(url_without_password "$URL_DB")
source_display=$(url_display)

# The key files, by the name they get in the backup.
declare -A key_sources=(
    [token-signing.key]=$keys_dir/token-signing.key
    [server-secret.key]=$keys_dir/server-secret.key
    [audit-signing.key]=$audit_signing_key_file
    [master.key]=$master_key_file
)
for name in "${!key_sources[@]}"; do
    [[ -f ${key_sources[$name]} && -r ${key_sources[$name]} ]] ||
        die "cannot read key file ${key_sources[$name]} (run this as the service user or root)"
done
for file in "${checkpoints[@]}"; do
    [[ -f $file && -r $file ]] || die "cannot read checkpoint file $file"
done

if [[ ! -d $out ]]; then
    mkdir -p -- "$(dirname -- "$out")"
    mkdir -m 0700 -- "$out"
fi
require_private_dir "$out"
# One backup at a time per directory: a second run waits instead of interleaving.
exec {lock_fd}>"$out/.lock"
flock "$lock_fd"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
final=$out/tsunagu-$stamp
[[ ! -e $final ]] || die "$final exists already (two backups in the same second?)"
partial=$out/.tsunagu-$stamp.partial
rm -rf -- "$partial"
mkdir -m 0700 -- "$partial" "$partial/database" "$partial/keys"

psql_pid=
psql_errors=$(mktemp)
cleanup() {
    local status=$?
    if [[ -n $psql_pid ]]; then
        kill "$psql_pid" 2>/dev/null || true
    fi
    if ((status != 0)); then
        rm -rf -- "$partial"
        printf '%s: backup failed; nothing was kept\n' "$PROG" >&2
    fi
    rm -f -- "$psql_errors"
}
trap cleanup EXIT
# Interrupted (Ctrl-C, a timeout's SIGTERM): still clean up through the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM

started=$(now_s)
log "backing up $source_display and the key files into $final"

# Checkpoint files first: every line in them was written after its checkpoint committed in
# the database, so all of them are covered by the dump that follows. A copy taken after the
# dump could hold checkpoints newer than the dump, which `audit verify` would then rightly
# report as a cut-off tail.
if ((${#checkpoints[@]})); then
    mkdir -m 0700 -- "$partial/checkpoints"
    index=0
    for file in "${checkpoints[@]}"; do
        index=$((index + 1))
        copy=$partial/checkpoints/$index-$(basename -- "$file")
        cp -- "$file" "$copy"
        chmod 0600 -- "$copy"
        # A line being appended right now is incomplete; it belongs to the next backup.
        if [[ -s $copy && $(tail -c 1 -- "$copy" | od -An -c | tr -d ' ') != '\n' ]]; then
            tmp=$copy.tmp
            head -n "$(wc -l <"$copy")" -- "$copy" >"$tmp"
            mv -- "$tmp" "$copy"
            log "dropped an incomplete last line of $file (being written)"
        fi
    done
fi

for attempt in 1 2 3; do
    # The key files, each mode 0600 whatever the source's mode was.
    for name in "${!key_sources[@]}"; do
        install -m 0600 -- "${key_sources[$name]}" "$partial/keys/$name"
    done
    master_before=$(sha256sum <"$partial/keys/master.key")

    # One transaction exports its snapshot, counts rows in it and stays open while pg_dump
    # reads the same snapshot.
    coproc PSQL {
        with_password "$source_password" psql_script -d "$source_url" 2>"$psql_errors"
    }
    # shellcheck disable=SC2153 # PSQL_PID is set by coproc
    psql_pid=$PSQL_PID
    printf '%s\n' \
        "begin transaction isolation level repeatable read, read only;" \
        "select pg_export_snapshot();" \
        "select current_setting('server_version');" >&"${PSQL[1]}"
    if ! read -r -t 60 snapshot <&"${PSQL[0]}" || ! read -r -t 60 server_version <&"${PSQL[0]}"
    then
        die "cannot open a snapshot of $source_display: $(cat "$psql_errors")"
    fi
    printf '%s\n' "$ROW_COUNT_SQL" "select '__end__';" >&"${PSQL[1]}"
    : >"$partial/database/row-counts.tsv"
    while true; do
        if ! read -r -t 600 line <&"${PSQL[0]}"; then
            die "cannot count rows in $source_display: $(cat "$psql_errors")"
        fi
        [[ $line == __end__ ]] && break
        printf '%s\n' "$line" >>"$partial/database/row-counts.tsv"
    done

    dump_started=$(now_s)
    if ! with_password "$source_password" pg_dump -w --format=custom \
        --snapshot="$snapshot" --file="$partial/database/tsunagu.dump" \
        --dbname="$source_url"; then
        die "pg_dump of $source_display failed"
    fi
    dump_seconds=$(elapsed "$dump_started")
    printf 'commit;\n' >&"${PSQL[1]}"
    psql_in=${PSQL[1]}
    exec {psql_in}>&-
    wait "$psql_pid" || die "the snapshot transaction failed: $(cat "$psql_errors")"
    psql_pid=

    master_after=$(sha256sum <"${key_sources[master.key]}")
    if [[ $master_before == "$master_after" ]]; then
        break
    fi
    ((attempt < 3)) || die "the master key file kept changing during the dump (a rotation \
running?); try again when keys rotate-master or a purge has finished"
    log "the master key file changed during the dump (rotation or purge): taking it again"
    rm -f -- "$partial/keys/"* "$partial/database/"*
done

# The dump must be readable as a whole, not just present.
pg_restore --list "$partial/database/tsunagu.dump" >/dev/null ||
    die "the dump just written cannot be read back"

{
    printf 'tsunagu backup\n'
    printf 'created_utc\t%s\n' "$stamp"
    printf 'host\t%s\n' "$(hostname 2>/dev/null || echo unknown)"
    printf 'database\t%s\n' "$source_display"
    printf 'server_version\t%s\n' "$server_version"
    printf 'pg_dump\t%s\n' "$(pg_dump --version)"
    printf 'snapshot\t%s\n' "$snapshot"
    printf 'dump_seconds\t%s\n' "$dump_seconds"
    printf 'master_key_sha256\t%s\n' "${master_before%% *}"
    for file in "${checkpoints[@]}"; do
        printf 'checkpoints_from\t%s\n' "$file"
    done
} >"$partial/MANIFEST"

sums=$(cd "$partial" && find . -type f -printf '%P\n' | LC_ALL=C sort |
    xargs -d '\n' sha256sum --)
printf '%s\n' "$sums" >"$partial/SHA256SUMS"
chmod -R go-rwx -- "$partial"
mv -- "$partial" "$final"

log "done in $(elapsed "$started") s: dump $(size_of "$final/database/tsunagu.dump"), \
$(wc -l <"$final/database/row-counts.tsv") tables, keys $(size_of "$final/keys")"

if ((generations > 0)); then
    # Complete backups only (the partial ones start with a dot), oldest first.
    mapfile -t old < <(find "$out" -mindepth 1 -maxdepth 1 -type d -name 'tsunagu-*' -printf '%f\n' |
        LC_ALL=C sort | head -n "-$generations")
    for name in "${old[@]}"; do
        log "removing old generation $name"
        rm -rf -- "${out:?}/$name"
    done
fi

printf '%s\n' "$final"
