/* shim.c - start-up, the policy, and the decision taken at connect(). */
#include "shim.h"
#include "cache.h"
#include "conn.h"
#include "decide.h"
#include "epoll_reg.h"
#include "fdtab.h"
#include "forklock.h"
#include "hosts.h"
#include "log.h"
#include "linger.h"
#include "names.h"
#include "owner.h"
#include "policy.h"
#include "policy_load.h"
#include "stdio_swap.h"

#include <arpa/inet.h>
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

static void load_hosts(void)
{
	shim_guard++;
	hosts = hosts_load("/etc/hosts");
	shim_guard--;
}

/* ---- connect ---- */

struct target {
	int family;
	uint8_t addr[16];
	uint16_t port;
};

static bool read_target(const struct sockaddr *sa, socklen_t len, struct target *t)
{
	memset(t, 0, sizeof *t);
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		t->family = AF_INET;
		memcpy(t->addr, &sin->sin_addr, 4);
		t->port = ntohs(sin->sin_port);
		return true;
	}
	/* Linux accepts a sockaddr_in6 without sin6_scope_id (RFC 2133's
	 * 24 bytes): so must we, or it would pass through in clear. */
	if (sa->sa_family == AF_INET6 && len >= offsetof(struct sockaddr_in6, sin6_scope_id)) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		t->family = AF_INET6;
		memcpy(t->addr, &sin6->sin6_addr, 16);
		t->port = ntohs(sin6->sin6_port);
		return true;
	}
	return false;
}

bool shim_may_upgrade(void)
{
	shim_init();
	return policy_problem[0] || (policy && policy->n_rules > 0);
}

static void format_addr(const struct target *t, uint16_t port, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN];

	inet_ntop(t->family, t->addr, ip, sizeof ip);
	if (t->family == AF_INET6)
		snprintf(out, outlen, "[%s]:%u", ip, port);
	else
		snprintf(out, outlen, "%s:%u", ip, port);
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

int shim_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	const char *host_names[NAMES_MAX_PER_ADDR * 2];
	struct sockaddr_storage upgraded;
	struct name_list resolved;
	const struct policy_rule *rule;
	struct conn_params params;
	struct conn *conn;
	struct target t;
	char app_dest[80], dest[80], key[512], err[512];
	const char *name;
	size_t n_names = 0, i;
	uint16_t port;
	int ret, fdflags;

	if (!addr || !read_target(addr, addrlen, &t))
		return real.connect(fd, addr, addrlen) < 0 ? -errno : 0;
	linger_service();
	conn = fdtab_get_checked(fd);
	if (conn) {
		ret = connect_again(conn);
		conn_unref(conn);
		return ret;
	}
	if (!policy_problem[0] && (!policy || policy->n_rules == 0))
		return real.connect(fd, addr, addrlen) < 0 ? -errno : 0;
	if (!is_stream_socket(fd))
		return real.connect(fd, addr, addrlen) < 0 ? -errno : 0;
	if (policy_problem[0]) {
		format_addr(&t, t.port, app_dest, sizeof app_dest);
		log_error("%s: refused: invalid policy %s", app_dest, policy_path);
		return -ECONNREFUSED;
	}

	names_lookup(t.family, t.addr, &resolved);
	for (i = 0; i < resolved.count; i++)
		host_names[n_names++] = resolved.names[i];
	pthread_once(&hosts_once, load_hosts);
	if (hosts)
		n_names += hosts_names_for(hosts, t.family, t.addr, host_names + n_names,
					   NAMES_MAX_PER_ADDR * 2 - n_names);
	if (n_names > NAMES_MAX_PER_ADDR * 2)
		n_names = NAMES_MAX_PER_ADDR * 2;
	rule = policy_match(policy, host_names, n_names, t.family, t.addr, t.port);
	if (!rule)
		return real.connect(fd, addr, addrlen) < 0 ? -errno : 0;
	format_addr(&t, t.port, app_dest, sizeof app_dest);
	if (rule->action == POLICY_DENY) {
		log_error("rule [%s] %s%s%s: connection denied by policy", rule->name, app_dest,
			  n_names ? " " : "", n_names ? host_names[0] : "");
		return -ECONNREFUSED;
	}
	if (rule->action == POLICY_PLAIN) {
		log_debug("rule [%s] %s: plain, passed through", rule->name, app_dest);
		return real.connect(fd, addr, addrlen) < 0 ? -errno : 0;
	}

	name = decide_name(rule, resolved.count ? resolved.names[0] : NULL, host_names + resolved.count,
			   n_names - resolved.count);
	if (!name && rule->n_pins == 0) {
		log_error("rule [%s] %s: refused: no host name is known for this address and the rule "
			  "has neither server-name nor pin (an IP address is never verified by accident)",
			  rule->name, app_dest);
		return -ECONNREFUSED;
	}
	port = rule->port ? rule->port : t.port;
	format_addr(&t, port, dest, sizeof dest);
	memset(&upgraded, 0, sizeof upgraded);
	memcpy(&upgraded, addr, addrlen < sizeof upgraded ? addrlen : sizeof upgraded);
	if (t.family == AF_INET)
		((struct sockaddr_in *)&upgraded)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&upgraded)->sin6_port = htons(port);

	memset(&params, 0, sizeof params);
	params.fd = fd;
	params.rule = rule;
	params.dest = dest;
	params.app_dest = app_dest;
	params.verify_name = name;
	/* Never an IP literal as SNI, whatever its source. */
	params.sni = decide_sni_ok(name) ? name : NULL;
	if (rule->resume && policy->session_cache > 0) {
		snprintf(key, sizeof key, "%s|%s|%s", rule->name, name ? name : "", dest);
		params.cache_key = key;
	}
	conn = conn_new(&params, err, sizeof err);
	if (!conn) {
		log_error("rule [%s] %s: refused: %s", rule->name, app_dest, err);
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
	log_debug("rule [%s] %s: upgrading via %s, server-name %s", rule->name, app_dest, dest,
		  name ? name : "-");

	ret = real.connect(fd, (struct sockaddr *)&upgraded, addrlen) < 0 ? -errno : 0;
	if (ret == -EINPROGRESS || ret == -EINTR) {
		conn_start(conn, true);
		stdio_after_upgrade(fd);
		epoll_adopt(fd);
		conn_unref(conn);
		return ret;
	}
	if (ret < 0) {
		log_error("rule [%s] %s -> %s: connect failed: %s", rule->name, app_dest, dest, strerror(-ret));
		conn_unref(fdtab_remove(fd));
		conn_unref(conn);
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
	conn_unref(conn);
	return ret;
}
