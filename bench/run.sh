#!/bin/sh
# make bench: durable end-to-end commands/s with p50/p99 latency, for 1, 16
# and 64 concurrent clients sending Deposits spread over 1000 accounts, on a
# fresh host with a fresh SQLite store.  Every run is bounded in time.
# Prints the figures beside the ceilings measured on this machine
# (../shared/DESIGN.md).  Not a test: nothing here passes or fails on time.
set -e
SECONDS_EACH=${BENCH_SECONDS:-5}
dir=$(mktemp -d /tmp/bctx-bench-XXXXXX)
port=$((21000 + $$ % 4000 * 2))
endpoint="tcp://127.0.0.1:$port"
cat > "$dir/bench.json" <<JSON
{"host": {"name": "bench", "api": "$endpoint", "data": "$dir/data"},
 "contexts": [{"name": "accounts", "plugin": "$(pwd)/plugins/accounts/accounts.so"}]}
JSON
./bin/bctx-host "$dir/bench.json" 2>"$dir/host.log" &
host=$!
trap 'kill $host 2>/dev/null; wait $host 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
for i in $(seq 50); do
    ./bin/bctx -e "$endpoint" --timeout 0.2 contexts >/dev/null 2>&1 && break
    sleep 0.1
done
./bin/bctx-bench -e "$endpoint" --setup --accounts 1000 --max 1 --seconds 0.1 >/dev/null

echo "bctx $(git describe --always --dirty 2>/dev/null || echo '?') on $(nproc) cores;" \
     "durable Deposits over 1000 accounts, ${SECONDS_EACH}s per row"
echo
printf '%-8s %12s %10s %10s\n' clients commands/s p50_us p99_us
for c in 1 16 64; do
    r=$(./bin/bctx-bench -e "$endpoint" --clients $c --accounts 1000 --seconds "$SECONDS_EACH")
    echo "$r" >> "$dir/results.jsonl"
    get() { echo "$r" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
    printf '%-8s %12s %10s %10s\n' "$c" "$(get per_second)" "$(get p50_us)" "$(get p99_us)"
done
stats=$(./bin/bctx -e "$endpoint" stats)
echo
echo "commands per commit (group commit), whole run: $(echo "$stats" | sed -n 's/.*"commands_per_commit":\([0-9.]*\).*/\1/p')"
echo
echo "Ceilings on this machine (../shared/DESIGN.md):"
echo "  SQLite WAL, synchronous=FULL, 1 event per transaction    ~5.7 k events/s"
echo "  SQLite WAL, synchronous=FULL, 100 events per transaction ~106 k events/s"
echo "  fdatasync of a small write                               ~195 us"
echo "Peers, same workload (1 client / 16 clients):"
echo "  PostgreSQL 15  5.9 k/s p50 161 us  /  21.5 k/s p50 691 us"
echo "  Redis 7 (appendfsync always)  4.8 k/s p50 205 us  /  31.3 k/s p50 439 us"
echo "  NATS JetStream (not durable)  8.3 k/s p50 114 us  /  34.2 k/s p50 369 us"
