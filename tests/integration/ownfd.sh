#!/bin/bash
# ownfd.sh -- our own descriptors (src/ownfd.c): a number tlsshim gives back
# to the program is never written to afterwards.  Proves:
#   * a program that dup2-s its own file onto tlsshim's log descriptor, over
#     and over, while another thread makes tlsshim log, gets none of
#     tlsshim's lines in its file (a line being written when the number
#     moved waits for, or goes to, tlsshim's log), and the log goes on;
#   * with each log write slowed down by a preload placed after tlsshim
#     (clients/slow_writev.c), so that a writer is caught between loading
#     the number and writing to it: the window the pins close.
# The server side here is the log file and the program's file: the refused
# connections never reach a server.

. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_tlsshim
need_cmd cc
for prog in ownfd_race slow_writev; do
    flags=(-O1 -pthread -o "$WORK/$prog")
    [ $prog = slow_writev ] && flags=(-O1 -shared -fPIC -o "$WORK/$prog.so")
    cc "${flags[@]}" "$CLIENTS/$prog.c" -ldl 2>"$WORK/cc.err" ||
        { diag "$(cat "$WORK/cc.err")"; bail_out "cannot build $prog.c"; }
done

port=$(free_port)
write_policy "$WORK/race.policy" <<POL
log = file:$WORK/race.tlsshim.log
log-level = info

[refused]
match = 127.0.0.1:$port
action = deny
POL

# race NAME [PRELOAD]: the program above, 200 rounds, with PRELOAD after
# tlsshim (so that tlsshim's dlsym(RTLD_NEXT) finds it).  Preloaded by hand,
# not through the launcher: a sanitizer build's launcher must not get it.
race() {
    : >"$WORK/$1.victim"
    LD_PRELOAD="${TLSSHIM_PRELOAD:-$TLSSHIM_LIBRARY}${2:+ $2}" TLSSHIM_POLICY=$WORK/race.policy \
        timeout 120 "$WORK/ownfd_race" "$WORK/race.tlsshim.log" "$WORK/$1.victim" "$port" 200 \
        2>"$WORK/$1.err"
}

for mode in plain slowed; do
    preload=
    [ $mode = slowed ] && preload=$WORK/slow_writev.so
    before=$(grep -c 'refused' "$WORK/race.tlsshim.log" 2>/dev/null)
    out=$(race $mode "$preload")
    is "$out" "rounds=200 moved=200" "$mode: the program took tlsshim's log number 200 times"
    is "$(grep -c 'tlsshim' "$WORK/$mode.victim")" 0 "$mode: none of tlsshim's lines in the program's file"
    after=$(grep -c 'refused' "$WORK/race.tlsshim.log")
    check "$mode: tlsshim went on logging to its log" \
        test "$after" -gt "${before:-0}"
done

done_testing
