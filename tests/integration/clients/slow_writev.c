/* slow_writev.c - a preload placed after libtlsshim: tlsshim's writev of a
 * log line ("tlsshim[" or a JSON line) waits 2 ms before the real one, which
 * widens the window between loading our log descriptor and writing to it
 * (ownfd.sh).  Everything else passes straight through. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	static ssize_t (*next)(int, const struct iovec *, int);
	struct timespec pause = { 0, 2000000 };

	if (!next)
		next = (ssize_t (*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
	if (iovcnt > 0 && iov[0].iov_len >= 8 && memcmp(iov[0].iov_base, "tlsshim[", 8) == 0)
		nanosleep(&pause, NULL);
	return next(fd, iov, iovcnt);
}
