/* hook_poll.c - poll, ppoll, select, pselect.
 *
 * For managed descriptors the program's interest is translated: during the
 * handshake we wait for what GnuTLS needs, afterwards plaintext that GnuTLS
 * or our buffer holds counts as readable, and kernel readability that turned
 * out to carry no application data (a ticket) is dropped and the wait goes
 * on for the time left. */
#include "shim.h"
#include "adopt.h"
#include "clock.h"
#include "conn.h"
#include "fdtab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STACK_FDS 64

/* One poll call's working set: per entry of the program's array, its
 * connection (a reference, or NULL), what we ask the kernel for, and what is
 * ready without the kernel (plaintext already decrypted). */
struct poll_set {
	struct pollfd *fds; /* the program's array */
	nfds_t nfds;
	struct conn **conns;
	struct pollfd *kfds;
	short *ready;
	struct conn *stack_conns[STACK_FDS];
	struct pollfd stack_kfds[STACK_FDS];
	short stack_ready[STACK_FDS];
};

/* Fill SET for FDS: the arrays (on the stack up to STACK_FDS entries) and a
 * reference to each managed entry's connection.  Returns how many entries
 * are managed, or -ENOMEM.  No lock held. */
static long poll_set_init(struct poll_set *set, struct pollfd *fds, nfds_t nfds)
{
	nfds_t i;
	long n_managed = 0;

	set->fds = fds;
	set->nfds = nfds;
	set->conns = set->stack_conns;
	set->kfds = set->stack_kfds;
	set->ready = set->stack_ready;
	if (nfds > STACK_FDS) {
		set->conns = calloc(nfds, sizeof *set->conns);
		set->kfds = calloc(nfds, sizeof *set->kfds);
		set->ready = calloc(nfds, sizeof *set->ready);
		if (!set->conns || !set->kfds || !set->ready)
			return -ENOMEM;
	}
	for (i = 0; i < nfds; i++) {
		set->conns[i] = fds[i].fd >= 0 ? fdtab_get(fds[i].fd) : NULL;
		n_managed += set->conns[i] != NULL;
	}
	return n_managed;
}

/* Drop SET's references and free what poll_set_init allocated. */
static void poll_set_free(struct poll_set *set)
{
	nfds_t i;

	for (i = 0; i < set->nfds && set->conns; i++)
		if (set->conns[i])
			conn_unref(set->conns[i]);
	if (set->conns != set->stack_conns) {
		free(set->conns);
		free(set->kfds);
		free(set->ready);
	}
}

/* Arm: what to ask the kernel for each entry (a handshake's direction, or
 * the program's interest), and what is ready already.  *WAKE: the earliest
 * handshake deadline (0: none).  Returns how many entries are ready now. */
static int poll_arm(struct poll_set *set, long long *wake)
{
	nfds_t i;
	int n_ready = 0;

	*wake = 0;
	for (i = 0; i < set->nfds; i++) {
		struct conn *conn = set->conns[i];

		set->kfds[i] = set->fds[i];
		set->kfds[i].revents = 0;
		set->ready[i] = 0;
		if (conn && conn_use_begin(conn, set->fds[i].fd)) {
			long long hs = conn_deadline(conn);

			set->kfds[i].events = conn_poll_prepare(conn, set->fds[i].events, &set->ready[i]);
			conn_use_end(conn);
			n_ready += set->ready[i] != 0;
			if (hs && (!*wake || hs < *wake))
				*wake = hs;
		}
	}
	return n_ready;
}

/* How long the kernel may wait (ns, -1: for ever): not at all when
 * N_READY entries are ready, else until the program's DEADLINE (-1: none)
 * or a handshake deadline WAKE (0: none), whichever comes first. */
static long long poll_wait_ns(int n_ready, long long deadline, long long wake)
{
	long long left = -1;

	if (n_ready)
		return 0;
	if (deadline >= 0)
		left = deadline > now_ns() ? deadline - now_ns() : 0;
	/* A handshake deadline wakes us even if the program waits forever. */
	if (wake) {
		long long until = wake > now_ns() ? wake - now_ns() + 1000000 : 0;

		if (left < 0 || until < left)
			left = until;
	}
	return left;
}

/* Translate: the program's revents from the kernel's and what was ready
 * before; kernel readability that carried no application data is dropped
 * (conn_poll_result).  Returns how many entries have events. */
static int poll_translate(struct poll_set *set)
{
	struct pollfd *fds = set->fds;
	nfds_t i;
	int count = 0;

	for (i = 0; i < set->nfds; i++) {
		struct conn *conn = set->conns[i];

		if (conn && conn_use_begin(conn, fds[i].fd)) {
			short rev = set->ready[i] | conn_poll_result(conn, fds[i].events, set->kfds[i].revents);

			conn_use_end(conn);
			fds[i].revents = rev & (fds[i].events | POLLERR | POLLHUP | POLLNVAL);
		} else {
			fds[i].revents = set->kfds[i].revents;
		}
		count += fds[i].revents != 0;
	}
	return count;
}

/* The core: TIMEOUT_NS < 0 waits forever.  Returns as poll does, errno set.
 * Arm, wait, translate, until something is ready for the program or its
 * time is up (a ticket alone wakes the kernel but not the program). */
static int shim_poll(struct pollfd *fds, nfds_t nfds, long long timeout_ns, const sigset_t *sigmask)
{
	struct poll_set set;
	long long deadline = timeout_ns >= 0 ? now_ns() + timeout_ns : -1, left, wake;
	long n_managed = poll_set_init(&set, fds, nfds);
	struct timespec ts;
	int ret, count, n_ready;

	if (n_managed <= 0) {
		ts = (struct timespec){ timeout_ns / 1000000000LL, timeout_ns % 1000000000LL };
		ret = n_managed < 0 ? (int)shim_result(n_managed)
				    : real.ppoll(fds, nfds, timeout_ns >= 0 ? &ts : NULL, sigmask);
		poll_set_free(&set);
		return ret;
	}
	for (;;) {
		n_ready = poll_arm(&set, &wake);
		left = poll_wait_ns(n_ready, deadline, wake);
		ts = (struct timespec){ left / 1000000000LL, left % 1000000000LL };
		ret = real.ppoll(set.kfds, nfds, left >= 0 ? &ts : NULL, sigmask);
		if (ret < 0)
			break;
		count = poll_translate(&set);
		if (count > 0 || (deadline >= 0 && now_ns() >= deadline)) {
			ret = count;
			break;
		}
	}
	poll_set_free(&set);
	return ret;
}

static bool any_managed_pollfd(const struct pollfd *fds, nfds_t nfds)
{
	nfds_t i;

	if (atomic_load_explicit(&adopt_armed, memory_order_relaxed))
		for (i = 0; i < nfds; i++)
			adopt_maybe(fds[i].fd);
	if (!fdtab_any())
		return false;
	for (i = 0; i < nfds; i++) {
		struct conn *conn = fds[i].fd >= 0 ? fdtab_get(fds[i].fd) : NULL;

		if (conn) {
			conn_unref(conn);
			return true;
		}
	}
	return false;
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	if (!shim_enter() || !any_managed_pollfd(fds, nfds))
		return real.poll(fds, nfds, timeout);
	return shim_poll(fds, nfds, timeout < 0 ? -1 : timeout * 1000000LL, NULL);
}

int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen)
{
	return poll(fds, nfds, timeout);
}

int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *sigmask)
{
	if (!shim_enter() || !any_managed_pollfd(fds, nfds))
		return real.ppoll(fds, nfds, tmo, sigmask);
	return shim_poll(fds, nfds, tmo ? tmo->tv_sec * 1000000000LL + tmo->tv_nsec : -1, sigmask);
}

int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *sigmask,
		size_t fdslen)
{
	return ppoll(fds, nfds, tmo, sigmask);
}

/* ---- select: through the same core ---- */

static bool any_managed_set(int nfds, fd_set *r, fd_set *w, fd_set *e)
{
	int fd;

	if (atomic_load_explicit(&adopt_armed, memory_order_relaxed))
		for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
			if ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e)))
				adopt_maybe(fd);
	if (!fdtab_any())
		return false;
	for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
		if ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e))) {
			struct conn *conn = fdtab_get(fd);

			if (conn) {
				conn_unref(conn);
				return true;
			}
		}
	}
	return false;
}

/* select(2) as a poll over PFDS (room for every descriptor the sets name):
 * the sets are rewritten with what is ready; returns the count, or -1 with
 * errno set. */
static int select_in(struct pollfd *pfds, int nfds, fd_set *r, fd_set *w, fd_set *e, long long timeout_ns,
		     const sigset_t *sigmask)
{
	nfds_t n = 0, i;
	int fd, ret, count = 0;

	for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
		short events = 0;

		if (r && FD_ISSET(fd, r))
			events |= POLLIN;
		if (w && FD_ISSET(fd, w))
			events |= POLLOUT;
		if (e && FD_ISSET(fd, e))
			events |= POLLPRI;
		if (events) {
			pfds[n].fd = fd;
			pfds[n].events = events;
			pfds[n].revents = 0;
			n++;
		}
	}
	ret = shim_poll(pfds, n, timeout_ns, sigmask);
	if (ret < 0)
		return ret;
	if (r)
		FD_ZERO(r);
	if (w)
		FD_ZERO(w);
	if (e)
		FD_ZERO(e);
	for (i = 0; i < n; i++) {
		short rev = pfds[i].revents;

		if (rev & POLLNVAL) {
			errno = EBADF;
			return -1;
		}
		if (r && (pfds[i].events & POLLIN) && (rev & (POLLIN | POLLHUP | POLLERR))) {
			FD_SET(pfds[i].fd, r);
			count++;
		}
		if (w && (pfds[i].events & POLLOUT) && (rev & (POLLOUT | POLLERR))) {
			FD_SET(pfds[i].fd, w);
			count++;
		}
		if (e && (pfds[i].events & POLLPRI) && (rev & POLLPRI)) {
			FD_SET(pfds[i].fd, e);
			count++;
		}
	}
	return count;
}

#define SELECT_STACK_FDS 64

/* How many descriptors below NFDS the sets name. */
static int select_count(int nfds, const fd_set *r, const fd_set *w, const fd_set *e)
{
	int fd, n = 0;

	for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e)))
			n++;
	return n;
}

/* select through shim_poll (select_in), with the poll array on the stack
 * for a few descriptors and on the heap beyond: the program's thread stacks
 * may be small (FD_SETSIZE entries would be 8 KB). */
static int select_via_poll(int nfds, fd_set *r, fd_set *w, fd_set *e, long long timeout_ns,
			   const sigset_t *sigmask)
{
	struct pollfd stack[SELECT_STACK_FDS], *pfds = stack;
	int want = select_count(nfds, r, w, e), ret;

	if (want > SELECT_STACK_FDS && !(pfds = malloc(want * sizeof *pfds))) {
		errno = ENOMEM;
		return -1;
	}
	ret = select_in(pfds, nfds, r, w, e, timeout_ns, sigmask);
	if (pfds != stack)
		free(pfds);
	return ret;
}

int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	long long start, timeout_ns;
	int ret;

	if (!shim_enter() || !any_managed_set(nfds, r, w, e))
		return real.select(nfds, r, w, e, tv);
	timeout_ns = tv ? tv->tv_sec * 1000000000LL + tv->tv_usec * 1000LL : -1;
	start = now_ns();
	ret = select_via_poll(nfds, r, w, e, timeout_ns, NULL);
	if (tv) {
		/* Linux reports the time left. */
		long long left = timeout_ns - (now_ns() - start);

		if (left < 0)
			left = 0;
		tv->tv_sec = left / 1000000000LL;
		tv->tv_usec = (left % 1000000000LL) / 1000;
	}
	return ret;
}

int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts, const sigset_t *sigmask)
{
	if (!shim_enter() || !any_managed_set(nfds, r, w, e))
		return real.pselect(nfds, r, w, e, ts, sigmask);
	return select_via_poll(nfds, r, w, e, ts ? ts->tv_sec * 1000000000LL + ts->tv_nsec : -1, sigmask);
}
