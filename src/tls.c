/* tls.c - GnuTLS behind the tls.h API.
 *
 * Order follows GnuTLS's client example: credentials (one set per rule,
 * built on first use) -> init -> server name -> priority -> verification ->
 * transport -> handshake.  The transport calls the real libc functions, so
 * GnuTLS never reaches our own hooks. */
#include "tls.h"
#include "clock.h"
#include "tls_module.h"
#include "ticket.h"
#include "real.h"
#include "forklock.h"
#include "redact.h"
#include "identity.h"

/* The real libc functions, handed over by the library that loads us. */
static const struct real_fns *real_fns;
#define real (*real_fns)

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdint.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/crypto.h>
#include <gnutls/ocsp.h>

/* Which end of the connection a session is. */
enum tls_role { TLS_CLIENT, TLS_SERVER };

struct tls {
	gnutls_session_t session;
	enum tls_role role;
	const struct policy_rule *rule;
	atomic_int fd;           /* the transport: changed by tls_set_fd with
				  * no lock while I/O may run (LOCKING) */
	/* A reader and a writer may run at once (GnuTLS allows one of each),
	 * so each direction has its own transport flags and would-block mark. */
	int rflags, wflags;      /* extra flags for recv / send: the mode of the
				  * call in progress (io_begin) */
	bool r_eagain, w_eagain; /* the transport itself would have blocked */
	int last_errno;          /* errno of the last transport failure */
	bool ticket_arrived;
	bool ticket_early_ok;    /* the last ticket carried the early_data extension */
	uint32_t ticket_early_max;
	bool flush_pending;      /* a record GnuTLS encrypted but could not push */
	bool queued_unknown;     /* ... not counted as sent (size not known) */
	size_t send_cap;         /* the send record limit, once learnt (0: not yet) */
	size_t send_seen;        /* the most plaintext one record carried so far */
	/* A copy of the bytes a record queued without a known size was made
	 * of (queued_unknown), or, once it went (held_out), of those the record
	 * carried that the program was not yet told of: its next write must
	 * begin with them.  Allocated only when that happens. */
	unsigned char *held;
	size_t held_len;
	bool held_out;
	bool bye_wanted, bye_done; /* close_notify asked for / fully pushed */
	/* Read-ahead: GnuTLS asks for a record's 5-byte header, then its body;
	 * one recv() fills this buffer instead of two per record.  Freed when
	 * drained and the socket is idle, so idle connections do not keep it. */
	unsigned char *rx;
	size_t rx_off, rx_len;
	int (*keylog_write)(const char *line, size_t len); /* or NULL (tls.h) */
	bool keylog_written;
	void *guard_arg;         /* tls_params: may_push, update_requested */
	bool (*may_push)(void *arg);
	void (*update_requested)(void *arg);
	bool chain_cached;        /* verify_peer: a verification-cache hit */
	char *verify_name;
	/* Server sessions: */
	char *peer;               /* the client's address as text (reasons), or NULL */
	int alert;                /* the alert our refusal sends (-1: the one
				   * GnuTLS's error calls for) */
	char reason[1024];
};

/* ---- credentials: one per rule, built once, kept for the process ---- */

struct ocsp_file;

/* One per rule and role: a client's anchors and certificate, or a
 * server's certificate, client anchors and OCSP staple. */
struct cred_entry {
	const struct policy_rule *rule;
	enum tls_role role;
	gnutls_certificate_credentials_t cred;
	struct ocsp_file *ocsp;   /* server: the staple (ocsp-staple), or NULL */
	struct cred_entry *next;
};

FORKLOCK_MUTEX(cred_lock);
static struct cred_entry *creds;

static int verify_peer(gnutls_session_t session);
static void mod_free(struct tls *tls);

/* RFC 7512's pin-source names a file holding the PIN.  GnuTLS would ask
 * p11-kit, which finds nothing without a process-wide callback (and the
 * program's own GnuTLS settings are not ours to change), so read the file
 * here and hand GnuTLS the URI with pin-value instead.  Returns a malloc'd
 * URI, or NULL (ERR set) when the file cannot be read. */
static char *resolve_pin_source(const char *uri, char *err, size_t errlen)
{
	const char *at = strstr(uri, "pin-source="), *value, *end;
	char path[1024], pin[256], *out, *o;
	size_t plen = 0, i, n;
	ssize_t got;
	int fd;

	if (!at || (at != uri && at[-1] != '?' && at[-1] != '&' && at[-1] != ';'))
		return strdup(uri);
	value = at + strlen("pin-source=");
	end = value + strcspn(value, "&;");
	/* Percent-decode the path; accept file: URIs. */
	for (i = 0; value + i < end && plen < sizeof path - 1; i++) {
		if (value[i] == '%' && value + i + 2 < end + 1 && value[i + 1] && value[i + 2]) {
			char hex[3] = { value[i + 1], value[i + 2], 0 };

			path[plen++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else {
			path[plen++] = value[i];
		}
	}
	path[plen] = '\0';
	o = path;
	if (strncmp(o, "file://", 7) == 0)
		o += 7;
	else if (strncmp(o, "file:", 5) == 0)
		o += 5;
	fd = open(o, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read the PKCS#11 PIN file %s: %s", o, strerror(errno));
		return NULL;
	}
	got = real.read(fd, pin, sizeof pin - 1);
	real.close(fd);
	if (got < 0) {
		snprintf(err, errlen, "cannot read the PKCS#11 PIN file %s: %s", o, strerror(errno));
		return NULL;
	}
	pin[got] = '\0';
	pin[strcspn(pin, "\r\n")] = '\0';
	n = strlen(uri) + 3 * strlen(pin) + 16;
	out = malloc(n);
	if (!out) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o = out;
	memcpy(o, uri, (size_t)(at - uri));
	o += at - uri;
	o += sprintf(o, "pin-value=");
	for (i = 0; pin[i]; i++) {
		unsigned char c = (unsigned char)pin[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			*o++ = (char)c;
		else
			o += sprintf(o, "%%%02X", c);
	}
	strcpy(o, end);
	explicit_bzero(pin, sizeof pin);
	return out;
}

/* The rule's certificate chain and key (files or PKCS#11 URIs alike: GnuTLS
 * takes both here) into CRED; WHAT ("client", "server") names them in
 * ERR.  0, or -EINVAL with ERR filled (PINs hidden). */
static int load_cert_key(gnutls_certificate_credentials_t cred, const struct policy_rule *rule,
			 const char *what, char *err, size_t errlen)
{
	char *key = resolve_pin_source(rule->key, err, errlen);
	char shown[512];
	int ret;

	if (!key)
		return -EINVAL;
	ret = gnutls_certificate_set_x509_key_file(cred, rule->cert, key, GNUTLS_X509_FMT_PEM);
	if (strcmp(key, rule->key) != 0)
		explicit_bzero(key, strlen(key));
	free(key);
	if (ret >= 0)
		return 0;
	redact_pins(rule->key, shown, sizeof shown);
	snprintf(err, errlen, "cannot load %s certificate %s with key %s: %s", what, rule->cert, shown,
		 gnutls_strerror(ret));
	return -EINVAL;
}

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
	if (rule->cert && rule->key && load_cert_key(cred, rule, "client", err, errlen) < 0) {
		gnutls_certificate_free_credentials(cred);
		return -EINVAL;
	}
	gnutls_certificate_set_verify_function(cred, verify_peer);
	*out = cred;
	return 0;
fail:
	snprintf(err, errlen, "cannot allocate credentials: %s", gnutls_strerror(ret));
	return -ENOMEM;
}

/* ---- OCSP staple (servers): the rule's DER response, stapled when the
 * client asks; re-read when the file changes (one stat per handshake that
 * asks).  A file that cannot be read or is not a response for our
 * certificate keeps the last good one (an operator writing it in place);
 * an expired one is not stapled. ---- */

#define OCSP_MAX (64 * 1024)

struct ocsp_file {
	const char *path;         /* the rule's ocsp-staple */
	gnutls_certificate_credentials_t cred; /* its certificate 0 is ours */
	dev_t dev;                /* the file as last looked at */
	ino_t ino;
	off_t size;
	struct timespec mtime;
	unsigned char *der;       /* the response stapled, or NULL */
	size_t len;
	time_t next_update;       /* when it expires (-1: no nextUpdate) */
};

FORKLOCK_MUTEX(ocsp_lock);

/* Is DER (LEN bytes) an OCSP response about certificate 0 of CRED?  0 with
 * *NEXT its nextUpdate (-1: none), or -1 with ERR filled. */
static int ocsp_check(const unsigned char *der, size_t len, gnutls_certificate_credentials_t cred,
		      time_t *next, char *err, size_t errlen)
{
	gnutls_datum_t data = { (unsigned char *)der, (unsigned)len }, crt_der;
	gnutls_ocsp_resp_t resp = NULL;
	gnutls_x509_crt_t crt = NULL;
	time_t this_update, revoked;
	unsigned status;
	int ret;

	ret = gnutls_ocsp_resp_init(&resp);
	if (ret >= 0)
		ret = gnutls_ocsp_resp_import(resp, &data);
	if (ret >= 0)
		ret = gnutls_certificate_get_crt_raw(cred, 0, 0, &crt_der);
	if (ret >= 0)
		ret = gnutls_x509_crt_init(&crt);
	if (ret >= 0)
		ret = gnutls_x509_crt_import(crt, &crt_der, GNUTLS_X509_FMT_DER);
	if (ret >= 0 && (ret = gnutls_ocsp_resp_check_crt(resp, 0, crt)) < 0)
		snprintf(err, errlen, "it is not a response about the server certificate");
	else if (ret >= 0)
		ret = gnutls_ocsp_resp_get_single(resp, 0, NULL, NULL, NULL, NULL, &status, &this_update,
						  next, &revoked, NULL);
	if (ret < 0 && !err[0])
		snprintf(err, errlen, "%s", gnutls_strerror(ret));
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (resp)
		gnutls_ocsp_resp_deinit(resp);
	return ret < 0 ? -1 : 0;
}

/* Read OF's file (at most OCSP_MAX bytes) and, when it holds a response
 * about our certificate, make it the one stapled.  0, or -1 with ERR
 * filled (the last good response stays).  Called with ocsp_lock held, or
 * before OF is shared. */
static int ocsp_reload(struct ocsp_file *of, char *err, size_t errlen)
{
	unsigned char *der = NULL;
	size_t len = 0;
	ssize_t got;
	time_t next = (time_t)-1;
	int fd;

	err[0] = '\0';
	fd = real.open(of->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	der = malloc(OCSP_MAX + 1);
	while (der && len <= OCSP_MAX && (got = real.read(fd, der + len, OCSP_MAX + 1 - len)) > 0)
		len += (size_t)got;
	real.close(fd);
	if (!der || len == 0 || len > OCSP_MAX)
		snprintf(err, errlen, "%s", !der ? "out of memory" : len == 0 ? "the file is empty" : "the file is too large");
	else
		ocsp_check(der, len, of->cred, &next, err, errlen);
	if (err[0]) {
		free(der);
		return -1;
	}
	free(of->der);
	of->der = der;
	of->len = len;
	of->next_update = next;
	return 0;
}

/* Has OF's file changed since it was last looked at (ST: it now)? */
static bool ocsp_changed(struct ocsp_file *of, const struct stat *st)
{
	bool changed = st->st_dev != of->dev || st->st_ino != of->ino || st->st_size != of->size ||
		       st->st_mtim.tv_sec != of->mtime.tv_sec || st->st_mtim.tv_nsec != of->mtime.tv_nsec;

	of->dev = st->st_dev;
	of->ino = st->st_ino;
	of->size = st->st_size;
	of->mtime = st->st_mtim;
	return changed;
}

/* GnuTLS asks for the staple (the client sent status_request): a copy
 * of the response GnuTLS frees, or GNUTLS_E_NO_CERTIFICATE_STATUS. */
static int ocsp_staple(gnutls_session_t session, void *ptr, gnutls_datum_t *out)
{
	struct ocsp_file *of = ptr;
	int ret = GNUTLS_E_NO_CERTIFICATE_STATUS;
	char err[128];
	struct stat st;

	(void)session;
	pthread_mutex_lock(&ocsp_lock);
	if (stat(of->path, &st) == 0 && ocsp_changed(of, &st))
		(void)ocsp_reload(of, err, sizeof err);
	if (of->der && (of->next_update == (time_t)-1 || of->next_update > time(NULL)) &&
	    (out->data = gnutls_malloc(of->len))) {
		memcpy(out->data, of->der, of->len);
		out->size = (unsigned)of->len;
		ret = 0;
	}
	pthread_mutex_unlock(&ocsp_lock);
	return ret;
}

/* The rule's ocsp-staple file for CRED: loaded now (a load error is the
 * rule's), then stapled on request.  0, or -EINVAL with ERR filled. */
static int ocsp_setup(struct cred_entry *entry, gnutls_certificate_credentials_t cred, const char *path,
		      char *err, size_t errlen)
{
	struct ocsp_file *of = calloc(1, sizeof *of);
	char why[256];
	struct stat st;
	int ret;

	if (!of) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	of->path = path;
	of->cred = cred;
	if (stat(path, &st) == 0)
		ocsp_changed(of, &st);
	if (ocsp_reload(of, why, sizeof why) < 0) {
		snprintf(err, errlen, "cannot use the OCSP response %s: %s", path, why);
		free(of);
		return -EINVAL;
	}
	ret = gnutls_certificate_set_ocsp_status_request_function2(cred, 0, ocsp_staple, of);
	if (ret < 0) {
		snprintf(err, errlen, "cannot staple %s: %s", path, gnutls_strerror(ret));
		free(of->der);
		free(of);
		return -EINVAL;
	}
	entry->ocsp = of;
	return 0;
}

/* A server's credentials: the rule's certificate and key, the client-ca
 * anchors (mTLS), the OCSP staple.  0 with ENTRY's set, or a negative
 * errno with ERR filled. */
static int server_cred_build(const struct policy_rule *rule, struct cred_entry *entry, char *err, size_t errlen)
{
	const char *anchors = rule->client_ca ? rule->client_ca : "the system store";
	gnutls_certificate_credentials_t cred;
	int ret;

	if (!rule->cert || !rule->key) {
		snprintf(err, errlen, "an inbound rule needs cert and key");
		return -EINVAL;
	}
	ret = gnutls_certificate_allocate_credentials(&cred);
	if (ret < 0) {
		snprintf(err, errlen, "cannot allocate credentials: %s", gnutls_strerror(ret));
		return -ENOMEM;
	}
	if (load_cert_key(cred, rule, "server", err, errlen) < 0)
		goto fail;
	if (rule->client_ca || rule->client_ca_system) {
		ret = rule->client_ca ? gnutls_certificate_set_x509_trust_file(cred, rule->client_ca, GNUTLS_X509_FMT_PEM)
				      : gnutls_certificate_set_x509_system_trust(cred);
		if (ret <= 0) {
			snprintf(err, errlen, ret < 0 ? "cannot load client-ca anchors from %s: %s"
					: "no certificate found in %s (client-ca)", anchors, gnutls_strerror(ret));
			goto fail;
		}
	}
	if (rule->ocsp_staple && ocsp_setup(entry, cred, rule->ocsp_staple, err, errlen) < 0)
		goto fail;
	gnutls_certificate_set_verify_function(cred, verify_peer);
	entry->cred = cred;
	return 0;
fail:
	gnutls_certificate_free_credentials(cred);
	return -EINVAL;
}

/* The credentials of RULE in ROLE, built on first use and kept for the
 * process.  0 with *OUT set, or a negative errno with ERR filled. */
static int cred_get(const struct policy_rule *rule, enum tls_role role, gnutls_certificate_credentials_t *out,
		    char *err, size_t errlen)
{
	struct cred_entry *entry;
	int ret = 0;

	pthread_mutex_lock(&cred_lock);
	for (entry = creds; entry; entry = entry->next)
		if (entry->rule == rule && entry->role == role)
			break;
	if (!entry) {
		entry = calloc(1, sizeof *entry);
		if (!entry) {
			ret = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		if (role == TLS_SERVER)
			ret = server_cred_build(rule, entry, err, errlen);
		else
			ret = cred_build(rule, &entry->cred, err, errlen);
		if (ret < 0) {
			free(entry);
			goto out;
		}
		entry->rule = rule;
		entry->role = role;
		entry->next = creds;
		creds = entry;
	}
	*out = entry->cred;
out:
	pthread_mutex_unlock(&cred_lock);
	return ret;
}

/* ---- verification: chain, name and pins in one callback (GnuTLS keeps one
 * verify function per session: setting a second, e.g. for the pins, after
 * gnutls_session_set_verify_cert would replace its host name check) ---- */

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

/* Does the server's certificate carry the must-staple TLS feature (RFC 7633)? */
static bool must_staple(gnutls_session_t session)
{
	const gnutls_datum_t *chain;
	unsigned n_chain = 0, i, feature;
	gnutls_x509_crt_t crt;
	gnutls_x509_tlsfeatures_t features;
	bool found = false;

	chain = gnutls_certificate_get_peers(session, &n_chain);
	if (!chain || n_chain == 0 || gnutls_x509_crt_init(&crt) < 0)
		return false;
	if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_tlsfeatures_init(&features) >= 0) {
		if (gnutls_x509_crt_get_tlsfeatures(crt, features, 0, NULL) >= 0)
			for (i = 0; gnutls_x509_tlsfeatures_get(features, i, &feature) >= 0; i++)
				if (feature == 5)
					found = true;
		gnutls_x509_tlsfeatures_deinit(features);
	}
	gnutls_x509_crt_deinit(crt);
	return found;
}

#define OCSP_STATUS_BITS (GNUTLS_CERT_REVOKED | GNUTLS_CERT_INVALID_OCSP_STATUS | \
			  GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED | \
			  GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE)

/* The chain, name and purpose checked again with the same trust anchors but
 * without the stapled OCSP response (ocsp = off).  Returns a status. */
static unsigned verify_without_ocsp(gnutls_session_t session, gnutls_typed_vdata_st *data, unsigned n)
{
	gnutls_certificate_credentials_t cred;
	gnutls_x509_trust_list_t tlist;
	const gnutls_datum_t *chain;
	gnutls_x509_crt_t crts[16];
	unsigned n_chain = 0, i, n_crts = 0, status = GNUTLS_CERT_INVALID;

	if (gnutls_credentials_get(session, GNUTLS_CRD_CERTIFICATE, (void **)&cred) < 0)
		return status;
	gnutls_certificate_get_trust_list(cred, &tlist);
	chain = gnutls_certificate_get_peers(session, &n_chain);
	for (i = 0; chain && i < n_chain && i < 16; i++) {
		if (gnutls_x509_crt_init(&crts[n_crts]) < 0)
			break;
		if (gnutls_x509_crt_import(crts[n_crts], &chain[i], GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crts[n_crts]);
			break;
		}
		n_crts++;
	}
	if (n_crts == n_chain && n_crts > 0 &&
	    gnutls_x509_trust_list_verify_crt2(tlist, crts, n_crts, data, n,
					       GNUTLS_VERIFY_DISABLE_CRL_CHECKS, &status, NULL) < 0)
		status = GNUTLS_CERT_INVALID;
	for (i = 0; i < n_crts; i++)
		gnutls_x509_crt_deinit(crts[i]);
	return status;
}

/* ---- verification cache ----
 * A program that connects to the same server again and again (a client of
 * its database, a poller, a load generator) would check the same chain
 * against the same anchors for the same name every time: a signature check
 * per certificate and a full X.509 decode, about a third of a full
 * handshake's client CPU.  A successful check (chain, name, purpose and the
 * rule's pins) is remembered under a SHA-256 of the rule, the name and the
 * exact certificate bytes the server sent, for VCACHE_TTL seconds at most and
 * never past the earliest expiry in the chain.  The server's signature over
 * the handshake (CertificateVerify) is checked by GnuTLS on every
 * connection, so a hit still proves the server holds the key.  Not cached:
 * failures, and any check that involved a stapled OCSP response (its answer
 * has its own lifetime) or a rule with ocsp = require. */
#define VCACHE_SLOTS 32
#define VCACHE_TTL 300

struct vcache_entry {
	unsigned char key[32];
	time_t until;           /* wall clock: the earliest notAfter involved; 0: empty */
	long long mono_until;   /* monotonic: VCACHE_TTL after the check (clock steps
				 * cannot stretch it) */
};

static struct vcache_entry vcache[VCACHE_SLOTS];
static unsigned vcache_next;
FORKLOCK_MUTEX(vcache_lock);

static bool vcache_key(const struct tls *tls, const gnutls_datum_t *chain, unsigned n_chain,
		       unsigned char key[32])
{
	const struct policy_rule *rule = tls->rule;
	gnutls_hash_hd_t hash;
	uint32_t len;
	unsigned i;

	if (gnutls_hash_init(&hash, GNUTLS_DIG_SHA256) < 0)
		return false;
	gnutls_hash(hash, &rule, sizeof rule);
	len = tls->verify_name ? (uint32_t)strlen(tls->verify_name) + 1 : 0;
	gnutls_hash(hash, &len, sizeof len);
	if (len)
		gnutls_hash(hash, tls->verify_name, len);
	for (i = 0; i < n_chain; i++) {
		len = chain[i].size;
		gnutls_hash(hash, &len, sizeof len);
		gnutls_hash(hash, chain[i].data, chain[i].size);
	}
	gnutls_hash_deinit(hash, key);
	return true;
}

/* May this verification use the cache at all?  Not with ocsp = require,
 * nor when the server stapled a response for any certificate of its chain
 * (GnuTLS checks each; a response has a lifetime of its own). */
static bool vcache_usable(gnutls_session_t session, const struct tls *tls, unsigned n_chain)
{
	gnutls_datum_t staple;
	unsigned i;

	if (tls->rule->ocsp == POLICY_OCSP_REQUIRE)
		return false;
	for (i = 0; i < n_chain; i++)
		if (gnutls_ocsp_status_request_get2(session, i, &staple) >= 0)
			return false;
	return true;
}

static bool vcache_hit(const unsigned char key[32])
{
	time_t now = time(NULL);
	bool hit = false;
	unsigned i;

	/* Never wait (and never deadlock in a child forked mid-update): a busy
	 * cache is a miss. */
	if (pthread_mutex_trylock(&vcache_lock) != 0)
		return false;
	long long mono = now_ns();

	for (i = 0; i < VCACHE_SLOTS && !hit; i++)
		hit = vcache[i].until > now && vcache[i].mono_until > mono && memcmp(vcache[i].key, key, 32) == 0;
	pthread_mutex_unlock(&vcache_lock);
	return hit;
}

/* The expiry of the certificate DER, or -1. */
static time_t crt_expiry(const gnutls_datum_t *der)
{
	gnutls_x509_crt_t crt;
	time_t expiry = (time_t)-1;

	if (gnutls_x509_crt_init(&crt) < 0)
		return expiry;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) >= 0)
		expiry = gnutls_x509_crt_get_expiration_time(crt);
	gnutls_x509_crt_deinit(crt);
	return expiry;
}

/* The expiry of the trust anchor that issued LAST (the last certificate the
 * server sent; the anchor may expire before the chain does), or -1. */
static time_t anchor_expiry(gnutls_session_t session, const gnutls_datum_t *last)
{
	gnutls_certificate_credentials_t cred;
	gnutls_x509_trust_list_t tlist;
	gnutls_x509_crt_t crt, issuer;
	time_t expiry = (time_t)-1;

	if (gnutls_credentials_get(session, GNUTLS_CRD_CERTIFICATE, (void **)&cred) < 0)
		return expiry;
	gnutls_certificate_get_trust_list(cred, &tlist);
	if (gnutls_x509_crt_init(&crt) < 0)
		return expiry;
	if (gnutls_x509_crt_import(crt, last, GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_trust_list_get_issuer(tlist, crt, &issuer, GNUTLS_TL_GET_COPY) >= 0) {
		expiry = gnutls_x509_crt_get_expiration_time(issuer);
		gnutls_x509_crt_deinit(issuer);
	}
	gnutls_x509_crt_deinit(crt);
	return expiry;
}

static void vcache_store(gnutls_session_t session, const unsigned char key[32],
			 const gnutls_datum_t *chain, unsigned n_chain)
{
	time_t now = time(NULL), until = (time_t)-1, expiry;
	unsigned i;

	/* Every certificate involved: those sent, and the anchor that issued
	 * the last of them (an expiry we cannot learn: not cached). */
	for (i = 0; i <= n_chain; i++) {
		expiry = i < n_chain ? crt_expiry(&chain[i]) : anchor_expiry(session, &chain[n_chain - 1]);
		if (expiry == (time_t)-1)
			return;
		if (until == (time_t)-1 || expiry < until)
			until = expiry;
	}
	if (until <= now || pthread_mutex_trylock(&vcache_lock) != 0)
		return;
	for (i = 0; i < VCACHE_SLOTS; i++)
		if (memcmp(vcache[i].key, key, 32) == 0)
			break;
	if (i == VCACHE_SLOTS)
		i = vcache_next++ % VCACHE_SLOTS;
	memcpy(vcache[i].key, key, 32);
	vcache[i].until = until;
	vcache[i].mono_until = now_ns() + VCACHE_TTL * 1000000000LL;
	pthread_mutex_unlock(&vcache_lock);
}

/* ---- a server's client: the certificate's names (allow-client, the log)
 * and its verification ---- */

#define PEER_NAMES 16   /* URI and DNS SANs looked at, each (more: ignored,
			 * so a name beyond them is not allowed) */

struct peer_names {
	const char *uris[PEER_NAMES], *dns[PEER_NAMES];
	size_t n_uris, n_dns;
	const char *cn;           /* the subject CN, or NULL (none, or more than one) */
	char subject[256];
	char pool[4096];          /* the names' bytes */
	size_t used;
};

/* Does NAME (SIZE bytes) hold a control byte (NUL, a newline that would
 * forge a log line, DEL)?  No real name does. */
static bool has_control(const char *name, size_t size)
{
	size_t i;

	for (i = 0; i < size; i++)
		if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] == 0x7f)
			return true;
	return false;
}

/* Keep the NAME of SIZE bytes in N's pool: a pointer, or NULL (no room,
 * or a control byte inside: such a name matches nothing and is never
 * logged). */
static const char *names_keep(struct peer_names *n, const char *name, size_t size)
{
	char *at = n->pool + n->used;

	if (has_control(name, size) || size + 1 > sizeof n->pool - n->used)
		return NULL;
	memcpy(at, name, size);
	at[size] = '\0';
	n->used += size + 1;
	return at;
}

/* The subject, CN, URI and DNS SANs of the certificate DER: a malloc'd
 * peer_names, or NULL. */
static struct peer_names *peer_names_get(const gnutls_datum_t *der)
{
	struct peer_names *n = calloc(1, sizeof *n);
	gnutls_datum_t dn = { NULL, 0 };
	gnutls_x509_crt_t crt;
	char buf[1024];
	size_t size;
	unsigned i;
	int type;

	if (!n || gnutls_x509_crt_init(&crt) < 0) {
		free(n);
		return NULL;
	}
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(crt);
		free(n);
		return NULL;
	}
	if (gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
		snprintf(n->subject, sizeof n->subject, "%s", (char *)dn.data);
		gnutls_free(dn.data);
		for (i = 0; n->subject[i]; i++) /* never a forged log line */
			if ((unsigned char)n->subject[i] < 0x20 || (unsigned char)n->subject[i] == 0x7f)
				n->subject[i] = '?';
	}
	size = sizeof buf;
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size) >= 0 &&
	    strlen(buf) == size) {
		const char *cn = names_keep(n, buf, size);

		size = sizeof buf;
		if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0, buf, &size) < 0)
			n->cn = cn;
	}
	for (i = 0; i < 4 * PEER_NAMES; i++) {
		const char *kept;

		size = sizeof buf;
		type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &size, NULL);
		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (type == GNUTLS_SAN_URI && n->n_uris < PEER_NAMES && (kept = names_keep(n, buf, size)))
			n->uris[n->n_uris++] = kept;
		else if (type == GNUTLS_SAN_DNSNAME && n->n_dns < PEER_NAMES && (kept = names_keep(n, buf, size)))
			n->dns[n->n_dns++] = kept;
	}
	gnutls_x509_crt_deinit(crt);
	return n;
}

/* N as text for a reason: "subject ...; SANs URI:..., DNS:...". */
static void names_describe(const struct peer_names *n, char *out, size_t outlen)
{
	size_t len, i;

	len = (size_t)snprintf(out, outlen, "subject \"%s\"; SANs", n->subject);
	for (i = 0; i < n->n_uris && len < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "%s URI:%s", i ? "," : "", n->uris[i]);
	for (i = 0; i < n->n_dns && len < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "%s DNS:%s", i || n->n_uris ? "," : "", n->dns[i]);
	if (!n->n_uris && !n->n_dns && len < outlen)
		snprintf(out + len, outlen - len, " none");
}

/* N's identity for the log: its URI SANs, else DNS SANs, else "CN=...". */
static void names_identity(const struct peer_names *n, char *out, size_t outlen)
{
	const char *const *list = n->n_uris ? n->uris : n->dns;
	size_t count = n->n_uris ? n->n_uris : n->n_dns, len = 0, i;

	out[0] = '\0';
	for (i = 0; i < count && len < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "%s%s", i ? "," : "", list[i]);
	if (count == 0 && n->cn)
		snprintf(out, outlen, "CN=%s", n->cn);
}

/* The alert that tells a client why its chain was refused (STATUS). */
static int status_alert(unsigned status)
{
	if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
		return GNUTLS_A_UNKNOWN_CA;
	if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED))
		return GNUTLS_A_CERTIFICATE_EXPIRED;
	if (status & GNUTLS_CERT_REVOKED)
		return GNUTLS_A_CERTIFICATE_REVOKED;
	if (status & GNUTLS_CERT_PURPOSE_MISMATCH)
		return GNUTLS_A_UNSUPPORTED_CERTIFICATE;
	return GNUTLS_A_BAD_CERTIFICATE;
}

/* A server's check of its client: a chain to the client-ca anchors for TLS
 * client use, then allow-client.  0, or -1 with the reason and the alert
 * to send (tls->alert) set. */
static int verify_client(gnutls_session_t session, struct tls *tls)
{
	gnutls_typed_vdata_st data = { GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0 };
	const struct policy_rule *rule = tls->rule;
	gnutls_datum_t words = { NULL, 0 };
	const gnutls_datum_t *chain;
	unsigned n_chain = 0, status = 0;
	struct peer_names *names;
	unsigned char key[32];
	char who[480];
	bool cacheable;
	int ret;

	chain = gnutls_certificate_get_peers(session, &n_chain);
	if (!chain || n_chain == 0) {
		snprintf(tls->reason, sizeof tls->reason, "client%s%s sent no certificate (client-ca requires one)",
			 tls->peer ? " " : "", tls->peer ? tls->peer : "");
		tls->alert = GNUTLS_A_CERTIFICATE_REQUIRED;
		return -1;
	}
	cacheable = vcache_key(tls, chain, n_chain, key);
	if (cacheable && vcache_hit(key)) {
		tls->chain_cached = true;
		return 0;
	}
	names = peer_names_get(&chain[0]);
	if (!names) {
		snprintf(tls->reason, sizeof tls->reason, "cannot read the client's certificate");
		tls->alert = GNUTLS_A_BAD_CERTIFICATE;
		return -1;
	}
	names_describe(names, who, sizeof who);
	ret = gnutls_certificate_verify_peers(session, &data, 1, &status);
	if (ret < 0 || status != 0) {
		if (ret >= 0)
			gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &words, 0);
		snprintf(tls->reason, sizeof tls->reason, "client certificate rejected (%s): %s", who,
			 ret < 0 ? gnutls_strerror(ret) : words.data ? (char *)words.data : "unknown status");
		gnutls_free(words.data);
		tls->alert = ret < 0 ? GNUTLS_A_BAD_CERTIFICATE : status_alert(status);
		ret = -1;
	} else if (rule->n_allow_clients > 0 &&
		   !identity_allowed(rule->allow_clients, rule->n_allow_clients, names->uris, names->n_uris,
				     names->dns, names->n_dns, names->cn)) {
		snprintf(tls->reason, sizeof tls->reason, "client certificate not allowed by allow-client (%s)", who);
		tls->alert = GNUTLS_A_ACCESS_DENIED;
		ret = -1;
	} else if (cacheable) {
		vcache_store(session, key, chain, n_chain);
	}
	free(names);
	return ret < 0 ? -1 : 0;
}

static int verify_peer(gnutls_session_t session)
{
	struct tls *tls = gnutls_session_get_ptr(session);
	gnutls_typed_vdata_st data[2];
	gnutls_datum_t words = { NULL, 0 };
	const gnutls_datum_t *chain;
	unsigned status = 0, n = 0, n_chain = 0;
	unsigned char key[32];
	bool cacheable;
	int ret;

	if (tls->role == TLS_SERVER)
		return verify_client(session, tls);
	chain = gnutls_certificate_get_peers(session, &n_chain);
	cacheable = chain && n_chain > 0 && vcache_usable(session, tls, n_chain) && vcache_key(tls, chain, n_chain, key);
	if (cacheable && vcache_hit(key)) {
		tls->chain_cached = true;
		return 0;
	}
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
	/* ocsp = off: a stapled response is ignored, whatever it says (GnuTLS
	 * 3.7 asks for one anyway).  A must-staple certificate without one
	 * (GNUTLS_CERT_MISSING_OCSP_STATUS) is still refused. */
	if (tls->rule->ocsp == POLICY_OCSP_OFF && (status & OCSP_STATUS_BITS) && !must_staple(session))
		status = verify_without_ocsp(session, data, n);
	if (status != 0) {
		gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &words, 0);
		snprintf(tls->reason, sizeof tls->reason, "certificate rejected%s%s%s: %s",
			 tls->verify_name ? " for \"" : "", tls->verify_name ? tls->verify_name : "",
			 tls->verify_name ? "\"" : "", words.data ? (char *)words.data : "unknown status");
		gnutls_free(words.data);
		return -1;
	}
	if (tls->rule->ocsp == POLICY_OCSP_REQUIRE && !gnutls_ocsp_status_request_is_checked(session, 0)) {
		snprintf(tls->reason, sizeof tls->reason,
			 "server sent no valid stapled OCSP response (the rule says ocsp = require)");
		return -1;
	}
	if (tls->rule->n_pins > 0 && check_pins(tls) < 0)
		return -1;
	if (cacheable)
		vcache_store(session, key, chain, n_chain);
	return 0;
}

/* ---- transport: the real libc functions ---- */

/* A failed send: would it block, or why not (for the log). */
static ssize_t push_failed(struct tls *tls, ssize_t ret)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		tls->w_eagain = true;
	else
		tls->last_errno = errno;
	gnutls_transport_set_errno(tls->session, errno);
	return ret;
}

/* Another process owns the sending direction (owner.h): nothing goes out. */
static bool push_refused(struct tls *tls)
{
	if (!tls->may_push || tls->may_push(tls->guard_arg))
		return false;
	tls->last_errno = EIO;
	gnutls_transport_set_errno(tls->session, EIO);
	errno = EIO;
	return true;
}

static ssize_t transport_push(gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
	struct tls *tls = ptr;
	ssize_t ret;

	if (push_refused(tls))
		return -1;
	ret = real.send(tls->fd, buf, len, MSG_NOSIGNAL | tls->wflags);

	return ret < 0 ? push_failed(tls, ret) : ret;
}

static ssize_t transport_vec_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
	struct tls *tls = ptr;
	struct msghdr msg;
	ssize_t ret;

	if (push_refused(tls))
		return -1;
	memset(&msg, 0, sizeof msg);
	msg.msg_iov = (struct iovec *)iov;
	msg.msg_iovlen = iovcnt;
	ret = real.sendmsg(tls->fd, &msg, MSG_NOSIGNAL | tls->wflags);
	return ret < 0 ? push_failed(tls, ret) : ret;
}

#define RX_CAP (16384 + 256 + 5 + 1024)

static ssize_t transport_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	struct tls *tls = ptr;
	ssize_t ret;
	size_t n;

	if (tls->rx_len == 0) {
		if (!tls->rx && !(tls->rx = malloc(RX_CAP)))
			ret = real.recv(tls->fd, buf, len, tls->rflags); /* no memory: no read-ahead */
		else if ((ret = real.recv(tls->fd, tls->rx, RX_CAP, tls->rflags)) > 0) {
			tls->rx_off = 0;
			tls->rx_len = (size_t)ret;
		}
		if (ret < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				tls->r_eagain = true;
				/* Idle: give the buffer back. */
				free(tls->rx);
				tls->rx = NULL;
			} else {
				tls->last_errno = errno;
			}
			gnutls_transport_set_errno(tls->session, errno);
			return ret;
		}
		if (ret == 0 || !tls->rx)
			return ret;
	}
	n = len < tls->rx_len ? len : tls->rx_len;
	memcpy(buf, tls->rx + tls->rx_off, n);
	tls->rx_off += n;
	tls->rx_len -= n;
	return (ssize_t)n;
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

	if ((tls->rflags & MSG_DONTWAIT) || tls->rx_len > 0)
		return 1;
	fl = real.fcntl(tls->fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		return 1;
	ret = real.poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
	if (ret < 0)
		gnutls_transport_set_errno(tls->session, errno);
	return ret;
}

/* What a ClientHello offered: its ALPN protocols as text, TLS 1.3. */
struct offered {
	char text[200];
	bool any;                 /* it had an ALPN extension */
	bool tls13;               /* its supported_versions has TLS 1.3 */
};

static int offered_ext(void *ctx, unsigned tls_id, const unsigned char *data, unsigned size)
{
	struct offered *o = ctx;
	size_t len = 0, i;
	unsigned at, n;

	if (tls_id == 43) {
		for (at = 1; at + 1 < size && at < 1u + data[0]; at += 2)
			if (data[at] == 3 && data[at + 1] == 4)
				o->tls13 = true;
		return 0;
	}
	if (tls_id != 16)
		return 0;
	o->any = true;
	for (at = 2; at < size && len + 4 < sizeof o->text; at += n) {
		n = data[at++];
		if (len)
			o->text[len++] = ',';
		for (i = 0; i < n && at + i < size && len + 4 < sizeof o->text; i++)
			o->text[len++] = data[at + i] > 0x20 && data[at + i] < 0x7f ? (char)data[at + i] : '?';
	}
	o->text[len] = '\0';
	return 0;
}

/* Server, a ClientHello about to be parsed: refuse a client that does not
 * offer TLS 1.3 with protocol_version, as RFC 8446 asks (GnuTLS 3.7.9
 * answers a TLS 1.2 one with handshake_failure: it negotiates 1.2 and
 * then finds no cipher suite).  0, or the error that ends the handshake. */
static int version_check(struct tls *tls, const gnutls_datum_t *hello)
{
	struct offered offered = { "", false, false };

	if (hello && hello->data &&
	    gnutls_ext_raw_parse(&offered, offered_ext, hello, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO) < 0)
		return 0; /* GnuTLS's own parser will say what is wrong */
	if (offered.tls13)
		return 0;
	snprintf(tls->reason, sizeof tls->reason, "client%s%s does not offer TLS 1.3", tls->peer ? " " : "",
		 tls->peer ? tls->peer : "");
	tls->alert = GNUTLS_A_PROTOCOL_VERSION;
	return GNUTLS_E_UNSUPPORTED_VERSION_PACKET;
}

/* Server, alpn-required, the ClientHello just parsed: refuse a client
 * that offered none of the rule's protocols.  (GnuTLS 3.7's
 * GNUTLS_ALPN_MANDATORY refuses a client whose list has none of ours, but
 * not one that sent no ALPN at all.)  0, or the error that ends the
 * handshake (GnuTLS then sends no_application_protocol). */
static int alpn_check(struct tls *tls, const gnutls_datum_t *hello)
{
	const struct policy_rule *rule = tls->rule;
	struct offered offered = { "", false, false };
	gnutls_datum_t proto;
	char ours[200];
	size_t len = 0, i;

	if (gnutls_alpn_get_selected_protocol(tls->session, &proto) == 0)
		return 0;
	if (hello && hello->data)
		(void)gnutls_ext_raw_parse(&offered, offered_ext, hello, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO);
	ours[0] = '\0';
	for (i = 0; i < rule->n_alpn && len < sizeof ours; i++)
		len += (size_t)snprintf(ours + len, sizeof ours - len, "%s%s", i ? "," : "", rule->alpn[i]);
	snprintf(tls->reason, sizeof tls->reason, "client%s%s offered %s%s, alpn-required accepts only %s",
		 tls->peer ? " " : "", tls->peer ? tls->peer : "", offered.any ? "ALPN " : "no ALPN",
		 offered.text, ours);
	tls->alert = GNUTLS_A_NO_APPLICATION_PROTOCOL;
	return GNUTLS_E_NO_APPLICATION_PROTOCOL;
}

/* One hook per session (GnuTLS keeps one): it looks at the message type.
 * A client keeps tickets; either role hears a KeyUpdate that asks for
 * ours; a server checks ALPN after the ClientHello. */
static int session_hook(gnutls_session_t session, unsigned htype, unsigned when,
			unsigned incoming, const gnutls_datum_t *msg)
{
	struct tls *tls = gnutls_session_get_ptr(session);

	if (tls->role == TLS_SERVER && htype == GNUTLS_HANDSHAKE_CLIENT_HELLO && incoming) {
		if (when == GNUTLS_HOOK_PRE)
			return version_check(tls, msg);
		if (tls->rule->alpn_required && tls->rule->n_alpn > 0)
			return alpn_check(tls, msg);
		return 0;
	}

	/* A KeyUpdate that asks for ours: another process may be the writer. */
	if (htype == GNUTLS_HANDSHAKE_KEY_UPDATE && incoming && when == GNUTLS_HOOK_POST && msg &&
	    msg->size == 1 && msg->data[0] == 1 && tls->update_requested)
		tls->update_requested(tls->guard_arg);
	if (htype != GNUTLS_HANDSHAKE_NEW_SESSION_TICKET || !incoming || tls->role != TLS_CLIENT)
		return 0;
	if (when == GNUTLS_HOOK_PRE && msg && msg->data) {
		/* GnuTLS 3.7 would offer early data with any ticket: only a
		 * ticket that carries the extension allows it. */
		uint32_t max = ticket_early_max(msg->data, msg->size);

		if (!max && msg->size > 4)
			max = ticket_early_max(msg->data + 4, msg->size - 4);
		tls->ticket_early_max = max;
		tls->ticket_early_ok = max > 0;
	} else if (when == GNUTLS_HOOK_POST) {
		tls->ticket_arrived = true;
	}
	return 0;
}

/* Our own keylog function, always set: it keeps SSLKEYLOGFILE from writing
 * secrets, and writes the NSS key log only where the policy names a file,
 * through the library's callback (tls_params.keylog_write), which pins the
 * key log's number for the write. */
static int keylog_write(gnutls_session_t session, const char *label, const gnutls_datum_t *secret)
{
	struct tls *tls = gnutls_session_get_ptr(session);
	gnutls_datum_t client_random, server_random;
	char line[512];
	size_t len, i;

	if (!tls || !tls->keylog_write)
		return 0;
	gnutls_session_get_random(session, &client_random, &server_random);
	if (client_random.size != 32 || secret->size > 64)
		return 0;
	len = (size_t)snprintf(line, sizeof line, "%s ", label);
	for (i = 0; i < client_random.size; i++)
		len += (size_t)snprintf(line + len, sizeof line - len, "%02x", client_random.data[i]);
	line[len++] = ' ';
	for (i = 0; i < secret->size; i++)
		len += (size_t)snprintf(line + len, sizeof line - len, "%02x", secret->data[i]);
	line[len++] = '\n';
	if (tls->keylog_write(line, len) == 0)
		tls->keylog_written = true;
	return 0;
}

/* ---- sessions ---- */

/* "-VERS-ALL:+VERS-TLS1.3", then the rule's groups and suites in its
 * order (a server's order wins: %SERVER_PRECEDENCE). */
static void priority_for(const struct policy_rule *rule, enum tls_role role, char *out, size_t outlen)
{
	size_t len, i;

	len = (size_t)snprintf(out, outlen, "-VERS-ALL:+VERS-TLS1.3%s", role == TLS_SERVER ? ":%SERVER_PRECEDENCE" : "");
	if (rule->n_groups) {
		len += (size_t)snprintf(out + len, outlen - len, ":-GROUP-ALL");
		for (i = 0; i < rule->n_groups && len < outlen; i++)
			len += (size_t)snprintf(out + len, outlen - len, ":+GROUP-%s", rule->groups[i]);
	} else {
		/* GnuTLS 3.7 offers P-256 first; X25519 is faster (nettle) and
		 * what OpenSSL and browsers lead with. */
		len += (size_t)snprintf(out + len, outlen - len, ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1"
					":+GROUP-SECP384R1:+GROUP-SECP521R1:+GROUP-X448"
					":+GROUP-FFDHE2048:+GROUP-FFDHE3072:+GROUP-FFDHE4096");
	}
	if (rule->n_ciphers && len < outlen) {
		len += (size_t)snprintf(out + len, outlen - len, ":-CIPHER-ALL");
		for (i = 0; i < rule->n_ciphers && len < outlen; i++)
			len += (size_t)snprintf(out + len, outlen - len, ":+%s", rule->ciphers[i]);
	}
}

/* The rule's ALPN protocols, in its order (none: nothing offered); a
 * server picks by its own order. */
static int set_alpn(gnutls_session_t session, const struct policy_rule *rule, enum tls_role role)
{
	gnutls_datum_t protos[16];
	size_t i, n = rule->n_alpn < 16 ? rule->n_alpn : 16;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		protos[i].data = (unsigned char *)rule->alpn[i];
		protos[i].size = strlen(rule->alpn[i]);
	}
	return gnutls_alpn_set_protocols(session, protos, n, role == TLS_SERVER ? GNUTLS_ALPN_SERVER_PRECEDENCE : 0);
}

/* Everything a session needs whatever its role: the GnuTLS session with
 * FLAGS (GNUTLS_CLIENT or GNUTLS_SERVER and the role's own), its
 * credentials CRED, the rule's priorities and ALPN list, our key log,
 * ticket and KeyUpdate hook, handshake timeout, and the transport.
 * Return 0 with *OUT set, or a negative errno with ERR filled. */
static int session_new(struct tls **out, const struct tls_params *params, enum tls_role role,
		       unsigned flags, gnutls_certificate_credentials_t cred, char *err, size_t errlen)
{
	const struct policy_rule *rule = params->rule;
	const char *where = "init";
	struct tls *tls;
	char prio[1024];
	int ret;

	tls = calloc(1, sizeof *tls);
	if (!tls) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	tls->role = role;
	tls->rule = rule;
	tls->alert = -1;
	atomic_init(&tls->fd, params->fd);
	tls->keylog_write = params->keylog_write;
	tls->guard_arg = params->guard_arg;
	tls->may_push = params->may_push;
	tls->update_requested = params->update_requested;
	ret = gnutls_init(&tls->session, flags | GNUTLS_NO_SIGNAL);
	if (ret < 0) {
		tls->session = NULL;
		goto fail;
	}
	gnutls_session_set_ptr(tls->session, tls);
	/* Our own keylog function keeps SSLKEYLOGFILE from writing secrets. */
	gnutls_session_set_keylog_function(tls->session, keylog_write);
	/* TLS 1.3 only, on top of the system's policy: no fallback, ever. */
	priority_for(rule, role, prio, sizeof prio);
	where = "priority";
	ret = gnutls_set_default_priority_append(tls->session, prio, NULL, 0);
	if (ret >= 0) {
		where = "credentials";
		ret = gnutls_credentials_set(tls->session, GNUTLS_CRD_CERTIFICATE, cred);
	}
	if (ret >= 0) {
		where = "ALPN";
		ret = set_alpn(tls->session, rule, role);
	}
	if (ret < 0)
		goto fail;
	/* Tickets and KeyUpdates (one hook per session: it looks at the type). */
	gnutls_handshake_set_hook_function(tls->session, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_BOTH, session_hook);
	gnutls_handshake_set_timeout(tls->session, rule->handshake_timeout_ms ? rule->handshake_timeout_ms
									     : 10000);
	gnutls_transport_set_ptr(tls->session, tls);
	gnutls_transport_set_push_function(tls->session, transport_push);
	gnutls_transport_set_vec_push_function(tls->session, transport_vec_push);
	gnutls_transport_set_pull_function(tls->session, transport_pull);
	gnutls_transport_set_pull_timeout_function(tls->session, transport_pull_timeout);
	*out = tls;
	return 0;
fail:
	snprintf(err, errlen, "TLS session setup (%s): %s", where, gnutls_strerror(ret));
	mod_free(tls);
	return -EINVAL;
}

/* A client session: the rule's trust anchors and client certificate, the
 * name to send and to verify, the ticket to resume with.  (A server
 * session is the same shape: its credentials are the rule's certificate
 * and key, session_new gets GNUTLS_SERVER and TLS_SERVER, and every call
 * after creation is shared.) */
static int mod_new_client(struct tls **out, const struct tls_client_params *params, char *err,
			  size_t errlen)
{
	const struct policy_rule *rule = params->common.rule;
	unsigned flags = GNUTLS_CLIENT | GNUTLS_KEY_SHARE_TOP;
	gnutls_certificate_credentials_t cred;
	struct tls *tls;
	int ret;

	ret = cred_get(rule, TLS_CLIENT, &cred, err, errlen);
	if (ret < 0)
		return ret;
	/* Without this GnuTLS sends no certificate when the server's CA list
	 * does not name our issuer. */
	if (rule->cert)
		flags |= GNUTLS_FORCE_CLIENT_CERT;
	if (params->early_data)
		flags |= GNUTLS_ENABLE_EARLY_DATA;
	ret = session_new(&tls, &params->common, TLS_CLIENT, flags, cred, err, errlen);
	if (ret < 0)
		return ret;
	if (params->verify_name && !(tls->verify_name = strdup(params->verify_name))) {
		mod_free(tls);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (params->sni) {
		ret = gnutls_server_name_set(tls->session, GNUTLS_NAME_DNS, params->sni, strlen(params->sni));
		if (ret < 0) {
			snprintf(err, errlen, "TLS session setup (server name): %s", gnutls_strerror(ret));
			mod_free(tls);
			return -EINVAL;
		}
	}
	/* A stale or foreign ticket only costs a full handshake. */
	if (params->ticket && params->ticket_len)
		gnutls_session_set_data(tls->session, params->ticket, params->ticket_len);
	*out = tls;
	return 0;
}

/* Tickets (RFC 8446 4.6.1): a key of the rule's own, derived from the
 * process's master key MASTER (ticket_key_for), which GnuTLS turns into
 * the key of the current period and accepts the previous period's as
 * well (lib/stek.c: SHA3-512 of the period number and our key, a period
 * being 3 x the ticket lifetime: 12 hours with TICKET_LIFETIME). */
#define TICKET_LIFETIME (4 * 3600)

/* Feed S, its length first (so that "ab","c" and "a","bc" differ). */
static void hmac_str(gnutls_hmac_hd_t h, const char *s)
{
	uint32_t len = s ? (uint32_t)strlen(s) : 0xffffffffu;

	gnutls_hmac(h, &len, sizeof len);
	if (s)
		gnutls_hmac(h, s, strlen(s));
}

/* RULE's ticket key: HMAC-SHA-512 under MASTER of the rule's name, line
 * and client checks.  A ticket resumes only under the rule that issued it
 * (resumption skips the client certificate: a ticket from a rule without
 * client-ca must not open a rule with it), and a change of client-ca or
 * allow-client (a new policy after exec) voids old tickets.  0 or a
 * GnuTLS error. */
static int ticket_key_for(const unsigned char *master, const struct policy_rule *rule,
			  unsigned char out[TLS_TICKET_KEY_LEN])
{
	gnutls_hmac_hd_t h;
	uint32_t word;
	size_t i;
	int ret;

	ret = gnutls_hmac_init(&h, GNUTLS_MAC_SHA512, master, TLS_TICKET_KEY_LEN);
	if (ret < 0)
		return ret;
	hmac_str(h, "tlsshim inbound ticket key 1");
	hmac_str(h, rule->name);
	word = rule->line;
	gnutls_hmac(h, &word, sizeof word);
	hmac_str(h, rule->client_ca);
	hmac_str(h, rule->client_ca_system ? "system" : "");
	for (i = 0; i < rule->n_allow_clients; i++) {
		word = (uint32_t)rule->allow_clients[i].kind;
		gnutls_hmac(h, &word, sizeof word);
		hmac_str(h, rule->allow_clients[i].pattern);
	}
	gnutls_hmac_deinit(h, out);
	return 0;
}

/* Issue and accept tickets on TLS's server session. */
static int enable_tickets(struct tls *tls, const unsigned char *master)
{
	unsigned char key[TLS_TICKET_KEY_LEN];
	gnutls_datum_t datum = { key, sizeof key };
	int ret;

	ret = ticket_key_for(master, tls->rule, key);
	if (ret >= 0) {
		gnutls_db_set_cache_expiration(tls->session, TICKET_LIFETIME);
		ret = gnutls_session_ticket_enable_server(tls->session, &datum);
	}
	explicit_bzero(key, sizeof key);
	return ret;
}

/* A server session (an inbound rule): the rule's certificate and key, a
 * required client certificate with client-ca, tickets under the process's
 * key.  Never GNUTLS_ENABLE_EARLY_DATA: 0-RTT data could be replayed (no
 * anti-replay here), so a client's early data is skipped and its bytes
 * come again after the handshake. */
/* The credentials of RULE's role, built now and cached (tls_preload). */
static int mod_preload(const struct policy_rule *rule, char *err, size_t errlen)
{
	gnutls_certificate_credentials_t cred;

	return cred_get(rule, rule->inbound ? TLS_SERVER : TLS_CLIENT, &cred, err, errlen);
}

static int mod_new_server(struct tls **out, const struct tls_server_params *params, char *err, size_t errlen)
{
	const struct policy_rule *rule = params->common.rule;
	gnutls_certificate_credentials_t cred;
	struct tls *tls;
	int ret;

	ret = cred_get(rule, TLS_SERVER, &cred, err, errlen);
	if (ret < 0)
		return ret;
	ret = session_new(&tls, &params->common, TLS_SERVER, GNUTLS_SERVER, cred, err, errlen);
	if (ret < 0)
		return ret;
	if (params->peer && !(tls->peer = strdup(params->peer))) {
		mod_free(tls);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (rule->client_ca || rule->client_ca_system) {
		gnutls_certificate_server_set_request(tls->session, GNUTLS_CERT_REQUIRE);
		/* The system store's names would make a CertificateRequest of
		 * tens of kilobytes. */
		if (rule->client_ca_system)
			gnutls_certificate_send_x509_rdn_sequence(tls->session, 1);
	}
	if (params->ticket_key && rule->session_tickets && (ret = enable_tickets(tls, params->ticket_key)) < 0) {
		snprintf(err, errlen, "TLS session setup (tickets): %s", gnutls_strerror(ret));
		mod_free(tls);
		return -EINVAL;
	}
	*out = tls;
	return 0;
}

static void mod_free(struct tls *tls)
{
	if (!tls)
		return;
	if (tls->session)
		gnutls_deinit(tls->session);
	free(tls->rx);
	free(tls->held);
	free(tls->verify_name);
	free(tls->peer);
	free(tls);
}

static void mod_set_fd(struct tls *tls, int fd)
{
	atomic_store(&tls->fd, fd);
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
	case GNUTLS_E_CERTIFICATE_REQUIRED:
		snprintf(tls->reason, sizeof tls->reason, "client%s%s sent no certificate (client-ca requires one)",
			 tls->peer ? " " : "", tls->peer ? tls->peer : "");
		return -ECONNRESET;
	case GNUTLS_E_NO_APPLICATION_PROTOCOL:
		if (!tls->reason[0])
			snprintf(tls->reason, sizeof tls->reason, "no ALPN protocol in common");
		return -ECONNRESET;
	case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
		if (tls->role != TLS_SERVER)
			goto other;
		if (!tls->reason[0])
			snprintf(tls->reason, sizeof tls->reason, "client%s%s does not offer TLS 1.3",
				 tls->peer ? " " : "", tls->peer ? tls->peer : "");
		return -ECONNRESET;
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
		alert = gnutls_alert_get(tls->session);
		snprintf(tls->reason, sizeof tls->reason, "fatal alert received during %s: %s (%d)%s",
			 during, gnutls_alert_get_name(alert) ? gnutls_alert_get_name(alert) : "unknown",
			 alert, strcmp(during, "handshake") != 0 || tls->role != TLS_CLIENT ? "" :
			 alert == GNUTLS_A_PROTOCOL_VERSION ? " (does the server speak TLS 1.3?)" :
			 alert == GNUTLS_A_HANDSHAKE_FAILURE ?
			 " (does the server speak TLS 1.3, with a cipher suite and group in common?)" : "");
		return -ECONNRESET;
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
		snprintf(tls->reason, sizeof tls->reason,
			 "peer closed the connection without close_notify during %s (%s)", during,
			 strcmp(during, "handshake") != 0 ? "truncated" :
			 tls->role == TLS_CLIENT ? "does the server speak TLS 1.3?" : "the client gave up");
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
		/* An OpenSSL client refusing our certificate sends an alert
		 * GnuTLS 3.7 cannot read: it says only "Decryption has failed". */
		if (tls->role != TLS_SERVER || strcmp(during, "handshake") != 0)
			goto other;
		snprintf(tls->reason, sizeof tls->reason, "handshake failed: the client's answer could not be "
			 "decrypted (GnuTLS error %d); an OpenSSL client (curl, python) that rejects the server "
			 "certificate -- unknown CA, wrong name -- ends the handshake this way", ret);
		return -EPROTO;
	case GNUTLS_E_UNEXPECTED_PACKET:
	default:
	other:
		snprintf(tls->reason, sizeof tls->reason, "%s failed: %s (GnuTLS error %d)", during,
			 gnutls_strerror(ret), ret);
		return -EPROTO;
	}
}

/* We end the handshake (the certificate was rejected, the server broke
 * the protocol): tell the server why with a fatal alert, as RFC 8446 asks,
 * instead of a bare close.  Never when the transport failed or the server
 * ended it, and never waiting for the socket. */
static void refuse_with_alert(struct tls *tls, int err)
{
	switch (err) {
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
	case GNUTLS_E_PUSH_ERROR:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_TIMEDOUT:
		return;
	}
	int wflags = tls->wflags;

	tls->wflags = MSG_DONTWAIT;
	if (tls->alert >= 0) /* our own check said which */
		(void)gnutls_alert_send(tls->session, GNUTLS_AL_FATAL, (gnutls_alert_description_t)tls->alert);
	else if (err == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR || err == GNUTLS_E_CERTIFICATE_ERROR)
		(void)gnutls_alert_send(tls->session, GNUTLS_AL_FATAL, GNUTLS_A_BAD_CERTIFICATE);
	else
		(void)gnutls_alert_send_appropriate(tls->session, err);
	tls->wflags = wflags;
}

/* ---- calls that move records: the mode is an argument, one retry rule ----
 *
 * The transport functions read the mode of their direction from rflags /
 * wflags, which a call sets on entry (io_begin) and clears on exit
 * (io_end).  A reader and a writer may run at once (GnuTLS allows one of
 * each; conn.h's rlock and wlock make sure there is no more), so each
 * call touches only the directions it uses. */

#define DIR_READ 1
#define DIR_WRITE 2
/* outcome(): call GnuTLS again.  Negative and outside errno's range, as
 * TLS_WANT_* (tls.h): never mistaken for a byte count or an error. */
#define AGAIN (-0x10010)

/* A call in mode IO begins on the directions DIRS.  The caller holds them. */
static void io_begin(struct tls *tls, unsigned dirs, enum tls_io io)
{
	int flags = io == TLS_NONBLOCKING ? MSG_DONTWAIT : 0;

	if (dirs & DIR_READ)
		tls->rflags = flags;
	if (dirs & DIR_WRITE)
		tls->wflags = flags;
}

/* ... and ends: the directions are back to the socket's own mode. */
static void io_end(struct tls *tls, unsigned dirs)
{
	if (dirs & DIR_READ)
		tls->rflags = 0;
	if (dirs & DIR_WRITE)
		tls->wflags = 0;
}

/* Before each GnuTLS call: forget the last would-block of DIRS. */
static void io_arm(struct tls *tls, unsigned dirs)
{
	if (dirs & DIR_READ)
		tls->r_eagain = false;
	if (dirs & DIR_WRITE)
		tls->w_eagain = false;
}

/* What a call on DIRS that would block waits for.  A call on one direction
 * waits for that one; the handshake (both directions, both ours) for what
 * GnuTLS says.  (Only the handshake asks GnuTLS: its direction mark is
 * written by the reader and the writer alike.) */
static int want_of(struct tls *tls, unsigned dirs)
{
	if (dirs == DIR_READ)
		return TLS_WANT_POLLIN;
	if (dirs == DIR_WRITE)
		return TLS_WANT_POLLOUT;
	return gnutls_record_get_direction(tls->session) ? TLS_WANT_POLLOUT : TLS_WANT_POLLIN;
}

/* The retry rule of every call that moves records.  RET (< 0) is what
 * GnuTLS returned to a call on DIRS; return AGAIN (call it again) or the
 * call's result:
 * - GNUTLS_E_AGAIN when the transport of DIRS would block: what the call
 *   waits for, TLS_WANT_POLLIN or TLS_WANT_POLLOUT (want_of).  Without that,
 *   GnuTLS handled a record that carried no data (a ticket, a KeyUpdate):
 *   AGAIN.
 * - GNUTLS_E_INTERRUPTED: a signal interrupted a blocking wait: -EINTR
 *   (in a non-blocking call, which never waits: the WANT).
 * - Another error GnuTLS calls non-fatal (a warning alert): AGAIN when
 *   the call reads; else, as any other error, a negative errno with the
 *   reason set (fatal). */
static int outcome(struct tls *tls, int ret, unsigned dirs, const char *during)
{
	bool blocked = ((dirs & DIR_READ) && tls->r_eagain) || ((dirs & DIR_WRITE) && tls->w_eagain);
	int flags = dirs & DIR_READ ? tls->rflags : tls->wflags;

	if (ret == GNUTLS_E_AGAIN)
		return blocked ? want_of(tls, dirs) : AGAIN;
	if (ret == GNUTLS_E_INTERRUPTED)
		return flags & MSG_DONTWAIT ? want_of(tls, dirs) : -EINTR;
	if ((dirs & DIR_READ) && !gnutls_error_is_fatal(ret))
		return AGAIN;
	return fatal(tls, ret, during);
}

static bool is_want(ssize_t ret)
{
	return ret == TLS_WANT_POLLIN || ret == TLS_WANT_POLLOUT;
}

static int mod_handshake(struct tls *tls, enum tls_io io)
{
	int ret;

	io_begin(tls, DIR_READ | DIR_WRITE, io);
	do {
		io_arm(tls, DIR_READ | DIR_WRITE);
		ret = gnutls_handshake(tls->session);
		if (ret < 0 && gnutls_error_is_fatal(ret))
			refuse_with_alert(tls, ret);
	} while (ret < 0 && (ret = outcome(tls, ret, DIR_READ | DIR_WRITE, "handshake")) == AGAIN);
	io_end(tls, DIR_READ | DIR_WRITE);
	return ret;
}

static ssize_t mod_recv(struct tls *tls, void *buf, size_t len, enum tls_io io)
{
	ssize_t ret;

	if (len == 0)
		return 0;
	io_begin(tls, DIR_READ, io);
	do {
		io_arm(tls, DIR_READ);
		ret = gnutls_record_recv(tls->session, buf, len);
	} while (ret < 0 && (ret = outcome(tls, (int)ret, DIR_READ, "read")) == AGAIN);
	io_end(tls, DIR_READ);
	return ret;
}

/* ---- the program's bytes as a vector ---- */

/* A position in the program's buffers. */
struct cursor {
	const struct iovec *iov, *end; /* the current buffer (not empty while
					* bytes are left), one past the last */
	size_t off;                    /* bytes of *iov already taken */
	size_t left;                   /* bytes left in all */
};

/* Step over empty buffers (their base may be NULL: BEAM's writev). */
static void cur_settle(struct cursor *cur)
{
	while (cur->iov < cur->end && cur->off == cur->iov->iov_len) {
		cur->iov++;
		cur->off = 0;
	}
}

static void cur_init(struct cursor *cur, const struct iovec *iov, int iovcnt)
{
	int i;

	cur->iov = iov;
	cur->end = iov + (iovcnt > 0 ? iovcnt : 0);
	cur->off = 0;
	cur->left = 0;
	for (i = 0; i < iovcnt; i++)
		cur->left += iov[i].iov_len;
	cur_settle(cur);
}

/* Take N bytes (no more than are left). */
static void cur_skip(struct cursor *cur, size_t n)
{
	size_t step;

	cur->left -= n;
	while (n > 0 && cur->iov < cur->end) {
		step = cur->iov->iov_len - cur->off;
		if (step > n)
			step = n;
		cur->off += step;
		n -= step;
		cur_settle(cur);
	}
}

/* The next N bytes (no more than are left) compared with MEM, or, when
 * COPY, copied into it.  Return true if they differ. */
static bool cur_bytes(const struct cursor *cur, unsigned char *mem, size_t n, bool copy)
{
	const struct iovec *v = cur->iov;
	size_t off = cur->off, step;
	const unsigned char *from;

	for (; n > 0 && v < cur->end; v++, off = 0) {
		step = v->iov_len - off < n ? v->iov_len - off : n;
		if (step == 0)
			continue;
		from = (const unsigned char *)v->iov_base + off;
		if (copy)
			memcpy(mem, from, step);
		else if (memcmp(mem, from, step) != 0)
			return true;
		mem += step;
		n -= step;
	}
	return false;
}

/* The next *N bytes as one piece of memory: where they lie when one buffer
 * holds them all, else gathered into *GATHER, allocated on first use with
 * the size of that first piece (the caller's pieces never grow).  Without
 * memory for it, only the current buffer's bytes (*N shrinks).  GnuTLS
 * encrypts a record from one buffer: a record that spans two of the
 * program's is the only copy a vector costs. */
static const void *cur_piece(const struct cursor *cur, size_t *n, unsigned char **gather)
{
	const char *here = (const char *)cur->iov->iov_base + cur->off;
	size_t in_here = cur->iov->iov_len - cur->off;

	if (in_here >= *n)
		return here;
	if (!*gather && !(*gather = malloc(*n))) {
		*n = in_here;
		return here;
	}
	cur_bytes(cur, *gather, *n, true);
	return *gather;
}

/* ---- sending: records queued after EAGAIN, and the guard copy ---- */

static void drop_held(struct tls *tls)
{
	free(tls->held);
	tls->held = NULL;
	tls->held_len = 0;
	tls->held_out = false;
}

/* The queued record went: it carried N bytes, the first TOLD of which the
 * program was told were sent. */
static void held_went(struct tls *tls, size_t n, size_t told)
{
	if (n > tls->held_len)
		n = tls->held_len;
	if (n <= told) {
		drop_held(tls);
		return;
	}
	memmove(tls->held, tls->held + told, n - told);
	tls->held_len = n - told;
	tls->held_out = true;
}

/* POSIX lets a program whose write failed with EAGAIN write other bytes
 * next; but the record GnuTLS queued is already encrypted and goes first.
 * 0 if the write at CUR begins with the held bytes, else -EIO (the held
 * copy dropped, the reason set). */
static int check_held_same(struct tls *tls, const struct cursor *cur)
{
	size_t n = cur->left < tls->held_len ? cur->left : tls->held_len;

	if (!cur_bytes(cur, tls->held, n, false))
		return 0;
	drop_held(tls);
	snprintf(tls->reason, sizeof tls->reason,
		 "the program changed the bytes of a write that TLS had already queued after EAGAIN");
	return -EIO;
}

/* Push the record GnuTLS queued: the plaintext bytes it carried, or a
 * result.  (GnuTLS answers a send while a record waits by pushing that
 * record, whatever the arguments.)  wflags set. */
static ssize_t push_queued(struct tls *tls)
{
	ssize_t ret;

	do {
		io_arm(tls, DIR_WRITE);
		ret = gnutls_record_send(tls->session, NULL, 0);
	} while (ret < 0 && (ret = outcome(tls, (int)ret, DIR_WRITE, "write")) == AGAIN);
	return ret;
}

/* Push what waits: the queued record, then close_notify once asked for
 * (only after every record before it is out: a close_notify after a
 * record cut short is a valid end to a truncated stream).  0, or a
 * result.  wflags set. */
static int flush_locked(struct tls *tls)
{
	ssize_t ret;

	if (tls->flush_pending) {
		ret = push_queued(tls);
		if (ret < 0)
			return (int)ret;
		/* A record the program was not told of went (poll flushed it):
		 * its retry must carry the same bytes, and is answered without
		 * sending them again. */
		if (tls->queued_unknown)
			held_went(tls, (size_t)ret, 0);
		tls->flush_pending = false;
		tls->queued_unknown = false;
	}
	if (!tls->bye_wanted || tls->bye_done)
		return 0;
	/* gnutls_bye resumes where a WANT left it. */
	do {
		io_arm(tls, DIR_WRITE);
		ret = gnutls_bye(tls->session, GNUTLS_SHUT_WR);
	} while (ret < 0 && (ret = outcome(tls, (int)ret, DIR_WRITE, "close")) == AGAIN);
	if (ret < 0)
		return (int)ret;
	tls->bye_done = true;
	return 0;
}

/* The write at CUR begins with bytes already sent that the program was
 * not told of (held_out): they count now.  Return how many, or -EIO. */
static ssize_t take_held(struct tls *tls, const struct cursor *cur)
{
	size_t n = cur->left < tls->held_len ? cur->left : tls->held_len;

	if (check_held_same(tls, cur) < 0)
		return -EIO;
	memmove(tls->held, tls->held + n, tls->held_len - n);
	tls->held_len -= n;
	if (tls->held_len == 0)
		drop_held(tls);
	return (ssize_t)n;
}

/* A record queued without a known size (queued_unknown): the program sends
 * the same bytes again (it was told none went), and GnuTLS, pushing the
 * record, says how many of them it held.  Return how many of CUR's bytes
 * count as sent now, or a result. */
static ssize_t resend_queued(struct tls *tls, const struct cursor *cur)
{
	ssize_t ret;
	size_t done;

	if (tls->held && check_held_same(tls, cur) < 0)
		return -EIO;
	ret = push_queued(tls);
	if (is_want(ret) || ret == -EINTR)
		return ret;
	tls->queued_unknown = false;
	tls->flush_pending = false;
	if (ret < 0) {
		drop_held(tls);
		return ret;
	}
	done = (size_t)ret < cur->left ? (size_t)ret : cur->left;
	held_went(tls, (size_t)ret, done);
	return (ssize_t)done;
}

/* The record of the CHUNK bytes at PIECE is encrypted and queued: the
 * socket is full, or a signal stopped the push (WHY: the WANT, -EINTR).
 * It goes before anything else, close_notify included.  Its bytes count as
 * sent, as in a kernel buffer, when we know how many it holds; else the
 * program is told none went and a copy is kept, which its retry must
 * match.  DONE bytes of this call went before it.  Return the result. */
static ssize_t record_queued(struct tls *tls, const void *piece, size_t chunk, size_t done, ssize_t why)
{
	tls->flush_pending = true;
	if (chunk <= tls->send_seen || (tls->send_cap && chunk <= tls->send_cap))
		return (ssize_t)(done + chunk);
	tls->queued_unknown = true;
	free(tls->held);
	tls->held = malloc(chunk);
	tls->held_len = tls->held ? chunk : 0;
	tls->held_out = false;
	if (!tls->held) {
		snprintf(tls->reason, sizeof tls->reason,
			 "out of memory keeping a copy of a record queued after EAGAIN");
		return -ENOMEM;
	}
	memcpy(tls->held, piece, chunk);
	return done ? (ssize_t)done : why;
}

/* Records cut from CUR, at most one record's worth per GnuTLS call, so
 * that a record GnuTLS queues holds exactly CHUNK bytes of ours.  (The
 * limit starts at gnutls_record_get_max_size, the receive limit; the
 * peer's record_size_limit may make the send limit smaller: a short count
 * teaches it.)  DONE bytes of this call went before.  wflags set. */
static ssize_t send_records(struct tls *tls, struct cursor *cur, size_t done)
{
	size_t chunk, cap = gnutls_record_get_max_size(tls->session);
	unsigned char *gather = NULL;
	const void *piece;
	ssize_t ret = 0;

	if (tls->send_cap && tls->send_cap < cap)
		cap = tls->send_cap;
	while (cur->left > 0) {
		chunk = cur->left > cap ? cap : cur->left;
		piece = cur_piece(cur, &chunk, &gather);
		io_arm(tls, DIR_WRITE);
		ret = gnutls_record_send(tls->session, piece, chunk);
		if (ret > 0) {
			if ((size_t)ret < chunk)
				cap = tls->send_cap = (size_t)ret;
			if ((size_t)ret > tls->send_seen)
				tls->send_seen = (size_t)ret;
			done += (size_t)ret;
			cur_skip(cur, (size_t)ret);
			continue;
		}
		ret = outcome(tls, (int)ret, DIR_WRITE, "write");
		if (ret == AGAIN)
			continue;
		if (is_want(ret) || ret == -EINTR)
			ret = record_queued(tls, piece, chunk, done, ret);
		else if (done)
			ret = (ssize_t)done;
		break;
	}
	free(gather);
	return cur->left == 0 ? (ssize_t)done : ret;
}

static ssize_t mod_sendv(struct tls *tls, const struct iovec *iov, int iovcnt, enum tls_io io)
{
	struct cursor cur;
	ssize_t ret = 0;
	size_t done;

	cur_init(&cur, iov, iovcnt);
	io_begin(tls, DIR_WRITE, io);
	if (tls->held_out && cur.left > 0)
		ret = take_held(tls, &cur);
	else if (tls->queued_unknown && cur.left > 0)
		ret = resend_queued(tls, &cur);
	if (ret < 0)
		goto out;
	done = (size_t)ret;
	cur_skip(&cur, done);
	if (tls->held_out) /* the queued record carried more than this write */
		goto out;
	ret = flush_locked(tls);
	if (ret < 0)
		ret = done ? (ssize_t)done : ret;
	else
		ret = send_records(tls, &cur, done);
out:
	io_end(tls, DIR_WRITE);
	return ret;
}

static int mod_flush(struct tls *tls, enum tls_io io)
{
	int ret;

	io_begin(tls, DIR_WRITE, io);
	ret = flush_locked(tls);
	io_end(tls, DIR_WRITE);
	return ret;
}

static bool mod_flush_pending(struct tls *tls)
{
	return tls->flush_pending || (tls->bye_wanted && !tls->bye_done);
}

static size_t mod_pending(struct tls *tls)
{
	return gnutls_record_check_pending(tls->session);
}

/* Ciphertext read ahead but not yet decrypted. */
static size_t mod_buffered(struct tls *tls)
{
	return tls->rx_len;
}

static int mod_bye(struct tls *tls, enum tls_io io)
{
	tls->bye_wanted = true;
	return mod_flush(tls, io);
}

static const char *mod_reason(struct tls *tls)
{
	return tls->reason[0] ? tls->reason : "unknown error";
}

static bool mod_resumed(struct tls *tls)
{
	return gnutls_session_is_resumed(tls->session) != 0;
}

static void copy_str(char *dst, size_t dstlen, const char *src)
{
	snprintf(dst, dstlen, "%s", src ? src : "-");
}

/* A server session: the name the client asked for (printable ASCII
 * only: it goes to the log), or "". */
static void server_sni(struct tls *tls, char *out, size_t outlen)
{
	size_t size = outlen, i;
	unsigned type;

	if (gnutls_server_name_get(tls->session, out, &size, &type, 0) < 0 || type != GNUTLS_NAME_DNS) {
		out[0] = '\0';
		return;
	}
	out[outlen - 1] = '\0';
	for (i = 0; out[i]; i++)
		if ((unsigned char)out[i] <= 0x20 || (unsigned char)out[i] >= 0x7f)
			out[i] = '?';
}

/* What the session negotiated and who the peer is, for the log (a
 * server's peer: the client certificate, if any). */
static void mod_get_info(struct tls *tls, struct tls_info *info)
{
	gnutls_datum_t alpn = { NULL, 0 }, dn = { NULL, 0 };
	const gnutls_datum_t *chain;
	unsigned n_chain = 0;
	gnutls_x509_crt_t crt;

	memset(info, 0, sizeof *info);
	copy_str(info->version, sizeof info->version,
		 gnutls_protocol_get_name(gnutls_protocol_get_version(tls->session)));
	copy_str(info->cipher, sizeof info->cipher, gnutls_cipher_get_name(gnutls_cipher_get(tls->session)));
	copy_str(info->group, sizeof info->group, gnutls_group_get_name(gnutls_group_get(tls->session)));
	if (gnutls_alpn_get_selected_protocol(tls->session, &alpn) == 0)
		snprintf(info->alpn, sizeof info->alpn, "%.*s", (int)alpn.size, (char *)alpn.data);
	else
		copy_str(info->alpn, sizeof info->alpn, NULL);
	info->resumed = gnutls_session_is_resumed(tls->session) != 0;
	info->keylog_written = tls->keylog_written;
	info->chain_cached = tls->chain_cached;
	if (tls->role == TLS_SERVER)
		server_sni(tls, info->sni, sizeof info->sni);
	copy_str(info->subject, sizeof info->subject, NULL);
	copy_str(info->issuer, sizeof info->issuer, NULL);
	copy_str(info->spki, sizeof info->spki, NULL);
	copy_str(info->expiry, sizeof info->expiry, NULL);
	chain = gnutls_certificate_get_peers(tls->session, &n_chain);
	if (!chain || n_chain == 0 || gnutls_x509_crt_init(&crt) < 0)
		return;
	if (tls->role == TLS_SERVER) {
		struct peer_names *names = peer_names_get(&chain[0]);

		if (names)
			names_identity(names, info->client_id, sizeof info->client_id);
		free(names);
	}
	if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) >= 0) {
		unsigned char id[64];
		size_t idlen = sizeof id;
		time_t expiry = gnutls_x509_crt_get_expiration_time(crt);
		struct tm tm;

		if (gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
			copy_str(info->subject, sizeof info->subject, (char *)dn.data);
			gnutls_free(dn.data);
		}
		if (gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0) >= 0) {
			copy_str(info->issuer, sizeof info->issuer, (char *)dn.data);
			gnutls_free(dn.data);
		}
		if (gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, id, &idlen) >= 0 && idlen == 32)
			pin_format(id, info->spki, sizeof info->spki);
		if (expiry != (time_t)-1 && gmtime_r(&expiry, &tm))
			strftime(info->expiry, sizeof info->expiry, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	gnutls_x509_crt_deinit(crt);
}

/* 0-RTT: queue the program's first bytes as early data, before the
 * handshake.  Returns how many were taken (at most what the ticket allows). */
static ssize_t mod_send_early(struct tls *tls, const void *buf, size_t len)
{
	size_t max = gnutls_record_get_max_early_data_size(tls->session);
	ssize_t ret;

	if (tls->role != TLS_CLIENT) {
		snprintf(tls->reason, sizeof tls->reason, "a server sends no early data");
		return -EINVAL;
	}
	if (len > max)
		len = max;
	if (len == 0)
		return 0;
	ret = gnutls_record_send_early_data(tls->session, buf, len);
	if (ret < 0) {
		snprintf(tls->reason, sizeof tls->reason, "cannot queue early data: %s", gnutls_strerror((int)ret));
		return -EPROTO;
	}
	/* GnuTLS 3.7.9 returns 0 for a success. */
	return (ssize_t)len;
}

static bool mod_early_accepted(struct tls *tls)
{
	return tls->role == TLS_CLIENT && (gnutls_session_get_flags(tls->session) & GNUTLS_SFLAGS_EARLY_DATA) != 0;
}

/* Send a KeyUpdate for our sending key.  The peer is not asked to update
 * its own (that would double the handshake messages, and GnuTLS peers
 * accept only a few per second). */
static int mod_key_update(struct tls *tls, enum tls_io io)
{
	int ret;

	io_begin(tls, DIR_WRITE, io);
	do {
		io_arm(tls, DIR_WRITE);
		ret = gnutls_session_key_update(tls->session, 0);
	} while (ret < 0 && (ret = outcome(tls, ret, DIR_WRITE, "key update")) == AGAIN);
	io_end(tls, DIR_WRITE);
	return ret;
}

static void *mod_take_ticket(struct tls *tls, size_t *len, uint32_t *early_max)
{
	gnutls_datum_t data = { NULL, 0 };
	void *copy;
	int saved = tls->rflags;

	if (!tls->ticket_arrived || tls->role != TLS_CLIENT)
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
		*early_max = tls->ticket_early_ok ? tls->ticket_early_max : 0;
	}
	gnutls_free(data.data);
	return copy;
}

/* ---- the module's one export ---- */

/* _Fork runs no atfork handlers, GnuTLS's included: reseed. */
static bool mod_cert_requested(struct tls *tls)
{
	return tls->role == TLS_CLIENT && gnutls_certificate_client_get_request_status(tls->session) != 0;
}

static void mod_after_fork(void)
{
	gnutls_rnd_refresh();
}

static void mod_init(const struct real_fns *fns)
{
	real_fns = fns;
}

static const struct forklock *mod_locks(const struct forklock **end)
{
	*end = FORKLOCK_OWN_END();
	return FORKLOCK_OWN_BEGIN();
}

__attribute__((visibility("default"))) const struct tls_ops tlsshim_tls_ops = {
	.abi = TLS_OPS_ABI,
	.init = mod_init,
	.new_client = mod_new_client,
	.new_server = mod_new_server,
	.free = mod_free,
	.set_fd = mod_set_fd,
	.handshake = mod_handshake,
	.recv = mod_recv,
	.sendv = mod_sendv,
	.flush = mod_flush,
	.flush_pending = mod_flush_pending,
	.pending = mod_pending,
	.bye = mod_bye,
	.reason = mod_reason,
	.get_info = mod_get_info,
	.send_early = mod_send_early,
	.early_accepted = mod_early_accepted,
	.key_update = mod_key_update,
	.after_fork = mod_after_fork,
	.buffered = mod_buffered,
	.cert_requested = mod_cert_requested,
	.resumed = mod_resumed,
	.take_ticket = mod_take_ticket,
	.locks = mod_locks,
	.preload = mod_preload,
};
