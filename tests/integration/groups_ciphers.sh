#!/bin/bash
# groups_ciphers.sh -- "groups = ..." and "ciphers = ..." choose the
# key-exchange groups and TLS 1.3 cipher suites tlsshim offers, in order.
# Proves, from the server side:
#   * tserver logs the negotiated cipher and group (it takes the client's
#     order): ciphers = CHACHA20-POLY1305 -> cipher=CHACHA20-POLY1305,
#     AES-128-GCM -> AES-128-GCM, two of them -> the first; groups = X25519
#     -> group=X25519, SECP384R1, SECP521R1,X25519 -> SECP521R1; and without
#     either key the defaults (AES-256-GCM; X25519, which tlsshim puts
#     before GnuTLS 3.7's first choice, SECP256R1);
#   * a server that supports only the 2nd group listed: it asks for it
#     (HelloRetryRequest) and the connection uses it; a server supporting
#     none of the groups, or none of the ciphers: the handshake fails, the
#     server gets no application bytes, tlsshim's log says why;
#   * openssl s_server prints exactly the offered lists ("Supported groups:",
#     "Shared ciphers:") in the policy's order;
#   * tlsshim's info line has cipher= and group=;
#   * bad names, duplicates, empty entries: "tlsshim check" fails with
#     FILE:LINE and the reason.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl
need_tlsshim
# Every rule has "resume = off": every connection a full handshake with a key exchange.

start_tserver srv
n=0
# expect LABEL CIPHER GROUP POLICY-LINES...: one request through tserver
expect() {
    local label=$1 cipher=$2 group=$3
    shift 3
    n=$((n + 1))
    policy "r$n" "$srv_port" "resume = off" "$@"
    tlsshim_run "$WORK/r$n.policy" "${CURL[@]}" -o /dev/null "http://localhost:18080/r$n"
    ok $? "$label: curl exits 0"
    check "$label: server logged it" wait_for_lines "$srv_log" $n
    is "$(tserver_field "$srv_log" $n first_line)" "GET /r$n HTTP/1.1" "$label: server got the request"
    is "$(tserver_field "$srv_log" $n cipher) $(tserver_field "$srv_log" $n group)" "$cipher $group" \
        "$label: server: cipher=$cipher group=$group"
    like "$(cat "$WORK/r$n.tlsshim.log")" "info: rule \[r$n\] .* cipher=$cipher group=$group " \
        "$label: tlsshim log: cipher=$cipher group=$group"
}

# ==== 1. ciphers ==========================================================================
expect "defaults" AES-256-GCM X25519
expect "ciphers = CHACHA20-POLY1305" CHACHA20-POLY1305 X25519 "ciphers = CHACHA20-POLY1305"
expect "ciphers = AES-128-GCM" AES-128-GCM X25519 "ciphers = AES-128-GCM"
expect "ciphers = AES-128-GCM,CHACHA20-POLY1305" AES-128-GCM X25519 "ciphers = AES-128-GCM,CHACHA20-POLY1305"
expect "ciphers = CHACHA20-POLY1305,AES-128-GCM" CHACHA20-POLY1305 X25519 "ciphers = CHACHA20-POLY1305,AES-128-GCM"
expect "ciphers, lower case" AES-128-GCM X25519 "ciphers = aes-128-gcm"

# ==== 2. groups ============================================================================
expect "groups = X25519" AES-256-GCM X25519 "groups = X25519"
expect "groups = SECP384R1" AES-256-GCM SECP384R1 "groups = SECP384R1"
expect "groups = SECP521R1,X25519" AES-256-GCM SECP521R1 "groups = SECP521R1,X25519"
expect "groups = X25519,SECP256R1" AES-256-GCM X25519 "groups = X25519,SECP256R1"
expect "groups = SECP256R1,X25519" AES-256-GCM SECP256R1 "groups = SECP256R1,X25519"
expect "groups = FFDHE2048" AES-256-GCM FFDHE2048 "groups = FFDHE2048"
expect "both keys" CHACHA20-POLY1305 X25519 "groups = X25519" "ciphers = CHACHA20-POLY1305"

# ==== 3. the server supports only some, or none ==============================================
start_tserver p384 --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-SECP384R1'
policy hrr "$p384_port" "resume = off" "groups = X25519,SECP384R1"
tlsshim_run "$WORK/hrr.policy" "${CURL[@]}" -o /dev/null http://localhost:18080/hrr
ok $? "server has only the 2nd group: curl exits 0"
check "server has only the 2nd group: logged" wait_for_lines "$p384_log" 1
is "$(tserver_field "$p384_log" 1 group) $(tserver_field "$p384_log" 1 first_line)" "SECP384R1 GET /hrr HTTP/1.1" \
    "server has only the 2nd group: server: group=SECP384R1, request arrived"

# The default list sends one key share (X25519): a server with P-256 only
# asks for it (HelloRetryRequest) and the handshake goes on.
start_tserver p256 --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-SECP256R1'
policy hrr256 "$p256_port" "resume = off"
tlsshim_run "$WORK/hrr256.policy" "${CURL[@]}" -o /dev/null http://localhost:18080/hrr256
ok $? "default groups, server has P-256 only: curl exits 0"
check "default groups, server has P-256 only: logged" wait_for_lines "$p256_log" 1
is "$(tserver_field "$p256_log" 1 group) $(tserver_field "$p256_log" 1 version) $(tserver_field "$p256_log" 1 first_line)" \
    "SECP256R1 TLS1.3 GET /hrr256 HTTP/1.1" \
    "default groups, server has P-256 only: server: group=SECP256R1 over TLS1.3, request arrived"

# refused LABEL LOG-REGEX SERVER-NAME POLICY-LINES...: a server that cannot agree
refused() {
    local label=$1 re=$2 sname=$3 out st
    shift 3
    local pvar=${sname}_port lvar=${sname}_log
    local before
    before=$(tserver_conns "${!lvar}")
    n=$((n + 1))
    policy "r$n" "${!pvar}" "resume = off" "$@"
    out=$(tlsshim_run "$WORK/r$n.policy" "${CURL[@]}" -o /dev/null "http://localhost:18080/r$n" 2>&1)
    st=$?
    [ $st -ne 0 ]
    ok $? "$label: curl fails (exit $st)"
    check "$label: server logged the attempt" wait_for_lines "${!lvar}" $((before + 1))
    is "$(tserver_field "${!lvar}" last status) $(tserver_field "${!lvar}" last bytes_in)" "handshake-failed 0" \
        "$label: server: handshake-failed, bytes_in=0"
    check "$label: tlsshim log names the reason ($re)" \
        grep -Eiq "error: rule \[r$n\] .*($re)" "$WORK/r$n.tlsshim.log"
    diag "$label: $(cat "$WORK/r$n.tlsshim.log")"
}
refused "no common group" 'group|key share|handshake failed' p384 "groups = X25519,SECP256R1"
start_tserver aes256 --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-256-GCM'
refused "no common cipher" 'cipher|handshake failed' aes256 "ciphers = CHACHA20-POLY1305,AES-128-GCM"

# ==== 4. openssl s_server: the offered lists, in order =========================================
if command -v "${OPENSSL:-openssl}" >/dev/null 2>&1; then
    start_openssl_server oss
    policy oss "$oss_port" "resume = off" "groups = X25519,SECP384R1,SECP256R1" "ciphers = CHACHA20-POLY1305,AES-128-GCM"
    tlsshim_run "$WORK/oss.policy" "$PYTHON" "$CLIENTS/send_lines.py" localhost 18080 1 groups-probe 0.3 >/dev/null
    ok $? "s_server: client exits 0"
    wait_for_match "$oss_log" '^groups-probe 1' 5
    is "$(sed -n 's/^Supported groups: //p' "$oss_log")" "x25519:secp384r1:secp256r1" \
        "s_server: Supported groups = the policy's list, in order"
    is "$(sed -n 's/^Shared ciphers://p' "$oss_log")" "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256" \
        "s_server: Shared ciphers = the policy's list, in order"
    is "$(sed -n 's/^CIPHER is //p' "$oss_log")" TLS_CHACHA20_POLY1305_SHA256 "s_server: CIPHER is CHACHA20"
    check "s_server: received the line" grep -q '^groups-probe 1$' "$oss_log"
else
    for i in 1 2 3 4 5; do skip "s_server check $i" "openssl not found"; done
fi

# ==== 5. bad values: tlsshim check names FILE:LINE ================================================
# bad VALUE-LINE REGEX: the rule's 6th line is VALUE-LINE
bad() {
    local line=$1 re=$2 out st
    printf '# groups/ciphers test\n[bad]\nmatch = localhost:18080\nport = 443\nca = %s\n%s\n' \
        "$CERTS/ca.pem" "$line" | write_policy "$WORK/bad.policy"
    out=$("$TLSSHIM" check -p "$WORK/bad.policy" 2>&1)
    st=$?
    [ $st -ne 0 ]
    ok $? "check rejects '$line' (exit $st)"
    like "$out" "^$WORK/bad\.policy:6: .*$re" "check: '$line': FILE:6 and the reason"
}
bad "groups = X25519,BOGUS" 'unknown group "BOGUS"'
bad "groups = GROUP-X25519" 'unknown group "GROUP-X25519"'
bad "groups = X25519,X25519" 'X25519 listed twice'
bad "groups =" 'empty value'
bad "ciphers = AES-128-CBC" 'unknown cipher "AES-128-CBC"'
bad "ciphers = TLS_AES_128_GCM_SHA256" 'unknown cipher'
bad "ciphers = AES-128-GCM,,CHACHA20-POLY1305" 'empty entry'
# the control: a good line passes
printf '[ok]\nmatch = localhost:18080\nport = 443\nca = %s\ngroups = X25519, SECP256R1\nciphers = AES-128-GCM\n' \
    "$CERTS/ca.pem" | write_policy "$WORK/good.policy"
out=$("$TLSSHIM" check -p "$WORK/good.policy" 2>&1)
ok $? "check accepts good groups/ciphers"
like "$out" '^groups = X25519,SECP256R1' "check prints the groups as understood"

done_testing
