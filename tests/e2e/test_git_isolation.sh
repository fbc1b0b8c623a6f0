#!/usr/bin/env bash
# test_git_isolation.sh - one store's agent certificate reaches only that
# store's objects through the hub's git endpoint, although every store's
# branch lives in one object store: real git over protocol v2 and v0, and
# hand-made v2 requests (fetch of another store's commit and blob,
# object-info, bundle-uri, want-ref escapes, gzip bodies, broken pkt-lines).
. "$(dirname "$0")/lib.sh"

req() { acurl -o "$T/body" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
        "$HUB_URL$2" ${3:+--data-binary "$3"}; }
wait_idle() {
    local i s
    for i in $(seq 1 300); do
        s=$(acurl "$HUB_URL/api/v1/gitops/status" | jq -r '"\(.state) \(.initial_done)"')
        [ "$s" == "idle true" ] && return 0
        sleep 0.1
    done
    echo "# writer not idle: $s"; return 1
}

hub_init || { not_ok "hub init"; done_testing; exit 1; }
hub_start || { not_ok "hub start"; done_testing; exit 1; }
REPO=$HUB_DIR/git
CA=$HUB_DIR/tls/ca.crt

# ---- two stores whose branches differ by a config value ----
code=$(req POST '/api/v1/clusters:import?create_groups=true' \
    '[{"name":"store-a","groups":["/stores"]},{"name":"store-b","groups":["/stores"]}]')
check_eq "create store-a and store-b" "$code" "201"
code=$(req POST /api/v1/namespaces '{"name":"pos","expression":"/g/stores"}')
check_eq "namespace pos on both (its ConfigMap holds the values)" "$code" "201"
code=$(req PUT /api/v1/clusters/store-a/config/pos-secret '{"value":"alpha-secret-1111"}')
check_eq "store-a's config value" "$code" "201"
code=$(req PUT /api/v1/clusters/store-b/config/pos-secret '{"value":"bravo-secret-2222"}')
check_eq "store-b's config value" "$code" "201"
check "the writer rendered both branches" wait_idle
tip() { git --git-dir="$REPO" rev-parse "refs/namespaces/$1/refs/heads/main" 2>/dev/null; }
A_TIP=$(tip store-a) B_TIP=$(tip store-b)
check "store-a has a branch" test -n "$A_TIP"
check "store-b has a branch" test -n "$B_TIP"
check "the branches differ" test "$A_TIP" != "$B_TIP"
check "store-b's branch holds its value" git --git-dir="$REPO" grep -q bravo-secret-2222 "$B_TIP"
check_exit "store-a's branch does not" 1 git --git-dir="$REPO" grep -q bravo-secret-2222 "$A_TIP"
# a blob only store-b's tree reaches: the one holding its value
B_BLOB=$(comm -13 <(git --git-dir="$REPO" rev-list --objects "$A_TIP" | cut -c1-40 | sort) \
                  <(git --git-dir="$REPO" rev-list --objects "$B_TIP" | cut -c1-40 | sort) |
         while read -r o; do
             [ "$(git --git-dir="$REPO" cat-file -t "$o")" = blob ] &&
                 git --git-dir="$REPO" cat-file -p "$o" | grep -q bravo-secret-2222 && echo "$o"
         done | head -1)
check "found a blob only store-b's branch reaches" test -n "$B_BLOB"

"$RE_BIN/resedge-hub" issue-cert --dir "$HUB_DIR" --cluster store-a --out "$T/agent-a" >"$T/issue.log" 2>&1
check "issue store-a's agent certificate" test -s "$T/agent-a.crt"
gita() {
    GIT_SSL_CAINFO=$CA GIT_TERMINAL_PROMPT=0 git -c http.sslCAInfo="$CA" \
        -c http.sslCert="$T/agent-a.crt" -c http.sslKey="$T/agent-a.key" "$@"
}
URL_A=$HUB_URL/git/store-a.git
# fresh NAME: an empty repository with origin at store-a, so that what a
# fetch finds is what came over the wire, not what an earlier one brought.
fresh() {
    rm -rf "$T/$1"; git init -q "$T/$1" && git -C "$T/$1" remote add origin "$URL_A"
}

# ---- real git, protocol v2 ----
fresh clone
if gita -C "$T/clone" -c protocol.version=2 fetch origin main >"$T/fetch.log" 2>&1; then
    ok "v2: store-a's agent fetches its own branch"
else
    not_ok "v2: store-a's agent fetches its own branch"; sed 's/^/#   /' "$T/fetch.log"
fi
check_eq "v2: the fetch got store-a's tip" "$(git -C "$T/clone" rev-parse FETCH_HEAD 2>/dev/null)" "$A_TIP"
gita -C "$T/clone" -c protocol.version=2 fetch origin "$A_TIP" >"$T/fetch.log" 2>&1
check_eq "v2: fetching store-a's tip by id works" "$?" "0"
# the branch may move between ls-refs and fetch: a commit behind the tip is fine
A_OLD=$(git --git-dir="$REPO" rev-parse "$A_TIP~1" 2>/dev/null)
if [ -n "$A_OLD" ]; then
    fresh old
    gita -C "$T/old" -c protocol.version=2 fetch origin "$A_OLD" >"$T/fetch.log" 2>&1
    check_eq "v2: fetching a commit behind store-a's tip works" "$?" "0"
else
    diag "SKIP: store-a's branch has one commit"; ok "# SKIP no commit behind store-a's tip"
fi

fresh x1
gita -C "$T/x1" -c protocol.version=2 fetch origin "$B_TIP" >"$T/fetch.log" 2>&1
check_eq "v2: fetching store-b's tip by id exits 128" "$?" "128"
diag "git prints: $(tr '\n' '|' <"$T/fetch.log")"
check_match "v2: git prints the hub's reason" "$(cat "$T/fetch.log")" \
    "remote error: want $B_TIP: not on the branch of cluster 'store-a'"
check_exit "v2: store-b's commit did not arrive" 1 git -C "$T/x1" cat-file -e "$B_TIP"
fresh x2
gita -C "$T/x2" -c protocol.version=2 fetch origin "$B_BLOB" >"$T/fetch.log" 2>&1
check_eq "v2: fetching store-b's blob by id exits 128" "$?" "128"
check_match "v2: git prints the reason for the blob" "$(cat "$T/fetch.log")" \
    "remote error: want $B_BLOB: not on the branch"
check_exit "v2: store-b's blob did not arrive" 1 git -C "$T/x2" cat-file -e "$B_BLOB"

# ---- protocol v0: git refuses in the client; upload-pack only commits ----
fresh x3
gita -C "$T/x3" -c protocol.version=0 fetch origin "$B_TIP" >"$T/fetch.log" 2>&1
check_eq "v0: fetching store-b's tip by id exits 128" "$?" "128"
diag "git prints: $(tr '\n' '|' <"$T/fetch.log")"
check_match "v0: git says the object is not advertised" "$(cat "$T/fetch.log")" \
    "Server does not allow request for unadvertised object $B_TIP"
check_exit "v0: store-b's commit did not arrive" 1 git -C "$T/x3" cat-file -e "$B_TIP"
# The client check skipped: a hand-made v0 request (no Git-Protocol header).
# git 2.39's upload-pack refuses the commit but sends the blob (its check
# of unadvertised wants runs rev-list without --objects): the hub refuses both.
for o in "$B_TIP" "$B_BLOB"; do
    printf '%04xwant %s\n00000009done\n' 50 "$o" >"$T/req"
    code=$(ucurl "$T/agent-a" -o "$T/body" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/x-git-upload-pack-request' --data-binary @"$T/req" \
        "$URL_A/git-upload-pack")
    check_match "v0 POST wanting store-b's $(git --git-dir="$REPO" cat-file -t "$o"): ERR pkt-line" \
        "$(tr -d '\0' <"$T/body")" "^[0-9a-f]{4}ERR want $o: not on the branch"
    check_exit "v0 POST wanting store-b's $(git --git-dir="$REPO" cat-file -t "$o"): no PACK" 1 grep -qa PACK "$T/body"
done
gita -C "$T/clone" -c protocol.version=0 fetch origin main >"$T/fetch.log" 2>&1
check_eq "v0: store-a's agent still fetches its own branch" "$?" "0"

# ---- hand-made v2 requests ----
# pkt LINE...: each LINE as a pkt-line with a newline; "0000"/"0001" as is.
pkt() {
    local l
    for l in "$@"; do
        case $l in 0000|0001) printf '%s' "$l" ;; *) printf '%04x%s\n' $((${#l} + 5)) "$l" ;; esac
    done
}
# post FILE [curl args]: POSTs FILE as a v2 request with A's certificate;
# prints the status, body in $T/body.
post() {
    local f=$1; shift
    ucurl "$T/agent-a" -o "$T/body" -w '%{http_code}' -X POST -H 'Git-Protocol: version=2' \
        -H 'Content-Type: application/x-git-upload-pack-request' --data-binary @"$f" "$@" \
        "$URL_A/git-upload-pack"
}
fetch_body() {   # OID...: a v2 fetch of those objects
    local w=() o
    for o in "$@"; do w+=("want $o"); done
    pkt command=fetch agent=git/2.39.5 object-format=sha1 0001 no-progress ofs-delta "${w[@]}" done 0000
}
refused() {      # NAME REGEX: the last answer was an ERR pkt-line and no pack
    check_eq "$1: answered 200 (the ERR is in the body)" "$code" "200"
    check_match "$1: ERR pkt-line" "$(tr -d '\0' <"$T/body")" "^[0-9a-f]{4}ERR $2"
    check_exit "$1: no PACK in the answer" 1 grep -qa PACK "$T/body"
}

fetch_body "$A_TIP" >"$T/own"
code=$(post "$T/own")
check_eq "own tip: 200" "$code" "200"
check "own tip: the answer holds a pack" grep -qa PACK "$T/body"

fetch_body "$B_TIP" >"$T/req"
code=$(post "$T/req"); refused "store-b's tip" "want $B_TIP: not on the branch"
fetch_body "$B_BLOB" >"$T/req"
code=$(post "$T/req"); refused "store-b's blob" "want $B_BLOB: not on the branch"
fetch_body "$A_TIP" "$B_BLOB" >"$T/req"
code=$(post "$T/req"); refused "own tip plus store-b's blob" "want $B_BLOB"
fetch_body 0123456789abcdef0123456789abcdef01234567 >"$T/req"
code=$(post "$T/req"); refused "a missing object (same answer: no oracle)" "want 0123456789abcdef0123456789abcdef01234567: not on the branch"
fetch_body "$B_TIP" | gzip -c >"$T/req.gz"
code=$(post "$T/req.gz" -H 'Content-Encoding: gzip'); refused "store-b's tip, gzip body" "want $B_TIP"
gzip -c "$T/own" >"$T/own.gz"
code=$(post "$T/own.gz" -H 'Content-Encoding: gzip')
check_eq "own tip, gzip body: 200" "$code" "200"
check "own tip, gzip body: a pack" grep -qa PACK "$T/body"

pkt command=object-info object-format=sha1 0001 size "oid $B_BLOB" 0000 >"$T/req"
code=$(post "$T/req"); refused "object-info" "command 'object-info' is not served"
check_exit "object-info: no size in the answer" 1 grep -qa "$B_BLOB" "$T/body"
pkt command=bundle-uri object-format=sha1 0000 >"$T/req"
code=$(post "$T/req"); refused "bundle-uri" "command 'bundle-uri' is not served"
pkt command=fetch object-format=sha1 0001 "want-ref refs/heads/../../../store-b/refs/heads/main" done 0000 >"$T/req"
code=$(post "$T/req"); refused "want-ref with .." "want-ref"
pkt command=fetch object-format=sha1 0001 "want-ref refs/namespaces/store-b/refs/heads/main" done 0000 >"$T/req"
code=$(post "$T/req"); refused "want-ref of another namespace" "want-ref"
pkt command=fetch object-format=sha1 0001 "want $A_TIP" "deepen-not refs/namespaces/store-b/refs/heads/main" done 0000 >"$T/req"
code=$(post "$T/req"); refused "deepen-not" "fetch argument 'deepen-not"
pkt command=fetch object-format=sha1 0001 "want $A_TIP" "filter sparse:oid=$B_BLOB" done 0000 >"$T/req"
code=$(post "$T/req"); refused "filter" "fetch argument 'filter"
# get_oid_hex reads 40 digits and ignores the rest: the rest must not hide anything
pkt command=fetch object-format=sha1 0001 "want ${B_TIP}x" done 0000 >"$T/req"
code=$(post "$T/req")
check_eq "a want with trailing bytes: 400" "$code" "400"
check_exit "a want with trailing bytes: no PACK" 1 grep -qa PACK "$T/body"
n257=(); for i in $(seq 1 257); do n257+=("$A_TIP"); done
fetch_body "${n257[@]}" >"$T/req"
code=$(post "$T/req"); refused "257 wants" "more than 256 wants"

# ---- broken pkt-lines: 400, and the hub stays up ----
printf 'zzzzcommand=fetch\n0000' >"$T/req"
code=$(post "$T/req"); check_eq "bad length hex: 400" "$code" "400"
check_match "bad length hex: the message says so" "$(cat "$T/body")" "malformed pkt-line"
printf '0100command=fetch\n0000' >"$T/req"
code=$(post "$T/req"); check_eq "length beyond the body: 400" "$code" "400"
{ pkt command=fetch 0001 "want $B_TIP"; printf '0004'; } >"$T/req"
code=$(post "$T/req"); check_eq "a truncated request (no flush): 400" "$code" "400"
check_exit "a truncated request: no PACK" 1 grep -qa PACK "$T/body"
{ fetch_body "$A_TIP"; fetch_body "$B_TIP"; } >"$T/req"
code=$(post "$T/req"); check_eq "a second request after the flush: 400" "$code" "400"
printf 'not gzip at all' >"$T/req"
code=$(post "$T/req" -H 'Content-Encoding: gzip'); check_eq "a body that is not gzip: 400" "$code" "400"
code=$(status curl -sS --cacert "$CA" "$HUB_URL/healthz")
check_eq "the hub still answers /healthz" "$code" "200"
check "the hub is still running" kill -0 "$HUB_PID"

# ---- the same with git once more: the endpoint still serves its own ----
gita -C "$T/clone" -c protocol.version=2 fetch origin main >"$T/fetch.log" 2>&1
check_eq "v2: own fetch still works after the refusals" "$?" "0"
check "the refusals were logged" grep -q "refused a fetch for 'store-a'" "$T/hub.log"

done_testing
