#!/bin/bash
# shutdown_busy.sh -- shutdown(SHUT_WR) never waits for a writer: one thread
# is blocked in a big write to a server that reads nothing yet (tserver
# --read-gate), another calls shutdown(SHUT_WR).  Proves: shutdown returns
# while the writer is still blocked (the client checks the writer thread
# is alive, then opens the gate -- no timing); then the write ends with
# every byte taken, a later write fails with EPIPE, and the server received
# every byte, in order, and then close_notify (closed=notify).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim

SIZE=$((32 * 1024 * 1024))
start_tserver srv --mode sink --read-gate "$WORK/gate"
policy p "$srv_port" "server-name = localhost"
out=$(timeout 60 "$TLSSHIM" -p "$WORK/p.policy" "$PYTHON" "$CLIENTS/shut_blocked.py" localhost 18080 \
    "$WORK/gate" "$SIZE" 2>"$WORK/client.err")
rc=$?
diag "client: $(echo "$out" | tr '\n' '|') $(head -c 600 "$WORK/client.err")"
is "$rc" 0 "client exits 0"
is "$(echo "$out" | sed -n 1p)" "shutdown returned, writer blocked" \
    "shutdown(SHUT_WR) returned while another thread was blocked in write"
is "$(echo "$out" | sed -n 2p)" "writer sent $SIZE" "the blocked write then took all $SIZE bytes"
is "$(echo "$out" | sed -n 3p)" "write after shutdown: EPIPE" "a write after shutdown fails with EPIPE"
is "$(echo "$out" | sed -n 4p)" "eof" "the client read the server's close_notify"
check "server logged the connection" wait_for_lines "$srv_log" 1
f() { tserver_field "$srv_log" 1 "$1"; }
is "$(f status) $(f version)" "ok TLS1.3" "server: status=ok TLS1.3"
is "$(f bytes_in)" "$SIZE" "server: every byte the write took arrived"
is "$(f sha256_in)" "$("$PYTHON" -c 'import hashlib,sys
n=int(sys.argv[1]); d=(bytes(i % 251 for i in range(251))*(n//251+1))[:n]
print(hashlib.sha256(d).hexdigest())' "$SIZE")" "server: ... in order (sha256_in)"
is "$(f closed)" "notify" "server: then close_notify (closed=notify)"
check_fail "tlsshim logged no error" grep -q 'error' "$WORK/p.tlsshim.log"
done_testing
