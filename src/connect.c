/* connect.c - what connect() does (hook_connect.c calls shim_connect):
 * gather what is known about the destination, ask decide_connect()
 * (decide.c, pure) for the verdict, then act on it and log it: pass
 * through, refuse, or register the socket as an upgraded connection and
 * start its TCP connect and handshake (conn.c). */
#include "shim.h"
#include "conn.h"
#include "decide.h"
#include "epoll_reg.h"
#include "fdtab.h"
#include "hosts.h"
#include "linger.h"
#include "log.h"
#include "names.h"
#include "hook_stdio.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

/* The real connect(): 0 or a negative errno. */
static int connect_plain(int fd, const struct sockaddr *addr, socklen_t len)
{
	return real.connect(fd, addr, len) < 0 ? -errno : 0;
}

/* Is FD a stream (TCP) socket?  False if it cannot be told. */
static bool is_stream_socket(int fd)
{
	int type = 0;
	socklen_t len = sizeof type;

	return real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

/* Repeated connect() on a managed socket (hiredis checks completion so). */
static int connect_again(struct conn *conn)
{
	short ready = 0;

	if (!conn_claim(conn))
		return -EIO;
	conn_poll_prepare(conn, POLLOUT, &ready);
	conn_poll_result(conn, POLLOUT, POLLOUT);
	switch (atomic_load(&conn->state)) {
	case CONN_OPEN:
		return -EISCONN;
	case CONN_FAILED: {
		int err = conn_take_so_error(conn);

		return -(err ? err : conn->error);
	}
	default:
		/* mysql: the program's turn (it reads the greeting) is connected. */
		return atomic_load(&conn->program_turn) ? -EISCONN : -EALREADY;
	}
}

/* The names known for an address, as decide_connect() takes them; the
 * pointers in NAMES point into this struct and into the hosts file. */
struct known_names {
	struct name_list resolved;
	const char *resolved_ptrs[NAMES_MAX_PER_ADDR];
	const char *hosts[DECIDE_MAX_NAMES];
	struct decide_names names;
};

/* Fill *K for A: the names the program resolved to it (names.h), then those
 * the hosts file lists for it (read on first need). */
static void gather_known_names(const struct decide_addr *a, struct known_names *k)
{
	const struct hosts *hosts;
	size_t i, n_hosts = 0;

	names_lookup(a->family, a->addr, &k->resolved);
	for (i = 0; i < k->resolved.count; i++)
		k->resolved_ptrs[i] = k->resolved.names[i];
	hosts = shim_hosts();
	if (hosts)
		n_hosts = hosts_names_for(hosts, a->family, a->addr, k->hosts, DECIDE_MAX_NAMES);
	k->names.resolved = k->resolved_ptrs;
	k->names.n_resolved = k->resolved.count;
	k->names.hosts = k->hosts;
	k->names.n_hosts = n_hosts < DECIDE_MAX_NAMES ? n_hosts : DECIDE_MAX_NAMES;
}

/* ADDR (LEN bytes, AF_INET or AF_INET6) with its port replaced by PORT, in *OUT. */
static void with_port(const struct sockaddr *addr, socklen_t len, uint16_t port,
		      struct sockaddr_storage *out)
{
	memset(out, 0, sizeof *out);
	memcpy(out, addr, len < sizeof *out ? len : sizeof *out);
	if (addr->sa_family == AF_INET)
		((struct sockaddr_in *)out)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)out)->sin6_port = htons(port);
}

/* The rule's proxy as an address a socket of FAMILY can reach, in *OUT
 * (*OUTLEN), and as text in ADDR: an IPv4 proxy for an IPv6 socket as a
 * v4-mapped address.  0, or a negative errno with WHY filled. */
static int proxy_address(const struct policy_rule *rule, int family, struct sockaddr_storage *out,
			 socklen_t *outlen, char *addr, size_t addrlen, char *why, size_t whylen)
{
	struct addrinfo hints, *res = NULL, *ai, *v4 = NULL, *v6 = NULL;
	char port[8], text[INET6_ADDRSTRLEN];
	int ret;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof port, "%u", rule->proxy_port);
	/* The real resolver: the proxy's name is not a destination the
	 * program resolved (names.h).  Guarded: the resolver's own sockets
	 * (DNS over TCP) are not the program's, no rule applies to them. */
	shim_guard++;
	ret = real.getaddrinfo(rule->proxy_host, port, &hints, &res);
	shim_guard--;
	if (ret != 0) {
		snprintf(why, whylen, "the proxy %s cannot be resolved: %s", rule->proxy_host, gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET && !v4)
			v4 = ai;
		if (ai->ai_family == AF_INET6 && !v6)
			v6 = ai;
	}
	memset(out, 0, sizeof *out);
	if (family == AF_INET && v4) {
		memcpy(out, v4->ai_addr, v4->ai_addrlen);
		*outlen = v4->ai_addrlen;
	} else if (family == AF_INET6 && v6) {
		memcpy(out, v6->ai_addr, v6->ai_addrlen);
		*outlen = v6->ai_addrlen;
	} else if (family == AF_INET6 && v4) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = ((struct sockaddr_in *)v4->ai_addr)->sin_port;
		sin6->sin6_addr.s6_addr[10] = 0xff;
		sin6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&sin6->sin6_addr.s6_addr[12], &((struct sockaddr_in *)v4->ai_addr)->sin_addr, 4);
		*outlen = sizeof *sin6;
	} else {
		freeaddrinfo(res);
		snprintf(why, whylen, "the proxy %s has no IPv4 address, and the program's socket is IPv4",
			 rule->proxy_host);
		return -EAFNOSUPPORT;
	}
	freeaddrinfo(res);
	if (out->ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)out)->sin_addr, text, sizeof text);
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)out)->sin6_addr, text, sizeof text);
	snprintf(addr, addrlen, out->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", text, rule->proxy_port);
	return 0;
}

/* The TCP connect of the upgraded socket FD (CONN, registered) returned RET:
 * start the handshake, and return what the program's connect() returns.
 * The caller keeps its reference to CONN. */
static int upgrade_started(int fd, struct conn *conn, int ret, const struct decision *d)
{
	if (ret == -EINPROGRESS || ret == -EINTR) {
		conn_start(conn, true);
		stdio_after_upgrade(fd);
		epoll_adopt(fd);
		return ret;
	}
	if (ret < 0) {
		log_error("rule [%s] %s -> %s: connect failed: %s", d->rule->name, d->app_dest, d->dest,
			  strerror(-ret));
		conn_unref(fdtab_remove(fd));
		return ret;
	}
	ret = conn_start(conn, false);
	if (ret == 0 && conn->early_pending && atomic_load(&conn->state) == CONN_HANDSHAKING) {
		/* 0-RTT: connected; the first write carries the early data. */
		if (real.fcntl(fd, F_GETFL) & O_NONBLOCK) {
			ret = -EINPROGRESS;
			epoll_adopt(fd);
		}
	} else if (ret == 0 && atomic_load(&conn->state) != CONN_OPEN && !atomic_load(&conn->program_turn)) {
		/* Non-blocking socket: the program waits for writability. */
		ret = -EINPROGRESS;
		epoll_adopt(fd);
	} else if (ret < 0) {
		/* The descriptor stays registered, FAILED: nothing can cross it.
		 * connect() reports what SO_ERROR would: ETIMEDOUT for a
		 * handshake that timed out, else ECONNREFUSED (or the TCP
		 * error itself). */
		int err = conn_take_so_error(conn);

		ret = -(err ? err : ECONNREFUSED);
	}
	stdio_after_upgrade(fd);
	return ret;
}

/* Verdict UPGRADE (D) for FD, which the program connects to ADDR (LEN
 * bytes): register FD as a connection, connect it to D->to, start TLS.
 * 0 or a negative errno (-EINPROGRESS included), as connect() returns. */
static int connect_upgrade(int fd, const struct sockaddr *addr, socklen_t len, const struct decision *d)
{
	struct sockaddr_storage to;
	struct conn_params params;
	struct conn *conn;
	char err[512], target[300], proxy[INET6_ADDRSTRLEN + 10];
	socklen_t tolen = len;
	int ret, fdflags;

	memset(&params, 0, sizeof params);
	if (d->rule->proxy_host) {
		/* The TCP connect goes to the proxy; CONNECT names the
		 * destination, and TLS is verified for it. */
		ret = proxy_address(d->rule, addr->sa_family, &to, &tolen, proxy, sizeof proxy, err, sizeof err);
		if (ret < 0) {
			log_error("rule [%s] %s: refused: %s", d->rule->name, d->app_dest, err);
			return -ECONNREFUSED;
		}
		decide_proxy_target(d, target, sizeof target);
		params.proxy_target = target;
		params.proxy_addr = proxy;
	} else {
		with_port(addr, len, d->to.port, &to);
	}
	params.fd = fd;
	params.rule = d->rule;
	params.dest = d->dest;
	params.app_dest = d->app_dest;
	params.verify_name = d->verify_name;
	params.sni = d->sni;
	params.cache_key = d->cache_key[0] ? d->cache_key : NULL;
	conn = conn_new(&params, err, sizeof err);
	if (!conn) {
		log_error("rule [%s] %s: refused: %s", d->rule->name, d->app_dest, err);
		return -ECONNREFUSED;
	}
	fdflags = real.fcntl(fd, F_GETFD);
	if (fdtab_put(fd, conn, fdflags >= 0 && (fdflags & FD_CLOEXEC)) < 0) {
		conn_unref(conn);
		return -ENOMEM;
	}
	/* An upgraded socket never reaches a new program image in clear. */
	real.fcntl(fd, F_SETFD, FD_CLOEXEC);
	conn_nodelay_begin(conn);
	log_debug("rule [%s] %s: upgrading via %s%s%s, server-name %s", d->rule->name, d->app_dest, d->dest,
		  params.proxy_addr ? ", proxy " : "", params.proxy_addr ? params.proxy_addr : "",
		  d->verify_name ? d->verify_name : "-");
	ret = upgrade_started(fd, conn, connect_plain(fd, (struct sockaddr *)&to, tolen), d);
	conn_unref(conn);
	return ret;
}

/* Act on D for FD, which the program connects to ADDR (LEN bytes), and log
 * it.  0 or a negative errno, as connect() returns. */
static int act(int fd, const struct sockaddr *addr, socklen_t len, const struct decision *d)
{
	switch (d->verdict) {
	case DECIDE_PLAIN:
		if (d->rule)
			log_debug("rule [%s] %s: %s, passed through", d->rule->name, d->app_dest, d->reason);
		return connect_plain(fd, addr, len);
	case DECIDE_DENY:
		log_error("rule [%s] %s%s%s: connection %s", d->rule->name, d->app_dest,
			  d->n_names ? " " : "", d->n_names ? d->names[0] : "", d->reason);
		return -ECONNREFUSED;
	case DECIDE_REFUSE:
		if (d->rule)
			log_error("rule [%s] %s: refused: %s", d->rule->name, d->app_dest, d->reason);
		else
			log_error("%s: refused: %s %s", d->app_dest, d->reason, shim_policy_path());
		return -ECONNREFUSED;
	case DECIDE_UPGRADE:
		return connect_upgrade(fd, addr, len, d);
	}
	return -ECONNREFUSED; /* not reached: every verdict is above */
}

int shim_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	static const struct decide_names no_names;
	const struct policy *policy;
	struct known_names known;
	struct decide_addr dest;
	struct decision d;
	struct conn *conn;
	int ret;

	if (!addr || !decide_read_sockaddr(addr, addrlen, &dest))
		return connect_plain(fd, addr, addrlen);
	linger_service();
	conn = fdtab_get_checked(fd);
	if (conn) {
		ret = connect_again(conn);
		conn_unref(conn);
		return ret;
	}
	if (!shim_may_upgrade() || !is_stream_socket(fd))
		return connect_plain(fd, addr, addrlen);
	/* A broken policy (NULL) refuses, without looking up names. */
	policy = shim_policy();
	if (policy)
		gather_known_names(&dest, &known);
	decide_connect(policy, &dest, policy ? &known.names : &no_names, &d);
	return act(fd, addr, addrlen, &d);
}
