#!/bin/bash
# shut_early.sh -- shutdown() before a client's handshake has finished is
# ours, not the kernel's (the kernel's would end the handshake):
#   * SHUT_WR owes close_notify after the handshake, and a later write gets
#     EPIPE, as over TCP: it must not leave as 0-RTT data (early-data = on,
#     a resumed session) or as anything else;
#   * SHUT_RD closes the reading side for the program only: the handshake
#     still reads, the program's write goes, its reads return end of stream.
# Proof from tserver: the bytes it got (none after SHUT_WR; the line after
# SHUT_RD), how the connection ended (close_notify).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim
need_python

start_tserver ed --earlydata 16384 --mode sink
POLICY_LOG=file:$TLOG POLICY_MATCH=127.0.0.1:$ed_port policy wr "" "server-name = localhost" "early-data = on"
out=$(run wr "$PYTHON" "$CLIENTS/shut_early.py" wr_then_write "$ed_port" 2>&1)
ok $? "SHUT_WR: the client ran to its end"
like "$out" "^send=EPIPE" "SHUT_WR, then send(): EPIPE, as over TCP"
like "$out" "recv=b''" "SHUT_WR: the program still reads, then end of stream"
if wait_for_lines "$ed_log" 2 20; then
    is "$(tserver_field "$ed_log" 2 resumed)" 1 "tserver: the second connection resumed (0-RTT was possible)"
    is "$(tserver_field "$ed_log" 2 bytes_in) $(tserver_field "$ed_log" 2 early_data)" "0 0" \
        "tserver: not one byte after the shutdown, neither early data nor later"
    is "$(tserver_field "$ed_log" 2 closed)" notify "tserver: the end came as close_notify"
else
    fail "tserver logged two connections"
fi

start_tserver sk --mode sink
POLICY_LOG=file:$TLOG POLICY_MATCH=127.0.0.1:$sk_port policy rd "" "server-name = localhost"
out=$(run rd "$PYTHON" "$CLIENTS/shut_early.py" rd_then_write "$sk_port" 2>&1)
ok $? "SHUT_RD: the client ran to its end"
like "$out" "send=14" "SHUT_RD before the handshake, then send(): the line goes"
like "$out" "recv=b''" "SHUT_RD: the program's reads return end of stream"
if wait_for_lines "$sk_log" 1 20; then
    is "$(tserver_field "$sk_log" 1 first_line)" "after-shut-rd" "tserver: got the line through TLS"
    is "$(tserver_field "$sk_log" 1 closed)" notify "tserver: then close_notify"
else
    fail "tserver logged the connection"
fi

done_testing
