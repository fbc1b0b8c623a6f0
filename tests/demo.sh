#!/usr/bin/env bash
# demo.sh - `make demo`: a hub on a free loopback port with a sample fleet of
# 12 stores, each enrolled by a real agent with a real one-time code; then the
# everyday operations, each resedgectl command printed before its output.
# Stops everything it started, also on Ctrl-C.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BIN=${RE_BIN:-$top/bin}
D=$(mktemp -d "${TMPDIR:-/tmp}/resedge-demo-XXXXXX")
pids=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$D"
    [ "$rc" -eq 0 ] || echo "demo: failed (exit $rc)" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ctl()  { printf '\033[36m$ resedgectl %s\033[0m\n' "$*"; "$BIN/resedgectl" --config "$D/hub/resedgectl.conf" "$@"; }
qctl() { "$BIN/resedgectl" --config "$D/hub/resedgectl.conf" "$@"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
hub=https://127.0.0.1:$port

say "A hub in $D/hub on $hub"
"$BIN/resedge-hub" init --dir "$D/hub" --listen "127.0.0.1:$port"
"$BIN/resedge-hub" serve --dir "$D/hub" >"$D/hub.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -sf --cacert "$D/hub/tls/ca.crt" "$hub/healthz" >/dev/null && break
    sleep 0.1
done
curl -sS --cacert "$D/hub/tls/ca.crt" "$hub/healthz"; echo

say "A sample fleet: 3 regions, 6 districts, 12 stores, rings beta and prod"
cat >"$D/stores.csv" <<'CSV'
name,groups,metadata
store-0001,/stores/central/tx-dallas;/rings/beta,format=drive-thru;ring=beta
store-0002,/stores/central/tx-dallas;/rings/prod,format=mall;ring=prod
store-0003,/stores/central/tx-austin;/rings/prod,format=drive-thru;ring=prod
store-0004,/stores/central/tx-austin;/rings/prod,format=mall;ring=prod
store-0005,/stores/east/ny-nyc;/rings/beta,format=mall;ring=beta
store-0006,/stores/east/ny-nyc;/rings/prod,format=drive-thru;ring=prod
store-0007,/stores/east/ma-boston;/rings/prod,format=mall;ring=prod
store-0008,/stores/east/ma-boston;/rings/prod,format=drive-thru;ring=prod
store-0009,/stores/west/ca-la;/rings/beta,format=drive-thru;ring=beta
store-0010,/stores/west/ca-la;/rings/prod,format=mall;ring=prod
store-0011,/stores/west/wa-seattle;/rings/prod,format=drive-thru;ring=prod
store-0012,/stores/west/wa-seattle;/rings/prod,format=mall;ring=prod
CSV
for g in /stores /stores/central /stores/east /stores/west /stores/central/tx-dallas \
         /stores/central/tx-austin /stores/east/ny-nyc /stores/east/ma-boston \
         /stores/west/ca-la /stores/west/wa-seattle /rings /rings/beta /rings/prod; do
    qctl groups create "$g" >/dev/null
done
ctl clusters import "$D/stores.csv"

qctl namespaces create pos --set description="point of sale" --expression /g/stores \
    --set quota.cpu=2 --set quota.memory=2Gi --set quota.pods:=30 >/dev/null
qctl namespaces create loyalty --set description="loyalty programme" \
    --expression "/g/stores/central or /g/stores/east" >/dev/null
cat >"$D/pos-api.json" <<'JSON'
{"name": "pos-api", "namespace": "pos", "owner": "user/pos-team",
 "source": {"git": {"url": "https://git.example.com/pos/pos-api.git", "ref": "v1.0.0", "path": "deploy"}},
 "versions": [{"version": "1", "ref": "v1.0.0", "expression": "/g/stores"}]}
JSON
cat >"$D/menu-board.json" <<'JSON'
{"name": "menu-board", "namespace": "pos", "owner": "user/pos-team",
 "source": {"base": {"image": "registry.example.com/menu-board",
   "files": {"deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: menu-board\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: menu-board\n  template:\n    metadata:\n      labels:\n        app: menu-board\n    spec:\n      containers:\n      - name: menu-board\n        image: registry.example.com/menu-board:latest\n",
             "kustomization.yaml": "resources:\n- deployment.yaml\n"}}},
 "versions": [{"version": "3", "image_tag": "3.2.0", "expression": "/m/format/drive-thru"}]}
JSON
cat >"$D/loyalty-web.json" <<'JSON'
{"name": "loyalty-web", "namespace": "loyalty", "owner": "user/loyalty-team",
 "source": {"git": {"url": "https://git.example.com/loyalty/web.git", "ref": "main", "path": "k8s"}},
 "versions": [{"version": "1", "ref": "v1.4.0", "expression": "/g/stores"}]}
JSON
for a in pos-api menu-board loyalty-web; do qctl apps create "$a" -f "$D/$a.json" >/dev/null; done
cat >"$D/policy.yaml" <<'YAML'
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team-label
spec:
  validationFailureAction: Audit
  rules:
  - name: check-team
    match:
      any:
      - resources:
          kinds: [Deployment]
    validate:
      message: "label 'team' is required"
      pattern:
        metadata:
          labels:
            team: "?*"
YAML
qctl policies create require-team-label --set-file yaml="$D/policy.yaml" --expression /g/stores >/dev/null
qctl config set /stores currency USD >/dev/null
qctl config set /stores/central support-phone "+1 214 555 0100" >/dev/null
qctl config set /stores/central/tx-dallas tax-region TX-DAL >/dev/null
qctl config set store-0001 drive-thru-lanes 2 >/dev/null
ctl namespaces list
ctl apps list

say "Each store's technician: one code, one command"
ctl clusters enroll-code store-0001
mkdir -p "$D/agents"
for i in $(seq -w 1 12); do
    s=store-00$i
    code_json=$(qctl clusters enroll-code "$s" -o json)
    code=$(jq -r .code <<<"$code_json"); fp=$(jq -r .ca_fingerprint <<<"$code_json")
    if [ "$s" = store-0001 ]; then
        printf '\033[36m$ resedge-agent enroll --hub %s --code %s --ca-fingerprint %s --state-dir %s\033[0m\n' \
            "$hub" "$code" "$fp" "$D/agents/$s"
        "$BIN/resedge-agent" enroll --hub "$hub" --code "$code" --ca-fingerprint "$fp" --state-dir "$D/agents/$s"
    else
        "$BIN/resedge-agent" enroll --hub "$hub" --code "$code" --ca-fingerprint "$fp" \
            --state-dir "$D/agents/$s" >/dev/null
    fi
    "$BIN/resedge-agent" run --state-dir "$D/agents/$s" --interval 2 --mode none \
        --identity "kube-system-uid-$s" --label "hw=nuc" >"$D/agents/$s.log" 2>&1 &
    pids+=($!)
done
sleep 4

say "The fleet, by hierarchy, with online state"
ctl groups list
ctl clusters list --group /stores/central
ctl select '/g/stores/central and not /m/ring/prod'

say "Roll pos-api version 2 out to the beta ring"
cat >"$D/pos-api-v2.json" <<'JSON'
{"versions": [{"version": "2", "ref": "v2.0.0", "expression": "/g/rings/beta"},
              {"version": "1", "ref": "v1.0.0", "expression": "/g/stores"}]}
JSON
ctl apps update pos-api -f "$D/pos-api-v2.json" --dry-run
ctl apps update pos-api -f "$D/pos-api-v2.json"
# The GitOps writer commits off the event loop; give it a moment.
for _ in $(seq 50); do
    [ "$(qctl apps status pos-api -o json | jq '.versions[0].clusters')" = 3 ] && break
    sleep 0.2
done
ctl apps status pos-api
echo "(agents check in every 2 s and pull their branch)"
for _ in $(seq 60); do
    [ "$(qctl apps status pos-api -o json | jq '[.versions[].lagging_count] | add')" = 0 ] && break
    sleep 0.5
done
ctl apps status pos-api
ctl clusters list --group /rings/beta

say "One store: its files, effective configuration and history"
ctl clusters files store-0001
ctl clusters files store-0001 namespaces/pos/kustomization.yaml
ctl config store-0001
ctl clusters history store-0001

say "Revert store-0001 to its state before the rollout (pinned until released)"
before=$(qctl clusters history store-0001 -o json | jq -r '.items[1].commit')
ctl clusters revert store-0001 --to "$before"
ctl clusters history store-0001
ctl clusters unpin store-0001

say "Where to look next"
cat <<EOF2
  hub state and logs:   $D/hub, $D/hub.log (removed when the demo ends)
  the API:              curl --cacert \$DIR/tls/ca.crt --cert \$DIR/tls/admin.crt --key \$DIR/tls/admin.key $hub/api/v1/clusters
  metrics:              $hub/metrics
  the CLI:              resedgectl --help;  README.md for running a hub by hand
EOF2
