#!/bin/bash
# cmsg.sh -- while an upgraded connection is open the library reads the
# control data of every sendmsg/sendmmsg (an upgraded descriptor must not
# leave by SCM_RIGHTS).  Control data the kernel refuses (a cmsg_len larger
# than the buffer) must get the kernel's answer (EINVAL), not a crash: a
# small C client sends such a message over a Unix socketpair, then closes its
# upgraded connection.  Proof from tserver: the client's bytes, then
# close_notify (a crashed client would end with an EOF or a reset).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim
need_cmd cc sha256sum

cc -O0 -o "$WORK/cmsg_client" "$CLIENTS/cmsg_client.c" 2>"$WORK/cc.err" ||
    { diag "$(cat "$WORK/cc.err")"; bail_out "cannot build cmsg_client.c"; }

start_tserver srv --mode sink
POLICY_LOG=file:$TLOG POLICY_RULE=direct POLICY_MATCH=127.0.0.1:$srv_port policy main "" "server-name = localhost"

# What the kernel says without the library.
plain=$("$WORK/cmsg_client" 127.0.0.1 "$(free_port)" x 2>&1)
[ $? = 1 ] || diag "without a server: $plain"

text="GET /cmsg"$'\n'
out=$(timeout 30 "$TLSSHIM" -p "$WORK/main.policy" "$WORK/cmsg_client" 127.0.0.1 "$srv_port" "$text" 2>&1)
ok $? "the program ran to its end (exit 0, no crash)"
like "$out" 'sendmsg ret=-1 errno=EINVAL' "sendmsg with a cmsg_len past the buffer: EINVAL, as the kernel says"
like "$out" 'sendmmsg ret=-1 errno=EINVAL' "sendmmsg with a cmsg_len past the buffer: EINVAL, as the kernel says"
if wait_for_lines "$srv_log" 1 20; then
    is "$(tserver_field "$srv_log" 1 sha256_in)" "$(printf '%s' "$text" | sha256sum | cut -d' ' -f1)" \
        "tserver got the program's bytes"
    is "$(tserver_field "$srv_log" 1 closed)" notify "tserver: then close_notify (the program closed, not crashed)"
else
    fail "tserver logged the connection"
fi

done_testing
