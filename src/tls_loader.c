/* tls_loader.c - load libtlsshim-tls.so on first use and forward tls.h to
 * it.  The module is looked for next to this library (the build tree keeps
 * both in src/.libs), then in PKGLIBDIR. */
#include "tls.h"
#include "tls_module.h"
#include "forklock.h"
#include "log.h"
#include "real.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib/tlsshim"
#endif

static const struct tls_ops *ops;
static char load_error[512];

static void *try_open(const char *dir)
{
	char *path = malloc(4200);
	void *handle;

	if (!path)
		return NULL;
	snprintf(path, 4200, "%.4000s/%s", dir, TLS_MODULE_NAME);
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	free(path);
	return handle;
}

static void load_module(void)
{
	Dl_info self;
	char *dir = malloc(4096), *slash;
	void *handle = NULL;
	const struct tls_ops *found;

	shim_guard++;
	/* dir on the heap: the first upgrade runs on the program's stack. */
	if (dir && dladdr((void *)load_module, &self) && self.dli_fname) {
		snprintf(dir, 4096, "%s", self.dli_fname);
		slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
			handle = try_open(dir);
			if (!handle) {
				snprintf(slash, 4096 - (slash - dir), "/tlsshim");
				handle = try_open(dir);
			}
		}
	}
	if (!handle)
		handle = try_open(PKGLIBDIR);
	if (!handle) {
		snprintf(load_error, sizeof load_error, "cannot load the TLS engine %s: %s", TLS_MODULE_NAME,
			 dlerror());
		goto out;
	}
	found = dlsym(handle, "tlsshim_tls_ops");
	if (!found || found->abi != TLS_OPS_ABI) {
		snprintf(load_error, sizeof load_error, "%s does not match this library", TLS_MODULE_NAME);
		goto out;
	}
	found->init(&real);
	{
		const struct forklock *end, *begin = found->locks(&end);

		/* Before any of them is used: a fork from now on resets them. */
		if (begin && forklock_add(begin, end) < 0) {
			snprintf(load_error, sizeof load_error, "%s: too many lock registries", TLS_MODULE_NAME);
			goto out;
		}
	}
	ops = found;
out:
	free(dir);
	shim_guard--;
}

/* Load the module once: true if its table is there, else ERR says why. */
static bool module_ready(char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, load_module);
	if (!ops)
		snprintf(err, errlen, "%s", load_error);
	return ops != NULL;
}

int tls_new_client(struct tls **out, const struct tls_client_params *params, char *err, size_t errlen)
{
	int ret;

	if (!module_ready(err, errlen))
		return -ENOSYS;
	/* GnuTLS and p11-kit read files here: keep our hooks out of it. */
	shim_guard++;
	ret = ops->new_client(out, params, err, errlen);
	shim_guard--;
	return ret;
}

int tls_new_server(struct tls **out, const struct tls_server_params *params, char *err, size_t errlen)
{
	int ret;

	if (!module_ready(err, errlen))
		return -ENOSYS;
	shim_guard++;
	ret = ops->new_server(out, params, err, errlen);
	shim_guard--;
	return ret;
}

int tls_preload(const struct policy_rule *rule, char *err, size_t errlen)
{
	int ret;

	if (!module_ready(err, errlen))
		return -ENOSYS;
	shim_guard++;
	ret = ops->preload(rule, err, errlen);
	shim_guard--;
	return ret;
}

void tls_free(struct tls *tls)
{
	if (tls)
		ops->free(tls);
}

void tls_set_fd(struct tls *tls, int fd) { ops->set_fd(tls, fd); }
int tls_handshake(struct tls *tls, enum tls_io io) { return ops->handshake(tls, io); }
ssize_t tls_recv(struct tls *tls, void *buf, size_t len, enum tls_io io) { return ops->recv(tls, buf, len, io); }
ssize_t tls_sendv(struct tls *tls, const struct iovec *iov, int iovcnt, enum tls_io io)
{
	return ops->sendv(tls, iov, iovcnt, io);
}
ssize_t tls_send(struct tls *tls, const void *buf, size_t len, enum tls_io io)
{
	struct iovec one = { (void *)buf, len };

	return ops->sendv(tls, &one, 1, io);
}
int tls_flush(struct tls *tls, enum tls_io io) { return ops->flush(tls, io); }
bool tls_flush_pending(struct tls *tls) { return ops->flush_pending(tls); }
size_t tls_pending(struct tls *tls) { return ops->pending(tls); }
size_t tls_buffered(struct tls *tls) { return ops->buffered(tls); }
int tls_bye(struct tls *tls, enum tls_io io) { return ops->bye(tls, io); }
const char *tls_reason(struct tls *tls) { return ops->reason(tls); }
void tls_get_info(struct tls *tls, struct tls_info *info) { ops->get_info(tls, info); }
bool tls_resumed(struct tls *tls) { return ops->resumed(tls); }
void *tls_take_ticket(struct tls *tls, size_t *len, uint32_t *early_max)
{
	return ops->take_ticket(tls, len, early_max);
}
ssize_t tls_send_early(struct tls *tls, const void *buf, size_t len) { return ops->send_early(tls, buf, len); }
bool tls_early_accepted(struct tls *tls) { return ops->early_accepted(tls); }
int tls_key_update(struct tls *tls, enum tls_io io) { return ops->key_update(tls, io); }
bool tls_cert_requested(struct tls *tls) { return ops->cert_requested(tls); }

void tls_after_fork(void)
{
	if (ops)
		ops->after_fork();
}
