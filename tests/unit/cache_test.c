/* cache_test.c - the session cache (src/cache.c): tickets are single use,
 * kept per key, newest first, expire after seven days (the clock is an
 * argument here, no sleeping), and the oldest goes at the bound, whatever
 * its key.  Runs under ASan's leak checker in sanitizer builds, so every
 * ticket the cache drops must be freed. */
#include "cache.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T0 ((time_t)1700000000)

/* A malloc'd ticket holding N: what the cache stores. */
static void *ticket(unsigned n)
{
	unsigned *t = malloc(sizeof *t);

	if (!t)
		abort();
	*t = n;
	return t;
}

static void put(const char *key, unsigned n, time_t now)
{
	cache_put_at(key, ticket(n), sizeof(unsigned), n % 3 ? 0 : 16384, now);
}

/* The number held by KEY's next ticket at NOW, or -1 if none. */
static long take(const char *key, time_t now)
{
	size_t len = 0;
	uint32_t early = 0;
	unsigned *t = cache_take_at(key, now, &len, &early);
	long n;

	if (!t)
		return -1;
	n = len == sizeof *t ? (long)*t : -2;
	if (early != (*t % 3 ? 0 : 16384))
		n = -3;
	free(t);
	return n;
}

/* Empty the cache and set its bound. */
static void reset(unsigned limit)
{
	cache_set_limit(0);
	cache_set_limit(limit);
}

static void test_put_take(void)
{
	reset(64);
	ok(take("a", T0) == -1, "an empty cache has no ticket");
	put("a", 7, T0);
	ok(cache_count() == 1, "one ticket held");
	ok(take("a", T0) == 7, "the ticket comes back with its length and early-data size");
	ok(take("a", T0) == -1 && cache_count() == 0, "a ticket is used once");
	put("b", 9, T0);
	ok(take("b", T0) == 9, "early-data size 0 comes back too");
}

static void test_keys(void)
{
	reset(64);
	put("rule|a.example|192.0.2.1:443", 1, T0);
	put("rule|a.example|192.0.2.1:4433", 2, T0);
	put("other|a.example|192.0.2.1:443", 3, T0);
	put("rule|a.example|192.0.2.1:44", 4, T0);
	ok(take("rule|b.example|192.0.2.1:443", T0) == -1, "no ticket for a key never stored");
	ok(take("rule|a.example|192.0.2.1:4433", T0) == 2, "each key its own ticket (port)");
	ok(take("other|a.example|192.0.2.1:443", T0) == 3, "each key its own ticket (rule)");
	ok(take("rule|a.example|192.0.2.1:443", T0) == 1, "each key its own ticket (prefix of another)");
	ok(take("rule|a.example|192.0.2.1:44", T0) == 4, "each key its own ticket (prefix)");
	ok(cache_count() == 0, "all taken");
}

static void test_same_key(void)
{
	reset(64);
	put("k", 1, T0);
	put("k", 2, T0 + 1);
	put("k", 3, T0 + 2);
	ok(cache_count() == 3, "a second ticket for a key is kept beside the first");
	ok(take("k", T0 + 3) == 3, "the newest ticket first");
	put("k", 4, T0 + 3);
	ok(take("k", T0 + 3) == 4, "a new ticket goes before the older ones");
	ok(take("k", T0 + 3) == 2 && take("k", T0 + 3) == 1, "then the older ones, newest first");
	ok(take("k", T0 + 3) == -1, "then none");
}

static void test_expiry(void)
{
	reset(64);
	put("k", 1, T0);
	ok(take("k", T0 + CACHE_TICKET_MAX_AGE) == 1, "a ticket exactly seven days old is offered");
	put("k", 2, T0);
	ok(take("k", T0 + CACHE_TICKET_MAX_AGE + 1) == -1, "one second older, it is not");
	ok(cache_count() == 0, "and it was freed");
	/* The wall clock stepped back between the two: the newest is expired. */
	put("k", 3, T0 + 2 * CACHE_TICKET_MAX_AGE);
	put("k", 4, T0);
	put("other", 5, T0);
	ok(take("k", T0 + 2 * CACHE_TICKET_MAX_AGE) == 3, "an expired newer ticket is passed over");
	ok(cache_count() == 1, "and freed; another key's expired ticket stays until asked for");
	ok(take("other", T0 + 2 * CACHE_TICKET_MAX_AGE) == -1 && cache_count() == 0, "then it goes");
}

static void test_bound(void)
{
	reset(3);
	put("a", 1, T0);
	put("b", 2, T0);
	put("a", 3, T0);
	put("c", 4, T0);
	ok(cache_count() == 3, "the bound holds");
	ok(take("a", T0) == 3 && take("a", T0) == -1, "the oldest ticket went, not its key's newer one");
	ok(take("b", T0) == 2 && take("c", T0) == 4, "the others stay");
	put("a", 5, T0);
	put("b", 6, T0);
	put("c", 7, T0);
	cache_set_limit(1);
	ok(cache_count() == 1 && take("c", T0) == 7, "a lower bound keeps the newest");
	cache_set_limit(0);
	put("a", 8, T0);
	ok(cache_count() == 0 && take("a", T0) == -1, "bound 0: nothing is kept (and the ticket is freed)");
}

static long long elapsed_ns(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000000000LL + (b->tv_nsec - a->tv_nsec);
}

static void key_of(char *key, size_t size, unsigned i)
{
	snprintf(key, size, "rule%u|host%u.example|192.0.2.%u:443", i % 7, i, i % 250);
}

/* 100,000 tickets (session-cache's maximum); the diag line is the cost of
 * a take and a put with the cache full, random keys. */
static void test_large(void)
{
	enum { N = 100000, OPS = 200000 };
	struct timespec a, b;
	unsigned i, found = 0, cycled = 0, seed = 1;
	char key[96];
	long n;

	reset(N);
	for (i = 0; i < N; i++) {
		key_of(key, sizeof key, i);
		put(key, i, T0);
	}
	ok(cache_count() == N, "%d tickets held", N);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < OPS; i++) {
		seed = seed * 1103515245u + 12345u;
		key_of(key, sizeof key, (seed >> 8) % N);
		n = take(key, T0);
		if (n >= 0) {
			put(key, (unsigned)n, T0);
			cycled++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	diag("%d tickets: %.0f ns per take + put (%d random keys)", N, (double)elapsed_ns(&a, &b) / OPS, OPS);
	ok(cycled == OPS && cache_count() == N, "every random key found, and put back");
	for (i = 0; i < N; i++) {
		key_of(key, sizeof key, i);
		found += take(key, T0) == (long)i;
	}
	ok(found == N && cache_count() == 0, "each of the %d found under its own key", N);
	reset(N);
	for (i = 0; i <= N; i++) {
		key_of(key, sizeof key, i);
		put(key, i, T0);
	}
	key_of(key, sizeof key, 0);
	ok(cache_count() == N && take(key, T0) == -1, "ticket %d pushes out the first", N + 1);
	cache_set_limit(0);
}

int main(void)
{
	test_put_take();
	test_keys();
	test_same_key();
	test_expiry();
	test_bound();
	test_large();
	return done();
}
