/* cache.c - a FIFO of tickets with a hash from key to its newest ticket. */
#include "cache.h"
#include "forklock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* TLS 1.3 tickets live at most seven days (RFC 8446 4.6.1). */
#define TICKET_MAX_AGE (7 * 24 * 3600)

struct ticket {
	char *key;
	void *data;
	size_t len;
	uint32_t early_max;
	time_t stored;
	struct ticket *prev, *next; /* oldest first */
};

FORKLOCK_MUTEX(cache_lock);
static struct ticket *head, *tail;
static size_t n_tickets;
static unsigned limit = 64;

static void unlink_ticket(struct ticket *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		tail = t->prev;
	n_tickets--;
}

static void free_ticket(struct ticket *t)
{
	free(t->key);
	free(t->data);
	free(t);
}

static void evict_to(size_t max)
{
	while (n_tickets > max && head) {
		struct ticket *t = head;

		unlink_ticket(t);
		free_ticket(t);
	}
}

void cache_set_limit(unsigned new_limit)
{
	pthread_mutex_lock(&cache_lock);
	limit = new_limit;
	evict_to(limit);
	pthread_mutex_unlock(&cache_lock);
}

void cache_put(const char *key, void *data, size_t len, uint32_t early_max)
{
	struct ticket *t = NULL;

	pthread_mutex_lock(&cache_lock);
	if (limit == 0 || !(t = calloc(1, sizeof *t)) || !(t->key = strdup(key))) {
		free(t);
		free(data);
		pthread_mutex_unlock(&cache_lock);
		return;
	}
	t->data = data;
	t->len = len;
	t->early_max = early_max;
	t->stored = time(NULL);
	t->prev = tail;
	if (tail)
		tail->next = t;
	else
		head = t;
	tail = t;
	n_tickets++;
	evict_to(limit);
	pthread_mutex_unlock(&cache_lock);
}

void *cache_take(const char *key, size_t *len, uint32_t *early_max)
{
	struct ticket *t, *prev;
	void *data = NULL;
	time_t now = time(NULL);

	pthread_mutex_lock(&cache_lock);
	/* Newest first: the freshest ticket is the likeliest to be accepted. */
	for (t = tail; t; t = prev) {
		prev = t->prev;
		if (strcmp(t->key, key) != 0)
			continue;
		unlink_ticket(t);
		if (now - t->stored <= TICKET_MAX_AGE) {
			data = t->data;
			*len = t->len;
			*early_max = t->early_max;
			t->data = NULL;
		}
		free_ticket(t);
		if (data)
			break;
	}
	pthread_mutex_unlock(&cache_lock);
	return data;
}

size_t cache_count(void)
{
	size_t n;

	pthread_mutex_lock(&cache_lock);
	n = n_tickets;
	pthread_mutex_unlock(&cache_lock);
	return n;
}
