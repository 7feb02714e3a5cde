/* forklocks_client - fork while another thread holds each lock of the
 * library, then connect from the child.  Run under tlsshim (the library
 * preloaded), knowing nothing about TLS:
 *
 *   forklocks_client PORT
 *
 * 1. One exchange with 127.0.0.1:PORT (an echo server the policy upgrades),
 *    so that the TLS module is loaded and its locks registered.
 * 2. The library's locks, from the ELF files of its loaded objects: every
 *    data symbol the size of a pthread_mutex_t whose name says "lock" (the
 *    build tree's objects keep their symbol tables), and every entry of the
 *    registry sections ("tlsshim_forklocks", src/forklock.h).
 * 3. For each lock: a helper thread locks it and waits; the main thread
 *    forks; the child, under a 10 s alarm (a deadlock kills it), checks that
 *    the lock is free (pthread_mutex_trylock), then connects to PORT, sends
 *    "child of LOCK\n", reads the echo and closes; the helper then unlocks.
 *
 * Prints one line per lock, "LOCK free=yes|no child=ok|deadlocked|failed",
 * then "locks N bad M"; exits 0 if N > 0 and M == 0.
 *
 *   forklocks_client PORT signal-fork
 *
 * A signal handler that calls _Fork() (async-signal-safe) after
 * interrupting its own thread while it held the library's fdtab_lock: the
 * main thread holds an upgraded connection, locks fdtab_lock and raises
 * SIGUSR1; the handler forks; the child writes on the connection (EIO: the
 * parent kept it) and _exits; the parent, once the handler returned, unlocks
 * and exchanges a message on the connection.  Under a 20 s alarm (a
 * deadlock kills it).  Prints "signal-fork child=EIO|<what> parent=ok|failed"
 * and exits 0 if both are as said first. */
#include <arpa/inet.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct entry {
	pthread_mutex_t *mutex;
	const char *name;
};

#define MAX_LOCKS 128
static struct entry locks[MAX_LOCKS];
static int n_locks;
static int port;

static int known(const pthread_mutex_t *m)
{
	int i;

	for (i = 0; i < n_locks; i++)
		if (locks[i].mutex == m)
			return 1;
	return 0;
}

static void add_lock(pthread_mutex_t *m, const char *name)
{
	if (n_locks < MAX_LOCKS && !known(m)) {
		locks[n_locks].mutex = m;
		locks[n_locks].name = name;
		n_locks++;
	}
}

/* Read N bytes at OFF of FD into a new buffer (NUL-terminated), or NULL. */
static void *load(int fd, off_t off, size_t n)
{
	char *buf = malloc(n + 1);

	if (buf && pread(fd, buf, n, off) != (ssize_t)n) {
		free(buf);
		return NULL;
	}
	if (buf)
		buf[n] = '\0';
	return buf;
}

/* The locks of the object at PATH loaded at BASE: from its symbol table
 * (every data object the size of a mutex named *lock*: found whether or not
 * the library registered it), and from its registry section. */
static void scan_object(const char *path, ElfW(Addr) base)
{
	ElfW(Ehdr) eh;
	ElfW(Shdr) *sh = NULL;
	char *names = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC), i;

	if (fd < 0)
		return;
	if (pread(fd, &eh, sizeof eh, 0) != sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shstrndx >= eh.e_shnum)
		goto out;
	if (!(sh = load(fd, (off_t)eh.e_shoff, eh.e_shnum * sizeof *sh)) ||
	    !(names = load(fd, (off_t)sh[eh.e_shstrndx].sh_offset, sh[eh.e_shstrndx].sh_size)))
		goto out;
	for (i = 0; i < eh.e_shnum; i++) {
		if (sh[i].sh_type == SHT_SYMTAB && sh[i].sh_link < eh.e_shnum) {
			ElfW(Sym) *sym = load(fd, (off_t)sh[i].sh_offset, sh[i].sh_size);
			char *str = load(fd, (off_t)sh[sh[i].sh_link].sh_offset, sh[sh[i].sh_link].sh_size);
			size_t k;

			for (k = 0; sym && str && k < sh[i].sh_size / sizeof *sym; k++) {
				const char *name = sym[k].st_name < sh[sh[i].sh_link].sh_size ? str + sym[k].st_name : "";

				if (ELF64_ST_TYPE(sym[k].st_info) == STT_OBJECT &&
				    sym[k].st_size == sizeof(pthread_mutex_t) && strstr(name, "lock") &&
				    sym[k].st_shndx != SHN_UNDEF)
					add_lock((pthread_mutex_t *)(base + sym[k].st_value), strdup(name));
			}
			free(sym);
			/* str is kept: the names are used */
		}
		if (sh[i].sh_name < sh[eh.e_shstrndx].sh_size &&
		    strcmp(names + sh[i].sh_name, "tlsshim_forklocks") == 0) {
			const struct entry *e = (const struct entry *)(base + sh[i].sh_addr);
			size_t k;

			for (k = 0; k < sh[i].sh_size / sizeof *e; k++)
				add_lock(e[k].mutex, e[k].name);
		}
	}
out:
	free(names);
	free(sh);
	close(fd);
}

static int each_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	if (info->dlpi_name && info->dlpi_name[0] && strstr(info->dlpi_name, "tlsshim"))
		scan_object(info->dlpi_name, info->dlpi_addr);
	return 0;
}

/* A connection to 127.0.0.1:PORT, or -1. */
static int dial(void)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Connect, send MSG, read it back, close: 0 if it all came back. */
static int exchange(const char *msg)
{
	size_t len = strlen(msg), got = 0;
	char buf[256];
	int fd = dial();

	if (fd < 0)
		return -1;
	if (write(fd, msg, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	while (got < len) {
		ssize_t n = read(fd, buf + got, sizeof buf - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return got == len && memcmp(buf, msg, len) == 0 ? 0 : -1;
}

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int stage; /* 0: start, 1: the lock is held, 2: forked */

static void *holder(void *arg)
{
	pthread_mutex_t *m = arg;

	pthread_mutex_lock(m);
	pthread_mutex_lock(&gate);
	stage = 1;
	pthread_cond_broadcast(&cond);
	while (stage != 2)
		pthread_cond_wait(&cond, &gate);
	pthread_mutex_unlock(&gate);
	pthread_mutex_unlock(m);
	return NULL;
}

static int kept_fd = -1;
static volatile sig_atomic_t child_status = -1;

/* SIGUSR1: fork from here, as a program's handler may (_Fork is
 * async-signal-safe); the child tries the connection and _exits. */
static void fork_in_handler(int sig)
{
	int status;
	pid_t pid = _Fork();

	(void)sig;
	if (pid == 0) {
		alarm(10);
		_exit(write(kept_fd, "child\n", 6) < 0 && errno == EIO ? 0 : 1);
	}
	if (pid > 0 && waitpid(pid, &status, 0) == pid)
		child_status = status;
}

/* The signal-fork mode (see the top): 0 if the child got EIO and the
 * parent's connection still works. */
static int signal_fork(void)
{
	pthread_mutex_t *fdtab_lock = NULL;
	const char *msg = "after the signal fork\n";
	char buf[64];
	size_t got = 0;
	ssize_t n;
	int i, parent_ok;

	for (i = 0; i < n_locks; i++)
		if (strcmp(locks[i].name, "fdtab_lock") == 0)
			fdtab_lock = locks[i].mutex;
	if (!fdtab_lock || (kept_fd = dial()) < 0 || write(kept_fd, "parent\n", 7) != 7) {
		printf("signal-fork setup failed\n");
		return 1;
	}
	alarm(20);
	signal(SIGUSR1, fork_in_handler);
	pthread_mutex_lock(fdtab_lock);
	raise(SIGUSR1);
	pthread_mutex_unlock(fdtab_lock);
	parent_ok = write(kept_fd, msg, strlen(msg)) == (ssize_t)strlen(msg);
	while (parent_ok && got < 7 + strlen(msg) && (n = read(kept_fd, buf + got, sizeof buf - got)) > 0)
		got += (size_t)n;
	parent_ok = parent_ok && got == 7 + strlen(msg) && memcmp(buf + 7, msg, strlen(msg)) == 0;
	parent_ok = close(kept_fd) == 0 && parent_ok;
	printf("signal-fork child=%s parent=%s\n",
	       child_status < 0 ? "none" : WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0 ? "EIO" : "failed",
	       parent_ok ? "ok" : "failed");
	return child_status >= 0 && WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0 && parent_ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	int i, bad = 0;

	if (argc != 2 && !(argc == 3 && strcmp(argv[2], "signal-fork") == 0)) {
		fprintf(stderr, "usage: forklocks_client PORT [signal-fork]\n");
		return 2;
	}
	port = atoi(argv[1]);
	if (exchange("before the forks\n") != 0) {
		printf("first exchange failed\n");
		return 1;
	}
	dl_iterate_phdr(each_object, NULL);
	if (argc == 3)
		return signal_fork();
	for (i = 0; i < n_locks; i++) {
		pthread_t thread;
		pid_t pid;
		int status = 0;
		const char *child;
		char msg[128];

		stage = 0;
		if (pthread_create(&thread, NULL, holder, locks[i].mutex) != 0)
			return 1;
		pthread_mutex_lock(&gate);
		while (stage != 1)
			pthread_cond_wait(&cond, &gate);
		pthread_mutex_unlock(&gate);
		snprintf(msg, sizeof msg, "child of %s\n", locks[i].name);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			int free_now;

			alarm(10);
			free_now = pthread_mutex_trylock(locks[i].mutex) == 0;
			if (free_now)
				pthread_mutex_unlock(locks[i].mutex);
			_exit((free_now ? 0 : 1) | (exchange(msg) == 0 ? 0 : 2));
		}
		if (pid > 0)
			waitpid(pid, &status, 0);
		pthread_mutex_lock(&gate);
		stage = 2;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&gate);
		pthread_join(thread, NULL);
		if (pid < 0)
			child = "fork-failed";
		else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
			child = "deadlocked";
		else if (WIFEXITED(status) && !(WEXITSTATUS(status) & 2))
			child = "ok";
		else
			child = "failed";
		printf("%s free=%s child=%s\n", locks[i].name,
		       pid > 0 && WIFEXITED(status) && !(WEXITSTATUS(status) & 1) ? "yes" : "no", child);
		if (strcmp(child, "ok") != 0 || !WIFEXITED(status) || (WEXITSTATUS(status) & 1))
			bad++;
	}
	printf("locks %d bad %d\n", n_locks, bad);
	return n_locks > 0 && bad == 0 ? 0 : 1;
}
