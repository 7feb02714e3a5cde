#!/bin/bash
# startup.sh -- the library opens the policy file when a program starts and
# reads it at the program's first connection (init.c).  Proves:
#   * a program that never connects pays no policy read and says nothing,
#     even when the policy is invalid;
#   * the descriptor opened at start-up is what counts: a program started
#     with a RELATIVE policy path that changes directory before connecting,
#     and one whose policy file is deleted before it connects, still get their
#     connections upgraded (tserver: TLS1.3, the request);
#   * (as root) a program that drops to user nobody before connecting, with
#     a policy only root can read, still gets its connection upgraded;
#   * a program that closes every descriptor one by one (chasing ours to the
#     limit) still gets its connection upgraded, never sent in clear;
#   * a policy descriptor replaced behind the library's back (raw dup2 of a
#     rule-less policy onto it) is noticed: the connection is refused, never
#     sent in clear;
#   * an invalid policy still refuses the connection, and says why, at the
#     first connection (the server sees nothing).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
LIB=${TLSSHIM_PRELOAD:-$TLSSHIM_LIBRARY}
need_tlsshim

start_tserver srv
n=0
# The CA where any user can read it (the drop-to-nobody case).
PUB=$(mktemp -d "${TMPDIR:-/tmp}/tlsshim-startup.XXXXXX")
chmod 755 "$PUB"
cp "$CERTS/ca.pem" "$PUB/ca.pem"
chmod 644 "$PUB/ca.pem"
trap 'rm -rf "$PUB"; _lib_cleanup' EXIT   # and lib.sh's own cleanup (servers)
# every policy: rule [srv], logging to stderr, the CA from $PUB
POLICY_LOG=stderr POLICY_RULE=srv POLICY_CA=$PUB/ca.pem

# fetch URL-PATH [PRE-PYTHON-CODE]: run python under the library (no
# launcher: the launcher would make the path absolute) and fetch the URL.
fetch() {
    local path=$1 pre=${2:-}
    LD_PRELOAD="$LIB" timeout 30 "$PYTHON" -c "
import os, sys, urllib.request
$pre
with urllib.request.urlopen('http://localhost:18080$path', timeout=20) as r:
    sys.stdout.write(r.read().decode()[:5])
"
}
# served LABEL PATH: the server's next log line is PATH over TLS 1.3
served() {
    n=$((n + 1))
    check "$1: server logged it" wait_for_lines "$srv_log" "$n"
    is "$(tserver_field "$srv_log" "$n" version) $(tserver_field "$srv_log" "$n" first_line)" \
        "TLS1.3 GET $2 HTTP/1.1" "$1: server saw the request over TLS1.3"
}

# ==== 1. no connection: no read, no message ===========================================
printf 'this is [not a policy\n' | write_policy "$WORK/bad.policy"
out=$(LD_PRELOAD="$LIB" TLSSHIM_POLICY="$WORK/bad.policy" /bin/true 2>&1)
ok $? "invalid policy, program that never connects: exits 0"
is "$out" "" "invalid policy, program that never connects: no message"

# ==== 2. relative path, then chdir ======================================================
policy rel "$srv_port"
out=$(cd "$WORK" && TLSSHIM_POLICY=rel.policy fetch /relative "os.chdir('/')" 2>"$WORK/rel.err")
ok $? "relative TLSSHIM_POLICY, chdir / before connecting: fetch succeeds"
served "relative path + chdir" /relative

# ==== 3. the file deleted before the first connection ====================================
policy gone "$srv_port"
out=$(TLSSHIM_POLICY="$WORK/gone.policy" fetch /deleted "os.unlink('$WORK/gone.policy')" 2>"$WORK/gone.err")
ok $? "policy file deleted before the first connection: fetch succeeds"
served "deleted policy file" /deleted

# ==== 4. privileges dropped before the first connection ===================================
if nobody_can_read "$TLSSHIM_LIBRARY" "$(dirname "$TLSSHIM_LIBRARY")/libtlsshim-tls.so"; then
    policy root "$srv_port"
    chmod 600 "$WORK/root.policy"
    out=$(TLSSHIM_POLICY="$WORK/root.policy" fetch /dropped \
        "os.setgroups([]); os.setgid(65534); os.setuid(65534); assert not os.access('$WORK/root.policy', os.R_OK)" \
        2>"$WORK/root.err")
    ok $? "root-only policy, setuid(nobody) before connecting: fetch succeeds"
    [ -s "$WORK/root.err" ] && diag "$(cat "$WORK/root.err")"
    served "privileges dropped" /dropped
else
    for d in "fetch succeeds" "server logged it" "server saw the request over TLS1.3"; do
        skip "privileges dropped: $d" "needs root, setpriv, and a build tree user nobody can read"
    done
fi

# ==== 4b. every descriptor closed, one by one, before the first connection ================
# An ascending close loop (classic daemon start-up) closes ours at each
# number it moves to, until there is no higher number left: the library must
# read the file again by name, not run without rules.
policy loop "$srv_port"
out=$( (ulimit -n 1024 && TLSSHIM_POLICY="$WORK/loop.policy" fetch /closeall "
for i in range(3, 1024):
    try:
        os.close(i)
    except OSError:
        pass") 2>"$WORK/loop.err")
ok $? "close(3..1023) one by one before connecting: fetch succeeds"
[ -s "$WORK/loop.err" ] && diag "$(cat "$WORK/loop.err")"
served "close loop" /closeall

# ==== 5. the descriptor replaced behind the library's back ================================
# A raw dup2 system call (no libc, so no hook) puts another file on the
# policy descriptor: a valid policy with no rules, which would let everything
# through in clear.  The library must notice and refuse, not read it.
policy real "$srv_port"
printf 'log = stderr\n' | write_policy "$WORK/norules.policy"
before=$(tserver_conns "$srv_log")
out=$(TLSSHIM_POLICY="$WORK/real.policy" fetch /swapped "
import ctypes, platform
if platform.machine() != 'x86_64':
    print('SKIP'); sys.exit(0)
libc = ctypes.CDLL(None, use_errno=True)
mine = [int(f) for f in os.listdir('/proc/self/fd')
        if os.path.realpath('/proc/self/fd/' + f) == os.path.realpath('$WORK/real.policy')]
assert len(mine) == 1, mine
fake = os.open('$WORK/norules.policy', os.O_RDONLY)
assert libc.syscall(33, fake, mine[0]) == mine[0]   # SYS_dup2 on x86_64
" 2>&1)
st=$?
if [ "$out" = SKIP ]; then
    for d in "the fetch fails" "the reason" "the server saw nothing"; do
        skip "descriptor replaced: $d" "not x86_64"
    done
else
    is "$([ $st -ne 0 ] && echo failed || echo succeeded)" failed "descriptor replaced behind our back: the fetch fails"
    like "$out" "closed behind tlsshim's back" "descriptor replaced: the log says why"
    sleep 0.3
    is "$(tserver_conns "$srv_log")" "$before" "descriptor replaced: the server saw no connection"
fi

# ==== 6. invalid policy: refused at the first connection ==================================
before=$(tserver_conns "$srv_log")
out=$(TLSSHIM_POLICY="$WORK/bad.policy" fetch /bad 2>&1)
st=$?
is "$([ $st -ne 0 ] && echo failed || echo succeeded)" failed "invalid policy: the fetch fails"
like "$out" 'invalid policy, refusing every TCP connection: .*bad\.policy:1' "invalid policy: the reason, with file and line"
like "$out" 'refused: invalid policy' "invalid policy: the connection was refused"
sleep 0.3
is "$(tserver_conns "$srv_log")" "$before" "invalid policy: the server saw no connection"

done_testing
