#!/bin/bash
# inbound_failures.sh -- inbound refusals, seen from both ends.
#   * python http.server (plaintext = refuse, the default): a plaintext
#     curl and a raw plaintext request (socat) get no HTTP answer; a TLS 1.2
#     client (openssl s_client -tls1_2, python ssl) fails with a
#     protocol_version alert; tlsshim logs a warning naming each client's
#     address and port; the server itself logged none of it (a TLS request
#     made afterwards is the ONLY request line in its log);
#   * fork_banner (server speaks first): a plaintext client gets no banner
#     in clear; the daemon's child saw "connection reset by peer" and not a
#     byte of the client's line;
#   * nginx, ONE worker (one event loop), two inbound rules: while a client
#     stalls mid-handshake (40 bytes of a ClientHello) on the 30 s rule, the
#     same worker serves other clients; on the 1 s rule a client stalling
#     mid-handshake and one that sends nothing are dropped at the timeout
#     (tlsshim logs it with their addresses; nginx saw the connection reset,
#     never a request).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_cmd curl
need_tlsshim ca.pem server.pem server-key.pem
BANNER=$top_builddir/tests/integration/clients/fork_banner
[ -x "$BANNER" ] || bail_out "fork_banner not built: '$BANNER'"

SRC=$(client_addr)
re_src=${SRC//./\\.}
# re STRING: STRING with its dots escaped for grep -E
re() { printf '%s' "${1//./\\.}"; }
CLIENT=("$PYTHON" "$CLIENTS/inbound_client.py" --ca "$CERTS/ca.pem" --source "$SRC")
client() { "${CLIENT[@]}" "$@"; }

# ==== 1. python http.server: plaintext and TLS 1.2 clients ===============================
mkdir -p "$WORK/www"
echo "after" >"$WORK/www/after.txt"
start_inbound web -- "$PYTHON" -u -m http.server @PORT@ --bind 127.0.0.1 --directory "$WORK/www"
diag "python http.server on 127.0.0.1:$web_port, clients from $SRC"

https_get plain "http://127.0.0.1:$web_port/plain.txt"
st=$?
[ $st -ne 0 ]
ok $? "plaintext curl http:// fails (exit $st)"
is "$(cat "$WORK/plain.body" 2>/dev/null)" "" "plaintext curl: no HTTP answer"
plain=$(cat "$WORK/plain.local")
check "tlsshim log: a warning naming the plaintext client $plain" \
    wait_for_match "$web_tlog" "warning: .*\[web\] $(re "$plain") .*does not speak TLS"

if command -v socat >/dev/null 2>&1; then
    out=$(printf 'GET /raw.txt HTTP/1.0\r\n\r\n' |
        timeout 20 socat -t 5 - "TCP:127.0.0.1:$web_port,bind=$SRC" 2>/dev/null | head -c 100 | od -An -c)
    is "$out" "" "raw plaintext request (socat): not a byte back"
else
    skip "raw plaintext request (socat)" "socat not installed"
fi

if command -v "$OPENSSL" >/dev/null 2>&1; then
    out=$(timeout 20 "$OPENSSL" s_client -tls1_2 -connect "127.0.0.1:$web_port" -servername localhost \
        -CAfile "$CERTS/ca.pem" -verify_return_error </dev/null 2>&1)
    st=$?
    [ $st -ne 0 ]
    ok $? "openssl s_client -tls1_2 fails (exit $st)"
    like "$out" 'alert protocol version' "s_client -tls1_2: the server sent a protocol_version alert"
else
    for i in 1 2; do skip "s_client -tls1_2 check $i" "openssl not found"; done
fi
out=$(client --tls12 --send 'GET /tls12.txt HTTP/1.0\r\n\r\n' 127.0.0.1 "$web_port")
st=$?
is "$st" 2 "python ssl TLS 1.2 only: fails"
like "$out" '^error=.*(PROTOCOL_VERSION|protocol version)' "python ssl TLS 1.2 only: protocol_version alert"
old=$(printf '%s\n' "$out" | sed -n 's/^local=//p')
check "tlsshim log: a warning naming the TLS 1.2 client $old" \
    wait_for_match "$web_tlog" "warning: .*\[web\] $(re "${old:-none}") .*TLS 1\.3"

https_get after "https://localhost:$web_port/after.txt"
ok $? "a TLS 1.3 client afterwards: curl exits 0"
check "that client: TLS 1.3 and a verified certificate" saw_tls13 "$WORK/after.trace"
check "server log: its request" wait_for_match "$web_out" "^$re_src - - \[.*\] \"GET /after\.txt HTTP/1\.1\" 200"
is "$(grep -Ec '"(GET|POST|HEAD) |code 400' "$web_out")" 1 \
    "server log: that request is the only one (the refused clients sent it nothing)"
check_fail "server log: no plaintext request line" grep -Eq 'plain\.txt|raw\.txt|tls12\.txt' "$web_out"
stop_server web

# ==== 2. fork_banner: a plaintext client gets no banner ===============================
if command -v socat >/dev/null 2>&1; then
    blog=$WORK/banner.log
    start_inbound ban -- "$BANNER" @PORT@ "$blog"
    out=$(printf 'HELO plain\r\n' |
        timeout 20 socat -t 5 - "TCP:127.0.0.1:$ban_port,bind=$SRC" 2>/dev/null | head -c 100 | od -An -c)
    is "$out" "" "banner, plaintext client: not a byte back (no banner in clear)"
    check "daemon log: its child saw the connection reset" \
        wait_for_match "$blog" "^end pid=[0-9]+ peer=$re_src:[0-9]+ bytes=0 error=Connection reset by peer\$"
    check_fail "daemon log: not a byte of the client's line" grep -q 'HELO' "$blog"
    check "tlsshim log: a warning naming $SRC" wait_for_match "$ban_tlog" "warning: .*\[ban\] $re_src:[0-9]+ .*does not speak TLS"
    out=$(client --banner 1 127.0.0.1 "$ban_port")
    like "$out" '^echo\.0=echo 0$' "banner: a TLS client afterwards is served"
    stop_server ban
else
    for i in 1 2 3 4 5; do skip "banner plaintext check $i" "socat not installed"; done
fi

# ==== 3. nginx, one event loop: a stalled handshake ====================================
if [ -x "$NGINX" ]; then
    prefix=$WORK/ngx
    mkdir -p "$prefix/tmp" "$prefix/www"
    echo "served" >"$prefix/www/x.txt"
    userline=""
    [ "$(id -u)" = 0 ] && userline="user root root;"
    cat >"$prefix/nginx.conf.in" <<EOF
$userline
worker_processes 1;
pid $prefix/nginx.pid;
error_log stderr info;
events { worker_connections 64; }
http {
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    log_format inbound '\$remote_addr:\$remote_port "\$request" \$status';
    access_log $WORK/ngs.access.log inbound;
    server {
        listen 127.0.0.1:@PORT@;
        listen 127.0.0.1:@PORT2@;
        root $prefix/www;
    }
}
EOF
    INBOUND_TEMPLATE=$prefix/nginx.conf.in POLICY_RULE=slow start_inbound ngs "handshake-timeout = 30s" \
        "" "[quick]" "listen = 127.0.0.1:@PORT2@" "cert = $CERTS/server.pem" "key = $CERTS/server-key.pem" \
        "handshake-timeout = 1s" -- \
        "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e stderr -g 'daemon off; master_process on;'
    alog=$WORK/ngs.access.log
    diag "nginx (1 worker): 30 s rule on $ngs_port, 1 s rule on $ngs_port2"

    # accepted PORT: nothing waits in the accept queue of the listener on
    # PORT (for a listening socket, /proc/net/tcp's rx_queue is that queue).
    accepted() {
        awk -v p="$(printf '%04X' "$1")" '$4 == "0A" && $2 ~ (":" p "$") {
            split($5, q, ":"); if (q[2] != "00000000") bad = 1 } END { exit bad }' /proc/net/tcp
    }

    "${CLIENT[@]}" --stall "$WORK/sa.addr" --wait 60 127.0.0.1 "$ngs_port" >"$WORK/sa.out" 2>&1 &
    sa_pid=$!
    check "staller A connected and sent half a ClientHello" wait_until 10 test -s "$WORK/sa.addr"
    check "nginx accepted it" wait_until 10 accepted "$ngs_port"
    sa=$(cat "$WORK/sa.addr")

    https_get s1 "https://localhost:$ngs_port/x.txt"
    ok $? "while A stalls: curl on the same rule exits 0"
    check "while A stalls: TLS 1.3, verified" saw_tls13 "$WORK/s1.trace"
    is "$(cat "$WORK/s1.body")" served "while A stalls: nginx's file"
    https_get s2 "https://localhost:$ngs_port2/x.txt"
    ok $? "while A stalls: curl on the 1 s rule exits 0"
    check "access log: both requests" wait_for_requests "$alog" 2
    is "$(grep -c '^[^ ]* "GET /x\.txt HTTP/1\.1" 200$' "$alog")" 2 "access log: both served (200)"
    check_fail "staller A is still connected (30 s rule)" grep -q 'closed=' "$WORK/sa.out"

    "${CLIENT[@]}" --stall "$WORK/sb.addr" 127.0.0.1 "$ngs_port2" >"$WORK/sb.out" 2>&1 &
    sb_pid=$!
    "${CLIENT[@]}" --stall "$WORK/sc.addr" --stall-bytes 0 127.0.0.1 "$ngs_port2" >"$WORK/sc.out" 2>&1 &
    sc_pid=$!
    check "staller B (half a ClientHello, 1 s rule) is dropped" \
        wait_until 20 grep -Eq '^closed=(eof|reset)$' "$WORK/sb.out"
    check "staller C (sends nothing, 1 s rule) is dropped" \
        wait_until 20 grep -Eq '^closed=(eof|reset)$' "$WORK/sc.out"
    wait "$sb_pid" "$sc_pid"
    sb=$(cat "$WORK/sb.addr" 2>/dev/null)
    sc=$(cat "$WORK/sc.addr" 2>/dev/null)
    check "tlsshim log: B's timeout, with its address $sb" \
        wait_for_match "$ngs_tlog" "warning: .*\[quick\] $(re "${sb:-none}") .*timed out"
    check "tlsshim log: C's timeout, with its address $sc" \
        wait_for_match "$ngs_tlog" "warning: .*\[quick\] $(re "${sc:-none}") .*timed out"
    resets() {
        [ "$(grep -Ec "104: Connection reset by peer.*client: $re_src, server: 127\.0\.0\.1:$ngs_port2\$" \
            "$ngs_out")" -ge 2 ]
    }
    check "nginx saw both connections reset (its own error log, info)" wait_until 10 resets
    check_fail "access log: no request from the stallers" \
        grep -Eq "^($(re "$sa")|$(re "${sb:-none}")|$(re "${sc:-none}")) " "$alog"
    check_fail "staller A is still connected" grep -q 'closed=' "$WORK/sa.out"
    kill "$sa_pid" 2>/dev/null
    wait "$sa_pid" 2>/dev/null
else
    for i in $(seq 16); do skip "nginx stall check $i" "nginx not installed"; done
fi

done_testing
