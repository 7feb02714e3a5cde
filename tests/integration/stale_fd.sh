#!/bin/bash
# stale_fd.sh -- a program closes an upgraded socket behind the library's
# back (syscall(SYS_close), as libuv does) and the number comes back from a
# call that is neither socket() nor open(): inotify_init1, timerfd_create,
# an eventfd no hook sees (then epoll_ctl ADD, as libuv adds every
# descriptor before it reads it), a socketpair no hook sees (then exit).
# The new file must behave as itself: its reads are its own (node aborted
# in uv__inotify_read when they went to the dead connection), and nothing
# of ours (close_notify at exit) may reach it.  Proof: the program's reads
# get the file's own data; the reused socketpair's peer receives 0 bytes;
# the server got the program's bytes on the real connection.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim
need_cmd cc

cc -O0 -o "$WORK/stale_fd" "$CLIENTS/stale_fd.c" 2>"$WORK/cc.err" ||
    { diag "$(cat "$WORK/cc.err")"; bail_out "cannot build stale_fd.c"; }

start_tserver srv --mode sink
POLICY_LOG=file:$TLOG POLICY_RULE=direct POLICY_MATCH=127.0.0.1:$srv_port policy main "" "server-name = localhost"

n=0
for mode in inotify timerfd rawepoll exit; do
    out=$(RUN_TIMEOUT=20 run main "$WORK/stale_fd" 127.0.0.1 "$srv_port" "$mode" 2>&1)
    ok $? "$mode: the program ran to its end (exit 0, no crash)"
    like "$out" "^ok $mode" "$mode: the reused number behaves as the new file"
    unlike "$out" "bad" "$mode: no step went wrong"
    n=$((n + 1))
done
if wait_for_lines "$srv_log" "$n" 20; then
    pass "tserver logged the $n connections"
    is "$(tserver_field "$srv_log" 1 bytes_in)" 6 "tserver got the program's bytes on the real connection"
else
    fail "tserver logged the $n connections"
fi
unlike "$(cat "$TLOG" 2>/dev/null)" "Socket operation on non-socket|Bad file descriptor" \
    "the log has no I/O on a number that is no longer the socket"

done_testing
