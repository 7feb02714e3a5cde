#!/bin/bash
# refactor_adv.sh -- adversarial checks of the issue-10 refactor (the engine's
# tls_sendv, its EAGAIN guard, the start-up and the log), with real peers:
#  1. vectors (clients/vec_adv.c): IOV_MAX one-byte buffers, empty buffers
#     with a NULL base, a 1 MiB buffer between tiny ones, sendmmsg of three
#     messages: tserver gets exactly the bytes, in order, then close_notify.
#  2. calls the kernel refuses before reading a byte (more than IOV_MAX
#     buffers, a length negative as ssize_t, lengths whose sum wraps), on
#     every vector entry point (writev, sendmsg, sendmmsg, readv, recvmsg:
#     EINVAL, EMSGSIZE for a msghdr, EFAULT for a NULL vector or base or a
#     range that wraps), compared with a socketpair; ranges no memory holds
#     and a huge send(): EFAULT.  Nothing sent, and no crash.
#  3. non-blocking writes that meet EAGAIN, retried with the SAME bytes cut
#     differently (one buffer, 7-byte buffers, only the first 10 bytes):
#     accepted, each byte reaches the server once.
#  4. writes until EAGAIN, then blocking: shutdown(SHUT_WR) and a blocking
#     read must not deadlock; the server gets every byte and close_notify.
#  5. SIGALRM every 300 us (with and without SA_RESTART) during blocking
#     connect/write/read against tserver echo: EINTR only without
#     SA_RESTART, the echo intact, close_notify at the end.
#  6. a PKCS#11 PIN never reaches check, explain or the debug log.
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
    like "$out" "${c//+/\\+}: parity ok" "refused: $c answered as the kernel does (EINVAL)"
done
# Every vector entry point (w writev, s sendmsg, m sendmmsg, r readv,
# v recvmsg), every way the kernel refuses a vector: the same errno.
for k in w s m r v; do
    for c in count-over null-then-negative null-base range-wraps null-vector; do
        like "$out" "^$k-$c: parity ok" "refused: $k-$c answered as the kernel does"
    done
    # Ranges no memory holds (Linux 6 on x86-64 reads until a fault):
    # EFAULT, and not a byte read past the buffer.
    for c in past-address-space sum-over-ssize; do
        like "$out" "^$k-$c: efault ok" "refused: $k-$c: EFAULT"
    done
done
for k in s m v; do
    like "$out" "^$k-count-2\\^33: parity ok" "refused: $k-count-2^33 answered as the kernel does (EMSGSIZE)"
done
like "$out" "^write-huge: parity ok" "refused: write-huge answered as the kernel does (EFAULT)"
like "$out" "^send-huge: efault ok" "refused: send-huge: EFAULT"
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

# ---- 5. a SIGALRM every 300 us on blocking connect, write and read ----
# Without SA_RESTART the program sees EINTR (and retries); with it, never.
# Either way the echo is intact and the stream ends with close_notify.
cc -O0 -o "$WORK/sig_adv" "$CLIENTS/sig_adv.c" 2>"$WORK/cc.err" ||
    { diag "$(cat "$WORK/cc.err")"; bail_out "cannot build sig_adv.c"; }
for how in norestart restart; do
    start_tserver "sig_$how" --mode echo --read-delay-ms 1
    port_var="sig_${how}_port" log_var="sig_${how}_log"
    POLICY_MATCH=127.0.0.1:${!port_var} policy "sig_$how" "" "server-name = localhost"
    out=$(run "sig_$how" "$WORK/sig_adv" 127.0.0.1 "${!port_var}" "$how" 2>&1)
    ok $? "signals/$how: the program ran to its end"
    diag "signals/$how: $out"
    like "$out" 'mismatch=0 bytes=1638400' "signals/$how: every byte echoed back intact"
    if [ "$how" = norestart ]; then
        like "$out" 'eintr=[1-9]' "signals/$how: calls were interrupted (EINTR)"
    else
        like "$out" 'eintr=0 ' "signals/$how: SA_RESTART: no EINTR"
    fi
    wait_for_lines "${!log_var}" 1 20 || fail "signals/$how: tserver logged the connection"
    is "$(tserver_field "${!log_var}" 1 bytes_in)" 1638400 "signals/$how: tserver got every byte"
    is "$(tserver_field "${!log_var}" 1 closed)" notify "signals/$how: then close_notify"
done

# ---- 6. a PIN in a key URI (query or path attribute, any case) reaches
# neither check, explain, nor the debug log of a connection that fails
# to load the key. ----
start_tserver pin --mode sink
for uri in "pkcs11:token=nope;object=k?pin-value=4321" "pkcs11:token=nope;object=k;pin-value=4321" \
    "pkcs11:token=nope;object=k?module-path=/x&PIN-VALUE=4321&pin-source=/y"; do
    POLICY_LEVEL=debug POLICY_LOG=file:$WORK/pin.log POLICY_MATCH=127.0.0.1:$pin_port policy pin "" \
        "server-name = localhost" "cert = $CERTS/client.pem" "key = $uri"
    : >"$WORK/pin.log"
    all=$("$TLSSHIM" check -p "$WORK/pin.policy" 2>&1
        "$TLSSHIM" explain -p "$WORK/pin.policy" "127.0.0.1:$pin_port" 2>&1
        run pin "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $pin_port)).send(b'x')" 2>&1
        cat "$WORK/pin.log")
    like "$all" 'pkcs11:token=nope' "pin: $uri: the URI is shown"
    if grep -q 4321 <<<"$all"; then fail "pin: $uri: no PIN digit anywhere"; diag "$(grep 4321 <<<"$all")"; else pass "pin: $uri: no PIN digit anywhere"; fi
done

done_testing
