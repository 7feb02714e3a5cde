# inband_lib_ldap.sh -- real servers for the in-band tests of slapd (protocol
# = ldap) and tinyproxy (proxy = http://...), sourced after lib.sh by
# inband_ldap.sh and inband_proxy.sh.
#
#   start_slapd NAME [notls]       slapd (OpenLDAP) on 127.0.0.1, its own
#                                  cn=config and mdb database under
#                                  $WORK/NAME.slapd, dc=example,dc=test with
#                                  ou=people and uid=alice; rootdn
#                                  $SLAPD_ROOTDN / $SLAPD_ROOTPW.  Default:
#                                  TLS 1.3 only ($CERTS/server.pem) and
#                                  olcSecurity tls=1 (every operation but
#                                  StartTLS needs TLS).  notls: no TLS at all
#                                  (StartTLS is answered "unsupported") and
#                                  no security requirement, so a plaintext
#                                  search would succeed and show in the log.
#                                  Log level stats, to $WORK/NAME.log.
#   slapd_conn LOG REGEX           the conn number of the first line of LOG
#                                  matching REGEX ("" if none)
#   slapd_lines LOG CONN           the lines of LOG about connection CONN
#   start_tinyproxy NAME [LINE...] tinyproxy on 127.0.0.1 with its own config
#                                  ($WORK/NAME.conf: log to $WORK/NAME.log at
#                                  LogLevel Info, which shows every CONNECT
#                                  and every refusal), plus each LINE as
#                                  given ("ConnectPort N": CONNECT to other
#                                  ports is answered 403; "BasicAuth u p").
# Both set ${NAME}_port ${NAME}_pid ${NAME}_log, and are stopped at exit.
# LDAP clients: run them with "${LDAP_ENV[@]}": LDAPNOINIT=1 turns off
# ldap.conf, ~/.ldaprc and every LDAPTLS_* default, so the client never asks
# for StartTLS itself and speaks LDAP in clear.
# Debian packages: slapd, ldap-utils, tinyproxy.

SLAPD=${SLAPD:-/usr/sbin/slapd}
SLAPADD=${SLAPADD:-/usr/sbin/slapadd}
TINYPROXY=${TINYPROXY:-/usr/bin/tinyproxy}
SLAPD_SUFFIX=dc=example,dc=test
SLAPD_ROOTDN=cn=admin,$SLAPD_SUFFIX
SLAPD_ROOTPW=s3cret-$$
# shellcheck disable=SC2034   # used by the scripts that source this file
LDAP_ENV=(env LDAPNOINIT=1)

# _slapd_config DIR TLS: print the cn=config LDIF of a server in DIR;
# TLS 1: TLS 1.3 with $CERTS/server.pem and olcSecurity tls=1.
_slapd_config() {
    local dir=$1 tls=$2
    cat <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $dir/slapd.pid
olcLogLevel: stats
EOF
    if [ "$tls" = 1 ]; then
        cat <<EOF
olcTLSCertificateFile: $CERTS/server.pem
olcTLSCertificateKeyFile: $CERTS/server-key.pem
olcTLSCACertificateFile: $CERTS/ca.pem
olcTLSProtocolMin: 3.4
olcSecurity: tls=1
EOF
    fi
    cat <<EOF

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: $SLAPD_SUFFIX
olcRootDN: $SLAPD_ROOTDN
olcRootPW: $SLAPD_ROOTPW
olcDbDirectory: $dir/db
olcDbMaxSize: 10485760
olcAccess: {0}to * by * read
EOF
}

# _slapd_data: print the entries of the test directory (LDIF).
_slapd_data() {
    cat <<EOF
dn: $SLAPD_SUFFIX
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,$SLAPD_SUFFIX
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,$SLAPD_SUFFIX
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
sn: Liddell
mail: alice@example.test
EOF
}

# start_slapd NAME [notls]: see the top of this file.  A port taken
# meanwhile (slapd logs errno=98) is retried with another.
start_slapd() {
    local name=$1 tls=1 dir port pid try
    [ "${2:-}" = notls ] && tls=0
    _valid_name "$name"
    dir=$WORK/$name.slapd
    mkdir -p "$dir/conf" "$dir/db" || bail_out "mkdir $dir failed"
    _slapd_config "$dir" "$tls" >"$dir/config.ldif"
    _slapd_data >"$dir/data.ldif"
    if ! "$SLAPADD" -n0 -F "$dir/conf" -l "$dir/config.ldif" >"$dir/slapadd.out" 2>&1 ||
        ! "$SLAPADD" -n1 -F "$dir/conf" -l "$dir/data.ldif" >>"$dir/slapadd.out" 2>&1; then
        diag "$(cat "$dir/slapadd.out")"
        bail_out "slapadd for $name failed"
    fi
    for try in 1 2 3 4 5 6 7 8 9 10; do
        port=$(free_port)
        : >"$WORK/$name.log"
        "$SLAPD" -F "$dir/conf" -h "ldap://127.0.0.1:$port/" -d stats \
            </dev/null >>"$WORK/$name.log" 2>&1 &
        pid=$!
        if wait_until "$SERVER_START_TIMEOUT" _up_or_dead "$port" "$pid" && kill -0 "$pid" 2>/dev/null; then
            _server_up "$name" "$pid" "$port" "$WORK/$name.log"
            return 0
        fi
        _server_retry "$name" "$pid" slapd 'errno=98' "$WORK/$name.log"
    done
    bail_out "slapd $name: no free port after 10 attempts"
}

# _up_or_dead PORT PID: PID listens on PORT, or PID is dead (which ends
# the wait at once: the caller checks that it is alive).
_up_or_dead() {
    kill -0 "$2" 2>/dev/null || return 0
    listening_in "$1" "$2"
}

# slapd_conn LOG REGEX: print N of the "conn=N" of LOG's first line that
# matches REGEX (extended), nothing if none.
slapd_conn() {
    grep -E -- "$2" "$1" 2>/dev/null | sed -n 's/.* conn=\([0-9][0-9]*\) .*/\1/p' | head -n 1
}

# slapd_lines LOG CONN: LOG's lines about connection CONN, in order.
slapd_lines() {
    [ -n "$2" ] || return 0
    grep -E -- " conn=$2 " "$1" 2>/dev/null
}

# start_tinyproxy NAME [LINE...]: see the top of this file.
start_tinyproxy() {
    local name=$1 conf port pid try line
    shift
    _valid_name "$name"
    conf=$WORK/$name.conf
    for try in 1 2 3 4 5 6 7 8 9 10; do
        port=$(free_port)
        {
            echo "Port $port"
            echo "Listen 127.0.0.1"
            echo "Timeout 30"
            echo "MaxClients 20"
            echo "LogFile \"$WORK/$name.log\""
            echo "LogLevel Info"
            echo "PidFile \"$WORK/$name.pid\""
            for line; do echo "$line"; done
        } >"$conf"
        : >"$WORK/$name.log"
        "$TINYPROXY" -d -c "$conf" </dev/null >>"$WORK/$name.stderr" 2>&1 &
        pid=$!
        if wait_until "$SERVER_START_TIMEOUT" _up_or_dead "$port" "$pid" && kill -0 "$pid" 2>/dev/null; then
            _server_up "$name" "$pid" "$port" "$WORK/$name.log"
            return 0
        fi
        _server_retry "$name" "$pid" tinyproxy '[Ii][Nn] [Uu][Ss][Ee]' "$WORK/$name.log" "$WORK/$name.stderr"
    done
    bail_out "tinyproxy $name: no free port after 10 attempts"
}
