#!/usr/bin/env bash
# gitops.sh - GitOps writer figures (issue 5), printed, never asserted:
# full render + commit of BENCH_N clusters (default 10,000) with 5
# applications each, the hub's peak RSS; a change selecting 1,000 clusters
# committed by the hub vs the same change made with the git command line
# (worktree, add, commit) in the same run, and the ratio; API latency
# (GET /api/v1/clusters/NAME, admin certificate, one keep-alive curl client,
# loopback) while the full render runs, against the same requests with the
# hub idle right after it, and the ratio of the p99s.
#   BENCH_N=2000 RE_BIN=$PWD/bin bash tests/bench/gitops.sh   (on its own)
#   BENCH_ONLY=gitops make bench                           (in the table)
. "$(dirname "$0")/../e2e/lib.sh"

N=${BENCH_N:-10000}
# the change selects SEL clusters; the git CLI copies a cluster outside it
SEL=$(( N >= 2000 ? 1000 : N / 2 ))
# The git CLI baseline copies a folder per cluster into one worktree and
# runs `git add -A` over it: at 100,000 folders (1.5 million files) that
# alone takes many minutes (3 at 10,000), so its worktree is capped at
# 2,000 folders (named in the figure).
CLI_N=${BENCH_CLI_N:-$(( N < 2000 ? N : 2000 ))}
fig() { printf '%-62s  %s\n' "$1" "$2"; }   # two spaces at least: run.sh splits there
req() { acurl -o "$T/body" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
        "$HUB_URL$2" ${3:+--data-binary "$3"}; }
status_json() { acurl "$HUB_URL/api/v1/gitops/status"; }
wait_idle() {   # bounded: a stuck writer must not hang the bench
    local s t_end=$((SECONDS + ${WAIT_MAX:-600}))
    while [ "$SECONDS" -lt "$t_end" ]; do
        s=$(status_json | jq -r '"\(.state) \(.initial_done)"')
        [ "$s" == "idle true" ] && return 0
        sleep 0.05
    done
    echo "the writer did not become idle in ${WAIT_MAX:-600} s: $(status_json)" >&2
    return 1
}
now() { date +%s.%N; }
hub_cpu() { awk '{ printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"' }' /proc/"$HUB_PID"/stat; }
phase() { echo "# $(date +%T) $*"; }   # progress in the log (run.sh skips '#')

# API latency sampler: one client, one request in flight, keep-alive (curl
# reuses its connection across a globbed URL; the hub closes it after
# max_requests_per_connection and curl reconnects). Bounded: LAT_BATCH
# requests per curl, at most LAT_MAX requests and LAT_SECONDS seconds.
# At 100,000 clusters the render runs for minutes: back to back, the sampler
# took a core's worth of TLS and curl from the render it measures (50,000
# requests), so there it pauses LAT_PAUSE s between batches (in the name).
LAT_BATCH=200 LAT_MAX=${LAT_MAX:-50000} LAT_SECONDS=${LAT_SECONDS:-600}
LAT_PAUSE=${LAT_PAUSE:-$([ "$N" -gt 10000 ] && echo 1 || echo 0)}
LAT_NOTE=$([ "$LAT_PAUSE" != 0 ] && echo " ($LAT_BATCH-request batches, ${LAT_PAUSE} s apart)")
lat_batch() {   # lat_batch COUNT: COUNT GETs (at most N), "code seconds" per line
    local hi=$(( ($1 < N ? $1 : N) - 1 ))
    acurl --max-time 120 -o /dev/null -w '%{http_code} %{time_total} %{time_appconnect}\n' \
        "$HUB_URL/api/v1/clusters/store-[000000-$(printf %06d "$hi")]" 2>/dev/null
}
# lat_until STOPFILE OUT: batches until STOPFILE exists (or the bounds).
lat_until() {
    local n=0 t_end=$((SECONDS + LAT_SECONDS))
    while [ ! -e "$1" ] && [ "$n" -lt "$LAT_MAX" ] && [ "$SECONDS" -lt "$t_end" ]; do
        lat_batch "$LAT_BATCH" >>"$2"
        n=$(wc -l <"$2")
        [ "$LAT_PAUSE" = 0 ] || sleep "$LAT_PAUSE"
    done
}
# lat_stats FILE: "p50 p99 count non200" (milliseconds; request to last
# byte: the TLS handshake of each batch's first request is left out)
lat_stats() {
    python3 - "$1" <<'PY'
import sys
v, bad = [], 0
for l in open(sys.argv[1]):
    f = l.split()
    if len(f) != 3: continue
    if f[0] != "200": bad += 1
    v.append((float(f[1]) - float(f[2])) * 1000)
v.sort()
pc = lambda q: v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")
print("%.2f %.2f %d %d" % (pc(0.50), pc(0.99), len(v), bad))
PY
}

phase "hub init, $N clusters"
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
phase "import"
c0=$(hub_cpu)
t0=$(now)
code=$(acurl --max-time 600 -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: text/csv' \
    --data-binary "@$T/fleet.csv" "$HUB_URL/api/v1/clusters:import?create_groups=true")
[ "$code" = 201 ] || { echo "import failed: $code $(head -c 300 "$T/body")"; exit 1; }
# the full render runs now (off the event loop): sample the API meanwhile
: >"$T/lat.busy"
lat_until "$T/lat.stop" "$T/lat.busy" &
LAT_PID=$!
phase "full render"
wait_idle
t1=$(now)
c1=$(hub_cpu)
touch "$T/lat.stop"
wait "$LAT_PID"
# the same requests, the hub idle with the same N clusters loaded (the
# busy file's last batch may reach a few ms past the end of the render)
lat_batch 1000 >"$T/lat.idle"
read -r b50 b99 bn bbad < <(lat_stats "$T/lat.busy")
read -r i50 i99 icnt ibad < <(lat_stats "$T/lat.idle")
fig "clusters" "$N"
fig "full render + commit, wall (import answered .. writer idle)" "$(printf '%.2f' "$(echo "$t1 - $t0" | bc)") s"
fig "... writer batch alone" "$(status_json | jq -r .last_batch_seconds) s"
fig "... hub CPU (import, render, commit, API answers)" "$(printf '%.2f' "$(echo "$c1 - $c0" | bc)") s"
fig "hub peak RSS (VmHWM)" "$(awk '/VmHWM/ {print $2/1024 " MB"}' /proc/"$HUB_PID"/status)"
fig "repository size" "$(du -sh "$HUB_DIR/git" | cut -f1)"
fig "API p99 latency while a full render runs$LAT_NOTE" "$b99 ms"
fig "... API p50 latency while a full render runs$LAT_NOTE" "$b50 ms"
fig "... requests during the render (non-200)" "$bn ($bbad)"
fig "... API p99 latency, hub idle" "$i99 ms"
fig "... API p50 latency, hub idle" "$i50 ms"
fig "... requests idle (non-200)" "$icnt ($ibad)"
fig "... ratio p99 during render / idle" "$(printf '%.1f' "$(echo "scale=3; $b99 / $i99" | bc)")x"

# the change: app-1 v2 for /g/sel
phase "change"
c0=$(hub_cpu)
t0=$(now)
req PATCH /api/v1/applications/app-1 '{"versions":[{"version":"1","ref":"v1","expression":"/g/stores"},{"version":"2","ref":"v2","expression":"/g/sel"}]}' >/dev/null
wait_idle
t1=$(now)
c1=$(hub_cpu)
hub_s=$(status_json | jq -r .last_batch_seconds)
fig "change selecting $SEL clusters: commits" "$(status_json | jq -r .last_batch_changed)"
fig "... clusters rendered for it (of $N)" "$(status_json | jq -r .last_batch_clusters)"
fig "... hub, writer batch" "$hub_s s"
fig "... hub, wall (PATCH .. idle)" "$(printf '%.2f' "$(echo "$t1 - $t0" | bc)") s"
fig "... hub CPU (PATCH .. idle)" "$(printf '%.2f' "$(echo "$c1 - $c0" | bc)") s"

# the same with the git command line: one worktree, a folder per cluster
W=$T/work
phase "git CLI worktree of $CLI_N folders"
git init -q "$W"
GIT_SSL_CAINFO=$HUB_DIR/tls/ca.crt git -c http.sslCAInfo="$HUB_DIR/tls/ca.crt" \
    -c http.sslCert="$HUB_DIR/tls/admin.crt" -c http.sslKey="$HUB_DIR/tls/admin.key" \
    clone -q "$HUB_URL/git/store-$(printf %06d $((SEL + 1))).git" "$T/one"
rm -rf "$T/one/.git"
python3 - "$CLI_N" "$T/one" "$W" <<'PY'
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
fig "... git CLI (edit files, add, commit; worktree of $CLI_N folders)" "$cli_s s"
fig "... ratio git CLI / hub batch" "$(printf '%.2f' "$(echo "scale=3; $cli_s / $hub_s" | bc)")x"
phase "done"
hub_stop
