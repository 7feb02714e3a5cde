/* conn.c - the connection state machine over tls.h. */
#include "conn.h"
#include "cache.h"
#include "log.h"
#include "real.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define RBUF_SIZE 16384 /* one record of plaintext */

atomic_uint shim_generation;

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct conn *conn_new(const struct conn_params *params, char *err, size_t errlen)
{
	struct conn *conn = calloc(1, sizeof *conn);
	struct tls_params tp;
	struct stat st;
	void *ticket = NULL;
	size_t ticket_len = 0;
	int ret;

	if (!conn) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&conn->refs, 1);
	pthread_mutex_init(&conn->rlock, NULL);
	pthread_mutex_init(&conn->wlock, NULL);
	atomic_init(&conn->state, CONN_CONNECTING);
	conn->fd = params->fd;
	if (fstat(params->fd, &st) == 0) {
		conn->sock_dev = st.st_dev;
		conn->sock_ino = st.st_ino;
	}
	conn->generation = atomic_load(&shim_generation);
	conn->rule = params->rule;
	conn->dest = dup_or_null(params->dest);
	conn->app_dest = dup_or_null(params->app_dest);
	conn->server_name = dup_or_null(params->verify_name);
	conn->cache_key = dup_or_null(params->cache_key);

	if (conn->cache_key)
		ticket = cache_take(conn->cache_key, &ticket_len);
	memset(&tp, 0, sizeof tp);
	tp.rule = params->rule;
	tp.fd = params->fd;
	tp.sni = params->sni;
	tp.verify_name = params->verify_name;
	tp.ticket = ticket;
	tp.ticket_len = ticket_len;
	ret = tls_open(&conn->tls, &tp, err, errlen);
	free(ticket);
	if (ret < 0) {
		conn_unref(conn);
		return NULL;
	}
	return conn;
}

void conn_ref(struct conn *conn)
{
	atomic_fetch_add(&conn->refs, 1);
}

void conn_unref(struct conn *conn)
{
	if (!conn || atomic_fetch_sub(&conn->refs, 1) != 1)
		return;
	tls_free(conn->tls);
	free(conn->dest);
	free(conn->app_dest);
	free(conn->server_name);
	free(conn->cache_key);
	free(conn->rbuf);
	if (!conn_foreign(conn)) {
		pthread_mutex_destroy(&conn->rlock);
		pthread_mutex_destroy(&conn->wlock);
	}
	free(conn);
}

bool conn_is_socket(const struct conn *conn, int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (unsigned long long)st.st_ino == conn->sock_ino &&
	       (unsigned long long)st.st_dev == conn->sock_dev;
}

bool conn_foreign(const struct conn *conn)
{
	return conn->generation != atomic_load_explicit(&shim_generation, memory_order_relaxed);
}

/* I/O by a forked child on its parent's connection: refused, said once. */
static ssize_t refuse_foreign(struct conn *conn)
{
	if (!conn->foreign_logged) {
		conn->foreign_logged = true;
		log_error("rule [%s] %s -> %s: connection inherited across fork belongs to the parent "
			  "process: I/O refused (EIO)", conn->rule->name, conn->app_dest, conn->dest);
	}
	return -EIO;
}

void conn_set_fd(struct conn *conn, int fd)
{
	conn->fd = fd;
	tls_set_fd(conn->tls, fd);
}

static enum conn_state state_of(struct conn *conn)
{
	return atomic_load(&conn->state);
}

static const char *rule_name(struct conn *conn)
{
	return conn->rule->name;
}

/* Enter FAILED (both locks or the only reference held).  ERROR is what
 * later I/O returns. */
static void fail(struct conn *conn, int error, int so_error)
{
	if (state_of(conn) == CONN_FAILED)
		return;
	conn->error = error;
	conn->so_error = so_error;
	atomic_store(&conn->state, CONN_FAILED);
	/* Nothing more may cross this socket, in either direction. */
	real.shutdown(conn->fd, SHUT_RDWR);
}

static void save_ticket(struct conn *conn)
{
	size_t len = 0;
	void *ticket = tls_take_ticket(conn->tls, &len);

	if (!ticket)
		return;
	if (conn->cache_key) {
		log_debug("rule [%s] %s: session ticket stored (%zu bytes)", rule_name(conn), conn->dest, len);
		cache_put(conn->cache_key, ticket, len);
	} else {
		free(ticket);
	}
}

static void log_open(struct conn *conn)
{
	char desc[256];

	if (!log_enabled(POLICY_LEVEL_INFO))
		return;
	tls_describe(conn->tls, desc, sizeof desc);
	log_info("rule [%s] %s -> %s: server-name=%s verified %s resumed=%s", rule_name(conn),
		 conn->app_dest, conn->dest, conn->server_name ? conn->server_name : "-(pin only)", desc,
		 tls_resumed(conn->tls) ? "yes" : "no");
}

/* One step of TCP completion + handshake.  Both locks held.  Return 0 when
 * OPEN, -EAGAIN, or a negative errno (then FAILED). */
static int step_locked(struct conn *conn, bool nonblock)
{
	int ret, err;
	socklen_t len = sizeof err;

	if (state_of(conn) == CONN_CONNECTING) {
		struct pollfd pfd = { .fd = conn->fd, .events = POLLOUT };

		ret = real.poll(&pfd, 1, nonblock ? 0 : -1);
		if (ret == 0)
			return -EAGAIN;
		if (ret < 0)
			return -errno;
		if (real.getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			log_error("rule [%s] %s -> %s: connect failed: %s", rule_name(conn), conn->app_dest,
				  conn->dest, strerror(err));
			fail(conn, err, err);
			return -err;
		}
		atomic_store(&conn->state, CONN_HANDSHAKING);
	}
	if (state_of(conn) == CONN_HANDSHAKING) {
		tls_set_nonblock(conn->tls, nonblock);
		ret = tls_handshake(conn->tls);
		tls_set_nonblock(conn->tls, false);
		if (ret == -EAGAIN || ret == -EINTR)
			return ret;
		if (ret < 0) {
			log_error("rule [%s] %s -> %s: TLS handshake failed%s%s: %s", rule_name(conn),
				  conn->app_dest, conn->dest, conn->server_name ? " with " : "",
				  conn->server_name ? conn->server_name : "", tls_reason(conn->tls));
			fail(conn, ret == -EPROTO ? EPROTO : ECONNRESET, ECONNREFUSED);
			return -ECONNREFUSED;
		}
		atomic_store(&conn->state, CONN_OPEN);
		log_open(conn);
	}
	if (state_of(conn) == CONN_FAILED)
		return -conn->error;
	return 0;
}

/* Make sure the handshake is done before data moves.  Takes both locks. */
static int ensure_open(struct conn *conn, bool nonblock)
{
	int ret;

	if (state_of(conn) == CONN_OPEN)
		return 0;
	if (state_of(conn) == CONN_FAILED)
		return -conn->error;
	pthread_mutex_lock(&conn->rlock);
	pthread_mutex_lock(&conn->wlock);
	ret = step_locked(conn, nonblock);
	pthread_mutex_unlock(&conn->wlock);
	pthread_mutex_unlock(&conn->rlock);
	if (ret == -ECONNREFUSED)
		ret = -conn->error;
	return ret;
}

static bool socket_nonblocking(int fd)
{
	int fl = real.fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
}

int conn_start(struct conn *conn, bool in_progress)
{
	int ret;

	if (in_progress)
		return 0;
	atomic_store(&conn->state, CONN_HANDSHAKING);
	if (socket_nonblocking(conn->fd))
		return 0; /* the handshake advances from the program's own calls */
	pthread_mutex_lock(&conn->rlock);
	pthread_mutex_lock(&conn->wlock);
	do
		ret = step_locked(conn, false);
	while (ret == -EINTR);
	pthread_mutex_unlock(&conn->wlock);
	pthread_mutex_unlock(&conn->rlock);
	return ret;
}

/* A fatal read error: remember it, say why. */
static ssize_t read_failed(struct conn *conn, ssize_t ret)
{
	log_error("rule [%s] %s -> %s: %s", rule_name(conn), conn->app_dest, conn->dest,
		  tls_reason(conn->tls));
	fail(conn, (int)-ret, (int)-ret);
	return ret;
}

/* Read one record into the plaintext buffer.  rlock held. */
static ssize_t fill_rbuf(struct conn *conn, bool nonblock)
{
	ssize_t ret;

	if (!conn->rbuf && !(conn->rbuf = malloc(RBUF_SIZE)))
		return -ENOMEM;
	if (conn->roff > 0 && conn->rlen > 0)
		memmove(conn->rbuf, conn->rbuf + conn->roff, conn->rlen);
	conn->roff = 0;
	if (conn->rlen >= RBUF_SIZE)
		return conn->rlen;
	tls_set_read_nonblock(conn->tls, nonblock);
	ret = tls_recv(conn->tls, conn->rbuf + conn->rlen, RBUF_SIZE - conn->rlen);
	tls_set_read_nonblock(conn->tls, false);
	save_ticket(conn);
	if (ret > 0) {
		conn->rlen += ret;
		atomic_fetch_add(&conn->rgen, 1);
	} else if (ret == 0) {
		conn->eof = true;
		atomic_fetch_add(&conn->rgen, 1);
	} else if (ret != -EAGAIN && ret != -EINTR) {
		read_failed(conn, ret);
		atomic_fetch_add(&conn->rgen, 1);
	}
	return ret;
}

static size_t take_rbuf(struct conn *conn, void *buf, size_t len, bool peek)
{
	size_t n = len < conn->rlen ? len : conn->rlen;

	memcpy(buf, conn->rbuf + conn->roff, n);
	if (!peek) {
		conn->roff += n;
		conn->rlen -= n;
		if (conn->rlen == 0)
			conn->roff = 0;
	}
	return n;
}

ssize_t conn_recv(struct conn *conn, void *buf, size_t len, int flags)
{
	bool dontwait = flags & MSG_DONTWAIT, peek = flags & MSG_PEEK;
	size_t done = 0;
	ssize_t ret;

	if (conn_foreign(conn))
		return refuse_foreign(conn);
	ret = ensure_open(conn, dontwait);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&conn->rlock);
	if (state_of(conn) == CONN_FAILED && conn->rlen == 0) {
		ret = -conn->error;
		goto out;
	}
	for (;;) {
		if (conn->rlen > 0) {
			done += take_rbuf(conn, (char *)buf + done, len - done, peek);
		} else if (conn->eof || len == done) {
			break;
		} else if (peek) {
			ret = fill_rbuf(conn, dontwait);
			if (ret < 0 && ret != -EAGAIN && ret != -EINTR)
				break;
			if (ret < 0)
				break;
			continue;
		} else {
			tls_set_read_nonblock(conn->tls, dontwait);
			ret = tls_recv(conn->tls, (char *)buf + done, len - done);
			tls_set_read_nonblock(conn->tls, false);
			save_ticket(conn);
			if (ret > 0) {
				done += ret;
			} else if (ret == 0) {
				conn->eof = true;
				break;
			} else {
				if (ret != -EAGAIN && ret != -EINTR)
					read_failed(conn, ret);
				break;
			}
		}
		/* MSG_WAITALL keeps reading; otherwise one piece is enough. */
		if (!(flags & MSG_WAITALL) || peek || done == len)
			break;
	}
	if (done > 0)
		ret = done;
	else if (conn->eof)
		ret = 0;
	else if (state_of(conn) == CONN_FAILED)
		ret = -conn->error;
out:
	pthread_mutex_unlock(&conn->rlock);
	return ret;
}

/* After a send error the reason is often an alert waiting to be read (e.g.
 * certificate_required, which TLS 1.3 delivers after our handshake). */
static void capture_alert(struct conn *conn)
{
	unsigned char scratch[512];

	if (pthread_mutex_trylock(&conn->rlock) != 0)
		return;
	tls_set_read_nonblock(conn->tls, true);
	(void)tls_recv(conn->tls, scratch, sizeof scratch);
	tls_set_read_nonblock(conn->tls, false);
	pthread_mutex_unlock(&conn->rlock);
}

ssize_t conn_send(struct conn *conn, const void *buf, size_t len, int flags)
{
	bool dontwait = flags & MSG_DONTWAIT;
	ssize_t ret;

	if (conn_foreign(conn))
		return refuse_foreign(conn);
	ret = ensure_open(conn, dontwait);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&conn->wlock);
	if (state_of(conn) == CONN_FAILED) {
		ret = -conn->error;
	} else if (conn->shut_wr) {
		ret = -EPIPE;
	} else {
		tls_set_write_nonblock(conn->tls, dontwait);
		ret = tls_send(conn->tls, buf, len);
		tls_set_write_nonblock(conn->tls, false);
		if (ret < 0 && ret != -EAGAIN && ret != -EINTR) {
			capture_alert(conn);
			log_error("rule [%s] %s -> %s: write failed: %s", rule_name(conn), conn->app_dest,
				  conn->dest, tls_reason(conn->tls));
			fail(conn, (int)-ret, (int)-ret);
		}
	}
	pthread_mutex_unlock(&conn->wlock);
	return ret;
}

unsigned conn_read_generation(struct conn *conn)
{
	return atomic_load(&conn->rgen);
}

short conn_poll_prepare(struct conn *conn, short want, short *ready)
{
	short kernel = 0;

	*ready = 0;
	if (conn_foreign(conn)) {
		*ready = POLLERR | (want & (POLLIN | POLLOUT));
		return 0;
	}
	switch (state_of(conn)) {
	case CONN_CONNECTING:
		return POLLOUT;
	case CONN_HANDSHAKING:
		return tls_wants_read(conn->tls) ? POLLIN : POLLOUT;
	case CONN_FAILED:
		*ready = POLLERR | POLLHUP | (want & (POLLIN | POLLOUT));
		return 0;
	case CONN_OPEN:
		break;
	}
	if (want & POLLIN) {
		if (conn->rlen > 0 || conn->eof || tls_pending(conn->tls) > 0)
			*ready |= POLLIN;
		if (conn->rlen < RBUF_SIZE)
			kernel |= POLLIN;
	}
	if (tls_flush_pending(conn->tls) || (want & POLLOUT))
		kernel |= POLLOUT;
	kernel |= want & (POLLPRI | POLLRDHUP);
	return kernel;
}

/* Advance the handshake without blocking, if no other thread is in it. */
static void try_step(struct conn *conn)
{
	if (pthread_mutex_trylock(&conn->rlock) != 0)
		return;
	if (pthread_mutex_trylock(&conn->wlock) == 0) {
		(void)step_locked(conn, true);
		pthread_mutex_unlock(&conn->wlock);
	}
	pthread_mutex_unlock(&conn->rlock);
}

short conn_poll_result(struct conn *conn, short want, short krevents)
{
	enum conn_state before = state_of(conn);
	bool just_opened;
	short out = 0;

	if (conn_foreign(conn))
		return POLLERR | (want & (POLLIN | POLLOUT));
	if ((before == CONN_CONNECTING || before == CONN_HANDSHAKING) && krevents)
		try_step(conn);
	just_opened = before != CONN_OPEN && state_of(conn) == CONN_OPEN;
	switch (state_of(conn)) {
	case CONN_CONNECTING:
	case CONN_HANDSHAKING:
		return 0;
	case CONN_FAILED:
		return POLLERR | POLLHUP | (want & (POLLIN | POLLOUT));
	case CONN_OPEN:
		break;
	}
	if (tls_flush_pending(conn->tls) && (krevents & POLLOUT) &&
	    pthread_mutex_trylock(&conn->wlock) == 0) {
		tls_set_write_nonblock(conn->tls, true);
		(void)tls_flush(conn->tls);
		tls_set_write_nonblock(conn->tls, false);
		pthread_mutex_unlock(&conn->wlock);
	}
	if ((want & POLLOUT) && !tls_flush_pending(conn->tls) && ((krevents & POLLOUT) || just_opened))
		out |= POLLOUT;
	if (want & (POLLIN | POLLRDHUP)) {
		if (conn->rlen == 0 && !conn->eof && tls_pending(conn->tls) == 0 &&
		    (krevents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP))) {
			if (pthread_mutex_trylock(&conn->rlock) == 0) {
				(void)fill_rbuf(conn, true);
				pthread_mutex_unlock(&conn->rlock);
			} else {
				out |= krevents & POLLIN; /* another thread is reading */
			}
		}
		if (conn->rlen > 0 || conn->eof || tls_pending(conn->tls) > 0 ||
		    state_of(conn) == CONN_FAILED)
			out |= want & POLLIN;
		if ((krevents & POLLRDHUP) && conn->rlen == 0 && tls_pending(conn->tls) == 0)
			out |= want & POLLRDHUP;
	}
	if (state_of(conn) == CONN_FAILED)
		out |= POLLERR | (want & (POLLIN | POLLOUT));
	if ((krevents & POLLHUP) && (conn->eof || state_of(conn) == CONN_FAILED))
		out |= POLLHUP;
	out |= krevents & want & POLLPRI;
	return out;
}

int conn_shutdown(struct conn *conn, int how)
{
	if (conn_foreign(conn))
		return -EIO;
	if ((how == SHUT_WR || how == SHUT_RDWR) && state_of(conn) == CONN_OPEN) {
		pthread_mutex_lock(&conn->wlock);
		if (!conn->shut_wr) {
			(void)tls_bye(conn->tls);
			conn->shut_wr = true;
		}
		pthread_mutex_unlock(&conn->wlock);
	}
	return 0;
}

void conn_closing(struct conn *conn)
{
	if (conn_foreign(conn) || state_of(conn) != CONN_OPEN)
		return;
	/* close_notify when it goes out without blocking the program. */
	if (pthread_mutex_trylock(&conn->wlock) != 0)
		return;
	if (!conn->shut_wr) {
		tls_set_write_nonblock(conn->tls, true);
		(void)tls_bye(conn->tls);
		tls_set_write_nonblock(conn->tls, false);
		conn->shut_wr = true;
	}
	pthread_mutex_unlock(&conn->wlock);
}

int conn_take_so_error(struct conn *conn)
{
	int err = conn->so_error;

	conn->so_error = 0;
	return err;
}

size_t conn_readable(struct conn *conn)
{
	if (state_of(conn) != CONN_OPEN)
		return 0;
	return conn->rlen + tls_pending(conn->tls);
}
