#!/usr/bin/env bash
# gitops.sh - GitOps writer figures (issue 5), printed, never asserted:
# full render + commit of BENCH_N clusters (default 10,000) with 5
# applications each, the hub's peak RSS; a change selecting 1,000 clusters
# committed by the hub vs the same change made with the git command line
# (worktree, add, commit) in the same run, and the ratio.
. "$(dirname "$0")/../e2e/lib.sh"

N=${BENCH_N:-10000}
SEL=1000
fig() { printf '%-62s %s\n' "$1" "$2"; }
req() { acurl -o "$T/body" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
        "$HUB_URL$2" ${3:+--data-binary "$3"}; }
status_json() { acurl "$HUB_URL/api/v1/gitops/status"; }
wait_idle() {
    local s
    while :; do
        s=$(status_json | jq -r '"\(.state) \(.initial_done)"')
        [ "$s" == "idle true" ] && return 0
        sleep 0.05
    done
}
now() { date +%s.%N; }

hub_init >/dev/null || { echo "hub init failed"; exit 1; }
hub_conf server.max_body_bytes 268435456
hub_conf server.body_timeout 120s
hub_start || { echo "hub start failed"; exit 1; }

# 5 applications in one namespace; "sel" is in /g/sel (the first SEL stores)
req POST /api/v1/namespaces '{"name":"pos","expression":"/g/stores"}' >/dev/null
for a in 1 2 3 4 5; do
    req POST /api/v1/applications "{\"name\":\"app-$a\",\"namespace\":\"pos\",\"source\":{\"git\":{\"url\":\"https://git.example.com/app-$a.git\",\"path\":\"deploy\"}},\"versions\":[{\"version\":\"1\",\"ref\":\"v1\",\"expression\":\"/g/stores\"}]}" >/dev/null
done
python3 - "$N" "$SEL" >"$T/fleet.csv" <<'PY'
import sys
n, sel = int(sys.argv[1]), int(sys.argv[2])
print("name,groups,metadata")
for i in range(n):
    g = f"/stores/r{i % 10}/d{(i // 10) % 100:03d}" + (";/sel" if i < sel else "")
    print(f"store-{i:06d},{g},ring=prod")
PY
wait_idle
t0=$(now)
code=$(acurl --max-time 600 -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: text/csv' \
    --data-binary "@$T/fleet.csv" "$HUB_URL/api/v1/clusters:import?create_groups=true")
[ "$code" = 201 ] || { echo "import failed: $code $(head -c 300 "$T/body")"; exit 1; }
wait_idle
t1=$(now)
fig "clusters" "$N"
fig "full render + commit, wall (import answered .. writer idle)" "$(echo "$t1 - $t0" | bc) s"
fig "... writer batch alone" "$(status_json | jq -r .last_batch_seconds) s"
fig "hub peak RSS (VmHWM)" "$(awk '/VmHWM/ {print $2/1024 " MB"}' /proc/"$HUB_PID"/status)"
fig "repository size" "$(du -sh "$HUB_DIR/git" | cut -f1)"

# the change: app-1 v2 for /g/sel
t0=$(now)
req PATCH /api/v1/applications/app-1 '{"versions":[{"version":"1","ref":"v1","expression":"/g/stores"},{"version":"2","ref":"v2","expression":"/g/sel"}]}' >/dev/null
wait_idle
t1=$(now)
hub_s=$(status_json | jq -r .last_batch_seconds)
fig "change selecting $SEL clusters: commits" "$(status_json | jq -r .last_batch_changed)"
fig "... hub, writer batch" "$hub_s s"
fig "... hub, wall (PATCH .. idle)" "$(echo "$t1 - $t0" | bc) s"

# the same with the git command line: one worktree, a folder per cluster
W=$T/work
git init -q "$W"
GIT_SSL_CAINFO=$HUB_DIR/tls/ca.crt git -c http.sslCAInfo="$HUB_DIR/tls/ca.crt" \
    -c http.sslCert="$HUB_DIR/tls/admin.crt" -c http.sslKey="$HUB_DIR/tls/admin.key" \
    clone -q "$HUB_URL/git/store-$(printf %06d $((SEL + 1))).git" "$T/one"
rm -rf "$T/one/.git"
python3 - "$N" "$T/one" "$W" <<'PY'
import os, shutil, sys
n, src, dst = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for i in range(n):
    shutil.copytree(src, os.path.join(dst, f"store-{i:06d}"))
PY
(cd "$W" && git add -A && git -c user.name=b -c user.email=b@b commit -q -m init)
t0=$(now)
(cd "$W" && for i in $(seq 0 $((SEL - 1))); do
    f=store-$(printf %06d "$i")/apps/app-1/gitrepository.yaml
    sed -i 's/tag: v1/tag: v2/' "$f"
    sed -i "s/resedge.io\/version: '1'/resedge.io\/version: '2'/" "store-$(printf %06d "$i")/apps/app-1/kustomization.yaml"
done && git add -A && git -c user.name=b -c user.email=b@b commit -q -m "app-1 v2 to /g/sel")
t1=$(now)
cli_s=$(echo "$t1 - $t0" | bc)
fig "... git CLI (edit files, add, commit; worktree of $N folders)" "$cli_s s"
fig "... ratio git CLI / hub batch" "$(echo "scale=1; $cli_s / $hub_s" | bc)x"
hub_stop
