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

#define TLS_OPS_ABI 8
#define TLS_MODULE_NAME "libtlsshim-tls.so"

struct tls_ops {
	unsigned abi;
	void (*init)(const struct real_fns *real);
	int (*open)(struct tls **out, const struct tls_params *params, char *err, size_t errlen);
	void (*free)(struct tls *tls);
	void (*set_fd)(struct tls *tls, int fd);
	void (*set_nonblock)(struct tls *tls, bool nonblock);
	void (*set_read_nonblock)(struct tls *tls, bool nonblock);
	void (*set_write_nonblock)(struct tls *tls, bool nonblock);
	int (*handshake)(struct tls *tls);
	bool (*wants_read)(struct tls *tls);
	ssize_t (*recv)(struct tls *tls, void *buf, size_t len);
	ssize_t (*send)(struct tls *tls, const void *buf, size_t len);
	int (*flush)(struct tls *tls);
	bool (*flush_pending)(struct tls *tls);
	size_t (*pending)(struct tls *tls);
	int (*bye)(struct tls *tls);
	const char *(*reason)(struct tls *tls);
	void (*get_info)(struct tls *tls, struct tls_info *info);
	bool (*resumed)(struct tls *tls);
	void *(*take_ticket)(struct tls *tls, size_t *len, uint32_t *early_max);
	ssize_t (*send_early)(struct tls *tls, const void *buf, size_t len);
	bool (*early_accepted)(struct tls *tls);
	int (*key_update)(struct tls *tls);
	void (*after_fork)(void);
	size_t (*buffered)(struct tls *tls);
	bool (*cert_requested)(struct tls *tls);
	/* The module's locks (forklock.h): registered by the loader. */
	const struct forklock *(*locks)(const struct forklock **end);
};

#endif
