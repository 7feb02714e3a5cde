#!/bin/bash
# inbound_bench.sh - the inbound benchmark (issue 11): `make bench-inbound`,
# also run by `make bench` after the outbound one.
#
# The same plain nginx (static files, keep-alive, one worker, sendfile) made
# a TLS 1.3 server four ways, on loopback, in one run:
#
#   nginx    (a) nginx's own TLS 1.3 (OpenSSL; tickets and session cache on)
#   stunnel  (b) stunnel4 in server mode (TLS 1.3 only) in front of plain nginx
#   tlsshim  (c) plain nginx run under tlsshim with an inbound rule
#   plain    (d) plain HTTP to plain nginx (the ceiling)
#
# Every arm is hit by the SAME unmodified TLS clients (wrk, curl, Python
# ssl); the arms are interleaved round by round (rotated order) so that
# background load hits them alike; the table shows medians over rounds and
# medians of the per-round ratios.  Measures:
#
#   requests   wrk -t1 keep-alive, 1 KiB file (req/s)
#   resumed    wrk -t1 with "Connection: close": a new connection per
#              request; wrk resumes its session on reconnect (OpenSSL keeps
#              the session across SSL_clear), checked on (a) with nginx's
#              $ssl_session_reused
#   full       the same wrk, against a second listener of each arm whose
#              server side cannot resume (nginx: tickets and cache off;
#              stunnel: sessionResume = no; tlsshim: session-tickets = off),
#              so every connection is a full handshake (checked per arm
#              with a Python client that offers its session)
#   bulk       curl downloads a sparse BIG_MIB file (MB/s)
#   memory     Python opens IDLE_N TLS keep-alive connections (one request
#              each, then idle); Pss delta of the server processes / N
#              (stunnel: stunnel + the plain nginx behind it).  Measured
#              once per arm, first, on fresh servers (a second measure
#              would reuse memory freed by the first and read low).
#
# plus the CPU per request (per MiB for bulk) of each side from
# /proc/PID/stat and getrusage: client = wrk or curl; server = the nginx
# of the arm (+ stunnel for (b)).  The bars of issue 11 are printed as
# PASS/MISS; a miss does not fail (BENCH_STRICT=1 makes it exit 3).
#
# Needs (Debian 12): nginx-light (or nginx), stunnel4, wrk, curl, python3,
# gnutls-bin, openssl; and a built tree with inbound support.
#
# Environment knobs (defaults in brackets):
#   BENCH_ROUNDS [5]          rounds of each throughput measure
#   BENCH_DURATION [2]        seconds per wrk run
#   BENCH_WRK_CONNS [16]      wrk -c (wrk runs with -t1)
#   BENCH_IDLE_N [500]        idle connections for the memory measure
#   BENCH_BIG_MIB [1024]      size of the bulk download
#   BENCH_INBOUND_RULE_EXTRA  extra lines for the tlsshim inbound rules
#   BENCH_INBOUND_ONLY []     subset of: info memory requests resumed full bulk
#   BENCH_KEEP [0]            1: keep the scratch directory (logs, raw numbers)
#   BENCH_STRICT [0]          1: exit 3 when a bar is missed
# Exit status: 0 (bars missed or not), 3 missed with BENCH_STRICT=1, 4 a
# measurement failed, 1 set-up failed.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -eu

BENCH_NAME=inbound_bench.sh
. "$(dirname "$0")/bench_lib.sh"
NGINX=${NGINX:-/usr/sbin/nginx}

ROUNDS=${BENCH_ROUNDS:-5}
DURATION=${BENCH_DURATION:-2}
WRK_CONNS=${BENCH_WRK_CONNS:-16}
IDLE_N=${BENCH_IDLE_N:-500}
BIG_MIB=${BENCH_BIG_MIB:-1024}
ONLY=${BENCH_INBOUND_ONLY:-info memory requests resumed full bulk}
CLIENTS=$srcdir/tests/bench/inbound_clients.py

[ -x "$NGINX" ] || die "nginx not found at $NGINX: install the Debian package 'nginx-light'"
need "$STUNNEL" stunnel4
need wrk wrk
need curl curl
need "$PYTHON" python3
need certtool gnutls-bin
need openssl openssl
[ -x "$TLSSHIM" ] || die "launcher $TLSSHIM not found: build first (make)"
case $ROUNDS$DURATION$WRK_CONNS$IDLE_N$BIG_MIB in *[!0-9]*) die "BENCH_* values must be integers" ;; esac

raise_fd_limit $((IDLE_N * 3 + 200))

# ---- scratch space and cleanup --------------------------------------------------
bench_scratch tlsshim-ibench 700
echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)" >"$RES/machine"

read -r P_PORT A_PORT A_NR B_PORT B_NR C_PORT C_NR < <(free_ports 7)

note "inbound_bench.sh: setting up in $W"
C=$W/certs
sh "$srcdir/tests/gen-certs.sh" "$C"
mkdir -p "$W/www"
truncate -s "${BIG_MIB}M" "$W/www/big"
head -c 1024 /dev/zero | tr '\0' 'x' >"$W/www/small"
cat "$W/www/big" >/dev/null # fill the page cache with the zero pages now
BIG_BYTES=$((BIG_MIB * 1024 * 1024))

# ---- three nginx processes: (a) TLS, (d) plain (also behind stunnel), (c) plain ----
# nginx_conf NAME SERVER_BLOCKS: one process, one worker, the common http block.
nginx_conf() {
	local d=$W/nginx-$1 userline=
	[ "$(id -u)" = 0 ] && userline="user root root;"
	mkdir -p "$d/tmp"
	cat >"$d/nginx.conf" <<EOF
$userline
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile $((want_fds + 1000));
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $((IDLE_N * 2 + 200)); multi_accept on; }
http {
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 600s;
    keepalive_requests 100000000;
    root $W/www;
    log_format reuse '\$ssl_session_reused';
$2
}
EOF
}
# start_nginx NAME [LAUNCHER...]: start it in the background; sets ng_pid.
start_nginx() {
	local d=$W/nginx-$1; shift
	"$@" "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/error.log" </dev/null >"$d/stderr" 2>&1 &
	ng_pid=$!
	pids+=("$ng_pid")
}

nginx_conf tls "
    ssl_protocols TLSv1.3;
    ssl_certificate $C/server.pem;
    ssl_certificate_key $C/server-key.pem;
    ssl_session_cache shared:SSL:10m;
    server {
        listen 127.0.0.1:$A_PORT ssl backlog=4096;
        ssl_session_tickets on;
        location = /reuse { access_log $W/nginx-tls/reuse.log reuse; try_files /small =404; }
    }
    server {
        listen 127.0.0.1:$A_NR ssl backlog=4096;
        ssl_session_tickets off;
        ssl_session_cache off;
    }"
nginx_conf plain "
    server { listen 127.0.0.1:$P_PORT backlog=4096; }"
nginx_conf shim "
    server { listen 127.0.0.1:$C_PORT backlog=4096; listen 127.0.0.1:$C_NR backlog=4096; }"

start_nginx tls
pid_nginx=$ng_pid
start_nginx plain
pid_plain=$ng_pid

cat >"$W/stunnel.conf" <<EOF
foreground = yes
pid =
output = $W/stunnel.log
debug = warning

[web]
accept = 127.0.0.1:$B_PORT
connect = 127.0.0.1:$P_PORT
cert = $C/server.pem
key = $C/server-key.pem
sslVersionMin = TLSv1.3

[web-noresume]
accept = 127.0.0.1:$B_NR
connect = 127.0.0.1:$P_PORT
cert = $C/server.pem
key = $C/server-key.pem
sslVersionMin = TLSv1.3
sessionResume = no
EOF
"$STUNNEL" "$W/stunnel.conf" </dev/null >"$W/stunnel.stderr" 2>&1 &
pid_stunnel=$!
pids+=("$pid_stunnel")

cat >"$W/inbound.policy" <<EOF
log = stderr
log-level = warning

[web]
listen = 127.0.0.1:$C_PORT
cert = $C/server.pem
key = $C/server-key.pem
${BENCH_INBOUND_RULE_EXTRA:-}

[web-noresume]
listen = 127.0.0.1:$C_NR
cert = $C/server.pem
key = $C/server-key.pem
session-tickets = off
${BENCH_INBOUND_RULE_EXTRA:-}
EOF
chmod 600 "$W/inbound.policy"
ARMS=(nginx stunnel tlsshim plain)
if "$TLSSHIM" check -p "$W/inbound.policy" >"$W/check.out" 2>&1; then
	start_nginx shim "$TLSSHIM" -p "$W/inbound.policy"
	pid_shim=$ng_pid
else
	note "inbound_bench.sh: tlsshim rejects the inbound policy, the tlsshim arm is left out:"
	sed 's/^/  /' "$W/check.out" >&2
	echo "tlsshim arm left out: tlsshim check rejects an inbound rule: $(head -1 "$W/check.out")" >>"$RES/notes"
	ARMS=(nginx stunnel plain)
	pid_shim=
fi

if ! wait_listening "$P_PORT" "$A_PORT" "$A_NR" "$B_PORT" "$B_NR"; then
	cat "$W"/nginx-tls/stderr "$W"/nginx-plain/stderr "$W/stunnel.stderr" "$W/stunnel.log" >&2 2>/dev/null || true
	die "nginx or stunnel did not start (see above)"
fi
if [ -n "$pid_shim" ] && ! wait_listening "$C_PORT" "$C_NR"; then
	note "inbound_bench.sh: nginx under tlsshim did not start, the tlsshim arm is left out:"
	sed 's/^/  /' "$W/nginx-shim/stderr" >&2
	echo "tlsshim arm left out: nginx under tlsshim did not start: $(head -1 "$W/nginx-shim/stderr")" >>"$RES/notes"
	ARMS=(nginx stunnel plain)
fi

# ---- the arms --------------------------------------------------------------------------
# port_of ARM [nr]: the arm's port (nr: the listener that cannot resume).
port_of() {
	case $1:${2:-} in
	nginx:) echo "$A_PORT" ;; nginx:nr) echo "$A_NR" ;;
	stunnel:) echo "$B_PORT" ;; stunnel:nr) echo "$B_NR" ;;
	tlsshim:) echo "$C_PORT" ;; tlsshim:nr) echo "$C_NR" ;;
	plain:*) echo "$P_PORT" ;;
	esac
}
# url_of ARM [nr]: the URL prefix the clients use (https://localhost for TLS).
url_of() {
	if [ "$1" = plain ]; then echo "http://127.0.0.1:$P_PORT"; else echo "https://localhost:$(port_of "$@")"; fi
}
# server_pids ARM: the processes that serve ARM (comma-separated).
server_pids() {
	case $1 in
	nginx) echo "$pid_nginx" ;;
	stunnel) echo "$pid_stunnel,$pid_plain" ;;
	tlsshim) echo "$pid_shim" ;;
	plain) echo "$pid_plain" ;;
	esac
}
curl_opts=(--cacert "$C/ca.pem")
for p in "$A_PORT" "$A_NR" "$B_PORT" "$B_NR" "$C_PORT" "$C_NR"; do curl_opts+=(--resolve "localhost:$p:127.0.0.1"); done

# server_ticks ARM: user + system clock ticks of the arm's server processes.
server_ticks() {
	local p t=0
	for p in $(server_pids "$1" | tr , ' '); do
		t=$((t + $(stat_ticks "$p")))
	done
	echo "$t"
}
# per_op CPU_SECONDS TICKS0 TICKS1 N: "client server" microseconds per op.
per_op() {
	awk -v c="$1" -v a="$2" -v b="$3" -v hz="$CLK_TCK" -v n="$4" \
		'BEGIN {printf "%.2f %.2f\n", c * 1e6 / n, (b - a) / hz * 1e6 / n}'
}

# wrk_run KEY ARM URL [wrk args...]: one wrk run; records KEY.ARM (req/s) and
# the CPU per request of both sides (cpu_KEY, srv_KEY); prints the rate.
wrk_run() {
	local key=$1 arm=$2 url=$3 out rate n cpu t0 t1 c s; shift 3
	url=${url/https:\/\/localhost:/https:\/\/127.0.0.1:} # wrk: never try ::1
	t0=$(server_ticks "$arm")
	if ! out=$("$PYTHON" "$CPUTIME" wrk -t1 -c"$WRK_CONNS" -d"${DURATION}s" "$@" "$url" 2>&1); then
		printf 'wrk %s %s: %s\n' "$arm" "$url" "$out" >>"$W/errors.log"
		[ -n "$key" ] && { record "$key" "$arm" fail; record "cpu_$key" "$arm" fail; record "srv_$key" "$arm" fail; }
		echo fail
		return
	fi
	t1=$(server_ticks "$arm")
	printf '== %s %s %s\n%s\n' "$arm" "$url" "$*" "$out" >>"$W/wrk.log"
	rate=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {print $2}')
	n=$(printf '%s\n' "$out" | awk '/ requests in / {print $1}')
	cpu=$(printf '%s\n' "$out" | awk '/^CPU-seconds:/ {print $2}')
	printf '%s\n' "$out" | awk -v w="wrk $arm $url" '/Socket errors:|Non-2xx/ {print w ": " $0}' >>"$W/warnings.log"
	if [ -n "$key" ]; then
		if [ -n "$rate" ] && [ -n "$n" ] && [ "$n" -gt 0 ] && [ -n "$cpu" ]; then
			record "$key" "$arm" "$rate"
			read -r c s < <(per_op "$cpu" "$t0" "$t1" "$n")
			record "cpu_$key" "$arm" "$c"
			record "srv_$key" "$arm" "$s"
		else
			record "$key" "$arm" fail
		fi
	fi
	echo "${rate:-fail}"
}

# curl_bulk ARM: one download of the big file; records bulk (MB/s) and the
# CPU per MiB of both sides; prints the rate.
curl_bulk() {
	local arm=$1 out t0 t1 v c s
	t0=$(server_ticks "$arm")
	if out=$("$PYTHON" "$CPUTIME" curl -sS --fail -o /dev/null -w '%{speed_download} %{size_download}\n' \
		"${curl_opts[@]}" "$(url_of "$arm")/big" 2>>"$W/errors.log") &&
		[ "$(printf '%s\n' "$out" | awk 'NR == 1 {print $2}')" = "$BIG_BYTES" ]; then
		t1=$(server_ticks "$arm")
		v=$(printf '%s\n' "$out" | awk 'NR == 1 {printf "%.1f", $1 / 1e6}')
		read -r c s < <(per_op "$(printf '%s\n' "$out" | awk '/^CPU-seconds:/ {print $2}')" "$t0" "$t1" "$BIG_MIB")
		record bulk "$arm" "$v"
		record cpu_bulk "$arm" "$c"
		record srv_bulk "$arm" "$s"
	else
		echo "curl $arm bulk: $out" >>"$W/errors.log"
		v=fail
		record bulk "$arm" fail
	fi
	echo "$v"
}

# The measured commands for rounds (bench_lib.sh): CMD KEY ARM (KEY empty:
# a warm-up, with DURATION=1).
m_requests() { wrk_run "$1" "$2" "$(url_of "$2")/small"; }
m_resumed() { wrk_run "$1" "$2" "$(url_of "$2")/small" -H 'Connection: close'; }
m_full() { wrk_run "$1" "$2" "$(url_of "$2" nr)/small" -H 'Connection: close'; }
m_bulk() {
	if [ -n "$1" ]; then curl_bulk "$2"; else curl -sS -o /dev/null "${curl_opts[@]}" "$(url_of "$2")/small" 2>>"$W/errors.log" || true; fi
}

# ---- the machine --------------------------------------------------------------------
{
	machine_info
	echo "nginx=$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')"
	echo "settings=rounds $ROUNDS, wrk -t1 -c$WRK_CONNS -d${DURATION}s, each nginx 1 worker (sendfile on), bulk ${BIG_MIB} MiB, memory $IDLE_N idle TLS connections"
	echo "idle_n=$IDLE_N"
	echo "arms=${ARMS[*]}"
} >>"$RES/machine"

# ---- sanity: each arm serves; what it negotiates; whether it resumes -----------------
# Always: an arm that does not serve is a set-up failure, except (c), which
# is left out (with the reason in the table's notes) so that the others run.
note "== check: each arm (Python ssl: verified TLS 1.3; a 2nd connection offers the 1st one's session)"
for arm in "${ARMS[@]}"; do
	[ "$arm" = plain ] && continue
	for nr in "" nr; do
		if out=$("$PYTHON" "$CLIENTS" probe 127.0.0.1 "$(port_of "$arm" $nr)" "$C/ca.pem" 2>&1); then
			printf '%-8s %-9s %s\n' "$arm" "$([ -n "$nr" ] && echo no-resume || echo resumable)" "$out" | tee -a "$RES/info" >&2
			continue
		fi
		printf '%s\n' "$out" >&2
		what="the $arm arm ($([ -n "$nr" ] && echo "no-resume ")port $(port_of "$arm" $nr)) does not work: $(printf '%s\n' "$out" | tail -1)"
		[ "$arm" = tlsshim ] || die "$what"
		kill -0 "$pid_shim" 2>/dev/null || what="$what; nginx under tlsshim died ($(wait "$pid_shim" 2>/dev/null; echo "status $?"))"
		note "inbound_bench.sh: $what; the tlsshim arm is left out"
		echo "tlsshim arm left out: $what" >>"$RES/notes"
		ARMS=(nginx stunnel plain)
		break
	done
done
sed -i "s/^arms=.*/arms=${ARMS[*]}/" "$RES/machine"
if want info; then
	# wrk resumes on reconnect: nginx's own view on (a).
	: >"$W/nginx-tls/reuse.log"
	DURATION=1 wrk_run "" nginx "https://127.0.0.1:$A_PORT/reuse" -H 'Connection: close' >/dev/null
	sleep 0.2
	awk '{n++; if ($1 == "r") r++} END {printf "wrk Connection: close on (a): %d of %d connections resumed (nginx $ssl_session_reused)\n", r, n}' \
		"$W/nginx-tls/reuse.log" | tee -a "$RES/info" >&2
fi

# ---- memory: first, on fresh servers --------------------------------------------------
if want memory; then
	note "== memory: $IDLE_N idle keep-alive connections (Python ssl), server Pss delta"
	for arm in "${ARMS[@]}"; do
		ca=$C/ca.pem
		[ "$arm" = plain ] && ca=
		if out=$("$PYTHON" "$CLIENTS" idle 127.0.0.1 "$(port_of "$arm")" /small "$IDLE_N" \
			"$(server_pids "$arm")" "$ca" 2>>"$W/errors.log"); then
			note "  $arm: $out"
			printf '%s\n' "$out" | sed -n 's/.*per_conn_pss_bytes=\([0-9.-]*\).*/\1/p' |
				awk '{printf "%.1f\n", $1 / 1024}' >>"$RES/memory.$arm"
			printf '%s\n' "$out" | sed -n 's/.*per_conn_rss_bytes=\([0-9.-]*\).*/\1/p' |
				awk '{printf "%.1f\n", $1 / 1024}' >>"$RES/memory_rss.$arm"
		else
			note "  $arm: failed"
			record memory "$arm" fail
		fi
	done
fi

want requests && rounds requests "requests: wrk keep-alive, 1 KiB file, ${DURATION}s" "req/s" m_requests
want resumed && rounds resumed "new connections, resumed: wrk Connection: close, ${DURATION}s" "conn/s" m_resumed
want full && rounds full "new connections, full handshakes: wrk Connection: close to the no-resume listeners, ${DURATION}s" "conn/s" m_full
want bulk && rounds bulk "bulk: curl downloads $BIG_MIB MiB" "MB/s" m_bulk

echo "elapsed=$((SECONDS - bench_start))" >>"$RES/machine"
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/machine"
bench_finish inbound_report.py
