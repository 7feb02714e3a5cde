#!/bin/bash
# server_engine.sh -- the TLS engine's server role (tls_new_server) against
# real clients (openssl s_client, gnutls-cli, python ssl), through
# tests/stress/tls_server_probe, which drives the engine's ops table the way
# the library's accept path does (one blocking handshake, then an echo):
#   TLS 1.3 with the rule's certificate, SNI seen; ALPN by the server's order;
#   mTLS: a good client certificate (identity = its URI SAN, else DNS, else
#     CN), none (certificate_required), another CA (unknown_ca), not in
#     allow-client (access_denied), allow-client by uri:, dns:, cn:;
#   alpn-required: a client offering another protocol or no ALPN at all gets
#     no_application_protocol;
#   a TLS 1.2 client gets protocol_version;
#   tickets: openssl resumes ("Reused"), mTLS identity kept on resumption;
#     session-tickets off: no resumption;
#   ocsp-staple: stapled on request (openssl -status), re-read when the file
#     changes.
# Each refusal is checked from both ends: the alert the client printed and
# the reason the engine gave (naming the certificate's subject and SANs).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd openssl gnutls-cli
PROBE=$top_builddir/tests/stress/tls_server_probe
export TLSSHIM_TLS_MODULE=$top_builddir/src/.libs/libtlsshim-tls.so
[ -x "$PROBE" ] || skip_all "tls_server_probe not built"

# probe NAME [probe options]: start a probe serving one connection (more
# with --count), certificate server.pem.
probe() {
    local name=$1
    shift
    start_server "$name" "$PROBE" "$WORK/$name.port" "$CERTS/server.pem" "$CERTS/server-key.pem" "$@"
}

# outcome NAME: wait for probe NAME to end; print what it said.
outcome() {
    local var="$1_pid"
    wait "${!var}" 2>/dev/null
    cat "$WORK/$1.stderr"
}

# sclient NAME [s_client options]: openssl s_client to probe NAME, sending
# "ping"; its output in $WORK/NAME.client.
sclient() {
    local name=$1 var="$1_port"
    shift
    echo ping | timeout 20 openssl s_client -connect "127.0.0.1:${!var}" -servername tls.test \
        -CAfile "$CERTS/ca.pem" -verify_return_error -ign_eof "$@" >"$WORK/$name.client" 2>&1
}

# expect NAME DESC CLIENT_PATTERN PROBE_PATTERN: the client's output and the
# probe's both match.
expect() {
    local name=$1 desc=$2 cpat=$3 ppat=$4 out
    out=$(outcome "$name")
    if grep -Eq -- "$cpat" "$WORK/$name.client" && grep -Eq -- "$ppat" <<<"$out"; then
        pass "$desc"
    else
        fail "$desc"
        diag "client:" "$(cat "$WORK/$name.client")" "probe:" "$out"
    fi
}

# ---- TLS 1.3, SNI, ALPN by the server's order ----------------------------------
probe basic --alpn h2,http/1.1
sclient basic -alpn http/1.1,h2
expect basic "TLS 1.3, verified, echo, ALPN by the server's order, SNI" \
    'Verification: OK' '^ok version=TLS1.3 .*alpn=h2 resumed=0 sni=tls.test client_id= '
grep -q '^[[:space:]]*ping$' "$WORK/basic.client" && pass "the probe echoed the client's bytes" || fail "no echo"

probe gnutls
echo ping | timeout 20 gnutls-cli --x509cafile="$CERTS/ca.pem" -p "$gnutls_port" localhost >"$WORK/gnutls.client" 2>&1
expect gnutls "gnutls-cli: TLS 1.3, verified, no SNI needed" 'TLS1.3' '^ok version=TLS1.3 .*sni=localhost '

# ---- mTLS ------------------------------------------------------------------------
probe mtls_ok --client-ca "$CERTS/ca.pem"
sclient mtls_ok -cert "$CERTS/spiffe-client.pem" -key "$CERTS/spiffe-client-key.pem"
expect mtls_ok "mTLS: a client certificate from client-ca, identity = its URI SAN" \
    '^[[:space:]]*ping$' '^ok .*client_id=spiffe://prod.example/ns/billing/api subject=CN=billing-api'

probe mtls_cn --client-ca "$CERTS/ca.pem" --allow cn:tlsshim-client
sclient mtls_cn -cert "$CERTS/client.pem" -key "$CERTS/client-key.pem"
expect mtls_cn "mTLS: allow-client cn:, identity = CN=... without SANs" '^[[:space:]]*ping$' '^ok .*client_id=CN=tlsshim-client '

probe mtls_dns --client-ca "$CERTS/ca.pem" --allow uri:spiffe://other/x --allow 'dns:*.billing.svc.example'
sclient mtls_dns -cert "$CERTS/spiffe-client.pem" -key "$CERTS/spiffe-client-key.pem"
expect mtls_dns "mTLS: allow-client dns: wildcard" '^[[:space:]]*ping$' '^ok .*client_id=spiffe://'

probe mtls_uri --client-ca "$CERTS/ca.pem" --allow 'uri:spiffe://prod.example/ns/billing/*'
sclient mtls_uri -cert "$CERTS/spiffe-client.pem" -key "$CERTS/spiffe-client-key.pem"
expect mtls_uri "mTLS: allow-client uri: with '*'" '^[[:space:]]*ping$' '^ok '

probe mtls_none --client-ca "$CERTS/ca.pem"
sclient mtls_none
expect mtls_none "mTLS: no client certificate -> certificate_required" \
    'alert certificate required' '^refused: client 127.0.0.1 sent no certificate'

probe mtls_ca --client-ca "$CERTS/ca.pem"
sclient mtls_ca -cert "$CERTS/untrusted-client.pem" -key "$CERTS/untrusted-client-key.pem"
expect mtls_ca "mTLS: a certificate from another CA -> unknown_ca, reason names it" \
    'alert unknown ca' '^refused: client certificate rejected \(subject "CN=tlsshim-client,O=tlsshim tests"; SANs none\): .*issuer is unknown'

probe mtls_deny --client-ca "$CERTS/ca.pem" --allow 'uri:spiffe://prod.example/ns/billing/*'
sclient mtls_deny -cert "$CERTS/payroll-client.pem" -key "$CERTS/payroll-client-key.pem"
expect mtls_deny "mTLS: not in allow-client -> access_denied, reason names subject and SANs" \
    'alert access denied' '^refused: client certificate not allowed by allow-client \(subject "CN=payroll-api,O=tlsshim tests"; SANs URI:spiffe://prod.example/ns/payroll/api\)'

probe mtls_py --client-ca "$CERTS/ca.pem"
"$PYTHON" - "$mtls_py_port" "$CERTS" >"$WORK/mtls_py.client" 2>&1 <<'PY'
import socket, ssl, sys
port, certs = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=certs + "/ca.pem")
ctx.load_cert_chain(certs + "/spiffe-client.pem", certs + "/spiffe-client-key.pem")
with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
    s.sendall(b"ping\n")
    print("python", s.version(), s.recv(100).decode().strip())
PY
expect mtls_py "python ssl with a client certificate" '^python TLSv1.3 ping' '^ok .*client_id=spiffe://'

# ---- ALPN required ------------------------------------------------------------------
probe alpn_other --alpn h2 --alpn-required
sclient alpn_other -alpn http/1.1
expect alpn_other "alpn-required: a client offering another protocol -> no_application_protocol" \
    'alert no application protocol' '^refused: client 127.0.0.1 offered ALPN http/1.1, alpn-required accepts only h2'

probe alpn_none --alpn h2 --alpn-required
sclient alpn_none
expect alpn_none "alpn-required: a client offering no ALPN -> no_application_protocol" \
    'alert no application protocol' '^refused: client 127.0.0.1 offered no ALPN, alpn-required accepts only h2'

probe alpn_ok --alpn h2 --alpn-required
sclient alpn_ok -alpn foo,h2
expect alpn_ok "alpn-required: a client offering it is served" 'ALPN protocol: h2' '^ok .*alpn=h2 '

probe alpn_opt --alpn h2
sclient alpn_opt
expect alpn_opt "alpn without alpn-required: a client offering none is served" '^[[:space:]]*ping$' '^ok .*alpn=- '

# ---- TLS 1.2 -------------------------------------------------------------------------
probe tls12
sclient tls12 -tls1_2
expect tls12 "a TLS 1.2 client -> protocol_version" 'alert protocol version' '^refused: client 127.0.0.1 does not offer TLS 1.3'

# ---- tickets -------------------------------------------------------------------------
probe resume --count 2 --client-ca "$CERTS/ca.pem"
sclient resume -cert "$CERTS/spiffe-client.pem" -key "$CERTS/spiffe-client-key.pem" -sess_out "$WORK/sess"
cp "$WORK/resume.client" "$WORK/resume.first"
sclient resume -cert "$CERTS/spiffe-client.pem" -key "$CERTS/spiffe-client-key.pem" -sess_in "$WORK/sess"
expect resume "tickets: openssl resumes (Reused), the identity kept" \
    '^Reused, TLSv1.3' 'resumed=1 sni=tls.test client_id=spiffe://prod.example/ns/billing/api subject=CN=billing-api'

probe noresume --no-tickets
sclient noresume -sess_out "$WORK/sess2"
expect noresume "session-tickets off: served" '^[[:space:]]*ping$' '^ok .*resumed=0'
[ ! -e "$WORK/sess2" ] && pass "session-tickets off: no ticket (openssl had no session to save)" \
    || fail "session-tickets off: a ticket came"

# One master key in two processes (pre-fork workers): a ticket from one
# resumes on the other, under the same rule only.  A ticket a rule without
# client-ca issued must not open a rule with it (resumption skips the client
# certificate): that client is asked for a certificate and refused.
KEY=$(printf '%0128x' 0 | tr 0 a)
probe worker1 --key "$KEY" --rule web
sclient worker1 -sess_out "$WORK/sess3"
outcome worker1 >/dev/null
probe worker2 --key "$KEY" --rule web
sclient worker2 -sess_in "$WORK/sess3"
expect worker2 "one master key, two processes, same rule: resumed" '^Reused, TLSv1.3' '^ok .*resumed=1'
probe otherrule --key "$KEY" --rule admin --client-ca "$CERTS/ca.pem"
sclient otherrule -sess_in "$WORK/sess3"
expect otherrule "a ticket from a rule without client-ca does not resume a rule with it" \
    'alert certificate required' '^refused: client 127.0.0.1 sent no certificate'

# No 0-RTT for servers: the tickets allow no early data (max_early_data 0),
# so openssl sends none even when told to, and resumes.
probe early0 --alpn h2 --key "$KEY"
sclient early0 -sess_out "$WORK/sess4" -alpn h2
outcome early0 >/dev/null
if grep -q 'Max Early Data: [1-9]' "$WORK/early0.client"; then
    fail "the ticket allows no early data"
else
    pass "the ticket allows no early data"
fi
probe early1 --alpn h2 --key "$KEY"
printf 'early\n' >"$WORK/early.txt"
sclient early1 -sess_in "$WORK/sess4" -alpn h2 -early_data "$WORK/early.txt"
expect early1 "openssl -early_data: not sent, the session resumed all the same" \
    'Early data was not sent' '^ok .*resumed=1'

# ---- OCSP staple ----------------------------------------------------------------------
cp "$CERTS/server-ocsp.der" "$WORK/staple.der"
probe ocsp --count 2 --ocsp "$WORK/staple.der"
sclient ocsp -status
grep -q 'Cert Status: good' "$WORK/ocsp.client" && pass "ocsp-staple: stapled when asked (good)" \
    || { fail "ocsp-staple: no staple"; diag "$(cat "$WORK/ocsp.client")"; }
# a revoked response for the same certificate, made now: re-read on change
serial=$(openssl x509 -in "$CERTS/server.pem" -noout -serial | sed 's/^serial=//')
printf 'R\t351231235959Z\t250101000000Z\t%s\tunknown\t/CN=localhost\n' "$serial" >"$WORK/index.txt"
openssl ocsp -issuer "$CERTS/ca.pem" -cert "$CERTS/server.pem" -no_nonce -reqout "$WORK/req.der" >/dev/null 2>&1
openssl ocsp -index "$WORK/index.txt" -rsigner "$CERTS/ca.pem" -rkey "$CERTS/ca-key.pem" -CA "$CERTS/ca.pem" \
    -reqin "$WORK/req.der" -respout "$WORK/staple.new" -ndays 30 >/dev/null 2>&1
mv "$WORK/staple.new" "$WORK/staple.der"
sclient ocsp -status
expect ocsp "ocsp-staple: the changed file is stapled (revoked)" 'Cert Status: revoked' '^ok '

# ---- load errors -------------------------------------------------------------------------
"$PROBE" "$WORK/x.port" "$CERTS/server.pem" "$CERTS/client-key.pem" >"$WORK/badkey.out" 2>&1 &
pid=$!
wait_until 5 test -s "$WORK/x.port"
timeout 5 openssl s_client -connect "127.0.0.1:$(cat "$WORK/x.port")" </dev/null >/dev/null 2>&1
wait "$pid"
like "$(cat "$WORK/badkey.out")" "^setup failed: cannot load server certificate $CERTS/server.pem with key $CERTS/client-key.pem: " \
    "a key that does not match: the load error names both files"

done_testing
