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

done_testing
