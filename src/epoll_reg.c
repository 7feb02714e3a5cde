/* epoll_reg.c - the epoll registry and its delivery rules (epoll_reg.h). */
#include "epoll_reg.h"
#include "forklock.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#define SLAB_REGS 128
#define MAX_SLABS 4096

#define COOKIE_TAG 0x7e5fULL
#define COOKIE_INDEX_BITS 24
#define COOKIE_INDEX_MASK ((1u << COOKIE_INDEX_BITS) - 1)
#define COOKIE_INC_BITS 24
#define COOKIE_INC_MASK ((1u << COOKIE_INC_BITS) - 1)
_Static_assert((uint64_t)MAX_SLABS * SLAB_REGS <= (1ULL << COOKIE_INDEX_BITS), "slot numbers fit the cookie");

/* Entry N of the index: descriptor number N as a watched descriptor and as
 * an epoll instance (a number can be both over time: stale registrations of
 * a closed descriptor linger until noticed). */
struct ep_desc {
	struct ep_reg *of_fd;
	struct ep_reg *in_epfd;
};

FORKLOCK_MUTEX(ep_lock);
static struct ep_reg *slabs[MAX_SLABS];
static atomic_int n_slabs; /* slabs[i] is set before n_slabs counts it */
static struct ep_reg *free_regs;
static atomic_int n_live;
static struct ep_desc *descs; /* replaced whole when it grows */
static int n_descs;
static bool busy; /* true only while ep_lock is held */
/* The instances the program uses, as number + 1 (0: a free entry).  An
 * entry only changes from 0 to a number (note) and back (forget), both
 * under ep_lock, and never moves: so a lock-free scan that starts after an
 * instance was noted finds it until it is forgotten.  n_epfds: entries
 * [0, n_epfds) may be in use (trailing free ones are given back). */
static atomic_int epfds[EPREG_MAX_EPFDS];
static atomic_int n_epfds;
/* An instance could not be noted (more than EPREG_MAX_EPFDS at once): a
 * close() can no longer tell from epfds[] alone whether it ends one. */
static atomic_bool epfds_overflow;

static void rebuild(void);

/* Take ep_lock; in a child forked while a thread of the parent was in the
 * middle of an update, rebuild the index first (rebuild). */
static void enter(void)
{
	pthread_mutex_lock(&ep_lock);
	if (busy)
		rebuild();
	busy = true;
}

/* Release ep_lock (taken by enter). */
static void leave(void)
{
	busy = false;
	pthread_mutex_unlock(&ep_lock);
}

void epreg_lock(void)
{
	enter();
}

void epreg_unlock(void)
{
	leave();
}

/* Add a slab of free slots.  0, or -ENOMEM.  Under ep_lock. */
static int add_slab(void)
{
	int n = atomic_load(&n_slabs), i;

	if (n == MAX_SLABS || !(slabs[n] = calloc(SLAB_REGS, sizeof(struct ep_reg))))
		return -ENOMEM;
	for (i = SLAB_REGS - 1; i >= 0; i--) {
		slabs[n][i].index = (uint32_t)(n * SLAB_REGS + i);
		slabs[n][i].next_free = free_regs;
		free_regs = &slabs[n][i];
	}
	atomic_store_explicit(&n_slabs, n + 1, memory_order_release);
	return 0;
}

struct ep_reg *epreg_alloc(void)
{
	struct ep_reg *reg;
	unsigned seq, inc;
	uint32_t index;

	if (!free_regs && add_slab() < 0)
		return NULL;
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

/* Make the index hold descriptor number FD.  0, or -ENOMEM.  The new array
 * is filled before it replaces the old (a child forked meanwhile sees one
 * or the other, whole).  Under ep_lock. */
static int index_reserve(int fd)
{
	struct ep_desc *bigger, *old = descs;
	int cap = n_descs ? n_descs : 64;

	if (fd < n_descs)
		return 0;
	while (cap <= fd) {
		if (cap > (1 << 29))
			return -ENOMEM;
		cap *= 2;
	}
	bigger = calloc((size_t)cap, sizeof *bigger);
	if (!bigger)
		return -ENOMEM;
	if (old)
		memcpy(bigger, old, (size_t)n_descs * sizeof *old);
	descs = bigger;
	n_descs = cap;
	free(old);
	return 0;
}

int epreg_link(struct ep_reg *reg)
{
	if (reg->linked)
		return 0;
	if (reg->fd < 0 || reg->epfd < 0 || index_reserve(reg->fd > reg->epfd ? reg->fd : reg->epfd) < 0)
		return -ENOMEM;
	/* Marked first: a child forked half-way puts it back whole (rebuild). */
	reg->linked = true;
	DL_APPEND2(descs[reg->fd].of_fd, reg, fd_prev, fd_next);
	DL_APPEND2(descs[reg->epfd].in_epfd, reg, ep_prev, ep_next);
	return 0;
}

void epreg_free(struct ep_reg *reg)
{
	if (reg->linked) {
		DL_DELETE2(descs[reg->fd].of_fd, reg, fd_prev, fd_next);
		DL_DELETE2(descs[reg->epfd].in_epfd, reg, ep_prev, ep_next);
		reg->linked = false;
	}
	reg->live = false;
	reg->next_free = free_regs;
	free_regs = reg;
	atomic_fetch_sub(&n_live, 1);
}

/* The slot with number INDEX (below n_slabs * SLAB_REGS). */
static struct ep_reg *slot_at(int index)
{
	return &slabs[index / SLAB_REGS][index % SLAB_REGS];
}

/* The highest descriptor number a live, linked slot names, or -1.  Under
 * ep_lock. */
static int highest_linked(int n_slots)
{
	int i, top = -1;

	for (i = 0; i < n_slots; i++) {
		struct ep_reg *reg = slot_at(i);

		if (reg->live && reg->linked && reg->fd >= 0 && reg->epfd >= 0) {
			if (reg->fd > top)
				top = reg->fd;
			if (reg->epfd > top)
				top = reg->epfd;
		}
	}
	return top;
}

/* In a child forked while a thread of the parent held ep_lock: the index
 * lists and the free list may be half-updated (walking them could loop or
 * crash).  The slabs are sound (a slab is published whole, and a slot
 * knows its own instance and descriptor), so both are rebuilt from them: a
 * slot that was live and linked (epreg_link marks it before linking) goes
 * back into a new index, any other is free -- a registration the parent
 * thread was half-way through making is forgotten here, and its events,
 * if the kernel has it, are dropped as stale.  The old index array is left
 * allocated, never walked.  Under ep_lock. */
static void rebuild(void)
{
	int n_slots = atomic_load(&n_slabs) * SLAB_REGS, i, live = 0;
	int top = highest_linked(n_slots);

	descs = NULL;
	n_descs = 0;
	free_regs = NULL;
	if (top >= 0 && index_reserve(top) < 0)
		top = -1; /* no memory: forget every registration */
	for (i = n_slots - 1; i >= 0; i--) {
		struct ep_reg *reg = slot_at(i);
		bool keep = top >= 0 && reg->live && reg->linked && reg->fd >= 0 && reg->epfd >= 0;

		reg->fd_prev = reg->fd_next = reg->ep_prev = reg->ep_next = NULL;
		reg->linked = false;
		if (keep) {
			epreg_link(reg); /* the index holds TOP already: no failure */
			live++;
		} else {
			reg->live = false;
			reg->next_free = free_regs;
			free_regs = reg;
		}
	}
	atomic_store(&n_live, live);
}

struct ep_reg *epreg_first_of_fd(int fd)
{
	return fd >= 0 && fd < n_descs ? descs[fd].of_fd : NULL;
}

struct ep_reg *epreg_first_in_epfd(int epfd)
{
	return epfd >= 0 && epfd < n_descs ? descs[epfd].in_epfd : NULL;
}

struct ep_reg *epreg_find(int epfd, int fd)
{
	struct ep_reg *reg;

	for (reg = epreg_first_of_fd(fd); reg; reg = reg->fd_next)
		if (reg->epfd == epfd)
			return reg;
	return NULL;
}

bool epreg_any(void)
{
	return atomic_load(&n_live) > 0;
}

bool epreg_ever(void)
{
	return atomic_load_explicit(&n_slabs, memory_order_relaxed) > 0;
}

/* ---- cookies ---- */

uint64_t epreg_cookie(const struct ep_reg *reg)
{
	return COOKIE_TAG << 48 | (uint64_t)reg->index << COOKIE_INC_BITS | (reg->incarnation & COOKIE_INC_MASK);
}

bool epreg_is_cookie(uint64_t value)
{
	return value >> 48 == COOKIE_TAG &&
	       ((value >> COOKIE_INC_BITS) & COOKIE_INDEX_MASK) <
		       (uint64_t)atomic_load_explicit(&n_slabs, memory_order_acquire) * SLAB_REGS;
}

struct ep_reg *epreg_of_cookie(uint64_t cookie)
{
	uint32_t index = (uint32_t)(cookie >> COOKIE_INC_BITS) & COOKIE_INDEX_MASK;
	struct ep_reg *reg = slot_at((int)index);

	if (!reg->live || (reg->incarnation & COOKIE_INC_MASK) != (cookie & COOKIE_INC_MASK))
		return NULL;
	return reg;
}

/* ---- the instances the program uses ---- */

bool epreg_known_epfd(int fd)
{
	int i, n = atomic_load_explicit(&n_epfds, memory_order_acquire);

	for (i = 0; i < n; i++)
		if (atomic_load_explicit(&epfds[i], memory_order_relaxed) == fd + 1)
			return true;
	return false;
}

void epreg_note_epfd(int epfd)
{
	int i, n;

	if (epfd < 0 || epreg_known_epfd(epfd))
		return;
	enter();
	n = atomic_load(&n_epfds);
	if (!epreg_known_epfd(epfd)) {
		for (i = 0; i < n && atomic_load(&epfds[i]) != 0; i++)
			;
		if (i < EPREG_MAX_EPFDS) {
			atomic_store(&epfds[i], epfd + 1);
			if (i == n)
				atomic_store_explicit(&n_epfds, n + 1, memory_order_release);
		} else {
			atomic_store(&epfds_overflow, true);
		}
	}
	leave();
}

bool epreg_maybe_epfd(int fd)
{
	return epreg_known_epfd(fd) || (atomic_load(&epfds_overflow) && epreg_any());
}

int epreg_list_epfds(int *out, int max)
{
	int i, k = 0, n = atomic_load_explicit(&n_epfds, memory_order_acquire);

	for (i = 0; i < n && k < max; i++) {
		int v = atomic_load_explicit(&epfds[i], memory_order_relaxed);

		if (v > 0)
			out[k++] = v - 1;
	}
	return k;
}

void epreg_forget_epfd(int epfd)
{
	struct ep_reg *reg, *tmp;
	int i, n;

	enter();
	if (epfd >= 0 && epfd < n_descs)
		DL_FOREACH_SAFE2(descs[epfd].in_epfd, reg, tmp, ep_next)
			epreg_free(reg);
	n = atomic_load(&n_epfds);
	for (i = 0; i < n; i++)
		if (atomic_load(&epfds[i]) == epfd + 1)
			atomic_store(&epfds[i], 0);
	while (n > 0 && atomic_load(&epfds[n - 1]) == 0)
		n--;
	atomic_store(&n_epfds, n);
	leave();
}

/* ---- what the program sees ---- */

uint32_t epreg_deliverable(struct ep_reg *reg, unsigned gen, short ready)
{
	uint32_t events = (uint16_t)ready & (reg->app_events | EPOLLERR | EPOLLHUP);

	if (reg->disarmed)
		return 0;
	if (reg->app_events & EPOLLET) {
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
	if (events && (reg->app_events & EPOLLONESHOT))
		reg->disarmed = true;
	return events;
}

int epreg_merge_event(struct epoll_event *out, int n, int max, epoll_data_t data, uint32_t events)
{
	int i;

	for (i = 0; i < n; i++)
		if (out[i].data.u64 == data.u64 && out[i].events != 0) {
			out[i].events |= events;
			return n;
		}
	if (n < max) {
		out[n].events = events;
		out[n].data = data;
		n++;
	}
	return n;
}
