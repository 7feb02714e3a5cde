#!/bin/bash
# ending.sh -- every byte a program was told was sent reaches the server,
# followed by close_notify, however the program ends: close(), shutdown()
# then exit without close (socat -u), sys.exit with the socket open,
# os._exit, _Exit; with a blocking socket and with a socket timeout
# (non-blocking underneath, so GnuTLS holds records the kernel could not
# take), and with a non-blocking socket that ends right after EAGAIN.  The servers never read fast (or read normally): their session
# tickets sit unread at the client, which used to turn the end into a reset.
# Proves, from tserver's log, for each run: bytes_in = the size sent,
# sha256_in = the pattern's digest, closed=notify.  Each case runs several
# times (the losses were intermittent).

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_cmd socat
need_tlsshim

# every policy: rule [up], logging to $TLOG
POLICY_LOG=file:$TLOG POLICY_RULE=up

# The content every client sends: byte i = i % 251.
make_file() {
    "$PYTHON" -c 'import sys
n = int(sys.argv[2])
block = bytes(i % 251 for i in range(251)) * 256
with open(sys.argv[1], "wb") as f:
    while n > 0:
        f.write(block[:n])
        n -= len(block[:n])' "$1" "$2"
}
SMALL=307200      # 300 KB
BIG=4194304       # 4 MB
make_file "$WORK/small" $SMALL
make_file "$WORK/big" $BIG
sha_small=$("$PYTHON" "$CLIENTS/pattern_sha256.py" $SMALL)
sha_big=$("$PYTHON" "$CLIENTS/pattern_sha256.py" $BIG)

# expect NAME LOG N SIZE SHA DESC: the Nth connection of LOG got SIZE bytes
# with digest SHA, then close_notify.  One TAP line per run.
expect() {
    local log=$1 n=$2 size=$3 sha=$4 desc=$5 got
    if ! wait_for_lines "$log" "$n" 20; then
        fail "$desc: the server logged no connection"
        return
    fi
    got="$(tserver_field "$log" "$n" bytes_in) $(tserver_field "$log" "$n" sha256_in) $(tserver_field "$log" "$n" closed)"
    is "$got" "$size $sha notify" "$desc: server got every byte, then close_notify"
}

# ==== 1. socat -u: write everything, shutdown(SHUT_WR), exit without close ===========
# A server reading at normal speed, then a slow one (the data backs up).
start_tserver fast --mode sink
policy fast "$fast_port"
start_tserver slow --mode sink --read-delay-ms 3
policy slow "$slow_port"
# (section 4's: records of at most 1024 bytes)
start_tserver tiny --mode sink --read-delay-ms 3 --record-size-limit 1024
policy tiny "$tiny_port"
nfast=0
nslow=0
for i in 1 2 3 4; do
    timeout 40 "$TLSSHIM" -p "$WORK/fast.policy" socat -u OPEN:"$WORK/small" TCP:localhost:18080
    nfast=$((nfast + 1))
    expect "$fast_log" $nfast $SMALL "$sha_small" "socat -u 300 KB, normal reader, run $i"
done
for i in 1 2; do
    timeout 40 "$TLSSHIM" -p "$WORK/slow.policy" socat -u OPEN:"$WORK/small" TCP:localhost:18080
    nslow=$((nslow + 1))
    expect "$slow_log" $nslow $SMALL "$sha_small" "socat -u 300 KB, slow reader, run $i"
done
timeout 40 "$TLSSHIM" -p "$WORK/slow.policy" socat -u OPEN:"$WORK/big" TCP:localhost:18080
nslow=$((nslow + 1))
expect "$slow_log" $nslow $BIG "$sha_big" "socat -u 4 MB, slow reader"

# ==== 2. python: sendall, then each way of ending ====================================
# run_py MODE END SIZE SHA RUNS
run_py() {
    local mode=$1 end=$2 size=$3 sha=$4 runs=$5 i out
    for ((i = 1; i <= runs; i++)); do
        out=$(timeout 40 "$TLSSHIM" -p "$WORK/slow.policy" "$PYTHON" "$CLIENTS/send_end.py" \
            localhost 18080 "$size" "$mode" "$end")
        nslow=$((nslow + 1))
        [ "$out" = "sent $size $sha" ] || diag "client said: $out"
        expect "$slow_log" $nslow "$size" "$sha" "python $mode sendall $size then $end, run $i"
    done
}
for mode in block timeout; do
    for end in _exit _Exit exit close shutdown; do
        run_py $mode $end $SMALL "$sha_small" 2
    done
    for end in _exit close shutdown; do
        run_py $mode $end $BIG "$sha_big" 1
    done
done

# ==== 3. non-blocking: the end comes while the last write still waits ===============
# send() until the kernel says EAGAIN: what send() took last is still inside
# the session, not in the kernel.  The server must get exactly what send()
# reported, then close_notify.
for end in close shutdown _exit _Exit; do
    for i in 1 2; do
        out=$(timeout 40 "$TLSSHIM" -p "$WORK/slow.policy" "$PYTHON" "$CLIENTS/send_end.py" \
            localhost 18080 8388608 nonblock "$end")
        nslow=$((nslow + 1))
        read -r _ n sha <<<"$out"
        if [ -z "${n:-}" ] || [ "$n" -eq 0 ]; then
            fail "python non-blocking send then $end, run $i: the client sent nothing ($out)"
            continue
        fi
        expect "$slow_log" $nslow "$n" "$sha" "python non-blocking send ($n bytes taken) then $end, run $i"
    done
done

# ==== 4. a server whose records are small (record_size_limit 1024) ===================
# A record queued at EAGAIN holds 1024 bytes, not the 16384 of a receive
# record: counting it as 16384 made the program skip bytes, and the server
# got a truncated stream ended by a VALID close_notify.
ntiny=0
for end in close _exit; do
    out=$(timeout 40 "$TLSSHIM" -p "$WORK/tiny.policy" "$PYTHON" "$CLIENTS/send_end.py" \
        localhost 18080 $BIG timeout "$end")
    ntiny=$((ntiny + 1))
    [ "$out" = "sent $BIG $sha_big" ] || diag "client said: $out"
    expect "$tiny_log" $ntiny $BIG "$sha_big" "small records: python timeout sendall 4 MB then $end"
    out=$(timeout 40 "$TLSSHIM" -p "$WORK/tiny.policy" "$PYTHON" "$CLIENTS/send_end.py" \
        localhost 18080 8388608 nonblock "$end")
    ntiny=$((ntiny + 1))
    read -r _ n sha <<<"$out"
    expect "$tiny_log" $ntiny "${n:-0}" "${sha:-}" "small records: python non-blocking send ($n bytes taken) then $end"
done

# Nothing went to the log as a failure.
if grep -aE 'failed|refus' "$TLOG" >/dev/null 2>&1; then
    fail "the tlsshim log reports no failure"
    diag "$(grep -aE 'failed|refus' "$TLOG" | head -5)"
else
    pass "the tlsshim log reports no failure"
fi

done_testing
