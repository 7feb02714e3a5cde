/* conn.c - the connection state machine over tls.h. */
#include "conn.h"
#include "sniff.h"
#include "clock.h"
#include "fdtab.h"
#include "cache.h"
#include "log.h"
#include "ownfd.h"
#include "owner.h"
#include "real.h"
#include "tls.h"

#include <errno.h>
#include <signal.h>
#include <sched.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define RBUF_SIZE 16384 /* one record of plaintext */
/* 0-RTT: how long a program that only waits may take to write first. */
#define EARLY_GRACE_NS (50 * 1000000LL)
/* rekey-after: at most four KeyUpdates a second. */
#define REKEY_MIN_NS (250 * 1000000LL)
/* 0-RTT from a vector of buffers: at most this much is gathered. */
#define EARLY_GATHER_MAX 65536


static bool mine(struct conn *conn, enum owner_dir dir);
static bool may_push(void *arg);
static void peer_update_request(void *arg);
static void write_unlock(struct conn *conn, enum tls_io io);
static bool flush_hint(struct conn *conn);
static void fin_if_flushed(struct conn *conn);
static int push_final_locked(struct conn *conn, enum tls_io io);
static int handshake_step(struct conn *conn, bool nonblock);
static int handshake_timed_out(struct conn *conn);

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* The engine's mode for a call that must not (may) wait. */
static enum tls_io io_mode(bool nonblock)
{
	return nonblock ? TLS_NONBLOCKING : TLS_BLOCKING;
}

/* An engine result in this file's terms: the engine's "would block"
 * (either direction) is -EAGAIN; counts and errnos stay. */
static ssize_t as_errno(ssize_t ret)
{
	return ret == TLS_WANT_POLLIN || ret == TLS_WANT_POLLOUT ? -EAGAIN : ret;
}

/* After as_errno: does RET end the connection (neither "would block" nor
 * a signal)? */
static bool broken(ssize_t ret)
{
	return ret < 0 && ret != -EAGAIN && ret != -EINTR;
}

/* A blocking call of ours that the program sees as one recv(2)/send(2)
 * was interrupted by a signal: would the kernel have restarted it?  Only
 * if the handler had SA_RESTART; a wait we do in poll() (never restarted)
 * or in GnuTLS cannot tell which signal came, so: true only if every
 * handler of this process has SA_RESTART (then the call goes on), else
 * false (the program gets EINTR, nothing of its call having been taken).
 * Costs NSIG sigaction() queries, only after a signal. */
static bool restart_after_signal(void)
{
	struct sigaction sa;
	int sig;

	for (sig = 1; sig < NSIG; sig++) {
		/* Fault signals come from the faulting instruction, never
		 * during a wait: crash handlers (sanitizers, crash reporters)
		 * install them without SA_RESTART, and must not count. */
		if (sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS || sig == SIGILL ||
		    sig == SIGFPE || sig == SIGTRAP || sig == SIGSYS || sigaction(sig, NULL, &sa) < 0)
			continue;
		if (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN && !(sa.sa_flags & SA_RESTART))
			return false;
	}
	return true;
}

/* What every session of CONN gets (PARAMS), whatever its role. */
static void tls_params_for(struct conn *conn, const struct conn_params *params, struct tls_params *common)
{
	common->rule = params->rule;
	common->fd = params->fd;
	common->keylog_write = ownfd_get(OWNFD_KEYLOG) >= 0 ? ownfd_keylog_write : NULL;
	common->guard_arg = conn;
	common->may_push = may_push;
	common->update_requested = peer_update_request;
}

/* The client session of CONN (PARAMS): a ticket from the cache, 0-RTT if
 * it allows.  0 or a negative errno with ERR filled. */
static int new_client_tls(struct conn *conn, const struct conn_params *params, char *err, size_t errlen)
{
	struct tls_client_params tp;
	void *ticket = NULL;
	size_t ticket_len = 0;
	uint32_t early_max = 0;
	int ret;

	if (conn->cache_key)
		ticket = cache_take(conn->cache_key, &ticket_len, &early_max);
	/* 0-RTT only with a ticket that allows it (GnuTLS 3.7 would try
	 * with any): the handshake then waits for the program's first write. */
	conn->early_pending = params->rule->early_data && ticket && early_max > 0;
	memset(&tp, 0, sizeof tp);
	tls_params_for(conn, params, &tp.common);
	tp.sni = params->sni;
	tp.verify_name = params->verify_name;
	tp.ticket = ticket;
	tp.ticket_len = ticket_len;
	tp.early_data = conn->early_pending;
	ret = tls_new_client(&conn->tls, &tp, err, errlen);
	free(ticket);
	return ret;
}

/* The server session of CONN (PARAMS).  0 or a negative errno with ERR. */
static int new_server_tls(struct conn *conn, const struct conn_params *params, char *err, size_t errlen)
{
	struct tls_server_params tp;

	memset(&tp, 0, sizeof tp);
	tls_params_for(conn, params, &tp.common);
	tp.ticket_key = params->ticket_key;
	tp.peer = params->app_dest;
	return tls_new_server(&conn->tls, &tp, err, errlen);
}

/* A client rule with a protocol or a proxy: the in-band exchange to run
 * before TLS (conn->ib) and the log's words for it.  0 or -ENOMEM. */
static int inband_new(struct conn *conn, const struct conn_params *params, char *err, size_t errlen)
{
	enum policy_protocol proto = conn->rule->protocol;
	char via[400];

	if (proto == POLICY_PROTOCOL_TLS && !params->proxy_target)
		return 0;
	conn->ib = malloc(sizeof *conn->ib);
	snprintf(via, sizeof via, "%s%s%s%s", proto != POLICY_PROTOCOL_TLS ? " protocol=" : "",
		 proto != POLICY_PROTOCOL_TLS ? inband_proto_name(proto) : "",
		 params->proxy_target ? " proxy=" : "", params->proxy_addr ? params->proxy_addr : "");
	conn->via = strdup(via);
	conn->proxy_addr = dup_or_null(params->proxy_addr);
	if (!conn->ib || !conn->via || (params->proxy_addr && !conn->proxy_addr)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* EHLO localhost, as stunnel says: the program's own EHLO follows
	 * inside TLS, and the host's name does not go out in clear. */
	inband_init(conn->ib, proto, params->proxy_target, conn->rule->proxy_auth, "localhost");
	conn->pg_filter = proto == POLICY_PROTOCOL_POSTGRES;
	return 0;
}

struct conn *conn_new(const struct conn_params *params, char *err, size_t errlen)
{
	struct conn *conn = calloc(1, sizeof *conn);
	struct stat st;
	int ret;

	if (!conn) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&conn->refs, 1);
	pthread_mutex_init(&conn->rlock, NULL);
	pthread_mutex_init(&conn->wlock, NULL);
	atomic_init(&conn->state, params->server ? CONN_HANDSHAKING : CONN_CONNECTING);
	atomic_init(&conn->hs_events, POLLIN); /* what a session that has not begun waits for */
	atomic_init(&conn->fd, params->fd);
	if (fstat(params->fd, &st) == 0) {
		conn->sock_dev = st.st_dev;
		conn->sock_ino = st.st_ino;
	}
	conn->owner = owner_new(&conn->owner_private, &conn->owner_gen);
	if (!conn->owner) {
		snprintf(err, errlen, "out of memory");
		free(conn);
		return NULL;
	}
	conn->holding = true;
	conn->server = params->server;
	conn->rule = params->rule;
	conn->dest = dup_or_null(params->dest);
	conn->app_dest = dup_or_null(params->app_dest);
	conn->server_name = dup_or_null(params->verify_name);
	conn->cache_key = dup_or_null(params->cache_key);
	ret = conn->server ? new_server_tls(conn, params, err, errlen) : new_client_tls(conn, params, err, errlen);
	if (ret == 0 && !conn->server)
		ret = inband_new(conn, params, err, errlen);
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
	free(conn->early_buf);
	free(conn->ib);
	free(conn->greet);
	free(conn->via);
	free(conn->proxy_addr);
	if (mine(conn, OWNER_SEND) || mine(conn, OWNER_RECV)) {
		pthread_mutex_destroy(&conn->rlock);
		pthread_mutex_destroy(&conn->wlock);
	}
	owner_delete(conn->owner, conn->owner_private, conn->owner_gen);
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
	return owner_state(conn->owner, OWNER_SEND) == OWNER_OTHER ||
	       owner_state(conn->owner, OWNER_RECV) == OWNER_OTHER;
}

bool conn_claim(struct conn *conn)
{
	/* Both, even if the first is refused: say so for both. */
	bool recv;

	if (conn->busy_at_fork)
		return false;
	recv = owner_claim(conn->owner, OWNER_RECV);
	return owner_claim(conn->owner, OWNER_SEND) && recv;
}

bool conn_owns_send(const struct conn *conn)
{
	return owner_state(conn->owner, OWNER_SEND) == OWNER_SELF;
}

bool conn_owns_recv(const struct conn *conn)
{
	return owner_state(conn->owner, OWNER_RECV) == OWNER_SELF;
}

bool conn_recv_unowned(const struct conn *conn)
{
	return owner_state(conn->owner, OWNER_RECV) == OWNER_NONE;
}

/* Release a direction only if no thread is inside it: a thread that holds
 * its lock may have checked ownership already (owner.h, point 4).  A busy
 * direction stays with this process. */
void conn_release_for_fork(struct conn *conn)
{
	if (pthread_mutex_trylock(&conn->rlock) == 0) {
		owner_release(conn->owner, OWNER_RECV);
		pthread_mutex_unlock(&conn->rlock);
	}
	if (pthread_mutex_trylock(&conn->wlock) == 0) {
		owner_release(conn->owner, OWNER_SEND);
		pthread_mutex_unlock(&conn->wlock);
	}
}

/* The parent's threads are gone: a lock one of them held would stay locked
 * in this copy for ever.  Such a thread was in the middle of a read, a write
 * or the handshake, which goes on in the parent: the session state copied
 * here is a snapshot of that work, and a write from here could reuse the
 * parent's nonces.  So the child never claims it. */
void conn_forked_child(struct conn *conn)
{
	bool busy = false;

	/* A lock taken here is let go again before it is made anew: a lock
	 * is never re-initialised (nor, later, destroyed) while held. */
	if (pthread_mutex_trylock(&conn->rlock) != 0)
		busy = true;
	else
		pthread_mutex_unlock(&conn->rlock);
	if (pthread_mutex_trylock(&conn->wlock) != 0)
		busy = true;
	else
		pthread_mutex_unlock(&conn->wlock);
	pthread_mutex_init(&conn->rlock, NULL);
	pthread_mutex_init(&conn->wlock, NULL);
	/* Poll or epoll calls of the parent's other threads do not exist
	 * here: they would never end, and every close() would wait 2 s for
	 * them (conn_wait_unused). */
	atomic_store(&conn->users, 0);
	if (busy)
		conn->busy_at_fork = true;
}

void conn_hold_for_fork(struct conn *conn, unsigned fork_serial)
{
	if (!conn->holding || conn->hold_fork == fork_serial)
		return;
	conn->hold_fork = fork_serial;
	owner_hold(conn->owner);
}

void conn_not_holding(struct conn *conn)
{
	conn->holding = false;
}

void conn_exec_let_go(struct conn *conn)
{
	if (!conn->holding || conn->exec_let_go)
		return;
	conn->exec_let_go = true;
	owner_let_go(conn->owner);
}

void conn_exec_failed(struct conn *conn)
{
	if (!conn->exec_let_go)
		return;
	conn->exec_let_go = false;
	owner_hold(conn->owner);
}

static bool own(struct conn *conn, enum owner_dir dir);

/* This process lets go of the connection (its last descriptor closes, or
 * it exits).  If no other process holds it, a direction nobody claimed
 * since the fork is ours now: its state here is the one the releasing
 * process left (owner.h, point 4), and nobody else will ever end it.  A
 * direction another process used stays with it (point 6). */
static void let_go(struct conn *conn)
{
	if (!conn->holding)
		return;
	conn->holding = false;
	if (conn->exec_let_go)
		return; /* let go already, for an exec that failed and closes now */
	if (!owner_let_go(conn->owner))
		return;
	own(conn, OWNER_RECV);
	own(conn, OWNER_SEND);
}

/* With the direction's lock held (or before taking it): true if DIR is
 * ours, claimed now if it was unowned. */
static bool own(struct conn *conn, enum owner_dir dir)
{
	return !conn->busy_at_fork && owner_claim(conn->owner, dir);
}

static bool mine(struct conn *conn, enum owner_dir dir)
{
	return owner_state(conn->owner, dir) == OWNER_SELF;
}

/* I/O on a direction another process owns since fork: refused, said once. */
static ssize_t refuse_foreign(struct conn *conn, enum owner_dir dir)
{
	pid_t pid = owner_pid_of(conn->owner, dir);
	bool gone;

	if (!conn->foreign_logged[dir] && conn->busy_at_fork) {
		conn->foreign_logged[dir] = true;
		log_error("rule [%s] %s -> %s: another thread of the parent process was using this connection "
			  "when it forked: the parent keeps it, I/O refused in the child (EIO)",
			  conn->rule->name, conn->app_dest, conn->dest);
	} else if (!conn->foreign_logged[dir]) {
		conn->foreign_logged[dir] = true;
		gone = pid > 0 && kill(pid, 0) < 0 && errno == ESRCH;
		log_error("rule [%s] %s -> %s: since fork() another process (pid %d) uses this connection for "
			  "%s%s: %s refused here (EIO)%s", conn->rule->name, conn->app_dest, conn->dest, pid,
			  dir == OWNER_SEND ? "writing" : "reading", gone ? ", and has exited" : "",
			  dir == OWNER_SEND ? "writing" : "reading",
			  gone ? "; a direction never moves to another process: its TLS state here is stale" : "");
	}
	return -EIO;
}

/* The TLS engine is about to write: only the send owner's bytes go out
 * (GnuTLS answers a KeyUpdate request or sends an alert from inside a read). */
static bool may_push(void *arg)
{
	struct conn *conn = arg;

	if (mine(conn, OWNER_SEND))
		return true;
	if (!conn->push_refused_logged) {
		conn->push_refused_logged = true;
		log_warning("rule [%s] %s -> %s: TLS tried to send from a process that does not write to this "
			    "connection since fork(): not sent", conn->rule->name, conn->app_dest, conn->dest);
	}
	return false;
}

/* The server asked for a new sending key (KeyUpdate update_requested): if
 * another process writes, tell it; GnuTLS here answers only from its own
 * next write, which this process will never make. */
static void peer_update_request(void *arg)
{
	struct conn *conn = arg;

	if (!mine(conn, OWNER_SEND))
		atomic_store(&conn->owner->update_requested, true);
}

void conn_set_fd(struct conn *conn, int fd)
{
	atomic_store(&conn->fd, fd);
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

/* The other end, in words: "client" for a server connection. */
static const char *peer_word(const struct conn *conn)
{
	return conn->server ? "client" : "server";
}

/* Enter FAILED.  ERROR is what later I/O returns.  The caller holds rlock
 * (a read failed: read_failed, conn_kernel_error), wlock (a write failed:
 * sendv_locked, maybe_rekey, answer_update_request, push_final_locked, the
 * flush in poll), both (the handshake), or the only reference.  So a reader
 * and a writer may fail the connection at once: the first to store its
 * error wins (compare-and-swap), and the state turns FAILED only after it,
 * so whoever sees FAILED reads that error (conn_errno). */
static void fail(struct conn *conn, int error, int so_error)
{
	int none = 0;

	if (error <= 0)
		error = EIO;
	if (!atomic_compare_exchange_strong(&conn->error, &none, error))
		return; /* failed already: the first reason stays */
	atomic_store(&conn->so_error, so_error);
	atomic_store(&conn->state, CONN_FAILED);
	/* Nothing more may cross this socket, in either direction. */
	real.shutdown(conn->fd, SHUT_RDWR);
}

/* The errno of a FAILED connection, for the program's calls (lock-free). */
static int conn_errno(struct conn *conn)
{
	int err = atomic_load(&conn->error);

	return err ? err : EIO;
}

static void save_ticket(struct conn *conn)
{
	size_t len = 0;
	uint32_t early_max = 0;
	void *ticket;

	if (conn->server)
		return; /* a server issues tickets, it keeps none */
	ticket = tls_take_ticket(conn->tls, &len, &early_max);
	if (!ticket)
		return;
	if (conn->cache_key) {
		log_debug("rule [%s] %s: session ticket stored (%zu bytes, early data %s)", rule_name(conn),
			  conn->dest, len, early_max ? "allowed" : "not allowed");
		cache_put(conn->cache_key, ticket, len, early_max);
	} else {
		free(ticket);
	}
}

static void reset_deadline(struct conn *conn)
{
	unsigned ms = conn->rule->handshake_timeout_ms ? conn->rule->handshake_timeout_ms : 10000;

	atomic_store_explicit(&conn->deadline_ns, now_ns() + (long long)ms * 1000000LL, memory_order_relaxed);
}

/* Has the handshake deadline passed?  Lock-free (a hint for poll; the
 * handshake step checks it again under both locks). */
static bool deadline_passed(struct conn *conn)
{
	long long deadline = atomic_load_explicit(&conn->deadline_ns, memory_order_relaxed);

	return deadline && now_ns() > deadline;
}

static const char *early_word(struct conn *conn)
{
	if (!conn->early_sent)
		return "-";
	return tls_early_accepted(conn->tls) ? "accepted" : "rejected";
}

/* keylog: one warning for every connection whose secrets were written. */
static void warn_keylog(struct conn *conn)
{
	struct tls_info info;

	if (ownfd_get(OWNFD_KEYLOG) < 0)
		return;
	tls_get_info(conn->tls, &info);
	if (info.keylog_written)
		log_warning("rule [%s] %s -> %s: key log: this connection's secrets were written to %s "
			    "(debugging only: anyone who can read that file can decrypt the traffic)",
			    rule_name(conn), conn->app_dest, conn->dest, ownfd_keylog_path());
}

/* A server that asks for a client certificate when the rule has none: the
 * handshake still succeeds (TLS 1.3), and then the server refuses with an
 * alert, an HTTP 400 (nginx) or by dropping the connection (rsyslog). */
static void warn_cert_request(struct conn *conn)
{
	if (conn->server || conn->rule->cert || !tls_cert_requested(conn->tls))
		return;
	log_warning("rule [%s] %s -> %s: the server requested a client certificate and the rule configures "
		    "none (none was sent; a server that requires one will refuse the connection: set cert "
		    "and key in the rule)", rule_name(conn), conn->app_dest, conn->dest);
}

/* How the server's chain was checked: "checked" against the anchors now,
 * "cached" (the same chain, name and rule checked earlier in this process),
 * or "-" (a resumed session: the server sent no certificate). */
static const char *chain_word(const struct tls_info *info)
{
	if (info->resumed)
		return "-";
	return info->chain_cached ? "cached" : "checked";
}

/* The server side is open (log_open): one line at info with the client's
 * address, what it asked for and who it is. */
static void log_accepted(struct conn *conn, const struct tls_info *info)
{
	if (log_is_json()) {
		char fields[3072], e[6][300];

		log_json_escape(e[0], sizeof e[0], rule_name(conn));
		log_json_escape(e[1], sizeof e[1], info->sni);
		log_json_escape(e[2], sizeof e[2], info->alpn);
		log_json_escape(e[3], sizeof e[3], info->client_id);
		log_json_escape(e[4], sizeof e[4], info->subject);
		log_json_escape(e[5], sizeof e[5], info->issuer);
		snprintf(fields, sizeof fields,
			 "\"event\":\"accepted\",\"rule\":\"%s\",\"client\":\"%s\",\"local\":\"%s\","
			 "\"sni\":\"%s\",\"version\":\"%s\",\"cipher\":\"%s\",\"group\":\"%s\","
			 "\"alpn\":\"%s\",\"resumed\":%s,\"client_id\":\"%s\",\"client_subject\":\"%s\","
			 "\"client_issuer\":\"%s\"",
			 e[0], conn->app_dest, conn->dest, e[1], info->version, info->cipher, info->group, e[2],
			 info->resumed ? "true" : "false", e[3], e[4], e[5]);
		log_json(POLICY_LEVEL_INFO, fields);
		return;
	}
	log_info("rule [%s] %s -> %s: accepted sni=%s version=%s cipher=%s group=%s alpn=%s resumed=%s "
		 "client=%s", rule_name(conn), conn->app_dest, conn->dest, info->sni[0] ? info->sni : "-",
		 info->version, info->cipher, info->group, info->alpn[0] ? info->alpn : "-",
		 info->resumed ? "yes" : "no", info->client_id[0] ? info->client_id : "-");
}

static void log_open(struct conn *conn)
{
	struct tls_info info;

	warn_keylog(conn);
	warn_cert_request(conn);
	if (!log_enabled(POLICY_LEVEL_INFO))
		return;
	tls_get_info(conn->tls, &info);
	if (conn->server) {
		log_accepted(conn, &info);
		return;
	}
	if (log_is_json()) {
		char fields[3072], e[8][300];

		log_json_escape(e[0], sizeof e[0], rule_name(conn));
		log_json_escape(e[1], sizeof e[1], conn->server_name ? conn->server_name : "");
		log_json_escape(e[2], sizeof e[2], info.alpn);
		log_json_escape(e[3], sizeof e[3], info.subject);
		log_json_escape(e[4], sizeof e[4], info.issuer);
		log_json_escape(e[5], sizeof e[5], info.spki);
		log_json_escape(e[6], sizeof e[6], info.expiry);
		snprintf(fields, sizeof fields,
			 "\"event\":\"connected\",\"rule\":\"%s\",\"app_dest\":\"%s\",\"dest\":\"%s\","
			 "\"server_name\":\"%s\",\"verified\":true,\"version\":\"%s\",\"cipher\":\"%s\","
			 "\"group\":\"%s\",\"alpn\":\"%s\",\"resumed\":%s,\"early_data\":\"%s\","
			 "\"peer_subject\":\"%s\",\"peer_issuer\":\"%s\",\"peer_spki_sha256\":\"%s\","
			 "\"peer_expiry\":\"%s\",\"chain\":\"%s\",\"protocol\":\"%s\",\"proxy\":\"%s\"",
			 e[0], conn->app_dest, conn->dest, e[1], info.version, info.cipher, info.group, e[2],
			 info.resumed ? "true" : "false", early_word(conn), e[3], e[4], e[5], e[6],
			 chain_word(&info), inband_proto_name(conn->rule->protocol),
			 conn->proxy_addr ? conn->proxy_addr : "");
		log_json(POLICY_LEVEL_INFO, fields);
		return;
	}
	log_info("rule [%s] %s -> %s: server-name=%s verified version=%s cipher=%s group=%s alpn=%s "
		 "resumed=%s early-data=%s chain=%s%s", rule_name(conn), conn->app_dest, conn->dest,
		 conn->server_name ? conn->server_name : "-(pin only)", info.version, info.cipher, info.group,
		 info.alpn, info.resumed ? "yes" : "no", early_word(conn), chain_word(&info),
		 conn->via ? conn->via : "");
}

/* A failure, at error level (a server's: warning, a client's doing):
 * rule, destination, what failed and why. */
static void log_failure(struct conn *conn, const char *what, const char *reason)
{
	if (log_is_json()) {
		char fields[2048], e[3][600];

		log_json_escape(e[0], sizeof e[0], rule_name(conn));
		log_json_escape(e[1], sizeof e[1], conn->server_name ? conn->server_name : "");
		log_json_escape(e[2], sizeof e[2], reason);
		snprintf(fields, sizeof fields,
			 "\"event\":\"%s\",\"rule\":\"%s\",\"app_dest\":\"%s\",\"dest\":\"%s\","
			 "\"server_name\":\"%s\",\"reason\":\"%s\"",
			 what, e[0], conn->app_dest, conn->dest, e[1], e[2]);
		log_json(conn->server ? POLICY_LEVEL_WARNING : POLICY_LEVEL_ERROR, fields);
		return;
	}
	if (conn->server)
		log_warning("rule [%s] %s -> %s: %s: %s", rule_name(conn), conn->app_dest, conn->dest, what,
			    reason);
	else
		log_error("rule [%s] %s -> %s: %s%s%s: %s", rule_name(conn), conn->app_dest, conn->dest, what,
			  conn->server_name ? " with " : "", conn->server_name ? conn->server_name : "", reason);
}

/* Is rejected early data still owed to the server (early_buf kept until
 * all of it went again)?  wlock held. */
static bool early_owed(struct conn *conn)
{
	return conn->early_buf && state_of(conn) == CONN_OPEN;
}

/* The early data the server refused goes again, now as ordinary data, all
 * of it before any later byte of the program's (it was told the bytes
 * went: they are owed, like a queued record).  What the transport does not
 * take now stays in early_buf (early_off: how much went) and goes from the
 * next write (sendv_locked), poll's flush or a blocking read
 * (push_nonblocking), or before close_notify (push_final_locked), always
 * the same bytes from early_off (a record queued at unknown size keeps a
 * copy that the next send must match: tls.h).  NONBLOCK: the caller's
 * mode.  wlock held, OPEN.  Return 0 when nothing is owed, -EAGAIN when
 * some is (the transport is full), -EINTR (a signal stopped a blocking
 * send: the rest goes later too), or a fatal negative errno. */
static int resend_rejected_early(struct conn *conn, bool nonblock)
{
	ssize_t ret;

	while (early_owed(conn) && conn->early_off < conn->early_len) {
		ret = as_errno(tls_send(conn->tls, conn->early_buf + conn->early_off,
					conn->early_len - conn->early_off, io_mode(nonblock)));
		if (ret < 0)
			return (int)ret;
		conn->early_off += (size_t)ret;
	}
	free(conn->early_buf);
	conn->early_buf = NULL;
	return 0;
}

/* resend_rejected_early for a write of the program's, in its mode: a
 * signal during a blocking send is what it would be for the write itself
 * (restart_after_signal).  wlock held.  0, -EAGAIN, -EINTR, or a fatal
 * negative errno. */
static int resend_owed_early(struct conn *conn, bool dontwait)
{
	int ret;

	do
		ret = resend_rejected_early(conn, dontwait);
	while (ret == -EINTR && restart_after_signal());
	return ret;
}

/* The handshake is done (both locks held): the early data was accepted
 * (its copy goes), or it is resent without waiting.  0, or a fatal
 * negative errno (then FAILED); what the transport does not take now goes
 * later (the next write, a blocking read, poll or close). */
static int early_after_handshake(struct conn *conn)
{
	int ret;

	if (!conn->early_buf)
		return 0;
	if (atomic_load(&conn->held_owed)) {
		/* mysql: the program's first packet, held for TLS, goes the
		 * way rejected early data goes. */
		log_debug("rule [%s] %s -> %s: the program's first packet (%zu bytes) goes first inside TLS",
			  rule_name(conn), conn->app_dest, conn->dest, conn->early_len);
	} else if (tls_early_accepted(conn->tls)) {
		free(conn->early_buf);
		conn->early_buf = NULL;
		return 0;
	} else {
		log_info("rule [%s] %s -> %s: the server rejected the early data: %zu bytes sent again after "
			 "the handshake", rule_name(conn), conn->app_dest, conn->dest, conn->early_len);
	}
	ret = resend_rejected_early(conn, true);
	if (ret == -EAGAIN) {
		log_debug("rule [%s] %s -> %s: early data: %zu of %zu bytes sent again, the rest when the "
			  "socket takes it", rule_name(conn), conn->app_dest, conn->dest, conn->early_off,
			  conn->early_len);
		return 0;
	}
	if (ret < 0) {
		log_failure(conn, "resending rejected early data failed", tls_reason(conn->tls));
		fail(conn, -ret, -ret);
	}
	return ret;
}

/* TCP completion (CONNECTING, both locks held): 0 when connected (now
 * HANDSHAKING), -EAGAIN, or a negative errno (then FAILED). */
static int connect_step(struct conn *conn, bool nonblock)
{
	struct pollfd pfd = { .fd = conn->fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int ret, err;

	ret = real.poll(&pfd, 1, nonblock ? 0 : -1);
	if (ret == 0)
		return -EAGAIN;
	if (ret < 0)
		return -errno;
	if (real.getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		if (conn->proxy_addr) {
			char why[160];

			snprintf(why, sizeof why, "the proxy %s: %s", conn->proxy_addr, strerror(err));
			log_failure(conn, "connect failed", why);
		} else {
			log_failure(conn, "connect failed", strerror(err));
		}
		fail(conn, err, err);
		return -err;
	}
	atomic_store(&conn->state, CONN_HANDSHAKING);
	if (conn->early_pending)
		atomic_store_explicit(&conn->early_wait_until, now_ns() + EARLY_GRACE_NS, memory_order_relaxed);
	return 0;
}

/* Inbound, plaintext = allow: the client did not speak TLS (FIRST, its
 * first bytes as hex).  The kernel carries its bytes from now on. */
static void plaintext_allowed(struct conn *conn, const char *first)
{
	log_warning("rule [%s] %s -> %s: the client does not speak TLS (first bytes %s): passed through "
		    "in clear (plaintext = allow)", rule_name(conn), conn->app_dest, conn->dest, first);
	atomic_store_explicit(&conn->deadline_ns, 0, memory_order_relaxed);
	atomic_store(&conn->state, CONN_PLAIN);
	conn_nodelay_end(conn);
	/* The program shut its side before the client spoke (shut_early):
	 * the kernel's shutdown, now that no handshake needs the socket. */
	if (atomic_exchange(&conn->fin_pending, false))
		real.shutdown(conn->fd, conn->shut_rd ? SHUT_RDWR : SHUT_WR);
}

/* The server's first step (HANDSHAKING, both locks held): peek at the
 * client's first bytes, consuming none.  A ClientHello, or the beginning
 * of one (0x16: no plaintext protocol begins so; GnuTLS judges the rest):
 * 0, the handshake goes on.  Anything else: refused (FAILED, the program
 * never sees a byte of it) or, with plaintext = allow, PLAIN (0).  Nothing
 * yet: -EAGAIN (non-blocking) or wait until the deadline. */
static int sniff_step(struct conn *conn, bool nonblock)
{
	unsigned char buf[SNIFF_NEED];
	char first[32];
	long long left;
	ssize_t n;

	for (;;) {
		n = real.recv(conn->fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
		if (n > 0)
			break;
		if (n == 0) {
			/* Port probes and health checks: not worth a warning. */
			log_debug("rule [%s] %s -> %s: the client closed before sending anything", rule_name(conn),
				  conn->app_dest, conn->dest);
			fail(conn, ECONNRESET, ECONNRESET);
			return -ECONNRESET;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			fail(conn, ECONNRESET, ECONNRESET);
			return -ECONNRESET;
		}
		if (nonblock) {
			atomic_store_explicit(&conn->hs_events, POLLIN, memory_order_relaxed);
			return -EAGAIN;
		}
		left = atomic_load_explicit(&conn->deadline_ns, memory_order_relaxed) - now_ns();
		if (left <= 0 || real.poll(&(struct pollfd){ .fd = conn->fd, .events = POLLIN }, 1,
					   (int)(left / 1000000 + 1)) == 0)
			return handshake_step(conn, nonblock); /* reports the timeout */
	}
	if (sniff_client_hello(buf, (size_t)n) != SNIFF_PLAIN) {
		conn->sniffed = true;
		return 0;
	}
	sniff_hex(buf, (size_t)n, first, sizeof first);
	if (conn->rule->plaintext == POLICY_PLAINTEXT_ALLOW) {
		plaintext_allowed(conn, first);
		return 0;
	}
	log_warning("rule [%s] %s -> %s: refused: the client does not speak TLS (first bytes %s; "
		    "plaintext = refuse): the program saw nothing", rule_name(conn), conn->app_dest, conn->dest,
		    first);
	fail(conn, ECONNRESET, ECONNRESET);
	return -ECONNRESET;
}

/* The in-band exchange failed (both locks held): WHY in the log, FAILED.
 * connect() sees a refusal, as for a failed handshake. */
static int inband_failed(struct conn *conn, const char *why)
{
	log_failure(conn, "the exchange before TLS failed", why);
	fail(conn, ECONNRESET, ECONNREFUSED);
	return -ECONNREFUSED;
}

/* Wait for EVENTS on the socket for the in-band exchange (both locks
 * held): non-blocking, -EAGAIN (hs_events says for what); blocking, until
 * they come (0) or the deadline passes (FAILED, what the call returns).
 * A signal does not end the wait. */
static int inband_wait(struct conn *conn, short events, bool nonblock)
{
	long long deadline, left;
	struct pollfd pfd = { .fd = conn->fd, .events = events };

	if (nonblock) {
		atomic_store_explicit(&conn->hs_events, events, memory_order_relaxed);
		return -EAGAIN;
	}
	deadline = atomic_load_explicit(&conn->deadline_ns, memory_order_relaxed);
	left = deadline - now_ns();
	if (deadline && left <= 0)
		return handshake_timed_out(conn);
	if (real.poll(&pfd, 1, deadline ? (int)(left / 1000000 + 1) : -1) < 0 && errno != EINTR)
		return inband_failed(conn, strerror(errno));
	return 0;
}

/* Send what the exchange asks (both locks held): 0 when all of it went,
 * else as inband_wait or a failure. */
static int inband_send(struct conn *conn, bool nonblock)
{
	struct inband *ib = conn->ib;
	ssize_t n;
	int ret;

	while (ib->out_off < ib->out_len) {
		n = real.send(conn->fd, ib->out + ib->out_off, ib->out_len - ib->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			ib->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return inband_failed(conn, strerror(errno));
		if ((ret = inband_wait(conn, POLLOUT, nonblock)) < 0)
			return ret;
	}
	return 0;
}

/* Read what the server sent so far for the exchange (both locks held): 0
 * when some came, else as inband_wait or a failure.  Never more than the
 * exchange's buffer holds: bytes past it stay in the kernel. */
static int inband_read(struct conn *conn, bool nonblock)
{
	struct inband *ib = conn->ib;
	ssize_t n;
	int ret;

	for (;;) {
		if (ib->in_len >= sizeof ib->in)
			return inband_failed(conn, "the server's reply is too long");
		n = real.recv(conn->fd, ib->in + ib->in_len, sizeof ib->in - ib->in_len, MSG_DONTWAIT);
		if (n > 0) {
			ib->in_len += (size_t)n;
			return 0;
		}
		if (n == 0) {
			inband_eof(ib);
			return inband_failed(conn, ib->why);
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return inband_failed(conn, strerror(errno));
		if ((ret = inband_wait(conn, POLLIN, nonblock)) < 0)
			return ret;
	}
}

/* mysql, the program's turn (both locks held): the server says nothing
 * while the program answers its greeting.  0 if nothing came, else the
 * exchange fails (a byte from the server, its close, a socket error). */
static int server_stayed_silent(struct conn *conn)
{
	unsigned char byte;
	ssize_t n;

	do
		n = real.recv(conn->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return inband_failed(conn, "the server closed the connection while the program answered its greeting");
	if (n > 0)
		return inband_failed(conn, "the server sent bytes while the program answered its greeting");
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		return inband_failed(conn, strerror(errno));
	return 0;
}

/* mysql, the program's turn (both locks held): it reads the greeting and
 * writes its first packet (program_write, which checks the server's
 * silence once more).  0 while the program still has greeting to read,
 * else -EAGAIN or as inband_wait (a blocking read of a program that wants
 * more than the greeting waits for the server), or a failure. */
static int program_turn_step(struct conn *conn, bool nonblock)
{
	int ret;

	for (;;) {
		if (conn->rlen > 0)
			return 0;
		if ((ret = server_stayed_silent(conn)) < 0)
			return ret;
		if ((ret = inband_wait(conn, POLLIN, nonblock)) < 0)
			return ret;
	}
}

/* Put LEN bytes of plaintext for the program in the read-ahead buffer
 * (rlock held): what the server said before TLS.  0 or -ENOMEM. */
static int rbuf_put(struct conn *conn, const unsigned char *buf, size_t len)
{
	if (!conn->rbuf && !(conn->rbuf = malloc(RBUF_SIZE)))
		return -ENOMEM;
	if (conn->roff > 0 && conn->rlen > 0)
		memmove(conn->rbuf, conn->rbuf + conn->roff, conn->rlen);
	conn->roff = 0;
	if (len > RBUF_SIZE - conn->rlen)
		return -ENOMEM;
	memcpy(conn->rbuf + conn->rlen, buf, len);
	conn->rlen += len;
	atomic_fetch_add(&conn->rgen, 1);
	return 0;
}

/* The exchange says start TLS (both locks held): keep what goes to the
 * program after the handshake, and the program's held first packet
 * (mysql), owed first inside TLS; the exchange's state goes.  0 or a
 * failure. */
static int inband_to_tls(struct conn *conn)
{
	struct inband *ib = conn->ib;

	if (ib->greet_len > 0) {
		conn->greet = malloc(ib->greet_len);
		if (!conn->greet)
			return inband_failed(conn, "out of memory");
		memcpy(conn->greet, ib->greet, ib->greet_len);
		conn->greet_len = ib->greet_len;
	}
	if (ib->held_len > 0) {
		conn->early_buf = malloc(ib->held_len);
		if (!conn->early_buf)
			return inband_failed(conn, "out of memory");
		memcpy(conn->early_buf, ib->held, ib->held_len);
		conn->early_len = ib->held_len;
		conn->early_off = 0;
	}
	if (conn->rule->protocol == POLICY_PROTOCOL_MYSQL) {
		inband_mysql_start(&conn->mysql_up);
		inband_mysql_start(&conn->mysql_down);
		atomic_store(&conn->mysql_on, true);
	}
	free(ib);
	conn->ib = NULL;
	return 0;
}

/* The client's in-band exchange before TLS (HANDSHAKING, both locks held):
 * the proxy's CONNECT and the protocol's request for TLS (inband.h), on
 * the kernel socket.  0 when TLS may start (conn->ib gone), or, mysql,
 * when the program has the greeting to read (program_turn); -EAGAIN
 * (hs_events says for what); or a negative errno (then FAILED). */
static int negotiate_step(struct conn *conn, bool nonblock)
{
	int ret;

	for (;;) {
		if (atomic_load(&conn->program_turn))
			return program_turn_step(conn, nonblock);
		switch (inband_next(conn->ib)) {
		case INBAND_SEND:
			ret = inband_send(conn, nonblock);
			break;
		case INBAND_READ:
			ret = inband_read(conn, nonblock);
			break;
		case INBAND_PROGRAM:
			if (rbuf_put(conn, conn->ib->greet, conn->ib->greet_len) < 0)
				return inband_failed(conn, "out of memory");
			conn->ib->greet_len = 0;
			atomic_store(&conn->program_turn, true);
			log_debug("rule [%s] %s -> %s: the program reads the server's greeting", rule_name(conn),
				  conn->app_dest, conn->dest);
			return 0;
		case INBAND_TLS:
			return inband_to_tls(conn);
		case INBAND_FAIL:
		default:
			return inband_failed(conn, conn->ib->why);
		}
		if (ret < 0)
			return ret;
	}
}

/* The handshake failed with RET (both locks held): say why, enter FAILED.
 * Return what the program's call gets: connect()'s errno (SO_ERROR) -- a
 * timeout says so, so that nobody looks for a closed port; any other
 * failure is a refusal.  Later I/O gets conn_errno(). */
static int handshake_failed(struct conn *conn, int ret)
{
	char why[96];

	if (ret == -ETIMEDOUT) {
		snprintf(why, sizeof why, "the %s did not complete the handshake within %u ms (%s)",
			 conn->server ? "client" : "server", conn->rule->handshake_timeout_ms, tls_reason(conn->tls));
		log_failure(conn, "TLS handshake timed out", why);
	} else {
		log_failure(conn, "TLS handshake failed", tls_reason(conn->tls));
	}
	warn_keylog(conn);
	if (conn->early_sent)
		log_error("rule [%s] %s -> %s: %zu bytes had gone out as early data; they are not "
			  "sent again (the server may have acted on them)", rule_name(conn),
			  conn->app_dest, conn->dest, conn->early_len);
	if (conn->server) {
		/* The program sees a client that reset its connection. */
		fail(conn, ECONNRESET, ECONNRESET);
		return -ECONNRESET;
	}
	if (ret == -ETIMEDOUT) {
		fail(conn, ETIMEDOUT, ETIMEDOUT);
		return -ETIMEDOUT;
	}
	fail(conn, ret == -EPROTO ? EPROTO : ECONNRESET, ECONNREFUSED);
	return -ECONNREFUSED;
}

/* Early data the program was told went out (or its held first packet,
 * mysql), its handshake not done: the end of the stream (shutdown, close)
 * waits for the handshake, else the server never gets the bytes.  Any
 * thread, no lock. */
static bool early_unconfirmed(struct conn *conn)
{
	return state_of(conn) == CONN_HANDSHAKING &&
	       (atomic_load(&conn->early_sent) || atomic_load(&conn->held_owed));
}

/* The handshake deadline passed (both locks held): say so, enter FAILED.
 * Return what the program's call gets. */
static int handshake_timed_out(struct conn *conn)
{
	char why[96];

	if (conn->ib && atomic_load(&conn->program_turn))
		snprintf(why, sizeof why, "the program did not answer the server's greeting (%s) within %u ms",
			 inband_proto_name(conn->rule->protocol), conn->rule->handshake_timeout_ms);
	else if (conn->ib)
		snprintf(why, sizeof why, "the server did not finish the %s exchange before TLS within %u ms",
			 conn->rule->protocol != POLICY_PROTOCOL_TLS ? inband_proto_name(conn->rule->protocol) :
			 "proxy", conn->rule->handshake_timeout_ms);
	else
		snprintf(why, sizeof why, "the %s did not complete the handshake within %u ms",
			 conn->server ? "client" : "server", conn->rule->handshake_timeout_ms);
	log_failure(conn, "TLS handshake timed out", why);
	fail(conn, conn->server ? ECONNRESET : ETIMEDOUT, conn->server ? ECONNRESET : ETIMEDOUT);
	return conn->server ? -ECONNRESET : -ETIMEDOUT;
}

/* The server handshake of a blocking call (both locks held): non-blocking
 * steps, and between them a wait for what the step needs, up to the
 * deadline.  GnuTLS's own timeout does not count the time it waits
 * between the pieces of a record: a client that sends its hello a byte at
 * a time would hold the call for as long as it likes.  A signal does not
 * end the wait (the program's call does not see EINTR for it).  Return
 * what tls_handshake returns, or -ETIMEDOUT.  Every handshake but one
 * that carries 0-RTT data (the deadline also covers a rule's exchange
 * before TLS).  (A 0-RTT handshake stays one blocking call: run in
 * non-blocking steps, one whose early data filled a small send buffer
 * failed with GnuTLS's "The request is invalid" in early_data.sh's tail
 * case.) */
static int handshake_blocking(struct conn *conn)
{
	struct pollfd pfd;
	long long deadline, left;
	int ret;

	for (;;) {
		ret = tls_handshake(conn->tls, TLS_NONBLOCKING);
		if (ret != TLS_WANT_POLLIN && ret != TLS_WANT_POLLOUT)
			return ret;
		deadline = atomic_load_explicit(&conn->deadline_ns, memory_order_relaxed);
		left = deadline - now_ns();
		if (deadline && left <= 0)
			return -ETIMEDOUT;
		pfd.fd = conn->fd;
		pfd.events = ret == TLS_WANT_POLLIN ? POLLIN : POLLOUT;
		if (real.poll(&pfd, 1, deadline ? (int)(left / 1000000 + 1) : -1) < 0 && errno != EINTR)
			return -errno;
	}
}

/* One handshake step (HANDSHAKING, both locks held): 0 when OPEN, -EAGAIN
 * (conn->hs_events says for what), or a negative errno (then FAILED).  A
 * blocking step interrupted by a signal goes on, as it always has: the
 * program's connect() (or the read or write that finishes the handshake)
 * does not see EINTR for it. */
static int handshake_step(struct conn *conn, bool nonblock)
{
	int ret;

	if (deadline_passed(conn))
		return handshake_timed_out(conn);
	if (conn->server && !conn->sniffed) {
		ret = sniff_step(conn, nonblock);
		if (ret != 0 || state_of(conn) != CONN_HANDSHAKING)
			return ret;
	}
	if (conn->ib) {
		/* Before TLS: the in-band exchange (mysql: 0 in the program's
		 * turn, the exchange not over). */
		ret = negotiate_step(conn, nonblock);
		if (ret != 0 || state_of(conn) != CONN_HANDSHAKING || conn->ib)
			return ret;
	}
	/* Reached without the program writing first: no early data; the
	 * handshake starts now, and so does its clock. */
	if (conn->early_pending) {
		conn->early_pending = false;
		reset_deadline(conn);
	}
	if (nonblock)
		ret = tls_handshake(conn->tls, TLS_NONBLOCKING);
	else if (!atomic_load(&conn->early_sent))
		ret = handshake_blocking(conn);
	else
		do
			ret = tls_handshake(conn->tls, TLS_BLOCKING);
		while (ret == -EINTR);
	if (ret == TLS_WANT_POLLIN || ret == TLS_WANT_POLLOUT) {
		atomic_store_explicit(&conn->hs_events, ret == TLS_WANT_POLLIN ? POLLIN : POLLOUT, memory_order_relaxed);
		return -EAGAIN;
	}
	if (ret == -EINTR)
		return ret;
	if (ret == -ETIMEDOUT && deadline_passed(conn))
		return handshake_timed_out(conn);
	if (ret < 0)
		return handshake_failed(conn, ret);
	/* What the server said before TLS (its greeting), for the program
	 * now, before anything that comes inside TLS. */
	if (conn->greet) {
		ret = rbuf_put(conn, conn->greet, conn->greet_len);
		free(conn->greet);
		conn->greet = NULL;
		if (ret < 0)
			return inband_failed(conn, "out of memory for the server's greeting");
	}
	atomic_store(&conn->state, CONN_OPEN);
	atomic_store_explicit(&conn->deadline_ns, 0, memory_order_relaxed);
	log_open(conn);
	/* Never waits (a blocking read must not block on a push here). */
	ret = early_after_handshake(conn);
	/* shutdown() or close() came while the handshake ran (shut_early):
	 * close_notify follows the early data now; what does not go now
	 * goes from poll, close or exit (fin_pending). */
	if (ret == 0 && atomic_load(&conn->fin_pending) && push_final_locked(conn, TLS_NONBLOCKING) == 0)
		fin_if_flushed(conn);
	return ret;
}

/* One step of TCP completion + handshake.  Both locks held.  Return 0 when
 * OPEN (or HANDSHAKING with 0-RTT waiting for the first write), -EAGAIN,
 * -EINTR, or a negative errno (then FAILED). */
static int step_locked(struct conn *conn, bool nonblock)
{
	int ret;

	if (state_of(conn) == CONN_CONNECTING) {
		ret = connect_step(conn, nonblock);
		if (ret < 0)
			return ret;
		if (conn->early_pending)
			return 0; /* the handshake starts with the program's first write */
	}
	if (state_of(conn) == CONN_HANDSHAKING) {
		ret = handshake_step(conn, nonblock);
		if (ret < 0)
			return ret;
	}
	if (state_of(conn) == CONN_FAILED)
		return -conn_errno(conn);
	return 0;
}

static bool socket_nonblocking(int fd);

/* Make sure the handshake is done before data moves.  Takes both locks. */
static int ensure_open(struct conn *conn, bool nonblock)
{
	int ret;

	if (state_of(conn) == CONN_OPEN || state_of(conn) == CONN_PLAIN)
		return 0;
	if (state_of(conn) == CONN_FAILED)
		return -conn_errno(conn);
	/* A non-blocking socket never waits here, whatever the call's flags. */
	nonblock = nonblock || socket_nonblocking(conn->fd);
	pthread_mutex_lock(&conn->rlock);
	pthread_mutex_lock(&conn->wlock);
	/* The handshake uses both directions. */
	if (!own(conn, OWNER_RECV))
		ret = refuse_foreign(conn, OWNER_RECV);
	else if (!own(conn, OWNER_SEND))
		ret = refuse_foreign(conn, OWNER_SEND);
	else
		ret = step_locked(conn, nonblock);
	/* TCP completed just now, with 0-RTT waiting for a write that did
	 * not come first: the handshake starts here, without early data. */
	if (ret == 0 && state_of(conn) == CONN_HANDSHAKING)
		ret = step_locked(conn, nonblock);
	write_unlock(conn, TLS_NONBLOCKING);
	pthread_mutex_unlock(&conn->rlock);
	if (ret == -ECONNREFUSED)
		ret = -conn_errno(conn);
	return ret;
}

static bool socket_nonblocking(int fd)
{
	int fl = real.fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
}

void conn_start_server(struct conn *conn)
{
	reset_deadline(conn);
}

int conn_start(struct conn *conn, bool in_progress)
{
	int ret;

	reset_deadline(conn);
	if (in_progress)
		return 0;
	atomic_store(&conn->state, CONN_HANDSHAKING);
	if (conn->early_pending) {
		atomic_store_explicit(&conn->early_wait_until, now_ns() + EARLY_GRACE_NS, memory_order_relaxed);
		return 0; /* TCP is up; the program's first write starts the handshake */
	}
	if (socket_nonblocking(conn->fd))
		return 0; /* the handshake advances from the program's own calls */
	pthread_mutex_lock(&conn->rlock);
	pthread_mutex_lock(&conn->wlock);
	do
		ret = step_locked(conn, false);
	while (ret == -EINTR);
	write_unlock(conn, TLS_NONBLOCKING);
	pthread_mutex_unlock(&conn->rlock);
	return ret;
}

/* A fatal read error: remember it, say why. */
static ssize_t read_failed(struct conn *conn, ssize_t ret)
{
	/* Clients drop connections without close_notify all the time
	 * (browsers, load generators at the end of a run): for a server that
	 * is news, not a warning.  The program still sees the reset. */
	if (conn->server && (ret == -ECONNRESET || ret == -EPIPE))
		log_info("rule [%s] %s -> %s: the client ended the connection without close_notify (%s)",
			 rule_name(conn), conn->app_dest, conn->dest, tls_reason(conn->tls));
	else if (!conn->server && (ret == -ECONNRESET || ret == -EPIPE) && atomic_load(&conn->shut_wr))
		/* The program had ended its side (shutdown, close_notify sent):
		 * servers that close then without close_notify are common
		 * (tinyproxy passes no half-close).  The program still sees
		 * the reset. */
		log_info("rule [%s] %s -> %s: the server ended the connection without close_notify after "
			 "the program's end (%s)", rule_name(conn), conn->app_dest, conn->dest,
			 tls_reason(conn->tls));
	else
		log_failure(conn, "read failed", tls_reason(conn->tls));
	fail(conn, (int)-ret, (int)-ret);
	return ret;
}

/* Send-side work a blocking read must push while it waits: records GnuTLS
 * queued after EAGAIN (counted as sent), close_notify that shutdown() left
 * to wlock's holder, or the kernel's SHUT_WR deferred behind them.  A
 * plain TCP socket delivers those in the background; here nobody else
 * would (poll, close and exit push them).  Lock-free hint. */
static bool send_work(struct conn *conn)
{
	return state_of(conn) == CONN_OPEN && mine(conn, OWNER_SEND) &&
	       (flush_hint(conn) || atomic_load(&conn->fin_pending) || atomic_load(&conn->bye_owed));
}

/* Push what the send side holds, never waiting: the queued records, then
 * the kernel's SHUT_WR deferred behind them; write_unlock pays a
 * close_notify shutdown() owes.  Return false if another thread holds
 * wlock (it pushes its own records and pays the bye).  Takes wlock by
 * trylock; the caller may hold rlock. */
static bool push_nonblocking(struct conn *conn)
{
	ssize_t ret;

	if (pthread_mutex_trylock(&conn->wlock) != 0)
		return false;
	if (state_of(conn) == CONN_OPEN && mine(conn, OWNER_SEND)) {
		if (atomic_load(&conn->fin_pending)) {
			/* close_notify is wanted: behind what is owed (logs, fails) */
			(void)push_final_locked(conn, TLS_NONBLOCKING);
		} else {
			ret = resend_rejected_early(conn, true);
			if (ret == 0 && tls_flush_pending(conn->tls))
				ret = as_errno(tls_flush(conn->tls, TLS_NONBLOCKING));
			if (broken(ret)) {
				log_failure(conn, "write failed", tls_reason(conn->tls));
				fail(conn, (int)-ret, (int)-ret);
			}
		}
		fin_if_flushed(conn);
	}
	write_unlock(conn, TLS_NONBLOCKING);
	return true;
}

/* SO_RCVTIMEO of the socket as a CLOCK_MONOTONIC deadline (0: none). */
static long long rcvtimeo_deadline(struct conn *conn)
{
	struct timeval tv = { 0, 0 };
	socklen_t len = sizeof tv;

	if (real.getsockopt(conn->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) < 0 || (!tv.tv_sec && !tv.tv_usec))
		return 0;
	return now_ns() + (long long)tv.tv_sec * 1000000000LL + (long long)tv.tv_usec * 1000LL;
}

/* poll()'s timeout until UNTIL (0: none), at most CAP ms (-1: none). */
static int wait_ms(long long until, int cap)
{
	long long left;

	if (!until)
		return cap;
	left = (until - now_ns() + 999999) / 1000000;
	if (left < 0)
		left = 0;
	return cap >= 0 && cap < left ? cap : (int)left;
}

/* How long a blocking read waits in poll() before it looks at send_work
 * again: work can appear while it waits (another thread writes until
 * EAGAIN, or shutdown() leaves close_notify to wlock's holder) and nobody
 * wakes it. */
#define PUSH_RECHECK_MS 100

/* One poll() of a blocking read for the socket to be readable, or
 * writable while WORK waits to go (not when BUSY: wlock's holder pushes,
 * look again soon), at most until UNTIL (0: none).  The descriptor is
 * reloaded (close() and dup2() may change it); POLLNVAL reloads and polls
 * once more.  rlock held.  Return the revents (0: the timeout passed), or
 * a negative errno: -EBADF (no descriptor left), poll()'s own failure. */
static int wait_readable(struct conn *conn, bool work, bool busy, long long until)
{
	struct pollfd pfd;
	int n, tries;

	for (tries = 0; tries < 2; tries++) {
		pfd.fd = atomic_load(&conn->fd);
		pfd.events = POLLIN | (work && !busy ? POLLOUT : 0);
		pfd.revents = 0;
		n = real.poll(&pfd, 1, wait_ms(until, busy ? 5 : PUSH_RECHECK_MS));
		if (n < 0)
			return -errno;
		if (!(pfd.revents & POLLNVAL))
			return pfd.revents;
	}
	return -EBADF;
}

/* A blocking read (blocking socket) that found nothing to read: wait for
 * the socket to be readable, and while send_work says records or the end
 * of the stream wait to go (the server may wait for them before it
 * answers; a plain TCP socket would send them in the background) for it
 * to be writable too; on POLLOUT push without blocking (a blocking push
 * could deadlock against a server blocked writing to us), on POLLIN read
 * without blocking.  The wait is cut every PUSH_RECHECK_MS to look at
 * send_work again.  rlock held.  Return as tls_recv in this file's terms:
 * -EAGAIN when SO_RCVTIMEO passes (its clock starts here, as the kernel's
 * at the call), -EINTR as a recv(2) interrupted by a signal would; a
 * failure of the wait itself (poll()'s -ENOMEM, -EBADF) with *WAITFAIL
 * set: the program's, not the connection's. */
static ssize_t recv_pushing(struct conn *conn, void *buf, size_t len, bool *waitfail)
{
	long long until = rcvtimeo_deadline(conn);
	bool busy = false;
	ssize_t ret;
	int rev;

	for (;;) {
		if (until && now_ns() >= until)
			return -EAGAIN;
		rev = wait_readable(conn, send_work(conn), busy, until);
		if (rev == -EINTR && !until && restart_after_signal())
			continue;
		if (rev < 0) {
			*waitfail = rev != -EINTR;
			return rev;
		}
		busy = (rev & POLLOUT) && !push_nonblocking(conn);
		ret = as_errno(tls_recv(conn->tls, buf, len, TLS_NONBLOCKING));
		if (ret != -EAGAIN)
			return ret;
	}
}

/* Read into BUF: without waiting (NONBLOCK), else as the socket's mode
 * says; a blocking read that has to wait waits in recv_pushing (pushing
 * the send side's leftovers meanwhile).  rlock held.  Return as tls_recv
 * in this file's terms; *WAITFAIL (false on entry) set when the failure is
 * the wait's, not the connection's (recv_pushing). */
static ssize_t recv_locked(struct conn *conn, void *buf, size_t len, bool nonblock, bool *waitfail)
{
	ssize_t ret;

	ret = as_errno(tls_recv(conn->tls, buf, len, TLS_NONBLOCKING));
	if (!nonblock && ret == -EAGAIN && !socket_nonblocking(atomic_load(&conn->fd)))
		ret = recv_pushing(conn, buf, len, waitfail);
	if (ret > 0 && atomic_load_explicit(&conn->mysql_on, memory_order_relaxed)) {
		/* mysql: the server's sequence IDs, as the program counts. */
		inband_mysql_from_server(&conn->mysql_down, buf, (size_t)ret);
		if (conn->mysql_down.done)
			atomic_store(&conn->mysql_on, false);
	}
	return ret;
}

/* Read one record into the plaintext buffer.  rlock held. */
/* An empty read-ahead buffer is let go (rlock held): idle connections,
 * thousands on a server, keep no 16 KiB each. */
static void drop_empty_rbuf(struct conn *conn)
{
	if (conn->rlen == 0 && conn->rbuf) {
		free(conn->rbuf);
		conn->rbuf = NULL;
		conn->roff = 0;
	}
}

static ssize_t fill_rbuf(struct conn *conn, bool nonblock)
{
	bool waitfail = false;
	ssize_t ret;

	if (!conn->rbuf && !(conn->rbuf = malloc(RBUF_SIZE)))
		return -ENOMEM;
	if (conn->roff > 0 && conn->rlen > 0)
		memmove(conn->rbuf, conn->rbuf + conn->roff, conn->rlen);
	conn->roff = 0;
	if (conn->rlen >= RBUF_SIZE)
		return conn->rlen;
	ret = recv_locked(conn, conn->rbuf + conn->rlen, RBUF_SIZE - conn->rlen, nonblock, &waitfail);
	save_ticket(conn);
	if (ret > 0) {
		conn->rlen += ret;
		atomic_fetch_add(&conn->rgen, 1);
	} else if (ret == 0) {
		conn->eof = true;
		atomic_fetch_add(&conn->rgen, 1);
	} else if (broken(ret) && !waitfail) {
		read_failed(conn, ret);
		atomic_fetch_add(&conn->rgen, 1);
	}
	drop_empty_rbuf(conn);
	return ret;
}

/* postgres: the N answers to the program's own SSLRequests (the writer
 * counts them in pg_owed: it may not wait for rlock) into the read-ahead
 * buffer.  rlock held. */
static void take_pg_owed(struct conn *conn)
{
	static const unsigned char no[] = "NNNNNNNN";
	unsigned n;

	while ((n = atomic_exchange(&conn->pg_owed, 0)) > 0)
		while (n > 0) {
			unsigned k = n < sizeof no - 1 ? n : (unsigned)sizeof no - 1;

			if (rbuf_put(conn, no, k) < 0) {
				atomic_fetch_add(&conn->pg_owed, n);
				return;
			}
			n -= k;
		}
}

static size_t take_rbuf(struct conn *conn, void *buf, size_t len, bool peek)
{
	size_t n = len < conn->rlen ? len : conn->rlen;

	memcpy(buf, conn->rbuf + conn->roff, n);
	if (!peek) {
		conn->roff += n;
		conn->rlen -= n;
		drop_empty_rbuf(conn);
	}
	return n;
}

/* TLS has no urgent data: a byte sent with MSG_OOB would go inside the
 * stream as an ordinary byte, its meaning changed, so it is refused; and no
 * urgent byte can ever arrive (the kernel says EINVAL when none is there). */
static ssize_t refuse_oob(struct conn *conn, bool sending)
{
	if (!conn->oob_logged) {
		conn->oob_logged = true;
		log_error("rule [%s] %s -> %s: %s with MSG_OOB refused (%s): TLS cannot carry "
			  "urgent (out-of-band) data", rule_name(conn), conn->app_dest, conn->dest,
			  sending ? "send" : "recv", sending ? "EOPNOTSUPP" : "EINVAL, no urgent data");
	}
	return sending ? -EOPNOTSUPP : -EINVAL;
}

/* PLAIN (plaintext = allow): the kernel's own answer, as a count or a
 * negative errno. */
static ssize_t plain_result(ssize_t n)
{
	return n < 0 ? -errno : n;
}

static ssize_t plain_sendv(struct conn *conn, const struct iovec *iov, int iovcnt, int flags)
{
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };

	/* MSG_NOSIGNAL: the hook raises SIGPIPE itself for EPIPE (once). */
	return plain_result(real.sendmsg(conn->fd, &msg, flags | MSG_NOSIGNAL));
}

/* mysql, the program's turn, its greeting all read: a blocking read
 * waits here, without the locks, for another thread's write of the first
 * packet (which needs them), the server's bytes or close (the step judges
 * them), or the deadline.  No lock. */
static void wait_program_turn(struct conn *conn)
{
	struct pollfd pfd;
	long long deadline, left;

	while (atomic_load(&conn->program_turn) && conn->rlen == 0 && state_of(conn) == CONN_HANDSHAKING) {
		deadline = atomic_load_explicit(&conn->deadline_ns, memory_order_relaxed);
		left = deadline - now_ns();
		if (deadline && left <= 0)
			return;
		pfd.fd = conn->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		/* Short slices: the write that ends the turn makes no event. */
		if (real.poll(&pfd, 1, deadline && left < 50000000 ? (int)(left / 1000000 + 1) : 50) > 0)
			return;
	}
}

ssize_t conn_recv(struct conn *conn, void *buf, size_t len, int flags)
{
	bool dontwait = flags & MSG_DONTWAIT, peek = flags & MSG_PEEK, waitfail = false;
	size_t done = 0;
	ssize_t ret;

	if (!buf && len > 0)
		return -EFAULT;
	if (flags & MSG_OOB)
		return refuse_oob(conn, false);
	if (!own(conn, OWNER_RECV))
		return refuse_foreign(conn, OWNER_RECV);
	if (conn->shut_rd)
		return 0; /* shutdown(SHUT_RD): end of stream, as the kernel says */
	if (atomic_load(&conn->program_turn) && !dontwait && !socket_nonblocking(conn->fd))
		wait_program_turn(conn);
	ret = ensure_open(conn, dontwait);
	if (ret < 0)
		return ret;
	if (state_of(conn) == CONN_PLAIN)
		return plain_result(real.recv(conn->fd, buf, len, flags));
	pthread_mutex_lock(&conn->rlock);
	/* Again under the lock: a fork may have released it (owner.h). */
	if (!own(conn, OWNER_RECV)) {
		ret = refuse_foreign(conn, OWNER_RECV);
		goto out;
	}
	if (state_of(conn) == CONN_FAILED && conn->rlen == 0) {
		ret = -conn_errno(conn);
		goto out;
	}
	take_pg_owed(conn);
	for (;;) {
		if (conn->rlen > 0) {
			done += take_rbuf(conn, (char *)buf + done, len - done, peek);
		} else if (conn->eof || len == done || state_of(conn) != CONN_OPEN) {
			/* Not OPEN: the greeting of the program's turn (mysql)
			 * was all there is before TLS. */
			break;
		} else if (peek) {
			ret = fill_rbuf(conn, dontwait);
			if (ret < 0)
				break;
			continue;
		} else {
			ret = recv_locked(conn, (char *)buf + done, len - done, dontwait, &waitfail);
			save_ticket(conn);
			if (ret > 0) {
				done += ret;
			} else if (ret == 0) {
				conn->eof = true;
				break;
			} else {
				if (broken(ret) && !waitfail)
					read_failed(conn, ret);
				break;
			}
		}
		/* MSG_WAITALL keeps reading; otherwise one piece is enough. */
		if (!(flags & MSG_WAITALL) || peek || done == len)
			break;
	}
	if (done > 0) {
		ret = done;
		/* A server's answer comes after the request: its window
		 * ends with its first write (Nagle would hold the answer
		 * behind the unacknowledged session tickets). */
		if (!conn->server)
			conn_nodelay_end(conn);
	} else if (conn->eof)
		ret = 0;
	else if (state_of(conn) == CONN_FAILED)
		ret = -conn_errno(conn);
out:
	pthread_mutex_unlock(&conn->rlock);
	return ret;
}

/* After a send error the reason is often an alert waiting to be read (e.g.
 * certificate_required, which TLS 1.3 delivers after our handshake). */
static void capture_alert(struct conn *conn)
{
	unsigned char scratch[512];

	if (!mine(conn, OWNER_RECV) || pthread_mutex_trylock(&conn->rlock) != 0)
		return;
	if (mine(conn, OWNER_RECV))
		(void)tls_recv(conn->tls, scratch, sizeof scratch, TLS_NONBLOCKING);
	pthread_mutex_unlock(&conn->rlock);
}

/* rekey-after: a KeyUpdate once that many bytes went out.  wlock held. */
static void maybe_rekey(struct conn *conn, size_t sent)
{
	int ret;

	if (!conn->rule->rekey_after)
		return;
	conn->sent_since_rekey += sent;
	if (conn->sent_since_rekey < conn->rule->rekey_after)
		return;
	/* Peers refuse a flood of KeyUpdates (GnuTLS allows 8 a second): at
	 * most one every REKEY_MIN_NS; a fast sender's next write catches up. */
	if (conn->last_rekey_ns && now_ns() - conn->last_rekey_ns < REKEY_MIN_NS)
		return;
	/* A reader thread may be inside GnuTLS handling the peer's records:
	 * change keys only with both directions to ourselves. */
	if (pthread_mutex_trylock(&conn->rlock) != 0)
		return;
	ret = as_errno(tls_key_update(conn->tls, TLS_BLOCKING));
	pthread_mutex_unlock(&conn->rlock);
	if (ret == -EAGAIN || ret == -EINTR)
		return; /* the transport is full: try again after the next write */
	if (ret < 0) {
		log_failure(conn, "key update failed", tls_reason(conn->tls));
		fail(conn, (int)-ret, (int)-ret);
		return;
	}
	conn->sent_since_rekey = 0;
	conn->last_rekey_ns = now_ns();
	conn->key_updates++;
	log_debug("rule [%s] %s -> %s: KeyUpdate %u sent after %llu bytes", rule_name(conn), conn->app_dest,
		  conn->dest, conn->key_updates, (unsigned long long)conn->rule->rekey_after);
}

/* The first bytes of IOV, at most MAX, copied to DST: how many. */
static size_t iov_copy(const struct iovec *iov, int iovcnt, unsigned char *dst, size_t max)
{
	size_t off = 0, n;
	int i;

	for (i = 0; i < iovcnt && off < max; i++) {
		n = iov[i].iov_len < max - off ? iov[i].iov_len : max - off;
		if (n)
			memcpy(dst + off, iov[i].iov_base, n);
		off += n;
	}
	return off;
}

/* The early data of a first write: its bytes when one buffer holds them
 * (*COPY NULL), else up to EARLY_GATHER_MAX of them gathered into *COPY
 * (malloc'd).  Out of memory: the first non-empty buffer (*COPY NULL).
 * TOTAL > 0. */
static const void *early_bytes(const struct iovec *iov, int iovcnt, size_t total, size_t *len,
			       unsigned char **copy)
{
	int i;

	*copy = NULL;
	*len = 0;
	for (i = 0; i < iovcnt && iov[i].iov_len == 0; i++)
		;
	/* Never more than early data can carry: the copy kept for a resend
	 * is of these bytes only (a first write may be gigabytes). */
	total = total < EARLY_GATHER_MAX ? total : EARLY_GATHER_MAX;
	if (i < iovcnt && iov[i].iov_len >= total) {
		*len = total;
		return iov[i].iov_base;
	}
	if (!(*copy = malloc(total))) {
		*len = iov[i].iov_len < total ? iov[i].iov_len : total;
		return iov[i].iov_base;
	}
	*len = iov_copy(iov, iovcnt, *copy, total);
	return *copy;
}

/* The program's first write on a connection that may use 0-RTT: the bytes
 * go as early data with the ClientHello.  Return the bytes taken (> 0), 0 to
 * carry on as a normal write, or a negative errno.  Both locks held, both
 * directions ours. */
static ssize_t send_early_locked(struct conn *conn, const struct iovec *iov, int iovcnt, size_t total,
				 bool nonblock)
{
	unsigned char *copy;
	const void *buf;
	ssize_t taken = 0;
	size_t len;
	int ret;

	if (!conn->early_pending || state_of(conn) != CONN_HANDSHAKING || total == 0)
		return 0;
	conn->early_pending = false;
	reset_deadline(conn);
	buf = early_bytes(iov, iovcnt, total, &len, &copy);
	/* The copy to resend if the server rejects them: a gathered copy is
	 * one already.  Out of memory: no early data, the write goes after
	 * the handshake. */
	conn->early_buf = copy ? copy : malloc(len);
	if (!conn->early_buf)
		return 0;
	taken = tls_send_early(conn->tls, buf, len);
	if (taken > 0) {
		if (!copy)
			memcpy(conn->early_buf, buf, (size_t)taken);
		conn->early_len = (size_t)taken;
		conn->early_off = 0;
		conn->early_sent = true;
	} else {
		free(conn->early_buf);
		conn->early_buf = NULL;
	}
	if (taken > 0) {
		do
			ret = step_locked(conn, nonblock);
		while (ret == -EINTR && !nonblock);
		/* -EAGAIN: the handshake goes on from the program's next calls;
		 * the bytes are queued, as in a kernel buffer. */
		if (ret < 0 && ret != -EAGAIN && ret != -EINTR)
			taken = -conn_errno(conn);
	}
	return taken;
}

/* Up to MAX of the bytes of IOV (TOTAL in all) gathered into a new buffer
 * (*LEN of them), or NULL (out of memory). */
static unsigned char *gather(const struct iovec *iov, int iovcnt, size_t total, size_t max, size_t *len)
{
	unsigned char *buf;

	*len = total < max ? total : max;
	if (!(buf = malloc(*len ? *len : 1)))
		return NULL;
	iov_copy(iov, iovcnt, buf, *len);
	return buf;
}

/* mysql, the program's turn: its write (its first packet, the
 * HandshakeResponse) is held by the exchange (inband_program); once the
 * packet is whole, the SSLRequest goes and the handshake runs, in the
 * write's mode.  Both locks held.  Return the bytes taken (a short count
 * at the packet's end: the rest goes after TLS), or a negative errno. */
static ssize_t program_write(struct conn *conn, const struct iovec *iov, int iovcnt, size_t total, bool nonblock)
{
	unsigned char *buf;
	ssize_t taken;
	size_t len;
	int ret;

	if (total == 0)
		return 0;
	if (!(buf = gather(iov, iovcnt, total, INBAND_HELD_MAX, &len)))
		return -ENOMEM;
	taken = inband_program(conn->ib, buf, len);
	free(buf);
	if (taken < 0 || inband_next(conn->ib) == INBAND_PROGRAM)
		return taken < 0 ? inband_failed(conn, conn->ib->why) : taken;
	if ((ret = server_stayed_silent(conn)) < 0)
		return ret;
	atomic_store(&conn->program_turn, false);
	/* Owed from now on: a close before TLS is up finishes it first. */
	atomic_store(&conn->held_owed, true);
	do
		ret = step_locked(conn, nonblock);
	while (ret == -EINTR && !nonblock);
	/* -EAGAIN: the handshake goes on from the program's next calls; the
	 * packet is held, as in a kernel buffer. */
	if (ret < 0 && ret != -EAGAIN && ret != -EINTR)
		return -conn_errno(conn);
	return taken;
}

/* Take wlock for a write.  Once the connection is open (or failed) that is
 * all: a reader blocked in tls_recv holds rlock for as long as the server
 * is silent, and a writer must not wait for it (the server may be waiting
 * for the writer's request).  Before that the handshake needs both locks:
 * *BOTH says rlock is held too.  rlock comes after wlock here only by
 * trylock; when it is busy its holder is a reader about to run the
 * handshake (it waits for wlock) or a poll probe: let go and retry, so
 * the writer never queues on rlock. */
static void lock_for_write(struct conn *conn, bool *both)
{
	struct timespec pause = { 0, 1000000 };
	int tries = 0;

	for (;;) {
		pthread_mutex_lock(&conn->wlock);
		if (state_of(conn) == CONN_OPEN || state_of(conn) == CONN_FAILED || state_of(conn) == CONN_PLAIN) {
			*both = false;
			return;
		}
		if (pthread_mutex_trylock(&conn->rlock) == 0) {
			*both = true;
			return;
		}
		pthread_mutex_unlock(&conn->wlock);
		if (++tries < 100)
			sched_yield();
		else
			nanosleep(&pause, NULL);
	}
}

/* The write path before the connection is open (both locks held): 0-RTT
 * for the first write, else the handshake.  Return the bytes taken as
 * early data (> 0), 0 when the write goes on as a normal one (OPEN), or a
 * negative errno (-EAGAIN: the handshake goes on from later calls). */
static ssize_t open_for_write(struct conn *conn, const struct iovec *iov, int iovcnt, size_t total,
			      bool dontwait)
{
	bool nonblock = dontwait || socket_nonblocking(conn->fd);
	ssize_t ret;

	/* The handshake uses both directions. */
	if (!own(conn, OWNER_RECV))
		return refuse_foreign(conn, OWNER_RECV);
	if (!own(conn, OWNER_SEND))
		return refuse_foreign(conn, OWNER_SEND);
	if (atomic_load(&conn->program_turn))
		return program_write(conn, iov, iovcnt, total, nonblock);
	ret = send_early_locked(conn, iov, iovcnt, total, nonblock);
	if (ret != 0)
		return ret;
	ret = step_locked(conn, nonblock);
	/* mysql: the exchange reached the program's turn just now. */
	if (ret == 0 && atomic_load(&conn->program_turn))
		return program_write(conn, iov, iovcnt, total, nonblock);
	/* TCP completed just now and 0-RTT waits for this very write. */
	if (ret == 0 && state_of(conn) == CONN_HANDSHAKING) {
		ret = send_early_locked(conn, iov, iovcnt, total, nonblock);
		if (ret == 0)
			ret = step_locked(conn, nonblock);
	}
	if (ret == -ECONNREFUSED)
		ret = -conn_errno(conn);
	/* Never a write on a session without a handshake. */
	if (ret == 0 && state_of(conn) != CONN_OPEN && state_of(conn) != CONN_PLAIN)
		ret = -EAGAIN;
	return ret;
}

/* The server asked for a new sending key and the process that read the
 * request does not write (owner.h): send our KeyUpdate before the next
 * data, as RFC 8446 4.6.3 asks.  When this process also reads, GnuTLS
 * answers by itself.  wlock held, send direction ours.  0 or -errno. */
static int answer_update_request(struct conn *conn, bool dontwait)
{
	int ret;

	if (!atomic_load_explicit(&conn->owner->update_requested, memory_order_relaxed) ||
	    mine(conn, OWNER_RECV) || state_of(conn) != CONN_OPEN)
		return 0;
	/* None of the program's bytes is taken yet: a signal during a
	 * blocking send of it is what it would be for the write itself
	 * (restart_after_signal).  -EAGAIN, -EINTR: asked again at the next
	 * write (GnuTLS resumes the KeyUpdate where it stopped). */
	do
		ret = as_errno(tls_key_update(conn->tls, io_mode(dontwait)));
	while (ret == -EINTR && restart_after_signal());
	if (ret == -EAGAIN || ret == -EINTR)
		return ret;
	atomic_store(&conn->owner->update_requested, false);
	if (ret < 0) {
		log_failure(conn, "key update failed", tls_reason(conn->tls));
		fail(conn, -ret, -ret);
		return ret;
	}
	conn->key_updates++;
	conn->sent_since_rekey = 0;
	conn->last_rekey_ns = now_ns();
	log_debug("rule [%s] %s -> %s: KeyUpdate sent: the %s asked for one (read by another process)",
		  rule_name(conn), conn->app_dest, conn->dest, peer_word(conn));
	return 0;
}

/* Above any user address on every 64-bit Linux (x86-64 5-level paging:
 * 2^56, arm64 52-bit, riscv sv57): a range that reaches past it cannot be
 * the program's memory. */
#if UINTPTR_MAX > 0xffffffffu
#define USER_TOP ((uintptr_t)1 << 57)
#else
#define USER_TOP UINTPTR_MAX
#endif

int conn_iov_check(const struct iovec *iov, int iovcnt, size_t *total)
{
	int i;

	*total = 0;
	if (iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	if (!iov && iovcnt > 0)
		return -EFAULT;
	/* The kernel reads every length before it touches a buffer. */
	for (i = 0; i < iovcnt; i++)
		if (iov[i].iov_len > (size_t)SSIZE_MAX)
			return -EINVAL;
	for (i = 0; i < iovcnt; i++) {
		uintptr_t base = (uintptr_t)iov[i].iov_base, len = iov[i].iov_len;

		if (len == 0)
			continue; /* an empty one may have no memory: BEAM's writev */
		if (!base || base + len < base || base + len > USER_TOP)
			return -EFAULT;
		/* More than SSIZE_MAX bytes in all: some buffer is not there. */
		if (len > (size_t)SSIZE_MAX - *total)
			return -EFAULT;
		*total += len;
	}
	return 0;
}

/* postgres: the program's own SSLRequest or GSSENCRequest (libpq with
 * sslmode=prefer) is answered N here, so that it goes on in plaintext
 * inside our TLS; the server never sees it.  Anything else ends the
 * filter.  wlock held, OPEN.  The 8 bytes taken, or 0 (write as usual). */
static ssize_t pg_answer(struct conn *conn, const struct iovec *iov, int iovcnt)
{
	unsigned char first[INBAND_PG_REQUEST_LEN];
	size_t off = iov_copy(iov, iovcnt, first, sizeof first);

	if (off == 0)
		return 0;
	if (inband_pg_program(first, off) != INBAND_PG_ANSWER_N) {
		/* A request cut into pieces of under 8 bytes passes too:
		 * inside TLS, the server refuses it (no silent plaintext). */
		conn->pg_filter = false;
		return 0;
	}
	log_info("rule [%s] %s -> %s: the program asked for %s itself: answered N (it goes on in plaintext, "
		 "inside our TLS)", rule_name(conn), conn->app_dest, conn->dest,
		 first[7] == 0x2f ? "SSL" : "GSS encryption");
	atomic_fetch_add(&conn->pg_owed, 1);
	atomic_fetch_add(&conn->rgen, 1);
	return INBAND_PG_REQUEST_LEN;
}

/* mysql, until authentication ends: the program's bytes with their
 * sequence IDs renumbered (a copy, at most a record's worth: a short
 * count otherwise), sent in the write's mode.  A retry after EAGAIN
 * renumbers the same bytes from the same state, so GnuTLS gets the same
 * record again.  wlock held, OPEN.  As tls_send. */
static ssize_t mysql_sendv(struct conn *conn, const struct iovec *iov, int iovcnt, bool dontwait)
{
	struct inband_mysql next = conn->mysql_up;
	unsigned char *buf;
	size_t total, len;
	ssize_t ret;
	int i;

	for (i = 0, total = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total == 0)
		return 0;
	if (!(buf = gather(iov, iovcnt, total, RBUF_SIZE, &len)))
		return -ENOMEM;
	inband_mysql_from_program(&next, buf, len);
	ret = as_errno(tls_send(conn->tls, buf, len, io_mode(dontwait)));
	/* The state after the bytes taken: the program's own bytes again,
	 * for a short count. */
	if (ret == (ssize_t)len) {
		conn->mysql_up = next;
	} else if (ret > 0) {
		iov_copy(iov, iovcnt, buf, (size_t)ret);
		inband_mysql_from_program(&conn->mysql_up, buf, (size_t)ret);
	}
	free(buf);
	return ret;
}

/* wlock held, send direction ours, OPEN: the program's bytes to the
 * engine, and what follows a write (rekey, Nagle back, or FAILED). */
static ssize_t sendv_locked(struct conn *conn, const struct iovec *iov, int iovcnt, bool dontwait)
{
	ssize_t ret;

	/* Rejected early data still owed goes first (-EAGAIN, -EINTR: none
	 * of this write's bytes were taken). */
	ret = resend_owed_early(conn, dontwait);
	if (ret == 0 && conn->pg_filter)
		ret = pg_answer(conn, iov, iovcnt);
	if (ret == 0 && atomic_load_explicit(&conn->mysql_on, memory_order_relaxed) && !conn->mysql_up.up.done)
		ret = mysql_sendv(conn, iov, iovcnt, dontwait);
	else if (ret == 0)
		ret = as_errno(tls_sendv(conn->tls, iov, iovcnt, io_mode(dontwait)));
	if (broken(ret)) {
		capture_alert(conn);
		log_failure(conn, "write failed", tls_reason(conn->tls));
		fail(conn, (int)-ret, (int)-ret);
	} else if (ret > 0) {
		maybe_rekey(conn, (size_t)ret);
		conn_nodelay_end(conn);
	}
	return ret;
}

ssize_t conn_sendv(struct conn *conn, const struct iovec *iov, int iovcnt, int flags)
{
	bool dontwait = flags & MSG_DONTWAIT, both;
	size_t total;
	ssize_t ret;

	/* Before the engine: a call the kernel would refuse must not reach
	 * it (its errors other than EAGAIN/EINTR fail the connection). */
	if ((ret = conn_iov_check(iov, iovcnt, &total)) < 0)
		return ret;
	if (flags & MSG_OOB)
		return refuse_oob(conn, true);
	if (!own(conn, OWNER_SEND))
		return refuse_foreign(conn, OWNER_SEND);
	/* shutdown(SHUT_WR) before the handshake (shut_early) is not the
	 * kernel's: a later write must not become 0-RTT data or the mysql
	 * first packet. */
	if (atomic_load(&conn->shut_wr) && state_of(conn) != CONN_PLAIN)
		return -EPIPE;
	lock_for_write(conn, &both);
	if (both) {
		ret = open_for_write(conn, iov, iovcnt, total, dontwait);
		pthread_mutex_unlock(&conn->rlock);
		if (ret != 0) {
			write_unlock(conn, io_mode(dontwait));
			return ret;
		}
	}
	if (!own(conn, OWNER_SEND)) {
		/* Again under the lock: a fork may have released it (owner.h). */
		ret = refuse_foreign(conn, OWNER_SEND);
	} else if (state_of(conn) == CONN_FAILED) {
		ret = -conn_errno(conn);
	} else if (state_of(conn) == CONN_PLAIN) {
		ret = plain_sendv(conn, iov, iovcnt, flags);
	} else if (conn->shut_wr) {
		ret = -EPIPE;
	} else if ((ret = answer_update_request(conn, dontwait)) < 0) {
		/* -EAGAIN: the transport is full; the program tries again. */
	} else {
		ret = sendv_locked(conn, iov, iovcnt, dontwait);
	}
	write_unlock(conn, io_mode(dontwait));
	return ret;
}

ssize_t conn_send(struct conn *conn, const void *buf, size_t len, int flags)
{
	struct iovec one = { (void *)buf, len };

	/* write()/send() have no vector to refuse: the kernel takes at most
	 * MAX_RW_COUNT bytes and faults past the memory; more than SSIZE_MAX
	 * bytes are never there. */
	if (len > (size_t)SSIZE_MAX)
		return -EFAULT;
	return conn_sendv(conn, &one, 1, flags);
}

long long conn_deadline(struct conn *conn)
{
	enum conn_state state = state_of(conn);

	if (state == CONN_HANDSHAKING && conn->early_pending)
		return atomic_load_explicit(&conn->early_wait_until, memory_order_relaxed);
	if (state == CONN_CONNECTING || state == CONN_HANDSHAKING)
		return atomic_load_explicit(&conn->deadline_ns, memory_order_relaxed);
	return 0;
}

bool conn_use_begin(struct conn *conn, int fd)
{
	struct conn *now;

	/* Count first, then look (both sequentially consistent): close()
	 * unmaps first, then looks at the count; one of us sees the other. */
	atomic_fetch_add(&conn->users, 1);
	atomic_thread_fence(memory_order_seq_cst);
	now = fdtab_get(fd);
	if (now)
		conn_unref(now);
	if (now == conn)
		return true;
	atomic_fetch_sub(&conn->users, 1);
	return false;
}

void conn_use_hold(struct conn *conn)
{
	atomic_fetch_add(&conn->users, 1);
}

void conn_use_end(struct conn *conn)
{
	atomic_fetch_sub(&conn->users, 1);
}

void conn_wait_unused(struct conn *conn)
{
	long long give_up = 0;
	int spins = 0;

	while (atomic_load(&conn->users) > 0) {
		if (++spins < 64)
			continue;
		if (!give_up)
			give_up = now_ns() + 2000000000LL;
		else if (now_ns() > give_up)
			break; /* never hang a close() */
		sched_yield();
	}
}

unsigned conn_read_generation(struct conn *conn)
{
	return atomic_load(&conn->rgen);
}

static void try_step(struct conn *conn);

/* Would a read return now (OPEN, receive side ours)?  Plaintext read
 * ahead or owed (postgres N answers), the end, a failure.  A hint, no
 * lock. */
static bool recv_ready(struct conn *conn)
{
	return conn->rlen > 0 || atomic_load(&conn->pg_owed) || conn->eof || conn->shut_rd ||
	       tls_pending(conn->tls) > 0 || state_of(conn) == CONN_FAILED;
}

/* The receiving half of conn_poll_prepare (OPEN, receive side ours). */
static short conn_poll_prepare_recv(struct conn *conn, short want, short *ready)
{
	short kernel = 0;

	if (want & POLLIN) {
		/* Whole records read ahead: decrypt one now, the kernel will
		 * not say readable for them. */
		if (conn->rlen == 0 && !conn->eof && tls_pending(conn->tls) == 0 &&
		    tls_buffered(conn->tls) > 0 && pthread_mutex_trylock(&conn->rlock) == 0) {
			if (mine(conn, OWNER_RECV))
				(void)fill_rbuf(conn, true);
			pthread_mutex_unlock(&conn->rlock);
		}
		if (recv_ready(conn))
			*ready |= POLLIN;
		if (conn->rlen < RBUF_SIZE)
			kernel |= POLLIN;
	}
	return kernel;
}

/* Does GnuTLS hold records to push (data, close_notify)?  A hint for poll,
 * lock-free: what the last holder of wlock saw (write_unlock).  A writer
 * inside pushes its own records; the flush in conn_poll_result re-checks
 * under wlock. */
static bool flush_hint(struct conn *conn)
{
	return atomic_load(&conn->send_queued);
}

/* Both directions: SELF if both are ours, OTHER if either is another's. */
static enum owner_state whole_state(struct conn *conn)
{
	enum owner_state r = owner_state(conn->owner, OWNER_RECV), w = owner_state(conn->owner, OWNER_SEND);

	if (r == OWNER_OTHER || w == OWNER_OTHER)
		return OWNER_OTHER;
	return r == OWNER_SELF && w == OWNER_SELF ? OWNER_SELF : OWNER_NONE;
}

/* Readiness of one direction another process owns: the I/O would fail
 * (EIO), so it is "ready" with an error.  Unowned: the kernel says. */
static short foreign_dir(struct conn *conn, enum owner_dir dir, short want, short *ready)
{
	short ev = dir == OWNER_RECV ? POLLIN : POLLOUT;

	if (!(want & ev))
		return 0;
	if (owner_state(conn->owner, dir) == OWNER_OTHER) {
		*ready |= POLLERR | ev;
		return 0;
	}
	return ev;
}

/* An open connection of which this process owns at most one direction
 * (after fork: rsync's receiver waits to read while its generator writes). */
static short split_prepare(struct conn *conn, short want, short *ready)
{
	short kernel = want & (POLLPRI | POLLRDHUP);

	if (state_of(conn) == CONN_FAILED) {
		*ready = POLLERR | POLLHUP | (want & (POLLIN | POLLOUT));
		return 0;
	}
	if (mine(conn, OWNER_RECV)) {
		kernel |= conn_poll_prepare_recv(conn, want, ready);
	} else {
		kernel |= foreign_dir(conn, OWNER_RECV, want, ready);
	}
	if (mine(conn, OWNER_SEND)) {
		if ((want & POLLOUT) || flush_hint(conn))
			kernel |= POLLOUT;
	} else {
		kernel |= foreign_dir(conn, OWNER_SEND, want, ready);
	}
	return kernel;
}

short conn_poll_prepare(struct conn *conn, short want, short *ready)
{
	short kernel = 0;

	*ready = 0;
	if (state_of(conn) == CONN_PLAIN)
		return want; /* the kernel says */
	if (state_of(conn) != CONN_OPEN && state_of(conn) != CONN_FAILED) {
		/* The handshake needs both directions. */
		switch (whole_state(conn)) {
		case OWNER_OTHER:
			*ready = POLLERR | (want & (POLLIN | POLLOUT));
			return 0;
		case OWNER_NONE:
			/* Unclaimed since fork: waiting is not using; the kernel says. */
			return want;
		case OWNER_SELF:
			break;
		}
	} else if (!mine(conn, OWNER_RECV) || !mine(conn, OWNER_SEND)) {
		return split_prepare(conn, want, ready);
	}
	switch (state_of(conn)) {
	case CONN_CONNECTING:
		return POLLOUT;
	case CONN_HANDSHAKING:
		if (atomic_load(&conn->program_turn)) {
			/* mysql: the program reads the greeting, writes its
			 * answer; the server is silent (a byte from it, or its
			 * close, fails the exchange: the kernel's POLLIN). */
			*ready = (want & POLLOUT) | (conn->rlen > 0 ? want & POLLIN : 0);
			return *ready ? 0 : POLLIN;
		}
		if (conn->early_pending) {
			/* Writable now: the first write carries the early data. */
			if (want & POLLOUT) {
				*ready = POLLOUT;
				return 0;
			}
			/* Waiting to read is not reading: event loops register
			 * for input before the program writes.  Give the write a
			 * moment; a program that only waits for the server to
			 * speak first gets its handshake, without early data. */
			if (now_ns() < atomic_load_explicit(&conn->early_wait_until, memory_order_relaxed))
				return 0;
			try_step(conn);
			if (state_of(conn) != CONN_HANDSHAKING)
				return conn_poll_prepare(conn, want, ready);
		}
		return atomic_load_explicit(&conn->hs_events, memory_order_relaxed);
	case CONN_FAILED:
		*ready = POLLERR | POLLHUP | (want & (POLLIN | POLLOUT));
		return 0;
	case CONN_PLAIN:
		return want;
	case CONN_OPEN:
		break;
	}
	kernel |= conn_poll_prepare_recv(conn, want, ready);
	if ((want & POLLOUT) || flush_hint(conn))
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
		if (whole_state(conn) == OWNER_SELF)
			(void)step_locked(conn, true);
		write_unlock(conn, TLS_NONBLOCKING);
	}
	pthread_mutex_unlock(&conn->rlock);
}

/* poll_result for a direction another process owns (EIO when used: an
 * error now) or nobody owns yet (the kernel says). */
static short foreign_result(struct conn *conn, enum owner_dir dir, short want, short krevents)
{
	short ev = dir == OWNER_RECV ? POLLIN | POLLRDHUP : POLLOUT;

	if (!(want & ev))
		return 0;
	if (owner_state(conn->owner, dir) == OWNER_OTHER)
		return POLLERR | (want & ev & (POLLIN | POLLOUT));
	return krevents & want & ev;
}

/* The sending half of conn_poll_result (OPEN, send side ours): push what
 * GnuTLS holds if the kernel takes it, and say POLLOUT once nothing waits.
 * The session's send state is read under wlock only; a writer inside
 * pushes its own records, and the program's next write waits for it. */
static short poll_result_send(struct conn *conn, short want, short krevents, bool just_opened)
{
	if ((krevents & POLLOUT) && flush_hint(conn))
		(void)push_nonblocking(conn);
	if ((want & POLLOUT) && !flush_hint(conn) && ((krevents & POLLOUT) || just_opened))
		return POLLOUT;
	return 0;
}

/* PLAIN: the kernel's readiness KREVENTS as it is.  Input the kernel
 * reports is news for edge-triggered epoll (a new read generation): the
 * bytes come from the kernel, not from a buffer of ours that would bump
 * it, and without it every EPOLLIN after the first would be taken for a
 * repeat and dropped. */
static short plain_poll_result(struct conn *conn, short want, short krevents)
{
	if (krevents & POLLIN)
		atomic_fetch_add(&conn->rgen, 1);
	return krevents & (want | POLLERR | POLLHUP | POLLNVAL);
}

short conn_poll_result(struct conn *conn, short want, short krevents)
{
	enum conn_state before = state_of(conn);
	bool just_opened;
	short out = 0;

	if (before == CONN_PLAIN)
		return plain_poll_result(conn, want, krevents);
	if (before != CONN_OPEN && before != CONN_FAILED) {
		/* The handshake needs both directions. */
		switch (whole_state(conn)) {
		case OWNER_OTHER:
			return POLLERR | (want & (POLLIN | POLLOUT));
		case OWNER_NONE:
			return krevents & (want | POLLERR | POLLHUP);
		case OWNER_SELF:
			break;
		}
	}
	if ((before == CONN_CONNECTING || before == CONN_HANDSHAKING) &&
	    (krevents || deadline_passed(conn)))
		try_step(conn);
	just_opened = before != CONN_OPEN && state_of(conn) == CONN_OPEN;
	switch (state_of(conn)) {
	case CONN_CONNECTING:
		return 0;
	case CONN_HANDSHAKING:
		if (atomic_load(&conn->program_turn))
			return (want & POLLOUT) | (conn->rlen > 0 ? want & POLLIN : 0);
		return conn->early_pending ? (want & POLLOUT) : 0;
	case CONN_FAILED:
		return POLLERR | POLLHUP | (want & (POLLIN | POLLOUT));
	case CONN_PLAIN:
		return plain_poll_result(conn, want, krevents);
	case CONN_OPEN:
		break;
	}
	if (!mine(conn, OWNER_SEND))
		out |= foreign_result(conn, OWNER_SEND, want, krevents);
	else
		out |= poll_result_send(conn, want, krevents, just_opened);
	if (!mine(conn, OWNER_RECV)) {
		out |= foreign_result(conn, OWNER_RECV, want, krevents);
	} else if (want & (POLLIN | POLLRDHUP)) {
		if (conn->rlen == 0 && !conn->eof && tls_pending(conn->tls) == 0 &&
		    (krevents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP))) {
			if (pthread_mutex_trylock(&conn->rlock) == 0) {
				if (mine(conn, OWNER_RECV))
					(void)fill_rbuf(conn, true);
				pthread_mutex_unlock(&conn->rlock);
			} else {
				out |= krevents & POLLIN; /* another thread is reading */
			}
		}
		if (recv_ready(conn))
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

/* Records that could not be pushed at the end: the program was told they
 * were sent, and the server will not get them.  Said once.  wlock held. */
static void log_final_loss(struct conn *conn, int err)
{
	char why[700];

	snprintf(why, sizeof why, "%s (%s); data the program wrote last, or close_notify, did not reach "
		 "the %s", tls_reason(conn->tls), strerror(err), peer_word(conn));
	log_failure(conn, "sending the end of the stream failed", why);
}

/* Queue close_notify and push it, behind what GnuTLS still holds: 0 (all
 * out), -EAGAIN (only when IO is TLS_NONBLOCKING, or a signal came), or a
 * fatal errno (logged).  wlock held. */
static int push_final_locked(struct conn *conn, enum tls_io io)
{
	int ret;

	/* Rejected early data still owed goes before close_notify. */
	ret = resend_rejected_early(conn, io == TLS_NONBLOCKING);
	if (ret == 0)
		ret = (int)as_errno(tls_bye(conn->tls, io));
	if (ret == -EINTR)
		ret = -EAGAIN;
	if (ret < 0 && ret != -EAGAIN && state_of(conn) != CONN_FAILED) {
		/* A server that ended first (its close_notify read) may reset
		 * before ours arrives: nothing of the program's is lost. */
		if (conn->eof)
			log_debug("rule [%s] %s -> %s: close_notify not sent, the %s had closed already: %s",
				  rule_name(conn), conn->app_dest, conn->dest, peer_word(conn), tls_reason(conn->tls));
		else
			log_final_loss(conn, -ret);
		fail(conn, -ret, -ret);
	}
	return ret;
}

/* shutdown(SHUT_WR) deferred behind queued records: now they are out.
 * wlock held. */
static void fin_if_flushed(struct conn *conn)
{
	if (atomic_load(&conn->fin_pending) && !tls_flush_pending(conn->tls) && !early_owed(conn) &&
	    atomic_exchange(&conn->fin_pending, false))
		real.shutdown(conn->fd, SHUT_WR);
}

/* The program shut the write side while this thread held wlock (bye_owed,
 * conn_shutdown): its bytes went first, close_notify follows them now (IO:
 * the way the holder's own call may wait), then the kernel's SHUT_WR.
 * What does not go now goes from poll, close or exit (fin_pending).
 * wlock held. */
static void pay_bye_locked(struct conn *conn, enum tls_io io)
{
	if (!atomic_exchange(&conn->bye_owed, false))
		return;
	if (state_of(conn) != CONN_OPEN || !mine(conn, OWNER_SEND))
		return;
	if (push_final_locked(conn, io) == 0)
		fin_if_flushed(conn);
}

/* Let go of wlock.  Every holder comes through here: shutdown() does not
 * wait for the lock, it leaves close_notify to the holder (bye_owed) and
 * then tries the lock once more, so one of the two sees the other (the
 * fences order the flag against the lock word on both sides).  Publishes
 * send_queued for poll on the way out. */
static void write_unlock(struct conn *conn, enum tls_io io)
{
	for (;;) {
		pay_bye_locked(conn, io);
		atomic_store(&conn->send_queued, tls_flush_pending(conn->tls) || early_owed(conn));
		pthread_mutex_unlock(&conn->wlock);
		atomic_thread_fence(memory_order_seq_cst);
		if (!atomic_load(&conn->bye_owed) || pthread_mutex_trylock(&conn->wlock) != 0)
			return;
	}
}

/* shutdown(SHUT_WR or SHUT_RDWR) of an open connection, send side ours:
 * the program writes no more (later writes fail with EPIPE), close_notify
 * is queued behind every byte a write took.  Never waits, not even for a
 * writer blocked in a full socket (it holds wlock and sends close_notify
 * when its write ends: write_unlock).  Return CONN_SHUT_KEEP_WR (records
 * still wait: the kernel's SHUT_WR follows them), 0, or a negative errno. */
static int shut_write(struct conn *conn)
{
	int ret;

	conn->shut_wr = true;
	if (pthread_mutex_trylock(&conn->wlock) != 0) {
		conn->fin_pending = true;
		conn->bye_owed = true;
		atomic_thread_fence(memory_order_seq_cst);
		if (pthread_mutex_trylock(&conn->wlock) != 0)
			return CONN_SHUT_KEEP_WR; /* the holder pays the bye */
		atomic_store(&conn->bye_owed, false);
	}
	if (!own(conn, OWNER_SEND)) {
		ret = (int)refuse_foreign(conn, OWNER_SEND);
	} else {
		/* The kernel's shutdown does not wait either: what does not
		 * go now goes from poll, close or exit. */
		ret = push_final_locked(conn, TLS_NONBLOCKING);
		if (ret == -EAGAIN)
			conn->fin_pending = true;
		if (ret == -EAGAIN || (ret == 0 && conn->fin_pending))
			ret = CONN_SHUT_KEEP_WR;
	}
	write_unlock(conn, TLS_NONBLOCKING);
	return ret;
}

/* A connection whose handshake (or a client's TCP connect, or its rule's
 * exchange before TLS) has not finished yet: a program may shut its
 * sending side before it reads (a receive-only service, a client that
 * only reads a banner).  Any thread, no lock. */
static bool unopened(struct conn *conn)
{
	enum conn_state state = state_of(conn);

	return state == CONN_HANDSHAKING || state == CONN_CONNECTING;
}

/* shutdown(SHUT_WR or SHUT_RDWR) while early data is unconfirmed
 * (early_unconfirmed) or before the handshake (unopened):
 * the kernel's SHUT_WR now would end the handshake (and lose the bytes).
 * close_notify is owed instead (fin_pending): the thread that finishes the
 * handshake sends it (handshake_step), else poll, close or exit do; a
 * plaintext client (plaintext = allow) gets the kernel's shutdown then
 * (plaintext_allowed).  No lock.  Return CONN_SHUT_KEEP_WR (and
 * CONN_SHUT_KEEP_RD for SHUT_RDWR), or a negative errno. */
static int shut_early(struct conn *conn, int how)
{
	int keep = CONN_SHUT_KEEP_WR, ret;

	if (how == SHUT_RDWR) {
		conn->shut_rd = true;
		keep |= CONN_SHUT_KEEP_RD;
	}
	conn->shut_wr = true;
	atomic_store(&conn->fin_pending, true);
	/* The handshake ended meanwhile, maybe before it could see
	 * fin_pending (both sides are seq_cst: one sees the other). */
	if (state_of(conn) == CONN_OPEN) {
		atomic_store(&conn->fin_pending, false); /* shut_write sets it again if owed */
		ret = shut_write(conn);
		if (ret < 0)
			return ret;
		keep = (keep & ~CONN_SHUT_KEEP_WR) | ret;
	}
	return keep;
}

int conn_shutdown(struct conn *conn, int how)
{
	int ret = 0, keep = 0;

	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return 0;
	/* close_notify: only the send owner may write it. */
	if (how != SHUT_RD && !own(conn, OWNER_SEND))
		return refuse_foreign(conn, OWNER_SEND);
	if (how != SHUT_RD && (early_unconfirmed(conn) || unopened(conn)))
		return shut_early(conn, how);
	if (how == SHUT_RD && unopened(conn)) {
		/* The kernel's SHUT_RD would end the handshake's reads too. */
		conn->shut_rd = true;
		return CONN_SHUT_KEEP_RD;
	}
	if (state_of(conn) != CONN_OPEN)
		return 0;
	/* The read side closes here only: the kernel's would answer the
	 * server's next record (a late session ticket, its close_notify) with
	 * a reset, and the server would lose what it had not read yet; on a
	 * socket shared since fork it would also end another process's reads. */
	if (how == SHUT_RD || how == SHUT_RDWR) {
		conn->shut_rd = true;
		keep |= CONN_SHUT_KEEP_RD;
	}
	if (how == SHUT_WR || how == SHUT_RDWR) {
		ret = shut_write(conn);
		if (ret > 0)
			keep |= ret;
	}
	return ret < 0 ? ret : keep;
}

/* The lingering close of a connection whose early data is unconfirmed
 * (conn_closing): one non-blocking handshake step.  wlock held, send side
 * ours; takes rlock by trylock (its holder may wait for wlock).  Return 0
 * when OPEN, -EINPROGRESS (the handshake goes on: conn->hs_events says
 * for what), -EBUSY, or a negative errno (FAILED, logged with the bytes
 * lost: handshake_failed). */
static int finish_handshake(struct conn *conn)
{
	int ret;

	if (pthread_mutex_trylock(&conn->rlock) != 0)
		return -EBUSY;
	if (!mine(conn, OWNER_RECV))
		ret = -EIO;
	else
		ret = step_locked(conn, true);
	pthread_mutex_unlock(&conn->rlock);
	if (ret == -EAGAIN || ret == -EINTR)
		return -EINPROGRESS;
	return ret < 0 ? ret : 0;
}

int conn_push_final(struct conn *conn)
{
	int ret;

	if (state_of(conn) == CONN_FAILED)
		return -conn_errno(conn);
	if (!mine(conn, OWNER_SEND))
		return -EIO; /* never written from here (conn_closing says NOW) */
	if (pthread_mutex_trylock(&conn->wlock) != 0)
		return -EBUSY;
	if (!mine(conn, OWNER_SEND)) {
		write_unlock(conn, TLS_NONBLOCKING);
		return -EIO;
	}
	if (state_of(conn) == CONN_HANDSHAKING) {
		ret = finish_handshake(conn);
		if (ret < 0) {
			write_unlock(conn, TLS_NONBLOCKING);
			return ret;
		}
	}
	conn->shut_wr = true;
	atomic_store(&conn->bye_owed, false); /* paid here */
	ret = push_final_locked(conn, TLS_NONBLOCKING);
	if (ret == 0)
		conn->fin_pending = false;
	write_unlock(conn, TLS_NONBLOCKING);
	return ret;
}

/* Read (and drop) what the server sent and the program never will
 * (session tickets, mostly): closing a socket with unread data makes the
 * kernel reset the connection, and the server then loses what it had not
 * read yet.  The tickets go to the cache on the way.  Never blocks.
 * Return true if the server is done sending: its close_notify or end of
 * stream was read, now or before.  Takes rlock (trylock: false if busy). */
static bool drain(struct conn *conn)
{
	unsigned char scratch[4096];
	bool done = false;
	int i;

	if (pthread_mutex_trylock(&conn->rlock) != 0)
		return false;
	if (!mine(conn, OWNER_RECV)) {
		pthread_mutex_unlock(&conn->rlock);
		return false;
	}
	done = conn->eof;
	for (i = 0; i < 64 && !done; i++) {
		ssize_t ret = as_errno(tls_recv(conn->tls, scratch, sizeof scratch, TLS_NONBLOCKING));

		save_ticket(conn);
		/* End of stream, or a stream that is broken for good. */
		if (ret == 0)
			conn->eof = true;
		if (ret == 0 || broken(ret))
			done = true;
		if (ret <= 0)
			break;
	}
	pthread_mutex_unlock(&conn->rlock);
	return done;
}

void conn_log_undelivered(struct conn *conn, const char *why)
{
	char reason[300];

	snprintf(reason, sizeof reason, "%s: the last bytes the program wrote, or close_notify, did not "
		 "reach the %s", why, peer_word(conn));
	log_failure(conn, "sending the end of the stream failed", reason);
}

enum conn_close conn_closing(struct conn *conn)
{
	/* Only the owner of a direction uses it; an unclaimed direction may
	 * live on in another process.  The reader only reads what is pending;
	 * only the writer says goodbye; lingering (reading the socket until
	 * the server closes) only when both are ours, else it would steal the
	 * other process's records (linger.c asks conn_owns_recv). */
	bool server_done = false, recv, send;
	int ret;

	let_go(conn);
	recv = mine(conn, OWNER_RECV);
	send = mine(conn, OWNER_SEND);

	/* Early data not yet confirmed: the lingering close finishes the
	 * handshake (conn_push_final), then close_notify follows. */
	if (early_unconfirmed(conn) && recv && send) {
		conn->shut_wr = true;
		atomic_store(&conn->fin_pending, true);
		return CONN_CLOSE_OUTPUT;
	}
	if (early_unconfirmed(conn) && send)
		log_error("rule [%s] %s -> %s: closed during the handshake by a process that does not own the "
			  "receiving side: the %zu bytes of early data may be lost", rule_name(conn),
			  conn->app_dest, conn->dest, conn->early_len);
	if ((!recv && !send) || state_of(conn) != CONN_OPEN)
		return CONN_CLOSE_NOW;
	if (recv)
		server_done = drain(conn);
	if (!send)
		return CONN_CLOSE_NOW; /* the writer's socket: never shut down or lingered here */
	/* Another thread is writing: it may still be taking the last bytes;
	 * the lingering close pushes them and close_notify after it. */
	if (pthread_mutex_trylock(&conn->wlock) != 0)
		return CONN_CLOSE_OUTPUT;
	conn->shut_wr = true;
	atomic_store(&conn->bye_owed, false); /* paid here */
	ret = mine(conn, OWNER_SEND) ? push_final_locked(conn, TLS_NONBLOCKING) : -EIO;
	write_unlock(conn, TLS_NONBLOCKING);
	if (ret == -EAGAIN)
		return CONN_CLOSE_OUTPUT;
	if (ret < 0)
		return CONN_CLOSE_NOW;
	/* A fork released the receiving side and nobody read since: the
	 * server's session tickets sit unread in the socket, and closing
	 * its last descriptor now would answer with a reset that destroys
	 * what the server has not read yet.  Nobody's records are ours to
	 * read (a process that still holds the socket may claim them): keep
	 * the socket, unread, until the server closes. */
	if (!recv)
		return conn_recv_unowned(conn) ? CONN_CLOSE_WAIT : CONN_CLOSE_NOW;
	return server_done ? CONN_CLOSE_NOW : CONN_CLOSE_LINGER;
}

int conn_take_so_error(struct conn *conn)
{
	return atomic_exchange(&conn->so_error, 0);
}

void conn_kernel_error(struct conn *conn, int err)
{
	ssize_t ret;

	if (!mine(conn, OWNER_RECV) || state_of(conn) != CONN_OPEN ||
	    pthread_mutex_trylock(&conn->rlock) != 0)
		return;
	if (!mine(conn, OWNER_RECV)) {
		pthread_mutex_unlock(&conn->rlock);
		return;
	}
	/* The reason is often an alert that arrived before the reset (TLS 1.3
	 * rejects a client certificate after our side of the handshake).
	 * Data first: kept for the program, as any read keeps it (renumbered
	 * for mysql, a new read generation); a broken read is said there. */
	ret = fill_rbuf(conn, true);
	if (ret <= 0 && !broken(ret) && state_of(conn) == CONN_OPEN) {
		log_failure(conn, "connection failed", strerror(err));
		fail(conn, err, err);
	}
	pthread_mutex_unlock(&conn->rlock);
}

size_t conn_readable(struct conn *conn)
{
	int n = 0;

	if (state_of(conn) == CONN_PLAIN)
		return real.ioctl(conn->fd, FIONREAD, &n) == 0 && n > 0 ? (size_t)n : 0;
	if (state_of(conn) != CONN_OPEN || !mine(conn, OWNER_RECV))
		return atomic_load(&conn->program_turn) ? conn->rlen : 0;
	if (conn->rlen == 0 && tls_pending(conn->tls) == 0 && tls_buffered(conn->tls) > 0 &&
	    pthread_mutex_trylock(&conn->rlock) == 0) {
		if (mine(conn, OWNER_RECV))
			(void)fill_rbuf(conn, true);
		pthread_mutex_unlock(&conn->rlock);
	}
	return conn->rlen + atomic_load(&conn->pg_owed) + tls_pending(conn->tls);
}

void conn_nodelay_begin(struct conn *conn)
{
	int on = 1, cur = 0;
	socklen_t len = sizeof cur;

	if (real.getsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &cur, &len) < 0 || cur)
		return;
	if (real.setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0) {
		atomic_store(&conn->app_nodelay, 0);
		atomic_store(&conn->nodelay_window, true);
	}
}

void conn_nodelay_end(struct conn *conn)
{
	int value;

	/* A reader and a writer may both get here: one of them closes it. */
	if (!atomic_load_explicit(&conn->nodelay_window, memory_order_relaxed) ||
	    !atomic_exchange(&conn->nodelay_window, false))
		return;
	value = atomic_load(&conn->app_nodelay);
	real.setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &value, sizeof value);
}

bool conn_nodelay_set(struct conn *conn, int value)
{
	if (!atomic_load(&conn->nodelay_window))
		return false;
	atomic_store(&conn->app_nodelay, value != 0);
	return true;
}

int conn_nodelay_get(struct conn *conn)
{
	return atomic_load(&conn->nodelay_window) ? atomic_load(&conn->app_nodelay) : -1;
}
