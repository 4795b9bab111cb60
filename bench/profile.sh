#!/bin/sh
# make profile: host instructions per durable Deposit, under callgrind.
# The host (the supervisor and its context process, exec'd again under
# valgrind with --trace-children) serves a one-client Deposit load twice:
# FEW commands in one run, MANY in another, each on a fresh host after the
# same setup.  The difference of the two runs' instruction counts over the
# difference of their commands cancels the start and the stop, which cost
# the same in both.  Prints the figure per process and in all, and the
# functions of the context process and the supervisor that cost the most
# in the longer run.  Not a test: nothing here passes or fails.
set -e
FEW=${PROFILE_FEW:-300}
MANY=${PROFILE_MANY:-1300}
dir=$(mktemp -d /tmp/bctx-profile-XXXXXX)
port=$((25000 + $$ % 3000 * 2))
endpoint="tcp://127.0.0.1:$port"
host=""
trap '[ -n "$host" ] && kill $host 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT INT TERM

# run NAME N: a fresh host under callgrind, 200 setup Deposits, then N
# more from one client; leaves its callgrind files in $dir/NAME.
run () {
    mkdir -p "$dir/$1"
    cat > "$dir/$1/host.json" <<JSON
{"host": {"name": "profile", "api": "$endpoint", "data": "$dir/$1/data",
          "handler_timeout_ms": 60000},
 "contexts": [{"name": "accounts", "plugin": "$(pwd)/plugins/accounts/accounts.so"}]}
JSON
    valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file="$dir/$1/callgrind.%p" \
        ./bin/bctx-host "$dir/$1/host.json" 2>"$dir/$1/host.log" &
    host=$!
    for i in $(seq 300); do
        ./bin/bctx -e "$endpoint" --timeout 1 contexts >/dev/null 2>&1 && break
        sleep 0.2
    done
    ./bin/bctx-bench -e "$endpoint" --setup --accounts 1000 --max 1 --seconds 60 \
        --timeout 20000 >/dev/null
    ./bin/bctx-bench -e "$endpoint" --clients 1 --accounts 1000 --max "$2" --seconds 600 \
        --timeout 20000 > "$dir/$1/load.json"
    kill -INT $host
    wait $host 2>/dev/null || true
    host=""
}

# total FILE: the instructions a callgrind file counted.
total () { sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$1" | head -1; }

# the_context NAME / the_supervisor NAME: which file is whose (the
# context process's command line names --context).
the_context () { grep -l "^cmd:.*--context" "$dir/$1"/callgrind.* | head -1; }
the_supervisor () { grep -L "^cmd:.*--context" "$dir/$1"/callgrind.* | head -1; }

get () { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1"; }

echo "bctx $(git describe --always --dirty 2>/dev/null || echo '?'), $(date -u +%Y-%m-%d):" \
     "host instructions per durable Deposit (callgrind, 1 client, $FEW and $MANY commands)"
run few "$FEW"
run many "$MANY"
n_few=$(get "$dir/few/load.json" commands)
n_many=$(get "$dir/many/load.json" commands)
[ -n "$n_few" ] && [ -n "$n_many" ] && [ "$n_many" -gt "$n_few" ] \
    || { echo "profile: the loads did not run (see the host logs)"; exit 1; }
sum=0
for who in context supervisor; do
    a=$(total "$(the_$who few)")
    b=$(total "$(the_$who many)")
    per=$(( (b - a) / (n_many - n_few) ))
    sum=$((sum + per))
    printf "  %-20s %8d instructions per Deposit\n" "$who process" "$per"
done
printf "  %-20s %8d instructions per Deposit (%d and %d commands)\n" "both" "$sum" \
       "$n_few" "$n_many"
for who in context supervisor; do
    echo
    echo "  $who process, the $MANY-command run (start and stop included), costliest functions:"
    callgrind_annotate --inclusive=no "$(the_$who many)" 2>/dev/null \
        | sed -n '/^-\{10,\}/,$p' | grep -E '^ *[0-9,]+ ' | head -15 | sed 's/^/    /'
done
