#!/bin/bash
# policy_warnings.sh -- warnings for policies that are valid but do not do
# what they seem to (tlsshim check, and the library's log at run time):
#   * a rule that matches only by host name is not matched by a connection
#     to the server's address made without resolving that name (a literal
#     fallback, a program with its own resolver or address cache): shown on
#     a plain server that records raw bytes, the request then arrives in
#     CLEAR.  tlsshim check warns "FILE:LINE: warning: rule [api] matches by
#     host name only ...", and so does the log of the program at run time;
#   * the documented hardening, "[default] match = *:* action = deny" at the
#     end: no warning, and the same connection is refused (ECONNREFUSED,
#     the server sees nothing, the log says denied);
#   * rekey-after = 64K: tlsshim check warns at the rekey-after line that
#     the value is not kept on fast connections (at most 4 KeyUpdates a
#     second), and so does the log at run time; 1G draws no warning.
# (Server evidence: plain_server.py's log of every connection it accepted.)

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim
unset TLSSHIM_POLICY TLSSHIM_LOG_LEVEL

# ---- a plain server that records what it got ----------------------------------------------
start_plain plain
PLOG=$plain_log PPORT=$plain_port
plain_conns() { grep -c '^conn ' "$PLOG"; }

# The program connects to the address itself, as one that resolved (or
# cached) the name on its own would: no getaddrinfo() for api.internal.test.
# Prints OK and the reply's first line, or the errno name.
client() {
    tlsshim_run "$1" "$PYTHON" -c '
import errno, socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
    s.sendall(b"GET /secret HTTP/1.0\r\n\r\n")
    print("OK", s.recv(100).split(b"\r\n")[0].decode())
except OSError as e:
    print(errno.errorcode.get(e.errno, e))
' "$PPORT" 2>&1
}
# A connection without tlsshim: once the server logged it, it has logged
# everything that came before.
sentinel() {
    local before
    before=$(plain_conns)
    "$PYTHON" -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /sentinel HTTP/1.0\r\n\r\n"); s.recv(100)' "$PPORT"
    wait_for_match "$PLOG" "^conn .*/sentinel" 10 && [ "$(plain_conns)" -gt "$before" ]
}

# ==== 1. a name-only rule ===================================================================
write_policy "$WORK/names.policy" <<POLICY
log = file:$WORK/names.tlsshim.log
log-level = warning

# The API, by name only.
[api]
match = api.internal.test:$PPORT
port = $PPORT
ca = $CERTS/ca.pem
POLICY
out=$("$TLSSHIM" check -p "$WORK/names.policy" 2>&1 >/dev/null)
ok $? "name-only: tlsshim check exits 0 (a warning is not an error)"
like "$out" "^$WORK/names.policy:5: warning: rule \\[api\\] matches by host name only" \
    "name-only: tlsshim check warns, with FILE:LINE of the rule"
like "$out" 'leaves in clear.*\[default\] match = \*:\* action = deny' \
    "name-only: the warning says what happens and how to harden"
diag "tlsshim check said: $out"

out=$(client "$WORK/names.policy")
like "$out" '^OK HTTP/1.0 200' "name-only: the program's connection by address went through"
check "name-only: the plain server logged it" wait_for_match "$PLOG" "first_line=b'GET /secret" 10
diag "what the server received: $(grep /secret "$PLOG")  <- in CLEAR: the gap the warning is about"
check "name-only: the program's log has the warning too, with FILE:LINE" \
    grep -Eq "warning: policy $WORK/names.policy:5: rule \\[api\\] matches by host name only" "$WORK/names.tlsshim.log"

# ==== 2. hardened: a catch-all deny at the end ==============================================
write_policy "$WORK/hard.policy" <<POLICY
log = file:$WORK/hard.tlsshim.log
log-level = warning

[api]
match = api.internal.test:$PPORT
port = $PPORT
ca = $CERTS/ca.pem

# Nothing else leaves.
[default]
match = *:*
action = deny
POLICY
out=$("$TLSSHIM" check -p "$WORK/hard.policy" 2>&1 >/dev/null)
ok $? "hardened: tlsshim check exits 0"
is "$out" "" "hardened: tlsshim check has no warning"
before=$(plain_conns)
out=$(client "$WORK/hard.policy")
is "$out" ECONNREFUSED "hardened: the connection by address is refused"
check "hardened: (sentinel connection logged)" sentinel
is "$(plain_conns)" $((before + 1)) "hardened: the server received nothing but the sentinel"
check "hardened: the log says the default rule denied it" \
    grep -Eq "error: rule \\[default\\] 127\\.0\\.0\\.1:$PPORT( [^ ]+)?: connection denied by policy" "$WORK/hard.tlsshim.log"
check_fail "hardened: the log has no policy warning" grep -q 'warning: policy' "$WORK/hard.tlsshim.log"

# ==== 3. rekey-after too small for the KeyUpdate rate limit =================================
write_policy "$WORK/rekey.policy" <<POLICY
log = file:$WORK/rekey.tlsshim.log
log-level = warning

[bulk]
match = 127.0.0.1:$PPORT
action = plain
[fast]
match = 10.255.255.0/24:*
server-name = localhost
rekey-after = 64K
[slow]
match = 10.255.254.0/24:*
server-name = localhost
rekey-after = 1G
POLICY
out=$("$TLSSHIM" check -p "$WORK/rekey.policy" 2>&1 >/dev/null)
ok $? "rekey: tlsshim check exits 0"
like "$out" "^$WORK/rekey.policy:10: warning: rekey-after = 64K in rule \\[fast\\] is not kept on fast connections: at most 4 KeyUpdates are sent a second" \
    "rekey: tlsshim check warns at the rekey-after line"
is "$(printf '%s\n' "$out" | grep -c warning)" 1 "rekey: only that warning (none for 1G)"
diag "tlsshim check said: $out"
out=$(client "$WORK/rekey.policy")
like "$out" '^OK HTTP/1.0 200' "rekey: the program ran (plain rule)"
check "rekey: the program's log has the warning, with FILE:LINE" \
    grep -Eq "warning: policy $WORK/rekey.policy:10: rekey-after = 64K in rule \\[fast\\]" "$WORK/rekey.tlsshim.log"

done_testing
