#!/bin/bash
# inbound_node.sh -- inbound, libuv's event loop (epoll, non-blocking
# accept): a plain node http.createServer (clients/inbound_http.js) runs
# under tlsshim with a `listen` rule.
# Proves, from both ends:
#   * curl (verifying with ca.pem, from $SRC) saw TLS 1.3 and a verified
#     certificate and got node's answer; twice over one keep-alive
#     connection (two URLs, one curl);
#   * python's ssl module saw TLSv1.3 too;
#   * node's own log (req.socket.remoteAddress/remotePort) shows each
#     request line with the client's real address and port.
# Debian package: nodejs.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_cmd curl node
need_tlsshim ca.pem server.pem server-key.pem

SRC=$(client_addr)
re_src=${SRC//./\\.}
nlog=$WORK/node.log
: >"$nlog"
start_inbound nd -- node "$CLIENTS/inbound_http.js" @PORT@ "$nlog"
diag "node $(node --version) on 127.0.0.1:$nd_port, clients from $SRC"

# ==== 1. curl, two requests on one connection ===========================================
out=$("${CURL[@]}" -v --cacert "$CERTS/ca.pem" --interface "$SRC" -w '%{local_ip}:%{local_port}\n' \
    "https://localhost:$nd_port/one" "https://localhost:$nd_port/two" 2>"$WORK/one.trace")
ok $? "curl https GET /one /two exits 0"
check "curl: TLS 1.3 and a verified certificate" saw_tls13 "$WORK/one.trace"
is "$(printf '%s\n' "$out" | grep '^hello')" $'hello from node /one\nhello from node /two' "curl: node's two answers"
check "curl reused its connection" grep -q 'Re-using existing connection' "$WORK/one.trace"
me=$(printf '%s\n' "$out" | grep -v '^hello' | sort -u)
is "$(printf '%s\n' "$me" | wc -l)" 1 "curl: both requests from one local address and port"
like "$me" "^$re_src:[0-9]+\$" "curl connected from $SRC"
check "node log: GET /one from curl's address and port ($me)" \
    wait_for_match "$nlog" "^req ${re_src} ${me##*:} GET /one\$"
check "node log: GET /two from the same address and port" \
    wait_for_match "$nlog" "^req ${re_src} ${me##*:} GET /two\$"

# ==== 2. python ssl ========================================================================
out=$("$PYTHON" "$CLIENTS/inbound_client.py" --ca "$CERTS/ca.pem" --source "$SRC" \
    --send 'GET /py HTTP/1.0\r\n\r\n' 127.0.0.1 "$nd_port")
ok $? "python ssl client exits 0"
like "$out" '^version=TLSv1\.3$' "python ssl: TLSv1.3"
like "$out" '^verified=yes$' "python ssl: certificate verified"
like "$out" '^reply=hello from node /py$' "python ssl: node's answer"
py=$(printf '%s\n' "$out" | sed -n 's/^local=//p')
check "node log: GET /py from $py" wait_for_match "$nlog" "^req ${re_src} ${py##*:} GET /py\$"

# ==== 3. tlsshim's own line ==================================================================
check "tlsshim log: the inbound connection from $me accepted, TLS1.3" \
    wait_for_match "$nd_tlog" "info: rule \[nd\] ${me//./\\.} -> 127\.0\.0\.1:$nd_port: accepted .*version=TLS1\.3 "

done_testing
