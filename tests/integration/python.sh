#!/bin/bash
# python.sh -- unmodified python3 clients, each using a different way to wait
# for sockets, are upgraded to TLS 1.3.  Proves, from tserver's log:
#   * urllib (blocking sockets): two connections, the 2nd resumes;
#   * asyncio (epoll): sequential requests, 20 concurrent connections all
#     served, a 4 MB body intact;
#   * a select()-based and a poll()-based client with non-blocking sockets
#     (non-blocking connect, EAGAIN on read/write) work and get intact data;
#   * http.client from 8 threads x 5 requests: all 40 served over TLS 1.3.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim

# every policy: rule [api], logging to $TLOG
POLICY_LOG=file:$TLOG POLICY_RULE=api

RUN_TIMEOUT=40   # run: the python clients get 40 s
# all_field LOG FIELD: the distinct values of FIELD over all conn lines
all_field() {
    grep -a '^conn ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | sort | uniq -c | sed 's/^ *//'
}

# ==== 1. urllib: blocking sockets, resumption ======================================
start_tserver url
policy url "$url_port"
out=$(run url "$PYTHON" "$CLIENTS/urllib_get.py" http://localhost:18080/one http://localhost:18080/two)
ok $? "urllib: two fetches succeed"
check "urllib: server logged two connections" wait_for_lines "$url_log" 2
is "$(tserver_field "$url_log" 1 version) $(tserver_field "$url_log" 1 sni)" "TLS1.3 localhost" \
    "urllib: server saw TLS1.3, sni=localhost"
is "$(tserver_field "$url_log" 1 first_line)" "GET /one HTTP/1.1" "urllib: server got request 1"
is "$(tserver_field "$url_log" 2 first_line)" "GET /two HTTP/1.1" "urllib: server got request 2"
is "$(tserver_field "$url_log" 1 resumed)" 0 "urllib: 1st connection full handshake"
is "$(tserver_field "$url_log" 2 resumed)" 1 "urllib: 2nd connection RESUMED"
like "$out" 'resumed=1' "urllib: the body the server generated says resumed=1"

# ==== 2. asyncio: sequential, concurrent, big body ===================================
start_tserver aio
policy aio "$aio_port"
out=$(run aio "$PYTHON" "$CLIENTS/asyncio_get.py" localhost 18080 /seq 3 20)
ok $? "asyncio: 3 sequential + 20 concurrent requests, exit 0"
like "$out" 'concurrent 20/20 ok' "asyncio: client got 20/20 concurrent answers"
check "asyncio: server logged 23 connections" wait_for_lines "$aio_log" 23
is "$(all_field "$aio_log" version)" "23 TLS1.3" "asyncio: all 23 connections TLS1.3"
is "$(all_field "$aio_log" status)" "23 ok" "asyncio: all 23 connections status=ok"
is "$(all_field "$aio_log" first_line)" "23 GET%20/seq%20HTTP/1.1" "asyncio: all 23 requests arrived"
[ "$(grep -ac ' resumed=1 ' "$aio_log")" -ge 2 ]
ok $? "asyncio: later connections resumed ($(grep -ac ' resumed=1 ' "$aio_log") of 23)"

N=4194304
run aio "$PYTHON" "$CLIENTS/asyncio_get.py" localhost 18080 "/bytes/$N" 1 0 >"$WORK/aio.out"
ok $? "asyncio: 4 MB fetch exits 0"
is "$(sed -n 's/^sha256 //p' "$WORK/aio.out")" "$("$PYTHON" "$CLIENTS/pattern_sha256.py" $N)" \
    "asyncio: 4 MB body intact (sha256)"
check "asyncio: server logged the download" wait_for_lines "$aio_log" 24
is "$(tserver_field "$aio_log" last first_line)" "GET /bytes/$N HTTP/1.1" "asyncio: server got the download request"
is "$(tserver_field "$aio_log" last version) $(tserver_field "$aio_log" last status)" "TLS1.3 ok" \
    "asyncio: download over TLS1.3, status=ok"

# ==== 3. select() and poll() with non-blocking sockets =================================
start_tserver sel
policy sel "$sel_port"
n=0
for kind in select poll; do
    # a different size per client, so that the server's request line tells them apart
    if [ $kind = select ]; then N=1000000; else N=1000001; fi
    out=$(run sel "$PYTHON" "$CLIENTS/selector_get.py" $kind localhost 18080 "/bytes/$N")
    ok $? "$kind: client exits 0"
    is "$(printf '%s\n' "$out" | sed -n 1p)" "HTTP/1.1 200 OK" "$kind: status line"
    is "$(printf '%s\n' "$out" | sed -n 3p)" "$("$PYTHON" "$CLIENTS/pattern_sha256.py" $N)" \
        "$kind: 1 MB body intact (sha256)"
    n=$((n + 1))
    check "$kind: server logged the connection" wait_for_lines "$sel_log" $n
    is "$(tserver_field "$sel_log" $n first_line)" "GET /bytes/$N HTTP/1.1" "$kind: server got the request"
    is "$(tserver_field "$sel_log" $n version) $(tserver_field "$sel_log" $n status)" "TLS1.3 ok" \
        "$kind: server saw TLS1.3, status=ok"
done

# ==== 4. threads ==========================================================================
start_tserver thr
policy thr "$thr_port"
out=$(run thr "$PYTHON" "$CLIENTS/threaded_get.py" localhost 18080 8 5 2>&1)
ok $? "threads: 8 x 5 http.client requests succeed"
diag "$out"
check "threads: server logged 40 connections" wait_for_lines "$thr_log" 40
is "$(tserver_conns "$thr_log")" 40 "threads: exactly 40 connections"
is "$(all_field "$thr_log" version)" "40 TLS1.3" "threads: all 40 connections TLS1.3"
is "$(all_field "$thr_log" status)" "40 ok" "threads: all 40 connections status=ok"
is "$(grep -a '^conn ' "$thr_log" | tr ' ' '\n' | sed -n 's/^first_line=//p' | sort -u | wc -l)" 40 \
    "threads: 40 distinct request lines arrived"

# ==== 5. upload, then close without reading ============================================
# A plain-TCP program that writes a lot and closes (a log shipper, "cat >
# /dev/tcp/...") expects every byte to arrive.  With TLS the server also
# sends data the program never reads (TLS 1.3 session tickets); the upload
# must still arrive complete (server: all bytes, sha256_in, close_notify).
start_tserver snk --mode sink
policy snk "$snk_port"
head -c 3000000 /dev/urandom >"$WORK/upload.bin"
up_sha=$(sha256sum <"$WORK/upload.bin" | cut -d' ' -f1)
k=0
for how in sendall sendfile; do
    run snk "$PYTHON" -c '
import socket, sys
s = socket.create_connection(("localhost", 18080), timeout=20)
s.settimeout(None)
with open(sys.argv[1], "rb") as f:
    if sys.argv[2] == "sendall":
        s.sendall(f.read())
    else:
        s.sendfile(f)
s.close()' "$WORK/upload.bin" $how
    ok $? "upload ($how): client exits 0"
    k=$((k + 1))
    check "upload ($how): server logged the connection" wait_for_lines "$snk_log" $k
    is "$(tserver_field "$snk_log" $k bytes_in)" 3000000 "upload ($how): server received all 3000000 bytes"
    is "$(tserver_field "$snk_log" $k sha256_in)" "$up_sha" "upload ($how): sha256_in matches the file"
    is "$(tserver_field "$snk_log" $k status) $(tserver_field "$snk_log" $k closed)" "ok notify" \
        "upload ($how): status=ok, ended with close_notify"
done

done_testing
