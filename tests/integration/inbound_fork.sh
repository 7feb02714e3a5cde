#!/bin/bash
# inbound_fork.sh -- inbound, fork per connection after accept (classic
# daemons), server speaks first: clients/fork_banner (accept, fork; the
# child writes "220 fork_banner ready", then echoes lines; the parent closes
# its copy) runs under tlsshim with a `listen` rule.
# Proves, from both ends:
#   * two python ssl clients connected AT ONCE each read the banner first
#     (the handshake runs on the child's first write), then each line is
#     echoed; both saw TLSv1.3 and a verified certificate;
#   * the daemon's log: two children (two pids), each with the real address
#     and port of its client (getpeername), each received its line;
#   * openssl s_client -brief (a different TLS stack) saw TLSv1.3,
#     "Verification: OK", the banner, its echo and "221 bye" for QUIT;
#   * no child ended with an error.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim ca.pem server.pem server-key.pem
BANNER=$top_builddir/tests/integration/clients/fork_banner
[ -x "$BANNER" ] || bail_out "fork_banner not built: '$BANNER'"

SRC=$(client_addr)
blog=$WORK/banner.log
start_inbound ban -- "$BANNER" @PORT@ "$blog"
diag "fork_banner on 127.0.0.1:$ban_port, clients from $SRC"

# ==== 1. two concurrent python ssl clients ==============================================
out=$("$PYTHON" "$CLIENTS/inbound_client.py" --ca "$CERTS/ca.pem" --source "$SRC" --banner 2 \
    127.0.0.1 "$ban_port")
ok $? "python ssl: two concurrent connections, exit 0"
is "$(printf '%s\n' "$out" | grep -c '^version=TLSv1\.3$')" 2 "python ssl: both TLSv1.3"
is "$(printf '%s\n' "$out" | grep -c '^verified=yes$')" 2 "python ssl: both verified"
is "$(printf '%s\n' "$out" | sed -n 's/^banner\.0=//p')" "220 fork_banner ready" "connection 0: banner first"
is "$(printf '%s\n' "$out" | sed -n 's/^banner\.1=//p')" "220 fork_banner ready" \
    "connection 1: banner first (while connection 0 is still open)"
is "$(printf '%s\n' "$out" | sed -n 's/^echo\.1=//p')" "echo 1" "connection 1: line echoed"
is "$(printf '%s\n' "$out" | sed -n 's/^echo\.0=//p')" "echo 0" "connection 0: line echoed"

mapfile -t me < <(printf '%s\n' "$out" | sed -n 's/^local=//p')
for k in 0 1; do
    a=${me[$k]:-none}
    check "daemon log: a child served ${a} and received \"echo $k\"" \
        wait_for_match "$blog" "^line pid=[0-9]+ peer=${a//./\\.} text=echo $k\$"
    check "daemon log: that child ended cleanly" \
        wait_for_match "$blog" "^end pid=[0-9]+ peer=${a//./\\.} bytes=[0-9]+\$"
done
pids=$(grep '^conn ' "$blog" | sed 's/^conn pid=\([0-9]*\) .*/\1/' | sort -u | wc -l)
is "$pids" 2 "daemon log: two children (one per connection)"

# ==== 2. openssl s_client ================================================================
if command -v "$OPENSSL" >/dev/null 2>&1; then
    out=$(printf 'hello openssl\r\nQUIT\r\n' | timeout 20 "$OPENSSL" s_client -brief -ign_eof \
        -connect "127.0.0.1:$ban_port" -servername localhost -verify_hostname localhost \
        -CAfile "$CERTS/ca.pem" -verify_return_error 2>"$WORK/sc.err")
    ok $? "openssl s_client exits 0"
    check "s_client: TLS 1.3 and Verification: OK" saw_tls13 "$WORK/sc.err"
    is "$(printf '%s\n' "$out" | tr -d '\r')" $'220 fork_banner ready\nhello openssl\n221 bye' \
        "s_client: banner, echo, 221 bye"
    check "daemon log: the s_client line" wait_for_match "$blog" '^line pid=[0-9]+ peer=127\.0\.0\.1:[0-9]+ text=hello openssl$'
    check "daemon log: QUIT" wait_for_match "$blog" '^line pid=[0-9]+ peer=127\.0\.0\.1:[0-9]+ text=QUIT$'
else
    for i in 1 2 3 4 5; do skip "s_client check $i" "openssl not found"; done
fi

ended() { [ "$(grep -c '^end ' "$blog")" -ge "$1" ]; }
check "daemon log: three children ended" wait_until 10 ended 3
check_fail "daemon log: no child saw an error" grep -q ' error=' "$blog"
a=${me[0]:-none}
check "tlsshim log: the inbound connection from $a accepted, TLS1.3" \
    wait_for_match "$ban_tlog" "info: rule \[ban\] ${a//./\\.} -> 127\.0\.0\.1:$ban_port: accepted .*version=TLS1\.3 "

done_testing
