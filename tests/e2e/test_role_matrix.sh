#!/usr/bin/env bash
# test_role_matrix.sh - every role x every endpoint x own/other object, with
# the status each cell must answer (docs/tenancy.md says why). Callers: the
# admin, an operator, a viewer, an app team (alice owns namespace pos on
# store-1; hr on store-2 is bob's), a technician, store-1's agent, and a
# client with no certificate. Writes carry the caller's name so each is new.
. "$(dirname "$0")/lib.sh"
hub_init || exit 1
hub_start || exit 1
for u in "op operator" "vera viewer" "alice appteam" "bob appteam" "tom technician"; do
    issue_user $u || { not_ok "issue $u"; done_testing; exit 1; }
done
cp "$HUB_DIR/tls/admin.crt" "$T/admin.crt"; cp "$HUB_DIR/tls/admin.key" "$T/admin.key"

as() {   # WHO METHOD PATH [BODY]: prints the status
    local who=$1 m=$2 p=$3 body=${4-}
    local cert=()
    [ "$who" != anon ] && cert=(--cert "$T/$who.crt" --key "$T/$who.key")
    curl -sS --max-time 30 --cacert "$HUB_DIR/tls/ca.crt" "${cert[@]}" -o "$T/body" -w '%{http_code}' \
        -X "$m" ${body:+-H 'Content-Type: application/json' --data-binary "$body"} "$HUB_URL$p"
}
setup() { local c; c=$(as admin "$@"); [[ "$c" == 20* ]] || { echo "# setup $* -> $c: $(cat "$T/body")"; return 1; }; }
setup POST '/api/v1/clusters:import?create_groups=true' \
    '[{"name":"store-1","groups":["/stores/east"]},{"name":"store-2","groups":["/stores/west"]}]' &&
setup POST /api/v1/namespaces '{"name":"pos","owners":["user/alice"],"expression":"/c/store-1"}' &&
setup POST /api/v1/namespaces '{"name":"hr","owners":["user/bob"],"expression":"/c/store-2"}' &&
setup POST /api/v1/applications '{"name":"pos-app","namespace":"pos","source":{"git":{"url":"https://git.example.com/p.git"}},"versions":[{"version":"1","expression":"/c/store-1"}]}' &&
setup POST /api/v1/applications '{"name":"hr-app","namespace":"hr","source":{"git":{"url":"https://git.example.com/h.git"}},"versions":[{"version":"1","expression":"/c/store-2"}]}' &&
setup PUT /api/v1/groups/%2Fstores/config/fleet '{"value":"v"}'
check_eq "the fleet is set up" "$?" 0
"$RE_BIN/resedge-hub" issue-cert --dir "$HUB_DIR" --cluster store-1 --out "$T/agent1" >/dev/null
check "store-1's agent certificate" test -s "$T/agent1.crt"
# the branches exist before history and git are read
for _ in $(seq 1 100); do
    git --git-dir="$HUB_DIR/git" rev-parse -q --verify refs/namespaces/store-2/refs/heads/main >/dev/null && break
    sleep 0.1
done

WHO=(admin op vera alice tom agent1 anon)
# METHOD PATH BODY | admin operator viewer appteam technician agent no-cert
# (BODY "-" for none; @ in it becomes the caller's name)
matrix=$(cat <<'EOF'
GET /api/v1/clusters - | 200 200 200 200 200 403 401
GET /api/v1/clusters/store-1 - | 200 200 200 200 200 200 401
GET /api/v1/clusters/store-2 - | 200 200 200 200 200 403 401
GET /api/v1/clusters/store-1/status - | 200 200 200 200 200 200 401
GET /api/v1/clusters/store-2/status - | 200 200 200 200 200 403 401
GET /api/v1/clusters/store-1/config?namespace=pos - | 200 200 200 200 403 200 401
GET /api/v1/clusters/store-2/config?namespace=hr - | 200 200 200 403 403 403 401
GET /api/v1/clusters/store-1/history - | 200 200 200 200 403 200 401
GET /api/v1/clusters/store-2/history - | 200 200 200 403 403 403 401
GET /api/v1/clusters/store-2/files - | 200 200 200 403 403 403 401
GET /api/v1/clusters/store-1/assignments - | 200 200 200 200 403 200 401
GET /api/v1/clusters/store-2/assignments - | 200 200 200 200 403 403 401
GET /api/v1/groups - | 200 200 200 200 200 403 401
GET /api/v1/groups/%2Fstores/config - | 200 200 200 403 403 403 401
GET /api/v1/namespaces - | 200 200 200 200 403 403 401
GET /api/v1/applications - | 200 200 200 200 403 403 401
GET /api/v1/applications/pos-app/status - | 200 200 200 200 200 403 401
GET /api/v1/policies - | 200 200 200 200 403 403 401
GET /api/v1/audit - | 200 200 200 200 403 403 401
GET /metrics - | 200 200 200 403 403 403 401
GET /api/v1/gitops/status - | 200 200 200 403 403 403 401
GET /git/store-1.git/info/refs?service=git-upload-pack - | 200 200 403 403 403 200 401
GET /git/store-2.git/info/refs?service=git-upload-pack - | 200 200 403 403 403 403 401
POST /api/v1/groups {"path":"/m-@"} | 201 201 403 403 403 403 401
POST /api/v1/clusters {"name":"c-@","groups":["/stores/east"]} | 201 201 403 403 201 403 401
PATCH /api/v1/clusters/store-2 {"description":"@"} | 200 200 403 403 403 403 401
PATCH /api/v1/namespaces/pos {"description":"@"} | 200 200 403 200 403 403 401
PATCH /api/v1/namespaces/hr {"description":"@"} | 200 200 403 403 403 403 401
PATCH /api/v1/namespaces/pos {"expression":"/c/store-1 or /c/x-@"} | 200 200 403 403 403 403 401
PATCH /api/v1/applications/pos-app {"description":"@"} | 200 200 403 200 403 403 401
PATCH /api/v1/applications/hr-app {"description":"@"} | 200 200 403 403 403 403 401
POST /api/v1/policies {"name":"p-@","yaml":""} | 201 201 403 403 403 403 401
PUT /api/v1/groups/%2Fstores/config/k-@ {"value":"v"} | 201 201 403 403 403 403 401
POST /api/v1/clusters/store-2/enroll-code {} | 201 201 403 403 201 403 401
POST /api/v1/users {"name":"u-@","role":"viewer"} | 201 403 403 403 403 403 401
POST /api/v1/clusters/store-1/checkin {"agent_version":"t","mode":"none"} | 403 403 403 403 403 200 401
POST /api/v1/clusters/store-2/checkin {"agent_version":"t","mode":"none"} | 403 403 403 403 403 403 401
POST /api/v1/clusters/store-2/revoke {} | 200 200 403 403 403 403 401
EOF
)
while IFS= read -r line; do
    [ -z "$line" ] && continue
    req=${line%% | *}; want=${line##* | }
    read -r m path body <<<"$req"
    read -ra exp <<<"$want"
    for i in "${!WHO[@]}"; do
        who=${WHO[$i]}
        b=${body//@/${who//[0-9]/}}
        p=${path//@/${who//[0-9]/}}
        [ "$b" = "-" ] && b=""
        got=$(as "$who" "$m" "$p" "$b")
        check_eq "$who: $m $p -> ${exp[$i]}" "$got" "${exp[$i]}"
    done
done <<<"$matrix"
done_testing
