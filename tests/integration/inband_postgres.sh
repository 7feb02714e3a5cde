#!/bin/bash
# inband_postgres.sh -- protocol = postgres against a real PostgreSQL 15 that
# only lets clients in over TLS (pg_hba: hostssl only; TLS 1.3 minimum).
# An unmodified psql speaking plaintext (sslmode=disable, and sslmode=prefer
# whose own SSLRequest tlsshim answers "N") runs under a rule
#     match = 127.0.0.1:PORT  protocol = postgres  ca = ca.pem  server-name = localhost
# Proves, from the server's side:
#   * before: the same psql without tlsshim, or under a rule with protocol =
#     tls (TLS from the first byte), is refused;
#   * pg_stat_ssl of psql's own backend says ssl = t, TLSv1.3; the server's
#     log says "SSL enabled (protocol=TLSv1.3" for each session by its
#     application_name; a row inserted through tlsshim is read back by
#     psql's own TLS (verify-full);
#   * a python asyncio client (non-blocking sockets in its own event loop)
#     gets the same;
#   * a server that answers "N" (ssl = off, and a raw listener recording
#     every byte): the program's connection fails, tlsshim logs why, and
#     nothing but tlsshim's 8-byte SSLRequest reached the server.
# Debian packages: postgresql (postgresql-15, postgresql-client-15).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/inband_lib_db.sh"
set -u

need_python
need_tlsshim ca.pem server.pem server-key.pem
[ -x "$PG_BIN/psql" ] || skip_all "psql not found in $PG_BIN"

start_pg pg
diag "postgres (TLS required) on 127.0.0.1:$pg_port"
SSLREQ=0000000804d2162f

# psql_plain APP SSLMODE PORT SQL [RULE]: psql in plaintext (no TLS of its
# own unless the server wants it and SSLMODE allows), under tlsshim with
# $WORK/RULE.policy if RULE is given.  stdout+stderr, unaligned, no header.
psql_plain() {
    local app=$1 mode=$2 port=$3 sql=$4 rule=${5:-}
    local -a pre=()
    [ -z "$rule" ] || pre=("$TLSSHIM" -p "$WORK/$rule.policy")
    timeout 30 "${pre[@]}" "$PG_BIN/psql" -X -q -A -t \
        "host=127.0.0.1 port=$port user=postgres dbname=postgres application_name=$app sslmode=$mode" \
        -c "$sql" 2>&1
}
# authorized APP: the server's log line for a session of application APP.
authorized() { grep -a "connection authorized: .*application_name=$1 " "$pg_log"; }
SSLQ="select ssl, version from pg_stat_ssl where pid = pg_backend_pid()"

# ==== 1. before: refused ==============================================================
out=$(psql_plain before disable "$pg_port" "select 1")
like "$out" 'no pg_hba\.conf entry for host "127\.0\.0\.1".*no encryption' \
    "without tlsshim: psql sslmode=disable is refused (no pg_hba.conf entry, no encryption)"
POLICY_MATCH=127.0.0.1:$pg_port policy tlsfirst "" "server-name = localhost"
out=$(psql_plain tlsfirst disable "$pg_port" "select 1" tlsfirst)
unlike "$out" '^1$' "protocol = tls (TLS from the first byte): psql gets no answer from postgres"
diag "protocol = tls: $out"
unlike "$(authorized tlsfirst)" . "protocol = tls: the server authorized no such session"

# ==== 2. protocol = postgres: the server's own view ====================================
POLICY_MATCH=127.0.0.1:$pg_port policy pgp "" "protocol = postgres" "server-name = localhost"
is "$(psql_plain shim_disable disable "$pg_port" "$SSLQ" pgp)" "t|TLSv1.3" \
    "sslmode=disable under tlsshim: pg_stat_ssl of psql's own backend: ssl t, TLSv1.3"
like "$(authorized shim_disable)" 'SSL enabled \(protocol=TLSv1\.3' \
    "server log: the sslmode=disable session was authorized with SSL enabled, TLSv1.3"
is "$(psql_plain shim_prefer prefer "$pg_port" "$SSLQ" pgp)" "t|TLSv1.3" \
    "sslmode=prefer under tlsshim: pg_stat_ssl: ssl t, TLSv1.3"
like "$(authorized shim_prefer)" 'SSL enabled \(protocol=TLSv1\.3' \
    "server log: the sslmode=prefer session was authorized with SSL enabled, TLSv1.3"
check "tlsshim log: psql's own SSLRequest answered N locally" \
    wait_for_match "$WORK/pgp.tlsshim.log" 'rule \[pgp\] .*asked for SSL itself: answered N'
check "tlsshim log: protocol=postgres, TLS1.3, localhost verified" \
    wait_for_match "$WORK/pgp.tlsshim.log" "rule \[pgp\] 127\.0\.0\.1:$pg_port -> .*server-name=localhost verified version=TLS1\.3 .*protocol=postgres"

# ==== 3. data through tlsshim, read back over psql's own TLS ===========================
pg_tls pg -c "create table notes (app text, txt text)" >/dev/null
ok $? "setup over psql's own TLS (verify-full): table created"
val="written through tlsshim $$ $RANDOM"
out=$(psql_plain shim_insert disable "$pg_port" \
    "insert into notes select current_setting('application_name'), '$val' || ' ' || ssl::text from pg_stat_ssl where pid = pg_backend_pid()" pgp)
is "$out" "" "insert under tlsshim (sslmode=disable) succeeds"
is "$(pg_tls pg -c "select app, txt from notes")" "shim_insert|$val true" \
    "psql's own TLS reads the row back: it arrived, written by a TLS session"
is "$(psql_plain shim_read disable "$pg_port" "select txt from notes" pgp)" "$val true" \
    "and a second plaintext psql under tlsshim reads it too"

# ==== 4. non-blocking: python asyncio ==================================================
out=$(timeout 30 "$TLSSHIM" -p "$WORK/pgp.policy" "$PYTHON" "$CLIENTS/pg_asyncio.py" \
    127.0.0.1 "$pg_port" postgres shim_asyncio "$SSLQ; select txt from notes" 2>&1)
ok $? "python asyncio client under tlsshim exits 0"
like "$out" '^row=t\|TLSv1\.3$' "asyncio: pg_stat_ssl of its backend: ssl t, TLSv1.3"
like "$out" "^row=$val true\$" "asyncio: reads the row"
like "$(authorized shim_asyncio)" 'SSL enabled \(protocol=TLSv1\.3' \
    "server log: the asyncio session was authorized with SSL enabled, TLSv1.3"

# ==== 5. a server that does not do TLS: fail closed, nothing sent ======================
start_pg pgn nossl
POLICY_MATCH=127.0.0.1:$pgn_port policy pgn "" "protocol = postgres" "server-name = localhost"
out=$(psql_plain shim_nossl disable "$pgn_port" "select 'leaked'" pgn)
unlike "$out" 'leaked' "ssl = off server: psql under tlsshim gets no answer"
like "$out" 'connection to server .* failed' "ssl = off server: psql reports a connection failure"
diag "psql: $out"
check "tlsshim log: the server answered N (it does not do TLS)" \
    wait_for_match "$WORK/pgn.tlsshim.log" "rule \[pgn\] 127\.0\.0\.1:$pgn_port.* does not do TLS \(answered N"
diag "tlsshim: $(grep -a "rule \[pgn\]" "$WORK/pgn.tlsshim.log")"
check "ssl = off server: it logged the connection" \
    wait_for_match "$pgn_log" 'connection received: host=127\.0\.0\.1'
# The control: the same psql without tlsshim is logged there by user and
# verdict.  Counted after it, so that anything of the first psql's arriving
# late would count too.
psql_plain control disable "$pgn_port" "select 1" >/dev/null
check "control: a plain psql's startup packet does show in that log" \
    wait_for_match "$pgn_log" 'no pg_hba\.conf entry for host "127\.0\.0\.1", user "postgres"'
is "$(grep -acE 'user.{0,3}postgres|connection authorized|shim_nossl' "$pgn_log")" 1 \
    "ssl = off server: one startup packet reached it, the control's (none from tlsshim)"

start_refuser raw pg
POLICY_MATCH=127.0.0.1:$raw_port policy pgraw "" "protocol = postgres" "server-name = localhost"
out=$(psql_plain shim_raw disable "$raw_port" "select 'leaked'" pgraw)
like "$out" 'connection to server .* failed' "raw listener answering N: psql reports a connection failure"
check "raw listener: the connection ended" wait_for_match "$raw_log" '^conn '
is "$(sed -n 's/^conn .*hex=//p' "$raw_log")" "$SSLREQ" \
    "raw listener: the only bytes that arrived are tlsshim's 8-byte SSLRequest"

done_testing
