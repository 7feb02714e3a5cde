#!/bin/bash
# failures.sh -- tlsshim fails closed.  For each bad server: the client fails
# (non-zero exit), the server received no application bytes (tserver
# bytes_in=0; openssl s_server shows no request), and tlsshim's log names
# the reason:
#   expired certificate, wrong host name, untrusted CA, a TLS 1.2-only server
#   (tserver --tls12-only and openssl s_server -tls1_2), a server requiring a
#   client certificate when the policy has none.
# And a TLS port where nothing listens: the client sees "connection refused".

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl
need_tlsshim

# bad_server NAME REASON-REGEX [tserver options]: start a tserver, run curl
# through tlsshim, and check client failure, bytes_in=0 and the log reason.
bad_server() {
    local name=$1 re=$2 out st log
    shift 2
    start_tserver "$name" "$@"
    local pvar="${name}_port"
    log="$WORK/$name.log"
    policy "$name" "${!pvar}"
    out=$(tlsshim_run "$WORK/$name.policy" "${CURL[@]}" http://localhost:18080/secret 2>&1)
    st=$?
    [ $st -ne 0 ]
    ok $? "$name: curl fails (exit $st)"
    check "$name: server logged the attempt" wait_for_lines "$log" 1
    is "$(tserver_field "$log" 1 bytes_in)" 0 "$name: server received no application bytes"
    is "$(tserver_field "$log" 1 first_line)" - "$name: server saw no request line"
    if grep -Eq -- "error: rule \[$name\] .*($re)" "$WORK/$name.tlsshim.log"; then
        pass "$name: tlsshim log names the reason ($re)"
    else
        fail "$name: tlsshim log names the reason ($re)"
        diag "log: $(cat "$WORK/$name.tlsshim.log")"
    fi
    diag "$name: curl: $out"
    diag "$name: server: status=$(tserver_field "$log" 1 status) reason=$(tserver_field "$log" 1 reason)"
}

# ==== 1. certificate problems ========================================================================
bad_server expired 'expired' --cert "$CERTS/expired.pem" --key "$CERTS/expired-key.pem"
bad_server wrongname 'does not match' --cert "$CERTS/wrongname.pem" --key "$CERTS/wrongname-key.pem"
bad_server untrusted 'issuer is unknown' --cert "$CERTS/untrusted.pem" --key "$CERTS/untrusted-key.pem"
# The server hears why (RFC 8446: a fatal alert), not just a closed socket.
for name in expired wrongname untrusted; do
    is "$(tserver_field "$WORK/$name.log" 1 reason)" "alert received: Certificate is bad" \
        "$name: server received our bad_certificate alert"
done

# ==== 2. a TLS 1.2-only server ===========================================================================
bad_server tls12 'does the server speak TLS 1\.3' --tls12-only

if command -v "${OPENSSL:-openssl}" >/dev/null 2>&1; then
    start_openssl_server o12 -tls1_2
    policy o12 "$o12_port"
    out=$(tlsshim_run "$WORK/o12.policy" "${CURL[@]}" http://localhost:18080/secret 2>&1)
    st=$?
    [ $st -ne 0 ]
    ok $? "s_server -tls1_2: curl fails (exit $st)"
    # s_server prints an error for the failed handshake; give it a moment
    wait_for_match "$o12_log" 'ERROR|error|alert' 5
    check_fail "s_server -tls1_2: s_server received no request" grep -q 'secret' "$o12_log"
    check_fail "s_server -tls1_2: s_server never reached a session (no CIPHER line)" \
        grep -q '^CIPHER is' "$o12_log"
    check "s_server -tls1_2: tlsshim log names the reason" \
        grep -Eq 'error: rule \[o12\] .*protocol version.*does the server speak TLS 1\.3' "$WORK/o12.tlsshim.log"
    diag "s_server -tls1_2: tlsshim: $(cat "$WORK/o12.tlsshim.log")"
    diag "s_server -tls1_2: s_server: $(grep -v '^ACCEPT' "$o12_log" | head -n 5)"
else
    for i in 1 2 3 4; do skip "s_server -tls1_2 check $i" "openssl not found"; done
fi

# ==== 3. client certificate required, none configured ========================================================
bad_server needcert 'Certificate is required' --require-client-cert --client-ca "$CERTS/ca.pem"

# ==== 4. nothing listening on the TLS port =====================================================================
# A port that was free a moment ago: nothing listens there.
dead=$(free_port)
policy dead "$dead"
tlsshim_run "$WORK/dead.policy" "${CURL[@]}" -o /dev/null http://localhost:18080/nobody 2>"$WORK/dead.err"
is "$?" 7 "nothing listening: curl fails with exit 7 (couldn't connect)"
like "$(cat "$WORK/dead.err")" '[Cc]onnection refused|[Cc]ouldn.t connect' "nothing listening: curl reports connection refused"
out=$(tlsshim_run "$WORK/dead.policy" "$PYTHON" -c '
import socket
try:
    socket.create_connection(("localhost", 18080), timeout=10)
except ConnectionRefusedError as e:
    print("refused", e.errno)
else:
    print("connected")')
is "$out" "refused 111" "nothing listening: python gets ConnectionRefusedError"
check "nothing listening: tlsshim log names the failed connect" \
    grep -Eqi "error: rule \[dead\] .*:$dead.*(connect failed|refused)" "$WORK/dead.tlsshim.log"
diag "$(cat "$WORK/dead.tlsshim.log")"

# ==== 5. a control: the same policy shape against a good server succeeds ========================================
start_tserver good
policy good "$good_port"
tlsshim_run "$WORK/good.policy" "${CURL[@]}" -o /dev/null http://localhost:18080/secret
ok $? "control: good server: curl exits 0"
check "control: server logged it" wait_for_lines "$good_log" 1
is "$(tserver_field "$good_log" 1 version) $(tserver_field "$good_log" 1 first_line)" "TLS1.3 GET /secret HTTP/1.1" \
    "control: server got the request over TLS1.3"

done_testing
