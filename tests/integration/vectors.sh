#!/bin/bash
# vectors.sh -- writev/sendmsg with many buffers (conn_sendv, tls_sendv):
# the records are cut from the whole vector, encrypted where the bytes lie,
# and only a record that spans two buffers is gathered.  Whatever the
# vector's shape (empty buffers, buffers larger and smaller than a record,
# a record limit the server sets), the server must get exactly the bytes
# the program wrote, in order, then close_notify; a non-blocking writer
# that meets EAGAIN and writes the same remaining vector again must not
# duplicate or lose a byte.  Proof from tserver: bytes_in, sha256_in, closed.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

[ -x "$TLSSHIM" ] || bail_out "launcher not built: '$TLSSHIM'"
[ -f "$CERTS/ca.pem" ] || bail_out "certificates missing in '$CERTS'"
[ -x "$PYTHON" ] || skip_all "python3 not found at '$PYTHON'"
CLIENT=$top_srcdir/tests/integration/clients/vectors_client.py

n=0
for mode in writev sendmsg nonblock; do
    for server in plain limit; do
        n=$((n + 1))
        args=(--mode sink)
        [ "$mode" = nonblock ] && args+=(--read-delay-ms 5)
        [ "$server" = limit ] && args+=(--record-size-limit 1000)
        start_tserver "v$n" "${args[@]}"
        port_var="v${n}_port" log_var="v${n}_log"
        write_policy "$WORK/v$n.policy" <<EOF2
log = file:$WORK/tlsshim.log
log-level = info

[vectors]
match = 127.0.0.1:${!port_var}
server-name = localhost
ca = $CERTS/ca.pem
EOF2
        out=$(timeout 120 "$TLSSHIM" -p "$WORK/v$n.policy" "$PYTHON" "$CLIENT" 127.0.0.1 "${!port_var}" "$mode" 2>&1)
        ok $? "$mode/$server: the program ran to its end"
        diag "$mode/$server: $out"
        if [ "$mode" = nonblock ]; then
            like "$out" 'eagain=[1-9]' "$mode/$server: writes met EAGAIN (and wrote the same vector again)"
        fi
        if ! wait_for_lines "${!log_var}" 1 60; then
            fail "$mode/$server: tserver logged the connection"
            stop_server "v$n"
            continue
        fi
        sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' <<<"$out")
        sha=$(sed -n 's/.*sha256=\([0-9a-f]*\).*/\1/p' <<<"$out")
        is "$(tserver_field "${!log_var}" 1 bytes_in)" "$sent" "$mode/$server: tserver got as many bytes as were written"
        is "$(tserver_field "${!log_var}" 1 sha256_in)" "$sha" "$mode/$server: ... the same bytes, in order (sha256)"
        is "$(tserver_field "${!log_var}" 1 closed)" notify "$mode/$server: then close_notify"
        stop_server "v$n"
    done
done

done_testing
