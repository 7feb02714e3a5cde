#!/bin/bash
# inband_bench.sh - the in-band benchmark (issue 12): `make bench-inband`,
# also run by `make bench` after the inbound one.
#
# One PostgreSQL 15 (TLS 1.3 minimum, pg_hba "hostssl" only, so nothing gets
# in without TLS), `pgbench -i -s 1`, and the SAME pgbench binary reaching it
# three ways, on loopback, in one run:
#
#   libpq    (a) libpq's own TLS: sslmode=$BENCH_PG_SSLMODE (require: encrypt,
#                verify nothing) - the reference
#   tlsshim  (b) pgbench with sslmode=disable under tlsshim, a rule with
#                protocol = postgres (ca, server-name = localhost: verified)
#   stunnel  (c) pgbench with sslmode=disable to stunnel4 in client mode with
#                protocol = pgsql (verifyChain, checkHost = localhost)
#
# Two modes, arms interleaved round by round (rotated order) so that
# background load hits them alike; the table shows medians over rounds and
# medians of the per-round ratios:
#
#   new         pgbench -C -S -T DURATION: a new connection per transaction
#               (SSLRequest, TLS handshake, startup, one SELECT) - conn/s
#   persistent  pgbench -S -T DURATION: one connection, select-only - tx/s
#
# Resumption: PostgreSQL's server disables TLS session tickets and its
# session cache, so every new connection is a full handshake in every arm
# (tlsshim's per-process session cache has nothing to resume); the check
# before the rounds measures and prints this: a Python client that offers
# its first session, and tlsshim's own log of a pgbench -C run.
#
# Plus the CPU per transaction of each side: client = pgbench (getrusage)
# + stunnel for (c) (/proc/PID/stat); server = the postmaster with its
# reaped backends (utime+stime+cutime+cstime) and its live children.  The
# bars of issue 12 are printed as PASS/MISS; a miss does not fail
# (BENCH_STRICT=1 makes it exit 3).
#
# Needs (Debian 12): postgresql-15 (postgres, initdb, pg_ctl, pgbench, psql
# under /usr/lib/postgresql/15/bin), stunnel4, python3, openssl; and a built
# tree with in-band support.  Run as root, the server runs as the postgres
# user (setpriv).
#
# Environment knobs (defaults in brackets):
#   BENCH_ROUNDS [5]          rounds of each mode
#   BENCH_DURATION [5]        seconds per pgbench run
#   BENCH_PG_CLIENTS [1]      pgbench -c (with -j 1)
#   BENCH_PG_SSLMODE [require] libpq's sslmode in (a) (verify-full: it
#                             verifies like (b) and (c))
#   BENCH_INBAND_RULE_EXTRA   extra lines for the tlsshim rule
#   BENCH_INBAND_ONLY []      subset of: info new persistent
#   BENCH_KEEP [0]            1: keep the scratch directory (logs, raw numbers)
#   BENCH_STRICT [0]          1: exit 3 when a bar is missed
# Exit status: 0 (bars missed or not), 3 missed with BENCH_STRICT=1, 4 a
# measurement failed, 1 set-up failed.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -eu

BENCH_NAME=inband_bench.sh
. "$(dirname "$0")/bench_lib.sh"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

ROUNDS=${BENCH_ROUNDS:-5}
DURATION=${BENCH_DURATION:-5}
CLIENTS=${BENCH_PG_CLIENTS:-1}
SSLMODE=${BENCH_PG_SSLMODE:-require}
ONLY=${BENCH_INBAND_ONLY:-info new persistent}

for b in postgres initdb pg_ctl pgbench psql; do
	[ -x "$PG_BIN/$b" ] || die "$PG_BIN/$b not found: install the Debian package 'postgresql-15' (or set PG_BIN)"
done
need "$STUNNEL" stunnel4
need "$PYTHON" python3
need openssl openssl
need setpriv util-linux
[ -x "$TLSSHIM" ] || die "launcher $TLSSHIM not found: build first (make)"
case $ROUNDS$DURATION$CLIENTS in *[!0-9]*) die "BENCH_* values must be integers" ;; esac
case $SSLMODE in require | verify-ca | verify-full) ;; *) die "BENCH_PG_SSLMODE must be require, verify-ca or verify-full" ;; esac

# The server's user: postgres when we are root (postgres refuses to run as
# root), else ourselves.
if [ "$(id -u)" = 0 ]; then
	PG_USER=postgres
	id "$PG_USER" >/dev/null 2>&1 || die "no user '$PG_USER' (the postgresql package creates it)"
else
	PG_USER=$(id -un)
fi
# as_pg CMD ARGS...: run CMD as the server's user.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups -- "$@"
	else
		"$@"
	fi
}

# ---- scratch space and cleanup --------------------------------------------------
pg_started=
bench_stop_hook() {
	[ -z "$pg_started" ] || as_pg "$PG_BIN/pg_ctl" -D "$W/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
}
bench_scratch tlsshim-pgbench 711 # the server's user traverses W to its own directory
echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)" >"$RES/machine"

read -r PG_PORT S_PORT < <(free_ports 2)

note "inband_bench.sh: setting up in $W"
# The certificates of the built tree (make builds tests/certs), else fresh ones.
C=$builddir/tests/certs
if [ ! -s "$C/ca.pem" ] || [ ! -s "$C/server.pem" ] || [ ! -s "$C/server-key.pem" ]; then
	C=$W/certs
	sh "$srcdir/tests/gen-certs.sh" "$C"
fi

# ---- PostgreSQL 15: TLS 1.3 minimum, hostssl only -------------------------------------
D=$W/pg
mkdir -p "$D"
cp "$C/server.pem" "$C/server-key.pem" "$C/ca.pem" "$D/"
chmod 600 "$D/server-key.pem"
[ "$(id -u)" = 0 ] && chown -R "$PG_USER:" "$D"
as_pg "$PG_BIN/initdb" -D "$D/data" -A trust -U postgres --no-sync --no-instructions \
	-E UTF8 --locale=C >"$W/initdb.log" 2>&1 || { cat "$W/initdb.log" >&2; die "initdb failed"; }
echo "hostssl all all 127.0.0.1/32 trust" >"$D/data/pg_hba.conf"
cat >>"$D/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$D'
max_connections = 50
ssl = on
ssl_cert_file = '$D/server.pem'
ssl_key_file = '$D/server-key.pem'
ssl_min_protocol_version = 'TLSv1.3'
fsync = off
synchronous_commit = off
full_page_writes = off
autovacuum = off
logging_collector = off
log_connections = off
EOF
as_pg "$PG_BIN/pg_ctl" -D "$D/data" -l "$D/server.log" -w -t 30 start >"$W/pg_ctl.log" 2>&1 ||
	{ cat "$W/pg_ctl.log" "$D/server.log" >&2 2>/dev/null; die "postgres did not start"; }
pg_started=1
pid_pg=$(head -1 "$D/data/postmaster.pid")

CONN="host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres"
"$PG_BIN/pgbench" -i -s 1 -q "$CONN sslmode=require" >"$W/pgbench-init.log" 2>&1 ||
	{ cat "$W/pgbench-init.log" >&2; die "pgbench -i failed"; }

# ---- stunnel (c): client mode, protocol = pgsql -------------------------------------
cat >"$W/stunnel.conf" <<EOF
foreground = yes
pid =
output = $W/stunnel.log
debug = warning

[pg]
client = yes
accept = 127.0.0.1:$S_PORT
connect = 127.0.0.1:$PG_PORT
protocol = pgsql
sslVersionMin = TLSv1.3
CAfile = $C/ca.pem
verifyChain = yes
checkHost = localhost
EOF
"$STUNNEL" "$W/stunnel.conf" </dev/null >"$W/stunnel.stderr" 2>&1 &
pid_stunnel=$!
pids+=("$pid_stunnel")

# ---- tlsshim (b): protocol = postgres --------------------------------------------------
# tlsshim_policy FILE LEVEL LOG: the rule, logging at LEVEL to LOG.
tlsshim_policy() {
	cat >"$1" <<EOF
log = $3
log-level = $2

[pg]
match = 127.0.0.1:$PG_PORT
protocol = postgres
ca = $C/ca.pem
server-name = localhost
${BENCH_INBAND_RULE_EXTRA:-}
EOF
	chmod 600 "$1"
}
tlsshim_policy "$W/inband.policy" warning stderr
tlsshim_policy "$W/info.policy" info "file:$W/tlsshim-info.log"
ARMS=(libpq tlsshim stunnel)
if ! "$TLSSHIM" check -p "$W/inband.policy" >"$W/check.out" 2>&1; then
	note "inband_bench.sh: tlsshim rejects the policy, the tlsshim arm is left out:"
	sed 's/^/  /' "$W/check.out" >&2
	echo "tlsshim arm left out: tlsshim check rejects the rule: $(head -1 "$W/check.out")" >>"$RES/notes"
	ARMS=(libpq stunnel)
fi

wait_listening "$S_PORT" || { cat "$W/stunnel.stderr" "$W/stunnel.log" >&2 2>/dev/null; die "stunnel did not start"; }

# ---- the arms ---------------------------------------------------------------------------
# conninfo ARM: the connection string pgbench and psql use in ARM.  (No
# sslrootcert with require: libpq would then verify the chain as verify-ca.)
conninfo() {
	case $1:$SSLMODE in
	libpq:require) echo "$CONN sslmode=require" ;;
	libpq:*) echo "$CONN sslmode=$SSLMODE sslrootcert=$C/ca.pem" ;;
	tlsshim:*) echo "$CONN sslmode=disable" ;;
	stunnel:*) echo "host=127.0.0.1 port=$S_PORT user=postgres dbname=postgres sslmode=disable" ;;
	esac
}
# under ARM CMD ARGS...: run CMD as ARM runs its client.
under() {
	local arm=$1; shift
	if [ "$arm" = tlsshim ]; then "$TLSSHIM" -p "${POLICY:-$W/inband.policy}" "$@"; else "$@"; fi
}

# server_ticks: the CPU of the whole server: the postmaster with its reaped
# children, plus its live children.  First waits (up to 3 s) until no
# client backend is left, so that the last run's backends are reaped.
server_ticks() {
	local c t busy
	for _ in $(seq 60); do
		busy=
		for c in $(cat "/proc/$pid_pg/task/$pid_pg/children"); do
			tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | grep -q '127\.0\.0\.1(' && { busy=1; break; }
		done
		[ -z "$busy" ] && break
		sleep 0.05
	done
	t=$(stat_ticks "$pid_pg" all)
	for c in $(cat "/proc/$pid_pg/task/$pid_pg/children"); do t=$((t + $(stat_ticks "$c"))); done
	echo "$t"
}
# pgbench_run KEY ARM [pgbench args...]: one pgbench -S -T run; records KEY.ARM
# (tx/s) and the CPU per transaction of both sides (cpu_KEY, srv_KEY);
# prints the rate.
pgbench_run() {
	local key=$1 arm=$2 out rate n cpu s0 s1 t0 t1 c s; shift 2
	s0=0; s1=0
	t0=$(server_ticks)
	[ "$arm" = stunnel ] && s0=$(stat_ticks "$pid_stunnel")
	if ! out=$(under "$arm" "$PYTHON" "$CPUTIME" "$PG_BIN/pgbench" -n -S -c "$CLIENTS" -j 1 \
		-T "$DURATION" "$@" "$(conninfo "$arm")" 2>&1); then
		printf 'pgbench %s %s: %s\n' "$arm" "$*" "$out" >>"$W/errors.log"
		[ -n "$key" ] && { record "$key" "$arm" fail; record "cpu_$key" "$arm" fail; record "srv_$key" "$arm" fail; }
		echo fail
		return
	fi
	[ "$arm" = stunnel ] && s1=$(stat_ticks "$pid_stunnel")
	t1=$(server_ticks)
	printf '== %s %s\n%s\n' "$arm" "$*" "$out" >>"$W/pgbench.log"
	rate=$(printf '%s\n' "$out" | awk '/^tps = / {printf "%.1f", $3; exit}')
	n=$(printf '%s\n' "$out" | awk '/^number of transactions actually processed:/ {print $6}')
	cpu=$(printf '%s\n' "$out" | awk '/^CPU-seconds:/ {print $2}')
	printf '%s\n' "$out" | awk -v w="pgbench $arm $*" '/^number of failed transactions: [1-9]/ {print w ": " $0}' >>"$W/warnings.log"
	if [ -n "$key" ]; then
		if [ -n "$rate" ] && [ -n "$n" ] && [ "$n" -gt 0 ] && [ -n "$cpu" ]; then
			record "$key" "$arm" "$rate"
			read -r c s < <(awk -v cpu="$cpu" -v s0="$s0" -v s1="$s1" -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v n="$n" \
				'BEGIN {printf "%.1f %.1f\n", (cpu + (s1 - s0) / hz) * 1e6 / n, (b - a) / hz * 1e6 / n}')
			record "cpu_$key" "$arm" "$c"
			record "srv_$key" "$arm" "$s"
		else
			printf 'pgbench %s %s: no rate in: %s\n' "$arm" "$*" "$out" >>"$W/errors.log"
			record "$key" "$arm" fail
		fi
	fi
	echo "${rate:-fail}"
}

# The measured commands for rounds (bench_lib.sh): CMD KEY ARM.
m_new() { pgbench_run "$1" "$2" -C; }
m_persistent() { pgbench_run "$1" "$2"; }

# ---- the machine --------------------------------------------------------------------
{
	machine_info
	echo "postgres=$("$PG_BIN/postgres" --version | awk "{print \$3}")"
	echo "pgbench=$("$PG_BIN/pgbench" --version | awk '{print $NF}')"
	echo "settings=rounds $ROUNDS, pgbench -S -c $CLIENTS -j 1 -T $DURATION (scale 1), libpq sslmode=$SSLMODE"
	echo "sslmode=$SSLMODE"
} >>"$RES/machine"

# ---- sanity: each arm reaches the server over TLS 1.3; resumption ---------------------
note "== check: each arm (pg_stat_ssl of its own backend)"
SSLQ="select ssl, version from pg_stat_ssl where pid = pg_backend_pid()"
for arm in "${ARMS[@]}"; do
	if out=$(under "$arm" timeout 30 "$PG_BIN/psql" -X -q -A -t "$(conninfo "$arm")" -c "$SSLQ" 2>&1) &&
		[ "$out" = "t|TLSv1.3" ]; then
		printf '%-8s pg_stat_ssl: ssl=t version=TLSv1.3\n' "$arm" | tee -a "$RES/info" >&2
		continue
	fi
	what="the $arm arm does not work: psql says: $(printf '%s\n' "$out" | tail -1)"
	[ "$arm" = tlsshim ] || die "$what"
	note "inband_bench.sh: $what; the tlsshim arm is left out"
	echo "tlsshim arm left out: $what" >>"$RES/notes"
	ARMS=(libpq stunnel)
done
echo "arms=${ARMS[*]}" >>"$RES/machine"
if want info; then
	# Does the server resume at all?  A Python client offers its session.
	"$PYTHON" - 127.0.0.1 "$PG_PORT" "$C/ca.pem" <<'EOF' 2>&1 | tee -a "$RES/info" >&2 || true
import socket, ssl, struct, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
def one(session=None):
    s = socket.create_connection((host, port))
    s.sendall(struct.pack("!II", 8, 80877103))
    if s.recv(1) != b"S":
        raise SystemExit("server: no TLS")
    t = ctx.wrap_socket(s, server_hostname="localhost", session=session)
    body = struct.pack("!I", 196608) + b"user\0postgres\0database\0postgres\0\0"
    t.sendall(struct.pack("!I", len(body) + 4) + body)
    got = b""
    while b"Z\0\0\0\x05" not in got:          # ReadyForQuery: the tickets, if any, came before
        d = t.recv(65536)
        if not d:
            break
        got += d
    r = (t.session, t.session_reused, t.session.has_ticket)
    t.sendall(b"X\0\0\0\x04")
    t.close()
    return r
sess, _, ticket = one()
_, reused, _ = one(sess)
print("server resumption (Python ssl offers its 1st session): ticket sent=%s, 2nd connection resumed=%s"
      % ("yes" if ticket else "no", "yes" if reused else "no"))
EOF
	if [[ " ${ARMS[*]} " == *" tlsshim "* ]]; then
		POLICY=$W/info.policy under tlsshim "$PG_BIN/pgbench" -n -S -C -t 20 -j 1 "$(conninfo tlsshim)" >/dev/null 2>>"$W/errors.log" || true
		awk '/protocol=postgres|verified version=/ {n++; if (/resumed=yes/) r++}
			END {printf "tlsshim pgbench -C -t 20 (one process, its session cache): %d of %d connections resumed (tlsshim log)\n", r, n}' \
			"$W/tlsshim-info.log" | tee -a "$RES/info" >&2
	fi
	echo "libpq (PostgreSQL 15) keeps no TLS session between connections: it never offers one" >>"$RES/info"
fi

want new && rounds new "new connections: pgbench -C -S, ${DURATION}s" "conn/s" m_new
want persistent && rounds persistent "persistent: pgbench -S, ${DURATION}s" "tx/s" m_persistent

echo "elapsed=$((SECONDS - bench_start))" >>"$RES/machine"
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/machine"
bench_finish inband_report.py
