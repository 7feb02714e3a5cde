#!/bin/bash
# guards.sh -- three calls the library must refuse rather than let corrupt
# the stream or crash the program (a small C client, clients/guards_client.c):
#  1. a write that failed with EAGAIN after GnuTLS had already encrypted and
#     queued its record: POSIX lets the program write OTHER bytes next, but
#     the queued record goes first; the library must fail the connection
#     (EIO, logged), never let the server get bytes the program was told
#     were not sent.  The same bytes again must go exactly once (whether
#     the program waited with poll, which flushes the record, or retried).
#  2. send/sendto/sendmsg/sendmmsg with MSG_OOB: TLS has no urgent data;
#     EOPNOTSUPP, nothing of it reaches the server.  recv(MSG_OOB): EINVAL.
#  3. sendmsg/recvmsg with a NULL msg or NULL msg_iov, sendmmsg/recvmmsg
#     with a NULL vector: EFAULT as libc/the kernel say, no crash.
# Proof from tserver: bytes_in, sha256_in, closed.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim
need_cmd cc sha256sum

cc -O0 -o "$WORK/guards_client" "$CLIENTS/guards_client.c" 2>"$WORK/cc.err" ||
    { diag "$(cat "$WORK/cc.err")"; bail_out "cannot build guards_client.c"; }

# every policy: rule [guards] for 127.0.0.1:PORT itself (no port line), logging to $TLOG
POLICY_LOG=file:$TLOG POLICY_RULE=guards

# ---- 1. EAGAIN, then the same or other bytes ----
n=0
for wait in poll spin; do
    for kind in same other; do
        n=$((n + 1))
        start_tserver "e$n" --mode sink --read-delay-ms 20
        port_var="e${n}_port" log_var="e${n}_log"
        POLICY_MATCH=127.0.0.1:${!port_var} policy "e$n" "" "server-name = localhost"
        : >"$WORK/tlsshim.log"
        out=$(timeout 120 "$TLSSHIM" -p "$WORK/e$n.policy" "$WORK/guards_client" 127.0.0.1 \
            "${!port_var}" eagain "$kind" "$wait" "$WORK/told$n" 2>&1)
        ok $? "$kind bytes after EAGAIN ($wait): the program ran to its end"
        like "$out" 'eagain at size=' "$kind/$wait: a write met EAGAIN"
        if ! wait_for_lines "${!log_var}" 1 120; then
            fail "$kind/$wait: tserver logged the connection"
            continue
        fi
        told=$(sha256sum <"$WORK/told$n" | cut -d' ' -f1)
        if [ "$kind" = same ]; then
            like "$out" 'retry ret=[1-9][0-9]* errno=-' "same/$wait: the retry was accepted"
            is "$(tserver_field "${!log_var}" 1 bytes_in)" "$(stat -c %s "$WORK/told$n")" \
                "same/$wait: tserver got exactly the bytes the program was told were sent"
            is "$(tserver_field "${!log_var}" 1 sha256_in)" "$told" "same/$wait: ... the same bytes (sha256)"
            is "$(tserver_field "${!log_var}" 1 closed)" notify "same/$wait: then close_notify"
        else
            like "$out" 'retry ret=-1 errno=EIO' "other/$wait: the changed write fails with EIO"
            like "$(cat "$WORK/tlsshim.log")" \
                "rule \[guards\] .*127\.0\.0\.1:${!port_var}.*the program changed the bytes of a write that TLS had already queued after EAGAIN" \
                "other/$wait: logged with the rule, the destination and why"
            isnt_notify=$(tserver_field "${!log_var}" 1 closed)
            [ "$isnt_notify" != notify ]
            ok $? "other/$wait: the stream does not end with close_notify (closed=$isnt_notify)"
            diag "other/$wait: tserver: closed=$isnt_notify reason=$(tserver_field "${!log_var}" 1 reason)"
            # The server got what the program was told was sent, then at
            # most (part of) the record queued at EAGAIN -- already in the
            # stream when the program changed its mind -- and never the
            # other bytes.
            got=$(tserver_field "${!log_var}" 1 bytes_in)
            cat "$WORK/told$n" "$WORK/told$n.queued" >"$WORK/allowed$n"
            told_len=$(stat -c %s "$WORK/told$n")
            [ "$got" -ge "$told_len" ] && [ "$got" -le "$(stat -c %s "$WORK/allowed$n")" ] &&
                [ "$(head -c "$got" "$WORK/allowed$n" | sha256sum | cut -d' ' -f1)" = \
                    "$(tserver_field "${!log_var}" 1 sha256_in)" ]
            ok $? "other/$wait: tserver got what the program was told was sent, at most the queued record after it, never the other bytes ($got, told $told_len)"
        fi
        stop_server "e$n"
    done
done

# ---- 2. MSG_OOB ----
start_tserver oob --mode sink
POLICY_MATCH=127.0.0.1:$oob_port policy "oob" "" "server-name = localhost"
: >"$WORK/tlsshim.log"
text="GET /oob"$'\n'
out=$(timeout 30 "$TLSSHIM" -p "$WORK/oob.policy" "$WORK/guards_client" 127.0.0.1 "$oob_port" oob "$text" 2>&1)
ok $? "MSG_OOB: the program ran to its end"
for call in send sendto sendmsg sendmmsg; do
    like "$out" "${call}_oob ret=-1 errno=EOPNOTSUPP" "$call(MSG_OOB): EOPNOTSUPP"
done
like "$out" 'recv_oob ret=-1 errno=EINVAL' "recv(MSG_OOB): EINVAL (no urgent data can come through TLS)"
is "$(grep -c 'MSG_OOB refused' "$WORK/tlsshim.log")" 1 "MSG_OOB: logged once for the connection"
if wait_for_lines "$oob_log" 1 20; then
    is "$(tserver_field "$oob_log" 1 sha256_in)" "$(printf '%s' "$text" | sha256sum | cut -d' ' -f1)" \
        "MSG_OOB: tserver got only the normal bytes"
    is "$(tserver_field "$oob_log" 1 closed)" notify "MSG_OOB: then close_notify"
else
    fail "MSG_OOB: tserver logged the connection"
fi

# ---- 3. NULL msg / vectors ----
start_tserver nul --mode sink
POLICY_MATCH=127.0.0.1:$nul_port policy "nul" "" "server-name = localhost"
text="GET /null"$'\n'
out=$(timeout 30 "$TLSSHIM" -p "$WORK/nul.policy" "$WORK/guards_client" 127.0.0.1 "$nul_port" null "$text" 2>&1)
ok $? "NULL msg: the program ran to its end (no crash)"
for call in sendmsg_null recvmsg_null sendmsg_null_iov recvmsg_null_iov sendmmsg_null recvmmsg_null; do
    like "$out" "$call ret=-1 errno=EFAULT" "$call: EFAULT"
done
if wait_for_lines "$nul_log" 1 20; then
    is "$(tserver_field "$nul_log" 1 sha256_in)" "$(printf '%s' "$text" | sha256sum | cut -d' ' -f1)" \
        "NULL msg: tserver got the program's bytes"
    is "$(tserver_field "$nul_log" 1 closed)" notify "NULL msg: then close_notify"
else
    fail "NULL msg: tserver logged the connection"
fi

done_testing
