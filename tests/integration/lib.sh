# lib.sh -- shared helpers for the tlsshim integration tests (bash).
#
# Source it from a test script:
#
#     . "$top_srcdir/tests/integration/lib.sh"
#
# The test harness (automake tap-driver, see tests/Makefile.inc) sets:
#   top_srcdir top_builddir  source and build trees
#   TLSSHIM                  the launcher binary
#   TLSSHIM_LIBRARY          libtlsshim.so
#   TSERVER                  tests/servers/tserver
#   CERTS                    directory made by tests/gen-certs.sh
#   PYTHON                   python3
#
# What it provides:
#   TAP output     plan, pass, fail, ok, check, check_fail, is, like, unlike, skip,
#                  skip_all, diag, bail_out, done_testing
#   scratch space  $WORK (fresh directory, removed at exit unless KEEP=1)
#   servers        start_tserver, start_openssl_server, start_nginx,
#                  start_evil, start_plain, start_server, stop_server; all
#                  are killed when the test exits
#   log readers    tserver_field, tserver_conns, wait_for_lines,
#                  wait_for_match, nginx_field, nginx_lines, wait_for_requests,
#                  wait_until
#   policies       policy, write_policy, run, tlsshim_run
#   preconditions  need_cmd, need_python, need_tlsshim
#   misc           free_port, nobody_can_read
#   shared names   CLIENTS (tests/integration/clients), TLOG ($WORK/tlsshim.log),
#                  CURL (curl -sS --noproxy '*' --max-time 20, an array)
#
# The ones a new case needs, one line each (details above each function):
#   need_python                     skip the script unless $PYTHON exists
#   need_tlsshim [CERTFILE...]      bail out unless launcher, library and
#                                   $CERTS/ca.pem (or each CERTFILE) exist
#   policy NAME PORT [LINE...]      $WORK/NAME.policy: [NAME] localhost:18080
#                                   -> PORT, ca.pem, log $WORK/NAME.tlsshim.log
#                                   (POLICY_LOG/LEVEL/RULE/MATCH/CA change it)
#   run NAME CMD ARGS...            CMD under tlsshim -p $WORK/NAME.policy,
#                                   with a time limit (RUN_TIMEOUT, 30 s)
#   start_tserver NAME [OPTS...]    tests/servers/tserver (TLS, logs conns)
#   start_evil NAME MODE [OPTS...]  tests/servers/evil.py (hostile server)
#   start_plain NAME                clients/plain_server.py (plain listener)
#   start_server NAME CMD ARGS...   any CMD that writes $WORK/NAME.port
#   wait_for_lines FILE N [SECS]    until FILE has N "conn " lines
#   wait_for_match FILE RE [SECS]   until a line of FILE matches RE
#   wait_until SECS CMD ARGS...     until CMD succeeds (0) or SECS pass (1)
#
# A new case, in full:
#   start_tserver srv
#   policy api "$srv_port"
#   run api "${CURL[@]}" -o /dev/null http://localhost:18080/x
#   ok $? "curl through tlsshim exits 0"
#   check "server logged it" wait_for_lines "$srv_log" 1
#   is "$(tserver_field "$srv_log" 1 first_line)" "GET /x HTTP/1.1" "server got the request"
#
# start_* NAME sets shell variables named after the server:
#   ${NAME}_port ${NAME}_pid ${NAME}_log (all servers),
#   ${NAME}_plain_port ${NAME}_error_log (nginx), ${NAME}_stdin (s_server).
# NAME must be a shell identifier (srv, mtls, ngx, ...).
#
# Ground rule: an integration test passes only on evidence from the SERVER
# side (tserver's log, nginx's access log, openssl s_server's output).
#
# Do not "set -e" in a test: the assertion helpers return non-zero when
# they record a failure, and the script must go on to report the rest.
# "set -u" is fine.

# ---- environment defaults (for running a test by hand) -----------------------
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${TLSSHIM:=$top_builddir/src/tlsshim}"
: "${TLSSHIM_LIBRARY:=$top_builddir/src/.libs/libtlsshim.so}"
: "${TSERVER:=$top_builddir/tests/servers/tserver}"
: "${CERTS:=$top_builddir/tests/certs}"
: "${PYTHON:=/usr/bin/python3}"
: "${NGINX:=/usr/sbin/nginx}"
: "${OPENSSL:=openssl}"
export top_srcdir top_builddir TLSSHIM TLSSHIM_LIBRARY TSERVER CERTS PYTHON

# How long (seconds) to wait for a server to become ready.
: "${SERVER_START_TIMEOUT:=10}"

# ---- TAP -----------------------------------------------------------------------
_tap_count=0        # tests run so far
_tap_failed=0       # how many of them failed
_tap_plan=""        # the planned count, once printed

# plan N: print the TAP plan up front (optional; done_testing prints it
# at the end otherwise).
plan() {
    _tap_plan=$1
    echo "1..$1"
}

# A description must not contain '#' (it would start a TAP directive).
_tap_desc() {
    local d=$*
    printf '%s' "${d//#/\\#}"
}

# pass DESC / fail DESC: record one result.
pass() {
    _tap_count=$((_tap_count + 1))
    echo "ok $_tap_count - $(_tap_desc "$*")"
}
fail() {
    _tap_count=$((_tap_count + 1))
    _tap_failed=$((_tap_failed + 1))
    echo "not ok $_tap_count - $(_tap_desc "$*")"
}

# diag TEXT...: a TAP comment (every line prefixed with '# ').
diag() {
    local line
    printf '%s\n' "$*" | while IFS= read -r line; do
        echo "# $line"
    done
}

# ok STATUS DESC: pass if STATUS (an exit status) is 0.
#   ok $? "curl succeeded"
ok() {
    local st=$1
    shift
    if [ "$st" -eq 0 ] 2>/dev/null; then pass "$@"; else fail "$@"; fi
}

# check DESC CMD ARGS...: run CMD; pass if it exits 0.  On failure its
# output (stdout+stderr) is shown as diagnostics.
check() {
    local desc=$1 out st
    shift
    out=$("$@" 2>&1)
    st=$?
    if [ $st -eq 0 ]; then
        pass "$desc"
    else
        fail "$desc"
        diag "command failed (exit $st): $*"
        [ -n "$out" ] && diag "$out"
    fi
    return $st
}

# check_fail DESC CMD ARGS...: run CMD; pass if it exits NON-zero.
check_fail() {
    local desc=$1 out st
    shift
    out=$("$@" 2>&1)
    st=$?
    if [ $st -ne 0 ]; then
        pass "$desc"
        return 0
    fi
    fail "$desc"
    diag "command unexpectedly succeeded: $*"
    [ -n "$out" ] && diag "$out"
    return 1
}

# is GOT EXPECTED DESC: pass if the two strings are equal.
is() {
    if [ "$1" = "$2" ]; then
        pass "$3"
        return 0
    fi
    fail "$3"
    diag "     got: '$1'" "expected: '$2'"
    return 1
}

# like GOT REGEX DESC: pass if GOT matches the extended regex REGEX.
like() {
    if printf '%s\n' "$1" | grep -Eq -- "$2"; then
        pass "$3"
        return 0
    fi
    fail "$3"
    diag "got: '$1'" "does not match: '$2'"
    return 1
}

# unlike GOT REGEX DESC: pass if GOT does not match the extended regex REGEX.
unlike() {
    if printf '%s\n' "$1" | grep -Eq -- "$2"; then
        fail "$3"
        diag "got: '$1'" "matches: '$2'"
        return 1
    fi
    pass "$3"
}

# skip DESC REASON: record a skipped test (counts as run, not failed).
skip() {
    _tap_count=$((_tap_count + 1))
    echo "ok $_tap_count - $(_tap_desc "$1") # SKIP ${2:-}"
}

# skip_all REASON: skip the whole test script (only before any result).
skip_all() {
    echo "1..0 # SKIP $*"
    exit 0
}

# bail_out REASON: abort the test run loudly.
bail_out() {
    echo "Bail out! $*"
    exit 99
}

# done_testing: print the plan if not printed yet; exit non-zero if any test
# failed or the planned count was not met.
done_testing() {
    if [ -z "$_tap_plan" ]; then
        echo "1..$_tap_count"
    elif [ "$_tap_plan" -ne "$_tap_count" ]; then
        diag "planned $_tap_plan tests but ran $_tap_count"
        exit 1
    fi
    [ "$_tap_failed" -eq 0 ] || { diag "$_tap_failed of $_tap_count failed"; exit 1; }
    exit 0
}

# ---- work directory and cleanup ------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsshim-test.XXXXXX") || bail_out "mktemp failed"
export WORK
_server_pids=()     # everything started by start_* (killed at exit)

_lib_cleanup() {
    local st=$? pid
    for pid in "${_server_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    # give them up to ~2 s to go, then insist
    for pid in "${_server_pids[@]}"; do
        for _ in $(seq 20); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
    done
    for pid in "${_server_pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "# KEEP=1: work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $st
}
trap _lib_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- names every script may use ----------------------------------------------------
# shellcheck disable=SC2034   # used by the scripts that source this file
{
    CLIENTS=$top_srcdir/tests/integration/clients   # the helper programs
    TLOG=$WORK/tlsshim.log                          # a log shared by a script's policies
    CURL=(curl -sS --noproxy '*' --max-time 20)     # "${CURL[@]}" URL...
}

# ---- small utilities -------------------------------------------------------------

# need_cmd CMD...: skip the whole test unless every CMD exists.
need_cmd() {
    local c
    for c; do
        command -v "$c" >/dev/null 2>&1 || skip_all "$c not found"
    done
}

# need_python: skip the whole test unless $PYTHON exists.
need_python() {
    [ -x "$PYTHON" ] || skip_all "python3 not found at '$PYTHON'"
}

# need_tlsshim [CERTFILE...]: bail out unless the launcher and the library
# are built and the certificates are there ($CERTS/ca.pem, or each CERTFILE
# named relative to $CERTS).
need_tlsshim() {
    local f
    [ -x "$TLSSHIM" ] || bail_out "launcher not built: '$TLSSHIM'"
    [ -f "$TLSSHIM_LIBRARY" ] || bail_out "library not built: '$TLSSHIM_LIBRARY'"
    [ $# -gt 0 ] || set -- ca.pem
    for f; do
        [ -f "$CERTS/$f" ] || bail_out "certificates missing in '$CERTS'"
    done
}

# nobody_can_read FILE...: true if user nobody (via setpriv, as root) can
# read every FILE.  A build tree under a private directory (mktemp -d is
# 0700) is not: tests that run the library as nobody must skip there.
nobody_can_read() {
    [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
        setpriv --reuid=65534 --regid=65534 --clear-groups \
            sh -c 'for f; do [ -r "$f" ] || exit 1; done' sh "$@"
}

# free_port: print a TCP port that is free on 127.0.0.1 right now.  Another
# process may take it before you bind it: callers must retry on failure.
free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# write_policy FILE: write stdin to FILE with mode 600.
#   write_policy "$WORK/p.policy" <<EOF
#   ...
#   EOF
write_policy() {
    (umask 077 && cat >"$1") && chmod 600 "$1"
}

# check_load_error NAME LINE REGEX: $WORK/NAME.policy (stdin) fails
# `tlsshim check` and the launcher with exit 2 and "FILE:LINE: ..." matching
# REGEX, and the command never runs (4 checks; 5 with LOAD_ERROR_SECRET set:
# the message does not contain it).
check_load_error() {
    local name=$1 line=$2 re=$3 f=$WORK/$1.policy out
    write_policy "$f"
    out=$("$TLSSHIM" check -p "$f" 2>&1)
    is "$?" 2 "$name: check exits 2"
    like "$out" "^$f:$line: $re" "$name: $f:$line: says why"
    if [ -n "${LOAD_ERROR_SECRET:-}" ]; then
        check_fail "$name: no password in the message" grep -q "$LOAD_ERROR_SECRET" <<<"$out"
    fi
    rm -f "$WORK/ran"
    "$TLSSHIM" -p "$f" sh -c "touch '$WORK/ran'" 2>/dev/null
    is "$?" 2 "$name: the launcher exits 2"
    [ ! -e "$WORK/ran" ]
    ok $? "$name: the command did not run"
}

# policy NAME PORT [LINE...]: write $WORK/NAME.policy (mode 600):
#     log = file:$WORK/NAME.tlsshim.log      POLICY_LOG
#     log-level = info                       POLICY_LEVEL ("" = no line)
#     [NAME]                                 POLICY_RULE
#     match = localhost:18080                POLICY_MATCH
#     port = PORT                            (PORT "" = no line)
#     ca = $CERTS/ca.pem                     POLICY_CA
#     LINE...                                (each "key = value", as given)
#   Each variable replaces its default (in brackets above: the value, not
#   the key), for one call (POLICY_MATCH=127.0.0.1:18081 policy a "$a_port")
#   or, set near the top, for the whole script.
#   policy up "$srv_port" "server-name = localhost" "resume = off"
policy() {
    local name=$1 port=$2 line
    shift 2
    {
        echo "log = ${POLICY_LOG:-file:$WORK/$name.tlsshim.log}"
        [ -z "${POLICY_LEVEL-info}" ] || echo "log-level = ${POLICY_LEVEL-info}"
        echo
        echo "[${POLICY_RULE:-$name}]"
        echo "match = ${POLICY_MATCH:-localhost:18080}"
        [ -z "$port" ] || echo "port = $port"
        echo "ca = ${POLICY_CA:-$CERTS/ca.pem}"
        for line; do echo "$line"; done
    } | write_policy "$WORK/$name.policy"
}

# tlsshim_run POLICY CMD ARGS...: run CMD under tlsshim with POLICY.
tlsshim_run() {
    local policy=$1
    shift
    "$TLSSHIM" -p "$policy" "$@"
}

# run NAME CMD ARGS...: run CMD under tlsshim with $WORK/NAME.policy (the
# file policy NAME writes), killed after RUN_TIMEOUT seconds (30).
run() {
    local name=$1
    shift
    timeout "${RUN_TIMEOUT:-30}" "$TLSSHIM" -p "$WORK/$name.policy" "$@"
}

# _valid_name NAME: server names become shell variables (${NAME}_port).
_valid_name() {
    [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || bail_out "bad server name '$1' (must be a shell identifier)"
}

# _remember NAME PID: record the pid for cleanup and as ${NAME}_pid.
_remember() {
    _server_pids+=("$2")
    printf -v "$1_pid" '%s' "$2"
}

# _server_up NAME PID PORT LOG: the server a start_* function started is
# up: remember PID (${NAME}_pid, stopped at exit), set ${NAME}_port and
# ${NAME}_log.
_server_up() {
    _remember "$1" "$2"
    printf -v "$1_port" '%s' "$3"
    printf -v "$1_log" '%s' "$4"
}

# _server_retry NAME PID WHAT REGEX FILE...: PID, the server WHAT a start_*
# function started on a free_port, did not come up: kill it; return 0 when
# one of FILE matches REGEX (extended: the port was taken meanwhile, try
# another), else show the FILEs and bail out.
_server_retry() {
    local name=$1 pid=$2 what=$3 re=$4
    shift 4
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    grep -Eqs -- "$re" "$@" && return 0
    diag "$what $name did not start:" "$(cat "$@" 2>/dev/null)"
    bail_out "could not start $what $name"
}

# stop_server NAME: stop a server started by start_* now (e.g. to make it
# flush or to free its port); waits until it is gone.
stop_server() {
    local var="$1_pid"
    local pid=${!var:-}
    [ -n "$pid" ] || return 1
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# ---- servers that write a port file ------------------------------------------------

# start_server NAME CMD ARGS...
#   Run CMD ARGS in the background (stdin /dev/null, stdout and stderr
#   appended to $WORK/NAME.stderr) after truncating $WORK/NAME.log, and wait
#   until it writes its port to $WORK/NAME.port (give both paths to CMD in
#   ARGS).  Bails out if CMD exits first or is not ready in
#   SERVER_START_TIMEOUT seconds.  Sets ${NAME}_port ${NAME}_pid ${NAME}_log.
#   start_server rec "$PYTHON" "$CLIENTS/record_server.py" \
#       "$WORK/rec.port" "$WORK/rec.log" 4
start_server() {
    local name=$1
    shift
    _valid_name "$name"
    local portfile="$WORK/$name.port" log="$WORK/$name.log"
    rm -f "$portfile"
    : >"$log"           # a new server, a new log (same NAME = fresh log)

    "$@" </dev/null >>"$WORK/$name.stderr" 2>&1 &
    local pid=$!
    _remember "$name" "$pid"

    local deadline=$((SECONDS + SERVER_START_TIMEOUT))
    while [ ! -s "$portfile" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            diag "server $name ($*) exited early:" "$(cat "$WORK/$name.stderr")"
            bail_out "could not start server $name"
        fi
        [ $SECONDS -lt $deadline ] || bail_out "server $name: no port file after ${SERVER_START_TIMEOUT}s"
        sleep 0.05
    done
    printf -v "${name}_port" '%s' "$(cat "$portfile")"
    printf -v "${name}_log" '%s' "$log"
}

# start_evil NAME MODE [evil.py options]: tests/servers/evil.py, a hostile
#   server (see its --help for the modes), with $CERTS/server.pem, through
#   start_server.  Sets ${NAME}_port ${NAME}_pid ${NAME}_log.
start_evil() {
    local name=$1 mode=$2
    shift 2
    start_server "$name" "$PYTHON" "$top_srcdir/tests/servers/evil.py" --mode "$mode" \
        --port-file "$WORK/$name.port" --log "$WORK/$name.log" \
        --cert "$CERTS/server.pem" --key "$CERTS/server-key.pem" "$@"
}

# start_plain NAME: clients/plain_server.py, a plain-text listener that logs
#   one "conn" line per connection, through start_server.  Sets ${NAME}_port
#   ${NAME}_pid ${NAME}_log.
start_plain() {
    start_server "$1" "$PYTHON" "$CLIENTS/plain_server.py" "$WORK/$1.port" "$WORK/$1.log"
}

# ---- waiting -------------------------------------------------------------------------

# wait_until SECS CMD ARGS...: run CMD every 0.05 s until it succeeds
# (return 0) or SECS seconds have passed (return 1).
#   wait_until 5 test -s "$WORK/x.port"
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.05
    done
    return 0
}

# _has_lines COUNTER FILE N: does COUNTER FILE (tserver_conns, nginx_lines)
# print at least N?
_has_lines() { [ "$("$1" "$2")" -ge "$3" ]; }

# ---- tserver -----------------------------------------------------------------------

# start_tserver NAME [tserver options...]
#   Start tests/servers/tserver in the background with
#   --port-file $WORK/NAME.port --log $WORK/NAME.log (the log is truncated
#   first; tserver's stderr goes to $WORK/NAME.stderr).  --cert/--key default to $CERTS/server.pem and
#   $CERTS/server-key.pem unless given.  Waits for the port file, then sets
#   ${NAME}_port and ${NAME}_pid, and ${NAME}_log to the log path.
#   Example:  start_tserver srv --mode echo --require-client-cert \
#                 --client-ca "$CERTS/ca.pem"
start_tserver() {
    local name=$1
    shift
    _valid_name "$name"
    [ -x "$TSERVER" ] || bail_out "tserver not found at '$TSERVER'"
    local portfile="$WORK/$name.port" log="$WORK/$name.log" a
    local -a defaults=()
    local have_cert=0 have_key=0
    for a; do
        case $a in
        --cert | --cert=*) have_cert=1 ;;
        --key | --key=*) have_key=1 ;;
        esac
    done
    [ $have_cert = 1 ] || defaults+=(--cert "$CERTS/server.pem")
    [ $have_key = 1 ] || defaults+=(--key "$CERTS/server-key.pem")
    start_server "$name" "$TSERVER" "${defaults[@]}" --port-file "$portfile" --log "$log" "$@"
}

# tserver_conns LOGFILE: print the number of "conn" lines in a tserver log.
tserver_conns() {
    if [ -f "$1" ]; then grep -ac '^conn ' "$1"; else echo 0; fi
}

# _urldecode STRING: undo tserver's %XX encoding.
_urldecode() {
    local v=${1//\\/\\\\}
    printf '%b' "${v//%/\\x}"
}

# tserver_field LOGFILE N FIELD: print FIELD of the Nth conn line (1-based),
# URL-decoded.  Returns 1 (printing nothing) if the line or field is missing.
# N may be "last" for the most recent line.
#   tserver_field "$WORK/srv.log" 1 version    # -> TLS1.3
tserver_field() {
    local file=$1 n=$2 field=$3 line val
    [ -f "$file" ] || return 1
    if [ "$n" = last ]; then
        line=$(grep -a '^conn ' "$file" | tail -n 1)
    else
        line=$(grep -a '^conn ' "$file" | sed -n "${n}p")
    fi
    [ -n "$line" ] || return 1
    # fields are "key=value" separated by single spaces; values never
    # contain spaces (tserver percent-encodes them)
    printf '%s\n' "$line" | tr ' ' '\n' | grep -q "^${field}=" || return 1
    val=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n "s/^${field}=//p" | head -n 1)
    _urldecode "$val"
    echo
}

# wait_for_lines FILE N [TIMEOUT]: wait (default 10 s) until FILE has at least
# N "conn" lines.  tserver writes a line when a connection ENDS, so call this
# before reading fields.  Returns 1 on timeout.
wait_for_lines() {
    wait_until "${3:-10}" _has_lines tserver_conns "$1" "$2"
}

# wait_for_match FILE REGEX [TIMEOUT]: wait (default 10 s) until a line of
# FILE matches the extended regex REGEX.  Returns 1 on timeout.
wait_for_match() {
    wait_until "${3:-10}" _has_match "$1" "$2"
}
_has_match() { [ -f "$1" ] && grep -Eq -- "$2" "$1"; }

# ---- openssl s_server ----------------------------------------------------------------

# start_openssl_server NAME [extra s_server options...]
#   Start "openssl s_server" on 127.0.0.1 (ephemeral port) with
#   $CERTS/server.pem and TLS 1.3 only (pass e.g. -www for an HTTP page,
#   -Verify 1 -CAfile $CERTS/ca.pem for client certificates).  Passing your
#   own -cert/-key, or any of -tls1_2 -tls1_3 -no_tls1_3 -min_protocol
#   -max_protocol, replaces the corresponding default.  stdout+stderr
#   go to $WORK/NAME.log.  Its stdin is the FIFO ${NAME}_stdin
#   ($WORK/NAME.stdin), held open by the test so s_server never sees EOF;
#   in non -www modes, writing to it sends data to the connected client.
#   Sets ${NAME}_port, ${NAME}_pid, ${NAME}_log, ${NAME}_stdin.
start_openssl_server() {
    local name=$1
    shift
    _valid_name "$name"
    local log="$WORK/$name.log" fifo="$WORK/$name.stdin"
    rm -f "$fifo" "$log"
    mkfifo "$fifo" || bail_out "mkfifo $fifo failed"
    # Open read-write in this shell: that never blocks, and keeps a writer
    # so that s_server does not get EOF on stdin.
    local fd
    exec {fd}<>"$fifo"
    printf -v "${name}_stdin_fd" '%s' "$fd"

    local -a defaults=() a
    local have_cert=0 have_key=0 have_vers=0
    for a; do
        case $a in
        -cert) have_cert=1 ;;
        -key) have_key=1 ;;
        -tls1_2 | -tls1_3 | -no_tls1_3 | -no_tls1_2 | -min_protocol | -max_protocol) have_vers=1 ;;
        esac
    done
    [ $have_cert = 1 ] || defaults+=(-cert "$CERTS/server.pem")
    [ $have_key = 1 ] || defaults+=(-key "$CERTS/server-key.pem")
    [ $have_vers = 1 ] || defaults+=(-tls1_3)

    # Port 0: s_server reports the port it got ("ACCEPT 127.0.0.1:PORT"), so
    # there is no race with other tests.
    "$OPENSSL" s_server -accept 127.0.0.1:0 "${defaults[@]}" "$@" \
        <"$fifo" >"$log" 2>&1 &
    local pid=$!
    _remember "$name" "$pid"

    local deadline=$((SECONDS + SERVER_START_TIMEOUT)) port=""
    while :; do
        port=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$log" 2>/dev/null | head -n 1)
        [ -n "$port" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            diag "openssl s_server $name exited early:" "$(cat "$log")"
            bail_out "could not start openssl s_server $name"
        fi
        [ $SECONDS -lt $deadline ] || bail_out "openssl s_server $name: not ready after ${SERVER_START_TIMEOUT}s"
        sleep 0.05
    done
    printf -v "${name}_port" '%s' "$port"
    printf -v "${name}_log" '%s' "$log"
    printf -v "${name}_stdin" '%s' "$fifo"
}

# ---- nginx ---------------------------------------------------------------------------

# start_nginx NAME [mtls|mtls-optional]
#   Run nginx with a private prefix $WORK/NAME.nginx (works as root and as
#   non-root): TLS 1.3 only, $CERTS/server.pem, session tickets on, on
#   127.0.0.1:${NAME}_port, and plain HTTP on 127.0.0.1:${NAME}_plain_port.
#   Both answer every request with "hello from nginx\n".
#   With mtls: ssl_verify_client on (trusting $CERTS/ca.pem): a request
#   without a valid client certificate gets HTTP 400 (nginx completes the
#   handshake and refuses at the HTTP level).  mtls-optional: "optional".
#   Access log $WORK/NAME.access.log, one line per request, TAB-separated
#   key=value fields (read them with nginx_field):
#     port proto reused sni client_dn alpn status request
#   where proto is $ssl_protocol (TLSv1.3, or empty on the plain port),
#   reused is $ssl_session_reused ("r" if resumed, "." if not).
#   Sets ${NAME}_port ${NAME}_plain_port ${NAME}_pid ${NAME}_log (the
#   access log) and ${NAME}_error_log.
start_nginx() {
    local name=$1 mtls=${2:-}
    _valid_name "$name"
    [ -x "$NGINX" ] || bail_out "nginx not found at '$NGINX'"
    local prefix="$WORK/$name.nginx"
    local access="$WORK/$name.access.log" errlog="$WORK/$name.error.log"
    mkdir -p "$prefix/tmp" || bail_out "mkdir $prefix failed"

    local verify=""
    case $mtls in
    "") ;;
    mtls) verify="ssl_verify_client on; ssl_client_certificate $CERTS/ca.pem;" ;;
    mtls-optional) verify="ssl_verify_client optional; ssl_client_certificate $CERTS/ca.pem;" ;;
    *) bail_out "start_nginx: unknown option '$mtls'" ;;
    esac

    # Running as root, nginx would switch its workers to "nobody"; with
    # master_process off there is a single process and no switch, so the
    # private prefix (mode 700 under $WORK) stays readable.  The user
    # directive is still given as root to avoid depending on "nobody".
    local userline=""
    [ "$(id -u)" = 0 ] && userline="user root root;"

    local port plain pid
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        port=$(free_port)
        plain=$(free_port)
        [ "$port" != "$plain" ] || continue
        cat >"$prefix/nginx.conf" <<EOF
$userline
daemon off;
master_process off;
worker_processes 1;
pid $prefix/nginx.pid;
error_log $errlog info;
events { worker_connections 64; }
http {
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    default_type text/plain;
    keepalive_timeout 5s;

    log_format tlsshim 'port=\$server_port\tproto=\$ssl_protocol\treused=\$ssl_session_reused\tsni=\$ssl_server_name\tclient_dn=\$ssl_client_s_dn\talpn=\$ssl_alpn_protocol\tstatus=\$status\trequest=\$request';
    access_log $access tlsshim;

    ssl_protocols TLSv1.3;
    ssl_certificate $CERTS/server.pem;
    ssl_certificate_key $CERTS/server-key.pem;
    ssl_session_tickets on;
    ssl_session_cache shared:${name}_ssl:1m;
    $verify

    server {
        listen 127.0.0.1:$port ssl;
        listen 127.0.0.1:$plain;
        server_name localhost;
        location / { return 200 "hello from nginx\n"; }
    }
}
EOF
        rm -f "$prefix/nginx.pid"
        : >"$errlog"
        "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$errlog" \
            </dev/null >>"$WORK/$name.stderr" 2>&1 &
        pid=$!
        # nginx writes its pid file only after all listening sockets are
        # bound, so the pid file (not "the port answers", which could be
        # someone else's server) is the readiness signal.
        local deadline=$((SECONDS + SERVER_START_TIMEOUT))
        while [ ! -s "$prefix/nginx.pid" ] && kill -0 "$pid" 2>/dev/null &&
            [ $SECONDS -lt $deadline ]; do
            sleep 0.05
        done
        if [ -s "$prefix/nginx.pid" ] && kill -0 "$pid" 2>/dev/null; then
            _remember "$name" "$pid"
            printf -v "${name}_port" '%s' "$port"
            printf -v "${name}_plain_port" '%s' "$plain"
            printf -v "${name}_log" '%s' "$access"
            printf -v "${name}_error_log" '%s' "$errlog"
            return 0
        fi
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        # A port race with another test is retried; anything else is fatal.
        if ! grep -q 'Address already in use' "$errlog" "$WORK/$name.stderr" 2>/dev/null; then
            diag "nginx $name failed to start:" "$(cat "$errlog" "$WORK/$name.stderr" 2>/dev/null)"
            bail_out "could not start nginx $name"
        fi
    done
    bail_out "nginx $name: no free port after 10 attempts"
}

# nginx_lines LOGFILE: number of requests in an nginx access log.
nginx_lines() {
    if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi
}

# wait_for_requests LOGFILE N [TIMEOUT]: wait (default 10 s) until an nginx
# access log has at least N lines.  Returns 1 on timeout.
wait_for_requests() {
    wait_until "${3:-10}" _has_lines nginx_lines "$1" "$2"
}

# nginx_field LOGFILE N FIELD: print FIELD (port proto reused sni client_dn
# alpn status request) of the Nth request line (1-based, or "last").
# nginx writes "-" for empty variables.
nginx_field() {
    local file=$1 n=$2 field=$3 line
    [ -f "$file" ] || return 1
    if [ "$n" = last ]; then line=$(tail -n 1 "$file"); else line=$(sed -n "${n}p" "$file"); fi
    [ -n "$line" ] || return 1
    printf '%s\n' "$line" | tr '\t' '\n' | grep -q "^${field}=" || return 1
    printf '%s\n' "$line" | tr '\t' '\n' | sed -n "s/^${field}=//p" | head -n 1
}

# ---- inbound: the program under tlsshim is the SERVER -----------------------------------
# A plain daemon runs under tlsshim with a `listen` rule; real TLS clients
# connect to it.  Evidence from both ends: the client's own report (curl -v,
# s_client -brief, clients/inbound_client.py) and the daemon's own log.

# inbound_policy NAME PORT [LINE...]: write $WORK/NAME.policy (mode 600):
#     log = file:$WORK/NAME.tlsshim.log      POLICY_LOG
#     log-level = info                       POLICY_LEVEL ("" = no line)
#     [NAME]                                 POLICY_RULE
#     listen = 127.0.0.1:PORT                INBOUND_LISTEN (the whole value)
#     cert = $CERTS/server.pem
#     key = $CERTS/server-key.pem
#     LINE...                                (as given: "" "[other]" "listen = ..."
#                                            starts a second rule)
#   inbound_policy web "$port" "handshake-timeout = 1s"
inbound_policy() {
    local name=$1 port=$2 line
    shift 2
    {
        echo "log = ${POLICY_LOG:-file:$WORK/$name.tlsshim.log}"
        [ -z "${POLICY_LEVEL-info}" ] || echo "log-level = ${POLICY_LEVEL-info}"
        echo
        echo "[${POLICY_RULE:-$name}]"
        echo "listen = ${INBOUND_LISTEN:-127.0.0.1:$port}"
        echo "cert = $CERTS/server.pem"
        echo "key = $CERTS/server-key.pem"
        for line; do echo "$line"; done
    } | write_policy "$WORK/$name.policy"
}

# listening_in PORT PID: true if a socket listening on TCP port PORT (any
# address) is open in process PID or one of its children.  Reads /proc only:
# no connection is made (a probe would be a plaintext client to the daemon).
listening_in() {
    "$PYTHON" - "$1" "$2" <<'PYEOF'
import os, sys
port, root = int(sys.argv[1]), sys.argv[2]
inodes = set()
for name in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        rows = open(name).read().splitlines()[1:]
    except OSError:
        continue
    for row in rows:
        f = row.split()
        if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
            inodes.add("socket:[%s]" % f[9])
pids = [root]
for p in os.listdir("/proc"):
    try:
        if p.isdigit() and open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()[1] == root:
            pids.append(p)
    except OSError:
        pass
for p in pids:
    try:
        for fd in os.listdir("/proc/%s/fd" % p):
            try:
                if os.readlink("/proc/%s/fd/%s" % (p, fd)) in inodes:
                    sys.exit(0)
            except OSError:
                pass
    except OSError:
        pass
sys.exit(1)
PYEOF
}

# _inbound_subst TEXT: TEXT with @PORT@ and @PORT2@ replaced.
_inbound_subst() {
    local s=${1//@PORT@/$_in_p1}
    printf '%s' "${s//@PORT2@/$_in_p2}"
}

# start_inbound NAME [POLICY-LINE...] -- CMD ARGS...
#   Run CMD ARGS under tlsshim -p $WORK/NAME.policy in the background (stdin
#   /dev/null, stdout+stderr to $WORK/NAME.out), on fresh ports: each @PORT@
#   and @PORT2@ in the policy lines, in ARGS and in the file INBOUND_TEMPLATE
#   (if set: a file NAME.in, written out as NAME without .in) becomes a free
#   port.  The policy is inbound_policy NAME @PORT@ POLICY-LINE...  Ready when
#   the process (or a child) has a socket listening on each port used.  A
#   port taken meanwhile ("in use" in the output) is retried with new ports.
#   Sets ${NAME}_port ${NAME}_port2 ${NAME}_pid ${NAME}_out, ${NAME}_tlog
#   (the tlsshim log).
#   start_inbound web -- "$PYTHON" -m http.server @PORT@ --bind 127.0.0.1
start_inbound() {
    local name=$1
    shift
    _valid_name "$name"
    local -a lines=() args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do lines+=("$1"); shift; done
    [ $# -gt 0 ] || bail_out "start_inbound $name: no -- before the command"
    shift
    local out="$WORK/$name.out" a pid try two=0 l
    for a in "${lines[@]}" "$@"; do [[ $a == *@PORT2@* ]] && two=1; done
    [ -z "${INBOUND_TEMPLATE:-}" ] || ! grep -q @PORT2@ "$INBOUND_TEMPLATE" || two=1
    for try in 1 2 3 4 5 6 7 8 9 10; do
        _in_p1=$(free_port)
        _in_p2=$(free_port)
        [ "$_in_p1" != "$_in_p2" ] || continue
        local -a sl=()
        for l in "${lines[@]}"; do sl+=("$(_inbound_subst "$l")"); done
        inbound_policy "$name" "$_in_p1" "${sl[@]}"
        args=()
        for a; do args+=("$(_inbound_subst "$a")"); done
        if [ -n "${INBOUND_TEMPLATE:-}" ]; then
            _inbound_subst "$(cat "$INBOUND_TEMPLATE")" >"${INBOUND_TEMPLATE%.in}"
        fi
        : >"$out"
        "$TLSSHIM" -p "$WORK/$name.policy" "${args[@]}" </dev/null >>"$out" 2>&1 &
        pid=$!
        local deadline=$((SECONDS + SERVER_START_TIMEOUT))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            if listening_in "$_in_p1" "$pid" &&
                { [ $two = 0 ] || listening_in "$_in_p2" "$pid"; }; then
                _remember "$name" "$pid"
                printf -v "${name}_port" '%s' "$_in_p1"
                printf -v "${name}_port2" '%s' "$_in_p2"
                printf -v "${name}_out" '%s' "$out"
                printf -v "${name}_tlog" '%s' "$WORK/$name.tlsshim.log"
                return 0
            fi
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        if ! grep -Eq 'in use|EADDRINUSE' "$out"; then
            diag "$name ($*) did not start (try $try):" "$(cat "$out")"
            bail_out "could not start $name under tlsshim"
        fi
    done
    bail_out "$name: no free port after 10 attempts"
}

# client_addr: print the source address inbound clients connect from:
# 127.0.0.2 where the loopback takes it (Linux: all of 127/8), so that the
# daemon's log shows an address no proxy on 127.0.0.1 could have given it;
# 127.0.0.1 otherwise.
client_addr() {
    if "$PYTHON" -c 'import socket; socket.socket().bind(("127.0.0.2", 0))' 2>/dev/null; then
        echo 127.0.0.2
    else
        echo 127.0.0.1
    fi
}

# https_get TAG URL [CURL-ARGS...]: curl -v verifying with $CERTS/ca.pem,
# from $SRC (client_addr) if set; body in $WORK/TAG.body, curl's trace in
# $WORK/TAG.trace, curl's own address (ADDR:PORT) in $WORK/TAG.local.
# Returns curl's status.
https_get() {
    local tag=$1 url=$2
    shift 2
    "${CURL[@]}" -v --cacert "$CERTS/ca.pem" ${SRC:+--interface "$SRC"} \
        -w '%{local_ip}:%{local_port}\n' -o "$WORK/$tag.body" "$@" "$url" \
        >"$WORK/$tag.local" 2>"$WORK/$tag.trace"
}

# saw_tls13 TRACE: a curl -v trace (https_get) or an openssl s_client -brief
# output shows TLS 1.3 and a verified certificate.
saw_tls13() {
    grep -Eq 'SSL connection using TLSv1\.3|Protocol version: TLSv1\.3' "$1" &&
        grep -Eq 'SSL certificate verify ok|^Verification: OK' "$1"
}
