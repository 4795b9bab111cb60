#!/bin/sh
# make bench: the figures the issues ask for, each run bounded in time, on
# fresh hosts with fresh SQLite stores under a temporary directory.
#   1. durable Deposits over 1000 accounts: commands/s, p50, p99 for 1, 16
#      and 64 clients (accounts context alone);
#   2. the bank (accounts + transfers): live lag of the balances projection
#      under 16-client Deposit load, and end-to-end transfers/s, with the
#      transfer-process reactor on BENCH_LANES lanes (default 64);
#   3. projection catch-up over a 1 000 000-event log;
#   4. the pause a client sees while a context is reloaded (a handover
#      between two context processes), 20 times;
#   5. two bridged hosts: a bridge catching up a 1 000 000-event log, the
#      round trip of commands forwarded to a peer, and live bridging;
#   6. a context process's crash: from the crash to its first served
#      command (tests/plugins/fault.so).
# First bin/bctx-ceiling measures, on the same disk (a folder of the same
# temporary directory), fdatasync and SQLite's write and read ceilings, so
# that the figures are read against ceilings of this run, not of another day.
# Not a test: nothing here passes or fails on time.
set -e
SECONDS_EACH=${BENCH_SECONDS:-5}
CATCHUP_EVENTS=${BENCH_CATCHUP_EVENTS:-1000000}
dir=$(mktemp -d /tmp/bctx-bench-XXXXXX)
port=$((21000 + $$ % 4000 * 2))
endpoint="tcp://127.0.0.1:$port"
host=""
trap '[ -n "$host" ] && kill $host 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT INT TERM

# start_host NAME CONTEXTS-JSON: a host on $dir/NAME, waiting until it answers.
start_host () {
    mkdir -p "$dir/$1"
    cat > "$dir/$1/host.json" <<JSON
{"host": {"name": "bench", "api": "$endpoint", "data": "$dir/$1/data"}, "contexts": $2}
JSON
    ./bin/bctx-host "$dir/$1/host.json" 2>"$dir/$1/host.log" &
    host=$!
    for i in $(seq 100); do
        ./bin/bctx -e "$endpoint" --timeout 0.2 contexts >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench: host did not start:"; cat "$dir/$1/host.log"; exit 1
}
stop_host () { kill -INT $host; wait $host 2>/dev/null || true; host=""; }
get () { echo "$1" | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p"; }

ACCOUNTS="[{\"name\": \"accounts\", \"plugin\": \"$(pwd)/plugins/accounts/accounts.so\"}]"
LANES=${BENCH_LANES:-64}
BANK="[{\"name\": \"accounts\", \"plugin\": \"$(pwd)/plugins/accounts/accounts.so\"},
       {\"name\": \"transfers\", \"plugin\": \"$(pwd)/plugins/transfers/transfers.so\",
        \"reactor_lanes\": $LANES}]"

echo "bctx $(git describe --always --dirty 2>/dev/null || echo '?') on $(nproc) cores," \
     "$(date -u +%Y-%m-%d); ${SECONDS_EACH}s per load row"
echo
mkdir -p "$dir/ceiling"
ceil=$(./bin/bctx-ceiling "$dir/ceiling") || { echo "bench: bin/bctx-ceiling failed"; exit 1; }
sync_p50=$(get "$ceil" fdatasync_p50_us)
sql1=$(get "$ceil" sqlite_1_per_tx_per_second)
sql100=$(get "$ceil" sqlite_100_per_tx_per_second)
echo "Ceilings measured now on this disk ($(df -P "$dir" | awk 'NR == 2 {print $1}'), each for 3 s or a fixed count)"
echo "   fdatasync of a 200-byte append: p50 $sync_p50 us, p99 $(get "$ceil" fdatasync_p99_us) us" \
     "($(get "$ceil" fdatasync_per_second) syncs/s)"
echo "   raw append + fdatasync, 1000 200-byte records per sync: $(get "$ceil" batch_records_per_second) records/s"
echo "   SQLite WAL, synchronous=FULL, 1 event per transaction:    $sql1 events/s"
echo "   SQLite WAL, synchronous=FULL, 100 events per transaction: $sql100 events/s"
echo "   SQLite sequential read of that log ($(get "$ceil" read_events) events):" \
     "$(get "$ceil" sqlite_read_per_second) events/s"

echo
echo "1. Durable Deposits over 1000 accounts (each acknowledged only once fsynced)"
echo "   /1-tx, /100-tx: commands/s over the SQLite ceilings above (1 and 100 events per transaction)"
start_host commands "$ACCOUNTS"
./bin/bctx-bench -e "$endpoint" --setup --accounts 1000 --max 1 --seconds 0.1 >/dev/null
printf '   %-8s %12s %10s %10s %8s %8s  %s\n' clients commands/s p50_us p99_us "/1-tx" "/100-tx" "p50 against fdatasync"
for c in 1 16 64; do
    r=$(./bin/bctx-bench -e "$endpoint" --clients $c --accounts 1000 --seconds "$SECONDS_EACH")
    awk -v c="$c" -v n="$(get "$r" per_second)" -v p50="$(get "$r" p50_us)" -v p99="$(get "$r" p99_us)" \
        -v s1="$sql1" -v s100="$sql100" -v f="$sync_p50" 'BEGIN {
        r1 = s1 > 0 ? n / s1 : 0; r100 = s100 > 0 ? n / s100 : 0
        d = p50 - f; sign = d < 0 ? "-" : "+"; d = d < 0 ? -d : d
        printf "   %-8s %12s %10s %10s %7.2fx %7.2fx  p50 %s us = fdatasync p50 %s %d us\n",
               c, n, p50, p99, r1, r100, p50, sign, d
    }'
done
stats=$(./bin/bctx -e "$endpoint" stats)
echo "   commands per commit (group commit), whole run: $(get "$stats" commands_per_commit)"
stop_host

echo
echo "2. The bank: accounts + transfers (balances projection, transfer-process reactor)"
start_host bank "$BANK"
./bin/bctx-bench -e "$endpoint" --setup --accounts 1000 --max 1 --seconds 0.1 >/dev/null
r=$(./bin/bctx-bench -e "$endpoint" --clients 16 --accounts 1000 --seconds "$SECONDS_EACH" --probe balances)
echo "   16 clients of Deposits: $(get "$r" per_second) commands/s;" \
     "balances projection lag after the ack: p50 $(get "$r" lag_p50_us) us," \
     "p99 $(get "$r" lag_p99_us) us ($(get "$r" probes) probes)"
r=$(./bin/bctx-bench -e "$endpoint" --clients 16 --accounts 1000 --seconds 60 --transfers 5000)
echo "   transfers end to end (request, withdraw, deposit, complete; 16 clients; reactor_lanes $LANES):" \
     "$(get "$r" per_second) transfers/s ($(get "$r" done) in $(get "$r" seconds) s)"
stop_host

echo
echo "3. Projection catch-up over a ${CATCHUP_EVENTS}-event accounts log"
mkdir -p "$dir/catchup/data"
./bin/bctx-fill "$dir/catchup/data/accounts.db" "$CATCHUP_EVENTS" 1000 >/dev/null
start_host catchup "$BANK"
for i in $(seq 600); do
    grep -q "projection balances: caught up" "$dir/catchup/host.log" && break
    sleep 0.1
done
line=$(grep "projection balances: caught up" "$dir/catchup/host.log" || echo "did not finish in 60 s")
echo "   ${line#*INFO }"
stop_host

echo
echo "4. Hot swap: 20 reloads of accounts (alternating 1.0.0 and 2.0.0) under 16-client Deposit load," \
     "each a handover from the old context process to a new one"
start_host reload "$ACCOUNTS"
./bin/bctx-bench -e "$endpoint" --setup --accounts 1000 --max 1 --seconds 0.1 >/dev/null
./bin/bctx-bench -e "$endpoint" --clients 16 --accounts 1000 --seconds 2 >/dev/null
r=$(./bin/bctx-bench -e "$endpoint" --clients 16 --accounts 1000 --seconds 10 --reloads 20 \
      --reload-plugins "$(pwd)/plugins/accounts/accounts_v2.so,$(pwd)/plugins/accounts/accounts.so" \
      --admin "ipc://$dir/reload/data/run/admin.sock")
echo "   longest command in flight at each switch (or sent within 10 ms after it): p50 $(get "$r" pause_p50_us) us," \
     "p99 $(get "$r" pause_p99_us) us, max $(get "$r" pause_max_us) us" \
     "($(get "$r" reloads) reloads, $(get "$r" reload_errors) failed, $(get "$r" errors) client errors)"
echo "   the same measure half-way between reloads (the load's own tail):" \
     "p50 $(get "$r" calm_p50_us) us, max $(get "$r" calm_max_us) us;" \
     "the load's own p99 $(get "$r" p99_us) us (issue 9's aim: the longest at a switch under it + 2 ms)"
stop_host

echo
echo "5. Two hosts: A runs accounts; B runs transfers and bridges accounts from A"
porta=$((port + 100)); portb=$((port + 102))
mkdir -p "$dir/a/data" "$dir/b"
./bin/bctx-fill "$dir/a/data/accounts.db" "$CATCHUP_EVENTS" 1000 >/dev/null
cat > "$dir/a/host.json" <<JSON
{"host": {"name": "a", "api": "tcp://127.0.0.1:$porta", "publish": "tcp://127.0.0.1:$((porta + 1))",
          "data": "$dir/a/data"},
 "contexts": [{"name": "accounts", "plugin": "$(pwd)/plugins/accounts/accounts.so"}]}
JSON
cat > "$dir/b/host.json" <<JSON
{"host": {"name": "b", "api": "tcp://127.0.0.1:$portb", "publish": "tcp://127.0.0.1:$((portb + 1))",
          "data": "$dir/b/data"},
 "peers": [{"name": "a", "api": "tcp://127.0.0.1:$porta", "publish": "tcp://127.0.0.1:$((porta + 1))"}],
 "contexts": [{"name": "accounts", "peer": "a"},
              {"name": "transfers", "plugin": "$(pwd)/plugins/transfers/transfers.so"}]}
JSON
./bin/bctx-host "$dir/a/host.json" 2>"$dir/a/host.log" &
hosta=$!
sleep 0.5
t0=$(date +%s.%N)
./bin/bctx-host "$dir/b/host.json" 2>"$dir/b/host.log" &
hostb=$!
host="$hosta $hostb"
ea="tcp://127.0.0.1:$porta"; eb="tcp://127.0.0.1:$portb"
for i in $(seq 1200); do
    c=$(./bin/bctx -e "$eb" --timeout 1 stats 2>/dev/null | sed -n 's/.*"bridges":{"accounts":{[^}]*"checkpoint":\([0-9]*\).*/\1/p')
    [ "$c" = "$CATCHUP_EVENTS" ] && break
    sleep 0.05
done
t1=$(date +%s.%N)
echo "   B's bridge caught up ${c:-0} events from A in $(awk "BEGIN {printf \"%.2f\", $t1 - $t0}") s" \
     "($(awk "BEGIN {printf \"%.0f\", ${c:-0} / ($t1 - $t0)}") events/s, including B's start)"
# A's 1000 accounts have 1000 events each: the first command to each
# folds its stream.  Warm every one first (--setup sends each account one
# command), so that the local and the forwarded rows below measure the
# same warm A, one after the other.
./bin/bctx-bench -e "$ea" --setup --accounts 1000 --max 1 --seconds 0.1 --timeout 20000 >/dev/null
r=$(./bin/bctx-bench -e "$ea" --clients 1 --accounts 1000 --seconds "$SECONDS_EACH")
local_p50=$(get "$r" p50_us)
echo "   Deposits sent to A itself, 1 client: $(get "$r" per_second) commands/s," \
     "p50 $local_p50 us, p99 $(get "$r" p99_us) us"
for c in 1 16; do
    r=$(./bin/bctx-bench -e "$eb" --clients $c --accounts 1000 --seconds "$SECONDS_EACH")
    extra=""
    [ "$c" = 1 ] && extra=" (p50 $(( $(get "$r" p50_us) - local_p50 )) us over A's own)"
    echo "   Deposits sent to B, forwarded to A, $c client(s): $(get "$r" per_second) commands/s," \
         "p50 $(get "$r" p50_us) us, p99 $(get "$r" p99_us) us$extra"
done
r=$(./bin/bctx-bench -e "$ea" --clients 16 --accounts 1000 --seconds "$SECONDS_EACH")
sleep 1
s=$(./bin/bctx -e "$eb" stats)
echo "   16 clients of Deposits on A: $(get "$r" per_second) commands/s; B's bridge after it:" \
     "lag $(echo "$s" | sed -n 's/.*"bridges":{"accounts":{[^}]*"lag":\([0-9]*\).*/\1/p') events," \
     "$(echo "$s" | sed -n 's/.*"bridges":{"accounts":{[^}]*"live":\([0-9]*\).*/\1/p') taken live"
kill -INT $hosta $hostb; wait $hosta $hostb 2>/dev/null || true
host=""

echo
echo "6. A context process's crash: the decide of context fault segfaults (tests/plugins/fault.so), 3 times"
mkdir -p "$dir/faultdir"
start_host fault "[{\"name\": \"accounts\", \"plugin\": \"$(pwd)/plugins/accounts/accounts.so\"},
  {\"name\": \"fault\", \"plugin\": \"$(pwd)/tests/plugins/fault.so\",
   \"settings\": {\"dir\": \"$dir/faultdir\", \"fault\": \"segv\", \"in\": \"decide\"}}]"
took=""
for round in 1 2 3; do
    touch "$dir/faultdir/armed"
    t0=$(date +%s%N)
    ./bin/bctx -e "$endpoint" --timeout 5 send fault Hit '{"id":"x"}' >/dev/null 2>&1 || true
    rm -f "$dir/faultdir/armed"
    for i in $(seq 2000); do
        ./bin/bctx -e "$endpoint" --timeout 1 send fault Hit '{"id":"y"}' >/dev/null 2>&1 && break
    done
    t1=$(date +%s%N)
    took="$took $(( (t1 - t0) / 1000000 )) ms,"
    # A run of 10 s resets the back-off: each round starts from 100 ms.
    [ $round -lt 3 ] && sleep 10.5
done
echo "   from the crash to the first command served again:${took%,}" \
     "(100 ms of back-off included; the log: $(grep -o 'serving again, [0-9]* ms after its start' \
     "$dir/fault/host.log" | sed 's/serving again, //; s/ after its start//' | tr '\n' ' ')from each new process's start)"
stop_host

echo
echo "Peers (PostgreSQL and Redis, durable, on the same durable-append workload) are measured side by" \
     "side with bctx by make bench-peers."
