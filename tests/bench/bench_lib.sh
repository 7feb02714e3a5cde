# bench_lib.sh - what the benchmarks share; sourced by bench.sh,
# inbound_bench.sh and inband_bench.sh after they set BENCH_NAME (their own
# name, for messages).  Sets srcdir, builddir, TLSSHIM, STUNNEL and PYTHON
# (each from the environment when given).

srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-$(pwd)}
TLSSHIM=${TLSSHIM:-$builddir/src/tlsshim}
STUNNEL=${STUNNEL:-stunnel4}
if [ -z "${PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
CPUTIME=$srcdir/tests/bench/cputime.py

die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
note() { printf '%s\n' "$*" >&2; }
want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
need() { # need CMD PACKAGE
	command -v "$1" >/dev/null 2>&1 || die "$1 not found: install the Debian package '$2' (apt-get install $2)"
}

# raise_fd_limit N: make sure at least N descriptors (at least 4096) can be open.
raise_fd_limit() {
	want_fds=$1
	[ "$want_fds" -lt 4096 ] && want_fds=4096
	if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
		ulimit -n "$want_fds" 2>/dev/null || die "cannot raise the open-file limit to $want_fds (ulimit -Hn is $(ulimit -Hn))"
	fi
	return 0
}

# bench_scratch PREFIX MODE: the scratch directory W (mode MODE), RES under it,
# pids (the background processes to end), and the EXIT trap that ends them
# (after bench_stop_hook, when the script defines one) and removes W unless
# BENCH_KEEP=1.
bench_scratch() {
	W=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	chmod "$2" "$W"
	pids=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	RES=$W/results
	mkdir -p "$RES"
	bench_start=$SECONDS
}
bench_cleanup() {
	local p
	if declare -F bench_stop_hook >/dev/null; then bench_stop_hook; fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then note "$BENCH_NAME: kept $W"; else rm -rf "$W"; fi
}

# free_ports N: N free ports on 127.0.0.1 (bound all at once, so they differ).
free_ports() {
	"$PYTHON" -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

# listening PORT: something listens on 127.0.0.1:PORT (read from /proc/net/tcp:
# connecting to find out would make each TLS server log a failed handshake).
listening() {
	awk -v want="$(printf '0100007F:%04X' "$1")" '$2 == want && $4 == "0A" {found = 1} END {exit !found}' /proc/net/tcp
}
# wait_listening PORT...: wait up to 10 s until all listen; false if not.
wait_listening() {
	local p
	for p in "$@"; do
		for _ in $(seq 200); do listening "$p" && break; sleep 0.05; done
		listening "$p" || return 1
	done
}

CLK_TCK=$(getconf CLK_TCK)
# stat_ticks PID [all]: utime+stime of PID (all: + cutime+cstime), 0 if gone.
stat_ticks() {
	awk -v all="${2:-}" '{sub(/^.*\) /, ""); print $12 + $13 + (all ? $14 + $15 : 0)}' "/proc/$1/stat" 2>/dev/null || echo 0
}

# rotated ROUND ARM...: the arms in this round's order (rotated by one each round).
rotated() {
	local r=$1 i n out=(); shift
	n=$#
	for ((i = 0; i < n; i++)); do out+=("${@:$(((i + r) % n + 1)):1}"); done
	echo "${out[@]}"
}
record() { echo "$3" >>"$RES/$1.$2"; } # record KEY ARM VALUE

# rounds KEY TITLE UNIT CMD...: ROUNDS rounds of "CMD KEY ARM" over ARMS,
# rotated, after an unmeasured warm-up of each ("CMD '' ARM", DURATION=1).
rounds() {
	local key=$1 title=$2 unit=$3 r arm line v; shift 3
	note "== $title, $ROUNDS rounds"
	for arm in "${ARMS[@]}"; do DURATION=1 "$@" "" "$arm" >/dev/null; done
	for ((r = 0; r < ROUNDS; r++)); do
		line="round $((r + 1)):"
		for arm in $(rotated "$r" "${ARMS[@]}"); do
			v=$("$@" "$key" "$arm")
			line="$line $arm=$v"
		done
		note "  $line $unit"
	done
}

# machine_info: the lines of the machine file every benchmark has.
machine_info() {
	echo "cpus=$(nproc)"
	echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "kernel=$(uname -srm)"
	echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
	echo "openssl=$(openssl version | awk '{print $2}')"
	echo "stunnel=$("$STUNNEL" -version 2>&1 | awk '/^stunnel/ {print $2; exit}')"
	echo "gnutls=$("$PYTHON" -c '
import ctypes
g = ctypes.CDLL("libgnutls.so.30")
g.gnutls_check_version.restype = ctypes.c_char_p
print(g.gnutls_check_version(None).decode())' 2>/dev/null || echo unknown)"
}

# bench_finish REPORT: print the errors and warnings, run REPORT (a Python
# script in tests/bench) on RES and exit with its status (3, a missed bar,
# only with BENCH_STRICT=1).
bench_finish() {
	local rc=0
	[ -s "$W/errors.log" ] && { note "== errors"; sed 's/^/  /' "$W/errors.log" >&2; }
	[ -s "$W/warnings.log" ] && { note "== warnings"; sed 's/^/  /' "$W/warnings.log" >&2; }
	"$PYTHON" "$srcdir/tests/bench/$1" "$RES" || rc=$?
	if [ $rc = 3 ] && [ "${BENCH_STRICT:-0}" != 1 ]; then rc=0; fi
	exit $rc
}
