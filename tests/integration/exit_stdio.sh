#!/bin/bash
# exit_stdio.sh -- bytes a program left in a stdio buffer on an upgraded
# socket reach the server when the program exits, BEFORE close_notify.
# glibc's exit() runs the atexit handlers and the libraries' destructors
# (ours among them: the end of every open connection, close_notify) and only
# then flushes stdio: without care, a FILE's buffered bytes went out after
# close_notify, i.e. never (EPIPE), and the server saw a valid close_notify
# after a truncated stream.  A small C client: an fdopen() stream and stdout
# on a socket created on descriptor 1, each written without a flush, then
# exit() / return from main; and _exit (libc flushes nothing: only what
# write() took arrives).  Proof from tserver: sha256_in of the whole text,
# closed=notify.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim
need_cmd cc sha256sum

cc -O0 -o "$WORK/exit_stdio_client" "$CLIENTS/exit_stdio_client.c" 2>"$WORK/cc.err" ||
    { diag "$(cat "$WORK/cc.err")"; bail_out "cannot build exit_stdio_client.c"; }

start_tserver srv --mode sink

POLICY_LOG=file:$TLOG POLICY_RULE=direct POLICY_MATCH=127.0.0.1:$srv_port policy main "" "server-name = localhost"

sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
n=0
# ends CASE TEXT: the next connection carried exactly TEXT, then close_notify.
ends() {
    local case=$1 text=$2
    n=$((n + 1))
    if ! wait_for_lines "$srv_log" "$n" 20; then
        fail "$case: tserver logged the connection"
        n=$(tserver_conns "$srv_log")
        return 1
    fi
    is "$(tserver_field "$srv_log" "$n" status)" ok "$case: tserver: status ok"
    is "$(tserver_field "$srv_log" "$n" bytes_in)" "${#text}" "$case: tserver got every byte"
    is "$(tserver_field "$srv_log" "$n" sha256_in)" "$(sha "$text")" "$case: tserver got exactly the program's bytes"
    is "$(tserver_field "$srv_log" "$n" closed)" notify "$case: then close_notify"
}

text="GET /fdopen-exit"$'\n'"left in the FILE's buffer"$'\n'
timeout 30 "$TLSSHIM" -p "$WORK/main.policy" "$WORK/exit_stdio_client" fdopen 127.0.0.1 "$srv_port" "$text"
ok $? "fdopen stream, exit(0): the program succeeded"
ends "fdopen stream flushed by exit()" "$text"

text="GET /stdout-return"$'\n'"stdout is the socket"$'\n'
timeout 30 "$TLSSHIM" -p "$WORK/main.policy" "$WORK/exit_stdio_client" stdout 127.0.0.1 "$srv_port" "$text"
ok $? "stdout on a socket made on descriptor 1, return from main: the program succeeded"
ends "stdout flushed on return from main" "$text"

text="GET /_exit"$'\n'
timeout 30 "$TLSSHIM" -p "$WORK/main.policy" "$WORK/exit_stdio_client" _exit 127.0.0.1 "$srv_port" "$text"
ok $? "write, then an unflushed stream, _exit(0): the program succeeded"
ends "_exit: what write() took, nothing of the unflushed stream (libc flushes nothing)" "$text"

if grep -q 'sending the end of the stream failed' "$WORK/tlsshim.log"; then
    fail "the log says no end was lost"
    diag "$(grep 'sending the end' "$WORK/tlsshim.log")"
else
    pass "the log says no end was lost"
fi

done_testing
