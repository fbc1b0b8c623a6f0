#!/usr/bin/env bash
# test_truth.sh - what the API accepts renders, applies on a real store, and
# never freezes a branch silently: every rule the renderer and Flux apply is
# checked at the API first (application name length, versions as label
# values, ConfigMap keys, quotas the default LimitRange fits in, namespaced
# policy objects with a namespace, one owner per object between policies and
# the hub's own objects); network settings render as stored; and what still
# fails at render time (forced here by writing the database behind the API)
# shows on the cluster, in gitops/status, /readyz and /metrics while the rest
# of the fleet still commits. The branches are checked with validate.py.
. "$(dirname "$0")/lib.sh"
gitc() { GIT_SSL_CAINFO=$HUB_DIR/tls/ca.crt GIT_TERMINAL_PROMPT=0 git -c http.sslCAInfo="$HUB_DIR/tls/ca.crt" \
         -c http.sslCert="$HUB_DIR/tls/admin.crt" -c http.sslKey="$HUB_DIR/tls/admin.key" "$@"; }
send() { status acurl -X "$1" -H 'Content-Type: application/json' -d "$3" "$HUB_URL$2"; }
wait_idle() {
    local i s
    for i in $(seq 1 300); do
        s=$(acurl "$HUB_URL/api/v1/gitops/status" | jq -r '"\(.state) \(.initial_done) \(.pending_clusters)"')
        [ "$s" == "idle true 0" ] && return 0
        sleep 0.1
    done
    echo "# writer not idle: $s"; return 1
}
branch_has() { git --git-dir="$HUB_DIR/git" ls-tree --name-only "refs/namespaces/$1/refs/heads/main" "$2" | grep -q .; }
head_of() { git --git-dir="$HUB_DIR/git" rev-parse -q --verify "refs/namespaces/$1/refs/heads/main"; }

hub_init || exit 1
hub_start || exit 1
CODE=$(send POST '/api/v1/clusters:import?create_groups=true' \
    '[{"name":"store-1","groups":["/stores/east"]},{"name":"store-2","groups":["/stores/west"]}]')
check_eq "two stores" "$CODE" 201
CODE=$(send POST /api/v1/namespaces '{"name":"pos","expression":"/g/stores"}')
check_eq "namespace pos" "$CODE" 201

# ---- rules the renderer and Flux apply, applied by the API first ----
long=$(printf 'a%.0s' $(seq 1 52))
CODE=$(send POST /api/v1/applications "{\"name\":\"$long\",\"namespace\":\"pos\",\"source\":{\"git\":{\"url\":\"https://git.example.com/x.git\"}},\"versions\":[{\"version\":\"1\",\"expression\":\"/g/stores\"}]}")
check_eq "a 52-character application name is refused (400)" "$CODE" 400
check_match "... saying why (Flux's 63-character label)" "$(jq -r .error.message "$T/body")" "at most 51 characters"
CODE=$(send POST /api/v1/applications "{\"name\":\"${long:1}\",\"namespace\":\"pos\",\"source\":{\"git\":{\"url\":\"https://git.example.com/x.git\"}},\"versions\":[{\"version\":\"1\",\"expression\":\"/g/stores\"}]}")
check_eq "51 characters are accepted (201)" "$CODE" 201
CODE=$(send POST /api/v1/applications '{"name":"menu","namespace":"pos","source":{"git":{"url":"https://git.example.com/menu.git"}},"versions":[{"version":"1.0+build.5","expression":"/g/stores"}]}')
check_eq "a version that is no label value (1.0+build.5) is refused (400)" "$CODE" 400
check_match "... naming the field" "$(jq -c .error "$T/body")" '"field":"versions\[0\].version"'
CODE=$(send PUT /api/v1/groups/%2Fstores/config/%2E '{"value":"x"}')
check_eq "a configuration key '.' is refused (400)" "$CODE" 400
CODE=$(send PUT /api/v1/groups/%2Fstores/config/%2E%2E '{"value":"x"}')
check_eq "... and '..' (400)" "$CODE" 400
CODE=$(send PATCH /api/v1/namespaces/pos '{"quota":{"memory":"64Mi"}}')
check_eq "a quota below the default LimitRange request is refused (400)" "$CODE" 400
check_match "... with the numbers" "$(jq -r .error.message "$T/body")" "quota.memory 64Mi is below .*128Mi"
CODE=$(send PATCH /api/v1/namespaces/pos '{"quota":{"cpu":"50m"}}')
check_eq "... for CPU too (400)" "$CODE" 400
CODE=$(send PATCH /api/v1/namespaces/pos '{"quota":{"cpu":"2","memory":"1Gi"}}')
check_eq "a quota the defaults fit in is accepted (200)" "$CODE" 200

# ---- policies that cannot break a store ----
KPOL='apiVersion: kyverno.io/v1\nkind: Policy\nmetadata:\n  name: no-latest\nspec:\n  rules:\n  - name: r\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n    validate:\n      message: no latest\n      pattern:\n        spec:\n          containers:\n          - image: \"!*:latest\"\n'
CODE=$(send POST /api/v1/policies "{\"name\":\"nolatest\",\"expression\":\"/g/stores\",\"yaml\":\"$KPOL\"}")
check_eq "a Kyverno Policy (namespaced) without a namespace is refused (400)" "$CODE" 400
check_match "... saying so" "$(jq -r .error.message "$T/body")" "Policy 'no-latest' is namespaced: give it metadata.namespace"
CODE=$(status acurl "$HUB_URL/api/v1/policies/nolatest")
check_eq "... and nothing was written (404)" "$CODE" 404
KPOLNS=${KPOL/name: no-latest/name: no-latest\\n  namespace: pos}
CODE=$(send POST /api/v1/policies "{\"name\":\"nolatest\",\"expression\":\"/g/stores\",\"yaml\":\"$KPOLNS\"}")
check_eq "with its namespace it is accepted (201)" "$CODE" 201
CM='apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  namespace: kube-system\ndata:\n  a: b\n'
CODE=$(send POST /api/v1/policies "{\"name\":\"one\",\"expression\":\"/g/stores\",\"yaml\":\"$CM\"}")
check_eq "a policy with a ConfigMap (201)" "$CODE" 201
CODE=$(send POST /api/v1/policies "{\"name\":\"two\",\"expression\":\"/g/stores\",\"yaml\":\"$CM\"}")
check_eq "a second policy defining the same object is refused (409)" "$CODE" 409
check_match "... naming both" "$(jq -r .error.message "$T/body")" "policy 'two' and policy 'one' both define ConfigMap kube-system/shared"
OURS='apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: resedge-config\n  namespace: pos\ndata:\n  a: b\n'
CODE=$(send POST /api/v1/policies "{\"name\":\"three\",\"expression\":\"/g/stores\",\"yaml\":\"$OURS\"}")
check_eq "a policy defining the namespace's ConfigMap is refused (409)" "$CODE" 409
check_match "... the hub renders it" "$(jq -r .error.message "$T/body")" "ConfigMap pos/resedge-config, which the hub renders itself"
NS='apiVersion: v1\nkind: Namespace\nmetadata:\n  name: pos\n'
CODE=$(send POST /api/v1/policies "{\"name\":\"four\",\"expression\":\"/g/stores\",\"yaml\":\"$NS\"}")
check_eq "a policy defining an inventory Namespace is refused (409)" "$CODE" 409
CODE=$(send PATCH /api/v1/policies/one "{\"yaml\":\"$OURS\"}")
check_eq "an update that collides is refused too (409)" "$CODE" 409
CODE=$(status acurl "$HUB_URL/api/v1/policies/one")
check_match "... and the policy is unchanged" "$(jq -r .yaml "$T/body")" "name: shared"

# ---- network settings render as stored ----
CODE=$(send POST /api/v1/namespaces '{"name":"kiosk","expression":"/g/stores/east","network":{"default_deny":false,"allow_same_namespace":true}}')
check_eq "a namespace that allows its pods to talk (201)" "$CODE" 201
wait_idle; check "the writer is idle" test $? -eq 0
check_exit "kiosk gets no default-deny policy" 1 branch_has store-1 namespaces/kiosk/networkpolicy.yaml
check "... and a same-namespace policy" branch_has store-1 namespaces/kiosk/networkpolicy-same-namespace.yaml
check "pos keeps its default-deny" branch_has store-1 namespaces/pos/networkpolicy.yaml
check "an app's Flux source is the agent's: the branch renders none" test "$(git --git-dir="$HUB_DIR/git" ls-tree -r --name-only "$(head_of store-1)" flux/ | grep -c source.yaml)" -eq 0

# ---- the branches apply (validate.py, the real schemas and Flux's rules) ----
check "store-1's branch clones" gitc clone -q "$HUB_URL/git/store-1.git" "$T/store-1"
if command -v kubectl >/dev/null; then
    # The hub's source and its Secret are the agent's: a real agent enrolled
    # for store-1 writes them (flux mode), and validate.py takes them beside
    # the branch (--agent-flux).
    acurl -X POST -H 'Content-Type: application/json' -d '{}' "$HUB_URL/api/v1/clusters/store-1/enroll-code" >"$T/code.json"
    "$RE_AGENT" enroll --hub "$HUB_URL" --code "$(jq -r .code "$T/code.json")" \
        --ca-fingerprint "$(jq -r .ca_fingerprint "$T/code.json")" --state-dir "$T/agent" >"$T/enroll.log" 2>&1
    check_eq "an agent enrolls for store-1" "$?" 0
    "$RE_AGENT" run --state-dir "$T/agent" --interval 1s --mode flux --apply-command "true" >"$T/agent.log" 2>&1 &
    AGENT_PID=$!; _pids+=("$AGENT_PID")
    for _ in $(seq 1 100); do [ -f "$T/agent/flux/source.yaml" ] && break; sleep 0.1; done
    check "... and writes its Flux objects" test -f "$T/agent/flux/source.yaml"
    stop_agent
    python3 "$(dirname "$0")/../validate/validate.py" --agent-flux "$T/agent/flux" "$T/store-1" >"$T/validate.out" 2>&1
    rc=$?
    sed 's/^/#   /' "$T/validate.out"
    check_eq "validate.py: store-1's branch (policies, network, quota) applies (exit 0)" "$rc" 0
else
    ok "validate.py # SKIP kubectl not installed (validate.py builds with kubectl kustomize)"
fi

# ---- what still fails at render time is visible, and the rest commits ----
before2=$(head_of store-2)
sqlite3 "$HUB_DIR/hub.db" "PRAGMA busy_timeout=5000; UPDATE applications SET versions =
    '[{\"version\":\"bad+version\",\"expression\":\"/g/stores/east\"}]' WHERE name = '${long:1}'" >/dev/null
CODE=$(send PATCH /api/v1/namespaces/pos '{"description":"touch"}')
check_eq "a change that re-renders every store (200)" "$CODE" 200
CODE=$(send PUT /api/v1/groups/%2Fstores%2Fwest/config/k '{"value":"v2"}')
check_eq "... and a change for store-2 (201)" "$CODE" 201
wait_idle; check "the writer is idle again" test $? -eq 0
CODE=$(status acurl "$HUB_URL/api/v1/clusters/store-1")
check_match "store-1 shows why its branch froze (render_error)" "$(jq -r .render_error "$T/body")" "bad\+version"
CODE=$(status acurl "$HUB_URL/api/v1/clusters/store-2")
check_eq "store-2 shows none" "$(jq -r .render_error "$T/body")" null
check "... and its branch moved on" test "$(head_of store-2)" != "$before2"
st=$(acurl "$HUB_URL/api/v1/gitops/status")
check_eq "gitops/status counts one failing cluster" "$(jq -r .failing_clusters <<<"$st")" 1
check_eq "... names it" "$(jq -r '.render_errors[0].cluster' <<<"$st")" store-1
check_match "... and last_error says why" "$(jq -r .last_error <<<"$st")" "store-1.*bad\+version"
r=$(curl -sS --cacert "$HUB_DIR/tls/ca.crt" "$HUB_URL/readyz")
check_match "/readyz is degraded, naming the render failure" "$r" '"status":"degraded".*fail.* to render'
check_match "/metrics counts it" "$(acurl "$HUB_URL/metrics")" "resedge_gitops_clusters_failing 1"
sqlite3 "$HUB_DIR/hub.db" "PRAGMA busy_timeout=5000; UPDATE applications SET versions =
    '[{\"version\":\"good\",\"expression\":\"/g/stores/east\"}]' WHERE name = '${long:1}'" >/dev/null
CODE=$(send PATCH /api/v1/namespaces/pos '{"description":"again"}')
wait_idle
CODE=$(status acurl "$HUB_URL/api/v1/clusters/store-1")
check_eq "once it renders, store-1's render_error clears" "$(jq -r .render_error "$T/body")" null
check_eq "... and gitops/status counts none" "$(acurl "$HUB_URL/api/v1/gitops/status" | jq -r .failing_clusters)" 0
done_testing
