#!/bin/bash
# keylog_race.sh -- the NSS key log (keylog = PATH) holds TLS secrets: they
# go to tlsshim's key-log file and never to a number the program has taken.
# Proves, with upgraded connections made by one thread while another dup2-s
# the program's own file onto tlsshim's key-log descriptor, over and over
# (clients/keylog_race.c):
#   * not one key-log line in the program's file (a session that kept the
#     number it was given at connect wrote its handshake secrets there);
#   * the key-log file has the lines;
#   * again with each key-log write slowed down by a preload placed after
#     tlsshim (clients/slow_writev.c), so that a writer is caught between
#     loading the number and writing to it: the window the pins close.
# Proof from the server side: tserver logs the connections; the program's
# file is the other witness.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim
need_cmd cc
for prog in keylog_race slow_writev; do
    flags=(-O1 -pthread -o "$WORK/$prog")
    [ $prog = slow_writev ] && flags=(-O1 -shared -fPIC -o "$WORK/$prog.so")
    cc "${flags[@]}" "$CLIENTS/$prog.c" -ldl 2>"$WORK/cc.err" ||
        { diag "$(cat "$WORK/cc.err")"; bail_out "cannot build $prog.c"; }
done

start_tserver srv --mode sink
write_policy "$WORK/kl.policy" <<POL
log = file:$WORK/kl.tlsshim.log
log-level = info
keylog = $WORK/keys.log

[kl]
match = 127.0.0.1:$srv_port
server-name = localhost
ca = $CERTS/ca.pem
POL

# race MODE [PRELOAD]: the program above, 200 rounds, with PRELOAD after
# tlsshim (so that tlsshim's dlsym(RTLD_NEXT) finds it).  Preloaded by hand,
# not through the launcher: a sanitizer build's launcher must not get it.
race() {
    : >"$WORK/$1.victim"
    LD_PRELOAD="${TLSSHIM_PRELOAD:-$TLSSHIM_LIBRARY}${2:+ $2}" TLSSHIM_POLICY=$WORK/kl.policy \
        timeout 120 "$WORK/keylog_race" "$WORK/keys.log" "$WORK/$1.victim" "$srv_port" 200 \
        2>"$WORK/$1.err"
}

for mode in plain slowed; do
    preload=
    [ $mode = slowed ] && preload=$WORK/slow_writev.so
    before=$(grep -c '_SECRET ' "$WORK/keys.log" 2>/dev/null)
    out=$(race $mode "$preload")
    is "$out" "rounds=200 moved=200 conns=1" "$mode: the program took tlsshim's key-log number 200 times, while connecting"
    leaked=$(grep -c '_SECRET ' "$WORK/$mode.victim")
    is "$leaked" 0 "$mode: no key-log line in the program's file"
    [ "$leaked" = 0 ] || diag "$(head -c 300 "$WORK/$mode.victim")"
    after=$(grep -c '_SECRET ' "$WORK/keys.log")
    check "$mode: the key log got the secrets ($((after - ${before:-0})) lines)" \
        test "$after" -gt "${before:-0}"
    bad=$(grep -Evc '^[A-Z0-9_]+ [0-9a-f]{64} [0-9a-f]{64,96}$' "$WORK/keys.log")
    is "$bad" 0 "$mode: every key-log line whole"
done

done_testing
