#!/usr/bin/env bash
# enroll.sh - enrollments per second (issue 4) next to the cost of the
# public-key operations each needs on the hub, measured in the same run by
# crypto_ceiling: a TLS handshake without a client certificate (one signature,
# one X25519), the CSR's signature check and the certificate's signature.
# Codes are made through the API first; resedge-sim makes every agent's key
# and CSR before the timed phase, then redeems the codes (POST
# /api/v1/enroll, one short connection each). The ratio is per hub
# CPU-second, so the simulator sharing the machine does not skew it.
# Printed as FIGURE lines (see run.sh), never asserted.
. "$(dirname "$0")/../e2e/lib.sh"

SIM=$RE_BIN/resedge-sim
CEIL=${CEILING:-$RE_BIN/../build/rel/bench/crypto_ceiling}
if [ "${BENCH_SCALE:-}" = small ]; then M=100; CEIL_S=0.3; else M=1000; CEIL_S=1; fi
figure() { printf 'FIGURE\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }
calc() { python3 -c "print($1)"; }

# the ceiling before and after the timed phase (the machine's speed drifts)
"$CEIL" "$CEIL_S" >"$T/ceiling.1" || { echo "crypto_ceiling failed"; exit 1; }

hub_init >"$T/init.out" || { echo "hub init failed:"; cat "$T/init.out"; exit 1; }
hub_start || { echo "hub start failed"; exit 1; }
echo "$HUB_PID" >"$T/hub.pid"
{ echo "name,groups,metadata"; for i in $(seq 1 $M); do echo "site-$i,/stores/e,ring=prod"; done; } >"$T/f.csv"
acurl -o /dev/null -X POST -H 'Content-Type: text/csv' --data-binary @"$T/f.csv" \
    "$HUB_URL/api/v1/clusters:import?create_groups=true" || exit 1

# one code per cluster, over one keep-alive curl
{
    echo "cacert = \"$HUB_DIR/tls/ca.crt\""
    echo "cert = \"$HUB_DIR/tls/admin.crt\""
    echo "key = \"$HUB_DIR/tls/admin.key\""
    echo "silent"
    for i in $(seq 1 $M); do
        echo "url = \"$HUB_URL/api/v1/clusters/site-$i/enroll-code\""
        echo "request = POST"
        echo "output = \"$T/code-$i.json\""
    done
} >"$T/codes.cfg"
curl -K "$T/codes.cfg" || exit 1
for i in $(seq 1 $M); do printf 'site-%d %s\n' "$i" "$(jq -r .code "$T/code-$i.json")"; done >"$T/codes"
grep -c ' null$' "$T/codes" | grep -qx 0 || { echo "some codes are missing: $(head -c 300 "$T/code-1.json")"; exit 1; }

"$SIM" run --hub "$HUB_URL" --ca "$HUB_DIR/tls/ca.crt" --codes "$T/codes" \
    --hub-pid-file "$T/hub.pid" --phase enroll@8 >"$T/sim.jsonl" 2>"$T/sim.err" < /dev/null ||
    { echo "resedge-sim failed"; tail -3 "$T/sim.err"; exit 1; }
"$CEIL" "$CEIL_S" >"$T/ceiling.2" || { echo "crypto_ceiling failed"; exit 1; }
CEIL_EN=$(awk '$1 == "enroll" {s += $2; n++} END {printf "%.1f\n", s / n}' "$T"/ceiling.*)
ok=$(jq -r .ok "$T/sim.jsonl"); cpu=$(jq -r .hub_cpu_s "$T/sim.jsonl"); rate=$(jq -r .rate "$T/sim.jsonl")
per_cpu=$(calc "round($ok / $cpu, 1) if $cpu > 0 else 0")
figure "enrollments/s (wall, $ok of $M, 8 at a time)" "$rate" "/s" "-" "-" info
figure "enrollment crypto ceiling (2 sign + verify + X25519; mean of 2)" "$CEIL_EN" "/s per core" "-" "-" info
figure "enrollments per hub CPU-second vs that ceiling" "$per_cpu" "/s per core" "within 20% (>= 0.8)" \
    "$(calc "round($per_cpu / $CEIL_EN, 2)")" "$(calc "'met' if $per_cpu >= 0.8 * $CEIL_EN and $ok == $M else 'MISSED'")"
figure "enrollment latency p50 / p99" "$(jq -r .p50_ms "$T/sim.jsonl") / $(jq -r .p99_ms "$T/sim.jsonl")" ms "-" "-" info
hub_stop >/dev/null 2>&1
exit 0
