#!/bin/bash
# valgrind.sh -- memcheck over real clients running with the library: curl
# (two upgraded connections, the second resumed), the C threads client, and
# bash /dev/tcp with stdio over dup2.  Passes when no memcheck error and no
# definitely-lost block has libtlsshim in its stack, and the server saw the
# connections (TLS 1.3, the resumption).  The clients' own findings are not
# ours and are ignored.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

command -v valgrind >/dev/null 2>&1 || skip_all "valgrind not installed"
need_cmd curl
case " ${TLSSHIM_PRELOAD:-} " in
*libasan*|*libtsan*) skip_all "sanitizer build: valgrind and sanitizers do not mix" ;;
esac

start_tserver srv
start_tserver echo --mode banner
write_policy "$WORK/p.policy" <<POL
log = file:$WORK/tlsshim.log
log-level = info
[http]
match = localhost:18080, 127.0.0.1:18080
port = $srv_port
server-name = localhost
ca = $CERTS/ca.pem
[banner]
match = localhost:18081
port = $echo_port
ca = $CERTS/ca.pem
POL

# vg NAME CMD...: run CMD under memcheck with the library preloaded
vg() {
    local name=$1
    shift
    LD_PRELOAD=$TLSSHIM_LIBRARY TLSSHIM_POLICY=$WORK/p.policy \
        timeout 300 valgrind -q --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
        --num-callers=30 --log-file="$WORK/vg.$name.%p.log" "$@"
}

# ours LOGS...: memcheck records (errors, definite leaks) whose stack has libtlsshim
ours() {
    "$PYTHON" - "$@" <<'PY'
import re, sys
found = 0
for path in sys.argv[1:]:
    block = []
    for line in open(path, errors="replace"):
        text = re.sub(r"^==\d+== ?", "", line.rstrip("\n"))
        if text == "":
            if any("libtlsshim" in l for l in block):
                found += 1
                print("\n".join(block[:20]))
            block = []
        else:
            block.append(text)
    if any("libtlsshim" in l for l in block):
        found += 1
        print("\n".join(block[:20]))
print("records", found)
PY
}

vg curl curl -sS --noproxy '*' -H 'Connection: close' -o /dev/null -o /dev/null \
    http://localhost:18080/one http://localhost:18080/two
ok $? "curl under memcheck: exits 0"
check "server logged both connections" wait_for_lines "$srv_log" 2
is "$(tserver_field "$srv_log" 1 version) $(tserver_field "$srv_log" 2 resumed)" "TLS1.3 1" \
    "server: TLS 1.3, the second connection resumed"
res=$(ours "$WORK"/vg.curl.*.log)
diag "$res"
is "$(printf '%s\n' "$res" | tail -n 1)" "records 0" "curl: no memcheck error or definite leak in libtlsshim"

if [ -x "$top_builddir/tests/stress/threads_client" ]; then
    vg threads "$top_builddir/tests/stress/threads_client" 18080 8 2 >"$WORK/threads.out"
    ok $? "threads client (8 threads x 2) under memcheck: exits 0"
    res=$(ours "$WORK"/vg.threads.*.log)
    diag "$res"
    is "$(printf '%s\n' "$res" | tail -n 1)" "records 0" "threads client: no memcheck error or definite leak in libtlsshim"
else
    skip "threads client under memcheck" "tests/stress/threads_client not built"
    skip "threads client: no memcheck record" "tests/stress/threads_client not built"
fi

vg bash bash -c 'exec 3<>/dev/tcp/localhost/18081; read -r l <&3; echo "hello valgrind" >&3; read -r l <&3; echo "$l"; exec 3>&-' \
    >"$WORK/bash.out"
ok $? "bash /dev/tcp + stdio over dup2 under memcheck: exits 0"
check "banner server logged it" wait_for_lines "$echo_log" 1
is "$(tserver_field "$echo_log" 1 first_line)" "hello valgrind" "server: got the line, encrypted"
res=$(ours "$WORK"/vg.bash.*.log)
diag "$res"
is "$(printf '%s\n' "$res" | tail -n 1)" "records 0" "bash: no memcheck error or definite leak in libtlsshim"

done_testing
