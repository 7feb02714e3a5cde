#!/bin/bash
# poller.sh -- a dedicated poller thread (BEAM, libuv, tokio, .NET do this):
# thread A is already blocked in an epoll wait on a set that holds only a
# plain pipe when another thread connects through an upgraded rule and adds
# the socket to that set.  The library registers managed descriptors with the
# kernel under a value of its own; the wait that was already in the kernel
# must still give the program its own data (its fd, or its 64-bit value),
# never the library's.  tests/integration/clients/poller.py checks every event
# A gets, through select.epoll().poll() and through epoll_wait, epoll_pwait and
# epoll_pwait2 called directly; the exchange must complete.  Proof from the
# server: one TLS 1.3 connection per mode, every byte of the message in, and
# closed with close_notify.
# Then, if installed, a real runtime with a poller thread: Erlang's BEAM
# (erl, httpc) fetches a page through the rule (it used to abort in
# ethr_mutex_lock or die with SIGSEGV on the library's value).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

# As in epoll.sh: TSan cannot see the locks taken inside an intercepted
# epoll_wait, and its symbolizer re-enters the library.
case " ${TLSSHIM_PRELOAD:-} " in
*libtsan*) skip_all "ThreadSanitizer build: TSan cannot see locks taken inside an intercepted epoll_wait" ;;
esac

CLIENT=$top_srcdir/tests/integration/clients/poller.py
need_tlsshim
[ -r /proc/self/task/$$/syscall ] || skip_all "no /proc/PID/task/TID/syscall: cannot tell when the poller blocks"
[ "$(uname -m)" = x86_64 ] || skip_all "the client knows the x86_64 system call numbers only"

# 51 bytes x 20, as poller.py sends
BYTES=1020
# every policy: 127.0.0.1:18080, the default log level (warning)
POLICY_MATCH=127.0.0.1:18080 POLICY_LEVEL=''

for mode in poll wait pwait pwait2; do
    start_tserver "srv_$mode" --mode echo
    port_var=srv_${mode}_port log_var=srv_${mode}_log
    POLICY_RULE=poller policy "$mode" "${!port_var}" "server-name = localhost"
    out=$(timeout 60 "$TLSSHIM" -p "$WORK/$mode.policy" "$PYTHON" "$CLIENT" "$mode" 18080 2>"$WORK/$mode.err")
    rc=$?
    [ $rc -eq 0 ] || diag "$mode: rc=$rc $(cat "$WORK/$mode.err")"
    is "$out" "ok $BYTES" "$mode: the blocked poller got its own data for the socket added under it, and the echo"
    log=${!log_var}
    if check "$mode: server logged the connection" wait_for_lines "$log" 1 15; then
        is "$(tserver_field "$log" 1 version)" TLS1.3 "$mode: server: TLS 1.3"
        is "$(tserver_field "$log" 1 bytes_in)" "$BYTES" "$mode: server: every byte of the message in"
        is "$(tserver_field "$log" 1 closed)" notify "$mode: server: closed with close_notify"
    fi
done

if command -v erl >/dev/null 2>&1 && erl -noshell -eval 'halt(case code:which(httpc) of non_existing -> 1; _ -> 0 end).' 2>/dev/null; then
    start_tserver erl --mode http
    policy erl "$erl_port" "server-name = localhost"
    out=$(timeout 60 "$TLSSHIM" -p "$WORK/erl.policy" erl -noshell -eval '
        inets:start(),
        R = httpc:request(get, {"http://127.0.0.1:18080/from-erlang", []}, [{timeout, 15000}], []),
        case R of
            {ok, {{_, 200, _}, _, Body}} -> io:format("ok ~s~n", [hd(string:split(Body, "\n"))]);
            Other -> io:format("bad ~p~n", [Other])
        end,
        halt().' 2>"$WORK/erl.err")
    rc=$?
    [ $rc -eq 0 ] || diag "erl: rc=$rc $(cat "$WORK/erl.err")"
    is "$rc" 0 "erl: BEAM exits normally"
    like "$out" "^ok hello from tserver" "erl: httpc got the page"
    if check "erl: server logged the request" wait_for_lines "$erl_log" 1 15; then
        is "$(tserver_field "$erl_log" 1 version)" TLS1.3 "erl: server: TLS 1.3"
        is "$(tserver_field "$erl_log" 1 first_line)" "GET /from-erlang HTTP/1.1" "erl: server: the request came through TLS"
    fi
else
    skip "erl with httpc not installed (apt-get install erlang-base erlang-inets)"
fi

done_testing
