#!/usr/bin/env bash
# run.sh - builds the libFuzzer drivers (tests/fuzz/fuzz_*.c) with clang,
# AddressSanitizer and UBSan, runs each for FUZZ_SECONDS on a copy of its
# seed corpus (tests/fuzz/corpus/<driver>/), prints executions per second
# and total runs per driver, and on a crash copies the input into
# tests/fuzz/regressions/<driver>/ (replayed by `make test`) and fails.
# Usage: tests/fuzz/run.sh [driver...]   (default: every driver)
#   FUZZ_SECONDS=60  per driver      FUZZ_JOBS=1  parallel workers per driver
set -u
cd "$(dirname "$0")/../.."
root=$PWD
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
out=build/fuzz
# Drivers keep scratch state (fuzz_api's SQLite database) in TMPDIR: memory is faster.
[ -z "${TMPDIR:-}" ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
CLANG=${CLANG:-clang}

command -v "$CLANG" >/dev/null || { echo "fuzz: $CLANG not found (apt-get install clang)"; exit 1; }
probe=$(mktemp -d)
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }' >"$probe/p.c"
if ! "$CLANG" -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
    echo "fuzz: clang cannot link libFuzzer (apt-get install libclang-rt-14-dev libfuzzer-14-dev):"
    cat "$probe/err"; rm -rf "$probe"; exit 1
fi
rm -rf "$probe"

# The project's sources, instrumented for coverage, as the Makefile's archives.
san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
make -s CC="$CLANG" BUILD=$out SANFLAGS="$san" CFLAGS="-O1 -g" \
    WARN="-Wall -Wno-unused-parameter -Wno-unknown-warning-option" \
    $out/libresedge.a $out/libhub.a $out/libagent.a || { echo "fuzz: building the sources failed"; exit 1; }

pkgs="libuv libcjson sqlite3 libgit2 libcurl yaml-0.1 zlib"
libs="$(pkg-config --libs $pkgs) -lmbedtls -lmbedx509 -lmbedcrypto -lhttp_parser -lpthread -lm"
cflags="$(pkg-config --cflags $pkgs) -std=c11 -D_GNU_SOURCE -DRE_VERSION=\"fuzz\" -Ishared -Ihub -Iagent -Itests/fuzz"

if [ $# -gt 0 ]; then drivers=("$@"); else
    drivers=(); for f in tests/fuzz/fuzz_*.c; do drivers+=("$(basename "$f" .c)"); done
fi
mkdir -p "$out/bin"
rc=0
summary=()
for d in "${drivers[@]}"; do
    d=${d%.c}; d=$(basename "$d")
    src=tests/fuzz/$d.c
    [ -f "$src" ] || { echo "fuzz: no driver $src"; rc=1; continue; }
    echo "== $d: building"
    if ! "$CLANG" -O1 -g $san -fsanitize=fuzzer $cflags -o "$out/bin/$d" "$src" tests/fuzz/fuzz.c \
        "$out/libhub.a" "$out/libagent.a" "$out/libresedge.a" $libs; then
        echo "fuzz: $d does not build"; rc=1; summary+=("$d: BUILD FAILED"); continue
    fi
    work=$out/work/$d
    rm -rf "$work"; mkdir -p "$work/corpus" "$work/artifacts"
    [ -d "tests/fuzz/corpus/$d" ] && cp -r "tests/fuzz/corpus/$d/." "$work/corpus/"
    echo "== $d: fuzzing for ${secs}s"
    extra=()
    [ -f "tests/fuzz/$d.dict" ] && extra+=("-dict=$root/tests/fuzz/$d.dict")
    [ "$jobs" -gt 1 ] && extra+=("-jobs=$jobs" "-workers=$jobs")
    (cd "$work" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$root/$out/bin/$d" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="artifacts/" \
        "${extra[@]}" corpus) >"$work/log" 2>&1
    frc=$?
    runs=$(grep -E '^stat::number_of_executed_units:' "$work/log" | awk '{s+=$2} END {print s+0}')
    eps=$(grep -E '^stat::average_exec_per_sec:' "$work/log" | awk '{s+=$2} END {print s+0}')
    [ "$runs" -gt 0 ] 2>/dev/null || runs=$(grep -oE '^#[0-9]+' "$work/log" | tail -1 | tr -d '#')
    crashes=$(find "$work/artifacts" -type f 2>/dev/null)
    if [ $frc -ne 0 ] && [ -z "$crashes" ]; then
        echo "== $d: FAILED (exit $frc) without a crash input:"
        tail -5 "$work/log" | sed 's/^/   /'
        summary+=("$d: FAILED (exit $frc, see $work/log)")
        rc=1
    elif [ -n "$crashes" ]; then
        mkdir -p "tests/fuzz/regressions/$d"
        for f in $crashes; do cp "$f" "tests/fuzz/regressions/$d/"; done
        echo "== $d: FAILED (exit $frc); inputs copied to tests/fuzz/regressions/$d/:"
        for f in $crashes; do echo "   $(basename "$f")"; done
        grep -E 'ERROR: |SUMMARY: |invariant failed|runtime error' "$work/log" | head -5 | sed 's/^/   /'
        echo "   log: $work/log"
        summary+=("$d: CRASH after ${runs:-?} runs (${eps:-?} exec/s)")
        rc=1
    else
        summary+=("$d: ${runs:-?} runs, ${eps:-?} exec/s, ok")
    fi
done
echo "== fuzz summary (${secs}s per driver)"
printf '%s\n' "${summary[@]}"
exit $rc
