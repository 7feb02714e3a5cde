/* shim.c - start-up, the policy, fork handlers, and what connect() does. */
#include "shim.h"
#include "cache.h"
#include "conn.h"
#include "decide.h"
#include "fdtab.h"
#include "forklock.h"
#include "hosts.h"
#include "linger.h"
#include "log.h"
#include "names.h"
#include "owner.h"
#include "policy.h"
#include "policy_load.h"
#include "stdio_swap.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct policy *policy;
static char policy_path[4096];
static char policy_problem[3 * 4096]; /* non-empty: the policy is broken, fail closed */
static struct hosts *hosts;
static pthread_once_t hosts_once = PTHREAD_ONCE_INIT;

#define POLICY_FD_MIN 500
static struct stat policy_st; /* the policy file opened at start-up */
static bool policy_held;      /* ... and its descriptor was kept for init_once */

/* $TLSSHIM_POLICY, else the first policy file found (policy_find). */
static void path_from_env_or_find(void)
{
	const char *path = secure_getenv("TLSSHIM_POLICY");

	if (path && *path) {
		/* No stdio here: its code would be paged in by every process. */
		size_t len = strlen(path);

		if (len < sizeof policy_path)
			memcpy(policy_path, path, len + 1);
		else
			memcpy(policy_problem, "the policy path is too long", sizeof "the policy path is too long");
	} else if (!policy_find(policy_path, sizeof policy_path)) {
		if (errno == ENAMETOOLONG)
			snprintf(policy_problem, sizeof policy_problem, "the policy path is too long");
		policy_path[0] = '\0';
	}
}

/* Start-up, in every process that has the library: only what cannot wait.
 * A shell script under tlsshim starts hundreds of programs that never
 * connect anywhere; they pay for a copy of stderr for the log and for
 * opening the policy file (raw system calls, libc not resolved yet), not
 * for reading it, nor for GnuTLS (tls_loader.c).  The file is read at the
 * first connection (init_once); the descriptor opened now keeps it readable
 * after the program changes directory, root or user. */
static void preinit(void)
{
	char err[3 * 4096];
	int fd;

	log_setup_early();
	path_from_env_or_find();
	if (policy_path[0]) {
		fd = policy_open(policy_path, POLICY_FD_MIN, err, sizeof err);
		if (fd < 0) {
			snprintf(policy_problem, sizeof policy_problem, "%s", err);
		} else if (fstat(fd, &policy_st) != 0) {
			snprintf(policy_problem, sizeof policy_problem, "%s: cannot stat: %s", policy_path,
				 strerror(errno));
			syscall(SYS_close, fd);
		} else {
			log_hold_policy_fd(fd);
			policy_held = true;
		}
	}
	pthread_atfork(shim_fork_prepare, NULL, shim_fork_child);
	/* libc is resolved by the first hook that runs (real_need), not here:
	 * /bin/true never calls one. */
}

/* The rules, from the descriptor opened at start-up (preinit), which is
 * closed afterwards.  NULL with ERR filled if they cannot be had. */
static struct policy *read_policy(char *err, size_t errlen)
{
	int fd = log_policy_fd();
	struct policy *p = NULL;
	struct stat st;

	/* Lost: the program closed every descriptor (an ascending close loop
	 * chases ours up to the limit).  Read the file again by name, with the
	 * same checks; never "no policy". */
	if (fd < 0)
		return policy_load(policy_path, err, errlen);
	/* Still the file opened at start-up?  A descriptor closed behind our
	 * back (a raw close_range) may have been reused by the program: never
	 * read its file as our rules. */
	if (fstat(fd, &st) != 0 || st.st_dev != policy_st.st_dev || st.st_ino != policy_st.st_ino)
		snprintf(err, errlen, "%s: the descriptor opened at start-up was closed behind tlsshim's back",
			 policy_path);
	else
		p = policy_load_fd(fd, policy_path, err, errlen);
	log_release_policy_fd();
	return p;
}

static void init_once(void)
{
	const char *level_env;
	char err[3 * 4096];
	int level;

	shim_guard++;
	real_init();
	if (policy_held && !(policy = read_policy(err, sizeof err)))
		snprintf(policy_problem, sizeof policy_problem, "%s", err);
	/* A policy was named but none came out: refuse, never pass through. */
	if (policy_path[0] && !policy && !policy_problem[0])
		snprintf(policy_problem, sizeof policy_problem, "%s: could not be read", policy_path);
	if (!policy)
		policy = policy_new_empty();
	level = policy ? (int)policy->log_level : POLICY_LEVEL_WARNING;
	level_env = secure_getenv("TLSSHIM_LOG_LEVEL");
	if (level_env && policy_level_parse(level_env) >= 0)
		level = policy_level_parse(level_env);
	if (policy) {
		log_setup(policy->log_dest, policy->log_path, (enum policy_log_level)level);
		log_set_format(policy->log_format);
		if (policy->keylog_path) {
			int ret = log_open_keylog(policy->keylog_path);

			if (ret < 0)
				log_error("cannot open the key log %s: %s", policy->keylog_path, strerror(-ret));
			else
				log_warning("key log on: TLS secrets of upgraded connections go to %s "
					    "(debugging only)", policy->keylog_path);
		}
	}
	if (policy_problem[0])
		log_error("invalid policy, refusing every TCP connection: %s", policy_problem);
	for (size_t i = 0; policy && i < policy->n_warnings; i++)
		log_warning("policy %s:%u: %s", policy_path, policy->warnings[i].line, policy->warnings[i].msg);
	if (policy && policy->n_warnings_dropped)
		log_warning("policy %s: %zu more warnings (tlsshim check shows them)", policy_path,
			    policy->n_warnings_dropped);
	cache_set_limit(policy ? policy->session_cache : 0);
	shim_guard--;
}

/* The rules, read on first need (connect). */
void shim_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, init_once);
}

__attribute__((constructor)) static void shim_constructor(void)
{
	preinit();
}

/* At exit (or return from main): connections never closed are flushed and
 * get close_notify, and every socket waits for its server to read
 * everything (linger.h), a few seconds at most.  _exit and _Exit run no
 * destructor: hook_process.c does the same there.  exit() flushes stdio
 * only after every destructor: our streams' bytes go first, or they would
 * follow close_notify (and be lost). */
__attribute__((destructor)) static void shim_destructor(void)
{
	if (shim_guard == 0) {
		stdio_flush_ours();
		linger_at_exit(SHIM_EXIT_WAIT_MS);
	}
}

bool shim_may_upgrade(void)
{
	shim_init();
	return policy_problem[0] || (policy && policy->n_rules > 0);
}

const struct policy *shim_policy(void)
{
	return policy_problem[0] ? NULL : policy;
}

const char *shim_policy_path(void)
{
	return policy_path;
}

static void load_hosts(void)
{
	shim_guard++;
	hosts = hosts_load("/etc/hosts");
	shim_guard--;
}

const struct hosts *shim_hosts(void)
{
	pthread_once(&hosts_once, load_hosts);
	return hosts;
}

static unsigned fork_serial;

static void release_one(int fd, struct conn *conn, void *arg)
{
	conn_release_for_fork(conn);
	conn_hold_for_fork(conn, fork_serial);
}

__thread bool shim_vforking;

/* Before fork: each direction of our connections that no thread is inside
 * becomes unowned, so that whichever process uses it first keeps it
 * (owner.h).  Not for the fork that stands
 * in for vfork(): that child only execs, the parent keeps its connections. */
void shim_fork_prepare(void)
{
	owner_forking();
	if (fdtab_any() && !shim_vforking) {
		fork_serial++;
		fdtab_foreach(release_one, NULL);
	}
}

static void forked_one(int fd, struct conn *conn, void *arg)
{
	conn_forked_child(conn);
	/* The vfork stand-in's child only execs: the parent was not told to
	 * count it among the connection's holders. */
	if (shim_vforking)
		conn_not_holding(conn);
}

/* In the child: every lock another thread of the parent may have held at
 * the fork (the child has only the forking thread; forklock.h), our pid,
 * and the connections' own locks. */
void shim_fork_child(void)
{
	forklock_child_reset();
	owner_forked();
	linger_forked_child();
	if (fdtab_any())
		fdtab_foreach(forked_one, NULL);
}


/* The real connect(): 0 or a negative errno. */
static int connect_plain(int fd, const struct sockaddr *addr, socklen_t len)
{
	return real.connect(fd, addr, len) < 0 ? -errno : 0;
}

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
		return -EALREADY;
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
	} else if (ret == 0 && atomic_load(&conn->state) != CONN_OPEN) {
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
	char err[512];
	int ret, fdflags;

	memset(&params, 0, sizeof params);
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
	log_debug("rule [%s] %s: upgrading via %s, server-name %s", d->rule->name, d->app_dest, d->dest,
		  d->verify_name ? d->verify_name : "-");
	with_port(addr, len, d->to.port, &to);
	ret = upgrade_started(fd, conn, connect_plain(fd, (struct sockaddr *)&to, len), d);
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
