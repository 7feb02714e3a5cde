#!/bin/bash
# epoll.sh -- the library's epoll emulation under real event-loop clients and
# real servers.  tests/stress/epoll_client (plain TCP, knows nothing of TLS)
# drives non-blocking connections with epoll in four ways, each against its
# own tserver (http mode):
#   threads  8 threads, each with its own epoll instance, 4 connections at a
#            time, 3 rounds, level-triggered, 4 KiB read per event (decrypted
#            plaintext left over must be reported again), one registration in
#            four made before connect();
#   shared   one epoll instance, 4 threads, 12 slots x 3 connections,
#            EPOLLONESHOT re-armed with EPOLL_CTL_MOD (an event for a disarmed
#            registration, twice at once, or for a closed earlier socket fails);
#   edge     EPOLLET registered once (as nginx), half of them before connect()
#            (as nginx connects upstream: the library must adopt them, or
#            their events bypass it), read/write until EAGAIN (a lost edge
#            leaves a connection stuck and fails);
#   close    upgraded sockets closed while registered, without EPOLL_CTL_DEL
#            (after dup(), with the answer unread, with the number reused,
#            mid-handshake with and without a dup, while another thread
#            waits): epoll_wait on the same instance returns only live
#            registrations' data (never the closed socket's, never the
#            library's own cookie), and the dups carry on.
# The client checks every answer byte by byte.  The proof is the server's
# log: the expected number of connections, each TLS1.3 status=ok, each with a
# distinct request, the whole answer sent, and closed with close_notify.
# Without the library the client reaches no TLS server at all (checked too).
# Then, if installed, the real program wrk (epoll, non-blocking) runs under
# tlsshim against nginx, with keep-alive and with "Connection: close": no
# socket errors, and nginx's access log shows the requests over TLSv1.3 and,
# with Connection: close, the later connections resumed.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

# Under ThreadSanitizer the library's epoll_wait runs inside TSan's own
# epoll_wait interceptor, as a "blocking call" during which TSan ignores the
# interceptors (pthread_mutex_lock included): the library's locks are invisible
# to it, so it reports races that are not there, and its symbolizer's open()
# re-enters the library and deadlocks.  threads.sh is the TSan test.
case " ${TLSSHIM_PRELOAD:-} " in
*libtsan*) skip_all "ThreadSanitizer build: TSan cannot see locks taken inside an intercepted epoll_wait" ;;
esac

CLIENT=$top_builddir/tests/stress/epoll_client
[ -x "$CLIENT" ] || bail_out "epoll client not built: '$CLIENT'"
need_tlsshim

# every policy: 127.0.0.1:18080, the default log level (warning)
POLICY_MATCH=127.0.0.1:18080 POLICY_LEVEL=''

# run_client NAME ARGS...: epoll_client under tlsshim with NAME's policy;
# sets out (its result line) and rc.
run_client() {
    local name=$1 t0
    shift
    t0=$(date +%s%N)
    out=$(timeout 60 "$TLSSHIM" -p "$WORK/$name.policy" "$CLIENT" "$@" 2>"$WORK/$name.client.err")
    rc=$?
    diag "$name: $out ($((($(date +%s%N) - t0) / 1000000)) ms)"
    [ -s "$WORK/$name.client.err" ] && diag "$(head -n 20 "$WORK/$name.client.err")"
}

# whole LOG: how many status=ok TLS1.3 conn lines of a tserver LOG asked for
# /bytes/N and had N bytes of body plus tserver's header (96 bytes and the
# digits of N) go out.
whole() {
    grep -a '^conn .* status=ok version=TLS1\.3 ' "$1" | awk '{
        n = ""; out = ""
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^first_line=GET%20\/bytes\/[0-9]+%20HTTP/) { n = $i; sub(/^first_line=GET%20\/bytes\//, "", n); sub(/%20.*/, "", n) }
            if ($i ~ /^bytes_out=/) { out = substr($i, 11) }
        }
        if (n != "" && out == n + 96 + length(n)) c++
    } END { print c + 0 }'
}

# server_checks NAME LOG TOTAL: the server's view of TOTAL connections
server_checks() {
    local name=$1 log=$2 total=$3
    check "$name: server logged $total connections" wait_for_lines "$log" "$total" 20
    is "$(grep -ac '^conn .* status=ok version=TLS1\.3 ' "$log")" "$total" \
        "$name: server: all $total connections TLS1.3, status=ok"
    is "$(grep -a '^conn ' "$log" | grep -o ' first_line=[^ ]*' | sort -u | wc -l)" "$total" \
        "$name: server: $total distinct requests"
    is "$(whole "$log")" "$total" "$name: server: every answer went out whole"
    is "$(grep -ac '^conn .* status=ok .* closed=notify ' "$log")" "$total" \
        "$name: server: every connection ended with close_notify"
}

# ==== 1. threads: one epoll instance per thread =================================
T=8 C=4 R=3
start_tserver thr
policy thr "$thr_port" "server-name = localhost"
run_client thr threads 18080 $T $C $R
is "$rc" 0 "threads: $T threads x $C connections x $R rounds, own epoll each: client exits 0"
like "$out" "^threads ok $((T * C * R)) bad 0 problems 0 " "threads: client got $((T * C * R)) complete answers"
server_checks threads "$thr_log" $((T * C * R))

# ==== 2. shared: one epoll instance, EPOLLONESHOT ==================================
T=4 S=12 R=3
start_tserver shr
policy shr "$shr_port" "server-name = localhost"
run_client shr shared 18080 $T $S $R
is "$rc" 0 "shared: $T threads on one epoll instance, $S one-shot slots x $R: client exits 0"
like "$out" "^shared ok $((S * R)) bad 0 problems 0 " "shared: client got $((S * R)) complete answers, no one-shot violation"
server_checks shared "$shr_log" $((S * R))

# ==== 3. edge-triggered ===========================================================
C=12 R=3
start_tserver edg
policy edg "$edg_port" "server-name = localhost"
run_client edg edge 18080 $C $R
is "$rc" 0 "edge: $C connections x $R rounds, EPOLLET: client exits 0"
like "$out" "^edge ok $((C * R)) bad 0 problems 0 " "edge: client got $((C * R)) complete answers (no lost edge)"
server_checks edge "$edg_log" $((C * R))

# Without the library the same client speaks plain HTTP: the TLS server
# must see no TLS at all (so the checks above rest on the upgrade).
check_fail "without tlsshim: the client fails against the TLS server" \
    timeout 20 "$CLIENT" edge "$edg_port" 1 1
check "without tlsshim: server logged the connection" wait_for_lines "$edg_log" $((C * R + 1))
like "$(grep -a '^conn ' "$edg_log" | tail -n 1)" ' status=handshake-failed version=- ' \
    "without tlsshim: server saw no TLS handshake"

# ==== 4. close while registered ===================================================
start_tserver cls
policy cls "$cls_port" "server-name = localhost"
run_client cls close 18080
is "$rc" 0 "close: sockets closed while registered: client exits 0"
is "$out" "close ok checks 8 answers 4 problems 0" \
    "close: epoll_wait returned only live registrations' data (8 checks); 4 answers read whole through a dup or a reused number"
# dup, unread, reused (old and new), mid-handshake with a dup, race: 6 whole
# exchanges; 1 closed mid-handshake for good
check "close: server logged 7 connections" wait_for_lines "$cls_log" 7 20
is "$(grep -ac '^conn .* status=ok version=TLS1\.3 ' "$cls_log")" 6 \
    "close: server: the 6 exchanges (answer read or not) were TLS1.3, status=ok"
is "$(whole "$cls_log")" 6 "close: server: those 6 answers went out whole"
is "$(grep -ac '^conn .* status=ok .* closed=notify ' "$cls_log")" 6 \
    "close: server: those 6 ended with close_notify"
is "$(grep -a '^conn ' "$cls_log" | grep -v ' status=ok ' | grep -c ' bytes_in=0 ')" 1 \
    "close: server: the one closed mid-handshake carried no application bytes"

for n in thr shr edg cls; do
    is "$(grep -c 'error' "$WORK/$n.tlsshim.log" 2>/dev/null || true)" 0 "$n: tlsshim logged no error"
done

# ==== 5. wrk against nginx =========================================================
if command -v wrk >/dev/null 2>&1 && [ -x "${NGINX:-/usr/sbin/nginx}" ]; then
    for kind in keepalive close; do
        name=ngx_$kind
        start_nginx "$name"
        port_var=${name}_port
        log_var=${name}_log
        policy "$name" "${!port_var}" "server-name = localhost"
        nlog=${!log_var}
        extra=()
        [ $kind = close ] && extra=(-H 'Connection: close')
        wout=$(timeout 30 "$TLSSHIM" -p "$WORK/$name.policy" wrk -t2 -c8 -d1s "${extra[@]}" \
            "http://127.0.0.1:18080/wrk-$kind" 2>&1)
        wrc=$?
        diag "wrk ($kind): $(printf '%s\n' "$wout" | grep -E 'requests in|errors|Non-2xx')"
        wreq=$(printf '%s\n' "$wout" | sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p')
        is "$wrc" 0 "wrk ($kind): exits 0"
        [ "${wreq:-0}" -gt 0 ] 2>/dev/null
        ok $? "wrk ($kind): completed ${wreq:-0} requests (> 0)"
        check_fail "wrk ($kind): no socket errors, no non-2xx answers" \
            grep -Eq 'Socket errors|Non-2xx' <<<"$wout"
        check "wrk ($kind): nginx logged at least ${wreq:-0} requests" wait_for_requests "$nlog" "${wreq:-1}" 10
        stop_server "$name"   # no request is logged after this
        lines=$(nginx_lines "$nlog")
        is "$(cut -f2,7,8 "$nlog" | sort | uniq -c | sed 's/^ *[0-9]* //')" \
            "$(printf 'proto=TLSv1.3\tstatus=200\trequest=GET /wrk-%s HTTP/1.1' $kind)" \
            "wrk ($kind): nginx: all $lines requests over TLSv1.3, status 200"
        if [ $kind = close ]; then
            # One connection per request.  wrk's first 8 open at once (at
            # most its address probe's ticket to resume); every later one
            # should resume a ticket of an earlier one.
            later=$((lines - 8))
            resumed=$(tail -n +9 "$nlog" | cut -f3 | grep -c '^reused=r$')
            diag "wrk (close): $lines connections; resumed $resumed of the $later after the first 8"
            [ "$later" -gt 8 ] && [ $((resumed * 10)) -ge $((later * 9)) ]
            ok $? "wrk (close): nginx: the later connections resumed ($resumed of $later, >= 90%)"
        fi
    done
else
    for i in $(seq 11); do skip "wrk check $i" "wrk or nginx not installed"; done
fi

done_testing
