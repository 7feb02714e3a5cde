#!/bin/bash
# policy_actions.sh -- what the policy's rules do, seen from real servers.
# Proves:
#   * action = deny: connect() fails with ECONNREFUSED (curl exit 7, python
#     ConnectionRefusedError), the plain listener on that very port sees no
#     connection, the log names the rule and "denied";
#   * action = plain: a plain listener gets the plain request through;
#   * an unmatched destination is untouched (plain bytes arrive, no log);
#   * first match wins (a deny after a matching tls rule is not used, and
#     the other way round);
#   * server-name = tls.test: SNI tls.test; server-name = 127.0.0.1: no SNI
#     and verification against the IP SAN passes;
#   * alpn = h2,http/1.1 against a server offering http/1.1: alpn=http/1.1;
#   * resume = off and session-cache = 0: no resumption (resumed=0), while
#     the default does resume (the control).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl
need_python
need_tlsshim

plain_conns() { grep -c '^conn ' "$1" 2>/dev/null || true; }
# pol NAME: write stdin (rules) after a log header to $WORK/NAME.policy
pol() {
    { echo "log = file:$WORK/$1.tlsshim.log"; echo "log-level = info"; cat; } | write_policy "$WORK/$1.policy"
}

start_tserver srv
start_plain pl
field() { tserver_field "$srv_log" "$1" "$2"; }
n=0     # conn lines expected in $srv_log so far

# ==== 1. deny =================================================================================
pol deny <<EOF
[blocked]
match = localhost:$pl_port
action = deny
EOF
run deny "${CURL[@]}" -o /dev/null "http://localhost:$pl_port/denied" 2>"$WORK/deny.err"
is "$?" 7 "deny: curl fails with exit 7 (couldn't connect)"
like "$(cat "$WORK/deny.err")" '[Cc]onnection refused|[Cc]ouldn.t connect' "deny: curl reports the refusal"
out=$(run deny "$PYTHON" -c '
import socket, sys
try:
    socket.create_connection(("localhost", int(sys.argv[1])), timeout=10)
except ConnectionRefusedError as e:
    print("refused", e.errno)
else:
    print("connected")' "$pl_port")
is "$out" "refused 111" "deny: python connect() raises ConnectionRefusedError (ECONNREFUSED)"
sleep 0.3
is "$(plain_conns "$pl_log")" 0 "deny: the listener on that port saw no connection"
check "deny: tlsshim log names the rule and says denied" \
    grep -q "error: rule \[blocked\] .*:$pl_port.*denied" "$WORK/deny.tlsshim.log"

# ==== 2. plain =================================================================================
pol plain <<EOF
[local]
match = localhost:$pl_port
action = plain
EOF
body=$(run plain "${CURL[@]}" "http://localhost:$pl_port/plain")
ok $? "plain: curl exits 0"
is "$body" "plain hello" "plain: curl got the plain server's answer"
check "plain: listener logged the connection" wait_for_match "$pl_log" '^conn '
like "$(grep '^conn ' "$pl_log" | tail -n 1)" "first_line=b'GET /plain HTTP/1.1'" \
    "plain: the listener received the request in clear"

# ==== 3. unmatched destination ===================================================================
pol unmatched <<EOF
[other]
match = localhost:18080
port = $srv_port
ca = $CERTS/ca.pem
EOF
body=$(run unmatched "${CURL[@]}" "http://localhost:$pl_port/unmatched")
ok $? "unmatched: curl exits 0"
is "$body" "plain hello" "unmatched: curl got the plain server's answer"
check "unmatched: listener logged it" wait_for_match "$pl_log" "GET /unmatched HTTP/1.1"
like "$(grep '^conn ' "$pl_log" | tail -n 1)" "first_line=b'GET /unmatched HTTP/1.1'" \
    "unmatched: the listener received the request in clear"
check_fail "unmatched: tlsshim logged nothing about it" grep -q "$pl_port" "$WORK/unmatched.tlsshim.log"
# ... while a matching destination in the same policy IS upgraded (control)
run unmatched "${CURL[@]}" -o /dev/null http://localhost:18080/matched
ok $? "unmatched policy, matched destination: curl exits 0"
n=$((n + 1))
check "matched: server logged it" wait_for_lines "$srv_log" $n
is "$(field $n version) $(field $n first_line)" "TLS1.3 GET /matched HTTP/1.1" \
    "matched: server got the request over TLS1.3"

# ==== 4. first match wins ============================================================================
pol tlsfirst <<EOF
[first]
match = localhost:18090
port = $srv_port
ca = $CERTS/ca.pem

[second]
match = localhost:18090
action = deny
EOF
run tlsfirst "${CURL[@]}" -o /dev/null http://localhost:18090/first-wins
ok $? "tls rule first: curl exits 0"
n=$((n + 1))
check "tls rule first: server logged it" wait_for_lines "$srv_log" $n
is "$(field $n version) $(field $n first_line)" "TLS1.3 GET /first-wins HTTP/1.1" \
    "tls rule first: upgraded (the later deny is not used)"
like "$(cat "$WORK/tlsfirst.tlsshim.log")" 'info: rule \[first\]' "tls rule first: log names [first]"

pol denyfirst <<EOF
[first]
match = localhost:18090
action = deny

[second]
match = localhost:18090
port = $srv_port
ca = $CERTS/ca.pem
EOF
run denyfirst "${CURL[@]}" -o /dev/null http://localhost:18090/deny-wins 2>/dev/null
is "$?" 7 "deny rule first: curl cannot connect"
sleep 0.3
is "$(tserver_conns "$srv_log")" $n "deny rule first: the server saw no connection"
check "deny rule first: log names [first] and denied" \
    grep -q 'error: rule \[first\] .*denied' "$WORK/denyfirst.tlsshim.log"

# ==== 5. server-name ==================================================================================
pol sn <<EOF
[sn]
match = localhost:18080
port = $srv_port
server-name = tls.test
ca = $CERTS/ca.pem
EOF
run sn "${CURL[@]}" -o /dev/null http://localhost:18080/tls-test
ok $? "server-name = tls.test: curl exits 0"
n=$((n + 1))
check "server-name = tls.test: server logged it" wait_for_lines "$srv_log" $n
is "$(field $n sni)" tls.test "server-name = tls.test: server saw sni=tls.test"
is "$(field $n version) $(field $n first_line)" "TLS1.3 GET /tls-test HTTP/1.1" \
    "server-name = tls.test: request over TLS1.3"
like "$(cat "$WORK/sn.tlsshim.log")" 'server-name=tls\.test verified' "server-name = tls.test: log says verified"

pol snip <<EOF
[snip]
match = localhost:18080
port = $srv_port
server-name = 127.0.0.1
ca = $CERTS/ca.pem
EOF
run snip "${CURL[@]}" -o /dev/null http://localhost:18080/ip-name
ok $? "server-name = 127.0.0.1: curl exits 0"
n=$((n + 1))
check "server-name = 127.0.0.1: server logged it" wait_for_lines "$srv_log" $n
is "$(field $n sni)" - "server-name = 127.0.0.1: no SNI sent for an IP"
is "$(field $n status) $(field $n version) $(field $n first_line)" "ok TLS1.3 GET /ip-name HTTP/1.1" \
    "server-name = 127.0.0.1: verified against the IP SAN, request over TLS1.3"

# ... and an IP the certificate does not carry fails
pol snbad <<EOF
[snbad]
match = localhost:18080
port = $srv_port
server-name = 127.0.0.2
ca = $CERTS/ca.pem
EOF
check_fail "server-name = 127.0.0.2 (not in the certificate): curl fails" \
    run snbad "${CURL[@]}" -o /dev/null http://localhost:18080/bad-ip
n=$((n + 1))
check "server-name = 127.0.0.2: server logged the attempt" wait_for_lines "$srv_log" $n
is "$(field $n bytes_in)" 0 "server-name = 127.0.0.2: server received no application bytes"
check "server-name = 127.0.0.2: log says the name does not match" \
    grep -q 'does not match' "$WORK/snbad.tlsshim.log"

# ==== 6. ALPN ============================================================================================
start_tserver alp --alpn http/1.1
pol alpn <<EOF
[alpn]
match = localhost:18080
port = $alp_port
ca = $CERTS/ca.pem
alpn = h2,http/1.1
EOF
run alpn "${CURL[@]}" -o /dev/null http://localhost:18080/alpn
ok $? "alpn: curl exits 0"
check "alpn: server logged it" wait_for_lines "$alp_log" 1
is "$(tserver_field "$alp_log" 1 alpn)" http/1.1 "alpn: server negotiated alpn=http/1.1"
is "$(tserver_field "$alp_log" 1 first_line)" "GET /alpn HTTP/1.1" "alpn: server got the request"
like "$(cat "$WORK/alpn.tlsshim.log")" 'alpn=http/1\.1' "alpn: tlsshim log says alpn=http/1.1"

# ==== 7. resumption switches =================================================================================
# two_urls POLICY SERVER: curl with two URLs (two connections, one process);
# prints the server's resumed flags of the two new conn lines
two_urls() {
    local p=$1 name=$2 log before
    log="$WORK/$name.log"
    before=$(tserver_conns "$log")
    run "$p" "${CURL[@]}" -o /dev/null -o /dev/null -H 'Connection: close' \
        "http://localhost:18080/$p/1" "http://localhost:18080/$p/2" || echo "curl-failed"
    wait_for_lines "$log" $((before + 2)) || echo "no-lines"
    echo "$(tserver_field "$log" $((before + 1)) resumed),$(tserver_field "$log" $((before + 2)) resumed)"
}
start_tserver res
pol rdefault <<EOF
[r]
match = localhost:18080
port = $res_port
ca = $CERTS/ca.pem
EOF
is "$(two_urls rdefault res)" "0,1" "default: the second connection resumes (control)"

pol roff <<EOF
[r]
match = localhost:18080
port = $res_port
ca = $CERTS/ca.pem
resume = off
EOF
is "$(two_urls roff res)" "0,0" "resume = off: no resumption"
check_fail "resume = off: log has no resumed=yes" grep -q 'resumed=yes' "$WORK/roff.tlsshim.log"

pol rcache0 <<EOF
session-cache = 0

[r]
match = localhost:18080
port = $res_port
ca = $CERTS/ca.pem
EOF
is "$(two_urls rcache0 res)" "0,0" "session-cache = 0: no resumption"
is "$(all=$(grep -a '^conn ' "$res_log" | tr ' ' '\n' | grep -c '^version=TLS1.3$'); echo "$all")" 6 \
    "resumption: all 6 connections were TLS1.3"

done_testing
