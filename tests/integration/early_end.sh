#!/bin/bash
# 0-RTT and the end of the handshake: bytes taken as early data are
# delivered, then close_notify, when the program closes or shuts the
# socket before the handshake ends (server accepting or rejecting the
# early data); the first read or write after a non-blocking connect that
# nobody polled starts the handshake instead of failing.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u
need_tlsshim
POLICY_LEVEL=debug
for mode in close shut; do
    for rej in accept reject; do
        name=e_${mode}_$rej
        if [ $rej = accept ]; then
            start_tserver $name --mode sink --earlydata 16384
        else
            start_tserver $name --mode sink --earlydata 16384 --reject-early-after 1
        fi
        pvar=${name}_port lvar=${name}_log
        POLICY_MATCH=127.0.0.1:${!pvar} policy $name "" "server-name = localhost" "early-data = on"
        out=$(run $name "$PYTHON" "$CLIENTS/early_end.py" 127.0.0.1 "${!pvar}" $mode 2>&1)
        rc=$?
        echo "$out" | sed "s/^/# $name: /"
        is "$rc" 0 "$name: the program ends well"
        wait_for_lines "${!lvar}" 2 20
        sed "s/^/# $name srv: /" "${!lvar}"
        grep -i "early\|fail\|handshake\|error" "$WORK/$name.tlsshim.log" | sed "s/^/# $name log: /" | tail -6
        is "$(tserver_field "${!lvar}" 2 early_data)" $([ $rej = accept ] && echo 1000 || echo 0) \
            "$name: the server ${rej}ed the early data"
        is "$(tserver_field "${!lvar}" 2 bytes_in)" 1000 "$name: the server got the 1000 bytes the program was told went"
        is "$(tserver_field "${!lvar}" 2 closed)" notify "$name: then close_notify"
    done
done
for mode in shuthttp nbwrite nbread; do
    name=e_$mode
    start_tserver $name --earlydata 16384
    pvar=${name}_port lvar=${name}_log
    POLICY_MATCH=127.0.0.1:${!pvar} policy $name "" "server-name = localhost" "early-data = on"
    out=$(run $name "$PYTHON" "$CLIENTS/early_end.py" 127.0.0.1 "${!pvar}" $mode 2>&1)
    rc=$?
    echo "$out" | sed "s/^/# $name: /"
    is "$rc" 0 "$name: the request is answered"
    wait_for_lines "${!lvar}" 2 20
    sed "s/^/# $name srv: /" "${!lvar}"
    grep -i "early\|fail\|error" "$WORK/$name.tlsshim.log" | sed "s/^/# $name log: /" | tail -6
    is "$(tserver_field "${!lvar}" 2 status)" ok "$name: the server saw a good connection"
done
# A first write of 2 GiB: only what early data carries is copied (the
# program runs under a 512 MiB RLIMIT_DATA: a copy of all of it fails,
# and then no early data goes at all).
start_tserver e_huge --mode sink --earlydata 16384
POLICY_MATCH=127.0.0.1:$e_huge_port policy e_huge "" "server-name = localhost" "early-data = on"
out=$(run e_huge "$PYTHON" "$CLIENTS/early_huge.py" 127.0.0.1 "$e_huge_port" "$WORK/huge.map" 2>&1)
echo "$out" | sed "s/^/# e_huge: /"
wait_for_lines "$e_huge_log" 2 20
sed "s/^/# e_huge srv: /" "$e_huge_log"
sent=$(echo "$out" | sed -n 's/^send //p')
is "$(tserver_field "$e_huge_log" 2 early_data)" "$sent" "e_huge: the first write's bytes went as early data"
is "$(tserver_field "$e_huge_log" 2 bytes_in)" "$sent" "e_huge: the server got them, once"
done_testing
