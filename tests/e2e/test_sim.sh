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
# ---- the bench's 100,000-agent path: one shared key, minted sessions ----
for i in $(seq -w 21 30); do echo "sim-$i"; done >"$T/names2"
python3 - "$T/names2" >"$T/import2.json" <<'PY'
import json, sys
print(json.dumps([{"name": n.strip()} for n in open(sys.argv[1])]))
PY
check_eq "10 more clusters imported" "$(status acurl -X POST --data-binary @"$T/import2.json" "$HUB_URL/api/v1/clusters:import")" 201
check "issue 10 identities sharing one key" \
    "$SIM" issue --dir "$HUB_DIR" --clusters-from "$T/names2" --out-dir "$T/ids2" --shared-key
check_eq "... one key for all ten" "$(md5sum "$T"/ids2/*.key | awk '{print $1}' | sort -u | wc -l)" 1
check_eq "... each its own certificate serial" \
    "$(for f in "$T"/ids2/*.crt; do openssl x509 -in "$f" -noout -serial; done | sort -u | wc -l)" 10
check "openssl verifies a shared-key certificate" openssl verify -CAfile "$HUB_DIR/tls/ca.crt" "$T/ids2/sim-25.crt"
check_eq "a shared-key identity checks in as its cluster" \
    "$(status ucurl "$T/ids2/sim-25" -X POST -H 'Content-Type: application/json' -d '{"agent_version":"sim"}' "$HUB_URL/api/v1/clusters/sim-25/checkin")" 200
check_eq "... but not as another cluster sharing its key" \
    "$(status ucurl "$T/ids2/sim-25" -X POST -H 'Content-Type: application/json' -d '{"agent_version":"sim"}' "$HUB_URL/api/v1/clusters/sim-26/checkin")" 403

# minted sessions resume as the hub's own tickets, also after a restart (the
# restarted hub runs unwrapped under VALGRIND=1: the sim's shell starts it)
keys_before=$(sha256sum <"$HUB_DIR/tls/ticket.keys")
RESTART="kill -TERM \$(cat $T/hub.pid); while kill -0 \$(cat $T/hub.pid) 2>/dev/null; do sleep 0.05; done; \
$RE_BIN/resedge-hub serve --dir $HUB_DIR >>$T/hub.log 2>&1 & echo \$! >$T/hub.pid"
mint_run() {   # OUT MINT-DIR PHASES...: sim over ids2, exit status
    local out=$1 dir=$2; shift 2
    local args=()
    for p in "$@"; do args+=(--phase "$p"); done
    "$SIM" run --hub "$HUB_URL" --ca "$HUB_DIR/tls/ca.crt" --ids "$T/ids2" --hub-pid-file "$T/hub.pid" \
        --mint-from "$dir" --restart-cmd "$RESTART" "${args[@]}" >"$T/$out.out" 2>"$T/$out.err"
}
echo "$HUB_PID" >"$T/hub.pid"
if mint_run mint "$HUB_DIR" full:1:1 mint resumed:30 restart storm; then
    ok "sim run with minted sessions exits 0"
else
    not_ok "sim run with minted sessions exits 0"; sed 's/^/#   /' "$T/mint.err" | tail -10
fi
HUB_PID=$(cat "$T/hub.pid"); _pids+=("$HUB_PID")
mphase() { grep "\"phase\":\"$2\"" "$T/$1.out" | head -1; }
check_eq "mint: the nine agents without a session got one" "$(mphase mint mint | jq '.minted')" 9
check_eq "resumed: 30 check-ins, all resumed, none refused" \
    "$(mphase mint resumed | jq -c '[.ok, .resumed, .fallbacks]')" "[30,30,0]"
check_eq "restart: the hub restarted" "$(mphase mint restart | jq '.exit')" 0
check_eq "storm after the restart: all ten resumed their minted tickets" \
    "$(mphase mint storm | jq -c '[.ok, .resumed, .full, .fallbacks]')" "[10,10,0,0]"
check_eq "the mint left the hub's ticket keys as they were" "$(sha256sum <"$HUB_DIR/tls/ticket.keys")" "$keys_before"
check_match "a minted agent shows online" "$(acurl "$HUB_URL/api/v1/clusters/sim-29")" '"status":"online"'

# bad inputs: each a clear error, nothing written
# resedge-sim run: 1 a phase failed, 2 usage
check_exit "mint without a real session to copy fails" 1 mint_run nosess "$HUB_DIR" mint
check_match "... saying what to run first" "$(cat "$T/nosess.err")" 'no agent has a session from a real handshake'
nodir_run() {
    "$SIM" run --hub "$HUB_URL" --ca "$HUB_DIR/tls/ca.crt" --ids "$T/ids2" --phase full:1:1 --phase mint \
        >/dev/null 2>"$T/nodir.err"
}
check_exit "mint without --mint-from fails" 1 nodir_run
check_match "... naming the option" "$(cat "$T/nodir.err")" 'needs --mint-from'
mkdir -p "$T/nokeys/tls"
cp "$HUB_DIR/tls/ca.crt" "$HUB_DIR/tls/server.crt" "$HUB_DIR/tls/server.key" "$T/nokeys/tls/"
check_exit "mint from a directory without ticket keys fails" 1 mint_run nokeys "$T/nokeys" full:1:1 mint
check_match "... naming the file" "$(cat "$T/nokeys.err")" "cannot read ticket keys '$T/nokeys/tls/ticket.keys'"
check "... and does not create one" test ! -e "$T/nokeys/tls/ticket.keys"
# another hub's key: the hub refuses those tickets; the agents fall back to
# their certificates (full handshakes), as real agents do
mkdir -p "$T/foreign/tls"
cp "$HUB_DIR/tls/ca.crt" "$HUB_DIR/tls/server.crt" "$HUB_DIR/tls/server.key" "$T/foreign/tls/"
printf '0badc0de %s %s\n' "$(date +%s)" "$(openssl rand -hex 32)" >"$T/foreign/tls/ticket.keys"
check "mint with a foreign ticket key runs" mint_run foreign "$T/foreign" full:1:1 mint resumed:10
check_eq "... the hub refuses the nine foreign tickets, the agents fall back" \
    "$(mphase foreign resumed | jq -c '[.ok, .resumed, .fallbacks]')" "[10,1,9]"
check_eq "... and its own key file is untouched" "$(sha256sum <"$HUB_DIR/tls/ticket.keys")" "$keys_before"
done_testing
