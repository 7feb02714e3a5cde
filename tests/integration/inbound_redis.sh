#!/bin/bash
# inbound_redis.sh -- inbound, a single-threaded event loop that accept()s,
# then sets O_NONBLOCK itself: a PLAIN redis-server (no --tls-port) runs
# under tlsshim with a `listen` rule.
# Proves, from both ends:
#   * redis-cli --tls (verifying with ca.pem) can SET and GET; with a CA that
#     did not sign the server's certificate it fails (the client verifies);
#   * python's ssl module saw TLSv1.3 and a verified certificate, and
#     redis's own CLIENT LIST shows that connection with the client's real
#     address and port (addr= equals the client's getsockname);
#   * tlsshim logged the inbound connection with the client's address.
# Debian packages: redis-server, redis-tools.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_cmd redis-server redis-cli
need_tlsshim ca.pem untrusted-ca.pem server.pem server-key.pem
redis-cli --help 2>&1 | grep -q -- '--tls' || skip_all "redis-cli built without TLS"

SRC=$(client_addr)
re_src=${SRC//./\\.}
mkdir -p "$WORK/redis"
# protected-mode off: redis (no password) would refuse a client from
# 127.0.0.2 -- it sees the real address, which is the point here.
start_inbound red -- redis-server --port @PORT@ --bind 127.0.0.1 --save '' --appendonly no \
    --protected-mode no --daemonize no --dir "$WORK/redis"
diag "redis-server on 127.0.0.1:$red_port, clients from $SRC"

cli() { timeout 20 redis-cli --tls --cacert "$CERTS/ca.pem" -h 127.0.0.1 -p "$red_port" "$@" 2>&1; }

# ==== 1. redis-cli --tls ===============================================================
is "$(cli SET inbound "value $$")" OK "redis-cli --tls: SET k v answers OK"
is "$(cli GET inbound)" "value $$" "redis-cli --tls: GET k returns the value"
out=$(timeout 20 redis-cli --tls --cacert "$CERTS/untrusted-ca.pem" -h 127.0.0.1 -p "$red_port" GET inbound 2>&1)
unlike=$(printf '%s\n' "$out" | grep -c "value $$")
is "$unlike" 0 "redis-cli --tls with another CA: no value (it verifies the certificate)"
like "$out" '[Cc]ertificate|SSL|TLS' "redis-cli --tls with another CA: a certificate error"
diag "redis-cli with the untrusted CA: $out"

# ==== 2. python ssl: CLIENT LIST from the server's side =================================
out=$("$PYTHON" "$CLIENTS/inbound_client.py" --ca "$CERTS/ca.pem" --source "$SRC" \
    --send 'CLIENT LIST\r\nGET inbound\r\nQUIT\r\n' 127.0.0.1 "$red_port")
ok $? "python ssl client exits 0"
like "$out" '^version=TLSv1\.3$' "python ssl: TLSv1.3"
like "$out" '^verified=yes$' "python ssl: certificate verified (localhost, ca.pem)"
me=$(printf '%s\n' "$out" | sed -n 's/^local=//p')
like "$me" "^$re_src:[0-9]+\$" "python ssl: connected from $SRC"
like "$out" "^reply=id=[0-9]+ addr=${me//./\\.} laddr=127\.0\.0\.1:$red_port .*cmd=client\|list" \
    "CLIENT LIST: redis sees this connection from its real address $me"
like "$out" "^reply=value $$\$" "python ssl: GET over the same connection"
like "$out" '^reply=\+OK$' "python ssl: QUIT answered +OK"

# ==== 3. tlsshim's own line ==============================================================
check "tlsshim log: the inbound connection from $me accepted, TLS1.3" \
    wait_for_match "$red_tlog" "info: rule \[red\] ${me//./\\.} -> 127\.0\.0\.1:$red_port: accepted .*version=TLS1\.3 "

done_testing
