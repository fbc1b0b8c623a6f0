#!/usr/bin/env bash
# test_packaging.sh - the systemd units score <= 2.0 in `systemd-analyze
# security --offline=yes` and verify; packaging/build-deb.sh builds both .deb
# packages from $RE_BIN; the agent package unpacked into a scratch root has
# every file where its unit expects it; Depends covers every linked library;
# lintian finds no errors; `make install` and `make install-units` honour
# DESTDIR and PREFIX.
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
units="$top/packaging/systemd"
MAX_EXPOSURE=2.0

# ---- units ----
if ! command -v systemd-analyze >/dev/null; then
    not_ok "systemd-analyze is installed (apt-get install systemd)"
else
    for u in resedge-hub resedge-agent; do
        out=$(systemd-analyze security --offline=yes --no-pager "$units/$u.service" 2>&1)
        score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        diag "$u.service exposure: ${score:-none}"
        if [ -n "$score" ] && awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
            ok "$u.service exposure $score <= $MAX_EXPOSURE"
        else
            not_ok "$u.service exposure ${score:-unknown} <= $MAX_EXPOSURE"
            printf '%s\n' "$out" | grep '✗' | sed 's/^/#   /' | head -40
        fi
    done
    for u in resedge-hub resedge-agent; do
        missing=
        for k in '^Type=notify$' '^WatchdogSec=[1-9]' '^Restart=on-failure$' '^RestartSec=[1-9]' \
                 '^Wants=.*network-online\.target' '^After=.*network-online\.target' \
                 '^After=.*time-sync\.target' '^StateDirectory=' '^ConfigurationDirectory=resedge$' \
                 '^User=' '^ProtectSystem=strict$' '^NoNewPrivileges=yes$' '^CapabilityBoundingSet=$' \
                 '^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$' '^SystemCallFilter=@system-service$' \
                 '^\[Install\]$' '^WantedBy=multi-user\.target$'; do
            grep -qE "$k" "$units/$u.service" || missing="$missing $k"
        done
        if [ -z "$missing" ]; then
            ok "$u.service: notify, watchdog, restart, ordering, directories, user, hardening"
        else
            not_ok "$u.service: notify, watchdog, restart, ordering, directories, user, hardening"
            diag "missing:$missing"
        fi
    done
fi

# ---- man pages: valid roff, and every option --help shows is documented ----
# (an agent `run` flag may be documented as its config key: --apply-command
# as apply_command).
man_documents() {   # PAGE HELP-TEXT
    local page=$1 text=$2 opt key missing=
    local rendered   # the roff source without escapes (rendering hyphenates)
    rendered=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$page")
    for opt in $(printf '%s\n' "$text" | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
        key=${opt#--}; key=${key//-/_}
        grep -qF -- "$opt" <<<"$rendered" || grep -qw -- "$key" <<<"$rendered" || missing="$missing $opt"
    done
    [ -z "$missing" ] || { echo "not in $(basename "$page"):$missing"; return 1; }
}
if command -v man >/dev/null; then
    for m in "$top"/packaging/man/*.1; do
        check "$(basename "$m") renders without warnings" \
            bash -c '! LC_ALL=C.UTF-8 man --warnings -l -Tutf8 "$1" 2>&1 >/dev/null | grep -q .' _ "$m"
    done
    help=$("$RE_BIN/resedge-hub" --help 2>&1)
    for c in init serve issue-cert; do help+=$'\n'$("$RE_BIN/resedge-hub" "$c" --help 2>&1); done
    check "resedge-hub.1 documents every option of --help" \
        man_documents "$top/packaging/man/resedge-hub.1" "$help"
    help=$("$RE_BIN/resedge-agent" --help 2>&1)
    for c in enroll run status; do help+=$'\n'$("$RE_BIN/resedge-agent" "$c" --help 2>&1); done
    check "resedge-agent.1 documents every option of --help" \
        man_documents "$top/packaging/man/resedge-agent.1" "$help"
    check "resedgectl.1 documents every global option" \
        man_documents "$top/packaging/man/resedgectl.1" \
        "$("$RE_BIN/resedgectl" --help 2>&1 | sed -n '/^global options:/,/^$/p')"
else
    not_ok "man is installed (apt-get install man-db)"
fi

# ---- the daemons keep the units' contract ----
# Type=notify + WatchdogSec=: the hub must send READY=1 and then WATCHDOG=1
# at least every WATCHDOG_USEC/2 through $NOTIFY_SOCKET (here 2 s).
notify_listen() {   # SOCKET SECONDS OUT: collects datagrams into OUT
    python3 - "$@" <<'PY' &
import socket, sys, time
path, secs, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.2)
end = time.time() + secs
with open(out, "w") as f:
    while time.time() < end:
        try:
            f.write(s.recv(4096).decode(errors="replace").replace("\n", " ") + "\n"); f.flush()
        except socket.timeout:
            pass
PY
    _pids+=($!)
}
if hub_init; then
    # (30 s under valgrind, where the hub takes seconds to start)
    notify_listen "$T/notify.sock" "$([ -n "${RE_WRAP:-}" ] && echo 30 || echo 8)" "$T/notify.log"
    for _ in $(seq 1 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
    NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=2000000 hub_start || true
    sleep 5
    hub_stop || true
    check "hub sends READY=1 to \$NOTIFY_SOCKET" grep -q 'READY=1' "$T/notify.log"
    n=$(grep -c 'WATCHDOG=1' "$T/notify.log")
    if [ "$n" -ge 2 ]; then ok "hub sends WATCHDOG=1 every WATCHDOG_USEC/2 ($n in 5 s)"
    else not_ok "hub sends WATCHDOG=1 every WATCHDOG_USEC/2 ($n in 5 s, WatchdogSec= would kill it)"; fi
else
    not_ok "hub init for the notify test"
fi
mkdir -p "$T/agent-empty"
"$RE_AGENT" run --state-dir "$T/agent-empty" --mode none >"$T/agent-run.log" 2>&1
rc=$?
check_eq "an unenrolled agent exits 78 (the unit's RestartPreventExitStatus)" "$rc" \
    "$(sed -n 's/^RestartPreventExitStatus=//p' "$units/resedge-agent.service")"
check_match "the agent unit starts only once enrolled" \
    "$(sed -n 's/^ConditionPathExists=//p' "$units/resedge-agent.service")" \
    "^/var/lib/resedge-agent/$(sed -n 's/^#define AGENT_STATE_FILE *"\(.*\)"/\1/p' "$top/agent/state.h")\$"

# ---- packages ----
debs=$T/deb
if bash "$top/packaging/build-deb.sh" --bin "$RE_BIN" --out "$debs" >"$T/build-deb.log" 2>&1; then
    ok "build-deb.sh builds the packages from $RE_BIN"
else
    not_ok "build-deb.sh builds the packages from $RE_BIN"
    sed 's/^/#   /' "$T/build-deb.log" | tail -20
fi
hub_deb=$(ls "$debs"/resedge-hub_*.deb 2>/dev/null | head -1)
agent_deb=$(ls "$debs"/resedge-agent_*.deb 2>/dev/null | head -1)
check "resedge-hub .deb exists" test -s "$hub_deb"
check "resedge-agent .deb exists" test -s "$agent_deb"

field() { dpkg-deb -f "$1" "$2" 2>/dev/null; }

# Every NEEDED soname of the package's ELF files maps (dpkg -S) to a package
# named in Depends.
depends_cover_needed() {   # DEB
    local deb=$1 root=$T/needed.$$ f so lib pkg deps missing=0
    rm -rf "$root"; dpkg -x "$deb" "$root" || return 1
    deps=$(field "$deb" Depends)
    for f in "$root"/usr/bin/*; do
        for so in $(objdump -p "$f" | awk '/NEEDED/ { print $2 }'); do
            lib=$(ldconfig -p | awk -v so="$so" '$1 == so { print $NF; exit }')
            [ -n "$lib" ] || { echo "$so: not found by ldconfig"; missing=1; continue; }
            pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1)
            [ -n "$pkg" ] || pkg=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1)
            if [ -z "$pkg" ] || ! [[ ", $deps," == *", $pkg "* || ", $deps," == *", $pkg,"* ]]; then
                echo "$(basename "$f") needs $so ($pkg) but Depends: $deps"; missing=1
            fi
        done
    done
    rm -rf "$root"
    return $missing
}

if [ -s "$hub_deb" ] && [ -s "$agent_deb" ]; then
    deps=$(field "$hub_deb" Depends)
    diag "resedge-hub Depends: $deps"
    diag "resedge-agent Depends: $(field "$agent_deb" Depends)"
    for lib in libc6 libmbedtls libmbedx509 libmbedcrypto libgit2 libsqlite3 libuv1 libcurl adduser git; do
        check_match "resedge-hub depends on $lib" "$deps" "(^|, )$lib"
    done
    check "resedge-hub Depends covers every linked library" depends_cover_needed "$hub_deb"
    check "resedge-agent Depends covers every linked library" depends_cover_needed "$agent_deb"
    check_eq "hub package version is the Makefile's" "$(field "$hub_deb" Version)" \
        "$(sed -n 's/^VERSION[[:space:]]*:\{0,1\}=[[:space:]]*//p' "$top/Makefile" | head -1)"

    # ---- the agent package in a scratch root ----
    R=$T/root
    mkdir -p "$R"
    dpkg -x "$agent_deb" "$R"
    dpkg-deb -e "$agent_deb" "$T/agent.ctl"
    unit=$R/lib/systemd/system/resedge-agent.service
    check "agent unit is in /lib/systemd/system" test -f "$unit"
    exec_start=$(sed -n 's/^ExecStart=//p' "$unit" | head -1)
    exe=${exec_start%% *}
    check_match "ExecStart runs an absolute path" "$exe" '^/usr/bin/resedge-agent$'
    check "ExecStart binary $exe is in the package and executable" test -x "$R$exe"
    conf=$(printf '%s\n' "$exec_start" | sed -n 's/.*--config \([^ ]*\).*/\1/p')
    check_eq "ExecStart reads /etc/resedge/agent.conf" "$conf" /etc/resedge/agent.conf
    check "the config the unit reads is in the package" test -f "$R$conf"
    check "agent.conf is a conffile" grep -qx "$conf" "$T/agent.ctl/conffiles"
    sd=$(sed -n 's/^StateDirectory=//p' "$unit")
    check_eq "StateDirectory is resedge-agent" "$sd" resedge-agent
    check_match "agent.conf names the unit's state directory" \
        "$(grep -E '^[[:space:]]*state_dir' "$R$conf")" "= */var/lib/$sd\$"
    check_match "the agent's default state directory is the unit's" \
        "$(grep -h AGENT_DEFAULT_STATE_DIR "$top"/agent/*.h | head -1)" "\"/var/lib/$sd\""
    check_match "the unit's user is created by postinst" "$(cat "$T/agent.ctl/postinst")" \
        "adduser .*--system.* $(sed -n 's/^User=//p' "$unit")"
    check "the man page the unit documents is in the package" \
        test -f "$R/usr/share/man/man1/$(sed -n 's/^Documentation=man:\([^(]*\)(\([0-9]\)).*/\1.\2/p' "$unit").gz"
    check "copyright and changelog are in the package" \
        test -f "$R/usr/share/doc/resedge-agent/copyright" -a -f "$R/usr/share/doc/resedge-agent/changelog.gz"
    check_match "the packaged binary runs" "$("$R$exe" --version 2>&1)" '^resedge-agent [0-9]'
    for s in postinst prerm postrm; do
        check "agent $s is valid sh" sh -n "$T/agent.ctl/$s"
    done

    # systemd-analyze verify against the scratch root: the packages' files
    # plus the host's own units and /bin/kill.
    if command -v systemd-analyze >/dev/null; then
        dpkg -x "$hub_deb" "$R"
        mkdir -p "$R/lib/systemd/system" "$R/bin"
        cp -rn /lib/systemd/system/. "$R/lib/systemd/system/" 2>/dev/null
        for k in /bin/kill /usr/bin/kill; do [ -x "$k" ] && cp "$k" "$R/bin/kill" && break; done
        for u in resedge-hub resedge-agent; do
            check "systemd-analyze verify $u.service in the package root" \
                systemd-analyze verify --man=no --root="$R" "$u.service"
        done
        check "hub ExecStart binary is in the package" test -x "$R/usr/bin/resedge-hub"
        check "resedgectl is in the hub package" test -x "$R/usr/bin/resedgectl"
        check "resedgectl bash completion is in the hub package" \
            test -f "$R/usr/share/bash-completion/completions/resedgectl"
    fi

    # ---- lintian ----
    if command -v lintian >/dev/null; then
        for d in "$hub_deb" "$agent_deb"; do
            lintian --fail-on error \
                "$d" >"$T/lintian.out" 2>&1
            rc=$?
            sed 's/^/#   /' "$T/lintian.out" | grep -v 'root privileges' | head -20
            if [ $rc -eq 0 ] && ! grep -q '^E:' "$T/lintian.out"; then
                ok "lintian: no errors in $(basename "$d")"
            else
                not_ok "lintian: no errors in $(basename "$d")"
            fi
        done
    else
        not_ok "lintian is installed (make deps installs it)"
    fi
fi

# ---- make install / install-units ----
I=$T/inst
if make -s -C "$top" install DESTDIR="$I" PREFIX=/usr >"$T/install.log" 2>&1; then
    ok "make install DESTDIR=... PREFIX=/usr"
else
    not_ok "make install DESTDIR=... PREFIX=/usr"; sed 's/^/#   /' "$T/install.log" | tail -20
fi
for p in resedge-hub resedge-agent resedgectl; do
    check "make install puts $p in DESTDIR/usr/bin" test -x "$I/usr/bin/$p"
done
if make -s -C "$top" install-units DESTDIR="$I" PREFIX=/usr >"$T/install-units.log" 2>&1; then
    ok "make install-units DESTDIR=... PREFIX=/usr"
else
    not_ok "make install-units DESTDIR=... PREFIX=/usr"; sed 's/^/#   /' "$T/install-units.log" | tail -20
fi
for u in resedge-hub resedge-agent; do
    f=$I/lib/systemd/system/$u.service
    check "install-units puts $u.service in DESTDIR/lib/systemd/system" test -f "$f"
    exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$f" 2>/dev/null)
    check "installed $u.service runs an installed binary ($exe)" test -x "$I$exe"
done
check "install-units installs /etc/resedge/agent.conf" test -f "$I/etc/resedge/agent.conf"
make -s -C "$top" install-units DESTDIR="$T/local" PREFIX=/usr/local >/dev/null 2>&1
check_match "PREFIX=/usr/local units run PREFIX/bin" \
    "$(sed -n 's/^ExecStart=//p' "$T/local/usr/local/lib/systemd/system/resedge-agent.service" 2>/dev/null)" \
    '^/usr/local/bin/resedge-agent '

done_testing
