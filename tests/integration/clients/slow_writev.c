/* slow_writev.c - a preload placed after libtlsshim: tlsshim's writev of a
 * log line ("tlsshim[" or a JSON line) waits 2 ms before the real one, which
 * widens the window between loading our log descriptor and writing to it
 * (ownfd.sh); so does its write of an NSS key-log line (a label in
 * capitals and a space: "CLIENT_...", "SERVER_...", "EXPORTER_SECRET ")
 * for the key-log descriptor (keylog_race.sh).  Everything else passes
 * straight through. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

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

/* An NSS key-log line: "LABEL " with LABEL in [A-Z0-9_], then hex. */
static int keylog_line(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && i < 40; i++) {
		if (p[i] == ' ')
			return i >= 8;
		if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
			return 0;
	}
	return 0;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	static ssize_t (*next)(int, const void *, size_t);
	struct timespec pause = { 0, 2000000 };

	if (!next)
		next = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	if (len > 64 && keylog_line(buf, len))
		nanosleep(&pause, NULL);
	return next(fd, buf, len);
}
