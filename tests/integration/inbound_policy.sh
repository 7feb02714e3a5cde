#!/bin/bash
# inbound_policy.sh -- inbound (listen) rules as the launcher understands them.
# Proves:
#   * tlsshim check accepts the README's four-line inbound rule and prints it
#     readably: listen entries (0.0.0.0 and [::] as "any local address of the
#     family"), cert, key, plaintext = refuse, tickets; an mTLS rule's
#     client-ca, allow-client, alpn (+ alpn-required), session-tickets,
#     ocsp-staple; the PIN of a pkcs11: key is hidden; plaintext = allow and
#     client-ca = system alone draw FILE:LINE warnings;
#   * tlsshim explain listen ADDR:PORT says what happens to a connection
#     accepted on that local address (decide_accept): served as TLS 1.3 with
#     the rule's certificate and client checks, passed through (plain rule or
#     no rule), reset (deny); an IPv4-mapped address matches IPv4 entries;
#     "explain listen" accepts -p before or after "listen"; a host name or a
#     missing port is a usage error (exit 2);
#   * explain HOST:PORT (outbound) never uses a listen rule;
#   * load errors name FILE:LINE and say what to write: early-data (no
#     anti-replay), a host name in listen, match and listen in one rule, ca
#     on an inbound rule (use client-ca), missing cert/key (the rule's line),
#     allow-client without client-ca, an inbound key on an outbound rule; a
#     server key readable by others, a missing client-ca file; the launcher
#     then runs nothing.

# shellcheck disable=SC2154
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim
unset TLSSHIM_POLICY TLSSHIM_LOG_LEVEL LD_PRELOAD

# A private copy of the server key: the test changes its mode.
KEY=$WORK/server-key.pem
(umask 077 && cp "$CERTS/server-key.pem" "$KEY")
OCSP=$WORK/ocsp.der
printf 'x' >"$OCSP"

# ==== 1. check: the README's rule ===========================================================
WEB=$WORK/web.policy
write_policy "$WEB" <<EOF
[legacy-web]
listen = 0.0.0.0:8080, [::]:8080        # the program's own listening address(es): an inbound rule
cert = $CERTS/server.pem             # server certificate chain (PEM), or a pkcs11: URI
key = $KEY          # its key (PEM), or a pkcs11: URI
EOF
out=$("$TLSSHIM" check -p "$WEB" 2>"$WORK/web.err")
is "$?" 0 "check four-line inbound rule: exit 0"
like "$out" 'valid, 1 rule \(1 inbound' "check: counts the inbound rule"
like "$out" '^\[legacy-web\]  # line 1, rule 1, inbound$' "check: the rule is marked inbound"
like "$out" '^listen = 0\.0\.0\.0:8080  # any local IPv4 address$' "check: 0.0.0.0 covers every IPv4 address"
like "$out" '^listen = \[::\]:8080  # any local IPv6 address' "check: [::] covers every IPv6 address"
like "$out" "^cert = $CERTS/server.pem" "check: the server certificate"
like "$out" "^key = $KEY" "check: the key"
like "$out" '^plaintext = refuse' "check: plaintext refused by default"
like "$out" '^session-tickets = on' "check: tickets on by default"
check_fail "check: no outbound key printed for an inbound rule" grep -Eq '^(ca|resume|match) =' <<<"$out"
is "$(cat "$WORK/web.err")" "" "check: no warning for the four-line rule"

# ==== 2. check: an mTLS rule with every key ===================================================
MTLS=$WORK/mtls.policy
write_policy "$MTLS" <<EOF
[billing]
listen = 127.0.0.1:8443, [::1]:8443
cert = $CERTS/server.pem
key = pkcs11:object=srv;type=private?pin-value=123456
client-ca = $CERTS/ca.pem
allow-client = uri:spiffe://prod.example/ns/billing/*, dns:*.Svc.Example.com, cn:Ops Team
alpn = h2, http/1.1
alpn-required = yes
session-tickets = off
ocsp-staple = $OCSP
handshake-timeout = 3s

[migrate]
listen = 127.0.0.1:8080
cert = $CERTS/server.pem
key = $KEY
plaintext = allow

[public-ca]
listen = 127.0.0.1:8081
cert = $CERTS/server.pem
key = $KEY
client-ca = system

[admin]
listen = 127.0.0.2:*
action = plain

[closed]
listen = 10.0.0.0/8:*
action = deny

[upstream]
match = localhost:8443
ca = $CERTS/ca.pem
EOF
out=$("$TLSSHIM" check -p "$MTLS" 2>"$WORK/mtls.err")
is "$?" 0 "check mTLS policy: exit 0"
like "$out" 'valid, 6 rules \(5 inbound' "check mTLS: 6 rules, 5 inbound"
like "$out" "^client-ca = $CERTS/ca.pem  # mTLS" "check mTLS: client-ca"
like "$out" '^allow-client = uri:spiffe://prod.example/ns/billing/\*,dns:\*\.svc\.example\.com,cn:Ops Team$' \
    "check mTLS: allow-client patterns (dns lower-cased)"
like "$out" '^alpn = h2,http/1.1$' "check mTLS: alpn in server order"
like "$out" '^alpn-required = yes' "check mTLS: alpn-required"
like "$out" '^session-tickets = off' "check mTLS: session-tickets off"
like "$out" "^ocsp-staple = $OCSP" "check mTLS: ocsp-staple"
like "$out" '^handshake-timeout = 3s$' "check mTLS: handshake-timeout"
like "$out" 'pin-value=\(hidden\)' "check mTLS: the key's PIN is hidden"
check_fail "check mTLS: the PIN itself is not printed" grep -q 123456 <<<"$out"
like "$out" '^plaintext = allow  # MIGRATION MODE' "check: plaintext = allow stands out"
like "$out" '^\[upstream\]  # line [0-9]*, rule 6, outbound$' "check: the outbound rule is marked outbound"
like "$(cat "$WORK/mtls.err")" "^$MTLS:17: warning: plaintext = allow in rule \[migrate\] is a migration mode" \
    "check: plaintext = allow warns at its line"
like "$(cat "$WORK/mtls.err")" "^$MTLS:23: warning: client-ca = system without allow-client" \
    "check: client-ca = system alone warns at its line"

# ==== 3. explain listen =======================================================================
out=$("$TLSSHIM" explain listen -p "$WEB" 127.0.0.1:8080 2>&1)
is "$?" 0 "explain listen: exit 0"
like "$out" '^accepted on 127\.0\.0\.1:8080: rule \[legacy-web\] \(line 1\): served as TLS 1\.3' \
    "explain listen: 127.0.0.1:8080 is served as TLS 1.3 by [legacy-web]"
like "$out" "certificate: $CERTS/server.pem \(key $KEY\)" "explain listen: the certificate and key"
like "$out" 'client certificate: not requested' "explain listen: no client certificate"
like "$out" 'plaintext clients: refused' "explain listen: plaintext refused"
out=$("$TLSSHIM" explain -p "$WEB" listen '[::1]:8080' 2>&1)
like "$out" '^accepted on \[::1\]:8080: rule \[legacy-web\]' "explain -p P listen [::1]:8080: [::] covers it"
out=$("$TLSSHIM" explain listen -p "$WEB" 127.0.0.1:8081 2>&1)
like "$out" '^accepted on 127\.0\.0\.1:8081: no inbound rule covers the local address: passed through' \
    "explain listen: another port passes through"

out=$("$TLSSHIM" explain listen -p "$MTLS" '[::ffff:127.0.0.1]:8443' 2>&1)
like "$out" 'rule \[billing\] \(line 1\): served as TLS 1\.3' "explain listen: an IPv4-mapped address matches 127.0.0.1"
like "$out" "client certificate: required, verified against $CERTS/ca.pem" "explain listen: mTLS client-ca"
like "$out" 'allowed clients \(one must match\): uri:spiffe://prod.example/ns/billing/\* dns:\*\.svc\.example\.com cn:Ops Team' \
    "explain listen: the allow-client patterns"
like "$out" 'ALPN \(server preference\): h2 http/1.1; a client offering none of them is refused' \
    "explain listen: ALPN, required"
like "$out" 'session tickets: off' "explain listen: tickets off"
like "$out" "OCSP staple: $OCSP" "explain listen: OCSP staple"
like "$out" 'handshake timeout: 3s' "explain listen: handshake timeout"
like "$out" 'pin-value=\(hidden\)' "explain listen: the key's PIN is hidden"
out=$("$TLSSHIM" explain listen -p "$MTLS" 127.0.0.1:8080 2>&1)
like "$out" 'plaintext clients: ALLOWED, served in clear' "explain listen: plaintext = allow said loudly"
out=$("$TLSSHIM" explain listen -p "$MTLS" 127.0.0.2:22 2>&1)
like "$out" 'rule \[admin\] \(line [0-9]*\): plain: passed through untouched' "explain listen: a plain rule"
out=$("$TLSSHIM" explain listen -p "$MTLS" 10.9.8.7:5432 2>&1)
like "$out" 'rule \[closed\] \(line [0-9]*\): deny: the connection is reset and accept\(\) fails with ECONNABORTED' \
    "explain listen: a deny rule"

# Outbound explain never uses listen rules.
out=$("$TLSSHIM" explain -p "$WEB" 127.0.0.1:8080 2>&1)
is "$?" 0 "explain (outbound) 127.0.0.1:8080: exit 0"
like "$out" 'passed through untouched' "explain (outbound): no outbound rule, passed through"
check_fail "explain (outbound): the listen rule is not used" grep -q 'legacy-web' <<<"$out"

for arg in localhost:8080 127.0.0.1 '127.0.0.1:0' '[::1]' 'listen'; do
    "$TLSSHIM" explain listen -p "$WEB" "$arg" >"$WORK/usage.out" 2>&1
    is "$?" 2 "explain listen $arg: exit 2"
done
like "$(cat "$WORK/usage.out")" 'usage|expected' "explain listen: a usage message"
"$TLSSHIM" explain listen -p "$WEB" localhost:8080 >"$WORK/usage.out" 2>&1
like "$(cat "$WORK/usage.out")" 'explain listen: expected the local address' "explain listen host name: says what it wants"

# ==== 4. load errors: FILE:LINE and what to write =================================================
check_load_error early-data 5 '"early-data" in inbound rule \[web\]: not allowed on inbound rules: no anti-replay' <<EOF
[web]
listen = *:8443
cert = $CERTS/server.pem
key = $KEY
early-data = on
EOF
check_load_error hostname 3 'bad listen "web.internal:8443" in rule \[web\]: a host name' <<EOF
# comment
[web]
listen = web.internal:8443
cert = $CERTS/server.pem
key = $KEY
EOF
check_load_error both 3 'rule \[web\] has both "match" \(line 2\) and "listen" \(line 3\)' <<EOF
[web]
match = *:443
listen = *:8443
cert = $CERTS/server.pem
key = $KEY
EOF
check_load_error ca 5 '"ca" in inbound rule \[web\]: .*use "client-ca"' <<EOF
[web]
listen = *:8443
cert = $CERTS/server.pem
key = $KEY
ca = $CERTS/ca.pem
EOF
check_load_error nocert 2 'inbound rule \[web\] needs "cert" and "key"' <<EOF
log-level = info
[web]
listen = *:8443
[next]
match = *:443
EOF
check_load_error allow-no-ca 5 '"allow-client" without "client-ca" in rule \[web\]' <<EOF
[web]
listen = *:8443
cert = $CERTS/server.pem
key = $KEY
allow-client = uri:spiffe://prod.example/ns/x/*
EOF
check_load_error inbound-key-out 3 '"plaintext" in outbound rule \[up\]: only for inbound rules' <<EOF
[up]
match = *:443
plaintext = allow
EOF
check_load_error bad-uri 6 'bad allow-client "uri:spiffe://td/\*\*/x" in rule \[web\]: "\*\*" is only allowed as the last segment' <<EOF
[web]
listen = *:8443
cert = $CERTS/server.pem
key = $KEY
client-ca = $CERTS/ca.pem
allow-client = uri:spiffe://td/**/x
EOF

# Files: a server key others can read; a missing client-ca file.
chmod 644 "$KEY"
check_load_error key-mode 4 "key file $KEY is accessible by group or others \(mode 0644" <<EOF
[web]
listen = *:8443
cert = $CERTS/server.pem
key = $KEY
EOF
chmod 600 "$KEY"
check_load_error client-ca-missing 5 "cannot read client-ca file $WORK/nope.pem: No such file" <<EOF
[web]
listen = *:8443
cert = $CERTS/server.pem
key = $KEY
client-ca = $WORK/nope.pem
EOF

done_testing
