#!/usr/bin/env bash
# test_agent.sh - the agent against the real hub: enrollment (a wrong CA
# fingerprint writes nothing), check-ins that show in the inventory, pulling
# and materializing the cluster's branch over the hub's git endpoint with the
# agent's own certificate, a hub outage (the agent keeps its state, backs off
# with jitter, recovers), bad hub answers (garbage, huge, redirect), config
# errors with file:line, sd_notify, SIGHUP, SIGTERM, and revocation.
. "$(dirname "$0")/lib.sh"
_mounted=
trap '[ -n "$_mounted" ] && umount "$_mounted"; _cleanup' EXIT
AGENT=$RE_AGENT          # under RE_WRAP_AGENT (valgrind) when set, see lib.sh
A=$T/agent                      # the agent's state directory
ALOG=$T/agent.log
AGENT_PID=

hub_init || exit 1
hub_start || exit 1

slow=1; [ -n "${RE_WRAP:-}${RE_WRAP_AGENT:-}" ] && slow=5   # valgrind: everything is slower
# wait_for SECONDS COMMAND...: polls every 0.2 s until COMMAND succeeds
# (SECONDS times slow).
wait_for() {
    local n=$(($1 * 5 * slow)); shift
    local i
    for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}
log_has() { grep -q -- "$1" "$ALOG"; }
log_count() { grep -c -- "$1" "$ALOG"; }
agent_status() { acurl "$HUB_URL/api/v1/clusters/$1/status"; }
code_for() { acurl -X POST "$HUB_URL/api/v1/clusters/$1/enroll-code" >"$T/code.json" && jq -r .code "$T/code.json"; }
start_agent() {
    NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=2000000 "$AGENT" run --state-dir "$A" "$@" >>"$ALOG" 2>&1 &
    AGENT_PID=$!
    _pids+=("$AGENT_PID")
}

# A listener for sd_notify datagrams, appended to $T/notify.log.
python3 - "$T/notify.sock" "$T/notify.log" <<'PY' &
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode(errors="replace").replace("\n", " | ") + "\n")
PY
_pids+=("$!")

for c in store-1 store-2; do
    acurl -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$c\"}" \
        "$HUB_URL/api/v1/clusters" -o /dev/null
done

# ---- enrollment -------------------------------------------------------------------
CODE=$(code_for store-1)
FP=$(jq -r .ca_fingerprint "$T/code.json")
BAD_FP=sha256:$(printf '%064d' 0)
# resedge-agent enroll: 1 enrollment failed (64 usage, 73 already enrolled)
check_exit "enroll with a wrong CA fingerprint is refused" 1 \
    "$AGENT" enroll --hub "$HUB_URL" --code "$CODE" --ca-fingerprint "$BAD_FP" --state-dir "$A"
check "... and writes nothing (no state directory)" test ! -e "$A"
out=$("$AGENT" enroll --hub "$HUB_URL" --code "$CODE" --ca-fingerprint "$BAD_FP" --state-dir "$A" 2>&1)
check_match "... and says why" "$out" "fingerprint is sha256:[0-9a-f]{64}, not $BAD_FP"
check_exit "enroll with a code for nothing is refused" 1 \
    "$AGENT" enroll --hub "$HUB_URL" --code AAAAAA.BBBB-CCCC-DDDD-EEEE --ca-fingerprint "$FP" --state-dir "$A"
check "... and writes nothing" test ! -e "$A/agent.state"
check "enroll with the code and the right fingerprint" \
    "$AGENT" enroll --hub "$HUB_URL" --code "$CODE" --ca-fingerprint "$FP" --state-dir "$A"
check "state: agent.state, ca.crt, key and certificate" \
    bash -c "test -f '$A/agent.state' && test -f '$A/ca.crt' && ls '$A'/agent-*.key && ls '$A'/agent-*.crt"
check_eq "the key is mode 0600" "$(stat -c %a "$A"/agent-*.key)" 600
check "the certificate chains to the hub CA" openssl verify -CAfile "$HUB_DIR/tls/ca.crt" "$A"/agent-*.crt
check_match "the certificate names the cluster" "$(openssl x509 -noout -ext subjectAltName -in "$A"/agent-*.crt)" \
    "spiffe://resedge/cluster/store-1"
CODE2=$(code_for store-1)
"$AGENT" enroll --hub "$HUB_URL" --code "$CODE2" --ca-fingerprint "$FP" --state-dir "$A" >/dev/null 2>&1
check_eq "enrolling an enrolled node again needs --force (exit 73)" "$?" 73
check "status shows the enrollment" bash -c "'$AGENT' status --state-dir '$A' | grep -q 'cluster: *store-1'"

# ---- configuration errors and not enrolled ----------------------------------------
"$AGENT" run --state-dir "$T/nowhere" >"$T/ne.out" 2>&1
check_eq "run when not enrolled exits 78" "$?" 78
check "... and says how to enroll" grep -q "resedge-agent enroll --hub" "$T/ne.out"
printf '[agent]\nmode = none\ninterval = 1s\nfrobnicate = yes\n' >"$T/bad.conf"
"$AGENT" run --config "$T/bad.conf" --state-dir "$A" >"$T/bad.out" 2>&1
check_eq "a config with an unknown key exits 78" "$?" 78
check_match "... naming file:line" "$(cat "$T/bad.out")" "bad.conf:4: unknown key 'frobnicate'"
printf '[agent]\nmode = sometimes\n' >"$T/bad2.conf"
"$AGENT" run --config "$T/bad2.conf" --state-dir "$A" >"$T/bad2.out" 2>&1
check_match "a bad value names file:line" "$(cat "$T/bad2.out")" "bad2.conf:2: bad value 'sometimes' for 'mode'"

cp -a "$A" "$T/corrupt"
printf '[enrollment]\nhub = https://x\n\x00\x01garbage\n' >"$T/corrupt/agent.state"
"$AGENT" run --state-dir "$T/corrupt" >"$T/corrupt.out" 2>&1
check_eq "a damaged enrollment record exits 78" "$?" 78
check "... and says to enroll again" grep -q "enroll again with --force" "$T/corrupt.out"
for c in "--help" "enroll --help" "run --help" "status --help"; do
    check "resedge-agent $c" bash -c "'$AGENT' $c | grep -q usage"
done

# ---- check-in -----------------------------------------------------------------------
printf '[agent]\nmode = none\ninterval = 1s\nbackoff_cap = 3s\nlabel = region=central\nidentity = kube-uid-1\n' >"$T/agent.conf"
start_agent --config "$T/agent.conf"
check "the check-in shows in the inventory (online)" \
    wait_for 10 bash -c "curl -sS --cacert '$HUB_DIR/tls/ca.crt' --cert '$HUB_DIR/tls/admin.crt' --key '$HUB_DIR/tls/admin.key' '$HUB_URL/api/v1/clusters/store-1/status' | jq -e '.status == \"online\"'"
st=$(agent_status store-1)
check_eq "reported labels" "$(jq -r .reported_labels.region <<<"$st")" central
check_eq "reported identity" "$(jq -r .identity <<<"$st")" kube-uid-1
check_eq "agent version" "$(jq -r .agent_version <<<"$st")" "$("$AGENT" --version | cut -d' ' -f2)"
check_match "host facts" "$(jq -c .host <<<"$st")" '"boot_id":"[0-9a-f-]{36}".*"disk_free_bytes":[0-9]+'
check_eq "store-2 never checked in: offline" "$(agent_status store-2 | jq -r .status)" offline
check "sqlite has the row" bash -c "sqlite3 '$HUB_DIR/hub.db' 'SELECT checkins FROM cluster_status WHERE name = \"store-1\"' | grep -qE '^[0-9]+$'"
check "sd_notify READY=1" wait_for 5 grep -q "READY=1" "$T/notify.log"
check "sd_notify STATUS= says it checked in" wait_for 5 grep -q "STATUS=checked in" "$T/notify.log"
check "sd_notify WATCHDOG=1 (WATCHDOG_USEC set)" wait_for 5 grep -q "WATCHDOG=1" "$T/notify.log"

# The agent's certificate reaches only its own cluster.
AK=$(ls "$A"/agent-*.key); AC=$(ls "$A"/agent-*.crt)
agcurl() { curl -sS --max-time 10 --cacert "$A/ca.crt" --cert "$AC" --key "$AK" "$@"; }
check_eq "an agent cannot check in for another cluster" \
    "$(agcurl -o /dev/null -w '%{http_code}' -X POST -d '{}' "$HUB_URL/api/v1/clusters/store-2/checkin")" 403
check_eq "an agent cannot read another cluster's status" \
    "$(agcurl -o /dev/null -w '%{http_code}' "$HUB_URL/api/v1/clusters/store-2/status")" 403
check_eq "an agent cannot call an admin endpoint" \
    "$(agcurl -o /dev/null -w '%{http_code}' "$HUB_URL/metrics")" 403
check_eq "the admin cannot check in as a cluster" \
    "$(acurl -o /dev/null -w '%{http_code}' -X POST -d '{}' "$HUB_URL/api/v1/clusters/store-1/checkin")" 403
big=$(python3 -c 'import json; print(json.dumps({"labels": {f"k{i}": "v" for i in range(65)}}))')
check_eq "65 labels are refused" \
    "$(agcurl -o "$T/body" -w '%{http_code}' -X POST -d "$big" "$HUB_URL/api/v1/clusters/store-1/checkin")" 400
check_eq "... naming the field" "$(jq -r .error.field "$T/body")" labels
check_eq "a bad revision is refused" \
    "$(agcurl -o /dev/null -w '%{http_code}' -X POST -d '{"applied_revision":"../../x"}' "$HUB_URL/api/v1/clusters/store-1/checkin")" 400
check_eq "a body that is not JSON is refused" \
    "$(agcurl -o /dev/null -w '%{http_code}' -X POST -d 'nope' "$HUB_URL/api/v1/clusters/store-1/checkin")" 400

# ---- pulling the cluster's branch ---------------------------------------------------
# The hub's GitOps writer renders store-1's branch (refs/namespaces/store-1/refs/heads/main
# in $HUB_DIR/git); inventory changes move it.
GITDIR=$HUB_DIR/git
head_rev() { git -C "$GITDIR" rev-parse -q --verify refs/namespaces/store-1/refs/heads/main 2>/dev/null; }
# next_rev OLD: waits until the branch moves off OLD, prints the new head.
next_rev() {
    local i r
    for i in $(seq 1 $((100 * slow))); do r=$(head_rev) && [ -n "$r" ] && [ "$r" != "$1" ] && { echo "$r"; return 0; }; sleep 0.1; done
    return 1
}
REV0=$(next_rev none)
check "the hub rendered store-1's branch" test -n "$REV0"
st=$(acurl -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"name":"pos","expression":"/c/store-1"}' "$HUB_URL/api/v1/namespaces")
check_eq "a namespace for store-1" "$st" 201
REV1=$(next_rev "$REV0")
check "... moves its branch" test -n "$REV1"
check "the hub assigns the branch's commit" \
    wait_for 10 bash -c "curl -sS --cacert '$A/ca.crt' --cert '$AC' --key '$AK' -X POST -d '{}' '$HUB_URL/api/v1/clusters/store-1/checkin' | jq -e '.revision == \"$REV1\"'"
check "the agent materializes it into STATE/current within an interval or two" \
    wait_for 15 bash -c "[ \"\$(readlink '$A/current')\" = revisions/$REV1 ]"
if command -v kubectl >/dev/null; then
    check "kubectl kustomize STATE/current builds the namespace" \
        bash -c "kubectl kustomize '$A/current' >'$T/built.yaml' && grep -q '^kind: Namespace' '$T/built.yaml' && grep -q '  name: pos' '$T/built.yaml'"
else
    ok "kubectl kustomize STATE/current builds # SKIP kubectl not installed"
fi
check "the applied revision shows in the inventory" \
    wait_for 10 bash -c "curl -sS --cacert '$HUB_DIR/tls/ca.crt' --cert '$HUB_DIR/tls/admin.crt' --key '$HUB_DIR/tls/admin.key' '$HUB_URL/api/v1/clusters/store-1/status' | jq -e '.applied_revision == \"$REV1\"'"
st=$(acurl -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/json' \
    -d '{"metadata":{"ring":"beta"}}' "$HUB_URL/api/v1/clusters/store-1")
check_eq "new metadata for store-1" "$st" 200
REV2=$(next_rev "$REV1")
check "a new revision is materialized within an interval or two" \
    wait_for 10 bash -c "[ \"\$(readlink '$A/current')\" = revisions/$REV2 ]"
check "... with the change in it" grep -rq "cluster.ring" "$A/current/"
check "the previous revision is kept" test -d "$A/revisions/$REV1"
check "the mirror holds the branch" bash -c "[ \"\$(git -C '$A/mirror.git' rev-parse refs/heads/main)\" = $REV2 ]"

# ---- the hub goes away --------------------------------------------------------------
hub_stop
: >"$T/mark"; before=$(log_count "check-in failed")
check "with the hub down the agent reports failures and backs off" \
    wait_for 15 bash -c "[ \$(grep -c 'check-in failed' '$ALOG') -ge \$(( $before + 3 )) ]"
check "... retrying with jittered waits" grep -qE "retrying in [0-9]+\.[0-9]s" "$ALOG"
waits=$(grep -oE "retrying in [0-9.]+s" "$ALOG" | tail -4 | sort -u | wc -l)
check "... that are not all the same" test "$waits" -ge 2
check "... keeps its last good state" bash -c "[ \"\$(readlink '$A/current')\" = revisions/$REV2 ] && test -f '$A/current/namespaces/pos/namespace.yaml'"
check "... is still running" kill -0 "$AGENT_PID"
check "... and says so in its status" wait_for 5 grep -q "STATUS=hub unreachable" "$T/notify.log"
hub_start
check "after the hub is back the agent recovers by itself" wait_for 20 log_has "check-in succeeded again"

# ---- renewal, and facts from a Kubernetes API (a stand-in kubectl) --------------------
stop_agent
cat >"$T/kubectl" <<'K'
#!/bin/sh
for a; do p=$a; done
case $p in
/api/v1/namespaces/kube-system) echo '{"metadata":{"name":"kube-system","uid":"6f1c0de4-1111-2222-3333-444455556666"}}' ;;
/version) echo '{"gitVersion":"v1.32.0"}' ;;
/api/v1/nodes*) printf '{"items":[{"metadata":{"name":"%s","labels":{"node-role.kubernetes.io/edge":"true","topology.kubernetes.io/zone":"store"}}},{"metadata":{"name":"other"}}]}\n' "$(hostname)" ;;
*) exit 1 ;;
esac
K
chmod +x "$T/kubectl"
sed -i 's/^renew_at = .*/renew_at = 1/' "$A/agent.state"
OLD_CERT=$AC
start_agent --config "$T/agent.conf" --kubectl "$T/kubectl" --kubeconfig "$T/kubeconfig"
check "a certificate due for renewal is renewed over mutual TLS" wait_for 15 log_has "renewed the agent certificate"
AK=$(ls "$A"/agent-*.key); AC=$(ls "$A"/agent-*.crt)
check "... with a new key and certificate, the old pair removed" \
    bash -c "[ '$AC' != '$OLD_CERT' ] && [ ! -e '$OLD_CERT' ] && [ \$(ls '$A'/agent-*.key | wc -l) = 1 ]"
check "... that chains to the hub CA" openssl verify -CAfile "$HUB_DIR/tls/ca.crt" "$AC"
check "... and check-ins go on with it" \
    wait_for 10 bash -c "sed -n '/renewed the agent certificate/,\$p' '$ALOG' | grep -q 'checked in:'"
check "the kube-system UID becomes the reported identity" \
    wait_for 10 bash -c "curl -sS --cacert '$HUB_DIR/tls/ca.crt' --cert '$HUB_DIR/tls/admin.crt' --key '$HUB_DIR/tls/admin.key' '$HUB_URL/api/v1/clusters/store-1/status' | jq -e '.identity == \"6f1c0de4-1111-2222-3333-444455556666\"'"
st=$(agent_status store-1)
check_eq "the Kubernetes version is reported" "$(jq -r .kubernetes_version <<<"$st")" v1.32.0
check_eq "the node count is reported" "$(jq -r .node_count <<<"$st")" 2
check_eq "the node's labels are reported beside the configured ones" \
    "$(jq -r '.reported_labels["topology.kubernetes.io/zone"] + "," + .reported_labels.region' <<<"$st")" store,central

# ---- SIGHUP reloads the configuration -----------------------------------------------
sed -i 's/region=central/region=east/' "$T/agent.conf"
kill -HUP "$AGENT_PID"
check "SIGHUP reloads the configuration" wait_for 5 log_has "configuration reloaded"
check "... and the new label is reported" \
    wait_for 10 bash -c "curl -sS --cacert '$HUB_DIR/tls/ca.crt' --cert '$HUB_DIR/tls/admin.crt' --key '$HUB_DIR/tls/admin.key' '$HUB_URL/api/v1/clusters/store-1/status' | jq -e '.reported_labels.region == \"east\"'"
printf '[agent]\nmode = upside-down\n' >"$T/agent.conf.bad"
cp "$T/agent.conf" "$T/agent.conf.good"; cp "$T/agent.conf.bad" "$T/agent.conf"
kill -HUP "$AGENT_PID"
check "a bad config on SIGHUP keeps the running one" wait_for 5 log_has "keeping the running configuration"
check "... and the agent keeps running" kill -0 "$AGENT_PID"
cp "$T/agent.conf.good" "$T/agent.conf"

# ---- SIGTERM ------------------------------------------------------------------------
start=$(date +%s%N)
stop_agent
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check_eq "SIGTERM: exit 0" "$rc" 0
check "... within 5 s (${ms} ms)" test "$ms" -lt 5000

# ---- modes: apply runs a command on each revision, flux writes Flux objects ----------
start_agent --interval 1s --mode apply --apply-command "sh -c 'cat {dir}/namespaces/pos/namespace.yaml > $T/applied.yaml'"
check "apply mode: the command ran on the revision (a mode change re-applies)" \
    wait_for 10 grep -q "kind: Namespace" "$T/applied.yaml"
check "... and the result is reported" \
    wait_for 10 bash -c "curl -sS --cacert '$HUB_DIR/tls/ca.crt' --cert '$HUB_DIR/tls/admin.crt' --key '$HUB_DIR/tls/admin.key' '$HUB_URL/api/v1/clusters/store-1/status' | jq -e '.apply_result == \"ok\"'"
stop_agent
sed -i 's/"mode":"apply"/"mode":"none"/' "$A/status.json"   # so it applies again
start_agent --interval 1s --mode apply --apply-command "sh -c 'echo nope >&2; exit 3'"
check "apply mode: a failing command is reported with its output" \
    wait_for 10 bash -c "curl -sS --cacert '$HUB_DIR/tls/ca.crt' --cert '$HUB_DIR/tls/admin.crt' --key '$HUB_DIR/tls/admin.key' '$HUB_URL/api/v1/clusters/store-1/status' | jq -e '.apply_result | test(\"exited 3: nope\")'"
stop_agent
rm -rf "$T/flux-applied"
start_agent --interval 1s --mode flux --apply-command "cp -r {dir} $T/flux-applied"
check "flux mode: GitRepository, Kustomization and TLS Secret applied" \
    wait_for 10 bash -c "test -f '$T/flux-applied/source.yaml' && test -f '$T/flux-applied/sync.yaml' && test -f '$T/flux-applied/secret.yaml'"
check_match "... pointing Flux at the hub's git endpoint" "$(cat "$T/flux-applied/source.yaml" 2>/dev/null)" \
    "url: https://127.0.0.1:$HUB_PORT/git/store-1.git"
check_eq "... the secret is mode 0600" "$(stat -c %a "$A/flux/secret.yaml")" 600
stop_agent
cp -r "$A/flux" "$T/agent-flux"   # the Flux mode objects, for validate.py at the end
rm -rf "$T/mirror-applied"
start_agent --interval 1s --mode mirror --mirror-url http://127.0.0.1:9418/store-1.git --mirror-listen "127.0.0.1:$(free_port)" \
    --apply-command "cp -r {dir} $T/mirror-applied"
check "mirror mode: Flux pointed at the local mirror" \
    wait_for 10 grep -q "url: http://127.0.0.1:9418/store-1.git" "$T/mirror-applied/source.yaml"
check "... with no TLS secret" test ! -e "$T/mirror-applied/secret.yaml"
check "... and the mirror holds the assigned revision" \
    bash -c "[ \"\$(git -C '$A/mirror.git' rev-parse refs/heads/main)\" = $REV2 ]"
stop_agent
sed -i 's/"mode":"[a-z]*"/"mode":"none"/' "$A/status.json"

# ---- a full disk during materialization ----------------------------------------------
D=$T/disk
mkdir -p "$D"
if mount -t tmpfs -o size=1m tmpfs "$D" 2>/dev/null; then
    _mounted=$D
    cp -a "$A/agent.state" "$A/ca.crt" "$A"/agent-*.key "$A"/agent-*.crt "$D/"
    mkdir -p "$D/revisions" && cp -a "$A/revisions/$REV2" "$D/revisions/" && ln -s "revisions/$REV2" "$D/current"
    git init -q "$T/work"
    git -C "$T/work" fetch -q "$GITDIR" refs/namespaces/store-1/refs/heads/main
    git -C "$T/work" reset -q --hard FETCH_HEAD
    head -c 3000000 /dev/zero | tr '\0' 'a' >"$T/work/big.txt"
    git -C "$T/work" add big.txt
    git -C "$T/work" -c user.name=test -c user.email=test@resedge commit -qm "big file"
    git -C "$T/work" push -q "$GITDIR" HEAD:refs/namespaces/store-1/refs/heads/main
    "$AGENT" run --state-dir "$D" --interval 1s --mode none >"$T/disk.log" 2>&1 &
    dpid=$!; _pids+=("$dpid")
    check "disk full while materializing: a clear error" wait_for 15 grep -q "cannot materialize.*no space left" "$T/disk.log"
    check "... the last good state stays current" bash -c "[ \"\$(readlink '$D/current')\" = revisions/$REV2 ]"
    check "... no half-written revision is left" bash -c "! ls -a '$D/revisions' | grep -q '^\.tmp-'"
    check "... and the agent keeps running" kill -0 "$dpid"
    kill -TERM "$dpid"; wait "$dpid"
    umount "$D"; _mounted=
    # Back to the writer's own commit, so it finds its branch where it left it.
    git -C "$GITDIR" update-ref refs/namespaces/store-1/refs/heads/main "$REV2"
else
    ok "disk full while materializing # SKIP $([ "$(id -u)" -ne 0 ] && echo 'not root (mount -t tmpfs)' || echo 'cannot mount a tmpfs here')"
fi

# ---- bad answers from a hub ----------------------------------------------------------
# A fake hub with the real hub's server certificate (so TLS verifies) that
# answers garbage, a huge body, a redirect to another host or 429 Retry-After.
FAKE_PORT=$(free_port)
python3 - "$FAKE_PORT" "$HUB_DIR/tls/server.crt" "$HUB_DIR/tls/server.key" "$T/fake.mode" \
    "$HUB_URL" "$HUB_DIR/tls/ca.crt" "$HUB_DIR/tls/admin.crt" "$HUB_DIR/tls/admin.key" "$REV1" <<'PY' >"$T/fake.log" 2>&1 &
import http.server, ssl, sys, urllib.request, urllib.error
port, crt, key, modef = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
hub, ca, acrt, akey, rev1 = sys.argv[5:10]
up = ssl.create_default_context(cafile=ca); up.load_cert_chain(acrt, akey)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def proxy(self, body):
        # /git/ goes to the real hub (as admin): the branch is what it is there.
        hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept", "git-protocol", "content-encoding")}
        req = urllib.request.Request(hub + self.path, data=body, headers=hdrs, method=self.command)
        try:
            r = urllib.request.urlopen(req, context=up); status, data, ct = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, data, ct = e.code, e.read(), e.headers.get("Content-Type", "")
        self.send_response(status); self.send_header("Content-Type", ct)
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self):
        self.proxy(None)
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0)); body = self.rfile.read(n)
        if self.path.startswith("/git/"):
            return self.proxy(body)
        mode = open(modef).read().strip()
        if mode == "mismatch":
            body = ('{"branch":"main","revision":"%s","interval":1}' % rev1).encode(); self.send_response(200)
        elif mode == "garbage":
            body = b"<html>gateway error</html>"; self.send_response(200)
        elif mode == "huge":
            body = b'{"branch":"' + b"a" * (3 << 20) + b'"}'; self.send_response(200)
        elif mode == "redirect":
            body = b""; self.send_response(302); self.send_header("Location", "https://evil.example/")
        elif mode == "truncated":
            body = b'{"branch":"main","rev'; self.send_response(200)
        else:
            body = b'{"error":{"code":"busy","message":"spread out"}}'; self.send_response(429)
            self.send_header("Retry-After", "2")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(crt, key)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
_pids+=("$!")
F=$T/fake-agent
cp -a "$A" "$F"
sed -i "s#^hub = .*#hub = https://127.0.0.1:$FAKE_PORT#" "$F/agent.state"
wait_for 5 bash -c "curl -sk https://127.0.0.1:$FAKE_PORT/ -o /dev/null"
for mode in garbage huge redirect truncated retry mismatch; do
    echo "$mode" >"$T/fake.mode"
    : >"$T/fake-agent.log"
    "$AGENT" run --state-dir "$F" --interval 1s --backoff-cap 2s --mode none >"$T/fake-agent.log" 2>&1 &
    pid=$!
    _pids+=("$pid")
    case $mode in
        garbage)   want="not a JSON object" ;;
        huge)      want="larger than 1 MiB" ;;
        redirect)  want="redirect.*does not follow" ;;
        truncated) want="not a JSON object" ;;
        retry)     want="HTTP 429: spread out.*retrying in [2-9]" ;;
        mismatch)  want="branch 'main' is at [0-9a-f]{12} but the hub assigned $REV1: not applying it" ;;
    esac
    if wait_for 10 grep -qE "$want" "$T/fake-agent.log"; then ok "a hub answering $mode: handled ($want)"
    else not_ok "a hub answering $mode: handled"; sed 's/^/#   /' "$T/fake-agent.log" | tail -5; fi
    check "... the agent keeps running" kill -0 "$pid"
    check "... and keeps its last good state" bash -c "[ \"\$(readlink '$F/current')\" = revisions/$REV2 ]"
    kill -TERM "$pid"; wait "$pid"
done

# ---- a damaged state directory ------------------------------------------------------
rm -f "$A/current"; ln -s revisions/0000000000000000000000000000000000000000 "$A/current"
ln -s "revisions/$REV1" "$A/current.tmp"
start_agent --config "$T/agent.conf"
check "a half-done swap is repaired at start" wait_for 10 log_has "repaired the state directory"
check "... and current points at the newest complete revision again" \
    wait_for 10 log_has "pointed 'current' at the newest complete revision $REV2"
check "... then the agent catches up with the hub" \
    wait_for 15 bash -c "[ \"\$(readlink '$A/current')\" = revisions/$REV2 ]"

# ---- revocation ---------------------------------------------------------------------
check_eq "revoke the cluster" "$(acurl -o /dev/null -w '%{http_code}' -X POST "$HUB_URL/api/v1/clusters/store-1/revoke")" 200
check "the agent says the hub refuses it and why" wait_for 15 log_has "the hub refuses this agent"
check "... in its status too" wait_for 5 grep -q "STATUS=refused by the hub" "$T/notify.log"
check "... keeps its last state" bash -c "[ \"\$(readlink '$A/current')\" = revisions/$REV2 ]"
check "... and keeps running (retrying slowly)" kill -0 "$AGENT_PID"
stop_agent

# The branch and the agent's own objects, as a real cluster would take them:
# tests/validate/validate.py against the real Flux and Kubernetes schemas and
# Flux's rules (one owner per object, sources, secrets, service accounts).
st=$(acurl -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"name":"menu","namespace":"pos","source":{"base":{"files":{"cm.yaml":"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: menu\ndata:\n  k: v\n"}}},"versions":[{"version":"1","expression":"/c/store-1"}]}' \
    "$HUB_URL/api/v1/applications")
check_eq "an application for store-1" "$st" 201
check "... rendered into its branch" wait_for 10 git -C "$GITDIR" cat-file -e refs/namespaces/store-1/refs/heads/main:flux/app-menu.yaml
rm -rf "$T/clone-1"
check "the branch clones" env GIT_SSL_CAINFO="$HUB_DIR/tls/ca.crt" git -c http.sslCert="$HUB_DIR/tls/admin.crt" \
    -c http.sslKey="$HUB_DIR/tls/admin.key" clone -q "$HUB_URL/git/store-1.git" "$T/clone-1"
if command -v kubectl >/dev/null; then
    python3 "$(dirname "$0")/../validate/validate.py" --agent-flux "$T/agent-flux" "$T/clone-1" >"$T/validate.out" 2>&1
    rc=$?
    sed 's/^/#   /' "$T/validate.out"
    check_eq "validate.py: store-1's branch with the agent's Flux objects applies (exit 0)" "$rc" 0
else
    ok "validate.py on store-1's branch # SKIP kubectl not installed (validate.py builds with kubectl kustomize)"
fi
done_testing
