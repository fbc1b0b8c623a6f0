#!/usr/bin/env bash
# nginx.sh - the baseline of issue 8: nginx (Debian's package, installed with
# apt-get when missing) configured for mutual TLS with the hub's CA and
# server certificate, answering every request with a static JSON body the
# size of the hub's check-in answer, on a free loopback port. The same client
# (resedge-sim, the same agents, connections and request) drives nginx and
# then the hub: check-ins per second over resumed sessions for both, and the
# ratio. nginx runs one worker, as the hub runs one event loop.
# Printed as FIGURE lines (see run.sh), never asserted.
. "$(dirname "$0")/../e2e/lib.sh"

SIM=$RE_BIN/resedge-sim
AGENTS=50
if [ "${BENCH_SCALE:-}" = small ]; then COUNT=3000; else COUNT=20000; fi
figure() { printf 'FIGURE\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }
calc() { python3 -c "print($1)"; }

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "# installing nginx (Debian package)" >&2
    { apt-get install -y -q nginx-light || { apt-get update -q && apt-get install -y -q nginx-light; } ||
      apt-get install -y -q nginx; } >"$T/apt.log" 2>&1
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "nginx is not available (apt-get failed: see $T/apt.log)"; exit 1; }

nginx_cleanup() {
    local m w
    if [ -f "$T/nginx.pid" ]; then
        m=$(cat "$T/nginx.pid")
        w=$(cat "$T/nginx-worker.pid" 2>/dev/null)
        kill -QUIT "$m" 2>/dev/null      # graceful: the master stops its worker
        for _ in $(seq 1 50); do kill -0 "$m" 2>/dev/null || break; sleep 0.1; done
        [ -n "$w" ] && kill -KILL "$w" 2>/dev/null
    fi
    _cleanup
}
trap nginx_cleanup EXIT

# a hub with AGENTS clusters and identities
hub_init >"$T/init.out" || { echo "hub init failed:"; cat "$T/init.out"; exit 1; }
hub_start || { echo "hub start failed"; exit 1; }
echo "$HUB_PID" >"$T/hub.pid"
{ echo "name,groups,metadata"; for i in $(seq 1 $AGENTS); do echo "store-$i,/stores/s,ring=prod"; done; } >"$T/f.csv"
acurl -o /dev/null -X POST -H 'Content-Type: text/csv' --data-binary @"$T/f.csv" \
    "$HUB_URL/api/v1/clusters:import?create_groups=true" || exit 1
seq 1 $AGENTS | sed 's/^/store-/' >"$T/names"
"$SIM" issue --dir "$HUB_DIR" --clusters-from "$T/names" --out-dir "$T/ids" 2>"$T/issue.log" ||
    { cat "$T/issue.log"; exit 1; }

# the hub's real answer to a check-in, as the static body
ucurl "$T/ids/store-1" -o "$T/answer.json" -X POST -H 'Content-Type: application/json' \
    -d '{"agent_version":"0.1.0","mode":"none","interval":60}' \
    "$HUB_URL/api/v1/clusters/store-1/checkin" || exit 1
grep -q '"interval"' "$T/answer.json" || { echo "no check-in answer: $(cat "$T/answer.json")"; exit 1; }

NPORT=$(free_port)
mkdir -p "$T/nginx"
user_line=
[ "$(id -u)" = 0 ] && user_line="user root root;"
cat >"$T/nginx.conf" <<EOF
$user_line
worker_processes 1;
daemon off;
pid $T/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    server {
        listen 127.0.0.1:$NPORT ssl;
        ssl_certificate $HUB_DIR/tls/server.crt;
        ssl_certificate_key $HUB_DIR/tls/server.key;
        ssl_client_certificate $HUB_DIR/tls/ca.crt;
        ssl_verify_client on;
        ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
        ssl_ecdh_curve X25519:prime256v1;
        ssl_session_tickets on;
        ssl_session_timeout 12h;
        location / {
            default_type application/json;
            return 200 '$(cat "$T/answer.json")';
        }
    }
}
EOF
"$NGINX" -c "$T/nginx.conf" -p "$T/nginx" -e "$T/nginx/error.log" >"$T/nginx.out" 2>&1 &
_pids+=("$!")
for _ in $(seq 1 50); do
    curl -s -o /dev/null --cacert "$HUB_DIR/tls/ca.crt" "https://127.0.0.1:$NPORT/" && break
    sleep 0.1
done
[ -f "$T/nginx.pid" ] || { echo "nginx did not start:"; cat "$T/nginx.out" "$T/nginx/error.log" 2>/dev/null; exit 1; }

run_sim() {   # PORT PIDFILE OUT
    "$SIM" run --hub "https://127.0.0.1:$1" --ca "$HUB_DIR/tls/ca.crt" --ids "$T/ids" \
        --hub-pid-file "$2" --concurrency 32 --phase prime@16 --phase "resumed:$COUNT" >"$3" 2>>"$T/sim.err"
}
pgrep -P "$(cat "$T/nginx.pid")" | head -1 >"$T/nginx-worker.pid"
run_sim "$NPORT" "$T/nginx-worker.pid" "$T/nginx.jsonl" || { echo "sim against nginx failed"; tail -3 "$T/sim.err"; exit 1; }
run_sim "$HUB_PORT" "$T/hub.pid" "$T/hub.jsonl" || { echo "sim against the hub failed"; tail -3 "$T/sim.err"; exit 1; }
get() { jq -r "select(.phase == \"resumed\") | $2" "$1"; }
n_rate=$(get "$T/nginx.jsonl" .rate); h_rate=$(get "$T/hub.jsonl" .rate)
n_cpu=$(get "$T/nginx.jsonl" .hub_cpu_s); h_cpu=$(get "$T/hub.jsonl" .hub_cpu_s)
figure "nginx (1 worker, mTLS, static $(wc -c <"$T/answer.json")-byte JSON): resumed req/s" "$n_rate" "/s" "-" "-" info
figure "hub, same client and requests: resumed check-ins/s" "$h_rate" "/s" "-" \
    "$(calc "round($h_rate / $n_rate, 2) if $n_rate > 0 else '-'")" info
figure "per server CPU-second: nginx / hub" \
    "$(calc "round($COUNT / $n_cpu) if $n_cpu > 0 else '-'") / $(calc "round($COUNT / $h_cpu) if $h_cpu > 0 else '-'")" \
    "req/CPU-s" "-" "$(calc "round($n_cpu / $h_cpu, 2) if $h_cpu > 0 else '-'")" info
figure "resumed handshakes: nginx / hub" "$(get "$T/nginx.jsonl" .resumed) / $(get "$T/hub.jsonl" .resumed) of $COUNT" "" "-" "-" info
figure "p99 latency: nginx / hub" "$(get "$T/nginx.jsonl" .p99_ms) / $(get "$T/hub.jsonl" .p99_ms)" ms "-" "-" info
hub_stop >/dev/null 2>&1
exit 0
