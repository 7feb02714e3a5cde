#!/bin/bash
# selftest.sh -- prove the integration-test infrastructure itself, using the
# system's own TLS clients (curl, python3's ssl module); tlsshim is NOT
# involved.  If this fails, no tlsshim integration test can be trusted.
#
# Every check reads the evidence on the SERVER side (tserver's log, nginx's
# access log, the page openssl s_server generates), as the real tests do.

# start_* set ${NAME}_port, ${NAME}_log, ... dynamically:
# shellcheck disable=SC2154

. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl
[ -x "$PYTHON" ] || skip_all "python3 not found at '$PYTHON'"
[ -x "$TSERVER" ] || bail_out "tserver not built: '$TSERVER'"
[ -f "$CERTS/ca.pem" ] || bail_out "certificates missing in '$CERTS' (run tests/gen-certs.sh)"

CA=$CERTS/ca.pem
# curl with a bounded run time; never uses a proxy from the environment
CURL=(curl -sS --noproxy '*' --max-time 20)

# ---- a python3 TLS client with a few sub-commands --------------------------------
cat >"$WORK/client.py" <<'PYEOF'
"""Test client for selftest.sh.  usage: client.py CMD PORT [ARGS]"""
import hashlib, socket, ssl, sys, os, time

CERTS = os.environ["CERTS"]

def ctx(cert=None):
    c = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
    c.minimum_version = ssl.TLSVersion.TLSv1_3
    if cert:
        c.load_cert_chain(os.path.join(CERTS, cert + ".pem"),
                          os.path.join(CERTS, cert + "-key.pem"))
    return c

def connect(c, port, session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=15)
    return c.wrap_socket(raw, server_hostname="localhost", session=session)

def read_all(s):
    out = b""
    while True:
        try:
            d = s.recv(65536)
        except ssl.SSLZeroReturnError:
            break
        if not d:
            break
        out += d
    return out

def http_get(s, path="/"):
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    return read_all(s)

cmd, port = sys.argv[1], int(sys.argv[2])

if cmd == "resume":
    # Two connections in one process; the second offers the first's session.
    c = ctx()
    s1 = connect(c, port)
    b1 = http_get(s1)
    sess = s1.session
    reused1 = s1.session_reused
    s1.close()
    s2 = connect(c, port, session=sess)
    b2 = http_get(s2)
    print("client-view reused=%s,%s" % (reused1, s2.session_reused))
    s2.close()
    sys.exit(0 if b"hello from tserver" in b1 and b"hello from tserver" in b2 else 1)

elif cmd == "banner":
    # Server speaks first; then it echoes what we send.  End with close_notify.
    s = connect(ctx(), port)
    banner = b""
    while not banner.endswith(b"\r\n"):
        d = s.recv(100)
        if not d:
            break
        banner += d
    s.sendall(b"EHLO selftest\r\n")
    echo = b""
    while not echo.endswith(b"\r\n"):
        d = s.recv(100)
        if not d:
            break
        echo += d
    s.unwrap()
    s.close()
    print(banner.decode().strip())
    print(echo.decode().strip())

elif cmd == "echo":
    # Send N bytes in pieces, read them back, compare.
    n = int(sys.argv[3])
    data = bytes((i * 7) % 256 for i in range(n))
    s = connect(ctx(), port)
    got = b""
    for off in range(0, n, 10000):
        s.sendall(data[off:off + 10000])
    while len(got) < n:
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.unwrap()
    s.close()
    sys.exit(0 if got == data else 1)

elif cmd == "sink":
    # Send N bytes, close without close_notify (plain EOF); print their sha256.
    n = int(sys.argv[3])
    data = bytes((i * 13) % 256 for i in range(n))
    s = connect(ctx(), port)
    s.sendall(data)
    s.shutdown(socket.SHUT_RDWR)
    s.close()
    print(hashlib.sha256(data).hexdigest())

elif cmd == "concurrent":
    # Two connections open at once: the server must serve the second while
    # the first is still open (a non-forking server would hang here).
    c = ctx()
    a = connect(c, port)
    a.sendall(b"first\n")
    assert a.recv(100) == b"first\n"
    b = connect(c, port)
    b.sendall(b"second\n")
    ok = b.recv(100) == b"second\n"
    a.unwrap(); a.close()
    b.unwrap(); b.close()
    sys.exit(0 if ok else 1)

elif cmd == "garbage":
    # Plaintext garbage instead of a ClientHello.
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(64))
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()

elif cmd == "pattern-sha256":
    # Expected sha256 of tserver's /bytes/N body: byte i = i % 251.
    n = port
    h = hashlib.sha256()
    block = bytes(i % 251 for i in range(251)) * 64   # a whole number of periods
    while n >= len(block):
        h.update(block)
        n -= len(block)
    h.update(block[:n])
    print(h.hexdigest())

else:
    sys.exit("unknown command " + cmd)
PYEOF
pyclient() { "$PYTHON" "$WORK/client.py" "$@"; }

# field SRV N FIELD: shorthand for tserver_field on $WORK/SRV.log
field() { tserver_field "$WORK/$1.log" "$2" "$3"; }

# ==== 1. tserver, HTTP mode, curl ===================================================
start_tserver srv
body=$("${CURL[@]}" --cacert "$CA" "https://localhost:$srv_port/")
like "$body" '^hello from tserver' "curl gets the tserver body over TLS"
like "$body" 'sni=localhost' "tserver saw SNI localhost (body)"
check "tserver logged the connection" wait_for_lines "$srv_log" 1
is "$(field srv 1 status)" ok "log: status=ok"
is "$(field srv 1 version)" TLS1.3 "log: version=TLS1.3"
like "$(field srv 1 cipher)" '^(AES-(128|256)-GCM|CHACHA20-POLY1305)$' "log: an AEAD cipher"
is "$(field srv 1 sni)" localhost "log: sni=localhost"
is "$(field srv 1 resumed)" 0 "log: resumed=0"
is "$(field srv 1 client_cert)" - "log: no client certificate"
is "$(field srv 1 first_line)" "GET / HTTP/1.1" "log: first_line is the request line (decoded)"
like "$(field srv 1 bytes_in)" '^[1-9][0-9]*$' "log: bytes_in > 0"
like "$(field srv 1 closed)" '^(notify|eof)$' "log: client closed cleanly ($(field srv 1 closed))"
grep -q '^listening port=' "$srv_log"
ok $? "log: listening line"

# IP address as destination: no SNI may be sent for an IP (RFC 6066)
"${CURL[@]}" --cacert "$CA" -o /dev/null "https://127.0.0.1:$srv_port/"
ok $? "curl to 127.0.0.1 verifies (IP SAN)"
wait_for_lines "$srv_log" 2
is "$(field srv 2 sni)" - "log: no SNI for an IP literal"

# bytes_in is exact: a POST with a known body
"${CURL[@]}" --cacert "$CA" -o /dev/null -H 'User-Agent: x' -H 'Accept:' \
    --data-binary 'abcdefghij' "https://localhost:$srv_port/post"
wait_for_lines "$srv_log" 3
req="POST /post HTTP/1.1\r\nHost: localhost:$srv_port\r\nUser-Agent: x\r\nContent-Length: 10\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nabcdefghij"
exp_len=$(printf '%b' "$req" | wc -c)
exp_sha=$(printf '%b' "$req" | sha256sum | cut -d' ' -f1)
is "$(field srv 3 bytes_in)" "$exp_len" "log: bytes_in counts exactly the application bytes"
is "$(field srv 3 sha256_in)" "$exp_sha" "log: sha256_in is the hash of the received bytes"

# ==== 2. big download with a checksum ===============================================
got=$("${CURL[@]}" --cacert "$CA" "https://localhost:$srv_port/bytes/1000000" | sha256sum | cut -d' ' -f1)
exp=$(pyclient pattern-sha256 1000000)
is "$got" "$exp" "/bytes/1000000 has the expected sha256"
wait_for_lines "$srv_log" 4
out=$(field srv 4 bytes_out)
[ "${out:-0}" -gt 1000000 ]
ok $? "log: bytes_out > 1000000 ($out)"

# ==== 3. session resumption (python, one process, two connections) =================
start_tserver res
out=$(pyclient resume "$res_port" 2>&1)
ok $? "python client: two requests"
diag "$out"
check "res: two conn lines" wait_for_lines "$res_log" 2
is "$(field res 1 resumed)" 0 "log: first connection is a full handshake"
is "$(field res 2 resumed)" 1 "log: second connection RESUMED (ticket from the first)"
is "$(field res 2 version)" TLS1.3 "log: resumed connection is TLS1.3"

# ==== 4. client certificates ======================================================
start_tserver mtls --require-client-cert --client-ca "$CA"
body=$("${CURL[@]}" --cacert "$CA" --cert "$CERTS/client.pem" --key "$CERTS/client-key.pem" \
    "https://localhost:$mtls_port/")
like "$body" 'hello from tserver' "curl with client cert gets the body"
wait_for_lines "$mtls_log" 1
like "$(field mtls 1 client_cert)" 'CN=tlsshim-client' "log: client_cert has CN=tlsshim-client"
is "$(field mtls 1 status)" ok "log: mTLS status=ok"

check_fail "curl WITHOUT client cert fails" \
    "${CURL[@]}" --cacert "$CA" "https://localhost:$mtls_port/"
wait_for_lines "$mtls_log" 2
like "$(field mtls 2 status)" '^(handshake-failed|io-error)$' "log: no cert -> $(field mtls 2 status)"
is "$(field mtls 2 bytes_in)" 0 "log: no cert -> bytes_in=0"
is "$(field mtls 2 client_cert)" - "log: no cert -> client_cert=-"
diag "reason without client cert: $(field mtls 2 reason)"

check_fail "curl with a client cert from a foreign CA fails" \
    "${CURL[@]}" --cacert "$CA" --cert "$CERTS/untrusted.pem" --key "$CERTS/untrusted-key.pem" \
    "https://localhost:$mtls_port/"
wait_for_lines "$mtls_log" 3
is "$(field mtls 3 status)" handshake-failed "log: foreign client cert -> handshake-failed"
is "$(field mtls 3 bytes_in)" 0 "log: foreign client cert -> bytes_in=0"
diag "reason with foreign cert: $(field mtls 3 reason)"

# --request-client-cert: a certificate is optional
start_tserver req --request-client-cert --client-ca "$CA"
"${CURL[@]}" --cacert "$CA" -o /dev/null "https://localhost:$req_port/"
ok $? "request-client-cert: curl without cert succeeds"
"${CURL[@]}" --cacert "$CA" -o /dev/null --cert "$CERTS/client.pem" --key "$CERTS/client-key.pem" \
    "https://localhost:$req_port/"
ok $? "request-client-cert: curl with cert succeeds"
wait_for_lines "$req_log" 2
is "$(field req 1 client_cert)" - "log: optional cert absent"
like "$(field req 2 client_cert)" 'CN=tlsshim-client' "log: optional cert present"

# ==== 5. TLS 1.2-only server ======================================================
start_tserver t12 --tls12-only
check_fail "curl --tlsv1.3 against a TLS1.2-only server fails" \
    "${CURL[@]}" --cacert "$CA" --tlsv1.3 "https://localhost:$t12_port/"
wait_for_lines "$t12_log" 1
is "$(field t12 1 status)" handshake-failed "log: TLS1.3-only client -> handshake-failed"
is "$(field t12 1 bytes_in)" 0 "log: bytes_in=0"
diag "reason: $(field t12 1 reason)"
"${CURL[@]}" --cacert "$CA" -o /dev/null "https://localhost:$t12_port/"
ok $? "plain curl against the TLS1.2-only server works"
wait_for_lines "$t12_log" 2
is "$(field t12 2 version)" TLS1.2 "log: version=TLS1.2"

# ==== 6. banner mode (server speaks first) =========================================
start_tserver ban --mode banner
out=$(pyclient banner "$ban_port")
is "$(printf '%s\n' "$out" | sed -n 1p)" "220 tserver ready" "banner received"
is "$(printf '%s\n' "$out" | sed -n 2p)" "EHLO selftest" "line echoed back"
wait_for_lines "$ban_log" 1
is "$(field ban 1 first_line)" "EHLO selftest" "log: first_line=EHLO selftest"
is "$(field ban 1 bytes_in)" 15 "log: bytes_in=15"
is "$(field ban 1 closed)" notify "log: client sent close_notify"

# ==== 7. echo mode, concurrency, sink mode =====================================
start_tserver ech --mode echo
check "echo: 100000 bytes come back intact" pyclient echo "$ech_port" 100000
wait_for_lines "$ech_log" 1
is "$(field ech 1 bytes_in)" 100000 "log: echo bytes_in=100000"
is "$(field ech 1 bytes_out)" 100000 "log: echo bytes_out=100000"
check "two concurrent connections are served" timeout 20 "$PYTHON" "$WORK/client.py" concurrent "$ech_port"

start_tserver snk --mode sink
sha=$(pyclient sink "$snk_port" 54321)
wait_for_lines "$snk_log" 1
is "$(field snk 1 bytes_in)" 54321 "log: sink bytes_in=54321"
is "$(field snk 1 sha256_in)" "$sha" "log: sink sha256_in matches what was sent"
is "$(field snk 1 closed)" eof "log: EOF without close_notify -> closed=eof"
is "$(field snk 1 bytes_out)" 0 "log: sink sends nothing"

# ==== 8. robustness: garbage, then a normal client =================================
start_tserver rob
pyclient garbage "$rob_port"
wait_for_lines "$rob_log" 1
is "$(field rob 1 status)" handshake-failed "log: garbage -> handshake-failed"
diag "reason: $(field rob 1 reason)"
"${CURL[@]}" --cacert "$CA" -o /dev/null "https://localhost:$rob_port/"
ok $? "server still serves after garbage"

# ==== 9. ALPN ============================================================================
start_tserver alp --alpn h2,http/1.1
"${CURL[@]}" --cacert "$CA" --http1.1 -o /dev/null "https://localhost:$alp_port/"
wait_for_lines "$alp_log" 1
is "$(field alp 1 alpn)" "http/1.1" "log: alpn=http/1.1"

# ==== 10. --max-conns: the server exits after N connections =======================
start_tserver one --max-conns 1
"${CURL[@]}" --cacert "$CA" -o /dev/null "https://localhost:$one_port/"
for _ in $(seq 50); do kill -0 "$one_pid" 2>/dev/null || break; sleep 0.1; done
check_fail "--max-conns 1: server exited after one connection" kill -0 "$one_pid"
is "$(tserver_conns "$one_log")" 1 "--max-conns 1: exactly one conn line"

# ==== 11. IPv6 (::1), if the host has it ============================================
if "$PYTHON" -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
    start_tserver six --ipv6
    "${CURL[@]}" --cacert "$CA" -o /dev/null "https://[::1]:$six_port/"
    ok $? "curl to [::1] works"
    wait_for_lines "$six_log" 1
    like "$(field six 1 peer)" '^\[::1\]:' "log: peer is ::1"
else
    skip "curl to [::1] works" "no IPv6 loopback"
    skip "log: peer is ::1" "no IPv6 loopback"
fi

# ==== 12. openssl s_server ===========================================================
if command -v "$OPENSSL" >/dev/null 2>&1; then
    start_openssl_server oss -www
    page=$("${CURL[@]}" --cacert "$CA" "https://localhost:$oss_port/")
    ok $? "curl against openssl s_server -www"
    # The page is generated by s_server from ITS view of the session.
    like "$page" 'Protocol +: TLSv1\.3' "s_server's page: session protocol TLSv1.3"
    like "$page" '1 server accepts that finished' "s_server's page: one completed accept"

    # Without -www, s_server logs the cipher and the data it received.
    start_openssl_server oss2
    "$PYTHON" - "$oss2_port" <<'PYEOF'
import os, socket, ssl, sys, time
c = ssl.create_default_context(cafile=os.path.join(os.environ["CERTS"], "ca.pem"))
s = c.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10),
                  server_hostname="localhost")
s.sendall(b"hello s_server\n")
time.sleep(0.2)
s.unwrap()
s.close()
PYEOF
    check "s_server log shows the received data" wait_for_match "$oss2_log" '^hello s_server$'
    check "s_server log shows a TLS1.3 cipher" grep -Eq '^CIPHER is TLS_(AES|CHACHA)' "$oss2_log"
else
    for d in 1 2 3 4 5; do skip "openssl s_server check $d" "openssl not found"; done
fi

# ==== 13. nginx ======================================================================
if [ -x "$NGINX" ]; then
    start_nginx ngx
    body=$("${CURL[@]}" --cacert "$CA" "https://localhost:$ngx_port/" -H 'Connection: close' \
        --next --cacert "$CA" "https://localhost:$ngx_port/again" -H 'Connection: close')
    is "$body" "$(printf 'hello from nginx\nhello from nginx')" "curl gets nginx's body twice"
    check "nginx logged two requests" wait_for_requests "$ngx_log" 2
    is "$(nginx_field "$ngx_log" 1 proto)" TLSv1.3 "nginx log: TLSv1.3"
    is "$(nginx_field "$ngx_log" 1 sni)" localhost "nginx log: sni=localhost"
    is "$(nginx_field "$ngx_log" 1 reused)" . "nginx log: first connection not reused"
    is "$(nginx_field "$ngx_log" 2 reused)" r "nginx log: second connection reused (r)"
    is "$(nginx_field "$ngx_log" 2 request)" "GET /again HTTP/1.1" "nginx log: request field"

    body=$("${CURL[@]}" "http://127.0.0.1:$ngx_plain_port/plain")
    is "$body" "hello from nginx" "nginx plain HTTP port"
    wait_for_match "$ngx_log" 'request=GET /plain'
    is "$(nginx_field "$ngx_log" 3 proto)" - "nginx log: no TLS on the plain port"

    start_nginx ngm mtls
    body=$("${CURL[@]}" --cacert "$CA" --cert "$CERTS/client.pem" --key "$CERTS/client-key.pem" \
        "https://localhost:$ngm_port/")
    is "$body" "hello from nginx" "nginx mtls: curl with client cert"
    wait_for_match "$ngm_log" 'request='
    like "$(nginx_field "$ngm_log" 1 client_dn)" 'CN=tlsshim-client' "nginx log: client DN"
    code=$("${CURL[@]}" --cacert "$CA" -o /dev/null -w '%{http_code}' "https://localhost:$ngm_port/")
    is "$code" 400 "nginx mtls: no client cert -> HTTP 400"
else
    for d in 1 2 3 4 5 6 7 8 9 10 11 12 13; do skip "nginx check $d" "nginx not found"; done
fi

# ==== 14. gnutls-serv is available for tests that want it ============================
if command -v gnutls-serv >/dev/null 2>&1; then
    check "gnutls-serv runs" gnutls-serv --version
else
    skip "gnutls-serv runs" "gnutls-serv not installed"
fi

done_testing
