#!/usr/bin/env bash
# test_agent_mirror.sh - the agent's mode mirror against the real hub: the
# agent serves its bare mirror read-only over git smart HTTP, `git clone` from
# it gets exactly the assigned revision, keeps working with the hub down (WAN
# down), refuses receive-pack, oversized bodies and headers, wrong methods and
# paths; Flux's GitRepository points at it; the served branch moves only to a
# revision that matched the hub's assignment.
. "$(dirname "$0")/lib.sh"
AGENT=$RE_AGENT          # under RE_WRAP_AGENT (valgrind) when set, see lib.sh
A=$T/agent
ALOG=$T/agent.log
AGENT_PID=
C=store-m

hub_init || exit 1
hub_start || exit 1

slow=1; [ -n "${RE_WRAP:-}${RE_WRAP_AGENT:-}" ] && slow=5   # valgrind: everything is slower
wait_for() {   # SECONDS (times slow) COMMAND...: polls every 0.2 s
    local n=$(($1 * 5 * slow)); shift
    local i
    for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}
log_has() { grep -qE -- "$1" "$ALOG"; }
start_agent() {
    "$AGENT" run --state-dir "$A" "$@" >>"$ALOG" 2>&1 &
    AGENT_PID=$!
    _pids+=("$AGENT_PID")
}
# rss_report LABEL PID: VmRSS and Pss (kB) as a diagnostic line.
rss_report() {
    local rss pss
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$2/status" 2>/dev/null)
    pss=$(awk '/^Pss:/ {print $2}' "/proc/$2/smaps_rollup" 2>/dev/null)
    diag "$1: VmRSS ${rss:-?} kB, Pss ${pss:-?} kB"
}

GITDIR=$HUB_DIR/git
head_rev() { git -C "$GITDIR" rev-parse -q --verify "refs/namespaces/$C/refs/heads/main" 2>/dev/null; }
next_rev() {
    local i r
    for i in $(seq 1 $((100 * slow))); do r=$(head_rev) && [ -n "$r" ] && [ "$r" != "$1" ] && { echo "$r"; return 0; }; sleep 0.1; done
    return 1
}

# ---- a store with content, and its agent -------------------------------------------
acurl -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$C\"}" "$HUB_URL/api/v1/clusters" -o /dev/null
acurl -X POST "$HUB_URL/api/v1/clusters/$C/enroll-code" >"$T/code.json"
check "enroll the agent" "$AGENT" enroll --hub "$HUB_URL" --code "$(jq -r .code "$T/code.json")" \
    --ca-fingerprint "$(jq -r .ca_fingerprint "$T/code.json")" --state-dir "$A"
REV0=$(next_rev none)
st=$(acurl -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "{\"name\":\"pos\",\"expression\":\"/c/$C\"}" "$HUB_URL/api/v1/namespaces")
check_eq "a namespace for $C" "$st" 201
REV1=$(next_rev "$REV0")
check "... moves its branch" test -n "$REV1"

printf '[agent]\nmirror_listen = 127.0.0.1:http\n' >"$T/bad.conf"
"$AGENT" run --config "$T/bad.conf" --state-dir "$A" >"$T/bad.out" 2>&1
check_eq "a bad mirror_listen exits 78" "$?" 78
check_match "... naming file:line" "$(cat "$T/bad.out")" "bad.conf:2: bad value '127.0.0.1:http' for 'mirror_listen'"

MPORT=$(free_port)
M=http://127.0.0.1:$MPORT/$C.git
start_agent --interval 1s --backoff-cap 2s --mode mirror --mirror-listen "127.0.0.1:$MPORT" \
    --apply-command "sh -c 'rm -rf $T/applied && cp -r {dir} $T/applied'"
check "the agent serves its mirror" wait_for 10 log_has "serving the local mirror read-only on 127.0.0.1:$MPORT"
check "it materializes the assigned revision" \
    wait_for 15 bash -c "[ \"\$(readlink '$A/current')\" = revisions/$REV1 ]"
check "... and the mirror's branch follows" \
    wait_for 5 bash -c "[ \"\$(git -C '$A/mirror.git' rev-parse refs/heads/main)\" = $REV1 ]"
check "the GitRepository in STATE/flux points at the mirror" \
    wait_for 5 grep -q "url: $M\$" "$A/flux/source.yaml"
check "... and was applied" wait_for 5 grep -q "url: $M\$" "$T/applied/source.yaml"
check "... with no TLS secret" test ! -e "$T/applied/secret.yaml"
check_match "... on the branch the hub names" "$(cat "$A/flux/source.yaml")" "branch: main"

# ---- git clone from the agent -------------------------------------------------------
check "git ls-remote against the mirror" bash -c "git ls-remote '$M' >'$T/ls.txt'"
check_eq "... advertises HEAD and the branch only (no staging ref)" \
    "$(awk '{print $2}' "$T/ls.txt" | tr '\n' ' ')" "HEAD refs/heads/main "
check_eq "... at the assigned revision" "$(awk '{print $1}' "$T/ls.txt" | sort -u)" "$REV1"
check "git clone http://127.0.0.1:PORT/$C.git" git clone -q "$M" "$T/clone1"
check_eq "... gets exactly the assigned revision" "$(git -C "$T/clone1" rev-parse HEAD)" "$REV1"
check_eq "... with the hub's tree" "$(git -C "$T/clone1" rev-parse 'HEAD^{tree}')" \
    "$(git -C "$GITDIR" rev-parse "$REV1^{tree}")"
check "... holding the namespace" test -f "$T/clone1/namespaces/pos/namespace.yaml"
check "... and fsck-clean" git -C "$T/clone1" fsck --strict

st=$(acurl -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/json' \
    -d '{"metadata":{"ring":"beta"}}' "$HUB_URL/api/v1/clusters/$C")
check_eq "new metadata for $C" "$st" 200
REV2=$(next_rev "$REV1")
check "a new revision reaches the mirror" \
    wait_for 15 bash -c "[ \"\$(git ls-remote '$M' refs/heads/main | cut -f1)\" = $REV2 ]"
check "git pull in the clone fetches it incrementally" git -C "$T/clone1" pull -q --ff-only
check_eq "... to the new revision" "$(git -C "$T/clone1" rev-parse HEAD)" "$REV2"

# The git CLI gzips request bodies over 1 KiB; a gzip body is decoded.
printf '0032want %s\n00000009done\n' "$REV2" | gzip -c >"$T/req.gz"
check "a gzip-encoded upload-pack request gets a pack" bash -c \
    "curl -sS --max-time 10 -H 'Content-Type: application/x-git-upload-pack-request' -H 'Content-Encoding: gzip' --data-binary @'$T/req.gz' '$M/git-upload-pack' | grep -aq PACK"
printf '0032want %s\n00000009done\n' "0123456789012345678901234567890123456789" >"$T/req.bad"
check "a want for an object that is not an advertised tip gets no pack" bash -c \
    "! curl -sS --max-time 10 -H 'Content-Type: application/x-git-upload-pack-request' --data-binary @'$T/req.bad' '$M/git-upload-pack' | grep -aq PACK"

# ---- refusals ----------------------------------------------------------------------
code() { curl -sS --max-time 10 -o "$T/body" -w '%{http_code}' "$@"; }
check_eq "POST git-receive-pack is refused" "$(code -X POST --data-binary 'x' "$M/git-receive-pack")" 403
check_eq "GET info/refs?service=git-receive-pack is refused" \
    "$(code "$M/info/refs?service=git-receive-pack")" 403
echo change >"$T/clone1/new.txt"
git -C "$T/clone1" add new.txt
git -C "$T/clone1" -c user.name=t -c user.email=t@x commit -qm x
# git dies with 128 (fatal: the 403 on receive-pack), not 1 (a rejected ref)
check_exit "git push to the mirror fails" 128 git -C "$T/clone1" push -q origin HEAD:main
check_eq "... and the mirror did not move" "$(git -C "$A/mirror.git" rev-parse refs/heads/main)" "$REV2"
head -c $((2 * 1024 * 1024)) /dev/zero >"$T/big"
check_eq "an oversized request body gets 413" \
    "$(code -H 'Content-Type: application/x-git-upload-pack-request' --data-binary @"$T/big" "$M/git-upload-pack")" 413
check_eq "... also when chunked" \
    "$(code -H 'Content-Type: application/x-git-upload-pack-request' -H 'Transfer-Encoding: chunked' --data-binary @"$T/big" "$M/git-upload-pack")" 413
check_eq "an oversized header gets 431" \
    "$(code -H "X-Pad: $(head -c 10000 /dev/zero | tr '\0' a)" "$M/info/refs?service=git-upload-pack")" 431
check_eq "GET git-upload-pack: 405" "$(code "$M/git-upload-pack")" 405
check_eq "PUT info/refs: 405" "$(code -X PUT "$M/info/refs?service=git-upload-pack")" 405
check_eq "another repository: 404" "$(code "http://127.0.0.1:$MPORT/store-x.git/info/refs?service=git-upload-pack")" 404
check_eq "the dumb protocol (info/refs without service): 404" "$(code "$M/info/refs")" 404
check_eq "a file of the repository (HEAD): 404" "$(code "$M/HEAD")" 404
check_eq "a path escape: 404" "$(code --path-as-is "http://127.0.0.1:$MPORT/$C.git/../agent.state")" 404
check_eq "garbage is a 400" "$(python3 -c "
import socket; s=socket.create_connection(('127.0.0.1',$MPORT)); s.sendall(b'\\x00\\x01garbage\\r\\n\\r\\n'); print(s.recv(100).split()[1].decode())")" 400
# A client that sends half a request does not hold up the others.
exec 7<>"/dev/tcp/127.0.0.1/$MPORT"
printf 'GET /%s.git/info/refs HTTP/1.1\r\nHost: x\r\n' "$C" >&7
check "a trickling client does not block a clone" git clone -q "$M" "$T/clone2"
exec 7>&-
check "... and the server keeps serving" git ls-remote "$M"
check "the agent is still running" kill -0 "$AGENT_PID"

# ---- WAN down: the hub stops, the store still pulls from the node ---------------------
hub_stop
check "with the hub down the agent's check-ins fail" wait_for 15 log_has "check-in failed"
rm -rf "$T/clone3"
check "git clone from the agent still works" git clone -q "$M" "$T/clone3"
check_eq "... at the last assigned revision" "$(git -C "$T/clone3" rev-parse HEAD)" "$REV2"
rss_report "agent in mode mirror, hub down, after serving clones" "$AGENT_PID"
hub_start || exit 1
check "after the hub is back the agent recovers" wait_for 20 log_has "check-in succeeded again"

# ---- SIGHUP moves the server to another address, SIGTERM ------------------------------
stop_agent
mconf() { printf '[agent]\nmode = mirror\ninterval = 1s\nbackoff_cap = 2s\nmirror_listen = 127.0.0.1:%s\napply_command = true\n' "$1" >"$T/agent.conf"; }
mconf "$MPORT"
start_agent --config "$T/agent.conf"
check "from a config file: serving on mirror_listen" wait_for 10 git ls-remote "$M"
MPORT2=$(free_port)
M2=http://127.0.0.1:$MPORT2/$C.git
mconf "$MPORT2"
kill -HUP "$AGENT_PID"
check "SIGHUP with a new mirror_listen moves the server" wait_for 10 git ls-remote "$M2"
# curl 7: failed to connect (nothing listens; 28 would be a timeout)
check_exit "... the old address is closed" 7 curl -sS --max-time 2 "$M/info/refs?service=git-upload-pack"
check "... and Flux is pointed at the new URL" wait_for 10 grep -q "url: $M2\$" "$A/flux/source.yaml"
M=$M2
start=$(date +%s%N)
stop_agent
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check_eq "SIGTERM while serving: exit 0" "$rc" 0
check "... within 5 s (${ms} ms)" test "$ms" -lt 5000
check_exit "... and the port is closed" 7 curl -sS --max-time 2 "$M/info/refs?service=git-upload-pack"

# ---- the served branch only moves to an assigned revision ---------------------------
# A fake hub (the real hub's server certificate, so TLS verifies) that assigns
# REV1 while its git endpoint (proxied to the real hub) has moved on to REV3.
st=$(acurl -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/json' \
    -d '{"metadata":{"ring":"prod"}}' "$HUB_URL/api/v1/clusters/$C")
REV3=$(next_rev "$REV2")
check "the hub's branch moves on" test -n "$REV3"
FAKE_PORT=$(free_port)
python3 - "$FAKE_PORT" "$HUB_DIR/tls/server.crt" "$HUB_DIR/tls/server.key" \
    "$HUB_URL" "$HUB_DIR/tls/ca.crt" "$HUB_DIR/tls/admin.crt" "$HUB_DIR/tls/admin.key" "$REV1" <<'PY' >"$T/fake.log" 2>&1 &
import http.server, ssl, sys, urllib.request, urllib.error
port, crt, key, hub, ca, acrt, akey, rev = int(sys.argv[1]), *sys.argv[2:9]
up = ssl.create_default_context(cafile=ca); up.load_cert_chain(acrt, akey)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def proxy(self, body):
        hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept", "content-encoding")}
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
        body = ('{"branch":"main","revision":"%s","interval":1}' % rev).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(crt, key)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
_pids+=("$!")
wait_for 5 bash -c "curl -sk https://127.0.0.1:$FAKE_PORT/ -o /dev/null"
sed -i "s#^hub = .*#hub = https://127.0.0.1:$FAKE_PORT#" "$A/agent.state"
start_agent --config "$T/agent.conf"
check "a branch that does not match the assignment is refused" \
    wait_for 15 log_has "branch 'main' is at ${REV3:0:12} but the hub assigned $REV1: not applying it"
check_eq "... the fetched commit sits on the hidden staging ref" \
    "$(git -C "$A/mirror.git" rev-parse refs/resedge/incoming/main)" "$REV3"
check_eq "... the served branch stays at the last good revision" \
    "$(git ls-remote "$M" refs/heads/main | cut -f1)" "$REV2"
check "... current too" bash -c "[ \"\$(readlink '$A/current')\" = revisions/$REV2 ]"
printf '0032want %s\n00000009done\n' "$REV3" >"$T/req.hidden"
check "... and cannot be fetched from the mirror (not an advertised tip)" bash -c \
    "! curl -sS --max-time 10 -H 'Content-Type: application/x-git-upload-pack-request' --data-binary @'$T/req.hidden' '$M/git-upload-pack' | grep -aq PACK"
rm -rf "$T/clone4"
check "... and a clone from the agent still gets it" git clone -q "$M" "$T/clone4"
check_eq "... exactly" "$(git -C "$T/clone4" rev-parse HEAD)" "$REV2"
stop_agent

done_testing
