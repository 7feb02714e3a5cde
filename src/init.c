/* init.c - the library's life in a process: start-up (the constructor),
 * the state read at the first connection (the policy, the hosts file), and
 * the drain at exit (the destructor). */
#include "shim.h"
#include "adopt.h"
#include "cache.h"
#include "hosts.h"
#include "log.h"
#include "linger.h"
#include "ownfd.h"
#include "policy.h"
#include "policy_load.h"
#include "hook_stdio.h"
#include "tls.h"

#include <errno.h>
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
	int fd;

	log_setup_early();
	path_from_env_or_find();
	if (policy_path[0]) {
		/* The error goes straight into policy_problem (static): start-up
		 * runs on the program's stack, which may be small. */
		fd = policy_open(policy_path, POLICY_FD_MIN, policy_problem, sizeof policy_problem);
		if (fd < 0) {
			/* policy_problem says why */
		} else if (fstat(fd, &policy_st) != 0) {
			snprintf(policy_problem, sizeof policy_problem, "%s: cannot stat: %s", policy_path,
				 strerror(errno));
			syscall(SYS_close, fd);
		} else {
			ownfd_hold_early(OWNFD_POLICY, fd);
			policy_held = true;
		}
	}
	pthread_atfork(shim_fork_prepare, NULL, shim_fork_child);
	/* Inherited sockets (inetd style): armed or not, and 0-2 looked at. */
	adopt_setup(policy_held ? &policy_st : NULL, policy_path[0] != '\0', policy_problem[0] != '\0');
	/* libc is resolved by the first hook that runs (real_need), not here:
	 * /bin/true never calls one. */
}

/* The rules, from the descriptor opened at start-up (preinit), which is
 * closed afterwards.  NULL with ERR filled if they cannot be had. */
static struct policy *read_policy(char *err, size_t errlen)
{
	int pin, fd = ownfd_pin(OWNFD_POLICY, &pin);
	struct policy *p = NULL;
	struct stat st;

	/* Lost: the program closed every descriptor (an ascending close loop
	 * chases ours up to the limit).  Read the file again by name, with the
	 * same checks; never "no policy". */
	if (fd < 0) {
		ownfd_unpin(pin);
		return policy_load(policy_path, err, errlen);
	}
	/* Pinned: a program thread's close() or dup2() of this number waits
	 * for the read (ownfd.h).  Still the file opened at start-up?  A descriptor closed behind our
	 * back (a raw close_range) may have been reused by the program: never
	 * read its file as our rules. */
	if (fstat(fd, &st) != 0 || st.st_dev != policy_st.st_dev || st.st_ino != policy_st.st_ino)
		snprintf(err, errlen, "%s: the descriptor opened at start-up was closed behind tlsshim's back",
			 policy_path);
	else
		p = policy_load_fd(fd, policy_path, err, errlen);
	ownfd_unpin(pin);
	ownfd_set(OWNFD_POLICY, -1);
	return p;
}

/* Once per process (shim_init): the rules, the log, the key log, the
 * session-cache size.  A policy that cannot be had leaves policy_problem
 * set: every connection is refused, never passed through. */
static void init_once(void)
{
	const char *level_env;
	int level;

	shim_guard++;
	real_init();
	if (policy_held)
		policy = read_policy(policy_problem, sizeof policy_problem);
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
			int ret = ownfd_open_keylog(policy->keylog_path);

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
	if (policy && policy->has_inbound)
		shim_ticket_key_make();
	shim_guard--;
}

/* The rules, read on first need (connect). */
void shim_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, init_once);
}

/* When the library is loaded: preinit. */
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

/* Once per process (shim_hosts): /etc/hosts, NULL if unreadable. */
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

/* Once (shim_before_privdrop): the credentials of every inbound tls rule,
 * loaded while the program may still read them (a daemon).  Only when the
 * policy has inbound rules: a forked child that changes user before exec
 * (Python's subprocess with user=) must not load GnuTLS for nothing, in a
 * copy of a multithreaded process.  A rule whose files cannot be loaded is
 * logged; its connections fail as they would have anyway. */
static void preload_credentials(void)
{
	const struct policy *p;
	char err[512];
	size_t i;

	if (!shim_may_upgrade() || !(p = shim_policy()) || !p->has_inbound)
		return;
	for (i = 0; i < p->n_rules; i++) {
		const struct policy_rule *rule = &p->rules[i];

		if (rule->action != POLICY_TLS || !rule->inbound)
			continue;
		if (tls_preload(rule, err, sizeof err) < 0)
			log_error("rule [%s]: cannot load its credentials before the program gives up "
				  "its rights: %s", rule->name, err);
	}
}

void shim_before_privdrop(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, preload_credentials);
}
