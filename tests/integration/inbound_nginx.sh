#!/bin/bash
# inbound_nginx.sh -- inbound, event loop and pre-fork: a PLAIN nginx
# (`listen 127.0.0.1:PORT;`, no ssl anywhere in its configuration) runs
# under tlsshim with a master and 2 workers: the listening socket is opened
# by the master before fork and the workers accept4(SOCK_NONBLOCK) it, wait
# in edge-triggered epoll, and send files with sendfile().
# Proves, from both ends:
#   * curl (verifying with ca.pem, from $SRC) saw TLS 1.3 and a verified
#     certificate and got a small file and a 20 MiB one (sha256 compared:
#     the sendfile path) exactly;
#   * nginx's access log shows each plaintext request line and the client's
#     real address and port ($remote_addr:$remote_port = curl's own
#     local_ip:local_port);
#   * wrk over https (20 connections, 2 s, keep-alive) gets >0 requests and
#     no socket errors and no non-2xx answers, and nginx logged them.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_cmd curl
[ -x "$NGINX" ] || skip_all "nginx not found at '$NGINX'"
need_tlsshim ca.pem server.pem server-key.pem

SRC=$(client_addr)
re_src=${SRC//./\\.}
prefix=$WORK/ngx
mkdir -p "$prefix/tmp" "$prefix/www"
echo "hello inbound nginx $$" >"$prefix/www/small.txt"
head -c 20971520 /dev/urandom >"$prefix/www/big.bin"

# As root, nginx would switch its workers to "nobody", who cannot read the
# private work directory: keep them root.
userline=""
[ "$(id -u)" = 0 ] && userline="user root root;"
cat >"$prefix/nginx.conf.in" <<EOF
$userline
worker_processes 2;
pid $prefix/nginx.pid;
error_log stderr info;
events { worker_connections 128; }
http {
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 5s;
    log_format inbound '\$remote_addr:\$remote_port pid=\$pid "\$request" \$status \$body_bytes_sent';
    access_log $WORK/ngx.access.log inbound;
    server {
        listen 127.0.0.1:@PORT@;
        server_name localhost;
        root $prefix/www;
    }
}
EOF
INBOUND_TEMPLATE=$prefix/nginx.conf.in start_inbound ngx -- \
    "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e stderr -g 'daemon off; master_process on;'
alog=$WORK/ngx.access.log
diag "nginx (master + 2 workers) on 127.0.0.1:$ngx_port, clients from $SRC"

# log_has REGEX: the access log has a line matching REGEX (waits up to 10 s).
log_has() { wait_for_match "$alog" "$1"; }

# ==== 1. small file ==================================================================
https_get small "https://localhost:$ngx_port/small.txt"
ok $? "curl https GET /small.txt exits 0"
check "curl: TLS 1.3 and a verified certificate" saw_tls13 "$WORK/small.trace"
is "$(cat "$WORK/small.body")" "hello inbound nginx $$" "curl: the file's content"
local_small=$(cat "$WORK/small.local")
like "$local_small" "^$re_src:[0-9]+\$" "curl connected from $SRC"
check "access log: GET /small.txt from curl's own address and port ($local_small)" \
    log_has "^${local_small//./\\.} pid=[0-9]+ \"GET /small\.txt HTTP/1\.1\" 200 "

# ==== 2. 20 MiB: sendfile ================================================================
https_get big "https://localhost:$ngx_port/big.bin"
ok $? "curl https GET /big.bin exits 0"
check "curl (big): TLS 1.3 and a verified certificate" saw_tls13 "$WORK/big.trace"
is "$(sha256sum <"$WORK/big.body" | cut -d' ' -f1)" "$(sha256sum <"$prefix/www/big.bin" | cut -d' ' -f1)" \
    "curl (big): sha256 of the 20 MiB body matches the file"
local_big=$(cat "$WORK/big.local")
check "access log: GET /big.bin, 20971520 bytes, from $local_big" \
    log_has "^${local_big//./\\.} pid=[0-9]+ \"GET /big\.bin HTTP/1\.1\" 200 20971520\$"

# ==== 3. wrk: 20 keep-alive connections =================================================
if command -v wrk >/dev/null 2>&1; then
    before=$(nginx_lines "$alog")
    wout=$(timeout 30 wrk -t 2 -c 20 -d 2s "https://127.0.0.1:$ngx_port/small.txt" 2>&1)
    ok $? "wrk over https exits 0"
    diag "$wout"
    n=$(printf '%s\n' "$wout" | sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p')
    like "${n:-0}" '^[1-9][0-9]*$' "wrk: more than 0 requests"
    check_fail "wrk: no socket errors" grep -q 'Socket errors' <<<"$wout"
    check_fail "wrk: no non-2xx answers" grep -q 'Non-2xx' <<<"$wout"
    check "nginx logged at least as many requests as wrk counted" \
        wait_for_requests "$alog" $((before + ${n:-1}))
    diag "requests per worker: $(sed -n "$((before + 1)),\$p" "$alog" | grep -o 'pid=[0-9]*' | sort | uniq -c | tr '\n' ' ')"
else
    for i in 1 2 3 4 5; do skip "wrk check $i" "wrk not installed"; done
fi

# ==== 4. tlsshim's own line ==============================================================
check "tlsshim log: the inbound connection from $local_small accepted, TLS1.3" \
    wait_for_match "$ngx_tlog" "info: rule \[ngx\] ${local_small//./\\.} -> 127\.0\.0\.1:$ngx_port: accepted .*version=TLS1\.3 "
check_fail "tlsshim log: no error line" grep -q 'error:' "$ngx_tlog"

done_testing
