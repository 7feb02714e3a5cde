#!/bin/bash
# fork_race.sh -- forks at the same moment in many threads must count every
# child among a connection's holders (src/owner.h, point 7).
# tests/stress/forkrace_client writes to an upgraded connection, then 8
# threads fork FORK_RACE_FORKS (default 200) times each, at once, with
# fork() and then with _Fork(); every child _exits at once.  glibc 2.36 runs
# the pthread_atfork prepare handlers of concurrent fork() calls at the same
# time (it drops its atfork lock around each handler), and _Fork() runs them
# in no lock at all.  A child left out of the count believes, when it exits,
# that it is the last holder: it takes the directions nobody used since the
# fork and ends the connection (close_notify) under the parent, whose next
# write fails with EIO.  Proof from the server: every byte of the parent,
# before and after the forks, then close_notify.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

CLIENT=$top_builddir/tests/stress/forkrace_client
FORKS=${FORK_RACE_FORKS:-200}
need_tlsshim
[ -x "$CLIENT" ] || skip_all "tests/stress/forkrace_client not built"
need_cmd sha256sum

start_tserver srv --mode sink
POLICY_LEVEL='' POLICY_MATCH=127.0.0.1:18080 policy up "$srv_port" "server-name = localhost"
ab=$( (head -c 1000 /dev/zero | tr '\0' a; head -c 1000 /dev/zero | tr '\0' b) | sha256sum | cut -d' ' -f1)
# ThreadSanitizer intercepts fork() but not _Fork(): after a _Fork() of a
# threaded process its runtime still sees the parent's threads (reports the
# child's lock resets as races, and hangs): only fork() is run there.
hows="fork _Fork"
case " ${TLSSHIM_PRELOAD:-} " in
*libtsan*) hows=fork; skip "ThreadSanitizer build: TSan does not intercept _Fork" ;;
esac
n=0
for how in $hows; do
    n=$((n + 1))
    out=$(timeout 120 "$TLSSHIM" -p "$WORK/up.policy" "$CLIENT" 18080 8 "$FORKS" $how 2>"$WORK/$how.err")
    rc=$?
    [ $rc -eq 0 ] || diag "$how: rc=$rc $out $(cat "$WORK/$how.err")"
    is "$out" "forks $((8 * FORKS)) failed 0 write=ok" "$how: 8 threads x $FORKS forks at once; the parent writes after them"
    if check "$how: the server logged the connection" wait_for_lines "$srv_log" $n 20; then
        got="$(tserver_field "$srv_log" $n bytes_in) $(tserver_field "$srv_log" $n sha256_in) $(tserver_field "$srv_log" $n closed)"
        is "$got" "2000 $ab notify" "$how: server got every byte, then close_notify"
    fi
done
is "$(cat "$WORK/up.tlsshim.log" 2>/dev/null | grep -c 'another process')" 0 \
    "the log: no process was refused a direction another one took"

done_testing
