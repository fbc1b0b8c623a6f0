#!/usr/bin/env bash
# test_fuzz_regressions.sh - every input a fuzzer once crashed on
# (tests/fuzz/regressions/<driver>/) and every seed (tests/fuzz/corpus/<driver>/)
# replayed through the same driver entry points, built without libFuzzer
# (tests/fuzz/replay.c) against the archives of this build: with ASan and
# UBSan under `make test`, so a fixed crash that comes back fails here.
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
fz=$root/tests/fuzz
lib=$(cd "${RE_UNIT:-$root/build/san/tests}/.." 2>/dev/null && pwd)
if [ -z "$lib" ] || [ ! -f "$lib/libhub.a" ] || [ ! -f "$lib/libagent.a" ] || [ ! -f "$lib/libresedge.a" ]; then
    not_ok "archives of this build found (RE_UNIT=${RE_UNIT:-unset})"; done_testing; exit 1
fi
CC=${CC:-cc}
pkgs="libuv libcjson sqlite3 libgit2 libcurl yaml-0.1"
libs="$(pkg-config --libs $pkgs) -lmbedtls -lmbedx509 -lmbedcrypto -lhttp_parser -lpthread -lm"
cflags="$(pkg-config --cflags $pkgs) -std=c11 -D_GNU_SOURCE -DRE_VERSION=\"replay\" -O1 -g"
cflags="$cflags -I$root/shared -I$root/hub -I$root/agent -I$fz"
# Match the archives: sanitizers when they were built with them.
if nm "$lib/libresedge.a" 2>/dev/null | grep -q '__asan_'; then
    cflags="$cflags -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    diag "replaying with ASan and UBSan"
fi
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
    for set in regressions corpus; do
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
