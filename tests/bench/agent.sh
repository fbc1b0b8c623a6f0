#!/usr/bin/env bash
# agent.sh - the agent's footprint (issue 6): a real resedge-agent, enrolled
# with a real one-time code, runs against a real hub with --mode none; after
# its start-up (first check-in and pull) its RSS (VmRSS) and CPU (utime +
# stime from /proc) are read over a quiet period that still holds check-ins
# (--interval 10s). Printed as FIGURE lines (see run.sh), never asserted.
#   AGENT_QUIET=20 (seconds)
. "$(dirname "$0")/../e2e/lib.sh"

QUIET=${AGENT_QUIET:-20}
figure() { printf 'FIGURE\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }
calc() { python3 -c "print($1)"; }
cpu_ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }

hub_init >"$T/init.out" || { echo "hub init failed:"; cat "$T/init.out"; exit 1; }
hub_start || { echo "hub start failed"; exit 1; }
acurl -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"name":"store-a"}' \
    "$HUB_URL/api/v1/clusters" || exit 1
acurl -X POST "$HUB_URL/api/v1/clusters/store-a/enroll-code" >"$T/code.json" || exit 1
CODE=$(jq -r .code "$T/code.json"); FP=$(jq -r .ca_fingerprint "$T/code.json")
"$RE_BIN/resedge-agent" enroll --hub "$HUB_URL" --code "$CODE" --ca-fingerprint "$FP" \
    --state-dir "$T/agent" >"$T/enroll.log" 2>&1 || { echo "enroll failed:"; cat "$T/enroll.log"; exit 1; }
"$RE_BIN/resedge-agent" run --state-dir "$T/agent" --interval 10s --mode none >"$T/agent.log" 2>&1 &
APID=$!
_pids+=("$APID")
sleep 5
kill -0 "$APID" 2>/dev/null || { echo "agent exited:"; tail -5 "$T/agent.log"; exit 1; }
c0=$(cpu_ticks "$APID"); t0=$(date +%s.%N)
sleep "$QUIET"
c1=$(cpu_ticks "$APID"); t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' /proc/"$APID"/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/"$APID"/status)
hz=$(getconf CLK_TCK)
cpu_ms=$(calc "round(($c1 - $c0) * 1000 / $hz)")
share=$(calc "round(($c1 - $c0) / $hz / ($t1 - $t0) * 100, 3)")
anon=$(awk '/RssAnon/ {print $2}' /proc/"$APID"/status)
# The floor under it: a bare client on the same Debian libcurl doing the same
# mutual-TLS check-in (tests/bench/curl_floor.c), measured in this run.
floor=
if [ -x "${CURL_FLOOR:-}" ]; then
    crt=$(ls "$T"/agent/agent-*.crt | head -1)
    out=$("$CURL_FLOOR" "$HUB_URL/api/v1/clusters/store-a/checkin" "$HUB_DIR/tls/ca.crt" \
        "$crt" "${crt%.crt}.key" 2>&1) && [ "${out#* }" = 200 ] && floor=${out%% *}
    [ -n "$floor" ] || echo "curl_floor failed: $out" >&2
fi
ratio=-; [ -n "$floor" ] && ratio=$(calc "round($rss / $floor, 2)")
figure "agent RSS, steady (VmRSS; peak VmHWM $(calc "round($hwm / 1024, 1)") MB; ratio: vs the libcurl floor)" \
    "$(calc "round($rss / 1024, 1)")" MB "< 8 MB" "$ratio" "$(calc "'met' if $rss < 8192 else 'MISSED'")"
figure "... of it private (RssAnon; the rest are shared library pages)" "$(calc "round($anon / 1024, 1)")" MB \
    "-" "-" info
[ -n "$floor" ] && figure "baseline: a bare libcurl mTLS client after two check-ins (Debian libcurl, VmRSS)" \
    "$(calc "round($floor / 1024, 1)")" MB "-" "-" info
figure "agent CPU over ${QUIET} s quiet (check-in every 10 s): $cpu_ms ms" "$share" "%" "near zero (< 1%)" "-" \
    "$(calc "'met' if $share < 1 else 'MISSED'")"
kill -TERM "$APID" 2>/dev/null
wait "$APID" 2>/dev/null
hub_stop >/dev/null 2>&1
exit 0
