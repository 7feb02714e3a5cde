#!/bin/bash
# early_race.sh -- "early-data = on", a resumable ticket, and a reader and
# a writer thread on one blocking socket: the reader calls recv() first
# (it runs the handshake, then waits for the answer), the writer writes the
# request just after.  The server answers only after the request.  Proves:
# the writer never waits for the reader's lock once the connection is open
# (before the fix it queued on it for ever: the client's watchdog says
# "stuck"); every round got its whole answer; the server saw every request.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim

ROUNDS=30
start_tserver srv --earlydata 16384
policy p "$srv_port" "server-name = localhost" "early-data = on"
out=$(timeout 120 "$TLSSHIM" -p "$WORK/p.policy" "$PYTHON" "$CLIENTS/early_race.py" localhost 18080 \
    "$ROUNDS" 2>"$WORK/client.err")
rc=$?
diag "client: $out $(head -c 600 "$WORK/client.err")"
is "$rc" 0 "client exits 0 (no round stuck)"
is "$out" "ok $ROUNDS/$ROUNDS" "every round got its whole answer"
check "server logged $((ROUNDS + 1)) connections" wait_for_lines "$srv_log" $((ROUNDS + 1))
is "$(grep -c '^conn .*status=ok version=TLS1.3' "$srv_log")" $((ROUNDS + 1)) "server: all TLS 1.3, status=ok"
is "$(grep -c '^conn .*resumed=1' "$srv_log")" "$ROUNDS" "server: every shared connection was resumed"
check_fail "tlsshim logged no error" grep -q 'error' "$WORK/p.tlsshim.log"
done_testing
