#!/bin/bash
# verify_cache.sh -- the verification cache (tls.c): a chain that verified
# once in a process is not checked again for the same rule and name, within
# five minutes and never past the chain's earliest expiry.  Proves:
#   * it is used: two full handshakes (resume = off) in one process, the
#     server saw both over TLS 1.3; tlsshim logs chain=checked, then
#     chain=cached;
#   * it is per rule: the same server, chain and name through a second rule
#     whose pin does not match is still refused (server: no application
#     bytes), right after the first rule cached that chain;
#   * it never outlives the certificate: a leaf made to expire a few seconds
#     after the first connection; the same process's next connection, after
#     the expiry, is refused as expired (server: no application bytes);
#   * nor the trust anchor, which the server does not send: a CA expiring a
#     few seconds later ends the entry too.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim pin-other.txt
need_cmd certtool
FETCH=$top_srcdir/tests/integration/clients/fetch_seq.py
PIN_GOOD=$(cat "$CERTS/pin-server.txt")
PIN_OTHER=$(cat "$CERTS/pin-other.txt")

# pin_policy NAME PORT: rule [good] for localhost:18080 (right pin) and rule
# [other] for localhost:18081 (a pin that matches no key), both to PORT.
# Two rules: lib.sh's policy writes one.
pin_policy() {
    write_policy "$WORK/$1.policy" <<POL
log = file:$WORK/$1.tlsshim.log
log-level = info

[good]
match = localhost:18080
port = $2
ca = $CERTS/ca.pem
resume = off
pin = $PIN_GOOD

[other]
match = localhost:18081
port = $2
ca = $CERTS/ca.pem
resume = off
pin = $PIN_OTHER
POL
}

# tserver writes a conn line when a connection ENDS, so under load the lines
# of one process's connections may come in any order: find each by what it
# carried.
# conn_with LOG FIRST_LINE: the number of LOG's conn line whose first_line is
# FIRST_LINE (a number past the end, for which tserver_field prints nothing,
# if there is none).
conn_with() {
    local n total
    total=$(tserver_conns "$1")
    for ((n = 1; n <= total; n++)); do
        [ "$(tserver_field "$1" "$n" first_line)" = "$2" ] && { echo "$n"; return; }
    done
    echo 999999
}
# conn_besides LOG N...: the number of LOG's first conn line that is none of
# the lines N... (the connection that carried no request).
conn_besides() {
    local log=$1 n total
    shift
    total=$(tserver_conns "$log")
    for ((n = 1; n <= total; n++)); do
        [[ " $* " = *" $n "* ]] || { echo "$n"; return; }
    done
    echo 999999
}

# ==== 1. used, and per rule ===========================================================
start_tserver srv
pin_policy cache "$srv_port"
out=$(timeout 60 "$TLSSHIM" -p "$WORK/cache.policy" "$PYTHON" "$FETCH" \
    http://localhost:18080/one http://localhost:18080/two http://localhost:18081/three 2>"$WORK/cache.err")
is "$out" "ok ok error" "one process: two fetches through [good] succeed, the one through [other] fails"
check "server logged three connections" wait_for_lines "$srv_log" 3
one=$(conn_with "$srv_log" "GET /one HTTP/1.1")
two=$(conn_with "$srv_log" "GET /two HTTP/1.1")
is "$(tserver_field "$srv_log" "$one" version) $(tserver_field "$srv_log" "$one" first_line)" "TLS1.3 GET /one HTTP/1.1" \
    "server: 1st request over TLS 1.3"
is "$(tserver_field "$srv_log" "$two" version) $(tserver_field "$srv_log" "$two" first_line)" "TLS1.3 GET /two HTTP/1.1" \
    "server: 2nd request over TLS 1.3"
is "$(tserver_field "$srv_log" "$one" resumed) $(tserver_field "$srv_log" "$two" resumed)" "0 0" \
    "server: both were full handshakes (resume = off), so both sent the chain"
is "$(tserver_field "$srv_log" "$(conn_besides "$srv_log" "$one" "$two")" bytes_in)" 0 \
    "server: the [other] connection carried no application bytes"
log=$(cat "$WORK/cache.tlsshim.log")
like "$log" 'rule \[good\] .*resumed=no .*chain=checked' "tlsshim: 1st connection checked the chain"
is "$(grep -c 'rule \[good\] .*resumed=no .*chain=cached' "$WORK/cache.tlsshim.log")" 1 \
    "tlsshim: 2nd connection found it in the cache"
like "$log" 'error: rule \[other\] .*matches no pin' "tlsshim: [other] refused for its pin, cache or not"

# utc OFFSET: a certtool date, e.g. utc '+4 seconds' (certtool runs with TZ=UTC)
utc() { date -u -d "$1" '+%Y-%m-%d %H:%M:%S'; }
# make_cert NAME ISSUER TEMPLATE-LINE...: $WORK/NAME.pem and NAME-key.pem,
# self-signed (ISSUER "self") or signed by ISSUER.pem / ISSUER-key.pem.
make_cert() {
    local name=$1 issuer=$2
    shift 2
    printf '%s\n' "$@" >"$WORK/$name.tmpl"
    {
        certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text \
            --outfile "$WORK/$name-key.pem" &&
        if [ "$issuer" = self ]; then
            TZ=UTC certtool --generate-self-signed --load-privkey "$WORK/$name-key.pem" \
                --template "$WORK/$name.tmpl" --no-text --outfile "$WORK/$name.pem"
        else
            TZ=UTC certtool --generate-certificate --load-privkey "$WORK/$name-key.pem" \
                --load-ca-certificate "$issuer.pem" --load-ca-privkey "$issuer-key.pem" \
                --template "$WORK/$name.tmpl" --no-text --outfile "$WORK/$name.pem"
        fi
    } >"$WORK/$name.certtool.out" 2>&1 || bail_out "certtool: $(cat "$WORK/$name.certtool.out")"
}
LEAF=('dns_name = "localhost"' 'tls_www_server' 'signing_key')

# ==== 2. never past the chain's expiry ================================================
# A leaf by the test CA that expires 4 s from now.
make_cert short "$CERTS/ca" 'cn = "localhost"' 'serial = 77' \
    "activation_date = \"$(utc '-1 hour')\"" "expiration_date = \"$(utc '+4 seconds')\"" "${LEAF[@]}"
start_tserver short --cert "$WORK/short.pem" --key "$WORK/short-key.pem"
policy short "$short_port" "resume = off"
out=$(timeout 60 "$TLSSHIM" -p "$WORK/short.policy" "$PYTHON" "$FETCH" \
    http://localhost:18080/before sleep:6 http://localhost:18080/after 2>"$WORK/short.err")
is "$out" "ok error" "one process: the fetch before the expiry succeeds, the one after fails"
check "server logged two connections" wait_for_lines "$short_log" 2
before=$(conn_with "$short_log" "GET /before HTTP/1.1")
is "$(tserver_field "$short_log" "$before" version) $(tserver_field "$short_log" "$before" first_line)" \
    "TLS1.3 GET /before HTTP/1.1" "server: the request before the expiry over TLS 1.3"
is "$(tserver_field "$short_log" "$(conn_besides "$short_log" "$before")" bytes_in)" 0 \
    "server: the connection after the expiry carried no application bytes"
like "$(cat "$WORK/short.tlsshim.log")" 'error: rule \[short\] .*expired' \
    "tlsshim: the connection after the expiry was refused as expired (the cache entry ended with the certificate)"

# ==== 3. never past the trust anchor's expiry ==========================================
# A CA (the policy's only anchor) that expires 4 s from now, and a leaf by it
# valid for years: the anchor is not in what the server sends, and its expiry
# still ends the cache entry.
make_cert shortca self 'cn = "short-lived test CA"' 'serial = 78' \
    "activation_date = \"$(utc '-1 hour')\"" "expiration_date = \"$(utc '+4 seconds')\"" \
    'ca' 'cert_signing_key'
make_cert byshort "$WORK/shortca" 'cn = "localhost"' 'serial = 79' \
    "activation_date = \"$(utc '-1 hour')\"" 'expiration_days = 3650' "${LEAF[@]}"
start_tserver anchor --cert "$WORK/byshort.pem" --key "$WORK/byshort-key.pem"
POLICY_CA=$WORK/shortca.pem policy anchor "$anchor_port" "resume = off"
out=$(timeout 60 "$TLSSHIM" -p "$WORK/anchor.policy" "$PYTHON" "$FETCH" \
    http://localhost:18080/a1 http://localhost:18080/a2 sleep:6 http://localhost:18080/a3 2>"$WORK/anchor.err")
is "$out" "ok ok error" "one process: two fetches before the CA expires succeed, the one after fails"
check "server logged three connections" wait_for_lines "$anchor_log" 3
a1=$(conn_with "$anchor_log" "GET /a1 HTTP/1.1")
a2=$(conn_with "$anchor_log" "GET /a2 HTTP/1.1")
is "$(tserver_field "$anchor_log" "$a2" version) $(tserver_field "$anchor_log" "$a2" first_line)" \
    "TLS1.3 GET /a2 HTTP/1.1" "server: the 2nd request (before the expiry) over TLS 1.3"
is "$(grep -c 'rule \[anchor\] .*chain=cached' "$WORK/anchor.tlsshim.log")" 1 \
    "tlsshim: the 2nd connection was a cache hit"
is "$(tserver_field "$anchor_log" "$(conn_besides "$anchor_log" "$a1" "$a2")" bytes_in)" 0 \
    "server: the connection after the CA expired carried no application bytes"

done_testing
