#!/bin/bash
# inband_review.sh -- the review fixes of commit 4b2c507 (in-band TLS), each
# case failing on the commit before it:
#   1. mysql, the program's turn: a two-thread client whose thread A reads
#      the greeting and then blocks in recv() while thread B writes the
#      HandshakeResponse 0.3 s later: both calls succeed, long before the
#      3 s handshake-timeout (before: both failed at the deadline);
#   2. mysql pipelining: the HandshakeResponse and a COM_QUERY (sequence
#      0) in one write: the query's result arrives (before: the query was
#      renumbered to 1 and the server answered "Got packets out of order");
#      both against a real MariaDB 10.11 (require_secure_transport, TLS 1.3
#      only), the server's own Ssl_version of the session says TLSv1.3;
#   3. the deadline covers the exchange plus the TLS handshake of a
#      BLOCKING client: an SMTP server that answers STARTTLS after 2.5 s and
#      then stays silent fails smtplib's connect at the 3 s deadline (before:
#      ~5.5 s); a plain protocol = tls rule against a server that trickles
#      one byte of a TLS record every 100 ms fails at the 2 s deadline
#      (before: it hung until the server gave up);
#   4. the log wording: "the exchange before TLS failed" (an SMTP server
#      refusing STARTTLS with 454); "the program did not answer the
#      server's greeting" (a mysql client that reads the greeting and
#      never writes, handshake-timeout = 1s).
# The time checks are deadlines (does the call end before the rule's
# handshake-timeout would have fired, or soon after it), not performance.
# Debian packages: mariadb-server, mariadb-client.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/inband_lib_db.sh"
set -u

need_python
need_cmd mariadb
need_tlsshim ca.pem server.pem server-key.pem

# after OUT [RE]: the SECONDS of the last "after=SECONDS" in OUT (in the
# lines matching RE only, if given).
after() {
    printf '%s\n' "$1" | grep -E -- "${2:-.}" | sed -n 's/.*after=\([0-9.]*\).*/\1/p' | tail -n 1
}
# below X LIMIT: X is a number and less than LIMIT.
below() {
    [ -n "$1" ] && awk -v x="$1" -v l="$2" 'BEGIN { exit !(x + 0 < l + 0) }'
}
# hostile NAME MODE: clients/inband_rev_hostile.py MODE as server NAME.
hostile() {
    start_server "$1" "$PYTHON" "$CLIENTS/inband_rev_hostile.py" "$2" "$WORK/$1.port" "$WORK/$1.log"
}
# my_client RULE MODE: clients/inband_rev_my.py MODE as user rev, under
# tlsshim with $WORK/RULE.policy; stdout+stderr.
my_client() {
    run "$1" "$PYTHON" "$CLIENTS/inband_rev_my.py" "$2" "$my_port" rev pw-rev-1 2>&1
}

hostile slow smtp-slow
hostile refuse smtp-refuse
hostile trickle trickle
start_mariadb my
diag "mariadbd (require_secure_transport, TLS 1.3) on 127.0.0.1:$my_port"
my_admin my -e "CREATE USER rev@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('pw-rev-1')" ||
    bail_out "could not create the user"
# queries: how many times the general log has the client's query.
queries() { grep -ac "Query[[:space:]]*SHOW STATUS LIKE 'Ssl_version'" "$my_general"; }
# tls_logins: how many logins of rev over TLS the general log has.
tls_logins() { grep -aEc 'Connect[[:space:]]+rev@127\.0\.0\.1 on .*using SSL/TLS' "$my_general"; }

# ==== 1. mysql: a blocking read in the program's turn, the write from another thread ====
POLICY_MATCH=127.0.0.1:$my_port policy two "" "protocol = mysql" "server-name = localhost" \
    "handshake-timeout = 3s"
n0=$(tls_logins)
out=$(my_client two twothread)
st=$?
diag "two threads: $(printf '%s' "$out" | tr '\n' ';')"
ok $st "two threads: the client logged in and its query answered"
like "$out" '^writer sent 83 bytes' "two threads: thread B's write of the HandshakeResponse succeeded"
like "$out" '^auth seq=2 first=00 ' "two threads: thread A's blocking recv got the server's OK (sequence 2, as the program expects)"
check "two threads: the OK came well before the 3 s deadline (at $(after "$out" '^auth') s)" \
    below "$(after "$out" '^auth')" 2.5
like "$out" '^row Ssl_version TLSv1\.3$' "two threads: the server says the session is TLSv1.3"
is "$(tls_logins)" "$((n0 + 1))" "two threads: general log: rev connected using SSL/TLS"
unlike "$(cat "$WORK/two.tlsshim.log" 2>/dev/null)" 'timed out' "two threads: tlsshim logged no timeout"

# ==== 2. mysql: the HandshakeResponse and a COM_QUERY in one write ======================
POLICY_MATCH=127.0.0.1:$my_port policy pipe "" "protocol = mysql" "server-name = localhost" \
    "handshake-timeout = 3s"
n0=$(tls_logins)
q0=$(queries)
out=$(my_client pipe pipeline)
st=$?
diag "pipelined: $(printf '%s' "$out" | tr '\n' ';')"
ok $st "pipelined: the client's query answered"
like "$out" '^auth seq=2 first=00 ' "pipelined: the login's OK first"
like "$out" '^row Ssl_version TLSv1\.3$' "pipelined: then the query's row: the server says TLSv1.3"
is "$(queries)" "$((q0 + 1))" "pipelined: general log: the server ran the query"
is "$(tls_logins)" "$((n0 + 1))" "pipelined: general log: rev connected using SSL/TLS"
is "$(grep -ac 'out of order' "$my_log")" 0 "pipelined: the server's error log has no packets out of order"

# ==== 3. the deadline covers the exchange and the TLS handshake (blocking clients) ======
POLICY_MATCH=127.0.0.1:$slow_port policy slowp "" "protocol = smtp" "server-name = localhost" \
    "handshake-timeout = 3s"
out=$(run slowp "$PYTHON" "$CLIENTS/inband_rev_connect.py" smtp "$slow_port" 2>&1)
st=$?
diag "slow STARTTLS: $out"
like "$out" '^failed: TimeoutError' "slow STARTTLS, then silence: smtplib's connect fails with a timeout"
check "slow STARTTLS: it failed at the 3 s deadline, not 2.5 s + 3 s (at $(after "$out") s, < 4.5)" \
    below "$(after "$out")" 4.5
check "slow STARTTLS: the server saw STARTTLS, then a ClientHello" \
    wait_for_match "$slow_log" 'got=[0-9a-f]*5354415254544c530d0a16030'
check "slow STARTTLS: tlsshim logged the timeout" \
    wait_for_match "$WORK/slowp.tlsshim.log" "rule \[slowp\] .*timed out.* within 3000 ms"

POLICY_MATCH=127.0.0.1:$trickle_port policy tric "" "server-name = localhost" "handshake-timeout = 2s"
out=$(RUN_TIMEOUT=10 run tric "$PYTHON" "$CLIENTS/inband_rev_connect.py" tcp "$trickle_port" 2>&1)
st=$?
diag "trickled record: $out (exit $st)"
like "$out" '^failed: TimeoutError' "protocol = tls, a record trickled a byte every 100 ms: the blocking client fails with a timeout"
check "trickled record: at the 2 s deadline (at $(after "$out") s, < 4)" below "$(after "$out")" 4
check "trickled record: the server got a ClientHello and the client went" \
    wait_for_match "$trickle_log" '^conn mode=trickle got=1603[0-9a-f]* end=eof'
check "trickled record: tlsshim logged the timeout" \
    wait_for_match "$WORK/tric.tlsshim.log" "rule \[tric\] .*timed out.* within 2000 ms"

# ==== 4. the log wording ==================================================================
POLICY_MATCH=127.0.0.1:$refuse_port policy refp "" "protocol = smtp" "server-name = localhost"
out=$(run refp "$PYTHON" "$CLIENTS/inband_rev_connect.py" smtp "$refuse_port" 2>&1)
like "$out" '^failed: ConnectionRefusedError' "STARTTLS refused (454): the client's connect is refused"
check "STARTTLS refused: tlsshim says the exchange before TLS failed, and the server's answer" \
    wait_for_match "$WORK/refp.tlsshim.log" \
    "rule \[refp\] .*: the exchange before TLS failed with localhost: .*454 4\.7\.0 TLS not available"

POLICY_MATCH=127.0.0.1:$my_port policy mute "" "protocol = mysql" "server-name = localhost" \
    "handshake-timeout = 1s"
out=$(my_client mute silent)
diag "mute program: $out"
like "$out" '^recv failed: Connection timed out' "a program that never answers the greeting: its blocking recv times out"
check "mute program: at the 1 s deadline (at $(after "$out") s, < 2.5)" below "$(after "$out")" 2.5
check "mute program: tlsshim says the program did not answer the server's greeting" \
    wait_for_match "$WORK/mute.tlsshim.log" \
    "rule \[mute\] .*: the program did not answer the server's greeting \(mysql.*\) within 1000 ms"

done_testing
