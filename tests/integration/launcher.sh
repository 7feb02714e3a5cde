#!/bin/bash
# launcher.sh -- the tlsshim command and the ways the library gets its policy.
# Proves:
#   * tlsshim check: a good policy exits 0 and prints the rules; a bad one
#     (unknown key on line 3) exits 2 naming FILE:3:;
#   * tlsshim -p BAD CMD exits 2 and does NOT run CMD; a group-writable
#     policy is refused (exit 2, the message says why);
#   * tlsshim explain: the rule, "TLS 1.3" and the TLS port for a matched
#     destination; "passed through" for an unmatched one;
#   * LD_PRELOAD=libtlsshim.so TLSSHIM_POLICY=... without the launcher
#     upgrades (server evidence); with a broken policy, the library refuses
#     every connection (fail closed, the server sees nothing);
#   * the policy is found through $TLSSHIM_POLICY and ~/.config/tlsshim/policy
#     when -p is not given (server evidence);
#   * TLSSHIM_LOG_LEVEL=info overrides the policy's log-level;
#   * exit statuses: the command's own (0, 3), 127 for a missing command,
#     126 for a non-executable file.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl
need_tlsshim
# The launcher must find the policy only where each test says.
unset TLSSHIM_POLICY TLSSHIM_LOG_LEVEL LD_PRELOAD

start_tserver srv
field() { tserver_field "$srv_log" "$1" "$2"; }
n=0

GOOD=$WORK/good.policy
write_policy "$GOOD" <<EOF
log = file:$WORK/good.tlsshim.log
log-level = info

[api]
match = localhost:18080
port = $srv_port
ca = $CERTS/ca.pem
EOF
BAD=$WORK/bad.policy
write_policy "$BAD" <<EOF
log-level = info
[api]
prot = 443
match = localhost:18080
EOF

# ==== 1. check =========================================================================================
out=$("$TLSSHIM" check -p "$GOOD" 2>&1)
is "$?" 0 "check good: exit 0"
like "$out" 'valid, 1 rule' "check good: says valid, 1 rule"
like "$out" '^\[api\]' "check good: prints the rule [api]"
like "$out" "port = $srv_port" "check good: prints the rule's port"

out=$("$TLSSHIM" check -p "$BAD" 2>&1)
is "$?" 2 "check bad: exit 2"
like "$out" "^$BAD:3: .*prot" "check bad: error names $BAD:3: and the key"

# ==== 2. a bad policy never runs the command ==================================================================
"$TLSSHIM" -p "$BAD" sh -c "touch '$WORK/ran'" 2>"$WORK/bad.err"
is "$?" 2 "run with a bad policy: exit 2"
[ ! -e "$WORK/ran" ]
ok $? "run with a bad policy: the command did not run"
like "$(cat "$WORK/bad.err")" "$BAD:3:" "run with a bad policy: the error names the line"
"$TLSSHIM" -p "$BAD" "${CURL[@]}" -o /dev/null http://localhost:18080/bad 2>/dev/null
is "$?" 2 "curl under a bad policy: exit 2 (the launcher's)"

GW=$WORK/gw.policy
cp "$GOOD" "$GW"
chmod 620 "$GW"
"$TLSSHIM" -p "$GW" sh -c "touch '$WORK/ran-gw'" 2>"$WORK/gw.err"
is "$?" 2 "group-writable policy: exit 2"
[ ! -e "$WORK/ran-gw" ]
ok $? "group-writable policy: the command did not run"
like "$(cat "$WORK/gw.err")" 'writable by group|permission|mode 0?620' "group-writable policy: the message says why"
out=$("$TLSSHIM" check -p "$GW" 2>&1)
is "$?" 2 "check group-writable policy: exit 2"

# ==== 3. explain ==========================================================================================
out=$("$TLSSHIM" explain -p "$GOOD" localhost:18080 2>&1)
is "$?" 0 "explain matched: exit 0"
like "$out" '\[api\]' "explain matched: names the rule"
like "$out" 'TLS 1\.3' "explain matched: says TLS 1.3"
like "$out" ":$srv_port" "explain matched: names the TLS port"
out=$("$TLSSHIM" explain -p "$GOOD" localhost:18081 2>&1)
like "$out" 'passed through' "explain unmatched: passed through"
check_fail "explain unmatched: names no rule" grep -q '\[api\]' <<<"$out"

# ==== 4. LD_PRELOAD by hand =======================================================================================
LD_PRELOAD=${TLSSHIM_PRELOAD:-$TLSSHIM_LIBRARY} TLSSHIM_POLICY=$GOOD "${CURL[@]}" -o /dev/null http://localhost:18080/preload
ok $? "LD_PRELOAD by hand: curl exits 0"
n=$((n + 1))
check "LD_PRELOAD by hand: server logged it" wait_for_lines "$srv_log" $n
is "$(field $n version) $(field $n sni) $(field $n first_line)" "TLS1.3 localhost GET /preload HTTP/1.1" \
    "LD_PRELOAD by hand: server got the request over TLS1.3"

# ... with a broken policy: every TCP connection is refused, nothing leaves
LD_PRELOAD=${TLSSHIM_PRELOAD:-$TLSSHIM_LIBRARY} TLSSHIM_POLICY=$BAD "${CURL[@]}" -o /dev/null \
    "http://127.0.0.1:$srv_port/preload-bad" 2>"$WORK/preload-bad.err"
is "$?" 7 "LD_PRELOAD, bad policy: curl cannot connect (even to an unmatched address)"
like "$(cat "$WORK/preload-bad.err")" 'invalid policy' "LD_PRELOAD, bad policy: the log says invalid policy"
LD_PRELOAD=${TLSSHIM_PRELOAD:-$TLSSHIM_LIBRARY} TLSSHIM_POLICY=$WORK/missing.policy "${CURL[@]}" -o /dev/null \
    "http://127.0.0.1:$srv_port/preload-missing" 2>/dev/null
is "$?" 7 "LD_PRELOAD, missing policy file: curl cannot connect"
sleep 0.3
is "$(tserver_conns "$srv_log")" $n "LD_PRELOAD, bad/missing policy: the server saw no connection"

# ==== 5. finding the policy without -p ==============================================================================
TLSSHIM_POLICY=$GOOD "$TLSSHIM" "${CURL[@]}" -o /dev/null http://localhost:18080/env
ok $? "TLSSHIM_POLICY, no -p: curl exits 0"
n=$((n + 1))
check "TLSSHIM_POLICY, no -p: server logged it" wait_for_lines "$srv_log" $n
is "$(field $n version) $(field $n first_line)" "TLS1.3 GET /env HTTP/1.1" "TLSSHIM_POLICY, no -p: upgraded"

mkdir -p "$WORK/home/.config/tlsshim"
cp "$GOOD" "$WORK/home/.config/tlsshim/policy"
chmod 600 "$WORK/home/.config/tlsshim/policy"
HOME=$WORK/home "$TLSSHIM" "${CURL[@]}" -o /dev/null http://localhost:18080/home
ok $? "~/.config/tlsshim/policy, no -p: curl exits 0"
n=$((n + 1))
check "~/.config/tlsshim/policy: server logged it" wait_for_lines "$srv_log" $n
is "$(field $n version) $(field $n first_line)" "TLS1.3 GET /home HTTP/1.1" "~/.config/tlsshim/policy: upgraded"

# ==== 6. TLSSHIM_LOG_LEVEL ===============================================================================================
write_policy "$WORK/quiet.policy" <<EOF
log = file:$WORK/quiet.tlsshim.log
log-level = error

[api]
match = localhost:18080
port = $srv_port
ca = $CERTS/ca.pem
EOF
: >"$WORK/quiet.tlsshim.log"
tlsshim_run "$WORK/quiet.policy" "${CURL[@]}" -o /dev/null http://localhost:18080/quiet
ok $? "log-level = error: curl exits 0"
check_fail "log-level = error: no info line" grep -q 'info:' "$WORK/quiet.tlsshim.log"
TLSSHIM_LOG_LEVEL=info tlsshim_run "$WORK/quiet.policy" "${CURL[@]}" -o /dev/null http://localhost:18080/loud
ok $? "TLSSHIM_LOG_LEVEL=info: curl exits 0"
check "TLSSHIM_LOG_LEVEL=info: the info line appears" grep -q 'info: rule \[api\] .*version=TLS1\.3' "$WORK/quiet.tlsshim.log"
n=$((n + 2))
check "log levels: server logged both" wait_for_lines "$srv_log" $n
is "$(field $n version) $(field $n first_line)" "TLS1.3 GET /loud HTTP/1.1" "TLSSHIM_LOG_LEVEL=info: upgraded"

# ==== 7. exit statuses ===================================================================================================
tlsshim_run "$GOOD" true
is "$?" 0 "tlsshim -p P true: exit 0"
tlsshim_run "$GOOD" sh -c 'exit 3'
is "$?" 3 "tlsshim -p P sh -c 'exit 3': exit 3"
tlsshim_run "$GOOD" "$WORK/no-such-command" 2>/dev/null
is "$?" 127 "missing command: exit 127"
tlsshim_run "$GOOD" no-such-command-in-path-tlsshim 2>/dev/null
is "$?" 127 "missing command in PATH: exit 127"
: >"$WORK/not-executable"
chmod 644 "$WORK/not-executable"
tlsshim_run "$GOOD" "$WORK/not-executable" 2>/dev/null
is "$?" 126 "non-executable file: exit 126"
# the command sees the preload and the policy
out=$(tlsshim_run "$GOOD" sh -c 'printf "%s|%s" "$LD_PRELOAD" "$TLSSHIM_POLICY"')
like "$out" "libtlsshim\.so.*\|$GOOD$" "the command's environment has LD_PRELOAD and TLSSHIM_POLICY"

done_testing
