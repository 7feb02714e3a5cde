#!/bin/bash
# policy_inband.sh -- protocol =, proxy = and proxy-credentials = as the
# launcher understands them (issue 12).
# Proves:
#   * tlsshim check accepts the shipped policy/inband.policy (its /etc/tlsshim
#     files made real) with no warning, and prints each rule's protocol with
#     what it does, the proxy, and "credentials from PATH" -- never the
#     user or the password from the credentials file;
#   * tlsshim explain HOST:PORT says how TLS starts ("the server's 220,
#     EHLO, STARTTLS (RFC 3207), then TLS (protocol smtp)", "TLS from the first byte (protocol tls)") and, for a
#     proxy, "via proxy http://H:P (CONNECT H2:P2)": H2 the name verified
#     (server-name, else the name resolved), else the address (pins only);
#     P2 the rule's port; an IPv6 proxy in brackets;
#   * load errors name FILE:LINE and say what to write, and the launcher then
#     runs nothing: protocol/proxy on a listen rule, an unknown protocol, an
#     https:// proxy, user:password in the proxy URL (use proxy-credentials;
#     the password is not echoed), a proxy without a port, early-data with a
#     protocol or a proxy, protocol or proxy on a plain/deny rule,
#     proxy-credentials without proxy; a credentials file others can read, a
#     missing one, one that is not "user:password".

# shellcheck disable=SC2154
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim
unset TLSSHIM_POLICY TLSSHIM_LOG_LEVEL LD_PRELOAD

SRC=${top_srcdir:-$(dirname "$0")/../..}
CRED=$WORK/proxy.cred
(umask 077 && printf 'alice:Sup3r-s3cret\n' >"$CRED")
cp "$CERTS/ca.pem" "$WORK/internal-ca.pem"

# ==== 1. check: the shipped example ===========================================================
EX=$WORK/inband.policy
sed "s#/etc/tlsshim/#$WORK/#g" "$SRC/policy/inband.policy" | write_policy "$EX"
out=$("$TLSSHIM" check -p "$EX" 2>"$WORK/ex.err")
is "$?" 0 "check policy/inband.policy: exit 0"
is "$(cat "$WORK/ex.err")" "" "check policy/inband.policy: no warning"
like "$out" 'valid, 10 rules' "check: 10 rules"
like "$out" '^protocol = postgres  # SSLRequest' "check: postgres"
like "$out" '^protocol = smtp  # .*STARTTLS \(RFC 3207\)' "check: smtp"
like "$out" '^protocol = imap  # .*STARTTLS' "check: imap"
like "$out" '^protocol = pop3  # .*STLS' "check: pop3"
like "$out" '^protocol = ldap  # the StartTLS extended operation' "check: ldap"
like "$out" '^protocol = mysql  # the server.s greeting, an SSLRequest' "check: mysql"
like "$out" '^# protocol: tls \(TLS from the first byte\)' "check: the default protocol as a comment"
like "$out" '^alpn = postgresql$' "check: PG 17 direct TLS is alpn = postgresql"
like "$out" '^proxy = http://proxy\.internal:3128  # CONNECT' "check: the proxy"
like "$out" "^proxy-credentials = $CRED  # Proxy-Authorization: Basic, credentials from $CRED \(not shown\)" \
    "check: credentials from PATH"
check_fail "check: the password is not printed" grep -q 'Sup3r-s3cret' <<<"$out"
check_fail "check: the user is not printed" grep -q 'alice' <<<"$out"

# ==== 2. explain ===============================================================================
P=$WORK/explain.policy
write_policy "$P" <<EOF
[mail]
match = localhost:25
protocol = smtp
ca = $CERTS/ca.pem

[web]
match = localhost:8080
port = 443
proxy = http://127.0.0.1:3128
proxy-credentials = $CRED
ca = $CERTS/ca.pem

[db]
match = 127.0.0.1:5432
server-name = db.internal
protocol = postgres
proxy = http://[::1]:3128/
ca = $CERTS/ca.pem

[sql]
match = 127.0.0.3:3306
protocol = MySQL
proxy = http://proxy.internal:8080
pin = sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=

[plain-tls]
match = localhost:993
ca = $CERTS/ca.pem
EOF
out=$("$TLSSHIM" explain -p "$P" localhost:25 2>&1)
is "$?" 0 "explain smtp: exit 0"
like "$out" 'rule \[mail\] \(line 1\): upgraded to TLS 1\.3' "explain smtp: the rule"
like "$out" '^    start: the server.s 220, EHLO, STARTTLS \(RFC 3207\), then TLS \(protocol smtp\)$' "explain smtp: how TLS starts (protocol smtp)"
check_fail "explain smtp: no proxy" grep -q 'via proxy' <<<"$out"

out=$("$TLSSHIM" explain -p "$P" localhost:8080 2>&1)
like "$out" '^    start: TLS from the first byte \(protocol tls\)$' "explain proxy: TLS from the first byte"
like "$out" '^    via proxy http://127\.0\.0\.1:3128 \(CONNECT localhost:443\)$' \
    "explain proxy: via proxy http://127.0.0.1:3128 (CONNECT localhost:443): the name resolved, the rule's port"
like "$out" "^    proxy authentication: Basic, credentials from $CRED\$" "explain proxy: credentials from PATH"
check_fail "explain proxy: the password is not printed" grep -q 'Sup3r-s3cret' <<<"$out"

out=$("$TLSSHIM" explain -p "$P" 127.0.0.1:5432 2>&1)
like "$out" '^    start: SSLRequest, the server.s .S., then TLS \(protocol postgres\)$' "explain postgres: start"
like "$out" '^    via proxy http://\[::1\]:3128 \(CONNECT db\.internal:5432\)$' \
    "explain postgres: an IPv6 proxy; CONNECT names the server-name"

out=$("$TLSSHIM" explain -p "$P" 127.0.0.3:3306 2>&1)
like "$out" '^    start: the server.s greeting, an SSLRequest, then TLS \(protocol mysql\)$' "explain mysql: start"
like "$out" '^    via proxy http://proxy\.internal:8080 \(CONNECT 127\.0\.0\.3:3306\)$' \
    "explain mysql: pins only, no name: CONNECT names the address"

out=$("$TLSSHIM" explain -p "$P" localhost:993 2>&1)
like "$out" '^    start: TLS from the first byte \(protocol tls\)$' "explain tls rule: TLS from the first byte"

# ==== 3. load errors: FILE:LINE and what to write ===============================================
# Each check_load_error (lib.sh) also checks that the message does not show the password.
LOAD_ERROR_SECRET=s3cret
check_load_error listen-protocol 5 '"protocol" in inbound rule \[web\]: only for outbound rules' <<EOF
[web]
listen = *:8443
cert = $CERTS/server.pem
key = $CRED
protocol = smtp
EOF
check_load_error listen-proxy 2 '"proxy" in inbound rule \[web\]: only for outbound rules' <<EOF
[web]
proxy = http://p:3128
listen = *:8443
EOF
check_load_error unknown-protocol 3 'bad protocol "pgsql" in rule \[db\]: expected tls, postgres, smtp, imap, pop3, ldap or mysql' <<EOF
[db]
match = *:5432
protocol = pgsql
EOF
check_load_error https-proxy 3 'bad proxy "https://p:3128" in rule \[up\]: an https:// proxy is not supported' <<EOF
[up]
match = *:80
proxy = https://p:3128
EOF
check_load_error url-credentials 4 'bad proxy in rule \[up\]: no user:password in the URL: use proxy-credentials = PATH' <<EOF
[up]
match = *:80

proxy = http://alice:s3cret@p:3128
EOF
check_load_error no-port 3 'bad proxy "http://p" in rule \[up\]: missing port' <<EOF
[up]
match = *:80
proxy = http://p
EOF
check_load_error early-protocol 4 'early-data = on with protocol = smtp \(line 3\) in rule \[m\]: no 0-RTT: the in-band exchange comes before TLS' <<EOF
[m]
match = *:25
protocol = smtp
early-data = on
EOF
check_load_error early-proxy 3 'early-data = on with proxy \(line 4\) in rule \[up\]: no 0-RTT: the proxy tunnel comes before TLS' <<EOF
[up]
match = *:80
early-data = on
proxy = http://p:3128
EOF
check_load_error plain-protocol 3 'protocol = imap in rule \[m\] with action = plain' <<EOF
[m]
match = *:143
protocol = imap
action = plain
EOF
check_load_error deny-proxy 4 '"proxy" in rule \[up\] with action = deny: only action = tls rules' <<EOF
[up]
match = *:80
action = deny
proxy = http://p:3128
EOF
check_load_error cred-no-proxy 3 '"proxy-credentials" without "proxy" in rule \[up\]' <<EOF
[up]
match = *:80
proxy-credentials = $CRED
EOF

# The credentials file: as strict as a key file; its content is checked, never shown.
chmod 640 "$CRED"
check_load_error cred-mode 4 "proxy-credentials file $CRED is accessible by group or others \(mode 0640; it holds the proxy password: chmod 600 it\)" <<EOF
[up]
match = *:80
proxy = http://p:3128
proxy-credentials = $CRED
EOF
chmod 600 "$CRED"
check_load_error cred-missing 4 "cannot read proxy-credentials file $WORK/nope.cred: No such file" <<EOF
[up]
match = *:80
proxy = http://p:3128
proxy-credentials = $WORK/nope.cred
EOF
(umask 077 && printf 'alice s3cret\n' >"$WORK/bad.cred")
check_load_error cred-format 4 "proxy-credentials file $WORK/bad.cred has no \":\" between the user and the password" <<EOF
[up]
match = *:80
proxy = http://p:3128
proxy-credentials = $WORK/bad.cred
EOF

done_testing
