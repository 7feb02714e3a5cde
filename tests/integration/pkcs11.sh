#!/bin/bash
# pkcs11.sh -- client certificate and key from a PKCS#11 token (SoftHSM2):
# "cert = pkcs11:..." / "key = pkcs11:...?pin-value=...".  A token is made in
# $WORK (SOFTHSM2_CONF, in the client's environment: the library runs inside
# the client process) holding client-key.pem (a private object) and
# client.pem.  Proves, against tserver --require-client-cert:
#   * cert and key from the token: the server logs client_cert
#     CN=tlsshim-client and gets the request;
#   * key from the token, cert from a file: the same;
#   * the PIN from a file (pin-source=): the same;
#   * a wrong PIN, or no PIN: the client fails, the server sees no connection
#     at all, and tlsshim's log says the PIN was wrong (and never shows it).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl softhsm2-util p11tool
need_tlsshim

# ---- the token -----------------------------------------------------------------------------
mkdir -p "$WORK/tokens"
cat >"$WORK/softhsm2.conf" <<EOF
directories.tokendir = $WORK/tokens
objectstore.backend = file
log.level = ERROR
EOF
export SOFTHSM2_CONF=$WORK/softhsm2.conf
softhsm2-util --init-token --free --label tlsshim --pin 1234 --so-pin 5678 >"$WORK/p11.out" 2>&1 ||
    skip_all "softhsm2-util cannot make a token: $(tail -n 1 "$WORK/p11.out")"
# p11tool finds SoftHSM through p11-kit's module list
p11tool --list-tokens 2>/dev/null | grep -q 'token=tlsshim' ||
    skip_all "the SoftHSM token is not visible through p11-kit (module not registered?)"
GNUTLS_PIN=1234 GNUTLS_SO_PIN=5678 p11tool --login --write --load-privkey "$CERTS/client-key.pem" \
    --label client --mark-private "pkcs11:token=tlsshim" >>"$WORK/p11.out" 2>&1 ||
    bail_out "importing the key failed: $(tail -n 3 "$WORK/p11.out")"
GNUTLS_PIN=1234 p11tool --login --write --load-certificate "$CERTS/client.pem" --label client \
    "pkcs11:token=tlsshim" >>"$WORK/p11.out" 2>&1 ||
    bail_out "importing the certificate failed: $(tail -n 3 "$WORK/p11.out")"
objs=$(GNUTLS_PIN=1234 p11tool --login --list-all "pkcs11:token=tlsshim" 2>/dev/null)
like "$objs" 'object=client;type=private' "setup: the token holds the private key"
like "$objs" 'object=client;type=cert' "setup: the token holds the certificate"

CERT_URI='pkcs11:token=tlsshim;object=client;type=cert'
KEY_URI='pkcs11:token=tlsshim;object=client;type=private'

start_tserver srv --require-client-cert --client-ca "$CERTS/ca.pem"

# every policy: rule [p11] for localhost:18443
POLICY_RULE=p11 POLICY_MATCH=localhost:18443

# good NAME CERT KEY: the connection works and the server saw the client cert
good() {
    local name=$1 before body st
    before=$(tserver_conns "$srv_log")
    policy "$name" "$srv_port" "cert = $2" "key = $3"
    check "$name: tlsshim check accepts the policy" "$TLSSHIM" check -p "$WORK/$name.policy"
    body=$(tlsshim_run "$WORK/$name.policy" "${CURL[@]}" "http://localhost:18443/$name" 2>"$WORK/$name.err")
    st=$?
    ok $st "$name: curl exits 0"
    [ $st -eq 0 ] || diag "curl: $(cat "$WORK/$name.err")" "tlsshim: $(cat "$WORK/$name.tlsshim.log")"
    check "$name: server logged the connection" wait_for_lines "$srv_log" $((before + 1))
    local n=$((before + 1))
    is "$(tserver_field "$srv_log" $n status) $(tserver_field "$srv_log" $n version)" "ok TLS1.3" \
        "$name: server: status=ok TLS1.3"
    like "$(tserver_field "$srv_log" $n client_cert)" 'CN=tlsshim-client' "$name: server: client_cert CN=tlsshim-client"
    is "$(tserver_field "$srv_log" $n first_line)" "GET /$name HTTP/1.1" "$name: server: got the request"
    like "$body" 'hello from tserver' "$name: curl got the body"
}

# ==== 1. cert and key on the token ==========================================================
good token "$CERT_URI" "$KEY_URI?pin-value=1234"

# tlsshim check prints the policy but not the PIN (unless asked to)
out=$("$TLSSHIM" check -p "$WORK/token.policy" 2>&1)
like "$out" 'key = pkcs11:.*pin-value=\(hidden\)' "tlsshim check: the key URI is shown with pin-value=(hidden)"
is "$(printf '%s\n' "$out" | grep -c 1234)" 0 "tlsshim check: the PIN itself appears nowhere"
like "$("$TLSSHIM" check --show-secrets -p "$WORK/token.policy" 2>&1)" 'pin-value=1234' \
    "tlsshim check --show-secrets: the PIN is printed"

# ==== 2. key on the token, certificate from a file ============================================
good keyonly "$CERTS/client.pem" "$KEY_URI?pin-value=1234"

# ==== 3. the PIN from a file ===================================================================
(umask 077 && echo 1234 >"$WORK/pin.txt")
good pinfile "$CERT_URI" "$KEY_URI?pin-source=$WORK/pin.txt"

# ==== 4. a wrong PIN, no PIN =====================================================================
for v in wrongpin nopin; do
    if [ $v = wrongpin ]; then key="$KEY_URI?pin-value=9876"; else key=$KEY_URI; fi
    before=$(tserver_conns "$srv_log")
    policy "$v" "$srv_port" "cert = $CERT_URI" "key = $key"
    out=$(tlsshim_run "$WORK/$v.policy" "${CURL[@]}" -o /dev/null "http://localhost:18443/$v" 2>&1 </dev/null)
    st=$?
    [ $st -ne 0 ]
    ok $? "$v: curl fails (exit $st)"
    sleep 0.3   # tserver writes its line when a connection ends
    is "$(tserver_conns "$srv_log")" "$before" "$v: server: no connection reached it"
    check "$v: tlsshim log: cannot load the key, PIN error" \
        grep -Eq 'error: rule \[p11\] .*cannot load client certificate .*PIN' "$WORK/$v.tlsshim.log"
    check_fail "$v: tlsshim log never shows the PIN" grep -q 9876 "$WORK/$v.tlsshim.log"
    diag "$v: $(cat "$WORK/$v.tlsshim.log")"
done

done_testing
