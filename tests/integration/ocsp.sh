#!/bin/bash
# ocsp.sh -- stapled OCSP responses ("ocsp = off|request|require") against
# servers that staple a good, a revoked, a mismatched or a garbage response,
# or none; and a must-staple certificate (TLS feature status_request).
# Proves, from the server side (tserver logs status_request=1 when the
# ClientHello asked for a staple, ocsp_stapled=1 when it sent one, and
# bytes_in / first_line: whether the request got through):
#   request (the default): good and none accepted; revoked, mismatched,
#     garbage refused (client fails, bytes_in=0, tlsshim's log says why);
#   require: good accepted, none refused ("OCSP" in the log), revoked refused;
#   off: stapled responses are ignored (a revoked one is accepted; GnuTLS
#     3.7 has no way not to ask for one);
#   must-staple certificate: without a staple refused with request, require
#     and off ("must-staple certificates still need one"); with a good staple
#     accepted;
#   openssl s_server -status_file: good accepted, revoked refused.
# The OCSP responses are made here with "openssl ocsp", signed by the test CA.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl certtool openssl
need_tlsshim

# ---- certificates and OCSP responses ------------------------------------------------------
O=$WORK/ocsp
mkdir -p "$O"
# must-staple: CN=localhost, the server's key, TLS feature status_request (5)
cat >"$O/ms.tmpl" <<EOF
organization = "tlsshim tests"
cn = "localhost"
dns_name = "localhost"
ip_address = "127.0.0.1"
tls_www_server
signing_key
encryption_key
tls_feature = 5
serial = 0x4d53
expiration_days = 30
EOF
certtool --generate-certificate --load-privkey "$CERTS/server-key.pem" \
    --load-ca-certificate "$CERTS/ca.pem" --load-ca-privkey "$CERTS/ca-key.pem" \
    --template "$O/ms.tmpl" --outfile "$O/ms.pem" >"$O/certtool.out" 2>&1 ||
    bail_out "certtool failed: $(cat "$O/certtool.out")"

# respond NAME CERT STATUS(V|R): $O/NAME.der, an OCSP response for CERT,
# signed by the CA, valid for a day
respond() {
    local name=$1 cert=$2 st=$3 serial exp rev=""
    serial=$(openssl x509 -in "$cert" -noout -serial | cut -d= -f2)
    exp=$(date -u -d '+1 year' +%y%m%d%H%M%SZ)
    [ "$st" = R ] && rev=$(date -u -d '-1 day' +%y%m%d%H%M%SZ)
    printf '%s\t%s\t%s\t%s\tunknown\t/CN=localhost\n' "$st" "$exp" "$rev" "$serial" >"$O/$name.idx"
    openssl ocsp -issuer "$CERTS/ca.pem" -cert "$cert" -no_nonce -reqout "$O/$name.req" >/dev/null 2>&1 &&
        openssl ocsp -index "$O/$name.idx" -rsigner "$CERTS/ca.pem" -rkey "$CERTS/ca-key.pem" \
            -CA "$CERTS/ca.pem" -reqin "$O/$name.req" -respout "$O/$name.der" -ndays 1 >"$O/$name.out" 2>&1 ||
        bail_out "openssl ocsp failed for $name: $(cat "$O/$name.out" 2>/dev/null)"
}
respond good "$CERTS/server.pem" V
respond revoked "$CERTS/server.pem" R
respond other "$CERTS/wrongname.pem" V     # good, but for another certificate
respond msgood "$O/ms.pem" V
respond msrevoked "$O/ms.pem" R
head -c 300 /dev/urandom >"$O/garbage.der"
# self-check of the material (openssl's view)
openssl ocsp -respin "$O/revoked.der" -CAfile "$CERTS/ca.pem" -issuer "$CERTS/ca.pem" \
    -cert "$CERTS/server.pem" 2>/dev/null | grep -q ': revoked$' || bail_out "revoked.der is not a revoked response"
openssl x509 -in "$O/ms.pem" -noout -text | grep -q 'status_request' || bail_out "ms.pem lacks the TLS feature"

# ---- the runner ---------------------------------------------------------------------------------
n=0
# try LABEL OCSP EXPECT(ok|refused) LOG-REGEX STAPLED(0|1) TSERVER-ARGS...
#   a tserver with TSERVER-ARGS, a rule with "ocsp = OCSP", curl through
#   tlsshim; then the checks.  LOG-REGEX: the reason in tlsshim's error line
#   (refused only).  STAPLED: the server's ocsp_stapled ("" = not checked).
try() {
    local label=$1 mode=$2 expect=$3 re=$4 stapled=$5 out st log
    shift 5
    n=$((n + 1))
    local name=s$n
    start_tserver "$name" "$@"
    local pvar=${name}_port
    log=$WORK/$name.log
    {
        echo "log = file:$WORK/$name.tlsshim.log"
        echo "log-level = info"
        echo "[ocsp$n]"
        echo "match = localhost:18080"
        echo "port = ${!pvar}"
        echo "ca = $CERTS/ca.pem"
        [ -n "$mode" ] && echo "ocsp = $mode"
    } | write_policy "$WORK/$name.policy"
    out=$(tlsshim_run "$WORK/$name.policy" "${CURL[@]}" -o /dev/null http://localhost:18080/ocsp-$n 2>&1)
    st=$?
    wait_for_lines "$log" 1
    local f_st f_in f_line f_sr f_os
    f_st=$(tserver_field "$log" 1 status)
    f_in=$(tserver_field "$log" 1 bytes_in)
    f_line=$(tserver_field "$log" 1 first_line)
    f_os=$(tserver_field "$log" 1 ocsp_stapled)
    f_sr=$(tserver_field "$log" 1 status_request)
    if [ "$expect" = ok ]; then
        ok $st "$label: curl exits 0"
        [ $st -eq 0 ] || diag "curl: $out" "tlsshim: $(cat "$WORK/$name.tlsshim.log")"
        is "$f_st $f_line" "ok GET /ocsp-$n HTTP/1.1" "$label: server: handshake ok, got the request"
    else
        [ $st -ne 0 ]
        ok $? "$label: curl fails (exit $st)"
        is "$f_st $f_in $f_line" "handshake-failed 0 -" "$label: server: handshake failed, no application bytes"
        if grep -Eq -- "error: rule \[ocsp$n\] .*TLS handshake failed.*($re)" "$WORK/$name.tlsshim.log"; then
            pass "$label: tlsshim log names the reason ($re)"
        else
            fail "$label: tlsshim log names the reason ($re)"
            diag "log: $(cat "$WORK/$name.tlsshim.log")"
        fi
    fi
    [ "$mode" = off ] || is "$f_sr" 1 "$label: server: the ClientHello asked for a staple (status_request)"
    [ -z "$stapled" ] || is "$f_os" "$stapled" "$label: server: ocsp_stapled=$stapled"
}

CRT=(--cert "$CERTS/server.pem")
MS=(--cert "$O/ms.pem")
RAW=--ocsp-raw   # staple the file unchecked (GnuTLS refuses to load a revoked one)

# ==== 1. ocsp = request (and the default) ==========================================================
try "request, good staple" request ok "" 1 "${CRT[@]}" --ocsp-response "$O/good.der"
try "default, good staple" "" ok "" 1 "${CRT[@]}" --ocsp-response "$O/good.der"
try "request, no staple" request ok "" 0 "${CRT[@]}"
try "request, revoked staple" request refused 'revoked' 1 "${CRT[@]}" --ocsp-response "$O/revoked.der" $RAW
try "default, revoked staple" "" refused 'revoked' 1 "${CRT[@]}" --ocsp-response "$O/revoked.der" $RAW
try "request, staple for another certificate" request refused 'OCSP' 1 "${CRT[@]}" --ocsp-response "$O/other.der" $RAW
try "request, garbage staple" request refused 'OCSP' 1 "${CRT[@]}" --ocsp-response "$O/garbage.der" $RAW

# ==== 2. ocsp = require ====================================================================================
try "require, good staple" require ok "" 1 "${CRT[@]}" --ocsp-response "$O/good.der"
try "require, no staple" require refused 'OCSP' 0 "${CRT[@]}"
try "require, revoked staple" require refused 'revoked' 1 "${CRT[@]}" --ocsp-response "$O/revoked.der" $RAW

# ==== 3. ocsp = off ==========================================================================================
try "off, revoked staple" off ok "" "" "${CRT[@]}" --ocsp-response "$O/revoked.der" $RAW
is "$(tserver_field "$WORK/s$n.log" 1 ocsp_stapled)" 1 \
    "off: server: it did staple the revoked response, which tlsshim ignored"
try "off, no staple" off ok "" "" "${CRT[@]}"

# ==== 4. must-staple certificate ===============================================================================
try "must-staple, request, no staple" request refused 'OCSP' 0 "${MS[@]}"
try "must-staple, require, no staple" require refused 'OCSP' 0 "${MS[@]}"
try "must-staple, off, no staple" off refused 'OCSP' 0 "${MS[@]}"
try "must-staple, request, good staple" request ok "" 1 "${MS[@]}" --ocsp-response "$O/msgood.der"
try "must-staple, off, revoked staple" off refused 'revoked' 1 "${MS[@]}" --ocsp-response "$O/msrevoked.der" $RAW

# ==== 5. openssl s_server -status_file ============================================================================
for kind in good revoked; do
    name=oss_$kind
    start_openssl_server "$name" -status_file "$O/$kind.der" -status_verbose
    pvar=${name}_port lvar=${name}_log
    log=${!lvar}
    {
        echo "log = file:$WORK/$name.tlsshim.log"
        echo "log-level = info"
        echo "[$name]"
        echo "match = localhost:18080"
        echo "port = ${!pvar}"
        echo "ca = $CERTS/ca.pem"
    } | write_policy "$WORK/$name.policy"
    tlsshim_run "$WORK/$name.policy" "$PYTHON" "$CLIENTS/send_lines.py" localhost 18080 1 "ocsp-probe-$kind" 0.3 \
        >/dev/null 2>&1
    st=$?
    wait_for_match "$log" "ocsp-probe-$kind|ERROR|error|alert" 5
    check "s_server $kind: s_server sent the staple (cert_status: ocsp response sent)" \
        grep -q '^cert_status: ocsp response sent' "$log"
    like "$(grep -A15 '^cert_status: ocsp response sent' "$log" | grep 'Cert Status')" "Cert Status: $kind" \
        "s_server $kind: the staple says $kind"
    if [ $kind = good ]; then
        ok $st "s_server good: client exits 0"
        check "s_server good: s_server received the line" grep -q "^ocsp-probe-good 1\$" "$log"
    else
        [ $st -ne 0 ]
        ok $? "s_server revoked: client fails (exit $st)"
        check_fail "s_server revoked: s_server received nothing" grep -q "ocsp-probe-revoked" "$log"
        check "s_server revoked: tlsshim log says revoked" grep -q 'error: .*revoked' "$WORK/$name.tlsshim.log"
    fi
done

done_testing
