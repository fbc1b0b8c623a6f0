#!/usr/bin/env bash
# inventory.sh - inventory figures at fleet scale (issue 3), printed, never
# asserted: import of N clusters in 5,000 groups (CSV, one request), an
# expression over all of them, a cursor walk with limit=500 (checked for
# repeats and gaps), and the hub's RSS with them loaded.
# BENCH_SCALE=small uses 10,000 clusters; the default is 100,000.
. "$(dirname "$0")/../e2e/lib.sh"

N=100000
[ "${BENCH_SCALE:-}" = small ] && N=10000
REGIONS="central east west north south mountain pacific gulf plains lakes"

fig() { printf '%-58s %s\n' "$1" "$2"; }
# hub CPU time (user + system) in ms: wall times are noisy on a shared machine
hub_cpu_ms() { awk '{print ($14 + $15) * 10}' /proc/"$HUB_PID"/stat; }

hub_init >/dev/null || { echo "hub init failed"; exit 1; }
hub_conf server.max_body_bytes 268435456
hub_conf server.body_timeout 120s
hub_start || { echo "hub start failed"; exit 1; }

python3 - "$N" "$REGIONS" >"$T/fleet.csv" <<'PY'
import sys
n, regions = int(sys.argv[1]), sys.argv[2].split()
print("name,groups,metadata")
for i in range(n):
    r = regions[i % 10]
    d = (i // 10) % 499
    ring = "beta" if i % 20 == 0 else "prod"
    print(f"store-{i:06d},/stores/{r}/d{d:03d};/rings/{ring},ring={ring};format={'dt' if i % 3 == 0 else 'inline'}")
PY
groups=$(cut -d, -f2 "$T/fleet.csv" | tail -n +2 | tr ';' '\n' | sort -u | wc -l)

c0=$(hub_cpu_ms)
t=$(acurl -o "$T/body" -w '%{time_total}' -X POST -H 'Content-Type: text/csv' \
    --data-binary @"$T/fleet.csv" "$HUB_URL/api/v1/clusters:import?create_groups=true")
c1=$(hub_cpu_ms)
fig "import $N clusters in $groups leaf groups (goal < 10 s)" "${t} s wall, $((c1 - c0)) ms hub CPU ($(jq -r .created "$T/body") created, $(jq -r .groups_created "$T/body") groups)"

expr='/g/stores/central%20and%20not%20/m/ring/prod'
t=$(acurl -o "$T/body" -w '%{time_total}' "$HUB_URL/api/v1/clusters?expression=$expr&limit=1")
fig "first expression after the import (rebuilds the index)" "${t} s wall, $(($(hub_cpu_ms) - c1)) ms hub CPU"
best=999
for i in 1 2 3 4 5; do
    t=$(acurl -o "$T/body" -w '%{time_total}' "$HUB_URL/api/v1/clusters?expression=$expr&limit=1")
    best=$(python3 -c "print(min($best, $t))")
done
fig "'/g/stores/central and not /m/ring/prod' request (goal < 100 ms)" "$(python3 -c "print(round($best * 1000, 1))") ms (best of 5, includes TLS + HTTP)"
acurl -o "$T/body" "$HUB_URL/api/v1/clusters?expression=$expr&limit=1000"
fig "... clusters it selects" "$(jq -r '.items | length' "$T/body")"

start=$(date +%s.%N)
: >"$T/walk"
next=
pages=0
while :; do
    if [ -z "$next" ]; then url="$HUB_URL/api/v1/clusters?limit=500"; else url="$HUB_URL/api/v1/clusters?limit=500&next=$next"; fi
    acurl -o "$T/page" "$url" || break
    jq -r '.items[].name' "$T/page" >>"$T/walk" || break
    pages=$((pages + 1))
    next=$(jq -r .next "$T/page") || break
    [ -n "$next" ] && [ "$next" != null ] && [ "$pages" -le $((N / 500 + 5)) ] || break
done
end=$(date +%s.%N)
total=$(wc -l <"$T/walk"); uniq=$(sort -u "$T/walk" | wc -l)
fig "cursor walk limit=500 over all clusters" "$(python3 -c "print(round($end - $start, 2))") s, $pages pages"
fig "... rows / distinct / expected (no repeat, no gap)" "$total / $uniq / $N"
fig "hub RSS with $N clusters loaded" "$(awk '/VmRSS/ {print $2 / 1024 " MB"}' /proc/"$HUB_PID"/status)"
hub_stop
