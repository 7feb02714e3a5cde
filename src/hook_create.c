/* hook_create.c - descriptors the program creates.  A new descriptor has
 * no connection: if its number still has one, that connection's socket was
 * closed behind our back (syscall(SYS_close), as libuv does) and the mapping
 * is stale.  Dropping it here keeps the per-call look-up free of syscalls. */
#include "shim.h"
#include "adopt.h"
#include "fdtab.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

static int born(int fd)
{
	adopt_born(fd);
	if (fd >= 0 && fdtab_any())
		fdtab_forget(fd);
	return fd;
}

int socket(int domain, int type, int protocol)
{
	real_need();
	return born(real.socket(domain, type, protocol));
}

int socketpair(int domain, int type, int protocol, int sv[2])
{
	int ret;

	real_need();
	ret = real.socketpair(domain, type, protocol, sv);
	if (ret == 0) {
		born(sv[0]);
		born(sv[1]);
	}
	return ret;
}

/* accept() returned FD: what the program gets (errno as accept left it
 * when it succeeds: our look's system calls are not the program's). */
static int accepted(int fd, int flags)
{
	int saved = errno, ret = shim_accepted(fd, flags);

	if (ret >= 0) {
		errno = saved;
		return ret;
	}
	return (int)shim_result(ret);
}

/* An accepted socket an inbound rule covers becomes a server connection
 * (accept.c); one it refuses is closed and accept fails with ECONNABORTED,
 * as for a connection the client aborted. */
int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	int ret;

	if (!shim_enter())
		return real.accept(fd, addr, len);
	ret = born(real.accept(fd, addr, len));
	return ret < 0 ? ret : accepted(ret, 0);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	int ret;

	if (!shim_enter())
		return real.accept4(fd, addr, len, flags);
	ret = born(real.accept4(fd, addr, len, flags));
	return ret < 0 ? ret : accepted(ret, flags);
}

/* open and openat take a mode only with O_CREAT or O_TMPFILE. */
static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	real_need();
	return born(real.open(path, flags, mode));
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	real_need();
	return born(real.open64(path, flags, mode));
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	real_need();
	return born(real.openat(dirfd, path, flags, mode));
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	real_need();
	return born(real.openat64(dirfd, path, flags, mode));
}

int pipe(int fds[2])
{
	int ret;

	real_need();
	ret = real.pipe(fds);
	if (ret == 0) {
		born(fds[0]);
		born(fds[1]);
	}
	return ret;
}

int pipe2(int fds[2], int flags)
{
	int ret;

	real_need();
	ret = real.pipe2(fds, flags);
	if (ret == 0) {
		born(fds[0]);
		born(fds[1]);
	}
	return ret;
}

int epoll_create(int size)
{
	real_need();
	return born(real.epoll_create(size));
}

int epoll_create1(int flags)
{
	real_need();
	return born(real.epoll_create1(flags));
}

int eventfd(unsigned int initval, int flags)
{
	real_need();
	return born(real.eventfd(initval, flags));
}

/* The other calls that make a descriptor: each may get the number of a
 * socket closed behind our back.  (A libc without one of them leaves its
 * pointer NULL: ENOSYS, as the missing system call would say.) */
#define BORN_CALL(fn, ...)                                                                     \
	do {                                                                                   \
		real_need();                                                                   \
		if (!real.fn) {                                                                \
			errno = ENOSYS;                                                        \
			return -1;                                                             \
		}                                                                              \
		return born(real.fn(__VA_ARGS__));                                             \
	} while (0)

int inotify_init(void)
{
	BORN_CALL(inotify_init);
}

int inotify_init1(int flags)
{
	BORN_CALL(inotify_init1, flags);
}

int timerfd_create(int clockid, int flags)
{
	BORN_CALL(timerfd_create, clockid, flags);
}

int signalfd(int fd, const sigset_t *mask, int flags)
{
	BORN_CALL(signalfd, fd, mask, flags);
}

int memfd_create(const char *name, unsigned int flags)
{
	BORN_CALL(memfd_create, name, flags);
}

int fanotify_init(unsigned int flags, unsigned int event_f_flags)
{
	BORN_CALL(fanotify_init, flags, event_f_flags);
}

int pidfd_open(pid_t pid, unsigned int flags)
{
	BORN_CALL(pidfd_open, pid, flags);
}

/* _FORTIFY_SOURCE turns open(path, flags) without a mode into these. */
int __open_2(const char *path, int flags)
{
	real_need();
	return born(real.open(path, flags, 0));
}

int __open64_2(const char *path, int flags)
{
	real_need();
	return born(real.open64(path, flags, 0));
}

int __openat_2(int dirfd, const char *path, int flags)
{
	real_need();
	return born(real.openat(dirfd, path, flags, 0));
}

int __openat64_2(int dirfd, const char *path, int flags)
{
	real_need();
	return born(real.openat64(dirfd, path, flags, 0));
}
