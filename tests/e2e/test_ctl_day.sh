#!/usr/bin/env bash
# test_ctl_day.sh - a platform engineer's day with resedgectl (issue 18):
# named profiles that login never overwrites without --force, a data model
# the CLI explains, audit filters as the help writes them, pinned stores in
# sight, "revision" for the record's counter, errors in CLI words, and the
# agent's exit codes in its man page.
. "$(dirname "$0")/lib.sh"

CTL="$RE_CTL"
export HOME=$T/home          # profiles live in ~/.config/resedge
unset RESEDGECTL_CONFIG RESEDGECTL_PROFILE
mkdir -p "$HOME"

hub_init || { not_ok "resedge-hub init"; done_testing; exit 1; }
hub_start || { not_ok "resedge-hub serve"; done_testing; exit 1; }
ok "hub started on $HUB_URL"
FP=$(openssl x509 -in "$HUB_DIR/tls/ca.crt" -outform DER | sha256sum | cut -d' ' -f1)
code_for() {   # code_for NAME ROLE: a fresh one-time code for a person
    ctl users add "$1" --role "$2" -o json 2>/dev/null | jq -r .code
}
login() { "$CTL" login --hub "$HUB_URL" --ca-fingerprint "sha256:$FP" "$@"; }

# ---- 1. profiles ----
PDIR=$HOME/.config/resedge
check "login --profile admin" login --code "$(code_for alice admin)" --profile admin
check "the profile is in profiles/admin.conf" test -f "$PDIR/profiles/admin.conf"
check_eq "... with its key, mode 0600" "$(stat -c %a "$PDIR/profiles/admin.key" 2>/dev/null)" 600
check "--profile admin works" "$CTL" --profile admin clusters list
cp "$PDIR/profiles/admin.conf" "$T/admin.conf.before"
check_exit "a second login to profile admin without --force exits 64" 64 \
    login --code "$(code_for tom technician)" --profile admin
check "... and leaves the admin's profile as it was" cmp "$PDIR/profiles/admin.conf" "$T/admin.conf.before"
err=$(login --code "$(code_for tom2 technician)" --profile admin 2>&1)
check_match "... saying what to do" "$err" "refusing to overwrite.*--force"
check "login --profile tech (another profile)" login --code "$(code_for tom3 technician)" --profile tech
check "... the admin's profile is untouched" cmp "$PDIR/profiles/admin.conf" "$T/admin.conf.before"

# RESEDGECTL_CONFIG set, as in the issue: the technician's login must not replace it
export RESEDGECTL_CONFIG=$PDIR/profiles/admin.conf
check_exit "login with RESEDGECTL_CONFIG set to an existing profile exits 64" 64 \
    login --code "$(code_for tom4 technician)"
check "... the profile is unchanged" cmp "$PDIR/profiles/admin.conf" "$T/admin.conf.before"
unset RESEDGECTL_CONFIG
check "login --force replaces it" login --code "$(code_for tom5 technician)" --profile tech --force
check_match "the replaced profile is the new person's" "$(cat "$PDIR/profiles/tech.conf")" "for tom5"

# the default profile (no --profile) is refused the same way
check "login without --profile writes the default profile" login --code "$(code_for bob viewer)"
check "... ~/.config/resedge/resedgectl.conf" test -f "$PDIR/resedgectl.conf"
check_exit "... and a second one without --force exits 64" 64 login --code "$(code_for bob2 viewer)"

out=$("$CTL" profiles list)
check_match "profiles list: header" "$out" "CURRENT +NAME +HUB +FILE"
check_match "profiles list: default is current" "$out" $'\\* +default'
check_match "profiles list: admin" "$out" "admin +https://127.0.0.1"
check_match "profiles list: tech" "$out" "tech +https://127.0.0.1"
check "profiles use tech" "$CTL" profiles use tech
check_match "profiles list: tech is current" "$("$CTL" profiles list)" $'\\* +tech'
check_exit "the current profile (a technician) may not read the audit (exit 1)" 1 "$CTL" audit
check "--profile admin overrides the current profile" "$CTL" --profile admin audit
check "--config still overrides everything" "$CTL" --config "$CTL_CONF" audit
check "RESEDGECTL_PROFILE picks a profile" env RESEDGECTL_PROFILE=admin "$CTL" audit
check_exit "profiles use of a missing profile exits 64" 64 "$CTL" profiles use nosuch
check_exit "--profile with a bad name exits 64" 64 "$CTL" --profile ../x clusters list
check_exit "--profile of a missing profile exits 64" 64 "$CTL" --profile nosuch clusters list
check "profiles use default" "$CTL" profiles use default
check_match "profiles -o json" "$("$CTL" profiles list -o json | jq -r '.[] | select(.current == "*") | .name')" '^default$'

# ---- 2. a discoverable data model ----
check "namespaces create pos" ctl namespaces create pos --expression /g/stores
rc=0; err=$(ctl apps create pos-api --set namespace=pos --set owners:='["user/alice"]' 2>&1) || rc=$?
check_eq "an unknown field exits 1" "$rc" 1
check_match "... and lists the valid fields" "$err" "unknown field 'owners'; valid fields: name, namespace, owner, source, versions, description, metadata"
rc=0; err=$(ctl namespaces create pos2 --set quota:='{"cpus": "1"}' 2>&1) || rc=$?
check_eq "an unknown nested field exits 1" "$rc" 1
check_match "... and lists the valid members" "$err" "unknown field 'quota.cpus'; valid fields: cpu, memory, pods"
rc=0; err=$(ctl apps create pos-x --set namespace=pos --set source:='{"git": {"uri": "x"}}' 2>&1) || rc=$?
check_match "source.git's unknown member lists url, ref, path" "$err" "valid fields: url, ref, path"
help=$("$CTL" apps create --help)
check_match "apps create --help lists the application's fields" "$help" "fields of an application.*namespace.*versions"
if [[ $help == *"a group the cluster is in"* || $help == *"--group"* ]]; then
    not_ok "apps create --help offers no --group"; else ok "apps create --help offers no --group"; fi
check_exit "apps create --group is refused (64)" 64 ctl apps create x --set namespace=pos --group /g
check_match "clusters create --help lists timezone and groups" "$("$CTL" clusters create --help)" "timezone.*string"
check_match "clusters create --help keeps --group" "$("$CTL" clusters create --help)" "--group PATH +a group the cluster is in"
fields=$("$CTL" policies update --help | sed -n '/^fields/,/^Run/p')
check_match "policies update --help lists yaml" "$fields" "  yaml +string"
if grep -q '^  name ' <<<"$fields"; then not_ok "... and not name (immutable)"; else ok "... and not name (immutable)"; fi
for k in group cluster namespace application policy; do
    check_match "explain $k lists fields with types" "$("$CTL" explain $k)" "FIELDS:"
done
out=$("$CTL" explain namespace.quota.cpu)
check_match "explain namespace.quota.cpu: type" "$out" "TYPE +string \\(Kubernetes quantity\\)"
check_match "explain namespace.quota.cpu: example" "$out" "EXAMPLE +quota.cpu=4"
check_match "explain apps.versions lists its members" "$("$CTL" explain apps.versions)" "versions\\[\\]\\.expression"
check_exit "explain of an unknown kind exits 64" 64 "$CTL" explain frob
check_exit "explain of an unknown field exits 64" 64 "$CTL" explain cluster.owner
check_match "... and lists the kind's fields" "$("$CTL" explain cluster.owner 2>&1)" "its fields: name, groups, timezone"

# ---- 3. audit filters (server-side, hub/api/api_audit.c) ----
check "groups create /stores" ctl groups create /stores
check "clusters create store-0004" ctl clusters create store-0004 --group /stores
check "clusters update store-0004" ctl clusters update store-0004 --set description=moved
out=$(ctl audit --entity cluster/store-0004 -o json)
check_eq "audit --entity cluster/store-0004 finds its 2 changes" "$(jq '.items | length' <<<"$out")" 2
check_eq "... and only them" "$(jq -r '[.items[] | "\(.entity)/\(.name)"] | unique | join(",")' <<<"$out")" cluster/store-0004
check_match "audit --entity group//stores (a group's path)" "$(ctl audit --entity group//stores)" "group +/stores"
check_eq "audit --entity cluster still means every cluster" \
    "$(ctl audit --entity cluster -o json | jq -r '[.items[].entity] | unique | join(",")')" cluster
# alice (admin, logged in above) made changes through profile admin
"$CTL" --profile admin groups create /rings >/dev/null
check_eq "audit --actor alice finds user/alice's changes" \
    "$(ctl audit --actor alice -o json | jq -r '[.items[].actor] | unique | join(",")')" user/alice
check_eq "audit --actor user/alice too" \
    "$(ctl audit --actor user/alice -o json | jq -r '.items[0].name')" /rings
# an app team reads the audit of its own namespaces and applications only
issue_user ann appteam
actl() { "$CTL" --hub "$HUB_URL" --ca "$HUB_DIR/tls/ca.crt" --cert "$T/ann.crt" --key "$T/ann.key" "$@"; }
check "namespaces create team-a owned by ann" ctl namespaces create team-a --set owners:='["user/ann"]'
check "namespaces create team-b (not ann's)" ctl namespaces create team-b
check "apps create a-api in team-a" ctl apps create a-api --set namespace=team-a
check "apps create b-api in team-b" ctl apps create b-api --set namespace=team-b
check "ann updates a-api" actl apps update a-api --set description=mine
out=$(actl audit -o json)
check_eq "an app team reads the audit (its rows)" \
    "$(jq -r '[.items[] | "\(.entity)/\(.name)"] | unique | sort | join(",")' <<<"$out")" "application/a-api,namespace/team-a"
check_eq "... with --entity application/a-api" "$(actl audit --entity application/a-api -o json | jq '.items | length')" 2
check_eq "... and nothing of team-b's" "$(actl audit --entity application/b-api -o json | jq '.items | length')" 0
check_exit "a technician still may not read the audit (exit 1)" 1 "$CTL" --profile tech audit

# ---- 4. pinned stores in sight ----
check "clusters update store-0004 (a second commit)" ctl clusters update store-0004 --metadata ring=beta
for _ in $(seq 1 100); do
    [ "$(ctl clusters history store-0004 -o json | jq '.items | length')" -ge 2 ] && break
    sleep 0.1
done
check_eq "store-0004's branch has history" "$(ctl clusters history store-0004 -o json | jq '.items | length >= 2')" true
check_eq "clusters get: not pinned" "$(ctl clusters get store-0004 -o json | jq -c '[.pinned, .pinned_revision]')" '[false,null]'
out=$(ctl clusters revert store-0004 --to main~1 --diff store-0004)
check_match "revert --diff prints a diff" "$out" "diff of cluster 'store-0004'"
check_match "... a unified one" "$out" $'\n[-+]'
check_eq "... and changes nothing" "$(ctl clusters get store-0004 -o json | jq .pinned)" false
check "clusters revert store-0004 --to main~1" ctl clusters revert store-0004 --to main~1
json=$(ctl clusters get store-0004 -o json)
check_eq "clusters get: pinned" "$(jq .pinned <<<"$json")" true
check_match "... at the revision it was reverted to" "$(jq -r .pinned_revision <<<"$json")" '^[0-9a-f]{40}$'
check_match "clusters get (table) shows pinned" "$(ctl clusters get store-0004)" "pinned: +true"
out=$(ctl clusters list --pinned)
check_match "clusters list --pinned lists store-0004" "$out" "store-0004"
check_eq "... and only it" "$(ctl clusters list --pinned -o json | jq -r '[.items[].name] | join(",")')" store-0004
check_match "clusters list has a PINNED column" "$(ctl clusters list)" "PINNED"
check "clusters unpin store-0004" ctl clusters unpin store-0004
check_eq "clusters list --pinned is empty again" "$(ctl clusters list --pinned -o json | jq '.items | length')" 0

# ---- 5. "revision" is the record's counter, "versions" the app's ----
out=$(ctl apps create pos-api --set namespace=pos \
    --set versions:='[{"version": "1.4.0", "expression": "/g/stores"}, {"version": "1.5.0", "expression": "/g/rings"}]')
check_match "create says revision, not version" "$out" "^created application 'pos-api' \\(revision 1\\)$"
check_match "update says revision 2" "$(ctl apps update pos-api --set description=x)" "\\(revision 2\\)$"
check_match "apps list: VERSIONS are the names" "$(ctl apps list)" "pos-api +pos +[^ ]+ +1.4.0,1.5.0"
check_match "apps get (table) shows revision" "$(ctl apps get pos-api)" "revision: +2"
check_eq "apps get -o json keeps the API's version" "$(ctl apps get pos-api -o json | jq .version)" 2
rc=0; err=$(ctl apps update pos-api --set description=y --if-match 1 2>&1) || rc=$?
check_eq "a stale --if-match exits 1" "$rc" 1
check_match "... and speaks of revisions and --if-match" "$err" "has revision 2, not 1.*field: --if-match"
check_match "--if-match's help says REVISION" "$("$CTL" apps update --help)" "--if-match REVISION"

# ---- 6. errors in the CLI's words, repeated ones grouped ----
{ echo "name,groups"; for i in $(seq 1 50); do printf 'imp-%02d,/nowhere\n' "$i"; done; } >"$T/imp.csv"
rc=0; err=$(ctl clusters import "$T/imp.csv" 2>&1) || rc=$?
check_eq "an import naming a missing group exits 1" "$rc" 1
check_match "... names --create-groups" "$err" "--create-groups"
if [[ $err == *"create_groups=true"* ]]; then not_ok "... not ?create_groups=true"; else ok "... not ?create_groups=true"; fi
check_eq "... 50 identical errors are one line" "$(grep -c "does not exist" <<<"$err")" 1
check_match "... with their count" "$err" "lines 2, 3, 4, 5, 6 and 45 more: .*\\(50 times\\)"
check "groups create /stores/east" ctl groups create /stores/east
rc=0; err=$(ctl groups delete /stores 2>&1) || rc=$?
check_eq "deleting a group that holds others exits 1" "$rc" 1
check_match "... and names --cascade" "$err" "--cascade"
if [[ $err == *"cascade=true"* ]]; then not_ok "... not ?cascade=true"; else ok "... not ?cascade=true"; fi

# ---- 7. the agent's exit codes are in its man page; status -o json ----
MAN=$(dirname "$0")/../../packaging/man/resedge-agent.1
codes=$(grep -ho 'return [0-9]\+;\|AGENT_EX_[A-Z]\+ [0-9]\+\|rc = [0-9]\+;' \
        "$(dirname "$0")"/../../agent/main.c "$(dirname "$0")"/../../agent/run.c "$(dirname "$0")"/../../agent/run.h |
        grep -o '[0-9]\+' | sort -un)
for code in $codes; do
    check_match "exit code $code is in resedge-agent(1)" "$(sed -n '/^\.SH EXIT STATUS/,/^\.SH /p' "$MAN")" $'\n\\.B '"$code"$'\n'
done
AG=$T/agent-state
check_exit "agent status -o json of a node not enrolled exits 78" 78 "$RE_AGENT" status --state-dir "$AG" -o json
check_eq "... and says enrolled: false" "$("$RE_AGENT" status --state-dir "$AG" -o json | jq .enrolled)" false
check_exit "agent status -o xml exits 64" 64 "$RE_AGENT" status --state-dir "$AG" -o xml
check "clusters create store-0050" ctl clusters create store-0050 --group /stores
code=$(ctl clusters enroll-code store-0050 -o json | jq -r .code)
check "resedge-agent enroll store-0050" "$RE_AGENT" enroll --hub "$HUB_URL" --code "$code" \
    --ca-fingerprint "sha256:$FP" --state-dir "$AG"
json=$("$RE_AGENT" status --state-dir "$AG" -o json)
check_eq "agent status -o json: cluster" "$(jq -r .cluster <<<"$json")" store-0050
check_match "... certificate_not_after in RFC 3339" "$(jq -r .certificate_not_after <<<"$json")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$'
check_eq "... nothing applied yet: null" "$(jq -r .applied_revision <<<"$json")" null
code=$(ctl clusters enroll-code store-0050 -o json | jq -r .code)
check_exit "enrolling again without --force exits 73 (documented)" 73 "$RE_AGENT" enroll --hub "$HUB_URL" \
    --code "$code" --ca-fingerprint "sha256:$FP" --state-dir "$AG"

done_testing
