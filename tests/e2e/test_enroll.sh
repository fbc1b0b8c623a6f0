#!/usr/bin/env bash
# test_enroll.sh - enrollment and the certificate lifecycle against the real
# hub, with openssl as the enrolling node: codes, redemption, every bad input
# of the enrollment issue, renewal, revocation (also over a resumed TLS
# session), re-enrollment, user codes, roles, audit and metrics.
. "$(dirname "$0")/lib.sh"

hub_init || exit 1
hub_start || exit 1
CA=$HUB_DIR/tls/ca.crt
HOST=127.0.0.1:$HUB_PORT
ISSUED=$T/issued.list   # every certificate the hub issued, for openssl verify at the end
: >"$ISSUED"

# pcurl ARGS...: curl with no client certificate (the public endpoints).
pcurl() { curl -sS --max-time 30 --cacert "$CA" "$@"; }
# from ADDR: curl from another loopback source address (rate limits are per address).
from2() { pcurl --interface 127.0.0.2 "$@"; }
from3() { pcurl --interface 127.0.0.3 "$@"; }

# newcsr NAME [openssl req options]: $T/NAME.key and $T/NAME.csr, asking for
# things the hub must ignore.
newcsr() {
    local n=$1; shift
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/$n.key" -out "$T/$n.csr" -subj /CN=evil \
        -addext basicConstraints=critical,CA:TRUE -addext subjectAltName=DNS:evil.example,URI:spiffe://resedge/user/admin \
        "$@" 2>/dev/null
}
# code_for STORE [TTL]: a fresh code for a cluster (prints the code).
code_for() {
    local body='{}'
    [ -n "${2:-}" ] && body="{\"ttl\":\"$2\"}"
    acurl -X POST -H 'Content-Type: application/json' -d "$body" \
        "$HUB_URL/api/v1/clusters/$1/enroll-code" | jq -r .code
}
# body CODE CSRFILE [extra jq]: writes $T/req.json
body() {
    jq -n --arg code "$1" --rawfile csr "$2" "{code: \$code, csr: \$csr}${3:+ + $3}" >"$T/req.json"
}
# enroll_as CURLFN CODE NAME: POST /api/v1/enroll with $T/NAME.csr; saves $T/NAME.crt; prints status.
enroll_as() {
    local fn=$1 code=$2 n=$3
    body "$code" "$T/$n.csr"
    local st
    st=$(status "$fn" -X POST -H 'Content-Type: application/json' --data-binary @"$T/req.json" \
        "$HUB_URL/api/v1/enroll")
    if [ "$st" = 201 ]; then
        jq -j .certificate "$T/body" >"$T/$n.crt"
        echo "$T/$n.crt" >>"$ISSUED"
    fi
    echo "$st"
}
# ust PREFIX ARGS...: like `ust PREFIX ARGS...` (status puts its -o first).
ust() { local p=$1; shift; ucurl "$p" -o "$T/body" -w '%{http_code}' "$@"; }
err_code() { jq -r '.error.code' "$T/body" 2>/dev/null; }
err_field() { jq -r '.error.field // ""' "$T/body" 2>/dev/null; }

for s in store-a store-b store-c store-d; do
    acurl -o /dev/null -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$s\"}" \
        "$HUB_URL/api/v1/clusters"
done

# ---- the CA and the code -----------------------------------------------------
st=$(status pcurl "$HUB_URL/api/v1/enroll/ca")
check_eq "GET /api/v1/enroll/ca needs no client certificate" "$st" 200
check "the CA endpoint serves DIR/tls/ca.crt" cmp -s "$T/body" "$CA"
FP="sha256:$(openssl x509 -in "$CA" -outform DER | sha256sum | cut -d' ' -f1)"

st=$(status acurl -X POST -H 'Content-Type: application/json' -d '{"ttl":"2h"}' \
    "$HUB_URL/api/v1/clusters/store-a/enroll-code")
check_eq "enroll-code answers 201" "$st" 201
cp "$T/body" "$T/code.json"
CODE_A=$(jq -r .code "$T/code.json")
check_match "the code is <id>.<secret> in a readable alphabet" "$CODE_A" \
    '^[0-9A-HJKMNP-TV-Z]{6}\.[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$'
check_eq "the answer names the hub" "$(jq -r .hub "$T/code.json")" "$HUB_URL"
check_eq "the CA fingerprint is sha256 of the CA certificate's DER" \
    "$(jq -r .ca_fingerprint "$T/code.json")" "$FP"
exp=$(date -u -d "$(jq -r .expires "$T/code.json")" +%s)
check "the code expires in 2 hours" test $((exp - $(date +%s))) -gt 7100 -a $((exp - $(date +%s))) -le 7200
check_eq "the answer gives the one command to run" "$(jq -r .command "$T/code.json")" \
    "resedge-agent enroll --hub $HUB_URL --code $CODE_A --ca-fingerprint $FP"
check "the secret is not stored in the database" \
    bash -c "! grep -a -q '$(echo "${CODE_A#*.}" | tr -d -)' '$HUB_DIR/hub.db' '$HUB_DIR/hub.db-wal' 2>/dev/null"
st=$(status acurl -X POST -d '{"ttl":"8d"}' "$HUB_URL/api/v1/clusters/store-a/enroll-code")
check_eq "a ttl over 7 days is refused" "$st $(err_field)" "400 ttl"
st=$(status acurl -X POST -d '{"ttl":"soon"}' "$HUB_URL/api/v1/clusters/store-a/enroll-code")
check_eq "a ttl that is no duration is refused" "$st $(err_field)" "400 ttl"
st=$(status acurl -X POST -d '{"ttl":"1h","role":"admin"}' "$HUB_URL/api/v1/clusters/store-a/enroll-code")
check_eq "unknown fields in enroll-code are refused" "$st $(err_field)" "400 role"
st=$(status acurl -X POST "$HUB_URL/api/v1/clusters/nope-0001/enroll-code")
check_eq "a code for a cluster that does not exist: 404" "$st" 404
st=$(status acurl -X POST "$HUB_URL/api/v1/clusters/A_B/enroll-code")
check_eq "a cluster name that is no DNS label: 400" "$st $(err_field)" "400 name"

# ---- enrollment -----------------------------------------------------------------
newcsr store-a
st=$(enroll_as pcurl "$CODE_A" store-a)
check_eq "enrollment with the code and a CSR: 201" "$st" 201
check_eq "identity from the hub's records" "$(jq -r .identity "$T/body")" "spiffe://resedge/cluster/store-a"
check "the answer carries the CA" bash -c "jq -j .ca '$T/body' | cmp -s - '$CA'"
na=$(date -u -d "$(jq -r .not_after "$T/body")" +%s)
ra=$(date -u -d "$(jq -r .renew_after "$T/body")" +%s)
now=$(date +%s)
check "default lifetime 30 days" test $((na - now)) -gt $((30 * 86400 - 60)) -a $((na - now)) -le $((30 * 86400))
check "renew_after when a third of the lifetime remains" test $((na - ra)) -eq $((10 * 86400))
openssl x509 -in "$T/store-a.crt" -noout -text >"$T/store-a.txt"
check "openssl verify -CAfile DIR/tls/ca.crt accepts it" openssl verify -CAfile "$CA" "$T/store-a.crt"
check "subject CN is the cluster name (not the CSR's)" grep -q 'Subject: CN *= *store-a$' "$T/store-a.txt"
check "URI SAN spiffe://resedge/cluster/store-a" grep -q 'URI:spiffe://resedge/cluster/store-a$' "$T/store-a.txt"
# grep: 1 no line matched (2 an error)
check_exit "no SAN the CSR asked for" 1 grep -qE 'evil|DNS:|user/admin' "$T/store-a.txt"
check "CA:FALSE although the CSR asked for CA:TRUE" grep -q 'CA:FALSE' "$T/store-a.txt"
check_exit "not a CA" 1 grep -q 'CA:TRUE' "$T/store-a.txt"
check "client authentication usage" grep -q 'TLS Web Client Authentication' "$T/store-a.txt"
check_exit "no server authentication usage" 1 grep -q 'TLS Web Server Authentication' "$T/store-a.txt"
check "the certificate is for the node's own key" \
    bash -c "cmp -s <(openssl x509 -in '$T/store-a.crt' -noout -pubkey) <(openssl pkey -in '$T/store-a.key' -pubout)"
st=$(ust "$T/store-a" "$HUB_URL/api/v1/clusters/store-a")
check_eq "the agent's certificate reads its own cluster" "$st" 200

# Clock skew: backdated 5 minutes, so a node 4 minutes behind already accepts it.
nb=$(date -u -d "$(openssl x509 -in "$T/store-a.crt" -noout -startdate | cut -d= -f2)" +%s)
check "notBefore is backdated about 5 minutes" test $((now - nb)) -ge 290 -a $((now - nb)) -le 320
check "valid for a node whose clock is 4 minutes behind" \
    openssl verify -attime $((now - 240)) -CAfile "$CA" "$T/store-a.crt"
check "valid for a node whose clock is 5 minutes ahead" \
    openssl verify -attime $((now + 300)) -CAfile "$CA" "$T/store-a.crt"
if command -v faketime >/dev/null; then
    check "a client 4 minutes behind talks to the hub" \
        faketime -f -4m curl -sS -f -o /dev/null --cacert "$CA" --cert "$T/store-a.crt" \
        --key "$T/store-a.key" "$HUB_URL/api/v1/clusters/store-a"
    check "a client 5 minutes ahead talks to the hub" \
        faketime -f +5m curl -sS -f -o /dev/null --cacert "$CA" --cert "$T/store-a.crt" \
        --key "$T/store-a.key" "$HUB_URL/api/v1/clusters/store-a"
fi

# ---- bad input ----------------------------------------------------------------
newcsr again
st=$(enroll_as pcurl "$CODE_A" again)
check_eq "a reused code: 409 code_used" "$st $(err_code)" "409 code_used"

CODE=$(code_for store-b)
newcsr typed
typed=$(echo "$CODE" | tr 'A-Z' 'a-z' | tr -d -)
st=$(enroll_as pcurl "$typed" typed)
check_eq "a code typed in lower case without dashes works" "$st" 201
check_eq "... and names the code's store" "$(jq -r .name "$T/body")" "store-b"

# Expired: a 1 s code, then the hub's clock is moved past it (and the 60 s
# leeway) by ageing the row, as waiting would.
CODE=$(code_for store-c 1s)
python3 - "$HUB_DIR/hub.db" "${CODE%%.*}" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
db.execute("UPDATE enroll_codes SET expires_at = expires_at - 120 WHERE id = ?", (sys.argv[2],))
db.commit()
PY
newcsr store-c
st=$(enroll_as pcurl "$CODE" store-c)
check_eq "an expired code: 410 code_expired" "$st $(err_code)" "410 code_expired"

# A code for another store: the caller names store-d, the code is store-c's.
CODE=$(code_for store-c)
body "$CODE" "$T/store-c.csr" '{cluster: "store-d"}'
st=$(status pcurl -X POST --data-binary @"$T/req.json" "$HUB_URL/api/v1/enroll")
check_eq "a code for another store: 403 code_mismatch" "$st $(err_code)" "403 code_mismatch"
body "$CODE" "$T/store-c.csr" '{cluster: "store-c"}'
st=$(status pcurl -X POST --data-binary @"$T/req.json" "$HUB_URL/api/v1/enroll")
check_eq "... the code still works for its own store" "$st" 201
jq -j .certificate "$T/body" >"$T/store-c.crt"; echo "$T/store-c.crt" >>"$ISSUED"
check_eq "... and the certificate is store-c's" \
    "$(openssl x509 -in "$T/store-c.crt" -noout -ext subjectAltName | grep -o 'spiffe://[^ ,]*')" \
    "spiffe://resedge/cluster/store-c"

# Wrong secret until lock-out (from 127.0.0.3, so the address limit is not hit).
CODE=$(code_for store-d)
newcsr store-d
last=${CODE: -1}; [ "$last" = Z ] && w=Y || w=Z
WRONG=${CODE%?}$w
for i in 1 2 3 4; do
    st=$(enroll_as from3 "$WRONG" store-d)
    check_eq "wrong secret $i: 401 invalid_code" "$st $(err_code)" "401 invalid_code"
done
st=$(enroll_as from3 "$WRONG" store-d)
check_eq "the fifth wrong secret locks the code: 403 code_locked" "$st $(err_code)" "403 code_locked"
check_eq "the lock-out says what to do" "$(jq -r .error.message "$T/body")" \
    "this enrollment code is locked after too many wrong attempts; ask for a new code"
st=$(enroll_as from3 "$CODE" store-d)
check_eq "a locked code refuses even the right secret" "$st $(err_code)" "403 code_locked"
st=$(enroll_as from3 "XXXXXX.${CODE#*.}" store-d)
check_eq "an unknown code id: 401 invalid_code" "$st $(err_code)" "401 invalid_code"

# Bad signature: flip the last byte of the DER (inside the ECDSA signature).
CODE=$(code_for store-d)
openssl req -in "$T/store-d.csr" -outform DER -out "$T/csr.der"
python3 - "$T/csr.der" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read()); b[-1] ^= 1
open(sys.argv[1], 'wb').write(bytes(b))
PY
{ echo "-----BEGIN CERTIFICATE REQUEST-----"; openssl base64 -in "$T/csr.der"
  echo "-----END CERTIFICATE REQUEST-----"; } >"$T/badsig.csr"
check "openssl itself still parses the tampered CSR" openssl req -in "$T/badsig.csr" -noout
st=$(enroll_as pcurl "$CODE" badsig)
check_eq "a CSR with a bad signature: 400 bad_signature on csr" "$st $(err_code) $(err_field)" \
    "400 bad_signature csr"
printf -- '-----BEGIN CERTIFICATE REQUEST-----\nthis is not base64!\n-----END CERTIFICATE REQUEST-----\n' >"$T/junk.csr"
st=$(enroll_as pcurl "$CODE" junk)
check_eq "malformed PEM: 400 on csr" "$st $(err_field)" "400 csr"
echo "hello" >"$T/junk.csr"
st=$(enroll_as pcurl "$CODE" junk)
check_eq "no PEM at all: 400 on csr" "$st $(err_field)" "400 csr"
python3 -c 'import base64,os; print("-----BEGIN CERTIFICATE REQUEST-----"); print(base64.encodebytes(os.urandom(100000)).decode(), end=""); print("-----END CERTIFICATE REQUEST-----")' >"$T/huge.csr"
st=$(enroll_as pcurl "$CODE" huge)
check_eq "a huge CSR: 413" "$st" 413
st=$(status pcurl -X POST --data-binary 'not json' "$HUB_URL/api/v1/enroll")
check_eq "a body that is not JSON: 400" "$st" 400
st=$(status pcurl -X POST -d '{"code": "x"}' "$HUB_URL/api/v1/enroll")
check_eq "no csr: 400 on csr" "$st $(err_field)" "400 csr"
st=$(enroll_as pcurl "$CODE" store-d)
check_eq "none of that spent the code" "$st" 201

# The address limit: 20 guesses from one address in 15 minutes, then 429.
for i in $(seq 1 20); do
    enroll_as from2 "ZZZZZZ.ZZZZ-ZZZZ-ZZZZ-ZZZZ" store-d >/dev/null
done
CODE=$(code_for store-d)
hdr=$(from2 -D - -o "$T/body" -X POST --data-binary @<(jq -n --arg c "$CODE" --rawfile csr "$T/store-d.csr" '{code:$c,csr:$csr}') "$HUB_URL/api/v1/enroll" | tr -d '\r')
check_match "too many failures from one address: 429" "$hdr" '^HTTP/1.1 429'
check_match "... with Retry-After" "$hdr" $'\n''Retry-After: [0-9]+'
st=$(enroll_as pcurl "$CODE" store-d)
check_eq "other addresses are not limited" "$st" 201

# ---- roles -----------------------------------------------------------------------
st=$(ust "$T/store-a" -X POST -d '{"name":"mallory","role":"admin"}' "$HUB_URL/api/v1/users")
check_eq "an agent certificate calling an admin endpoint: 403" "$st" 403
st=$(ust "$T/store-a" "$HUB_URL/metrics")
check_eq "an agent certificate reading /metrics: 403" "$st" 403
st=$(ust "$T/store-a" -X POST "$HUB_URL/api/v1/clusters/store-a/enroll-code")
check_eq "an agent cannot make enrollment codes" "$st" 403
st=$(ust "$T/store-a" "$HUB_URL/api/v1/clusters/store-b")
check_eq "agent A reading agent B's record: 403" "$st" 403
st=$(ust "$T/store-a" -X PATCH -d '{"description":"x"}' "$HUB_URL/api/v1/clusters/store-b")
check_eq "agent A writing agent B's record: 403" "$st" 403
st=$(ust "$T/store-a" -X POST "$HUB_URL/api/v1/clusters/store-b/revoke")
check_eq "agent A revoking agent B: 403" "$st" 403
st=$(status pcurl -X POST "$HUB_URL/api/v1/clusters/store-b/revoke")
check_eq "revocation needs a client certificate: 401" "$st" 401
issue_user tech technician
st=$(ust "$T/tech" -X POST "$HUB_URL/api/v1/clusters/store-d/enroll-code")
check_eq "a technician makes enrollment codes" "$st" 201
st=$(ust "$T/tech" -X POST "$HUB_URL/api/v1/clusters/store-d/revoke")
check_eq "a technician cannot revoke" "$st" 403

# ---- renewal ---------------------------------------------------------------------
newcsr store-a2
body x "$T/store-a2.csr"
st=$(ust "$T/store-a" -X POST --data-binary @<(jq '{csr}' "$T/req.json") "$HUB_URL/api/v1/renew")
check_eq "renewal over mutual TLS: 201" "$st" 201
jq -j .certificate "$T/body" >"$T/store-a2.crt"; echo "$T/store-a2.crt" >>"$ISSUED"
check_eq "the renewed certificate keeps the caller's identity" \
    "$(openssl x509 -in "$T/store-a2.crt" -noout -ext subjectAltName | grep -o 'spiffe://[^ ,]*')" \
    "spiffe://resedge/cluster/store-a"
st=$(ust "$T/store-a2" "$HUB_URL/api/v1/clusters/store-a")
check_eq "the renewed certificate works" "$st" 200
st=$(ust "$T/store-a" "$HUB_URL/api/v1/clusters/store-a")
check_eq "the replaced certificate stops working" "$st" 403
st=$(ust "$T/store-a" -X POST --data-binary @<(jq '{csr}' "$T/req.json") "$HUB_URL/api/v1/renew")
check_eq "the replaced certificate cannot renew" "$st" 403

# ---- revocation, also over a resumed TLS session -----------------------------------
req_a() {   # one HTTP request as store-a2 with openssl s_client; extra s_client options
    printf 'GET /api/v1/clusters/store-a HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$HOST" |
        timeout 10 openssl s_client -connect "$HOST" -CAfile "$CA" -cert "$T/store-a2.crt" \
            -key "$T/store-a2.key" -ign_eof "$@" 2>&1
}
out=$(req_a -sess_out "$T/sess.pem")
check_match "a session to resume later (200)" "$out" 'HTTP/1.1 200'
out=$(req_a -sess_in "$T/sess.pem")
check_match "the session resumes" "$out" 'Reused, '
st=$(status acurl -X POST "$HUB_URL/api/v1/clusters/store-a/revoke")
check_eq "an operator or admin revokes a cluster" "$st" 200
st=$(ust "$T/store-a2" "$HUB_URL/api/v1/clusters/store-a")
check_eq "a revoked certificate is denied on the next connection" "$st" 403
out=$(req_a -sess_in "$T/sess.pem")
check_match "... and on a resumed TLS session" "$out" 'HTTP/1.1 403'
check_match "... (which did resume)" "$out" 'Reused, '
st=$(ust "$T/store-a2" -X POST --data-binary @<(jq '{csr}' "$T/req.json") "$HUB_URL/api/v1/renew")
check_eq "a revoked identity cannot renew" "$st" 403
st=$(status acurl -X POST "$HUB_URL/api/v1/clusters/nope-0001/revoke")
check_eq "revoking an unknown cluster: 404" "$st" 404

# Hardware replacement: one new code re-enables the store with the new node's key.
CODE=$(code_for store-a)
newcsr store-a3
st=$(enroll_as pcurl "$CODE" store-a3)
check_eq "re-enrollment after revocation: 201" "$st" 201
st=$(ust "$T/store-a3" "$HUB_URL/api/v1/clusters/store-a")
check_eq "the new node's certificate works" "$st" 200
st=$(ust "$T/store-a2" "$HUB_URL/api/v1/clusters/store-a")
check_eq "the old node's certificate stays denied" "$st" 403

# ---- people ------------------------------------------------------------------------
st=$(status acurl -X POST -d '{"name":"alice","role":"operator","ttl":"1h"}' "$HUB_URL/api/v1/users")
check_eq "users add: 201 with a code" "$st" 201
CODE=$(jq -r .code "$T/body")
check_match "... and the login command" "$(jq -r .command "$T/body")" "^resedgectl login --hub $HUB_URL --code "
st=$(status acurl -X POST -d '{"name":"alice","role":"admin"}' "$HUB_URL/api/v1/users")
check_eq "adding the same user again: 409" "$st" 409
st=$(status acurl -X POST -d '{"name":"bob","role":"root"}' "$HUB_URL/api/v1/users")
check_eq "an unknown role: 400 on role" "$st $(err_field)" "400 role"
st=$(status acurl -X POST -d '{"name":"../bob","role":"admin"}' "$HUB_URL/api/v1/users")
check_eq "a bad user name: 400 on name" "$st $(err_field)" "400 name"
newcsr alice
st=$(enroll_as pcurl "$CODE" alice)
check_eq "a person enrolls with the code" "$st" 201
check_eq "... as spiffe://resedge/user/alice" "$(jq -r .identity "$T/body")" "spiffe://resedge/user/alice"
st=$(ust "$T/alice" "$HUB_URL/api/v1/clusters")
check_eq "the operator reads the inventory" "$st" 200
st=$(ust "$T/alice" -X POST -d '{"name":"eve","role":"admin"}' "$HUB_URL/api/v1/users")
check_eq "an operator cannot add users" "$st" 403
st=$(status acurl -X POST "$HUB_URL/api/v1/users/alice/revoke")
check_eq "an admin revokes a user" "$st" 200
st=$(ust "$T/alice" "$HUB_URL/api/v1/clusters")
check_eq "the revoked user is denied" "$st" 403
st=$(status acurl -X POST "$HUB_URL/api/v1/users/admin/revoke")
check_eq "an admin cannot revoke themself" "$st" 409
st=$(status acurl -X POST "$HUB_URL/api/v1/users/alice/enroll-code")
check_eq "a new code for a revoked user" "$st" 201
CODE=$(jq -r .code "$T/body")
newcsr alice2
st=$(enroll_as pcurl "$CODE" alice2)
check_eq "... re-enrolls them" "$st" 201
st=$(ust "$T/alice2" "$HUB_URL/api/v1/clusters")
check_eq "... with their role" "$st" 200

# ---- the real clients: resedgectl and resedge-agent -----------------------------------
acurl -o /dev/null -X POST -d '{"name":"store-e"}' "$HUB_URL/api/v1/clusters"
if ctl clusters enroll-code store-e --ttl 1h -o json >"$T/e.json" 2>"$T/e.err"; then
    ok "resedgectl clusters enroll-code -o json"
    CODE=$(jq -r .code "$T/e.json")
    # The agent refuses a wrong fingerprint and writes nothing (the code is not spent).
    bad_fp="sha256:$(printf '0%.0s' $(seq 64))"
    # resedge-agent enroll: 1 enrollment failed (64 usage, 73 already enrolled)
    check_exit "resedge-agent enroll refuses a wrong CA fingerprint" 1 \
        "$RE_AGENT" enroll --hub "$HUB_URL" --code "$CODE" --ca-fingerprint "$bad_fp" \
        --state-dir "$T/agent-bad"
    check_exit "... and writes nothing" 1 test -n "$(ls -A "$T/agent-bad" 2>/dev/null)"
    # A hub whose CA does not match the fingerprint given.
    HUB2=$T/hub2; PORT2=$(free_port)
    "$RE_BIN/resedge-hub" init --dir "$HUB2" --listen "127.0.0.1:$PORT2" >/dev/null 2>&1
    # shellcheck disable=SC2086
    ${RE_WRAP:-} "$RE_BIN/resedge-hub" serve --dir "$HUB2" >>"$T/hub2.log" 2>&1 &
    _pids+=("$!")
    for i in $(seq 1 "$([ -n "${RE_WRAP:-}" ] && echo 600 || echo 100)"); do curl -sk -o /dev/null "https://127.0.0.1:$PORT2/healthz" && break; sleep 0.1; done
    check_exit "resedge-agent enroll refuses a hub whose CA does not match" 1 \
        "$RE_AGENT" enroll --hub "https://127.0.0.1:$PORT2" --code "$CODE" \
        --ca-fingerprint "$FP" --state-dir "$T/agent-other"
    check_exit "... and writes nothing" 1 test -n "$(ls -A "$T/agent-other" 2>/dev/null)"
    check "resedge-agent enroll with the code" \
        "$RE_AGENT" enroll --hub "$HUB_URL" --code "$CODE" --ca-fingerprint "$FP" \
        --state-dir "$T/agent-e"
    crt=$(ls "$T"/agent-e/*.crt 2>/dev/null | grep -v '/ca.crt$' | head -1)
    key=${crt%.crt}.key
    check "the agent's key never left the node and is mode 0600" test "$(stat -c %a "$key" 2>/dev/null)" = 600
    [ -n "$crt" ] && echo "$crt" >>"$ISSUED"
    check_eq "the agent's certificate reads its cluster" \
        "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$crt" --key "$key" \
           "$HUB_URL/api/v1/clusters/store-e")" 200
    acurl -o "$T/body" -X POST -d '{"name":"carol","role":"appteam"}' "$HUB_URL/api/v1/users"
    check "resedgectl login with a user code writes a working profile" \
        "$RE_CTL" login --hub "$HUB_URL" --code "$(jq -r .code "$T/body")" \
        --ca-fingerprint "$FP" --config "$T/carol/profile.conf"
    check "... which reads the inventory as carol" \
        "$RE_CTL" --config "$T/carol/profile.conf" clusters list
    [ -f "$T/carol/profile.crt" ] && echo "$T/carol/profile.crt" >>"$ISSUED"
else
    not_ok "resedgectl clusters enroll-code -o json"; sed 's/^/#   /' "$T/e.err"
fi

# ---- every certificate, the audit log and /metrics -----------------------------------
bad=0
while read -r c; do openssl verify -CAfile "$CA" "$c" >/dev/null 2>&1 || { bad=1; diag "not verified: $c"; }; done <"$ISSUED"
check_eq "openssl verify -CAfile DIR/tls/ca.crt accepts all $(wc -l <"$ISSUED") issued certificates" "$bad" 0

audit_actions=$(python3 - "$HUB_DIR/hub.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
print(" ".join(sorted({r[0] for r in db.execute("SELECT action FROM audit")})))
PY
)
for a in enroll-code enroll enroll-failed renew revoke; do
    check_match "the audit log records $a" " $audit_actions " " $a "
done
st=$(status acurl "$HUB_URL/api/v1/audit?entity=cluster&name=store-a")
check_match "GET /api/v1/audit shows store-a's enrollment, renewal and revocation" \
    "$(jq -r '[.items[].action] | join(" ")' "$T/body")" 'revoke.*renew.*enroll'

acurl "$HUB_URL/metrics" >"$T/metrics"
check "metrics count enrollments" grep -qE '^resedge_certs_issued_total\{how="enroll"\} [1-9]' "$T/metrics"
check "metrics count renewals" grep -qE '^resedge_certs_issued_total\{how="renew"\} 1' "$T/metrics"
check "metrics count revocations" grep -qE '^resedge_certs_revoked_total\{kind="cluster"\} 1' "$T/metrics"
check "metrics count lock-outs" grep -qE '^resedge_enroll_failures_total\{reason="code_locked"\} [1-9]' "$T/metrics"
check "metrics count rate limiting" grep -qE '^resedge_enroll_failures_total\{reason="rate_limited"\} [1-9]' "$T/metrics"
check "metrics count codes" grep -qE '^resedge_enroll_codes_total\{kind="cluster"\} [1-9]' "$T/metrics"

done_testing
