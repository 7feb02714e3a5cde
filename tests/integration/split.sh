#!/bin/bash
# split.sh -- after fork() one process writes to an upgraded connection and
# another reads from it (issue 9, section 4).  TLS 1.3's two directions have
# their own keys and sequence numbers: the first process to write owns the
# sending direction, the first to read the receiving one (owner.h).
# Proves, from the server side:
#   (a) real rsync: "rsync rsync://127.0.0.1:PLAIN/mod/file" (a receiver and
#       a generator process on one socket) through stunnel (TLS 1.3 server
#       mode) to "rsync --daemon": the file arrives intact, stunnel saw TLS 1.3;
#   (b) a python client that forks, one process writing, the other reading,
#       both ways round, through tserver echo: the server got exactly the
#       data, the reader got it back, the server saw close_notify; and through
#       openssl s_server with a KeyUpdate (update_requested) from the server
#       in the middle: the reader reads across it, the writer answers it
#       with its own KeyUpdate before its next data, the data after it
#       arrives intact, and the end is a close_notify;
#   (c) one process that both writes and reads keeps the whole connection:
#       the other gets EIO both ways (and the server never sees its bytes);
#   (d) when the process that reads exits, the other cannot take its
#       direction over (its copy of the TLS state is stale): EIO and a log
#       line, while its own direction still works to a clean close_notify.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd rsync
need_cmd stunnel4
need_tlsshim
sha() { sha256sum "$1" | cut -d' ' -f1; }

# every policy: 127.0.0.1:18080 (SNI localhost), logging at debug
POLICY_LEVEL=debug POLICY_MATCH=127.0.0.1:18080

# ==== (a) rsync daemon protocol through stunnel ===============================================
mkdir -p "$WORK/module" "$WORK/dest"
head -c 400000 /dev/urandom >"$WORK/module/data.bin"
rsync_port=$(free_port)
cat >"$WORK/rsyncd.conf" <<EOC
use chroot = no
pid file = $WORK/rsyncd.pid
[mod]
path = $WORK/module
read only = yes
EOC
rsync --daemon --no-detach --config="$WORK/rsyncd.conf" --port="$rsync_port" --address=127.0.0.1 \
    --log-file="$WORK/rsyncd.log" </dev/null >"$WORK/rsyncd.out" 2>&1 &
_remember rsyncd $!
tls_port=$(free_port)
cat >"$WORK/stunnel.conf" <<EOC
foreground = yes
pid =
debug = 7
output = $WORK/stunnel.log
[rsync]
accept = 127.0.0.1:$tls_port
connect = 127.0.0.1:$rsync_port
cert = $CERTS/server.pem
key = $CERTS/server-key.pem
sslVersionMin = TLSv1.3
EOC
stunnel4 "$WORK/stunnel.conf" </dev/null >"$WORK/stunnel.out" 2>&1 &
_remember stunnel $!
check "rsync: the daemon listens" wait_for_match "$WORK/rsyncd.log" "rsyncd version .* starting"
check "rsync: stunnel listens" wait_for_match "$WORK/stunnel.log" "Configuration successful"
plain_port=$(free_port)
POLICY_MATCH=127.0.0.1:$plain_port policy rsync "$tls_port" "server-name = localhost"
tlsshim_run "$WORK/rsync.policy" rsync "rsync://127.0.0.1:$plain_port/mod/data.bin" "$WORK/dest/" \
    >"$WORK/rsync.out" 2>"$WORK/rsync.err"
st=$?
ok $st "rsync: the client exits 0"
[ $st -eq 0 ] || diag "rsync: $(tail -n 3 "$WORK/rsync.err") | tlsshim: $(tail -n 3 "$WORK/rsync.tlsshim.log")"
is "$(sha "$WORK/dest/data.bin" 2>/dev/null)" "$(sha "$WORK/module/data.bin")" \
    "rsync: the file arrived intact (sha256)"
check "rsync: stunnel (the server side) negotiated TLS 1.3" \
    wait_for_match "$WORK/stunnel.log" "TLSv1\.3 ciphersuite"
check "rsync: the daemon served the module (its own log)" \
    wait_for_match "$WORK/rsyncd.log" "rsync allowed access on module mod"
check "rsync: stunnel ended the connection cleanly (its close_notify after the daemon's end)" \
    wait_for_match "$WORK/stunnel.log" "SSL_shutdown successfully sent close_notify"
like "$(grep -c 'TLS alert (write): fatal' "$WORK/stunnel.log")" '^0$' "rsync: stunnel sent no fatal alert"
like "$(grep -c 'refused here' "$WORK/rsync.tlsshim.log")" '^0$' "rsync: no I/O was refused (EIO)"

# ==== (b1) one process writes, the other reads: tserver echo ==================================
head -c 300000 /dev/urandom >"$WORK/echo.bin"
for who in child-reads parent-reads; do
    start_tserver "e${who%%-*}" --mode echo
    port_var="e${who%%-*}_port" log_var="e${who%%-*}_log"
    policy "echo-$who" "${!port_var}" "server-name = localhost"
    tlsshim_run "$WORK/echo-$who.policy" "$PYTHON" "$CLIENTS/split_client.py" echo "$who" 127.0.0.1 18080 \
        "$WORK/echo.bin" >"$WORK/echo-$who.out" 2>"$WORK/echo-$who.err"
    st=$?
    ok $st "echo $who: client exits 0"
    [ $st -eq 0 ] || diag "client: $(tail -n 3 "$WORK/echo-$who.err") | tlsshim: $(tail -n 3 "$WORK/echo-$who.tlsshim.log")"
    is "$(sed -n 's/^read //p' "$WORK/echo-$who.out")" "300000 $(sha "$WORK/echo.bin")" \
        "echo $who: the reading process got the data back intact"
    log=${!log_var}
    check "echo $who: server logged the connection" wait_for_lines "$log" 1
    is "$(tserver_field "$log" 1 status) $(tserver_field "$log" 1 bytes_in) $(tserver_field "$log" 1 closed)" \
        "ok 300000 notify" "echo $who: server: status=ok, 300000 bytes in, closed=notify"
    is "$(tserver_field "$log" 1 sha256_in)" "$(sha "$WORK/echo.bin")" "echo $who: server: sha256_in is the file's"
done

# ==== (b2) a KeyUpdate from the server in the middle: openssl s_server ========================
for who in child-reads parent-reads; do
    name="k${who%%-*}"
    start_openssl_server "$name" -msg
    port_var="${name}_port" log_var="${name}_log" stdin_var="${name}_stdin_fd"
    slog=${!log_var} sfd=${!stdin_var}
    policy "ku-$who" "${!port_var}" "server-name = localhost"
    fifo="$WORK/ku-$who.cmd" out="$WORK/ku-$who.read"
    rm -f "$fifo" "$out"
    mkfifo "$fifo"
    exec {cfd}<>"$fifo"
    tlsshim_run "$WORK/ku-$who.policy" "$PYTHON" "$CLIENTS/split_client.py" cmd "$who" 127.0.0.1 18080 \
        "$fifo" "$out" >"$WORK/ku-$who.out" 2>"$WORK/ku-$who.err" &
    cpid=$!
    echo "send before-keyupdate-$who" >&"$cfd"
    check "keyupdate $who: the server read the writer's first line" \
        wait_for_match "$slog" "^before-keyupdate-$who\$"
    echo "from-server-1" >&"$sfd"
    check "keyupdate $who: the reader got the server's first line" wait_for_match "$out" "^from-server-1\$"
    echo "K" >&"$sfd"
    check "keyupdate $who: s_server sent a KeyUpdate (update_requested)" \
        wait_for_match "$slog" "^>>> .*KeyUpdate"
    echo "from-server-2" >&"$sfd"
    check "keyupdate $who: the reader read across the server's KeyUpdate" \
        wait_for_match "$out" "^from-server-2\$"
    echo "send after-keyupdate-$who" >&"$cfd"
    check "keyupdate $who: the server read the writer's line after it" \
        wait_for_match "$slog" "^after-keyupdate-$who\$"
    n_ku=$(grep -c '^<<< .*KeyUpdate' "$slog")
    is "$n_ku" 1 "keyupdate $who: the writer answered with one KeyUpdate (server side)"
    # ...and before its data: the KeyUpdate comes before the line in s_server's output
    first=$(grep -n -E "^<<< .*KeyUpdate|^after-keyupdate-$who\$" "$slog" | head -n 1)
    like "$first" "KeyUpdate" "keyupdate $who: our KeyUpdate came before the writer's next data"
    echo "close" >&"$cfd"
    check "keyupdate $who: the server got close_notify" \
        wait_for_match "$slog" "^<<< .*Alert.*close_notify|^<<< .*close_notify|^DONE"
    wait "$cpid"
    st=$?
    exec {cfd}>&-
    ok $st "keyupdate $who: client exits 0"
    [ $st -eq 0 ] || diag "client: $(tail -n 3 "$WORK/ku-$who.err") | read: $(tail -n 2 "$out") | tlsshim: $(tail -n 3 "$WORK/ku-$who.tlsshim.log")"
    like "$(grep -c 'refused here\|not sent' "$WORK/ku-$who.tlsshim.log")" '^0$' "keyupdate $who: nothing refused"
    stop_server "$name"
done

# ==== (c) one process used both directions: the other gets EIO for both ======================
start_tserver whole --mode http
policy whole "$whole_port" "server-name = localhost"
tlsshim_run "$WORK/whole.policy" "$PYTHON" "$CLIENTS/fork_client.py" 127.0.0.1 18080 parent-first \
    >"$WORK/whole.out" 2>"$WORK/whole.err"
ok $? "whole connection: client exits 0"
like "$(cat "$WORK/whole.out")" "other send=EIO recv=EIO" "whole connection: the second process gets EIO both ways"
check "whole connection: server logged the connection" wait_for_lines "$whole_log" 1
like "$(tserver_field "$whole_log" 1 first_line)" "^GET /parent" "whole connection: server: the first process's request"
like "$(grep -c 'SECOND PROCESS' "$whole_log")" '^0$' "whole connection: server never saw the second process's bytes"
like "$(cat "$WORK/whole.tlsshim.log")" "another process \(pid [0-9]+\) uses this connection for writing: writing refused here \(EIO\)" \
    "whole connection: the log says why"

# ==== (d) a direction never moves: its owner exited, the other process gets EIO =================
start_tserver hand --mode echo
policy hand "$hand_port" "server-name = localhost"
tlsshim_run "$WORK/hand.policy" "$PYTHON" "$CLIENTS/split_client.py" handover parent-reads 127.0.0.1 18080 \
    >"$WORK/hand.out" 2>"$WORK/hand.err"
ok $? "handover: client exits 0"
like "$(cat "$WORK/hand.out")" "child read b'one.n'" "handover: the child read the echo"
like "$(cat "$WORK/hand.out")" "parent recv=EIO" "handover: the parent cannot take over the exited reader's direction (EIO)"
check "handover: server logged the connection" wait_for_lines "$hand_log" 1
is "$(tserver_field "$hand_log" 1 status) $(tserver_field "$hand_log" 1 bytes_in) $(tserver_field "$hand_log" 1 closed)" \
    "ok 8 notify" "handover: server: the parent's two lines, then close_notify from the writer"
like "$(cat "$WORK/hand.tlsshim.log")" "uses this connection for reading, and has exited: reading refused here \(EIO\); a direction never moves" \
    "handover: the log says why"

done_testing
