/* hook_stdio.c - stdio streams on upgraded sockets.
 *
 * glibc's stdio writes through internal aliases that no hook sees: a FILE on
 * an upgraded socket would put plaintext on the wire.  So a FILE never sits
 * on one:
 *  - fdopen() of an upgraded descriptor, or of a TCP socket that is not yet
 *    connected (it may become ours at connect()), returns a fopencookie()
 *    stream whose reads and writes go through the connection once there is
 *    one (through libc's plain I/O before); fileno() still answers with the
 *    descriptor;
 *  - while an upgraded socket occupies descriptor 0, 1 or 2 (bash's
 *    `echo hi >&3` is dup2(3, 1) then printf; `exec 1<>/dev/tcp/..` creates
 *    the socket on 1 itself) the stdin/stdout/stderr variables point at such
 *    a stream, restored (after a flush) when the descriptor goes back;
 *  - dprintf() and vdprintf() (and their fortified forms), which format
 *    straight into the descriptor, format here and write through the
 *    connection. */
#include "shim.h"
#include "adopt.h"
#include "conn.h"
#include "fdtab.h"
#include "hook_stdio.h"
#include "forklock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

/* One of our streams.  EVER_OURS: the descriptor has been upgraded while
 * the stream existed (or was at fdopen): from then on the stream never
 * touches the descriptor directly, even if its connection goes away. */
struct stream {
	int fd;
	bool owns_fd;
	atomic_bool ever_ours;
	int slot;                /* in stream_files, or -1 */
};

/* FILE -> descriptor for fileno(), which answers -1 for a cookie stream.
 * Lock-free (no lock to reset after fork): a slot is claimed with a CAS to
 * SLOT_BUSY, given its descriptor, then published with the FILE. */
#define STREAMS_MAX 1024
#define SLOT_BUSY ((FILE *)1)
static _Atomic(FILE *) stream_files[STREAMS_MAX];
static atomic_int stream_fds[STREAMS_MAX];
static atomic_int streams_high; /* slots in use are below this */

static int stream_slot_claim(int fd)
{
	int i;

	for (i = 0; i < STREAMS_MAX; i++) {
		FILE *expected = NULL;

		if (atomic_compare_exchange_strong(&stream_files[i], &expected, SLOT_BUSY)) {
			int high = atomic_load(&streams_high);

			atomic_store(&stream_fds[i], fd);
			while (high < i + 1 && !atomic_compare_exchange_weak(&streams_high, &high, i + 1))
				;
			return i;
		}
	}
	return -1; /* full: fileno() of this stream answers -1, as libc's would */
}

static int stream_fileno(FILE *file)
{
	int i, high = atomic_load(&streams_high);

	for (i = 0; i < high; i++)
		if (atomic_load(&stream_files[i]) == file)
			return atomic_load(&stream_fds[i]);
	return -1;
}

static struct conn *managed(int fd)
{
	adopt_maybe(fd);
	return fdtab_any() ? fdtab_get(fd) : NULL;
}

static ssize_t cookie_read(void *cookie, char *buf, size_t size)
{
	struct stream *st = cookie;
	struct conn *conn = managed(st->fd);
	ssize_t ret;

	if (!conn) {
		/* Never fall back to the descriptor once it was ours: it may be
		 * a socket in clear. */
		if (atomic_load(&st->ever_ours)) {
			errno = EBADF;
			return -1;
		}
		return real.read(st->fd, buf, size);
	}
	atomic_store(&st->ever_ours, true);
	ret = conn_recv(conn, buf, size, 0);
	conn_unref(conn);
	return shim_result(ret);
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t size)
{
	struct stream *st = cookie;
	struct conn *conn = managed(st->fd);
	ssize_t ret;

	if (!conn) {
		if (atomic_load(&st->ever_ours)) {
			errno = EBADF;
			return -1;
		}
		return real.write(st->fd, buf, size);
	}
	atomic_store(&st->ever_ours, true);
	ret = conn_send(conn, buf, size, MSG_NOSIGNAL);
	conn_unref(conn);
	return shim_result(ret);
}

static int cookie_close(void *cookie)
{
	struct stream *st = cookie;
	int ret = 0;

	if (st->slot >= 0)
		atomic_store(&stream_files[st->slot], NULL);
	if (st->owns_fd)
		ret = close(st->fd);
	free(st);
	return ret;
}

static FILE *open_stream(int fd, const char *mode, bool owns_fd, bool ours)
{
	cookie_io_functions_t io = {
		.read = cookie_read,
		.write = cookie_write,
		.seek = NULL,
		.close = cookie_close,
	};
	struct stream *st = calloc(1, sizeof *st);
	FILE *file;

	if (!st)
		return NULL;
	st->fd = fd;
	st->owns_fd = owns_fd;
	atomic_init(&st->ever_ours, ours);
	st->slot = stream_slot_claim(fd);
	file = fopencookie(st, mode, io);
	if (!file) {
		if (st->slot >= 0)
			atomic_store(&stream_files[st->slot], NULL);
		free(st);
		return NULL;
	}
	if (st->slot >= 0)
		atomic_store(&stream_files[st->slot], file);
	return file;
}

/* A TCP socket that is not connected yet: connect() may upgrade it. */
static bool may_become_ours(int fd)
{
	int domain = 0, type = 0;
	socklen_t len = sizeof domain;
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;

	if (real.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 ||
	    (domain != AF_INET && domain != AF_INET6))
		return false;
	len = sizeof type;
	if (real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
		return false;
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0 || errno != ENOTCONN)
		return false;
	return shim_may_upgrade();
}

/* What libc's fdopen() checks before making a stream (a cookie stream
 * checks nothing): a valid MODE that the descriptor's access mode allows.
 * Return 0 or a negative errno. */
static int check_mode(int fd, const char *mode)
{
	int fl = real.fcntl(fd, F_GETFL), acc;
	bool plus = mode[0] && strchr(mode + 1, '+') != NULL;

	if (fl < 0)
		return -errno;
	acc = fl & O_ACCMODE;
	switch (mode[0]) {
	case 'r':
		return acc == O_RDWR || (acc == O_RDONLY && !plus) ? 0 : -EINVAL;
	case 'w':
	case 'a':
		return acc == O_RDWR || (acc == O_WRONLY && !plus) ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

FILE *fdopen(int fd, const char *mode)
{
	struct conn *conn;
	bool ours;
	int ret;

	if (!shim_enter() || !mode)
		return real.fdopen(fd, mode);
	conn = managed(fd);
	ours = conn != NULL;
	if (conn)
		conn_unref(conn);
	else if (!may_become_ours(fd))
		return real.fdopen(fd, mode);
	if ((ret = check_mode(fd, mode)) < 0)
		return shim_result(ret), NULL;
	return open_stream(fd, mode, true, ours);
}

int fileno(FILE *file)
{
	int fd;

	real_need();
	if (file && atomic_load(&streams_high) > 0 && (fd = stream_fileno(file)) >= 0)
		return fd;
	return real.fileno(file);
}

int fileno_unlocked(FILE *file)
{
	int fd;

	real_need();
	if (file && atomic_load(&streams_high) > 0 && (fd = stream_fileno(file)) >= 0)
		return fd;
	return real.fileno_unlocked(file);
}

void stdio_flush_ours(void)
{
	int i, high = atomic_load(&streams_high);

	for (i = 0; i < high; i++) {
		FILE *file = atomic_load(&stream_files[i]);

		if (file && file != SLOT_BUSY && __fpending(file) > 0)
			(void)fflush_unlocked(file);
	}
}

/* ---- dprintf, vdprintf ---- */

extern int __vasprintf_chk(char **, int, const char *, va_list);

/* Format and write everything through CONN (FLAG >= 0: fortified). */
static int conn_vdprintf(struct conn *conn, int flag, const char *fmt, va_list ap)
{
	char *text = NULL;
	int len = flag >= 0 ? __vasprintf_chk(&text, flag, fmt, ap) : vasprintf(&text, fmt, ap);
	size_t done = 0;
	ssize_t ret = 0;

	if (len < 0) {
		conn_unref(conn);
		return -1;
	}
	while (done < (size_t)len) {
		ret = conn_send(conn, text + done, (size_t)len - done, 0);
		if (ret < 0)
			break;
		done += (size_t)ret;
	}
	free(text);
	conn_unref(conn);
	if (ret < 0) {
		/* libc's dprintf on a closed peer: SIGPIPE, then EPIPE. */
		if (ret == -EPIPE)
			raise(SIGPIPE);
		return (int)shim_result(ret);
	}
	return len;
}

int vdprintf(int fd, const char *fmt, va_list ap)
{
	struct conn *conn = shim_enter() ? managed(fd) : NULL;

	return conn ? conn_vdprintf(conn, -1, fmt, ap) : real.vdprintf(fd, fmt, ap);
}

int dprintf(int fd, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vdprintf(fd, fmt, ap);
	va_end(ap);
	return ret;
}

int __vdprintf_chk(int fd, int flag, const char *fmt, va_list ap)
{
	struct conn *conn = shim_enter() ? managed(fd) : NULL;

	if (conn)
		return conn_vdprintf(conn, flag, fmt, ap);
	return real.vdprintf_chk ? real.vdprintf_chk(fd, flag, fmt, ap) : real.vdprintf(fd, fmt, ap);
}

int __dprintf_chk(int fd, int flag, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = __vdprintf_chk(fd, flag, fmt, ap);
	va_end(ap);
	return ret;
}

/* ---- stdin, stdout, stderr ---- */

FORKLOCK_MUTEX(swap_lock);
static FILE *saved[3], *swapped[3];

static FILE **std_var(int fd)
{
	return fd == 0 ? &stdin : fd == 1 ? &stdout : &stderr;
}

void stdio_before_replace(int fd)
{
	FILE *cookie;

	if (fd < 0 || fd > 2)
		return;
	pthread_mutex_lock(&swap_lock);
	cookie = swapped[fd];
	if (cookie) {
		/* Flush through the connection while it still owns FD. */
		*std_var(fd) = saved[fd];
		swapped[fd] = saved[fd] = NULL;
	} else if (fd > 0) {
		/* What the program buffered belongs to FD's old target. */
		fflush(*std_var(fd));
	}
	pthread_mutex_unlock(&swap_lock);
	if (cookie)
		fclose(cookie);
}

void stdio_after_upgrade(int fd)
{
	FILE *cookie;

	if (fd < 0 || fd > 2)
		return;
	pthread_mutex_lock(&swap_lock);
	if (!swapped[fd] && (cookie = open_stream(fd, fd == 0 ? "r" : "w", false, true))) {
		FILE *old = *std_var(fd);

		if (fd == 2)
			setvbuf(cookie, NULL, _IONBF, 0);
		/* Output the program buffered before the descriptor became ours
		 * (a socket created on 1 after close(1)) would be flushed to it
		 * in clear, at exit at the latest: it goes through the
		 * connection instead.  Input buffered from the old stdin is
		 * dropped with it. */
		if (fd > 0 && old) {
			if (__fpending(old) > 0)
				fwrite(old->_IO_write_base, 1, __fpending(old), cookie);
			__fpurge(old);
		}
		saved[fd] = old;
		swapped[fd] = cookie;
		*std_var(fd) = cookie;
	}
	pthread_mutex_unlock(&swap_lock);
}
