/* names.c - a bounded address -> names map: a hash (uthash) by address,
 * and a list (utlist) oldest first, so that a new address past
 * NAMES_MAX_ADDRS takes the place of the one recorded longest ago.  One
 * lock, names_lock; a child forked during an update starts from an empty
 * map (as in cache.c). */
#include "names.h"
#include "forklock.h"
#include "addr.h"
#include "decide.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
/* Out of memory in uthash: the item is not added (hh.tbl NULL), never exit(). */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>
#include <utlist.h>

struct addr_key {
	uint8_t family;
	uint8_t addr[16];
};

struct addr_entry {
	struct addr_key key;
	struct name_list list;
	struct addr_entry *older, *newer; /* by_age */
	UT_hash_handle hh;
};

FORKLOCK_MUTEX(names_lock);
static struct addr_entry *table; /* by address */
static struct addr_entry *by_age; /* least recently recorded first */
static size_t n_entries;
static bool busy; /* true only while names_lock is held */

static void make_key(struct addr_key *key, int family, const uint8_t *addr)
{
	/* Any family but AF_INET is read as AF_INET6 (16 bytes). */
	memset(key, 0, sizeof *key);
	key->family = (uint8_t)addr_normalize(family == AF_INET ? AF_INET : AF_INET6, addr, key->addr);
}

/* Take names_lock; in a child forked during an update, forget the map. */
static void enter(void)
{
	pthread_mutex_lock(&names_lock);
	if (busy) {
		table = NULL;
		by_age = NULL;
		n_entries = 0;
	}
	busy = true;
}

/* Release names_lock (taken by enter). */
static void leave(void)
{
	busy = false;
	pthread_mutex_unlock(&names_lock);
}

/* The entry for KEY, made (or the oldest one reused, at the bound) if there
 * is none, and now the newest; NULL when out of memory.  Caller holds
 * names_lock. */
static struct addr_entry *entry_for(const struct addr_key *key)
{
	struct addr_entry *e;

	HASH_FIND(hh, table, key, sizeof *key, e);
	if (e) {
		DL_DELETE2(by_age, e, older, newer);
		DL_APPEND2(by_age, e, older, newer);
		return e;
	}
	if (n_entries >= NAMES_MAX_ADDRS) {
		e = by_age;
		DL_DELETE2(by_age, e, older, newer);
		HASH_DEL(table, e);
		n_entries--;
	} else if (!(e = malloc(sizeof *e))) {
		return NULL;
	}
	memset(e, 0, sizeof *e);
	e->key = *key;
	HASH_ADD(hh, table, key, sizeof e->key, e);
	if (!e->hh.tbl) {
		free(e);
		return NULL;
	}
	DL_APPEND2(by_age, e, older, newer);
	n_entries++;
	return e;
}

/* Put NAME (canonical: decide_canon_name) first in LIST: the most recent
 * resolution wins; a name already listed moves up, and a full list loses
 * its last.  Caller holds names_lock. */
static void put_first(struct name_list *list, const char *name)
{
	size_t i;

	for (i = 0; i < list->count; i++)
		if (strcmp(list->names[i], name) == 0)
			break;
	if (i == list->count && list->count < NAMES_MAX_PER_ADDR)
		list->count++;
	if (i == list->count)
		i = list->count - 1;
	memmove(list->names[1], list->names[0], i * NAMES_LEN);
	strcpy(list->names[0], name);
}

void names_record(const char *name, int family, const uint8_t *addr)
{
	struct addr_key key;
	struct addr_entry *e;
	char canon[NAMES_LEN];

	/* Lower case, one final dot dropped: the form decide() compares. */
	if (!decide_canon_name(name, canon, sizeof canon))
		return;
	make_key(&key, family, addr);
	enter();
	e = entry_for(&key);
	if (e)
		put_first(&e->list, canon);
	leave();
}

void names_lookup(int family, const uint8_t *addr, struct name_list *out)
{
	struct addr_key key;
	struct addr_entry *e;

	out->count = 0;
	make_key(&key, family, addr);
	enter();
	HASH_FIND(hh, table, &key, sizeof key, e);
	if (e)
		memcpy(out, &e->list, sizeof *out);
	leave();
}
