/* hook_epoll.c - epoll for managed descriptors.
 *
 * A managed descriptor is registered with the kernel under a cookie of ours
 * (a tagged registration number, see cookie_of) with the events the connection
 * needs (what the handshake waits for, or the program's interest once open).
 * epoll_wait translates cookie events back into the program's events and
 * data, injects readiness for plaintext that is already decrypted, drops
 * kernel readiness that carried no application data, and emulates
 * EPOLLONESHOT.  Descriptors added before connect() upgraded them are
 * adopted from /proc/self/fdinfo of the epoll instances the program uses.
 * A wait that entered the kernel while its set had no managed descriptor
 * may still return a cookie (another thread added one meanwhile): every
 * wait's result is looked at once registrations exist (fixup_plain_wait). */
#include "shim.h"
#include "clock.h"
#include "conn.h"
#include "fdtab.h"
#include "forklock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLAB_REGS 128
#define MAX_SLABS 4096
#define MAX_EPFDS 64
#define APP_BITS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI)

struct ep_reg {
	bool live;
	int epfd, fd;
	uint32_t app_events;
	epoll_data_t app_data;
	uint32_t kernel_events;
	bool disarmed;         /* EPOLLONESHOT delivered, waiting for EPOLL_CTL_MOD */
	unsigned last_gen;     /* plaintext generation last reported (EPOLLET) */
	bool failed_reported;  /* EPOLLET: the failure was reported once */
	const struct conn *conn; /* identity only (no reference): a registration
				  * whose fd now names another connection is stale */
	unsigned seq;          /* bumped by every (re)registration: work done
				* outside the lock applies only if unchanged */
	unsigned incarnation;  /* bumped when the slot is handed out: in the cookie */
	uint32_t index;        /* the slot's number: in the cookie */
	struct ep_reg *next_free;
};

/* A registration looked at outside the lock: connections do their work
 * (handshake steps, decryption) with ep_lock released, so that threads
 * waiting on different epoll instances never wait for each other's crypto. */
struct ep_item {
	struct ep_reg *reg;
	unsigned seq;
	struct conn *conn; /* a reference */
	uint32_t app_events;
	bool disarmed;
	uint32_t kernel;
	short ready;
};

FORKLOCK_MUTEX(ep_lock);
static struct ep_reg *slabs[MAX_SLABS];
static atomic_int n_slabs; /* slabs[i] is set before n_slabs counts it */
static struct ep_reg *free_regs;
static atomic_int n_live;
static int epfds[MAX_EPFDS];
static atomic_int n_epfds;

/* ---- registrations ---- */

/* The epoll_data the kernel holds for a managed registration: a tag in the
 * top 16 bits (no user-space pointer has them set, so the program's own
 * pointers never look like one), the slot number, and the slot's
 * incarnation, so that an event fetched for a registration that has since
 * been freed, and perhaps handed out again, is recognised as stale.  Telling
 * a cookie from the program's data costs a few comparisons, without the lock. */
#define COOKIE_TAG 0x7e5fULL
#define COOKIE_INDEX_BITS 24
#define COOKIE_INC_BITS 24
#define COOKIE_INC_MASK ((1u << COOKIE_INC_BITS) - 1)
_Static_assert((uint64_t)MAX_SLABS * SLAB_REGS <= (1ULL << COOKIE_INDEX_BITS), "slot numbers fit the cookie");

static uint64_t cookie_of(const struct ep_reg *reg)
{
	return COOKIE_TAG << 48 | (uint64_t)reg->index << COOKIE_INC_BITS | (reg->incarnation & COOKIE_INC_MASK);
}

static bool is_cookie(uint64_t value)
{
	return value >> 48 == COOKIE_TAG &&
	       ((value >> COOKIE_INC_BITS) & ((1u << COOKIE_INDEX_BITS) - 1)) <
		       (uint64_t)atomic_load_explicit(&n_slabs, memory_order_acquire) * SLAB_REGS;
}

/* The registration COOKIE (is_cookie) names, or NULL if that registration
 * has been freed or the slot reused since the kernel was given it.  Under
 * ep_lock. */
static struct ep_reg *reg_of_cookie(uint64_t cookie)
{
	uint32_t index = (uint32_t)(cookie >> COOKIE_INC_BITS) & ((1u << COOKIE_INDEX_BITS) - 1);
	struct ep_reg *reg = &slabs[index / SLAB_REGS][index % SLAB_REGS];

	if (!reg->live || (reg->incarnation & COOKIE_INC_MASK) != (cookie & COOKIE_INC_MASK))
		return NULL;
	return reg;
}

static struct ep_reg *reg_alloc(void)
{
	struct ep_reg *reg;
	unsigned seq, inc;
	uint32_t index;
	int i;

	if (!free_regs) {
		int n = atomic_load(&n_slabs);

		if (n == MAX_SLABS || !(slabs[n] = calloc(SLAB_REGS, sizeof(struct ep_reg))))
			return NULL;
		for (i = SLAB_REGS - 1; i >= 0; i--) {
			slabs[n][i].index = (uint32_t)(n * SLAB_REGS + i);
			slabs[n][i].next_free = free_regs;
			free_regs = &slabs[n][i];
		}
		atomic_store_explicit(&n_slabs, n + 1, memory_order_release);
	}
	reg = free_regs;
	free_regs = reg->next_free;
	seq = reg->seq;
	inc = reg->incarnation;
	index = reg->index;
	memset(reg, 0, sizeof *reg);
	reg->seq = seq + 1;
	reg->incarnation = inc + 1;
	reg->index = index;
	reg->live = true;
	atomic_fetch_add(&n_live, 1);
	return reg;
}

static void reg_free(struct ep_reg *reg)
{
	reg->live = false;
	reg->next_free = free_regs;
	free_regs = reg;
	atomic_fetch_sub(&n_live, 1);
}

static struct ep_reg *reg_find(int epfd, int fd)
{
	int s, i;

	for (s = 0; s < n_slabs; s++)
		for (i = 0; i < SLAB_REGS; i++)
			if (slabs[s][i].live && slabs[s][i].epfd == epfd && slabs[s][i].fd == fd)
				return &slabs[s][i];
	return NULL;
}

static int kernel_update(struct ep_reg *reg, uint32_t events, int op)
{
	struct epoll_event kev;

	kev.events = events;
	kev.data.u64 = cookie_of(reg);
	if (op == EPOLL_CTL_MOD && events == reg->kernel_events)
		return 0;
	reg->kernel_events = events;
	return real.epoll_ctl(reg->epfd, op, reg->fd, &kev);
}

static void note_epfd(int epfd)
{
	int i, n = atomic_load(&n_epfds);

	for (i = 0; i < n; i++)
		if (epfds[i] == epfd)
			return;
	pthread_mutex_lock(&ep_lock);
	n = atomic_load(&n_epfds);
	for (i = 0; i < n; i++)
		if (epfds[i] == epfd)
			break;
	if (i == n && n < MAX_EPFDS) {
		epfds[n] = epfd;
		atomic_store(&n_epfds, n + 1);
	}
	pthread_mutex_unlock(&ep_lock);
}

/* ---- epoll_ctl ---- */

static int managed_ctl(int epfd, int op, int fd, struct epoll_event *ev, struct conn *conn)
{
	struct ep_reg *reg;
	uint32_t kernel = 0;
	short ready;
	int ret;

	/* What the connection needs, worked out before taking the lock. */
	if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && ev)
		kernel = (uint16_t)conn_poll_prepare(conn, (short)(ev->events & APP_BITS), &ready) |
			 (ev->events & EPOLLET);
	pthread_mutex_lock(&ep_lock);
	reg = reg_find(epfd, fd);
	switch (op) {
	case EPOLL_CTL_ADD:
	case EPOLL_CTL_MOD:
		if (!ev) {
			ret = -EFAULT;
			break;
		}
		if (op == EPOLL_CTL_ADD && reg) {
			/* A stale registration from a descriptor closed behind our back. */
			reg_free(reg);
			reg = NULL;
		}
		if (!reg && !(reg = reg_alloc())) {
			ret = -ENOMEM;
			break;
		}
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
		ret = kernel_update(reg, kernel, op);
		if (ret < 0) {
			ret = -errno;
			reg_free(reg);
		}
		break;
	case EPOLL_CTL_DEL:
		if (reg)
			reg_free(reg);
		ret = real.epoll_ctl(epfd, op, fd, ev) < 0 ? -errno : 0;
		break;
	default:
		ret = -EINVAL;
	}
	pthread_mutex_unlock(&ep_lock);
	return ret;
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct conn *conn;
	int ret;

	if (!shim_enter())
		return real.epoll_ctl(epfd, op, fd, ev);
	note_epfd(epfd);
	conn = fdtab_any() ? fdtab_get(fd) : NULL;
	if (!conn) {
		if (op == EPOLL_CTL_DEL && atomic_load(&n_live) > 0) {
			pthread_mutex_lock(&ep_lock);
			struct ep_reg *reg = reg_find(epfd, fd);

			if (reg)
				reg_free(reg);
			pthread_mutex_unlock(&ep_lock);
		}
		return real.epoll_ctl(epfd, op, fd, ev);
	}
	ret = managed_ctl(epfd, op, fd, ev, conn);
	conn_unref(conn);
	return (int)shim_result(ret);
}

/* FD was just upgraded: take over its existing registrations, which the
 * kernel lists in /proc/self/fdinfo/EPFD as "tfd: FD events: X data: Y". */
void epoll_adopt(int fd)
{
	int i, n = atomic_load(&n_epfds);
	struct conn *conn;

	if (n == 0 || !(conn = fdtab_get(fd)))
		return;
	shim_guard++;
	for (i = 0; i < n; i++) {
		char path[64], buf[16384], *line;
		ssize_t len;
		int procfd;

		snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfds[i]);
		procfd = open(path, O_RDONLY | O_CLOEXEC);
		if (procfd < 0)
			continue;
		len = real.read(procfd, buf, sizeof buf - 1);
		real.close(procfd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		for (line = strstr(buf, "tfd:"); line; line = strstr(line + 4, "tfd:")) {
			int tfd;
			unsigned events;
			unsigned long long data;
			struct epoll_event ev;

			if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3 || tfd != fd)
				continue;
			ev.events = events;
			ev.data.u64 = data;
			(void)managed_ctl(epfds[i], EPOLL_CTL_MOD, fd, &ev, conn);
		}
	}
	shim_guard--;
	conn_unref(conn);
}

void epoll_forget_fd(int fd)
{
	int i, s;

	if (atomic_load(&n_live) == 0)
		return;
	pthread_mutex_lock(&ep_lock);
	for (s = 0; s < n_slabs; s++)
		for (i = 0; i < SLAB_REGS; i++) {
			struct ep_reg *reg = &slabs[s][i];

			if (!reg->live || reg->fd != fd)
				continue;
			/* FD is still open: unregister it, for its socket may live
			 * on (a dup, our lingering copy) and would go on reporting
			 * events under our cookie. */
			real.epoll_ctl(reg->epfd, EPOLL_CTL_DEL, fd, NULL);
			reg_free(reg);
		}
	pthread_mutex_unlock(&ep_lock);
}

void epoll_forget_epfd(int fd)
{
	int i, n = atomic_load(&n_epfds), s;
	bool is_epfd = false;

	/* The common case, any close() of the program: one short scan. */
	for (i = 0; i < n; i++)
		if (epfds[i] == fd)
			is_epfd = true;
	if (!is_epfd)
		return;
	pthread_mutex_lock(&ep_lock);
	for (s = 0; s < n_slabs; s++)
		for (i = 0; i < SLAB_REGS; i++)
			if (slabs[s][i].live && slabs[s][i].epfd == fd)
				reg_free(&slabs[s][i]);
	n = atomic_load(&n_epfds);
	for (i = 0; i < n; i++)
		if (epfds[i] == fd) {
			epfds[i] = epfds[n - 1];
			atomic_store(&n_epfds, n - 1);
			break;
		}
	pthread_mutex_unlock(&ep_lock);
}

/* ---- epoll_wait ---- */

static bool epfd_has_managed(int epfd)
{
	int s, i;
	bool found = false;

	if (atomic_load(&n_live) == 0)
		return false;
	pthread_mutex_lock(&ep_lock);
	for (s = 0; s < n_slabs && !found; s++)
		for (i = 0; i < SLAB_REGS; i++)
			if (slabs[s][i].live && slabs[s][i].epfd == epfd) {
				found = true;
				break;
			}
	pthread_mutex_unlock(&ep_lock);
	return found;
}

/* Events the program may see for REG given READY (what the connection
 * says).  Applies EPOLLET's once-per-new-data and EPOLLONESHOT. */
static uint32_t deliverable(struct ep_reg *reg, struct conn *conn, short ready)
{
	uint32_t events = (uint16_t)ready & (reg->app_events | EPOLLERR | EPOLLHUP);

	if (reg->disarmed)
		return 0;
	if (reg->app_events & EPOLLET) {
		unsigned gen = conn_read_generation(conn);

		if ((events & EPOLLIN) && gen == reg->last_gen && !(events & EPOLLERR))
			events &= ~EPOLLIN;
		if (events & EPOLLIN)
			reg->last_gen = gen;
		if (events & EPOLLERR) {
			if (reg->failed_reported)
				events &= ~(EPOLLERR | EPOLLHUP | EPOLLIN | EPOLLOUT);
			else
				reg->failed_reported = true;
		}
	}
	if (events && (reg->app_events & EPOLLONESHOT)) {
		reg->disarmed = true;
		kernel_update(reg, EPOLLONESHOT, EPOLL_CTL_MOD);
	}
	return events;
}

static int add_event(struct epoll_event *out, int n, int max, struct ep_reg *reg, uint32_t events)
{
	int i;

	for (i = 0; i < n; i++)
		if (out[i].data.u64 == reg->app_data.u64 && out[i].events != 0) {
			out[i].events |= events;
			return n;
		}
	if (n < max) {
		out[n].events = events;
		out[n].data = reg->app_data;
		n++;
	}
	return n;
}

/* Snapshot the live registrations of EPFD, each with a reference to its
 * connection, into *ITEMS (grown as needed; *CAP is its size).  Stale ones
 * (the descriptor now names another connection, or none) are dropped. */
static int collect(int epfd, struct ep_item **items, int *cap, struct ep_item *stack_items)
{
	int n = 0, s, i;

	pthread_mutex_lock(&ep_lock);
	for (s = 0; s < n_slabs; s++)
		for (i = 0; i < SLAB_REGS; i++) {
			struct ep_reg *reg = &slabs[s][i];
			struct conn *conn;

			if (!reg->live || reg->epfd != epfd)
				continue;
			conn = fdtab_get(reg->fd);
			if (conn != reg->conn) {
				/* Closed behind our back; the kernel forgot it too. */
				reg_free(reg);
				if (conn)
					conn_unref(conn);
				continue;
			}
			if (n == *cap) {
				struct ep_item *bigger = *items == stack_items ? NULL : *items;

				bigger = realloc(bigger, (size_t)*cap * 2 * sizeof *bigger);
				if (!bigger) {
					conn_unref(conn);
					goto out; /* the rest waits for the next call */
				}
				if (*items == stack_items)
					memcpy(bigger, stack_items, (size_t)n * sizeof *bigger);
				*items = bigger;
				*cap *= 2;
			}
			/* In use until unref_items: a close() of reg->fd waits. */
			conn_use_hold(conn);
			(*items)[n].reg = reg;
			(*items)[n].seq = reg->seq;
			(*items)[n].conn = conn;
			(*items)[n].app_events = reg->app_events;
			(*items)[n].disarmed = reg->disarmed;
			n++;
		}
out:
	pthread_mutex_unlock(&ep_lock);
	return n;
}

/* Is the snapshot of ITEM still the registration it was?  (Under ep_lock.) */
static bool item_current(const struct ep_item *item, int epfd)
{
	return item->reg->live && item->reg->seq == item->seq && item->reg->epfd == epfd;
}

static void unref_items(struct ep_item *items, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		conn_use_end(items[i].conn);
		conn_unref(items[i].conn);
	}
}

/* One event KEV the kernel returned for EPFD, appended to (or merged into)
 * EVENTS[0..N_OUT): the program's own as it is, a cookie as the program's
 * events and data for that registration, or nothing (stale, or no
 * application data).  Returns the new count.  KEV is a copy: EVENTS may be
 * the very array the kernel filled, as long as N_OUT never passes the index
 * KEV came from. */
static int translate(int epfd, struct epoll_event kev, struct epoll_event *events, int n_out, int maxevents)
{
	struct ep_item it = { 0 };
	short result;
	uint32_t ev;

	if (!is_cookie(kev.data.u64)) {
		if (n_out < maxevents)
			events[n_out++] = kev;
		return n_out;
	}
	pthread_mutex_lock(&ep_lock);
	it.reg = reg_of_cookie(kev.data.u64);
	if (it.reg && it.reg->epfd == epfd && (it.conn = fdtab_get(it.reg->fd)) && it.conn != it.reg->conn) {
		conn_unref(it.conn);
		it.conn = NULL;
	}
	if (it.conn) {
		it.seq = it.reg->seq;
		it.app_events = it.reg->app_events;
		conn_use_hold(it.conn);
	}
	pthread_mutex_unlock(&ep_lock);
	if (!it.conn)
		return n_out; /* freed (closed, EPOLL_CTL_DEL) since the kernel queued it */
	result = conn_poll_result(it.conn, (short)(it.app_events & APP_BITS), (short)(kev.events & 0xffff));
	pthread_mutex_lock(&ep_lock);
	if (item_current(&it, epfd) && n_out < maxevents && (ev = deliverable(it.reg, it.conn, result)))
		n_out = add_event(events, n_out, maxevents, it.reg, ev);
	pthread_mutex_unlock(&ep_lock);
	conn_use_end(it.conn);
	conn_unref(it.conn);
	return n_out;
}

static int shim_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout,
			   const sigset_t *sigmask)
{
	struct epoll_event stack_kev[64], *kev = stack_kev;
	struct ep_item stack_items[64], *items = stack_items;
	int cap = 64;
	long long deadline = timeout >= 0 ? now_ns() + timeout * 1000000LL : -1;
	int ret = 0;

	if (maxevents > 64 && !(kev = malloc(maxevents * sizeof *kev)))
		return (int)shim_result(-ENOMEM);
	for (;;) {
		int n_out = 0, n_k, i, n_items, left_ms;
		long long wake = 0;

		/* 1. Bring kernel interest up to date; inject what is ready now.
		 * The connections are asked with the lock released. */
		n_items = collect(epfd, &items, &cap, stack_items);
		for (i = 0; i < n_items; i++) {
			struct ep_item *it = &items[i];
			short r = 0;

			it->ready = 0;
			if (it->disarmed) {
				/* Disarmed one-shot: the kernel may report an error or
				 * a hang-up once more, then nothing (events 0 would
				 * report them on every wait). */
				it->kernel = EPOLLONESHOT;
			} else {
				it->kernel = (uint16_t)conn_poll_prepare(it->conn, (short)(it->app_events & APP_BITS), &r) |
					     (it->app_events & EPOLLET);
				it->ready = r;
			}
			if (conn_deadline(it->conn) && (!wake || conn_deadline(it->conn) < wake))
				wake = conn_deadline(it->conn);
		}
		pthread_mutex_lock(&ep_lock);
		for (i = 0; i < n_items; i++) {
			struct ep_item *it = &items[i];
			uint32_t ev;

			if (!item_current(it, epfd))
				continue;
			kernel_update(it->reg, it->reg->disarmed ? EPOLLONESHOT : it->kernel, EPOLL_CTL_MOD);
			if (it->ready && n_out < maxevents && (ev = deliverable(it->reg, it->conn, it->ready)))
				n_out = add_event(events, n_out, maxevents, it->reg, ev);
		}
		pthread_mutex_unlock(&ep_lock);
		unref_items(items, n_items);

		/* 2. Wait (or just look, when something is ready already). */
		if (n_out > 0)
			left_ms = 0;
		else if (deadline < 0)
			left_ms = -1;
		else
			left_ms = (int)((deadline - now_ns() + 999999) / 1000000);
		if (left_ms < -1)
			left_ms = 0;
		/* A handshake deadline wakes us even if the program waits forever. */
		if (wake && n_out == 0) {
			int until = (int)((wake - now_ns()) / 1000000) + 1;

			if (until < 0)
				until = 0;
			if (left_ms < 0 || until < left_ms)
				left_ms = until;
		}
		if (n_out >= maxevents) {
			/* Full: what the kernel has waits for the next call. */
			ret = n_out;
			break;
		}
		n_k = real.epoll_pwait(epfd, kev, maxevents - n_out, left_ms, sigmask);
		if (n_k < 0) {
			if (n_out > 0) {
				ret = n_out;
				break;
			}
			ret = -1;
			break;
		}

		/* 3. Translate, again asking each connection with the lock released. */
		for (i = 0; i < n_k; i++)
			n_out = translate(epfd, kev[i], events, n_out, maxevents);
		/* Past a handshake deadline: fail it, so the program hears of it. */
		if (wake && now_ns() >= wake) {
			n_items = collect(epfd, &items, &cap, stack_items);
			for (i = 0; i < n_items; i++) {
				struct conn *conn = items[i].conn;

				if (conn_deadline(conn) && now_ns() >= conn_deadline(conn))
					(void)conn_poll_result(conn, (short)(items[i].app_events & APP_BITS), 0);
			}
			unref_items(items, n_items);
		}
		if (n_out > 0 || (deadline >= 0 && now_ns() >= deadline)) {
			ret = n_out;
			break;
		}
	}
	if (kev != stack_kev)
		free(kev);
	if (items != stack_items)
		free(items);
	return ret;
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
	if (n <= 0 || atomic_load_explicit(&n_slabs, memory_order_relaxed) == 0)
		return n;
	for (i = 0; i < n && !is_cookie(events[i].data.u64); i++)
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
