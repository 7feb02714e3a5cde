/* shim.h - what the hooks share: the re-entrancy guard and errno
 * (shim_enter, shim_result), the process-wide state (init.c), connect()'s
 * logic (connect.c) and the fork handlers (fork.c).  Hooks call
 * shim_enter() first; it returns false when the hook must pass straight to
 * libc (our own calls, or before start-up). */
#ifndef TLSSHIM_SHIM_H
#define TLSSHIM_SHIM_H

#include <stdbool.h>
#include <sys/socket.h>

#include "real.h"

struct policy;
struct hosts;

/* Read the policy on first call (init.c); later calls return at once. */
void shim_init(void);

/* At exit, how long the library may wait for the last records to go out
 * and for servers to read everything (linger_at_exit). */
#define SHIM_EXIT_WAIT_MS 5000

/* Should this hook do its work?  False inside our own code. */
static inline bool shim_enter(void)
{
	real_need();
	return shim_guard == 0;
}

/* Can a connection of this process be upgraded (a rule, or a broken policy
 * that refuses everything)?  Reads the policy on first call. */
bool shim_may_upgrade(void);
/* The policy (after shim_init), or NULL when it is broken: refuse every
 * connection then.  Never changes once read. */
const struct policy *shim_policy(void);
/* Where the policy came from, for the log ("" if none). */
const char *shim_policy_path(void);
/* The hosts file, read on first call; NULL if unreadable. */
const struct hosts *shim_hosts(void);
/* The connect() logic (connect.c): 0, or a negative errno (-EINPROGRESS included). */
int shim_connect(int fd, const struct sockaddr *addr, socklen_t len);

/* accept()'s logic (accept.c): FD, a descriptor accept returned (FLAGS as
 * accept4's), registered as a server connection if an inbound rule covers
 * it; or a negative errno (FD closed with a reset: refused). */
int shim_accepted(int fd, int flags);
/* Make the process's session-ticket key if not made yet (async-signal-safe:
 * before the first fork, so pre-fork workers share it). */
void shim_ticket_key_make(void);

/* The program is about to give up rights (set*id, setgroups, chroot):
 * read the policy and load every rule's credentials now, once (init.c). */
void shim_before_privdrop(void);

/* Set errno from a negative return and return -1, else return RET. */
static inline long shim_result(long ret)
{
	extern int *__errno_location(void);

	if (ret < 0) {
		*__errno_location() = (int)-ret;
		return -1;
	}
	return ret;
}

/* After fork, in the child (pthread_atfork, and the _Fork hook). */
void shim_fork_child(void);
/* Before fork, in the parent. */
void shim_fork_prepare(void);
/* Before a fork whose prepare step is skipped (_Fork from inside our own
 * code): the child is not counted among any connection's holders. */
void shim_fork_unprepared(void);
/* Set while vfork() runs a real fork (hook_exec.c): the parent keeps the
 * ownership of its connections, the child is about to exec. */
extern __thread bool shim_vforking;

#endif
