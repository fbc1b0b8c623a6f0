#!/usr/bin/env bash
# test_faults.sh - the hub under faults, against the real daemon:
#  - the disk fills (a 4 MiB tmpfs; root only, skipped otherwise) during an
#    import: a clear error, nothing half-written, recovery once space is back;
#  - the SQLite database locked by another process (sqlite3 CLI holding
#    BEGIN EXCLUSIVE): writes get a clear 503, reads go on, writes recover;
#  - kill -9 during a large clusters:import: the database opens, PRAGMA
#    integrity_check is ok, the import is wholly there or wholly absent, and
#    the next start serves;
#  - the hub's and its clients' clocks 5 minutes apart (libfaketime): TLS
#    with curl and resedgectl, and agent enrollment, both directions.
# GitOps-commit and agent state-directory faults live with those tests.
. "$(dirname "$0")/lib.sh"

# libfaketime is preloaded: with ASan builds it cannot come after the ASan runtime.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
need() { command -v "$1" >/dev/null || { not_ok "$1 is installed (${2:-apt-get install $1})"; return 1; }; }
need sqlite3 || { done_testing; exit 1; }
dbq() { sqlite3 -cmd '.timeout 10000' "$HUB_DIR/hub.db" "$@"; }
# gen_import FILE PREFIX N: N clusters PREFIX-00000.. in 50 new groups /stores/PREFIX/gK.
gen_import() {
    python3 - "$@" <<'PY'
import json, sys
path, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, "w") as f:
    json.dump([{"name": "%s-%05d" % (prefix, i), "groups": ["/stores/%s/g%d" % (prefix, i % 50)],
                "metadata": {"ring": "r%d" % (i % 3)}} for i in range(n)], f)
PY
}
count_clusters() { dbq "SELECT count(*) FROM clusters WHERE name LIKE '$1-%'"; }
count_members() {
    dbq "SELECT count(*) FROM cluster_groups cg JOIN clusters c ON c.id = cg.cluster_id WHERE c.name LIKE '$1-%'"
}
count_groups() { dbq "SELECT count(*) FROM groups WHERE path LIKE '/stores/$1/%' OR path = '/stores/$1'"; }
integrity() { dbq 'PRAGMA integrity_check' 2>&1; }
err_code() { jq -r '.error.code // empty' "$T/body" 2>/dev/null; }

hub_init || { not_ok "hub init"; done_testing; exit 1; }
ORIG_DIR=$HUB_DIR

# ---- 1. the disk fills during an import ---------------------------------
DISK=$T/disk
mounted=
umount_disk() { [ -n "$mounted" ] && { umount -l "$DISK" 2>/dev/null; mounted=; }; }
trap 'umount_disk; _cleanup' EXIT
mkdir -p "$DISK"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=4m tmpfs "$DISK" 2>"$T/mount.err"; then
    mounted=1
    cp -a "$ORIG_DIR" "$DISK/hub"
    HUB_DIR=$DISK/hub
    hub_start || not_ok "hub starts on the small disk"
    gen_import "$T/base.json" base 20
    st=$(status acurl -X POST --data-binary @"$T/base.json" "$HUB_URL/api/v1/clusters:import?create_groups=true")
    check_eq "20 clusters imported before the disk fills" "$st" 201
    dd if=/dev/zero of="$DISK/filler" bs=16k 2>/dev/null
    check_match "the disk is full" "$(df -P "$DISK" | awk 'NR==2 {print $4}')" '^0$'
    gen_import "$T/full.json" full 3000
    st=$(status acurl -X POST --data-binary @"$T/full.json" "$HUB_URL/api/v1/clusters:import?create_groups=true")
    diag "import on a full disk: $st $(head -c 300 "$T/body")"
    check_eq "an import on a full disk fails with 507 Insufficient Storage" "$st" 507
    check_match "the error says the disk is full" "$(err_code) $(jq -r '.error.message // empty' "$T/body")" \
        'no_space|[Nn]o space|disk.*full|full'
    st=$(status acurl -X POST -d '{"name":"full-single"}' "$HUB_URL/api/v1/clusters")
    diag "one create on a full disk: $st $(head -c 200 "$T/body")"
    check_match "a single create on a full disk fails cleanly (or fits)" "$st" '^(201|5[0-9][0-9])$'
    st=$(status acurl "$HUB_URL/api/v1/clusters?limit=1")
    check_eq "reads go on while the disk is full" "$st" 200
    check "the hub is still alive" kill -0 "$HUB_PID"
    check_eq "nothing of the failed import is in the database" "$(count_clusters full)/$(count_groups full)" "0/0"
    check_eq "the database is intact while full" "$(integrity)" ok
    rm -f "$DISK/filler"
    st=$(status acurl -X POST --data-binary @"$T/full.json" "$HUB_URL/api/v1/clusters:import?create_groups=true")
    check_eq "once space is back the same import succeeds" "$st" 201
    check_eq "it is whole: 3000 clusters, 3000 memberships, 51 groups" \
        "$(count_clusters full)/$(count_members full)/$(count_groups full)" "3000/3000/51"
    check_eq "the earlier clusters are untouched" "$(count_clusters base)/$(count_members base)" "20/20"
    check_eq "the database is intact after recovery" "$(integrity)" ok
    hub_stop; check_eq "the hub stops cleanly after the full disk" $? 0
    hub_start && ok "the hub restarts on the recovered disk" || not_ok "the hub restarts on the recovered disk"
    hub_stop
    umount_disk
else
    ok "# SKIP disk-full test: $([ "$(id -u)" -ne 0 ] && echo 'not root (mount -t tmpfs)' || echo "cannot mount a tmpfs ($(head -c 200 "$T/mount.err" 2>/dev/null))")"
fi
HUB_DIR=$ORIG_DIR

# ---- 2. the database locked by another process ---------------------------
hub_start || { not_ok "hub starts"; done_testing; exit 1; }
st=$(status acurl -X POST -d '{"name":"lock-0"}' "$HUB_URL/api/v1/clusters")
check_eq "a write before the lock" "$st" 201
mkfifo "$T/lock.in"
sqlite3 "$HUB_DIR/hub.db" <"$T/lock.in" >"$T/lock.out" 2>&1 &
LOCK_PID=$!
_pids+=("$LOCK_PID")
exec 7>"$T/lock.in"
echo "BEGIN EXCLUSIVE; SELECT 'locked';" >&7
for _ in $(seq 1 50); do grep -q locked "$T/lock.out" && break; sleep 0.1; done
check_eq "another process holds an exclusive lock" "$(head -1 "$T/lock.out")" locked
t0=$(date +%s.%N)
st=$(status acurl -X POST -d '{"name":"lock-1"}' "$HUB_URL/api/v1/clusters")
t1=$(date +%s.%N)
diag "write under the lock: $st in $(printf '%.1f' "$(echo "$t1 - $t0" | bc)") s: $(head -c 200 "$T/body")"
check_eq "a write while the database is locked gets 503" "$st" 503
check_match "with a clear error code" "$(err_code)" '^(busy|locked|try_again|database_busy)$'
check "the answer comes within 10 s (the busy timeout, not a hang)" \
    test "$(echo "$t1 - $t0 < 10" | bc)" -eq 1
st=$(status acurl "$HUB_URL/api/v1/clusters/lock-0")
check_eq "reads still work under the lock (WAL)" "$st" 200
st=$(status acurl "$HUB_URL/healthz")
check_eq "/healthz answers under the lock" "$st" 200
echo "COMMIT;" >&7
exec 7>&-
wait "$LOCK_PID" 2>/dev/null
st=$(status acurl -X POST -d '{"name":"lock-1"}' "$HUB_URL/api/v1/clusters")
check_eq "once the lock is released the write succeeds" "$st" 201
check_eq "nothing of the refused write was kept" "$(count_clusters lock)" 2
check_eq "the database is intact after the lock" "$(integrity)" ok

# ---- 3. kill -9 during a large import ------------------------------------
N=40000
trial=0
inflight=0
for delay in 0.3 0.8 1.5 3; do
    trial=$((trial + 1))
    p=kill$trial
    gen_import "$T/$p.json" "$p" "$N"
    ( status acurl -X POST --data-binary @"$T/$p.json" \
        "$HUB_URL/api/v1/clusters:import?create_groups=true" >"$T/$p.status" 2>/dev/null ) &
    cpid=$!
    sleep "$delay"
    kill -9 "$HUB_PID"
    wait "$HUB_PID" 2>/dev/null
    HUB_PID=
    wait "$cpid" 2>/dev/null
    answered=$(cat "$T/$p.status" 2>/dev/null)
    [ "$answered" = 201 ] || inflight=$((inflight + 1))
    check_eq "kill -9 after ${delay}s of an import of $N: PRAGMA integrity_check" "$(integrity)" ok
    check_eq "  foreign keys hold" "$(dbq 'PRAGMA foreign_key_check' 2>&1)" ""
    got="$(count_clusters "$p")/$(count_members "$p")/$(count_groups "$p")"
    diag "trial $trial: client got '${answered:-nothing}', database has clusters/memberships/groups $got"
    check_match "  the import is wholly there or wholly absent" "$got" "^(0/0/0|$N/$N/51)$"
    if [ "$answered" = 201 ]; then
        check_eq "  an import the client saw succeed is there" "$got" "$N/$N/51"
    fi
    hub_start && ok "  the hub starts again" || not_ok "  the hub starts again"
    st=$(status acurl "$HUB_URL/api/v1/clusters?limit=1")
    check_eq "  and serves the inventory" "$st" 200
done
check "at least one kill landed while the import was in flight" test "$inflight" -gt 0
st=$(status acurl -X POST -d '{"name":"after-kill"}' "$HUB_URL/api/v1/clusters")
check_eq "writes work after the crashes" "$st" 201

# ---- 4. clocks 5 minutes apart (libfaketime) -----------------------------
if need faketime "apt-get install faketime"; then
    FT=(faketime -f)
    for skew in -5m +5m; do
        st=$("${FT[@]}" "$skew" curl -sS -o /dev/null -w '%{http_code}' --max-time 30 \
            --cacert "$HUB_DIR/tls/ca.crt" "$HUB_URL/healthz" 2>"$T/ft.err")
        check_eq "a client ${skew} from the hub verifies the hub's certificate" "$st" 200
        st=$("${FT[@]}" "$skew" bash -c "$(declare -f acurl status); T=$T HUB_DIR=$HUB_DIR; status acurl '$HUB_URL/api/v1/clusters?limit=1'")
        check_eq "an admin ${skew} from the hub is served" "$st" 200
        check "resedgectl ${skew} from the hub lists clusters" \
            "${FT[@]}" "$skew" "$RE_BIN/resedgectl" --config "$CTL_CONF" clusters list
        name=skew-$([ "${skew:0:1}" = - ] && echo behind || echo ahead)
        acurl -X POST -d "{\"name\":\"$name\"}" "$HUB_URL/api/v1/clusters" >/dev/null
        acurl -X POST -d '{"ttl":"1h"}' -o "$T/code.json" "$HUB_URL/api/v1/clusters/$name/enroll-code"
        code=$(jq -r .code "$T/code.json"); fp=$(jq -r .ca_fingerprint "$T/code.json")
        check "an agent ${skew} from the hub enrolls" "${FT[@]}" "$skew" "$RE_BIN/resedge-agent" enroll \
            --hub "$HUB_URL" --code "$code" --ca-fingerprint "$fp" --state-dir "$T/agent-$name"
        crt=$(sed -n 's/^cert *= *//p' "$T/agent-$name/agent.state" 2>/dev/null)
        key=$(sed -n 's/^key *= *//p' "$T/agent-$name/agent.state" 2>/dev/null)
        st=$("${FT[@]}" "$skew" curl -sS -o /dev/null -w '%{http_code}' --max-time 30 \
            --cacert "$HUB_DIR/tls/ca.crt" --cert "$T/agent-$name/$crt" --key "$T/agent-$name/$key" \
            "$HUB_URL/api/v1/clusters/$name" 2>/dev/null)
        check_eq "its new certificate is accepted at once (${skew})" "$st" 200
    done
    # The hub's clock off instead: a second hub whose whole life (init and
    # serve) runs 5 minutes behind; an agent at the right time enrolls and is
    # served with the certificate it was issued. libfaketime is preloaded
    # through env (which execs), so signals reach the hub itself.
    ftlib=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -1)
    if [ -z "${RE_WRAP:-}" ] && [ -n "$ftlib" ]; then
        hub_stop
        HUB_DIR=$T/hub-behind HUB_PORT=$(free_port)
        HUB_URL=https://127.0.0.1:$HUB_PORT
        env LD_PRELOAD="$ftlib" FAKETIME=-5m "$RE_BIN/resedge-hub" init --dir "$HUB_DIR" \
            --listen "127.0.0.1:$HUB_PORT" >"$T/init2.log" 2>&1
        RE_WRAP="env LD_PRELOAD=$ftlib FAKETIME=-5m" hub_start && ok "a hub runs 5 minutes behind" \
            || not_ok "a hub runs 5 minutes behind"
        acurl -X POST -d '{"name":"skew-hub"}' "$HUB_URL/api/v1/clusters" >/dev/null
        acurl -X POST -d '{"ttl":"1h"}' -o "$T/code.json" "$HUB_URL/api/v1/clusters/skew-hub/enroll-code"
        check "an agent 5 minutes ahead of the hub enrolls" "$RE_BIN/resedge-agent" enroll \
            --hub "$HUB_URL" --code "$(jq -r .code "$T/code.json")" \
            --ca-fingerprint "$(jq -r .ca_fingerprint "$T/code.json")" --state-dir "$T/agent-hub"
        crt=$(sed -n 's/^cert *= *//p' "$T/agent-hub/agent.state" 2>/dev/null)
        key=$(sed -n 's/^key *= *//p' "$T/agent-hub/agent.state" 2>/dev/null)
        st=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 --cacert "$HUB_DIR/tls/ca.crt" \
            --cert "$T/agent-hub/$crt" --key "$T/agent-hub/$key" "$HUB_URL/api/v1/clusters/skew-hub")
        check_eq "and is served with it" "$st" 200
    fi
fi

hub_stop; check_eq "the hub stops cleanly at the end" $? 0
check_eq "the database is intact at the end" "$(integrity)" ok
done_testing
