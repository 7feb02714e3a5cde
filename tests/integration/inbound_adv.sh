#!/bin/bash
# inbound_adv.sh -- hostile clients and awkward server code against plain
# servers run under tlsshim with an inbound rule (clients/adv_server.py, a
# line echo server: one thread per connection, or one thread on
# edge-triggered epoll).  Evidence from both ends: the client's result line
# (clients/adv_client.py) and the server's own event log.
#   slowloris: a client that sends its ClientHello a byte at a time is
#     dropped at handshake-timeout, by a blocking server as by an event
#     loop (the deadline counts from accept, not from the last byte), and
#     the event loop serves another client meanwhile;
#   plaintext = allow on edge-triggered epoll: a plaintext client whose
#     request arrives in two pieces gets its answer (the second piece's
#     readiness is not swallowed after the switch to clear);
#   shutdown(SHUT_WR) before the handshake (a receive-only service): the
#     handshake still happens, the server reads the request, the client
#     sees a clean end (close_notify), not a failed handshake.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim
need_python

# serve NAME MODE [POLICY LINES...]: adv_server.py MODE under tlsshim with
# an inbound rule for 127.0.0.1 (handshake-timeout 1s); its event log is
# ${NAME}_log, tlsshim's $WORK/NAME.tlsshim.log.
serve() {
    local name=$1 mode=$2
    shift 2
    {
        echo "log = file:$WORK/$name.tlsshim.log"
        echo "log-level = info"
        echo
        echo "[$name]"
        echo "listen = 127.0.0.1:*"
        echo "cert = $CERTS/server.pem"
        echo "key = $CERTS/server-key.pem"
        echo "handshake-timeout = 1s"
        for line; do echo "$line"; done
    } | write_policy "$WORK/$name.policy"
    start_server "$name" "$TLSSHIM" -p "$WORK/$name.policy" "$PYTHON" "$CLIENTS/adv_server.py" \
        "$mode" "$WORK/$name.port" "$WORK/$name.log"
}

# client NAME ARGS...: adv_client.py against server NAME (30 s at most).
client() {
    local port_var="$1_port"
    shift
    CERTS=$CERTS timeout 30 "$PYTHON" "$CLIENTS/adv_client.py" "$1" "${!port_var}" "${@:2}" 2>&1
}

plan 11

# ---- slowloris: the ClientHello a byte every 50 ms (about 12 s in all) ------
for mode in thread epollet; do
    name=slow_$mode
    serve "$name" "$mode"
    client "$name" trickle 0.05 >"$WORK/$name.out" &
    trickler=$!
    if [ "$mode" = epollet ]; then
        wait_for_match "$WORK/$name.log" '^accept ' 10 >/dev/null
        like "$(client "$name" tls other)" "^got echo:other$" "$mode: another client is served while one trickles"
    fi
    wait "$trickler"
    result=$(cat "$WORK/$name.out")
    diag "$mode: $result"
    like "$result" "^ended after [0-9]+ of" "$mode: the trickling client is dropped before its ClientHello is complete"
    wait_until 5 grep -q "timed out" "$WORK/$name.tlsshim.log"
    check "$mode: the log says the handshake timed out" \
        grep -q "TLS handshake timed out: the client did not complete the handshake within 1000 ms" "$WORK/$name.tlsshim.log"
    wait_for_match "$WORK/$name.log" '^(error|eof) ' 5 >/dev/null
    check "$mode: the server saw a reset connection, no byte" grep -q "^error 127.0.0.1:[0-9]* ECONNRESET$" "$WORK/$name.log"
done

# ---- plaintext = allow, edge-triggered epoll, the request in two pieces -----
serve mixed epollet "plaintext = allow"
like "$(client mixed plain 'h' 'ello\n')" "^got echo:hello$" \
    "plaintext = allow, epoll ET: a request in two pieces is answered"
like "$(client mixed tls hi)" "^got echo:hi$" "... and a TLS client on the same server too"

# ---- shutdown(SHUT_WR) before the handshake ---------------------------------
serve shut shutwr
like "$(client shut tls-eof request)" "^end=eof$" \
    "shutdown(SHUT_WR) before the handshake: the client sees a clean end (close_notify)"
wait_for_match "$WORK/shut.log" '^line ' 10 >/dev/null
check "... and the server still reads the request" grep -q "^line 127.0.0.1:[0-9]* request$" "$WORK/shut.log"
