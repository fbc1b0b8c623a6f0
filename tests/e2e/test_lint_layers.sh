#!/usr/bin/env bash
# test_lint_layers.sh - tests/lint_layers.py passes on the real tree and its
# objects, and fails, naming the file and the rule, on planted violations: a
# domain module including an api/ header, a relative escape, an unknown
# folder, and a link cycle between two objects compiled here.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
lint="$top/tests/lint_layers.py"
objs=$(cd "${RE_UNIT:-$top/build/san/tests}/.." && pwd)

out=$(cd "$top" && python3 "$lint" --objects "$objs" 2>&1); rc=$?
check_eq "the real hub tree and its objects ($objs) are clean" "$rc:$out" "0:"

# A scratch tree shaped like the real one.
fake="$T/tree"
mkdir -p "$fake/shared" "$fake/hub/inventory" "$fake/hub/api" "$fake/hub/gitops"
echo '/* */' >"$fake/shared/buf.h"
echo '/* */' >"$fake/hub/hub.h"
printf '#include "buf.h"\n#include "hub.h"\n#include "db.h"\n' >"$fake/hub/inventory/db.c"
echo '/* */' >"$fake/hub/inventory/db.h"
printf '#include "inventory/db.h"\n' >"$fake/hub/gitops/render.c"
printf '#include "inventory/db.h"\n#include "gitops/gitops.h"\n' >"$fake/hub/api/api_x.c"
out=$(python3 "$lint" --root "$fake" 2>&1); rc=$?
check_eq "a scratch tree with one-way includes is clean" "$rc:$out" "0:"

printf '#include "api/api_x.h"\n' >>"$fake/hub/inventory/db.c"
out=$(python3 "$lint" --root "$fake" 2>&1); rc=$?
check_eq "inventory/ including api/ fails with exit 1" "$rc" "1"
check_match "... naming the file, line and rule" "$out" 'hub/inventory/db.c:4: "api/api_x.h": inventory/ may not include api/'

sed -i '$d' "$fake/hub/inventory/db.c"
printf '#include "../api/api_x.h"\n' >>"$fake/hub/gitops/render.c"
out=$(python3 "$lint" --root "$fake" 2>&1); rc=$?
check_eq "a relative escape fails with exit 1" "$rc" "1"
check_match "... and says so" "$out" 'hub/gitops/render.c:2: "../api/api_x.h": no relative escapes'

sed -i '$d' "$fake/hub/gitops/render.c"
printf '#include "render.h"\n' >>"$fake/hub/inventory/db.c"
out=$(python3 "$lint" --root "$fake" 2>&1); rc=$?
check_eq "a bare include of another folder's header fails with exit 1" "$rc" "1"
check_match "... and says where it is not" "$out" '"render.h" is not in hub/inventory/'

sed -i '$d' "$fake/hub/inventory/db.c"
mkdir -p "$fake/hub/misc"
out=$(python3 "$lint" --root "$fake" 2>&1); rc=$?
check_eq "an unknown layer folder fails with exit 1" "$rc" "1"
check_match "... and names it" "$out" 'hub/misc/: a folder lint_layers.py does not know'
rmdir "$fake/hub/misc"

# A link cycle: inventory/a.o calls b(), gitops/b.o calls a().
ob="$T/objs/hub"
mkdir -p "$ob/inventory" "$ob/gitops"
printf 'int b(void);\nint a(void) { return b(); }\n' >"$fake/hub/inventory/a.c"
printf 'int b(void) { return 1; }\n' >"$fake/hub/gitops/b.c"
cc -c -o "$ob/inventory/a.o" "$fake/hub/inventory/a.c" && cc -c -o "$ob/gitops/b.o" "$fake/hub/gitops/b.c"
out=$(python3 "$lint" --root "$fake" --objects "$T/objs" 2>&1); rc=$?
check_eq "one-way calls between objects are clean" "$rc:$out" "0:"
printf 'int a(void);\nint b(void) { return a() + 1; }\n' >"$fake/hub/gitops/b.c"
cc -c -o "$ob/gitops/b.o" "$fake/hub/gitops/b.c"
out=$(python3 "$lint" --root "$fake" --objects "$T/objs" 2>&1); rc=$?
check_eq "a planted link cycle fails with exit 1" "$rc" "1"
check_match "... naming both edges" "$out" 'link cycle among gitops/b, inventory/a: gitops/b -> inventory/a; inventory/a -> gitops/b'

# The object of a moved file (its source gone) does not count.
rm "$fake/hub/gitops/b.c"
out=$(python3 "$lint" --root "$fake" --objects "$T/objs" 2>&1); rc=$?
check_eq "a stale object whose source is gone is not linted" "$rc:$out" "0:"

done_testing
