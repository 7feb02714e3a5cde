#!/bin/bash
# inband_proxy.sh -- proxy = http://HOST:PORT: a plain HTTP client (curl, a
# python client) under a rule for a TLS destination reaches it through a
# real HTTP proxy (tinyproxy on loopback): tlsshim sends CONNECT, requires a
# 2xx, then runs TLS 1.3 through the tunnel, verifying the DESTINATION's
# certificate.
# Proves, from the servers' side:
#   * the destination (tserver) saw TLS 1.3, SNI localhost and the
#     program's request; tinyproxy's log shows the CONNECT to it; the
#     program's socket is, in the kernel's table, connected to the proxy,
#     and the destination's peer is not the program's socket;
#   * with a 0600 proxy-credentials file, an authenticating tinyproxy
#     (BasicAuth) lets it through; without, it answers 407: the program is
#     refused, tlsshim's log shows the 407 status line, the destination
#     saw nothing and the proxy never got the program's request;
#   * a destination port the proxy does not allow (ConnectPort): 403,
#     refused, the status line logged, nothing sent;
#   * a destination whose certificate is for another name: refused (the
#     certificate is verified for the destination, through the tunnel);
#   * an IPv6 destination ([::1]) through the proxy: CONNECT [::1]:PORT, the
#     destination's peer is ::1 (the proxy's hop), TLS 1.3.
# Debian packages: tinyproxy, curl.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/inband_lib_ldap.sh"
set -u

need_python
need_cmd curl
[ -x "$TINYPROXY" ] || skip_all "tinyproxy not installed ($TINYPROXY)"
need_tlsshim ca.pem server.pem server-key.pem wrongname.pem wrongname-key.pem pin-server.txt

start_tserver dst --ipv6   # 127.0.0.1 and ::1, same port
start_tserver bad --cert "$CERTS/wrongname.pem" --key "$CERTS/wrongname-key.pem"
start_tserver deny
# The open proxy tunnels to dst and bad only: a CONNECT to deny's port is
# answered "403 Access violation".
start_tinyproxy px "ConnectPort $dst_port" "ConnectPort $bad_port"
PXUSER=tlsuser PXPASS=pw-$$
start_tinyproxy pxa "ConnectPort $dst_port" "BasicAuth $PXUSER $PXPASS"
diag "destination tserver localhost:$dst_port (wrong name: $bad_port, not allowed: $deny_port);" \
    "tinyproxy 127.0.0.1:$px_port (open), 127.0.0.1:$pxa_port (BasicAuth)"

# pxpolicy NAME MATCH [LINE...]: policy NAME for MATCH with LINEs, ending
# with a rule that denies everything else: curl tries [::1] after
# 127.0.0.1 for localhost, and that try must not leave in clear either.
pxpolicy() {
    local name=$1 match=$2
    shift 2
    POLICY_MATCH=$match policy "$name" "" "$@" "" "[default]" "match = *:*" "action = deny"
}

re_dst="CONNECT localhost:$dst_port HTTP/1\.1"

# ==== 0. the destination requires TLS ======================================================
"${CURL[@]}" -o /dev/null "http://localhost:$dst_port/plain" 2>/dev/null
check_fail "without tlsshim: plain curl to the TLS destination fails" test $? -eq 0
wait_for_lines "$dst_log" 1
like "$(tserver_field "$dst_log" 1 status)" '^handshake-failed$' "destination: the plaintext was no handshake"

# ==== 1. through the proxy: curl ==========================================================
pxpolicy via "localhost:$dst_port" "proxy = http://127.0.0.1:$px_port"
run via "${CURL[@]}" -w '%{local_port}\n' -o "$WORK/via.body" "http://localhost:$dst_port/via-proxy" \
    >"$WORK/via.local" 2>"$WORK/via.err"
ok $? "curl through the proxy exits 0"
diag "curl: $(cat "$WORK/via.err")"
like "$(cat "$WORK/via.body")" '^hello from tserver$' "curl got the destination's answer"
check "destination logged the connection" wait_for_lines "$dst_log" 2
is "$(tserver_field "$dst_log" 2 version)" TLS1.3 "destination: TLS 1.3"
is "$(tserver_field "$dst_log" 2 sni)" localhost "destination: SNI localhost"
is "$(tserver_field "$dst_log" 2 first_line)" "GET /via-proxy HTTP/1.1" "destination: the program's request"
check "tinyproxy logged the CONNECT to the destination" grep -Eq "Request \(file descriptor [0-9]+\): $re_dst\$" "$px_log"
check "tinyproxy established the tunnel" grep -Eq 'Established connection to host "localhost"' "$px_log"
peer=$(tserver_field "$dst_log" 2 peer)
unlike "$peer" ":$(cat "$WORK/via.local")\$" "destination's peer ($peer) is not curl's socket: the proxy's"
like "$(cat "$WORK/via.tlsshim.log" 2>/dev/null)" "info: rule \[via\] " "tlsshim log: an info line for the connection"
diag "tlsshim: $(cat "$WORK/via.tlsshim.log" 2>/dev/null)"

# ==== 2. through the proxy: the program's socket goes to the proxy ===========================
out=$(run via "$PYTHON" "$CLIENTS/proxy_get.py" localhost "$dst_port" /peer 2>&1)
ok $? "python client through the proxy exits 0"
diag "$out"
like "$out" '^status=HTTP/1\.1 200 ' "python client: 200 from the destination"
like "$out" "^kernel_peer=127\.0\.0\.1:$px_port\$" "python client: its socket is connected to the proxy (kernel table)"
check "destination logged it" wait_for_lines "$dst_log" 3
is "$(tserver_field "$dst_log" 3 first_line)" "GET /peer HTTP/1.1" "destination: the python client's request, over TLS 1.3"
is "$(grep -Ec "$re_dst\$" "$px_log")" 2 "tinyproxy: two CONNECTs to the destination"

# ==== 3. credentials ========================================================================
printf '%s:%s\n' "$PXUSER" "$PXPASS" >"$WORK/pxa.cred"
chmod 600 "$WORK/pxa.cred"
pxpolicy auth "localhost:$dst_port" "proxy = http://127.0.0.1:$pxa_port" \
    "proxy-credentials = $WORK/pxa.cred"
run auth "${CURL[@]}" -o "$WORK/auth.body" "http://localhost:$dst_port/with-creds" 2>"$WORK/auth.err"
ok $? "with proxy-credentials: curl exits 0"
diag "curl: $(cat "$WORK/auth.err")"
like "$(cat "$WORK/auth.body")" '^hello from tserver$' "with proxy-credentials: the destination's answer"
check "destination logged it" wait_for_lines "$dst_log" 4
is "$(tserver_field "$dst_log" 4 first_line)" "GET /with-creds HTTP/1.1" "destination: the request"
is "$(tserver_field "$dst_log" 4 version)" TLS1.3 "destination: TLS 1.3"
check "auth tinyproxy logged the CONNECT" grep -Eq "$re_dst\$" "$pxa_log"

n0=$(tserver_conns "$dst_log")
pxpolicy noauth "localhost:$dst_port" "proxy = http://127.0.0.1:$pxa_port"
run noauth "${CURL[@]}" -o "$WORK/noauth.body" "http://localhost:$dst_port/no-creds" 2>"$WORK/noauth.err"
st=$?
check_fail "without credentials: curl fails (exit $st)" test "$st" -eq 0
check "tlsshim log: the proxy's 407 status line" \
    grep -Eq 'error: rule \[noauth\] .*HTTP/1\.[01] 407' "$WORK/noauth.tlsshim.log"
diag "tlsshim: $(cat "$WORK/noauth.tlsshim.log" 2>/dev/null)"
sleep 0.3   # a connection to the destination would have been logged by now
is "$(tserver_conns "$dst_log")" "$n0" "without credentials: the destination saw no connection"
unlike "$(cat "$pxa_log")" 'no-creds' "without credentials: the proxy never got the program's request"

# ==== 4. 403 from the proxy ===================================================================
pxpolicy deny "localhost:$deny_port" "proxy = http://127.0.0.1:$px_port"
run deny "${CURL[@]}" -o /dev/null "http://localhost:$deny_port/refused" 2>"$WORK/deny.err"
st=$?
check_fail "destination the proxy refuses: curl fails (exit $st)" test "$st" -eq 0
check "tinyproxy refused the CONNECT to it" grep -Eq "Refused CONNECT method on port $deny_port\$" "$px_log"
check "tlsshim log: the proxy's 403 status line" \
    grep -Eq 'error: rule \[deny\] .*HTTP/1\.[01] 403' "$WORK/deny.tlsshim.log"
diag "tlsshim: $(cat "$WORK/deny.tlsshim.log" 2>/dev/null)"
sleep 0.3   # a connection to the destination would have been logged by now
is "$(tserver_conns "$deny_log")" 0 "refused destination: it saw no connection"
unlike "$(cat "$px_log")" '/refused' "refused destination: the proxy never got the program's request"

# ==== 5. the certificate is verified for the destination ======================================
pxpolicy wrong "localhost:$bad_port" "proxy = http://127.0.0.1:$px_port"
run wrong "${CURL[@]}" -o "$WORK/wrong.body" "http://localhost:$bad_port/wrong-name" 2>"$WORK/wrong.err"
st=$?
check_fail "destination with another name's certificate: curl fails (exit $st)" test "$st" -eq 0
check "tinyproxy tunnelled to it" grep -Eq "CONNECT localhost:$bad_port HTTP/1\.1\$" "$px_log"
check "the wrong-name destination logged the attempt" wait_for_lines "$bad_log" 1
is "$(tserver_field "$bad_log" 1 bytes_in)" 0 "wrong-name destination: no application byte arrived"
unlike "$(tserver_field "$bad_log" 1 status)" '^ok$' "wrong-name destination: no completed session"
check "tlsshim log: a certificate error" \
    grep -Eiq 'error: rule \[wrong\] .*(certificate|verif|name)' "$WORK/wrong.tlsshim.log"
diag "tlsshim: $(cat "$WORK/wrong.tlsshim.log" 2>/dev/null)"

# ==== 6. an IPv6 destination through the proxy ================================================
# The program connects to [::1] and the rule verifies a pin, not a name:
# CONNECT names the address, [::1].
n0=$(tserver_conns "$dst_log")
pxpolicy v6 "[::1]:$dst_port" "proxy = http://127.0.0.1:$px_port" "pin = $(cat "$CERTS/pin-server.txt")"
run v6 "${CURL[@]}" -g -o "$WORK/v6.body" "http://[::1]:$dst_port/six" 2>"$WORK/v6.err"
ok $? "IPv6 destination through the proxy: curl exits 0"
diag "curl: $(cat "$WORK/v6.err")" "tlsshim: $(cat "$WORK/v6.tlsshim.log" 2>/dev/null)"
like "$(cat "$WORK/v6.body")" '^hello from tserver$' "IPv6 destination: the answer"
check "tinyproxy logged CONNECT [::1]:$dst_port" grep -Eq "CONNECT \[::1\]:$dst_port HTTP/1\.1\$" "$px_log"
check "destination logged it" wait_for_lines "$dst_log" $((n0 + 1))
is "$(tserver_field "$dst_log" last first_line)" "GET /six HTTP/1.1" "IPv6 destination: the request"
is "$(tserver_field "$dst_log" last version)" TLS1.3 "IPv6 destination: TLS 1.3"
like "$(tserver_field "$dst_log" last peer)" '^\[::1\]:[0-9]+$' "IPv6 destination: reached over ::1 (the proxy's hop)"

done_testing
