#!/bin/bash
# banner.sh -- protocols where the SERVER speaks first (SMTP/FTP style), run
# by tserver --mode banner ("220 tserver ready\r\n", then an echo).  The
# client writes nothing before it has read the banner, so tlsshim must
# complete the TLS handshake on the client's first read or readiness wait.
# Proves, from tserver's log (first_line, bytes_in, sha256_in, version):
#   * a blocking python socket client reads the banner, then its line is
#     received encrypted and echoed;
#   * an asyncio client that only waits for readability (epoll) gets the
#     banner: the handshake advances from epoll alone;
#   * bash's /dev/tcp with redirections (read -r <&3, echo >&3: dup2 onto
#     stdin/stdout, stdio writes) works and the exact bytes arrive.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim

start_tserver ban --mode banner
POLICY_LOG=file:$TLOG POLICY_RULE=smtp POLICY_MATCH=localhost:18025 policy p "$ban_port"
field() { tserver_field "$ban_log" "$1" "$2"; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# ==== 1. blocking python client ======================================================
out=$(run p "$PYTHON" "$CLIENTS/banner_client.py" blocking localhost 18025 "HELO blocking")
ok $? "blocking: client exits 0"
is "$(printf '%s\n' "$out" | sed -n 1p)" "220 tserver ready" "blocking: banner read first"
is "$(printf '%s\n' "$out" | sed -n 2p)" "HELO blocking" "blocking: line echoed back"
check "blocking: server logged the connection" wait_for_lines "$ban_log" 1
is "$(field 1 version) $(field 1 sni)" "TLS1.3 localhost" "blocking: server saw TLS1.3, sni=localhost"
is "$(field 1 first_line)" "HELO blocking" "blocking: server received the line"
is "$(field 1 bytes_in)" 15 "blocking: server received exactly 15 bytes"
is "$(field 1 sha256_in)" "$(sha $'HELO blocking\r\n')" "blocking: sha256_in matches the line sent"

# ==== 2. asyncio: only waits for readability before reading ============================
out=$(run p "$PYTHON" "$CLIENTS/banner_client.py" asyncio localhost 18025 "HELO asyncio")
ok $? "asyncio: client exits 0"
is "$(printf '%s\n' "$out" | sed -n 1p)" "220 tserver ready" "asyncio: banner arrived (handshake driven by epoll)"
is "$(printf '%s\n' "$out" | sed -n 2p)" "HELO asyncio" "asyncio: line echoed back"
check "asyncio: server logged the connection" wait_for_lines "$ban_log" 2
is "$(field 2 version) $(field 2 status)" "TLS1.3 ok" "asyncio: server saw TLS1.3, status=ok"
is "$(field 2 first_line)" "HELO asyncio" "asyncio: server received the line"
is "$(field 2 sha256_in)" "$(sha $'HELO asyncio\r\n')" "asyncio: sha256_in matches the line sent"

# ==== 3. bash /dev/tcp ==================================================================
# read/echo with <&3 / >&3: bash dup2()s fd 3 onto stdin/stdout around the
# builtin; echo writes through stdio.
out=$(run p bash -c 'exec 3<>/dev/tcp/localhost/18025 || exit 9
read -r l <&3 || exit 10
printf "%s\n" "$l"
echo "hi from bash" >&3 || exit 11
read -r l <&3 || exit 12
printf "%s\n" "$l"
exec 3>&-')
ok $? "bash: script exits 0"
is "$(printf '%s\n' "$out" | sed -n 1p | tr -d '\r')" "220 tserver ready" "bash: banner read over /dev/tcp"
is "$(printf '%s\n' "$out" | sed -n 2p)" "hi from bash" "bash: line echoed back"
check "bash: server logged the connection" wait_for_lines "$ban_log" 3
is "$(field 3 version) $(field 3 sni)" "TLS1.3 localhost" "bash: server saw TLS1.3, sni=localhost"
is "$(field 3 first_line)" "hi from bash" "bash: server received the line"
is "$(field 3 bytes_in)" 13 "bash: server received exactly 13 bytes"
is "$(field 3 sha256_in)" "$(sha $'hi from bash\n')" "bash: sha256_in matches exactly the bytes echo wrote"

is "$(grep -c 'info: rule \[smtp\] 127\.0\.0\.1:18025 -> .*version=TLS1\.3' "$TLOG")" 3 \
    "tlsshim log: three upgraded connections"

done_testing
