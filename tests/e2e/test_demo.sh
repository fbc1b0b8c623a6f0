#!/usr/bin/env bash
# test_demo.sh - `make demo` must keep working as the product grows: run the
# demo script on the built binaries and check what it shows.
. "$(dirname "$0")/lib.sh"
out=$T/demo.out
bin=$RE_BIN
if [ -n "${RE_WRAP:-}" ]; then
    # Under RE_WRAP (valgrind) the demo's hub runs wrapped, its memcheck log
    # checked by done_testing. Its 12 agents and resedgectl stay unwrapped:
    # twelve valgrinded agents on a small machine outlast the demo's fixed
    # waits (test_agent*, test_ctl and test_enroll run those under valgrind).
    bin=$T/demo-bin; mkdir -p "$bin"
    ln -s "$RE_BIN/resedge-agent" "$RE_BIN/resedgectl" "$bin/"
    printf '#!/bin/sh\n[ "$1" = serve ] && exec %s %q "$@"\nexec %q "$@"\n' \
        "$RE_WRAP" "$RE_BIN/resedge-hub" "$RE_BIN/resedge-hub" >"$bin/resedge-hub"
    chmod +x "$bin/resedge-hub"
fi
# TMPDIR=$T: its state directory is this run's own (a demo of another
# concurrent test run would otherwise count as left behind).
if TMPDIR=$T RE_BIN=$bin timeout 170 bash "$RE_TESTS/demo.sh" >"$out" 2>&1; then ok "demo exits 0"; else not_ok "demo exits 0"; tail -30 "$out" | sed 's/^/#   /'; fi
text=$(cat "$out")
check_match "hub answered /healthz" "$text" '\{"status":"ok"\}'
check_match "12 stores imported" "$text" 'imported 12 clusters'
check_match "an enrollment code is printed with the one command" "$text" 'resedge-agent enroll --hub https://127\.0\.0\.1:[0-9]+ --code [0-9A-Z]+\.[0-9A-Z-]+ --ca-fingerprint sha256:[0-9a-f]{64}'
check_match "the agent enrolled" "$text" "enrolled cluster 'store-0001'"
check_eq "selection shows only the beta store of central" \
    "$(grep -A3 'resedgectl select' "$out" | grep -E '^store-|selected')" "store-0001"$'\n'"1 cluster selected"
check_match "the dry run lists the 3 beta stores" "$text" "clusters whose branch would change: 3"
check_match "apps status: the beta stores lag right after the rollout" "$text" '2 +3 +0 +3 +store-0001,store-0005,store-0009'
check_match "apps status: then every beta store runs version 2" "$text" '2 +3 +3 +0 +-'
check_eq "beta stores are online with applied == desired" \
    "$(grep -E '^store-000[159] ' "$out" | awk '$3 == "online" && $4 == $5 {print $1}' | sort -u | wc -l)" 3
check_match "history says what the rollout changed" "$text" 'user/admin +application pos-api: version 2 to /g/rings/beta'
check_match "revert pins the store" "$text" "cluster 'store-0001' reverted and pinned"
check_eq "no demo state left behind" "$(ls -d "$T"/resedge-demo-* 2>/dev/null | wc -l)" 0
done_testing
