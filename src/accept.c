/* accept.c - what accept() and accept4() do (hook_create.c calls
 * shim_accept): an accepted TCP connection whose local address an inbound
 * rule covers becomes a server connection the library manages.  accept
 * never waits for the handshake: it runs on the program's first read,
 * write, poll or epoll of the descriptor (conn.c), so a slow client never
 * stalls an accept loop.  The decision is decide_accept() (decide.c, pure);
 * this file gathers its inputs and acts on the verdict. */
#include "shim.h"
#include "adopt.h"
#include "conn.h"
#include "decide.h"
#include "fdtab.h"
#include "log.h"
#include "policy.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* ---- the ticket key: one per process tree ---- */

static unsigned char ticket_key[TLS_TICKET_KEY_LEN];
static atomic_int ticket_key_state; /* 0 none, 1 being made, 2 made */

void shim_ticket_key_make(void)
{
	int none = 0;
	size_t got = 0;
	ssize_t n;

	if (!atomic_compare_exchange_strong(&ticket_key_state, &none, 1))
		return;
	/* getrandom is async-signal-safe: the fork prepare step may call this. */
	while (got < sizeof ticket_key) {
		n = getrandom(ticket_key + got, sizeof ticket_key - got, GRND_NONBLOCK);
		if (n < 0 && errno != EINTR) {
			atomic_store(&ticket_key_state, 0);
			return;
		}
		if (n > 0)
			got += (size_t)n;
	}
	atomic_store(&ticket_key_state, 2);
}

/* The key, or NULL (none could be made: no tickets). */
static const unsigned char *ticket_key_get(void)
{
	shim_ticket_key_make();
	return atomic_load(&ticket_key_state) == 2 ? ticket_key : NULL;
}

/* ---- accept ---- */

/* Close the accepted FD with a reset (the client must not take a close for
 * an orderly end); what accept() then returns. */
static int drop(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	real.setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	real.close(fd);
	adopt_closed(fd); /* the number is free: whatever comes back there is new */
	return -ECONNABORTED;
}

/* FD's local (PEER false) or peer address: true if it is TCP/IP. */
static bool sock_addr(int fd, bool peer, struct decide_addr *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int ret = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		       : getsockname(fd, (struct sockaddr *)&ss, &len);

	return ret == 0 && decide_read_sockaddr((struct sockaddr *)&ss, len, out);
}

/* Is FD a stream socket?  Any, as connect() upgrades: TCP, and MPTCP,
 * whose protocol is not IPPROTO_TCP (a covered connection is upgraded or
 * refused, never passed through in clear). */
static bool is_stream(int fd)
{
	int type = 0;
	socklen_t len = sizeof type;

	return real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

int shim_server_conn(int fd, bool app_cloexec, const struct decision *d, const char *how)
{
	struct conn_params params;
	struct conn *conn;
	char err[512];
	int ret;

	memset(&params, 0, sizeof params);
	params.fd = fd;
	params.rule = d->rule;
	params.dest = d->dest;
	params.app_dest = d->app_dest;
	params.server = true;
	params.ticket_key = d->rule->session_tickets ? ticket_key_get() : NULL;
	conn = conn_new(&params, err, sizeof err);
	if (!conn) {
		log_error("rule [%s] %s -> %s: connection refused: %s", d->rule->name, d->app_dest, d->dest, err);
		return -ECONNABORTED;
	}
	if ((ret = fdtab_put(fd, conn, app_cloexec)) < 0) {
		conn_unref(conn);
		return ret;
	}
	/* An upgraded socket never reaches a new program image in clear
	 * (hook_exec.c passes one whose handshake has not begun). */
	real.fcntl(fd, F_SETFD, FD_CLOEXEC);
	conn_nodelay_begin(conn);
	conn_start_server(conn);
	log_debug("rule [%s] %s -> %s: %s, TLS server handshake on first use", d->rule->name, d->app_dest,
		  d->dest, how);
	conn_unref(conn);
	return 0;
}

/* Verdict UPGRADE (D) for the accepted FD, close-on-exec as the program
 * asked APP_CLOEXEC: register it as a server connection.  Return FD, or a
 * negative errno (FD closed: nothing may reach the program in clear). */
static int accept_upgrade(int fd, bool app_cloexec, const struct decision *d)
{
	return shim_server_conn(fd, app_cloexec, d, "accepted") < 0 ? drop(fd) : fd;
}

/* Act on D for the accepted FD: return FD or a negative errno. */
static int act(int fd, bool app_cloexec, const struct decision *d)
{
	switch (d->verdict) {
	case DECIDE_PLAIN:
		if (d->rule)
			log_debug("rule [%s] %s -> %s: %s, passed through", d->rule->name, d->app_dest, d->dest,
				  d->reason);
		return fd;
	case DECIDE_DENY:
		log_warning("rule [%s] %s -> %s: connection %s (reset)", d->rule->name, d->app_dest, d->dest,
			    d->reason);
		return drop(fd);
	case DECIDE_REFUSE:
		log_error("%s -> %s: refused (reset): %s %s", d->app_dest, d->dest, d->reason,
			  shim_policy_path());
		return drop(fd);
	case DECIDE_UPGRADE:
		return accept_upgrade(fd, app_cloexec, d);
	}
	return drop(fd); /* not reached */
}

int shim_accepted(int fd, int flags)
{
	struct decide_addr local, peer;
	const struct policy *policy;
	struct decision d;
	bool have_peer;

	if (fd < 0 || !shim_may_upgrade())
		return fd;
	policy = shim_policy();
	/* Programs without inbound rules pay nothing more (a broken policy
	 * refuses: it may have had some). */
	if (policy && !policy->has_inbound)
		return fd;
	if (!sock_addr(fd, false, &local) || !is_stream(fd))
		return fd;
	have_peer = sock_addr(fd, true, &peer);
	decide_accept(policy, &local, have_peer ? &peer : NULL, &d);
	return act(fd, flags & SOCK_CLOEXEC, &d);
}
