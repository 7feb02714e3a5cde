#!/bin/bash
# inband_mysql.sh -- protocol = mysql against a real MariaDB 10.11 with
# require_secure_transport = ON and TLS 1.3 only.  The unmodified mariadb
# client, told --skip-ssl (it speaks the protocol in clear), runs under
#     match = 127.0.0.1:PORT  protocol = mysql  ca = ca.pem  server-name = localhost
# Proves, from the server's side:
#   * before: the same client without tlsshim, or under protocol = tls, is
#     refused (the same credentials over the client's own TLS work);
#   * for a user created with the server's default (IDENTIFIED BY:
#     mysql_native_password on Debian), one IDENTIFIED VIA
#     mysql_native_password and one VIA ed25519 (the greeting names
#     mysql_native_password: the server switches the client's plugin), and
#     a client whose default plugin is client_ed25519 against a native user
#     (a switch the other way): SHOW STATUS Ssl_version of the client's
#     own session says TLSv1.3, the general log says "using SSL/TLS";
#   * an INSERT through tlsshim is read back over the client's own TLS;
#   * a wrong password: the client gets the server's own access-denied
#     error (ERR renumbered back), the server saw that attempt over TLS;
#   * a server without TLS (--skip-ssl), and a raw listener whose greeting
#     lacks CLIENT_SSL: the client is refused, tlsshim logs why, and no
#     byte of the client's (its HandshakeResponse, its user name) reached it.
# Debian packages: mariadb-server, mariadb-client.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/inband_lib_db.sh"
set -u

need_python
need_cmd mariadb
need_tlsshim ca.pem server.pem server-key.pem

start_mariadb my
diag "mariadbd (require_secure_transport, TLS 1.3) on 127.0.0.1:$my_port"
have_ed=1
my_admin my -e "INSTALL SONAME 'auth_ed25519'" >"$WORK/ed.out" 2>&1 || have_ed=0
my_admin my -e "CREATE DATABASE t; CREATE TABLE t.notes (who VARCHAR(80), txt VARCHAR(200));
CREATE USER dflt@'%' IDENTIFIED BY 'pw-dflt-1';
CREATE USER nat@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('pw-nat-2');
GRANT ALL ON t.* TO dflt@'%', nat@'%';" || bail_out "could not create the users"
[ $have_ed = 0 ] || my_admin my -e "CREATE USER ed@'%' IDENTIFIED VIA ed25519 USING PASSWORD('pw-ed-3');
GRANT ALL ON t.* TO ed@'%';" || bail_out "could not create the ed25519 user"
diag "users: $(my_admin my -e "SELECT CONCAT(user, '=', plugin) FROM mysql.user WHERE user IN ('dflt','nat','ed')" | tr '\n' ' ')"

# my_plain PORT RULE USER PASSWORD SQL [ARGS...]: the mariadb client in
# plaintext (--skip-ssl), under tlsshim with $WORK/RULE.policy unless RULE
# is "-".  Batch output without column names; stdout+stderr.
my_plain() {
    local port=$1 rule=$2 user=$3 pw=$4 sql=$5
    shift 5
    local -a pre=()
    [ "$rule" = - ] || pre=("$TLSSHIM" -p "$WORK/$rule.policy")
    timeout 30 "${pre[@]}" mariadb --no-defaults --skip-ssl -h 127.0.0.1 -P "$port" \
        -u "$user" -p"$pw" -N -B "$@" -e "$sql" 2>&1
}
# my_tls USER PASSWORD SQL: the client's OWN TLS, verifying localhost.
my_tls() {
    timeout 30 mariadb --no-defaults --ssl --ssl-ca="$CERTS/ca.pem" --ssl-verify-server-cert \
        -h localhost --protocol=TCP -P "$my_port" -u "$1" -p"$2" -N -B -e "$3" 2>&1
}
# seen_tls USER: the general log has a TLS connection of USER.
seen_tls() { grep -aEq "Connect[[:space:]]+$1@127\.0\.0\.1 on .*using SSL/TLS" "$my_general"; }

SQLV="SHOW STATUS LIKE 'Ssl_version'; SELECT CURRENT_USER()"

# ==== 1. before: refused ===============================================================
out=$(my_plain "$my_port" - nat pw-nat-2 "SELECT 'leaked'")
like "$out" '^ERROR 1045 .*Access denied for user .nat.@.127\.0\.0\.1.' \
    "without tlsshim: mariadb --skip-ssl is refused by require_secure_transport"
is "$(my_tls nat pw-nat-2 "SELECT 'ok'")" ok "control: the same user and password over the client's own TLS work"
POLICY_MATCH=127.0.0.1:$my_port policy tlsfirst "" "server-name = localhost"
out=$(my_plain "$my_port" tlsfirst nat pw-nat-2 "SELECT 'leaked'")
like "$out" '^ERROR' "protocol = tls (TLS from the first byte): the client is refused"
diag "protocol = tls: $out"

# ==== 2. protocol = mysql: the server's view of each user's own session ==================
POLICY_MATCH=127.0.0.1:$my_port policy myp "" "protocol = mysql" "server-name = localhost"
is "$(my_plain "$my_port" myp dflt pw-dflt-1 "$SQLV")" "$(printf 'Ssl_version\tTLSv1.3\ndflt@%%')" \
    "default-plugin user: Ssl_version of its own session is TLSv1.3"
check "general log: dflt connected using SSL/TLS" seen_tls dflt
is "$(my_plain "$my_port" myp nat pw-nat-2 "$SQLV")" "$(printf 'Ssl_version\tTLSv1.3\nnat@%%')" \
    "mysql_native_password user: Ssl_version TLSv1.3"
check "general log: nat connected using SSL/TLS" seen_tls nat
check "tlsshim log: protocol=mysql, TLS1.3, localhost verified" \
    wait_for_match "$WORK/myp.tlsshim.log" "rule \[myp\] 127\.0\.0\.1:$my_port -> .*server-name=localhost verified version=TLS1\.3 .*protocol=mysql"

# ==== 3. auth switch, both ways ===========================================================
if [ $have_ed = 1 ]; then
    is "$(my_plain "$my_port" myp ed pw-ed-3 "$SQLV")" "$(printf 'Ssl_version\tTLSv1.3\ned@%%')" \
        "ed25519 user (the server switches the client to client_ed25519): Ssl_version TLSv1.3"
    check "general log: ed connected using SSL/TLS" seen_tls ed
else
    skip "ed25519 user" "auth_ed25519 did not load: $(cat "$WORK/ed.out")"
    skip "general log: ed" "no ed25519"
fi
is "$(my_plain "$my_port" myp nat pw-nat-2 "$SQLV" --default-auth=client_ed25519)" \
    "$(printf 'Ssl_version\tTLSv1.3\nnat@%%')" \
    "client defaulting to client_ed25519, native user (switched back): Ssl_version TLSv1.3"

# ==== 4. data ==============================================================================
val="through tlsshim $$ $RANDOM"
out=$(my_plain "$my_port" myp nat pw-nat-2 \
    "INSERT INTO t.notes SELECT CURRENT_USER(), CONCAT('$val ', VARIABLE_VALUE) FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_VERSION'")
is "$out" "" "INSERT under tlsshim succeeds"
is "$(my_tls nat pw-nat-2 "SELECT who, txt FROM t.notes")" "$(printf 'nat@%%\t%s TLSv1.3' "$val")" \
    "the client's own TLS reads the row back: it arrived, written by a TLSv1.3 session"
is "$(my_plain "$my_port" myp dflt pw-dflt-1 "SELECT txt FROM t.notes")" "$val TLSv1.3" \
    "another user under tlsshim reads it too"

# ==== 5. a wrong password: the server's own ERR reaches the client =====================
n0=$(grep -ac 'Access denied' "$my_general")
out=$(my_plain "$my_port" myp nat wrong-password "SELECT 'leaked'")
like "$out" "^ERROR 1045 \(28000\).*Access denied for user 'nat'@'127\.0\.0\.1' \(using password: YES\)" \
    "wrong password under tlsshim: the client prints the server's access-denied error"
if [ $have_ed = 1 ]; then
    out=$(my_plain "$my_port" myp ed wrong-password "SELECT 'leaked'")
    like "$out" "^ERROR 1045 \(28000\).*Access denied for user 'ed'@'127\.0\.0\.1'" \
        "wrong password after an auth switch (ed25519): the server's access-denied error"
else
    skip "wrong password after an auth switch" "no ed25519"
fi
n1=$(grep -ac 'Access denied' "$my_general")
is "$((n1 - n0))" "$((1 + have_ed))" "general log: the server denied those attempts itself"
like "$(grep -a 'Connect.*nat@127\.0\.0\.1' "$my_general" | tail -n 1)" 'using SSL/TLS' \
    "general log: the denied attempt came over TLS"

# ==== 6. a server without TLS: refused, nothing of the client's sent ==================
start_mariadb myn nossl
my_admin myn -e "CREATE USER nat@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('pw-nat-2')" ||
    bail_out "could not create the user on the server without TLS"
POLICY_MATCH=127.0.0.1:$myn_port policy myn "" "protocol = mysql" "server-name = localhost"
out=$(my_plain "$myn_port" myn nat pw-nat-2 "SELECT 'leaked'")
like "$out" '^ERROR' "server without TLS: the client under tlsshim is refused"
unlike "$out" 'leaked' "server without TLS: no query answered"
diag "client: $out"
check "tlsshim log: the server does not offer TLS" \
    wait_for_match "$WORK/myn.tlsshim.log" "rule \[myn\] 127\.0\.0\.1:$myn_port.* does not offer TLS \(no CLIENT_SSL"
diag "tlsshim: $(grep -a 'rule \[myn\]' "$WORK/myn.tlsshim.log")"
# The control: the same client without tlsshim does show there.  Checked
# after it, the count also covers anything of the first client's arriving late.
is "$(my_plain "$myn_port" - nat pw-nat-2 "SELECT 'plain'")" plain "control: the client in clear works there"
check "control: and its connection is in that general log" \
    wait_for_match "$myn_general" 'Connect[[:space:]]+nat@127\.0\.0\.1'
is "$(grep -ac 'nat@127' "$myn_general")" 1 \
    "server without TLS: the user name reached it once, from the control (none from tlsshim: no HandshakeResponse)"

start_refuser raw mysql
POLICY_MATCH=127.0.0.1:$raw_port policy myraw "" "protocol = mysql" "server-name = localhost"
out=$(my_plain "$raw_port" myraw nat pw-nat-2 "SELECT 'leaked'")
like "$out" '^ERROR' "raw listener (greeting without CLIENT_SSL): the client is refused"
check "raw listener: the connection ended" wait_for_match "$raw_log" '^conn '
is "$(sed -n 's/^conn bytes=\([0-9]*\) .*/\1/p' "$raw_log")" 0 \
    "raw listener: not one byte arrived (no SSLRequest, no HandshakeResponse)"

done_testing
