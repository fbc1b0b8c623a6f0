#!/usr/bin/env bash
# test_roles.sh - every role against the inventory API with real client
# certificates: what each may do, and a 403 JSON for what it may not.
. "$(dirname "$0")/lib.sh"

as_curl() { ucurl "$AS_PREFIX" "$@"; }
# as WHO METHOD PATH [BODY]: WHO is admin or a prefix under $T; sets $code.
as() {
    local who=$1 m=$2 p=$3; shift 3
    local args=(-X "$m")
    [ $# -gt 0 ] && args+=(-H 'Content-Type: application/json' --data-binary "$1")
    if [ "$who" = admin ]; then
        code=$(status acurl "${args[@]}" "$HUB_URL$p")
    else
        AS_PREFIX=$T/$who
        code=$(status as_curl "${args[@]}" "$HUB_URL$p")
    fi
}
# may WHO METHOD PATH [BODY] EXPECTED: one TAP line.
may() {
    local who=$1 m=$2 p=$3 body= want
    if [ $# -eq 5 ]; then body=$4; want=$5; else want=$4; fi
    if [ -n "$body" ]; then as "$who" "$m" "$p" "$body"; else as "$who" "$m" "$p"; fi
    if [ "$code" = "$want" ]; then
        ok "$who: $m $p -> $want"
    else
        not_ok "$who: $m $p -> $code, expected $want"; diag "$(head -c 300 "$T/body")"
    fi
    if [ "$want" = 403 ]; then
        check_eq "$who: $m $p: 403 is JSON naming the error" "$(jq -r .error.code "$T/body" 2>/dev/null)" forbidden
    fi
}

hub_init || { not_ok "hub init"; done_testing; exit 1; }
hub_start || { not_ok "hub start"; done_testing; exit 1; }

as admin POST /api/v1/groups '{"path": "/stores/central"}'
as admin POST /api/v1/clusters '{"name": "store-1", "groups": ["/stores/central"]}'
as admin POST /api/v1/clusters '{"name": "store-2", "groups": ["/stores/central"]}'
as admin POST /api/v1/namespaces '{"name": "pos", "owners": ["user/alice"], "expression": "/g/stores"}'
as admin POST /api/v1/namespaces '{"name": "hr", "owners": ["user/bob"]}'
as admin POST /api/v1/applications '{"name": "hr-app", "namespace": "hr"}'
check_eq "admin set-up" "$code" 201

for u in "op operator" "alice appteam" "bob appteam" "tom technician"; do
    set -- $u
    issue_user "$1" "$2" || { not_ok "issue a certificate for $1"; done_testing; exit 1; }
done
"$RE_BIN/resedge-hub" issue-cert --dir "$HUB_DIR" --cluster store-1 --out "$T/store-1" >/dev/null ||
    not_ok "issue a certificate for cluster store-1"

# operator: the whole inventory, the audit log
may op POST /api/v1/groups '{"path": "/rings/beta"}' 201
may op POST /api/v1/clusters '{"name": "store-3"}' 201
may op PATCH /api/v1/clusters/store-3 '{"description": "x"}' 200
may op PUT /api/v1/groups/%2Fstores/config/tax '{"value": "1"}' 201
may op POST /api/v1/policies '{"name": "p1", "yaml": "a: 1\n"}' 201
may op GET /api/v1/audit 200
may op DELETE /api/v1/clusters/store-3 204

# app team: reads, and writes only what it owns
may alice GET /api/v1/clusters 200
may alice GET /api/v1/groups 200
may alice GET /api/v1/clusters/store-1/config 400
may alice GET "/api/v1/clusters/store-1/config?namespace=pos" 200
may alice PATCH /api/v1/namespaces/pos '{"description": "point of sale"}' 200
may alice POST /api/v1/applications '{"name": "pos-api", "namespace": "pos"}' 201
may alice PATCH /api/v1/applications/pos-api '{"description": "api"}' 200
may alice POST /api/v1/namespaces '{"name": "alice-ns"}' 201
check_eq "alice owns the namespace she created" "$(jq -r '.owners[0]' "$T/body")" user/alice
may alice PATCH /api/v1/namespaces/hr '{"description": "mine now"}' 403
may alice DELETE /api/v1/namespaces/hr 403
may alice POST /api/v1/applications '{"name": "sneaky", "namespace": "hr"}' 403
may alice DELETE /api/v1/applications/hr-app 403
may alice PATCH /api/v1/namespaces/pos '{"owners": ["user/bob"]}' 403
may bob DELETE /api/v1/applications/pos-api 403
may alice POST /api/v1/clusters '{"name": "store-9"}' 403
may alice POST /api/v1/groups '{"path": "/x"}' 403
may alice POST /api/v1/policies '{"name": "p2"}' 403
may alice PUT /api/v1/clusters/store-1/config/k '{"value": "v"}' 403
may alice GET /api/v1/audit 200   # the audit of her own namespaces and applications (test_ctl_day)
may alice POST /api/v1/clusters:import '[]' 403

# technician: creates stores, reads clusters and groups, nothing else
may tom POST /api/v1/clusters '{"name": "store-4", "groups": ["/stores/central"]}' 201
may tom GET /api/v1/clusters/store-4 200
may tom GET /api/v1/groups 200
may tom PATCH /api/v1/clusters/store-4 '{"description": "x"}' 403
may tom DELETE /api/v1/clusters/store-4 403
may tom POST /api/v1/groups '{"path": "/y"}' 403
may tom GET /api/v1/namespaces 403
may tom GET /api/v1/clusters/store-1/config 403
may tom POST /api/v1/clusters:import '[]' 403
may tom GET /api/v1/audit 403

# agent: its own cluster only
may store-1 GET /api/v1/clusters/store-1 200
may store-1 GET /api/v1/clusters/store-1/config 200
may store-1 GET /api/v1/clusters/store-2 403
may store-1 GET /api/v1/clusters/store-2/config 403
may store-1 GET /api/v1/clusters 403
may store-1 PATCH /api/v1/clusters/store-1 '{"description": "x"}' 403
may store-1 DELETE /api/v1/clusters/store-1 403
may store-1 POST /api/v1/clusters '{"name": "store-5"}' 403
may store-1 GET /api/v1/namespaces 403
may store-1 GET /api/v1/audit 403

# the audit log names who did it
as admin GET '/api/v1/audit?actor=user/tom'
check_eq "audit names the technician's change" "$(jq -r '.items[0].name' "$T/body")" store-4
as admin GET '/api/v1/audit?actor=user/alice&entity=application'
check_eq "audit names the app team's changes" "$(jq -r '.items | length' "$T/body")" 2

hub_stop
done_testing
