#!/usr/bin/env bash
# test_gitserve.sh - the hub's read-only git endpoint with the real git client:
# clone over protocol v0, v1 and v2, no-change fetch size, incremental fetch
# (gzip request bodies), agents limited to their own cluster, push refused,
# unknown cluster 404, fsck of every clone.
. "$(dirname "$0")/lib.sh"

hub_init || { not_ok "hub init"; done_testing; exit 1; }
REPO=$HUB_DIR/git
W=$T/work

# The GitOps writer may not have created the repository: build it with git.
[ -d "$REPO" ] || git init -q --bare "$REPO"
git init -q "$W"
(
    cd "$W" &&
    mkdir -p clusters && echo "store-a config" >clusters/app.yaml && git add -A &&
    git -c user.name=t -c user.email=t@t commit -qm "store-a state" &&
    git push -q "$REPO" HEAD:refs/namespaces/store-a/refs/heads/main &&
    echo "store-b config" >clusters/app.yaml &&
    git -c user.name=t -c user.email=t@t commit -qam "store-b state" &&
    git push -q "$REPO" HEAD:refs/namespaces/store-b/refs/heads/main
) || { not_ok "build test repository"; done_testing; exit 1; }
for c in store-a store-b; do
    git --git-dir="$REPO" symbolic-ref refs/namespaces/$c/HEAD refs/namespaces/$c/refs/heads/main
done

hub_start || { not_ok "hub start"; done_testing; exit 1; }
ok "hub started"

CA=$HUB_DIR/tls/ca.crt
# gitc PREFIX ARGS...: git with PREFIX.crt/.key as client certificate.
gitc() {
    local p=$1; shift
    # GIT_SSL_CAINFO from the environment would override http.sslCAInfo
    GIT_SSL_CAINFO=$CA GIT_TERMINAL_PROMPT=0 git -c http.sslCAInfo="$CA" -c http.sslCert="$p.crt" \
        -c http.sslKey="$p.key" -c user.name=t -c user.email=t@t "$@"
}
ADMIN=$HUB_DIR/tls/admin
server_tip() { git --git-dir="$REPO" rev-parse "refs/namespaces/$1/refs/heads/main"; }
server_file() { git --git-dir="$REPO" show "refs/namespaces/$1/refs/heads/main:clusters/app.yaml"; }

# ---- clone with each protocol version ----
for v in 2 1 0; do
    dst=$T/clone-v$v
    if gitc "$ADMIN" -c protocol.version=$v clone -q "$HUB_URL/git/store-a.git" "$dst" \
        >"$T/clone.log" 2>&1; then
        ok "clone store-a with protocol v$v"
    else
        not_ok "clone store-a with protocol v$v"; sed 's/^/#   /' "$T/clone.log"; continue
    fi
    check_eq "v$v clone is at the server's commit" "$(git -C "$dst" rev-parse HEAD)" "$(server_tip store-a)"
    check_eq "v$v clone has store-a's file" "$(cat "$dst/clusters/app.yaml")" "$(server_file store-a)"
    check_eq "v$v clone's branch is main" "$(git -C "$dst" symbolic-ref --short HEAD)" "main"
    check "v$v clone passes git fsck --strict" git -C "$dst" fsck --strict --no-progress
    check_eq "v$v clone sees no namespace refs" \
        "$(git -C "$dst" ls-remote origin 2>/dev/null | grep -c namespaces)" "0"
done

# ---- ls-remote (v2: capabilities from the cache, ls-refs in-process) ----
for v in 2 0; do
    out=$(gitc "$ADMIN" -c protocol.version=$v ls-remote --symref "$HUB_URL/git/store-b.git" 2>&1)
    check_match "ls-remote over v$v lists HEAD -> main" "$out" "ref: refs/heads/main"$'\t'"HEAD"
    check_match "ls-remote over v$v lists main at the server's commit" "$out" "$(server_tip store-b)"$'\t'"refs/heads/main"
    check_eq "ls-remote over v$v lists no namespace refs" "$(echo "$out" | grep -c namespaces)" "0"
done

# ---- the advertisement itself ----
code=$(status acurl -H 'Git-Protocol: version=0' "$HUB_URL/git/store-a.git/info/refs?service=git-upload-pack")
check_eq "v0 info/refs answers 200" "$code" "200"
size=$(stat -c %s "$T/body")
check "v0 info/refs is small ($size bytes)" test "$size" -lt 512
check "v0 info/refs starts with the service line" grep -qa '^001e# service=git-upload-pack' "$T/body"
check "v0 info/refs advertises HEAD and main" grep -qa "$(server_tip store-a) refs/heads/main" "$T/body"
hdrs=$(acurl -s -D - -o /dev/null "$HUB_URL/git/store-a.git/info/refs?service=git-upload-pack")
check_match "advertisement content type" "$hdrs" "Content-Type: application/x-git-upload-pack-advertisement"
check_match "advertisement is not cached" "$hdrs" "Cache-Control: no-cache"

# ---- a fetch when nothing changed transfers under 2 KB ----
# Bytes of HTTP (headers + bodies, both ways) as GIT_TRACE_CURL reports them.
trace_bytes() {
    awk '/(<=|=>) (Recv|Send) (header|data),/ { for (i = 1; i <= NF; i++) if ($i == "bytes") { n += $(i-1) + 0 } }
         END { print n + 0 }' "$1"
}
for v in 0 2; do
    rm -f "$T/trace"
    GIT_TRACE_CURL=$T/trace GIT_TRACE_CURL_NO_DATA= gitc "$ADMIN" -C "$T/clone-v$v" \
        -c protocol.version=$v fetch -q origin >/dev/null 2>&1
    b=$(trace_bytes "$T/trace")
    diag "no-change fetch over protocol v$v: $b bytes of HTTP"
    check "no-change fetch (v$v) under 2 KB ($b bytes)" test "$b" -gt 0 -a "$b" -lt 2048
done

# ---- incremental fetch after the server moved (gzip bodies too) ----
# 60 local commits the server does not know make the client send many
# "have" lines: git gzips request bodies over 1 KB.
(
    cd "$T/clone-v0" && git checkout -q -b junk &&
    for i in $(seq 1 60); do echo $i >junk; git add junk; git -c user.name=t -c user.email=t@t commit -qm "junk $i"; done &&
    git checkout -q main
) >/dev/null 2>&1
(
    cd "$W" && git checkout -q HEAD~1 && echo "store-a v2" >clusters/app.yaml &&
    git -c user.name=t -c user.email=t@t commit -qam "store-a change" &&
    git push -q "$REPO" HEAD:refs/namespaces/store-a/refs/heads/main
) >/dev/null 2>&1
for v in 0 2; do
    rm -f "$T/trace"
    if GIT_TRACE_CURL=$T/trace gitc "$ADMIN" -C "$T/clone-v$v" -c protocol.version=$v \
        pull -q --ff-only origin main >"$T/pull.log" 2>&1; then
        ok "fetch a change over protocol v$v"
    else
        not_ok "fetch a change over protocol v$v"; sed 's/^/#   /' "$T/pull.log"
    fi
    check_eq "v$v clone moved to the new commit" "$(git -C "$T/clone-v$v" rev-parse HEAD)" "$(server_tip store-a)"
    check_eq "v$v clone has the new file" "$(cat "$T/clone-v$v/clusters/app.yaml")" "store-a v2"
    check "v$v clone still passes fsck" git -C "$T/clone-v$v" fsck --strict --no-progress
    if [ "$v" = 0 ]; then
        check "the v0 negotiation sent a gzip body" grep -qi 'Content-Encoding: gzip' "$T/trace"
    fi
done

# ---- read-only ----
(cd "$T/clone-v2" && echo x >extra && git add extra && git -c user.name=t -c user.email=t@t commit -qm x) >/dev/null 2>&1
# git dies with 128 ("fatal: unable to access": the hub's 403), not 1 (a rejected ref)
check_exit "git push is refused" 128 gitc "$ADMIN" -C "$T/clone-v2" push -q origin HEAD:main
code=$(status acurl "$HUB_URL/git/store-a.git/info/refs?service=git-receive-pack")
check_eq "receive-pack advertisement -> 403" "$code" "403"
check_match "the 403 says read-only" "$(cat "$T/body")" "read-only"
code=$(status acurl -X POST -H 'Content-Type: application/x-git-receive-pack-request' \
    --data-binary '0000' "$HUB_URL/git/store-a.git/git-receive-pack")
check_eq "POST git-receive-pack -> 403" "$code" "403"
check_eq "the server branch did not move" "$(server_tip store-a)" "$(git -C "$T/clone-v0" rev-parse HEAD)"

# ---- unknown cluster, bad names, dumb HTTP ----
code=$(status acurl "$HUB_URL/git/store-zz.git/info/refs?service=git-upload-pack")
check_eq "unknown cluster -> 404" "$code" "404"
check_exit "cloning an unknown cluster fails" 128 gitc "$ADMIN" clone -q "$HUB_URL/git/store-zz.git" "$T/zz"
code=$(status acurl "$HUB_URL/git/Store_A.git/info/refs?service=git-upload-pack")
check_eq "invalid cluster name -> 400" "$code" "400"
code=$(status acurl "$HUB_URL/git/store-a.git/info/refs")
check_eq "dumb HTTP (no service) -> 400" "$code" "400"
code=$(status acurl -X POST -H 'Content-Type: text/plain' --data-binary x "$HUB_URL/git/store-a.git/git-upload-pack")
check_eq "POST with a wrong content type -> 415" "$code" "415"
code=$(status curl -sS --cacert "$CA" "$HUB_URL/git/store-a.git/info/refs?service=git-upload-pack")
check_eq "no client certificate -> 401" "$code" "401"

# ---- roles: an agent reads its own cluster only; other users none ----
viewer_curl() { ucurl "$T/viewer" "$@"; }
agent_curl() { ucurl "$T/agent-a" "$@"; }
issue_user viewer appteam
code=$(status viewer_curl "$HUB_URL/git/store-a.git/info/refs?service=git-upload-pack")
check_eq "an app team certificate -> 403" "$code" "403"
issue_user op operator
check "an operator can clone any cluster" gitc "$T/op" clone -q "$HUB_URL/git/store-b.git" "$T/op-b"
check_eq "operator's clone has store-b's file" "$(cat "$T/op-b/clusters/app.yaml" 2>/dev/null)" "$(server_file store-b)"

code=$(status acurl -X POST -H 'Content-Type: application/json' -d '{"name":"store-a"}' "$HUB_URL/api/v1/clusters")
if [ "$code" != 201 ] && [ "$code" != 409 ]; then
    # Inventory API not wired yet: put the cluster in the inventory directly.
    diag "POST /api/v1/clusters -> $code; inserting store-a into hub.db with sqlite3"
    now=$(date +%s)
    sqlite3 "$HUB_DIR/hub.db" "INSERT OR IGNORE INTO clusters(name, created_at, created_by, updated_at, updated_by) VALUES ('store-a', $now, 'test', $now, 'test');" 2>&1 | sed 's/^/#   /'
fi
if "$RE_BIN/resedge-hub" issue-cert --dir "$HUB_DIR" --cluster store-a --out "$T/agent-a" >"$T/issue.log" 2>&1; then
    ok "issue a cluster certificate for store-a"
    if gitc "$T/agent-a" clone -q "$HUB_URL/git/store-a.git" "$T/agent-clone" >"$T/clone.log" 2>&1; then
        ok "store-a's agent clones store-a"
    else
        not_ok "store-a's agent clones store-a"; sed 's/^/#   /' "$T/clone.log"
    fi
    # the GitOps writer may commit store-a's rendered state meanwhile
    check "agent clone holds a commit of store-a's branch" git --git-dir="$REPO" merge-base \
        --is-ancestor "$(git -C "$T/agent-clone" rev-parse HEAD 2>/dev/null)" refs/namespaces/store-a/refs/heads/main
    check "agent clone passes fsck" git -C "$T/agent-clone" fsck --strict --no-progress
    code=$(status agent_curl "$HUB_URL/git/store-b.git/info/refs?service=git-upload-pack")
    check_eq "store-a's agent gets 403 for store-b" "$code" "403"
    code=$(status agent_curl -X POST -H 'Content-Type: application/x-git-upload-pack-request' \
        --data-binary '0000' "$HUB_URL/git/store-b.git/git-upload-pack")
    check_eq "store-a's agent gets 403 for store-b's upload-pack" "$code" "403"
    check_exit "store-a's agent cannot clone store-b" 128 gitc "$T/agent-a" clone -q "$HUB_URL/git/store-b.git" "$T/agent-b"
    check_exit "store-a's agent cannot clone store-b over v0" 128 gitc "$T/agent-a" -c protocol.version=0 \
        clone -q "$HUB_URL/git/store-b.git" "$T/agent-b0"
else
    not_ok "issue a cluster certificate for store-a # TODO needs the inventory API"
    sed 's/^/#   /' "$T/issue.log"
fi

# ---- the hub stayed healthy and logged no crash ----
check "hub still answers /healthz" curl -sf -o /dev/null --cacert "$CA" "$HUB_URL/healthz"
check "hub is still running" kill -0 "$HUB_PID"

done_testing
