#!/bin/bash
# fork_locks.sh -- fork() while another thread holds a lock of the library
# must not deadlock the child.  A real python program
# (tests/integration/clients/fork_creds.py) forks while one of its threads
# is inside the library's credential loading for one rule (once the policy
# is loaded, the program replaces that rule's CA file by a named pipe, so the
# loading waits, deterministically, until the program writes the CA into it);
# the child then connects through another rule.  The child has a 15 s alarm: a deadlock kills it and fails the test
# instead of hanging it.  Proof from the servers: the child's connection and,
# once the CA is written, the parent thread's each arrive over TLS 1.3 with
# every byte, and end with close_notify.
# Then a connection's own lock: the program forks while one of its threads is
# blocked in recv() on an upgraded connection
# (tests/integration/clients/fork_busy.py).  The child's send() and recv() on
# it fail at once with EIO (the parent keeps it: the child's copy of the
# session is a snapshot of a read in progress), with a log line; the parent
# goes on using it, and the server sees the parent's message and its
# close_notify only.
# Last, every lock: tests/stress/forklocks_client (C) finds each mutex of the
# loaded library and TLS module (symbol tables and registry sections), and
# for each one forks while a thread of its own holds it; the child must find
# it free and complete an exchange through the rule under a 10 s alarm.
# (tests/unit/forklock_test and tests/unit/locks_registered.sh cover the
# registry itself.)
# And a signal handler that calls _Fork() (async-signal-safe) after
# interrupting its own thread inside the registry (fdtab_lock held):
# forklocks_client's signal-fork mode.  The prepare step gives up on the lock
# after 200 ms instead of waiting for ever: the parent keeps its connection
# (the child's write gets EIO, with a log line) and goes on using it; the
# server sees the parent's bytes only, then close_notify.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

CLIENT=$top_srcdir/tests/integration/clients/fork_creds.py
need_tlsshim

start_tserver slow --mode echo
start_tserver fast --mode echo
cp "$CERTS/ca.pem" "$WORK/slow-ca.pem" && chmod 600 "$WORK/slow-ca.pem"
write_policy "$WORK/p.policy" <<POL
log = file:$WORK/tlsshim.log
[slow]
match = 127.0.0.1:18081
port = $slow_port
server-name = localhost
ca = $WORK/slow-ca.pem
[fast]
match = 127.0.0.1:18082
port = $fast_port
server-name = localhost
ca = $CERTS/ca.pem
POL

out=$(timeout 90 "$TLSSHIM" -p "$WORK/p.policy" "$PYTHON" "$CLIENT" "$WORK/slow-ca.pem" 18081 18082 2>"$WORK/client.err")
rc=$?
[ $rc -eq 0 ] || diag "client: rc=$rc $(cat "$WORK/client.err")"
is "$out" "child=ok parent=ok" "the child connects while the parent's thread loads credentials; both exchanges complete"
# 53 and 42 bytes x 8, as fork_creds.py sends
# (the fast server's first connection is the program's first exchange)
if check "server: the child's connection" wait_for_lines "$fast_log" 2 15; then
    is "$(tserver_field "$fast_log" 2 version)" TLS1.3 "server: the child's connection is TLS 1.3"
    is "$(tserver_field "$fast_log" 2 bytes_in)" 424 "server: every byte the child sent"
    is "$(tserver_field "$fast_log" 2 closed)" notify "server: the child closed with close_notify"
fi
if check "server: the parent thread's connection" wait_for_lines "$slow_log" 1 15; then
    is "$(tserver_field "$slow_log" 1 version)" TLS1.3 "server: the parent's connection is TLS 1.3"
    is "$(tserver_field "$slow_log" 1 bytes_in)" 336 "server: every byte the parent sent"
    is "$(tserver_field "$slow_log" 1 closed)" notify "server: the parent closed with close_notify"
fi

start_tserver busy --mode echo
POLICY_LEVEL='' POLICY_MATCH=127.0.0.1:18083 policy busy "$busy_port" "server-name = localhost"
out=$(timeout 90 "$TLSSHIM" -p "$WORK/busy.policy" "$PYTHON" "$top_srcdir/tests/integration/clients/fork_busy.py" 18083 2>"$WORK/busy.err")
rc=$?
[ $rc -eq 0 ] || diag "fork_busy: rc=$rc $(cat "$WORK/busy.err")"
is "$(printf '%s\n' "$out" | sed -n 1p)" "EIO/EIO" "child: send and recv on the connection a parent thread was reading: EIO at once"
is "$(printf '%s\n' "$out" | sed -n 2p)" "child=exited parent=ok" "parent: the connection still works"
like "$(cat "$WORK/busy.tlsshim.log")" "another thread of the parent process was using this connection when it forked" \
    "the log says why the child was refused"
if check "server: the connection" wait_for_lines "$busy_log" 1 15; then
    is "$(tserver_field "$busy_log" 1 bytes_in)" 32 "server: only the parent's message came in"
    is "$(tserver_field "$busy_log" 1 closed)" notify "server: closed with close_notify"
fi

FORKLOCKS=$top_builddir/tests/stress/forklocks_client
if [ -x "$FORKLOCKS" ]; then
    start_tserver each --mode echo
    POLICY_LEVEL='' POLICY_MATCH=127.0.0.1:18084 policy each "$each_port" "server-name = localhost"
    out=$(timeout 300 "$TLSSHIM" -p "$WORK/each.policy" "$FORKLOCKS" 18084 2>"$WORK/each.err")
    rc=$?
    diag "$out"
    is "$rc" 0 "forklocks_client: every lock free in the child, every child connected"
    n=$(printf '%s\n' "$out" | sed -n 's/^locks \([0-9]*\) bad 0$/\1/p')
    [ "${n:-0}" -ge 10 ]
    ok $? "forklocks_client found the library's locks (${n:-0})"
    for l in cred_lock swap_lock ep_lock fdtab_lock ownfd_lock; do
        like "$out" "$l free=yes child=ok" "$l held by another thread at fork: free in the child, which connects"
    done
    if check "server: the children's connections" wait_for_lines "$each_log" "$((${n:-0} + 1))" 30; then
        is "$(grep -c '^conn .*status=ok version=TLS1.3 .*closed=notify' "$each_log")" "$((${n:-0} + 1))" \
            "server: each child's connection TLS 1.3, ok, closed with close_notify"
    fi
    start_tserver sig --mode echo
    POLICY_LEVEL='' POLICY_MATCH=127.0.0.1:18085 policy sig "$sig_port" "server-name = localhost"
    out=$(timeout 60 "$TLSSHIM" -p "$WORK/sig.policy" "$FORKLOCKS" 18085 signal-fork 2>"$WORK/sig.err")
    rc=$?
    [ $rc -eq 0 ] || diag "signal-fork: rc=$rc $(cat "$WORK/sig.err")"
    is "$out" "signal-fork child=EIO parent=ok" \
        "_Fork in a signal handler that interrupted fdtab_lock's holder: no deadlock, the parent keeps the connection"
    like "$(cat "$WORK/sig.tlsshim.log" 2>/dev/null)" "the table of connections stayed busy" "the log says why"
    if check "server: the signal-fork connections" wait_for_lines "$sig_log" 2 15; then
        is "$(tserver_field "$sig_log" 2 bytes_in) $(tserver_field "$sig_log" 2 closed)" "29 notify" \
            "server: the parent's bytes only, then close_notify"
    fi
else
    skip "tests/stress/forklocks_client not built"
fi

done_testing
