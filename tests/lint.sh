#!/usr/bin/env bash
# lint.sh - the ban list (functions with no bound or no error report) and cppcheck.
set -u
cd "$(dirname "$0")/.."
rc=0
src=$(git ls-files '*.c' '*.h' 2>/dev/null; git ls-files --others --exclude-standard '*.c' '*.h' 2>/dev/null)
banned='\b(strcpy|strcat|sprintf|vsprintf|strncpy|strtok|atoi|atol|gets)\s*\('
if hits=$(echo "$src" | xargs grep -nE "$banned" 2>/dev/null); then
    echo "banned functions (use re_buf, re_snprintf, re_str_to_u64):"; echo "$hits"; rc=1
fi
# shared/ is borrowed by every binary: it must not reach into hub/ or agent/.
if hits=$(grep -nE '#include "(\.\./)?(hub|agent)/|#include "(server|routes|hub|agent)\.h"' shared/*.[ch]); then
    echo "shared/ includes a daemon header:"; echo "$hits"; rc=1
fi
# The hub's layers: one-way includes per folder, no cycle among the objects
# (tests/lint_layers.py; `make lint` builds first, objects in $LINT_OBJECTS).
if ! out=$(python3 tests/lint_layers.py --objects "${LINT_OBJECTS:-build/rel}" 2>&1); then
    echo "hub layers:"; echo "$out"; rc=1
fi
# ar keeps one member per file name: two hub modules may not share one.
if dups=$(git ls-files 'hub/*.c' | grep -v '^hub/ctl/' | xargs -n1 basename | sort | uniq -d) &&
   [ -n "$dups" ]; then
    echo "hub modules sharing a file name (libhub.a would keep one):"; echo "$dups"; rc=1
fi
if command -v cppcheck >/dev/null; then
    # cppcheck does not read the system headers; the iteration macros it
    # meets in the code must be spelled out for it (else: unknownMacro).
    macros=$(mktemp "${TMPDIR:-/tmp}/lint-macros-XXXXXX.h")
    trap 'rm -f "$macros"' EXIT
    cat >"$macros" <<'EOF'
#define cJSON_ArrayForEach(element, array) \
    for (element = (array != NULL) ? (array)->child : NULL; element != NULL; element = element->next)
EOF
    cppcheck -q --error-exitcode=1 --std=c11 --enable=warning,portability \
        --suppress=missingIncludeSystem --inline-suppr --include="$macros" -Ishared -Ihub \
        shared hub agent 2>&1 || rc=1
else
    echo "cppcheck not installed: skipped (apt-get install cppcheck)"; rc=1
fi
[ $rc -eq 0 ] && echo "lint: clean"
exit $rc
