/* forklock.c - the registry of the library's locks (forklock.h). */
#include "forklock.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

#define MAX_RANGES 8

/* Ranges added at run time (loaded modules); the library's own section is
 * always the first.  A range is written before the count that publishes it:
 * a child forked in between simply does not see it yet. */
static struct {
	const struct forklock *begin, *end;
} ranges[MAX_RANGES];
static atomic_int n_ranges;

/* Callers are serialised (the loader runs under pthread_once): a lock here
 * would be one more to reset. */
int forklock_add(const struct forklock *begin, const struct forklock *end)
{
	int n = atomic_load(&n_ranges), i;

	for (i = 0; i < n; i++)
		if (ranges[i].begin == begin)
			return 0;
	if (n == MAX_RANGES)
		return -ENOSPC;
	ranges[n].begin = begin;
	ranges[n].end = end;
	atomic_store(&n_ranges, n + 1);
	return 0;
}

static void each(void (*fn)(const struct forklock *lock, void *arg), void *arg)
{
	const struct forklock *own_begin = FORKLOCK_OWN_BEGIN(), *own_end = FORKLOCK_OWN_END(), *l;
	int i, n = atomic_load(&n_ranges);

	if (own_begin)
		for (l = own_begin; l < own_end; l++)
			fn(l, arg);
	for (i = 0; i < n; i++)
		if (ranges[i].begin != own_begin)
			for (l = ranges[i].begin; l < ranges[i].end; l++)
				fn(l, arg);
}

static void reset_one(const struct forklock *lock, void *arg)
{
	pthread_mutex_init(lock->mutex, NULL);
	++*(int *)arg;
}

int forklock_child_reset(void)
{
	int count = 0;

	each(reset_one, &count);
	return count;
}

void forklock_foreach(void (*fn)(const struct forklock *lock, void *arg), void *arg)
{
	each(fn, arg);
}
