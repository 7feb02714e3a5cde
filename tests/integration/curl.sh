#!/bin/bash
# curl.sh -- unmodified curl (and wget) speaking plain http:// are upgraded
# to TLS 1.3 by tlsshim.  Proves, from tserver's log:
#   * the connection is TLS 1.3 with SNI "localhost", and the server got the
#     request line and exactly the bytes curl wrote (bytes_in, sha256_in);
#   * a second connection from the same process resumes the session
#     (server: resumed=1; tlsshim's log: resumed=yes);
#   * a 5 MB download arrives intact (sha256 of the body);
#   * the launcher's -v puts the info line on stderr (and only -v does);
#   * the same for wget, a second HTTP client (if installed).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl
need_tlsshim

field() { tserver_field "$srv_log" "$1" "$2"; }

start_tserver srv
POLICY_LOG=file:$TLOG POLICY_RULE=api policy p "$srv_port"

# ==== 1. one request =============================================================
body=$(tlsshim_run "$WORK/p.policy" "${CURL[@]}" -H 'User-Agent: tlsshim-test' -H 'Accept:' \
    http://localhost:18080/x)
ok $? "curl http://localhost:18080/x exits 0"
check "server logged one connection" wait_for_lines "$srv_log" 1
is "$(field 1 status)" ok "server: status=ok"
is "$(field 1 version)" TLS1.3 "server: version=TLS1.3"
is "$(field 1 sni)" localhost "server: sni=localhost"
is "$(field 1 resumed)" 0 "server: first connection is a full handshake"
is "$(field 1 first_line)" "GET /x HTTP/1.1" "server: first_line is the request line"
req='GET /x HTTP/1.1\r\nHost: localhost:18080\r\nUser-Agent: tlsshim-test\r\n\r\n'
# shellcheck disable=SC2059
is "$(field 1 bytes_in)" "$(printf "$req" | wc -c)" "server: bytes_in = length of curl's request"
# shellcheck disable=SC2059
is "$(field 1 sha256_in)" "$(printf "$req" | sha256sum | cut -d' ' -f1)" \
    "server: sha256_in = hash of exactly curl's request"
like "$(field 1 closed)" '^(notify|eof)$' "server: connection closed cleanly ($(field 1 closed))"
like "$body" 'sni=localhost' "curl printed the body the server generated"
like "$(cat "$TLOG" 2>/dev/null)" \
    "info: rule \[api\] 127\.0\.0\.1:18080 -> 127\.0\.0\.1:$srv_port: server-name=localhost verified version=TLS1\.3 .*resumed=no" \
    "tlsshim log: info line for the upgraded connection"

# ==== 2. two URLs, one process: resumption ========================================
: >"$TLOG"
tlsshim_run "$WORK/p.policy" "${CURL[@]}" -o /dev/null -o /dev/null -H 'Connection: close' \
    http://localhost:18080/first http://localhost:18080/second
ok $? "curl with two URLs exits 0"
check "server logged two more connections" wait_for_lines "$srv_log" 3
is "$(field 2 first_line)" "GET /first HTTP/1.1" "server: 1st URL on its own connection"
is "$(field 3 first_line)" "GET /second HTTP/1.1" "server: 2nd URL on a new connection"
is "$(field 2 resumed)" 0 "server: 1st connection of the process: full handshake"
is "$(field 3 resumed)" 1 "server: 2nd connection of the process RESUMED"
is "$(field 3 version)" TLS1.3 "server: resumed connection is TLS1.3"
is "$(grep -Ec 'resumed=no( |$)' "$TLOG")" 1 "tlsshim log: one resumed=no"
is "$(grep -Ec 'resumed=yes( |$)' "$TLOG")" 1 "tlsshim log: one resumed=yes"

# ==== 3. a 5 MB download ==========================================================
N=5242880
got=$(tlsshim_run "$WORK/p.policy" "${CURL[@]}" "http://localhost:18080/bytes/$N" | sha256sum | cut -d' ' -f1)
exp=$("$PYTHON" "$CLIENTS/pattern_sha256.py" $N)
is "$got" "$exp" "5 MB body arrived intact (sha256)"
check "server logged the download" wait_for_lines "$srv_log" 4
is "$(field 4 first_line)" "GET /bytes/$N HTTP/1.1" "server: first_line of the download"
is "$(field 4 status)" ok "server: download status=ok"
is "$(field 4 version)" TLS1.3 "server: download over TLS1.3"
out=$(field 4 bytes_out)
[ "${out:-0}" -gt $N ]
ok $? "server: bytes_out > $N ($out)"

# ==== 4. launcher -v: the info line on stderr =======================================
# No log= and no log-level: stderr at warning.  Only -v shows the info line.
write_policy "$WORK/quiet.policy" <<EOF
[api]
match = localhost:18080
port = $srv_port
ca = $CERTS/ca.pem
EOF
"$TLSSHIM" -p "$WORK/quiet.policy" "${CURL[@]}" -o /dev/null http://localhost:18080/quiet 2>"$WORK/quiet.err"
ok $? "curl without -v exits 0"
check_fail "without -v: no info line on stderr" grep -q 'info: rule \[api\]' "$WORK/quiet.err"
"$TLSSHIM" -p "$WORK/quiet.policy" -v "${CURL[@]}" -o /dev/null http://localhost:18080/verbose 2>"$WORK/verbose.err"
ok $? "curl with -v exits 0"
like "$(cat "$WORK/verbose.err")" \
    "^tlsshim\[[0-9]+\]: info: rule \[api\] 127\.0\.0\.1:18080 -> 127\.0\.0\.1:$srv_port: server-name=localhost verified version=TLS1\.3" \
    "with -v: the info line is on stderr"
check "server logged both" wait_for_lines "$srv_log" 6
is "$(field 5 first_line) $(field 5 version)" "GET /quiet HTTP/1.1 TLS1.3" "server: quiet run upgraded"
is "$(field 6 first_line) $(field 6 version)" "GET /verbose HTTP/1.1 TLS1.3" "server: verbose run upgraded"

# ==== 5. wget ========================================================================
if command -v wget >/dev/null 2>&1; then
    : >"$TLOG"
    start_tserver wsrv
    POLICY_LOG=file:$TLOG POLICY_RULE=web policy w "$wsrv_port"
    WGET=(wget -q --no-proxy --tries=1 --timeout=20)
    tlsshim_run "$WORK/w.policy" "${WGET[@]}" -O "$WORK/wget.out" \
        http://localhost:18080/w1 http://localhost:18080/w2
    ok $? "wget with two URLs exits 0"
    check "server logged two wget connections" wait_for_lines "$wsrv_log" 2
    is "$(tserver_field "$wsrv_log" 1 first_line)" "GET /w1 HTTP/1.1" "server: wget's 1st request line"
    is "$(tserver_field "$wsrv_log" 2 first_line)" "GET /w2 HTTP/1.1" "server: wget's 2nd request line"
    is "$(tserver_field "$wsrv_log" 1 version)" TLS1.3 "server: wget connection is TLS1.3"
    is "$(tserver_field "$wsrv_log" 1 sni)" localhost "server: wget SNI localhost"
    is "$(tserver_field "$wsrv_log" 2 resumed)" 1 "server: wget's 2nd connection resumed"
    like "$(cat "$TLOG")" 'info: rule \[web\] .*resumed=yes' "tlsshim log: wget resumed=yes"
    got=$(tlsshim_run "$WORK/w.policy" "${WGET[@]}" -O - \
        "http://localhost:18080/bytes/1000000" | sha256sum | cut -d' ' -f1)
    is "$got" "$("$PYTHON" "$CLIENTS/pattern_sha256.py" 1000000)" "wget: 1 MB body intact"
    check "server logged the wget download" wait_for_lines "$wsrv_log" 3
    is "$(tserver_field "$wsrv_log" 3 status) $(tserver_field "$wsrv_log" 3 version)" "ok TLS1.3" \
        "server: wget download ok over TLS1.3"
else
    for i in 1 2 3 4 5 6 7 8 9 10 11; do skip "wget check $i" "wget not installed"; done
fi

done_testing
