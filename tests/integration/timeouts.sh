#!/bin/bash
# timeouts.sh -- "handshake-timeout": a server that accepts the TCP
# connection and then never answers fails the connection in time.
# The "server" is clients/silent_server.py: it accepts, never sends, and
# logs what it received when the client goes away.  Proves:
#   * handshake-timeout = 1s: curl (blocking) fails after ~1 s (1-4 s, not
#     the 10 s default nor curl's own 20 s), so do python's asyncio
#     (non-blocking, epoll) and urllib (blocking) clients; tlsshim's log
#     names the timeout;
#   * handshake-timeout = 3s: the client fails after 3 s, not earlier;
#   * the errno is ETIMEDOUT ("Connection timed out"), never ECONNREFUSED:
#     blocking connect() (curl, urllib, connect_errno.py), SO_ERROR after a
#     non-blocking connect, and a send() on the socket afterwards;
#   * server side: each connection brought exactly one TLS record -- a
#     ClientHello (16 03 xx, handshake type 01) -- and never plaintext
#     ("GET ..."); the client then closed the connection.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl
need_tlsshim

# ---- the silent server -----------------------------------------------------------------------
start_server silent "$PYTHON" "$CLIENTS/silent_server.py" "$WORK/silent.port" "$WORK/silent.log" 30
SLOG=$silent_log SPORT=$silent_port

# every policy: rule [hung] to the silent server
POLICY_RULE=hung

now() { date +%s.%N; }
# within T0 LOW HIGH: is (now - T0) in [LOW, HIGH]?  Prints the elapsed time.
elapsed() { "$PYTHON" -c "import sys; print('%.2f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$(now)" "$1"; }
between() { "$PYTHON" -c "import sys; v=float(sys.argv[1]); sys.exit(0 if float(sys.argv[2]) <= v <= float(sys.argv[3]) else 1)" "$@"; }

conns=0
# silent_conn N: check the silent server's Nth line (exactly one ClientHello)
silent_conn() {
    local label=$1 line hex bytes rlen
    conns=$((conns + 1))
    if ! wait_for_match "$SLOG" "^conn n=$conns " 10; then
        fail "$label: silent server logged the connection"
        return
    fi
    pass "$label: silent server logged the connection"
    line=$(grep "^conn n=$conns " "$SLOG")
    hex=$(printf '%s\n' "$line" | sed -n 's/.* first_hex=\([0-9a-f-]*\) .*/\1/p')
    bytes=$(printf '%s\n' "$line" | sed -n 's/.* bytes=\([0-9]*\) .*/\1/p')
    like "$hex" '^1603[0-9a-f]{6}01' "$label: server got a TLS handshake record with a ClientHello (first bytes $hex)"
    rlen=$((16#${hex:6:4}))
    is "$bytes" $((rlen + 5)) "$label: server got exactly that one record ($bytes bytes), nothing more"
    like "$line" 'plain_http=0' "$label: server never saw plaintext HTTP"
    like "$line" 'end=(eof|reset)' "$label: the client closed the connection"
}

# ==== 1. handshake-timeout = 1s ============================================================
policy one "$SPORT" "handshake-timeout = 1s"
t0=$(now)
out=$(tlsshim_run "$WORK/one.policy" curl -v -sS --noproxy '*' --max-time 20 -o /dev/null http://localhost:18080/x 2>&1)
st=$?
el=$(elapsed "$t0")
[ $st -ne 0 ]
ok $? "curl: fails (exit $st)"
between "$el" 0.8 4
ok $? "curl: fails after ~1 s (took $el s)"
silent_conn "curl"
check "curl: tlsshim log names the handshake timeout" \
    grep -Eq 'error: rule \[hung\] .*TLS handshake timed out.*within 1000 ms' "$WORK/one.tlsshim.log"
diag "curl: $(printf '%s\n' "$out" | grep -E '^curl:|port 18080 failed')"
# (curl also tries ::1 first, where nothing listens: that one is refused.)
unlike_refused() { if printf '%s' "$1" | grep -q 'Connection refused'; then fail "$2"; else pass "$2"; fi; }
like "$out" 'connect to 127\.0\.0\.1 port 18080 failed: Connection timed out' \
    "curl: connecting to the silent server failed with 'Connection timed out'"

: >"$WORK/one.tlsshim.log"
t0=$(now)
out=$(tlsshim_run "$WORK/one.policy" "$PYTHON" "$CLIENTS/asyncio_get.py" localhost 18080 /x 2>&1)
st=$?
el=$(elapsed "$t0")
[ $st -ne 0 ]
ok $? "asyncio: fails (exit $st)"
between "$el" 0.8 4
ok $? "asyncio: fails after ~1 s (took $el s)"
like "$out" 'TimeoutError|timed out' "asyncio: the program sees a timeout"
silent_conn "asyncio"
check "asyncio: tlsshim log names the handshake timeout" \
    grep -Eq 'error: rule \[hung\] .*TLS handshake timed out' "$WORK/one.tlsshim.log"

: >"$WORK/one.tlsshim.log"
t0=$(now)
out=$(tlsshim_run "$WORK/one.policy" "$PYTHON" "$CLIENTS/urllib_get.py" http://localhost:18080/x 2>&1)
st=$?
el=$(elapsed "$t0")
[ $st -ne 0 ]
ok $? "urllib: fails (exit $st)"
between "$el" 0.8 4
ok $? "urllib: fails after ~1 s (took $el s)"
silent_conn "urllib"
like "$out" 'timed out|Errno 110' "urllib: the program sees a timeout"
unlike_refused "$out" "urllib: the error is not 'Connection refused'"
check "urllib: tlsshim log names the handshake timeout" \
    grep -Eq 'error: rule \[hung\] .*TLS handshake timed out' "$WORK/one.tlsshim.log"

# connect_errno.py: the errno itself, blocking and non-blocking, and on the
# next send().
for mode in blocking nonblocking; do
    : >"$WORK/one.tlsshim.log"
    out=$(tlsshim_run "$WORK/one.policy" "$PYTHON" "$CLIENTS/connect_errno.py" $mode localhost 18080 2>&1)
    is "$(printf '%s\n' "$out" | sed -n 's/^connect=//p')" ETIMEDOUT "$mode: connect reports ETIMEDOUT"
    is "$(printf '%s\n' "$out" | sed -n 's/^send=//p')" ETIMEDOUT "$mode: a later send() reports ETIMEDOUT"
    silent_conn "$mode"
    check "$mode: tlsshim log names the handshake timeout" \
        grep -Eq 'error: rule \[hung\] .*TLS handshake timed out' "$WORK/one.tlsshim.log"
done

# ==== 2. handshake-timeout = 3s: not earlier =================================================
policy three "$SPORT" "handshake-timeout = 3s"
t0=$(now)
tlsshim_run "$WORK/three.policy" curl -sS --noproxy '*' --max-time 20 -o /dev/null http://localhost:18080/x 2>/dev/null
st=$?
el=$(elapsed "$t0")
[ $st -ne 0 ]
ok $? "3s: curl fails (exit $st)"
between "$el" 2.8 6
ok $? "3s: after ~3 s (took $el s)"
silent_conn "3s"
check "3s: tlsshim log: within 3000 ms" grep -q 'within 3000 ms' "$WORK/three.tlsshim.log"

done_testing
