#!/bin/bash
# pin.sh -- SPKI pins (pin = sha256//BASE64).  Proves:
#   * the right pin: the connection is upgraded (tserver: TLS1.3, request);
#   * a wrong pin: the client fails, tserver got no application bytes,
#     tlsshim's log says the key "matches no pin";
#   * pins alone are enough: a rule matching 127.0.0.1:PORT by address, with
#     a pin and NO server-name, upgrades a client that connects to the bare
#     address 127.0.0.1 (no name known: no SNI, identity = the pin);
#   * the same rule without the pin is refused ("no host name is known"),
#     never sent in clear: the server sees nothing at all.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl
need_tlsshim pin-server.txt
PIN_GOOD=$(cat "$CERTS/pin-server.txt")
PIN_OTHER=$(cat "$CERTS/pin-other.txt")

start_tserver srv
field() { tserver_field "$srv_log" "$1" "$2"; }
# every policy: rule [pinned]
POLICY_RULE=pinned

# ==== 1. the right pin ===================================================================
policy good "$srv_port" "pin = $PIN_GOOD"
tlsshim_run "$WORK/good.policy" "${CURL[@]}" -o /dev/null http://localhost:18080/good
ok $? "right pin: curl exits 0"
check "right pin: server logged the connection" wait_for_lines "$srv_log" 1
is "$(field 1 status) $(field 1 version) $(field 1 sni)" "ok TLS1.3 localhost" \
    "right pin: server saw TLS1.3, sni=localhost"
is "$(field 1 first_line)" "GET /good HTTP/1.1" "right pin: server got the request"
check "right pin: tlsshim log shows the upgrade" grep -q 'info: rule \[pinned\] .*verified version=TLS1\.3' \
    "$WORK/good.tlsshim.log"

# two pins, the right one second (pins are a set)
policy two "$srv_port" "pin = $PIN_OTHER" "pin = $PIN_GOOD"
tlsshim_run "$WORK/two.policy" "${CURL[@]}" -o /dev/null http://localhost:18080/two-pins
ok $? "two pins (right one second): curl exits 0"
check "two pins: server logged the connection" wait_for_lines "$srv_log" 2
is "$(field 2 version) $(field 2 first_line)" "TLS1.3 GET /two-pins HTTP/1.1" "two pins: server got the request over TLS1.3"

# ==== 2. a wrong pin =========================================================================
policy bad "$srv_port" "pin = $PIN_OTHER"
check_fail "wrong pin: curl fails" \
    tlsshim_run "$WORK/bad.policy" "${CURL[@]}" -o /dev/null http://localhost:18080/bad
check "wrong pin: server logged the attempt" wait_for_lines "$srv_log" 3
is "$(field 3 bytes_in)" 0 "wrong pin: server received no application bytes"
is "$(field 3 first_line)" - "wrong pin: server saw no request line"
check "wrong pin: tlsshim log says the key matches no pin" \
    grep -Eq "error: rule \[pinned\] .*matches no pin.*${PIN_GOOD//+/\\+}" "$WORK/bad.tlsshim.log"
diag "$(cat "$WORK/bad.tlsshim.log")"

# ==== 3. pins only: an address rule, no server-name, no name known ==============================
POLICY_MATCH=127.0.0.1:18081 policy ip "$srv_port" "pin = $PIN_GOOD"
tlsshim_run "$WORK/ip.policy" "${CURL[@]}" -o /dev/null http://127.0.0.1:18081/pins-only
ok $? "pins only: curl http://127.0.0.1 exits 0"
check "pins only: server logged the connection" wait_for_lines "$srv_log" 4
is "$(field 4 status) $(field 4 version)" "ok TLS1.3" "pins only: server saw TLS1.3"
is "$(field 4 sni)" - "pins only: no SNI (no name known)"
is "$(field 4 first_line)" "GET /pins-only HTTP/1.1" "pins only: server got the request"
like "$(cat "$WORK/ip.tlsshim.log")" 'info: rule \[pinned\] 127\.0\.0\.1:18081 -> .*version=TLS1\.3' \
    "pins only: tlsshim log shows the upgrade"
diag "$(cat "$WORK/ip.tlsshim.log")"

# A pin does not replace chain verification: a key from a CA the rule does
# not trust fails even when the pin matches that key.
PIN_UNTRUSTED=sha256//$(openssl x509 -in "$CERTS/untrusted.pem" -pubkey -noout |
    openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | openssl base64 -A)
start_tserver unt --cert "$CERTS/untrusted.pem" --key "$CERTS/untrusted-key.pem"
POLICY_MATCH=127.0.0.1:18082 policy unt "$unt_port" "pin = $PIN_UNTRUSTED"
check_fail "pin of an untrusted chain: curl fails" \
    tlsshim_run "$WORK/unt.policy" "${CURL[@]}" -o /dev/null http://127.0.0.1:18082/untrusted
check "pin of an untrusted chain: server logged the attempt" wait_for_lines "$unt_log" 1
is "$(tserver_field "$unt_log" 1 bytes_in)" 0 "pin of an untrusted chain: server received no application bytes"
check "pin of an untrusted chain: tlsshim log says the issuer is unknown" \
    grep -Eiq 'error: rule \[pinned\] .*(issuer is unknown|not trusted)' "$WORK/unt.tlsshim.log"
diag "$(cat "$WORK/unt.tlsshim.log")"

# ==== 4. the same without a pin: refused, nothing sent =========================================
POLICY_MATCH=127.0.0.1:18081 policy nopin "$srv_port"
before=$(tserver_conns "$srv_log")
out=$(tlsshim_run "$WORK/nopin.policy" "${CURL[@]}" -o /dev/null http://127.0.0.1:18081/nopin 2>&1)
st=$?
[ $st -ne 0 ]
ok $? "no pin, no name: curl fails (exit $st: $out)"
check "no pin, no name: tlsshim log says no host name is known" \
    grep -q 'error: rule \[pinned\] 127\.0\.0\.1:18081: refused: no host name is known' "$WORK/nopin.tlsshim.log"
sleep 0.3
is "$(tserver_conns "$srv_log")" "$before" "no pin, no name: the server saw no connection at all"

done_testing
