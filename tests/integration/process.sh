#!/bin/bash
# process.sh -- upgraded connections across fork, exec and dup (fail closed).
# Proves, from tserver's log (bytes_in, sha256_in, first_line, status):
#   * fork: a TLS connection belongs to whichever process uses it first
#     (the parent, like a server forking helpers, or the child, like a
#     program that daemonizes); the other's send and recv fail with EIO and
#     the server receives exactly the user's bytes, nothing from the other;
#   * exec: a program exec'd with the socket as its stdin/stdout (bash:
#     cat <&3, cat >&3) cannot use it (bad file descriptor), and no plaintext
#     ever reaches the server, while bash itself keeps using the connection;
#   * dup, dup2, fcntl(F_DUPFD), fcntl(F_DUPFD_CLOEXEC): writes through any
#     duplicate arrive encrypted and in order, reads through any duplicate
#     return the decrypted stream, closing the original keeps it alive.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim

sha() { printf '%b' "$1" | sha256sum | cut -d' ' -f1; }

# ==== 1. fork ==========================================================================================
# A connection belongs to whichever process uses it first after fork(); the
# other gets EIO and never puts a byte on the wire (no nonce is reused).
start_tserver frk
policy frk "$frk_port"
n=0
for mode in parent-first child-first; do
    first=${mode%%-*}
    out=$(run frk "$PYTHON" "$CLIENTS/fork_client.py" localhost 18080 "$mode")
    ok $? "fork ($mode): client exits 0"
    diag "$out"
    n=$((n + 1))
    is "$(printf '%s\n' "$out" | sed -n 's/^user=\([a-z]*\) status=\([^ ]* [^ ]* [^ ]*\) .*/\1 \2/p')" \
        "$first HTTP/1.1 200 OK" "fork ($mode): the $first, which used it first, gets its answer"
    is "$(printf '%s\n' "$out" | sed -n 's/^other //p')" "send=EIO recv=EIO" \
        "fork ($mode): the other process's send and recv fail with EIO"
    check "fork ($mode): server logged the connection" wait_for_lines "$frk_log" "$n"
    is "$(tserver_field "$frk_log" "$n" version) $(tserver_field "$frk_log" "$n" status)" "TLS1.3 ok" \
        "fork ($mode): server saw TLS1.3, status=ok"
    is "$(tserver_field "$frk_log" "$n" first_line)" "GET /$first HTTP/1.1" \
        "fork ($mode): the first line the server got is the $first's"
    is "$(tserver_field "$frk_log" "$n" sha256_in)" "$(printf '%s\n' "$out" | sed -n 's/.*sha256_out=//p')" \
        "fork ($mode): server received exactly the $first's bytes (nothing from the other)"
done
is "$(tserver_conns "$frk_log")" 2 "fork: one connection per run"
check "fork: tlsshim log explains the refusal" \
    grep -q 'error: rule \[frk\] .*another process (pid [0-9]*) uses this connection.*EIO' "$WORK/frk.tlsshim.log"

# The child closing its copy without using it must not end the parent's
# connection (no shutdown, no close_notify from the child).
out=$(run frk "$PYTHON" "$CLIENTS/fork_client.py" localhost 18080 child-close)
ok $? "fork+close: client exits 0"
is "$(printf '%s\n' "$out" | sed -n 's/^user=\([a-z]*\) status=\([^ ]* [^ ]* [^ ]*\) .*/\1 \2/p')" \
    "parent HTTP/1.1 200 OK" "fork+close: the parent still gets its answer"
check "fork+close: server logged the connection" wait_for_lines "$frk_log" 3
is "$(tserver_field "$frk_log" 3 status) $(tserver_field "$frk_log" 3 first_line)" "ok GET /parent HTTP/1.1" \
    "fork+close: server got the parent's request"
is "$(tserver_field "$frk_log" 3 sha256_in)" "$(printf '%s\n' "$out" | sed -n 's/.*sha256_out=//p')" \
    "fork+close: server received exactly the parent's bytes"

# Connections a forked process opens itself are its own, with fresh
# randomness: a child's, and a double-forked daemon's.
out=$(run frk "$PYTHON" "$CLIENTS/fork_fresh.py" localhost 18080)
ok $? "fresh: client exits 0"
diag "$out"
for who in parent child daemon; do
    like "$out" "who=$who status=HTTP/1.1 200 OK" "fresh: the $who's own connection got its answer"
done
check "fresh: server logged three more connections" wait_for_lines "$frk_log" 6
is "$(grep '^conn ' "$frk_log" | tail -n 3 | grep -c 'status=ok version=TLS1.3')" 3 \
    "fresh: server: the three new connections were TLS 1.3"
is "$(grep '^conn ' "$frk_log" | tail -n 3 | sed -n 's/.*first_line=GET%20\/\([a-z]*\).*/\1/p' | sort | tr '\n' ' ')" \
    "child daemon parent " "fresh: server: one request each from the parent, the child and the daemon"
n_rand=$(sed -n 's/^conn .* client_random=\([0-9a-f]*\).*/\1/p' "$frk_log" | sort -u | wc -l)
is "$n_rand" "$(tserver_conns "$frk_log")" "fresh: every connection had its own client random"

# ==== 2. exec ===========================================================================================
# bash itself (the process that connected) uses the connection; cat, a new
# program image, gets the socket as stdin or stdout and must not.
start_tserver exe --mode echo
policy exe "$exe_port"
out=$(run exe bash -c '
exec 3<>/dev/tcp/localhost/18080 || exit 9
echo "first from bash" >&3
read -r l <&3; echo "echo1=$l"
printf "PLAINTEXT-LEAK\n" | cat >&3; echo "cat-write=$?"
timeout 10 cat <&3; echo "cat-read=$?"
echo "second from bash" >&3
read -r l <&3; echo "echo2=$l"
exec 3>&-' 2>"$WORK/exe.err")
ok $? "exec: bash script exits 0"
diag "$out"
diag "$(cat "$WORK/exe.err")"
is "$(printf '%s\n' "$out" | sed -n 's/^echo1=//p')" "first from bash" "exec: bash's own line echoed before the exec"
like "$(printf '%s\n' "$out" | sed -n 's/^cat-write=//p')" '^[1-9][0-9]*$' "exec: cat >&3 (write in a new program) fails"
like "$(printf '%s\n' "$out" | sed -n 's/^cat-read=//p')" '^[1-9]$' "exec: cat <&3 (read in a new program) fails"
check "exec: cat says bad file descriptor" grep -qi 'bad file descriptor' "$WORK/exe.err"
is "$(printf '%s\n' "$out" | sed -n 's/^echo2=//p')" "second from bash" "exec: bash still uses the connection afterwards"
check "exec: server logged the connection" wait_for_lines "$exe_log" 1
is "$(tserver_field "$exe_log" 1 status) $(tserver_field "$exe_log" 1 version)" "ok TLS1.3" \
    "exec: server saw TLS1.3 and no garbage (status=ok)"
is "$(tserver_field "$exe_log" 1 bytes_in)" 33 "exec: server received only bash's 33 bytes"
is "$(tserver_field "$exe_log" 1 sha256_in)" "$(sha 'first from bash\nsecond from bash\n')" \
    "exec: server's sha256_in = bash's two lines, no PLAINTEXT-LEAK"

# ==== 3. dup, dup2, F_DUPFD ================================================================================
start_tserver dup --mode echo
policy dup "$dup_port"
out=$(run dup "$PYTHON" "$CLIENTS/dup_client.py" localhost 18080)
ok $? "dup: client exits 0"
exp=$'via socket\nvia dup\nvia dup2\nvia F_DUPFD\nvia F_DUPFD_CLOEXEC\nafter close'
is "$(printf '%s\n' "$out" | grep -v '=' )" "$exp" "dup: every line echoed back through another descriptor"
check "dup: server logged the connection" wait_for_lines "$dup_log" 1
is "$(tserver_field "$dup_log" 1 version) $(tserver_field "$dup_log" 1 status)" "TLS1.3 ok" \
    "dup: server saw TLS1.3, status=ok"
is "$(tserver_field "$dup_log" 1 first_line)" "via socket" "dup: server's first_line"
is "$(tserver_field "$dup_log" 1 sha256_in)" "$(printf '%s\n' "$out" | sed -n 's/^sha256_out=//p')" \
    "dup: server received exactly the bytes written through all descriptors, in order"
is "$(tserver_field "$dup_log" 1 bytes_in)" "$(printf '%s\n' "$out" | sed -n 's/^bytes_out=//p')" \
    "dup: bytes_in matches"
is "$(tserver_field "$dup_log" 1 closed)" notify "dup: closing the last descriptor sent close_notify"

# A dup2 that fails (a bad source descriptor) leaves the target upgraded:
# what is written on it afterwards still arrives encrypted, never in clear.
start_tserver bad --mode echo
policy bad "$bad_port"
out=$(run bad "$PYTHON" -c '
import os, socket
s = socket.create_connection(("localhost", 18080), timeout=15)
try:
    os.dup2(987, s.fileno())
    print("dup2 succeeded?!")
except OSError as e:
    print("dup2 failed", e.errno)
s.sendall(b"after failed dup2\n")
print("echo", s.recv(100).decode().strip())
s.close()')
ok $? "failed dup2: client exits 0"
like "$out" "dup2 failed 9" "failed dup2: EBADF, as without tlsshim"
like "$out" "echo after failed dup2" "failed dup2: the connection still works"
check "failed dup2: server logged it" wait_for_lines "$bad_log" 1
is "$(tserver_field "$bad_log" 1 version) $(tserver_field "$bad_log" 1 first_line)" "TLS1.3 after failed dup2" \
    "failed dup2: server got the line over TLS 1.3"

done_testing
