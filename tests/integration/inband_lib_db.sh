# inband_lib_db.sh -- real database servers for the protocol = postgres and
# protocol = mysql tests (bash; source it after lib.sh).
#
#   start_pg NAME [nossl]     PostgreSQL 15: initdb + postgres on a free port
#                             of 127.0.0.1, TLS 1.3 only, pg_hba "hostssl"
#                             only (trust), log_connections on.  nossl:
#                             ssl = off (the server does not do TLS).
#                             Sets ${NAME}_port ${NAME}_pid ${NAME}_log
#                             (the server's log) ${NAME}_dir.
#   pg_tls NAME ARGS...       psql with its OWN TLS (sslmode=verify-full,
#                             ca.pem) to NAME's server: the test's setup and
#                             second-opinion client, never under tlsshim.
#   start_mariadb NAME [nossl] mariadbd: install-db + mariadbd on a free
#                             port of 127.0.0.1, require_secure_transport,
#                             TLS 1.3 only, general log on.  nossl:
#                             --skip-ssl, no secure transport required.
#                             Sets ${NAME}_port ${NAME}_pid ${NAME}_log
#                             (error log) ${NAME}_general ${NAME}_sock.
#   my_admin NAME ARGS...     mariadb as root over NAME's unix socket.
#   start_refuser NAME MODE   clients/inband_refuser.py: a plain listener
#                             that turns TLS down (pg: "N"; mysql: a greeting
#                             without CLIENT_SSL) and logs every byte.
#
# Servers run as their own system user (postgres, mysql) when the test runs
# as root, as the test's user otherwise.  Everything lives under $WORK; the
# server users need to traverse it (mode 711: no listing).
# Debian packages: postgresql-15 (postgresql), mariadb-server, mariadb-client.

: "${PG_BIN:=/usr/lib/postgresql/15/bin}"
: "${MARIADBD:=$(command -v mariadbd || echo /usr/sbin/mariadbd)}"

# _db_user USER: the user a server runs as (USER as root, else ourselves).
_db_user() {
    if [ "$(id -u)" = 0 ]; then echo "$1"; else id -un; fi
}

# _db_as USER CMD ARGS...: exec CMD as USER (root only; else as we are).
# setpriv execs, so $! of a background _db_as is the server's own pid.
_db_as() {
    local u=$1
    shift
    if [ "$(id -u)" = 0 ]; then
        exec setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"
    fi
    exec "$@"
}

# _db_dir NAME USER: a fresh directory $WORK/NAME.db owned by USER with a
# private copy of the server certificate and key (mode 600: both servers
# refuse a key others can read).  Sets _dbdir to its path.
_db_dir() {
    local dir="$WORK/$1.db" u
    u=$(_db_user "$2")
    chmod 711 "$WORK"
    rm -rf "$dir"
    mkdir -p "$dir" || bail_out "mkdir $dir failed"
    cp "$CERTS/server.pem" "$dir/server.pem" && cp "$CERTS/server-key.pem" "$dir/server-key.pem" &&
        cp "$CERTS/ca.pem" "$dir/ca.pem" || bail_out "copying the certificates failed"
    chmod 600 "$dir/server-key.pem"
    [ "$(id -u)" != 0 ] || chown -R "$u:" "$dir" || bail_out "chown $dir to $u failed"
    _dbdir=$dir
}

# What postgres and mariadbd log when their port was taken.
_DB_PORT_TAKEN='already in use|Address in use|errno: 98|error: 98'

# _db_wait PID LOG READY-RE: wait until LOG matches READY-RE (0), PID exits
# (1: 2 if LOG says the port was taken) or the start timeout passes (1).
_db_wait() {
    local pid=$1 log=$2 re=$3 deadline=$((SECONDS + ${DB_START_TIMEOUT:-30}))
    while :; do
        grep -Eq -- "$re" "$log" 2>/dev/null && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null
            grep -Eq -- "$_DB_PORT_TAKEN" "$log" && return 2
            return 1
        fi
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.05
    done
}

# ---- PostgreSQL ---------------------------------------------------------------------

# start_pg NAME [nossl]: see the top of this file.
start_pg() {
    local name=$1 ssl=on dir u port pid log="$WORK/$1.log" st try
    [ "${2:-}" != nossl ] || ssl=off
    _valid_name "$name"
    [ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL not found in $PG_BIN"
    u=$(_db_user postgres)
    _db_dir "$name" postgres
    dir=$_dbdir
    (_db_as "$u" "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync \
        --no-instructions -E UTF8 --locale=C) >"$WORK/$name.initdb" 2>&1 ||
        { diag "$(cat "$WORK/$name.initdb")"; bail_out "initdb $name failed"; }
    # The only way in: TCP from 127.0.0.1 over TLS.  No local line, no
    # plain host line.
    echo "hostssl all all 127.0.0.1/32 trust" >"$dir/data/pg_hba.conf"
    for try in 1 2 3 4 5; do
        port=$(free_port)
        : >"$log"
        (_db_as "$u" "$PG_BIN/postgres" -D "$dir/data" -k "$dir" -h 127.0.0.1 -p "$port" \
            -c ssl="$ssl" -c ssl_cert_file="$dir/server.pem" -c ssl_key_file="$dir/server-key.pem" \
            -c ssl_min_protocol_version=TLSv1.3 \
            -c log_connections=on -c logging_collector=off -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB \
            -c max_connections=20 -c log_line_prefix='%m [%p] ' -c log_min_messages=info) \
            </dev/null >>"$log" 2>&1 &
        pid=$!
        _db_wait "$pid" "$log" 'database system is ready to accept connections'
        st=$?
        if [ $st = 0 ]; then
            _server_up "$name" "$pid" "$port" "$log"
            printf -v "${name}_dir" '%s' "$dir"
            return 0
        fi
        _server_retry "$name" "$pid" postgres "$_DB_PORT_TAKEN" "$log"
    done
    bail_out "postgres $name: no free port after 5 attempts"
}

# pg_tls NAME ARGS...: psql over its own TLS (verify-full against ca.pem)
# as postgres to NAME's server; quiet, unaligned, tuples only.
pg_tls() {
    local name=$1 pv="$1_port"
    shift
    timeout 20 "$PG_BIN/psql" -X -q -A -t \
        "host=localhost hostaddr=127.0.0.1 port=${!pv} user=postgres dbname=postgres sslmode=verify-full sslrootcert=$CERTS/ca.pem" \
        "$@"
}

# ---- MariaDB ------------------------------------------------------------------------

# start_mariadb NAME [nossl]: see the top of this file.
start_mariadb() {
    local name=$1 nossl=${2:-} dir u port pid log st try
    local -a tls
    _valid_name "$name"
    [ -x "$MARIADBD" ] || skip_all "mariadbd not found"
    need_cmd mariadb-install-db mariadb
    u=$(_db_user mysql)
    _db_dir "$name" mysql
    dir=$_dbdir
    log=$dir/error.log          # mariadbd opens it after dropping to mysql
    # A small redo log: the default is 96 MB per server.
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$u" \
        --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
        --innodb-log-file-size=8M >"$WORK/$name.install" 2>&1 ||
        { diag "$(cat "$WORK/$name.install")"; bail_out "mariadb-install-db $name failed"; }
    if [ "$nossl" = nossl ]; then
        tls=(--skip-ssl)
    else
        tls=(--require-secure-transport=ON --ssl-cert="$dir/server.pem"
            --ssl-key="$dir/server-key.pem" --ssl-ca="$dir/ca.pem" --tls-version=TLSv1.3)
    fi
    for try in 1 2 3 4 5; do
        port=$(free_port)
        rm -f "$log"
        "$MARIADBD" --no-defaults --datadir="$dir/data" --user="$u" --port="$port" \
            --bind-address=127.0.0.1 --socket="$dir/sock" --pid-file="$dir/pid" \
            --log-error="$log" --general-log=1 --general-log-file="$dir/general.log" \
            --skip-name-resolve --skip-log-bin --innodb-log-file-size=8M \
            --innodb-buffer-pool-size=32M --log-warnings=4 \
            "${tls[@]}" </dev/null >>"$WORK/$name.stderr" 2>&1 &
        pid=$!
        _db_wait "$pid" "$log" 'ready for connections'
        st=$?
        if [ $st = 0 ]; then
            _server_up "$name" "$pid" "$port" "$log"
            printf -v "${name}_general" '%s' "$dir/general.log"
            printf -v "${name}_sock" '%s' "$dir/sock"
            return 0
        fi
        _server_retry "$name" "$pid" mariadbd "$_DB_PORT_TAKEN" "$log" "$WORK/$name.stderr"
    done
    bail_out "mariadbd $name: no free port after 5 attempts"
}

# my_admin NAME ARGS...: mariadb as root over NAME's unix socket (batch).
my_admin() {
    local sv="$1_sock"
    shift
    timeout 20 mariadb --no-defaults -u root -S "${!sv}" -N -B "$@"
}

# ---- the refusing listener ------------------------------------------------------------

# start_refuser NAME pg|mysql: clients/inband_refuser.py through start_server
# (${NAME}_port ${NAME}_pid ${NAME}_log; one "conn ..." line per connection).
start_refuser() {
    start_server "$1" "$PYTHON" "$CLIENTS/inband_refuser.py" "$2" "$WORK/$1.port" "$WORK/$1.log"
}
