#!/usr/bin/env bash
# test_json_strict.sh - the hub's JSON reader is strict (Tenancy finding 7):
# a raw NUL byte, a \u0000 escape and a repeated member name are refused
# with 400 before anything is written; an escaped backslash before "u0000"
# is plain text. curl against the real hub.
. "$(dirname "$0")/lib.sh"

# req METHOD PATH BODY-FILE: sets $code; body in $T/body.
req() {
    code=$(status acurl -X "$1" -H 'Content-Type: application/json' --data-binary "@$3" "$HUB_URL$2")
}
# get PATH: sets $code.
get() { code=$(status acurl "$HUB_URL$1"); }
count() { get "/api/v1/clusters?limit=1000"; jq_body '.items | length'; }
# body TEXT: writes TEXT (printf format: \0 is a NUL byte) to $T/req.json.
body() { printf "$1" >"$T/req.json"; }

hub_init || { not_ok "hub init"; done_testing; exit 1; }
hub_start || { not_ok "hub start"; done_testing; exit 1; }

before=$(count)

# A repeated "name": cJSON kept the first, so this created store-a.
body '{"name": "store-a", "name": "store-b"}'
req POST /api/v1/clusters "$T/req.json"
check_eq "duplicate top-level key: 400" "$code" 400
check_eq "duplicate top-level key: error code" "$(jq_body .error.code)" parse_error
check_match "duplicate top-level key: the position of the second 'name', and the key" \
    "$(jq_body .error.message)" "byte 20: duplicate key 'name'"
check_eq "... named as the field" "$(jq_body .error.field)" name
get /api/v1/clusters/store-a; check_eq "duplicate key: store-a not created" "$code" 404
get /api/v1/clusters/store-b; check_eq "duplicate key: store-b not created" "$code" 404

body '{"name": "store-c", "metadata": {"ring": "beta", "ring": "prod"}}'
req POST /api/v1/clusters "$T/req.json"
check_eq "duplicate nested key: 400" "$code" 400
check_eq "duplicate nested key: error code" "$(jq_body .error.code)" parse_error
check_eq "... naming the key" "$(jq_body .error.field)" ring
get /api/v1/clusters/store-c; check_eq "duplicate nested key: store-c not created" "$code" 404

# A NUL byte: the C string ended at "store-d", which was created.
body '{"name": "store-d\0evil"}'
req POST /api/v1/clusters "$T/req.json"
check_eq "raw NUL in a string: 400" "$code" 400
check_match "raw NUL: its position" "$(jq_body .error.message)" 'byte 17: NUL byte$'
get /api/v1/clusters/store-d; check_eq "raw NUL: store-d not created" "$code" 404

body '{"name": "store-e"}\0'
req POST /api/v1/clusters "$T/req.json"
check_eq "raw NUL after the value: 400" "$code" 400
get /api/v1/clusters/store-e; check_eq "raw NUL after the value: store-e not created" "$code" 404

body '{"name": "store-f\\u0000x"}'
req POST /api/v1/clusters "$T/req.json"
check_eq "\\u0000 in a string: 400" "$code" 400
check_match "\\u0000: its position" "$(jq_body .error.message)" 'byte 17: .u0000 in a string$'
get /api/v1/clusters/store-f; check_eq "\\u0000: store-f not created" "$code" 404

body '{"name": "store-g", "metadata": {"k\\u0000": "v"}}'
req POST /api/v1/clusters "$T/req.json"
check_eq "\\u0000 in a key: 400" "$code" 400

check_eq "nothing written by the refused requests" "$(count)" "$before"

# An escaped backslash, then the text u0000: no NUL, accepted as it is.
body '{"name": "store-h", "metadata": {"path": "C:\\\\u0000"}}'
check_eq "request body holds an escaped backslash" "$(cat "$T/req.json")" \
    '{"name": "store-h", "metadata": {"path": "C:\\u0000"}}'
req POST /api/v1/clusters "$T/req.json"
check_eq "escaped backslash then u0000: 201" "$code" 201
get /api/v1/clusters/store-h
check_eq "escaped backslash then u0000: stored as text" "$(jq_body .metadata.path)" 'C:\u0000'

# The same name in different objects is fine.
body '{"name": "store-i", "metadata": {"name": "x"}}'
req POST /api/v1/clusters "$T/req.json"
check_eq "same name in nested objects: 201" "$code" 201

# The import endpoint reads JSON through the same parser.
body '[{"name": "store-j"}, {"name": "store-k", "name": "store-l"}]'
req POST /api/v1/clusters:import "$T/req.json"
check_eq "import with a duplicate key: 400" "$code" 400
get /api/v1/clusters/store-j; check_eq "import refused whole: store-j not created" "$code" 404

done_testing
