#!/bin/sh
# Runs every libFuzzer target built under $O (default build/fuzz) for
# $FUZZ_SECONDS seconds each (default 60), over a copy of its seed corpus
# (tests/fuzz/corpus/<target>/) in a temporary directory, so a run never
# writes into the repository.  libFuzzer prints what ran (execs, coverage).
# A crash, leak, UB or timeout fails the run; the input that caused it is
# kept in $O/fuzz-artifacts/<target>/ to be added to the corpus once fixed.
O=${O:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
work=$(mktemp -d "${TMPDIR:-/tmp}/bctx-fuzz-run.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
passed=0
failed=""
for bin in "$O"/tests/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
    [ -d "tests/fuzz/corpus/$name" ] && cp tests/fuzz/corpus/"$name"/* "$work/$name/corpus/"
    echo "== $name: $FUZZ_SECONDS s"
    if "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
            -max_len=8192 -print_final_stats=1 \
            -artifact_prefix="$work/$name/artifacts/" "$work/$name/corpus" \
            > "$work/$name/log" 2>&1; then
        # The progress lines are many: show the last few and the stats.
        grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^Done|^stat::' "$work/$name/log"
        passed=$((passed + 1))
    else
        tail -n 60 "$work/$name/log"
        mkdir -p "$O/fuzz-artifacts/$name"
        cp "$work/$name/artifacts/"* "$O/fuzz-artifacts/$name/" 2>/dev/null
        echo "$name FAILED; the input is in $O/fuzz-artifacts/$name/:"
        ls "$O/fuzz-artifacts/$name/" 2>/dev/null
        failed="$failed $name"
    fi
done
echo
[ -n "$failed" ] && echo "fuzz failed:$failed"
echo "fuzz: $passed passed, $(echo $failed | wc -w) failed"
[ -z "$failed" ] && [ "$passed" -gt 0 ]
