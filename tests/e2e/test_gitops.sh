#!/bin/bash
# test_gitops.sh - the GitOps writer against the real hub: 12 stores in 3
# regions, 2 rings, 2 namespaces, 3 applications (one with two versions by
# ring); every branch cloned with real git and built with kubectl kustomize;
# git fsck; hostile metadata; incremental commits by the actor; history,
# revert, unpin, files over the API and resedgectl; dry runs; kill -9 during
# a large render and recovery.
. "$(dirname "$0")/lib.sh"

req() { acurl -o "$T/body" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
        "$HUB_URL$2" ${3:+--data-binary "$3"}; }
expect() { local code=$?; check_eq "$1" "$CODE" "$2"; }
# GIT_SSL_CAINFO from the environment would override http.sslCAInfo
gitc() { GIT_SSL_CAINFO=$HUB_DIR/tls/ca.crt GIT_TERMINAL_PROMPT=0 git -c http.sslCAInfo="$HUB_DIR/tls/ca.crt" -c http.sslCert="$HUB_DIR/tls/admin.crt" \
         -c http.sslKey="$HUB_DIR/tls/admin.key" "$@"; }
# wait_idle: until the writer has nothing pending or running (30 s).
wait_idle() {
    local i s
    for i in $(seq 1 ${1:-300}); do
        s=$(acurl "$HUB_URL/api/v1/gitops/status" | jq -r '"\(.state) \(.initial_done)"')
        [ "$s" == "idle true" ] && return 0
        sleep 0.1
    done
    echo "# writer not idle: $s"; return 1
}
head_of() { git --git-dir="$HUB_DIR/git" rev-parse "refs/namespaces/$1/refs/heads/main" 2>/dev/null; }

hub_init || exit 1
hub_start || exit 1

# ---- the fleet ----
NOTE=$'a: b\n# not a comment\n---\n{x: "y"}\n\'quoted\' "double" - [list]\n  indented: yes'
python3 - "$NOTE" >"$T/fleet.json" <<'PY'
import json, sys
rows = []
regions = ["east", "central", "west"]
for i in range(1, 13):
    region = regions[(i - 1) // 4]
    ring = "beta" if i % 4 == 1 else "prod"
    md = {"ring": ring, "region": region}
    if i == 1:
        md["note"] = sys.argv[1]
    rows.append({"name": "store-%02d" % i, "groups": ["/stores/" + region, "/rings/" + ring],
                 "metadata": md})
print(json.dumps(rows))
PY
CODE=$(req POST '/api/v1/clusters:import?create_groups=true' "$(cat "$T/fleet.json")"); expect "import 12 stores" 201
CODE=$(req POST /api/v1/namespaces '{"name":"pos","expression":"/g/stores","owners":["user/alice"],"quota":{"cpu":"2","memory":"4Gi","pods":50}}')
expect "namespace pos" 201
CODE=$(req POST /api/v1/namespaces '{"name":"analytics","expression":"/g/stores/central or /g/rings/beta"}')
expect "namespace analytics" 201
CODE=$(req POST /api/v1/applications '{"name":"pos-api","namespace":"pos","source":{"git":{"url":"https://git.example.com/pos.git","path":"deploy"}},"versions":[{"version":"1","ref":"v1","expression":"/g/stores"},{"version":"2","ref":"v2","expression":"/g/rings/beta"}]}')
expect "app pos-api (two versions by ring)" 201
CODE=$(req POST /api/v1/applications '{"name":"menu","namespace":"pos","source":{"base":{"files":{"deployment.yaml":"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: menu\nspec:\n  selector:\n    matchLabels:\n      app: menu\n  template:\n    metadata:\n      labels:\n        app: menu\n    spec:\n      containers:\n      - name: menu\n        image: registry.example.com/menu:0\n"},"image":"registry.example.com/menu"}},"versions":[{"version":"1.0.0","image_tag":"1.0.0","expression":"/g/stores"}]}')
expect "app menu (hub base)" 201
CODE=$(req POST /api/v1/applications '{"name":"reports","namespace":"analytics","source":{"git":{"url":"https://git.example.com/reports.git"}},"versions":[{"version":"3","ref":"main","expression":"/g/stores"}]}')
expect "app reports" 201
CODE=$(req PUT /api/v1/groups/%2Fstores%2Fcentral/config/tax-rate '{"value":"8.25"}'); expect "group config" 201
wait_idle; check "writer idle after the setup" test $? -eq 0

# ---- every branch: clone, build, compare with the inventory ----
all_ok=1
for i in $(seq -w 1 12); do
    c=store-$i
    rm -rf "$T/clone"
    if ! gitc clone -q "$HUB_URL/git/$c.git" "$T/clone" 2>"$T/clone.err"; then
        all_ok=0; diag "$c: clone failed: $(head -3 "$T/clone.err")"; continue
    fi
    if ! kubectl kustomize "$T/clone" >"$T/$c.yaml" 2>"$T/kust.err"; then
        all_ok=0; diag "$c: kustomize failed: $(head -3 "$T/kust.err")"; continue
    fi
    for d in "$T/clone"/apps/* "$T/clone"/namespaces/*; do
        kubectl kustomize "$d" >/dev/null 2>&1 || { all_ok=0; diag "$c: $d does not build"; }
    done
    n=$((10#$i)); ring=prod; [ $((n % 4)) -eq 1 ] && ring=beta
    want=1; [ $ring == beta ] && want=2
    got=$(python3 - "$T/clone/apps/pos-api/gitrepository.yaml" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
print(d["spec"]["ref"].get("tag") or d["spec"]["ref"].get("branch"))
PY
)
    [ "$got" == "v$want" ] || { all_ok=0; diag "$c ($ring): pos-api ref '$got', want v$want"; }
    # objects exactly as the inventory says: namespaces and applications
    region=$(( (n - 1) / 4 ))
    want_ns="pos"; { [ $region -eq 1 ] || [ $ring == beta ]; } && want_ns="analytics,pos"
    got_ns=$(ls "$T/clone/namespaces" | sort | paste -sd,)
    [ "$got_ns" == "$want_ns" ] || { all_ok=0; diag "$c: namespaces '$got_ns', want '$want_ns'"; }
    want_apps="menu,pos-api"; [ "$want_ns" == "analytics,pos" ] && want_apps="menu,pos-api,reports"
    got_apps=$(ls "$T/clone/apps" | sort | paste -sd,)
    [ "$got_apps" == "$want_apps" ] || { all_ok=0; diag "$c: apps '$got_apps', want '$want_apps'"; }
    tax=$(python3 - "$T/$c.yaml" <<'PY'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap" and d["metadata"]["namespace"] == "pos":
        print(d["data"].get("tax-rate", "-"))
PY
)
    want_tax=-; [ $region -eq 1 ] && want_tax=8.25
    [ "$tax" == "$want_tax" ] || { all_ok=0; diag "$c: tax-rate '$tax', want '$want_tax'"; }
    grep -q "resedge.io/cluster: $c" "$T/$c.yaml" || { all_ok=0; diag "$c: no cluster label"; }
    kubectl kustomize "$T/clone/apps/menu" | grep -q "image: registry.example.com/menu:1.0.0" || { all_ok=0; diag "$c: menu image tag"; }
done
check_eq "12 branches clone, build with kubectl kustomize and match the inventory" "$all_ok" 1
check "git fsck --strict on the hub repository" git --git-dir="$HUB_DIR/git" fsck --strict --no-dangling
packs=$(ls "$HUB_DIR/git/objects/pack/" | grep -c '\.pack$')
loose=$(find "$HUB_DIR/git/objects" -path '*/pack' -prune -o -type f -print | grep -c /)
check_eq "objects are packed, none loose" "$loose" 0
diag "$packs packs"

note=$(python3 - "$T/store-01.yaml" <<'PY'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap" and d["metadata"]["namespace"] == "pos":
        sys.stdout.write(d["data"]["cluster.note"])
PY
)
check_eq "YAML-significant metadata comes out as the literal string" "$note" "$NOTE"
ndocs=$(grep -c '^kind: ConfigMap' "$T/store-01.yaml")
check_eq "... and adds no object (one ConfigMap per namespace)" "$ndocs" 2

# ---- incremental: one app version change commits only the affected clusters ----
for i in $(seq -w 1 12); do echo "store-$i $(head_of store-$i)"; done >"$T/heads.before"
issue_user opsy operator
CODE=$(ucurl "$T/opsy" -o "$T/body" -w '%{http_code}' -X PATCH -H 'Content-Type: application/json' \
    "$HUB_URL/api/v1/applications/pos-api" --data-binary \
    '{"versions":[{"version":"1","ref":"v1","expression":"/g/stores"},{"version":"2","ref":"v2.1","expression":"/g/rings/beta"}]}')
expect "operator changes pos-api v2's ref" 200
wait_idle
for i in $(seq -w 1 12); do echo "store-$i $(head_of store-$i)"; done >"$T/heads.after"
moved=$(diff "$T/heads.before" "$T/heads.after" | grep '^>' | awk '{print $2}' | paste -sd,)
check_eq "only the beta stores got a commit" "$moved" "store-01,store-05,store-09"
check_eq "... and only they were rendered (v1 still selects all 12; its clusters did not change)" \
    "$(acurl "$HUB_URL/api/v1/gitops/status" | jq -c '[.last_batch_clusters, .last_batch_changed]')" "[3,3]"
check_eq "... authored by the operator" "$(git --git-dir="$HUB_DIR/git" log -1 --format=%an refs/namespaces/store-05/refs/heads/main)" "user/opsy"
check_match "... message says what changed" "$(git --git-dir="$HUB_DIR/git" log -1 --format=%s refs/namespaces/store-05/refs/heads/main)" "pos-api"

# ---- a no-change fetch is small ----
rm -rf "$T/clone"; gitc clone -q "$HUB_URL/git/store-05.git" "$T/clone"
bytes=$(cd "$T/clone" && GIT_TRACE_CURL=1 GIT_TRACE_CURL_NO_DATA=1 gitc fetch -q 2>&1 |
    grep -o 'Recv data, [0-9]*' | awk '{s+=$3} END {print s+0}')
check "no-change fetch transfers under 2 KB ($bytes bytes received)" test "$bytes" -lt 2048

# ---- dry run ----
h5=$(head_of store-05)
CODE=$(req PATCH '/api/v1/applications/reports?dry_run=true' '{"versions":[{"version":"4","ref":"v4","expression":"/g/stores"}]}')
expect "dry run of an app change" 200
check_eq "... lists the clusters that would change" "$(jq_body '.clusters | sort | join(",")')" \
    "store-01,store-05,store-06,store-07,store-08,store-09"
check_eq "... with their count" "$(jq_body .clusters_count)" 6
check_match "... and a diff of one of them" "$(jq_body .diff.patch)" 'v4'
wait_idle
check_eq "... and changes nothing" "$(head_of store-05)" "$h5"
CODE=$(req PATCH '/api/v1/clusters/store-02?dry_run=true' '{"metadata":{"ring":"prod"}}')
check_eq "dry run without effect lists no cluster" "$(jq_body .clusters_count)" 0

# ---- history, files, revert, unpin over the API ----
CODE=$(req GET '/api/v1/clusters/store-05/history?limit=10'); expect "history" 200
check_eq "... newest first, by the operator" "$(jq_body '.items[0].author')" "user/opsy"
first=$(jq_body '.items[-1].commit')
nhist=$(jq_body '.items | length')
CODE=$(req GET '/api/v1/clusters/store-05/files'); expect "files" 200
check_match "... lists paths" "$(jq_body '.files | join(" ")')" 'apps/pos-api/gitrepository.yaml'
CODE=$(req GET '/api/v1/clusters/store-05/files?path=apps/pos-api/gitrepository.yaml'); expect "one file" 200
check_match "... its content" "$(jq_body .content)" 'tag: v2.1'
CODE=$(req GET '/api/v1/clusters/store-05/files?path=nope.yaml'); expect "a missing file: 404" 404
CODE=$(req GET '/api/v1/clusters/nope/history'); expect "history of an unknown cluster: 404" 404
issue_user tech technician
CODE=$(ucurl "$T/tech" -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    "$HUB_URL/api/v1/clusters/store-05/revert" --data-binary "{\"to\":\"$first\"}")
expect "a technician cannot revert" 403
CODE=$(ucurl "$T/tech" -o "$T/body" -w '%{http_code}' "$HUB_URL/api/v1/clusters/store-05/history")
expect "... nor reads history (it shows rendered files, configuration included)" 403
CODE=$(req POST /api/v1/clusters/store-05/revert '{"to":"0000deadbeef"}'); expect "revert to an unknown revision: 404" 404
CODE=$(req POST /api/v1/clusters/store-05/revert "{\"to\":\"${first:0:10}\"}"); expect "revert" 200
check_eq "... pinned" "$(jq_body .pinned)" true
check_eq "... a new commit" "$(jq_body .revision)" "$(head_of store-05)"
check_eq "... restoring the old tree" "$(git --git-dir="$HUB_DIR/git" rev-parse "$(head_of store-05)^{tree}")" \
    "$(git --git-dir="$HUB_DIR/git" rev-parse "$first^{tree}")"
CODE=$(req GET '/api/v1/audit?entity=cluster&name=store-05&action=revert'); expect "revert is audited" 200
check_eq "... by the admin" "$(jq_body '.items[0].actor')" "user/admin"
# a change while pinned leaves the pinned cluster alone
pinned_head=$(head_of store-05)
CODE=$(req PATCH /api/v1/applications/pos-api '{"versions":[{"version":"1","ref":"v1","expression":"/g/stores"},{"version":"2","ref":"v2.2","expression":"/g/rings/beta"}]}')
expect "change while store-05 is pinned" 200
wait_idle
check_eq "... the pinned cluster did not move" "$(head_of store-05)" "$pinned_head"
check "... the others did" test "$(head_of store-09)" != "$(grep store-09 "$T/heads.after" | cut -d' ' -f2)"
CODE=$(req POST /api/v1/clusters/store-05/unpin); expect "unpin" 200
wait_idle
CODE=$(req GET '/api/v1/clusters/store-05/files?path=apps/pos-api/gitrepository.yaml')
check_match "... re-rendered from the inventory" "$(jq_body .content)" 'tag: v2.2'
CODE=$(req POST /api/v1/clusters/store-05/unpin); expect "unpin when not pinned: 409" 409

# ---- the same through resedgectl ----
out=$(ctl clusters history store-05 2>&1)
check_match "ctl clusters history" "$out" 'user/admin'
rev=$(ctl -o json clusters history store-05 2>/dev/null | jq -r '.items[-1].commit // .[-1].commit')
out=$(ctl clusters revert store-05 --to "$rev" 2>&1); check_match "ctl clusters revert" "$out" 'pinned'
check_eq "... restored" "$(git --git-dir="$HUB_DIR/git" rev-parse "$(head_of store-05)^{tree}")" \
    "$(git --git-dir="$HUB_DIR/git" rev-parse "$rev^{tree}")"
out=$(ctl clusters unpin store-05 2>&1); check_match "ctl clusters unpin" "$out" 'unpinned'
# unpinning re-renders the cluster in the writer's next batch: wait for it
for _ in $(seq 1 100); do
    out=$(ctl clusters files store-05 2>&1)
    grep -q 'namespaces/pos/configmap.yaml' <<<"$out" && break
    sleep 0.2
done
check_match "ctl clusters files" "$out" 'namespaces/pos/configmap.yaml'
out=$(ctl clusters files store-01 namespaces/pos/configmap.yaml 2>&1)
check_match "ctl clusters files PATH" "$out" 'cluster.note'
wait_idle

# ---- /readyz and /metrics ----
check_eq "readyz" "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$HUB_DIR/tls/ca.crt" "$HUB_URL/readyz")" 200
m=$(acurl "$HUB_URL/metrics")
check_match "metrics: renders" "$m" 'resedge_gitops_renders_total [1-9]'
check_match "metrics: commits" "$m" 'resedge_gitops_commits_total [1-9]'
check_match "metrics: last batch duration" "$m" 'resedge_gitops_last_batch_seconds'

# ---- kill -9 during a large render, restart ----
N=${GITOPS_KILL_N:-3000}
python3 -c "
import json
print(json.dumps([{'name': 'bulk-%05d' % i, 'groups': ['/stores/west', '/rings/prod']} for i in range($N)]))" >"$T/bulk.json"
CODE=$(req POST '/api/v1/clusters:import' "@$T/bulk.json"); expect "import $N clusters" 201
sleep 0.3
kill -9 "$HUB_PID"; wait "$HUB_PID" 2>/dev/null; HUB_PID=
nb=$(git --git-dir="$HUB_DIR/git" for-each-ref 'refs/namespaces/*/refs/heads/main' | wc -l)
diag "branches at the kill: $nb of $((N + 12))"
check "repository valid after kill -9" git --git-dir="$HUB_DIR/git" fsck --no-dangling
hub_start || exit 1
wait_idle 1200; check "writer catches up after the restart" test $? -eq 0
nb=$(git --git-dir="$HUB_DIR/git" for-each-ref 'refs/namespaces/*/refs/heads/main' | wc -l)
check_eq "every cluster has a branch" "$nb" $((N + 12))
check "git fsck --strict after recovery" git --git-dir="$HUB_DIR/git" fsck --strict --no-dangling
rm -rf "$T/clone"; gitc clone -q "$HUB_URL/git/bulk-00$((N / 200)).git" "$T/clone" 2>/dev/null
gitc clone -q "$HUB_URL/git/bulk-$(printf %05d $((N - 1))).git" "$T/clone2"
check "the last imported cluster's branch builds" kubectl kustomize "$T/clone2"
check_match "... and holds what the inventory says" "$(ls "$T/clone2/apps" | paste -sd,)" '^menu,pos-api$'
check_eq "the pre-kill branches are untouched by the restart" "$(head_of store-09)" \
    "$(acurl "$HUB_URL/api/v1/clusters/store-09/history?limit=1" | jq -r '.items[0].commit')"
hub_stop; check_eq "hub stops cleanly" $? 0

done_testing
