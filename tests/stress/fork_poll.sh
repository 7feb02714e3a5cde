#!/bin/bash
# fork_poll.sh -- a measurement, not in make check (it times a close()):
# a forked child closes an upgraded connection that a thread of its parent
# was polling at the fork.  The child has no such thread: its close must
# not wait for it (conn_forked_child resets conn->users).  Before that fix
# every such close waited 2 s.  Run from the build tree:
#   top_srcdir=$PWD top_builddir=$PWD bash tests/stress/fork_poll.sh

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim

start_tserver srv --mode echo

POLICY_MATCH=127.0.0.1:18080 policy p "$srv_port" "server-name = localhost"
out=$(timeout 600 "$TLSSHIM" -p "$WORK/p.policy" "$top_builddir/tests/stress/fork_poll" 18080)
rc=$?
diag "$out"
is "$rc" 0 "the child's close did not wait for the parent's poll (under 1.5 s: $out)"
done_testing
