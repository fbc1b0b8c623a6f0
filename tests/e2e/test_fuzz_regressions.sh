#!/usr/bin/env bash
# test_fuzz_regressions.sh - every input a fuzzer once crashed on
# (tests/fuzz/regressions/<driver>/) and every seed (tests/fuzz/corpus/<driver>/)
# replayed through the same driver entry points, built without libFuzzer
# (tests/fuzz/replay.c) with ASan and UBSan, so a fixed crash that comes back
# fails here. Inputs in tests/fuzz/pending/ (bugs reported, not fixed yet)
# run only with FUZZ_PENDING=1: move them to regressions/ once fixed.
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
fz=$root/tests/fuzz
# The archives are built here (build/replay, incremental) rather than taken
# from the test build: GCC's -fsanitize=undefined leaves out
# float-cast-overflow, the class of bug the fuzzers found in JSON integers.
# Warnings are the main build's business (-w here).
san="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow -fno-omit-frame-pointer"
lib=$root/build/replay
if ! make -s -C "$root" -j2 BUILD=build/replay SANFLAGS="$san" CFLAGS="-O1 -g" WARN=-w \
        build/replay/libresedge.a build/replay/libhub.a build/replay/libagent.a >"$T/make.log" 2>&1; then
    not_ok "the sources build with ASan and UBSan for replay"; sed 's/^/#   /' "$T/make.log" | tail -20
    done_testing; exit 1
fi
CC=${CC:-cc}
pkgs="libuv libcjson sqlite3 libgit2 libcurl yaml-0.1 zlib"
libs="$(pkg-config --libs $pkgs) -lmbedtls -lmbedx509 -lmbedcrypto -lhttp_parser -lpthread -lm"
cflags="$(pkg-config --cflags $pkgs) -std=c11 -D_GNU_SOURCE -DRE_VERSION=\"replay\" -O1 -g $san"
cflags="$cflags -I$root/shared -I$root/hub -I$root/agent -I$fz"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

for src in "$fz"/fuzz_*.c; do
    d=$(basename "$src" .c)
    bin=$T/$d
    # shellcheck disable=SC2086
    if ! $CC $cflags -o "$bin" "$src" "$fz/fuzz.c" "$fz/replay.c" \
        "$lib/libhub.a" "$lib/libagent.a" "$lib/libresedge.a" $libs >"$T/$d.build" 2>&1; then
        not_ok "$d builds as a replay program"; sed 's/^/#   /' "$T/$d.build" | tail -20; continue
    fi
    ok "$d builds as a replay program"
    for set in regressions corpus ${FUZZ_PENDING:+pending}; do
        dir=$fz/$set/$d
        [ -d "$dir" ] || continue
        n=$(find "$dir" -maxdepth 1 -type f | wc -l)
        [ "$n" -gt 0 ] || continue
        if (cd "$T" && "$bin" "$dir") >"$T/$d.$set.log" 2>&1; then
            ok "$d: the $n inputs in tests/fuzz/$set/$d pass"
        else
            not_ok "$d: the $n inputs in tests/fuzz/$set/$d pass"
            grep -E 'replay |runtime error|ERROR|invariant|SUMMARY' "$T/$d.$set.log" | tail -8 | sed 's/^/#   /'
        fi
    done
done
done_testing
