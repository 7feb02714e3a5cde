/* inband.h - TLS negotiated inside a plaintext protocol (outbound rules
 * with `protocol =` other than tls, and `proxy =`): the exchange before
 * the TLS handshake, and the two stream rewrites after it.
 *
 * Pure: bytes in, verdict out.  The connection (conn.c) does the I/O: it
 * asks inband_next() what to do, sends out[], reads server bytes into in[],
 * and starts TLS when told.  Every exchange is bounded by the buffers
 * below; the caller's handshake deadline bounds its time.
 *
 * The exchanges, in order: the proxy's CONNECT (when a proxy is set), then
 * the protocol's own request:
 *   proxy     CONNECT host:port HTTP/1.1 (+ Host, + Proxy-Authorization:
 *             Basic), a 2xx status, headers to the empty line.  Bytes after
 *             it belong to the next stage.
 *   postgres  SSLRequest (00 00 00 08 04 d2 16 2f); 'S' -> TLS.
 *   smtp      220 greeting; EHLO; 250 with STARTTLS among the keywords;
 *             STARTTLS; 220 -> TLS.  The greeting goes to the program
 *             after the handshake.
 *   imap      "* OK" greeting; "<tag> STARTTLS"; "<tag> OK" -> TLS (untagged
 *             lines before it are skipped).  The greeting, without a
 *             [CAPABILITY ...] response code (plaintext capabilities are
 *             never passed on), goes to the program after the handshake.
 *   pop3      "+OK" greeting; STLS; "+OK" -> TLS.  The greeting goes to the
 *             program after the handshake.
 *   ldap      StartTLS extended request (message ID 1, OID
 *             1.3.6.1.4.1.1466.20037); an extended response with message ID
 *             1 and resultCode 0 -> TLS.  BER lengths: short form and long
 *             forms of 1 to 4 bytes.
 *   mysql     The server's HandshakeV10 (CLIENT_SSL required) goes to the
 *             program at once with CLIENT_SSL cleared (INBAND_PROGRAM).  The
 *             program's first packet (its HandshakeResponse41) is held: its
 *             first 32 bytes of payload, with CLIENT_SSL set and sequence
 *             ID 1, are the SSLRequest (so the server sees the program's own
 *             capabilities, as from any TLS client); then TLS; then the held
 *             packet, CLIENT_SSL set and sequence ID 2, goes first inside
 *             TLS.  Sequence IDs are then renumbered until the OK or ERR
 *             that ends authentication (struct inband_mysql).
 * In every exchange, bytes the server sends after the reply that starts
 * TLS and before the handshake (STARTTLS command injection,
 * CVE-2011-0411 and kin) fail it: TLS is started only with in_len == 0. */
#ifndef TLSSHIM_INBAND_H
#define TLSSHIM_INBAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy.h"

#define INBAND_IN_MAX 8192     /* server bytes held unconsumed: a reply, the proxy's headers,
				* the MySQL greeting; more without a verdict fails */
#define INBAND_OUT_MAX 1024    /* our requests */
#define INBAND_GREET_MAX 4096  /* what is handed to the program */
#define INBAND_HELD_MAX 16384  /* mysql: the program's first packet (header included) */
#define INBAND_LINE_MAX 2048   /* one text reply line, CRLF included */
#define INBAND_WHY_MAX 300

enum inband_next {
	INBAND_SEND = 0, /* send out[out_off..out_len); the caller advances out_off,
			  * and calls inband_next again once all of it went */
	INBAND_READ,     /* read server bytes into in[in_len..INBAND_IN_MAX), add
			  * them to in_len, call again; end of stream: inband_eof */
	INBAND_PROGRAM,  /* mysql: the program reads greet[0..greet_len) now (the
			  * caller takes it and sets greet_len = 0), then its
			  * writes go to inband_program() */
	INBAND_TLS,      /* start the TLS handshake now (in_len is 0).  greet[],
			  * if greet_len > 0, goes to the program after it;
			  * held[], if held_len > 0, goes to the server first
			  * inside TLS */
	INBAND_FAIL,     /* fail the connection: why[] says (for the log) */
};

struct inband {
	/* Set by inband_init. */
	enum policy_protocol proto;
	char target[300];            /* proxy: "host:port" for CONNECT; "" no proxy */
	char auth[400];              /* proxy: "user:password", or "" */
	char ehlo[256];              /* smtp: our EHLO name */
	/* State (inband.c's). */
	int stage;                   /* proxy, protocol, program, done, failed */
	int step;                    /* within the stage */
	bool greet_done;             /* text protocols: the greeting was read */
	/* Buffers. */
	unsigned char in[INBAND_IN_MAX];
	size_t in_len;
	unsigned char out[INBAND_OUT_MAX];
	size_t out_len, out_off;
	unsigned char greet[INBAND_GREET_MAX];
	size_t greet_len;
	unsigned char held[INBAND_HELD_MAX];
	size_t held_len;
	char why[INBAND_WHY_MAX];    /* INBAND_FAIL: printable ASCII only */
};

/* Start a negotiation for PROTO (POLICY_PROTOCOL_TLS with a proxy: the
 * CONNECT only).  PROXY_TARGET: "host:port" (IPv6 as "[addr]:port") for a
 * CONNECT, or NULL; PROXY_AUTH: "user:password" or NULL; EHLO: the name
 * for smtp's EHLO (NULL or invalid: "localhost").  Strings too long for
 * their field make the first inband_next say INBAND_FAIL. */
void inband_init(struct inband *ib, enum policy_protocol proto, const char *proxy_target,
		 const char *proxy_auth, const char *ehlo);

/* What to do next, given what was sent and received so far. */
enum inband_next inband_next(struct inband *ib);

/* The server closed (read returned 0) before a verdict: INBAND_FAIL. */
enum inband_next inband_eof(struct inband *ib);

/* mysql, after INBAND_PROGRAM: LEN bytes the program writes.  Return the
 * bytes taken (never past the end of its first packet: the caller reports
 * a short write, the program sends the rest later, after TLS), or -1 and
 * INBAND_FAIL from the next inband_next (why[] says: a pre-4.1 client, a
 * packet over INBAND_HELD_MAX, the program asking for TLS itself).  Once
 * the packet is whole, inband_next says INBAND_SEND (the SSLRequest) and
 * then INBAND_TLS. */
ssize_t inband_program(struct inband *ib, const void *buf, size_t len);

/* protocol = postgres, after the handshake: the program's first bytes
 * (libpq with sslmode=prefer or gssencmode=prefer asks for encryption
 * itself).  ANSWER_N: BUF starts with exactly an SSLRequest or a
 * GSSENCRequest (8 bytes): swallow those 8, hand the program "N", and ask
 * again for what follows.  NEED_MORE: fewer than 8 bytes, a prefix of one
 * of them.  PASS: anything else; the filter is over. */
enum inband_pg { INBAND_PG_PASS = 0, INBAND_PG_ANSWER_N, INBAND_PG_NEED_MORE };
enum inband_pg inband_pg_program(const unsigned char *buf, size_t len);
#define INBAND_PG_REQUEST_LEN 8

/* protocol = mysql, after the handshake: sequence IDs renumbered in the
 * connection phase.  The program counts without the SSLRequest the server
 * saw, so its packets go up by one and the server's come down by one; both
 * stop (done) after the server's first packet whose payload begins with
 * 0x00 (OK) or 0xff (ERR): authentication is over and every later command
 * starts again at 0.  The program's side also stops at its first packet
 * with sequence ID 0 (a command it sent without waiting for the OK).  Each call rewrites BUF (LEN bytes of the stream, cut
 * anywhere) in place and advances the state; bytes after the end pass
 * unchanged. */
struct inband_mysql_dir {
	uint8_t hpos;                /* header bytes seen of the current packet (0..4) */
	uint32_t len;                /* payload length, from the header */
	uint32_t left;               /* payload bytes still to come */
	bool first;                  /* the payload's first byte is next */
	bool done;                   /* the program's: a packet with sequence ID 0
				      * came (a command sent without waiting for the
				      * OK): this direction is over */
};
struct inband_mysql {
	bool done;
	struct inband_mysql_dir up, down;
};
void inband_mysql_start(struct inband_mysql *m);
void inband_mysql_from_program(struct inband_mysql *m, unsigned char *buf, size_t len);
void inband_mysql_from_server(struct inband_mysql *m, unsigned char *buf, size_t len);

/* "smtp (STARTTLS)" etc. for the log; "tls" for POLICY_PROTOCOL_TLS. */
const char *inband_proto_name(enum policy_protocol proto);

#endif
