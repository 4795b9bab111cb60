#!/bin/sh
# make bench-peers: bctx beside PostgreSQL 15 and Redis in one run, on the
# same durable-append workload (issue 10), at 1, 16 and 64 clients:
#   one event per request to 1000 streams, a 200-byte JSON payload, each
#   acknowledged only once durable, with an expected-version check.
# PostgreSQL (bin/bctx-peer-pg): an autocommit INSERT per event, UNIQUE
# (stream, version), fsync=on, synchronous_commit=on.  Redis
# (bin/bctx-peer-redis): XADD acct-<s> 0-<version>, appendonly yes,
# appendfsync always, save "".  bctx: bin/bctx-bench's Deposits to the
# accounts plugin over 1000 accounts, on a fresh host and store per row.
# After each run the stored count must equal the acknowledged one and a
# stale version must be refused (the peers' clients check both; for bctx
# bin/bctx-peer-check reads the log the host left): else the script says
# what differs and exits 1.
# First bin/bctx-ceiling measures fdatasync and SQLite's batched ceiling on
# the same disk.  Each server runs on 127.0.0.1 on a free port with its
# data in a temporary folder, and is stopped by the PID it was started
# with.  Each run stops after BENCH_SECONDS (default 10) or BENCH_EVENTS
# events (default 300000), whichever comes first; the whole script takes
# about 2 to 3 minutes.  Not a test: nothing here passes or fails on time.
set -e
SECONDS_EACH=${BENCH_SECONDS:-10}
MAX_EVENTS=${BENCH_EVENTS:-300000}
CLIENTS="1 16 64"
PGBIN=/usr/lib/postgresql/15/bin
bin="${O:-.}/bin"
plugin="$(cd "${O:-.}" && pwd)/plugins/accounts/accounts.so"
dir=$(mktemp -d /tmp/bctx-peers-XXXXXX)
started=""      # PIDs of the servers running now, each "PID:SIGNAL"
trap 'stop_all; rm -rf "$dir"' EXIT
trap 'exit 1' INT TERM

fail () { echo "bench-peers: $*" >&2; exit 1; }
say () { echo "bench-peers: $(date -u +%T) $*" >&2; }
get () { echo "$1" | sed -n "s/.*\"$2\":\([0-9.a-z]*\).*/\1/p"; }

# stop PID SIGNAL: asks a server we started to stop, waits up to 20 s,
# then kills it.
stop () {
    kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
    kill -"$2" "$1" 2>/dev/null || true
    for i in $(seq 200); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$1" 2>/dev/null && { say "PID $1 did not stop in 20 s: killing it"; kill -KILL "$1"; }
    wait "$1" 2>/dev/null || true
    started=$(echo "$started" | sed "s/ *$1:[A-Z]*//")
}
stop_all () { for s in $started; do stop "${s%%:*}" "${s#*:}"; done; }

# free_port BASE: the first port from BASE on that no TCP socket uses.
free_port () {
    p=$1
    while ss -Htan 2>/dev/null | awk '{print $4}' | grep -q ":$p\$"; do
        p=$((p + 1))
    done
    echo "$p"
}

# wait_until WHAT COMMAND...: runs COMMAND every 0.1 s, for at most 30 s.
wait_until () {
    what=$1; shift
    for i in $(seq 300); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# run LABEL COMMAND...: one bounded load run; its JSON on stdout.
run () {
    label=$1; shift
    say "$label"
    timeout $((${SECONDS_EACH%.*} + 60)) "$@" || fail "$label: the run failed (see above)"
}

for tool in "$bin/bctx-host" "$bin/bctx" "$bin/bctx-bench" "$bin/bctx-ceiling" \
            "$bin/bctx-peer-pg" "$bin/bctx-peer-redis" "$bin/bctx-peer-check" \
            "$PGBIN/initdb" "$PGBIN/postgres" "$PGBIN/pg_isready" redis-server redis-cli; do
    command -v "$tool" >/dev/null || fail "$tool is missing: run make bench-peers, which installs and builds it"
done
[ -f "$plugin" ] || fail "$plugin is missing: run make bench-peers"

# Below Linux's ephemeral ports (32768 on), where clients' sockets live.
base=$((20000 + $$ % 1000 * 8))

# --- ceilings of this disk, before any server runs ---------------------
say "measuring fdatasync and SQLite's ceilings in $dir"
mkdir -p "$dir/ceiling"
ceil=$("$bin/bctx-ceiling" "$dir/ceiling") || fail "bin/bctx-ceiling failed"
sync_p50=$(get "$ceil" fdatasync_p50_us)
sql100=$(get "$ceil" sqlite_100_per_tx_per_second)
sql1=$(get "$ceil" sqlite_1_per_tx_per_second)

# --- PostgreSQL 15 -------------------------------------------------------
# As root, initdb and postgres run as the postgres user (setpriv execs, so
# the PID we keep is the server's own); the folder must let it in.
mkdir -p "$dir/pg"
as_pg=""
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || fail "no postgres user to run PostgreSQL as (the postgresql-15 package creates it)"
    chmod 755 "$dir"
    chown postgres: "$dir/pg"
    as_pg="setpriv --reuid=postgres --regid=postgres --init-groups"
fi
pgport=$(free_port "$base")
$as_pg "$PGBIN/initdb" -D "$dir/pg/data" -U bench --auth=trust -E UTF8 --locale=C \
    >"$dir/pg/initdb.log" 2>&1 || { cat "$dir/pg/initdb.log" >&2; fail "initdb failed"; }
$as_pg "$PGBIN/postgres" -D "$dir/pg/data" -c listen_addresses=127.0.0.1 -c port="$pgport" \
    -c unix_socket_directories="$dir/pg" -c fsync=on -c synchronous_commit=on \
    -c max_connections=80 >"$dir/pg/server.log" 2>&1 &
pgpid=$!
started="$started $pgpid:INT"
wait_until "PostgreSQL" "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$pgport" \
    || { tail "$dir/pg/server.log" >&2; fail "PostgreSQL did not start on 127.0.0.1:$pgport"; }
pgconn="host=127.0.0.1 port=$pgport user=bench dbname=postgres"
pgversion=$("$PGBIN/postgres" --version | awk '{print $3}')
for c in $CLIENTS; do
    r=$(run "PostgreSQL, $c clients" "$bin/bctx-peer-pg" --target "$pgconn" --clients "$c" \
        --seconds "$SECONDS_EACH" --max "$MAX_EVENTS")
    eval "pg_n_$c=$(get "$r" per_second) pg_p_$c=$(get "$r" p50_us)"
done
stop "$pgpid" INT

# --- Redis ----------------------------------------------------------------
mkdir -p "$dir/redis"
rport=$(free_port $((base + 1000)))
cat > "$dir/redis/redis.conf" <<CONF
bind 127.0.0.1
port $rport
dir $dir/redis
daemonize no
save ""
appendonly yes
appendfsync always
auto-aof-rewrite-percentage 0
logfile $dir/redis/server.log
CONF
redis-server "$dir/redis/redis.conf" &
rpid=$!
started="$started $rpid:TERM"
wait_until "Redis" redis-cli -h 127.0.0.1 -p "$rport" ping \
    || { tail "$dir/redis/server.log" >&2; fail "Redis did not start on 127.0.0.1:$rport"; }
rversion=$(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
for c in $CLIENTS; do
    r=$(run "Redis, $c clients" "$bin/bctx-peer-redis" --target "127.0.0.1:$rport" \
        --clients "$c" --seconds "$SECONDS_EACH" --max "$MAX_EVENTS")
    eval "r_n_$c=$(get "$r" per_second) r_p_$c=$(get "$r" p50_us)"
done
stop "$rpid" TERM

# --- bctx -------------------------------------------------------------------
# A fresh host and store for each row, the accounts opened first (and one
# Deposit per client of the setup run, counted with the acknowledged).
bport=$(free_port $((base + 2000)))
endpoint="tcp://127.0.0.1:$bport"
for c in $CLIENTS; do
    d="$dir/bctx-$c"
    mkdir -p "$d"
    cat > "$d/host.json" <<JSON
{"host": {"name": "peers", "api": "$endpoint", "data": "$d/data"},
 "contexts": [{"name": "accounts", "plugin": "$plugin"}]}
JSON
    "$bin/bctx-host" "$d/host.json" 2>"$d/host.log" &
    hpid=$!
    started="$started $hpid:INT"
    wait_until "bctx" "$bin/bctx" -e "$endpoint" --timeout 0.2 contexts \
        || { tail "$d/host.log" >&2; fail "bctx-host did not start on $endpoint"; }
    s=$("$bin/bctx-bench" -e "$endpoint" --setup --accounts 1000 --max 1 --seconds 0.1) \
        || fail "bctx: could not open the 1000 accounts"
    r=$(run "bctx, $c clients" "$bin/bctx-bench" -e "$endpoint" --clients "$c" --accounts 1000 \
        --seconds "$SECONDS_EACH" --max $((MAX_EVENTS / c)))
    [ "$(get "$r" errors)" = 0 ] && [ "$(get "$r" timeouts)" = 0 ] \
        || fail "bctx, $c clients: $(get "$r" errors) error replies and $(get "$r" timeouts) timeouts: $r"
    stop "$hpid" INT
    acked=$(( $(get "$s" commands) + $(get "$r" commands) ))
    "$bin/bctx-peer-check" "$d/data/accounts.db" "$acked" >/dev/null \
        || fail "bctx, $c clients: the check of the log failed (see above)"
    eval "b_n_$c=$(get "$r" per_second) b_p_$c=$(get "$r" p50_us)"
done

# --- the table ----------------------------------------------------------------
echo "bctx $(git describe --always --dirty 2>/dev/null || echo '?') beside PostgreSQL $pgversion and Redis $rversion," \
     "$(nproc) cores, $(date -u +%Y-%m-%d); each row ${SECONDS_EACH} s or $MAX_EVENTS events"
echo "one event per request to 1000 streams, 200-byte JSON, acknowledged once durable, expected-version check;"
echo "every run checked: stored = acknowledged, a stale version refused"
echo
echo "| clients | PostgreSQL events/s (p50 µs) | Redis events/s (p50 µs) | bctx events/s (p50 µs) | bctx / best peer |"
echo "|---|---|---|---|---|"
for c in $CLIENTS; do
    eval "pn=\$pg_n_$c pp=\$pg_p_$c rn=\$r_n_$c rp=\$r_p_$c bn=\$b_n_$c bp=\$b_p_$c"
    awk -v c="$c" -v pn="$pn" -v pp="$pp" -v rn="$rn" -v rp="$rp" -v bn="$bn" -v bp="$bp" 'BEGIN {
        best = pn > rn ? pn : rn; who = pn > rn ? "PostgreSQL" : "Redis"
        ratio = best > 0 ? bn / best : 0
        printf "| %s | %d (%d) | %d (%d) | %d (%d) | %.2fx (%s) |\n",
               c, pn, pp, rn, rp, bn, bp, ratio, who
    }'
done
echo
echo "Same run, same disk ($(df -P "$dir" | awk 'NR == 2 {print $1}')): fdatasync of a 200-byte append p50 $sync_p50 µs;" \
     "SQLite WAL synchronous=FULL $sql1 events/s at 1 event per transaction," \
     "$sql100 events/s at 100 (the batched ceiling)"
