#!/bin/bash
# fork_end.sh -- the end of a connection after fork(), when the process that
# closes it last never wrote after the fork.
# A fork leaves both directions of every connection unowned (owner.h): the
# first process to use one keeps it.  A process that closes (or exits with)
# the connection without having used it again must still send close_notify
# when no other process holds the connection any more, and must not take it
# while one does (connect, then daemonize).  Proves from tserver's log that
# the server got every byte and then close_notify:
#   * bash: write, run /bin/true (fork + exec), then close or exit;
#   * python: write, os.fork() with a child that _exits at once, then the
#     parent closes, exits or _exits without writing again;
#   * daemonize: write, fork, the parent exits at once; the child writes
#     the rest, then closes or exits.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim
need_cmd bash sha256sum

start_tserver srv --mode sink
POLICY_LOG=file:$TLOG POLICY_MATCH="localhost:18080, 127.0.0.1:18080" policy up "$srv_port" "server-name = localhost"
n=0

# expect SIZE SHA DESC: the next connection got every byte, then close_notify.
expect() {
    local size=$1 sha=$2 desc=$3 got
    n=$((n + 1))
    if ! wait_for_lines "$srv_log" "$n" 20; then
        fail "$desc: the server logged no connection"
        return
    fi
    got="$(tserver_field "$srv_log" "$n" bytes_in) $(tserver_field "$srv_log" "$n" sha256_in) $(tserver_field "$srv_log" "$n" closed)"
    is "$got" "$size $sha notify" "$desc: server got every byte, then close_notify"
}
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# ==== bash: write, /bin/true, then the end ==============================================
for end in close exit; do
    timeout 40 "$TLSSHIM" -p "$WORK/up.policy" bash -c '
        exec 3<>/dev/tcp/127.0.0.1/18080 || exit 1
        printf hello >&3
        /bin/true
        [ "$1" = close ] && exec 3>&-
        exit 0' bash $end || diag "bash exited with $?"
    expect 5 "$(sha hello)" "bash: write, run /bin/true, then $end"
done

# ==== python: write, fork (the child _exits), then the end ==============================
PY_PARENT='
import os, socket, sys
end = sys.argv[1]
s = socket.create_connection(("127.0.0.1", 18080))
s.sendall(b"x" * 70000)
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
if end == "close":
    s.close()
    sys.exit(0)
if end == "exit":
    sys.exit(0)
os._exit(0)
'
xs=$(head -c 70000 /dev/zero | tr '\0' x | sha256sum | cut -d' ' -f1)
for end in close exit _exit; do
    timeout 40 "$TLSSHIM" -p "$WORK/up.policy" "$PYTHON" -c "$PY_PARENT" $end ||
        diag "python exited with $?"
    expect 70000 "$xs" "python: write, fork (child _exits), parent $end"
done

# ==== daemonize: write, fork, the parent exits; the child writes and ends ===============
PY_DAEMON='
import os, socket, sys
end = sys.argv[1]
s = socket.create_connection(("127.0.0.1", 18080))
s.sendall(b"a" * 1000)
if os.fork() != 0:
    os._exit(0) if end == "_exit" else sys.exit(0)
os.setsid()
s.sendall(b"b" * 50000)
if end == "close":
    s.close()
sys.exit(0)
'
ab=$( (head -c 1000 /dev/zero | tr '\0' a; head -c 50000 /dev/zero | tr '\0' b) | sha256sum | cut -d' ' -f1)
for end in close exit _exit; do
    timeout 40 "$TLSSHIM" -p "$WORK/up.policy" "$PYTHON" -c "$PY_DAEMON" $end ||
        diag "python exited with $?"
    expect 51000 "$ab" "daemonize: write, fork, parent ${end}s, child writes then ends"
done

done_testing
