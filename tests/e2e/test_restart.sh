#!/usr/bin/env bash
# test_restart.sh - a clean restart does not re-render the fleet: the hub
# stopped with the GitOps writer idle and nothing pending leaves
# DIR/gitops.clean, and the next start of the same binary that finds the same
# inventory and the same refs skips the start-up render (minutes of CPU at
# 100,000 clusters while every store reconnects). Every other start renders
# all: after kill -9, after a stop during a batch, with --reconcile, with
# another binary, with refs or the inventory changed while the hub was down.
. "$(dirname "$0")/lib.sh"
slow=1; [ -n "${RE_WRAP:-}" ] && slow=10
gstatus() { acurl "$HUB_URL/api/v1/gitops/status"; }
wait_idle() {
    local i s
    for i in $(seq 1 $((600 * slow))); do
        s=$(gstatus | jq -r '"\(.state) \(.initial_done)"' 2>/dev/null)
        [ "$s" == "idle true" ] && return 0
        sleep 0.1
    done
    echo "# writer not idle: $(gstatus)"; return 1
}
renders() { acurl "$HUB_URL/metrics" | awk '$1 == "resedge_gitops_renders_total" { v = $2 } END { print v + 0 }'; }
G() { git --git-dir="$HUB_DIR/git" "$@"; }
branch() { G rev-parse "refs/namespaces/$1/refs/heads/main" 2>/dev/null; }
CLEAN=

hub_init >/dev/null || { not_ok "hub init"; done_testing; exit 1; }
CLEAN=$HUB_DIR/gitops.clean
hub_start || { not_ok "hub start"; done_testing; exit 1; }
python3 -c 'import json; print(json.dumps([{"name": "rs-%02d" % i, "groups": ["/stores/rs"]} for i in range(40)]))' >"$T/import.json"
check_eq "40 clusters imported" "$(status acurl -X POST --data-binary @"$T/import.json" "$HUB_URL/api/v1/clusters:import?create_groups=true")" 201
acurl -o /dev/null -X POST -d '{"name":"pos","expression":"/g/stores"}' "$HUB_URL/api/v1/namespaces"
wait_idle; check "the writer commits them" test $? -eq 0
HEAD0=$(branch rs-07)
check "rs-07 has a branch" test -n "$HEAD0"

# ---- a clean stop, then the same binary with nothing changed --------------
hub_stop; check_eq "SIGTERM: exit 0" $? 0
check "a clean stop records itself in DIR/gitops.clean" test -s "$CLEAN"
hub_start || not_ok "restart"
wait_idle; check "the writer is idle and done after the restart" test $? -eq 0
check_eq "... without rendering a cluster" "$(renders)" 0
check_match "... and says so" "$(cat "$T/hub.log")" 'no start-up render'
check "... the record is consumed at start" test ! -e "$CLEAN"
check_eq "... branches untouched" "$(branch rs-07)" "$HEAD0"
st=$(status acurl -X PATCH -H 'Content-Type: application/json' -d '{"metadata":{"note":"x"}}' "$HUB_URL/api/v1/clusters/rs-07")
check_eq "changes after such a start are rendered as ever" "$st" 200
wait_idle
check "... rs-07's branch moved" test "$(branch rs-07)" != "$HEAD0"
HEAD1=$(branch rs-07)

# ---- refs changed while the hub was down ---------------------------------
hub_stop
check "clean stop again" test -s "$CLEAN"
G update-ref "refs/namespaces/rs-07/refs/heads/main" "$HEAD0" && G pack-refs --all
hub_start || not_ok "restart"
wait_idle
check "refs changed while stopped: every cluster is rendered" test "$(renders)" -ge 40
check_eq "... and rs-07 is back at the inventory's state" "$(G rev-parse "$(branch rs-07)^{tree}")" \
    "$(G rev-parse "$HEAD1^{tree}")"

# ---- the inventory changed while the hub was down (a restored backup) -----
hub_stop
sqlite3 "$HUB_DIR/hub.db" "DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)"
hub_start || not_ok "restart"
wait_idle
check "inventory changed while stopped: every cluster is rendered" test "$(renders)" -ge 40

# ---- --reconcile ------------------------------------------------------------
hub_stop
check "clean stop" test -s "$CLEAN"
hub_start --reconcile || not_ok "restart --reconcile"
wait_idle
check "serve --reconcile renders every cluster" test "$(renders)" -ge 40
check "... and consumes the record" test ! -e "$CLEAN"

# ---- another binary ---------------------------------------------------------
hub_stop
cp "$RE_BIN/resedge-hub" "$T/resedge-hub-copy"
"$T/resedge-hub-copy" serve --dir "$HUB_DIR" >>"$T/hub.log" 2>&1 &
HUB_PID=$!; _pids+=("$HUB_PID")
for _ in $(seq 1 $((100 * slow))); do curl -s -o /dev/null --cacert "$HUB_DIR/tls/ca.crt" "$HUB_URL/healthz" && break; sleep 0.1; done
wait_idle
check "another binary (an upgrade) renders every cluster" test "$(renders)" -ge 40

# ---- kill -9 ----------------------------------------------------------------
kill -9 "$HUB_PID"; wait "$HUB_PID" 2>/dev/null; HUB_PID=
check "kill -9 leaves no record" test ! -e "$CLEAN"
hub_start || not_ok "restart after kill -9"
wait_idle
check "after kill -9 every cluster is rendered" test "$(renders)" -ge 40

# ---- a stop while a batch runs ----------------------------------------------
python3 -c 'import json; print(json.dumps([{"name": "rb-%04d" % i, "groups": ["/stores/rb"]} for i in range(3000)]))' >"$T/big.json"
check_eq "3,000 more clusters" "$(status acurl -X POST --data-binary @"$T/big.json" "$HUB_URL/api/v1/clusters:import?create_groups=true")" 201
check_match "a batch of 3,000 is pending or rendering" "$(gstatus | jq -r .state)" '^(pending|rendering)$'
hub_stop
check "a stop with work pending or running leaves no record" test ! -e "$CLEAN"
hub_start || not_ok "restart"
wait_idle
check_eq "every cluster has its branch in the end" "$(G for-each-ref 'refs/namespaces/*/refs/heads/main' | wc -l)" 3040
check "the hub stops cleanly" hub_stop
done_testing
