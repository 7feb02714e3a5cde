#!/bin/bash
# bypass.sh -- plaintext through paths that glibc takes without a hook
# (issue 9, section 2): stdio, sendmsg/sendmmsg, SCM_RIGHTS, address forms.
# Every case runs a real program (bash, python3, a small C client) against
# a destination a rule upgrades, and proves from the SERVER side either that
# the bytes arrived through TLS (tserver: status=ok, first_line, sha256_in),
# or that the program got an error and the log says why; and in every case
# that no plaintext arrived (tserver would log a record error; a plain
# recording listener, record_server.py, would log the clear bytes).
#
#   stdio    dprintf/vdprintf (plain and _FORTIFY_SOURCE), a FILE made by
#            fdopen() before connect(), bash `exec 1<>/dev/tcp/...` (the
#            socket lands on descriptor 1 without a dup2)
#   connect  sendmsg(MSG_FASTOPEN) and sendmmsg(MSG_FASTOPEN) with a
#            destination, a 24-byte sockaddr_in6, a rule written in
#            IPv4-mapped form ([::ffff:127.0.0.1]:PORT)
#   refuse   an upgraded descriptor passed with SCM_RIGHTS (python
#            socket.send_fds, C sendmmsg): EPERM and a log line

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim
need_cmd cc bash sha256sum

# The C client, with and without _FORTIFY_SOURCE (dprintf becomes
# __dprintf_chk): real programs import both.
cc -O0 -o "$WORK/bypass_client" "$CLIENTS/bypass_client.c" 2>"$WORK/cc.err" &&
    cc -O2 -D_FORTIFY_SOURCE=2 -o "$WORK/bypass_client_fortify" "$CLIENTS/bypass_client.c" 2>>"$WORK/cc.err" ||
    { diag "$(cat "$WORK/cc.err")"; bail_out "cannot build bypass_client.c"; }

sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# start_recorder NAME 4|6: a plain recording listener (what a leak would
# reach); sets ${NAME}_port, logs to $WORK/NAME.log.
start_recorder() {
    start_server "$1" "$PYTHON" "$CLIENTS/record_server.py" "$WORK/$1.port" "$WORK/$1.log" "$2"
}
recorded() { grep -c '^conn ' "$WORK/$1.log"; }

# tserver (sink, on 127.0.0.1 and ::1) takes the upgraded connections;
# the recorders are the destinations programs name when a rule redirects.
start_tserver srv --mode sink --ipv6
start_recorder rec4 4
start_recorder rec6 6
start_recorder recp 4 # no rule matches it

write_policy "$WORK/main.policy" <<EOF
log = file:$WORK/main.tlsshim.log
log-level = info

[direct]
match = 127.0.0.1:$srv_port
server-name = localhost
ca = $CERTS/ca.pem

[redirect4]
match = 127.0.0.1:$rec4_port
port = $srv_port
server-name = localhost
ca = $CERTS/ca.pem

[redirect6]
match = [::1]:$rec6_port
port = $srv_port
server-name = localhost
ca = $CERTS/ca.pem
EOF

n=0 # tserver connections so far
# through_tls CASE TEXT: the next tserver connection carried exactly TEXT,
# through TLS (no record error: plaintext inside the TLS stream is one).
through_tls() {
    local case=$1 text=$2 first
    n=$((n + 1))
    if ! wait_for_lines "$srv_log" "$n"; then
        fail "$case: tserver saw the connection"
        diag "the plain listeners saw: $(cat "$WORK/rec4.log" "$WORK/rec6.log")"
        n=$(tserver_conns "$srv_log")
        return 1
    fi
    first=${text%%$'\n'*}
    is "$(tserver_field "$srv_log" "$n" status) $(tserver_field "$srv_log" "$n" version)" "ok TLS1.3" \
        "$case: tserver: TLS 1.3, no record error (reason: $(tserver_field "$srv_log" "$n" reason))"
    is "$(tserver_field "$srv_log" "$n" first_line)" "$first" "$case: tserver got the program's first line through TLS"
    is "$(tserver_field "$srv_log" "$n" sha256_in)" "$(sha "$text")" "$case: tserver got exactly the program's bytes"
}
# nothing_in_clear CASE: no connection reached a plain listener (called
# after through_tls has seen tserver's line, or waited 10 s for it).
nothing_in_clear() {
    is "$(recorded rec4) $(recorded rec6)" "0 0" "$1: nothing reached the plain listeners"
    [ "$(recorded rec4) $(recorded rec6)" = "0 0" ] || { diag "$(cat "$WORK/rec4.log" "$WORK/rec6.log")"; : >"$WORK/rec4.log"; : >"$WORK/rec6.log"; }
}

# ==== dprintf, vdprintf ===========================================================
for bin in bypass_client bypass_client_fortify; do
    for fn in dprintf vdprintf; do
        text="GET /$fn-$bin"$'\n'"second line"$'\n'
        out=$(run main "$WORK/$bin" "$fn" 127.0.0.1 "$srv_port" "$text")
        ok $? "$fn ($bin): the program succeeded"
        is "$(printf '%s\n' "$out" | sed -n "s/^$fn ret=//p")" "${#text}" "$fn ($bin): returned the length"
        through_tls "$fn ($bin)" "$text"
        is "$(tserver_field "$srv_log" "$n" closed)" notify "$fn ($bin): close_notify after the bytes"
    done
done

# dprintf on a descriptor that is not ours behaves like libc's.
out=$(run main bash -c 'exec "$1" dprintf 127.0.0.1 "$2" "GET /plain"' sh "$WORK/bypass_client_fortify" "$(free_port)" 2>&1)
like "$out" 'connect ret=-1 errno=ECONNREFUSED' "a plain connect refused by the kernel stays the program's own error"
out=$(run main "$PYTHON" -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
n = libc.dprintf(w, b"%s-%d\n", b"pipe", 42)
os.close(w)
print(n, os.read(r, 100).decode().strip())' 2>&1)
is "$out" "8 pipe-42" "dprintf on a pipe (not ours) formats and writes like libc"

# ==== a FILE made with fdopen() before connect() ====================================
text="GET /fdopen"$'\n'"via stdio"$'\n'
out=$(run main "$WORK/bypass_client" fdopen 127.0.0.1 "$srv_port" "$text")
ok $? "fdopen before connect: the program succeeded"
diag "$out"
like "$out" 'fileno same' "fdopen before connect: fileno() still names the descriptor"
through_tls "fdopen before connect" "$text"

# The same stream to a destination no rule matches: plain, as with libc.
text="GET /fdopen-plain"$'\n'
out=$(run main "$WORK/bypass_client" fdopen 127.0.0.1 "$recp_port" "$text")
ok $? "fdopen before a connect no rule matches: the program succeeded"
like "$out" 'fileno same' "fdopen before a plain connect: fileno() names the descriptor"
check "fdopen before a plain connect: the listener got the connection" wait_for_match "$WORK/recp.log" '^conn '
is "$(cat "$WORK/recp.log")" "conn bytes=${#text} tls=0 head=b'GET /fdopen-plain\\n'" \
    "fdopen before a plain connect: the bytes arrive in clear, as the policy says"

# ==== bash: exec 1<>/dev/tcp lands the socket on descriptor 1 =====================
out=$(run main bash -c 'exec 1>&-; exec 1<>/dev/tcp/127.0.0.1/$1; printf "GET /bash\nfrom printf\n"; echo "and echo"; exec 1>&-; echo done >&2' sh "$srv_port" 2>&1)
ok $? "bash /dev/tcp on fd 1: bash succeeded"
is "$out" "done" "bash /dev/tcp on fd 1: bash reported no error"
through_tls "bash /dev/tcp on fd 1" "GET /bash"$'\n'"from printf"$'\n'"and echo"$'\n'

# ==== TCP Fast Open through sendmsg/sendmmsg with a destination ======================
fo=$(cat /proc/sys/net/ipv4/tcp_fastopen 2>/dev/null || echo 0)
if [ $((fo & 1)) = 0 ] && [ "$(id -u)" = 0 ]; then
    echo $((fo | 1)) >/proc/sys/net/ipv4/tcp_fastopen 2>/dev/null && fo=$((fo | 1))
fi
if [ $((fo & 1)) = 0 ]; then
    skip "sendmsg(MSG_FASTOPEN)" "net.ipv4.tcp_fastopen has no client bit and we are not root"
    skip "sendmmsg(MSG_FASTOPEN)" "net.ipv4.tcp_fastopen has no client bit and we are not root"
else
    text="GET /sendmsg-fastopen"$'\n'
    out=$(run main "$PYTHON" -c '
import socket, sys
s = socket.socket()
n = s.sendmsg([sys.argv[3].encode()], [], socket.MSG_FASTOPEN, (sys.argv[1], int(sys.argv[2])))
print("sent", n)
s.close()' 127.0.0.1 "$rec4_port" "$text" 2>&1)
    ok $? "python sendmsg(MSG_FASTOPEN, address): succeeded"
    diag "$out"
    through_tls "python sendmsg(MSG_FASTOPEN, address)" "$text"
    nothing_in_clear "python sendmsg(MSG_FASTOPEN, address)"

    text="GET /sendmmsg-fastopen"$'\n'
    out=$(run main "$WORK/bypass_client" mmsg-fastopen 127.0.0.1 "$rec4_port" "$text" 2>&1)
    ok $? "sendmmsg(MSG_FASTOPEN, address): succeeded"
    diag "$out"
    through_tls "sendmmsg(MSG_FASTOPEN, address)" "$text"
    nothing_in_clear "sendmmsg(MSG_FASTOPEN, address)"
fi

# ==== a 24-byte sockaddr_in6 ==========================================================
text="GET /short-sockaddr-in6"$'\n'
out=$(run main "$WORK/bypass_client" short6 ::1 "$rec6_port" "$text" 2>&1)
ok $? "24-byte sockaddr_in6: the program succeeded"
diag "$out"
through_tls "24-byte sockaddr_in6" "$text"
nothing_in_clear "24-byte sockaddr_in6"

# ==== SCM_RIGHTS: an upgraded descriptor cannot leave the process ===================
: >"$WORK/main.tlsshim.log"
text="GET /after-send-fds"$'\n'
out=$(run main "$PYTHON" -c '
import socket, sys, os
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
a, b = socket.socketpair()
try:
    socket.send_fds(a, [b"x"], [s.fileno()])
    print("send_fds ok")
    msg, fds, flags, addr = socket.recv_fds(b, 1, 1)
    os.write(fds[0], b"PLAINTEXT through the copy\n")
except OSError as e:
    print("send_fds", e.errno == 1 and "EPERM" or e)
s.sendall(sys.argv[3].encode())
s.close()' 127.0.0.1 "$srv_port" "$text" 2>&1)
is "$out" "send_fds EPERM" "python send_fds of an upgraded socket: EPERM"
through_tls "python send_fds, then the original" "$text"
like "$(cat "$WORK/main.tlsshim.log")" "error: rule \[direct\] 127\.0\.0\.1:$srv_port: descriptor [0-9]+ refused in sendmsg .*SCM_RIGHTS" \
    "python send_fds: the log names the descriptor, the destination and why"

: >"$WORK/main.tlsshim.log"
text="GET /after-sendmmsg-rights"$'\n'
out=$(run main "$WORK/bypass_client" mmsg-rights 127.0.0.1 "$srv_port" "$text" 2>&1)
like "$out" 'sendmmsg-scm-rights ret=-1 errno=EPERM' "C sendmmsg with SCM_RIGHTS of an upgraded socket: EPERM"
diag "$out"
through_tls "sendmmsg SCM_RIGHTS, then the original" "$text"
like "$(cat "$WORK/main.tlsshim.log")" "error: rule \[direct\] 127\.0\.0\.1:$srv_port: descriptor [0-9]+ refused in sendmmsg .*SCM_RIGHTS" \
    "sendmmsg SCM_RIGHTS: the log names the descriptor, the destination and why"

# ==== a rule written in IPv4-mapped form =============================================
write_policy "$WORK/mapped.policy" <<EOF
log = file:$WORK/mapped.tlsshim.log
log-level = info

[mapped]
match = [::ffff:127.0.0.1]:$rec4_port
port = $srv_port
server-name = localhost
ca = $CERTS/ca.pem
EOF
out=$("$TLSSHIM" check -p "$WORK/mapped.policy" 2>&1)
like "$out" "^match = 127\.0\.0\.1:$rec4_port\$" "IPv4-mapped rule: tlsshim check prints it as the IPv4 address it matches"
text="GET /mapped-rule"$'\n'
out=$(run mapped "$PYTHON" -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(sys.argv[3].encode())
s.close()' 127.0.0.1 "$rec4_port" "$text" 2>&1)
ok $? "IPv4-mapped rule: python client succeeded"
through_tls "IPv4-mapped rule, connection to 127.0.0.1" "$text"
nothing_in_clear "IPv4-mapped rule"

done_testing
