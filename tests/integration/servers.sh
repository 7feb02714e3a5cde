#!/bin/bash
# servers.sh -- tlsshim against other real TLS servers, and over IPv6.
# Proves, from each server's own evidence:
#   * nginx: curl upgraded, access log proto=TLSv1.3, sni=localhost, and the
#     second connection of the same curl process resumed (reused=r);
#   * openssl s_server -www: a python urllib fetch gets the page s_server
#     generates from ITS view of the session ("Protocol  : TLSv1.3"); a
#     plain s_server logs the TLS 1.3 cipher and the exact line received;
#   * IPv6: tserver --ipv6 on ::1, a policy matching [::1]:PORT, a python
#     client connecting to ::1: the server saw TLS1.3 from [::1].

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl
need_python
need_tlsshim


# ==== 1. nginx ==================================================================================
if [ -x "${NGINX:-/usr/sbin/nginx}" ]; then
    start_nginx ngx
    policy ngx "$ngx_port"
    out=$(run ngx "${CURL[@]}" -H 'Connection: close' http://localhost:18080/one http://localhost:18080/two)
    ok $? "nginx: curl with two URLs exits 0"
    is "$out" $'hello from nginx\nhello from nginx' "nginx: both bodies"
    check "nginx: logged two requests" wait_for_requests "$ngx_log" 2
    is "$(nginx_field "$ngx_log" 1 proto) $(nginx_field "$ngx_log" 2 proto)" "TLSv1.3 TLSv1.3" \
        "nginx: both requests over TLSv1.3"
    is "$(nginx_field "$ngx_log" 1 sni)" localhost "nginx: sni=localhost"
    is "$(nginx_field "$ngx_log" 1 request)" "GET /one HTTP/1.1" "nginx: 1st request line"
    is "$(nginx_field "$ngx_log" 2 request)" "GET /two HTTP/1.1" "nginx: 2nd request line"
    is "$(nginx_field "$ngx_log" 1 reused)" . "nginx: 1st connection full handshake (reused=.)"
    is "$(nginx_field "$ngx_log" 2 reused)" r "nginx: 2nd connection resumed (reused=r)"
    is "$(nginx_field "$ngx_log" 2 status)" 200 "nginx: status 200"
    like "$(cat "$WORK/ngx.tlsshim.log")" 'resumed=yes' "nginx: tlsshim log says resumed=yes"

    # nginx's plain port, not matched by the policy: untouched
    out=$(run ngx "${CURL[@]}" "http://127.0.0.1:$ngx_plain_port/plain")
    ok $? "nginx plain port (unmatched): curl exits 0"
    check "nginx: logged the plain request" wait_for_requests "$ngx_log" 3
    is "$(nginx_field "$ngx_log" 3 port) $(nginx_field "$ngx_log" 3 proto)" "$ngx_plain_port -" \
        "nginx: plain request arrived on the plain port without TLS"
else
    for i in $(seq 14); do skip "nginx check $i" "nginx not installed"; done
fi

# ==== 2. openssl s_server ===========================================================================
if command -v "${OPENSSL:-openssl}" >/dev/null 2>&1; then
    start_openssl_server www -www
    policy www "$www_port"
    page=$(run www "$PYTHON" "$CLIENTS/urllib_get.py" http://localhost:18080/)
    ok $? "s_server -www: urllib fetch exits 0"
    # s_server generates this page from its own view of the session
    like "$page" 'Protocol  : TLSv1\.3' "s_server -www: server's page says Protocol  : TLSv1.3"
    like "$page" 'Cipher    : TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)' \
        "s_server -www: server's page shows a TLS 1.3 cipher"
    like "$page" '1 server accepts that finished' "s_server -www: one completed handshake"
    like "$(cat "$WORK/www.tlsshim.log")" 'info: rule \[www\] .*version=TLS1\.3' "s_server -www: tlsshim log"

    start_openssl_server oss
    policy oss "$oss_port"
    run oss "$PYTHON" -c '
import socket, time
s = socket.create_connection(("localhost", 18080), timeout=10)
s.sendall(b"hello s_server via tlsshim\n")
time.sleep(0.3)
s.close()'
    ok $? "s_server: python plain socket client exits 0"
    check "s_server log shows the exact line received" wait_for_match "$oss_log" '^hello s_server via tlsshim$'
    check "s_server log shows a TLS 1.3 cipher" grep -Eq '^CIPHER is TLS_(AES|CHACHA)' "$oss_log"
else
    for i in $(seq 7); do skip "openssl s_server check $i" "openssl not found"; done
fi

# ==== 3. IPv6 ==========================================================================================
if "$PYTHON" -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
    start_tserver six --ipv6
    # The client connects to the literal ::1: no name is resolved, and
    # /etc/hosts may have none for ::1, so the rule names the server.
    write_policy "$WORK/six.policy" <<EOF
log = file:$WORK/six.tlsshim.log
log-level = info

[six]
match = [::1]:18080, localhost:18080
port = $six_port
server-name = localhost
ca = $CERTS/ca.pem
EOF
    out=$(run six "$PYTHON" -c '
import socket
s = socket.create_connection(("::1", 18080), timeout=10)
assert s.family == socket.AF_INET6
s.sendall(b"GET /v6 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
s.close()
print(data.split(b"\r\n")[0].decode())')
    ok $? "IPv6: python client to ::1 exits 0"
    is "$out" "HTTP/1.1 200 OK" "IPv6: client got the answer"
    check "IPv6: server logged the connection" wait_for_lines "$six_log" 1
    like "$(tserver_field "$six_log" 1 peer)" '^\[::1\]:' "IPv6: server's peer is [::1]"
    is "$(tserver_field "$six_log" 1 version) $(tserver_field "$six_log" 1 sni)" "TLS1.3 localhost" \
        "IPv6: server saw TLS1.3, sni=localhost"
    is "$(tserver_field "$six_log" 1 first_line)" "GET /v6 HTTP/1.1" "IPv6: server got the request"
    like "$(cat "$WORK/six.tlsshim.log")" 'info: rule \[six\] \[::1\]:18080 -> \[::1\]:' \
        "IPv6: tlsshim log shows [::1] -> [::1]"

    # IP-literal server-name for IPv6: the certificate's ::1 SAN, no SNI
    write_policy "$WORK/six2.policy" <<EOF
log = file:$WORK/six2.tlsshim.log
log-level = info

[six2]
match = [::1]:18080
port = $six_port
server-name = ::1
ca = $CERTS/ca.pem
EOF
    out=$(run six2 "${CURL[@]}" -o /dev/null -w '%{http_code}' "http://[::1]:18080/v6-ip")
    is "$out" 200 "IPv6 server-name = ::1: curl to [::1] gets 200"
    check "IPv6 server-name = ::1: server logged it" wait_for_lines "$six_log" 2
    is "$(tserver_field "$six_log" 2 version) $(tserver_field "$six_log" 2 sni)" "TLS1.3 -" \
        "IPv6 server-name = ::1: TLS1.3, no SNI"
    is "$(tserver_field "$six_log" 2 first_line)" "GET /v6-ip HTTP/1.1" "IPv6 server-name = ::1: request arrived"
else
    for i in $(seq 11); do skip "IPv6 check $i" "no IPv6 loopback"; done
fi

done_testing
