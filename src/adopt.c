/* adopt.c - inherited sockets become server connections on first use
 * (adopt.h).  The verdict is decide_accept(), as for accept(); what differs
 * is how the descriptor is found (a checked bit per number) and that a
 * refused one cannot be taken back from the program: it is reset in place
 * (the client sees a reset, the program ECONNRESET on its next read). */
#include "adopt.h"
#include "shim.h"
#include "conn.h"
#include "decide.h"
#include "epoll_reg.h"
#include "fdtab.h"
#include "forklock.h"
#include "hook_stdio.h"
#include "log.h"
#include "ownfd.h"
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

atomic_bool adopt_armed;
/* Static and zero: pages nobody touches cost nothing. */
_Atomic unsigned long adopt_checked[ADOPT_FDS / ADOPT_WORD_BITS];
static atomic_int checked_high; /* no bit is set at or above this number */
/* Serialises the look at one number, so that no thread uses it in clear
 * while another is making it ours (the bit is set only afterwards). */
FORKLOCK_MUTEX(adopt_lock);

void adopt_mark(int fd)
{
	int high;

	if (fd < 0 || fd >= ADOPT_FDS)
		return;
	atomic_fetch_or_explicit(&adopt_checked[fd / ADOPT_WORD_BITS], 1UL << (fd % ADOPT_WORD_BITS), memory_order_release);
	high = atomic_load_explicit(&checked_high, memory_order_relaxed);
	while (high <= fd && !atomic_compare_exchange_weak(&checked_high, &high, fd + 1))
		;
}

void adopt_unmark(int fd)
{
	if (fd < 0 || fd >= ADOPT_FDS)
		return;
	atomic_fetch_and_explicit(&adopt_checked[fd / ADOPT_WORD_BITS], ~(1UL << (fd % ADOPT_WORD_BITS)), memory_order_relaxed);
}

void adopt_unmark_range(unsigned first, unsigned last)
{
	unsigned fd, high;

	if (!atomic_load_explicit(&adopt_armed, memory_order_relaxed))
		return;
	high = (unsigned)atomic_load_explicit(&checked_high, memory_order_relaxed);
	for (fd = first; fd <= last && fd < high; fd++)
		adopt_unmark((int)fd);
}

/* ---- the look at one descriptor ---- */

/* Reset FD's connection where it is (the program keeps the number): the
 * client gets a reset, the program ECONNRESET on its next read (EPIPE on a
 * write).  Linux: connect(AF_UNSPEC) disconnects a TCP socket with a RST. */
static void reset_in_place(int fd)
{
	struct sockaddr sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_family = AF_UNSPEC;
	real.connect(fd, &sa, sizeof sa);
}

struct same_socket {
	unsigned long long dev, ino;
	struct conn *conn;
};

/* fdtab_foreach: the connection already made for this socket under
 * another number (tcpserver puts it on 0 and 1).  Reads the conn only. */
static void find_same(int fd, struct conn *conn, void *arg)
{
	struct same_socket *same = arg;

	(void)fd;
	if (!same->conn && conn->sock_ino == same->ino && conn->sock_dev == same->dev) {
		conn_ref(conn);
		same->conn = conn;
	}
}

/* FD names a socket that is ours already under another number: map it
 * too.  True if so. */
static bool share_same(int fd, bool app_cloexec)
{
	struct same_socket same = { 0, 0, NULL };
	struct stat st;

	if (!fdtab_any() || fstat(fd, &st) != 0)
		return false;
	same.dev = st.st_dev;
	same.ino = st.st_ino;
	fdtab_foreach(find_same, &same);
	if (!same.conn)
		return false;
	if (fdtab_put(fd, same.conn, app_cloexec) == 0)
		real.fcntl(fd, F_SETFD, FD_CLOEXEC);
	conn_unref(same.conn);
	return true;
}

/* The log goes to a copy of stderr made at start-up.  When that is the
 * socket FD about to be adopted (inetd puts the connection on 0, 1 and 2),
 * log lines would go into the TLS stream in clear: syslog instead. */
static void log_off_the_wire(int fd)
{
	enum policy_log_level level = POLICY_LEVEL_ERROR;
	int logfd = ownfd_get(OWNFD_LOG);
	struct stat st, sock;

	if (logfd < 0 || fstat(logfd, &st) != 0 || fstat(fd, &sock) != 0 || st.st_ino != sock.st_ino ||
	    st.st_dev != sock.st_dev)
		return;
	while (level < POLICY_LEVEL_DEBUG && log_enabled(level + 1))
		level++;
	log_setup(POLICY_LOG_SYSLOG, NULL, level);
	log_warning("stderr is the inherited connection (descriptor %d): logging to syslog instead", fd);
}

/* Act on D for the inherited FD (the program's close-on-exec APP_CLOEXEC). */
static void adopt_act(int fd, bool app_cloexec, const struct decision *d)
{
	switch (d->verdict) {
	case DECIDE_PLAIN:
		if (d->rule)
			log_debug("rule [%s] %s -> %s: inherited descriptor %d: %s, passed through", d->rule->name,
				  d->app_dest, d->dest, fd, d->reason);
		return;
	case DECIDE_DENY:
		log_warning("rule [%s] %s -> %s: inherited descriptor %d: connection %s (reset)", d->rule->name,
			    d->app_dest, d->dest, fd, d->reason);
		reset_in_place(fd);
		return;
	case DECIDE_REFUSE:
		log_error("%s -> %s: inherited descriptor %d: refused (reset): %s %s", d->app_dest, d->dest, fd,
			  d->reason, shim_policy_path());
		reset_in_place(fd);
		return;
	case DECIDE_UPGRADE:
		if (shim_server_conn(fd, app_cloexec, d, "inherited") < 0) {
			reset_in_place(fd);
			return;
		}
		log_debug("rule [%s] %s -> %s: inherited descriptor %d adopted", d->rule->name, d->app_dest,
			  d->dest, fd);
		return;
	}
}

/* Is FD a connected stream socket (not listening: accept on it decides)?
 * Any SOCK_STREAM, as connect() upgrades (MPTCP's protocol is not
 * IPPROTO_TCP).  *HAVE_PEER says whether *PEER was filled: a client that
 * sent bytes and then a reset has no peer address any more, but its bytes
 * still wait in the socket -- that one is taken too (and refused by the
 * server connection), never left for the program to read in clear. */
static bool connected_stream(int fd, struct decide_addr *peer, bool *have_peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int val = 0, queued = 0;
	socklen_t vlen = sizeof val;

	if (real.getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &vlen) != 0 || val)
		return false;
	vlen = sizeof val;
	if (real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &val, &vlen) != 0 || val != SOCK_STREAM)
		return false;
	*have_peer = getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
		     decide_read_sockaddr((struct sockaddr *)&ss, len, peer);
	if (*have_peer)
		return true;
	return real.ioctl(fd, FIONREAD, &queued) == 0 && queued > 0;
}

/* The look (adopt_lock held, shim_guard raised): one getsockname for
 * anything that is not a TCP/IP socket; the policy is read at the first
 * that is, and a policy without inbound rules disarms adoption. */
static void examine(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	struct decide_addr local, peer;
	const struct policy *policy;
	struct decision d;
	bool have_peer = false;
	int fdflags;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    !decide_read_sockaddr((struct sockaddr *)&ss, len, &local))
		return;
	real_need();
	if (!shim_may_upgrade() || ((policy = shim_policy()) && !policy->has_inbound)) {
		atomic_store(&adopt_armed, false);
		return;
	}
	if (policy && !policy_match_listen(policy, local.family, local.addr, local.port))
		return; /* no inbound rule covers it: no more system calls */
	if (fdtab_any()) {
		struct conn *conn = fdtab_get(fd);

		if (conn) { /* ours already (connect, or a dup we saw) */
			conn_unref(conn);
			return;
		}
	}
	if (!connected_stream(fd, &peer, &have_peer))
		return;
	log_off_the_wire(fd);
	fdflags = real.fcntl(fd, F_GETFD);
	if (!share_same(fd, fdflags >= 0 && (fdflags & FD_CLOEXEC))) {
		decide_accept(policy, &local, have_peer ? &peer : NULL, &d);
		adopt_act(fd, fdflags >= 0 && (fdflags & FD_CLOEXEC), &d);
	}
	if (fdtab_any()) {
		struct conn *conn = fdtab_get(fd);

		if (conn) {
			conn_unref(conn);
			stdio_after_upgrade(fd);
			epoll_adopt(fd);
		}
	}
}

void adopt_check(int fd)
{
	int saved;

	/* Our own code (shim_guard: adopt_lock may be held, by this very
	 * look) never adopts. */
	if (shim_guard || adopt_is_checked(fd))
		return;
	saved = errno; /* the look's system calls are not the program's */

	pthread_mutex_lock(&adopt_lock);
	if (!adopt_is_checked(fd)) {
		shim_guard++;
		examine(fd);
		shim_guard--;
		adopt_mark(fd);
	}
	pthread_mutex_unlock(&adopt_lock);
	errno = saved;
}

/* ---- start-up ---- */

/* Does the launcher's hint (adopt.h) describe the policy file ST?  Then
 * *INBOUND says whether it has inbound rules.  (No stdio: start-up.) */
static bool hint_matches(const struct stat *st, bool *inbound)
{
	const char *hint = secure_getenv(ADOPT_HINT_ENV);
	unsigned long long want[5], got[5];
	char *end;
	int i;

	if (!hint || (hint[0] != '0' && hint[0] != '1'))
		return false;
	*inbound = hint[0] == '1';
	want[0] = (unsigned long long)st->st_dev;
	want[1] = (unsigned long long)st->st_ino;
	want[2] = (unsigned long long)st->st_size;
	want[3] = (unsigned long long)st->st_mtim.tv_sec;
	want[4] = (unsigned long long)st->st_mtim.tv_nsec;
	for (hint++, i = 0; i < 5; i++) {
		if (*hint != ':' || hint[1] < '0' || hint[1] > '9')
			return false;
		got[i] = strtoull(hint + 1, &end, 10);
		hint = end;
	}
	return *hint == '\0' && memcmp(want, got, sizeof want) == 0;
}

void adopt_setup(const struct stat *policy_st, bool named, bool broken)
{
	bool inbound = true;
	int fd;

	if (!named)
		return; /* no policy: no rules */
	if (!broken && policy_st && hint_matches(policy_st, &inbound) && !inbound)
		return;
	atomic_store(&adopt_armed, true);
	/* stdio reads and writes 0-2 through libc's internal calls, which no
	 * hook sees: they are looked at now (one getsockname each). */
	for (fd = 0; fd <= 2 && atomic_load(&adopt_armed); fd++)
		adopt_check(fd);
}
