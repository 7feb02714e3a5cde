#!/bin/bash
# inband_adv.sh -- an adversarial pass on the in-band negotiation (issue 12:
# `protocol = postgres|smtp|imap|pop3|ldap|mysql` and `proxy =`).
#
# The adversary is the SERVER (clients/inband_server.py): a hostile or broken
# postgres, smtp, imap, pop3, ldap, mysql server or HTTP proxy that trickles,
# stays silent, closes at each step, sends overlong lines, injects bytes
# after its go-ahead (in the same write, and in a later one, when tlsshim
# has started TLS already), cuts multi-line replies at odd places, sends
# untagged lines, BER lengths in the 0x84 form, odd proxy answers.  Where it
# goes on to TLS it hands the socket to python's ssl module (a real TLS 1.3
# server) and logs every byte it got in clear and every byte inside TLS:
# the checks are made on that server-side record.
#
# The program side: clients/inband_client.py in many system-call shapes
# (blocking, poll, edge-triggered epoll, MSG_PEEK, one-byte reads, readv,
# recvmsg, one-byte writes, a write longer than the first packet, close or
# shutdown right after the first packet, FIONREAD, fork), and ldapsearch.
. "$top_srcdir/tests/integration/lib.sh"

need_python
need_tlsshim
need_cmd od

SRV=$CLIENTS/inband_server.py
CLI=$CLIENTS/inband_client.py
POLICY_MATCH=127.0.0.1:18080
POLICY_LEVEL=debug

# hostile NAME MODE: inband_server.py in MODE as server NAME.
hostile() {
    start_server "$1" "$PYTHON" "$SRV" "$WORK/$1.port" "$WORK/$1.log" "$2" \
        "$CERTS/server.pem" "$CERTS/server-key.pem"
}

# case_setup NAME MODE PROTO [LINE...]: server NAME in MODE and the policy
# NAME: 127.0.0.1:18080 -> it, protocol PROTO.
case_setup() {
    local n=$1 m=$2 pr=$3 port
    shift 3
    hostile "$n" "$m"
    port="${n}_port"
    policy "$n" "${!port}" "server-name = localhost" "protocol = $pr" "$@"
}

# proxy_setup NAME MODE: server NAME in MODE plays the proxy (and, past a
# 2xx, the destination); the rule's protocol is tls.
proxy_setup() {
    local n=$1 port
    hostile "$n" "$2"
    port="${n}_port"
    policy "$n" "" "server-name = localhost" "proxy = http://127.0.0.1:${!port}"
}

# client NAME ARGS...: inband_client.py 18080 ARGS under NAME's policy;
# its output in $WORK/NAME.out.  Returns its status.
client() {
    local n=$1
    shift
    run "$n" "$PYTHON" "$CLI" 18080 "$@" >"$WORK/$n.out" 2>&1
}

# out NAME: the client's output.
out() { cat "$WORK/$1.out"; }
# tlog NAME: the tlsshim log.
tlog() { cat "$WORK/$1.tlsshim.log" 2>/dev/null; }
# hex TEXT: TEXT as lower-case hex, as the server logs bytes.
hex() { printf '%b' "$1" | od -An -tx1 -v | tr -d ' \n'; }
# done_line NAME [N]: wait for connection N's (1) "done" line; print it.
done_line() {
    wait_for_match "$WORK/$1.log" "^c${2:-1} done " 15 >/dev/null 2>&1
    grep "^c${2:-1} done " "$WORK/$1.log"
}
# sfield NAME KEY [N]: a field of connection N's done line (plain, tls,
# tlsin as hex or "-"; end).
sfield() { done_line "$1" "${3:-1}" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# elapsed NAME: seconds the client took to fail (its "error" line).
elapsed() { out "$1" | sed -n 's/^error .* elapsed=\([0-9]*\)\..*/\1/p'; }
# stop NAME: the case's server goes.
stop() { stop_server "$1"; }

# has HAYSTACK NEEDLE: NEEDLE is a substring of HAYSTACK.
has() { [[ $1 == *"$2"* ]]; }

# ---- 1. the deadline: a server that trickles its reply, one that never answers
# handshake-timeout = 1s; the trickle goes on 20 s and the silence 30 s:
# the connection must fail at the deadline (checked with a 5 s margin),
# blocking and non-blocking (poll loop, edge-triggered epoll).
for mode in smtp_trickle silent; do
    for shape in block poll epollet; do
        n=${mode}_$shape
        case_setup "$n" "$mode" smtp "handshake-timeout = 1s"
        client "$n" smtp "$shape"
        st=$?
        like "$(out "$n")" '^error ETIMEDOUT' "$mode, $shape client: the program gets ETIMEDOUT (exit $st)"
        e=$(elapsed "$n")
        check "$mode, $shape client: it fails at the 1 s deadline, not later (${e:-?} s)" \
            test "${e:-99}" -lt 6
        like "$(tlog "$n")" 'did not finish the smtp \(STARTTLS\) exchange before TLS within 1000 ms' \
            "$mode, $shape client: the log says the exchange timed out"
        stop "$n"
    done
done

# ---- 2. a server that closes at each step; overlong lines; no STARTTLS
for step in greeting ehlo starttls; do
    n=close_$step
    case_setup "$n" "smtp_close_$step" smtp
    client "$n" smtp block
    like "$(out "$n")" '^error ECONNREFUSED' "smtp server closing at its $step: the program's connect is refused"
    like "$(tlog "$n")" 'server closed the connection during the smtp' "closing at its $step: logged as such"
    is "$(sfield "$n" tls)" - "closing at its $step: no TLS, nothing of the program's sent"
    stop "$n"
done

n=longline
case_setup "$n" smtp_longline smtp
client "$n" smtp block
like "$(out "$n")" '^error ECONNREFUSED' "a greeting line of 3000 bytes without an end: refused"
like "$(tlog "$n")" 'line longer than 2048 bytes' "the overlong line: logged with the bound"
stop "$n"

n=longreply
case_setup "$n" smtp_longreply smtp
client "$n" smtp block
like "$(out "$n")" '^error ECONNREFUSED' "a multi-line greeting of 9 kB that never ends: refused"
like "$(tlog "$n")" '8192 bytes without a complete reply' "the overlong reply: logged with the bound"
stop "$n"

n=nostarttls
case_setup "$n" smtp_nostarttls smtp
client "$n" smtp block
like "$(out "$n")" '^error ECONNREFUSED' "EHLO keywords XSTARTTLS and STARTTLSX only: refused"
is "$(sfield "$n" plain)" "$(hex 'EHLO localhost\r\n')" "no STARTTLS: the server got our EHLO only, nothing of the program's"

# ---- 3. injection after the go-ahead: in the same write (the exchange
# refuses it) and 200 ms later (tlsshim may be in TLS already: the bytes
# are garbage for TLS and fail the handshake).  Never for the program.
for p in smtp imap pop3; do
    for when in inject inject_late; do
        n=${p}_$when
        case_setup "$n" "${p}_$when" "$p"
        client "$n" "$p" block
        st=$?
        ok $((st == 0)) "$p, $when: the program's connection fails"
        unlike "$(out "$n")" 'injected' "$p, $when: the injected line never reaches the program"
        is "$(sfield "$n" tls)" - "$p, $when: no TLS session came of it"
        if [ "$when" = inject ]; then
            like "$(tlog "$n")" 'bytes after its .* before the TLS handshake \(command injection\?\)' \
                "$p, $when: logged as an injection"
        fi
        stop "$n"
    done
done

n=pg_inject
case_setup "$n" pg_inject postgres
client "$n" pg sslgss
like "$(out "$n")" '^error ECONNREFUSED' "postgres 'S' followed by 9 bytes in the same write: refused"
like "$(tlog "$n")" "after its 'S' to SSLRequest" "postgres injection: logged"
is "$(sfield "$n" plain)" "$(hex '\0\0\0\010\04\0322\026\057')" "postgres injection: the server got our SSLRequest only"
stop "$n"

n=pg_n
case_setup "$n" pg_n postgres
client "$n" pg sslgss
like "$(out "$n")" '^error ECONNREFUSED' "postgres answering N: refused (fail closed)"
is "$(sfield "$n" plain)" "$(hex '\0\0\0\010\04\0322\026\057')" "postgres N: nothing of the program's in clear"
stop "$n"

n=proxy_inject
proxy_setup "$n" proxy_inject
client "$n" raw block
like "$(out "$n")" '^error ECONNREFUSED' "proxy 200 followed by bytes (protocol tls): refused"
like "$(tlog "$n")" 'after its 2xx reply to CONNECT' "proxy injection: logged"
unlike "$(sfield "$n" plain)" "$(hex hello-through)" "proxy injection: nothing of the program's went"
stop "$n"

# ---- 4. odd but legal servers: the exchange succeeds, byte-exact
n=smtp_split
case_setup "$n" smtp_split smtp
client "$n" smtp block
ok $? "smtp greeting and EHLO reply multi-line, cut inside codes, words and CR LF: works"
like "$(out "$n")" "^greeting b'220-hostile.test first line.r.n220-second line.r.n220 third.r.n'\$" \
    "the program gets the whole 3-line greeting, once"
is "$(sfield "$n" tls)" TLSv1.3 "smtp split: TLS 1.3 on the server's side"
check "smtp split: the program's EHLO arrived inside TLS" has "$(sfield "$n" tlsin)" "$(hex 'EHLO client.test\r\n')"
unlike "$(sfield "$n" plain)" "$(hex 'client.test')" "smtp split: the program's EHLO never in clear"
stop "$n"

for shape in block epollet; do
    n=imap_untagged_$shape
    case_setup "$n" imap_untagged imap
    client "$n" imap "$shape"
    ok $? "imap, untagged lines before the tagged OK ($shape): works"
    like "$(out "$n")" "^greeting b'\\* OK hostile ready.r.n'\$" \
        "imap ($shape): the greeting without its [CAPABILITY] code"
    check "imap ($shape): the program's CAPABILITY arrived inside TLS" \
        has "$(sfield "$n" tlsin)" "$(hex 'a1 CAPABILITY\r\n')"
    is "$(sfield "$n" plain)" "$(hex 'tls0 STARTTLS\r\n')" "imap ($shape): in clear, our STARTTLS only"
    stop "$n"
done

# The greeting given after TLS must wake an edge-triggered epoll waiter
# (nothing more comes from the kernel for it).
for p in smtp pop3; do
    n=${p}_et
    case_setup "$n" "$p" "$p"
    client "$n" "$p" epollet
    ok $? "$p, edge-triggered epoll through the whole exchange: the greeting wakes it"
    like "$(out "$n")" '^greeting ' "$p, ET epoll: the program got the greeting"
    stop "$n"
done

n=ldap84
case_setup "$n" ldap84 ldap
if command -v ldapsearch >/dev/null 2>&1; then
    run "$n" ldapsearch -x -H ldap://127.0.0.1:18080 -b dc=example,dc=test '(objectClass=*)' \
        >"$WORK/$n.out" 2>&1
    ok $? "ldap: a StartTLS response with every length in the 0x84 form, cut in three: ldapsearch works"
    like "$(out "$n")" '^result: 0 Success' "ldapsearch got its search result"
    is "$(sfield "$n" plain)" 301d02010177188016312e332e362e312e342e312e313436362e3230303337 \
        "ldap: in clear, our StartTLS request only"
    like "$(sfield "$n" tlsin)" '^300c0201016007' "ldap: the program's bind came first inside TLS"
else
    for i in 1 2 3 4; do skip "ldap 0x84" "ldapsearch not installed"; done
fi
stop "$n"

# ---- 5. proxies
CONNECT_HEX=$(hex 'CONNECT localhost:18080 HTTP/1.1\r\nHost: localhost:18080\r\n\r\n')
for m in proxy_headers proxy_http10; do
    proxy_setup "$m" "$m"
    client "$m" raw block
    ok $? "$m: the tunnel works"
    is "$(sfield "$m" plain)" "$CONNECT_HEX" "$m: the proxy got the CONNECT only, in clear"
    is "$(sfield "$m" tlsin)" "$(hex 'hello-through-the-tunnel\n')" "$m: the program's line inside TLS"
    stop "$m"
done
for m in proxy_1xx:'HTTP/1.1 100 Continue' proxy_407:'HTTP/1.1 407 Proxy Authentication Required' \
    proxy_403:'HTTP/1.1 403 Forbidden'; do
    n=${m%%:*}
    proxy_setup "$n" "$n"
    client "$n" raw block
    like "$(out "$n")" '^error ECONNREFUSED' "$n: the program's connect is refused (fail closed)"
    check "$n: the log shows the status line" grep -qF "refused the CONNECT: ${m#*:}" "$WORK/$n.tlsshim.log"
    is "$(sfield "$n" plain)" "$CONNECT_HEX" "$n: the proxy got the CONNECT and nothing of the program's"
    stop "$n"
done

# ---- 6. postgres: the program's own SSLRequest and GSSENCRequest answered N
for shape in sslgss together; do
    n=pg_$shape
    case_setup "$n" pg postgres
    client "$n" pg "$shape"
    ok $? "postgres, the program asks for encryption itself ($shape): it goes on"
    want=2
    [ "$shape" = together ] && want=1
    is "$(out "$n" | grep -c "answer b'N'")" "$want" "postgres ($shape): each request answered N, locally"
    is "$(sfield "$n" plain)" "$(hex '\0\0\0\010\04\0322\026\057')" "postgres ($shape): in clear, our SSLRequest only"
    tlsin=$(sfield "$n" tlsin)
    like "$tlsin" '^0000002400030000' "postgres ($shape): inside TLS, the startup packet comes first"
    unlike "$tlsin" '04d2162f|04d21630' "postgres ($shape): no SSLRequest or GSSENCRequest inside TLS"
    [ "$shape" = together ] && like "$(out "$n")" 'together sent=8$' \
        "postgres: SSLRequest and startup in one write: a short count of 8"
    stop "$n"
done

# ---- 7. mysql: the program's turn, in every shape
# What the server must see: in clear exactly the SSLRequest (36 bytes,
# sequence 1, CLIENT_SSL set); inside TLS first the program's
# HandshakeResponse as sequence 2 with CLIENT_SSL set.
RESP_HEAD=580000020d8a2800
for shape in plain peek onebyte readv recvmsg write1 together close shutwr fork poll epollet fionread readagain_nb; do
    n=my_$shape
    case_setup "$n" mysql mysql "handshake-timeout = 5s"
    client "$n" mysql "$shape"
    ok $? "mysql ($shape): the exchange works"
    [ "$shape" = fork ] || like "$(out "$n")" 'caps=0xf7ff' "mysql ($shape): the greeting reached the program without CLIENT_SSL"
    plain=$(sfield "$n" plain)
    like "$plain" '^200000010d8a28' "mysql ($shape): in clear, the SSLRequest (seq 1, CLIENT_SSL) only"
    is "${#plain}" 72 "mysql ($shape): 36 bytes in clear, nothing more"
    like "$(sfield "$n" tlsin)" "^$RESP_HEAD" "mysql ($shape): the HandshakeResponse first inside TLS, seq 2"
    case $shape in
    close | shutwr)
        is "$(sfield "$n" end)" tls-eof "mysql ($shape): the packet arrived, then close_notify" ;;
    together)
        like "$(out "$n")" 'together sent=92 of 97 response=92' "mysql: a write of response + COM_PING: short count, the response"
        like "$(sfield "$n" tlsin)" "^${RESP_HEAD}[0-9a-f]{168}010000..0e" "mysql: the rest (COM_PING) followed inside TLS" ;;
    fionread)
        like "$(out "$n")" 'note fionread 101' "mysql: FIONREAD counts the greeting" ;;
    readagain_nb)
        like "$(out "$n")" 'note readagain EAGAIN' "mysql: reading again before answering: EAGAIN (non-blocking)" ;;
    esac
    stop "$n"
done

n=my_readagain
case_setup "$n" mysql mysql "handshake-timeout = 1s"
client "$n" mysql readagain
like "$(out "$n")" '^error ETIMEDOUT' "mysql, a blocking read again before answering: fails at the deadline"
e=$(elapsed "$n")
check "mysql readagain: at the 1 s deadline (${e:-?} s)" test "${e:-99}" -lt 6
is "$(sfield "$n" plain)" - "mysql readagain: nothing sent in clear"
stop "$n"

# The server sends a byte during the program's turn (the program takes
# 1 s to answer): the exchange must fail, and say why, before the
# SSLRequest; the program's HandshakeResponse never goes.
n=my_chatty
case_setup "$n" mysql_chatty mysql "handshake-timeout = 2s"
client "$n" mysql slow
like "$(out "$n")" '^error ' "mysql, a server byte during the program's turn: the program's connection fails"
like "$(tlog "$n")" 'sent bytes while the program answered its greeting' \
    "mysql chatty: the log names the server's stray byte (not a handshake timeout)"
is "$(sfield "$n" plain)" - "mysql chatty: nothing sent after the stray byte (no SSLRequest, no ClientHello)"
stop "$n"

# ---- 8. fork and shutdown(SHUT_WR) during the exchange
n=smtp_fork
case_setup "$n" smtp smtp
client "$n" smtp fork
ok $? "smtp: a child forked mid-exchange closes its copy and exits: the parent's connection goes on"
check "smtp fork: the program's QUIT arrived inside TLS" has "$(sfield "$n" tlsin)" "$(hex 'QUIT\r\n')"
stop "$n"

for shape in shutwr shutwr_early; do
    n=smtp_$shape
    case_setup "$n" smtp smtp
    client "$n" smtp "$shape"
    ok $? "smtp: shutdown(SHUT_WR) during the exchange ($shape): the program still gets the greeting"
    like "$(out "$n")" "^greeting b'220 hostile" "smtp $shape: the greeting, then the end"
    is "$(sfield "$n" tls)" TLSv1.3 "smtp $shape: the server saw TLS 1.3, and the end inside it"
    stop "$n"
done

done_testing
