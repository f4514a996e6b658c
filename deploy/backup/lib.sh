# shellcheck shell=bash disable=SC2034 # the URL_* globals and ROW_COUNT_SQL are for the callers
# Shared helpers of backup.sh and restore-drill.sh. Sourced, never run.
#
# Why a library: both scripts must take PostgreSQL URLs apart the same way (to keep passwords
# off command lines, where `ps` shows them to every local user) and must count rows the same
# way (the drill compares the two counts).

# The name printed before every message; each script sets it.
PROG=${PROG:-tsunagu-backup}

log() {
    printf '%s %s: %s\n' "$(date -u +%H:%M:%SZ)" "$PROG" "$*" >&2
}

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

usage_error() {
    printf '%s: %s (see --help)\n' "$PROG" "$*" >&2
    exit 2
}

need_commands() {
    local missing=()
    for command in "$@"; do
        command -v "$command" >/dev/null 2>&1 || missing+=("$command")
    done
    if ((${#missing[@]})); then
        die "missing commands: ${missing[*]} (install the PostgreSQL client tools and coreutils)"
    fi
}

# Percent-decoding of one URL component (%40 -> @).
pct_decode() {
    local value=${1//\\/\\\\}
    printf '%b' "${value//%/\\x}"
}

# Splits a libpq/sqlx URL, postgres[ql]://[user[:password]@]host[:port][/db][?params], into
# URL_SCHEME URL_USER URL_PASSWORD (decoded) URL_HOST URL_DB URL_QUERY. The host part is kept
# verbatim, so host lists and percent-encoded socket directories survive.
url_parse() {
    local url=$1
    local re='^(postgres|postgresql)://(([^:@/?]*)(:([^@/?]*))?@)?([^/?]*)(/([^?]*))?(\?(.*))?$'
    [[ $url =~ $re ]] || die "not a postgres:// URL: ${url%%://*}://…"
    URL_SCHEME=${BASH_REMATCH[1]}
    URL_USER=${BASH_REMATCH[3]}
    URL_PASSWORD=$(pct_decode "${BASH_REMATCH[5]}")
    URL_HOST=${BASH_REMATCH[6]}
    URL_DB=$(pct_decode "${BASH_REMATCH[8]}")
    URL_QUERY=${BASH_REMATCH[10]}
}

# The URL parsed last, without its password, for database $1 (default: the same one).
url_without_password() {
    local db=${1-$URL_DB} url="$URL_SCHEME://"
    [[ -n $URL_USER ]] && url+="$URL_USER@"
    url+="$URL_HOST/$db"
    [[ -n $URL_QUERY ]] && url+="?$URL_QUERY"
    printf '%s' "$url"
}

# The URL for display: user, host and database only.
url_display() {
    local url="$URL_SCHEME://"
    [[ -n $URL_USER ]] && url+="$URL_USER@"
    printf '%s%s/%s' "$url" "$URL_HOST" "$URL_DB"
}

# Runs a command with PGPASSWORD=$1 when $1 is not empty (otherwise the caller's PGPASSWORD,
# PGPASSFILE or ~/.pgpass apply, as libpq and sqlx both read them).
with_password() {
    local password=$1
    shift
    if [[ -n $password ]]; then
        PGPASSWORD=$password "$@"
    else
        "$@"
    fi
}

# psql for scripts: no ~/.psqlrc, unaligned tuples only, stop at the first error.
psql_script() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 -w "$@"
}

# One line per table of the public schema: name TAB rows. query_to_xml runs the count inside
# the calling transaction, so in the backup's exported snapshot it counts exactly what
# pg_dump saw.
# shellcheck disable=SC2016 # $-free SQL; the quotes are SQL's
ROW_COUNT_SQL="select c.relname || chr(9) || (xpath('/row/n/text()',
    query_to_xml(format('select count(*) as n from %I.%I', n.nspname, c.relname),
                 false, true, '')))[1]::text
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('r', 'p')
 order by c.relname;"

# Human-readable size of a file or directory.
size_of() {
    du -sh -- "$1" 2>/dev/null | cut -f1
}

# Mode of a path in octal (GNU stat).
mode_of() {
    stat -c %a -- "$1"
}

# Refuses a directory that other users can read or enter.
require_private_dir() {
    local dir=$1 mode
    mode=$(mode_of "$dir")
    if (( 8#$mode & 8#007 )); then
        die "$dir is accessible to other users (mode $mode): backups hold the keys that open \
every patient's data. Use a directory with mode 0700 or 0750 (chmod o-rwx $dir)"
    fi
}

# Wall-clock seconds since $1 (from now_s), one decimal.
now_s() {
    date +%s.%N
}
elapsed() {
    awk -v start="$1" -v end="$(now_s)" 'BEGIN { printf "%.1f", end - start }'
}
