#!/bin/bash
# A blocking read must push what the send side left queued, even when it
# started waiting before there was anything to push (another thread wrote
# until EAGAIN and shut the write side down meanwhile), and must follow
# the descriptor when the program closes and another one stays (dup).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u
need_tlsshim

# 1. Reader blocked first; writer fills the socket, shutdown(SHUT_WR).
start_tserver tt --mode sink --read-gate "$WORK/gate"
POLICY_LEVEL=debug POLICY_MATCH=127.0.0.1:$tt_port policy tt "" "server-name = localhost"
out=$(RUN_TIMEOUT=40 run tt "$PYTHON" "$CLIENTS/read_push_2thread.py" 127.0.0.1 "$tt_port" "$WORK/gate" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
is "$rc" 0 "two threads: the blocked reader pushes the queued records and close_notify"
wait_for_lines "$tt_log" 1 || true
is "$(tserver_field "$tt_log" 1 closed)" notify "two threads: the server saw close_notify"
is "$(tserver_field "$tt_log" 1 bytes_in)" "$(echo "$out" | sed -n 's/^sent //p')" "two threads: every byte written arrived"

# 2. Reader on a dup of a descriptor the program then closes.
start_tserver ts --mode sink --read-gate "$WORK/gate2"
POLICY_LEVEL=debug POLICY_MATCH=127.0.0.1:$ts_port policy ts "" "server-name = localhost"
out=$(RUN_TIMEOUT=40 run ts "$PYTHON" "$CLIENTS/read_push_stalefd.py" 127.0.0.1 "$ts_port" "$WORK/gate2" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
is "$rc" 0 "closed descriptor, reader on its dup: the reader ends"
done_testing
