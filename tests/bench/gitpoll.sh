#!/usr/bin/env bash
# gitpoll.sh - no-change polls of the hub's git endpoint per second: many
# stores asking GET /git/<cluster>.git/info/refs (protocol v0, what Flux does
# every interval) over keep-alive mutual-TLS connections, against a
# repository holding CLUSTERS namespaced branches (packed refs). Also times
# v2 ls-refs (in-process) and real fetches (spawned git), for contrast.
# make bench runs it with TMPDIR=/dev/shm (see run.sh): the timed requests
# only read the repository, already in the page cache either way.
#   CLUSTERS=10000 REQUESTS=20000 CONCURRENCY=64 bash tests/bench/gitpoll.sh
. "$(dirname "$0")/../e2e/lib.sh"

CLUSTERS=${CLUSTERS:-10000}
REQUESTS=${REQUESTS:-20000}
CONCURRENCY=${CONCURRENCY:-64}
V2_REQUESTS=${V2_REQUESTS:-200}   # fetches

hub_init || exit 1
REPO=$HUB_DIR/git
[ -d "$REPO" ] || git init -q --bare "$REPO"
W=$T/w
git init -q "$W"
(cd "$W" && echo x >f && git add f && git -c user.name=b -c user.email=b@b commit -qm base) || exit 1
TIP=$(git -C "$W" rev-parse HEAD)
git -C "$W" push -q "$REPO" "$TIP:refs/heads/base"
rm -f "$REPO/refs/heads/base"      # now in packed-refs, written below
# One branch and one HEAD symref per cluster, refs packed as the writer keeps
# them. Written directly: `git update-ref` of 100k loose refs takes minutes.
python3 - "$REPO" "$CLUSTERS" "$TIP" <<'PY'
import os, sys
repo, n, tip = sys.argv[1], int(sys.argv[2]), sys.argv[3]
names = sorted(f"refs/namespaces/store-{i}/refs/heads/main" for i in range(1, n + 1))
with open(f"{repo}/packed-refs", "w") as f:
    f.write("# pack-refs with: peeled fully-peeled sorted \n")
    for r in ["refs/heads/base"] + names:
        f.write(f"{tip} {r}\n")
for i in range(1, n + 1):
    d = f"{repo}/refs/namespaces/store-{i}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/HEAD", "w") as f:
        f.write(f"ref: refs/namespaces/store-{i}/refs/heads/main\n")
PY
echo "# repository: $CLUSTERS clusters, $(wc -l <"$REPO/packed-refs") packed refs"

hub_start || exit 1

cfg=$T/curl.cfg
{
    echo "cacert = \"$HUB_DIR/tls/ca.crt\""
    echo "cert = \"$HUB_DIR/tls/admin.crt\""
    echo "key = \"$HUB_DIR/tls/admin.key\""
    echo "silent"
    echo "write-out = \"%{http_code}\\n\""
    for i in $(seq 1 "$REQUESTS"); do
        c=$(( (i * 7919) % CLUSTERS + 1 ))
        echo "url = \"$HUB_URL/git/store-$c.git/info/refs?service=git-upload-pack\""
        echo "output = /dev/null"
    done
} >"$cfg"

# CPU seconds the hub used (utime + stime), independent of what else runs.
hub_cpu() { awk -v t="$(getconf CLK_TCK)" '{ print ($14 + $15) / t }' "/proc/$HUB_PID/stat"; }
cpu0=$(hub_cpu)
start=$(date +%s.%N)
curl --parallel --parallel-max "$CONCURRENCY" -K "$cfg" >"$T/codes" 2>"$T/curl.err"
end=$(date +%s.%N)
cpu1=$(hub_cpu)
okn=$(grep -c '^200$' "$T/codes")
secs=$(echo "$end - $start" | bc -l)
rate=$(echo "$okn / $secs" | bc -l)
printf 'git no-change poll (v0 info/refs, in-process): %d of %d answered 200 in %.2f s: %.0f polls/s (%d keep-alive clients, %d clusters)\n' \
    "$okn" "$REQUESTS" "$secs" "$rate" "$CONCURRENCY" "$CLUSTERS"
cpu_us=$(echo "($cpu1 - $cpu0) * 1000000 / $okn" | bc -l)
printf 'hub CPU per poll: %.0f us (TLS, HTTP, auth and the ref lookup): %.0f polls/s per core; %d cores here, load %s\n' \
    "$cpu_us" "$(echo "1000000 / $cpu_us" | bc -l)" "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)"
printf 'goal: 2000 polls/s (100,000 stores every minute need 1,700/s): %s\n' \
    "$( (( $(printf '%.0f' "$rate") >= 2000 )) && echo met || echo NOT met)"

# The rest of a v2 poll: POST ls-refs, answered in-process too.
# post_run NAME N PARALLEL BODY-FILE [HEADER]: POSTs BODY N times.
post_run() {
    local name=$1 n=$2 par=$3 body=$4 hdr=${5:-}
    local c=$T/post.cfg i
    {
        head -5 "$cfg"
        echo "header = \"Content-Type: application/x-git-upload-pack-request\""
        [ -n "$hdr" ] && echo "header = \"$hdr\""
        echo "data-binary = \"@$body\""
        for i in $(seq 1 "$n"); do
            echo "url = \"$HUB_URL/git/store-$(( i % CLUSTERS + 1 )).git/git-upload-pack\""
            echo "output = /dev/null"
        done
    } >"$c"
    local s0 s1 okn busy
    s0=$(date +%s.%N)
    curl --parallel --parallel-max "$par" -K "$c" >"$T/codes2" 2>>"$T/curl.err"
    s1=$(date +%s.%N)
    okn=$(grep -c '^200$' "$T/codes2")
    busy=$(grep -c '^503$' "$T/codes2")
    printf '%s: %d of %d answered 200 (%d 503 busy) in %.2f s: %.0f/s\n' "$name" "$okn" "$n" \
        "$busy" "$(echo "$s1 - $s0" | bc -l)" "$(echo "$okn / ($s1 - $s0)" | bc -l)"
}
printf '0014command=ls-refs\n0015agent=git/2.39.5\n0017object-format=sha1\n0001000csymrefs\n0014ref-prefix HEAD\n001bref-prefix refs/heads/\n0000' >"$T/lsrefs"
post_run "git v2 ls-refs (in-process)" "$((REQUESTS / 4))" "$CONCURRENCY" "$T/lsrefs" "Git-Protocol: version=2"
# A real fetch (want the tip, done) spawns git http-backend + upload-pack.
printf '0032want %s\n00000009done\n' "$TIP" >"$T/fetch"
post_run "git fetch of one commit (spawned git, at most 2 per core)" "$V2_REQUESTS" 4 "$T/fetch"
echo "# hub RSS: $(ps -o rss= -p "$HUB_PID" | tr -d ' ') KB"
hub_stop
