/* real.c - resolve the real libc functions with dlsym(RTLD_NEXT). */
#include "real.h"

#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

struct real_fns real;
atomic_bool real_ready;
__thread int shim_guard __attribute__((tls_model("initial-exec")));

/* Where our own object is mapped: a symbol found there is our wrapper. */
static uintptr_t self_start, self_end;

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	uintptr_t probe = (uintptr_t)arg;
	int i;

	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && probe >= start && probe < start + ph->p_memsz) {
			self_start = info->dlpi_addr;
			for (i = 0; i < info->dlpi_phnum; i++) {
				ph = &info->dlpi_phdr[i];
				if (ph->p_type == PT_LOAD && info->dlpi_addr + ph->p_vaddr + ph->p_memsz > self_end)
					self_end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
			}
			return 1;
		}
	}
	return 0;
}

static void *lookup(const char *name)
{
	void *fn = dlsym(RTLD_NEXT, name);

	/* A lookup that finds our own wrapper would recurse forever: refuse it
	 * loudly rather than hang (proxychains-ng's circular-reference check).
	 * (dladdr would say so too, but costs a symbol-table scan per call.) */
	if (fn && (uintptr_t)fn >= self_start && (uintptr_t)fn < self_end) {
		static const char msg[] = "tlsshim: dlsym returned our own wrapper\n";
		ssize_t unused = write(2, msg, sizeof msg - 1);
		(void)unused;
		return NULL;
	}
	return fn;
}

#define RESOLVE(name) real.name = (__typeof__(real.name))lookup(#name)

/* The socket and descriptor calls: I/O, close/dup, options, waiting. */
static void resolve_io(void)
{
	RESOLVE(connect);
	RESOLVE(read);
	RESOLVE(write);
	RESOLVE(readv);
	RESOLVE(writev);
	RESOLVE(recv);
	RESOLVE(send);
	RESOLVE(recvfrom);
	RESOLVE(sendto);
	RESOLVE(recvmsg);
	RESOLVE(sendmsg);
	RESOLVE(sendfile);
	RESOLVE(splice);
	RESOLVE(close);
	RESOLVE(close_range);
	RESOLVE(closefrom);
	RESOLVE(shutdown);
	RESOLVE(dup);
	RESOLVE(dup2);
	RESOLVE(dup3);
	RESOLVE(fcntl);
	RESOLVE(fcntl64);
	RESOLVE(ioctl);
	RESOLVE(getsockopt);
	RESOLVE(setsockopt);
	RESOLVE(poll);
	RESOLVE(ppoll);
	RESOLVE(select);
	RESOLVE(pselect);
	RESOLVE(epoll_ctl);
	RESOLVE(epoll_wait);
	RESOLVE(epoll_pwait);
	RESOLVE(recvmmsg);
	RESOLVE(sendmmsg);
	RESOLVE(preadv2);
	RESOLVE(pwritev2);
	RESOLVE(epoll_pwait2);
}

/* The rest: names, descriptor creation, processes, stdio. */
static void resolve_other(void)
{
	RESOLVE(getaddrinfo);
	RESOLVE(gethostbyname);
	RESOLVE(gethostbyname2);
	RESOLVE(gethostbyname_r);
	RESOLVE(gethostbyname2_r);
	RESOLVE(fdopen);
	RESOLVE(_Fork);
	RESOLVE(_exit);
	RESOLVE(socket);
	RESOLVE(socketpair);
	RESOLVE(accept);
	RESOLVE(accept4);
	RESOLVE(open);
	RESOLVE(open64);
	RESOLVE(openat);
	RESOLVE(openat64);
	RESOLVE(pipe);
	RESOLVE(pipe2);
	RESOLVE(epoll_create);
	RESOLVE(epoll_create1);
	RESOLVE(eventfd);
	RESOLVE(inotify_init);
	RESOLVE(inotify_init1);
	RESOLVE(timerfd_create);
	RESOLVE(signalfd);
	RESOLVE(memfd_create);
	RESOLVE(fanotify_init);
	RESOLVE(pidfd_open);
	RESOLVE(fork);
	RESOLVE(execve);
	RESOLVE(execv);
	RESOLVE(execvp);
	RESOLVE(execvpe);
	RESOLVE(fexecve);
	RESOLVE(execveat);
	RESOLVE(posix_spawn);
	RESOLVE(posix_spawnp);
	RESOLVE(posix_spawn_file_actions_init);
	RESOLVE(posix_spawn_file_actions_destroy);
	RESOLVE(posix_spawn_file_actions_adddup2);
	RESOLVE(vdprintf);
	RESOLVE(fileno);
	RESOLVE(fileno_unlocked);
	RESOLVE(setuid);
	RESOLVE(seteuid);
	RESOLVE(setreuid);
	RESOLVE(setresuid);
	RESOLVE(setgid);
	RESOLVE(setegid);
	RESOLVE(setregid);
	RESOLVE(setresgid);
	RESOLVE(setgroups);
	RESOLVE(chroot);
}

/* Every entry of the table, once (pthread_once, signals blocked). */
static void resolve_all(void)
{
	dl_iterate_phdr(find_self, (void *)lookup);
	resolve_io();
	resolve_other();
	real.vdprintf_chk = (int (*)(int, int, const char *, va_list))lookup("__vdprintf_chk");
	real.chk_fail = (void (*)(void))lookup("__chk_fail");
	if (!real.fcntl64)
		real.fcntl64 = real.fcntl;
	atomic_store_explicit(&real_ready, true, memory_order_release);
}

/* With every signal blocked: a handler that calls one of our hooks while
 * this thread is resolving would wait on its own pthread_once forever. */
static void resolve_all_masked(void)
{
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	resolve_all();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void real_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	shim_guard++;
	pthread_once(&once, resolve_all_masked);
	shim_guard--;
}

