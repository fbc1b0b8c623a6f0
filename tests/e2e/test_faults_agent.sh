#!/usr/bin/env bash
# test_faults_agent.sh - the agent's state directory damaged or deleted, with
# the real hub and agent (mode none, 1 s interval):
#  while it runs: STATE/current dangling or deleted, the current revision's
#  directory deleted, status.json and agent.state truncated, mirror.git
#  deleted, the whole state directory deleted;
#  at start: current pointing nowhere, a half-done swap (current.tmp and an
#  unfinished revisions/.tmp-*), current a plain directory, status.json
#  garbage, agent.state empty, ca.crt or the key missing or truncated.
# Each: the agent never crashes, says what is wrong, keeps serving the last
# good state where it still exists, and re-materializes where it can; a lost
# enrollment makes it say how to re-enroll and exit non-zero (78).
# (test_agent.sh covers a garbage agent.state and a full disk.)
. "$(dirname "$0")/lib.sh"

AGENT=$RE_AGENT          # under RE_WRAP_AGENT (valgrind) when set, see lib.sh
A=$T/agent
ALOG=$T/agent.log
AGENT_PID=
# RE_WRAP_AGENT: a command the agents run under, e.g. valgrind (lib.sh wraps
# $RE_AGENT in it; stop_agent then returns memcheck's error exit code).
slow=1; [ -n "${RE_WRAP:-}${RE_WRAP_AGENT:-}" ] && slow=5

wait_for() {   # SECONDS COMMAND...: polls every 0.2 s
    local n=$(($1 * 5 * slow)); shift
    local i
    for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}
# log_since MARK REGEX: REGEX appears in the agent log after line MARK.
log_since() { tail -n +"$(($1 + 1))" "$ALOG" | grep -qE -- "$2"; }
mark() { wc -l <"$ALOG"; }
start_agent() {
    "$AGENT" run --state-dir "$A" --interval 1s --backoff-cap 2s --mode none "$@" >>"$ALOG" 2>&1 &
    AGENT_PID=$!
    _pids+=("$AGENT_PID")
}
alive() { kill -0 "$AGENT_PID" 2>/dev/null; }
cur() { readlink "$A/current"; }
is_current() { [ "$(cur)" == "revisions/$1" ] && [ -f "$A/current/namespaces/pos/namespace.yaml" ]; }
head_rev() { git --git-dir="$HUB_DIR/git" rev-parse -q --verify refs/namespaces/store-1/refs/heads/main 2>/dev/null; }
next_rev() {   # OLD: waits until the branch moves off OLD, prints the new head
    local i r
    for i in $(seq 1 $((100 * slow))); do
        r=$(head_rev) && [ -n "$r" ] && [ "$r" != "$1" ] && { echo "$r"; return 0; }
        sleep 0.1
    done
    return 1
}
# new_rev: changes store-1's metadata, waits for the new revision (runs in $()).
new_rev() {
    local old; old=$(head_rev)
    acurl -o /dev/null -X PATCH -d "{\"metadata\":{\"change\":\"$(date +%s%N)\"}}" "$HUB_URL/api/v1/clusters/store-1"
    next_rev "$old"
}
# run_once ARGS...: a foreground run that should exit at once; output in $T/once.out.
run_once() {
    timeout $((30 * slow)) "$AGENT" run --state-dir "$A" --interval 1s --mode none "$@" >"$T/once.out" 2>&1
}

hub_init || exit 1
hub_start || exit 1
acurl -o /dev/null -X POST -d '{"name":"store-1"}' "$HUB_URL/api/v1/clusters"
acurl -o /dev/null -X POST -d '{"name":"pos","expression":"/c/store-1"}' "$HUB_URL/api/v1/namespaces"
acurl -X POST "$HUB_URL/api/v1/clusters/store-1/enroll-code" >"$T/code.json"
check "the agent enrolls" "$AGENT" enroll --hub "$HUB_URL" --code "$(jq -r .code "$T/code.json")" \
    --ca-fingerprint "$(jq -r .ca_fingerprint "$T/code.json")" --state-dir "$A"
cp -a "$A" "$T/enrolled"          # the enrollment alone, to restore later
REV1=$(next_rev none)
start_agent
check "it materializes the assigned revision" wait_for 15 is_current "$REV1"

# ---- while it runs --------------------------------------------------------------
# current pointing nowhere
m=$(mark)
ln -sfn revisions/0000000000000000000000000000000000000000 "$A/current"
check "running, current dangling: current points at the assigned revision again" wait_for 10 is_current "$REV1"
check "... and the agent logs it" log_since "$m" "current|materialized"
check "... still running" alive

# current deleted
rm -f "$A/current"
check "running, current deleted: restored" wait_for 10 is_current "$REV1"

# the current revision's directory deleted (current dangles): re-materialized from the mirror
m=$(mark)
rm -rf "$A/revisions/$REV1"
check "running, the current revision's files deleted: re-materialized" wait_for 10 is_current "$REV1"
check "... from the local mirror (a log line says so)" log_since "$m" "materialized revision ${REV1:0:12}"

# status.json truncated: the agent keeps going; the next revision rewrites it
: >"$A/status.json"
sleep 2
check "running, status.json truncated: still running" alive
check "... the last good state is served" is_current "$REV1"
REV2=$(new_rev)
check "... the next revision is materialized" wait_for 15 is_current "$REV2"
check "... and status.json is whole again" wait_for 5 jq -e ".applied_revision == \"$REV2\"" "$A/status.json"

# agent.state truncated while running: the record is in memory; it keeps working
cp "$A/agent.state" "$T/agent.state.good"
: >"$A/agent.state"
REV3=$(new_rev)
check "running, agent.state truncated: still running and materializing" wait_for 15 is_current "$REV3"
m=$(mark)
stop_agent
check_eq "... SIGTERM still exits 0" $? 0
run_once; rc=$?
check_eq "restart with agent.state truncated: exit 78" "$rc" 78
check_match "... saying the record is damaged and to enroll again" "$(cat "$T/once.out")" \
    "agent.state.*(incomplete|damaged).*enroll again"
check "... the last good state is left as it was" is_current "$REV3"
cp "$T/agent.state.good" "$A/agent.state"

# mirror.git deleted while running
start_agent
check "the agent runs again with the record restored" wait_for 10 log_since "$m" "checked in"
m=$(mark)
rm -rf "$A/mirror.git"
REV4=$(new_rev)
check "running, mirror.git deleted: the mirror is recreated and the next revision materialized" \
    wait_for 20 is_current "$REV4"
diag "mirror.git deleted: $(tail -n +"$((m + 1))" "$ALOG" | grep -v 'checked in' | tail -1)"
check "... the last good state is served meanwhile" test -f "$A/current/namespaces/pos/namespace.yaml"
check "... still running" alive
stop_agent
start_agent
check "after a restart mirror.git is recreated and the revision materialized" wait_for 20 is_current "$REV4"
check "... mirror.git is back" test -d "$A/mirror.git/objects"

# the whole state directory deleted while running (after a check-in, so the
# running agent, not its start-up, is what notices)
m=$(mark)
check "... the restarted agent has checked in" wait_for 20 log_since "$m" "checked in"
m=$(mark)
rm -rf "$A"
for _ in $(seq 1 $((20 * slow))); do alive || break; sleep 0.5; done
# alive is kill -0: 1 when the process is gone
check_exit "running, state directory deleted: the agent stops" 1 alive
if ! alive; then wait "$AGENT_PID"; rc=$?; AGENT_PID=; else rc=running; fi
check_eq "... exiting 78" "$rc" 78
check "... saying how to re-enroll" log_since "$m" "resedge-agent enroll --hub"
check "... and not recreating the state directory" test ! -e "$A/mirror.git"
stop_agent
run_once; rc=$?
check_eq "restart with the state directory gone: exit 78" "$rc" 78
check "... saying how to enroll" grep -q "resedge-agent enroll --hub" "$T/once.out"

# ---- at start ---------------------------------------------------------------------
cp -a "$T/enrolled" "$A"
start_agent
check "a fresh state directory from the enrollment: materialized" wait_for 20 is_current "$REV4"
stop_agent

# current pointing nowhere, a half-done swap, an unfinished revision
m=$(mark)
ln -sfn revisions/0000000000000000000000000000000000000000 "$A/current"
ln -sfn "revisions/$REV4" "$A/current.tmp"
mkdir -p "$A/revisions/.tmp-$REV4/half" && echo half >"$A/revisions/.tmp-$REV4/half/x.yaml"
start_agent
check "at start, a half-done swap is repaired and said so" wait_for 10 log_since "$m" "repaired the state directory"
check "... naming the dangling current" log_since "$m" "dangling 'current'"
check "... and the unfinished revision" log_since "$m" "unfinished revision"
check "... current points at the newest complete revision" wait_for 10 is_current "$REV4"
check "... no leftovers" bash -c "! ls -a '$A' '$A/revisions' | grep -qE '^(current\.tmp|\.tmp-)'"
stop_agent

# current a plain directory (not a symlink), with no revisions at all
m=$(mark)
rm -rf "$A/current" "$A/revisions"
mkdir -p "$A/current/junk"
start_agent
check "at start, current a plain directory: removed and said so" wait_for 10 log_since "$m" "not a symlink"
check "... then re-materialized from the hub" wait_for 20 is_current "$REV4"
stop_agent

# status.json garbage
m=$(mark)
printf '{"pulled_revision": "zz' >"$A/status.json"
start_agent
check "at start, status.json garbage: the agent runs" wait_for 10 log_since "$m" "checked in"
check "... keeps the state on disk" is_current "$REV4"
check "... and rewrites status.json whole" wait_for 10 jq -e ".applied_revision == \"$REV4\"" "$A/status.json"
check "... and says status.json was damaged" log_since "$m" "status.json"
check "... still running" alive
stop_agent

# agent.state empty
cp "$A/agent.state" "$T/agent.state.good"
: >"$A/agent.state"
run_once; rc=$?
check_eq "at start, agent.state empty: exit 78" "$rc" 78
check_match "... saying what to do" "$(cat "$T/once.out")" "enroll again"
check "... the state on disk untouched" is_current "$REV4"
cp "$T/agent.state.good" "$A/agent.state"

# ca.crt missing
mv "$A/ca.crt" "$T/ca.crt.good"
run_once; rc=$?
check_eq "at start, ca.crt missing: exit 78" "$rc" 78
check_match "... naming the file and what to do" "$(cat "$T/once.out")" "ca.crt.*enroll again"
mv "$T/ca.crt.good" "$A/ca.crt"

# the key missing
KEY=$(ls "$A"/agent-*.key)
mv "$KEY" "$T/key.good"
run_once; rc=$?
check_eq "at start, the key missing: exit 78" "$rc" 78
check_match "... saying so" "$(cat "$T/once.out")" "key.*enroll again"
mv "$T/key.good" "$KEY"

# the key truncated: it cannot check in; it must say why and keep its state
cp "$KEY" "$T/key.good"
: >"$KEY"
m=$(mark)
start_agent
sleep $((5 * slow))
if alive; then
    check "at start, the key truncated: keeps the state on disk" is_current "$REV4"
    diag "key truncated: log: $(tail -n +"$((m + 1))" "$ALOG" | tail -3 | tr '\n' '|')"
    check "... and says the key is unusable" log_since "$m" "key"
    stop_agent
else
    wait "$AGENT_PID"; rc=$?; AGENT_PID=
    check_eq "at start, the key truncated: exit 78" "$rc" 78
    check "... saying the key is unusable" log_since "$m" "key"
fi
cp "$T/key.good" "$KEY"

start_agent
REV5=$(new_rev)
check "with everything restored the agent follows the hub again" wait_for 20 is_current "$REV5"
stop_agent; check_eq "and stops cleanly" $? 0
check "no sanitizer report in the agent log" bash -c "! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' '$ALOG'"

hub_stop; check_eq "the hub stops cleanly" $? 0
done_testing
