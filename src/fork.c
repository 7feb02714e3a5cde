/* fork.c - our connections across fork(): who owns each direction
 * (owner.h), the locks a forked child resets (forklock.h). */
#include "shim.h"
#include "adopt.h"
#include "conn.h"
#include "fdtab.h"
#include "forklock.h"
#include "linger.h"
#include "log.h"
#include "owner.h"

#include <stdatomic.h>
#include <stdbool.h>

/* How long the prepare step waits for the registry lock before it gives up
 * (a signal handler that forks after interrupting its own thread inside
 * fdtab would otherwise wait for ever). */
#define PREPARE_WAIT_MS 200

/* Numbers forks, so that a connection reached through several descriptors
 * is counted once per fork (conn_hold_for_fork).  Each prepare step takes
 * its own number, once: glibc runs the prepare handlers of concurrent
 * fork() calls at the same time, and _Fork() runs ours in no lock at all. */
static atomic_uint fork_serial;

/* Did the prepare step of this thread's fork count the child among the
 * holders of our connections?  Read in the child, whose only thread is a
 * copy of this one. */
static __thread bool child_counted;

__thread bool shim_vforking;

/* fdtab walk callback before fork (the registry lock held; ARG: this
 * fork's serial): CONN's directions are released, and the child counted
 * among its holders. */
static void release_one(int fd, struct conn *conn, void *arg)
{
	conn_release_for_fork(conn);
	conn_hold_for_fork(conn, *(const unsigned *)arg);
}

/* A serial of our own for this fork (never 0: a new connection's
 * hold_fork). */
static unsigned take_serial(void)
{
	unsigned serial;

	while ((serial = atomic_fetch_add(&fork_serial, 1) + 1) == 0)
		;
	return serial;
}

/* Before fork: each direction of our connections that no thread is inside
 * becomes unowned, so that whichever process uses it first keeps it
 * (owner.h), and the child is counted among the holders.  Not for the fork
 * that stands in for vfork(): that child only execs, the parent keeps its
 * connections.  If the registry stays locked (this very thread may hold it,
 * interrupted by a signal handler that forks), nothing is released and
 * nothing counted: the parent keeps every direction and the child gets EIO
 * -- the safe side. */
void shim_fork_prepare(void)
{
	unsigned serial;

	owner_forking();
	child_counted = false;
	/* Pre-fork servers: the workers resume each other's sessions only if
	 * the ticket key is made before the first fork. */
	if (!shim_vforking && atomic_load_explicit(&adopt_armed, memory_order_relaxed))
		shim_ticket_key_make();
	if (!fdtab_any() || shim_vforking)
		return;
	serial = take_serial();
	if (fdtab_foreach_bounded(release_one, &serial, PREPARE_WAIT_MS))
		child_counted = true;
	else
		log_error("fork: the table of connections stayed busy for %d ms (a signal handler forking?): "
			  "the parent keeps its connections, the child may not use them (EIO)", PREPARE_WAIT_MS);
}

void shim_fork_unprepared(void)
{
	owner_forking();
	child_counted = false;
}

/* fdtab_foreach callback in the child (its only thread): CONN's locks reset. */
static void forked_one(int fd, struct conn *conn, void *arg)
{
	conn_forked_child(conn);
	/* Not counted among the holders (the vfork stand-in's child only
	 * execs; or the prepare step could not run): it must never lower
	 * the count either. */
	if (!child_counted)
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
