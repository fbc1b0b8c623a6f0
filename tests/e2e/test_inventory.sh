#!/usr/bin/env bash
# test_inventory.sh - the inventory API with curl against the real hub:
# groups, clusters, namespaces, applications, policies, configuration,
# import, audit, paging, filters, and every bad input of issue 3.
. "$(dirname "$0")/lib.sh"

# req METHOD PATH [BODY [CURL ARGS...]]: sets $code; body in $T/body.
req() {
    local m=$1 p=$2; shift 2
    local args=(-X "$m")
    if [ $# -gt 0 ]; then args+=(-H 'Content-Type: application/json' --data-binary "$1"); shift; fi
    code=$(status acurl "${args[@]}" "$@" "$HUB_URL$p")
}
# expect DESC STATUS [FIELD]: checks $code (and the error's field).
expect() {
    check_eq "$1: status $2" "$code" "$2"
    if [ $# -ge 3 ]; then check_eq "$1: field $3" "$(jq_body '.error.field')" "$3"; fi
}
count() { req GET "/api/v1/$1?limit=1000"; jq_body '.items | length'; }

hub_init || { not_ok "hub init"; done_testing; exit 1; }
hub_conf server.max_body_bytes 16777216 >/dev/null 2>&1 || true
hub_start || { not_ok "hub start"; done_testing; exit 1; }

# ---- groups ----
req POST /api/v1/groups '{"path": "/stores/central/tx"}'
expect "create a group" 201
check_match "Location header" "$(acurl -s -D - -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data-binary '{"path": "/stores/central/ok"}' "$HUB_URL/api/v1/groups" | tr -d '\r')" \
    'Location: /api/v1/groups/[0-9]+'
req GET /api/v1/groups/%2Fstores%2Fcentral
expect "ancestors are created with the group" 200
check_eq "get a group by its encoded path" "$(jq_body .path)" "/stores/central"
for p in /rings/beta /rings/prod /formats/drive-thru /stores/east/ny; do
    req POST /api/v1/groups "{\"path\": \"$p\"}"; expect "create $p" 201
done
req POST /api/v1/groups '{"path": "/stores//tx"}';   expect "empty path segment" 400 path
req POST /api/v1/groups '{"path": "/stores/../tx"}'; expect "'..' path segment" 400 path
req POST /api/v1/groups '{"path": "/rings/beta"}';   expect "duplicate group" 409 path

# ---- clusters ----
req POST /api/v1/clusters '{"name": "store-0042", "groups": ["/stores/central/tx", "/rings/beta"], "metadata": {"format": "drive-thru"}}'
expect "create store-0042" 201
id=$(jq_body .id)
check_eq "created_by is the certificate identity" "$(jq_body .created_by)" "user/admin"
req GET "/api/v1/clusters/$id";        expect "get by id" 200
req GET /api/v1/clusters/store-0042;   expect "get by name" 200
check_eq "groups as given" "$(jq_body '.groups | join(",")')" "/rings/beta,/stores/central/tx"
for n in 1 2 3 4 5 6 7 8 9 10 11 12; do
    name=$(printf 'store-%04d' "$n")
    region=$([ $((n % 2)) -eq 0 ] && echo /stores/central || echo /stores/east/ny)
    ring=$([ $((n % 3)) -eq 0 ] && echo /rings/beta || echo /rings/prod)
    req POST /api/v1/clusters "{\"name\": \"$name\", \"groups\": [\"$region\", \"$ring\"], \"metadata\": {\"ring\": \"${ring#/rings/}\"}}"
    [ "$code" = 201 ] || not_ok "create $name ($code)"
done
check_eq "13 clusters" "$(count clusters)" 13

# bad names, unknown fields, wrong types, duplicates: nothing written
long=$(printf 'a%.0s' $(seq 1 64))
for bad in '"../x"' '"A_B"' "\"$long\"" '""'; do
    req POST /api/v1/clusters "{\"name\": $bad}"; expect "bad name $bad" 400 name
done
req POST /api/v1/clusters '{"name": "store-x", "wheels": 4}';          expect "unknown field" 400 wheels
req POST /api/v1/clusters '{"name": 42}';                              expect "name of the wrong type" 400 name
req POST /api/v1/clusters '{"name": "store-x", "groups": "/rings"}';   expect "groups of the wrong type" 400 groups
req POST /api/v1/clusters '{"name": "store-x", "metadata": {"a": 1}}'; expect "metadata value of the wrong type" 400 metadata.a
req POST /api/v1/clusters '{"name": "store-x", "groups": ["/nope"]}';  expect "unknown group" 400 groups
req POST /api/v1/clusters '{"name": "store-0042"}';                    expect "duplicate cluster" 409 name
req POST /api/v1/clusters '{"name": "store-x", "metadata": {"a": "x\u0007y"}}'
expect "metadata with a control character" 400 metadata.a
req POST /api/v1/clusters 'not json';                                  expect "malformed JSON" 400
deep=$(python3 -c 'print("[" * 200 + "1" + "]" * 200)')
req POST /api/v1/clusters "{\"name\": \"store-x\", \"metadata\": $deep}"; expect "JSON too deep" 400
check_eq "nothing written by the bad requests" "$(count clusters)" 13

# YAML-significant metadata is stored exactly
yaml_value='a: b\n# not a comment\n---\n{"x": 1}\n\t- "quoted" '"'"'single'"'"''
req POST /api/v1/clusters "{\"name\": \"store-yaml\", \"metadata\": {\"note\": \"$(printf '%s' "$yaml_value" | sed 's/"/\\"/g')\"}}"
expect "metadata with YAML-significant text" 201
check_eq "... stored exactly" "$(jq -j .metadata.note "$T/body")" "$(printf "$yaml_value")"

# PATCH with If-Match, ETag
req PATCH /api/v1/clusters/store-0042 '{"description": "Dallas drive-thru"}' -H 'If-Match: 1'
expect "PATCH with the current version" 200
check_eq "version moves on" "$(jq_body .version)" 2
req PATCH /api/v1/clusters/store-0042 '{"description": "x"}' -H 'If-Match: 1'
expect "PATCH with a stale If-Match" 412 If-Match
check_eq "stale PATCH wrote nothing" "$(acurl "$HUB_URL/api/v1/clusters/store-0042" | jq -r .description)" "Dallas drive-thru"
check_match "GET answers an ETag" "$(acurl -s -D - -o /dev/null "$HUB_URL/api/v1/clusters/store-0042" | tr -d '\r')" 'ETag: "2"'

# ---- lists, filters, paging ----
req GET '/api/v1/clusters?expression=/g/rings/beta%20or%20/c/store-0001'
expect "select with an expression" 200
check_eq "... the right clusters" "$(jq_body '[.items[].name] | sort | join(",")')" \
    "store-0001,store-0003,store-0006,store-0009,store-0012,store-0042"
check_eq "... next is null" "$(jq_body .next)" null
req GET '/api/v1/clusters?expression=/g/stores/central%20and%20not%20/m/ring/prod'
check_eq "and not over metadata" "$(jq_body '[.items[].name] | sort | join(",")')" "store-0006,store-0012,store-0042"
req GET '/api/v1/clusters?expression=(/g/rings/beta';   expect "unbalanced parentheses" 400 expression
check_match "... the message names the position" "$(jq_body .error.message)" "position"
req GET '/api/v1/clusters?expression=/x/rings';         expect "unknown prefix" 400 expression
req GET '/api/v1/clusters?expression=/g/rings%20and';   expect "trailing operator" 400 expression
req GET '/api/v1/clusters?group=/stores/east';          expect "group filter" 200
check_eq "... includes descendants" "$(jq_body '.items | length')" 6
req GET '/api/v1/clusters?metadata.ring=beta';          expect "metadata filter" 200
check_eq "... matches" "$(jq_body '.items | length')" 4
req GET '/api/v1/clusters?search=dallas';               expect "search" 200
check_eq "... finds the description" "$(jq_body '.items[0].name')" store-0042
req GET '/api/v1/clusters?limit=0';                     expect "limit 0" 400 limit
req GET '/api/v1/clusters?limit=1000000';               expect "limit 1000000" 400 limit
req GET '/api/v1/clusters?orderby=shoe_size';           expect "bad orderby" 400 orderby
req GET '/api/v1/clusters?next=bm90IGEgY3Vyc29y';      expect "bad cursor" 400 next

walk() {   # walk QUERY: prints every name over all pages
    local q=$1 next
    req GET "/api/v1/clusters?$q"
    while :; do
        jq -r '.items[].name' "$T/body"
        next=$(jq_body .next)
        [ "$next" != null ] || break
        req GET "/api/v1/clusters?limit=4&next=$next"
    done
}
names=$(walk 'limit=4&orderby=name%20desc')
check_eq "cursor walk: every cluster once" "$(echo "$names" | sort -u | wc -l)" 14
check_eq "cursor walk: no repeat" "$(echo "$names" | wc -l)" 14
check_eq "cursor walk: in order" "$names" "$(echo "$names" | sort -r)"

# ---- delete a group holding clusters ----
req DELETE /api/v1/groups/%2Fstores%2Feast;   expect "delete a group with clusters" 409
req DELETE '/api/v1/groups/%2Fstores%2Feast?cascade=true&dry_run=true'
expect "dry run of the cascade" 200
check_eq "... says dry_run" "$(jq_body .dry_run)" true
req GET /api/v1/groups/%2Fstores%2Feast%2Fny; expect "dry run deleted nothing" 200
req DELETE '/api/v1/groups/%2Fstores%2Feast?cascade=true'; expect "cascade delete" 204
req GET /api/v1/groups/%2Fstores%2Feast%2Fny; expect "subgroups went with it" 404
check_eq "clusters stay" "$(count clusters)" 14

# ---- namespaces, applications, policies ----
req POST /api/v1/namespaces '{"name": "pos", "owners": ["user/alice"], "expression": "/g/stores", "quota": {"cpu": "2", "memory": "4Gi", "pods": 30}, "network": {"default_deny": true, "allow_dns": true}}'
expect "create a namespace" 201
req POST /api/v1/namespaces '{"name": "bad", "expression": "/g/a and (/g/b"}'; expect "namespace with a bad expression" 400 expression
req POST /api/v1/namespaces '{"name": "bad", "quota": {"cpu": "many"}}';      expect "bad quota" 400 quota.cpu
req POST /api/v1/applications '{"name": "pos-api", "namespace": "pos", "source": {"git": {"url": "https://git.example.com/pos.git", "path": "deploy"}}, "versions": [{"version": "1", "ref": "v1", "expression": "/g/stores"}, {"version": "2", "ref": "v2", "expression": "/g/rings/beta"}]}'
expect "create an application with two versions" 201
req POST /api/v1/applications '{"name": "ghost", "namespace": "nope"}';        expect "application in a missing namespace" 400 namespace
req POST /api/v1/applications '{"name": "x", "namespace": "pos", "versions": [{"version": "1", "expression": "/g/a or"}]}'
expect "version with a bad expression" 400 'versions[0].expression'
req DELETE /api/v1/namespaces/pos;   expect "namespace with applications" 409
req POST /api/v1/policies '{"name": "no-latest", "yaml": "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: no-latest\n", "namespaces": ["pos"]}'
expect "create a policy" 201
req POST /api/v1/policies '{"name": "broken", "yaml": "a: [b"}';  expect "policy that is not YAML" 400 yaml

# ---- configuration ----
central=$(acurl "$HUB_URL/api/v1/groups/%2Fstores%2Fcentral" | jq -r .id)
req PUT "/api/v1/groups/$central/config/tax" '{"value": "0.0825"}';                expect "set config on a group" 201
req PUT /api/v1/groups/%2Fstores/config/tax '{"value": "0.06"}';                   expect "set config on a group by path" 201
req PUT /api/v1/groups/%2Frings%2Fbeta/config/color '{"value": "blue"}';           expect "set color on beta" 201
req PUT /api/v1/groups/%2Fformats%2Fdrive-thru/config/color '{"value": "red"}';    expect "set color on drive-thru" 201
req PATCH /api/v1/clusters/store-0042 '{"groups": ["/stores/central/tx", "/rings/beta", "/formats/drive-thru"]}'
expect "add a group to a cluster" 200
req GET /api/v1/clusters/store-0042/config;   expect "effective configuration" 200
check_eq "most specific group wins" "$(jq_body .values.tax.value)" "0.0825"
check_eq "... and says where from" "$(jq_body .values.tax.source)" "/stores/central"
check_eq "same-depth disagreement is a conflict" "$(jq_body '.conflicts[0].key')" color
check_eq "... not resolved silently" "$(jq_body '.values.color')" null
req PUT /api/v1/clusters/store-0042/config/color '{"value": "green"}';  expect "set on the cluster" 201
req GET /api/v1/clusters/store-0042/config
check_eq "the cluster's value wins" "$(jq_body .values.color.source)" cluster
req PUT /api/v1/clusters/store-0042/config/bad%20key '{"value": "1"}';  expect "bad config key" 400 key

# ---- import ----
before=$(count clusters)
printf 'name,groups,metadata\nstore-1001,/stores/central,ring=prod\nBAD_NAME,/stores/central,\nstore-1003,/no/such/group,\nstore-1004,/stores/central,ring\n' >"$T/bad.csv"
code=$(status acurl -X POST -H 'Content-Type: text/csv' --data-binary @"$T/bad.csv" "$HUB_URL/api/v1/clusters:import")
check_eq "import with bad rows: 400" "$code" 400
check_eq "... every bad row with its line" "$(jq_body '[.errors[].line] | join(",")')" "3,4,5"
check_eq "... naming the field" "$(jq_body '[.errors[].field] | join(",")')" "name,groups,metadata"
check_eq "... nothing imported" "$(count clusters)" "$before"
printf 'name,groups,metadata,metadata.note\nstore-1001,/stores/west/ca;/rings/prod,ring=prod,"a, ""b"""\nstore-1002,/stores/west/ca,ring=beta,\n' >"$T/good.csv"
code=$(status acurl -X POST -H 'Content-Type: text/csv' --data-binary @"$T/good.csv" "$HUB_URL/api/v1/clusters:import?create_groups=true")
check_eq "CSV import" "$code" 201
check_eq "... created 2" "$(jq_body .created)" 2
check_eq "... quoted CSV fields" "$(acurl "$HUB_URL/api/v1/clusters/store-1001" | jq -r .metadata.note)" 'a, "b"'
req POST /api/v1/clusters:import '[{"name": "store-2001", "groups": ["/stores/west"]}, {"name": "store-2002", "metadata": {"ring": "beta"}}]'
expect "JSON import" 201
check_eq "all imported" "$(count clusters)" $((before + 4))

# ---- audit ----
req GET '/api/v1/audit?entity=cluster&name=store-0042&limit=2'
expect "audit with filters" 200
check_eq "newest first: the last update" "$(jq_body '.items[0].action')" update
check_eq "... who" "$(jq_body '.items[0].actor')" user/admin
check_eq "... before and after" "$(jq_body '.items[0].before.groups | length'),$(jq_body '.items[0].after.groups | length')" "2,3"
next=$(jq_body .next)
req GET "/api/v1/audit?limit=2&next=$next";  expect "audit paging" 200
check_eq "... continues with the older change" "$(jq_body '.items[0].action')" create
req GET '/api/v1/audit?since=tomorrow';      expect "audit with a bad since" 400 since

# ---- dry run ----
req POST '/api/v1/clusters?dry_run=true' '{"name": "store-dry"}'
expect "dry run create" 200
check_eq "... would be 201" "$(jq_body .status)" 201
req GET /api/v1/clusters/store-dry;  expect "... and nothing was created" 404

req DELETE /api/v1/clusters/store-0001;  expect "delete a cluster" 204
req GET /api/v1/clusters/store-0001;     expect "... gone" 404

hub_stop
check_eq "hub stops cleanly" "$?" 0
done_testing
