#!/bin/bash
# hostile.sh -- tlsshim fails closed against hostile and broken servers.
#
# Every server here is tests/servers/evil.py, which records every RAW byte
# it receives.  For each misbehaviour an unmodified plain-TCP client
# (clients/hostile_client.py, blocking sockets and/or asyncio on epoll, and
# curl for a few) sends "GET /<unique marker>" through tlsshim, and we prove:
#   * the client gets an ERROR (not a clean EOF) and the expected errno
#     (handshake failures: ECONNREFUSED, or ETIMEDOUT for a non-blocking
#     connect that timed out; later failures: ECONNRESET or EPROTO);
#   * it does not hang: it is killed at 20 s but must return well before
#     (about 1 s with handshake-timeout = 1s; 9-15 s with the default 10 s);
#   * not one application byte went out in plaintext: the raw bytes evil.py
#     received start with a TLS handshake record and contain neither the
#     marker nor anything HTTP-looking (for the mid-stream cases evil.py
#     also shows that the marker did arrive -- inside TLS);
#   * tlsshim's log names the rule and the cause.
# Cases: reset during the handshake (RST), close during the handshake (FIN),
# silent server (1 s and the default 10 s), a handshake that stalls after
# the ServerHello, non-TLS garbage, an encrypted fatal alert mid-stream, an
# unencrypted alert injected mid-stream, truncation (no close_notify),
# a corrupted record (bad AEAD tag), a certificate with a broken signature,
# a chain of 20 intermediates (over GnuTLS' verification depth limit of 16;
# a 3-intermediate chain from the same generator is the control), a TLS 1.2
# only server.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim
need_cmd certtool curl timeout
CLIENT=$top_srcdir/tests/integration/clients/hostile_client.py
CLIENT_LIMIT=20         # the client is killed after this many seconds

# ---- certificates for the bad-chain cases ---------------------------------------
certtool_q() { certtool "$@" >/dev/null 2>&1; }
genkey() { certtool_q --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text --outfile "$1"; }

# badsig.pem: server.pem with one bit of its signature flipped (the last
# byte of the DER is inside the ECDSA signature's s INTEGER, so the
# certificate still parses)
"$PYTHON" - "$CERTS/server.pem" "$WORK/badsig.pem" <<'EOF' || bail_out "could not make badsig.pem"
import ssl, sys
der = bytearray(ssl.PEM_cert_to_DER_cert(open(sys.argv[1]).read()))
der[-1] ^= 0x01
open(sys.argv[2], "w").write(ssl.DER_cert_to_PEM_cert(bytes(der)))
EOF
cp "$CERTS/server-key.pem" "$WORK/badsig-key.pem"

# mkchain N OUT: OUT.pem = a localhost leaf + N intermediates (leaf first),
# rooted at the test CA; OUT-key.pem its key
mkchain() {
    local n=$1 out=$2 d="$WORK/chain.$1" i
    local pc="$CERTS/ca.pem" pk="$CERTS/ca-key.pem"
    mkdir -p "$d"
    for i in $(seq 1 "$n"); do
        genkey "$d/i$i-key.pem" || return 1
        printf 'cn = "tlsshim intermediate %d"\nserial = %d\nexpiration_days = 3650\nca\ncert_signing_key\n' \
            "$i" $((100 + i)) >"$d/i$i.tmpl"
        certtool_q --generate-certificate --load-privkey "$d/i$i-key.pem" \
            --load-ca-certificate "$pc" --load-ca-privkey "$pk" \
            --template "$d/i$i.tmpl" --no-text --outfile "$d/i$i.pem" || return 1
        pc=$d/i$i.pem pk=$d/i$i-key.pem
    done
    genkey "$out-key.pem" || return 1
    printf 'cn = "localhost"\nserial = 99\nexpiration_days = 3650\ndns_name = "localhost"\ntls_www_server\nsigning_key\n' \
        >"$d/leaf.tmpl"
    certtool_q --generate-certificate --load-privkey "$out-key.pem" \
        --load-ca-certificate "$pc" --load-ca-privkey "$pk" \
        --template "$d/leaf.tmpl" --no-text --outfile "$out.pem" || return 1
    for i in $(seq "$n" -1 1); do cat "$d/i$i.pem" >>"$out.pem"; done
}
mkchain 20 "$WORK/long" || bail_out "could not make the 20-intermediate chain"
mkchain 3 "$WORK/short" || bail_out "could not make the 3-intermediate chain"

# ---- helpers ------------------------------------------------------------------------

# evil_field LOG N FIELD: FIELD of the Nth conn line of an evil.py log
evil_field() {
    grep -a '^conn ' "$1" | sed -n "${2}p" | tr ' ' '\n' | sed -n "s/^$3=//p" | head -n 1
}

# run_client NAME STYLE MARKER: run hostile_client.py under tlsshim with a
# hard limit; sets $result (its output line, or "killed"), $elapsed (s,
# measured from outside, 2 decimals).
run_client() {
    local name=$1 style=$2 marker=$3 t0 t1
    t0=$(date +%s.%N)
    result=$(timeout -s KILL $CLIENT_LIMIT "$TLSSHIM" -p "$WORK/$name.policy" \
        "$PYTHON" "$CLIENT" "$style" localhost 18080 "$marker" 2>"$WORK/$name.client.err")
    [ -n "$result" ] || result="killed-or-crashed (exit $?): $(head -c 300 "$WORK/$name.client.err")"
    t1=$(date +%s.%N)
    elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}

# field_of LINE KEY: KEY=VALUE from a "k=v k=v" line
field_of() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# between X LO HI: LO <= X <= HI (decimals)
between() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }

# no_plaintext NAME LOG N: the Nth connection evil.py saw carried no
# plaintext and started with a TLS record
no_plaintext() {
    local name=$1 log=$2 n=$3
    is "$(evil_field "$log" "$n" tls_record) $(evil_field "$log" "$n" plaintext) $(evil_field "$log" "$n" marker_raw)" \
        "1 0 0" "$name: server got a TLS ClientHello and no plaintext (tls_record=1 plaintext=0 marker_raw=0)"
}

# log_names NAME REGEX: tlsshim's log has an error line for rule [NAME]
# matching REGEX
log_names() {
    local name=$1 re=$2 f="$WORK/$1.tlsshim.log"
    if grep -Eq -- "error: rule \[$name\] .*($re)" "$f" 2>/dev/null; then
        pass "$name: tlsshim log names the cause ($re)"
    else
        fail "$name: tlsshim log names the cause ($re)"
        diag "tlsshim log: $(cat "$f" 2>/dev/null)"
    fi
}

# hostile NAME MODE STYLE STAGE ERRNO-RE REASON-RE MAX-SECONDS [evil options]
#   One case: start evil.py in MODE, run the client, check error/no hang/
#   no plaintext/log.  STAGE is where the client must fail (connect|recv).
#   For recv-stage cases also check the request did arrive inside TLS and
#   that part of the response was read before the error.
hostile() {
    local name=$1 mode=$2 style=$3 stage=$4 errre=$5 re=$6 max=$7
    shift 7
    local marker="tlsshim-secret-$name-$$-$RANDOM"
    start_evil "$name" "$mode" --marker "$marker" --max-conns 1 --hold 25 "$@"
    local pvar=${name}_port lvar=${name}_log
    policy "$name" "${!pvar}" "handshake-timeout = 1s"
    run_client "$name" "$style" "$marker"
    printf -v "${name}_result" '%s' "$result"
    diag "$name ($mode, $style): $result [outside: ${elapsed}s]"
    like "$result" "^result=error stage=$stage errno=($errre) " \
        "$name: $style client gets an error at $stage ($errre), not a clean EOF"
    between "$elapsed" 0 "$max"
    ok $? "$name: no hang: the client returned in ${elapsed}s (limit ${max}s, killed at ${CLIENT_LIMIT}s)"
    log_names "$name" "$re"
    # the server logs when the client's side of the connection is gone
    check "$name: evil.py logged the connection" wait_for_match "${!lvar}" '^conn ' 10
    no_plaintext "$name" "${!lvar}" 1
    if [ "$stage" = recv ]; then
        is "$(evil_field "${!lvar}" 1 marker_app)" 1 \
            "$name: the request reached the server, encrypted (marker only after decryption)"
    fi
    diag "$name: evil.py: $(grep -a '^conn ' "${!lvar}" | head -n 1)"
    stop_server "$name"
}

# ==== 0. control: evil.py's well-behaved TLS 1.3 server works ==========================
start_evil ctl serve --marker tlsshim-control-marker --max-conns 1 --hold 10
policy ctl "$ctl_port"
run_client ctl blocking tlsshim-control-marker
like "$result" '^result=eof stage=recv errno=- bytes=77 ' "control: client gets the whole response and a clean EOF"
wait_for_match "$ctl_log" '^conn ' 10
is "$(evil_field "$ctl_log" 1 marker_app) $(evil_field "$ctl_log" 1 marker_raw) $(evil_field "$ctl_log" 1 plaintext)" \
    "1 0 0" "control: request arrived inside TLS only (marker_app=1 marker_raw=0 plaintext=0)"
check "control: tlsshim logged a verified TLS1.3 connection" \
    grep -Eq 'info: rule \[ctl\] .*verified version=TLS1\.3' "$WORK/ctl.tlsshim.log"

# ==== 1. failures during the handshake ===================================================
hostile rst_blk reset-handshake blocking connect ECONNREFUSED 'handshake failed.*(reset|I/O error)' 5
hostile rst_aio reset-handshake asyncio connect 'ECONNREFUSED|ECONNRESET' 'handshake failed.*(reset|I/O error)' 5
hostile fin_blk close-handshake blocking connect ECONNREFUSED 'handshake failed.*(closed|EOF|premature)' 5
hostile silent_blk silent blocking connect 'ECONNREFUSED|ETIMEDOUT' 'timed out|did not complete the handshake within 1000 ms' 3
hostile silent_aio silent asyncio connect 'ECONNREFUSED|ETIMEDOUT' 'timed out|did not complete the handshake within 1000 ms' 3
hostile stall_blk stall-handshake blocking connect 'ECONNREFUSED|ETIMEDOUT' 'timed out|did not complete the handshake within 1000 ms' 3
hostile stall_aio stall-handshake asyncio connect 'ECONNREFUSED|ETIMEDOUT' 'timed out|did not complete the handshake within 1000 ms' 3
hostile garbage garbage blocking connect ECONNREFUSED 'handshake failed.*(unexpected TLS packet|unexpected|Decode|record)' 5
hostile tls12 tls12 blocking connect ECONNREFUSED 'handshake failed.*protocol version' 5
hostile badsig serve blocking connect ECONNREFUSED 'certificate rejected.*(signature|not trusted|NOT trusted)' 5 \
    --cert "$WORK/badsig.pem" --key "$WORK/badsig-key.pem"
hostile longchain serve blocking connect ECONNREFUSED 'certificate (rejected|verification failed).*(constraint|limit|depth|not trusted|NOT trusted)' 5 \
    --cert "$WORK/long.pem" --key "$WORK/long-key.pem"

# the control for the chain generator: 3 intermediates are fine
start_evil shortchain serve --marker tlsshim-short-marker --max-conns 1 --hold 10 \
    --cert "$WORK/short.pem" --key "$WORK/short-key.pem"
policy shortchain "$shortchain_port"
run_client shortchain blocking tlsshim-short-marker
like "$result" '^result=eof stage=recv errno=- bytes=77 ' \
    "chain control: leaf + 3 intermediates from the same generator is accepted"

# ==== 2. failures after the handshake, in the middle of a response ============================
hostile alert_blk alert-midstream blocking recv 'ECONNRESET|EPROTO' 'fatal alert received during read: Bad record MAC' 5
hostile alert_aio alert-midstream asyncio recv 'ECONNRESET|EPROTO' 'fatal alert received during read: Bad record MAC' 5
hostile palert plain-alert blocking recv 'ECONNRESET|EPROTO' 'read failed.*(Decryption has failed|unexpected|alert)' 5
hostile trunc_blk truncate blocking recv 'ECONNRESET|EPROTO' 'without close_notify.*truncated' 5
hostile trunc_aio truncate asyncio recv 'ECONNRESET|EPROTO' 'without close_notify.*truncated' 5
hostile corrupt_blk corrupt blocking recv 'ECONNRESET|EPROTO' 'read failed.*(Decryption has failed|MAC|decrypt)' 5
hostile corrupt_aio corrupt asyncio recv 'ECONNRESET|EPROTO' 'read failed.*(Decryption has failed|MAC|decrypt)' 5

# the alert and truncation cases really were mid-stream: the client read the
# response head and part of the body (1078 bytes) before the error
for n in alert_blk alert_aio palert trunc_blk trunc_aio; do
    rvar=${n}_result
    is "$(field_of "${!rvar}" bytes)" 1078 "$n: the client read the partial response before the error"
done

# ==== 3. curl: errors, never success ===================================================
# curl exit 7 (couldn't connect) for a handshake failure, 56 (recv failure)
# mid-stream.  The responses have no Content-Length, so a truncated body
# without close_notify checking would look complete to curl (exit 0).
for case in reset-handshake:7 truncate:56 corrupt:56 alert-midstream:56; do
    mode=${case%:*} want=${case#*:}
    name=curl_${mode//-/_}
    start_evil "$name" "$mode" --marker "tlsshim-curl-$$" --max-conns 1 --hold 25
    pvar=${name}_port lvar=${name}_log
    policy "$name" "${!pvar}"
    timeout -s KILL $CLIENT_LIMIT "$TLSSHIM" -p "$WORK/$name.policy" curl -sS --noproxy '*' \
        -o "$WORK/$name.body" "http://localhost:18080/tlsshim-curl-$$" 2>"$WORK/$name.err"
    st=$?
    is "$st" "$want" "curl vs $mode: curl exits $want ($(head -c 100 "$WORK/$name.err"))"
    wait_for_match "${!lvar}" '^conn ' 10
    no_plaintext "curl vs $mode" "${!lvar}" 1
    stop_server "$name"
done

# ==== 4. the default handshake timeout is 10 s (one slow case) ===============================
start_evil slow silent --marker tlsshim-slow-marker --max-conns 1 --hold 30
policy slow "$slow_port"        # no handshake-timeout: the default
run_client slow blocking tlsshim-slow-marker
diag "slow (default timeout): $result [outside: ${elapsed}s]"
like "$result" '^result=error stage=connect errno=(ECONNREFUSED|ETIMEDOUT) ' \
    "default timeout: blocking client gets an error at connect"
between "$elapsed" 9 15
ok $? "default timeout: the client failed after ${elapsed}s (expected 9-15 s)"
log_names slow 'timed out|did not complete the handshake within 10000 ms'
wait_for_match "$slow_log" '^conn ' 10
no_plaintext slow "$slow_log" 1

done_testing
