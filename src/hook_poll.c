/* hook_poll.c - poll, ppoll, select, pselect.
 *
 * For managed descriptors the program's interest is translated: during the
 * handshake we wait for what GnuTLS needs, afterwards plaintext that GnuTLS
 * or our buffer holds counts as readable, and kernel readability that turned
 * out to carry no application data (a ticket) is dropped and the wait goes
 * on for the time left. */
#include "shim.h"
#include "clock.h"
#include "conn.h"
#include "fdtab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STACK_FDS 64

/* The core: TIMEOUT_NS < 0 waits forever.  Returns as poll does, errno set. */
static int shim_poll(struct pollfd *fds, nfds_t nfds, long long timeout_ns, const sigset_t *sigmask)
{
	struct conn *stack_conns[STACK_FDS], **conns = stack_conns;
	struct pollfd stack_kfds[STACK_FDS], *kfds = stack_kfds;
	short stack_ready[STACK_FDS], *ready = stack_ready;
	long long deadline = timeout_ns >= 0 ? now_ns() + timeout_ns : -1;
	nfds_t i, n_managed = 0;
	int ret = 0;

	if (nfds > STACK_FDS) {
		conns = calloc(nfds, sizeof *conns);
		kfds = calloc(nfds, sizeof *kfds);
		ready = calloc(nfds, sizeof *ready);
		if (!conns || !kfds || !ready) {
			ret = (int)shim_result(-ENOMEM);
			goto out;
		}
	}
	for (i = 0; i < nfds; i++) {
		conns[i] = fds[i].fd >= 0 ? fdtab_get(fds[i].fd) : NULL;
		n_managed += conns[i] != NULL;
	}
	if (n_managed == 0) {
		struct timespec ts = { timeout_ns / 1000000000LL, timeout_ns % 1000000000LL };

		ret = real.ppoll(fds, nfds, timeout_ns >= 0 ? &ts : NULL, sigmask);
		goto out;
	}
	for (;;) {
		int n_ready = 0, count = 0;
		long long left = -1, wake = 0;
		struct timespec ts;

		for (i = 0; i < nfds; i++) {
			kfds[i] = fds[i];
			kfds[i].revents = 0;
			ready[i] = 0;
			if (conns[i] && conn_use_begin(conns[i], fds[i].fd)) {
				long long hs = conn_deadline(conns[i]);

				kfds[i].events = conn_poll_prepare(conns[i], fds[i].events, &ready[i]);
				conn_use_end(conns[i]);
				n_ready += ready[i] != 0;
				if (hs && (!wake || hs < wake))
					wake = hs;
			}
		}
		if (n_ready)
			left = 0;
		else if (deadline >= 0)
			left = deadline > now_ns() ? deadline - now_ns() : 0;
		/* A handshake deadline wakes us even if the program waits forever. */
		if (wake && !n_ready) {
			long long until = wake > now_ns() ? wake - now_ns() + 1000000 : 0;

			if (left < 0 || until < left)
				left = until;
		}
		ts.tv_sec = left / 1000000000LL;
		ts.tv_nsec = left % 1000000000LL;
		ret = real.ppoll(kfds, nfds, left >= 0 ? &ts : NULL, sigmask);
		if (ret < 0)
			goto out;
		for (i = 0; i < nfds; i++) {
			if (conns[i] && conn_use_begin(conns[i], fds[i].fd)) {
				short rev = ready[i] | conn_poll_result(conns[i], fds[i].events, kfds[i].revents);

				conn_use_end(conns[i]);
				fds[i].revents = rev & (fds[i].events | POLLERR | POLLHUP | POLLNVAL);
			} else {
				fds[i].revents = kfds[i].revents;
			}
			count += fds[i].revents != 0;
		}
		if (count > 0 || (deadline >= 0 && now_ns() >= deadline)) {
			ret = count;
			goto out;
		}
	}
out:
	for (i = 0; i < nfds && conns; i++)
		if (conns[i])
			conn_unref(conns[i]);
	if (conns != stack_conns) {
		free(conns);
		free(kfds);
		free(ready);
	}
	return ret;
}

static bool any_managed_pollfd(const struct pollfd *fds, nfds_t nfds)
{
	nfds_t i;

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

static int select_via_poll(int nfds, fd_set *r, fd_set *w, fd_set *e, long long timeout_ns,
			   const sigset_t *sigmask)
{
	struct pollfd pfds[FD_SETSIZE];
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
