#!/usr/bin/env bash
# test_agent_mirror.sh - the agent's mode mirror against the real hub: the
# agent serves its bare mirror read-only over git smart HTTP, `git clone` from
# it gets exactly the assigned revision, keeps working with the hub down (WAN
# down), refuses receive-pack, oversized bodies and headers, wrong methods and
# paths; Flux's GitRepository points at it; the served branch moves only to a
# revision that matched the hub's assignment; it listens on loopback by default,
# needs basic auth with the token from Flux's Secret on other addresses, and
# slow clients (half headers, one address holding many connections) cannot
# stall it.
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

# Slow clients (finding 6): 20 connections from one address (127.0.0.2) that
# send half a header. The address holds 8 (4, then 4 more 2 s later); the
# other 12 are turned away at once; a git clone from another address
# (127.0.0.1) completes while the 8 are still open; each of the 8 is closed
# with 408 about 5 s after its own accept.
rm -f "$T/slow.ready"
python3 "$(dirname "$0")/mirror_slow_clients.py" 127.0.0.1 "$MPORT" 127.0.0.2 "/$C.git" \
    "$T/slow.ready" >"$T/slow.json" 2>"$T/slow.err" &
SLOW_PID=$!
_pids+=("$SLOW_PID")
wait_for 10 test -s "$T/slow.ready"
rm -rf "$T/clone5"
t0=$(date +%s.%N)
check "with 20 slow connections open, git clone still works" git clone -q "$M" "$T/clone5"
t1=$(date +%s.%N)
clone_ms=$(python3 -c "print(int(($t1 - $t0) * 1000))")
diag "git clone beside 20 slow connections: $clone_ms ms"
check "... promptly (${clone_ms} ms < 3000)" test "$clone_ms" -lt 3000
wait "$SLOW_PID"
check_eq "the slow-client script ran" "$?" 0
sj() { python3 -c "import json,sys; d=json.load(open('$T/slow.json')); print($1)"; }
check_eq "... the 12 connections over the address's 8 were closed at once" "$(sj 'd["c_closed_1s"]')" 12
diag "answers to the 12: $(sj 'd["c_status"]') ($(sj 'd["c_503"]') got a 503)"
check_eq "... the clone finished while all 8 held connections were open" \
    "$(sj "all(x['close'] > $t1 for x in d['a'] + d['b'])")" True
check_eq "... the 8 held ones got 408" "$(sj "sorted(set(x['status'] for x in d['a'] + d['b']))")" "['408']"
diag "held for (s, from each one's accept): $(sj "[round(x['close'] - x['open'], 2) for x in d['a'] + d['b']]")"
check_eq "... each about 5 s after its own accept (4-7 s)" \
    "$(sj "all(4 <= x['close'] - x['open'] <= 7 for x in d['a'] + d['b'])")" True
check_eq "... so the later 4 closed about 2 s after the first 4 (own timers, not a shared one)" \
    "$(sj "min(x['close'] for x in d['b']) - max(x['close'] for x in d['a']) > 1.2")" True
check "... and the server keeps serving" git ls-remote "$M"

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

# ---- the default: loopback only, no credentials needed there -------------------------
ETH_IP=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' | grep -v '^127\.' | head -1)
printf '[agent]\nmode = mirror\ninterval = 1s\nbackoff_cap = 2s\napply_command = true\n' >"$T/default.conf"
if ss -ltnH 'sport = :8480' 2>/dev/null | grep -q .; then
    diag "SKIP: port 8480 is in use on this machine; the default listen address is not checked"
else
    start_agent --config "$T/default.conf"
    check "without mirror_listen the agent serves on 127.0.0.1:8480" \
        wait_for 10 log_has "serving the local mirror read-only on 127\.0\.0\.1:8480 as /$C\.git \(no authentication\)"
    check_eq "... the only listening socket on port 8480 is 127.0.0.1's" \
        "$(ss -ltnH 'sport = :8480' | awk '{print $4}' | sort -u | tr '\n' ' ')" "127.0.0.1:8480 "
    check "... git ls-remote over loopback works without credentials" \
        git ls-remote "http://127.0.0.1:8480/$C.git"
    if [ -n "$ETH_IP" ]; then
        curl -sS --max-time 5 -o /dev/null "http://$ETH_IP:8480/$C.git/info/refs?service=git-upload-pack" 2>/dev/null
        check_eq "... and $ETH_IP:8480 (this machine's own address) refuses the connection (curl 7)" "$?" 7
    else
        diag "SKIP: no non-loopback IPv4 address; the refusal on it is not checked"
    fi
    check "... Flux gets no Secret on loopback" wait_for 5 grep -q "url: http://127.0.0.1:8480/$C.git\$" "$A/flux/source.yaml"
    check "... and no secretRef" bash -c "! grep -q secretRef '$A/flux/source.yaml' && test ! -e '$A/flux/secret.yaml'"
    stop_agent
fi

# ---- a non-loopback address needs the token ------------------------------------------
if [ -z "$ETH_IP" ]; then
    diag "SKIP: no non-loopback IPv4 address on this machine; basic auth is not checked"
else
    NPORT=$(free_port)
    N=http://$ETH_IP:$NPORT/$C.git
    rm -rf "$T/applied"
    printf '[agent]\nmode = mirror\ninterval = 1s\nbackoff_cap = 2s\nmirror_listen = %s:%s\n' "$ETH_IP" "$NPORT" >"$T/auth.conf"
    printf 'apply_command = sh -c "rm -rf %s/applied && cp -r {dir} %s/applied"\n' "$T" "$T" >>"$T/auth.conf"
    start_agent --config "$T/auth.conf"
    check "on $ETH_IP the mirror asks for basic auth" \
        wait_for 10 log_has "serving the local mirror read-only on $ETH_IP:$NPORT as /$C\.git \(basic auth"
    check_eq "the token file is private (0600)" "$(stat -c %a "$A/mirror.token" 2>/dev/null)" 600
    TOKEN=$(head -c 64 "$A/mirror.token")
    # The token with its last digit changed.
    if [ "${TOKEN: -1}" = 0 ]; then WRONG=${TOKEN%?}1; else WRONG=${TOKEN%?}0; fi
    check_match "... 64 hex digits (256 bits)" "$(cat "$A/mirror.token")" '^[0-9a-f]{64}$'
    check "Flux's objects are written with the Secret" wait_for 10 test -s "$T/applied/secret.yaml"
    check_eq "the Secret has username and password, and they are the token's" "$(python3 - "$T/applied" <<'PY'
import sys, yaml
d = sys.argv[1]
sec = yaml.safe_load(open(d + "/secret.yaml"))
src = yaml.safe_load(open(d + "/source.yaml"))
tok = open(sys.argv[1] + "/../agent/mirror.token").read().strip()
print(sec["apiVersion"], sec["kind"], sec["metadata"]["name"], sec["metadata"]["namespace"],
      sorted(sec["stringData"]), sec["stringData"]["username"], sec["stringData"]["password"] == tok,
      src["spec"]["secretRef"]["name"], src["spec"]["url"])
PY
)" "v1 Secret resedge-mirror-auth flux-system ['password', 'username'] resedge True resedge-mirror-auth $N"
    check_eq "STATE/flux/secret.yaml is private (0600)" "$(stat -c %a "$A/flux/secret.yaml")" 600
    hdr() { curl -sS --max-time 10 -D "$T/hdr" -o "$T/body" -w '%{http_code}' "$@"; }
    check_eq "curl without credentials: 401" "$(hdr "$N/info/refs?service=git-upload-pack")" 401
    check_match "... with WWW-Authenticate: Basic realm=\"resedge-mirror\"" "$(tr -d '\r' <"$T/hdr")" \
        $'\nWWW-Authenticate: Basic realm="resedge-mirror"\n'
    check_eq "curl with a wrong password: 401" \
        "$(hdr -u "resedge:$WRONG" "$N/info/refs?service=git-upload-pack")" 401
    check_eq "curl with the token but another user name: 401" \
        "$(hdr -u "root:$TOKEN" "$N/info/refs?service=git-upload-pack")" 401
    check_eq "curl with a token that is one character short: 401" \
        "$(hdr -u "resedge:${TOKEN%?}" "$N/info/refs?service=git-upload-pack")" 401
    check_eq "a bearer token is not basic auth: 401" \
        "$(hdr -H "Authorization: Bearer $TOKEN" "$N/info/refs?service=git-upload-pack")" 401
    check_eq "POST git-upload-pack without credentials: 401" \
        "$(hdr -H 'Content-Type: application/x-git-upload-pack-request' --data-binary @"$T/req.gz" "$N/git-upload-pack")" 401
    check_eq "an unknown path without credentials: 401 (nothing is told)" "$(hdr "http://$ETH_IP:$NPORT/x.git/HEAD")" 401
    check_eq "curl with the token: 200" "$(hdr -u "resedge:$TOKEN" "$N/info/refs?service=git-upload-pack")" 200
    rm -rf "$T/clone6" "$T/clone7" "$T/clone8"
    GIT_TERMINAL_PROMPT=0 git clone -q "$N" "$T/clone6" >"$T/git6.err" 2>&1
    check_eq "git clone without credentials: exit 128" "$?" 128
    check_match "... because the server asked for them" "$(cat "$T/git6.err")" "could not read Username|Authentication failed"
    GIT_TERMINAL_PROMPT=0 git clone -q "http://resedge:$WRONG@$ETH_IP:$NPORT/$C.git" "$T/clone7" >"$T/git7.err" 2>&1
    check_eq "git clone with a wrong password: exit 128" "$?" 128
    check_match "... Authentication failed" "$(cat "$T/git7.err")" "Authentication failed"
    check "git clone with the token from the Secret works" \
        env GIT_TERMINAL_PROMPT=0 git clone -q "http://resedge:$TOKEN@$ETH_IP:$NPORT/$C.git" "$T/clone8"
    check_eq "... at the assigned revision" "$(git -C "$T/clone8" rev-parse HEAD)" "$REV2"
    stop_agent
    start_agent --config "$T/auth.conf"
    check "after a restart" wait_for 10 git ls-remote "http://resedge:$TOKEN@$ETH_IP:$NPORT/$C.git"
    check_eq "... the token is the same (made once)" "$(head -c 64 "$A/mirror.token")" "$TOKEN"
    stop_agent
    # mirror_auth = on also on loopback; off is honoured on any address.
    LPORT=$(free_port)
    printf '[agent]\nmode = mirror\ninterval = 1s\nmirror_listen = 127.0.0.1:%s\nmirror_auth = on\napply_command = true\n' "$LPORT" >"$T/on.conf"
    start_agent --config "$T/on.conf"
    check "mirror_auth = on on loopback" wait_for 10 log_has "serving the local mirror read-only on 127\.0\.0\.1:$LPORT as /$C\.git \(basic auth"
    check_eq "... 401 without credentials" "$(hdr "http://127.0.0.1:$LPORT/$C.git/info/refs?service=git-upload-pack")" 401
    check_eq "... 200 with the token" "$(hdr -u "resedge:$TOKEN" "http://127.0.0.1:$LPORT/$C.git/info/refs?service=git-upload-pack")" 200
    stop_agent
    printf '[agent]\nmode = mirror\ninterval = 1s\nmirror_listen = %s:%s\nmirror_auth = off\napply_command = true\n' "$ETH_IP" "$NPORT" >"$T/off.conf"
    start_agent --config "$T/off.conf"
    check "mirror_auth = off on $ETH_IP: served without credentials" wait_for 10 git ls-remote "$N"
    check "... and Flux's Secret is dropped" wait_for 5 test ! -e "$A/flux/secret.yaml"
    stop_agent
fi
printf '[agent]\nmirror_auth = yes\n' >"$T/bad2.conf"
"$AGENT" run --config "$T/bad2.conf" --state-dir "$A" >"$T/bad2.out" 2>&1
check_eq "a bad mirror_auth exits 78" "$?" 78
check_match "... naming file:line" "$(cat "$T/bad2.out")" "bad2.conf:2: bad value 'yes' for 'mirror_auth': expected auto, on or off"

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
