/* fork.c - our connections across fork(): who owns each direction
 * (owner.h), the locks a forked child resets (forklock.h). */
#include "shim.h"
#include "conn.h"
#include "fdtab.h"
#include "forklock.h"
#include "linger.h"
#include "owner.h"

#include <stdbool.h>

static unsigned fork_serial;

/* fdtab_foreach callback before fork (the registry lock held): CONN's
 * directions are released, and the child counted among its holders. */
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

/* fdtab_foreach callback in the child (its only thread): CONN's locks reset. */
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

