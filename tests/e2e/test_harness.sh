#!/usr/bin/env bash
# test_harness.sh - the e2e harness itself: check_exit passes only on the exact
# code, and done_testing fails when a log in $T holds a sanitizer report.
# Each case runs lib.sh in a subshell whose $T lies outside ours (a fake report
# in our $T would fail this script too) and reads its TAP output.
. "$(dirname "$0")/lib.sh"
LIB=$(cd "$(dirname "$0")" && pwd)/lib.sh
SUB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/re-harness-XXXXXX")
trap 'rm -rf "$SUB_TMP"; _cleanup' EXIT

# sub SCRIPT: runs SCRIPT after sourcing lib.sh in a fresh bash; prints its
# output and then "exit N" with its exit status.
sub() {
    local rc=0 out
    out=$(TMPDIR=$SUB_TMP RE_KEEP= bash -c ". '$LIB'; $1" 2>&1) || rc=$?
    printf '%s\nexit %s\n' "$out" "$rc"
}

# ---- check_exit ----
out=$(sub 'check_exit "three" 3 bash -c "exit 3"; done_testing')
check_match "check_exit passes on the expected code" "$out" $'(^|\n)ok 1 - three\n'
check_match "... and done_testing then exits 0" "$out" $'\nexit 0$'
out=$(sub 'check_exit "three" 3 bash -c "echo said-this; exit 1"; done_testing')
check_match "check_exit fails on another non-zero code" "$out" $'(^|\n)not ok 1 - three\n'
check_match "... saying what it got and expected" "$out" '# got exit 1, expected 3'
check_match "... and showing the output" "$out" '#   said-this'
check_match "... and done_testing then exits 1" "$out" $'\nexit 1$'
out=$(sub 'check_exit "refused" 1 true; done_testing')
check_match "check_exit fails when the command succeeds" "$out" $'(^|\n)not ok 1 - refused\n# got exit 0, expected 1'
# A sanitizer's exit code is not a refusal (the point of check_exit).
out=$(sub 'check_exit "refused" 1 bash -c "exit 86"; done_testing')
check_match "check_exit fails on the ASan exit code" "$out" $'not ok 1 - refused\n# got exit 86, expected 1'

# ---- the sanitizer options reach what the tests start ----
out=$(sub 'echo "A=$ASAN_OPTIONS U=$UBSAN_OPTIONS"; bash -c "echo child \$ASAN_OPTIONS"')
check_match "ASAN_OPTIONS has exitcode=86" "$out" 'A=([^ ]*:)?exitcode=86( |$)'
check_match "UBSAN_OPTIONS has exitcode=87" "$out" 'U=([^ ]*:)?exitcode=87($|\s)'
check_match "... exported to child processes" "$out" 'child ([^ ]*:)?exitcode=86'
out=$(ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 sub 'echo "A=$ASAN_OPTIONS"')
check_match "options already set are kept" "$out" 'A=detect_leaks=1:abort_on_error=0:exitcode=86'

# ---- done_testing reads the logs ----
for report in 'ERROR: AddressSanitizer: heap-use-after-free on address 0x6020' \
    'hub/api/request.c:42:7: runtime error: signed integer overflow' \
    'ERROR: LeakSanitizer: detected memory leaks'; do
    kind=${report#ERROR: }; kind=${kind%%:*}
    [[ "$report" == *"runtime error"* ]] && kind=UBSan
    out=$(sub "ok 'a check'; printf 'started\n==1==%s\n' '$report' >\"\$T/hub.log\"; done_testing")
    check_match "$kind report in hub.log: a not-ok line naming the log" "$out" $'\nnot ok 2 - sanitizer: no report in hub.log\n'
    check_match "... quoting the report" "$out" "#   ==1==${report:0:20}"
    check_match "... and done_testing exits 1" "$out" $'\n1\\.\\.2\n(# state kept in [^\n]*\n)?exit 1$'
done
out=$(sub "mkdir -p \"\$T/agent-a\"; echo 'x.c:1:1: runtime error: load of null pointer' >\"\$T/agent-a/agent.log\"; done_testing")
check_match "a report in a nested agent log is found too" "$out" 'not ok 1 - sanitizer: no report in agent-a/agent.log'
out=$(sub "echo 'checked in' >\"\$T/hub.log\"; echo 'all fine' >\"\$T/agent.log\"; ok 'a check'; done_testing")
check_match "clean logs: one ok line" "$out" $'\nok 2 - sanitizer: no report in the [0-9]+ logs in \\$T\n1\\.\\.2\nexit 0$'
# A daemon still running when done_testing is called is stopped first, so
# what it writes at exit (LeakSanitizer's report) is read.
out=$(sub "bash -c 'trap \"echo ERROR: LeakSanitizer: detected memory leaks; exit 86\" TERM; while :; do sleep 0.1; done' >\"\$T/late.log\" 2>&1 &
_pids+=(\$!); sleep 0.3; done_testing")
check_match "a report written at SIGTERM is read" "$out" 'not ok 1 - sanitizer: no report in late.log'

done_testing
