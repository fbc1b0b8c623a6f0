#!/usr/bin/env bash
# test_checkin_batch.sh - check-in reports are written in batches (one
# transaction per second or per 512 reports, hub/checkin_batch.c): the API
# still shows a report as soon as the agent got its answer, SIGTERM writes
# what is held, a kill -9 loses at most the last second and nothing older,
# a report of a cluster deleted meanwhile is dropped without blocking the
# others, and reports taken while another process locks the database are
# written once the lock goes.
. "$(dirname "$0")/lib.sh"
SIM=$RE_BIN/resedge-sim
dbq() { sqlite3 -cmd '.timeout 5000' "$HUB_DIR/hub.db" "$@"; }
checkin() {   # CLUSTER [VERSION]: the agent's check-in, prints the HTTP status
    status ucurl "$T/ids/$1" -X POST -H 'Content-Type: application/json' \
        -d "{\"agent_version\":\"${2:-t1}\"}" "$HUB_URL/api/v1/clusters/$1/checkin"
}
seen() { dbq "SELECT count(*) FROM cluster_status WHERE name LIKE '$1'"; }
# lock_db / unlock_db: another process (sqlite3, fed through a fifo on fd 7)
# takes and releases an exclusive lock on the hub's database.
lock_db() {
    rm -f "$T/lock.in"; mkfifo "$T/lock.in"
    sqlite3 "$HUB_DIR/hub.db" <"$T/lock.in" >"$T/lock.out" 2>&1 &
    lockpid=$!; _pids+=("$lockpid")
    exec 7>"$T/lock.in"
    echo "BEGIN EXCLUSIVE; SELECT 'locked';" >&7
    for _ in $(seq 1 50); do grep -q locked "$T/lock.out" && break; sleep 0.1; done
}
lock_state() { head -1 "$T/lock.out"; }
unlock_db() { echo "COMMIT;" >&7; exec 7>&-; wait "$lockpid" 2>/dev/null; }
slow=1; [ -n "${RE_WRAP:-}" ] && slow=5     # valgrind: waits for the hub scaled

hub_init || { not_ok "hub init"; done_testing; exit 1; }
hub_start || { not_ok "hub start"; done_testing; exit 1; }
for i in $(seq -w 1 30); do echo "cb-$i"; done >"$T/names"
python3 - "$T/names" >"$T/import.json" <<'PY'
import json, sys
print(json.dumps([{"name": n.strip()} for n in open(sys.argv[1])]))
PY
check_eq "30 clusters imported" "$(status acurl -X POST --data-binary @"$T/import.json" "$HUB_URL/api/v1/clusters:import")" 201
"$SIM" issue --dir "$HUB_DIR" --clusters-from "$T/names" --out-dir "$T/ids" 2>"$T/issue.err" ||
    { not_ok "identities issued"; cat "$T/issue.err"; }

# ---- 1. a report is visible through the API at once -----------------------
check_eq "a check-in is answered" "$(checkin cb-01 v-first)" 200
check_eq "its status is readable right away" "$(status acurl "$HUB_URL/api/v1/clusters/cb-01/status")" 200
check_eq "... with what the agent reported" "$(jq_body .agent_version)" v-first
check_eq "... and online" "$(jq_body .status)" online
check_eq "the cluster listing shows it too" \
    "$(acurl "$HUB_URL/api/v1/clusters/cb-01" | jq -r '.agent.agent_version')" v-first

# ---- 2. SIGTERM writes what is held ---------------------------------------
for i in $(seq -w 2 11); do checkin "cb-$i" v-term >/dev/null; done
hub_stop
check_eq "after SIGTERM every report is in the database" "$(dbq "SELECT count(*) FROM cluster_status WHERE agent_version = 'v-term'")" 10
check_eq "... and the first one still there" "$(seen cb-01)" 1
hub_start || not_ok "hub restart"

# ---- 3. kill -9 loses at most the held second -----------------------------
for i in $(seq -w 12 16); do checkin "cb-$i" v-old >/dev/null; done
sleep "$(echo "2.5 * $slow" | bc)"   # past CHECKIN_BATCH_DELAY_MS: written
if [ "$slow" -eq 1 ]; then
    for i in $(seq -w 17 21); do checkin "cb-$i" v-new >/dev/null; done
else
    # Under valgrind a check-in's TLS handshake takes longer than the batch
    # delay, so five curls (in a row or at once) span two batches: here the
    # five connections are made first and the five requests then sent at once.
    python3 - "$HUB_PORT" "$HUB_DIR/tls/ca.crt" "$T/ids" v-new cb-17 cb-18 cb-19 cb-20 cb-21 <<'PY'
import json, socket, ssl, sys
port, ca, ids, version, names = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
conns = []
for n in names:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(f"{ids}/{n}.crt", f"{ids}/{n}.key")
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=120), server_hostname="127.0.0.1")
    conns.append((n, s))
for n, s in conns:
    body = json.dumps({"agent_version": version}).encode()
    s.sendall(f"POST /api/v1/clusters/{n}/checkin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
for n, s in conns:
    head = s.recv(64).decode(errors="replace")
    if " 200 " not in head.split("\r\n")[0]:
        print(f"# {n}: {head.splitlines()[0] if head else 'no answer'}")
PY
fi
kill -9 "$HUB_PID"; wait "$HUB_PID" 2>/dev/null; HUB_PID=
check_eq "kill -9: the reports older than the batch delay survive" \
    "$(dbq "SELECT count(*) FROM cluster_status WHERE agent_version = 'v-old'")" 5
n_new=$(dbq "SELECT count(*) FROM cluster_status WHERE agent_version = 'v-new'")
check "... the held ones are all or nothing (got $n_new of 5)" test "$n_new" -eq 0 -o "$n_new" -eq 5
check_eq "... the database is intact" "$(dbq 'PRAGMA integrity_check')" ok
hub_start || not_ok "hub restart after kill -9"

# ---- 4. a held report of a cluster deleted meanwhile ----------------------
check_eq "check-in of cb-22" "$(checkin cb-22 v-del)" 200
check_eq "check-in of cb-23" "$(checkin cb-23 v-del)" 200
check_eq "cb-22 deleted before the batch is written" "$(status acurl -X DELETE "$HUB_URL/api/v1/clusters/cb-22")" 204
check_eq "the other report is written" "$(status acurl "$HUB_URL/api/v1/clusters/cb-23/status")" 200
check_eq "... and shows" "$(jq_body .agent_version)" v-del
check_eq "no status row for the deleted cluster" "$(seen cb-22)" 0
sleep 1.5
check_eq "later check-ins are still written" "$(checkin cb-24 v-after)" 200
check_eq "... and read back" "$(acurl "$HUB_URL/api/v1/clusters/cb-24/status" | jq -r .agent_version)" v-after

# ---- 5. another process locks the database --------------------------------
lock_db
check_eq "another process holds an exclusive lock" "$(lock_state)" locked
ok=0
for i in $(seq -w 25 30); do [ "$(checkin "cb-$i" v-lock)" = 200 ] && ok=$((ok + 1)); done
check_eq "check-ins under the lock are answered (held)" "$ok" 6
sleep "$(echo "2.5 * $slow" | bc)"   # the timer's flushes fail meanwhile
check_match "the hub says it keeps them" "$(cat "$T/hub.log")" 'cannot record [0-9]+ check-ins yet \(kept, retrying\)'
unlock_db
for _ in $(seq 1 $((50 * slow))); do   # the timer's next turn writes them (about a second)
    [ "$(dbq "SELECT count(*) FROM cluster_status WHERE agent_version = 'v-lock'")" = 6 ] && break
    sleep 0.1
done
check_eq "once the lock is gone every held report is written" \
    "$(dbq "SELECT count(*) FROM cluster_status WHERE agent_version = 'v-lock'")" 6
check_eq "... the database is intact" "$(dbq 'PRAGMA integrity_check')" ok

# ---- 6. what the hub holds is bounded: past 8,192 reports, 503 ------------
# The 29 agents left (cb-22 is gone) check in 8,329 times in all while another
# process holds the lock: 8,192 reports are held and answered, the rest get
# 503 + Retry-After
# at once (no wait for the lock on the event loop), and once the lock goes
# the held ones are written.
lock_db
check_eq "the lock is held again" "$(lock_state)" locked
echo "$HUB_PID" >"$T/hub.pid"
grep -vx cb-22 "$T/ids/index" >"$T/index29" && mv "$T/index29" "$T/ids/index"
ver=$("$RE_BIN/resedge-agent" --version | cut -d' ' -f2)     # what the simulated agents report
t0=$(date +%s)
"$SIM" run --hub "$HUB_URL" --ca "$HUB_DIR/tls/ca.crt" --ids "$T/ids" --hub-pid-file "$T/hub.pid" \
    --phase prime --phase resumed:8300@64 >"$T/cap.out" 2>"$T/cap.err"
t1=$(date +%s)
cap() { grep "\"phase\":\"$1\"" "$T/cap.out" | head -1; }
check_eq "the 29 agents' first check-ins are held and answered" "$(cap prime | jq -c '[.ok, .errors]')" "[29,0]"
check_eq "8,163 more are held (8,192 in all), the other 137 refused with 503" \
    "$(cap resumed | jq -c '[.ok, .err.http_5xx, .errors]')" "[8163,137,137]"
code=$(ucurl "$T/ids/cb-05" -o /dev/null -D "$T/cap.hdr" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' -d '{"agent_version":"v-cap"}' "$HUB_URL/api/v1/clusters/cb-05/checkin")
check_eq "a check-in past the cap: 503" "$code" 503
check_match "... with Retry-After" "$(tr -d '\r' <"$T/cap.hdr")" $'(^|\n)[Rr]etry-[Aa]fter: 5(\n|$)'
check "... and refusing did not wait for the lock (the 8,300 took $((t1 - t0)) s)" \
    test $((t1 - t0)) -lt $((60 * slow))
check_eq "the hub still answers other requests" "$(status acurl "$HUB_URL/api/v1/clusters/cb-05")" 200
unlock_db
for _ in $(seq 1 $((50 * slow))); do
    [ "$(dbq "SELECT count(*) FROM cluster_status WHERE name LIKE 'cb-%' AND agent_version = '$ver'")" = 29 ] && break
    sleep 0.1
done
check_eq "once the lock is gone the held reports are written (every agent's)" \
    "$(dbq "SELECT count(*) FROM cluster_status WHERE name LIKE 'cb-%' AND agent_version = '$ver'")" 29
check_eq "... and check-ins are taken again" "$(checkin cb-05 v-after-cap)" 200
check_eq "... the database is intact" "$(dbq 'PRAGMA integrity_check')" ok
check "the hub stops cleanly" hub_stop
done_testing
