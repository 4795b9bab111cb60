#!/bin/sh
# Runs the whole suite against the build in $O (default: the source tree):
# every cmocka unit test, then every integration test, which start the real
# bin/bctx-host and bin/bctx.  Prints "N passed, N failed" last and exits
# non-zero if anything failed.
O=${O:-.}
export BCTX_BUILD="$(cd "$O" && pwd)"
export BCTX_SOURCE="$(pwd)"
# LeakSanitizer: fail on leaks; libzmq/sqlite internals keep nothing we own.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
passed=0
failed=0
failures=""
label=${SAN:+" (ASan+UBSan)"}
word=suites
[ -n "$SAN" ] && word=sanitized
for t in "$O"/tests/unit/test_* "$O"/tests/integration/test_*; do
    case "$t" in *.c|*.o|*\*) continue ;; esac
    [ -x "$t" ] || continue
    echo "== $(basename "$t")$label"
    if "$t"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures="$failures $(basename "$t")"
    fi
done
echo
[ -n "$failures" ] && echo "failed:$failures"
echo "$word: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
