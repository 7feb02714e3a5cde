/* linger.c - see linger.h.  A small array under one lock; serviced from
 * close() and connect(), and drained at exit. */
#include "linger.h"
#include "clock.h"
#include "conn.h"
#include "fdtab.h"
#include "owner.h"
#include "real.h"
#include "forklock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LINGER_MAX 256
#define LINGER_NS (10 * 1000000000LL) /* a peer that does not close in 10 s */

struct lingering {
	int fd;
	bool own_fd;        /* our duplicate (closed when done), else the program's (at exit) */
	bool busy;          /* the last push found another thread writing */
	bool handshake;     /* the last push found the handshake still going
			     * (early data to confirm): the socket is the
			     * session's, never read here */
	bool may_read;      /* this process owns the receive side: reading
			     * until the server closes steals nothing */
	bool wait_fin;      /* nobody owns the receive side: wait, without
			     * reading, until the server closes (its unread
			     * tickets would make a close now a reset) */
	struct conn *conn;  /* records still to push, or NULL */
	long long deadline;
};

FORKLOCK_MUTEX(linger_lock);
static struct lingering list[LINGER_MAX];
static atomic_int n_lingering;

/* Remove entry I (lock held); close its fd if CLOSE_IT. */
static void drop(int i, int close_it)
{
	int n = atomic_load(&n_lingering);

	if (close_it && list[i].own_fd)
		real.close(list[i].fd);
	if (list[i].conn)
		conn_unref(list[i].conn);
	list[i] = list[n - 1];
	atomic_store(&n_lingering, n - 1);
}

/* Read what is there; true when the peer has closed (or the socket failed).
 * A small scratch buffer: this runs on the program's threads (close, exit),
 * whose stacks may be small; what lingers is little (tickets, an alert). */
static int finished(int fd)
{
	char scratch[2048];
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

/* True when the peer has closed (or the socket failed); reads nothing. */
static int peer_closed(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	return real.poll(&p, 1, 0) != 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Lock held.  WAIT_FIN: the entry never reads (see wait_fin). */
static void add_locked(int fd, struct conn *conn, bool own_fd, bool wait_fin)
{
	struct lingering *l;

	if (atomic_load(&n_lingering) == LINGER_MAX)
		drop(0, 1); /* the oldest goes */
	l = &list[atomic_load(&n_lingering)];
	l->fd = fd;
	l->own_fd = own_fd;
	l->busy = false;
	l->handshake = false;
	l->may_read = !wait_fin && (!conn || conn_owns_recv(conn));
	l->wait_fin = wait_fin || (conn && conn_recv_unowned(conn));
	l->conn = conn;
	l->deadline = now_ns() + LINGER_NS;
	atomic_fetch_add(&n_lingering, 1);
}

/* Every holder of linger_lock raises shim_guard: a signal handler that
 * calls _exit meanwhile then skips linger_at_exit instead of deadlocking. */
void linger_add(int fd, struct conn *conn)
{
	shim_guard++;
	pthread_mutex_lock(&linger_lock);
	add_locked(fd, conn, true, false);
	pthread_mutex_unlock(&linger_lock);
	shim_guard--;
}

void linger_add_waiting(int fd)
{
	shim_guard++;
	pthread_mutex_lock(&linger_lock);
	add_locked(fd, NULL, true, true);
	pthread_mutex_unlock(&linger_lock);
	shim_guard--;
}

/* Push what the connection still holds; then the write side closes, and
 * the entry lingers as any other.  True when the entry is done for. */
static bool push(struct lingering *l)
{
	int ret;

	l->busy = false;
	l->handshake = false;
	if (!l->conn)
		return false;
	ret = conn_push_final(l->conn);
	if (ret == -EAGAIN || ret == -EBUSY || ret == -EINPROGRESS) {
		l->busy = ret == -EBUSY;
		l->handshake = ret == -EINPROGRESS;
		return false;
	}
	conn_unref(l->conn);
	l->conn = NULL;
	if (ret < 0)
		return true; /* the socket failed (logged): nothing more to wait for */
	real.shutdown(l->fd, SHUT_WR);
	return false;
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
	for (i = atomic_load(&n_lingering) - 1; i >= 0; i--) {
		if (push(&list[i]) ||
		    (!list[i].handshake &&
		     (list[i].may_read ? finished(list[i].fd)
				       : !list[i].conn && (!list[i].wait_fin || peer_closed(list[i].fd))))) {
			drop(i, 1);
		} else if (now > list[i].deadline) {
			if (list[i].conn)
				conn_log_undelivered(list[i].conn, "the peer took none of it for too long");
			drop(i, 1);
		}
	}
	pthread_mutex_unlock(&linger_lock);
	shim_guard--;
}

void linger_forget(int fd)
{
	int i;

	if (atomic_load_explicit(&n_lingering, memory_order_relaxed) == 0)
		return;
	shim_guard++;
	pthread_mutex_lock(&linger_lock);
	for (i = atomic_load(&n_lingering) - 1; i >= 0; i--)
		if (list[i].fd == fd)
			drop(i, 0);
	pthread_mutex_unlock(&linger_lock);
	shim_guard--;
}

void linger_forget_range(unsigned first, unsigned last)
{
	int i;

	if (atomic_load_explicit(&n_lingering, memory_order_relaxed) == 0)
		return;
	shim_guard++;
	pthread_mutex_lock(&linger_lock);
	for (i = atomic_load(&n_lingering) - 1; i >= 0; i--)
		if ((unsigned)list[i].fd >= first && (unsigned)list[i].fd <= last)
			drop(i, 0);
	pthread_mutex_unlock(&linger_lock);
	shim_guard--;
}

void linger_wait_all(int max_ms)
{
	struct pollfd pfds[LINGER_MAX];
	long long deadline = now_ns() + max_ms * 1000000LL, left;
	bool busy;
	int i, n, wait_ms;

	if (atomic_load(&n_lingering) == 0 || !real.poll)
		return;
	shim_guard++;
	for (;;) {
		linger_service();
		pthread_mutex_lock(&linger_lock);
		n = atomic_load(&n_lingering);
		busy = false;
		for (i = 0; i < n; i++) {
			pfds[i].fd = list[i].fd;
			pfds[i].events = (list[i].may_read ? POLLIN : list[i].wait_fin ? POLLRDHUP : 0) |
					 (list[i].conn && !list[i].busy ? POLLOUT : 0);
			if (list[i].handshake) /* what the handshake waits for, only */
				pfds[i].events = atomic_load(&list[i].conn->hs_events);
			pfds[i].revents = 0;
			busy = busy || list[i].busy;
		}
		pthread_mutex_unlock(&linger_lock);
		left = deadline - now_ns();
		if (n == 0 || left <= 0)
			break;
		wait_ms = (int)(left / 1000000) + 1;
		if (busy && wait_ms > 10)
			wait_ms = 10; /* another thread holds a writer: look again soon */
		real.poll(pfds, (nfds_t)n, wait_ms);
	}
	/* Out of time: say what did not go. */
	pthread_mutex_lock(&linger_lock);
	for (i = atomic_load(&n_lingering) - 1; i >= 0; i--)
		if (list[i].conn)
			conn_log_undelivered(list[i].conn, "the process ended before the peer took it");
	pthread_mutex_unlock(&linger_lock);
	shim_guard--;
}

/* fdtab_foreach: the open connections this process owns or holds (owner.h:
 * the last holder ends what nobody claimed since a fork), once each. */
struct exit_collect {
	struct conn *conns[LINGER_MAX];
	int n;
};

static void collect(int fd, struct conn *conn, void *arg)
{
	struct exit_collect *c = arg;
	int i;

	(void)fd;
	if (c->n == LINGER_MAX || (!conn_owns_send(conn) && !conn_owns_recv(conn) && !conn->holding))
		return;
	for (i = 0; i < c->n; i++)
		if (c->conns[i] == conn)
			return;
	conn_ref(conn);
	c->conns[c->n++] = conn;
}

void linger_at_exit(int max_ms)
{
	static struct exit_collect c; /* big: not on the stack of a dying thread */
	int i;

	if (!atomic_load(&real_ready) || (!fdtab_any() && atomic_load(&n_lingering) == 0))
		return;
	/* A vfork child shares our memory, sessions included (and getpid
	 * is not the pid our tables were made in): nothing of this is its. */
	if ((pid_t)syscall(SYS_getpid) != owner_pid())
		return;
	shim_guard++;
	c.n = 0;
	if (fdtab_any() && !fdtab_foreach_try(collect, &c)) {
		/* Another thread is in the registry for a moment, or this
		 * one is (a signal handler calling _exit): wait a little. */
		struct timespec ms = { 0, 1000000 };
		int tries = 200;

		while (tries-- > 0 && !fdtab_foreach_try(collect, &c))
			nanosleep(&ms, NULL);
	}
	for (i = 0; i < c.n; i++) {
		struct conn *conn = c.conns[i];

		/* Its socket was closed behind our back (syscall(SYS_close),
		 * as libuv does), the number maybe reused since: nothing of
		 * ours may go to that number. */
		if (!conn_is_socket(conn, atomic_load(&conn->fd))) {
			conn_unref(conn);
			continue;
		}
		switch (conn_closing(conn)) {
		case CONN_CLOSE_NOW:
			conn_unref(conn);
			break;
		case CONN_CLOSE_LINGER:
			real.shutdown(conn->fd, SHUT_WR);
			pthread_mutex_lock(&linger_lock);
			add_locked(conn->fd, NULL, false, false);
			pthread_mutex_unlock(&linger_lock);
			conn_unref(conn);
			break;
		case CONN_CLOSE_WAIT:
			real.shutdown(conn->fd, SHUT_WR);
			pthread_mutex_lock(&linger_lock);
			add_locked(conn->fd, NULL, false, true);
			pthread_mutex_unlock(&linger_lock);
			conn_unref(conn);
			break;
		case CONN_CLOSE_OUTPUT:
			pthread_mutex_lock(&linger_lock);
			add_locked(conn->fd, conn, false, false); /* takes the reference */
			pthread_mutex_unlock(&linger_lock);
			break;
		}
	}
	linger_wait_all(max_ms);
	shim_guard--;
}

void linger_forked_child(void)
{
	int i, n = atomic_load(&n_lingering);

	/* The parent still waits for these peers: close our copies only
	 * (the connections they hold are the parent's: never pushed here). */
	for (i = 0; i < n; i++)
		if (list[i].own_fd)
			real.close(list[i].fd);
	atomic_store(&n_lingering, 0);
}

int linger_fds(int *out, int max)
{
	int i, n, k = 0;

	shim_guard++;
	pthread_mutex_lock(&linger_lock);
	n = atomic_load(&n_lingering);
	for (i = 0; i < n && k < max; i++)
		if (list[i].own_fd)
			out[k++] = list[i].fd;
	pthread_mutex_unlock(&linger_lock);
	shim_guard--;
	return k;
}
