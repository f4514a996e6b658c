#!/usr/bin/env bash
# The restore drill: proves that a backup taken now can be restored and opened, without
# touching the installation it was taken from.
#
#   restore-drill.sh --database-url URL --keys-dir DIR [--checkpoints FILE]
#                    [--server-bin PATH] [--admin-url URL] [--work-dir DIR] [--keep]
#
#   --database-url URL  the installation's database (postgres://user[:password]@host/db); read
#                       only: backup.sh dumps it
#   --keys-dir DIR      its key files: token-signing.key, server-secret.key,
#                       audit-signing.key and master.key
#   --checkpoints FILE  its external audit checkpoint file; copied into the backup before the
#                       dump and given to `audit verify`, which then also proves the restored
#                       log is not cut short
#   --server-bin PATH   the tsunagu-server to verify with [default: tsunagu-server on PATH]
#   --admin-url URL     a role that may CREATE DATABASE on the same server [default: URL with
#                       the database name replaced by postgres]; it owns the drill database
#   --work-dir DIR      where the backup and the restored keys go [default: a new mktemp -d,
#                       removed at the end unless --keep]
#   --keep              keep the drill database and the work directory for inspection
#
# Steps: (a) backup.sh into WORK_DIR; (b) create tsunagu_drill_<UTC timestamp>_<pid> on the
# same server; (c) pg_restore the dump into it; (d) restore the key files from the backup
# (checking SHA256SUMS) and run `tsunagu-server keys verify` and `audit verify` against the
# restored database with the restored keys; (e) compare row counts, print a summary;
# (f) drop the drill database unless --keep.
#
# Exit status: 0 when every step passed; 1 when any failed (the message says which);
# 2 for a usage error.

set -euo pipefail
umask 077

PROG=restore-drill
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

database_url=
keys_dir=
checkpoints=
server_bin=tsunagu-server
admin_url=
work_dir=
keep=false

while (($#)); do
    case $1 in
        --database-url) database_url=${2:?}; shift 2 ;;
        --keys-dir) keys_dir=${2:?}; shift 2 ;;
        --checkpoints) checkpoints=${2:?}; shift 2 ;;
        --server-bin) server_bin=${2:?}; shift 2 ;;
        --admin-url) admin_url=${2:?}; shift 2 ;;
        --work-dir) work_dir=${2:?}; shift 2 ;;
        --keep) keep=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done
[[ -n $database_url ]] || usage_error "--database-url is required"
[[ -n $keys_dir ]] || usage_error "--keys-dir is required"
[[ -d $keys_dir ]] || die "--keys-dir $keys_dir is not a directory"
if [[ -n $checkpoints && ! -r $checkpoints ]]; then
    die "cannot read the checkpoint file $checkpoints"
fi

url_parse "$database_url"
source_password=$URL_PASSWORD
source_url=$(url_without_password "$URL_DB")
source_display=$(url_display)
source_db=$URL_DB
[[ -n $source_db ]] || die "--database-url names no database"
if [[ -z $admin_url ]]; then
    admin_url=$(url_without_password postgres)
    admin_password=$source_password
else
    url_parse "$admin_url"
    admin_password=$URL_PASSWORD
    admin_url=$(url_without_password "$URL_DB")
fi
url_parse "$admin_url"
admin_display=$(url_display)

need_commands pg_dump pg_restore psql sha256sum awk
if [[ $server_bin != */* ]]; then
    server_bin=$(command -v "$server_bin") ||
        die "tsunagu-server is not on PATH; give --server-bin PATH"
fi
[[ -x $server_bin ]] || die "--server-bin $server_bin is not executable"

drill_db=tsunagu_drill_$(date -u +%Y%m%d%H%M%S)_$$
drill_url=$(url_without_password "$drill_db")

created_work_dir=false
if [[ -z $work_dir ]]; then
    work_dir=$(mktemp -d "${TMPDIR:-/tmp}/tsunagu-drill.XXXXXX")
    created_work_dir=true
else
    [[ -d $work_dir ]] || mkdir -m 0700 -- "$work_dir"
fi
require_private_dir "$work_dir"
work_dir=$(cd "$work_dir" && pwd)

drill_created=false
failed_step=
started=$(now_s)
declare -A seconds=()

finish() {
    local status=$?
    set +e
    if [[ $drill_created == true ]]; then
        if [[ $keep == true ]]; then
            log "kept the drill database: $drill_url"
        else
            with_password "$admin_password" psql_script -d "$admin_url" \
                -c "drop database if exists \"$drill_db\" with (force)" >/dev/null 2>&1 ||
                with_password "$admin_password" psql_script -d "$admin_url" \
                    -c "drop database if exists \"$drill_db\"" >/dev/null ||
                log "could not drop the drill database $drill_db: drop it by hand"
        fi
    fi
    # The work directory holds a copy of the production keys and data: it does not outlive
    # the drill unless asked to.
    if [[ $created_work_dir == true && $keep != true ]]; then
        rm -rf -- "$work_dir"
    elif [[ -d $work_dir ]]; then
        log "the backup and the restored keys are in $work_dir (they open every patient's \
data: delete or lock it away)"
    fi
    if ((status != 0)); then
        printf '\n%s: FAILED%s after %s s\n' "$PROG" "${failed_step:+ at step: $failed_step}" \
            "$(elapsed "$started")" >&2
    fi
}
trap finish EXIT
# Interrupted (Ctrl-C, a timeout's SIGTERM): still clean up through the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM

# step KEY DESCRIPTION: announces a step and remembers it, for the failure message and the
# durations in the summary.
step() {
    step_key=$1
    failed_step=$2
    step_started=$(now_s)
    log "── $2"
}
step_done() {
    seconds[$step_key]=$(elapsed "$step_started")
    failed_step=
}

# (a) Back up, exactly as the scheduled job does.
step backup "back up $source_display"
backup_args=(--database-url "$database_url" --keys-dir "$keys_dir"
    --master-key-file "$keys_dir/master.key"
    --audit-signing-key-file "$keys_dir/audit-signing.key" --out "$work_dir/backups")
[[ -n $checkpoints ]] && backup_args+=(--checkpoints "$checkpoints")
# The backup must contain what we ask for, not what the caller's TSUNAGU_* environment says.
backup=$(env -u TSUNAGU_AUDIT_CHECKPOINT_FILE "$HERE/backup.sh" "${backup_args[@]}" | tail -n 1)
[[ -d $backup ]] || die "backup.sh did not report its backup directory"
step_done

# Restoring starts from the backup alone: check that it is intact.
step sums "check the backup's SHA-256 sums"
(cd "$backup" && sha256sum --quiet -c SHA256SUMS) || die "the backup does not match its SHA256SUMS"
step_done

# (b) A fresh database beside the source. template0: nothing from template1 mixes in.
step create "create the drill database $drill_db on $admin_display"
# Marked before it exists: an interruption right after CREATE still drops it ("if exists").
drill_created=true
with_password "$admin_password" psql_script -d "$admin_url" \
    -c "create database \"$drill_db\" template template0" >/dev/null ||
    die "cannot create a database as $admin_display (it needs CREATEDB; give --admin-url)"
step_done

# (c) --no-owner --no-privileges: the dump names the schema owner and grants to the
# application role, which need not exist here and which a non-superuser cannot become; the
# drill database belongs to the admin role instead. The audit tables' triggers refuse UPDATE,
# DELETE and TRUNCATE only, and pg_restore creates triggers after loading the rows (post-data),
# so the rows load as they were, with their positions and chain hashes. One transaction:
# all or nothing.
step restore "pg_restore into $drill_db"
with_password "$admin_password" pg_restore -w --no-owner --no-privileges --single-transaction \
    --dbname="$drill_url" "$backup/database/tsunagu.dump" ||
    die "pg_restore failed (its message is above)"
step_done

# (d) The key files as they would be restored: from the backup, checked, mode 0600.
step keys "restore the key files"
restored_keys=$work_dir/restored-keys
rm -rf -- "$restored_keys"
mkdir -m 0700 -- "$restored_keys"
for name in token-signing.key server-secret.key audit-signing.key master.key; do
    [[ -f $backup/keys/$name ]] || die "the backup has no keys/$name"
    install -m 0600 -- "$backup/keys/$name" "$restored_keys/$name"
done
for name in token-signing.key server-secret.key audit-signing.key; do
    size=$(stat -c %s -- "$restored_keys/$name")
    ((size == 32)) || die "keys/$name holds $size bytes, not 32"
done
[[ $(head -n 1 -- "$restored_keys/master.key") == "tsunagu-master-key 1" ]] ||
    die "keys/master.key is not a Tsunagu master key file"
step_done

# Every setting is given explicitly; the caller's TSUNAGU_* variables (a config file, another
# database, another checkpoint file) must not leak into what is verified. Logs stay as set.
server_env=(env)
while IFS= read -r name; do
    case $name in TSUNAGU_LOG | TSUNAGU_LOG_FORMAT) ;; *) server_env+=(-u "$name") ;; esac
done < <(compgen -e | grep '^TSUNAGU_' || true)
server() {
    with_password "$admin_password" "${server_env[@]}" "$server_bin" \
        --database-url "$drill_url" \
        --data-dir "$work_dir/server-data" \
        --keys-dir "$restored_keys" \
        --master-key-file "$restored_keys/master.key" \
        --audit-signing-key-file "$restored_keys/audit-signing.key" \
        "$@"
}

step keys_verify "keys verify (the restored master key opens every room key and sealed value)"
server keys verify || die "keys verify failed: the restored key file does not open the data"
step_done

step audit_verify "audit verify (MACs, hash chain, checkpoint signatures${checkpoints:+, external checkpoints})"
verify_args=()
if [[ -n $checkpoints ]]; then
    for copy in "$backup"/checkpoints/*; do
        verify_args+=(--checkpoints "$copy")
    done
fi
server audit verify "${verify_args[@]}" || die "audit verify failed: the restored audit trail does not verify"
step_done

# (e) Row counts: the restored database against the source as pg_dump saw it (counted in the
# dump's own snapshot, so they must match exactly even while the source is written to).
step counts "compare row counts"
restored_counts=$work_dir/restored-row-counts.tsv
with_password "$admin_password" psql_script -d "$drill_url" -c "$ROW_COUNT_SQL" >"$restored_counts" ||
    die "cannot count rows in the drill database"
mismatches=$(awk -F '\t' '
    NR == FNR { source[$1] = $2; next }
    { restored[$1] = $2 }
    END {
        for (t in source) if (!(t in restored) || restored[t] != source[t])
            printf "%s: source %s, restored %s\n", t, source[t], (t in restored ? restored[t] : "missing")
        for (t in restored) if (!(t in source))
            printf "%s: not in the source, restored %s\n", t, restored[t]
    }' "$backup/database/row-counts.tsv" "$restored_counts")
[[ -z $mismatches ]] || die "row counts differ:
$mismatches"
count_in() {
    awk -F '\t' -v t="$2" '$1 == t { print $2; found = 1 } END { if (!found) print "-" }' "$1"
}
now_counts=$(with_password "$source_password" psql_script -d "$source_url" \
    -c "select (select count(*) from audit_event) || chr(9) || (select count(*) from timeline_event)" \
    2>/dev/null || printf -- '-\t-')
step_done

names_in() {
    local file names=()
    for file in "$1"/*; do names+=("$(basename -- "$file")"); done
    printf '%s' "${names[*]}"
}
restored_size=$(with_password "$admin_password" psql_script -d "$admin_url" \
    -c "select pg_size_pretty(pg_database_size('$drill_db'))")
tables=$(wc -l <"$backup/database/row-counts.tsv")

cat <<SUMMARY

══ Restore drill passed ═══════════════════════════════════════════════
source database      $source_display
backup               $backup
  dump               $(size_of "$backup/database/tsunagu.dump")
  key files          $(names_in "$backup/keys")
  checkpoint files   $(if [[ -d $backup/checkpoints ]]; then names_in "$backup/checkpoints"; else echo "none given (a cut-off tail could not be detected)"; fi)
drill database       $drill_db ($restored_size) $(if [[ $keep == true ]]; then echo kept; else echo dropped; fi)
tables compared      $tables, all equal
                     in the dump   restored   source now
  audit_event        $(printf '%-13s %-10s %s' "$(count_in "$backup/database/row-counts.tsv" audit_event)" "$(count_in "$restored_counts" audit_event)" "$(cut -f1 <<<"$now_counts")")
  timeline_event     $(printf '%-13s %-10s %s' "$(count_in "$backup/database/row-counts.tsv" timeline_event)" "$(count_in "$restored_counts" timeline_event)" "$(cut -f2 <<<"$now_counts")")
keys verify          passed
audit verify         passed
durations (s)        backup ${seconds[backup]}, restore ${seconds[restore]}, keys verify ${seconds[keys_verify]}, audit verify ${seconds[audit_verify]}, total $(elapsed "$started")
SUMMARY
