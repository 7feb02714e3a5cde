#!/bin/bash
# spawn.sh -- child processes a program starts while it has an upgraded
# connection open: vfork (Python's subprocess), posix_spawn with file actions,
# descriptors made inheritable with ioctl(FIONCLEX) (os.set_inheritable), and
# the exec family.  Proves, from tserver's log (status, bytes_in, sha256_in,
# closed):
#   * no plaintext byte from a child ever reaches the server (a new program
#     image cannot carry the TLS session: it never gets the socket);
#   * the parent's connection survives the child (its later bytes arrive
#     through TLS, then close_notify);
#   * a dup2 file action naming an upgraded descriptor fails with EBADF,
#     and the log says so;
#   * a descriptor the program believes inheritable is closed at exec, and
#     the log says which one, of which program, and why.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim

start_tserver spn --mode echo
policy spn "$spn_port"
sha() { printf '%b' "$1" | sha256sum | cut -d' ' -f1; }
expected_sha=$(sha 'echo1 from the parent\necho2 from the parent\n')

# run_mode MODE EXPECTED-CHILD: one connection; the server must have
# received exactly the parent's two lines through TLS, then close_notify.
n=0
run_mode() {
    local mode=$1 want_child=$2 out
    : >"$WORK/spn.tlsshim.log"
    out=$(timeout 60 "$TLSSHIM" -p "$WORK/spn.policy" "$PYTHON" "$CLIENTS/spawn_client.py" \
        localhost 18080 "$mode" 2>"$WORK/$mode.err")
    ok $? "$mode: client exits 0"
    diag "$out"
    diag "$(cat "$WORK/$mode.err")"
    n=$((n + 1))
    is "$(printf '%s\n' "$out" | sed -n 's/^echo1=//p')" "echo1 from the parent" "$mode: first line echoed"
    is "$(printf '%s\n' "$out" | sed -n 's/^child=//p')" "$want_child" "$mode: the child: $want_child"
    is "$(printf '%s\n' "$out" | sed -n 's/^echo2=//p')" "echo2 from the parent" \
        "$mode: the parent's connection still works after the child"
    check "$mode: server logged the connection" wait_for_lines "$spn_log" "$n"
    is "$(tserver_field "$spn_log" "$n" status) $(tserver_field "$spn_log" "$n" closed)" "ok notify" \
        "$mode: server: no garbage (status=ok), ended by close_notify"
    is "$(tserver_field "$spn_log" "$n" sha256_in)" "$expected_sha" \
        "$mode: server received exactly the parent's two lines, no plaintext from the child"
    if grep -q 'PLAINTEXT-LEAK' "$spn_log"; then
        fail "$mode: PLAINTEXT-LEAK in the server's log"
    fi
}

# ==== 1. vfork ====================================================================================
# subprocess.run(["true"]): the vfork child closes every descriptor above 2;
# that must not end the parent's connection.
run_mode run-true exit0
# Popen(stdout=sock): the child dup2()s the socket onto 1; at exec, fd 1 is
# closed (printf fails), the parent keeps its connection.
run_mode popen-stdout exit1
check "popen-stdout: log: fd 1 closed at exec of sh, and why" \
    grep -Eq 'warning: .*descriptor 1 .*closed at exec of .*sh.*TLS session cannot cross exec' \
    "$WORK/spn.tlsshim.log"

# ==== 2. posix_spawn with a dup2 file action =======================================================
run_mode posix-spawn EBADF
check "posix-spawn: log names the descriptor, the destination and why" \
    grep -Eq 'error: .*posix_spawn.* /bin/sh: refused.*descriptor [0-9]+ .*onto 1.*TLS session cannot' \
    "$WORK/spn.tlsshim.log"
# subprocess chooses posix_spawn for close_fds=False and an absolute path.
run_mode popen-spawn EBADF

# ==== 3. inheritable descriptors (ioctl FIONCLEX) ===================================================
run_mode inheritable exit2
is "$(sed -n 's/^inheritable=//p' <<<"$(timeout 60 "$TLSSHIM" -p "$WORK/spn.policy" "$PYTHON" \
    "$CLIENTS/spawn_client.py" localhost 18080 inheritable 2>/dev/null)")" True \
    "inheritable: os.get_inheritable sees what os.set_inheritable set"
n=$((n + 1))
check "inheritable: log: the descriptor closed at exec of sh, and why" \
    grep -Eq 'warning: .*descriptor [0-9]+ .*closed at exec of .*sh.*TLS session cannot cross exec' \
    "$WORK/spn.tlsshim.log"
run_mode pass-fds exit2
run_mode fork-exec exit2
check "fork-exec: log: the descriptor closed at exec of /bin/sh" \
    grep -Eq 'warning: .*descriptor [0-9]+ .*closed at exec of /bin/sh' "$WORK/spn.tlsshim.log"

# ==== 4. the exec family and posix_spawnp, from C ===================================================
# A vfork child execs sh through each function with the socket made
# inheritable; the arguments (and execle's environment) must arrive intact.
CLIENT=$top_builddir/tests/integration/clients/exec_client
[ -x "$CLIENT" ] || bail_out "exec client not built: '$CLIENT'"
run_c() {
    local mode=$1 want_child=$2 out
    : >"$WORK/spn.tlsshim.log"
    out=$(timeout 60 "$TLSSHIM" -p "$WORK/spn.policy" "$CLIENT" localhost 18080 "$mode" 2>"$WORK/$mode.err")
    ok $? "$mode: client exits 0"
    diag "$out"
    diag "$(cat "$WORK/$mode.err")"
    n=$((n + 1))
    is "$(printf '%s\n' "$out" | sed -n 's/^child=//p')" "$want_child" "$mode: the child: $want_child"
    is "$(printf '%s\n' "$out" | sed -n 's/^echo[12]=//p' | tr '\n' ' ')" \
        "line1 from the parent line2 from the parent " "$mode: the parent's connection works before and after"
    check "$mode: server logged the connection" wait_for_lines "$spn_log" "$n"
    is "$(tserver_field "$spn_log" "$n" status) $(tserver_field "$spn_log" "$n" closed)" "ok notify" \
        "$mode: server: no garbage (status=ok), ended by close_notify"
    is "$(tserver_field "$spn_log" "$n" sha256_in)" "$(sha 'line1 from the parent\nline2 from the parent\n')" \
        "$mode: server received exactly the parent's two lines, no plaintext from the child"
    C_OUT=$out
}
for mode in execl execlp execle execv execvp execvpe fexecve execveat; do
    run_c "$mode" exit0
    env=unset
    case $mode in execle | execvpe) env=env-ok ;; esac
    is "$(printf '%s\n' "$C_OUT" | sed -n 's/^args://p')" "sh-name:arg1:$env" \
        "$mode: the new program got its arguments and environment"
    check "$mode: log: the descriptor closed at exec, and why" \
        grep -Eq 'warning: .*descriptor [0-9]+ is closed at exec of .*sh.*TLS session cannot cross exec' \
        "$WORK/spn.tlsshim.log"
done
# The dup2 file action was added before connect() upgraded the socket: the
# spawn still refuses it.  Onto itself, glibc would clear close-on-exec.
for mode in spawn-late spawn-self; do
    run_c "$mode" EBADF
    check "$mode: log: posix_spawnp refused, and why" \
        grep -Eq 'error: .*posix_spawnp of sh: refused \(EBADF\): descriptor [0-9]+ .*TLS session cannot' \
        "$WORK/spn.tlsshim.log"
done

is "$(tserver_conns "$spn_log")" "$n" "one connection per run"
done_testing
