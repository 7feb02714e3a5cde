#!/bin/bash
# keyupdate.sh -- "rekey-after = 64K": tlsshim sends a TLS 1.3 KeyUpdate
# for its sending key after 64 KiB the program wrote, at most four a second
# (GnuTLS peers refuse more than 8 a second), without asking the server to
# update its own key.  So the count of KeyUpdates is between 1 and
# bytes/64 KiB, and depends on the pace.
# Proves, from the server side:
#   * an upload to tserver (sink mode) of 1 MiB: 1..16 KeyUpdates, as many as
#     tlsshim logged, and the data arrived intact (sha256_in = sha256 of the file);
#   * through tserver echo mode, the server answering every KeyUpdate while
#     it streams the data back: both directions intact -- with a client that
#     reads and writes in lock step, and with a full-duplex one (a reader
#     thread and a writer thread);
#   * a fast (unpaced) 4 MiB upload: at least one KeyUpdate, data intact;
#   * curl -T (PUT, rate-limited) to tserver's http mode: several KeyUpdates;
#   * without rekey-after (and with rekey-after = 0): key_updates = 0;
#   * openssl s_server -msg shows our KeyUpdates (update_not_requested), paced
#     and unpaced, and it never had to answer one.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl
need_tlsshim

# every policy logs at debug (the KeyUpdate lines)
POLICY_LEVEL=debug

sha() { sha256sum "$1" | cut -d' ' -f1; }
# ran STATUS DESC NAME: ok STATUS DESC; on failure show NAME's client stderr
# and the end of its tlsshim log
ran() {
    ok "$1" "$2"
    [ "$1" -eq 0 ] && return 0
    diag "client: $(tail -n 2 "$WORK/$3.err" 2>/dev/null)"
    diag "tlsshim log: $(grep -v 'KeyUpdate [0-9]* sent' "$WORK/$3.tlsshim.log" 2>/dev/null | tail -n 3)"
    return 1
}

MIB=1048576
head -c $MIB /dev/urandom >"$WORK/1m.bin"
head -c $((4 * MIB)) /dev/urandom >"$WORK/4m.bin"
# text for s_server, which prints what it receives: 1 MiB of numbered
# 64-byte lines (so that no line spans two 16 KiB records)
"$PYTHON" -c '
import sys
for i in range(16384):
    sys.stdout.write("line %06d %s\n" % (i, "x" * 51))' >"$WORK/text"
[ "$(wc -c <"$WORK/text")" -eq $MIB ] || bail_out "text file has the wrong size"

# upload NAME FILE [CHUNK PAUSE]: python upload to localhost:18080 under NAME.policy
upload() {
    local name=$1 file=$2
    shift 2
    tlsshim_run "$WORK/$name.policy" "$PYTHON" "$CLIENTS/upload.py" localhost 18080 "$file" "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err"
}

# ==== 1. paced 1 MiB upload to tserver sink ===================================================
start_tserver sink --mode sink
policy sink "$sink_port" "rekey-after = 64K"
upload sink "$WORK/1m.bin" 65536 0.15
ran $? "sink paced: client exits 0" sink
check "sink paced: server logged the connection" wait_for_lines "$sink_log" 1
s() { tserver_field "$sink_log" "$@"; }
is "$(s 1 status) $(s 1 closed)" "ok notify" "sink paced: server: status=ok closed=notify"
is "$(s 1 bytes_in)" $MIB "sink paced: server: bytes_in = 1 MiB"
is "$(s 1 sha256_in)" "$(sha "$WORK/1m.bin")" "sink paced: server: sha256_in = sha256 of the file"
k=$(s 1 key_updates)
[ "${k:-0}" -ge 4 ] && [ "${k:-0}" -le 16 ]
ok $? "sink paced: server: 4..16 KeyUpdates for 1 MiB over ~2.4 s (got $k)"
is "$(grep -c 'KeyUpdate [0-9]* sent' "$WORK/sink.tlsshim.log")" "$k" "sink paced: tlsshim logged as many KeyUpdates as the server saw"

# ==== 2. paced 1 MiB through tserver echo: the server's answers come back ======================
# 2a: one thread, in lock step (write 64 KiB, read it back)
start_tserver echo --mode echo
policy echo "$echo_port" "rekey-after = 64K"
tlsshim_run "$WORK/echo.policy" "$PYTHON" "$CLIENTS/lockstep_echo.py" localhost 18080 "$WORK/1m.bin" 65536 0.13 \
    >"$WORK/echo.out" 2>"$WORK/echo.err"
ran $? "echo lockstep: client exits 0" echo
check "echo lockstep: server logged the connection" wait_for_lines "$echo_log" 1
e() { tserver_field "$echo_log" "$@"; }
is "$(e 1 status) $(e 1 closed)" "ok notify" "echo lockstep: server: status=ok closed=notify"
is "$(e 1 bytes_in) $(e 1 bytes_out)" "$MIB $MIB" "echo lockstep: server: 1 MiB in, 1 MiB out"
is "$(e 1 sha256_in)" "$(sha "$WORK/1m.bin")" "echo lockstep: server: sha256_in = sha256 of the file"
k=$(e 1 key_updates)
[ "${k:-0}" -ge 4 ] && [ "${k:-0}" -le 16 ]
ok $? "echo lockstep: server: 4..16 KeyUpdates (got $k)"
is "$(sed -n 's/^received //p' "$WORK/echo.out")" "$MIB $(sha "$WORK/1m.bin")" \
    "echo lockstep: the client read the 1 MiB back intact (across the server's KeyUpdates)"

# 2b: full duplex -- a reader thread and a writer thread on the same socket
# (what most programs that stream both ways do): 2 MiB, 32 KeyUpdates.
head -c $((2 * MIB)) /dev/urandom >"$WORK/2m.bin"
start_tserver duplex --mode echo
policy duplex "$duplex_port" "rekey-after = 64K"
upload duplex "$WORK/2m.bin" 65536 0.13
ran $? "echo full duplex: client exits 0" duplex
check "echo full duplex: server logged the connection" wait_for_lines "$duplex_log" 1
d() { tserver_field "$duplex_log" "$@"; }
is "$(d 1 status) $(d 1 bytes_in)" "ok $((2 * MIB))" \
    "echo full duplex: server: status=ok, 2 MiB in" || diag "server: reason=$(d 1 reason)"
k=$(d 1 key_updates)
[ "${k:-0}" -ge 4 ] && [ "${k:-0}" -le 32 ]
ok $? "echo full duplex: server: 4..32 KeyUpdates (got $k)"
is "$(d 1 sha256_in)" "$(sha "$WORK/2m.bin")" "echo full duplex: server: sha256_in = sha256 of the file"
is "$(sed -n 's/^received //p' "$WORK/duplex.out")" "$((2 * MIB)) $(sha "$WORK/2m.bin")" \
    "echo full duplex: the client read the 2 MiB back intact"

# ==== 3. unpaced 4 MiB upload ===============================================================
start_tserver fast --mode sink
policy fast "$fast_port" "rekey-after = 64K"
upload fast "$WORK/4m.bin"
ran $? "sink fast: client exits 0" fast
check "sink fast: server logged the connection" wait_for_lines "$fast_log" 1
f() { tserver_field "$fast_log" "$@"; }
is "$(f 1 status) $(f 1 bytes_in)" "ok $((4 * MIB))" "sink fast: server: status=ok, 4 MiB in" ||
    diag "server: reason=$(f 1 reason)"
is "$(f 1 sha256_in)" "$(sha "$WORK/4m.bin")" "sink fast: server: sha256_in = sha256 of the file"
k=$(f 1 key_updates)
[ "${k:-0}" -ge 1 ] && [ "${k:-0}" -le 64 ]
ok $? "sink fast: server: 1..64 KeyUpdates, at most four a second (got $k)"

# ==== 4. curl -T (HTTP PUT, rate-limited) to tserver http mode ===================================
start_tserver put
policy put "$put_port" "rekey-after = 64K"
tlsshim_run "$WORK/put.policy" curl -sS --noproxy '*' --max-time 30 --limit-rate 256K \
    -H 'Expect:' -T "$WORK/1m.bin" -o "$WORK/put.body" http://localhost:18080/up 2>"$WORK/put.err"
ran $? "curl -T: exits 0" put
check "curl -T: server logged the connection" wait_for_lines "$put_log" 1
p() { tserver_field "$put_log" "$@"; }
is "$(p 1 first_line) $(p 1 status)" "PUT /up HTTP/1.1 ok" "curl -T: server: PUT request, status=ok"
b=$(p 1 bytes_in)
[ "${b:-0}" -gt $MIB ] && [ "${b:-0}" -lt $((MIB + 400)) ]
ok $? "curl -T: server: bytes_in = head + 1 MiB body ($b)"
k=$(p 1 key_updates)
[ "${k:-0}" -ge 4 ] && [ "${k:-0}" -le 16 ]
ok $? "curl -T: server: 4..16 KeyUpdates over ~4 s (got $k)"
like "$(cat "$WORK/put.body")" 'hello from tserver' "curl -T: client got the server's answer"

# ==== 5. no rekey-after, rekey-after = 0: no KeyUpdate ==========================================
for v in "" 0; do
    name=none${v}
    start_tserver "$name" --mode sink
    pvar=${name}_port lvar=${name}_log
    policy "$name" "${!pvar}" ${v:+"rekey-after = $v"}
    upload "$name" "$WORK/4m.bin"
    ok $? "rekey-after=${v:-unset}: client exits 0"
    check "rekey-after=${v:-unset}: server logged it" wait_for_lines "${!lvar}" 1
    is "$(tserver_field "${!lvar}" 1 key_updates) $(tserver_field "${!lvar}" 1 bytes_in)" "0 $((4 * MIB))" \
        "rekey-after=${v:-unset}: server: key_updates=0, 4 MiB in"
    is "$(tserver_field "${!lvar}" 1 sha256_in)" "$(sha "$WORK/4m.bin")" "rekey-after=${v:-unset}: server: data intact"
done

# ==== 6. openssl s_server -msg ================================================================
if command -v "${OPENSSL:-openssl}" >/dev/null 2>&1 && command -v stdbuf >/dev/null 2>&1; then
    # s_server prints -msg through stdio and the data with write(2):
    # line-buffer stdio so that the two never cut into each other's lines.
    cat >"$WORK/openssl-lb" <<EOF
#!/bin/sh
exec stdbuf -oL "${OPENSSL:-openssl}" "\$@"
EOF
    chmod +x "$WORK/openssl-lb"
    for pace in 0.15 0; do
        name=oss$([ $pace = 0 ] && echo fast)
        label="s_server $([ $pace = 0 ] && echo fast || echo paced)"
        OPENSSL=$WORK/openssl-lb start_openssl_server "$name" -msg
        pvar=${name}_port lvar=${name}_log
        log=${!lvar}
        policy "$name" "${!pvar}" "rekey-after = 64K"
        upload "$name" "$WORK/text" 65536 $pace
        ran $? "$label: client exits 0" "$name"
        wait_for_match "$log" '^DONE|CONNECTION CLOSED' 5
        k=$(grep -c '^<<< TLS 1.3, Handshake \[length 0005\], KeyUpdate' "$log")
        [ "$k" -ge 1 ] && [ "$k" -le 16 ]
        ok $? "$label: s_server received 1..16 KeyUpdates (got $k)"
        # "18 00 00 01 00": KeyUpdate, update_not_requested
        is "$(grep -A1 '^<<< TLS 1.3, Handshake \[length 0005\], KeyUpdate' "$log" | grep -c '18 00 00 01 00')" "$k" \
            "$label: s_server: none of them asks it to update its own key"
        is "$(grep -c '^>>> TLS 1.3, Handshake \[length 0005\], KeyUpdate' "$log")" 0 \
            "$label: s_server had no KeyUpdate to answer"
        is "$(grep -a -c '^line [0-9]\{6\} x\{51\}$' "$log")" 16384 "$label: s_server printed all 16384 lines" ||
            diag "last line: $(grep -a '^line ' "$log" | tail -n 1)"
    done
else
    for i in $(seq 10); do skip "s_server check $i" "openssl or stdbuf not found"; done
fi

done_testing
