#!/usr/bin/env bash
# test_sim.sh - the fleet simulator `make bench` relies on: bulk identities
# through the admin path, then simulated agents checking in against the real
# hub with full handshakes and resumed sessions. Counts only, no timings.
. "$(dirname "$0")/lib.sh"
SIM=$RE_BIN/resedge-sim
check "resedge-sim is built" test -x "$SIM"
hub_init
hub_start
for i in $(seq -w 1 20); do echo "sim-$i"; done >"$T/names"
python3 - "$T/names" >"$T/import.json" <<'PY'
import json, sys
print(json.dumps([{"name": n.strip()} for n in open(sys.argv[1])]))
PY
check_eq "20 clusters imported" "$(status acurl -X POST --data-binary @"$T/import.json" "$HUB_URL/api/v1/clusters:import")" 201
check "issue 20 identities in bulk" "$SIM" issue --dir "$HUB_DIR" --clusters-from "$T/names" --out-dir "$T/ids"
check_eq "one certificate and key per cluster" "$(ls "$T/ids"/*.crt | wc -l)/$(ls "$T/ids"/*.key | wc -l)" "20/20"
check "openssl verifies a bulk certificate" openssl verify -CAfile "$HUB_DIR/tls/ca.crt" "$T/ids/sim-07.crt"
check_match "the identity is the cluster's" "$(openssl x509 -in "$T/ids/sim-07.crt" -noout -text)" 'URI:spiffe://resedge/cluster/sim-07'
check_eq "a bulk identity can check in as its cluster" \
    "$(status ucurl "$T/ids/sim-07" -X POST -H 'Content-Type: application/json' -d '{"agent_version":"sim"}' "$HUB_URL/api/v1/clusters/sim-07/checkin")" 200
check_eq "... but not as another cluster" \
    "$(status ucurl "$T/ids/sim-07" -X POST -H 'Content-Type: application/json' -d '{"agent_version":"sim"}' "$HUB_URL/api/v1/clusters/sim-08/checkin")" 403
echo "$HUB_PID" >"$T/hub.pid"
if "$SIM" run --hub "$HUB_URL" --ca "$HUB_DIR/tls/ca.crt" --ids "$T/ids" --hub-pid-file "$T/hub.pid" \
    --phase prime --phase resumed:100 --phase full:10 >"$T/sim.out" 2>"$T/sim.err"; then
    ok "sim run exits 0"
else
    not_ok "sim run exits 0"; sed 's/^/#   /' "$T/sim.err" | tail -10
fi
phase() { grep "\"phase\":\"$1" "$T/sim.out" | head -1; }
check_eq "prime: every agent checked in once" "$(phase prime | jq '.ok')" 20
check_eq "prime: no errors" "$(phase prime | jq '.errors')" 0
check_eq "resumed: 100 check-ins answered" "$(phase resumed | jq '.ok')" 100
check_eq "resumed: every one resumed a session" "$(phase resumed | jq '.resumed')" 100
check_eq "full: 10 full handshakes" "$(phase full | jq '.full')" 10
check_match "the hub saw the agents online" "$(acurl "$HUB_URL/api/v1/clusters/sim-01")" '"status":"online"'
done_testing
