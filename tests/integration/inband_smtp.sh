#!/bin/bash
# inband_smtp.sh -- protocol = smtp (STARTTLS, RFC 3207) against a real
# exim4 that refuses MAIL on an unencrypted session, with unmodified
# clients speaking plain SMTP.
# Proves, from the server's side:
#   * before: plain swaks and smtplib are refused ("STARTTLS required");
#   * under `protocol = smtp`: swaks, python smtplib (blocking) and an
#     asyncio client (non-blocking) deliver: each body is in exim's
#     delivery file, exim's <= line for each message shows X=TLS1.3, and the
#     EHLO reply the program saw is the one inside TLS (no STARTTLS);
#   * a real exim that offers no STARTTLS: refused, exim logged the
#     connection but no message and no MAIL (nothing of the program's);
#   * a server that sends plaintext after its 220 to STARTTLS, in the same
#     write (CVE-2011-0411 kind): refused, and not one byte (no ClientHello,
#     no program bytes) reached it after its reply; the same server without
#     the injected bytes gets a ClientHello (the recorder works).
# Debian packages: exim4-daemon-light, swaks.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/inband_lib_mail.sh"
set -u

need_python
need_cmd swaks
need_tlsshim ca.pem server.pem server-key.pem
need_mail_root

start_exim mx
start_exim bare noadvertise
diag "exim (STARTTLS required) on 127.0.0.1:$mx_port, exim without STARTTLS on $bare_port"

# swaks_to PORT BODY: plain swaks (no --tls), one message; output on stdout.
swaks_to() {
    swaks --server "127.0.0.1:$1" --helo client.test --from a@example.test \
        --to user@example.test --body "$2" --timeout 20 2>&1
}

# smtp_rule NAME PORT: $WORK/NAME.policy, one rule for 127.0.0.1:PORT.
smtp_rule() {
    POLICY_MATCH=127.0.0.1:$2 policy "$1" "" "server-name = localhost" "protocol = smtp"
}

# msg_id SWAKS-OUTPUT: the id exim gave the message ("250 OK id=...").
msg_id() {
    printf '%s\n' "$1" | sed -n 's/^<[~-]  *250 OK id=\([^ ]*\).*/\1/p' | tail -n 1
}

# ==== (a) before: plain clients are refused =================================
out=$(swaks_to "$mx_port" "plain body $$")
st=$?
[ $st -ne 0 ]
ok $? "before: plain swaks (no tlsshim) fails (exit $st)"
like "$out" '550 STARTTLS required' "before: exim answers MAIL with 550 STARTTLS required"
out=$("$PYTHON" "$CLIENTS/smtp_client.py" smtplib 127.0.0.1 "$mx_port" "plain smtplib $$")
like "$out" '^error=RuntimeError: MAIL: 550 STARTTLS required' "before: plain smtplib is refused (STARTTLS required)"
check "before: exim logged the refusals" wait_for_match "$mx_log" 'rejected MAIL <a@example.test>: STARTTLS required'
unlike "$(cat "$mx_mbox" 2>/dev/null)" "plain (body|smtplib) $$" "before: nothing delivered"

# ==== (b) under protocol = smtp: three real clients deliver ===================
smtp_rule smtp "$mx_port"

body="swaks body $$"
out=$(RUN_TIMEOUT=40 run smtp swaks --server "127.0.0.1:$mx_port" --helo client.test \
    --from a@example.test --to user@example.test --body "$body" --timeout 20 2>&1)
ok $? "swaks (plain) under protocol = smtp exits 0"
id=$(msg_id "$out")
like "$id" '^[0-9A-Za-z]+-[0-9A-Za-z]+-[0-9A-Za-z]+$' "swaks: exim queued the message (id '$id')"
like "$out" '^<-  250[- ]mx\.test Hello client\.test' "swaks: it got exim's EHLO reply"
# the EHLO reply swaks saw is exim's reply inside TLS: no STARTTLS offered
unlike "$(printf '%s\n' "$out" | grep '^<-  250')" 'STARTTLS' "swaks: its EHLO reply lists no STARTTLS (the one inside TLS)"
like "$out" '^<-  220 mx\.test ESMTP' "swaks: it got exim's 220 greeting"
check "exim: the message from swaks arrived over TLS1.3" \
    wait_for_match "$mx_log" " ${id:-none} <= a@example\.test H=\(client\.test\) \[127\.0\.0\.1\] P=esmtps X=TLS1\.3:"
check "exim delivered the swaks body to the mailbox" wait_for_match "$mx_mbox" "^$body\$"
[ -n "$id" ] || diag "swaks said:" "$out" "exim's log:" "$(cat "$mx_log")"

for mode in smtplib asyncio; do
    body="$mode body $$"
    out=$(RUN_TIMEOUT=40 run smtp "$PYTHON" "$CLIENTS/smtp_client.py" "$mode" 127.0.0.1 "$mx_port" "$body")
    ok $? "python $mode (plain) under protocol = smtp exits 0"
    like "$out" '^queued=250 ' "python $mode: exim accepted the message"
    like "$out" '^ehlo=8BITMIME$' "python $mode: it saw exim's EHLO keywords"
    unlike "$out" '^ehlo=STARTTLS$' "python $mode: no STARTTLS among them (the EHLO inside TLS)"
    id=$(printf '%s\n' "$out" | sed -n 's/^queued=250 OK id=\([^ ]*\).*/\1/p')
    check "exim: the message from $mode arrived over TLS1.3" \
        wait_for_match "$mx_log" " ${id:-none} <= a@example\.test H=\(client\.test\) \[127\.0\.0\.1\] P=esmtps X=TLS1\.3:"
    check "exim delivered the $mode body to the mailbox" wait_for_match "$mx_mbox" "^$body\$"
    [ -n "$id" ] || diag "$mode said:" "$out"
done
like "$(grep -c ' <= ' "$mx_log")" '^3$' "exim received exactly the three messages"

# ==== (c) an exim that offers no STARTTLS: refused, nothing sent =============
smtp_rule bare "$bare_port"
out=$(RUN_TIMEOUT=40 run bare swaks --server "127.0.0.1:$bare_port" --helo client.test \
    --from a@example.test --to user@example.test --body "bare body $$" --timeout 20 2>&1)
st=$?
[ $st -ne 0 ]
ok $? "no STARTTLS offered: swaks under protocol = smtp fails (exit $st)"
unlike "$out" '250 OK id=' "no STARTTLS offered: no message queued"
check "no STARTTLS offered: exim saw the connection end" \
    wait_for_match "$bare_log" 'SMTP connection from .*(lost|closed)'
unlike "$(cat "$bare_log")" ' <= |rejected|MAIL|RCPT|client\.test' \
    "no STARTTLS offered: exim's log has no message, no MAIL, no program EHLO"
[ ! -e "$WORK/bare.exim/mail/mbox" ]
ok $? "no STARTTLS offered: nothing delivered"
check "no STARTTLS offered: tlsshim's log says why" \
    grep -Eiq 'starttls' "$WORK/bare.tlsshim.log"
diag "exim (no STARTTLS) log:" "$(cat "$bare_log")" "tlsshim:" "$(cat "$WORK/bare.tlsshim.log" 2>/dev/null)"

# ==== (d) STARTTLS injection: plaintext after the 220, in one write ============
for mode in mail reply clean; do
    start_server "inj_$mode" "$PYTHON" "$CLIENTS/starttls_inject.py" \
        "$WORK/inj_$mode.port" "$WORK/inj_$mode.log" "$mode"
    port_var=inj_${mode}_port
    smtp_rule "inj_$mode" "${!port_var}"
    out=$(RUN_TIMEOUT=40 run "inj_$mode" swaks --server "127.0.0.1:${!port_var}" --helo client.test \
        --from a@example.test --to user@example.test --body "inject body $$" --timeout 20 2>&1)
    st=$?
    [ $st -ne 0 ]
    ok $? "$mode: swaks under protocol = smtp fails (exit $st)"
    unlike "$out" 'injected|evil|250 OK' "$mode: the program saw none of the server's plaintext"
    check "$mode: the server recorded the connection" wait_for_lines "$WORK/inj_$mode.log" 1 12
    rec=$(grep '^conn ' "$WORK/inj_$mode.log" | head -n 1)
    like "$rec" '^conn cmds=EHLO,STARTTLS ' "$mode: the server saw EHLO and STARTTLS, nothing else before its reply"
    if [ "$mode" = clean ]; then
        like "$rec" ' hello=yes ' "control (no injection): a ClientHello followed the 220"
    else
        like "$rec" ' after=0 first= hello=no end=eof$' \
            "$mode: not one byte (no ClientHello, no program bytes) after the injected reply"
        check "$mode: tlsshim logged a failure" grep -Eiq 'fail|refus|inject|unexpected' "$WORK/inj_$mode.tlsshim.log"
    fi
    diag "$mode: server: $rec" "tlsshim: $(tail -n 2 "$WORK/inj_$mode.tlsshim.log" 2>/dev/null)"
done

done_testing
