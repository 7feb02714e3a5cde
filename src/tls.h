/* tls.h - the TLS engine.  tls.c is the only file that includes GnuTLS;
 * everything else sees this small API over an opaque session.
 *
 * I/O functions return a byte count (>= 0, 0 meaning the peer's
 * close_notify) or a negative errno: -EAGAIN when the transport would block,
 * -EINTR, or a fatal error (-ECONNRESET, -EPROTO, -EPIPE, -ETIMEDOUT, ...),
 * in which case tls_reason() says why in words. */
#ifndef TLSSHIM_TLS_H
#define TLSSHIM_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy.h"

struct tls;

struct tls_params {
	const struct policy_rule *rule;
	int fd;                   /* the transport socket */
	const char *sni;          /* server name indication, or NULL */
	const char *verify_name;  /* name or IP literal to verify, or NULL (pins only) */
	const void *ticket;       /* resumption data from the cache, or NULL */
	size_t ticket_len;
	bool early_data;          /* the ticket allows 0-RTT and the rule wants it */
	int keylog_fd;            /* NSS key log file, or -1 */
	/* After fork another process may own the sending direction (owner.h):
	 * every write to the transport first asks may_push(guard_arg); bytes it
	 * refuses never reach the wire (the write fails with EIO).  NULL: all go. */
	void *guard_arg;
	bool (*may_push)(void *arg);
	/* The peer sent a KeyUpdate with update_requested (or NULL). */
	void (*update_requested)(void *arg);
};

/* What a session negotiated, and the peer certificate, for the log. */
struct tls_info {
	char version[16], cipher[40], group[40], alpn[64];
	bool resumed, keylog_written;
	bool chain_cached; /* the chain check was a verification-cache hit */
	char subject[256], issuer[256], spki[64], expiry[32];
};

/* Create a client session.  Return 0, or a negative errno with ERR filled. */
int tls_open(struct tls **out, const struct tls_params *params, char *err, size_t errlen);
void tls_free(struct tls *tls);

/* Change the transport descriptor (the old one was closed, a dup lives on). */
void tls_set_fd(struct tls *tls, int fd);

/* While set, the transport adds MSG_DONTWAIT: probes from poll/epoll and
 * close must never block, whatever the socket's mode. */
void tls_set_nonblock(struct tls *tls, bool nonblock);
/* The same for one direction only: a reader and a writer run at once. */
void tls_set_read_nonblock(struct tls *tls, bool nonblock);
void tls_set_write_nonblock(struct tls *tls, bool nonblock);

int tls_handshake(struct tls *tls);
/* During a handshake that returned -EAGAIN: true if it waits to read. */
bool tls_wants_read(struct tls *tls);

ssize_t tls_recv(struct tls *tls, void *buf, size_t len);
/* Send LEN bytes, all of them unless the transport would block.  A record
 * that could not be written at once stays queued (tls_flush_pending) and
 * counts as sent, as bytes in a kernel buffer would. */
ssize_t tls_send(struct tls *tls, const void *buf, size_t len);
int tls_flush(struct tls *tls);
bool tls_flush_pending(struct tls *tls);
/* Decrypted bytes held inside the engine. */
size_t tls_pending(struct tls *tls);
/* Ciphertext read ahead from the socket, not yet decrypted: the kernel no
 * longer reports it readable. */
size_t tls_buffered(struct tls *tls);
/* Send close_notify (never blocks: the caller sets nonblock as needed). */
int tls_bye(struct tls *tls);

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
/* Send a KeyUpdate (and request the peer's).  0, -EAGAIN, or an error. */
int tls_key_update(struct tls *tls);
/* After the handshake: did the server ask for a client certificate?  (In
 * TLS 1.3 a server that requires one says so only after our handshake is
 * done, with an alert or, like nginx, at the application level.) */
bool tls_cert_requested(struct tls *tls);

#endif
