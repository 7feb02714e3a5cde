#!/bin/bash
# epoll_bench.sh - `make epoll-bench`: what epoll_ctl and epoll_wait cost
# under the library with 10,000 registered descriptors (issue 10, item 3).
# Starts tests/servers/tserver (sink mode), upgrades 127.0.0.1:18080 to it,
# and runs tests/stress/epoll_bench under each build tree given, one after
# the other, EPOLL_BENCH_RUNS times (interleaved), printing ns per call.
# A measurement, not a test: nothing here passes or fails on time.
#
# Environment knobs (defaults in brackets):
#   EPOLL_BENCH_TREES [$top_builddir]  build trees whose launcher and library
#                     to measure, e.g. "/work/wt/epoll-base $top_builddir" to
#                     compare the old code with the new (the bench program
#                     and the server always come from $top_builddir)
#   EPOLL_BENCH_RUNS [2]      runs per tree
#   EPOLL_BENCH_ARGS [-n 10000 -m 256]  epoll_bench's options
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -eu
: "${top_builddir:=.}"
top_builddir=$(cd "$top_builddir" && pwd)
trees=${EPOLL_BENCH_TREES:-$top_builddir}
runs=${EPOLL_BENCH_RUNS:-2}
args=${EPOLL_BENCH_ARGS:--n 10000 -m 256}
certs=$top_builddir/tests/certs
work=$(mktemp -d)
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

"$top_builddir/tests/servers/tserver" --cert "$certs/server.pem" --key "$certs/server-key.pem" \
    --port-file "$work/port" --log "$work/tserver.log" --mode sink 2>"$work/tserver.err" &
server=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "epoll_bench: tserver did not start" >&2; exit 1; }
(umask 077 && cat >"$work/policy") <<POL
log = file:$work/tlsshim.log
[bench]
match = 127.0.0.1:18080
port = $(cat "$work/port")
server-name = localhost
ca = $certs/ca.pem
POL

echo "epoll_bench $args, $runs runs per tree, $(nproc) CPUs, $(uname -r)"
for run in $(seq "$runs"); do
    for tree in $trees; do
        echo "== $tree (run $run)"
        # shellcheck disable=SC2086   # $args is a list of options
        TLSSHIM_LIBRARY=$tree/src/.libs/libtlsshim.so \
            "$tree/src/tlsshim" -p "$work/policy" "$top_builddir/tests/stress/epoll_bench" $args
    done
done
