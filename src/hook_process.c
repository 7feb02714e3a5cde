/* hook_process.c - process life.  fork() runs our pthread_atfork handler
 * (shim.c); _Fork runs none, so the child learns it here.  Connections
 * inherited by a child belong to the parent: in the child they fail with
 * EIO and are never written to (no nonce reuse, no close_notify). */
#include "shim.h"
#include "conn.h"

#include <errno.h>
#include <unistd.h>

pid_t _Fork(void)
{
	pid_t pid;

	if (!real._Fork)
		real_init();
	if (!real._Fork)
		return (pid_t)shim_result(-ENOSYS);
	pid = real._Fork();
	if (pid == 0)
		atomic_fetch_add(&shim_generation, 1);
	return pid;
}
