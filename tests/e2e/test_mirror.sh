#!/bin/bash
# test_mirror.sh - the GitOps push mirror, dry-run diffs of a chosen cluster,
# and commit messages that say what changed, against the real hub: a local
# bare mirror receives every cluster's branch (as refs/heads/<cluster>); an
# unreachable mirror shows as degraded (200) in /readyz and /metrics while the
# inventory keeps answering and committing; a mirror that appears later is
# caught up on a retry.
. "$(dirname "$0")/lib.sh"

req() { acurl -o "$T/body" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
        "$HUB_URL$2" ${3:+--data-binary "$3"}; }
expect() { check_eq "$1" "$CODE" "$2"; }
head_of() { git --git-dir="$HUB_DIR/git" rev-parse "refs/namespaces/$1/refs/heads/main" 2>/dev/null; }
status_json() { acurl "$HUB_URL/api/v1/gitops/status"; }
# wait_for DESCRIPTION-FOR-FAILURE SECONDS COMMAND...: polls every 0.1 s.
wait_for() {
    local what=$1 n=$(($2 * 10)) i; shift 2
    for i in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "# timed out waiting for $what"; return 1
}
writer_idle() { [ "$(status_json | jq -r '"\(.state) \(.initial_done)"')" == "idle true" ]; }
mirror_state_is() { [ "$(status_json | jq -r '.mirror.state')" == "$1" ]; }
mirror_idle() { writer_idle && mirror_state_is idle; }
# mirror_matches GITDIR: every store branch of the hub is refs/heads/<store> there.
mirror_matches() {
    local c h m
    for c in $(git --git-dir="$HUB_DIR/git" for-each-ref --format='%(refname)' 'refs/namespaces/' |
               sed -n 's|^refs/namespaces/\([^/]*\)/refs/heads/main$|\1|p'); do
        h=$(head_of "$c"); m=$(git --git-dir="$1" rev-parse -q --verify "refs/heads/$c" 2>/dev/null)
        [ -n "$h" ] && [ "$h" == "$m" ] || { echo "$c: hub $h, mirror ${m:-none}"; return 1; }
    done
}
readyz() { curl -s -o "$T/ready" -w '%{http_code}' --max-time 5 --cacert "$HUB_DIR/tls/ca.crt" "$HUB_URL/readyz"; }
readyz_is() { [ "$(readyz)" == "$1" ]; }
# A failing mirror degrades readiness but never fails it: the hub keeps serving.
readyz_degraded() { [ "$(readyz)" == 200 ] && grep -q '"status":"degraded"' "$T/ready"; }
metric() { acurl "$HUB_URL/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
branch_count() { git --git-dir="$1" for-each-ref 'refs/heads/' | wc -l; }

hub_init || exit 1
git init -q --bare "$T/mirror.git"
hub_conf gitops.mirror "file://$T/mirror.git"
hub_conf gitops.mirror_retry_max 1s
hub_start || exit 1

# ---- a small fleet ----
for i in 1 2 3 4 5 6; do
    ring=prod; [ $i -le 2 ] && ring=beta
    region=east; [ $i -gt 3 ] && region=central
    CODE=$(req POST '/api/v1/groups' "{\"path\":\"/stores/$region\"}")
    CODE=$(req POST '/api/v1/groups' "{\"path\":\"/rings/$ring\"}")
    CODE=$(req POST /api/v1/clusters "{\"name\":\"store-0$i\",\"groups\":[\"/stores/$region\",\"/rings/$ring\"]}")
    [ "$CODE" == 201 ] || diag "store-0$i: $CODE $(cat "$T/body")"
done
CODE=$(req POST /api/v1/namespaces '{"name":"pos","expression":"/g/stores"}'); expect "namespace pos" 201
CODE=$(req POST /api/v1/applications '{"name":"pos-api","namespace":"pos","source":{"git":{"url":"https://git.example.com/pos.git","path":"deploy"}},"versions":[{"version":"1","ref":"v1","expression":"/g/stores"}]}')
expect "application pos-api" 201
check "writer and mirror idle after the setup" wait_for "the mirror" 30 mirror_idle

# ---- the mirror holds every cluster's branch ----
check_eq "the mirror has a branch per cluster" "$(branch_count "$T/mirror.git")" 6
check "... each at the hub's commit" mirror_matches "$T/mirror.git"
check_eq "/readyz is 200 with a healthy mirror" "$(readyz)" 200
check_eq "pushes counted as ok" "$( [ "$(metric 'resedge_mirror_pushes_total{result="ok"}')" -ge 1 ] && echo yes)" yes
check_eq "... none as error" "$(metric 'resedge_mirror_pushes_total{result="error"}')" 0
check_eq "nothing pending" "$(metric resedge_mirror_pending)" 0
check_match "last success timestamp set" "$(metric resedge_mirror_last_success_timestamp_seconds)" '^[1-9][0-9.e+]*$'

# ---- a version rollout: commit message, mirror follows ----
h1=$(head_of store-01); h3=$(head_of store-03)
CODE=$(req PATCH /api/v1/applications/pos-api '{"versions":[{"version":"1","ref":"v1","expression":"/g/stores"},{"version":"2","ref":"v2","expression":"/g/rings/beta"}]}')
expect "roll version 2 to the beta ring" 200
check "writer and mirror idle after the rollout" wait_for "the mirror" 30 mirror_idle
check_eq "the beta store moved" "$( [ "$(head_of store-01)" != "$h1" ] && echo moved)" moved
check_eq "a prod store did not" "$(head_of store-03)" "$h3"
check_eq "commit message says what changed" \
    "$(git --git-dir="$HUB_DIR/git" log -1 --format=%s refs/namespaces/store-01/refs/heads/main)" \
    "application pos-api: version 2 to /g/rings/beta"
CODE=$(req GET /api/v1/clusters/store-01/history); expect "history of store-01" 200
check_match "... and the history shows it" "$(cat "$T/body")" 'application pos-api: version 2 to /g/rings/beta'
check "the mirror follows the new commits" mirror_matches "$T/mirror.git"

CODE=$(req PATCH /api/v1/namespaces/pos '{"expression":"/g/stores/east"}'); expect "namespace expression change" 200
check "writer idle" wait_for "the writer" 30 mirror_idle
check_eq "namespace commit message" \
    "$(git --git-dir="$HUB_DIR/git" log -1 --format=%s refs/namespaces/store-04/refs/heads/main)" \
    "namespace pos: expression /g/stores -> /g/stores/east"
CODE=$(req PUT /api/v1/groups/%2Fstores%2Feast/config/tax-rate '{"value":"8.25"}'); expect "config on a group" 201
check "writer idle" wait_for "the writer" 30 mirror_idle
check_eq "config commit message" \
    "$(git --git-dir="$HUB_DIR/git" log -1 --format=%s refs/namespaces/store-02/refs/heads/main)" \
    "config tax-rate=8.25 on /stores/east"
CODE=$(req PUT /api/v1/groups/%2Fstores%2Feast/config/tax-rate '{"value":"8.5"}'); expect "config changed" 200
check "writer idle" wait_for "the writer" 30 mirror_idle
check_eq "... says the old value" \
    "$(git --git-dir="$HUB_DIR/git" log -1 --format=%s refs/namespaces/store-02/refs/heads/main)" \
    "config tax-rate=8.5 on /stores/east (was 8.25)"
CODE=$(req PATCH /api/v1/applications/pos-api '{"versions":[{"version":"1","ref":"v1.1","expression":"/g/stores"},{"version":"2","ref":"v2","expression":"/g/rings/beta"}]}')
expect "a new ref for version 1" 200
check "writer idle" wait_for "the writer" 30 mirror_idle
check_eq "... message names the ref" \
    "$(git --git-dir="$HUB_DIR/git" log -1 --format=%s refs/namespaces/store-03/refs/heads/main)" \
    "application pos-api: version 1 ref v1 -> v1.1"
long=$(printf 'x%.0s' $(seq 1 500))
CODE=$(req PUT "/api/v1/clusters/store-03/config/motd" "{\"value\":\"line one\\n$long\"}"); expect "a long multi-line config value" 201
check "writer idle" wait_for "the writer" 30 mirror_idle
msg=$(git --git-dir="$HUB_DIR/git" log -1 --format=%B refs/namespaces/store-03/refs/heads/main)
check_eq "... commit message stays one line" "$(printf '%s\n' "$msg" | grep -c .)" 1
check "... of at most 200 bytes (${#msg})" test "${#msg}" -le 200

# ---- dry run: the diff of a chosen cluster ----
h2=$(head_of store-02)
DRY='{"versions":[{"version":"1","ref":"v1.1","expression":"/g/stores"},{"version":"2","ref":"v2.1","expression":"/g/rings/beta"}]}'
CODE=$(req PATCH '/api/v1/applications/pos-api?dry_run=true&diff=store-02' "$DRY"); expect "dry run with diff=store-02" 200
check_eq "... lists the beta stores" "$(jq -r '.clusters | sort | join(",")' "$T/body")" "store-01,store-02"
check_eq "... diffs the chosen cluster" "$(jq -r .diff.cluster "$T/body")" store-02
check_match "... with the change in it" "$(jq -r .diff.patch "$T/body")" 'v2\.1'
CODE=$(req PATCH '/api/v1/applications/pos-api?dry_run=true&diff=store-04' "$DRY"); expect "dry run with diff=store-04 (unaffected)" 200
check_eq "... names that cluster" "$(jq -r .diff.cluster "$T/body")" store-04
check_eq "... with an empty diff" "$(jq -r .diff.patch "$T/body")" ""
CODE=$(req PATCH '/api/v1/applications/pos-api?dry_run=true' "$DRY"); expect "dry run without diff=" 200
check_match "... diffs the first cluster that changes" "$(jq -r .diff.cluster "$T/body")" '^store-0[12]$'
CODE=$(req PATCH '/api/v1/applications/pos-api?dry_run=true&diff=store-99' "$DRY"); expect "dry run with diff of a missing cluster" 200
check_eq "... empty, with a note" "$(jq -r '"\(.diff.patch)|\(.diff.note)"' "$T/body")" "|no such cluster"
for bad in 'A_B' '..%2Fx' '' "$(printf 'a%.0s' $(seq 1 64))"; do
    CODE=$(req PATCH "/api/v1/applications/pos-api?dry_run=true&diff=$bad" "$DRY")
    expect "diff='${bad:0:12}' is refused" 400
    check_eq "... naming the field" "$(jq -r .error.field "$T/body")" diff
done
CODE=$(req PUT '/api/v1/clusters/store-02/config/x?dry_run=true&diff=store-02' '{"value":"1"}'); expect "dry run of a config value" 200
check_match "... diffs that cluster" "$(jq -r .diff.patch "$T/body")" "\+ *x: .?1"
check "dry runs change nothing" test "$(head_of store-02)" == "$h2"

# ---- an unreachable mirror: failing, never blocking ----
hub_stop
hub_conf gitops.mirror "https://user:s3cr3t-t0ken@127.0.0.1:1/x.git"
printf 'robot:file-t0ken-zz\n' >"$T/cred"; chmod 600 "$T/cred"
hub_conf gitops.mirror_credentials "$T/cred"
hub_start || exit 1
check "the failing mirror shows in /readyz" wait_for "/readyz degraded" 30 readyz_degraded
check_match "... naming the mirror check and the reason" "$(cat "$T/ready")" '"check":"mirror","message":"push to .https://\*\*\*@127\.0\.0\.1:1/x\.git. failing'
# grep: 1 no line matched (2 an error)
check_exit "... without the URL's secret" 1 grep -q 's3cr3t' "$T/ready"
errors_ge() { [ "$(metric 'resedge_mirror_pushes_total{result="error"}')" -ge "$1" ]; }
check "errors counted in /metrics" wait_for "an error push" 10 errors_ge 1
check_eq "... and the mirror pending" "$(metric resedge_mirror_pending)" 1
CODE=$(req POST /api/v1/clusters '{"name":"store-07","groups":["/stores/east","/rings/beta"]}')
expect "the inventory keeps answering" 201
check "... and commits keep happening" wait_for "store-07's branch" 30 head_of store-07
check_match "the gitops status shows the mirror failing" "$(status_json | jq -r '.mirror.state + " " + .mirror.last_error')" '^(failing|pushing) .*connect'
sleep 2.5
n=$(metric 'resedge_mirror_pushes_total{result="error"}')
check "... retried with backoff (capped at 1 s in this test: $n attempts)" test "$n" -ge 2
check_exit "no secret in the hub's log" 1 grep -q -e 's3cr3t' -e 'file-t0ken' "$T/hub.log"
check "the log says the mirror failed, once" test "$(grep -c 'mirror: cannot push' "$T/hub.log")" -eq 1

# ---- a mirror that appears later is caught up ----
hub_stop
hub_conf gitops.mirror "$T/later.git"
hub_start || exit 1
check "a missing mirror repository fails" wait_for "/readyz degraded" 30 readyz_degraded
check_match "... clearly" "$(cat "$T/ready")" '"check":"mirror","message":"push to'
CODE=$(req PATCH /api/v1/clusters/store-07 '{"metadata":{"ring":"beta"}}'); expect "a change while failing" 200
check "... committed" wait_for "the writer" 30 writer_idle
check_eq "cluster commit message" \
    "$(git --git-dir="$HUB_DIR/git" log -1 --format=%s refs/namespaces/store-07/refs/heads/main)" \
    "cluster store-07: metadata ring=beta"
git init -q --bare "$T/later.git"
check "the mirror recovers on a retry" wait_for "the mirror to recover" 30 mirror_state_is idle
check_eq "/readyz is 200 again" "$(readyz)" 200
check_match "... and no longer degraded" "$(cat "$T/ready")" '"status":"ready"'
check_eq "the new mirror has every branch" "$(branch_count "$T/later.git")" 7
check "... at the hub's commits" mirror_matches "$T/later.git"
check_eq "nothing pending" "$(metric resedge_mirror_pending)" 0
check "the log says it works again" grep -q 'mirror: push to .* works again' "$T/hub.log"

# ---- a branch moved on the mirror by someone else is not overwritten ----
rogue=$(git --git-dir="$T/later.git" commit-tree -m rogue "$(git --git-dir="$T/later.git" mktree </dev/null)")
git --git-dir="$T/later.git" update-ref refs/heads/store-01 "$rogue"
CODE=$(req PUT /api/v1/groups/%2Fstores/config/promo '{"value":"spring"}'); expect "a change for every store" 201
check "a diverged branch makes the mirror fail" wait_for "/readyz degraded" 30 readyz_degraded
check_match "... naming it" "$(cat "$T/ready")" "refs/heads/store-01"
pushed_02() { [ "$(git --git-dir="$T/later.git" rev-parse refs/heads/store-02)" == "$(head_of store-02)" ]; }
check "... while the other branches are pushed" wait_for "the others" 10 pushed_02
check_eq "... and the diverged one is left alone" "$(git --git-dir="$T/later.git" rev-parse refs/heads/store-01)" "$rogue"

# ---- smart HTTP with credentials from a file, read at each push ----
# A tiny git server: `git http-backend` behind HTTP basic auth (libgit2
# sends push bodies chunked, so the wrapper de-chunks them).
cat >"$T/gitd.py" <<'PY'
import base64, http.server, os, subprocess, sys
root, port, user, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
want = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if n == 0:
                    self.rfile.readline(); return out
                out += self.rfile.read(n); self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
    def serve(self):
        data = self.body() if self.command == "POST" else b""
        if self.headers.get("Authorization") != want:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0"); self.end_headers(); return
        path, _, query = self.path.partition("?")
        env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path,
                   QUERY_STRING=query, REQUEST_METHOD=self.command, REMOTE_USER=user,
                   REMOTE_ADDR="127.0.0.1", CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(data)))
        out = subprocess.run(["git", "http-backend"], input=data, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(":")
            if k.lower() == "status": status = int(v.split()[0])
            elif k: headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest))); self.end_headers(); self.wfile.write(rest)
    do_GET = do_POST = serve
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
GITD_PORT=$(free_port)
mkdir -p "$T/http" && git init -q --bare "$T/http/m.git"
python3 "$T/gitd.py" "$T/http" "$GITD_PORT" x-access-token 'GOOD-t0ken' &
_pids+=("$!")
hub_stop
printf 'WRONG-t0ken\n' >"$T/cred"
hub_conf gitops.mirror "http://127.0.0.1:$GITD_PORT/m.git"
hub_start || exit 1
check "wrong credentials make the mirror fail" wait_for "/readyz degraded" 30 readyz_degraded
check_match "... saying so" "$(cat "$T/ready")" 'refused the credentials.*check mirror_credentials'
printf 'GOOD-t0ken\n' >"$T/cred"
check "the right token, read at the next push, fixes it" wait_for "the mirror to recover" 30 mirror_state_is idle
check "... every branch pushed over smart HTTP" mirror_matches "$T/http/m.git"
check_exit "no token in the hub's log" 1 grep -q -e 'WRONG-t0ken' -e 'GOOD-t0ken' "$T/hub.log"

check "the hub stops cleanly" hub_stop
done_testing
