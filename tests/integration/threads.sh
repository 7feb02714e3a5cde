#!/bin/bash
# threads.sh -- one program, 32 threads, each opening, using and closing
# upgraded connections (some shared by a reader and a writer thread), against
# tserver.  Proves, from the server's log: every connection was TLS 1.3 and
# got its whole answer; the client saw every answer complete.  In a
# ThreadSanitizer build (./configure --enable-sanitizers=thread) the client
# and the library are instrumented: any data race fails the client (exit 66).
# STRESS_ROUNDS (default 4) connections per thread.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

CLIENT=$top_builddir/tests/stress/threads_client
[ -x "$CLIENT" ] || bail_out "stress client not built: '$CLIENT'"
ROUNDS=${STRESS_ROUNDS:-4}
THREADS=32
# With 32 threads, 1 in 8 connections is a reader/writer pair.
TOTAL=$((THREADS * ROUNDS))

start_tserver srv
POLICY_LOG=file:$TLOG POLICY_LEVEL='' POLICY_RULE=stress POLICY_MATCH=127.0.0.1:18080 \
    policy p "$srv_port" "server-name = localhost"

out=$(TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}" \
    timeout 120 "$TLSSHIM" -p "$WORK/p.policy" "$CLIENT" 18080 "$THREADS" "$ROUNDS" 2>"$WORK/client.err")
rc=$?
diag "client: $out"
[ $rc -eq 66 ] && diag "$(grep -A30 'WARNING: ThreadSanitizer' "$WORK/client.err" | head -60)"
is "$rc" 0 "$THREADS threads x $ROUNDS connections: client exits 0 (no race reported, every answer whole)"
is "$out" "ok $TOTAL bad 0" "the client got $TOTAL complete answers"
check "server logged $TOTAL connections" wait_for_lines "$srv_log" "$TOTAL" 30
is "$(grep -c '^conn .*status=ok version=TLS1.3' "$srv_log")" "$TOTAL" "server: $TOTAL TLS 1.3 connections, all ok"
is "$(grep -c '^conn .*bytes_out=20[0-9][0-9][0-9] ' "$srv_log")" "$TOTAL" "server: every answer went out whole"
is "$(grep -c 'error' "$WORK/tlsshim.log" 2>/dev/null || true)" 0 "tlsshim logged no error"
done_testing
