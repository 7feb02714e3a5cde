#!/bin/bash
# inbound_mtls.sh -- an unmodified plaintext HTTP server (clients/http_server.py,
# one thread per connection, blocking I/O) becomes a TLS 1.3 server with mTLS
# by policy alone.  Real clients (curl, openssl s_client); evidence from both
# ends: what the client saw (TLS 1.3, the verified server certificate, the
# alert that refused it) and what the server saw (the plain request line
# and the client's real address, or nothing at all), plus the log line.
#   client-ca + allow-client uri:: the allowed SPIFFE client is served, its
#     identity logged; another client of the same CA is refused
#     (allow-client), so is a client without a certificate and one from
#     another CA -- and the server saw none of their requests;
#   a TLS 1.2 client and a plaintext client are refused, the server saw
#     nothing; plaintext = allow serves a plaintext client in clear, with a
#     warning;
#   a second openssl connection resumes the session ("Reused"), mTLS
#     identity kept; the JSON log has the accepted event.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim spiffe-client.pem payroll-client.pem untrusted-client.pem
need_cmd curl openssl
need_python

echo "hello over inbound TLS" >"$WORK/hello.txt"

# serve NAME [POLICY LINES...]: the HTTP server under tlsshim with an
# inbound rule for its port; the server's request log is $WORK/NAME.req.
serve() {
    local name=$1 port
    shift
    port=$(free_port)
    {
        echo "log = file:$WORK/$name.tlsshim.log"
        echo "log-level = info"
        [ -z "${LOG_FORMAT-}" ] || echo "log-format = $LOG_FORMAT"
        echo
        echo "[$name]"
        echo "listen = 127.0.0.1:$port"
        echo "cert = $CERTS/server.pem"
        echo "key = $CERTS/server-key.pem"
        for line; do echo "$line"; done
    } | write_policy "$WORK/$name.policy"
    : >"$WORK/$name.req"
    start_server "$name" "$TLSSHIM" -p "$WORK/$name.policy" "$PYTHON" "$CLIENTS/http_server.py" \
        "$port" "$WORK" "$WORK/$name.req" "$WORK/$name.port"
}

# get NAME [CURL OPTIONS...]: GET /hello.txt over TLS from server NAME.
get() {
    local name=$1 port_var="$1_port"
    shift
    "${CURL[@]}" --cacert "$CERTS/ca.pem" "$@" "https://localhost:${!port_var}/hello.txt"
}

plan 26

# ---- mTLS with allow-client -------------------------------------------------
serve mtls "client-ca = $CERTS/ca.pem" "allow-client = uri:spiffe://prod.example/ns/billing/*"

out=$(get mtls -v --cert "$CERTS/spiffe-client.pem" --key "$CERTS/spiffe-client-key.pem" 2>&1)
like "$out" "hello over inbound TLS" "allowed client (billing SPIFFE ID) gets the file"
like "$out" "SSL connection using TLSv1.3" "the client saw TLS 1.3"
like "$out" 'subjectAltName: host "localhost" matched' "the client verified the server certificate"
check "the server saw the plain request from 127.0.0.1" grep -q '^127\.0\.0\.1:[0-9]* GET /hello.txt HTTP/1.1$' "$WORK/mtls.req"
port=$(grep -o '^127\.0\.0\.1:[0-9]*' "$WORK/mtls.req" | head -1 | cut -d: -f2)
check "the log names the client's real address and identity" \
    grep -q "127\.0\.0\.1:$port -> 127\.0\.0\.1:${mtls_port}: accepted sni=localhost version=TLS1.3 .*client=spiffe://prod.example/ns/billing/api" "$WORK/mtls.tlsshim.log"

before=$(wc -l <"$WORK/mtls.req")
out=$(get mtls -v --cert "$CERTS/payroll-client.pem" --key "$CERTS/payroll-client-key.pem" 2>&1)
unlike_hello() { case "$1" in *"hello over inbound TLS"*) return 1 ;; esac; return 0; }
check "a client not in allow-client (payroll) gets no file" unlike_hello "$out"
wait_for_match "$WORK/mtls.tlsshim.log" "payroll" >/dev/null || true
check "its refusal is logged with the certificate's SAN" grep -q "spiffe://prod.example/ns/payroll/api" "$WORK/mtls.tlsshim.log"
check "the log says allow-client refused it" grep -qi "allow-client" "$WORK/mtls.tlsshim.log"

out=$(get mtls -v 2>&1)
check "a client without a certificate gets no file" unlike_hello "$out"
like "$out" "alert|reset|error" "... and curl reports the refusal"
out=$(get mtls -v --cert "$CERTS/untrusted-client.pem" --key "$CERTS/untrusted-client-key.pem" 2>&1)
check "a client from another CA gets no file" unlike_hello "$out"
is "$(wc -l <"$WORK/mtls.req")" "$before" "the server saw none of the refused clients' requests"
wait_until 5 grep -q "no certificate\|certificate_required\|did not send" "$WORK/mtls.tlsshim.log"
check "the log says the client sent no certificate" grep -qi "no certificate\|certificate_required\|did not send" "$WORK/mtls.tlsshim.log"
check "refusals are warnings, never errors" sh -c "! grep -q ': error: ' '$WORK/mtls.tlsshim.log'"

# ---- resumption: a second connection resumes, identity kept ---------------------
rm -f "$WORK/sess.pem"
# the ticket comes after the handshake: ask for something so it arrives
printf 'GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
    openssl s_client -connect "127.0.0.1:$mtls_port" -servername localhost -CAfile "$CERTS/ca.pem" \
        -cert "$CERTS/spiffe-client.pem" -key "$CERTS/spiffe-client-key.pem" -tls1_3 -sess_out "$WORK/sess.pem" \
        -ign_eof >"$WORK/s1.out" 2>&1 || true
like "$(cat "$WORK/s1.out")" "Verify return code: 0" "openssl verified the server (first connection)"
printf 'GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
    openssl s_client -connect "127.0.0.1:$mtls_port" -servername localhost -CAfile "$CERTS/ca.pem" \
        -cert "$CERTS/spiffe-client.pem" -key "$CERTS/spiffe-client-key.pem" -tls1_3 -sess_in "$WORK/sess.pem" \
        -ign_eof >"$WORK/s2.out" 2>&1 || true
like "$(cat "$WORK/s2.out")" "Reused, TLSv1.3" "openssl resumed the session"
like "$(cat "$WORK/s2.out")" "hello over inbound TLS" "... and got the file"
check "the log says resumed=yes with the client identity kept" \
    grep -q "resumed=yes client=spiffe://prod.example/ns/billing/api" "$WORK/mtls.tlsshim.log"

# ---- TLS 1.2 and plaintext clients: refused, the server saw nothing ----------
serve web
out=$(get web --tls-max 1.2 -v 2>&1)
check "a TLS 1.2 client gets no file" unlike_hello "$out"
out=$("${CURL[@]}" "http://127.0.0.1:$web_port/hello.txt" 2>&1)
check "a plaintext client gets no file" unlike_hello "$out"
is "$(wc -l <"$WORK/web.req")" 0 "the server saw neither request"
wait_until 5 grep -q "does not speak TLS" "$WORK/web.tlsshim.log"
check "the log names the plaintext client and its first bytes" \
    grep -q "127\.0\.0\.1:[0-9]* -> 127\.0\.0\.1:$web_port: refused: the client does not speak TLS (first bytes 47 45 54 20" "$WORK/web.tlsshim.log"

# ---- plaintext = allow: migration mode ---------------------------------------
LOG_FORMAT=json serve mixed "plaintext = allow"
out=$("${CURL[@]}" "http://127.0.0.1:$mixed_port/hello.txt" 2>&1)
like "$out" "hello over inbound TLS" "plaintext = allow: a plaintext client is served in clear"
out=$(get mixed 2>&1)
like "$out" "hello over inbound TLS" "... and a TLS client over TLS"
is "$(wc -l <"$WORK/mixed.req")" 2 "the server saw both requests"
wait_until 5 grep -q '"event":"accepted"' "$WORK/mixed.tlsshim.log"
check "JSON log: the accepted event with the client and version" \
    grep -q '"event":"accepted".*"client":"127.0.0.1:[0-9]*".*"version":"TLS1.3"' "$WORK/mixed.tlsshim.log"

done_testing
