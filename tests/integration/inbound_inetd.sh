#!/bin/bash
# inbound_inetd.sh -- inetd-style servers and socket activation (issue 11):
# a plaintext handler started per connection with the socket on its
# stdin/stdout (or descriptor 3) speaks TLS 1.3 to real clients because the
# library, preloaded into the handler, adopts the inherited socket on first
# use (its local address is covered by a `listen` rule).
#   (a) tcpserver not preloaded, the handler under tlsshim (stdio handler)
#   (b) tcpserver itself under tlsshim: its fork+exec passes the socket whose
#       handshake has not begun; python acceptors: fork+exec, subprocess
#       (vfork+exec), posix_spawn with dup2 file actions
#   (c) systemd-socket-activate --inetd (acceptor not preloaded), curl
#   (c2) systemd-socket-activate --accept without --inetd: descriptor 3
#   (d) socket activation, Accept=no: LISTEN_FDS, python accepts on fd 3
#   (e) an acceptor that read the client's first line itself (handshake
#       begun) then execs a handler: the handler does not get the socket
#   (f) a plaintext client under `plaintext = refuse` through tcpserver: the
#       handler reads none of its bytes
#   (g) the connection is also stderr and the log goes to stderr: no log
#       line reaches the wire
# Evidence from both ends: the client saw TLS 1.3 and a verified certificate
# and the handler's answer; the handler logged the plaintext line and the
# client's real address (getpeername).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim ca.pem server.pem server-key.pem
HANDLER=$top_builddir/tests/integration/clients/inetd_handler
ACCEPTOR=$top_srcdir/tests/integration/clients/inetd_acceptor.py
LISTEN_FDS_SERVER=$top_srcdir/tests/integration/clients/listen_fds_server.py
[ -x "$HANDLER" ] || bail_out "$HANDLER not built"

write_policy "$WORK/in.policy" <<EOF
log = file:$WORK/in.tlsshim.log
log-level = debug

[inetd]
listen = 127.0.0.1:*
cert = $CERTS/server.pem
key = $CERTS/server-key.pem
EOF

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

# expect_tls OUT HLOG DESC: the client in OUT saw TLS 1.3, a verified
# certificate and the answer; the handler log HLOG names the client's own
# address and the plaintext line.
expect_tls() {
    local out=$1 hlog=$2 desc=$3 port
    port=$(sed -n 's/^port=//p' "$out")
    if grep -qx 'version=TLSv1.3' "$out" && grep -qx 'verified=localhost' "$out" &&
        grep -qx 'answer=hello ping' "$out"; then
        pass "$desc: the client saw TLS 1.3, a verified certificate and the answer"
    else
        fail "$desc: the client saw TLS 1.3, a verified certificate and the answer"
        diag "client:" "$(cat "$out")" "handler:" "$(cat "$hlog" 2>/dev/null)" "log:" "$(cat "$WORK/in.tlsshim.log")"
    fi
    wait_until 10 grep -q "line=" "$hlog" 2>/dev/null
    if grep -qx "peer=127.0.0.1:$port line=ping" "$hlog" 2>/dev/null; then
        pass "$desc: the handler read the plaintext line from the client's real address"
    else
        fail "$desc: the handler read the plaintext line from the client's real address"
        diag "client port $port; handler:" "$(cat "$hlog" 2>/dev/null)"
    fi
}


# wait_ready FILE TEXT: until the acceptor's stderr says it listens.
wait_ready() {
    wait_until 10 grep -q -- "$2" "$1" 2>/dev/null || bail_out "not ready: $(cat "$1")"
}

# ---- (a) tcpserver not preloaded, the handler under tlsshim ---------------------
port=$(free_port)
tcpserver -v 127.0.0.1 "$port" "$TLSSHIM" -p "$WORK/in.policy" "$HANDLER" "$WORK/a.hlog" \
    </dev/null 2>"$WORK/a.tcpserver" &
_remember tcps_a $!
wait_ready "$WORK/a.tcpserver" "status: 0/"
tls_client "$port" "$WORK/a.out"
expect_tls "$WORK/a.out" "$WORK/a.hlog" "(a) tcpserver, stdio handler under tlsshim"
like "$(cat "$WORK/in.tlsshim.log")" "inherited descriptor 0 adopted" "(a) the log says descriptor 0 was adopted"

# ---- (b) tcpserver under tlsshim: fork+exec passes the socket -------------------
port=$(free_port)
"$TLSSHIM" -p "$WORK/in.policy" tcpserver -v 127.0.0.1 "$port" "$HANDLER" "$WORK/b.hlog" \
    </dev/null 2>"$WORK/b.tcpserver" &
_remember tcps_b $!
wait_ready "$WORK/b.tcpserver" "status: 0/"
tls_client "$port" "$WORK/b.out"
expect_tls "$WORK/b.out" "$WORK/b.hlog" "(b) tcpserver under tlsshim"
like "$(cat "$WORK/in.tlsshim.log")" "descriptor 0 passed to $HANDLER before its TLS handshake began" \
    "(b) the acceptor's log says it passed descriptor 0 un-begun"

for mode in exec subprocess spawn; do
    start_server "acc_$mode" "$TLSSHIM" -p "$WORK/in.policy" "$PYTHON" "$ACCEPTOR" "$mode" \
        "$WORK/acc_$mode.port" "$HANDLER" "$WORK/b_$mode.hlog"
    var="acc_${mode}_port"
    tls_client "${!var}" "$WORK/b_$mode.out"
    expect_tls "$WORK/b_$mode.out" "$WORK/b_$mode.hlog" "(b) python acceptor under tlsshim, $mode"
done

# ---- (c) systemd-socket-activate --inetd, not preloaded; curl -------------------
if command -v systemd-socket-activate >/dev/null; then
    port=$(free_port)
    systemd-socket-activate --inetd -a -l "127.0.0.1:$port" "$TLSSHIM" -p "$WORK/in.policy" -- \
        "$HANDLER" "$WORK/c.hlog" </dev/null 2>"$WORK/c.ssa" &
    _remember ssa_c $!
    wait_ready "$WORK/c.ssa" "Listening on"
    "${CURL[@]}" -v --cacert "$CERTS/ca.pem" -o "$WORK/c.body" -w '%{local_port}' \
        https://localhost:"$port"/inetd >"$WORK/c.port" 2>"$WORK/c.curl"
    ok $? "(c) curl through systemd-socket-activate --inetd exits 0"
    like "$(cat "$WORK/c.curl")" "SSL connection using TLSv1.3" "(c) curl: TLS 1.3"
    like "$(cat "$WORK/c.curl")" "SSL certificate verify ok" "(c) curl: certificate verified"
    is "$(cat "$WORK/c.body")" "hello /inetd" "(c) curl got the handler's answer"
    cport=$(cat "$WORK/c.port")
    wait_until 10 grep -q "line=" "$WORK/c.hlog" 2>/dev/null
    if [ -n "$cport" ] && grep -qx "peer=127.0.0.1:$cport line=GET /inetd HTTP/1.1" "$WORK/c.hlog"; then
        pass "(c) the handler read the request from curl's own address"
    else
        fail "(c) the handler read the request from curl's own address"
        diag "curl port ${cport:-?}; handler:" "$(cat "$WORK/c.hlog")"
    fi

    # (c2) --accept without --inetd: the connection is descriptor 3, read
    # with read(): adopted on that first use, not at start-up.
    port=$(free_port)
    systemd-socket-activate -a -l "127.0.0.1:$port" "$TLSSHIM" -p "$WORK/in.policy" -- \
        "$HANDLER" "$WORK/c2.hlog" --fd 3 </dev/null 2>"$WORK/c2.ssa" &
    _remember ssa_c2 $!
    wait_ready "$WORK/c2.ssa" "Listening on"
    tls_client "$port" "$WORK/c2.out"
    expect_tls "$WORK/c2.out" "$WORK/c2.hlog" "(c2) systemd-socket-activate --accept, descriptor 3"
    like "$(cat "$WORK/in.tlsshim.log")" "inherited descriptor 3 adopted" "(c2) descriptor 3 adopted on first use"

    # ---- (d) socket activation, Accept=no: LISTEN_FDS ---------------------------
    port=$(free_port)
    systemd-socket-activate -l "127.0.0.1:$port" "$TLSSHIM" -p "$WORK/in.policy" -- \
        "$PYTHON" "$LISTEN_FDS_SERVER" "$WORK/d.hlog" </dev/null 2>"$WORK/d.ssa" &
    _remember ssa_d $!
    wait_ready "$WORK/d.ssa" "Listening on"
    tls_client "$port" "$WORK/d.out"
    expect_tls "$WORK/d.out" "$WORK/d.hlog" "(d) socket activation (LISTEN_FDS), python accepts on fd 3"
else
    skip "(c), (c2), (d) socket activation" "systemd-socket-activate not installed"
fi

# ---- (e) the handshake had begun: the socket does not cross exec ----------------
start_server acc_read "$TLSSHIM" -p "$WORK/in.policy" "$PYTHON" "$ACCEPTOR" read-exec \
    "$WORK/acc_read.port" "$HANDLER" "$WORK/e.hlog"
tls_client "$acc_read_port" "$WORK/e.out"
wait_until 10 grep -q "error=" "$WORK/e.hlog" 2>/dev/null
is "$(cat "$WORK/e.hlog")" "peer=none(EBADF) error=EBADF" \
    "(e) the handler got no socket (EBADF), not the raw connection"
like "$(cat "$WORK/acc_read.stderr")" "acceptor read b'ping" "(e) the acceptor itself read the client's line"
like "$(cat "$WORK/in.tlsshim.log")" "descriptor 0 is closed at exec of $HANDLER: its TLS handshake with the client had begun" \
    "(e) the log says the begun connection was closed at exec"
unlike "$(cat "$WORK/e.out")" "answer=hello" "(e) the client got no answer from the handler"

# ---- (f) a plaintext client, plaintext = refuse, through tcpserver ---------------
port=$(free_port)
tcpserver -v 127.0.0.1 "$port" "$TLSSHIM" -p "$WORK/in.policy" "$HANDLER" "$WORK/f.hlog" \
    </dev/null 2>"$WORK/f.tcpserver" &
_remember tcps_f $!
wait_ready "$WORK/f.tcpserver" "status: 0/"
plain_client "$port" "$WORK/f.out"
wait_until 10 grep -q "peer=" "$WORK/f.hlog" 2>/dev/null
like "$(cat "$WORK/f.hlog")" "error=ECONNRESET" "(f) the handler's read failed as a reset"
unlike "$(cat "$WORK/f.hlog")" "line=" "(f) the handler read none of the client's plaintext"
unlike "$(cat "$WORK/f.out")" "hello" "(f) the client got no answer"
like "$(cat "$WORK/in.tlsshim.log")" "refused: the client does not speak TLS" "(f) the log says why"

# ---- (g) inetd puts the connection on 0, 1 and 2; the log is stderr -------------
# Log lines written to stderr would go into the TLS stream in clear: the
# library logs to syslog instead once it adopts the socket.
write_policy "$WORK/stderr.policy" <<EOF
log-level = debug

[inetd]
listen = 127.0.0.1:*
cert = $CERTS/server.pem
key = $CERTS/server-key.pem
EOF
port=$(free_port)
tcpserver -v 127.0.0.1 "$port" sh -c 'exec "$0" "$@" 2>&1' "$TLSSHIM" -p "$WORK/stderr.policy" \
    "$HANDLER" "$WORK/g.hlog" </dev/null 2>"$WORK/g.tcpserver" &
_remember tcps_g $!
wait_ready "$WORK/g.tcpserver" "status: 0/"
tls_client "$port" "$WORK/g.out"
expect_tls "$WORK/g.out" "$WORK/g.hlog" "(g) the connection is stderr too, log = stderr"

done_testing
