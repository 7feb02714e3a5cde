/* hook_fd.c - descriptor life: close, dup, fcntl, shutdown, and the socket
 * queries whose answers depend on the TLS layer (SO_ERROR, FIONREAD).
 *
 * Managed descriptors always carry close-on-exec in the kernel, whatever the
 * program asked (F_GETFD answers with the program's view): a new program
 * image that inherited one would otherwise read and write it in clear. */
#include "shim.h"
#include "adopt.h"
#include "conn.h"
#include "epoll_reg.h"
#include "fdtab.h"
#include "linger.h"
#include "log.h"
#include "ownfd.h"
#include "hook_stdio.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* FD is going away: drop its mapping; the last one says goodbye and leaves
 * a duplicate lingering until the server closes too (linger.h). */
static void release(int fd)
{
	struct conn *conn = fdtab_remove(fd);
	int other, keep;

	if (!conn)
		return;
	epoll_forget_fd(fd);
	/* A poll or epoll wait in another thread may be calling into the
	 * connection (I/O on its descriptor number): once we return, the
	 * number can name another file. */
	conn_wait_unused(conn);
	other = fdtab_other_fd(conn, fd);
	if (other >= 0) {
		if (conn->fd == fd)
			conn_set_fd(conn, other);
		conn_unref(conn);
		return;
	}
	switch (conn_closing(conn)) {
	case CONN_CLOSE_NOW:
		break;
	case CONN_CLOSE_LINGER:
		keep = real.fcntl(fd, F_DUPFD_CLOEXEC, 600);
		if (keep >= 0) {
			real.shutdown(keep, SHUT_WR);
			linger_add(keep, NULL);
		}
		break;
	case CONN_CLOSE_WAIT:
		keep = real.fcntl(fd, F_DUPFD_CLOEXEC, 600);
		if (keep >= 0) {
			real.shutdown(keep, SHUT_WR);
			linger_add_waiting(keep);
		}
		break;
	case CONN_CLOSE_OUTPUT:
		/* Bytes the program was told were sent, then close_notify,
		 * still wait inside the session: our duplicate keeps the
		 * socket until they are out (linger.h). */
		keep = real.fcntl(fd, F_DUPFD_CLOEXEC, 600);
		if (keep >= 0) {
			conn_set_fd(conn, keep);
			linger_add(keep, conn); /* takes our reference */
			return;
		}
		log_error("rule [%s] %s -> %s: no descriptor to keep the socket open until the last bytes "
			  "and close_notify are sent (%s): they are lost", conn->rule->name, conn->app_dest,
			  conn->dest, strerror(errno));
		break;
	}
	conn_unref(conn);
}

int close(int fd)
{
	if (!shim_enter())
		return real.close(fd);
	int ret;

	ownfd_protect(fd);
	linger_forget(fd);
	if (fdtab_any()) {
		if (fd <= 2)
			stdio_before_replace(fd);
		release(fd);
	}
	epoll_forget_epfd(fd);
	adopt_closed(fd);
	ret = real.close(fd);
	linger_service();
	return ret;
}

static void release_range(unsigned first, unsigned last)
{
	unsigned fd;

	for (fd = first; fd <= last && fd < (1U << 20); fd++) {
		if (fdtab_any())
			release((int)fd);
		if (fd == UINT_MAX)
			break;
	}
}

/* close_range over [FIRST, LAST] except our own descriptors (the log, the
 * key log, the policy file not read yet, lingering sockets), which stay where
 * they are. */
static int close_range_except_ours(unsigned first, unsigned last, int flags)
{
	int ours[3 + LINGER_LIST_MAX], n = 0, i, j, ret = 0;
	unsigned from = first;

	ours[n++] = ownfd_get(OWNFD_LOG);
	ours[n++] = ownfd_get(OWNFD_KEYLOG);
	ours[n++] = ownfd_get(OWNFD_POLICY);
	n += linger_fds(ours + n, LINGER_LIST_MAX);
	/* In ascending order, so the gaps between them are ranges. */
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (ours[j] < ours[i]) {
				int t = ours[i];

				ours[i] = ours[j];
				ours[j] = t;
			}
	for (i = 0; i < n; i++) {
		if (ours[i] < 0 || (unsigned)ours[i] < from || (unsigned)ours[i] > last)
			continue;
		if ((unsigned)ours[i] > from && real.close_range(from, (unsigned)ours[i] - 1, flags) < 0)
			ret = -1;
		from = (unsigned)ours[i] + 1;
		if (from == 0)
			return ret;
	}
	if (from <= last && real.close_range(from, last, flags) < 0)
		ret = -1;
	return ret;
}

int close_range(unsigned first, unsigned last, int flags)
{
	if (!shim_enter() || !real.close_range)
		return real.close_range ? real.close_range(first, last, flags) : shim_result(-ENOSYS);
	/* Bad arguments fail before anything is let go. */
	if (first > last || (flags & CLOSE_RANGE_CLOEXEC) || (flags & ~(CLOSE_RANGE_CLOEXEC | (1 << 1))))
		return real.close_range(first, last, flags);
	if (fdtab_any())
		release_range(first, last);
	adopt_unmark_range(first, last);
	return close_range_except_ours(first, last, flags);
}

void closefrom(int lowfd)
{
	if (!shim_enter() || !real.closefrom) {
		if (real.closefrom)
			real.closefrom(lowfd);
		return;
	}
	close_range(lowfd < 0 ? 0 : (unsigned)lowfd, ~0U, 0);
}

int shutdown(int fd, int how)
{
	struct conn *conn;
	int ret;

	if (!shim_enter() || !(conn = fdtab_get(fd)))
		return real.shutdown(fd, how);
	ret = conn_shutdown(conn, how);
	conn_unref(conn);
	if (ret < 0)
		return (int)shim_result(ret);
	/* What the kernel must not shut yet, or at all (conn.h). */
	if (ret & CONN_SHUT_KEEP_RD)
		how = how == SHUT_RDWR ? SHUT_WR : -1;
	if ((ret & CONN_SHUT_KEEP_WR) && how == SHUT_WR)
		how = -1;
	return how == -1 ? 0 : real.shutdown(fd, how);
}

/* NEWFD now names the same socket as OLDFD. */
static void share(int oldfd, int newfd, bool app_cloexec)
{
	struct conn *conn = fdtab_get(oldfd);

	if (!conn) {
		fdtab_forget(newfd); /* a stale mapping on the new number */
		return;
	}
	fdtab_put(newfd, conn, app_cloexec);
	real.fcntl(newfd, F_SETFD, FD_CLOEXEC);
	conn_unref(conn);
}

int dup(int oldfd)
{
	int newfd;

	if (!shim_enter())
		return real.dup(oldfd);
	adopt_maybe(oldfd);
	newfd = real.dup(oldfd);
	adopt_born(newfd);
	if (newfd >= 0 && fdtab_any())
		share(oldfd, newfd, false);
	return newfd;
}

static int dup_onto(int oldfd, int newfd, int flags, bool three)
{
	int ret;

	struct conn *conn = NULL;

	/* Fail as dup2 would, before NEWFD's connection is let go: a failed
	 * dup2 must leave it upgraded, not a plain socket. */
	if (real.fcntl(oldfd, F_GETFD) < 0 || newfd < 0 || (three && ((flags & ~O_CLOEXEC) || oldfd == newfd)))
		return three ? real.dup3(oldfd, newfd, flags) : real.dup2(oldfd, newfd);
	adopt_maybe(oldfd);
	if (oldfd != newfd) {
		ownfd_protect(newfd);
		linger_forget(newfd);
		if (fdtab_any()) {
			struct conn *replaced = fdtab_get(newfd);

			conn = fdtab_get(oldfd);
			if (newfd <= 2 && (conn || replaced))
				stdio_before_replace(newfd);
			if (replaced)
				conn_unref(replaced);
			release(newfd);
		}
		epoll_forget_epfd(newfd);
	}
	ret = three ? real.dup3(oldfd, newfd, flags) : real.dup2(oldfd, newfd);
	if (ret >= 0 && oldfd != newfd)
		adopt_born(ret);
	if (ret >= 0 && oldfd != newfd && conn) {
		share(oldfd, ret, (flags & O_CLOEXEC) != 0);
		if (ret <= 2)
			stdio_after_upgrade(ret);
	}
	if (conn)
		conn_unref(conn);
	return ret;
}

int dup2(int oldfd, int newfd)
{
	if (!shim_enter())
		return real.dup2(oldfd, newfd);
	return dup_onto(oldfd, newfd, 0, false);
}

int dup3(int oldfd, int newfd, int flags)
{
	if (!shim_enter())
		return real.dup3(oldfd, newfd, flags);
	return dup_onto(oldfd, newfd, flags, true);
}

static int fcntl_common(int (*fn)(int, int, ...), int fd, int cmd, void *arg)
{
	int ret;

	if (shim_enter() && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) &&
	    atomic_load_explicit(&adopt_armed, memory_order_relaxed)) {
		adopt_maybe(fd);
		ret = fn(fd, cmd, arg);
		adopt_born(ret);
		if (ret >= 0 && fdtab_any())
			share(fd, ret, cmd == F_DUPFD_CLOEXEC);
		return ret;
	}
	if (!shim_enter() || !fdtab_any())
		return fn(fd, cmd, arg);
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		ret = fn(fd, cmd, arg);
		if (ret >= 0)
			share(fd, ret, cmd == F_DUPFD_CLOEXEC);
		return ret;
	case F_GETFD: {
		struct conn *conn = fdtab_get(fd);

		ret = fn(fd, cmd, arg);
		if (conn && ret >= 0)
			ret = (ret & ~FD_CLOEXEC) | (fdtab_app_cloexec(fd) ? FD_CLOEXEC : 0);
		if (conn)
			conn_unref(conn);
		return ret;
	}
	case F_SETFD: {
		struct conn *conn = fdtab_get(fd);

		if (!conn)
			return fn(fd, cmd, arg);
		fdtab_set_app_cloexec(fd, ((long)arg & FD_CLOEXEC) != 0);
		conn_unref(conn);
		return fn(fd, cmd, (void *)(long)(((long)arg) | FD_CLOEXEC));
	}
	default:
		return fn(fd, cmd, arg);
	}
}

int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	real_need();
	return fcntl_common(real.fcntl, fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	real_need();
	return fcntl_common(real.fcntl64, fd, cmd, arg);
}

int ioctl(int fd, unsigned long request, ...)
{
	struct conn *conn;
	va_list ap;
	void *arg;
	int n;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (request == FIONREAD && shim_enter())
		adopt_maybe(fd);
	if (!shim_enter() || (request != FIONREAD && request != FIONCLEX && request != FIOCLEX) ||
	    !(conn = fdtab_any() ? fdtab_get(fd) : NULL))
		return real.ioctl(fd, request, arg);
	if (request != FIONREAD) {
		/* os.set_inheritable: like F_SETFD, the program's view only;
		 * the kernel's close-on-exec stays set (see the top). */
		fdtab_set_app_cloexec(fd, request == FIOCLEX);
		conn_unref(conn);
		return 0;
	}
	/* Plaintext bytes, not ciphertext.  Copied: the program's int need
	 * not be aligned (python's fcntl.ioctl passes a byte buffer), and
	 * NULL is the kernel's EFAULT. */
	n = (int)conn_readable(conn);
	conn_unref(conn);
	if (!arg) {
		errno = EFAULT;
		return -1;
	}
	memcpy(arg, &n, sizeof n);
	return 0;
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
	struct conn *conn;
	bool taken = false;
	int on;

	if (!shim_enter() || level != IPPROTO_TCP || name != TCP_NODELAY || !value || len < sizeof(int) ||
	    !(conn = fdtab_any() ? fdtab_get(fd) : NULL))
		return real.setsockopt(fd, level, name, value, len);
	memcpy(&on, value, sizeof on); /* the program's int need not be aligned */
	taken = conn_nodelay_set(conn, on);
	conn_unref(conn);
	return taken ? 0 : real.setsockopt(fd, level, name, value, len);
}

int getsockopt(int fd, int level, int name, void *value, socklen_t *len)
{
	struct conn *conn;
	int err, ret;

	if (shim_enter() && level == IPPROTO_TCP && name == TCP_NODELAY && value && len &&
	    *len >= sizeof(int) && (conn = fdtab_any() ? fdtab_get(fd) : NULL)) {
		int mine = conn_nodelay_get(conn);

		conn_unref(conn);
		if (mine >= 0) {
			memcpy(value, &mine, sizeof mine);
			*len = sizeof(int);
			return 0;
		}
		return real.getsockopt(fd, level, name, value, len);
	}
	if (!shim_enter() || level != SOL_SOCKET || name != SO_ERROR ||
	    !(conn = fdtab_any() ? fdtab_get(fd) : NULL))
		return real.getsockopt(fd, level, name, value, len);
	err = conn_take_so_error(conn);
	if (!err) {
		ret = real.getsockopt(fd, level, name, value, len);
		if (ret == 0 && value && len && *len >= sizeof(int)) {
			memcpy(&err, value, sizeof err);
			if (err != 0)
				conn_kernel_error(conn, err);
		}
		conn_unref(conn);
		return ret;
	}
	conn_unref(conn);
	if (!value || !len || *len < sizeof(int))
		return (int)shim_result(-EINVAL);
	memcpy(value, &err, sizeof err);
	*len = sizeof(int);
	return 0;
}
