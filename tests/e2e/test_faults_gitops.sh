#!/usr/bin/env bash
# test_faults_gitops.sh - the GitOps writer under faults, against the real hub:
#  1. the disk holding DIR/git fills during a commit (a small tmpfs mounted on
#     DIR/git; root only, skipped otherwise), three ways: no bytes left with
#     a filler file (the pack cannot be written; the filler is deleted), the
#     file system remounted as small as its contents (remounted bigger), and
#     no inodes left (the pack fits, the branch refs or HEAD symrefs cannot
#     be created; remounted with more inodes): a clear error in the hub log, /readyz and
#     /gitops/status, resedge_gitops_errors_total rises, the inventory API
#     keeps answering, `git fsck --strict` passes, and once space is back the
#     writer recovers by itself (it retries every few seconds) and every
#     cluster's branch matches the inventory;
#  2. kill -9 of the hub while /api/v1/gitops/status shows a large batch
#     (5,000 clusters) rendering, in three phases (render, pack write, refs):
#     fsck passes, and after the start-up pass every branch is present and
#     matches the inventory;
#  3. the lock files such a kill can leave (a cluster's HEAD.lock with its
#     HEAD symref missing, packed-refs.lock): the writer gets past them and
#     repairs the symref.
# "Matches the inventory" is checked three ways: the API's desired_revision
# of every cluster equals `git rev-parse` of its branch; every branch holds
# the rendered files (kustomization.yaml, namespaces/pos/namespace.yaml, and
# a file with its cluster label, sampled);
# and a fresh start-up pass (a restart renders every cluster and commits
# whatever differs) commits nothing.
. "$(dirname "$0")/lib.sh"

need() { command -v "$1" >/dev/null || { not_ok "$1 is installed"; return 1; }; }
need jq && need git && need sqlite3 || { done_testing; exit 1; }

slow=1; [ -n "${RE_WRAP:-}" ] && slow=10          # valgrind: everything is slower
G() { git --git-dir="$HUB_DIR/git" "$@"; }
head_of() { G rev-parse -q --verify "refs/namespaces/$1/refs/heads/main" 2>/dev/null; }
gstatus() { acurl "$HUB_URL/api/v1/gitops/status"; }
# wait_idle [TENTHS]: until the writer has nothing pending or running.
wait_idle() {
    local i s
    for i in $(seq 1 "${1:-$((600 * slow))}"); do
        s=$(gstatus | jq -r '"\(.state) \(.initial_done)"' 2>/dev/null)
        [ "$s" == "idle true" ] && return 0
        sleep 0.1
    done
    echo "# writer not idle: $(gstatus)"; return 1
}
# metric NAME: its value in /metrics (0 when absent).
metric() {
    acurl "$HUB_URL/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}
readyz() { curl -s -o "$T/readyz" -w '%{http_code}' --max-time 10 --cacert "$HUB_DIR/tls/ca.crt" "$HUB_URL/readyz"; }
# gen_import FILE PREFIX N: N clusters PREFIX-00000.. in /stores/PREFIX/gK (20 groups).
gen_import() {
    python3 - "$@" <<'PY'
import json, sys
path, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, "w") as f:
    json.dump([{"name": "%s-%05d" % (prefix, i), "groups": ["/stores/%s/g%d" % (prefix, i % 20)],
                "metadata": {"ring": "r%d" % (i % 3)}} for i in range(n)], f)
PY
}
import_file() {
    status acurl -X POST --max-time $((120 * slow)) --data-binary @"$1" \
        "$HUB_URL/api/v1/clusters:import?create_groups=true"
}
# all_clusters: "NAME DESIRED_REVISION" for every cluster, through the API (pages of 1000).
all_clusters() {
    local next= q
    while :; do
        q="limit=1000${next:+&next=$next}"
        acurl --max-time $((60 * slow)) "$HUB_URL/api/v1/clusters?$q" >"$T/page.json" || return 1
        jq -r '.items[] | "\(.name) \(.desired_revision)"' "$T/page.json"
        next=$(jq -r '.next // empty | @uri' "$T/page.json")
        [ -n "$next" ] || break
    done
}
# branches_match LABEL: every cluster's branch exists, equals the API's
# desired_revision and holds its rendered files. Prints mismatches.
branches_match() {
    local n bad
    all_clusters >"$T/api.txt" || { echo "cannot list clusters"; return 1; }
    n=$(wc -l <"$T/api.txt")
    [ "$n" -eq "$(sqlite3 "$HUB_DIR/hub.db" 'SELECT count(*) FROM clusters')" ] ||
        { echo "the API lists $n clusters, the database has more"; return 1; }
    G for-each-ref --format='%(refname) %(objectname)' 'refs/namespaces/' |
        sed -n 's#^refs/namespaces/\([^/]*\)/refs/heads/main #\1 #p' | sort >"$T/refs.txt"
    sort "$T/api.txt" >"$T/api.sorted"
    if ! diff -q "$T/api.sorted" "$T/refs.txt" >/dev/null; then
        echo "desired_revision (<) and branches (>) differ:"
        diff "$T/api.sorted" "$T/refs.txt" | head -10
        return 1
    fi
    # every branch's commit is whole and holds the rendered files
    awk '{ print $2 ":kustomization.yaml"; print $2 ":namespaces/pos/namespace.yaml" }' "$T/refs.txt" |
        G cat-file --batch-check='%(objecttype)' >"$T/types.txt"
    bad=$(grep -vc '^blob$' "$T/types.txt")
    [ "$bad" -eq 0 ] || { echo "$bad rendered files missing (kustomization.yaml, namespaces/pos/namespace.yaml)"; return 1; }
    # the cluster label names the right cluster (a sample: every 97th branch)
    while read -r name rev; do
        G grep -q -e "resedge.io/cluster: $name\$" "$rev" -- ||
            { echo "$name: no file of its branch carries its cluster label"; return 1; }
    done < <(awk 'NR % 97 == 1' "$T/refs.txt")
    echo "$n clusters, $n branches, all match"
}
# restart_commits_nothing: a fresh start-up pass finds every branch equal to
# the inventory (--reconcile: after a clean stop the hub would skip it).
restart_commits_nothing() {
    hub_stop || { echo "hub did not stop cleanly"; return 1; }
    hub_start --reconcile || return 1
    wait_idle || return 1
    local c; c=$(metric resedge_gitops_commits_total)
    echo "start-up pass: $(gstatus | jq -c '{last_batch_clusters, last_batch_changed}'), commits $c"
    [ "$(gstatus | jq -r .last_batch_changed)" == 0 ] && [ "$c" == 0 ]
}
fsck() { G fsck --strict --no-dangling; }

hub_init || { not_ok "hub init"; done_testing; exit 1; }
hub_start || { not_ok "hub starts"; done_testing; exit 1; }
st=$(status acurl -X POST -d '{"name":"pos","expression":"/g/stores"}' "$HUB_URL/api/v1/namespaces")
check_eq "namespace pos on every store" "$st" 201
st=$(status acurl -X POST -d '{"name":"menu","namespace":"pos","source":{"git":{"url":"https://git.example.com/menu.git"}},"versions":[{"version":"1","ref":"v1","expression":"/g/stores"}]}' \
    "$HUB_URL/api/v1/applications")
check_eq "application menu on every store" "$st" 201
gen_import "$T/base.json" base 20
check_eq "20 stores imported" "$(import_file "$T/base.json")" 201
wait_idle; check "the writer commits them" test $? -eq 0

# ---- 1. the disk fills during a GitOps commit ------------------------------
GITMNT=$HUB_DIR/git
mounted=
umount_git() { if [ -n "$mounted" ]; then umount -l "$GITMNT" 2>/dev/null; mounted=; fi; }
trap 'umount_git; _cleanup' EXIT
# mount_git OPTIONS: DIR/git onto a fresh tmpfs (the hub is stopped), contents kept.
mount_git() {
    rm -rf "$HUB_DIR/git.disk" && cp -a "$GITMNT" "$HUB_DIR/git.disk" || return 1
    umount_git
    rm -rf "$GITMNT" && mkdir "$GITMNT" && mount -t tmpfs -o "$1" tmpfs "$GITMNT" || return 1
    mounted=1
    cp -a "$HUB_DIR/git.disk/." "$GITMNT/" && rm -rf "$HUB_DIR/git.disk"
}
# unmount_git: DIR/git back onto the real disk (the hub is stopped).
unmount_git() {
    cp -a "$GITMNT" "$HUB_DIR/git.disk" && umount_git && rm -rf "$GITMNT" &&
        mv "$HUB_DIR/git.disk" "$GITMNT"
}
# fill_disk FREE_KB: a filler file leaving about FREE_KB free on DIR/git.
fill_disk() {
    local avail; avail=$(df -Pk "$GITMNT" | awk 'NR == 2 { print $4 }')
    rm -f "$GITMNT/filler"
    [ "$avail" -gt "$1" ] && dd if=/dev/zero of="$GITMNT/filler" bs=1k count=$((avail - $1)) 2>/dev/null
    true
}
# writer_fails LABEL: after a change, the batch fails; checks the signs.
writer_fails() {
    local label=$1 e0=$2 i s
    for i in $(seq 1 $((300 * slow))); do
        s=$(gstatus | jq -r '.last_error // empty')
        [ -n "$s" ] && break
        sleep 0.1
    done
    diag "$label: gitops status: $(gstatus | jq -c '{state, last_error, batches}')"
    check_match "$label: /gitops/status says why the commit failed" "$s" \
        '[Nn]o space|ENOSPC|disk.*full|space left'
    check_match "$label: the hub log says it too" "$(grep 'gitops: batch failed' "$T/hub.log" | tail -1)" \
        '[Nn]o space|ENOSPC|disk.*full|space left'
    check_eq "$label: /readyz fails" "$(readyz)" 503
    check_match "$label: ... naming the GitOps writer and the cause" "$(cat "$T/readyz")" \
        'gitops.*([Nn]o space|ENOSPC|full|space left)'
    check "$label: resedge_gitops_errors_total rises" test "$(metric resedge_gitops_errors_total)" -gt "$e0"
    check_eq "$label: the inventory API answers reads" \
        "$(status acurl "$HUB_URL/api/v1/clusters/base-00001")" 200
    check_eq "$label: ... and writes" \
        "$(status acurl -X PATCH -d '{"metadata":{"note":"'"$label"'"}}' "$HUB_URL/api/v1/clusters/base-00002")" 200
    check "$label: the hub is alive" kill -0 "$HUB_PID"
    check "$label: git fsck --strict on the full disk" fsck
    check_eq "$label: no lock file is left behind" \
        "$(find "$GITMNT" -name '*.lock')" ""
}
# writer_recovers LABEL: after space came back, with no request from anyone.
writer_recovers() {
    local label=$1 i s t0=$SECONDS
    for i in $(seq 1 $((600 * slow))); do
        s=$(gstatus | jq -r '"\(.state) \(.last_error)"')
        [ "$s" == "idle null" ] && break
        sleep 0.1
    done
    diag "$label: recovered in $((SECONDS - t0)) s: $(gstatus | jq -c '{state, last_error, batches}')"
    check_eq "$label: the writer recovers by itself once space is back" "$s" "idle null"
    check_eq "$label: /readyz is ready again" "$(readyz)" 200
    check "$label: git fsck --strict after recovery" fsck
    check "$label: every branch matches the inventory" branches_match
}

# GITOPS_FAULTS=disk or =kill runs one part only (while working on it).
if [[ "${GITOPS_FAULTS:-disk,kill}" != *disk* ]]; then
    :
elif [ "$(id -u)" -ne 0 ]; then
    ok "# SKIP disk-full tests: not root (mount -t tmpfs)"
else
    hub_stop
    if mount_git size=64m 2>"$T/mount.err"; then
        hub_start || not_ok "hub starts with DIR/git on a 64 MiB tmpfs"
        # -- 1a. no bytes left (a filler file): the pack cannot be written;
        #        space comes back when the filler is deleted
        fill_disk 8
        e0=$(metric resedge_gitops_errors_total)
        gen_import "$T/full.json" full 1000
        check_eq "bytes: an import of 1000 stores while DIR/git is full succeeds (the inventory is elsewhere)" \
            "$(import_file "$T/full.json")" 201
        writer_fails bytes "$e0"
        check_eq "bytes: the failed batch moved no branch" "$(G for-each-ref 'refs/namespaces/full-*/refs/heads/main' | wc -l)" 0
        check_eq "bytes: the earlier branches are intact" \
            "$(G for-each-ref 'refs/namespaces/base-*/refs/heads/main' | wc -l)" 20
        rm -f "$GITMNT/filler"
        writer_recovers bytes
        leftovers=$(find "$GITMNT/objects" -name 'tmp*' -o -name 'pack_git2_*' -o -name '*.lock' | head -5)
        check_eq "bytes: no temporary pack is left behind" "$leftovers" ""

        # -- 1b. the file system shrunk to what it holds: a change for every
        #        store fails; space comes back by remounting bigger
        used=$(df -Pk "$GITMNT" | awk 'NR == 2 { print $3 }')
        mount -o remount,size=$((used + 8))k "$GITMNT"
        diag "remount: $(df -Pk "$GITMNT" | awk 'NR == 2 { print $4 }') KiB free"
        e0=$(metric resedge_gitops_errors_total)
        st=$(status acurl -X PATCH -d '{"versions":[{"version":"2","ref":"v2","expression":"/g/stores"}]}' \
            "$HUB_URL/api/v1/applications/menu")
        check_eq "remount: a new version of menu for all 1020 stores while DIR/git is full" "$st" 200
        writer_fails remount "$e0"
        mount -o remount,size=128m "$GITMNT"
        writer_recovers remount
        check_match "remount: every store runs the new version (one sampled)" \
            "$(G show "$(head_of full-00999):apps/menu/gitrepository.yaml")" 'v2'

        # -- 1c. no inodes left: the pack fits, the branch refs cannot be
        #        created (some chunks of branches may move, each to a whole
        #        commit); space comes back by remounting with more inodes
        iused=$(df -Pi "$GITMNT" | awk 'NR == 2 { print $3 }')
        mount -o remount,nr_inodes=$((iused + 12)) "$GITMNT"
        diag "inodes: $(df -Pi "$GITMNT" | awk 'NR == 2 { print $4 }') inodes free"
        e0=$(metric resedge_gitops_errors_total)
        gen_import "$T/inode.json" inode 1000
        check_eq "inodes: an import of 1000 stores while DIR/git has no inode left succeeds" \
            "$(import_file "$T/inode.json")" 201
        writer_fails inodes "$e0"
        diag "inodes: branches moved before the disk filled: $(G for-each-ref 'refs/namespaces/inode-*/refs/heads/main' | wc -l) of 1000"
        mount -o remount,nr_inodes=1000000 "$GITMNT"
        writer_recovers inodes

        check "after the full disks, a start-up pass commits nothing (branches = inventory)" restart_commits_nothing
        hub_stop
        unmount_git || not_ok "DIR/git back onto the real disk"
        hub_start || not_ok "the hub starts again with DIR/git on the real disk"
    else
        not_ok "mount a tmpfs on DIR/git: $(cat "$T/mount.err")"
        hub_start
    fi
fi

# ---- 2. kill -9 in the middle of a GitOps commit of a large batch -----------
# Each trial on a fresh hub: N stores imported at once, one batch renders and
# commits them all; the hub is killed in one phase of that batch:
#   render - while /gitops/status shows the batch rendering;
#   pack   - while the batch's pack is being written (its temporary file exists);
#   refs   - once the first of the new branches or their HEAD symrefs
#            appears (branches moved, HEAD symrefs being written).
N=${GITOPS_FAULT_N:-$([ "$slow" -gt 1 ] && echo 1000 || echo 2000)}
killed_mid=0
# caught PHASE PREFIX: polls (bash builtins only, so the hub keeps the CPU)
# until the batch is in PHASE; 1 when the batch ended first or 120 s passed.
caught() {
    local phase=$1 p=$2 t_end=$((SECONDS + 120 * slow)) i=0
    while [ $SECONDS -lt $t_end ]; do
        case $phase in
        render) [ "$(gstatus | jq -r .state)" == rendering ] && return 0; sleep 0.02 ;;
        pack) compgen -G "$HUB_DIR/git/objects/pack/pack_git2_*" >/dev/null && return 0 ;;
        refs) compgen -G "$HUB_DIR/git/refs/namespaces/$p-*" >/dev/null && return 0
              i=$((i + 1))
              [ $((i % 500)) -eq 0 ] && grep -q "/$p-" "$HUB_DIR/git/packed-refs" 2>/dev/null && return 0 ;;
        esac
        [ $((i++ % 200)) -eq 0 ] && [ "$(gstatus | jq -r '"\(.state) \(.batches)"')" == "idle $b1" ] && return 1
    done
    return 1
}
phases="render pack refs"; [[ "${GITOPS_FAULTS:-kill}" == *kill* ]] || phases=
for phase in $phases; do
    p=kill-$phase
    hub_stop
    umount_git; rm -rf "$T/hub"
    hub_init || { not_ok "$phase: hub init"; break; }
    hub_start || { not_ok "$phase: hub starts"; break; }
    acurl -X POST -d '{"name":"pos","expression":"/g/stores"}' "$HUB_URL/api/v1/namespaces" >/dev/null
    gen_import "$T/$p.json" "$p" "$N"
    wait_idle
    b1=$(( $(gstatus | jq -r .batches) + 1 ))
    check_eq "$phase: import $N stores" "$(import_file "$T/$p.json")" 201
    if [ "$phase" == render ]; then
        caught render "$p" && sleep "$(echo "scale=2; 0.5 * $slow" | bc)"
    else
        caught "$phase" "$p"
    fi
    s=$(gstatus | jq -r .state)
    kill -9 "$HUB_PID"; wait "$HUB_PID" 2>/dev/null; HUB_PID=
    nb=$(G for-each-ref "refs/namespaces/$p-*/refs/heads/main" | wc -l)
    diag "$phase: writer '$s' at the kill; $nb of $N new branches were in place"
    [ "$s" == rendering ] && [ "$nb" -lt "$N" ] && killed_mid=$((killed_mid + 1))
    check "$phase: git fsck --strict right after the kill" fsck
    locks=$(find "$HUB_DIR/git" -name '*.lock')
    [ -n "$locks" ] && diag "$phase: lock files left by the kill: $(echo $locks)"
    hub_start || { not_ok "$phase: the hub starts again"; break; }
    wait_idle
    r=$?
    if [ -n "$locks" ]; then
        check "$phase: the writer gets past lock files left by the kill by itself" test "$r" -eq 0
        if [ "$r" -ne 0 ]; then
            diag "$phase: writer stuck: $(gstatus | jq -r .last_error); removing the stale locks by hand"
            rm -f $locks
            wait_idle; r=$?
        fi
    fi
    check "$phase: the start-up pass completes" test "$r" -eq 0
    check_eq "$phase: no lock file is left" "$(find "$HUB_DIR/git" -name '*.lock')" ""
    check "$phase: every branch present and matching the inventory" branches_match
    check "$phase: git fsck --strict after the start-up pass" fsck
    leftovers=$(find "$HUB_DIR/git/objects" -name 'tmp*' -o -name 'pack_git2_*' | head -5)
    check "$phase: no temporary pack file of the killed batch is left in objects/pack" test -z "$leftovers"
    check "$phase: another start-up pass commits nothing (branches = inventory)" restart_commits_nothing
done
[ -n "$phases" ] && check "at least one kill landed while a batch was rendering and before its branches moved" \
    test "$killed_mid" -ge 1

# ---- 3. lock files a killed writer leaves behind, made deterministic --------
# A kill -9 between creating a lock and renaming it leaves the lock (the refs
# trial above hits that window only sometimes): here a cluster's HEAD symref
# is missing with its HEAD.lock present, and packed-refs.lock is left too,
# with the marker file a batch keeps while it runs (gitstore.c: only then does
# the start-up sweep walk every namespace).
if [ -n "$phases" ]; then
    c=kill-refs-00001
    hub_stop
    check_eq "a clean stop leaves no batch marker" "$(ls "$HUB_DIR/git" | grep -c '^resedge-batch\.')" 0
    rm -f "$HUB_DIR/git/refs/namespaces/$c/HEAD"
    : >"$HUB_DIR/git/refs/namespaces/$c/HEAD.lock"
    : >"$HUB_DIR/git/packed-refs.lock"
    : >"$HUB_DIR/git/resedge-batch.99999.0"
    hub_start || not_ok "stale locks: the hub starts"
    wait_idle $((300 * slow)); r=$?
    check "stale locks: the writer gets past HEAD.lock and packed-refs.lock left by a killed writer" \
        test "$r" -eq 0
    if [ "$r" -ne 0 ]; then
        diag "stale locks: writer stuck: $(gstatus | jq -r .last_error); removing them by hand"
        rm -f "$HUB_DIR/git/refs/namespaces/$c/HEAD.lock" "$HUB_DIR/git/packed-refs.lock"
        wait_idle; r=$?
    fi
    check "stale locks: the writer is idle" test "$r" -eq 0
    check_eq "stale locks: the missing HEAD symref is repaired" \
        "$(G symbolic-ref "refs/namespaces/$c/HEAD" 2>&1)" "refs/namespaces/$c/refs/heads/main"
    check_eq "stale locks: no lock file is left" "$(find "$HUB_DIR/git" -name '*.lock')" ""
    check_eq "stale locks: the killed writer's batch marker is gone" \
        "$(ls "$HUB_DIR/git" | grep -c '^resedge-batch\.99999')" 0
    check "stale locks: git fsck --strict" fsck
fi

hub_stop; check_eq "the hub stops cleanly at the end" $? 0
done_testing
