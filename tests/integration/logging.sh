#!/bin/bash
# logging.sh -- "keylog = /abs/path" (NSS key log for debugging) and
# "log-format = json".  Proves:
#   * keylog: the file is created with mode 600 and holds, for each
#     connection, CLIENT_HANDSHAKE_TRAFFIC_SECRET / SERVER_... /
#     CLIENT_TRAFFIC_SECRET_0 / SERVER_TRAFFIC_SECRET_0 lines (64-hex client
#     random, hex secret) whose client random is the one tserver logged for
#     that connection (client_random=); a warning is logged per connection;
#   * SSLKEYLOGFILE in the environment, without keylog (or keylog = off):
#     no key log is written (the connection works);
#   * tlsshim check refuses a keylog file readable by others, a symbolic
#     link, a relative path (FILE:LINE);
#   * log-format = json: every log line is a JSON object; the "connected"
#     event has rule, app_dest, dest, server_name, verified, version, cipher,
#     group, alpn, resumed, early_data, peer_subject, peer_issuer,
#     peer_spki_sha256, peer_expiry -- matching the server's view (port,
#     cipher, group, resumed) and the certificate (pin-server.txt, expiry);
#     a failure (wrong name) gives an error event with a reason, and the
#     server got no application bytes; every connection whose secrets went
#     to the key log (the failed one too) has its warning.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl openssl
need_tlsshim

start_tserver srv
field() { tserver_field "$srv_log" "$@"; }

# ==== 1. keylog ===============================================================================
write_policy "$WORK/kl.policy" <<EOF
log = file:$WORK/kl.tlsshim.log
log-level = info
keylog = $WORK/keys.log

[kl]
match = localhost:18080
port = $srv_port
ca = $CERTS/ca.pem
EOF
before=$(tserver_conns "$srv_log")
(umask 022 && tlsshim_run "$WORK/kl.policy" "${CURL[@]}" -o /dev/null -o /dev/null \
    http://localhost:18080/k1 http://localhost:18080/k2)
ok $? "keylog: curl (two URLs) exits 0"
check "keylog: server logged two connections" wait_for_lines "$srv_log" $((before + 2))
check "keylog: the key log file exists" test -f "$WORK/keys.log"
is "$(stat -c %a "$WORK/keys.log" 2>/dev/null)" 600 "keylog: file mode 600 (even with umask 022)"
bad=$(grep -Evc '^[A-Z0-9_]+ [0-9a-f]{64} [0-9a-f]{64,96}$' "$WORK/keys.log")
is "$bad" 0 "keylog: every line is LABEL <64-hex random> <hex secret>"
for n in 1 2; do
    cr=$(field $((before + n)) client_random)
    like "$cr" '^[0-9a-f]{64}$' "keylog: server logged conn $n's client random"
    labels=$(awk -v r="$cr" '$2 == r {print $1}' "$WORK/keys.log" | sort | tr '\n' ' ')
    like "$labels" 'CLIENT_HANDSHAKE_TRAFFIC_SECRET .*CLIENT_TRAFFIC_SECRET_0 .*SERVER_HANDSHAKE_TRAFFIC_SECRET .*SERVER_TRAFFIC_SECRET_0' \
        "keylog: conn $n (server's client random): handshake and traffic secrets, both sides"
done
is "$(awk '{print $2}' "$WORK/keys.log" | sort -u | wc -l | tr -d ' ')" 2 "keylog: secrets of exactly the two connections"
is "$(grep -c "warning: rule \[kl\] .*key log: this connection's secrets were written to $WORK/keys.log" \
    "$WORK/kl.tlsshim.log")" 2 "keylog: one warning per connection"

# ==== 2. SSLKEYLOGFILE alone never turns it on ======================================================
for v in absent off; do
    {
        echo "log = file:$WORK/env-$v.tlsshim.log"
        echo "log-level = info"
        [ $v = off ] && echo "keylog = off"
        echo "[env]"
        echo "match = localhost:18080"
        echo "port = $srv_port"
        echo "ca = $CERTS/ca.pem"
    } | write_policy "$WORK/env-$v.policy"
    # a raw-socket client: it has no TLS of its own that could honour the variable
    before=$(tserver_conns "$srv_log")
    out=$(SSLKEYLOGFILE=$WORK/env-$v.keys tlsshim_run "$WORK/env-$v.policy" "$PYTHON" -c '
import socket
s = socket.create_connection(("localhost", 18080), timeout=20)
s.sendall(b"GET /env HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
d = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    d += c
print(d.split(b"\r\n")[0].decode())')
    is "$out" "HTTP/1.1 200 OK" "SSLKEYLOGFILE, keylog $v: the connection works"
    check "SSLKEYLOGFILE, keylog $v: server got the request" wait_for_lines "$srv_log" $((before + 1))
    is "$(field last first_line)" "GET /env HTTP/1.1" "SSLKEYLOGFILE, keylog $v: server: request line"
    check_fail "SSLKEYLOGFILE, keylog $v: no key log file created" test -e "$WORK/env-$v.keys"
    check_fail "SSLKEYLOGFILE, keylog $v: no key log warning" grep -q 'key log' "$WORK/env-$v.tlsshim.log"
done
# curl (OpenSSL) opens SSLKEYLOGFILE itself; tlsshim must write nothing to it
SSLKEYLOGFILE=$WORK/curl.keys tlsshim_run "$WORK/env-absent.policy" "${CURL[@]}" -o /dev/null http://localhost:18080/env2
ok $? "SSLKEYLOGFILE + curl: curl exits 0"
is "$(cat "$WORK/curl.keys" 2>/dev/null | wc -l | tr -d ' ')" 0 "SSLKEYLOGFILE + curl: no secrets in it"

# ==== 3. keylog files tlsshim check refuses ===========================================================
# badkeylog WHAT PATH REGEX
badkeylog() {
    printf 'log-level = info\nkeylog = %s\n[r]\nmatch = localhost:18080\nport = 1\n' "$2" | write_policy "$WORK/bk.policy"
    local out st
    out=$("$TLSSHIM" check -p "$WORK/bk.policy" 2>&1)
    st=$?
    [ $st -ne 0 ]
    ok $? "keylog $1: tlsshim check fails (exit $st)"
    like "$out" "^$WORK/bk\.policy:2: .*$3" "keylog $1: FILE:2 and the reason"
}
(umask 022 && : >"$WORK/open.keys")
badkeylog "readable by others" "$WORK/open.keys" 'group or others'
ln -s "$WORK/keys.log" "$WORK/link.keys"
badkeylog "symbolic link" "$WORK/link.keys" 'symbolic link'
badkeylog "relative path" "keys.log" 'absolute path'
badkeylog "missing directory" "$WORK/nodir/keys.log" 'nodir'

# ==== 4. log-format = json ===============================================================================
write_policy "$WORK/json.policy" <<EOF
log = file:$WORK/json.log
log-level = debug
log-format = json
keylog = $WORK/json.keys

[api]
match = localhost:18080
port = $srv_port
ca = $CERTS/ca.pem

[wrong]
match = localhost:18081
port = $srv_port
ca = $CERTS/ca.pem
server-name = other.example
EOF
before=$(tserver_conns "$srv_log")
tlsshim_run "$WORK/json.policy" "${CURL[@]}" -o /dev/null -o /dev/null http://localhost:18080/j1 http://localhost:18080/j2
ok $? "json: curl (two URLs) exits 0"
check "json: server logged two connections" wait_for_lines "$srv_log" $((before + 2))
check_fail "json: wrong name: curl fails" tlsshim_run "$WORK/json.policy" "${CURL[@]}" -o /dev/null http://localhost:18081/j3
check "json: server logged the failed attempt" wait_for_lines "$srv_log" $((before + 3))
is "$(field $((before + 3)) bytes_in)" 0 "json: wrong name: server got no application bytes"

expiry=$(date -u -d "$(openssl x509 -in "$CERTS/server.pem" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)
res=$("$PYTHON" - "$WORK/json.log" "$srv_port" "$(cat "$CERTS/pin-server.txt")" "$expiry" \
    "$(field $((before + 1)) cipher)" "$(field $((before + 1)) group)" <<'PY'
import json, sys
path, port, pin, expiry, cipher, group = sys.argv[1:]
lines = open(path).read().splitlines()
out = []
objs = []
for i, l in enumerate(lines, 1):
    try:
        o = json.loads(l)
        assert isinstance(o, dict)
        objs.append(o)
    except Exception as e:
        out.append(f"line {i} is not a JSON object: {l[:80]!r}")
print("parse", "ok" if not out and lines else "; ".join(out) or "empty log")
conn = [o for o in objs if o.get("event") == "connected"]
print("connected", len(conn))
want = ["rule", "app_dest", "dest", "server_name", "verified", "version", "cipher", "group", "alpn",
        "resumed", "early_data", "peer_subject", "peer_issuer", "peer_spki_sha256", "peer_expiry"]
missing = sorted({k for o in conn for k in want if k not in o})
print("missing", ",".join(missing) or "-")
if conn:
    c = conn[0]
    print("values1", c.get("rule"), c.get("app_dest"), c.get("dest") == f"127.0.0.1:{port}",
          c.get("server_name"), c.get("verified"), c.get("version"), c.get("cipher") == cipher,
          c.get("group") == group, c.get("resumed"), c.get("early_data"))
    print("spki", c.get("peer_spki_sha256") == pin)
    print("expiry", c.get("peer_expiry") == expiry, c.get("peer_expiry"))
    print("subject", "CN=localhost" in str(c.get("peer_subject")), "CN=tlsshim test CA" in str(c.get("peer_issuer")))
if len(conn) > 1:
    print("resumed2", conn[1].get("resumed"))
fails = [o for o in objs if o.get("level") == "error"]
print("fail", len(fails), fails[0].get("rule") if fails else "-", fails[0].get("event") if fails else "-",
      "does not match" in str(fails[0].get("reason")) if fails else False)
warn = [o for o in objs if o.get("level") == "warning" and "secrets were written" in json.dumps(o)]
print("keylogwarn", len(warn))
PY
)
diag "$res"
r() { printf '%s\n' "$res" | sed -n "s/^$1 //p"; }
is "$(r parse)" ok "json: every log line is a JSON object"
is "$(r connected)" 2 "json: two connected events"
is "$(r missing)" - "json: connected events have every documented field"
is "$(r values1)" "api 127.0.0.1:18080 True localhost True TLS1.3 True True False -" \
    "json: 1st connected: rule, app_dest, dest (server's port), server_name, verified, version, cipher/group = server's"
is "$(r spki)" True "json: peer_spki_sha256 = pin-server.txt"
is "$(r expiry | cut -d' ' -f1)" True "json: peer_expiry = the certificate's notAfter ($expiry)"
is "$(r subject)" "True True" "json: peer_subject / peer_issuer"
is "$(r resumed2)" True "json: 2nd connection resumed=true"
is "$(field $((before + 2)) resumed)" 1 "json: server: 2nd connection resumed"
is "$(r fail)" "1 wrong TLS handshake failed True" "json: the wrong-name failure: one error event, rule, event, reason"
[ "$(r keylogwarn)" -ge 2 ]
ok $? "json: the per-connection key log warnings are JSON too (one per connected event at least)"
# the failed handshake got as far as the handshake secrets: they were
# written, so it needs its warning too
nkeys=$(awk '{print $2}' "$WORK/json.keys" 2>/dev/null | sort -u | wc -l | tr -d ' ')
is "$nkeys $(r keylogwarn)" "$nkeys $nkeys" \
    "json: a key log warning for every connection with secrets in the key log (incl. the failed one)"

done_testing
