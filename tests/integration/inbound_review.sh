#!/bin/bash
# inbound_review.sh -- holes a review found in the inbound work (issue 11),
# each with real peers and evidence from both ends:
#   (1) inetd style: the client sent plaintext and then a reset before the
#       handler (under tlsshim, its acceptor not) first read its inherited
#       socket: the socket has no peer address any more but the bytes wait
#       in it; the handler must not read them in clear (bfe98da)
#   (2) MPTCP: a server listening with socket(AF_INET, SOCK_STREAM, 262);
#       a plaintext MPTCP client is refused, a TLS client over MPTCP gets
#       TLS 1.3 (MPTCP's protocol is not IPPROTO_TCP: it passed in clear)
#       (bfe98da)
#   (3) errno after a successful accept of a covered connection is what it
#       was before the call (99313ba)
#   (4) plaintext = allow: a write to a plaintext client that has closed
#       raises SIGPIPE once, not twice (5f9adc3)
#   (5) SCM_RIGHTS: a connection received over an AF_UNIX socket from a
#       process not under tlsshim speaks TLS on its first read, also when
#       its number was last used by a file closed behind the library's back
#       with syscall(SYS_close) (4bcf438)

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim ca.pem server.pem server-key.pem
HANDLER=$top_builddir/tests/integration/clients/inetd_handler
ACCEPT_ERRNO=$top_builddir/tests/integration/clients/accept_errno
FD_RECEIVER=$top_builddir/tests/integration/clients/fd_receiver
for prog in "$HANDLER" "$ACCEPT_ERRNO" "$FD_RECEIVER"; do
    [ -x "$prog" ] || bail_out "$prog not built"
done

# in_policy NAME [LINE...]: $WORK/NAME.policy, an inbound rule for every
# port of 127.0.0.1, debug log $WORK/NAME.tlsshim.log.
in_policy() {
    local name=$1 line
    shift
    {
        echo "log = file:$WORK/$name.tlsshim.log"
        echo "log-level = debug"
        echo
        echo "[in]"
        echo "listen = 127.0.0.1:*"
        echo "cert = $CERTS/server.pem"
        echo "key = $CERTS/server-key.pem"
        for line; do echo "$line"; done
    } | write_policy "$WORK/$name.policy"
}

# tls_client PORT OUT [mptcp]: clients/line_client.py over TLS (OUT gets
# port=, proto=, version=, verified=, answer= or error=).
tls_client() {
    timeout 30 "$PYTHON" "$CLIENTS/line_client.py" tls "$1" "$CERTS/ca.pem" ${3:+"$3"} >"$2" 2>&1
}

# plain_client PORT OUT [mptcp]: clients/line_client.py in clear (OUT gets
# port=, proto=, got= or error=).
plain_client() {
    timeout 30 "$PYTHON" "$CLIENTS/line_client.py" plain "$1" ${3:+"$3"} >"$2" 2>&1
}


# expect_tls OUT DESC: the client in OUT saw TLS 1.3, a verified
# certificate and the answer "hello ping".
expect_tls() {
    if grep -qx 'version=TLSv1.3' "$1" && grep -qx 'verified=localhost' "$1" &&
        grep -qx 'answer=hello ping' "$1"; then
        pass "$2"
    else
        fail "$2"
        diag "client:" "$(cat "$1")"
    fi
}

# ---- (1) plaintext, then a reset, before the handler's first read ---------------
in_policy reset
start_server racc "$PYTHON" "$CLIENTS/reset_acceptor.py" "$WORK/racc.port" \
    "$TLSSHIM" -p "$WORK/reset.policy" "$HANDLER" "$WORK/reset.hlog"
"$PYTHON" - "$racc_port" >"$WORK/reset.client" 2>&1 <<'EOF'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"SECRET-IN-CLEAR\n")
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print("sent, then reset")
EOF
ok $? "(1) the client sent its plaintext line and reset the connection"
wait_until 20 grep -q "handler status" "$WORK/racc.stderr"
like "$(cat "$WORK/racc.stderr")" "reset seen, [1-9][0-9]* bytes queued" \
    "(1) the acceptor saw the reset with the client's bytes still queued"
wait_until 10 grep -q "peer=" "$WORK/reset.hlog" 2>/dev/null
hlog=$(cat "$WORK/reset.hlog" 2>/dev/null)
like "$(head -n 1 <<<"$hlog")" "^peer=[^ ]* error=(ECONNRESET|eof)$" "(1) the handler's first read failed (reset or end)"
unlike "$hlog" "SECRET|line=" "(1) the handler read none of the client's plaintext"
like "$(cat "$WORK/reset.tlsshim.log" 2>/dev/null)" "refused: the client does not speak TLS \\(first bytes 53 45 43 52 45 54" \
    "(1) the log says why: the client's first bytes were not TLS"
diag "handler: $hlog"

# ---- (2) MPTCP --------------------------------------------------------------------
if "$PYTHON" -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262).bind(("127.0.0.1", 0))' 2>/dev/null; then
    in_policy mptcp
    start_server mp "$TLSSHIM" -p "$WORK/mptcp.policy" "$PYTHON" "$CLIENTS/mptcp_server.py" \
        "$WORK/mp.port" "$WORK/mp.log"
    plain_client "$mp_port" "$WORK/mp_plain.out" mptcp
    like "$(cat "$WORK/mp_plain.out")" "^proto=262$" "(2) the plaintext client's socket is MPTCP"
    wait_until 10 grep -q "proto=" "$WORK/mp.log"
    like "$(head -n 1 "$WORK/mp.log")" "^proto=262 " "(2) the server accepted an MPTCP connection"
    unlike "$(head -n 1 "$WORK/mp.log" | cut -c 1-120)" "line=|hello" "(2) the server read none of the plaintext client's bytes"
    unlike "$(cat "$WORK/mp_plain.out")" "got=b'hello" "(2) the plaintext client got no answer in clear"
    like "$(cat "$WORK/mptcp.tlsshim.log" 2>/dev/null)" "refused: the client does not speak TLS" \
        "(2) the log says the plaintext client was refused"
    tls_client "$mp_port" "$WORK/mp_tls.out" mptcp
    like "$(cat "$WORK/mp_tls.out")" "^proto=262$" "(2) the TLS client's socket is MPTCP"
    expect_tls "$WORK/mp_tls.out" "(2) the TLS client over MPTCP saw TLS 1.3, a verified certificate and the answer"
    wait_until 10 grep -q "line=" "$WORK/mp.log"
    like "$(sed -n 2p "$WORK/mp.log" | cut -c 1-120)" "^proto=262 line=ping$" "(2) the server read the TLS client's line in plaintext"
else
    skip "(2) MPTCP" "the kernel refuses socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP)"
fi

# ---- (3) errno after a successful accept ------------------------------------------
in_policy errno
start_server ae "$TLSSHIM" -p "$WORK/errno.policy" "$ACCEPT_ERRNO" "$WORK/ae.port" "$WORK/ae.log"
tls_client "$ae_port" "$WORK/ae.out"
expect_tls "$WORK/ae.out" "(3) the TLS client saw TLS 1.3, a verified certificate and the answer"
wait_until 10 grep -q "line=" "$WORK/ae.log"
is "$(sed -n 1p "$WORK/ae.log")" "accepted=yes errno=4242" "(3) accept succeeded and left errno as it was"
is "$(sed -n 2p "$WORK/ae.log")" "line=ping" "(3) the server read the client's line through TLS"
like "$(cat "$WORK/errno.tlsshim.log")" "accepted sni=localhost version=TLS1.3" \
    "(3) the log shows the accepted connection was upgraded"

# ---- (4) plaintext = allow: SIGPIPE once ---------------------------------------------
in_policy sigpipe "plaintext = allow"
start_server sp "$TLSSHIM" -p "$WORK/sigpipe.policy" "$ACCEPT_ERRNO" "$WORK/sp.port" "$WORK/sp.log" --sigpipe
"$PYTHON" - "$sp_port" >"$WORK/sp.out" 2>&1 <<'EOF'
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(b"ping\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(100)
        if not chunk:
            break
        data += chunk
    print("answer=%s" % data.decode().strip())
EOF
is "$(cat "$WORK/sp.out")" "answer=hello ping" "(4) the plaintext client got its answer in clear, then closed"
wait_until 10 grep -q "sigpipe=" "$WORK/sp.log"
like "$(cat "$WORK/sp.log")" "line=ping" "(4) the server read the plaintext line"
like "$(grep "sigpipe=" "$WORK/sp.log")" "write_error=EPIPE sigpipe=1$" \
    "(4) the write to the closed connection failed with EPIPE and raised SIGPIPE once"
like "$(cat "$WORK/sigpipe.tlsshim.log")" "does not speak TLS \\(first bytes 70 69 6e 67 0a\\): passed through in clear" \
    "(4) the log shows the plaintext connection was allowed"

# ---- (5) SCM_RIGHTS ------------------------------------------------------------------
for mode in fresh stale; do
    in_policy "rights_$mode"
    extra=()
    [ $mode = stale ] && extra=(--stale)
    start_server "snd_$mode" "$PYTHON" "$CLIENTS/fd_sender.py" "$WORK/snd_$mode.port" \
        "$TLSSHIM" -p "$WORK/rights_$mode.policy" "$FD_RECEIVER" @FD@ "$WORK/rcv_$mode.log" "${extra[@]}"
    port_var="snd_${mode}_port"
    tls_client "${!port_var}" "$WORK/rights_$mode.out"
    expect_tls "$WORK/rights_$mode.out" \
        "(5, $mode) the client of a passed connection saw TLS 1.3, a verified certificate and the answer"
    wait_until 20 grep -q "receiver status" "$WORK/snd_$mode.stderr"
    like "$(cat "$WORK/snd_$mode.stderr")" "passed a connection with [1-9][0-9]* bytes queued" \
        "(5, $mode) the sender passed the connection after the ClientHello had arrived"
    # (a ClientHello read in clear is long: its first bytes are enough)
    rlog=$(cut -c 1-120 "$WORK/rcv_$mode.log" 2>/dev/null)
    if [ $mode = stale ]; then
        stale=$(sed -n 's/^stale=//p' "$WORK/rcv_$mode.log")
        like "$rlog" "received=$stale " "(5, stale) the connection took the number closed behind the library's back"
    fi
    like "$rlog" "line=ping" "(5, $mode) the receiver read the client's line in plaintext"
    unlike "$rlog" "read=" "(5, $mode) the receiver never read TLS bytes in clear"
    like "$(cat "$WORK/rights_$mode.tlsshim.log" 2>/dev/null)" "inherited descriptor [0-9]+ adopted" \
        "(5, $mode) the log says the received descriptor was adopted"
    diag "receiver ($mode): $rlog"
done

done_testing
