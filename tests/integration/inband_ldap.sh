#!/bin/bash
# inband_ldap.sh -- protocol = ldap: an unmodified ldapsearch (no -Z, no
# ldap.conf: it speaks LDAP in clear and never asks for StartTLS itself)
# reaches a real slapd that requires TLS for every operation
# (olcSecurity: tls=1, TLS 1.3 only).  tlsshim sends the StartTLS extended
# request, runs TLS 1.3, and the program's bind and search go inside it.
# Proves from slapd's own log (loglevel stats), for the program's own
# connection:
#   * without tlsshim the same ldapsearch is refused: "Confidentiality
#     required" (resultCode 13);
#   * protocol = tls (TLS at the first byte, the default) is refused too:
#     slapd speaks LDAP first;
#   * under protocol = ldap: op=0 is the StartTLS extended operation
#     (answered err=0), then "TLS established ... tls_proto=TLS1.3", then
#     the program's BIND and SRCH on the same connection, and the entries
#     reach the program; a simple bind as the rootdn and an ldapadd work;
#   * a slapd without TLS answers StartTLS with protocolError (2): the
#     program is refused, tlsshim's log names the resultCode, and slapd saw
#     no BIND or SRCH at all (nothing of the program's went out in clear).
# Debian packages: slapd, ldap-utils.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/inband_lib_ldap.sh"
set -u

need_python
need_cmd ldapsearch ldapadd
if [ ! -x "$SLAPD" ] || [ ! -x "$SLAPADD" ]; then skip_all "slapd not installed ($SLAPD)"; fi
need_tlsshim ca.pem server.pem server-key.pem

start_slapd dir
start_slapd bare notls
diag "slapd (tls=1, TLS 1.3) on 127.0.0.1:$dir_port; slapd without TLS on 127.0.0.1:$bare_port"

URL=ldap://127.0.0.1:$dir_port
# search TAG URL [ARGS...]: ldapsearch -LLL -x (plain LDAP) under no tlsshim,
# ARGS the filter and attributes; output in $WORK/TAG.out, its status returned.
search() {
    local tag=$1 url=$2
    shift 2
    "${LDAP_ENV[@]}" timeout 20 ldapsearch -LLL -x -o nettimeout=10 -H "$url" -b "$SLAPD_SUFFIX" "$@" \
        >"$WORK/$tag.out" 2>&1
}

# ==== 1. before: slapd refuses the plain client ==========================================
search plain "$URL" '(uid=alice)' mail
is "$?" 13 "without tlsshim: ldapsearch exits 13 (confidentialityRequired)"
like "$(cat "$WORK/plain.out")" 'Confidentiality required' "without tlsshim: 'Confidentiality required'"
unlike "$(cat "$WORK/plain.out")" 'alice@example\.test' "without tlsshim: no entry"
check "slapd: the plain bind answered err=13" \
    grep -Eq 'RESULT tag=97 err=13 .*TLS confidentiality required' "$dir_log"

# ==== 2. protocol = tls (the default) cannot reach an LDAP server =========================
POLICY_MATCH=127.0.0.1:$dir_port policy first "" "server-name = localhost" "handshake-timeout = 5s"
run first "${LDAP_ENV[@]}" ldapsearch -LLL -x -o nettimeout=10 -H "$URL" -b "$SLAPD_SUFFIX" '(uid=first)' mail \
    >"$WORK/first.out" 2>&1
st=$?
check_fail "protocol = tls: ldapsearch fails (slapd does not start with TLS)" test "$st" -eq 0
is "$(grep -c 'uid=first' "$dir_log")" 0 "protocol = tls: slapd saw no search"

# ==== 3. protocol = ldap: anonymous search ==============================================
POLICY_MATCH=127.0.0.1:$dir_port policy ld "" "protocol = ldap" "server-name = localhost"
run ld "${LDAP_ENV[@]}" ldapsearch -LLL -x -o nettimeout=10 -H "$URL" -b "$SLAPD_SUFFIX" '(uid=alice)' mail \
    >"$WORK/anon.out" 2>&1
ok $? "protocol = ldap: plain ldapsearch exits 0"
like "$(cat "$WORK/anon.out")" '^mail: alice@example\.test$' "protocol = ldap: the entry reached the program"
diag "ldapsearch: $(cat "$WORK/anon.out")"
wait_for_match "$dir_log" 'filter="\(uid=alice\)"' 5
c=$(slapd_conn "$dir_log" 'SRCH .*filter="\(uid=alice\)"')
clog=$(slapd_lines "$dir_log" "$c")
diag "slapd, conn=$c:" "$clog"
like "$(printf '%s\n' "$clog" | grep ' op=' | head -n 1)" ' op=0 EXT oid=1\.3\.6\.1\.4\.1\.1466\.20037$' \
    "slapd: the connection's first operation is the StartTLS extended request"
like "$clog" ' op=0 STARTTLS$' "slapd: op=0 STARTTLS"
like "$clog" ' op=0 RESULT oid= err=0 ' "slapd: StartTLS answered err=0"
like "$clog" ' TLS established tls_ssf=[0-9]+ ssf=[0-9]+ tls_proto=TLS1\.3 ' \
    "slapd: TLS established on that connection, tls_proto=TLS1.3"
order=$(printf '%s\n' "$clog" | grep -E -e ' STARTTLS$' -e ' TLS established ' -e ' op=[0-9]+ BIND ' -e ' op=[0-9]+ SRCH base=' |
    sed -E 's/.* (STARTTLS|TLS established|BIND|SRCH)( .*|$)/\1/' | tr '\n' ,)
is "$order" "STARTTLS,TLS established,BIND,SRCH," "slapd: STARTTLS, then TLS, then the program's BIND and SRCH"
like "$clog" ' SEARCH RESULT tag=101 err=0 .*nentries=1 ' "slapd: the search answered err=0 with one entry"
unlike "$clog" 'err=13' "slapd: no confidentiality error on that connection"

# ==== 4. protocol = ldap: a simple bind as the rootdn, an ldapadd ========================
cat >"$WORK/bob.ldif" <<EOF
dn: uid=bob,ou=people,$SLAPD_SUFFIX
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Builder
mail: bob@example.test
EOF
run ld "${LDAP_ENV[@]}" ldapadd -x -o nettimeout=10 -H "$URL" -D "$SLAPD_ROOTDN" -w "$SLAPD_ROOTPW" \
    -f "$WORK/bob.ldif" >"$WORK/add.out" 2>&1
ok $? "protocol = ldap: ldapadd bound as the rootdn exits 0"
diag "ldapadd: $(cat "$WORK/add.out")"
run ld "${LDAP_ENV[@]}" ldapsearch -LLL -x -o nettimeout=10 -H "$URL" -D "$SLAPD_ROOTDN" -w "$SLAPD_ROOTPW" \
    -b "$SLAPD_SUFFIX" '(uid=bob)' mail >"$WORK/bind.out" 2>&1
ok $? "protocol = ldap: ldapsearch -D rootdn -w exits 0"
like "$(cat "$WORK/bind.out")" '^mail: bob@example\.test$' "protocol = ldap: the added entry is found"
wait_for_match "$dir_log" 'SRCH .*filter="\(uid=bob\)"' 5
c=$(slapd_conn "$dir_log" 'SRCH .*filter="\(uid=bob\)"')
clog=$(slapd_lines "$dir_log" "$c")
diag "slapd, conn=$c:" "$clog"
like "$clog" ' TLS established .*tls_proto=TLS1\.3 ' "slapd: the bound search's connection is TLS 1.3"
like "$clog" " op=1 BIND dn=\"$SLAPD_ROOTDN\" method=128\$" "slapd: op=1 (after StartTLS) is the rootdn's simple bind"
like "$clog" ' op=1 RESULT tag=97 err=0 ' "slapd: the bind succeeded"
c=$(slapd_conn "$dir_log" ' ADD dn="uid=bob,')
like "$(slapd_lines "$dir_log" "$c")" ' TLS established .*tls_proto=TLS1\.3 ' "slapd: the ldapadd's connection is TLS 1.3"
like "$(slapd_lines "$dir_log" "$c")" ' op=[0-9]+ RESULT tag=105 err=0 ' "slapd: the add succeeded"

# ==== 5. a slapd without TLS: StartTLS refused, nothing in clear =========================
POLICY_MATCH=127.0.0.1:$bare_port policy nt "" "protocol = ldap" "server-name = localhost"
run nt "${LDAP_ENV[@]}" ldapsearch -LLL -x -o nettimeout=10 -H "ldap://127.0.0.1:$bare_port" -b "$SLAPD_SUFFIX" \
    '(uid=alice)' mail >"$WORK/nt.out" 2>&1
st=$?
check_fail "no TLS at the server: ldapsearch fails (exit $st)" test "$st" -eq 0
unlike "$(cat "$WORK/nt.out")" 'alice@example\.test' "no TLS at the server: no entry reached the program"
wait_for_match "$bare_log" 'RESULT tag=120 err=2 ' 5
clog=$(cat "$bare_log")
diag "slapd without TLS:" "$(grep ' conn=' "$bare_log")"
like "$clog" ' op=0 EXT oid=1\.3\.6\.1\.4\.1\.1466\.20037$' "slapd: got the StartTLS request"
like "$clog" ' op=0 RESULT tag=120 err=2 ' "slapd: answered it with protocolError (2)"
unlike "$clog" ' (BIND|SRCH) ' "slapd: no BIND, no SRCH: nothing of the program's went out in clear"
check "tlsshim log: the connection refused, with the resultCode" \
    grep -Eq 'error: rule \[nt\] .*resultCode 2([^0-9]|$)' "$WORK/nt.tlsshim.log"
diag "tlsshim: $(cat "$WORK/nt.tlsshim.log" 2>/dev/null)"
# The control: that server would have answered the same search in clear.
search ctl "ldap://127.0.0.1:$bare_port" '(uid=alice)' mail
like "$(cat "$WORK/ctl.out")" '^mail: alice@example\.test$' "control: without tlsshim the TLS-less slapd answers in clear"
like "$(cat "$bare_log")" ' SRCH ' "control: and then its log shows the SRCH"

done_testing
