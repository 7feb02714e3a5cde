/* names.c - a bounded address -> names map (uthash), one lock. */
#include "names.h"
#include "forklock.h"
#include "addr.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <uthash.h>

#define NAMES_MAX_ADDRS 4096

struct addr_key {
	uint8_t family;
	uint8_t addr[16];
};

struct addr_entry {
	struct addr_key key;
	struct name_list list;
	struct addr_entry *older, *newer; /* eviction order */
	UT_hash_handle hh;
};

FORKLOCK_MUTEX(names_lock);
static struct addr_entry *table;
static struct addr_entry *oldest, *newest;
static size_t n_entries;

static void make_key(struct addr_key *key, int family, const uint8_t *addr)
{
	/* Any family but AF_INET is read as AF_INET6 (16 bytes). */
	memset(key, 0, sizeof *key);
	key->family = (uint8_t)addr_normalize(family == AF_INET ? AF_INET : AF_INET6, addr, key->addr);
}

static void unlink_entry(struct addr_entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		newest = e->older;
	e->older = e->newer = NULL;
}

static void push_newest(struct addr_entry *e)
{
	e->older = newest;
	e->newer = NULL;
	if (newest)
		newest->newer = e;
	newest = e;
	if (!oldest)
		oldest = e;
}

void names_record(const char *name, int family, const uint8_t *addr)
{
	struct addr_key key;
	struct addr_entry *e;
	struct name_list *list;
	size_t i, len;

	if (!name || !*name || (len = strlen(name)) >= NAMES_LEN)
		return;
	if (len > 1 && name[len - 1] == '.')
		len--;
	make_key(&key, family, addr);
	pthread_mutex_lock(&names_lock);
	HASH_FIND(hh, table, &key, sizeof key, e);
	if (!e) {
		if (n_entries >= NAMES_MAX_ADDRS) {
			e = oldest;
			unlink_entry(e);
			HASH_DEL(table, e);
			n_entries--;
		} else {
			e = malloc(sizeof *e);
			if (!e)
				goto out;
		}
		memset(e, 0, sizeof *e);
		e->key = key;
		HASH_ADD(hh, table, key, sizeof key, e);
		n_entries++;
	} else {
		unlink_entry(e);
	}
	push_newest(e);

	/* Move NAME to the front: the most recent resolution wins. */
	list = &e->list;
	for (i = 0; i < list->count; i++)
		if (strncasecmp(list->names[i], name, len) == 0 && list->names[i][len] == '\0')
			break;
	if (i == list->count && list->count < NAMES_MAX_PER_ADDR)
		list->count++;
	if (i == list->count)
		i = list->count - 1;
	memmove(list->names[1], list->names[0], i * NAMES_LEN);
	memcpy(list->names[0], name, len);
	list->names[0][len] = '\0';
	for (i = 0; i < len; i++)
		if (list->names[0][i] >= 'A' && list->names[0][i] <= 'Z')
			list->names[0][i] += 'a' - 'A';
out:
	pthread_mutex_unlock(&names_lock);
}

void names_lookup(int family, const uint8_t *addr, struct name_list *out)
{
	struct addr_key key;
	struct addr_entry *e;

	out->count = 0;
	make_key(&key, family, addr);
	pthread_mutex_lock(&names_lock);
	HASH_FIND(hh, table, &key, sizeof key, e);
	if (e)
		memcpy(out, &e->list, sizeof *out);
	pthread_mutex_unlock(&names_lock);
}
