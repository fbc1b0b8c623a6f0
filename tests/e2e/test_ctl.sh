#!/usr/bin/env bash
# test_ctl.sh - resedgectl against a real hub: help on every command, the
# profile, inventory CRUD, paging, select, output formats, the hub's errors,
# connection errors and exit codes.
. "$(dirname "$0")/lib.sh"

CTL="$RE_CTL"            # under RE_WRAP_CTL (valgrind) when set, see lib.sh

# skip_if_no_route DESC METHOD PATH: true, and a failure, when the hub has no
# such endpoint (every endpoint the CLI calls must exist): the block is skipped.
skip_if_no_route() {
    local data=()
    [ "$2" = GET ] || data=(-H 'Content-Type: application/json' -d '{}')
    acurl -o "$T/route.body" -X "$2" "$HUB_URL$3" "${data[@]}" 2>/dev/null
    if grep -q '"no such endpoint"\|"method_not_allowed"' "$T/route.body"; then
        not_ok "$1: the hub has no $2 $3"; return 0
    fi
    return 1
}

# ---- without a hub: help, version, usage errors, the profile ----

check "resedgectl --help exits 0" "$CTL" --help
check "resedgectl --version exits 0" "$CTL" --version
check_match "--version prints the version" "$("$CTL" --version)" '^resedgectl [0-9]+\.[0-9]+'
cmds=$("$CTL" --help | sed -n '/^commands:/,/^$/p' | sed '1d;/^$/d' | cut -c3-38 | sed 's/ [A-Z[].*//; s/ *$//')
n=0
while read -r cmd; do
    [ -n "$cmd" ] || continue
    n=$((n + 1))
    # shellcheck disable=SC2086
    if out=$("$CTL" $cmd --help 2>&1) && [[ $out == usage:* ]]; then :; else not_ok "resedgectl $cmd --help"; diag "$out"; fi
done <<<"$cmds"
check_match "every command has --help ($n commands)" "$n" '^[0-9]{2,}$'
for g in groups clusters namespaces apps policies users; do
    check "resedgectl $g --help exits 0" "$CTL" "$g" --help
done

rc=0; "$CTL" clusters frobnicate >/dev/null 2>&1 || rc=$?
check_eq "unknown command exits 64" "$rc" 64
rc=0; err=$("$CTL" --config /dev/null clusters get 2>&1) || rc=$?
check_eq "missing argument exits 64" "$rc" 64
check_match "missing argument names what is missing" "$err" "needs NAME"
rc=0; err=$("$CTL" clusters list --cascade 2>&1) || rc=$?
check_eq "option of another command exits 64" "$rc" 64
check_match "... with a hint" "$err" "hint: run 'resedgectl clusters list --help'"
rc=0; "$CTL" --nope >/dev/null 2>&1 || rc=$?
check_eq "unknown option exits 64" "$rc" 64
rc=0; "$CTL" -o xml --config /dev/null clusters list >/dev/null 2>&1 || rc=$?
check_eq "unknown output format exits 64" "$rc" 64

printf '[hub]\nurl = https://127.0.0.1:1\nbogus = 1\n' >"$T/bad.conf"
rc=0; err=$("$CTL" --config "$T/bad.conf" clusters list 2>&1) || rc=$?
check_match "a bad profile key is reported with file:line" "$err" "bad.conf:3: unknown key 'bogus'"
check_eq "... and exits 64" "$rc" 64
rc=0; err=$(RESEDGECTL_CONFIG=$T/missing.conf "$CTL" clusters list 2>&1) || rc=$?
check_match "a missing profile says how to get one" "$err" "resedgectl login"
check_eq "... and exits 64" "$rc" 64

# ---- against the hub ----

hub_init || { not_ok "resedge-hub init"; done_testing; exit 1; }
hub_start || { not_ok "resedge-hub serve"; done_testing; exit 1; }
ok "hub started on $HUB_URL"

check "groups create /stores/central" ctl groups create /stores/central
check "groups create /stores/central/tx" ctl groups create /stores/central/tx
check "groups create /rings/beta" ctl groups create /rings/beta
check_match "groups get by path" "$(ctl groups get /stores/central/tx -o json)" '"path": "/stores/central/tx"'
check_match "groups list shows the paths" "$(ctl groups list)" "/rings/beta"

check "clusters create store-0001" ctl clusters create store-0001 --group /stores/central/tx --metadata format=drive-thru
check "clusters create store-0002" ctl clusters create store-0002 --group /rings/beta --group /stores/central
check "clusters create store-0003 with -f and flags" bash -c \
    "echo '{\"description\": \"from a file\"}' >'$T/c3.json' && '$CTL' --config '$CTL_CONF' clusters create store-0003 -f '$T/c3.json' --group /stores/central/tx"
out=$(ctl clusters list)
check_match "clusters list: table header" "$out" "^NAME +GROUPS"
check_match "clusters list: rows" "$out" "store-0002 +/rings/beta,/stores/central"
json=$(ctl clusters list -o json)
check_eq "clusters list -o json parses" \
    "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(i["name"] for i in d["items"]))' <<<"$json")" \
    "['store-0001', 'store-0002', 'store-0003']"
json=$(ctl clusters list --limit 1 --all -o json)
check_eq "--limit 1 --all follows every cursor" \
    "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["items"]), d["next"])' <<<"$json")" "3 None"
out=$(ctl clusters list --limit 1 2>&1)
check_match "one page says there is more" "$out" "more: use --all"
check_match "--metadata filter" "$(ctl clusters list --metadata format=drive-thru)" "store-0001"
check_eq "--metadata filter excludes" "$(ctl clusters list --metadata format=drive-thru -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')" 1
check_match "clusters get -o yaml" "$(ctl clusters get store-0001 -o yaml)" "name: store-0001"
check_match "clusters get shows metadata" "$(ctl clusters get store-0001)" "format=drive-thru"
check_match "clusters get of store-0003 has the file's description" "$(ctl clusters get store-0003 -o json)" '"description": "from a file"'

sel=$(ctl select '/g/rings/beta or /c/store-0001' 2>/dev/null | sort | tr '\n' ' ')
check_eq "select an expression" "$sel" "store-0001 store-0002 "
sel=$(ctl select '/g/stores/central and not /g/rings/beta' 2>/dev/null | sort | tr '\n' ' ')
check_eq "select with and/not over descendants" "$sel" "store-0001 store-0003 "
check_eq "select -o json" "$(ctl select '/c/store-0002' -o json | python3 -c 'import json,sys; print(json.load(sys.stdin))')" "['store-0002']"
rc=0; err=$(ctl select '(/g/rings/beta' 2>&1) || rc=$?
check_eq "a bad expression exits 1" "$rc" 1
check_match "... with the hub's message" "$err" "^error: "

# errors from the hub
rc=0; err=$(ctl clusters create A_B 2>&1) || rc=$?
check_eq "an invalid name exits 1" "$rc" 1
check_match "... and prints the hub's message with the field" "$err" "^error: .*\(field: name\)"
rc=0; err=$(ctl clusters create store-0001 2>&1) || rc=$?
check_eq "a duplicate exits 1" "$rc" 1
rc=0; err=$(ctl clusters get store-9999 2>&1) || rc=$?
check_eq "a missing cluster exits 1" "$rc" 1
check_match "... saying not found" "$err" "not found"

# updates and optimistic concurrency
v=$(ctl clusters get store-0001 -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
check_match "update with the current version" "$(ctl clusters update store-0001 --set description=updated --if-match "$v")" "updated cluster 'store-0001'"
rc=0; err=$(ctl clusters update store-0001 --set description=again --if-match "$v" 2>&1) || rc=$?
check_eq "a stale --if-match exits 1" "$rc" 1
check_match "... and says why" "$err" "^error: "
check_match "update metadata" "$(ctl clusters update store-0001 --metadata ring=beta -o json)" '"ring": "beta"'

# dry run changes nothing
check "create --dry-run" ctl clusters create store-0004 --dry-run
# resedgectl: 1 the hub refused (404 here), 2 no connection, 64 usage
check_exit "... and the cluster does not exist" 1 ctl clusters get store-0004

# deletes
rc=0; ctl groups delete /rings/beta >/dev/null 2>&1 || rc=$?
check_eq "deleting a group that holds clusters is refused" "$rc" 1
check_match "clusters delete" "$(ctl clusters delete store-0003)" "deleted cluster 'store-0003'"
check_exit "... and it is gone" 1 ctl clusters get store-0003

# bulk import
printf 'name,groups\nstore-0010,/stores/central\nA_B,/stores/central\n' >"$T/bad.csv"
rc=0; err=$(ctl clusters import "$T/bad.csv" 2>&1) || rc=$?
check_eq "an import with a bad line exits 1" "$rc" 1
check_match "... naming the line" "$err" "line [0-9]+"
check_exit "... and imports nothing" 1 ctl clusters get store-0010
printf 'name,groups,metadata.format\nstore-0020,/stores/west/ca;/rings/beta,kiosk\nstore-0021,/stores/west/ca,\n' >"$T/good.csv"
check_exit "an import naming a missing group fails" 1 ctl clusters import "$T/good.csv"
check_match "import --create-groups" "$(ctl clusters import "$T/good.csv" --create-groups)" "imported 2 clusters .* groups created"
check_match "... the imported cluster has its groups and metadata" "$(ctl clusters get store-0020 -o json)" '"format": "kiosk"'
echo '[{"name": "store-0030", "groups": ["/stores/west/ca"]}]' >"$T/good.json"
check_match "import JSON" "$(ctl clusters import "$T/good.json")" "imported 1 clusters"
rc=0; ctl clusters import "$T/x.txt" >/dev/null 2>&1 || rc=$?
check_eq "an import file that is neither .json nor .csv exits 64" "$rc" 64

# check-in state (no agent has reported)
if ! skip_if_no_route "clusters status" GET /api/v1/clusters/store-0001/status; then
    check_match "clusters status of a cluster never seen" "$(ctl clusters status store-0001)" "status: +offline"
fi
out=$(ctl -v clusters get store-0001 2>&1 >/dev/null)
check_match "--verbose shows the request and status" "$out" "> GET https://127.0.0.1:[0-9]+/api/v1/clusters/store-0001"

# GitOps: preview, history, files, revert, unpin
if ! skip_if_no_route "clusters history" GET /api/v1/clusters/store-0001/history; then
    check "namespaces create pos" ctl namespaces create pos --expression /g/stores --set quota.cpu=2
    out=$(ctl namespaces update pos --set quota.cpu=4 --dry-run 2>&1)
    check_match "--dry-run lists the clusters that would change" "$out" "clusters whose branch would change: [1-9][0-9]*.*  store-0001"
    check_match "... and shows a diff" "$out" "\+    cpu: '4'"
    out=$(ctl namespaces update pos --set quota.cpu=4 --diff store-0002 2>&1)
    check_match "--diff CLUSTER shows that cluster's diff" "$(grep "^diff of" <<<"$out")" "diff of cluster 'store-0002'"
    check_match "... and changes nothing" "$(ctl namespaces get pos -o json)" '"cpu": "2"'
    for i in $(seq 1 50); do
        ctl clusters files store-0001 2>/dev/null | grep -q resourcequota && break; sleep 0.2
    done
    check_match "clusters files lists the rendered tree" "$(ctl clusters files store-0001)" "namespaces/pos/resourcequota.yaml"
    check_match "clusters files PATH shows a file" "$(ctl clusters files store-0001 namespaces/pos/resourcequota.yaml)" "cpu: '2'"
    check_match "clusters history" "$(ctl clusters history store-0001)" "^REV +TIME +AUTHOR +MESSAGE"
    check "namespaces update pos" ctl namespaces update pos --set quota.cpu=4
    for i in $(seq 1 50); do
        ctl clusters files store-0001 namespaces/pos/resourcequota.yaml 2>/dev/null | grep -q "cpu: '4'" && break; sleep 0.2
    done
    check_match "... the branch follows" "$(ctl clusters files store-0001 namespaces/pos/resourcequota.yaml)" "cpu: '4'"
    check_match "clusters revert --to main~1" "$(ctl clusters revert store-0001 --to main~1)" "reverted and pinned"
    check_match "... restores the file" "$(ctl clusters files store-0001 namespaces/pos/resourcequota.yaml)" "cpu: '2'"
    check_match "clusters history shows the revert" "$(ctl clusters history store-0001 -o json)" '"message": "revert'
    check_match "clusters unpin" "$(ctl clusters unpin store-0001)" "unpinned"
    rc=0; ctl clusters unpin store-0001 >/dev/null 2>&1 || rc=$?
    check_eq "unpin when not pinned exits 1" "$rc" 1
    rc=0; ctl clusters revert store-0001 >/dev/null 2>&1 || rc=$?
    check_eq "revert without --to exits 64" "$rc" 64
fi

# audit
check_match "audit shows the changes" "$(ctl audit --limit 1000 --all)" "store-0001"

# the configuration endpoint
if ! skip_if_no_route "config CLUSTER" GET /api/v1/clusters/store-0001/config; then
    check_match "config set on a group" "$(ctl config set /stores tz CST)" "set tz on group '/stores'"
    check "config set on a deeper group" ctl config set /stores/central/tx tz EST
    check "config set on the cluster" ctl config set store-0001 ring beta
    check "config set on a ring (same depth as /stores)" ctl config set /rings ring2 x
    out=$(ctl config store-0001)
    check_match "config CLUSTER: the deepest group wins, with its source" "$out" "tz +EST +/stores/central/tx"
    check_match "config CLUSTER: the cluster's own value" "$out" "ring +beta +cluster"
    check "config set two same-depth groups apart" ctl config set /rings tz PST
    check_match "config CLUSTER: a same-depth disagreement is a conflict" "$(ctl config store-0002)" "CONFLICTS"
    check_match "config /GROUP shows what is set there" "$(ctl config /stores)" "tz +CST"
    check "config unset" ctl config unset /rings tz
    check_eq "config -o json" "$(ctl config store-0001 -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["values"]["tz"]["value"])')" EST
fi

# output formats of a list
check_match "yaml output" "$(ctl groups list -o yaml)" "^items:"

# connection and certificate failures
rc=0; err=$("$CTL" --config "$CTL_CONF" --hub "https://127.0.0.1:$(free_port)" clusters list 2>&1) || rc=$?
check_eq "an unreachable hub exits 2" "$rc" 2
check_match "... and says to check the hub URL" "$err" "check the hub URL"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/other.key" \
    -out "$T/other.crt" -subj /CN=other -days 1 >/dev/null 2>&1
rc=0; err=$("$CTL" --config "$CTL_CONF" --ca "$T/other.crt" clusters list 2>&1) || rc=$?
check_eq "a wrong CA exits 2" "$rc" 2
check_match "... and says to check the CA" "$err" "check ca="
rc=0; err=$("$CTL" --config "$CTL_CONF" --cert "$T/nonexistent.crt" clusters list 2>&1) || rc=$?
check_eq "a missing certificate file exits 2" "$rc" 2
check_match "... and names the file" "$err" "nonexistent.crt"
rc=0; err=$("$CTL" --config "$CTL_CONF" --cert "$T/other.crt" --key "$T/other.key" clusters list 2>&1) || rc=$?
check_eq "a certificate from another CA is refused (exit 1)" "$rc" 1
check_match "... with a hint about the certificate" "$err" "client certificate"

# roles: the same CLI with a technician's certificate
if issue_user tech technician; then
    tctl() { "$CTL" --config "$CTL_CONF" --cert "$T/tech.crt" --key "$T/tech.key" "$@"; }
    check "a technician creates a store" tctl clusters create store-0040 --group /stores/central
    rc=0; err=$(tctl groups create /stores/east 2>&1) || rc=$?
    check_eq "a technician may not create a group (exit 1)" "$rc" 1
    check_match "... and is told so" "$err" "^error: "
    rc=0; tctl audit >/dev/null 2>&1 || rc=$?
    check_eq "a technician may not read the audit log (exit 1)" "$rc" 1
else
    not_ok "resedge-hub issue-cert for a technician"
fi

# enrollment codes and login, once the hub has them
if ! skip_if_no_route "users add + login" POST /api/v1/users; then
    out=$(ctl users add alice --role operator -o json)
    code=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])' <<<"$out")
    fp=$(openssl x509 -in "$HUB_DIR/tls/ca.crt" -outform DER | sha256sum | cut -d' ' -f1)
    # A fingerprint that differs in its first digit (whatever that digit is).
    if [ "${fp:0:1}" = 0 ]; then bad_fp=1${fp:1}; else bad_fp=0${fp:1}; fi
    rc=0; err=$("$CTL" login --hub "$HUB_URL" --code "$code" --ca-fingerprint "sha256:$bad_fp" --config "$T/alice/ctl.conf" 2>&1) || rc=$?
    check_eq "login with a wrong CA fingerprint fails" "$rc" 1
    check_exit "... and writes nothing" 1 test -e "$T/alice"
    check "login with the code" "$CTL" login --hub "$HUB_URL" --code "$code" --ca-fingerprint "sha256:$fp" --config "$T/alice/ctl.conf"
    check_eq "the key is mode 0600" "$(stat -c %a "$T/alice/ctl.key" 2>/dev/null)" 600
    check "openssl verifies the new certificate" openssl verify -CAfile "$HUB_DIR/tls/ca.crt" "$T/alice/ctl.crt"
    check "the new profile works" "$CTL" --config "$T/alice/ctl.conf" clusters list
    check_match "users enroll-code gives an existing person a new code" "$(ctl users enroll-code alice --ttl 10m)" "resedgectl login --hub"
    check_match "users revoke" "$(ctl users revoke alice)" "revoked the certificate of user 'alice'"
    rc=0; "$CTL" --config "$T/alice/ctl.conf" clusters list >/dev/null 2>&1 || rc=$?
    check_eq "a revoked person's profile is refused (exit 1)" "$rc" 1
    check_exit "the code is single use" 1 "$CTL" login --hub "$HUB_URL" --code "$code" --ca-fingerprint "sha256:$fp" --config "$T/alice2/ctl.conf"
fi
if ! skip_if_no_route "clusters enroll-code" POST /api/v1/clusters/store-0001/enroll-code; then
    out=$(ctl clusters enroll-code store-0001 --ttl 1h)
    check_match "enroll-code prints the code" "$out" "code +[0-9A-Z]+\."
    check_match "... and the command to run on site" "$out" "resedge-agent enroll --hub"
    json=$(ctl clusters enroll-code store-0002 -o json)
    check_match "enroll-code -o json" "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(k for k in d if k in ("code","hub","ca_fingerprint")))' <<<"$json")" "ca_fingerprint"
fi

done_testing
