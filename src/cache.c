/* cache.c - the session cache: a hash (uthash) from key to that key's
 * tickets, and one list of every ticket, oldest first, for the bound.
 *
 * Ownership: cache_put takes the ticket's bytes, cache_take hands them to
 * its caller, and a ticket evicted, expired or refused is freed here.
 *
 * Fork: cache_lock is reset in a forked child (forklock.h).  A thread of
 * the parent may have been half-way through an update at the fork: "busy"
 * is true only while the lock is held, so a caller that finds it true after
 * taking the lock is in such a child, and starts from an empty cache (the
 * old one is left allocated, never walked). */
#include "cache.h"
#include "forklock.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
/* Out of memory in uthash: the item is not added (hh.tbl NULL), never exit(). */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>
#include <utlist.h>

struct slot;

struct ticket {
	struct slot *slot;
	void *data;
	size_t len;
	uint32_t early_max;
	time_t stored;
	struct ticket *prev, *next; /* every ticket, oldest first */
	struct ticket *key_prev, *key_next; /* this key's tickets, oldest first */
};

/* One key and its tickets; freed with its last ticket. */
struct slot {
	struct ticket *tickets;
	UT_hash_handle hh;
	char key[];
};

FORKLOCK_MUTEX(cache_lock);
static struct slot *slots; /* by key */
static struct ticket *all; /* oldest first: the next to evict */
static size_t n_tickets;
static unsigned limit = 64;
static bool busy;

/* Take cache_lock; in a child forked during an update, forget the cache. */
static void enter(void)
{
	pthread_mutex_lock(&cache_lock);
	if (busy) {
		slots = NULL;
		all = NULL;
		n_tickets = 0;
	}
	busy = true;
}

/* Release cache_lock (taken by enter). */
static void leave(void)
{
	busy = false;
	pthread_mutex_unlock(&cache_lock);
}

/* Unlink T from both lists and free it (and its slot if it was the slot's
 * last).  Returns the slot, or NULL if it was freed.  Caller holds
 * cache_lock. */
static struct slot *drop_ticket(struct ticket *t)
{
	struct slot *s = t->slot;

	DL_DELETE(all, t);
	DL_DELETE2(s->tickets, t, key_prev, key_next);
	n_tickets--;
	free(t->data);
	free(t);
	if (s->tickets)
		return s;
	HASH_DEL(slots, s);
	free(s);
	return NULL;
}

/* Free the oldest tickets until at most MAX are left.  Caller holds
 * cache_lock. */
static void evict_to(size_t max)
{
	while (n_tickets > max && all)
		drop_ticket(all);
}

/* The slot for KEY, made if there is none; NULL when out of memory.
 * Caller holds cache_lock. */
static struct slot *slot_for(const char *key)
{
	struct slot *s;
	size_t len = strlen(key);

	HASH_FIND(hh, slots, key, len, s);
	if (s)
		return s;
	s = malloc(sizeof *s + len + 1);
	if (!s)
		return NULL;
	s->tickets = NULL;
	memcpy(s->key, key, len + 1);
	HASH_ADD_KEYPTR(hh, slots, s->key, len, s);
	if (!s->hh.tbl) {
		free(s);
		return NULL;
	}
	return s;
}

void cache_set_limit(unsigned new_limit)
{
	enter();
	limit = new_limit;
	evict_to(limit);
	leave();
}

void cache_put_at(const char *key, void *data, size_t len, uint32_t early_max, time_t now)
{
	struct ticket *t = NULL;
	struct slot *s = NULL;

	enter();
	if (limit == 0 || !(s = slot_for(key)) || !(t = calloc(1, sizeof *t))) {
		if (s && !s->tickets) {
			HASH_DEL(slots, s);
			free(s);
		}
		free(data);
		leave();
		return;
	}
	t->slot = s;
	t->data = data;
	t->len = len;
	t->early_max = early_max;
	t->stored = now;
	DL_APPEND(all, t);
	DL_APPEND2(s->tickets, t, key_prev, key_next);
	n_tickets++;
	evict_to(limit);
	leave();
}

void cache_put(const char *key, void *data, size_t len, uint32_t early_max)
{
	cache_put_at(key, data, len, early_max, time(NULL));
}

void *cache_take_at(const char *key, time_t now, size_t *len, uint32_t *early_max)
{
	struct ticket *t;
	struct slot *s;
	void *data = NULL;

	enter();
	HASH_FIND(hh, slots, key, strlen(key), s);
	/* Newest first: the freshest ticket is the likeliest to be accepted;
	 * the expired ones met on the way are freed. */
	while (s && !data) {
		t = s->tickets->key_prev;
		if (now - t->stored <= CACHE_TICKET_MAX_AGE) {
			data = t->data;
			*len = t->len;
			*early_max = t->early_max;
			t->data = NULL;
		}
		s = drop_ticket(t);
	}
	leave();
	return data;
}

void *cache_take(const char *key, size_t *len, uint32_t *early_max)
{
	return cache_take_at(key, time(NULL), len, early_max);
}

size_t cache_count(void)
{
	size_t n;

	enter();
	n = n_tickets;
	leave();
	return n;
}
