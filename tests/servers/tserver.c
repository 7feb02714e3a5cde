/*
 * tserver -- a small, real GnuTLS server for the tlsshim integration tests.
 *
 * The tests judge tlsshim by what the SERVER saw: protocol version, SNI,
 * client certificate, session resumption, the application bytes received
 * and how the client ended the connection.  tserver records exactly that,
 * one log line per connection.
 *
 * Usage:
 *   tserver --cert F --key F [--port N] [--port-file F] [--log F] [--ipv6]
 *           [--client-ca F] [--request-client-cert | --require-client-cert]
 *           [--tls12-only] [--priority STRING] [--no-tickets]
 *           [--mode http|echo|banner|sink] [--alpn p1,p2] [--max-conns N]
 *           [--idle-timeout SECONDS] [--earlydata MAXBYTES]
 *           [--reject-early-after N] [--ocsp-response FILE.der [--ocsp-raw]]
 *           [--read-delay-ms N] [--read-gate FILE] [--record-size-limit N]
 *           [--rcvbuf BYTES]
 *
 * Log lines (appended to --log, or written to stdout without --log; each
 * line is emitted with a single write() on an O_APPEND descriptor so that
 * lines from concurrent children never interleave):
 *
 *   listening port=N
 *   conn pid=P peer=ADDR status=ok|handshake-failed|io-error
 *        version=TLS1.3|- cipher=AES-256-GCM|- group=X25519|- sni=NAME|- resumed=0|1
 *        client_cert=DN|- alpn=PROTO|- bytes_in=N bytes_out=N
 *        early_data=N key_updates=N status_request=0|1 ocsp_stapled=0|1
 *        client_random=HEX|-
 *        closed=notify|eof|reset|timeout|- sha256_in=HEX
 *        first_line=URLENCODED|- reason=URLENCODED|-
 *
 * (all on one line).  Free-text values (sni, client_cert, alpn, first_line,
 * reason) are percent-encoded so they never contain spaces.
 *   status    ok: handshake done and the exchange ended without a transport
 *             error (a plain EOF counts as ok; see closed); handshake-failed;
 *             io-error: a record-layer error after the handshake.
 *   group     the key-exchange group negotiated (GnuTLS name, e.g. X25519,
 *             SECP256R1); "-" if none (failed handshake, PSK-only resumption).
 *   early_data application bytes that came as 0-RTT (included in bytes_in).
 *   key_updates KeyUpdate messages received from the client.
 *   status_request 1 if the ClientHello asked for a stapled OCSP response.
 *   ocsp_stapled 1 if we sent one (--ocsp-response, and the client asked).
 *   client_random the ClientHello's random (64 hex digits; the key of an NSS
 *             key log line), "-" if the handshake failed.
 *   sni       captured from the ClientHello, so also known for failed
 *             handshakes ("-" if the client sent none, e.g. for an IP).
 *   bytes_in  APPLICATION bytes received (0 if the handshake failed);
 *             sha256_in is their SHA-256 (of the empty string if none).
 *   closed    how the client ended it: notify (close_notify received),
 *             eof (EOF without close_notify), reset (ECONNRESET/EPIPE),
 *             timeout (handshake or --idle-timeout), "-" otherwise.
 *   first_line the first line of application data received (any mode).
 *   reason    GnuTLS error text, "alert received: NAME" for a client alert,
 *             or "client certificate rejected: ..." (verification status).
 *
 * Modes (after the handshake):
 *   http    read a request head (and a Content-Length body, answering
 *           "Expect: 100-continue"); reply 200 with Connection: close and
 *           "hello from tserver\nsni=...\nresumed=0|1\n", or for /bytes/N an
 *           N-byte body with byte i = i % 251; then close_notify, and keep
 *           reading until the client closes (to log "closed").
 *   echo    send every record back until the client closes.
 *   banner  send "220 tserver ready\r\n" first, then echo.
 *   sink    count everything until the client closes; send nothing.
 * --read-delay-ms N: in sink and echo modes, sleep N ms before each read
 * (a slow reader: the client's data backs up in the kernel buffers).
 * --read-gate FILE: in sink and echo modes, read nothing until FILE exists
 * (a stalled reader the test releases: the client's writes block until then).
 * --rcvbuf BYTES: SO_RCVBUF of the listening socket (inherited by every
 * connection): with a slow reader, a client's writes meet a full socket
 * sooner.
 * --record-size-limit N: accept records of at most N bytes of plaintext
 * (gnutls_record_set_max_size; announced in the record_size_limit
 * extension, so the client sends records that small).
 * The handshake times out after 10 s, reads after --idle-timeout (60 s).
 * Client certificates are verified against --client-ca when given.
 * --ocsp-response FILE.der: staple that OCSP response.  GnuTLS checks it
 * when loading (it refuses e.g. a "revoked" one); with --ocsp-raw the file's
 * bytes are stapled as they are, unchecked (revoked, for another
 * certificate, garbage: what a broken or hostile server would send).
 * --max-conns N: stop accepting after N connections, wait for them, exit 0.
 * SIGTERM/SIGINT: exit at once; children die too (PR_SET_PDEATHSIG).
 *
 * Process model: the parent accept()s and forks one child per connection,
 * so concurrent clients are served; the session ticket key is generated
 * once in the parent, so a later connection can resume with a ticket
 * issued on an earlier one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HANDSHAKE_TIMEOUT_MS 10000
#define MAX_HTTP_HEADER (64 * 1024)
#define BANNER "220 tserver ready\r\n"

enum mode { MODE_HTTP, MODE_ECHO, MODE_BANNER, MODE_SINK };

/* ---- configuration (set once from the command line) ---------------------- */
static const char *opt_cert, *opt_key, *opt_port_file, *opt_log, *opt_client_ca;
static const char *opt_priority;
static const char *opt_alpn;
static int opt_port = 0;
static int opt_ipv6 = 0;
static unsigned opt_earlydata = 0;      /* max 0-RTT bytes accepted; 0 = off */
static long opt_reject_early_after = 0; /* connections after the Nth reject 0-RTT */
static const char *opt_ocsp_file;       /* a DER OCSP response to staple */
static int opt_ocsp_raw = 0;            /* staple it unchecked (its bytes as read) */
static gnutls_datum_t ocsp_raw;         /* --ocsp-raw: the file's contents */
static long conn_index;                 /* 1-based number of this connection */
static gnutls_anti_replay_t anti_replay;
static int opt_tls12 = 0;
static int opt_no_tickets = 0;
static unsigned opt_cert_req = GNUTLS_CERT_IGNORE;
static enum mode opt_mode = MODE_HTTP;
static long opt_max_conns = 0;          /* 0 = unlimited */
static int opt_idle_timeout = 60;       /* seconds, after the handshake */
static long opt_read_delay_ms = 0;      /* sink/echo: pause before each read */
static const char *opt_read_gate = NULL; /* sink/echo: no read until this file exists */
static long opt_record_size = 0;        /* record_size_limit to announce; 0 = default */
static int opt_rcvbuf = 0;              /* SO_RCVBUF of the listening socket; 0 = default */

/* ---- process-wide state ------------------------------------------------------ */
static int log_fd = STDOUT_FILENO;
static gnutls_certificate_credentials_t xcred;
static gnutls_priority_t prio;
static gnutls_datum_t ticket_key;
static gnutls_datum_t alpn_protos[16];
static unsigned alpn_count;
static volatile sig_atomic_t got_term;

/* ---- utilities ----------------------------------------------------------- */

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("tserver: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* A growable string used to build one log line. */
struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            die("out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof tmp)
        n = sizeof tmp - 1;
    buf_add(b, tmp, (size_t)n);
}

/* Append " key=value" with value percent-encoded ("-" if NULL or empty).
 * Characters kept as-is: alphanumerics and -._~/:=,@+ ; everything else
 * (including space, '%', control and non-ASCII bytes) becomes %XX. */
static void buf_field_enc(struct buf *b, const char *key, const char *val, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    buf_printf(b, " %s=", key);
    if (!val || n == 0) {
        buf_add(b, "-", 1);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)val[i];
        if (c != 0 && (isalnum(c) || strchr("-._~/:=,@+", c))) {
            char ch = (char)c;
            buf_add(b, &ch, 1);
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            buf_add(b, e, 3);
        }
    }
}

static void buf_field_str(struct buf *b, const char *key, const char *val)
{
    buf_field_enc(b, key, val, val ? strlen(val) : 0);
}

/* Write a complete line with one write() (O_APPEND makes it atomic). */
static void log_line(struct buf *b)
{
    buf_add(b, "\n", 1);
    ssize_t w;
    do {
        w = write(log_fd, b->p, b->len);
    } while (w < 0 && errno == EINTR);
}

/* ---- per-connection state (lives in the forked child) -------------------- */
struct conn {
    gnutls_session_t s;
    int fd;
    char peer[INET6_ADDRSTRLEN + 8];
    const char *status;          /* ok, handshake-failed, io-error */
    const char *closed;          /* notify, eof, reset, timeout, or NULL */
    char reason[256];
    unsigned long long bytes_in, bytes_out;
    char first_line[512];
    size_t first_line_len;
    int first_line_done;
    gnutls_hash_hd_t sha;        /* SHA-256 of all application bytes received */
    int handshake_ok;
    unsigned long long early_bytes;  /* application bytes that came as 0-RTT */
    unsigned key_updates;        /* KeyUpdate messages received */
    int status_request;          /* the ClientHello asked for OCSP stapling */
    int ocsp_stapled;            /* we sent a stapled OCSP response */
    char *pushback;              /* early data, read by the application first */
    size_t pushback_len, pushback_off;
};

static struct conn C;            /* one connection per child process */

static int handshake_hook(gnutls_session_t s, unsigned htype, unsigned when,
                          unsigned incoming, const gnutls_datum_t *msg);
static void read_early_data(void);

/* Captured from the ClientHello, so it is known even if the handshake fails. */
static char sni_name[256];

static int post_client_hello(gnutls_session_t s)
{
    size_t len = sizeof sni_name - 1;
    unsigned type;
    if (gnutls_server_name_get(s, sni_name, &len, &type, 0) == 0 &&
        type == GNUTLS_NAME_DNS) {
        sni_name[len] = '\0';
    } else {
        sni_name[0] = '\0';
    }
    return 0;
}

/* Why our client-certificate verification rejected the peer, if it did. */
static char verify_reason[256];

/* Verify the client's certificate (installed only with --client-ca and
 * --request/--require-client-cert).  No certificate is acceptable here: with
 * --require-client-cert GnuTLS itself already refused that case, and with
 * --request-client-cert it is allowed.  A certificate that is sent must
 * chain to --client-ca. */
static int verify_client_cert(gnutls_session_t s)
{
    unsigned n = 0, status = 0;
    if (gnutls_certificate_get_peers(s, &n) == NULL || n == 0)
        return 0;
    int ret = gnutls_certificate_verify_peers2(s, &status);
    if (ret < 0) {
        snprintf(verify_reason, sizeof verify_reason,
                 "client certificate verification error: %s", gnutls_strerror(ret));
        return -1;
    }
    if (status != 0) {
        gnutls_datum_t txt = { NULL, 0 };
        gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt, 0);
        snprintf(verify_reason, sizeof verify_reason,
                 "client certificate rejected: %s", txt.data ? (char *)txt.data : "?");
        gnutls_free(txt.data);
        return -1;
    }
    return 0;
}

/* Record the text of a GnuTLS failure, naming a received alert if any. */
static void set_reason(int err)
{
    if (verify_reason[0] && err == GNUTLS_E_CERTIFICATE_ERROR) {
        snprintf(C.reason, sizeof C.reason, "%s", verify_reason);
    } else if (err == GNUTLS_E_FATAL_ALERT_RECEIVED || err == GNUTLS_E_WARNING_ALERT_RECEIVED) {
        const char *a = gnutls_alert_get_name(gnutls_alert_get(C.s));
        snprintf(C.reason, sizeof C.reason, "alert received: %s", a ? a : "unknown");
    } else {
        snprintf(C.reason, sizeof C.reason, "%s", gnutls_strerror(err));
    }
    /* no trailing blanks (GnuTLS' texts sometimes end with one) */
    for (size_t n = strlen(C.reason); n > 0 && isspace((unsigned char)C.reason[n - 1]); n--)
        C.reason[n - 1] = '\0';
}

/* Classify how the transport ended, from a GnuTLS error code (errno is still
 * the one left by the failed recv/send). */
static const char *classify_close(int err, int saved_errno)
{
    if (err == GNUTLS_E_PREMATURE_TERMINATION)
        return "eof";
    if (err == GNUTLS_E_TIMEDOUT)
        return "timeout";
    if ((err == GNUTLS_E_PULL_ERROR || err == GNUTLS_E_PUSH_ERROR) &&
        (saved_errno == ECONNRESET || saved_errno == EPIPE))
        return "reset";
    return NULL;
}

static void note_received(const char *data, size_t n)
{
    C.bytes_in += n;
    gnutls_hash(C.sha, data, n);
    /* first_line: the first line of application data, without CR/LF. */
    for (size_t i = 0; i < n && !C.first_line_done; i++) {
        if (data[i] == '\n' || C.first_line_len >= sizeof C.first_line - 1) {
            C.first_line_done = 1;
            break;
        }
        C.first_line[C.first_line_len++] = data[i];
    }
}

/* Receive application data.  Returns >0 bytes, 0 on close_notify, or <0 on
 * a failure/EOF (C.closed/C.status/C.reason are set accordingly). */
static ssize_t conn_recv(char *data, size_t size)
{
    if (C.pushback_off < C.pushback_len) {
        size_t n = C.pushback_len - C.pushback_off;
        if (n > size)
            n = size;
        memcpy(data, C.pushback + C.pushback_off, n);
        C.pushback_off += n;
        note_received(data, n);
        return (ssize_t)n;
    }
    for (;;) {
        errno = 0;
        ssize_t r = gnutls_record_recv(C.s, data, size);
        if (r > 0) {
            note_received(data, (size_t)r);
            return r;
        }
        if (r == 0) {
            C.closed = "notify";
            return 0;
        }
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r == GNUTLS_E_REHANDSHAKE || r == GNUTLS_E_WARNING_ALERT_RECEIVED)
            continue;   /* not fatal: keep reading */
        int e = errno;
        C.closed = classify_close((int)r, e);
        /* A plain EOF without close_notify is how many clients close; it is
         * reported in closed=eof, not as an I/O error. */
        if (r != GNUTLS_E_PREMATURE_TERMINATION) {
            C.status = "io-error";
            set_reason((int)r);
        }
        return -1;
    }
}

/* Send all of data; returns 0 or -1 (status/reason set). */
static int conn_send(const char *data, size_t n)
{
    while (n > 0) {
        errno = 0;
        ssize_t w = gnutls_record_send(C.s, data, n);
        if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)
            continue;
        if (w < 0) {
            int e = errno;
            C.status = "io-error";
            set_reason((int)w);
            if (!C.closed)
                C.closed = classify_close((int)w, e);
            return -1;
        }
        C.bytes_out += (size_t)w;
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read until the peer closes, counting everything (used by sink/echo tails
 * and after an HTTP response).  If echo is set, send every record back. */
static void read_until_close(int echo)
{
    char data[16384];
    while (opt_read_gate && access(opt_read_gate, F_OK) != 0) {
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
    for (;;) {
        if (opt_read_delay_ms > 0) {
            struct timespec ts = { opt_read_delay_ms / 1000, (opt_read_delay_ms % 1000) * 1000000L };
            nanosleep(&ts, NULL);
        }
        ssize_t r = conn_recv(data, sizeof data);
        if (r <= 0)
            return;
        if (echo && conn_send(data, (size_t)r) < 0)
            return;
    }
}

/* Case-insensitive search for a header, returning a pointer to its value. */
static const char *find_header(const char *hdrs, const char *name)
{
    size_t nl = strlen(name);
    const char *p = strstr(hdrs, "\r\n");   /* skip the request line */
    while (p && p[0] == '\r' && p[1] == '\n') {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ' || *p == '\t')
                p++;
            return p;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

static void serve_http(void)
{
    char *req = malloc(MAX_HTTP_HEADER + 1);
    size_t len = 0;
    char *end = NULL;
    if (!req)
        die("out of memory");

    /* Read the request head (up to the blank line). */
    while (!end) {
        if (len >= MAX_HTTP_HEADER) {
            snprintf(C.reason, sizeof C.reason, "request header too long");
            free(req);
            return;
        }
        ssize_t r = conn_recv(req + len, MAX_HTTP_HEADER - len);
        if (r <= 0) {
            if (!C.reason[0])
                snprintf(C.reason, sizeof C.reason, "client closed before end of request");
            free(req);
            return;
        }
        len += (size_t)r;
        req[len] = '\0';
        end = strstr(req, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - req) + 4;
    end[2] = '\0';   /* terminate the headers after the last "\r\n" */

    /* A request body announced with Content-Length is read before replying
     * (honouring "Expect: 100-continue"), so that it is counted in bytes_in
     * and sha256_in. */
    const char *cl = find_header(req, "Content-Length");
    unsigned long long body_len = cl ? strtoull(cl, NULL, 10) : 0;
    unsigned long long have = len - head_len;
    const char *expect = find_header(req, "Expect");
    if (body_len > have && expect && strncasecmp(expect, "100-continue", 12) == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (conn_send(cont, sizeof cont - 1) < 0) {
            free(req);
            return;
        }
    }
    while (have < body_len) {
        char tmp[16384];
        size_t want = body_len - have < sizeof tmp ? (size_t)(body_len - have) : sizeof tmp;
        ssize_t r = conn_recv(tmp, want);
        if (r <= 0) {
            if (!C.reason[0])
                snprintf(C.reason, sizeof C.reason, "client closed before end of body");
            free(req);
            return;
        }
        have += (size_t)r;
    }

    /* Request line: METHOD SP PATH SP VERSION */
    char path[1024] = "/";
    {
        const char *sp = strchr(req, ' ');
        if (sp) {
            size_t i = 0;
            sp++;
            while (sp[i] && sp[i] != ' ' && sp[i] != '\r' && i < sizeof path - 1) {
                path[i] = sp[i];
                i++;
            }
            path[i] = '\0';
        }
    }
    free(req);

    char head[512];
    if (strncmp(path, "/bytes/", 7) == 0) {
        /* A deterministic body of N bytes: byte i = i % 251. */
        char *endp;
        unsigned long long n = strtoull(path + 7, &endp, 10);
        if (*endp != '\0')
            n = 0;
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          "Content-Length: %llu\r\nConnection: close\r\n\r\n", n);
        if (conn_send(head, (size_t)hl) < 0)
            return;
        char chunk[16384];
        unsigned long long off = 0;
        while (off < n) {
            size_t k = n - off < sizeof chunk ? (size_t)(n - off) : sizeof chunk;
            for (size_t i = 0; i < k; i++)
                chunk[i] = (char)((off + i) % 251);
            if (conn_send(chunk, k) < 0)
                return;
            off += k;
        }
    } else {
        char body[512];
        int bl = snprintf(body, sizeof body, "hello from tserver\nsni=%s\nresumed=%d\n",
                          sni_name[0] ? sni_name : "-", gnutls_session_is_resumed(C.s) ? 1 : 0);
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                          "Content-Length: %d\r\nConnection: close\r\n\r\n", bl);
        if (conn_send(head, (size_t)hl) < 0 || conn_send(body, (size_t)bl) < 0)
            return;
    }

    /* Send close_notify, then keep reading until the client ends the
     * connection, so the log shows how it did (closed=...). */
    gnutls_bye(C.s, GNUTLS_SHUT_WR);
    read_until_close(0);
}

/* Handle one accepted connection; runs in the forked child. */
static void handle_conn(int fd, const struct sockaddr_storage *ss)
{
    memset(&C, 0, sizeof C);
    C.fd = fd;
    C.status = "ok";

    /* peer address as ADDR:PORT (IPv6 in brackets) */
    {
        char a[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss->ss_family == AF_INET) {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
            inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
            port = ntohs(s4->sin_port);
            snprintf(C.peer, sizeof C.peer, "%s:%d", a, port);
        } else if (ss->ss_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
            port = ntohs(s6->sin6_port);
            snprintf(C.peer, sizeof C.peer, "[%s]:%d", a, port);
        }
    }

    if (gnutls_hash_init(&C.sha, GNUTLS_DIG_SHA256) < 0)
        die("gnutls_hash_init failed");

    unsigned init_flags = GNUTLS_SERVER;
    int early_ok = opt_earlydata &&
                   !(opt_reject_early_after && conn_index > opt_reject_early_after);
    if (early_ok)
        init_flags |= GNUTLS_ENABLE_EARLY_DATA;
    int ret = gnutls_init(&C.s, init_flags);
    if (ret < 0)
        die("gnutls_init: %s", gnutls_strerror(ret));
    gnutls_priority_set(C.s, prio);
    if (opt_record_size && gnutls_record_set_max_size(C.s, (size_t)opt_record_size) < 0)
        die("gnutls_record_set_max_size %ld failed", opt_record_size);
    gnutls_credentials_set(C.s, GNUTLS_CRD_CERTIFICATE, xcred);
    gnutls_certificate_server_set_request(C.s, opt_cert_req);
    if (!opt_no_tickets)
        gnutls_session_ticket_enable_server(C.s, &ticket_key);
    if (alpn_count)
        gnutls_alpn_set_protocols(C.s, alpn_protos, alpn_count, GNUTLS_ALPN_SERVER_PRECEDENCE);
    gnutls_handshake_set_post_client_hello_function(C.s, post_client_hello);
    gnutls_handshake_set_hook_function(C.s, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_POST,
                                       handshake_hook);
    if (early_ok) {
        gnutls_record_set_max_early_data_size(C.s, opt_earlydata);
        gnutls_anti_replay_enable(C.s, anti_replay);
    }
    gnutls_transport_set_int(C.s, fd);
    gnutls_handshake_set_timeout(C.s, HANDSHAKE_TIMEOUT_MS);

    do {
        errno = 0;
        ret = gnutls_handshake(C.s);
    } while (ret < 0 && !gnutls_error_is_fatal(ret));

    if (ret < 0) {
        int e = errno;
        C.status = "handshake-failed";
        C.closed = classify_close(ret, e);
        set_reason(ret);
        /* Tell the client why, as a real server does (protocol_version,
         * certificate_required, ...): the client's log must name it. */
        gnutls_alert_send_appropriate(C.s, ret);
    } else {
        C.handshake_ok = 1;
        if (gnutls_session_get_flags(C.s) & GNUTLS_SFLAGS_EARLY_DATA)
            read_early_data();
        gnutls_record_set_timeout(C.s, (unsigned)opt_idle_timeout * 1000u);
        switch (opt_mode) {
        case MODE_HTTP:
            serve_http();
            break;
        case MODE_ECHO:
            read_until_close(1);
            break;
        case MODE_BANNER:
            if (conn_send(BANNER, sizeof BANNER - 1) == 0)
                read_until_close(1);
            break;
        case MODE_SINK:
            read_until_close(0);
            break;
        }
        /* Answer a client's close_notify with ours (HTTP mode sent it already). */
        if (opt_mode != MODE_HTTP && C.closed && strcmp(C.closed, "notify") == 0)
            gnutls_bye(C.s, GNUTLS_SHUT_WR);
    }

    /* ---- build and write the log line ---- */
    struct buf b = { 0 };
    buf_printf(&b, "conn pid=%ld", (long)getpid());
    buf_field_str(&b, "peer", C.peer);
    buf_printf(&b, " status=%s", C.status);
    if (C.handshake_ok) {
        const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(C.s));
        const char *c = gnutls_cipher_get_name(gnutls_cipher_get(C.s));
        /* the key-exchange group (NULL: none, e.g. a PSK-only resumption) */
        const char *g = gnutls_group_get_name(gnutls_group_get(C.s));
        buf_field_str(&b, "version", v);
        buf_field_str(&b, "cipher", c);
        buf_field_str(&b, "group", g);
    } else {
        buf_field_str(&b, "version", NULL);
        buf_field_str(&b, "cipher", NULL);
        buf_field_str(&b, "group", NULL);
    }
    buf_field_str(&b, "sni", sni_name);
    buf_printf(&b, " resumed=%d", C.handshake_ok && gnutls_session_is_resumed(C.s) ? 1 : 0);

    /* client certificate subject DN (RFC 4514 form) */
    {
        char *dn_str = NULL;
        unsigned n = 0;
        const gnutls_datum_t *certs = C.handshake_ok ? gnutls_certificate_get_peers(C.s, &n) : NULL;
        if (certs && n > 0) {
            gnutls_x509_crt_t crt;
            gnutls_datum_t dn = { NULL, 0 };
            if (gnutls_x509_crt_init(&crt) == 0) {
                if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
                    gnutls_x509_crt_get_dn2(crt, &dn) == 0) {
                    dn_str = strndup((const char *)dn.data, dn.size);
                    gnutls_free(dn.data);
                }
                gnutls_x509_crt_deinit(crt);
            }
        }
        buf_field_str(&b, "client_cert", dn_str);
        free(dn_str);
    }

    {
        gnutls_datum_t p = { NULL, 0 };
        if (C.handshake_ok && gnutls_alpn_get_selected_protocol(C.s, &p) == 0)
            buf_field_enc(&b, "alpn", (const char *)p.data, p.size);
        else
            buf_field_str(&b, "alpn", NULL);
    }

    buf_printf(&b, " bytes_in=%llu bytes_out=%llu", C.bytes_in, C.bytes_out);
    buf_printf(&b, " early_data=%llu key_updates=%u", C.early_bytes, C.key_updates);
    if (opt_ocsp_file && !opt_ocsp_raw)
        C.ocsp_stapled = C.handshake_ok && C.status_request; /* GnuTLS staples it then */
    buf_printf(&b, " status_request=%d ocsp_stapled=%d", C.status_request, C.ocsp_stapled);
    {
        gnutls_datum_t cr = { NULL, 0 }, sr = { NULL, 0 };
        char hex[2 * 32 + 1];
        if (C.handshake_ok) {
            gnutls_session_get_random(C.s, &cr, &sr);
        }
        if (cr.data && cr.size == 32) {
            for (unsigned i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", cr.data[i]);
            buf_printf(&b, " client_random=%s", hex);
        } else {
            buf_field_str(&b, "client_random", NULL);
        }
    }
    buf_field_str(&b, "closed", C.closed);

    {
        unsigned char d[32];
        char hex[65];
        gnutls_hash_deinit(C.sha, d);
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", d[i]);
        buf_printf(&b, " sha256_in=%s", hex);
    }

    buf_field_enc(&b, "first_line", C.first_line,
                  /* strip a trailing CR of a CRLF line */
                  C.first_line_len && C.first_line[C.first_line_len - 1] == '\r'
                      ? C.first_line_len - 1 : C.first_line_len);
    buf_field_str(&b, "reason", C.reason);
    log_line(&b);
    free(b.p);

    gnutls_deinit(C.s);
    close(fd);
}

/* ---- listening --------------------------------------------------------------- */

static int listen_on(int family, int port, int *out_port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (opt_rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opt_rcvbuf, sizeof opt_rcvbuf);

    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((unsigned short)port);
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)port);
        s6->sin6_addr = in6addr_loopback;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        sl = sizeof *s6;
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (listen(fd, 128) < 0)
        die("listen: %s", strerror(errno));
    sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *out_port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                        : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

/* Write the port atomically: to a temporary file, then rename. */
static void write_port_file(const char *path, int port)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        die("out of memory");
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        die("%s: %s", tmp, strerror(errno));
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        die("%s: %s", tmp, strerror(errno));
    if (rename(tmp, path) < 0)
        die("rename %s: %s", path, strerror(errno));
    free(tmp);
}

static void on_term(int sig)
{
    (void)sig;
    got_term = 1;
}

static void on_chld(int sig)
{
    (void)sig;   /* only interrupts poll(); reaping happens in the main loop */
}

/* ClientHello extension 5 (status_request): the client wants a staple. */
static int hello_ext(void *ctx, unsigned tls_id, const unsigned char *data, unsigned size)
{
    (void)ctx; (void)data; (void)size;
    if (tls_id == 5)
        C.status_request = 1;
    return 0;
}

/* Count the client's KeyUpdate messages; note its status_request. */
static int handshake_hook(gnutls_session_t s, unsigned htype, unsigned when,
                          unsigned incoming, const gnutls_datum_t *msg)
{
    (void)s; (void)when;
    if (htype == GNUTLS_HANDSHAKE_KEY_UPDATE && incoming)
        C.key_updates++;
    if (htype == GNUTLS_HANDSHAKE_CLIENT_HELLO && incoming && msg && msg->size > 4) {
        /* the message body; some versions hand over its 4-byte header too */
        if (gnutls_ext_raw_parse(NULL, hello_ext, msg, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO) < 0) {
            gnutls_datum_t body = { msg->data + 4, msg->size - 4 };
            C.status_request = 0;
            (void)gnutls_ext_raw_parse(NULL, hello_ext, &body, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO);
        }
    }
    return 0;
}

/* --ocsp-raw: hand GnuTLS the file's bytes, unchecked. */
static int ocsp_raw_cb(gnutls_session_t s, void *ptr, gnutls_datum_t *resp)
{
    (void)s; (void)ptr;
    resp->data = gnutls_malloc(ocsp_raw.size);
    if (!resp->data)
        return GNUTLS_E_MEMORY_ERROR;
    memcpy(resp->data, ocsp_raw.data, ocsp_raw.size);
    resp->size = ocsp_raw.size;
    C.ocsp_stapled = 1;
    return 0;
}

/* The 0-RTT data the server accepted: the start of the application stream. */
static void read_early_data(void)
{
    char buf[16384];
    for (;;) {
        ssize_t n = gnutls_record_recv_early_data(C.s, buf, sizeof buf);
        if (n <= 0)
            break;
        char *grown = realloc(C.pushback, C.pushback_len + (size_t)n);
        if (!grown)
            break;
        C.pushback = grown;
        memcpy(C.pushback + C.pushback_len, buf, (size_t)n);
        C.pushback_len += (size_t)n;
        C.early_bytes += (unsigned long long)n;
    }
}

/* Anti-replay database: this test server accepts every 0-RTT it is offered
 * (each ticket is used once by the client under test anyway). */
static int anti_replay_add(void *ptr, time_t exp, const gnutls_datum_t *key,
                           const gnutls_datum_t *data)
{
    (void)ptr; (void)exp; (void)key; (void)data;
    return 0;
}

static void reap(long *active)
{
    pid_t p;
    while ((p = waitpid(-1, NULL, WNOHANG)) > 0)
        (*active)--;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: tserver --cert F --key F [--port N] [--port-file F] [--log F] [--ipv6]\n"
            "               [--client-ca F] [--request-client-cert | --require-client-cert]\n"
            "               [--tls12-only] [--priority STRING] [--no-tickets]\n"
            "               [--mode http|echo|banner|sink] [--alpn p1,p2] [--max-conns N]\n"
            "               [--idle-timeout SECONDS] [--earlydata MAXBYTES]\n"
            "               [--reject-early-after N] [--ocsp-response FILE.der [--ocsp-raw]]\n"
            "               [--read-delay-ms N] [--read-gate FILE] [--record-size-limit N]\n"
            "               [--rcvbuf BYTES]\n");
    exit(2);
}

static long parse_num(const char *s, const char *what, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max)
        die("bad %s: %s", what, s);
    return v;
}

int main(int argc, char **argv)
{
    enum {
        O_CERT = 256, O_KEY, O_PORT, O_PORT_FILE, O_LOG, O_CLIENT_CA, O_REQUEST,
        O_REQUIRE, O_TLS12, O_MODE, O_ALPN, O_MAX, O_IPV6, O_PRIO, O_NOTICK, O_IDLE,
        O_EARLY, O_REJECT_EARLY, O_OCSP, O_OCSP_RAW, O_READ_DELAY, O_RECORD_SIZE, O_READ_GATE, O_RCVBUF
    };
    static const struct option opts[] = {
        { "cert", required_argument, NULL, O_CERT },
        { "key", required_argument, NULL, O_KEY },
        { "port", required_argument, NULL, O_PORT },
        { "port-file", required_argument, NULL, O_PORT_FILE },
        { "log", required_argument, NULL, O_LOG },
        { "client-ca", required_argument, NULL, O_CLIENT_CA },
        { "request-client-cert", no_argument, NULL, O_REQUEST },
        { "require-client-cert", no_argument, NULL, O_REQUIRE },
        { "tls12-only", no_argument, NULL, O_TLS12 },
        { "priority", required_argument, NULL, O_PRIO },
        { "no-tickets", no_argument, NULL, O_NOTICK },
        { "mode", required_argument, NULL, O_MODE },
        { "alpn", required_argument, NULL, O_ALPN },
        { "max-conns", required_argument, NULL, O_MAX },
        { "idle-timeout", required_argument, NULL, O_IDLE },
        { "ipv6", no_argument, NULL, O_IPV6 },
        { "earlydata", required_argument, NULL, O_EARLY },
        { "reject-early-after", required_argument, NULL, O_REJECT_EARLY },
        { "ocsp-response", required_argument, NULL, O_OCSP },
        { "ocsp-raw", no_argument, NULL, O_OCSP_RAW },
        { "read-delay-ms", required_argument, NULL, O_READ_DELAY },
        { "read-gate", required_argument, NULL, O_READ_GATE },
        { "record-size-limit", required_argument, NULL, O_RECORD_SIZE },
        { "rcvbuf", required_argument, NULL, O_RCVBUF },
        { NULL, 0, NULL, 0 }
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_CERT: opt_cert = optarg; break;
        case O_KEY: opt_key = optarg; break;
        case O_PORT: opt_port = (int)parse_num(optarg, "port", 0, 65535); break;
        case O_PORT_FILE: opt_port_file = optarg; break;
        case O_LOG: opt_log = optarg; break;
        case O_CLIENT_CA: opt_client_ca = optarg; break;
        case O_REQUEST: opt_cert_req = GNUTLS_CERT_REQUEST; break;
        case O_REQUIRE: opt_cert_req = GNUTLS_CERT_REQUIRE; break;
        case O_TLS12: opt_tls12 = 1; break;
        case O_PRIO: opt_priority = optarg; break;
        case O_NOTICK: opt_no_tickets = 1; break;
        case O_MODE:
            if (!strcmp(optarg, "http")) opt_mode = MODE_HTTP;
            else if (!strcmp(optarg, "echo")) opt_mode = MODE_ECHO;
            else if (!strcmp(optarg, "banner")) opt_mode = MODE_BANNER;
            else if (!strcmp(optarg, "sink")) opt_mode = MODE_SINK;
            else die("bad mode: %s", optarg);
            break;
        case O_ALPN: opt_alpn = optarg; break;
        case O_MAX: opt_max_conns = parse_num(optarg, "max-conns", 1, LONG_MAX); break;
        case O_IDLE: opt_idle_timeout = (int)parse_num(optarg, "idle-timeout", 1, 86400); break;
        case O_IPV6: opt_ipv6 = 1; break;
        case O_EARLY: opt_earlydata = (unsigned)parse_num(optarg, "earlydata", 1, 1 << 24); break;
        case O_REJECT_EARLY: opt_reject_early_after = parse_num(optarg, "reject-early-after", 1, LONG_MAX); break;
        case O_OCSP: opt_ocsp_file = optarg; break;
        case O_OCSP_RAW: opt_ocsp_raw = 1; break;
        case O_READ_DELAY: opt_read_delay_ms = parse_num(optarg, "read-delay-ms", 0, 10000); break;
        case O_READ_GATE: opt_read_gate = optarg; break;
        case O_RECORD_SIZE: opt_record_size = parse_num(optarg, "record-size-limit", 512, 16384); break;
        case O_RCVBUF: opt_rcvbuf = (int)parse_num(optarg, "rcvbuf", 1, 1 << 24); break;
        default: usage();
        }
    }
    if (optind != argc || !opt_cert || !opt_key)
        usage();

    /* ---- log ---- */
    if (opt_log) {
        log_fd = open(opt_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (log_fd < 0)
            die("%s: %s", opt_log, strerror(errno));
    }

    /* ---- TLS setup (done once, inherited by every child) ---- */
    int ret = gnutls_global_init();
    if (ret < 0)
        die("gnutls_global_init: %s", gnutls_strerror(ret));
    gnutls_certificate_allocate_credentials(&xcred);
    ret = gnutls_certificate_set_x509_key_file(xcred, opt_cert, opt_key, GNUTLS_X509_FMT_PEM);
    if (opt_ocsp_raw && !opt_ocsp_file)
        die("--ocsp-raw needs --ocsp-response");
    if (ret >= 0 && opt_ocsp_file && opt_ocsp_raw) {
        int r2 = gnutls_load_file(opt_ocsp_file, &ocsp_raw);
        if (r2 < 0)
            die("reading OCSP response %s: %s", opt_ocsp_file, gnutls_strerror(r2));
        gnutls_certificate_set_ocsp_status_request_function(xcred, ocsp_raw_cb, NULL);
    } else if (ret >= 0 && opt_ocsp_file) {
        int r2 = gnutls_certificate_set_ocsp_status_request_file(xcred, opt_ocsp_file, 0);
        if (r2 < 0)
            die("loading OCSP response %s: %s", opt_ocsp_file, gnutls_strerror(r2));
    }
    if (opt_earlydata) {
        if (gnutls_anti_replay_init(&anti_replay) < 0)
            die("gnutls_anti_replay_init failed");
        gnutls_anti_replay_set_add_function(anti_replay, anti_replay_add);
    }
    if (ret < 0)
        die("loading %s / %s: %s", opt_cert, opt_key, gnutls_strerror(ret));
    if (opt_client_ca) {
        ret = gnutls_certificate_set_x509_trust_file(xcred, opt_client_ca, GNUTLS_X509_FMT_PEM);
        if (ret <= 0)
            die("loading client CA %s: %s", opt_client_ca,
                ret == 0 ? "no certificates" : gnutls_strerror(ret));
        if (opt_cert_req != GNUTLS_CERT_IGNORE)
            gnutls_certificate_set_verify_function(xcred, verify_client_cert);
    }
    const char *p = opt_priority ? opt_priority
                  : opt_tls12 ? "NORMAL:-VERS-ALL:+VERS-TLS1.2"
                  : "NORMAL:-VERS-ALL:+VERS-TLS1.3";
    const char *err_pos = NULL;
    ret = gnutls_priority_init(&prio, p, &err_pos);
    if (ret < 0)
        die("priority '%s' at '%s': %s", p, err_pos ? err_pos : "?", gnutls_strerror(ret));
    ret = gnutls_session_ticket_key_generate(&ticket_key);
    if (ret < 0)
        die("gnutls_session_ticket_key_generate: %s", gnutls_strerror(ret));

    if (opt_alpn) {
        char *list = strdup(opt_alpn), *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (alpn_count == sizeof alpn_protos / sizeof alpn_protos[0])
                die("too many ALPN protocols");
            alpn_protos[alpn_count].data = (unsigned char *)t;
            alpn_protos[alpn_count].size = (unsigned)strlen(t);
            alpn_count++;
        }   /* list is intentionally kept for the life of the process */
    }

    /* ---- sockets ---- */
    int lfd[2] = { -1, -1 };
    int nlfd = 0, port = 0;
    for (int attempt = 0; attempt < 50 && nlfd == 0; attempt++) {
        lfd[0] = listen_on(AF_INET, opt_port, &port);
        if (lfd[0] < 0)
            die("bind 127.0.0.1:%d: %s", opt_port, strerror(errno));
        nlfd = 1;
        if (opt_ipv6) {
            int p6;
            lfd[1] = listen_on(AF_INET6, port, &p6);
            if (lfd[1] >= 0) {
                nlfd = 2;
            } else if (opt_port == 0 && errno == EADDRINUSE) {
                close(lfd[0]);   /* the ephemeral port is taken on ::1: try another */
                nlfd = 0;
            } else {
                die("bind [::1]:%d: %s", port, strerror(errno));
            }
        }
    }
    if (nlfd == 0)
        die("could not find a port free on both 127.0.0.1 and ::1");

    /* ---- signals ---- */
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;       /* no SA_RESTART: poll() returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);

    {
        struct buf b = { 0 };
        buf_printf(&b, "listening port=%d", port);
        log_line(&b);
        free(b.p);
    }
    /* The port file is the readiness signal: write it only once listening
     * and logged. */
    if (opt_port_file)
        write_port_file(opt_port_file, port);

    /* ---- accept loop ---- */
    long accepted = 0, active = 0;
    pid_t parent = getpid();
    while (!got_term && (opt_max_conns == 0 || accepted < opt_max_conns)) {
        struct pollfd pfd[2];
        for (int i = 0; i < nlfd; i++) {
            pfd[i].fd = lfd[i];
            pfd[i].events = POLLIN;
        }
        reap(&active);
        int n = poll(pfd, (nfds_t)nlfd, 1000);
        if (n < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        if (n <= 0)
            continue;
        for (int i = 0; i < nlfd; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            if (opt_max_conns && accepted >= opt_max_conns)
                break;
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            int cfd = accept4(lfd[i], (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
            if (cfd < 0) {
                if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
                    continue;
                die("accept: %s", strerror(errno));
            }
            accepted++;
            conn_index = accepted;
            pid_t pid = fork();
            if (pid < 0) {
                fprintf(stderr, "tserver: fork: %s\n", strerror(errno));
                close(cfd);
                continue;
            }
            if (pid == 0) {
                /* child: die with the parent, default signal handling */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                    _exit(0);
                signal(SIGTERM, SIG_DFL);
                signal(SIGINT, SIG_DFL);
                signal(SIGCHLD, SIG_DFL);
                for (int j = 0; j < nlfd; j++)
                    close(lfd[j]);
                handle_conn(cfd, &ss);
                _exit(0);
            }
            active++;
            close(cfd);
        }
    }

    for (int i = 0; i < nlfd; i++)
        close(lfd[i]);
    if (!got_term) {
        /* --max-conns reached: let the children finish (and log) first. */
        while (active > 0) {
            if (waitpid(-1, NULL, 0) > 0)
                active--;
            else if (errno != EINTR)
                break;
            if (got_term)
                break;
        }
    }
    /* On SIGTERM the children get SIGTERM too (PR_SET_PDEATHSIG). */
    gnutls_priority_deinit(prio);
    gnutls_certificate_free_credentials(xcred);
    gnutls_free(ticket_key.data);
    gnutls_global_deinit();
    return 0;
}
