/* tls.h - the TLS engine.  tls.c is the only file that includes GnuTLS;
 * everything else sees this small API over an opaque session, shaped like
 * OpenBSD's libtls.
 *
 * Every call that moves records takes its blocking mode (enum tls_io) and
 * returns a byte count (>= 0; 0 from tls_recv is the peer's close_notify)
 * or one of:
 *   TLS_WANT_POLLIN, TLS_WANT_POLLOUT  the transport would block: call
 *       again when the socket is readable (writable);
 *   -EINTR  a signal interrupted a blocking wait (the caller decides
 *       whether to call again: a read returns it to the program, the
 *       handshake goes on);
 *   another negative errno (-ECONNRESET, -EPROTO, -EPIPE, -ETIMEDOUT,
 *       -EIO, -ENOMEM, ...): the call failed, tls_reason() says why in
 *       words.
 * The two WANT values lie outside errno's range.
 *
 * One session serves one role: tls_new_client() makes a client session.
 * Everything after creation (the handshake, I/O, close_notify, KeyUpdate,
 * the log's tls_info) is the same call for either role; a server session
 * is a second constructor over struct tls_params, with its own role
 * parameters beside struct tls_client_params.  (Tickets to keep, 0-RTT
 * to send and a certificate request are a client's.) */
#ifndef TLSSHIM_TLS_H
#define TLSSHIM_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "policy.h"

#define TLS_WANT_POLLIN (-0x10001)
#define TLS_WANT_POLLOUT (-0x10002)

/* How one call may use the transport. */
enum tls_io {
	TLS_BLOCKING,    /* as the socket's own mode says */
	TLS_NONBLOCKING, /* MSG_DONTWAIT: never waits, whatever the socket's mode
			  * (probes from poll/epoll and close) */
};

struct tls;

/* What every session needs, whatever its role. */
struct tls_params {
	const struct policy_rule *rule;
	int fd;                   /* the transport socket */
	/* Writes one NSS key-log line (LEN bytes, ending in a newline) to the
	 * key log: 0 or a negative errno.  NULL: no key log.  The engine keeps
	 * no descriptor of the key log: the program may take its number at
	 * any time (ownfd.h), the callback pins it for each write. */
	int (*keylog_write)(const char *line, size_t len);
	/* After fork another process may own the sending direction (owner.h):
	 * every write to the transport first asks may_push(guard_arg); bytes it
	 * refuses never reach the wire (the write fails with EIO).  NULL: all go. */
	void *guard_arg;
	bool (*may_push)(void *arg);
	/* The peer sent a KeyUpdate with update_requested (or NULL). */
	void (*update_requested)(void *arg);
};

/* A client session: what it verifies and how it may resume. */
struct tls_client_params {
	struct tls_params common;
	const char *sni;          /* server name indication, or NULL */
	const char *verify_name;  /* name or IP literal to verify, or NULL (pins only) */
	const void *ticket;       /* resumption data from the cache, or NULL */
	size_t ticket_len;
	bool early_data;          /* the ticket allows 0-RTT and the rule wants it */
};

/* A server session (an inbound rule): the rule's certificate and key,
 * client-ca / allow-client (mTLS), ALPN (server preference,
 * alpn-required), tickets, OCSP staple; never 0-RTT. */
#define TLS_TICKET_KEY_LEN 64
struct tls_server_params {
	struct tls_params common;
	/* The process's ticket master key (TLS_TICKET_KEY_LEN bytes, made
	 * once before the first fork so that pre-fork workers resume each
	 * other's sessions), or NULL: no tickets. */
	const unsigned char *ticket_key;
	const char *peer;         /* the client's address as text, for reasons */
};

/* What a session negotiated, and the peer certificate, for the log. */
struct tls_info {
	char version[16], cipher[40], group[40], alpn[64];
	bool resumed, keylog_written;
	bool chain_cached; /* the chain check was a verification-cache hit */
	char subject[256], issuer[256], spki[64], expiry[32];
	/* Server sessions: */
	char sni[256];            /* the name the client asked for, or "" */
	char client_id[256];      /* the verified client certificate's identity for
				   * the log: its URI SANs, else DNS SANs, else
				   * "CN=..." ("" without a client certificate) */
};

/* Create a client session.  Return 0, or a negative errno with ERR filled. */
int tls_new_client(struct tls **out, const struct tls_client_params *params, char *err, size_t errlen);
/* Create a server session.  Return 0, or a negative errno with ERR filled
 * (the rule's certificate, key, client-ca or OCSP file cannot be used). */
int tls_new_server(struct tls **out, const struct tls_server_params *params, char *err, size_t errlen);
/* Load RULE's credentials now (certificate, key, trust anchors, OCSP
 * file), as its sessions will use them: before the program gives up the
 * rights to read them (setuid, chroot).  0 or a negative errno with ERR. */
int tls_preload(const struct policy_rule *rule, char *err, size_t errlen);
void tls_free(struct tls *tls);

/* Change the transport descriptor (the old one was closed, a dup lives on). */
void tls_set_fd(struct tls *tls, int fd);

/* One step of the handshake: 0 when it is done, else as above. */
int tls_handshake(struct tls *tls, enum tls_io io);

ssize_t tls_recv(struct tls *tls, void *buf, size_t len, enum tls_io io);
/* Send the IOVCNT buffers of IOV as one stream, all of it unless the
 * transport would block (then the bytes sent so far, or a WANT result when
 * none).  Records are cut from the stream, not per buffer: the buffers are
 * encrypted where they lie, and only a record that spans two of them is
 * gathered.  A record that could not be pushed at once stays queued
 * (tls_flush) and counts as sent, as bytes in a kernel buffer would; a
 * call after a WANT result must begin with the bytes of that call (else
 * -EIO: they may be in the stream already). */
ssize_t tls_sendv(struct tls *tls, const struct iovec *iov, int iovcnt, enum tls_io io);
/* tls_sendv of one buffer. */
ssize_t tls_send(struct tls *tls, const void *buf, size_t len, enum tls_io io);
/* Push queued records (then close_notify, once tls_bye asked for it):
 * 0 when nothing waits any more, else as above. */
int tls_flush(struct tls *tls, enum tls_io io);
/* Records or close_notify wait inside the session to be pushed. */
bool tls_flush_pending(struct tls *tls);
/* Decrypted bytes held inside the engine. */
size_t tls_pending(struct tls *tls);
/* Ciphertext read ahead from the socket, not yet decrypted: the kernel no
 * longer reports it readable. */
size_t tls_buffered(struct tls *tls);
/* Queue close_notify behind every record before it and push: as tls_flush. */
int tls_bye(struct tls *tls, enum tls_io io);

/* Why the last call failed, in words. */
const char *tls_reason(struct tls *tls);
void tls_get_info(struct tls *tls, struct tls_info *info);
bool tls_resumed(struct tls *tls);
/* A new ticket arrived: return its resumption data (malloc'd), else NULL;
 * *EARLY_MAX is the 0-RTT size the ticket allows (0: none). */
void *tls_take_ticket(struct tls *tls, size_t *len, uint32_t *early_max);

/* 0-RTT: before the handshake, queue up to what the ticket allows of BUF as
 * early data.  Return the bytes taken or a negative errno. */
ssize_t tls_send_early(struct tls *tls, const void *buf, size_t len);
/* After the handshake: did the server accept the early data? */
bool tls_early_accepted(struct tls *tls);
/* In a child made by _Fork (no atfork handlers ran): reseed the RNG. */
void tls_after_fork(void);
/* Send a KeyUpdate for our sending key: 0, or as above. */
int tls_key_update(struct tls *tls, enum tls_io io);
/* After the handshake: did the server ask for a client certificate?  (In
 * TLS 1.3 a server that requires one says so only after our handshake is
 * done, with an alert or, like nginx, at the application level.) */
bool tls_cert_requested(struct tls *tls);

#endif
