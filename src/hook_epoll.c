/* hook_epoll.c - epoll for managed descriptors.
 *
 * A managed descriptor is registered with the kernel under a cookie of ours
 * (epreg_cookie) with the events the connection needs (what the handshake
 * waits for, or the program's interest once open).  epoll_wait translates
 * cookie events back into the program's events and data, injects readiness
 * for plaintext that is already decrypted, drops kernel readiness that
 * carried no application data, and emulates EPOLLONESHOT.  Descriptors added
 * before connect() upgraded them are adopted from /proc/self/fdinfo of the
 * epoll instances the program uses.  A wait that entered the kernel while its
 * set had no managed descriptor may still return a cookie (another thread
 * added one meanwhile): every wait's result is looked at once registrations
 * exist (fixup_plain_wait).  The registry itself, and the rules for what the
 * program sees, are in epoll_reg.c. */
#include "shim.h"
#include "adopt.h"
#include "clock.h"
#include "conn.h"
#include "epoll_reg.h"
#include "fdtab.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STACK_EVENTS 64

/* A registration looked at outside the lock: connections do their work
 * (handshake steps, decryption) with ep_lock released, so that threads
 * waiting on different epoll instances never wait for each other's crypto. */
struct ep_item {
	struct ep_reg *reg;
	unsigned seq;
	struct conn *conn; /* a reference, and a use (conn_use_hold) */
	uint32_t app_events;
	bool disarmed;
	uint32_t kernel;
	short ready;
};

/* A snapshot of an instance's registrations: on the stack, grown on the heap. */
struct ep_items {
	struct ep_item *v;
	int n, cap;
	struct ep_item stack[STACK_EVENTS];
};

/* One managed wait: the program's arguments and the wait's working state. */
struct ep_wait {
	int epfd, maxevents;
	struct epoll_event *events; /* the program's array */
	const sigset_t *sigmask;
	long long deadline;         /* the program's, in ns; -1: none */
	long long wake;             /* the earliest handshake deadline; 0: none */
	int n_out;                  /* events in EVENTS so far */
	struct epoll_event *kev;    /* what the kernel returns */
	struct epoll_event stack_kev[STACK_EVENTS];
	struct ep_items items;
};

/* ---- registrations ---- */

/* Give REG's registration in the kernel EVENTS (OP: EPOLL_CTL_ADD or MOD;
 * a MOD that changes nothing is skipped).  0, or -1 with errno.  Under
 * ep_lock. */
static int kernel_update(struct ep_reg *reg, uint32_t events, int op)
{
	struct epoll_event kev;

	kev.events = events;
	kev.data.u64 = epreg_cookie(reg);
	if (op == EPOLL_CTL_MOD && events == reg->kernel_events)
		return 0;
	reg->kernel_events = events;
	return real.epoll_ctl(reg->epfd, op, reg->fd, &kev);
}

/* ---- epoll_ctl ---- */

/* EPOLL_CTL_ADD or MOD of FD (managed: CONN) in EPFD with EV, whose kernel
 * interest is KERNEL.  0 or a negative errno.  Under ep_lock. */
static int managed_set(int epfd, int op, int fd, const struct epoll_event *ev, struct conn *conn,
		       uint32_t kernel)
{
	struct ep_reg *reg = epreg_find(epfd, fd);
	int ret;

	if (op == EPOLL_CTL_ADD && reg) {
		/* A stale registration from a descriptor closed behind our back. */
		epreg_free(reg);
		reg = NULL;
	}
	if (!reg && !(reg = epreg_alloc()))
		return -ENOMEM;
	reg->seq++;
	reg->epfd = epfd;
	reg->fd = fd;
	reg->conn = conn;
	reg->app_events = ev->events & ~EPOLLEXCLUSIVE;
	reg->app_data = ev->data;
	reg->disarmed = false;
	reg->last_gen = conn_read_generation(conn) - 1;
	reg->failed_reported = false;
	reg->kernel_events = ~0u;
	if (kernel_update(reg, kernel, op) < 0) {
		ret = -errno;
		epreg_free(reg);
		return ret;
	}
	/* Indexed once the kernel took it (EPFD is then a real descriptor). */
	if (epreg_link(reg) < 0) {
		/* Out of memory: leave the kernel as the program had it.  A MOD
		 * (also adoption: the registration the program made before the
		 * upgrade) gets its own events and data back, an ADD is undone. */
		if (op == EPOLL_CTL_MOD)
			real.epoll_ctl(epfd, EPOLL_CTL_MOD, fd, (struct epoll_event *)ev);
		else
			real.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
		epreg_free(reg);
		return -ENOMEM;
	}
	return 0;
}

/* epoll_ctl for FD, managed by CONN.  0 or a negative errno.  Takes
 * ep_lock. */
static int managed_ctl(int epfd, int op, int fd, struct epoll_event *ev, struct conn *conn)
{
	struct ep_reg *reg;
	uint32_t kernel = 0;
	short ready;
	int ret;

	/* What the connection needs, worked out before taking the lock. */
	if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && ev)
		kernel = (uint16_t)conn_poll_prepare(conn, (short)(ev->events & EPREG_APP_BITS), &ready) |
			 (ev->events & EPOLLET);
	epreg_lock();
	switch (op) {
	case EPOLL_CTL_ADD:
	case EPOLL_CTL_MOD:
		ret = ev ? managed_set(epfd, op, fd, ev, conn, kernel) : -EFAULT;
		break;
	case EPOLL_CTL_DEL:
		if ((reg = epreg_find(epfd, fd)))
			epreg_free(reg);
		ret = real.epoll_ctl(epfd, op, fd, ev) < 0 ? -errno : 0;
		break;
	default:
		ret = -EINVAL;
	}
	epreg_unlock();
	return ret;
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct conn *conn;
	struct ep_reg *reg;
	int ret;

	if (!shim_enter())
		return real.epoll_ctl(epfd, op, fd, ev);
	epreg_note_epfd(epfd);
	adopt_maybe(fd);
	/* A registration is where a number's new file first shows (libuv
	 * closes with syscall(SYS_close) and adds every descriptor before
	 * it reads it, whatever made it): an ADD checks that a mapped
	 * number still names its socket (one fstat), and drops a stale
	 * mapping. */
	if (!fdtab_any())
		conn = NULL;
	else if (op == EPOLL_CTL_ADD)
		conn = fdtab_get_checked(fd);
	else
		conn = fdtab_get(fd);
	if (!conn) {
		if (op == EPOLL_CTL_DEL && epreg_any()) {
			epreg_lock();
			if ((reg = epreg_find(epfd, fd)))
				epreg_free(reg);
			epreg_unlock();
		}
		return real.epoll_ctl(epfd, op, fd, ev);
	}
	ret = managed_ctl(epfd, op, fd, ev, conn);
	conn_unref(conn);
	return (int)shim_result(ret);
}

/* Take over the registrations of FD (managed: CONN) that the fdinfo text
 * BUF of instance EPFD lists ("tfd: FD events: X data: Y"). */
static void adopt_from(int epfd, const char *buf, int fd, struct conn *conn)
{
	const char *line;

	for (line = strstr(buf, "tfd:"); line; line = strstr(line + 4, "tfd:")) {
		int tfd;
		unsigned events;
		unsigned long long data;
		struct epoll_event ev;

		if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3 || tfd != fd)
			continue;
		ev.events = events;
		ev.data.u64 = data;
		(void)managed_ctl(epfd, EPOLL_CTL_MOD, fd, &ev, conn);
	}
}

#define ADOPT_BUF 16384 /* an instance's fdinfo: what one read gets */

void epoll_adopt(int fd)
{
	int epfds[EPREG_MAX_EPFDS];
	int i, n = epreg_list_epfds(epfds, EPREG_MAX_EPFDS);
	struct conn *conn;
	char *buf;

	if (n == 0 || !(conn = fdtab_get(fd)))
		return;
	/* On the heap: this runs in connect(), on the program's stack. */
	if (!(buf = malloc(ADOPT_BUF))) {
		conn_unref(conn);
		return;
	}
	shim_guard++;
	for (i = 0; i < n; i++) {
		char path[64];
		ssize_t len;
		int procfd;

		snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfds[i]);
		procfd = open(path, O_RDONLY | O_CLOEXEC);
		if (procfd < 0)
			continue;
		len = real.read(procfd, buf, ADOPT_BUF - 1);
		real.close(procfd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		adopt_from(epfds[i], buf, fd, conn);
	}
	shim_guard--;
	free(buf);
	conn_unref(conn);
}

void epoll_forget_fd(int fd)
{
	struct ep_reg *reg, *next;

	if (!epreg_any())
		return;
	epreg_lock();
	for (reg = epreg_first_of_fd(fd); reg; reg = next) {
		next = reg->fd_next;
		/* FD is still open: unregister it, for its socket may live on
		 * (a dup, our lingering copy) and would go on reporting events
		 * under our cookie. */
		real.epoll_ctl(reg->epfd, EPOLL_CTL_DEL, fd, NULL);
		epreg_free(reg);
	}
	epreg_unlock();
}

void epoll_forget_epfd(int fd)
{
	/* The common case, any close() of the program: one short scan.  An
	 * instance past EPREG_MAX_EPFDS is not noted, but its registrations
	 * are in the index all the same: they must go with it, or a new
	 * instance given the same number would report them. */
	if (epreg_maybe_epfd(fd))
		epreg_forget_epfd(fd);
}

/* ---- epoll_wait: the snapshot ---- */

/* Does EPFD hold a managed registration?  Takes ep_lock (unless none
 * exists anywhere). */
static bool epfd_has_managed(int epfd)
{
	bool found;

	if (!epreg_any())
		return false;
	epreg_lock();
	found = epreg_first_in_epfd(epfd) != NULL;
	epreg_unlock();
	return found;
}

/* Room for one more item in ITEMS.  False if memory ran out.  Under ep_lock. */
static bool items_room(struct ep_items *items)
{
	struct ep_item *bigger;

	if (items->n < items->cap)
		return true;
	bigger = items->v == items->stack ? NULL : items->v;
	bigger = realloc(bigger, (size_t)items->cap * 2 * sizeof *bigger);
	if (!bigger)
		return false;
	if (items->v == items->stack)
		memcpy(bigger, items->stack, (size_t)items->n * sizeof *bigger);
	items->v = bigger;
	items->cap *= 2;
	return true;
}

/* Snapshot the live registrations of EPFD into ITEMS (ITEMS->n of them),
 * each with a reference to its connection and a use of it (a close() of its
 * descriptor waits until unref_items).  Stale ones (the descriptor now names
 * another connection, or none) are freed.  If memory runs out, the rest
 * waits for the next call.  Takes ep_lock (and fdtab's lock under it). */
static void collect(int epfd, struct ep_items *items)
{
	struct ep_reg *reg, *next;
	struct conn *conn;

	items->n = 0;
	epreg_lock();
	for (reg = epreg_first_in_epfd(epfd); reg; reg = next) {
		next = reg->ep_next;
		conn = fdtab_get(reg->fd);
		if (conn != reg->conn) {
			/* Closed behind our back; the kernel forgot it too. */
			epreg_free(reg);
			if (conn)
				conn_unref(conn);
			continue;
		}
		if (!items_room(items)) {
			conn_unref(conn);
			break;
		}
		conn_use_hold(conn);
		items->v[items->n++] = (struct ep_item){ .reg = reg, .seq = reg->seq, .conn = conn,
							 .app_events = reg->app_events,
							 .disarmed = reg->disarmed };
	}
	epreg_unlock();
}

/* Is the snapshot of ITEM still the registration it was?  Under ep_lock. */
static bool item_current(const struct ep_item *item, int epfd)
{
	return item->reg->live && item->reg->seq == item->seq && item->reg->epfd == epfd;
}

/* End the uses and drop the references collect took. */
static void unref_items(struct ep_items *items)
{
	int i;

	for (i = 0; i < items->n; i++) {
		conn_use_end(items->v[i].conn);
		conn_unref(items->v[i].conn);
	}
	items->n = 0;
}

/* READY (the connection's answer for REG) as the program's events, added to
 * EVENTS[0..N_OUT) (at most MAX); a one-shot that fires is disarmed in the
 * kernel.  Returns the new count.  Under ep_lock. */
static int deliver(struct ep_reg *reg, struct conn *conn, short ready, struct epoll_event *events, int n_out,
		   int max)
{
	uint32_t ev;

	if (n_out >= max || !ready)
		return n_out;
	ev = epreg_deliverable(reg, conn_read_generation(conn), ready);
	if (!ev)
		return n_out;
	if (reg->app_events & EPOLLONESHOT)
		kernel_update(reg, EPOLLONESHOT, EPOLL_CTL_MOD);
	return epreg_merge_event(events, n_out, max, reg->app_data, ev);
}

/* ---- epoll_wait: the phases ---- */

/* Arm, part one, with the lock released: ask each collected connection what
 * the kernel must wait for and what is ready now; note the earliest
 * handshake deadline in W->wake. */
static void arm_prepare(struct ep_wait *w)
{
	int i;

	for (i = 0; i < w->items.n; i++) {
		struct ep_item *it = &w->items.v[i];
		long long dl = conn_deadline(it->conn);
		short r = 0;

		it->ready = 0;
		if (it->disarmed) {
			/* Disarmed one-shot: the kernel may report an error or
			 * a hang-up once more, then nothing (events 0 would
			 * report them on every wait). */
			it->kernel = EPOLLONESHOT;
		} else {
			it->kernel = (uint16_t)conn_poll_prepare(it->conn, (short)(it->app_events & EPREG_APP_BITS), &r) |
				     (it->app_events & EPOLLET);
			it->ready = r;
		}
		if (dl && (!w->wake || dl < w->wake))
			w->wake = dl;
	}
}

/* Arm: bring the kernel's interest for W's managed registrations up to date
 * and put what is ready already (decrypted plaintext, failures) into the
 * program's events (W->n_out).  Takes ep_lock around the kernel updates. */
static void arm(struct ep_wait *w)
{
	int i;

	w->wake = 0;
	collect(w->epfd, &w->items);
	arm_prepare(w);
	epreg_lock();
	for (i = 0; i < w->items.n; i++) {
		struct ep_item *it = &w->items.v[i];

		if (!item_current(it, w->epfd))
			continue;
		kernel_update(it->reg, it->reg->disarmed ? EPOLLONESHOT : it->kernel, EPOLL_CTL_MOD);
		w->n_out = deliver(it->reg, it->conn, it->ready, w->events, w->n_out, w->maxevents);
	}
	epreg_unlock();
	unref_items(&w->items);
}

/* How long the kernel wait of W may last, in ms (-1: forever): nothing if
 * something is ready, else until the program's deadline, but no later than
 * the earliest handshake deadline (which wakes us even if the program waits
 * forever). */
static int wait_ms(const struct ep_wait *w)
{
	int left_ms;

	if (w->n_out > 0)
		return 0;
	if (w->deadline < 0)
		left_ms = -1;
	else
		left_ms = (int)((w->deadline - now_ns() + 999999) / 1000000);
	if (left_ms < -1)
		left_ms = 0;
	if (w->wake) {
		int until = (int)((w->wake - now_ns()) / 1000000) + 1;

		if (until < 0)
			until = 0;
		if (left_ms < 0 || until < left_ms)
			left_ms = until;
	}
	return left_ms;
}

/* Snapshot the registration COOKIE names, for EPFD, into IT (with a
 * reference and a use of its connection).  False if it is gone or stale.
 * Takes ep_lock. */
static bool lookup_cookie(int epfd, uint64_t cookie, struct ep_item *it)
{
	epreg_lock();
	it->conn = NULL;
	it->reg = epreg_of_cookie(cookie);
	if (it->reg && it->reg->epfd == epfd && (it->conn = fdtab_get(it->reg->fd)) && it->conn != it->reg->conn) {
		conn_unref(it->conn);
		it->conn = NULL;
	}
	if (it->conn) {
		it->seq = it->reg->seq;
		it->app_events = it->reg->app_events;
		conn_use_hold(it->conn);
	}
	epreg_unlock();
	return it->conn != NULL;
}

/* Translate: one event KEV the kernel returned for EPFD, appended to (or
 * merged into) EVENTS[0..N_OUT): the program's own as it is, a cookie as the
 * program's events and data for that registration, or nothing (stale, or no
 * application data).  Returns the new count.  KEV is a copy: EVENTS may be
 * the very array the kernel filled, as long as N_OUT never passes the index
 * KEV came from.  The connection is asked with ep_lock released. */
static int translate(int epfd, struct epoll_event kev, struct epoll_event *events, int n_out, int maxevents)
{
	struct ep_item it = { 0 };
	short result;

	if (!epreg_is_cookie(kev.data.u64)) {
		if (n_out < maxevents)
			events[n_out++] = kev;
		return n_out;
	}
	if (!lookup_cookie(epfd, kev.data.u64, &it))
		return n_out; /* freed (closed, EPOLL_CTL_DEL) since the kernel queued it */
	result = conn_poll_result(it.conn, (short)(it.app_events & EPREG_APP_BITS), (short)(kev.events & 0xffff));
	epreg_lock();
	if (item_current(&it, epfd))
		n_out = deliver(it.reg, it.conn, result, events, n_out, maxevents);
	epreg_unlock();
	conn_use_end(it.conn);
	conn_unref(it.conn);
	return n_out;
}

/* Expire: past a handshake deadline of W, fail those handshakes, so that
 * the program hears of it (on this wait or the next). */
static void expire(struct ep_wait *w)
{
	int i;

	if (!w->wake || now_ns() < w->wake)
		return;
	collect(w->epfd, &w->items);
	for (i = 0; i < w->items.n; i++) {
		struct conn *conn = w->items.v[i].conn;

		if (conn_deadline(conn) && now_ns() >= conn_deadline(conn))
			(void)conn_poll_result(conn, (short)(w->items.v[i].app_events & EPREG_APP_BITS), 0);
	}
	unref_items(&w->items);
}

/* One round of W: arm, wait in the kernel, translate, expire.  Returns 1 if
 * the wait is over (W->n_out is the answer), 0 to go round again, -1 if the
 * kernel wait failed with nothing to report (errno set). */
static int wait_round(struct ep_wait *w)
{
	int n_k, i;

	w->n_out = 0;
	arm(w);
	if (w->n_out >= w->maxevents)
		return 1; /* full: what the kernel has waits for the next call */
	n_k = real.epoll_pwait(w->epfd, w->kev, w->maxevents - w->n_out, wait_ms(w), w->sigmask);
	if (n_k < 0)
		return w->n_out > 0 ? 1 : -1;
	for (i = 0; i < n_k; i++)
		w->n_out = translate(w->epfd, w->kev[i], w->events, w->n_out, w->maxevents);
	expire(w);
	return w->n_out > 0 || (w->deadline >= 0 && now_ns() >= w->deadline);
}

/* epoll_wait on EPFD, which holds managed registrations: rounds until an
 * event for the program or the timeout.  The count, or -1 with errno (the
 * hook's return). */
static int shim_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout,
			   const sigset_t *sigmask)
{
	struct ep_wait w;
	int ret;

	w.epfd = epfd;
	w.events = events;
	w.maxevents = maxevents;
	w.sigmask = sigmask;
	w.deadline = timeout >= 0 ? now_ns() + timeout * 1000000LL : -1;
	w.kev = w.stack_kev;
	w.items.v = w.items.stack;
	w.items.n = 0;
	w.items.cap = STACK_EVENTS;
	if (maxevents > STACK_EVENTS && !(w.kev = malloc(maxevents * sizeof *w.kev)))
		return (int)shim_result(-ENOMEM);
	while (!(ret = wait_round(&w)))
		;
	if (w.kev != w.stack_kev)
		free(w.kev);
	if (w.items.v != w.items.stack)
		free(w.items.v);
	return ret < 0 ? -1 : w.n_out;
}

/* A wait that went straight to the kernel (its set had no managed
 * descriptor when it started) returned N events in EVENTS.  Another thread
 * may have added a managed descriptor to the set meanwhile, and the kernel
 * then hands out our cookie: translate in place.  If nothing is left for the
 * program, wait again, the managed way, for what remains of the timeout
 * (TIMEOUT_MS from START_NS; -1: forever). */
static int fixup_plain_wait(int epfd, struct epoll_event *events, int n, int maxevents, int timeout_ms,
			    long long start_ns, const sigset_t *sigmask)
{
	int i, n_out = 0, left;

	/* No registration was ever made: no cookie can be in there. */
	if (n <= 0 || !epreg_ever())
		return n;
	for (i = 0; i < n && !epreg_is_cookie(events[i].data.u64); i++)
		;
	if (i == n)
		return n;
	n_out = i;
	for (; i < n; i++)
		n_out = translate(epfd, events[i], events, n_out, maxevents);
	if (n_out > 0 || timeout_ms == 0)
		return n_out;
	left = timeout_ms;
	if (timeout_ms > 0) {
		long long spent_ms = (now_ns() - start_ns) / 1000000;

		if (spent_ms >= timeout_ms)
			return 0;
		left = (int)(timeout_ms - spent_ms);
	}
	return shim_epoll_wait(epfd, events, maxevents, left, sigmask);
}

/* A timeout in milliseconds as epoll_wait takes it, rounded up; -1: none. */
static int timespec_ms(const struct timespec *timeout)
{
	long long ms;

	if (!timeout)
		return -1;
	ms = (long long)timeout->tv_sec * 1000 + (timeout->tv_nsec + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
	long long start;
	int n;

	if (!shim_enter())
		return real.epoll_wait(epfd, events, maxevents, timeout);
	if (epfd_has_managed(epfd))
		return shim_epoll_wait(epfd, events, maxevents, timeout, NULL);
	start = timeout > 0 ? now_ns() : 0;
	n = real.epoll_wait(epfd, events, maxevents, timeout);
	return fixup_plain_wait(epfd, events, n, maxevents, timeout, start, NULL);
}

int epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout, const sigset_t *sigmask)
{
	long long start;
	int n;

	if (!shim_enter())
		return real.epoll_pwait(epfd, events, maxevents, timeout, sigmask);
	if (epfd_has_managed(epfd))
		return shim_epoll_wait(epfd, events, maxevents, timeout, sigmask);
	start = timeout > 0 ? now_ns() : 0;
	n = real.epoll_pwait(epfd, events, maxevents, timeout, sigmask);
	return fixup_plain_wait(epfd, events, n, maxevents, timeout, start, sigmask);
}

int epoll_pwait2(int epfd, struct epoll_event *events, int maxevents, const struct timespec *timeout,
		 const sigset_t *sigmask)
{
	long long start;
	int n;

	bool enter = shim_enter(); /* resolves libc first */

	if (!real.epoll_pwait2)
		return (int)shim_result(-ENOSYS);
	if (!enter)
		return real.epoll_pwait2(epfd, events, maxevents, timeout, sigmask);
	if (epfd_has_managed(epfd))
		return shim_epoll_wait(epfd, events, maxevents, timespec_ms(timeout), sigmask);
	start = timespec_ms(timeout) > 0 ? now_ns() : 0;
	n = real.epoll_pwait2(epfd, events, maxevents, timeout, sigmask);
	return fixup_plain_wait(epfd, events, n, maxevents, timespec_ms(timeout), start, sigmask);
}
