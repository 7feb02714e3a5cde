# shellcheck shell=bash
# inband_lib_mail.sh -- real mail servers for the in-band TLS tests
# (protocol = smtp, imap, pop3): exim4 and dovecot started by the test, on
# free loopback ports, everything under $WORK.  Source it after lib.sh.
#
#   start_exim NAME [noadvertise]
#       exim4 -bdf with a private config ($WORK/NAME.exim/exim.conf):
#       STARTTLS offered (tls_advertise_hosts = *, tests/certs), a MAIL
#       command refused with "STARTTLS required" unless the session is
#       encrypted; every message delivered to one mbox file.  noadvertise:
#       tls_advertise_hosts empty (STARTTLS never offered).
#       Sets ${NAME}_port ${NAME}_pid ${NAME}_log (exim's mainlog)
#       ${NAME}_mbox (the delivery file).
#   start_dovecot NAME [ssl-no]
#       dovecot -F with a private config: imap and pop3 on free ports of
#       127.0.0.2 (see below), ssl = required, TLS 1.3 at least,
#       disable_plaintext_auth, user $MAIL_USER / $MAIL_PASS (passwd-file)
#       whose maildir holds one message ($MAIL_BODY in its body).  ssl-no:
#       ssl = no (STARTTLS/STLS answered with an error).
#       Sets ${NAME}_imap_port ${NAME}_pop3_port ${NAME}_pid ${NAME}_log.
#
# Both need root (exim4 -C keeps root only for root; dovecot's master
# starts its login and mail processes as other users): need_mail_root.
# Delivery and mail access run as nobody (exim and dovecot both refuse
# uid 0), so $WORK gets mode 711 (search, no listing).
#
# Dovecot calls a connection whose remote and local addresses are the same
# "secured" and then allows a plaintext LOGIN; it listens on 127.0.0.2 so
# that a client (source 127.0.0.1 on Linux's loopback) is not.  The
# certificate names localhost and 127.0.0.1: rules verify "localhost".
# Debian packages: exim4-daemon-light, dovecot-imapd, dovecot-pop3d, swaks, curl.

EXIM=${EXIM:-/usr/sbin/exim4}
DOVECOT=${DOVECOT:-/usr/sbin/dovecot}
MAIL_USER=user1
MAIL_PASS=pw-$$-secret
MAIL_BODY="stored message body $$"
MAIL_ADDR=127.0.0.2

# need_mail_root: skip the script unless it runs as root (the servers
# need it) and nobody can search $WORK once it is 711.
need_mail_root() {
    [ "$(id -u)" = 0 ] || skip_all "exim4 -C and dovecot need root"
    command -v setpriv >/dev/null 2>&1 || skip_all "setpriv not found"
    chmod 711 "$WORK" || bail_out "chmod 711 $WORK"
    setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$WORK" ||
        skip_all "nobody cannot reach $WORK (a private parent directory)"
}

# _mail_nobody_dir DIR: DIR, owned by nobody (delivery and mail access).
_mail_nobody_dir() {
    if ! mkdir -p "$1" || ! chown 65534:65534 "$1"; then
        bail_out "cannot make $1 for nobody"
    fi
}

# _exim_conf DIR PORT ADVERTISE: exim's configuration on stdout.
_exim_conf() {
    cat <<EOF
primary_hostname = mx.test
keep_environment =
spool_directory = $1/spool
log_file_path = $1/%slog
log_selector = +tls_cipher +tls_peerdn +smtp_connection +received_recipients +smtp_protocol_error +smtp_syntax_error
pid_file_path = $1/exim.pid
exim_user = root
exim_group = root
daemon_smtp_ports = $2
local_interfaces = 127.0.0.1
host_lookup =
rfc1413_hosts =
tls_advertise_hosts = $3
tls_certificate = $CERTS/server.pem
tls_privatekey = $CERTS/server-key.pem
acl_smtp_mail = acl_mail
acl_smtp_rcpt = acl_rcpt

begin acl
acl_mail:
  deny message = STARTTLS required
       !encrypted = *
  accept
acl_rcpt:
  accept

begin routers
all:
  driver = accept
  transport = to_mbox

begin transports
to_mbox:
  driver = appendfile
  file = $1/mail/mbox
  user = nobody
  group = nogroup
  mode = 0600

begin retry
*   *   F,1m,1m
EOF
}

# start_exim NAME [noadvertise]: see the top of the file.
start_exim() {
    local name=$1 adv='*' port pid dir="$WORK/$1.exim"
    _valid_name "$name"
    [ "${2:-}" = noadvertise ] && adv=''
    [ -x "$EXIM" ] || bail_out "exim4 not found at '$EXIM'"
    mkdir -p "$dir/spool" || bail_out "mkdir $dir"
    _mail_nobody_dir "$dir/mail"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        port=$(free_port)
        _exim_conf "$dir" "$port" "$adv" >"$dir/exim.conf"
        rm -f "$dir/mainlog" "$dir/paniclog"
        "$EXIM" -C "$dir/exim.conf" -bdf -oX "$port" -oP "$dir/exim.pid" \
            </dev/null >>"$WORK/$name.stderr" 2>&1 &
        pid=$!
        if wait_until "$SERVER_START_TIMEOUT" _exim_up "$dir" "$pid"; then
            _server_up "$name" "$pid" "$port" "$dir/mainlog"
            printf -v "${name}_mbox" '%s' "$dir/mail/mbox"
            return 0
        fi
        _server_retry "$name" "$pid" exim 'in use' "$dir/paniclog" "$dir/mainlog" "$WORK/$name.stderr"
    done
    bail_out "exim $name: no free port after 10 attempts"
}

# _exim_up DIR PID: exim (still running) logged that it listens.
_exim_up() {
    kill -0 "$2" 2>/dev/null || return 0   # exited: the caller sees it
    grep -qs 'daemon started' "$1/mainlog"
}

# _dovecot_conf DIR IMAP-PORT POP3-PORT SSL: dovecot's configuration.
_dovecot_conf() {
    cat <<EOF
protocols = imap pop3
base_dir = $1/run
state_dir = $1/state
instance_name = tlsshim-$$-$(basename "$1")
listen = $MAIL_ADDR
log_path = $1/dovecot.log
info_log_path = $1/dovecot.log
auth_verbose = yes
ssl = $4
ssl_cert = <$CERTS/server.pem
ssl_key = <$CERTS/server-key.pem
ssl_min_protocol = TLSv1.3
disable_plaintext_auth = yes
login_log_format_elements = user=<%u> method=%m rip=%r lip=%l mpid=%e %c %k
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:$1/mail/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN $1/passwd
}
userdb {
  driver = passwd-file
  args = $1/passwd
}
service imap-login {
  inet_listener imap {
    address = $MAIL_ADDR
    port = $2
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = $MAIL_ADDR
    port = $3
  }
  inet_listener pop3s {
    port = 0
  }
}
EOF
}

# _dovecot_maildir DIR: the user's passwd-file entry and one message.
_dovecot_maildir() {
    local md="$1/mail/Maildir"
    _mail_nobody_dir "$1/mail"
    mkdir -p "$md/cur" "$md/new" "$md/tmp" || bail_out "mkdir $md"
    printf 'From: a@example.test\r\nTo: %s@example.test\r\nSubject: in-band\r\n\r\n%s\r\n' \
        "$MAIL_USER" "$MAIL_BODY" >"$md/cur/1000000000.M1P1.tlsshim:2,S"
    chown -R 65534:65534 "$md"
    (umask 077 && echo "$MAIL_USER:{PLAIN}$MAIL_PASS:65534:65534::$1/mail::" >"$1/passwd")
    # the auth process runs as default_internal_user
    if ! chgrp dovecot "$1/passwd" || ! chmod 640 "$1/passwd"; then
        bail_out "chgrp dovecot $1/passwd"
    fi
}

# _free_port_on ADDR: like free_port, on ADDR.
_free_port_on() {
    "$PYTHON" -c 'import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 0))
print(s.getsockname()[1])' "$1"
}

# start_dovecot NAME [ssl-no]: see the top of the file.
start_dovecot() {
    local name=$1 ssl=required ip pp pid dir="$WORK/$1.dovecot"
    _valid_name "$name"
    [ "${2:-}" = ssl-no ] && ssl=no
    [ -x "$DOVECOT" ] || bail_out "dovecot not found at '$DOVECOT'"
    mkdir -p "$dir/run" "$dir/state" || bail_out "mkdir $dir"
    _dovecot_maildir "$dir"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        ip=$(_free_port_on "$MAIL_ADDR")
        pp=$(_free_port_on "$MAIL_ADDR")
        [ "$ip" != "$pp" ] || continue
        _dovecot_conf "$dir" "$ip" "$pp" "$ssl" >"$dir/dovecot.conf"
        : >"$dir/dovecot.log"
        "$DOVECOT" -c "$dir/dovecot.conf" -F </dev/null >>"$WORK/$name.stderr" 2>&1 &
        pid=$!
        if wait_until "$SERVER_START_TIMEOUT" _dovecot_up "$ip" "$pp" "$pid" &&
            kill -0 "$pid" 2>/dev/null; then
            _remember "$name" "$pid"
            printf -v "${name}_imap_port" '%s' "$ip"
            printf -v "${name}_pop3_port" '%s' "$pp"
            printf -v "${name}_log" '%s' "$dir/dovecot.log"
            return 0
        fi
        _server_retry "$name" "$pid" dovecot 'in use' "$dir/dovecot.log" "$WORK/$name.stderr"
    done
    bail_out "dovecot $name: no free ports after 10 attempts"
}

# _dovecot_up IMAP-PORT POP3-PORT PID: dovecot (PID or its children)
# listens on both ports, or it exited.
_dovecot_up() {
    kill -0 "$3" 2>/dev/null || return 0
    listening_in "$1" "$3" && listening_in "$2" "$3"
}
