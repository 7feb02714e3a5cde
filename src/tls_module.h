/* tls_module.h - the TLS engine lives in its own shared object,
 * libtlsshim-tls.so, loaded on the first connection a rule upgrades, so
 * that processes that never upgrade anything (most of what a shell script
 * starts) do not pay for loading GnuTLS and its dependencies.  The module
 * exports one table; tls_loader.c implements tls.h over it. */
#ifndef TLSSHIM_TLS_MODULE_H
#define TLSSHIM_TLS_MODULE_H

#include "forklock.h"
#include "real.h"
#include "tls.h"

#define TLS_OPS_ABI 12 /* 11: new_server, tls_info.sni/client_id; 12: preload */
#define TLS_MODULE_NAME "libtlsshim-tls.so"

struct tls_ops {
	unsigned abi;
	void (*init)(const struct real_fns *real);
	int (*new_client)(struct tls **out, const struct tls_client_params *params, char *err, size_t errlen);
	int (*new_server)(struct tls **out, const struct tls_server_params *params, char *err, size_t errlen);
	void (*free)(struct tls *tls);
	void (*set_fd)(struct tls *tls, int fd);
	int (*handshake)(struct tls *tls, enum tls_io io);
	ssize_t (*recv)(struct tls *tls, void *buf, size_t len, enum tls_io io);
	ssize_t (*sendv)(struct tls *tls, const struct iovec *iov, int iovcnt, enum tls_io io);
	int (*flush)(struct tls *tls, enum tls_io io);
	bool (*flush_pending)(struct tls *tls);
	size_t (*pending)(struct tls *tls);
	int (*bye)(struct tls *tls, enum tls_io io);
	const char *(*reason)(struct tls *tls);
	void (*get_info)(struct tls *tls, struct tls_info *info);
	bool (*resumed)(struct tls *tls);
	void *(*take_ticket)(struct tls *tls, size_t *len, uint32_t *early_max);
	ssize_t (*send_early)(struct tls *tls, const void *buf, size_t len);
	bool (*early_accepted)(struct tls *tls);
	int (*key_update)(struct tls *tls, enum tls_io io);
	void (*after_fork)(void);
	size_t (*buffered)(struct tls *tls);
	bool (*cert_requested)(struct tls *tls);
	/* The module's locks (forklock.h): registered by the loader. */
	const struct forklock *(*locks)(const struct forklock **end);
	int (*preload)(const struct policy_rule *rule, char *err, size_t errlen);
};

#endif
