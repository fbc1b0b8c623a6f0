#!/usr/bin/env bash
# run.sh - runs every unit test binary and end-to-end script, each in its own
# process with a timeout, counts TAP "ok"/"not ok" lines (an "ok ... # SKIP
# reason" is a skip, not a pass), and ends with "N passed, N failed, N skipped".
# Usage: tests/run.sh [pattern]
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${RE_BIN:?RE_BIN must point at the built binaries}"
: "${RE_UNIT:?RE_UNIT must point at the built unit tests}"
export RE_BIN RE_UNIT RE_TESTS="$here"
pattern=${1:-}
# 600 s per script; 1800 s under RE_WRAP (make test VALGRIND=1: memcheck
# makes the GitOps fault trials take ten minutes on a busy two-core machine).
timeout_s=${RE_TEST_TIMEOUT_S:-$([ -n "${RE_WRAP:-}" ] && echo 1800 || echo 600)}
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/re-tests-XXXXXX")
passed=0 failed=0 skipped=0 failed_names=()

run_one() {   # name, command...
    local name=$1; shift
    local out="$log_dir/$(echo "$name" | tr '/' '_').log"
    local start=$SECONDS
    timeout -k 10 "$timeout_s" "$@" >"$out" 2>&1
    local rc=$?
    local ok nok skip skips=
    ok=$(grep -cE '^ok ' "$out")
    nok=$(grep -cE '^not ok ' "$out")
    # TAP: the directive is case-insensitive; "# TODO" stays what it is.
    skip=$(grep -ciE '^ok [^#]*# *skip' "$out")
    ok=$((ok - skip))
    # A script that dies without reporting counts as one failure.
    if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then nok=1; fi
    if [ $((ok + skip)) -eq 0 ] && [ "$nok" -eq 0 ]; then nok=1; echo "not ok - $name reported no test" >>"$out"; fi
    passed=$((passed + ok)); failed=$((failed + nok)); skipped=$((skipped + skip))
    [ "$skip" -eq 0 ] || skips=", $skip skipped"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "not ok - $name timed out after ${timeout_s}s" >>"$out"; fi
    if [ "$nok" -gt 0 ]; then
        failed_names+=("$name")
        echo "FAIL $name ($ok passed, $nok failed$skips, $((SECONDS - start))s, exit $rc)"
        grep -E '^not ok|^#' "$out" | head -40 | sed 's/^/    /'
        tail -n 30 "$out" | sed 's/^/    | /'
    else
        echo "PASS $name ($ok passed$skips, $((SECONDS - start))s)"
    fi
    # Each skip with its reason (the script says why: "not root", "kubectl
    # not installed"), so a pass is never mistaken for a run.
    grep -iE '^ok [^#]*# *skip' "$out" |
        sed -E 's/^ok [0-9]* *-? *//; s/ *# *[Ss][Kk][Ii][Pp]:? */\t/; s/^\t/    skipped: /; s/^(.*)\t(.*)$/    skipped: \1 (\2)/'
}

for t in "$RE_UNIT"/test_*; do
    [ -x "$t" ] || continue
    name="unit/$(basename "$t")"
    [[ -n "$pattern" && "$name" != *"$pattern"* ]] && continue
    run_one "$name" "$t"
done
for t in "$here"/e2e/test_*.sh; do
    [ -f "$t" ] || continue
    name="e2e/$(basename "$t" .sh)"
    [[ -n "$pattern" && "$name" != *"$pattern"* ]] && continue
    run_one "$name" bash "$t"
done
if [ "$failed" -gt 0 ]; then
    echo "failed: ${failed_names[*]} (logs in $log_dir)"
else
    rm -rf "$log_dir"
fi
echo "total time: ${SECONDS}s${RE_WRAP:+ (under RE_WRAP: $RE_WRAP)}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
