# lib.sh - end-to-end test helpers: a real hub on a free loopback port with
# temporary state, curl with client certificates, and TAP accounting.
# Source it from a test script:  . "$(dirname "$0")/lib.sh"
set -u
: "${RE_BIN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/bin}"
T=$(mktemp -d "${TMPDIR:-/tmp}/re-e2e-XXXXXX")
TAP_N=0
TAP_FAILED=0
HUB_PID=
_pids=()

# ---- memcheck (make test VALGRIND=1) ----
# RE_WRAP is the command the hub runs under; RE_WRAP_AGENT (default: RE_WRAP)
# the one for resedge-agent and RE_WRAP_CTL for resedgectl (default: none;
# a valgrinded resedgectl costs seconds per call, 6 to 12 minutes over
# test_ctl.sh alone; RE_WRAP_CTL="$RE_WRAP" runs it under memcheck too).
# Scripts run them as $RE_AGENT and $RE_CTL: the binaries
# themselves, or wrapper scripts in $T/wrap that exec them under the wrapper.
# Under valgrind every process writes its own log ($T/vg/NAME.PID.log, so
# reports do not mix with what the tests read from the daemons' output), and
# done_testing stops what still runs and fails one check per process whose
# log holds a memcheck error; hub_stop also returns the 99 of
# --error-exitcode.
: "${RE_WRAP_AGENT=${RE_WRAP:-}}" "${RE_WRAP_CTL=}"
_VG_DIR= _VG_99=0 _VG_DONE=
_is_vg() { [[ " $1 " == *" valgrind "* || "$1" == valgrind* ]]; }
if _is_vg "${RE_WRAP:-}" || _is_vg "$RE_WRAP_AGENT" || _is_vg "$RE_WRAP_CTL"; then
    _VG_DIR=$T/vg; mkdir -p "$_VG_DIR"
fi
_vg_wrap() {   # WRAP NAME: WRAP, with a per-process log when it is valgrind
    if _is_vg "$1"; then echo "$1 --log-file=$_VG_DIR/$2.%p.log"; else echo "$1"; fi
}
[ -n "${RE_WRAP:-}" ] && RE_WRAP=$(_vg_wrap "$RE_WRAP" hub)
RE_AGENT=$RE_BIN/resedge-agent RE_CTL=$RE_BIN/resedgectl
for _w in agent:"$RE_WRAP_AGENT":resedge-agent ctl:"$RE_WRAP_CTL":resedgectl; do
    IFS=: read -r _n _cmd _b <<<"$_w"
    [ -n "$_cmd" ] || continue
    mkdir -p "$T/wrap"
    printf '#!/bin/sh\nexec %s %q "$@"\n' "$(_vg_wrap "$_cmd" "$_n")" "$RE_BIN/$_b" >"$T/wrap/$_b"
    chmod +x "$T/wrap/$_b"
    if [ "$_n" = agent ]; then RE_AGENT=$T/wrap/$_b; else RE_CTL=$T/wrap/$_b; fi
done
unset _w _n _cmd _b

# _vg_check: with valgrind, stops the processes still running (memcheck's
# leak check runs at exit) and reports the memcheck logs as one check each.
_vg_check() {
    [ -n "$_VG_DIR" ] && [ -z "$_VG_DONE" ] || return 0
    _VG_DONE=1
    local f n=0 bad=0
    _stop_all 600                      # up to 60 s for the leak checks
    for f in "$_VG_DIR"/*.log; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        # -q: a log holds nothing but errors (and the odd harmless warning).
        if grep -vqE '^==[0-9]+== *(Warning: |WARNING: |$)' "$f"; then
            bad=$((bad + 1))
            not_ok "memcheck: no errors in $(basename "$f" .log)"
            grep -vE '^==[0-9]+== *(Warning: |WARNING: )' "$f" | head -40 | sed 's/^/#   /'
        fi
    done
    if [ "$_VG_99" -gt 0 ] && [ "$bad" -eq 0 ]; then
        not_ok "memcheck: a hub exited 99 (--error-exitcode) with no log"
    elif [ "$bad" -eq 0 ]; then
        ok "memcheck: no errors in the $n valgrind process logs"
    fi
}

# ---- sanitizers (make test builds with ASan+UBSan) ----
# Exported, so every hub, agent and resedgectl a script starts inherits them:
# an ASan error or a leak exits 86 and a UBSan error 87, codes no program of
# ours uses (resedgectl 0/1/2/64, the agent 0/1/64/73/78), so check_exit
# tells a crash from a refusal. Options already set are kept; ours come last
# and win. With clang's runtime the two share one exitcode flag and
# UBSAN_OPTIONS is read last: every report exits 87 there.
# done_testing also reads the daemons' logs: _san_check.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:exitcode=87"
_SAN_RE='ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer'
_SAN_DONE=

# _stop_all TENTHS: SIGTERM to the processes still running (a sanitizer's
# leak check and a memcheck run at exit), then waits up to TENTHS/10 s.
_stop_all() {
    local p i alive
    [ -z "$HUB_PID" ] || hub_stop
    for p in "${_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for i in $(seq 1 "$1"); do
        alive=
        for p in "${_pids[@]}"; do kill -0 "$p" 2>/dev/null && { alive=1; break; }; done
        [ -n "$alive" ] || break
        sleep 0.1
    done
}

# _san_check: stops what still runs, then fails one check per log in $T
# (daemon logs *.log, saved stderr/stdout *.err/*.out, the last check's
# output) that holds a sanitizer report; one ok when none does.
_san_check() {
    [ -z "$_SAN_DONE" ] || return 0
    _SAN_DONE=1
    [ -n "$_VG_DIR" ] || _stop_all 100
    local f n=0 bad=0
    while IFS= read -r -d '' f; do
        n=$((n + 1))
        grep -qE "$_SAN_RE" "$f" || continue
        bad=$((bad + 1))
        not_ok "sanitizer: no report in ${f#"$T"/}"
        grep -E -A12 "$_SAN_RE" "$f" | head -40 | sed 's/^/#   /'
    done < <(find "$T" -path "$T/vg" -prune -o -type f \( -name '*.log' -o -name '*.err' \
                  -o -name '*.out' -o -name .check.out \) -print0 2>/dev/null)
    [ "$bad" -gt 0 ] || ok "sanitizer: no report in the $n logs in \$T"
}

_cleanup() {
    local p
    _vg_check
    for p in "${_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ "$TAP_FAILED" -eq 0 ] && [ -z "${RE_KEEP:-}" ]; then rm -rf "$T"; else echo "# state kept in $T"; fi
}
trap _cleanup EXIT

ok()     { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
diag()   { echo "# $*"; }

# check DESCRIPTION COMMAND...: passes when the command exits 0.
check() {
    local d=$1; shift
    if "$@" >"$T/.check.out" 2>&1; then ok "$d"; else not_ok "$d"; sed 's/^/#   /' "$T/.check.out" | head -20; fi
}
# check_exit DESCRIPTION CODE COMMAND...: passes when the command exits
# exactly CODE. A check that expects a failure names the failure: "non-zero"
# would also pass a crash (86/87 under the sanitizers, see above).
check_exit() {
    local d=$1 want=$2 rc=0; shift 2
    "$@" >"$T/.check.out" 2>&1 || rc=$?
    if [ "$rc" -eq "$want" ]; then
        ok "$d"
    else
        not_ok "$d"; diag "got exit $rc, expected $want"; sed 's/^/#   /' "$T/.check.out" | head -20
    fi
}
# check_eq DESCRIPTION GOT EXPECTED
check_eq() {
    if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1"; diag "got '$2', expected '$3'"; fi
}
# check_match DESCRIPTION TEXT REGEX
check_match() {
    if [[ "$2" =~ $3 ]]; then ok "$1"; else not_ok "$1"; diag "'${2:0:400}' does not match /$3/"; fi
}
# done_testing: the memcheck or sanitizer verdict, then the TAP plan; returns
# non-zero when any check failed.
done_testing() { _vg_check; _san_check; echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# hub_init [init options]: HUB_DIR, HUB_PORT, HUB_URL, CTL_CONF
hub_init() {
    HUB_DIR=$T/hub
    HUB_PORT=$(free_port)
    HUB_URL=https://127.0.0.1:$HUB_PORT
    CTL_CONF=$HUB_DIR/resedgectl.conf
    "$RE_BIN/resedge-hub" init --dir "$HUB_DIR" --listen "127.0.0.1:$HUB_PORT" "$@" >"$T/init.log" 2>&1 ||
        { cat "$T/init.log"; return 1; }
}

# hub_conf KEY VALUE: set [server]/[pki]/[log] keys in hub.conf (KEY as section.key).
hub_conf() {
    local section=${1%%.*} key=${1#*.}
    python3 - "$HUB_DIR/hub.conf" "$section" "$key" "$2" <<'PY'
import sys, re
path, section, key, value = sys.argv[1:]
lines = open(path).read().splitlines()
out, cur, done = [], None, False
for l in lines:
    m = re.match(r'\s*\[(.+)\]\s*$', l)
    if m:
        if cur == section and not done:
            out.append(f"{key} = {value}"); done = True
        cur = m.group(1)
    elif cur == section and re.match(rf'\s*{re.escape(key)}\s*=', l):
        l = f"{key} = {value}"; done = True
    out.append(l)
if not done:
    if cur != section: out.append(f"[{section}]")
    out.append(f"{key} = {value}")
open(path, "w").write("\n".join(out) + "\n")
PY
}

# hub_start [serve options]: starts the hub, waits until /healthz answers.
hub_start() {
    # RE_WRAP (set by `make test VALGRIND=1`): a command the hub runs under,
    # e.g. "valgrind --error-exitcode=99 --leak-check=full"; hub_stop then
    # returns 99 when memcheck found errors. Unquoted on purpose (word list).
    # shellcheck disable=SC2086
    ${RE_WRAP:-} "$RE_BIN/resedge-hub" serve --dir "$HUB_DIR" "$@" >>"$T/hub.log" 2>&1 &
    HUB_PID=$!
    _pids+=("$HUB_PID")
    local i n=100
    [ -n "${RE_WRAP:-}" ] && n=600          # valgrind starts slowly
    for i in $(seq 1 "$n"); do
        if curl -s -o /dev/null --max-time 2 --cacert "$HUB_DIR/tls/ca.crt" "$HUB_URL/healthz"; then
            return 0
        fi
        kill -0 "$HUB_PID" 2>/dev/null || { echo "# hub exited:"; sed 's/^/#   /' "$T/hub.log" | tail -20; return 1; }
        sleep 0.1
    done
    echo "# hub did not answer /healthz in $((n / 10)) s"; return 1
}

# _term_wait PID: SIGTERM, wait; returns the process's exit status.
_term_wait() {
    kill -TERM "$1" 2>/dev/null
    local rc=0
    wait "$1" || rc=$?
    return $rc
}

# hub_stop: SIGTERM, wait; returns the hub's exit status.
hub_stop() {
    [ -n "$HUB_PID" ] || return 0
    local rc=0
    _term_wait "$HUB_PID" || rc=$?
    HUB_PID=
    if [ "$rc" -eq 99 ] && [ -n "$_VG_DIR" ]; then
        _VG_99=$((_VG_99 + 1)); echo "# hub: memcheck errors (exit 99), see $_VG_DIR" >&2
    fi
    return $rc
}

# stop_agent: the same for the agent a script started as $AGENT_PID.
stop_agent() {
    [ -n "$AGENT_PID" ] || return 0
    local rc=0
    _term_wait "$AGENT_PID" || rc=$?
    AGENT_PID=
    return $rc
}

# acurl ARGS...: curl as the hub's admin.
acurl() {
    curl -sS --max-time 30 --cacert "$HUB_DIR/tls/ca.crt" --cert "$HUB_DIR/tls/admin.crt" \
        --key "$HUB_DIR/tls/admin.key" "$@"
}
# ucurl PREFIX ARGS...: curl with PREFIX.crt/PREFIX.key.
ucurl() {
    local p=$1; shift
    curl -sS --max-time 30 --cacert "$HUB_DIR/tls/ca.crt" --cert "$p.crt" --key "$p.key" "$@"
}
# status CURL-FN ARGS...: prints the HTTP status; body in $T/body.
status() {
    local fn=$1; shift
    "$fn" "$@" -o "$T/body" -w '%{http_code}'
}
# issue_user NAME ROLE: writes $T/NAME.crt/.key through the admin path.
issue_user() {
    "$RE_BIN/resedge-hub" issue-cert --dir "$HUB_DIR" --user "$1" --role "$2" --out "$T/$1" >/dev/null
}
# jq_body FILTER: jq over the last body.
jq_body() { jq -r "$1" "$T/body"; }
# ctl ARGS...: resedgectl with the admin profile.
ctl() { "$RE_CTL" --config "$CTL_CONF" "$@"; }
