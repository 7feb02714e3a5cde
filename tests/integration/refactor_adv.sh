#!/bin/bash
# refactor_adv.sh -- adversarial checks of the issue-10 refactor (the engine's
# tls_sendv, its EAGAIN guard, the start-up and the log), with real peers:
#  1. vectors (clients/vec_adv.c): IOV_MAX one-byte buffers, empty buffers
#     with a NULL base, a 1 MiB buffer between tiny ones, sendmmsg of three
#     messages: tserver gets exactly the bytes, in order, then close_notify.
#  2. calls the kernel refuses with EINVAL before reading a byte (more than
#     IOV_MAX buffers, a length negative as ssize_t, lengths whose sum
#     wraps): the upgraded socket says EINVAL too, sends nothing, and the
#     program does not crash.
#  3. non-blocking writes that meet EAGAIN, retried with the SAME bytes cut
#     differently (one buffer, 7-byte buffers, only the first 10 bytes):
#     accepted, each byte reaches the server once.
#  4. writes until EAGAIN, then blocking: shutdown(SHUT_WR) and a blocking
#     read must not deadlock; the server gets every byte and close_notify.
# Proof from tserver: bytes_in, sha256_in, closed.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim
need_cmd cc sha256sum

cc -O0 -o "$WORK/vec_adv" "$CLIENTS/vec_adv.c" 2>"$WORK/cc.err" ||
    { diag "$(cat "$WORK/cc.err")"; bail_out "cannot build vec_adv.c"; }

POLICY_LOG=file:$TLOG POLICY_RULE=adv

# vec_case NAME MODE [TSERVER-OPTS...]: run vec_adv MODE against a fresh
# tserver NAME; sets $out, $rc and $copy (what the program was told went).
vec_case() {
    local name=$1 mode=$2 port_var log_var
    shift 2
    start_tserver "$name" --mode sink "$@"
    port_var="${name}_port" log_var="${name}_log"
    POLICY_MATCH=127.0.0.1:${!port_var} policy "$name" "" "server-name = localhost"
    copy=$WORK/$name.copy
    out=$(timeout "${RUN_TIMEOUT:-60}" "$TLSSHIM" -p "$WORK/$name.policy" "$WORK/vec_adv" 127.0.0.1 "${!port_var}" \
        "$mode" "$copy" 2>&1)
    rc=$?
    diag "$mode (rc=$rc): $(tr '\n' ' ' <<<"$out")"
    wait_for_lines "${!log_var}" 1 30 || fail "$mode: tserver logged the connection"
}

# same_bytes NAME MODE: tserver NAME got the copy's bytes, then close_notify.
same_bytes() {
    local log_var="${1}_log"
    is "$(tserver_field "${!log_var}" 1 bytes_in)" "$(stat -c %s "$copy")" \
        "$2: tserver got as many bytes as the program was told went"
    is "$(tserver_field "${!log_var}" 1 sha256_in)" "$(sha256sum <"$copy" | cut -d' ' -f1)" \
        "$2: ... the same bytes, in order (sha256)"
    is "$(tserver_field "${!log_var}" 1 closed)" notify "$2: then close_notify"
}

# ---- 1. odd shapes ----
vec_case shp shapes
is "$rc" 0 "shapes: the program ran to its end"
for c in iovmax-1byte empty-mixed only-empty huge-between-tiny sendmmsg; do
    like "$out" "$c: .*ok|$c: ok" "shapes: $c"
done
same_bytes shp shapes

# ---- 2. what the kernel refuses ----
vec_case ref refused
is "$rc" 0 "refused: the program ran to its end (no crash)"
for c in iovmax+1 sum-wraps len-negative count-negative; do
    like "$out" "$c: parity ok" "refused: $c answered as the kernel does (EINVAL)"
done
is "$(tserver_field "$ref_log" 1 bytes_in)" 0 "refused: nothing reached the server"

# ---- 3. EAGAIN, then the same bytes cut differently ----
vec_case rsp resplit --read-delay-ms 2
is "$rc" 0 "resplit: the program ran to its end"
like "$out" 'eagain=[1-9]' "resplit: writes met EAGAIN"
same_bytes rsp resplit
# (resplit also ends with shutdown + a blocking read: it meets case 4's
# deadlock when its last write left a record queued.)

# ---- 4. EAGAIN, then blocking: shutdown(SHUT_WR) and a blocking read ----
# A plain TCP program may stop at the first EAGAIN, turn the socket
# blocking, half-close and wait for the server's end: the kernel delivers
# what it accepted and the FIN meanwhile.  The library's record queued
# after EAGAIN (counted as sent) and its close_notify must go too, or
# the server waits for them and the program for the server, for ever.
RUN_TIMEOUT=20
vec_case blk then-block --read-delay-ms 5
is "$rc" 0 "then-block: the program ran to its end (no deadlock)"
like "$out" 'eagain after [1-9]' "then-block: a write met EAGAIN"
same_bytes blk then-block

done_testing
