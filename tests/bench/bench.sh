#!/bin/bash
# bench.sh - the tlsshim benchmark (issue 5): `make bench`.
#
# On loopback it starts one nginx (TLS 1.3, ECDSA P-256 certificate, session
# tickets on, plain HTTP too, plus a second TLS port without resumption) and
# one stunnel in client mode, then runs the SAME unmodified clients (curl,
# wrk, a small Python program) four ways, interleaved, over several rounds:
#
#   plain    the client over plain HTTP to nginx (the ceiling)
#   tlsshim  the client over plain HTTP, upgraded by tlsshim (launcher + policy)
#   native   the client's own TLS (curl https://, wrk https://)
#   stunnel  the client over plain HTTP to stunnel's client-mode port
#
# and prints the medians, the ratios, the targets of issue 5 and the machine.
# Every number is measured in this run; nothing is hard-coded but the targets.
#
# Needs (Debian 12): nginx-light (or nginx), stunnel4, wrk, curl, python3,
# gnutls-bin, openssl; and a built tree (src/tlsshim, src/.libs/libtlsshim.so,
# src/.libs/libtlsshim-tls.so).
#
# Environment knobs (defaults in brackets):
#   BENCH_ROUNDS [7]        rounds of each workload (twice as many for the
#                           two-way "untouched"); medians over rounds
#   BENCH_DURATION [2]      seconds per wrk run
#   BENCH_WRK_THREADS [2]   wrk -t
#   BENCH_WRK_CONNS [16]    wrk -c
#   BENCH_LATENCY_N [200]   new connections per way per round for latency
#   BENCH_IDLE_N [1000]     idle connections for the memory test
#   BENCH_STARTUP_N [200]   /bin/true runs per start-up sample
#   BENCH_STARTUP_ROUNDS [11] start-up samples with and without the library
#   BENCH_BIG_MIB [1024]    size of the bulk download
#   BENCH_RULE_EXTRA []     extra lines for both tlsshim rules, to try a setting
#                           (e.g. BENCH_RULE_EXTRA='groups = X25519')
#   BENCH_KEEP [0]          1: keep the scratch directory (logs, raw numbers)
#   BENCH_STRICT [0]        1: exit 3 when a target is missed
#   BENCH_ONLY []           space-separated subset of: info bulk requests
#                           newconn latency memory untouched startup
# Arrays and (( )) need bash; make sure that is what runs this.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -eu

BENCH_NAME=bench.sh
. "$(dirname "$0")/bench_lib.sh"
TLSSHIM_LIBRARY=${TLSSHIM_LIBRARY:-$builddir/src/.libs/libtlsshim.so}
NGINX=${NGINX:-/usr/sbin/nginx}

ROUNDS=${BENCH_ROUNDS:-7}
DURATION=${BENCH_DURATION:-2}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
WRK_CONNS=${BENCH_WRK_CONNS:-16}
LAT_N=${BENCH_LATENCY_N:-200}
IDLE_N=${BENCH_IDLE_N:-1000}
STARTUP_N=${BENCH_STARTUP_N:-200}
STARTUP_ROUNDS=${BENCH_STARTUP_ROUNDS:-11}
BIG_MIB=${BENCH_BIG_MIB:-1024}
ONLY=${BENCH_ONLY:-info bulk requests newconn latency memory untouched startup}

# ---- prerequisites: fail loudly, naming the Debian package --------------------
[ -x "$NGINX" ] || die "nginx not found at $NGINX: install the Debian package 'nginx-light'"
need "$STUNNEL" stunnel4
need wrk wrk
need curl curl
need "$PYTHON" python3
need certtool gnutls-bin
need openssl openssl
need awk mawk
[ -x "$TLSSHIM" ] || die "launcher $TLSSHIM not found: build first (make)"
[ -r "$TLSSHIM_LIBRARY" ] || die "library $TLSSHIM_LIBRARY not found: build first (make)"
[ -r "$(dirname "$TLSSHIM_LIBRARY")/libtlsshim-tls.so" ] ||
	die "TLS engine libtlsshim-tls.so not found next to $TLSSHIM_LIBRARY: build first (make)"
case $ROUNDS$DURATION$LAT_N$IDLE_N$STARTUP_N$STARTUP_ROUNDS$BIG_MIB in *[!0-9]*) die "BENCH_* values must be integers" ;; esac

# 1,000 idle connections need descriptors on both sides.
raise_fd_limit $((IDLE_N * 2 + 200))

# ---- scratch space, servers, cleanup -------------------------------------------
bench_scratch tlsshim-bench 700

read -r PLAIN_PORT TLS_PORT TLS_NR_PORT ST_PORT ST_NR_PORT SHIM_PORT SHIM_NR_PORT OTHER_PORT < <(free_ports 8)

note "bench.sh: setting up in $W"
C=$W/certs
sh "$srcdir/tests/gen-certs.sh" "$C"

# Content: a sparse file for the bulk download (nothing to read from disk)
# and a small one for the request workloads.
mkdir -p "$W/www"
truncate -s "${BIG_MIB}M" "$W/www/big"
head -c 1024 /dev/zero | tr '\0' 'x' >"$W/www/small"
# The first read of a sparse file fills the page cache with zero pages
# (slow); do it now, not in the first measured download.
cat "$W/www/big" >/dev/null
BIG_BYTES=$((BIG_MIB * 1024 * 1024))

# ---- nginx: one process, three listening ports --------------------------------
#   PLAIN_PORT   plain HTTP
#   TLS_PORT     TLS 1.3, tickets on (resumption possible)
#   TLS_NR_PORT  TLS 1.3, no tickets and no session cache (no resumption)
userline=
[ "$(id -u)" = 0 ] && userline="user root root;"
mkdir -p "$W/nginx/tmp"
cat >"$W/nginx/nginx.conf" <<EOF
$userline
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile $((want_fds + 1000));
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections $((IDLE_N * 2 + 100)); multi_accept on; }
http {
    client_body_temp_path $W/nginx/tmp/body;
    proxy_temp_path $W/nginx/tmp/proxy;
    fastcgi_temp_path $W/nginx/tmp/fastcgi;
    uwsgi_temp_path $W/nginx/tmp/uwsgi;
    scgi_temp_path $W/nginx/tmp/scgi;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 600s;
    keepalive_requests 100000000;
    root $W/www;

    log_format reuse '\$ssl_session_reused';

    ssl_protocols TLSv1.3;
    ssl_certificate $C/server.pem;
    ssl_certificate_key $C/server-key.pem;

    server {
        listen 127.0.0.1:$PLAIN_PORT backlog=4096;
        location = /info { return 200 "plain\n"; }
    }
    server {
        listen 127.0.0.1:$TLS_PORT ssl backlog=4096;
        ssl_session_tickets on;
        location = /info { return 200 "\$ssl_protocol \$ssl_cipher \$ssl_curve reused=\$ssl_session_reused\n"; }
        location = /reuse { access_log $W/nginx/reuse.log reuse; try_files /small =404; }
    }
    server {
        listen 127.0.0.1:$TLS_NR_PORT ssl backlog=4096;
        ssl_session_tickets off;
        ssl_session_cache off;
        location = /info { return 200 "\$ssl_protocol \$ssl_cipher \$ssl_curve reused=\$ssl_session_reused\n"; }
    }
}
EOF
"$NGINX" -p "$W/nginx" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" </dev/null >"$W/nginx/stderr" 2>&1 &
pids+=($!)
nginx_pid=$!

# ---- stunnel: client mode, verifying like tlsshim does --------------------------
cat >"$W/stunnel.conf" <<EOF
foreground = yes
pid =
output = $W/stunnel.log
debug = warning

[bench]
client = yes
accept = 127.0.0.1:$ST_PORT
connect = 127.0.0.1:$TLS_PORT
sni = localhost
checkHost = localhost
verifyChain = yes
CAfile = $C/ca.pem
sslVersionMin = TLSv1.3

[bench-noresume]
client = yes
accept = 127.0.0.1:$ST_NR_PORT
connect = 127.0.0.1:$TLS_NR_PORT
sni = localhost
checkHost = localhost
verifyChain = yes
CAfile = $C/ca.pem
sslVersionMin = TLSv1.3
EOF
"$STUNNEL" "$W/stunnel.conf" </dev/null >"$W/stunnel.stderr" 2>&1 &
pids+=($!)
stunnel_pid=$!

# ---- tlsshim policies ------------------------------------------------------------
# bench.policy: SHIM_PORT -> TLS_PORT with resumption, SHIM_NR_PORT -> TLS_NR_PORT
# without.  untouched.policy: one rule for a port no client uses.
cat >"$W/bench.policy" <<EOF
log = stderr
log-level = warning
session-cache = 64

[bench]
match = 127.0.0.1:$SHIM_PORT
port = $TLS_PORT
server-name = localhost
ca = $C/ca.pem
resume = on
${BENCH_RULE_EXTRA:-}

[bench-noresume]
match = 127.0.0.1:$SHIM_NR_PORT
port = $TLS_NR_PORT
server-name = localhost
ca = $C/ca.pem
resume = off
${BENCH_RULE_EXTRA:-}
EOF
cat >"$W/untouched.policy" <<EOF
log = stderr
log-level = warning

[elsewhere]
match = 127.0.0.1:$OTHER_PORT
port = $TLS_PORT
server-name = localhost
ca = $C/ca.pem
EOF
chmod 600 "$W/bench.policy" "$W/untouched.policy"
"$TLSSHIM" check -p "$W/bench.policy" >/dev/null || die "tlsshim rejects the bench policy"
"$TLSSHIM" check -p "$W/untouched.policy" >/dev/null || die "tlsshim rejects the untouched policy"

# ---- wait for the servers ---------------------------------------------------------
port_up() { "$PYTHON" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null; }
for _ in $(seq 200); do
	[ -s "$W/nginx/nginx.pid" ] && port_up "$ST_NR_PORT" && port_up "$ST_PORT" && break
	kill -0 "$nginx_pid" 2>/dev/null || { cat "$W/nginx/stderr" "$W/nginx/error.log" >&2; die "nginx did not start"; }
	kill -0 "$stunnel_pid" 2>/dev/null || { cat "$W/stunnel.stderr" "$W/stunnel.log" >&2 2>/dev/null; die "stunnel did not start"; }
	sleep 0.05
done
for p in "$PLAIN_PORT" "$TLS_PORT" "$TLS_NR_PORT" "$ST_PORT" "$ST_NR_PORT"; do
	port_up "$p" || die "nothing listens on 127.0.0.1:$p (see $W)"
done

# ---- the four ways -----------------------------------------------------------------
WAYS=(plain tlsshim native stunnel)

# base_url WAY [noresume]: the URL prefix a client uses for WAY.
base_url() {
	local nr=${2:-}
	case $1 in
	plain) echo "http://127.0.0.1:$PLAIN_PORT" ;;
	tlsshim) [ -n "$nr" ] && echo "http://127.0.0.1:$SHIM_NR_PORT" || echo "http://127.0.0.1:$SHIM_PORT" ;;
	native) [ -n "$nr" ] && echo "https://localhost:$TLS_NR_PORT" || echo "https://localhost:$TLS_PORT" ;;
	stunnel) [ -n "$nr" ] && echo "http://127.0.0.1:$ST_NR_PORT" || echo "http://127.0.0.1:$ST_PORT" ;;
	esac
}
# curl's own TLS: verify against our CA, and resolve localhost to 127.0.0.1 only
# (nginx listens on IPv4 only; no happy-eyeballs detour through ::1).
curl_tls_opts=(--cacert "$C/ca.pem" --resolve "localhost:$TLS_PORT:127.0.0.1" --resolve "localhost:$TLS_NR_PORT:127.0.0.1")

# run_as WAY CMD...: CMD, under tlsshim for the tlsshim way (and with the
# library loaded but no rule matching for the "untouched" way).
run_as() {
	local way=$1; shift
	if [ "$way" = tlsshim ]; then
		"$TLSSHIM" -p "$W/bench.policy" "$@"
	elif [ "$way" = untouched ]; then
		"$TLSSHIM" -p "$W/untouched.policy" "$@"
	else
		"$@"
	fi
}

# wrk_rate WAY URL [wrk args...]: Requests/sec of one wrk run, or "fail".
wrk_rate() {
	local way=$1 url=$2 out rate errs cpu n st0=0 st1=0 ng0=0 ng1=0; shift 2
	# wrk's own https:// (native) does not verify the certificate; SNI is the
	# URL's host.  Use 127.0.0.1 so wrk never tries ::1 first.
	url=${url/https:\/\/localhost:/https:\/\/127.0.0.1:}
	[ "$way" = stunnel ] && st0=$(stat_ticks "$stunnel_pid")
	ng0=$(stat_ticks "$nginx_pid")
	if ! out=$(run_as "$way" "$PYTHON" "$CPUTIME" \
		wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" "$@" "$url" 2>&1); then
		printf '%s\n' "$out" >>"$W/errors.log"
		echo fail
		return
	fi
	[ "$way" = stunnel ] && st1=$(stat_ticks "$stunnel_pid")
	ng1=$(stat_ticks "$nginx_pid")
	printf '== %s %s %s\n%s\n' "$way" "$url" "$*" "$out" >>"$W/wrk.log"
	rate=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {print $2}')
	errs=$(printf '%s\n' "$out" | awk '/Socket errors:|Non-2xx/ {print}')
	if [ -n "$errs" ]; then
		printf 'wrk %s %s: %s\n' "$way" "$url" "$errs" >>"$W/warnings.log"
	fi
	# Client-side CPU per request: wrk's own CPU time (its TLS, or tlsshim's,
	# included), plus stunnel's for the stunnel way.
	if [ -n "${CPU_KEY:-}" ]; then
		cpu=$(printf '%s\n' "$out" | awk '/^CPU-seconds:/ {print $2}')
		n=$(printf '%s\n' "$out" | awk '/ requests in / {print $1}')
		if [ -n "$cpu" ] && [ -n "$n" ] && [ "$n" -gt 0 ]; then
			awk -v c="$cpu" -v a="$st0" -v b="$st1" -v hz="$CLK_TCK" -v n="$n" \
				'BEGIN {printf "%.2f\n", (c + (b - a) / hz) * 1e6 / n}' >>"$RES/$CPU_KEY.$way"
			# The server's side: nginx's CPU per request (one worker).
			awk -v a="$ng0" -v b="$ng1" -v hz="$CLK_TCK" -v n="$n" \
				'BEGIN {printf "%.2f\n", (b - a) / hz * 1e6 / n}' >>"$RES/srv_$CPU_KEY.$way"
		else
			echo fail >>"$RES/$CPU_KEY.$way"
			echo fail >>"$RES/srv_$CPU_KEY.$way"
		fi
	fi
	echo "${rate:-fail}"
}

# warm_wrk [noresume] [wrk args...]: one short unmeasured run per way, so that
# the first measured run finds caches, sessions and CPU clocks warm.
warm_wrk() {
	local nr=$1 way; shift
	for way in "${WAYS[@]}"; do
		DURATION=1 wrk_rate "$way" "$(base_url "$way" $nr)/small" "$@" >/dev/null
	done
}

median_of() { sort -g "$1" | awk '{v[NR] = $1} END {if (NR == 0) print "fail"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# ---- the machine --------------------------------------------------------------------
{
	machine_info
	echo "nginx=$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')"
	echo "wrk=$(wrk --version 2>&1 | awk 'NR == 1 {print $2}')"
	echo "curl=$(curl --version | awk 'NR == 1 {print $2, $5}')"
	echo "python=$("$PYTHON" -c 'import platform; print(platform.python_version())')"
	echo "startup_n=$STARTUP_N"
	echo "settings=rounds $ROUNDS, wrk -t$WRK_THREADS -c$WRK_CONNS -d${DURATION}s, nginx 1 worker, latency $LAT_N connections/way/round, memory $IDLE_N connections, /bin/true x$STARTUP_N x$STARTUP_ROUNDS"
} >"$RES/machine"

# ---- sanity: every way works, what it negotiated, whether it resumes ---------------
if want info; then
	note "== check: each way reaches nginx; what it negotiated (curl, 3 new connections each)"
	for way in "${WAYS[@]}"; do
		base=$(base_url "$way")
		if ! out=$(run_as "$way" curl -sS --fail -H 'Connection: close' "${curl_tls_opts[@]}" \
			"$base/info" "$base/info" "$base/info" 2>&1); then
			printf '%s\n' "$out" >&2
			die "the $way way does not work (see above)"
		fi
		printf '%s\n' "$out" | awk -v w="$way" 'NR == 1 {first = $0} {r = r " " $NF} END {sub(/ reused=.*/, "", first); printf "%-8s %s;%s\n", w, first, r}' | tee -a "$RES/info" >&2
	done
	# wrk: does each way resume on new connections?  nginx logs $ssl_session_reused.
	for way in tlsshim native stunnel; do
		: >"$W/nginx/reuse.log"
		DURATION=1 wrk_rate "$way" "$(base_url "$way")/reuse" -H 'Connection: close' >/dev/null
		sleep 0.2
		awk -v w="$way" '{n++; if ($1 == "r") r++} END {printf "wrk %-8s Connection: close: %d of %d connections resumed\n", w, r, n}' \
			"$W/nginx/reuse.log" | tee -a "$RES/info" >&2
	done
fi

# ---- bulk: one 1 GiB download with curl ---------------------------------------------
if want bulk; then
	note "== bulk: curl downloads $BIG_MIB MiB, $ROUNDS rounds"
	for way in "${WAYS[@]}"; do # warm-up, unmeasured
		run_as "$way" curl -sS -o /dev/null "${curl_tls_opts[@]}" "$(base_url "$way")/small" 2>>"$W/errors.log" || true
	done
	for ((r = 0; r < ROUNDS; r++)); do
		line="round $((r + 1)):"
		for way in $(rotated $r "${WAYS[@]}"); do
			if out=$(run_as "$way" curl -sS --fail -o /dev/null -w '%{speed_download} %{size_download}' \
				"${curl_tls_opts[@]}" "$(base_url "$way")/big" 2>>"$W/errors.log") &&
				[ "${out#* }" = "$BIG_BYTES" ]; then
				v=$(awk -v s="${out% *}" 'BEGIN {printf "%.1f", s / 1e6}')
			else
				v=fail
			fi
			record bulk "$way" "$v"
			line="$line $way=$v"
		done
		note "  $line MB/s"
	done
fi

# ---- requests: wrk keep-alive, small file ------------------------------------------
if want requests; then
	note "== requests: wrk keep-alive, 1 KiB file, $ROUNDS rounds of ${DURATION}s"
	warm_wrk ""
	for ((r = 0; r < ROUNDS; r++)); do
		line="round $((r + 1)):"
		for way in $(rotated $r "${WAYS[@]}"); do
			v=$(CPU_KEY=cpu_requests wrk_rate "$way" "$(base_url "$way")/small")
			record requests "$way" "$v"
			line="$line $way=$v"
		done
		note "  $line req/s"
	done
fi

# ---- new connections: wrk with Connection: close, resumption on and off ------------
if want newconn; then
	for variant in resume noresume; do
		nr=; [ $variant = noresume ] && nr=1
		note "== new connections ($variant): wrk Connection: close, $ROUNDS rounds of ${DURATION}s"
		warm_wrk "$nr" -H 'Connection: close'
		for ((r = 0; r < ROUNDS; r++)); do
			line="round $((r + 1)):"
			for way in $(rotated $r "${WAYS[@]}"); do
				v=$(CPU_KEY=cpu_newconn_$variant wrk_rate "$way" "$(base_url "$way" $nr)/small" -H 'Connection: close')
				record "newconn_$variant" "$way" "$v"
				line="$line $way=$v"
			done
			note "  $line conn/s"
		done
	done
fi

# ---- latency: a new connection's first request, curl, sequential ---------------------
if want latency; then
	note "== latency: $LAT_N sequential new connections per way (one curl process), $ROUNDS rounds"
	for ((r = 0; r < ROUNDS; r++)); do
		line="round $((r + 1)):"
		for way in $(rotated $r "${WAYS[@]}"); do
			cfg=$W/latency-$way.curl
			base=$(base_url "$way")
			: >"$cfg"
			for ((i = 0; i < LAT_N; i++)); do printf 'url = "%s/small"\noutput = "/dev/null"\n' "$base" >>"$cfg"; done
			if out=$(run_as "$way" curl -sS --fail -H 'Connection: close' "${curl_tls_opts[@]}" \
				-w '%{time_total}\n' -K "$cfg" 2>>"$W/errors.log") &&
				[ "$(printf '%s\n' "$out" | wc -l)" -eq "$LAT_N" ]; then
				printf '%s\n' "$out" >>"$RES/latency_raw.$way"
				v=$(printf '%s\n' "$out" | sort -g | awk '{v[NR] = $1} END {printf "%.3f", v[int((NR + 1) / 2)] * 1000}')
			else
				echo fail >>"$RES/latency_raw.$way"
				v=fail
			fi
			line="$line $way=${v}ms"
		done
		note "  $line (p50)"
	done
fi

# ---- memory: RSS per idle upgraded connection ----------------------------------------
if want memory; then
	note "== memory: $IDLE_N idle keep-alive connections held open by one Python process"
	for way in plain tlsshim; do
		if out=$(run_as "$way" "$PYTHON" "$srcdir/tests/bench/idle_conns.py" 127.0.0.1 \
			"$([ $way = plain ] && echo "$PLAIN_PORT" || echo "$SHIM_PORT")" /small "$IDLE_N" 2>>"$W/errors.log"); then
			note "  $way: $out"
			v=$(printf '%s\n' "$out" | sed -n 's/.*per_conn_bytes=\([0-9.-]*\).*/\1/p')
			record memory "$way" "$(awk -v b="$v" 'BEGIN {printf "%.1f", b / 1024}')"
		else
			note "  $way: failed (see errors below)"
			record memory "$way" fail
		fi
	done
fi

# ---- untouched: tlsshim loaded, no rule matching, against no tlsshim ------------------
if want untouched; then
	for variant in keepalive close; do
		hdr=(); [ $variant = close ] && hdr=(-H 'Connection: close')
		note "== untouched ($variant): wrk over plain HTTP, library loaded (no rule matches) vs. not, $((2 * ROUNDS)) rounds of ${DURATION}s"
		DURATION=1 wrk_rate plain "http://127.0.0.1:$PLAIN_PORT/small" "${hdr[@]}" >/dev/null
		DURATION=1 wrk_rate untouched "http://127.0.0.1:$PLAIN_PORT/small" "${hdr[@]}" >/dev/null
		for ((r = 0; r < 2 * ROUNDS; r++)); do
			line="round $((r + 1)):"
			order=(plain tlsshim); [ $((r % 2)) = 1 ] && order=(tlsshim plain)
			for way in "${order[@]}"; do
				url="http://127.0.0.1:$PLAIN_PORT/small"
				if [ $way = plain ]; then
					v=$(CPU_KEY=cpu_untouched_$variant wrk_rate plain "$url" "${hdr[@]}")
				else
					v=$(CPU_KEY=cpu_untouched_$variant wrk_rate untouched "$url" "${hdr[@]}")
				fi
				record "untouched_$variant" "$way" "$v"
				line="$line $way=$v"
			done
			note "  $line req/s"
		done
	done
fi

# ---- start-up: /bin/true with and without the library ---------------------------------
if want startup; then
	note "== start-up: /bin/true x$STARTUP_N, with LD_PRELOAD=libtlsshim.so (bench policy) and without, $STARTUP_ROUNDS rounds"
	# startup_pair: STARTUP_N runs of /bin/true without the library and
	# STARTUP_N with it, alternating run by run (ABBA), each exec timed
	# alone: a burst of load on this shared machine then hits both ways
	# alike instead of one block of 200.  Prints "WITHOUT_MS WITH_MS".
	startup_pair() {
		local i w t0 t1 a=0 b=0 order
		for ((i = 0; i < STARTUP_N; i++)); do
			if ((i % 2 == 0)); then order="a b"; else order="b a"; fi
			for w in $order; do
				if [ "$w" = a ]; then
					t0=${EPOCHREALTIME/[.,]/}
					LD_PRELOAD= TLSSHIM_POLICY=$W/bench.policy /bin/true
					t1=${EPOCHREALTIME/[.,]/}
					a=$((a + t1 - t0))
				else
					t0=${EPOCHREALTIME/[.,]/}
					LD_PRELOAD=$TLSSHIM_LIBRARY TLSSHIM_POLICY=$W/bench.policy /bin/true
					t1=${EPOCHREALTIME/[.,]/}
					b=$((b + t1 - t0))
				fi
			done
		done
		awk -v a="$a" -v b="$b" 'BEGIN {printf "%.1f %.1f\n", a / 1000, b / 1000}'
	}
	[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 (EPOCHREALTIME) is needed for the start-up measurement"
	startup_pair >/dev/null # warm the page cache
	for ((r = 0; r < STARTUP_ROUNDS; r++)); do
		read -r a b < <(startup_pair)
		record startup plain "$a"
		record startup tlsshim "$b"
		note "  round $((r + 1)): without=${a}ms with=${b}ms"
	done
fi

echo "elapsed=$((SECONDS - bench_start))" >>"$RES/machine"

# ---- the table ---------------------------------------------------------------------------
bench_finish report.py
