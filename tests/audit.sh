#!/usr/bin/env bash
# audit.sh - the TLS audit (`make audit`): starts a real hub and checks its
# TLS policy from outside with sslscan: only TLS 1.2 (no SSLv2/SSLv3, TLS
# 1.0, 1.1; mbedTLS 2.28 has no TLS 1.3), only ECDHE key exchange with AEAD
# ciphers, no renegotiation. sslscan (OpenSSL 3) cannot offer compression,
# so a hand-built ClientHello offering DEFLATE checks that the hub picks
# "null" compression. Prints TAP; exits non-zero on any failure.
# Needs sslscan (Debian package sslscan: `make deps` installs it).
set -u
. "$(dirname "$0")/e2e/lib.sh"

if ! command -v sslscan >/dev/null; then
    not_ok "sslscan is installed (apt-get install sslscan, or make deps)"
    done_testing; exit 1
fi
hub_init || { not_ok "hub init"; done_testing; exit 1; }
hub_start || { not_ok "hub starts"; done_testing; exit 1; }

sslscan --no-colour --no-heartbleed 127.0.0.1:"$HUB_PORT" >"$T/sslscan.txt" 2>&1
scan=$(cat "$T/sslscan.txt")
diag "sslscan $(sslscan --version 2>/dev/null | grep -m1 -oE '[0-9]+\.[0-9]+\.[0-9]+') against $HUB_URL"
sed -n '/SSL\/TLS Protocols/,/Server Key Exchange/p' "$T/sslscan.txt" | sed 's/^/#   /'

proto() { grep -E "^$1 +(enabled|disabled)" <<<"$scan" | awk '{print $2}'; }
check_eq "TLS 1.2 enabled" "$(proto 'TLSv1\.2')" enabled
for p in SSLv2 SSLv3 'TLSv1\.0' 'TLSv1\.1' 'TLSv1\.3'; do
    check_eq "${p//\\/} disabled" "$(proto "$p")" disabled
done

ciphers=$(grep -E '^(Preferred|Accepted) ' <<<"$scan")
check "at least one cipher suite accepted" test -n "$ciphers"
bad=$(awk '$2 != "TLSv1.2" { print; next }
           $5 !~ /^ECDHE-/ { print; next }
           $5 !~ /(GCM|CHACHA20-POLY1305|CCM)/ { print }' <<<"$ciphers")
check_eq "every accepted suite is TLS 1.2, ECDHE and AEAD" "$bad" ""
check_match "renegotiation not supported" \
    "$(grep -A1 'TLS renegotiation:' <<<"$scan" | tail -1)" '^Session renegotiation not supported'
check_match "not vulnerable to heartbleed" "$(sslscan --no-colour --no-ciphersuites \
    --no-renegotiation --no-compression --no-fallback --no-groups --no-check-certificate \
    127.0.0.1:"$HUB_PORT" 2>&1 | grep -i heartbleed | tail -1)" 'not vulnerable'

# Compression: offer DEFLATE (1) and null (0); the ServerHello must pick 0.
comp=$(python3 - "$HUB_PORT" <<'PY'
import os, socket, struct, sys
port = int(sys.argv[1])
def ext(t, data): return struct.pack("!HH", t, len(data)) + data
exts = (ext(10, struct.pack("!HH", 2, 23))                    # supported_groups: secp256r1
        + ext(11, b"\x01\x00")                                 # ec_point_formats: uncompressed
        + ext(13, struct.pack("!HHH", 4, 0x0403, 0x0503))      # ecdsa sha256/384
        + ext(0xff01, b"\x00"))                                # renegotiation_info (empty)
suites = [0xC02B, 0xC02C, 0xCCA9]                               # ECDHE-ECDSA AEAD suites
body = (b"\x03\x03" + os.urandom(32) + b"\x00"
        + struct.pack("!H", 2 * len(suites)) + b"".join(struct.pack("!H", s) for s in suites)
        + b"\x02\x01\x00"                                      # compression: deflate, null
        + struct.pack("!H", len(exts)) + exts)
hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
rec = b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(rec)
buf = b""
while len(buf) < 5 or len(buf) < 5 + struct.unpack("!H", buf[3:5])[0]:
    d = s.recv(65536)
    if not d:
        break
    buf += d
if len(buf) < 5 or buf[0] != 0x16 or buf[5] != 0x02:
    print("no-serverhello:" + buf[:8].hex()); sys.exit(0)
p = 9 + 2 + 32                                                 # header, version, random
p += 1 + buf[p]                                                # session id
print("suite=%04x compression=%d" % (struct.unpack("!H", buf[p:p + 2])[0], buf[p + 2]))
PY
)
check_match "the hub chooses no compression when DEFLATE is offered" "$comp" 'compression=0$'
diag "ServerHello: $comp"

hub_stop
done_testing
