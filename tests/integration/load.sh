#!/bin/bash
# load.sh -- load and soak through tlsshim.
#
#   1. LOAD_N (default 1000) concurrent upgraded connections from ONE
#      asyncio (epoll) process, all open at the same time (the client waits
#      until every connection is up before sending anything), against
#      tserver (one forked child per connection): all answered, and
#      tserver logged LOAD_N TLS 1.3 connections with LOAD_N distinct
#      requests.
#   2. Sequential soak: SOAK_N (default 2000) upgraded connections one after
#      the other in one process (create_connection, send, recv to EOF,
#      close) against nginx.  The client measures its open fds and RSS after
#      SOAK_WARMUP (100) connections and at the end: fds must be equal, RSS
#      growth below SOAK_RSS_LIMIT_KB (default 4096).  The session cache
#      stays useful: the last connection still resumed (nginx reused=r).
#      Long soak on demand:   SOAK_N=100000 make check TESTS=tests/integration/load.sh
#      (or run this file by hand with SOAK_N=100000; about 2-3 minutes).
#   3. Error-path soak: SOAK_FAIL_N (default 300) connections that each fail
#      (server resets during the handshake; nothing listening) in one
#      process: no fd leak, bounded RSS.
#   4. Latency: an upgraded connection's first request must not be held
#      back ~40 ms by Nagle's algorithm (the client's Finished and the first
#      application record in two small writes, the server delaying its ACK).
#      The soak sets TCP_NODELAY in the client so that its run time does not
#      depend on this; check 4 measures it without.
#
# ulimit -n is raised to 4096 for the concurrent test (skipped if the hard
# limit is lower).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim
need_cmd timeout
CLIENT=$top_srcdir/tests/integration/clients/load_client.py
: "${LOAD_N:=1000}" "${SOAK_N:=2000}" "${SOAK_WARMUP:=100}" "${SOAK_RSS_LIMIT_KB:=4096}" "${SOAK_FAIL_N:=300}"
FAIL_RSS_LIMIT_KB=2048
# A sanitizer build (ASan runtime preloaded) keeps freed memory in
# quarantine: RSS bounds are meaningless there, only fds are compared.
case ${TLSSHIM_PRELOAD:-} in
*asan*)
    diag "sanitizer build: RSS limits raised to 1 GiB"
    SOAK_RSS_LIMIT_KB=1048576 FAIL_RSS_LIMIT_KB=1048576
    ;;
esac

# every policy logs warnings and errors only, to $TLOG
POLICY_LOG=file:$TLOG POLICY_LEVEL=warning

# field_of TEXT KEY: the word after KEY in TEXT ("fds 7 rss_kb 123")
field_of() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "/^$2\$/{n;p;q}"; }
# leak_checks WHAT OUT RSS-LIMIT-KB: fds equal, RSS growth bounded
leak_checks() {
    local what=$1 out=$2 limit=$3 warm end wf ef wr er
    warm=$(printf '%s\n' "$out" | grep '^warm ')
    end=$(printf '%s\n' "$out" | grep '^end ')
    wf=$(field_of "$warm" fds) ef=$(field_of "$end" fds)
    wr=$(field_of "$warm" rss_kb) er=$(field_of "$end" rss_kb)
    diag "$what: open fds after warm-up ${wf:-?}, at the end ${ef:-?}; RSS ${wr:-?} kB -> ${er:-?} kB (growth $(( ${er:-0} - ${wr:-0} )) kB)"
    if [ -n "$wf" ] && [ "$wf" = "$ef" ]; then
        pass "$what: no fd leak ($wf open fds after warm-up and at the end)"
    else
        fail "$what: no fd leak (${wf:-?} open fds after warm-up, ${ef:-?} at the end)"
    fi
    if [ -n "$wr" ] && [ -n "$er" ] && [ $((er - wr)) -lt "$limit" ]; then
        pass "$what: RSS growth $((er - wr)) kB < $limit kB"
    else
        fail "$what: RSS growth $(( ${er:-0} - ${wr:-0} )) kB < $limit kB"
    fi
}

# ==== 1. LOAD_N concurrent connections from one epoll process =========================
if ulimit -n 4096 2>/dev/null; then
    start_tserver big
    policy big "$big_port" "handshake-timeout = 60s"
    t0=$SECONDS
    out=$(timeout -s KILL 120 "$TLSSHIM" -p "$WORK/big.policy" "$PYTHON" "$CLIENT" concurrent localhost 18080 "$LOAD_N" 2>&1)
    st=$?
    diag "concurrent: $out"
    is "$st" 0 "concurrent: client exits 0 ($((SECONDS - t0)) s)"
    like "$out" "^connected $LOAD_N/$LOAD_N peak_fds" "concurrent: all $LOAD_N connections were open at the same time"
    peak=$(printf '%s\n' "$out" | sed -n 's/^connected .* peak_fds \([0-9]*\)$/\1/p')
    [ "${peak:-0}" -ge "$LOAD_N" ]
    ok $? "concurrent: the client held ${peak:-?} fds at the peak (>= $LOAD_N)"
    like "$out" "^done $LOAD_N/$LOAD_N errors 0 " "concurrent: all $LOAD_N got tserver's answer"
    check "concurrent: tserver logged $LOAD_N connections" wait_for_lines "$big_log" "$LOAD_N" 60
    is "$(grep -a '^conn ' "$big_log" | grep -c ' status=ok version=TLS1\.3 ')" "$LOAD_N" \
        "concurrent: all $LOAD_N were TLS1.3 with status=ok"
    is "$(grep -a '^conn ' "$big_log" | grep -o 'first_line=GET%20/load/[0-9]*%20' | sort -u | wc -l)" "$LOAD_N" \
        "concurrent: tserver got $LOAD_N distinct requests"
    diag "concurrent: resumed=1 on $(grep -ac ' resumed=1 ' "$big_log") of $LOAD_N"
    check_fail "concurrent: no errors in tlsshim's log" grep -q 'error' "$TLOG"
    [ -s "$TLOG" ] && diag "tlsshim log: $(head -n 5 "$TLOG")"
    stop_server big
else
    for i in 1 2 3 4 5 6 7 8; do skip "concurrent check $i" "cannot raise the fd limit to 4096 (hard limit $(ulimit -Hn))"; done
fi

# ==== 2. sequential soak against nginx ====================================================
if [ -x "${NGINX:-/usr/sbin/nginx}" ]; then
    start_nginx ngx
    policy soak "$ngx_port"
    t0=$SECONDS
    out=$(timeout -s KILL 900 "$TLSSHIM" -p "$WORK/soak.policy" "$PYTHON" "$CLIENT" soak localhost 18080 \
        "$SOAK_N" "$SOAK_WARMUP" 1 2>&1)
    st=$?
    diag "soak: $out"
    is "$st" 0 "soak: $SOAK_N sequential connections, client exits 0 ($((SECONDS - t0)) s)"
    like "$out" "^done $SOAK_N/$SOAK_N errors 0 " "soak: all $SOAK_N answered"
    leak_checks "soak ($SOAK_N connections)" "$out" "$SOAK_RSS_LIMIT_KB"
    check "soak: nginx logged $SOAK_N requests" wait_for_requests "$ngx_log" "$SOAK_N" 30
    is "$(cut -f2 "$ngx_log" | sort | uniq -c | sed 's/^ *//')" "$SOAK_N proto=TLSv1.3" "soak: all over TLSv1.3"
    is "$(nginx_field "$ngx_log" 1 reused)" . "soak: the first connection was a full handshake"
    is "$(nginx_field "$ngx_log" last reused)" r "soak: the LAST connection still resumed (session cache bounded and working)"
    diag "soak: resumed $(cut -f3 "$ngx_log" | grep -c '^reused=r$') of $SOAK_N"
    check_fail "soak: no errors in tlsshim's log" grep -q 'error' "$TLOG"

    # ==== 4. latency of the first request (Nagle) ==========================================
    # 20 sequential requests, with and without TCP_NODELAY in the program,
    # and plain HTTP to the same nginx (no tlsshim) as the baseline.
    per_conn_ms() {
        printf '%s\n' "$1" | sed -n 's/^done .* elapsed \([0-9.]*\)$/\1/p' |
            awk '{ printf "%.1f", $1 * 1000 / 20 }'
    }
    base=$(timeout 60 "$PYTHON" "$CLIENT" soak localhost "$ngx_plain_port" 20 5 0 2>&1)
    nd=$(timeout 60 "$TLSSHIM" -p "$WORK/soak.policy" "$PYTHON" "$CLIENT" soak localhost 18080 20 5 1 2>&1)
    nagle=$(timeout 60 "$TLSSHIM" -p "$WORK/soak.policy" "$PYTHON" "$CLIENT" soak localhost 18080 20 5 0 2>&1)
    diag "latency per connection: plain $(per_conn_ms "$base") ms; upgraded with TCP_NODELAY $(per_conn_ms "$nd") ms; upgraded, default socket options $(per_conn_ms "$nagle") ms"
    ms=$(per_conn_ms "$nagle")
    awk -v m="${ms:-999}" 'BEGIN { exit !(m < 20) }'
    ok $? "latency: an upgraded connection (default socket options) takes ${ms:-?} ms per request, < 20 ms (no ~40 ms Nagle/delayed-ACK stall after the handshake)"
else
    for i in $(seq 12); do skip "soak check $i" "nginx not found"; done
fi

# ==== 3. error-path soak ==================================================================
start_evil rst reset-handshake --hold 5
policy rst "$rst_port"
out=$(timeout -s KILL 120 "$TLSSHIM" -p "$WORK/rst.policy" "$PYTHON" "$CLIENT" soakfail localhost 18080 \
    "$SOAK_FAIL_N" 50 2>&1)
st=$?
diag "reset soak: $out"
is "$st" 0 "reset soak: all $SOAK_FAIL_N connections failed (server resets in the handshake)"
like "$out" "first ConnectionRefusedError" "reset soak: as ECONNREFUSED"
wait_for_lines "$WORK/rst.log" "$SOAK_FAIL_N"
is "$(grep '^conn ' "$WORK/rst.log" | grep -c ' tls_record=1 plaintext=0 marker_raw=0 ')" "$SOAK_FAIL_N" \
    "reset soak: evil.py got $SOAK_FAIL_N ClientHellos (each connection reached the handshake), no plaintext"
leak_checks "reset soak ($SOAK_FAIL_N failed handshakes)" "$out" "$FAIL_RSS_LIMIT_KB"

dead=$(free_port)
policy dead "$dead"
out=$(timeout -s KILL 120 "$TLSSHIM" -p "$WORK/dead.policy" "$PYTHON" "$CLIENT" soakfail localhost 18080 \
    "$SOAK_FAIL_N" 50 2>&1)
st=$?
diag "refused soak: $out"
is "$st" 0 "refused soak: all $SOAK_FAIL_N connections failed (nothing listening)"
leak_checks "refused soak ($SOAK_FAIL_N refused connects)" "$out" "$FAIL_RSS_LIMIT_KB"

done_testing
