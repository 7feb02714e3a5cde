#!/bin/bash
# inband_mail.sh -- protocol = imap and protocol = pop3 (STARTTLS, STLS)
# against a real dovecot with ssl = required and disable_plaintext_auth,
# with unmodified clients speaking plain IMAP and POP3.
# Proves, from the server's side:
#   * before: python imaplib's LOGIN, poplib's PASS and curl are refused
#     (LOGINDISABLED, "Plaintext authentication disallowed");
#   * under the rules: curl imap:// and pop3:// (no --ssl) and python
#     imaplib/poplib (no starttls/stls) log in and read the stored message;
#     dovecot logged each login with TLS, TLSv1.3, and never one without;
#     the capabilities the programs saw are the ones inside TLS (no
#     STARTTLS, STLS, LOGINDISABLED);
#   * a dovecot with ssl = no (it answers BAD / -ERR to STARTTLS / STLS):
#     refused, and dovecot logged no login and no auth attempt (nothing of
#     the program's LOGIN or USER/PASS reached it).
# Debian packages: dovecot-imapd, dovecot-pop3d, curl.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/inband_lib_mail.sh"
set -u

need_python
need_cmd curl
need_tlsshim ca.pem server.pem server-key.pem
need_mail_root

start_dovecot dv
start_dovecot dn ssl-no
diag "dovecot (ssl = required) imap $MAIL_ADDR:$dv_imap_port pop3 $dv_pop3_port;" \
    "dovecot (ssl = no) imap $dn_imap_port pop3 $dn_pop3_port"

# fetch MODE PORT: mail_fetch.py (plain), not under tlsshim.
fetch() {
    "$PYTHON" "$CLIENTS/mail_fetch.py" "$1" "$MAIL_ADDR" "$2" "$MAIL_USER" "$MAIL_PASS"
}

# mail_rule NAME PORT PROTOCOL: $WORK/NAME.policy for $MAIL_ADDR:PORT (the
# certificate names localhost, not 127.0.0.2).
mail_rule() {
    POLICY_MATCH=$MAIL_ADDR:$2 policy "$1" "" "server-name = localhost" "protocol = $3"
}

# tls_logins: dovecot (ssl = required)'s login lines with TLS 1.3.
tls_logins() {
    grep -c -- '-login: Info: Login: user=<'"$MAIL_USER"'>, .*, TLS, TLSv1\.3 with cipher ' "$dv_log"
}
# shellcheck disable=SC2317   # called through wait_until
_logins_at_least() { [ "$(tls_logins)" -ge "$1" ]; }

# ==== (a) before: plaintext logins are refused ====================================
out=$(fetch imaplib "$dv_imap_port")
like "$out" '^capability=LOGINDISABLED$' "before: dovecot offers LOGINDISABLED in clear"
like "$out" '^error=.*Plaintext authentication disallowed' "before: imaplib LOGIN refused (plaintext disallowed)"
out=$(fetch poplib "$dv_pop3_port")
like "$out" '^error=.*Plaintext authentication disallowed' "before: poplib PASS refused (plaintext disallowed)"
"${CURL[@]}" "imap://$MAIL_ADDR:$dv_imap_port/INBOX;UID=1" -u "$MAIL_USER:$MAIL_PASS" >"$WORK/before.out" 2>&1
st=$?
[ $st -ne 0 ]
ok $? "before: curl imap:// (no --ssl) fails (exit $st)"
unlike "$(cat "$WORK/before.out")" "$MAIL_BODY" "before: curl got no message"
check "before: dovecot logged the refused plaintext logins" \
    wait_for_match "$dv_log" 'Plaintext authentication disabled'
is "$(tls_logins)" 0 "before: no login at all"

# ==== (b) under protocol = imap / pop3: real plain clients read the message ========
mail_rule imap "$dv_imap_port" imap
mail_rule pop3 "$dv_pop3_port" pop3
n=0

out=$(RUN_TIMEOUT=40 run imap "$PYTHON" "$CLIENTS/mail_fetch.py" imaplib "$MAIL_ADDR" "$dv_imap_port" "$MAIL_USER" "$MAIL_PASS")
ok $? "imaplib (plain) under protocol = imap exits 0"
like "$out" "^body=$MAIL_BODY\$" "imaplib: FETCH returned the stored message"
like "$out" '^capability=AUTH=PLAIN$' "imaplib: it saw dovecot's capabilities inside TLS (AUTH=PLAIN)"
unlike "$out" '^capability(-after)?=(STARTTLS|LOGINDISABLED)$' "imaplib: no STARTTLS, no LOGINDISABLED among them"
n=$((n + 1))
check "dovecot: imaplib's login over TLSv1.3" wait_until 10 _logins_at_least $n
[ "$(tls_logins)" -ge $n ] || diag "imaplib said:" "$out"

out=$(RUN_TIMEOUT=40 run pop3 "$PYTHON" "$CLIENTS/mail_fetch.py" poplib "$MAIL_ADDR" "$dv_pop3_port" "$MAIL_USER" "$MAIL_PASS")
ok $? "poplib (plain) under protocol = pop3 exits 0"
like "$out" "^body=$MAIL_BODY\$" "poplib: RETR returned the stored message"
like "$out" '^greeting=\+OK Dovecot' "poplib: it got dovecot's greeting"
like "$out" '^capability=USER$' "poplib: it saw dovecot's CAPA inside TLS (USER)"
unlike "$out" '^capability=STLS$' "poplib: no STLS among them"
n=$((n + 1))
check "dovecot: poplib's login over TLSv1.3" wait_until 10 _logins_at_least $n
[ "$(tls_logins)" -ge $n ] || diag "poplib said:" "$out"

RUN_TIMEOUT=40 run imap "${CURL[@]}" -v "imap://$MAIL_ADDR:$dv_imap_port/INBOX;UID=1" \
    -u "$MAIL_USER:$MAIL_PASS" -o "$WORK/curl_imap.body" 2>"$WORK/curl_imap.trace"
ok $? "curl imap:// (no --ssl) under protocol = imap exits 0"
check "curl imap://: the stored message arrived" grep -q "^$MAIL_BODY" "$WORK/curl_imap.body"
like "$(grep '^< \* CAPABILITY' "$WORK/curl_imap.trace")" 'AUTH=PLAIN' "curl imap://: its CAPABILITY is the one inside TLS (AUTH=PLAIN)"
unlike "$(grep '^< ' "$WORK/curl_imap.trace")" 'STARTTLS|LOGINDISABLED' "curl imap://: no STARTTLS, no LOGINDISABLED in what it read"
greet=$(grep -m 1 '^< \* OK' "$WORK/curl_imap.trace")
like "$greet" 'Dovecot' "curl imap://: it got dovecot's greeting"
unlike "$greet" '\[CAPABILITY' "curl imap://: the greeting has no [CAPABILITY ...] (the plaintext one never reaches it)"
n=$((n + 1))
check "dovecot: curl imap's login over TLSv1.3" wait_until 10 _logins_at_least $n

RUN_TIMEOUT=40 run pop3 "${CURL[@]}" -v "pop3://$MAIL_ADDR:$dv_pop3_port/1" \
    -u "$MAIL_USER:$MAIL_PASS" -o "$WORK/curl_pop3.body" 2>"$WORK/curl_pop3.trace"
ok $? "curl pop3:// (no --ssl) under protocol = pop3 exits 0"
check "curl pop3://: the stored message arrived" grep -q "^$MAIL_BODY" "$WORK/curl_pop3.body"
unlike "$(grep '^< ' "$WORK/curl_pop3.trace")" 'STLS' "curl pop3://: no STLS in what it read"
n=$((n + 1))
check "dovecot: curl pop3's login over TLSv1.3" wait_until 10 _logins_at_least $n

is "$(grep -c -- '-login: Info: Login: ' "$dv_log")" "$(tls_logins)" "dovecot: every login it logged was over TLSv1.3"
like "$(grep -- 'imap-login: Info: Login: ' "$dv_log" | head -n 1)" 'rip=127\.0\.0\.1, lip=127\.0\.0\.2, ' \
    "dovecot: logins come from 127.0.0.1 to $MAIL_ADDR (not a 'secured' same-address connection)"

# ==== (c) a dovecot with ssl = no: refused, nothing of the program's sent ============
mail_rule noimap "$dn_imap_port" imap
mail_rule nopop3 "$dn_pop3_port" pop3
out=$(RUN_TIMEOUT=40 run noimap "$PYTHON" "$CLIENTS/mail_fetch.py" imaplib "$MAIL_ADDR" "$dn_imap_port" "$MAIL_USER" "$MAIL_PASS")
st=$?
[ $st -ne 0 ]
ok $? "ssl = no: imaplib under protocol = imap fails (exit $st)"
unlike "$out" "^body=|^capability=" "ssl = no: imaplib got no capability and no message"
out=$(RUN_TIMEOUT=40 run nopop3 "$PYTHON" "$CLIENTS/mail_fetch.py" poplib "$MAIL_ADDR" "$dn_pop3_port" "$MAIL_USER" "$MAIL_PASS")
st=$?
[ $st -ne 0 ]
ok $? "ssl = no: poplib under protocol = pop3 fails (exit $st)"
unlike "$out" "^body=|^greeting=" "ssl = no: poplib got no greeting and no message"
check "ssl = no: dovecot logged the imap connection ending with no auth attempt" \
    wait_for_match "$dn_log" 'imap-login: Info: Disconnected.*\(no auth attempts'
check "ssl = no: dovecot logged the pop3 connection ending with no auth attempt" \
    wait_for_match "$dn_log" 'pop3-login: Info: Disconnected.*\(no auth attempts'
unlike "$(cat "$dn_log")" 'Login|auth failed|[Pp]laintext|user=<[^>]' \
    "ssl = no: no login, no auth attempt, no user name reached dovecot"
check "ssl = no: tlsshim logged the imap failure" grep -Eiq 'starttls|fail|refus' "$WORK/noimap.tlsshim.log"
check "ssl = no: tlsshim logged the pop3 failure" grep -Eiq 'stls|fail|refus' "$WORK/nopop3.tlsshim.log"
diag "dovecot (ssl = no) log:" "$(cat "$dn_log")" \
    "tlsshim:" "$(cat "$WORK/noimap.tlsshim.log" "$WORK/nopop3.tlsshim.log" 2>/dev/null)"

done_testing
