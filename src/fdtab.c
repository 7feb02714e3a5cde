/* fdtab.c - a two-level array of atomic slots, one lock for changes. */
#include "fdtab.h"
#include "conn.h"
#include "forklock.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define CHUNK_BITS 10
#define CHUNK_SIZE (1 << CHUNK_BITS)
#define N_CHUNKS 1024 /* descriptors 0 .. 1M-1 */

struct slot {
	_Atomic(struct conn *) conn;
	bool app_cloexec;
};

static _Atomic(struct slot *) chunks[N_CHUNKS];
FORKLOCK_MUTEX(fdtab_lock);
static atomic_int n_mapped;

static struct slot *slot_of(int fd, bool create)
{
	struct slot *chunk;
	unsigned idx = (unsigned)fd >> CHUNK_BITS;

	if (fd < 0 || idx >= N_CHUNKS)
		return NULL;
	chunk = atomic_load_explicit(&chunks[idx], memory_order_acquire);
	if (!chunk && create) {
		chunk = calloc(CHUNK_SIZE, sizeof *chunk);
		if (!chunk)
			return NULL;
		atomic_store_explicit(&chunks[idx], chunk, memory_order_release);
	}
	return chunk ? &chunk[fd & (CHUNK_SIZE - 1)] : NULL;
}

int fdtab_put(int fd, struct conn *conn, bool app_cloexec)
{
	struct slot *slot;
	struct conn *old;

	pthread_mutex_lock(&fdtab_lock);
	slot = slot_of(fd, true);
	if (!slot) {
		pthread_mutex_unlock(&fdtab_lock);
		return fd < 0 ? -EBADF : -ENOMEM;
	}
	conn_ref(conn);
	old = atomic_exchange(&slot->conn, conn);
	slot->app_cloexec = app_cloexec;
	if (!old)
		atomic_fetch_add(&n_mapped, 1);
	pthread_mutex_unlock(&fdtab_lock);
	if (old)
		conn_unref(old);
	return 0;
}

struct conn *fdtab_get(int fd)
{
	struct slot *slot = slot_of(fd, false);
	struct conn *conn;

	if (!slot || !atomic_load_explicit(&slot->conn, memory_order_relaxed))
		return NULL;
	pthread_mutex_lock(&fdtab_lock);
	conn = atomic_load(&slot->conn);
	if (conn)
		conn_ref(conn);
	pthread_mutex_unlock(&fdtab_lock);
	return conn;
}

struct conn *fdtab_get_checked(int fd)
{
	struct conn *conn = fdtab_get(fd);

	if (!conn || conn_is_socket(conn, fd))
		return conn;
	/* Closed without our close() (syscall(SYS_close), as libuv does) and
	 * the number came back for another file. */
	fdtab_forget(fd);
	conn_unref(conn);
	return NULL;
}

void fdtab_forget(int fd)
{
	struct conn *stale = fdtab_remove(fd);

	if (stale)
		conn_unref(stale);
}

struct conn *fdtab_remove(int fd)
{
	struct slot *slot = slot_of(fd, false);
	struct conn *conn;

	if (!slot || !atomic_load_explicit(&slot->conn, memory_order_relaxed))
		return NULL;
	pthread_mutex_lock(&fdtab_lock);
	conn = atomic_exchange(&slot->conn, NULL);
	slot->app_cloexec = false;
	if (conn)
		atomic_fetch_sub(&n_mapped, 1);
	pthread_mutex_unlock(&fdtab_lock);
	return conn;
}

bool fdtab_any(void)
{
	return atomic_load_explicit(&n_mapped, memory_order_relaxed) > 0;
}

static void foreach_locked(bool (*fn)(int, struct conn *, void *), void *arg)
{
	unsigned c, i;

	for (c = 0; c < N_CHUNKS; c++) {
		struct slot *chunk = atomic_load(&chunks[c]);

		if (!chunk)
			continue;
		for (i = 0; i < CHUNK_SIZE; i++) {
			struct conn *conn = atomic_load(&chunk[i].conn);

			if (conn && !fn((int)(c * CHUNK_SIZE + i), conn, arg))
				return;
		}
	}
}

struct other_search {
	struct conn *conn;
	int skip, found;
};

static bool find_other(int fd, struct conn *conn, void *arg)
{
	struct other_search *search = arg;

	if (conn == search->conn && fd != search->skip) {
		search->found = fd;
		return false;
	}
	return true;
}

int fdtab_other_fd(struct conn *conn, int fd)
{
	struct other_search search = { conn, fd, -1 };

	pthread_mutex_lock(&fdtab_lock);
	foreach_locked(find_other, &search);
	pthread_mutex_unlock(&fdtab_lock);
	return search.found;
}

bool fdtab_app_cloexec(int fd)
{
	struct slot *slot = slot_of(fd, false);

	return slot && slot->app_cloexec;
}

void fdtab_set_app_cloexec(int fd, bool on)
{
	struct slot *slot = slot_of(fd, false);

	if (slot)
		slot->app_cloexec = on;
}

struct foreach_args {
	void (*fn)(int, struct conn *, void *);
	void *arg;
};

static bool call_each(int fd, struct conn *conn, void *arg)
{
	struct foreach_args *args = arg;

	args->fn(fd, conn, args->arg);
	return true;
}

void fdtab_foreach(void (*fn)(int fd, struct conn *conn, void *arg), void *arg)
{
	struct foreach_args args = { fn, arg };

	pthread_mutex_lock(&fdtab_lock);
	foreach_locked(call_each, &args);
	pthread_mutex_unlock(&fdtab_lock);
}

bool fdtab_foreach_try(void (*fn)(int fd, struct conn *conn, void *arg), void *arg)
{
	struct foreach_args args = { fn, arg };

	if (pthread_mutex_trylock(&fdtab_lock) != 0)
		return false;
	foreach_locked(call_each, &args);
	pthread_mutex_unlock(&fdtab_lock);
	return true;
}

bool fdtab_foreach_bounded(void (*fn)(int fd, struct conn *conn, void *arg), void *arg, int max_ms)
{
	struct timespec ms = { 0, 1000000 };

	while (!fdtab_foreach_try(fn, arg)) {
		if (max_ms-- <= 0)
			return false;
		nanosleep(&ms, NULL);
	}
	return true;
}
