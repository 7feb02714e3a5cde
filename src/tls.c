/* tls.c - GnuTLS behind the tls.h API.
 *
 * Order follows GnuTLS's client example: credentials (one set per rule,
 * built on first use) -> init -> server name -> priority -> verification ->
 * transport -> handshake.  The transport calls the real libc functions, so
 * GnuTLS never reaches our own hooks. */
#include "tls.h"
#include "tls_module.h"
#include "real.h"

/* The real libc functions, handed over by the library that loads us. */
static const struct real_fns *real_fns;
#define real (*real_fns)

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

struct tls {
	gnutls_session_t session;
	const struct policy_rule *rule;
	int fd;
	/* A reader and a writer may run at once (GnuTLS allows one of each),
	 * so each direction has its own transport flags and would-block mark. */
	int rflags, wflags;      /* extra flags for recv / send (MSG_DONTWAIT) */
	bool r_eagain, w_eagain; /* the transport itself would have blocked */
	int last_errno;          /* errno of the last transport failure */
	bool ticket_arrived;
	bool flush_pending;
	char *verify_name;
	char reason[512];
};

/* ---- credentials: one per rule, built once, kept for the process ---- */

struct cred_entry {
	const struct policy_rule *rule;
	gnutls_certificate_credentials_t cred;
	struct cred_entry *next;
};

static pthread_mutex_t cred_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cred_entry *creds;

static int verify_peer(gnutls_session_t session);

static int cred_build(const struct policy_rule *rule, gnutls_certificate_credentials_t *out,
		      char *err, size_t errlen)
{
	gnutls_certificate_credentials_t cred;
	int ret;

	ret = gnutls_certificate_allocate_credentials(&cred);
	if (ret < 0)
		goto fail;
	if (rule->ca)
		ret = gnutls_certificate_set_x509_trust_file(cred, rule->ca, GNUTLS_X509_FMT_PEM);
	else
		ret = gnutls_certificate_set_x509_system_trust(cred);
	if (ret < 0) {
		snprintf(err, errlen, "cannot load trust anchors from %s: %s",
			 rule->ca ? rule->ca : "the system store", gnutls_strerror(ret));
		gnutls_certificate_free_credentials(cred);
		return -EINVAL;
	}
	if (ret == 0) {
		snprintf(err, errlen, "no certificate found in %s", rule->ca ? rule->ca : "the system store");
		gnutls_certificate_free_credentials(cred);
		return -EINVAL;
	}
	if (rule->cert && rule->key) {
		ret = gnutls_certificate_set_x509_key_file(cred, rule->cert, rule->key, GNUTLS_X509_FMT_PEM);
		if (ret < 0) {
			snprintf(err, errlen, "cannot load client certificate %s with key %s: %s",
				 rule->cert, rule->key, gnutls_strerror(ret));
			gnutls_certificate_free_credentials(cred);
			return -EINVAL;
		}
	}
	gnutls_certificate_set_verify_function(cred, verify_peer);
	*out = cred;
	return 0;
fail:
	snprintf(err, errlen, "cannot allocate credentials: %s", gnutls_strerror(ret));
	return -ENOMEM;
}

static int cred_get(const struct policy_rule *rule, gnutls_certificate_credentials_t *out,
		    char *err, size_t errlen)
{
	struct cred_entry *entry;
	int ret = 0;

	pthread_mutex_lock(&cred_lock);
	for (entry = creds; entry; entry = entry->next)
		if (entry->rule == rule)
			break;
	if (!entry) {
		entry = calloc(1, sizeof *entry);
		if (!entry) {
			ret = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		ret = cred_build(rule, &entry->cred, err, errlen);
		if (ret < 0) {
			free(entry);
			goto out;
		}
		entry->rule = rule;
		entry->next = creds;
		creds = entry;
	}
	*out = entry->cred;
out:
	pthread_mutex_unlock(&cred_lock);
	return ret;
}

/* ---- verification: chain, name and pins in one callback (see the traps
 * note: a second verify function would replace the name check) ---- */

static void pin_format(const unsigned char *id, char *out, size_t outlen)
{
	gnutls_datum_t raw = { (unsigned char *)id, 32 }, b64 = { NULL, 0 };

	if (gnutls_base64_encode2(&raw, &b64) == 0) {
		snprintf(out, outlen, "sha256//%.*s", (int)b64.size, b64.data);
		gnutls_free(b64.data);
	} else {
		snprintf(out, outlen, "?");
	}
}

static int check_pins(struct tls *tls)
{
	const gnutls_datum_t *chain;
	unsigned n_chain = 0;
	gnutls_x509_crt_t crt;
	unsigned char id[64];
	size_t idlen = sizeof id, i;
	char pin[80];
	int ret;

	chain = gnutls_certificate_get_peers(tls->session, &n_chain);
	if (!chain || n_chain == 0) {
		snprintf(tls->reason, sizeof tls->reason, "server sent no certificate to pin");
		return -1;
	}
	if (gnutls_x509_crt_init(&crt) < 0)
		return -1;
	ret = gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER);
	if (ret >= 0)
		ret = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, id, &idlen);
	gnutls_x509_crt_deinit(crt);
	if (ret < 0 || idlen != POLICY_PIN_LEN) {
		snprintf(tls->reason, sizeof tls->reason, "cannot compute the server's key pin: %s",
			 gnutls_strerror(ret));
		return -1;
	}
	for (i = 0; i < tls->rule->n_pins; i++)
		if (memcmp(tls->rule->pins[i], id, POLICY_PIN_LEN) == 0)
			return 0;
	pin_format(id, pin, sizeof pin);
	snprintf(tls->reason, sizeof tls->reason,
		 "server key matches no pin of the rule (server's pin: %s)", pin);
	return -1;
}

static int verify_peer(gnutls_session_t session)
{
	struct tls *tls = gnutls_session_get_ptr(session);
	gnutls_typed_vdata_st data[2];
	gnutls_datum_t words = { NULL, 0 };
	unsigned status = 0, n = 0;
	int ret;

	if (tls->verify_name) {
		data[n].type = GNUTLS_DT_DNS_HOSTNAME;
		data[n].data = (unsigned char *)tls->verify_name;
		data[n].size = 0;
		n++;
	}
	data[n].type = GNUTLS_DT_KEY_PURPOSE_OID;
	data[n].data = (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER;
	data[n].size = 0;
	n++;
	ret = gnutls_certificate_verify_peers(session, data, n, &status);
	if (ret < 0) {
		snprintf(tls->reason, sizeof tls->reason, "certificate verification failed: %s",
			 gnutls_strerror(ret));
		return -1;
	}
	if (status != 0) {
		gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &words, 0);
		snprintf(tls->reason, sizeof tls->reason, "certificate rejected%s%s%s: %s",
			 tls->verify_name ? " for \"" : "", tls->verify_name ? tls->verify_name : "",
			 tls->verify_name ? "\"" : "", words.data ? (char *)words.data : "unknown status");
		gnutls_free(words.data);
		return -1;
	}
	if (tls->rule->n_pins > 0 && check_pins(tls) < 0)
		return -1;
	return 0;
}

/* ---- transport: the real libc functions ---- */

static ssize_t transport_push(gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
	struct tls *tls = ptr;
	ssize_t ret = real.send(tls->fd, buf, len, MSG_NOSIGNAL | tls->wflags);

	if (ret < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			tls->w_eagain = true;
		else
			tls->last_errno = errno;
		gnutls_transport_set_errno(tls->session, errno);
	}
	return ret;
}

static ssize_t transport_vec_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
	struct tls *tls = ptr;
	struct msghdr msg;
	ssize_t ret;

	memset(&msg, 0, sizeof msg);
	msg.msg_iov = (struct iovec *)iov;
	msg.msg_iovlen = iovcnt;
	ret = real.sendmsg(tls->fd, &msg, MSG_NOSIGNAL | tls->wflags);
	if (ret < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			tls->w_eagain = true;
		else
			tls->last_errno = errno;
		gnutls_transport_set_errno(tls->session, errno);
	}
	return ret;
}

static ssize_t transport_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	struct tls *tls = ptr;
	ssize_t ret = real.recv(tls->fd, buf, len, tls->rflags);

	if (ret < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			tls->r_eagain = true;
		else
			tls->last_errno = errno;
		gnutls_transport_set_errno(tls->session, errno);
	}
	return ret;
}

/* GnuTLS calls this only when it wants to wait with a deadline (the
 * handshake timeout).  A probe must never wait: say "readable" and let the
 * pull report EAGAIN. */
static int transport_pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
	struct tls *tls = ptr;
	struct pollfd pfd = { .fd = tls->fd, .events = POLLIN };
	int ret;
	int fl;

	if (tls->rflags & MSG_DONTWAIT)
		return 1;
	fl = real.fcntl(tls->fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		return 1;
	ret = real.poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
	if (ret < 0)
		gnutls_transport_set_errno(tls->session, errno);
	return ret;
}

static int ticket_hook(gnutls_session_t session, unsigned htype, unsigned when,
		       unsigned incoming, const gnutls_datum_t *msg)
{
	struct tls *tls = gnutls_session_get_ptr(session);

	if (htype == GNUTLS_HANDSHAKE_NEW_SESSION_TICKET && incoming)
		tls->ticket_arrived = true;
	return 0;
}

static void no_keylog(void)
{
}

static int keylog_off(gnutls_session_t session, const char *label, const gnutls_datum_t *secret)
{
	no_keylog();
	return 0;
}

/* ---- sessions ---- */

int mod_open(struct tls **out, const struct tls_params *params, char *err, size_t errlen)
{
	const struct policy_rule *rule = params->rule;
	gnutls_certificate_credentials_t cred;
	unsigned flags = GNUTLS_CLIENT | GNUTLS_NO_SIGNAL;
	struct tls *tls;
	const char *where = NULL;
	int ret;

	ret = cred_get(rule, &cred, err, errlen);
	if (ret < 0)
		return ret;
	tls = calloc(1, sizeof *tls);
	if (!tls) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	tls->rule = rule;
	tls->fd = params->fd;
	if (params->verify_name && !(tls->verify_name = strdup(params->verify_name))) {
		free(tls);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* Without this GnuTLS sends no certificate when the server's CA list
	 * does not name our issuer. */
	if (rule->cert)
		flags |= GNUTLS_FORCE_CLIENT_CERT;
	ret = gnutls_init(&tls->session, flags);
	if (ret < 0) {
		where = "init";
		goto fail_nosession;
	}
	gnutls_session_set_ptr(tls->session, tls);
	/* Our own keylog function keeps SSLKEYLOGFILE from writing secrets. */
	gnutls_session_set_keylog_function(tls->session, keylog_off);
	if (params->sni) {
		ret = gnutls_server_name_set(tls->session, GNUTLS_NAME_DNS, params->sni, strlen(params->sni));
		if (ret < 0) {
			where = "server name";
			goto fail;
		}
	}
	/* TLS 1.3 only, on top of the system's policy: no fallback, ever. */
	ret = gnutls_set_default_priority_append(tls->session, "-VERS-ALL:+VERS-TLS1.3", NULL, 0);
	if (ret < 0) {
		where = "priority";
		goto fail;
	}
	ret = gnutls_credentials_set(tls->session, GNUTLS_CRD_CERTIFICATE, cred);
	if (ret < 0) {
		where = "credentials";
		goto fail;
	}
	if (rule->n_alpn > 0) {
		gnutls_datum_t protos[16];
		size_t i, n = rule->n_alpn < 16 ? rule->n_alpn : 16;

		for (i = 0; i < n; i++) {
			protos[i].data = (unsigned char *)rule->alpn[i];
			protos[i].size = strlen(rule->alpn[i]);
		}
		ret = gnutls_alpn_set_protocols(tls->session, protos, n, 0);
		if (ret < 0) {
			where = "ALPN";
			goto fail;
		}
	}
	if (params->ticket && params->ticket_len) {
		/* A stale or foreign ticket only costs a full handshake. */
		gnutls_session_set_data(tls->session, params->ticket, params->ticket_len);
	}
	gnutls_handshake_set_hook_function(tls->session, GNUTLS_HANDSHAKE_NEW_SESSION_TICKET,
					   GNUTLS_HOOK_POST, ticket_hook);
	gnutls_handshake_set_timeout(tls->session, 10000);
	gnutls_transport_set_ptr(tls->session, tls);
	gnutls_transport_set_push_function(tls->session, transport_push);
	gnutls_transport_set_vec_push_function(tls->session, transport_vec_push);
	gnutls_transport_set_pull_function(tls->session, transport_pull);
	gnutls_transport_set_pull_timeout_function(tls->session, transport_pull_timeout);
	*out = tls;
	return 0;
fail:
	gnutls_deinit(tls->session);
fail_nosession:
	snprintf(err, errlen, "TLS session setup (%s): %s", where, gnutls_strerror(ret));
	free(tls->verify_name);
	free(tls);
	return -EINVAL;
}

void mod_free(struct tls *tls)
{
	if (!tls)
		return;
	gnutls_deinit(tls->session);
	free(tls->verify_name);
	free(tls);
}

void mod_set_fd(struct tls *tls, int fd)
{
	tls->fd = fd;
}

void mod_set_nonblock(struct tls *tls, bool nonblock)
{
	tls->rflags = tls->wflags = nonblock ? MSG_DONTWAIT : 0;
}

void mod_set_read_nonblock(struct tls *tls, bool nonblock)
{
	tls->rflags = nonblock ? MSG_DONTWAIT : 0;
}

void mod_set_write_nonblock(struct tls *tls, bool nonblock)
{
	tls->wflags = nonblock ? MSG_DONTWAIT : 0;
}

/* Turn a fatal GnuTLS error into an errno and a reason. */
static int fatal(struct tls *tls, int ret, const char *during)
{
	int alert;

	switch (ret) {
	case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
	case GNUTLS_E_CERTIFICATE_ERROR:
		if (!tls->reason[0])
			snprintf(tls->reason, sizeof tls->reason, "certificate verification failed");
		return -ECONNRESET;
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
		alert = gnutls_alert_get(tls->session);
		snprintf(tls->reason, sizeof tls->reason, "fatal alert received during %s: %s (%d)%s",
			 during, gnutls_alert_get_name(alert) ? gnutls_alert_get_name(alert) : "unknown",
			 alert, strcmp(during, "handshake") == 0 && (alert == GNUTLS_A_PROTOCOL_VERSION ||
			 alert == GNUTLS_A_HANDSHAKE_FAILURE) ? " (does the server speak TLS 1.3?)" : "");
		return -ECONNRESET;
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
		snprintf(tls->reason, sizeof tls->reason,
			 "peer closed the connection without close_notify during %s (%s)", during,
			 strcmp(during, "handshake") == 0 ? "does the server speak TLS 1.3?" : "truncated");
		return -ECONNRESET;
	case GNUTLS_E_PUSH_ERROR:
	case GNUTLS_E_PULL_ERROR:
		snprintf(tls->reason, sizeof tls->reason, "I/O error during %s: %s", during,
			 strerror(tls->last_errno ? tls->last_errno : EIO));
		if (tls->last_errno == EPIPE)
			return -EPIPE;
		if (tls->last_errno == ETIMEDOUT)
			return -ETIMEDOUT;
		return -ECONNRESET;
	case GNUTLS_E_TIMEDOUT:
		snprintf(tls->reason, sizeof tls->reason, "timed out during %s", during);
		return -ETIMEDOUT;
	case GNUTLS_E_DECRYPTION_FAILED:
	case GNUTLS_E_UNEXPECTED_PACKET:
	case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
	default:
		snprintf(tls->reason, sizeof tls->reason, "%s failed: %s (GnuTLS error %d)", during,
			 gnutls_strerror(ret), ret);
		return -EPROTO;
	}
}

int mod_handshake(struct tls *tls)
{
	int ret;

	for (;;) {
		tls->r_eagain = tls->w_eagain = false;
		ret = gnutls_handshake(tls->session);
		if (ret == 0)
			return 0;
		if (ret == GNUTLS_E_AGAIN) {
			if (tls->r_eagain || tls->w_eagain)
				return -EAGAIN;
			continue;
		}
		if (ret == GNUTLS_E_INTERRUPTED) {
			if (tls->rflags & MSG_DONTWAIT)
				return -EAGAIN;
			continue;
		}
		if (!gnutls_error_is_fatal(ret))
			continue;
		return fatal(tls, ret, "handshake");
	}
}

bool mod_wants_read(struct tls *tls)
{
	return gnutls_record_get_direction(tls->session) == 0;
}

ssize_t mod_recv(struct tls *tls, void *buf, size_t len)
{
	ssize_t ret;

	if (len == 0)
		return 0;
	for (;;) {
		tls->r_eagain = false;
		ret = gnutls_record_recv(tls->session, buf, len);
		if (ret >= 0)
			return ret;
		/* E_AGAIN also follows a ticket or a KeyUpdate that carried no
		 * data: only a transport that would block ends the loop. */
		if (ret == GNUTLS_E_AGAIN) {
			if (tls->r_eagain)
				return -EAGAIN;
			continue;
		}
		if (ret == GNUTLS_E_INTERRUPTED)
			return -EINTR;
		if (!gnutls_error_is_fatal(ret))
			continue;
		return fatal(tls, ret, "read");
	}
}

int mod_flush(struct tls *tls)
{
	ssize_t ret;

	while (tls->flush_pending) {
		tls->w_eagain = false;
		ret = gnutls_record_send(tls->session, NULL, 0);
		if (ret >= 0) {
			tls->flush_pending = false;
			break;
		}
		if (ret == GNUTLS_E_AGAIN) {
			if (tls->w_eagain)
				return -EAGAIN;
			continue;
		}
		if (ret == GNUTLS_E_INTERRUPTED)
			return -EINTR;
		return fatal(tls, ret, "write");
	}
	return 0;
}

bool mod_flush_pending(struct tls *tls)
{
	return tls->flush_pending;
}

ssize_t mod_send(struct tls *tls, const void *buf, size_t len)
{
	size_t done = 0;
	ssize_t ret;

	ret = mod_flush(tls);
	if (ret < 0)
		return ret;
	while (done < len) {
		tls->w_eagain = false;
		ret = gnutls_record_send(tls->session, (const char *)buf + done, len - done);
		if (ret > 0) {
			done += ret;
			continue;
		}
		if (ret == GNUTLS_E_AGAIN) {
			if (!tls->w_eagain)
				continue;
			/* The record is encrypted and queued: it counts as sent. */
			tls->flush_pending = true;
			done += len - done > 16384 ? 16384 : len - done;
			return done;
		}
		if (ret == GNUTLS_E_INTERRUPTED) {
			if (done)
				return done;
			return -EINTR;
		}
		if (done)
			return done;
		return fatal(tls, ret, "write");
	}
	return done;
}

size_t mod_pending(struct tls *tls)
{
	return gnutls_record_check_pending(tls->session);
}

int mod_bye(struct tls *tls)
{
	int ret;

	if (mod_flush(tls) < 0)
		return -EAGAIN;
	ret = gnutls_bye(tls->session, GNUTLS_SHUT_WR);
	return ret < 0 ? -EAGAIN : 0;
}

static const char *mod_reason(struct tls *tls)
{
	return tls->reason[0] ? tls->reason : "unknown error";
}

bool mod_resumed(struct tls *tls)
{
	return gnutls_session_is_resumed(tls->session) != 0;
}

void mod_describe(struct tls *tls, char *buf, size_t len)
{
	gnutls_datum_t alpn = { NULL, 0 };
	const char *version = gnutls_protocol_get_name(gnutls_protocol_get_version(tls->session));
	const char *cipher = gnutls_cipher_get_name(gnutls_cipher_get(tls->session));
	const char *group = gnutls_group_get_name(gnutls_group_get(tls->session));
	int have_alpn = gnutls_alpn_get_selected_protocol(tls->session, &alpn) == 0;

	snprintf(buf, len, "version=%s cipher=%s group=%s alpn=%.*s",
		 version ? version : "?", cipher ? cipher : "?", group ? group : "-",
		 have_alpn ? (int)alpn.size : 1, have_alpn ? (char *)alpn.data : "-");
}

static void *mod_take_ticket(struct tls *tls, size_t *len)
{
	gnutls_datum_t data = { NULL, 0 };
	void *copy;
	int saved = tls->rflags;

	if (!tls->ticket_arrived)
		return NULL;
	tls->ticket_arrived = false;
	/* The ticket is already here: make sure nothing waits for another. */
	tls->rflags = MSG_DONTWAIT;
	if (gnutls_session_get_data2(tls->session, &data) < 0 || data.size < 16) {
		tls->rflags = saved;
		gnutls_free(data.data);
		return NULL;
	}
	tls->rflags = saved;
	copy = malloc(data.size);
	if (copy) {
		memcpy(copy, data.data, data.size);
		*len = data.size;
	}
	gnutls_free(data.data);
	return copy;
}

/* ---- the module's one export ---- */

static void mod_init(const struct real_fns *fns)
{
	real_fns = fns;
}

__attribute__((visibility("default"))) const struct tls_ops tlsshim_tls_ops = {
	.abi = TLS_OPS_ABI,
	.init = mod_init,
	.open = mod_open,
	.free = mod_free,
	.set_fd = mod_set_fd,
	.set_nonblock = mod_set_nonblock,
	.set_read_nonblock = mod_set_read_nonblock,
	.set_write_nonblock = mod_set_write_nonblock,
	.handshake = mod_handshake,
	.wants_read = mod_wants_read,
	.recv = mod_recv,
	.send = mod_send,
	.flush = mod_flush,
	.flush_pending = mod_flush_pending,
	.pending = mod_pending,
	.bye = mod_bye,
	.reason = mod_reason,
	.describe = mod_describe,
	.resumed = mod_resumed,
	.take_ticket = mod_take_ticket,
};
