#!/usr/bin/env bash
# test_server.sh - the hub's HTTPS server against real clients (curl, openssl,
# python's ssl): mutual TLS and who gets /metrics, TLS policy, session tickets
# surviving a restart, every request limit and timeout, 1,000 concurrent
# keep-alive connections, SIGHUP reload and a graceful SIGTERM.
. "$(dirname "$0")/lib.sh"
TOOLS=$(cd "$(dirname "$0")/../tools" && pwd)
CLIENTS="python3 $TOOLS/tls_clients.py"

hub_init || { not_ok "hub init"; done_testing; exit 1; }
hub_conf server.max_header_bytes 8192
hub_conf server.max_body_bytes 65536
hub_conf server.max_requests_per_connection 5
# Under valgrind (RE_WRAP) the hub does each TLS handshake many times slower:
# 200 handshakes queued at once outlast the 10 s header timeout, and opening
# 1,000 connections the 60 s idle timeout of the first ones, so both are
# scaled (the timeout checks below set their own short ones).
slow=1; [ -n "${RE_WRAP:-}" ] && slow=10
if [ "$slow" -gt 1 ]; then
    hub_conf server.header_timeout "$((10 * slow))s"
    hub_conf server.idle_timeout "$((60 * slow))s"
fi
hub_start || { not_ok "hub starts"; done_testing; exit 1; }
ok "hub starts and answers /healthz"
CA=$HUB_DIR/tls/ca.crt
ncurl() { curl -sS --max-time 30 --cacert "$CA" "$@"; }     # no client certificate
# ustatus PREFIX ARGS...: status as PREFIX.crt/PREFIX.key; body in $T/body.
ustatus() {
    local p=$1; shift
    curl -sS --max-time 30 --cacert "$CA" --cert "$p.crt" --key "$p.key" -o "$T/body" -w '%{http_code}' "$@"
}
conn_args=(--port "$HUB_PORT" --ca "$CA")

# ---- who may see what ----
check_eq "healthz with the admin certificate" "$(status acurl "$HUB_URL/healthz")" 200
check_eq "healthz body" "$(cat "$T/body")" '{"status":"ok"}'
check_eq "healthz without a certificate" "$(status ncurl "$HUB_URL/healthz")" 200
check_eq "readyz without a certificate" "$(status ncurl "$HUB_URL/readyz")" 200
check_eq "metrics with the admin certificate" "$(status acurl "$HUB_URL/metrics")" 200
m=$(cat "$T/body")
check_match "metrics: requests by route and status" "$m" 'resedge_http_requests_total\{route="/healthz",method="GET",code="200"\} [0-9]+'
check_match "metrics: latency histogram" "$m" 'resedge_http_request_duration_seconds_bucket\{route="/healthz",le="\+Inf"\} [0-9]+'
check_match "metrics: open connections" "$m" 'resedge_http_connections_open [0-9]+'
check_match "metrics: full handshakes" "$m" 'resedge_tls_handshakes_total\{type="full"\} [1-9]'
check_match "metrics: resumed handshakes" "$m" 'resedge_tls_handshakes_total\{type="resumed"\} [0-9]+'
ctype=$(acurl -o /dev/null -w '%{content_type}' "$HUB_URL/metrics")
check_eq "metrics content type" "$ctype" "text/plain; version=0.0.4; charset=utf-8"

check_eq "metrics without a certificate: 401" "$(status ncurl "$HUB_URL/metrics")" 401
check_eq "401 body is the JSON error shape" "$(jq -c . "$T/body")" \
    '{"error":{"code":"unauthenticated","message":"a client certificate issued by this hub'"'"'s CA is required"}}'

# A certificate from another CA, with an identity that exists on this hub.
(cd "$T" && openssl ecparam -name prime256v1 -genkey -noout -out evilca.key &&
    openssl req -new -x509 -key evilca.key -subj /CN=evil-ca -days 30 -out evilca.crt &&
    openssl ecparam -name prime256v1 -genkey -noout -out evil.key &&
    openssl req -new -key evil.key -subj /CN=admin -out evil.csr &&
    printf 'subjectAltName=URI:spiffe://resedge/user/admin\nextendedKeyUsage=clientAuth\n' >evil.ext &&
    openssl x509 -req -in evil.csr -CA evilca.crt -CAkey evilca.key -CAcreateserial -days 30 \
        -extfile evil.ext -out evil.crt) >/dev/null 2>&1
check_eq "metrics with another CA's certificate: 401" "$(ustatus "$T/evil" "$HUB_URL/metrics")" 401

# An expired certificate from this hub's CA, recorded as the identity's current one.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
    faketime -f '-40d' "$RE_BIN/resedge-hub" issue-cert --dir "$HUB_DIR" --user old-admin \
    --role admin --days 30 --out "$T/expired" >"$T/faketime.log" 2>&1
if openssl x509 -in "$T/expired.crt" -noout -checkend 0 >/dev/null 2>&1; then
    not_ok "expired certificate prepared"; sed 's/^/#   /' "$T/faketime.log" | head
else
    check_eq "metrics with an expired certificate: 401" "$(ustatus "$T/expired" "$HUB_URL/metrics")" 401
    check_match "expired: rejected by the TLS verification" "$(cat "$T/body")" "issued by this hub's CA is required"
fi

issue_user ops operator && issue_user tech technician || not_ok "issue operator and technician certificates"
check_eq "metrics with an operator certificate" "$(ustatus "$T/ops" "$HUB_URL/metrics")" 200
check_eq "metrics with a technician certificate: 403" "$(ustatus "$T/tech" "$HUB_URL/metrics")" 403
check_eq "403 names the code" "$(jq -r .error.code "$T/body")" forbidden
check_eq "unknown path: 404" "$(status acurl "$HUB_URL/no/such/thing")" 404
check_eq "404 is JSON" "$(jq -r .error.code "$T/body")" not_found
check_eq "wrong method: 405" "$(status acurl -X DELETE "$HUB_URL/healthz")" 405

# ---- TLS policy ----
# s_client exits 1 on a failed handshake (timeout would be 124)
check_exit "TLS 1.1 is refused" 1 timeout 10 openssl s_client -connect "127.0.0.1:$HUB_PORT" -tls1_1 \
    -CAfile "$CA" </dev/null
check_exit "a CBC suite is refused" 1 timeout 10 openssl s_client -connect "127.0.0.1:$HUB_PORT" \
    -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA -CAfile "$CA" </dev/null
check_exit "a non-ECDHE suite is refused" 1 timeout 10 openssl s_client -connect "127.0.0.1:$HUB_PORT" \
    -tls1_2 -cipher AES128-GCM-SHA256 -CAfile "$CA" </dev/null
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$HUB_PORT" -CAfile "$CA" -sess_out "$T/sess.pem" </dev/null 2>&1)
check_match "TLS 1.2 with an ECDHE AEAD suite" "$out" 'New, TLSv1\.2, Cipher is ECDHE-[A-Z0-9]+-(AES[0-9]+-GCM|CHACHA20-POLY1305)'
check_match "server certificate verifies" "$out" 'Verify return code: 0 \(ok\)'
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$HUB_PORT" -CAfile "$CA" -sess_in "$T/sess.pem" </dev/null 2>&1)
check_match "session ticket resumes" "$out" 'Reused, TLSv1\.2'
check_eq "ticket keys are private" "$(stat -c %a "$HUB_DIR/tls/ticket.keys")" 600

# ---- limits ----
big_header=$(head -c 9000 /dev/zero | tr '\0' a)
check_eq "oversized header: 431" "$(status acurl -H "X-Big: $big_header" "$HUB_URL/healthz")" 431
check_eq "431 is JSON" "$(jq -r .error.code "$T/body")" header_too_large
check_eq "next client served after 431" "$(status acurl "$HUB_URL/healthz")" 200
head -c 70000 /dev/zero >"$T/big.bin"
check_eq "oversized body (Content-Length): 413" \
    "$(status acurl --data-binary @"$T/big.bin" "$HUB_URL/healthz")" 413
check_eq "413 is JSON" "$(jq -r .error.code "$T/body")" too_large
check_eq "oversized body (chunked): 413" \
    "$(status acurl -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.bin" "$HUB_URL/healthz")" 413
check_eq "next client served after 413" "$(status acurl "$HUB_URL/healthz")" 200
# A too-deep JSON body, on the first JSON endpoint the hub has.
deep=$(python3 -c 'print("[" * 1000 + "]" * 1000)')
for ep in /api/v1/groups /api/v1/clusters /api/v1/enroll; do
    st=$(status acurl -H 'Content-Type: application/json' --data-binary "$deep" "$HUB_URL$ep")
    [ "$st" = 404 ] || break
done
if [ "$st" = 404 ]; then
    ok "too-deep JSON: 400 # SKIP no JSON endpoint yet"
else
    check_eq "too-deep JSON body: 400 ($ep)" "$st" 400
    check_eq "too-deep JSON names the code" "$(jq -r .error.code "$T/body")" too_deep
    check_eq "next client served after 400" "$(status acurl "$HUB_URL/healthz")" 200
fi
bad=$(printf 'GARBAGE\r\n\r\n' | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$HUB_PORT" \
    -CAfile "$CA" 2>/dev/null | head -1 | tr -d '\r')
check_match "malformed request: 400" "$bad" '^HTTP/1\.1 400 '

nc=$(acurl -o /dev/null -o /dev/null -w '%{num_connects} ' "$HUB_URL/healthz" "$HUB_URL/healthz")
check_eq "keep-alive: second request on the same connection" "$nc" "1 0 "
check "pipelined requests answered in order" $CLIENTS pipeline "${conn_args[@]}"
check "requests per connection: Connection: close after 5" $CLIENTS reqlimit --n 5 "${conn_args[@]}"
check "1,000 concurrent keep-alive connections served" $CLIENTS many --n 1000 "${conn_args[@]}"
# ---- timeouts, shortened by a SIGHUP reload ----
hub_conf server.header_timeout 2s
hub_conf server.idle_timeout 3s
hub_conf server.body_timeout 3s
kill -HUP "$HUB_PID"
sleep 0.5
check "a trickling client is cut off at the header timeout" \
    $CLIENTS trickle --interval 0.3 --min 1.5 --max 8 "${conn_args[@]}"
check "an idle keep-alive connection is closed at the idle timeout" \
    $CLIENTS idle --min 2 --max 8 "${conn_args[@]}"

# ---- SIGHUP: new limits apply ----
hub_conf server.max_connections 3
kill -HUP "$HUB_PID"
sleep 0.5
check "connections over the limit are closed at once" $CLIENTS maxconn --n 3 "${conn_args[@]}"
hub_conf server.max_connections 20000
kill -HUP "$HUB_PID"
sleep 0.5
check_eq "served again under the limit" "$(status acurl "$HUB_URL/healthz")" 200

# ---- SIGTERM: the request in flight completes, then exit 0 ----
if $CLIENTS inflight --pid "$HUB_PID" "${conn_args[@]}" >"$T/inflight.out" 2>&1; then
    ok "request in flight at SIGTERM is answered with Connection: close"
else
    not_ok "request in flight at SIGTERM is answered with Connection: close"
    sed 's/^/#   /' "$T/inflight.out" | tail -5
    kill -TERM "$HUB_PID" 2>/dev/null       # the client may not have signalled it
fi
for _ in $(seq 1 100); do kill -0 "$HUB_PID" 2>/dev/null || break; sleep 0.2; done
kill -0 "$HUB_PID" 2>/dev/null && { diag "hub still running 20 s after SIGTERM"; kill -9 "$HUB_PID"; }
rc=0
wait "$HUB_PID" || rc=$?
HUB_PID=
check_eq "hub exits 0 after SIGTERM" "$rc" 0

# ---- session tickets survive a restart ----
hub_start || not_ok "hub restarts"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$HUB_PORT" -CAfile "$CA" -sess_in "$T/sess.pem" </dev/null 2>&1)
check_match "a ticket from before the restart resumes" "$out" 'Reused, TLSv1\.2'
check_match "resumed handshakes are counted" "$(acurl "$HUB_URL/metrics")" 'resedge_tls_handshakes_total\{type="resumed"\} [1-9]'
check "hub stops cleanly" hub_stop
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/hub.log"; then
    not_ok "no sanitizer reports in the hub log"; grep -E -A5 'Sanitizer|runtime error' "$T/hub.log" | head -30 | sed 's/^/#   /'
else
    ok "no sanitizer reports in the hub log"
fi
done_testing
