/* linger.c - see linger.h.  A small array under one lock; serviced from
 * close() and connect(), and drained at exit. */
#include "linger.h"
#include "real.h"
#include "forklock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINGER_MAX 256
#define LINGER_NS (10 * 1000000000LL) /* a peer that does not close in 10 s */

struct lingering {
	int fd;
	long long deadline;
};

FORKLOCK_MUTEX(linger_lock);
static struct lingering list[LINGER_MAX];
static atomic_int n_lingering;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Remove entry I (lock held); close its fd if CLOSE_IT. */
static void drop(int i, int close_it)
{
	int n = atomic_load(&n_lingering);

	if (close_it)
		real.close(list[i].fd);
	list[i] = list[n - 1];
	atomic_store(&n_lingering, n - 1);
}

/* Read what is there; true when the peer has closed (or the socket failed). */
static int finished(int fd)
{
	char scratch[16384];
	ssize_t ret;

	for (;;) {
		ret = real.recv(fd, scratch, sizeof scratch, MSG_DONTWAIT);
		if (ret > 0)
			continue;
		if (ret == 0)
			return 1;
		return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
	}
}

void linger_add(int fd)
{
	pthread_mutex_lock(&linger_lock);
	if (atomic_load(&n_lingering) == LINGER_MAX)
		drop(0, 1); /* the oldest goes */
	list[atomic_load(&n_lingering)].fd = fd;
	list[atomic_load(&n_lingering)].deadline = now_ns() + LINGER_NS;
	atomic_fetch_add(&n_lingering, 1);
	pthread_mutex_unlock(&linger_lock);
}

void linger_service(void)
{
	long long now;
	int i;

	if (atomic_load_explicit(&n_lingering, memory_order_relaxed) == 0)
		return;
	shim_guard++;
	now = now_ns();
	pthread_mutex_lock(&linger_lock);
	for (i = atomic_load(&n_lingering) - 1; i >= 0; i--)
		if (finished(list[i].fd) || now > list[i].deadline)
			drop(i, 1);
	pthread_mutex_unlock(&linger_lock);
	shim_guard--;
}

void linger_forget(int fd)
{
	int i;

	if (atomic_load_explicit(&n_lingering, memory_order_relaxed) == 0)
		return;
	pthread_mutex_lock(&linger_lock);
	for (i = atomic_load(&n_lingering) - 1; i >= 0; i--)
		if (list[i].fd == fd)
			drop(i, 0);
	pthread_mutex_unlock(&linger_lock);
}

void linger_forget_range(unsigned first, unsigned last)
{
	int i;

	if (atomic_load_explicit(&n_lingering, memory_order_relaxed) == 0)
		return;
	pthread_mutex_lock(&linger_lock);
	for (i = atomic_load(&n_lingering) - 1; i >= 0; i--)
		if ((unsigned)list[i].fd >= first && (unsigned)list[i].fd <= last)
			drop(i, 0);
	pthread_mutex_unlock(&linger_lock);
}

void linger_wait_all(int max_ms)
{
	struct pollfd pfds[LINGER_MAX];
	long long deadline = now_ns() + max_ms * 1000000LL;
	int i, n;

	if (atomic_load(&n_lingering) == 0 || !real.poll)
		return;
	shim_guard++;
	for (;;) {
		linger_service();
		pthread_mutex_lock(&linger_lock);
		n = atomic_load(&n_lingering);
		for (i = 0; i < n; i++) {
			pfds[i].fd = list[i].fd;
			pfds[i].events = POLLIN;
			pfds[i].revents = 0;
		}
		pthread_mutex_unlock(&linger_lock);
		if (n == 0 || now_ns() >= deadline)
			break;
		real.poll(pfds, (nfds_t)n, (int)((deadline - now_ns()) / 1000000) + 1);
	}
	shim_guard--;
}

void linger_forked_child(void)
{
	int i, n = atomic_load(&n_lingering);

	/* The parent still waits for these peers: close our copies only. */
	for (i = 0; i < n; i++)
		real.close(list[i].fd);
	atomic_store(&n_lingering, 0);
}

int linger_fds(int *out, int max)
{
	int i, n;

	pthread_mutex_lock(&linger_lock);
	n = atomic_load(&n_lingering);
	for (i = 0; i < n && i < max; i++)
		out[i] = list[i].fd;
	pthread_mutex_unlock(&linger_lock);
	return i;
}
