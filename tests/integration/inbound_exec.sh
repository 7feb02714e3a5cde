#!/bin/bash
# inbound_exec.sh -- an accepted connection whose TLS handshake has not
# begun crosses exec only to a program that will adopt it (issue 11, inetd
# style), and the acceptor that passed it keeps no working copy:
#   (a) the handler's environment drops LD_PRELOAD (and env -i)
#   (b) the handler's TLSSHIM_POLICY names another policy (no inbound rule)
#   (c) the handler is statically linked
#   (d) the handler is set-gid; (e) it has file capabilities
#   (f) posix_spawn to a handler without LD_PRELOAD: refused (EBADF)
# In each: the handler gets no socket (EBADF), a raw client that sent a
# ClientHello and a line gets nothing back in clear, the log says why.
#   (g) posix_spawn passed it: the acceptor's own read gets EIO (one log
#       line), its close sends nothing, the client completes TLS 1.3 with
#       the handler; (h) the same after subprocess.Popen (vfork + exec).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim ca.pem server.pem server-key.pem
HANDLER=$top_builddir/tests/integration/clients/inetd_handler
ACCEPTOR=$top_srcdir/tests/integration/clients/exec_acceptor.py
[ -x "$HANDLER" ] || bail_out "$HANDLER not built"
LOG=$WORK/in.tlsshim.log

write_policy "$WORK/in.policy" <<EOF2
log = file:$LOG
log-level = debug

[inetd]
listen = 127.0.0.1:*
cert = $CERTS/server.pem
key = $CERTS/server-key.pem
EOF2
# Another policy: outbound only, so a handler under it adopts nothing.
write_policy "$WORK/out.policy" <<EOF2
log = file:$WORK/out.tlsshim.log

[api]
match = localhost:1
ca = $CERTS/ca.pem
EOF2

# raw_client PORT OUT: a TLS ClientHello then "\nping\n" on a plain TCP
# socket; OUT gets got=BYTES (everything that came back) or error=.
raw_client() {
    timeout 20 "$PYTHON" - "$1" >"$2" 2>&1 <<'EOF2'
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = out.read()
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15) as s:
    s.sendall(hello + b"\nping\n")
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        print("error=%s" % e)
    print("got=%r" % data)
EOF2
}

# tls_client PORT OUT [mptcp]: clients/line_client.py over TLS (OUT gets
# port=, proto=, version=, verified=, answer= or error=).
tls_client() {
    timeout 30 "$PYTHON" "$CLIENTS/line_client.py" tls "$1" "$CERTS/ca.pem" ${3:+"$3"} >"$2" 2>&1
}


# not_passed DESC NAME HANDLER WHY MODE [ENV...]: an acceptor under
# tlsshim starts HANDLER (MODE exec or spawn, ENV edits); a raw client
# sends a ClientHello and a line.  Nothing comes back in clear, the
# handler got no socket, the log names the reason WHY.
not_passed() {
    local desc=$1 name=$2 handler=$3 why=$4 mode=$5
    shift 5
    start_server "$name" "$TLSSHIM" -p "$WORK/in.policy" "$PYTHON" "$ACCEPTOR" "$mode" \
        "$WORK/$name.port" "$handler" "$WORK/$name.hlog" "$@"
    local var="${name}_port"
    raw_client "${!var}" "$WORK/$name.out"
    like "$(cat "$WORK/$name.out")" "^got=b''$" "$desc: nothing came back in clear"
    if [ "$mode" = exec ]; then
        wait_until 10 grep -q "error=" "$WORK/$name.hlog" 2>/dev/null
        # (A set-gid program's libc opens /dev/full on a closed stdin.)
        like "$(cat "$WORK/$name.hlog" 2>/dev/null)" '^peer=none\((EBADF|ENOTSOCK)\) error=EBADF$' \
            "$desc: the handler got no socket (EBADF)"
        like "$(cat "$LOG")" "descriptor 0 is closed at exec of $handler: not passed to $handler: it would not run under tlsshim \\($why\\)" \
            "$desc: the log says why"
    else
        wait_until 10 grep -q "spawn error=" "$WORK/$name.stderr"
        like "$(cat "$WORK/$name.stderr")" "spawn error=EBADF" "$desc: posix_spawn refused (EBADF)"
        like "$(cat "$LOG")" "posix_spawn of $handler: refused \\(EBADF\\): descriptor [0-9]+ .*not passed to $handler: it would not run under tlsshim \\($why\\)" \
            "$desc: the log says why"
        unlike "$(cat "$WORK/$name.hlog" 2>/dev/null)" "line=" "$desc: no handler read the client's bytes"
    fi
    stop_server "$name"
}

# ---- (a) LD_PRELOAD dropped --------------------------------------------------
not_passed "(a) env without LD_PRELOAD" a_nopre "$HANDLER" "LD_PRELOAD dropped" exec -LD_PRELOAD
not_passed "(a) env -i" a_envi "$HANDLER" "LD_PRELOAD dropped" exec -i
# (A sanitizer build keeps its runtime first: the handler needs it.)
not_passed "(a) LD_PRELOAD names another library" a_other "$HANDLER" "LD_PRELOAD dropped" exec \
    LD_PRELOAD-=libtlsshim LD_PRELOAD+=libm.so.6

# ---- (b) another policy -------------------------------------------------------
not_passed "(b) TLSSHIM_POLICY names another policy" b_pol "$HANDLER" "another policy" exec \
    "TLSSHIM_POLICY=$WORK/out.policy"

# ---- (c) a statically linked handler -------------------------------------------
if ${CC:-cc} -static -o "$WORK/static_handler" "$top_srcdir/tests/integration/clients/inetd_handler.c" \
    2>"$WORK/static.cc"; then
    not_passed "(c) statically linked handler" c_static "$WORK/static_handler" "static" exec
else
    skip "(c) statically linked handler" "cannot link statically: $(head -1 "$WORK/static.cc")"
fi

# ---- (d) set-gid, (e) file capabilities ----------------------------------------
if [ "$(id -u)" = 0 ]; then
    cp "$HANDLER" "$WORK/sgid_handler"
    chgrp nogroup "$WORK/sgid_handler" 2>/dev/null || chgrp 65534 "$WORK/sgid_handler"
    chmod 2755 "$WORK/sgid_handler"
    not_passed "(d) set-gid handler" d_sgid "$WORK/sgid_handler" "set-uid/set-gid" exec
else
    skip "(d) set-gid handler" "needs root (chgrp)"
fi
cp "$HANDLER" "$WORK/cap_handler"
if command -v setcap >/dev/null && setcap cap_net_bind_service+ep "$WORK/cap_handler" 2>/dev/null; then
    not_passed "(e) handler with file capabilities" e_cap "$WORK/cap_handler" "file capabilities" exec
else
    skip "(e) handler with file capabilities" "setcap unavailable or not permitted"
fi

# ---- (f) posix_spawn to a handler without LD_PRELOAD ---------------------------
not_passed "(f) posix_spawn, env without LD_PRELOAD" f_spawn "$HANDLER" "LD_PRELOAD dropped" spawn -LD_PRELOAD

# ---- (g), (h) the acceptor gave the connection away ----------------------------
for mode in spawn-read popen-read; do
    name=${mode%-read}
    : >"$LOG"
    start_server "$name" "$TLSSHIM" -p "$WORK/in.policy" "$PYTHON" "$ACCEPTOR" "$mode" \
        "$WORK/$name.port" "$HANDLER" "$WORK/$name.hlog"
    var="${name}_port"
    tls_client "${!var}" "$WORK/$name.out"
    if grep -qx 'version=TLSv1.3' "$WORK/$name.out" && grep -qx 'answer=hello ping' "$WORK/$name.out"; then
        pass "($mode) the client completed TLS 1.3 with the handler"
    else
        fail "($mode) the client completed TLS 1.3 with the handler"
        diag "client:" "$(cat "$WORK/$name.out")" "acceptor:" "$(cat "$WORK/$name.stderr")" "log:" "$(cat "$LOG")"
    fi
    wait_until 10 grep -q "handler status" "$WORK/$name.stderr"
    like "$(cat "$WORK/$name.stderr")" "parent read error=EIO" "($mode) the acceptor's own read got EIO"
    is "$(grep -c 'refused here (EIO)' "$LOG")" 1 "($mode) one log line says so"
    unlike "$(grep -E 'warning|error' "$LOG" | grep -v 'refused here (EIO)')" . \
        "($mode) nothing else logged at warning or error (the close was quiet)"
    stop_server "$name"
done

done_testing
