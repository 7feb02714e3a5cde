/* hook_exec.c - new program images: vfork, the exec family, posix_spawn.
 *
 * A TLS session cannot cross exec: an upgraded descriptor always carries
 * close-on-exec in the kernel (hook_fd.c), so a new image never gets it and
 * cannot write on it in clear.  These hooks close the paths around that:
 *  - vfork() runs a real fork.  A vfork child shares our memory: its hooks
 *    (dup2, close, close_range) would change the parent's descriptor table
 *    and end or unmap the parent's sessions.  POSIX allows vfork to be fork;
 *    the parent keeps its connections (shim_vforking): the child only execs.
 *  - posix_spawn's file actions run glibc-internal dup2 in the child, which
 *    no hook sees and which leaves the duplicate inheritable: a spawn whose
 *    dup2 action names an upgraded descriptor fails with EBADF, and says so.
 *  - exec: a warning for each upgraded descriptor the program believes
 *    inheritable, which the new program will not have (git's pack-objects
 *    would otherwise write to nowhere without a word).
 * One exception (inetd style: tcpserver, inetd): an ACCEPTED connection
 * whose TLS handshake has not begun -- not a byte read or written by us --
 * crosses exec as the plain socket it still is, when the program passes it
 * (inheritable, or a posix_spawn dup2 action).  The new image, preloaded
 * too, adopts it on first use (adopt.h); this process sends nothing for it.
 * The decision is taken under the connection's two locks, held until the
 * new image has started, so no other thread can begin the handshake in
 * between.  It is passed only to a program that will adopt it: one the
 * loader preloads with this library (LD_PRELOAD in its environment names
 * it; not set-uid, set-gid or with file capabilities, which make the loader
 * ignore LD_PRELOAD; not statically linked) and that reads this process's
 * policy.  Anything else would read the client's ClientHello as plaintext
 * and answer in clear: such an exec closes the connection (a posix_spawn
 * that would duplicate it fails with EBADF), as for a begun one.  Once the
 * new image has it, every other copy of it is given away (owner.h): the
 * parent of a posix_spawn, or of a vfork child that passed it, gets EIO. */
#include "shim.h"
#include "conn.h"
#include "elfinfo.h"
#include "fdtab.h"
#include "forklock.h"
#include "log.h"
#include "owner.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- vfork ---- */

pid_t vfork(void)
{
	pid_t pid;

	real_need();
	if (!real.fork)
		return (pid_t)shim_result(-ENOSYS);
	shim_vforking = true;
	pid = real.fork();
	shim_vforking = false;
	return pid;
}

/* ---- what an exec leaves behind ---- */

#define REPORT_MAX 64

struct fd_list {
	int fds[REPORT_MAX];
	int n;
};

/* (Under the registry lock: fdtab_app_cloexec takes none.) */
static void note_inheritable(int fd, struct conn *conn, void *arg)
{
	struct fd_list *list = arg;

	(void)conn;
	if (!fdtab_app_cloexec(fd) && list->n < REPORT_MAX)
		list->fds[list->n++] = fd;
}

/* The connections a new program image (exec, posix_spawn) is handed, and
 * the ones it is not.  A passed one stays locked (rlock and wlock) until
 * the image has started, so that no other thread begins its handshake in
 * between; its descriptors have close-on-exec cleared in the kernel. */
struct exec_pass {
	struct conn *conns[REPORT_MAX]; /* a reference each */
	bool passed[REPORT_MAX];        /* locked and passed, or refused */
	const char *why_not[REPORT_MAX]; /* refused: the new program would not
					  * adopt it (target_why), or NULL */
	uint64_t prev[REPORT_MAX][2], given[REPORT_MAX][2]; /* owner_hand_over */
	bool handed;                    /* ... done for the passed ones */
	int n_conns;
	int fds[REPORT_MAX];            /* close-on-exec cleared */
	int n_fds;
	/* The new program: the file the exec will run (DIRFD, PATH, AT_FLAGS;
	 * PATH NULL: cannot be told) and its environment; judged once, when a
	 * connection could be passed. */
	int dirfd, at_flags;
	const char *path;
	char *const *envp;
	bool judged;
	const char *why;                /* NULL: it would adopt the connection */
	char buf[PATH_MAX];             /* PATH, when it is made here */
};

/* The new program is PATH (relative to DIRFD, AT_FLAGS as for execveat;
 * NULL: cannot be told) with the environment ENVP. */
static void pass_init(struct exec_pass *pass, int dirfd, const char *path, int at_flags, char *const *envp)
{
	pass->n_conns = pass->n_fds = 0;
	pass->handed = pass->judged = false;
	pass->why = NULL;
	pass->dirfd = dirfd;
	pass->path = path;
	pass->at_flags = at_flags;
	pass->envp = envp;
}

/* ---- will the new program adopt a passed connection? ---- */

/* NAME's value in ENVP (a NULL ENVP: none), or NULL. */
static const char *env_value(char *const *envp, const char *name)
{
	size_t len = strlen(name);

	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

/* Does the LD_PRELOAD value LIST (entries split by spaces and colons, as
 * the loader does) name this library: the same file, or for an entry
 * without a slash (searched by the loader) the same file name? */
static bool preloads_us(const char *list)
{
	char entry[PATH_MAX];
	struct stat self, st;
	const char *base;
	Dl_info info;
	size_t len;

	if (!list || !dladdr((void *)preloads_us, &info) || !info.dli_fname || stat(info.dli_fname, &self) != 0)
		return false;
	base = strrchr(info.dli_fname, '/');
	base = base ? base + 1 : info.dli_fname;
	for (; *list; list += len) {
		list += strspn(list, " :");
		len = strcspn(list, " :");
		if (len == 0 || len >= sizeof entry)
			continue;
		memcpy(entry, list, len);
		entry[len] = '\0';
		if (strchr(entry, '/') ? stat(entry, &st) == 0 && st.st_dev == self.st_dev && st.st_ino == self.st_ino
				       : strcmp(entry, base) == 0)
			return true;
	}
	return false;
}

/* Would a program with the environment ENVP read the policy this process
 * uses?  It looks where init.c and policy_find look: TLSSHIM_POLICY, else
 * ~/.config/tlsshim/policy of its HOME, else the system's. */
static bool same_policy(char *const *envp)
{
	static const char sys[] = SYSCONFDIR "/tlsshim/policy";
	const char *ours = shim_policy_path(), *theirs = env_value(envp, "TLSSHIM_POLICY"), *home;
	char buf[PATH_MAX];
	struct stat a, b;

	if (!ours || !*ours)
		return false;
	if (!theirs || !*theirs) {
		home = env_value(envp, "HOME");
		if (home && *home && (size_t)snprintf(buf, sizeof buf, "%s/.config/tlsshim/policy", home) >= sizeof buf)
			return false;
		if (home && *home && lstat(buf, &a) == 0)
			theirs = buf;
		else if (lstat(sys, &a) == 0)
			theirs = sys;
		else
			return false;
	}
	return strcmp(theirs, ours) == 0 ||
	       (stat(theirs, &a) == 0 && stat(ours, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino);
}

static const char *image_why(int dirfd, const char *path, int at_flags, int depth);

/* FD is not ELF: a "#!" script runs its interpreter, which is judged in
 * turn (as the kernel does, a few levels deep); anything else cannot be
 * told. */
static const char *script_why(int fd, int depth)
{
	char line[256]; /* the kernel reads no more of the "#!" line */
	ssize_t n = pread(fd, line, sizeof line - 1, 0);
	char *interp;

	if (n < 2 || line[0] != '#' || line[1] != '!' || depth >= 4)
		return "cannot tell what it is";
	line[n] = '\0';
	interp = line + 2 + strspn(line + 2, " \t");
	interp[strcspn(interp, " \t\n")] = '\0';
	return *interp ? image_why(AT_FDCWD, interp, 0, depth + 1) : "cannot tell what it is";
}

/* Why the executable PATH (DIRFD, AT_FLAGS as for execveat) would run
 * without the library, or NULL: set-uid/set-gid or file capabilities (the
 * loader ignores LD_PRELOAD), statically linked (no loader), or unreadable
 * (cannot be told). */
static const char *image_why(int dirfd, const char *path, int at_flags, int depth)
{
	const char *why = NULL;
	enum elf_kind kind;
	struct stat st;
	int fd;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (at_flags & AT_SYMLINK_NOFOLLOW ? O_NOFOLLOW : 0));
	if (fd < 0)
		return "unreadable";
	if (fstat(fd, &st) != 0)
		why = "unreadable";
	else if (st.st_mode & (S_ISUID | S_ISGID))
		why = "set-uid/set-gid";
	else if (fgetxattr(fd, "security.capability", NULL, 0) >= 0 || errno == ERANGE)
		why = "file capabilities";
	else if ((kind = elf_kind(fd)) == ELF_STATIC)
		why = "static";
	else if (kind == ELF_UNREADABLE)
		why = "unreadable";
	else if (kind == ELF_NOT_ELF)
		why = script_why(fd, depth);
	close(fd);
	return why;
}

/* Why the new program of PASS would not adopt a passed connection, or
 * NULL; judged once per exec (only when a connection could be passed). */
static const char *target_why(struct exec_pass *pass)
{
	if (pass->judged)
		return pass->why;
	pass->judged = true;
	if (!preloads_us(env_value(pass->envp, "LD_PRELOAD")))
		pass->why = "LD_PRELOAD dropped";
	else if (!same_policy(pass->envp))
		pass->why = "another policy";
	else if (!pass->path)
		pass->why = "cannot tell which program runs";
	else
		pass->why = image_why(pass->dirfd, pass->path, pass->at_flags, 0);
	return pass->why;
}

/* Both locks of CONN held: may the new image have it?  A server
 * connection whose handshake has not begun: nothing read (the client's
 * first bytes were at most peeked at, never judged) and nothing written;
 * no thread of a parent was inside it at a fork; and both directions are
 * ours (claimed now: a process that shares it since fork cannot begin the
 * handshake behind the new image's back) -- or this process is a vfork
 * stand-in's child, which is not counted among its holders (fork.c) and
 * whose parent keeps the directions while it only execs. */
static bool unbegun(struct conn *conn)
{
	return conn->server && !conn->busy_at_fork && atomic_load(&conn->state) == CONN_HANDSHAKING &&
	       !conn->sniffed && (conn_claim(conn) || !conn->holding);
}

/* Lock CONN for passing it: true (both locks held) if it may be passed.
 * Trylocks only (a blocking read holds rlock for as long as the client is
 * silent: that handshake has begun), retried for a few milliseconds in
 * case a poll in another thread is only looking. */
static bool pass_lock(struct conn *conn)
{
	struct timespec ms = { 0, 1000000 };
	int tries;

	for (tries = 0; tries < 20; tries++) {
		if (pthread_mutex_trylock(&conn->rlock) == 0) {
			if (pthread_mutex_trylock(&conn->wlock) == 0) {
				if (unbegun(conn))
					return true;
				pthread_mutex_unlock(&conn->wlock);
				pthread_mutex_unlock(&conn->rlock);
				return false;
			}
			pthread_mutex_unlock(&conn->rlock);
		}
		nanosleep(&ms, NULL);
	}
	return false;
}

/* Is CONN passed to the new image?  Decided once per connection (it may
 * have several descriptors), under its locks. */
static bool pass_decide(struct exec_pass *pass, struct conn *conn)
{
	int i;

	for (i = 0; i < pass->n_conns; i++)
		if (pass->conns[i] == conn)
			return pass->passed[i];
	if (pass->n_conns == REPORT_MAX)
		return false;
	conn_ref(conn);
	pass->conns[pass->n_conns] = conn;
	/* A candidate (a hint without the locks: pass_lock decides) goes
	 * only to a program that will adopt it. */
	pass->why_not[pass->n_conns] = NULL;
	if (conn->server && atomic_load(&conn->state) == CONN_HANDSHAKING)
		pass->why_not[pass->n_conns] = target_why(pass);
	pass->passed[pass->n_conns] = !pass->why_not[pass->n_conns] && pass_lock(conn);
	return pass->passed[pass->n_conns++];
}

/* Why CONN, refused by pass_decide, was not passed: the new program would
 * not adopt it (NULL: its handshake had begun). */
static const char *pass_why_not(const struct exec_pass *pass, const struct conn *conn)
{
	int i;

	for (i = 0; i < pass->n_conns; i++)
		if (pass->conns[i] == conn)
			return pass->why_not[i];
	return NULL;
}

/* The new image (pid PID) has the passed connections, or is about to: every
 * other copy of them is given away (owner.h), so that this process -- the
 * parent of a posix_spawn, or of a vfork stand-in's child -- gets EIO. */
static void pass_hand_over(struct exec_pass *pass, pid_t pid)
{
	int i, d;

	for (i = 0; i < pass->n_conns; i++)
		for (d = 0; pass->passed[i] && d < 2; d++)
			owner_hand_over(pass->conns[i]->owner, (enum owner_dir)d, pid, &pass->prev[i][d],
					&pass->given[i][d]);
	pass->handed = true;
}

/* The exec failed: the passed connections are this process's again. */
static void pass_take_back(struct exec_pass *pass)
{
	int i, d;

	for (i = 0; pass->handed && i < pass->n_conns; i++)
		for (d = 0; pass->passed[i] && d < 2; d++)
			owner_take_back(pass->conns[i]->owner, (enum owner_dir)d, pass->prev[i][d],
					pass->given[i][d]);
	pass->handed = false;
}

/* Descriptor FD of CONN goes to the new image as a plain socket. */
static void pass_fd(struct exec_pass *pass, struct conn *conn, int fd, const char *program)
{
	if (pass->n_fds == REPORT_MAX || real.fcntl(fd, F_SETFD, 0) != 0)
		return;
	pass->fds[pass->n_fds++] = fd;
	if (program)
		log_debug("rule [%s] %s -> %s: descriptor %d passed to %s before its TLS handshake began: the "
			  "new program takes the connection over", conn->rule->name, conn->app_dest, conn->dest, fd,
			  program);
}

/* PROGRAM is about to start (exec, posix_spawn; NULL: a candidate that
 * will not run, say nothing): pass the connections the program believes
 * it passes on and whose handshake has not begun; say which of the others
 * the new program will not have. */
static void exec_prepare(struct exec_pass *pass, const char *program)
{
	struct fd_list list;
	int i;

	pass->n_conns = pass->n_fds = 0;
	if (!shim_enter() || !fdtab_any())
		return;
	list.n = 0;
	fdtab_foreach(note_inheritable, &list);
	for (i = 0; i < list.n; i++) {
		struct conn *conn = fdtab_get(list.fds[i]);

		if (!conn)
			continue;
		if (pass_decide(pass, conn)) {
			pass_fd(pass, conn, list.fds[i], program);
		} else {
			const char *why = pass_why_not(pass, conn);

			/* Whatever another thread's exec did to it meanwhile. */
			real.fcntl(list.fds[i], F_SETFD, FD_CLOEXEC);
			if (program && why)
				log_warning("rule [%s] %s -> %s: descriptor %d is closed at exec of %s: not passed to %s: "
					    "it would not run under tlsshim (%s), and would read the client's TLS "
					    "handshake as plaintext and answer in clear", conn->rule->name,
					    conn->app_dest, conn->dest, list.fds[i], program, program, why);
			else if (program && conn->server)
				log_warning("rule [%s] %s -> %s: descriptor %d is closed at exec of %s: its TLS "
					    "handshake with the client had begun, and a TLS session cannot cross exec "
					    "(the program made it inheritable; the new program does not get it)",
					    conn->rule->name, conn->app_dest, conn->dest, list.fds[i], program);
			else if (program)
				log_warning("rule [%s] %s: descriptor %d is closed at exec of %s: a TLS session "
					    "cannot cross exec (the program made it inheritable; the new program does "
					    "not get it, and its reads and writes there fail)",
					    conn->rule->name, conn->app_dest, list.fds[i], program);
		}
		conn_unref(conn);
	}
}

/* The new image started (posix_spawn) or did not (a failed exec, RESTORE):
 * the passed descriptors are close-on-exec again, the locks let go. */
static void exec_finish(struct exec_pass *pass, bool restore)
{
	int saved = errno, i;

	for (i = 0; restore && i < pass->n_fds; i++)
		real.fcntl(pass->fds[i], F_SETFD, FD_CLOEXEC);
	for (i = 0; i < pass->n_conns; i++) {
		if (pass->passed[i]) {
			pthread_mutex_unlock(&pass->conns[i]->wlock);
			pthread_mutex_unlock(&pass->conns[i]->rlock);
		}
		conn_unref(pass->conns[i]);
	}
	pass->n_conns = pass->n_fds = 0;
	errno = saved;
}

static void let_go_one(int fd, struct conn *conn, void *arg)
{
	conn_exec_let_go(conn);
}

static void hold_one(int fd, struct conn *conn, void *arg)
{
	conn_exec_failed(conn);
}

/* The new image will not have the upgraded sockets: this process stops
 * holding them (owner.h), so that another process that does can end them;
 * the ones PASS passes are handed over to the new image (this very pid);
 * all is undone if the exec fails. */
static void exec_begin(struct exec_pass *pass)
{
	if (pass->n_conns)
		pass_hand_over(pass, owner_pid());
	if (fdtab_any())
		fdtab_foreach(let_go_one, NULL);
}

static int exec_end(int ret, struct exec_pass *pass)
{
	int saved = errno;

	if (fdtab_any())
		fdtab_foreach(hold_one, NULL);
	pass_take_back(pass);
	exec_finish(pass, true);
	errno = saved;
	return ret;
}

/* Would PATH be executed?  (A failing candidate of a PATH search must not
 * be reported: Python's subprocess tries each directory in turn.) */
static bool runnable(int dirfd, const char *path, int flags)
{
	return faccessat(dirfd, path, X_OK, AT_EACCESS | (flags & AT_SYMLINK_NOFOLLOW)) == 0;
}

/* FILE as execvp would find it, into BUF; NULL if nothing would run. */
static const char *search_path(const char *file, char *buf, size_t buflen)
{
	const char *dirs, *end;

	if (!file || !*file)
		return NULL;
	if (strchr(file, '/'))
		return runnable(AT_FDCWD, file, 0) ? file : NULL;
	dirs = getenv("PATH");
	if (!dirs)
		dirs = "/bin:/usr/bin";
	for (;; dirs = end + 1) {
		size_t len;

		end = strchr(dirs, ':');
		if (!end)
			end = dirs + strlen(dirs);
		len = (size_t)(end - dirs);
		if (len == 0)
			snprintf(buf, buflen, "%s", file);
		else
			snprintf(buf, buflen, "%.*s/%s", (int)len, dirs, file);
		if (runnable(AT_FDCWD, buf, 0))
			return buf;
		if (!*end)
			return NULL;
	}
}

/* Before an exec of PATH with the environment ENVP. */
static void prepare_path(struct exec_pass *pass, const char *path, char *const *envp)
{
	bool say = shim_enter() && fdtab_any() && path && runnable(AT_FDCWD, path, 0);

	pass_init(pass, AT_FDCWD, path, 0, envp);
	exec_prepare(pass, say ? path : NULL);
}

/* Before an exec of FILE searched in PATH (as execvp), with ENVP. */
static void prepare_search(struct exec_pass *pass, const char *file, char *const *envp)
{
	const char *found = NULL;

	pass_init(pass, AT_FDCWD, NULL, 0, envp);
	if (shim_enter() && fdtab_any())
		found = pass->path = search_path(file, pass->buf, sizeof pass->buf);
	exec_prepare(pass, found);
}

/* Before an exec of the file open as FD (fexecve, AT_EMPTY_PATH), with
 * ENVP. */
static void prepare_fd(struct exec_pass *pass, int fd, char *const *envp)
{
	char target[PATH_MAX], name[PATH_MAX + 64];
	ssize_t len;

	pass_init(pass, AT_FDCWD, NULL, 0, envp);
	if (!shim_enter() || !fdtab_any()) {
		exec_prepare(pass, NULL);
		return;
	}
	snprintf(pass->buf, sizeof pass->buf, "/proc/self/fd/%d", fd);
	pass->path = pass->buf;
	len = readlink(pass->buf, target, sizeof target - 1);
	if (len > 0) {
		target[len] = '\0';
		snprintf(name, sizeof name, "%s (descriptor %d)", target, fd);
	} else {
		snprintf(name, sizeof name, "the program open as descriptor %d", fd);
	}
	exec_prepare(pass, name);
}

/* ---- the exec family ---- */

int execve(const char *path, char *const argv[], char *const envp[])
{
	struct exec_pass pass;

	real_need();
	prepare_path(&pass, path, envp);
	exec_begin(&pass);
	return exec_end(real.execve(path, argv, envp), &pass);
}

int execv(const char *path, char *const argv[])
{
	struct exec_pass pass;

	real_need();
	prepare_path(&pass, path, environ);
	exec_begin(&pass);
	return exec_end(real.execv(path, argv), &pass);
}

int execvp(const char *file, char *const argv[])
{
	struct exec_pass pass;

	real_need();
	prepare_search(&pass, file, environ);
	exec_begin(&pass);
	return exec_end(real.execvp(file, argv), &pass);
}

int execvpe(const char *file, char *const argv[], char *const envp[])
{
	struct exec_pass pass;

	real_need();
	if (!real.execvpe)
		return (int)shim_result(-ENOSYS);
	prepare_search(&pass, file, envp);
	exec_begin(&pass);
	return exec_end(real.execvpe(file, argv, envp), &pass);
}

int fexecve(int fd, char *const argv[], char *const envp[])
{
	struct exec_pass pass;

	real_need();
	prepare_fd(&pass, fd, envp);
	exec_begin(&pass);
	return exec_end(real.fexecve(fd, argv, envp), &pass);
}

int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	struct exec_pass pass;

	real_need();
	if (!real.execveat)
		return (int)shim_result(-ENOSYS);
	if (!*path && (flags & AT_EMPTY_PATH)) {
		prepare_fd(&pass, dirfd, envp);
	} else {
		pass_init(&pass, dirfd, path, flags, envp);
		exec_prepare(&pass, shim_enter() && fdtab_any() && runnable(dirfd, path, flags) ? path : NULL);
	}
	exec_begin(&pass);
	return exec_end(real.execveat(dirfd, path, argv, envp, flags), &pass);
}

/* The variadic forms: their arguments as a vector (glibc's execl does the
 * same: a variable-length array on the stack).  The count of arguments up
 * to the terminating NULL, which *AP has consumed; ARG NULL: none.
 * SIZE_MAX: too many. */
static size_t count_args(const char *arg, va_list *ap)
{
	size_t argc = 0;

	if (arg)
		for (argc = 1; va_arg(*ap, const char *); argc++)
			if (argc == INT_MAX)
				return SIZE_MAX;
	return argc;
}

static void fill_args(char **argv, const char *arg, size_t argc, va_list *ap)
{
	size_t i;

	if (argc)
		argv[0] = (char *)arg;
	for (i = 1; i < argc; i++)
		argv[i] = va_arg(*ap, char *);
	argv[argc] = NULL;
}

enum list_exec { EXEC_L, EXEC_LP, EXEC_LE };

/* execl, execlp, execle: the argument list into a vector on the stack (as
 * glibc does), then the vector form, which reports and execs.  For EXEC_LE
 * the environment follows the terminating NULL. */
static int exec_list(enum list_exec kind, const char *path, const char *arg, va_list ap)
{
	char *const *envp = environ;
	size_t argc;
	va_list count;

	va_copy(count, ap);
	argc = count_args(arg, &count);
	if (kind == EXEC_LE && argc != SIZE_MAX)
		envp = va_arg(count, char *const *);
	va_end(count);
	if (argc == SIZE_MAX)
		return (int)shim_result(-E2BIG);
	{
		char *argv[argc + 1];
		va_list args;

		va_copy(args, ap); /* a va_list parameter is not addressable as one */
		fill_args(argv, arg, argc, &args);
		va_end(args);
		return kind == EXEC_LP ? execvp(path, argv) : execve(path, argv, envp);
	}
}

int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	int ret;

	va_start(ap, arg);
	ret = exec_list(EXEC_L, path, arg, ap);
	va_end(ap);
	return ret;
}

int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	int ret;

	va_start(ap, arg);
	ret = exec_list(EXEC_LP, file, arg, ap);
	va_end(ap);
	return ret;
}

int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	int ret;

	va_start(ap, arg);
	ret = exec_list(EXEC_LE, path, arg, ap);
	va_end(ap);
	return ret;
}

/* ---- posix_spawn ---- */

/* Which dup2 actions each file-actions object holds, by its address:
 * glibc's list is private.  Forgotten at init and destroy. */
struct spawn_dup {
	int fd, newfd;
};

struct spawn_actions {
	const posix_spawn_file_actions_t *fa;
	struct spawn_dup *dups;
	size_t n, cap;
};

FORKLOCK_MUTEX(spawn_lock);
static struct spawn_actions *spawn_list;
static size_t spawn_n, spawn_cap;

/* (Caller holds spawn_lock.) */
static struct spawn_actions *actions_of(const posix_spawn_file_actions_t *fa)
{
	size_t i;

	for (i = 0; i < spawn_n; i++)
		if (spawn_list[i].fa == fa)
			return &spawn_list[i];
	return NULL;
}

static void forget_actions(const posix_spawn_file_actions_t *fa)
{
	struct spawn_actions *entry;

	pthread_mutex_lock(&spawn_lock);
	entry = actions_of(fa);
	if (entry) {
		free(entry->dups);
		*entry = spawn_list[--spawn_n];
	}
	pthread_mutex_unlock(&spawn_lock);
}

/* Room for one more dup2 action of FA (claimed by the caller, under the
 * lock): the entry, or NULL (no memory). */
static struct spawn_actions *reserve_dup(const posix_spawn_file_actions_t *fa)
{
	struct spawn_actions *entry = actions_of(fa);

	if (!entry) {
		if (spawn_n == spawn_cap) {
			size_t cap = spawn_cap ? spawn_cap * 2 : 8;
			struct spawn_actions *list = realloc(spawn_list, cap * sizeof *list);

			if (!list)
				return NULL;
			spawn_list = list;
			spawn_cap = cap;
		}
		entry = &spawn_list[spawn_n++];
		memset(entry, 0, sizeof *entry);
		entry->fa = fa;
	}
	if (entry->n == entry->cap) {
		size_t cap = entry->cap ? entry->cap * 2 : 4;
		struct spawn_dup *dups = realloc(entry->dups, cap * sizeof *dups);

		if (!dups)
			return NULL;
		entry->dups = dups;
		entry->cap = cap;
	}
	return entry;
}

int posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa)
{
	real_need();
	if (shim_enter())
		forget_actions(fa);
	return real.posix_spawn_file_actions_init(fa);
}

int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa)
{
	real_need();
	if (shim_enter())
		forget_actions(fa);
	return real.posix_spawn_file_actions_destroy(fa);
}

int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd, int newfd)
{
	struct spawn_actions *entry;
	int ret;

	real_need();
	if (!shim_enter())
		return real.posix_spawn_file_actions_adddup2(fa, fd, newfd);
	/* Remembered before it is added: an action we could not check at
	 * spawn time must never exist. */
	pthread_mutex_lock(&spawn_lock);
	entry = reserve_dup(fa);
	if (!entry) {
		pthread_mutex_unlock(&spawn_lock);
		return ENOMEM;
	}
	ret = real.posix_spawn_file_actions_adddup2(fa, fd, newfd);
	if (ret == 0) {
		entry->dups[entry->n].fd = fd;
		entry->dups[entry->n].newfd = newfd;
		entry->n++;
	}
	pthread_mutex_unlock(&spawn_lock);
	return ret;
}

/* Before posix_spawn[p] of PROGRAM with FA: 0, or EBADF (logged) if a dup2
 * action would hand an upgraded descriptor to the new program, which would
 * read and write it in clear -- unless it is a server connection whose
 * handshake has not begun: that one is passed (PASS), as by exec. */
static int check_spawn(const char *fn, const char *program, const posix_spawn_file_actions_t *fa,
		       struct exec_pass *pass)
{
	struct spawn_dup dups[REPORT_MAX];
	struct spawn_actions *entry;
	size_t i, n = 0;
	int ret = 0;

	if (!fa)
		return 0;
	pthread_mutex_lock(&spawn_lock);
	entry = actions_of(fa);
	for (i = 0; entry && i < entry->n && n < REPORT_MAX; i++)
		dups[n++] = entry->dups[i];
	pthread_mutex_unlock(&spawn_lock);
	for (i = 0; i < n && !ret; i++) {
		struct conn *conn = fdtab_get(dups[i].fd);

		if (!conn)
			continue;
		if (pass_decide(pass, conn)) {
			log_debug("rule [%s] %s -> %s: %s of %s: descriptor %d goes to the new program as %d "
				  "before its TLS handshake began: the new program takes the connection over",
				  conn->rule->name, conn->app_dest, conn->dest, fn, program ? program : "?",
				  dups[i].fd, dups[i].newfd);
		} else if (pass_why_not(pass, conn)) {
			log_error("rule [%s] %s -> %s: %s of %s: refused (EBADF): descriptor %d would go to the new "
				  "program as %d before its TLS handshake began, but it is not passed to %s: it would "
				  "not run under tlsshim (%s), and would read the client's TLS handshake as "
				  "plaintext and answer in clear", conn->rule->name, conn->app_dest, conn->dest, fn,
				  program ? program : "?", dups[i].fd, dups[i].newfd, program ? program : "?",
				  pass_why_not(pass, conn));
			ret = EBADF;
		} else {
			log_error("rule [%s] %s: %s of %s: refused (EBADF): descriptor %d is an upgraded "
				  "connection and a file action would duplicate it onto %d in the new program, "
				  "which would read and write it in clear: a TLS session cannot cross exec",
				  conn->rule->name, conn->app_dest, fn, program ? program : "?", dups[i].fd,
				  dups[i].newfd);
			ret = EBADF;
		}
		conn_unref(conn);
	}
	return ret;
}

/* posix_spawn[p] returned RET (PID: the child's pid, if asked): a child
 * that started has the passed connections, and this process gives them
 * away (its later I/O there: EIO; its close sends nothing).  This process
 * goes on: close-on-exec again for its later children. */
static void spawn_finish(int ret, const pid_t *pid, struct exec_pass *pass)
{
	if (ret == 0 && pass->n_conns)
		pass_hand_over(pass, pid ? *pid : 0);
	exec_finish(pass, true);
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
		const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct exec_pass pass;
	int ret;

	real_need();
	pass_init(&pass, AT_FDCWD, path, 0, envp);
	if (shim_enter() && fdtab_any()) {
		prepare_path(&pass, path, envp);
		if ((ret = check_spawn("posix_spawn", path, fa, &pass)) != 0) {
			exec_finish(&pass, true);
			return ret;
		}
	}
	ret = real.posix_spawn(pid, path, fa, attr, argv, envp);
	spawn_finish(ret, pid, &pass);
	return ret;
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
		 const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct exec_pass pass;
	int ret;

	real_need();
	pass_init(&pass, AT_FDCWD, NULL, 0, envp);
	if (shim_enter() && fdtab_any()) {
		prepare_search(&pass, file, envp);
		if ((ret = check_spawn("posix_spawnp", file, fa, &pass)) != 0) {
			exec_finish(&pass, true);
			return ret;
		}
	}
	ret = real.posix_spawnp(pid, file, fa, attr, argv, envp);
	spawn_finish(ret, pid, &pass);
	return ret;
}
