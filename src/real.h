/* real.h - the real libc functions behind our hooks, resolved once.
 *
 * Everything the library does on a socket goes through these pointers, never
 * through the exported hooks, so GnuTLS's transport and our own I/O are never
 * intercepted by ourselves. */
#ifndef TLSSHIM_REAL_H
#define TLSSHIM_REAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <netdb.h>

struct real_fns {
	int (*connect)(int, const struct sockaddr *, socklen_t);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	ssize_t (*splice)(int, loff_t *, int, loff_t *, size_t, unsigned int);
	int (*close)(int);
	int (*close_range)(unsigned, unsigned, int);
	void (*closefrom)(int);
	int (*shutdown)(int, int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	int (*ioctl)(int, unsigned long, ...);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	int (*getaddrinfo)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	struct hostent *(*gethostbyname)(const char *);
	struct hostent *(*gethostbyname2)(const char *, int);
	int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t, struct hostent **, int *);
	int (*gethostbyname2_r)(const char *, int, struct hostent *, char *, size_t, struct hostent **, int *);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
	ssize_t (*preadv2)(int, const struct iovec *, int, off_t, int);
	ssize_t (*pwritev2)(int, const struct iovec *, int, off_t, int);
	int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
	FILE *(*fdopen)(int, const char *);
	pid_t (*_Fork)(void);
	void (*_exit)(int);
	void (*chk_fail)(void);
	int (*socket)(int, int, int);
	int (*socketpair)(int, int, int, int *);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*open)(const char *, int, ...);
	int (*open64)(const char *, int, ...);
	int (*openat)(int, const char *, int, ...);
	int (*openat64)(int, const char *, int, ...);
	int (*pipe)(int *);
	int (*pipe2)(int *, int);
	int (*epoll_create)(int);
	int (*epoll_create1)(int);
	int (*eventfd)(unsigned int, int);
	int (*inotify_init)(void);
	int (*inotify_init1)(int);
	int (*timerfd_create)(int, int);
	int (*signalfd)(int, const sigset_t *, int);
	int (*memfd_create)(const char *, unsigned int);
	int (*fanotify_init)(unsigned int, unsigned int);
	int (*pidfd_open)(pid_t, unsigned int);
	/* processes: vfork runs fork (hook_exec.c); exec and spawn */
	pid_t (*fork)(void);
	int (*execve)(const char *, char *const[], char *const[]);
	int (*execv)(const char *, char *const[]);
	int (*execvp)(const char *, char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*fexecve)(int, char *const[], char *const[]);
	int (*execveat)(int, const char *, char *const[], char *const[], int);
	int (*posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			   const posix_spawnattr_t *, char *const[], char *const[]);
	int (*posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			    const posix_spawnattr_t *, char *const[], char *const[]);
	int (*posix_spawn_file_actions_init)(posix_spawn_file_actions_t *);
	int (*posix_spawn_file_actions_destroy)(posix_spawn_file_actions_t *);
	int (*posix_spawn_file_actions_adddup2)(posix_spawn_file_actions_t *, int, int);
	int (*vdprintf)(int, const char *, va_list);
	int (*vdprintf_chk)(int, int, const char *, va_list);
	int (*fileno)(FILE *);
	int (*fileno_unlocked)(FILE *);
	int (*setuid)(uid_t);
	int (*seteuid)(uid_t);
	int (*setreuid)(uid_t, uid_t);
	int (*setresuid)(uid_t, uid_t, uid_t);
	int (*setgid)(gid_t);
	int (*setegid)(gid_t);
	int (*setregid)(gid_t, gid_t);
	int (*setresgid)(gid_t, gid_t, gid_t);
	int (*setgroups)(size_t, const gid_t *);
	int (*chroot)(const char *);
};

extern struct real_fns real;

/* Resolve every pointer (idempotent, thread-safe).  Called by the first
 * hook that runs (start-up does not need it: a process that calls none of
 * our hooks never pays for it). */
void real_init(void);
/* Set (release) once every pointer is resolved: a hook that sees it set
 * (acquire) sees the pointers too, in any thread. */
extern atomic_bool real_ready;

/* Make sure the pointers are resolved (cheap once they are). */
static inline void real_need(void)
{
	if (__builtin_expect(!atomic_load_explicit(&real_ready, memory_order_acquire), 0))
		real_init();
}

/* The per-thread guard: while set, hooks pass straight to the real
 * functions (our own code, GnuTLS, p11-kit calling back into hooks). */
extern __thread int shim_guard;


#endif
