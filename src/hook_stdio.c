/* hook_stdio.c - stdio streams on upgraded sockets.
 *
 * glibc's stdio writes through internal aliases that no hook sees: a FILE on
 * an upgraded socket would put plaintext on the wire.  So a FILE never sits
 * on one: fdopen() of an upgraded descriptor returns a fopencookie() stream
 * that goes through the connection, and while an upgraded socket occupies
 * descriptor 0, 1 or 2 (bash's `echo hi >&3` is dup2(3, 1) then printf) the
 * stdin/stdout/stderr variables point at such a stream, restored (after a
 * flush) when the descriptor goes back. */
#include "shim.h"
#include "conn.h"
#include "fdtab.h"
#include "stdio_swap.h"
#include "forklock.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ssize_t cookie_read(void *cookie, char *buf, size_t size)
{
	int fd = (int)(intptr_t)cookie;
	struct conn *conn = fdtab_get(fd);
	ssize_t ret;

	if (!conn) {
		errno = EBADF;
		return -1;
	}
	ret = conn_recv(conn, buf, size, 0);
	conn_unref(conn);
	return shim_result(ret);
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t size)
{
	int fd = (int)(intptr_t)cookie;
	struct conn *conn = fdtab_get(fd);
	ssize_t ret;

	if (!conn) {
		/* Never fall back to the descriptor: it may be a socket in clear. */
		errno = EBADF;
		return -1;
	}
	ret = conn_send(conn, buf, size, MSG_NOSIGNAL);
	conn_unref(conn);
	return shim_result(ret);
}

static int cookie_close_fd(void *cookie)
{
	return close((int)(intptr_t)cookie);
}

static int cookie_keep_fd(void *cookie)
{
	return 0;
}

static FILE *open_stream(int fd, const char *mode, bool owns_fd)
{
	cookie_io_functions_t io = {
		.read = cookie_read,
		.write = cookie_write,
		.seek = NULL,
		.close = owns_fd ? cookie_close_fd : cookie_keep_fd,
	};

	return fopencookie((void *)(intptr_t)fd, mode, io);
}

FILE *fdopen(int fd, const char *mode)
{
	struct conn *conn;

	if (!shim_enter() || !fdtab_any() || !(conn = fdtab_get(fd)))
		return real.fdopen(fd, mode);
	conn_unref(conn);
	return open_stream(fd, mode, true);
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
	if (!swapped[fd] && (cookie = open_stream(fd, fd == 0 ? "r" : "w", false))) {
		if (fd == 2)
			setvbuf(cookie, NULL, _IONBF, 0);
		saved[fd] = *std_var(fd);
		swapped[fd] = cookie;
		*std_var(fd) = cookie;
	}
	pthread_mutex_unlock(&swap_lock);
}
