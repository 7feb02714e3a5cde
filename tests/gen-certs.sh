#!/bin/sh
# gen-certs.sh DIR -- create the certificates and keys used by the tlsshim
# integration tests.
#
# Uses certtool (gnutls-bin) for keys and certificates, because its template
# files let us set exact validity dates (needed for the expired certificate),
# and openssl only to compute SPKI pins.
#
# Produces in DIR (created if missing, mode 700):
#   ca.pem ca-key.pem                  test CA (ECDSA P-256)
#   server.pem server-key.pem          CN=localhost, SAN localhost, tls.test,
#   server-chain.pem                   127.0.0.1, ::1; chain = server + CA
#   expired.pem expired-key.pem        same SANs, valid 2020-01-01..2021-01-01
#   wrongname.pem wrongname-key.pem    CN/SAN other.example only
#   untrusted-ca.pem untrusted-ca-key.pem
#   untrusted.pem untrusted-key.pem    localhost cert signed by a second CA
#   client.pem client-key.pem          CN=tlsshim-client, TLS WWW client
#   spiffe-client.pem spiffe-client-key.pem  CN=billing-api, URI SAN
#                                      spiffe://prod.example/ns/billing/api,
#                                      DNS SAN api.billing.svc.example
#   payroll-client.pem payroll-client-key.pem  CN=payroll-api, URI SAN
#                                      spiffe://prod.example/ns/payroll/api
#   untrusted-client.pem untrusted-client-key.pem  a client certificate by
#                                      the untrusted CA (a second client CA)
#   server-ocsp.der                    a "good" OCSP response for server.pem
#                                      by the CA (10 years)
#   pin-server.txt                     sha256//BASE64 SPKI pin of server key
#   pin-other.txt                      same for wrongname's key
#
# Prints nothing on success; any failure aborts with a message (set -e).

set -eu

die() { echo "gen-certs.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: gen-certs.sh DIR"
DIR=$1

command -v certtool >/dev/null 2>&1 || die "certtool not found (install gnutls-bin)"
command -v openssl >/dev/null 2>&1 || die "openssl not found"

# Parent directories get the caller's umask; DIR itself and everything in
# it are private (keys) until the chmods at the end.
mkdir -p "$DIR"
chmod 700 "$DIR"
umask 077

# Scratch space for templates; removed on exit whatever happens.
TMPL=$(mktemp -d "${TMPDIR:-/tmp}/gen-certs.XXXXXX")
trap 'rm -rf "$TMPL"' EXIT

# certtool is chatty on stderr/stdout even on success; keep its output and
# show it only if it fails.
run_certtool() {
    if ! certtool "$@" >"$TMPL/certtool.out" 2>&1; then
        cat "$TMPL/certtool.out" >&2
        die "certtool $* failed"
    fi
}

# genkey NAME: make $DIR/NAME-key.pem (ECDSA P-256, PKCS#8 PEM).
genkey() {
    run_certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 \
        --no-text --outfile "$DIR/$1-key.pem"
}

# The date window "now .. now + 10 years" is certtool's default when the
# template gives expiration_days; activation is "now".  Backdate the
# activation by one day so that small clock differences never matter.
NOW_MINUS_1D=$(date -u -d '-1 day' '+%Y-%m-%d %H:%M:%S' 2>/dev/null || true)

valid_now() {
    if [ -n "$NOW_MINUS_1D" ]; then
        echo "activation_date = \"$NOW_MINUS_1D\""
    fi
    echo "expiration_days = 3650"
}

# Subject alternative names of the "localhost" server certificates.
localhost_sans() {
    cat <<'EOF'
dns_name = "localhost"
dns_name = "tls.test"
ip_address = "127.0.0.1"
ip_address = "::1"
EOF
}

server_usage() {
    cat <<'EOF'
tls_www_server
signing_key
encryption_key
EOF
}

# ---- the test CA ------------------------------------------------------------
genkey ca
{
    echo 'cn = "tlsshim test CA"'
    echo 'organization = "tlsshim tests"'
    echo 'serial = 1'
    valid_now
    echo 'ca'
    echo 'cert_signing_key'
    echo 'crl_signing_key'
} >"$TMPL/ca.tmpl"
run_certtool --generate-self-signed --load-privkey "$DIR/ca-key.pem" \
    --template "$TMPL/ca.tmpl" --no-text --outfile "$DIR/ca.pem"

# sign NAME TEMPLATE CA-BASENAME: certificate $DIR/NAME.pem for NAME-key.pem
sign() {
    run_certtool --generate-certificate \
        --load-privkey "$DIR/$1-key.pem" \
        --load-ca-certificate "$DIR/$3.pem" \
        --load-ca-privkey "$DIR/$3-key.pem" \
        --template "$2" --no-text --outfile "$DIR/$1.pem"
}

# ---- server.pem: the good server certificate ---------------------------------
genkey server
{
    echo 'cn = "localhost"'
    echo 'organization = "tlsshim tests"'
    echo 'serial = 2'
    valid_now
    localhost_sans
    server_usage
} >"$TMPL/server.tmpl"
sign server "$TMPL/server.tmpl" ca
cat "$DIR/server.pem" "$DIR/ca.pem" >"$DIR/server-chain.pem"

# ---- expired.pem: right names, by the CA, but expired --------------------------
genkey expired
{
    echo 'cn = "localhost"'
    echo 'organization = "tlsshim tests"'
    echo 'serial = 3'
    echo 'activation_date = "2020-01-01 00:00:00"'
    echo 'expiration_date = "2021-01-01 00:00:00"'
    localhost_sans
    server_usage
} >"$TMPL/expired.tmpl"
sign expired "$TMPL/expired.tmpl" ca

# ---- wrongname.pem: by the CA, valid, but only for other.example ---------------
genkey wrongname
{
    echo 'cn = "other.example"'
    echo 'organization = "tlsshim tests"'
    echo 'serial = 4'
    valid_now
    echo 'dns_name = "other.example"'
    server_usage
} >"$TMPL/wrongname.tmpl"
sign wrongname "$TMPL/wrongname.tmpl" ca

# ---- untrusted-ca.pem + untrusted.pem: a localhost cert from a foreign CA -----
genkey untrusted-ca
{
    echo 'cn = "tlsshim UNTRUSTED test CA"'
    echo 'organization = "tlsshim tests (untrusted)"'
    echo 'serial = 1'
    valid_now
    echo 'ca'
    echo 'cert_signing_key'
    echo 'crl_signing_key'
} >"$TMPL/untrusted-ca.tmpl"
run_certtool --generate-self-signed --load-privkey "$DIR/untrusted-ca-key.pem" \
    --template "$TMPL/untrusted-ca.tmpl" --no-text --outfile "$DIR/untrusted-ca.pem"

genkey untrusted
{
    echo 'cn = "localhost"'
    echo 'organization = "tlsshim tests (untrusted)"'
    echo 'serial = 2'
    valid_now
    localhost_sans
    server_usage
} >"$TMPL/untrusted.tmpl"
sign untrusted "$TMPL/untrusted.tmpl" untrusted-ca

# ---- client.pem: client certificate by the CA -----------------------------------
genkey client
{
    echo 'cn = "tlsshim-client"'
    echo 'organization = "tlsshim tests"'
    echo 'serial = 5'
    valid_now
    echo 'tls_www_client'
    echo 'signing_key'
} >"$TMPL/client.tmpl"
sign client "$TMPL/client.tmpl" ca

# client NAME CA SERIAL CN [EXTRA TEMPLATE LINES...]: a TLS client certificate.
client_cert() {
    name=$1 ca=$2 serial=$3 cn=$4
    shift 4
    genkey "$name"
    {
        echo "cn = \"$cn\""
        echo 'organization = "tlsshim tests"'
        echo "serial = $serial"
        valid_now
        for line in "$@"; do echo "$line"; done
        echo 'tls_www_client'
        echo 'signing_key'
    } >"$TMPL/$name.tmpl"
    sign "$name" "$TMPL/$name.tmpl" "$ca"
}
client_cert spiffe-client ca 6 billing-api 'uri = "spiffe://prod.example/ns/billing/api"' \
    'dns_name = "api.billing.svc.example"'
client_cert payroll-client ca 7 payroll-api 'uri = "spiffe://prod.example/ns/payroll/api"'
client_cert untrusted-client untrusted-ca 3 tlsshim-client

# ---- server-ocsp.der: the CA says server.pem is good ----------------------------
serial_hex=$(openssl x509 -in "$DIR/server.pem" -noout -serial | sed 's/^serial=//')
printf 'V\t351231235959Z\t\t%s\tunknown\t/CN=localhost\n' "$serial_hex" >"$TMPL/index.txt"
openssl ocsp -issuer "$DIR/ca.pem" -cert "$DIR/server.pem" -no_nonce -reqout "$TMPL/req.der" >/dev/null 2>&1 \
    || die "openssl ocsp could not make a request"
openssl ocsp -index "$TMPL/index.txt" -rsigner "$DIR/ca.pem" -rkey "$DIR/ca-key.pem" -CA "$DIR/ca.pem" \
    -reqin "$TMPL/req.der" -respout "$DIR/server-ocsp.der" -ndays 3650 >/dev/null 2>&1 \
    || die "openssl ocsp could not make a response"

# ---- SPKI pins (the format curl's --pinnedpubkey uses) --------------------------
# pin CERT: print sha256//BASE64 of the DER SubjectPublicKeyInfo of CERT.
pin() {
    spki=$TMPL/spki.der
    openssl x509 -in "$1" -pubkey -noout >"$TMPL/pub.pem"
    openssl pkey -pubin -in "$TMPL/pub.pem" -outform der -out "$spki"
    h=$(openssl dgst -sha256 -binary "$spki" | openssl base64 -A)
    [ -n "$h" ] || die "could not compute pin of $1"
    printf 'sha256//%s\n' "$h"
}
pin "$DIR/server.pem" >"$DIR/pin-server.txt"
pin "$DIR/wrongname.pem" >"$DIR/pin-other.txt"

# ---- sanity checks: fail loudly now rather than confuse a test later -------------
openssl verify -CAfile "$DIR/ca.pem" "$DIR/server.pem" >/dev/null 2>&1 \
    || die "server.pem does not verify against ca.pem"
openssl verify -CAfile "$DIR/ca.pem" "$DIR/client.pem" >/dev/null 2>&1 \
    || die "client.pem does not verify against ca.pem"
if openssl verify -CAfile "$DIR/ca.pem" "$DIR/expired.pem" >/dev/null 2>&1; then
    die "expired.pem unexpectedly verifies"
fi
if openssl verify -CAfile "$DIR/ca.pem" "$DIR/untrusted.pem" >/dev/null 2>&1; then
    die "untrusted.pem unexpectedly verifies against ca.pem"
fi

# ---- permissions ---------------------------------------------------------------
chmod 600 "$DIR"/*-key.pem
chmod 644 "$DIR"/ca.pem "$DIR"/server.pem "$DIR"/server-chain.pem \
    "$DIR"/expired.pem "$DIR"/wrongname.pem "$DIR"/untrusted-ca.pem \
    "$DIR"/untrusted.pem "$DIR"/client.pem "$DIR"/pin-server.txt \
    "$DIR"/pin-other.txt "$DIR"/spiffe-client.pem "$DIR"/payroll-client.pem \
    "$DIR"/untrusted-client.pem "$DIR"/server-ocsp.der
chmod 700 "$DIR"
