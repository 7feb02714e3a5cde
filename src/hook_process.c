/* hook_process.c - process life.  fork() runs our pthread_atfork handlers
 * (shim.c); _Fork runs none, so the child learns its pid here.  Without the
 * prepare handler the parent keeps its connections: the child gets EIO. */
#include "shim.h"
#include "conn.h"
#include "owner.h"
#include "tls.h"

#include <errno.h>
#include <unistd.h>

pid_t _Fork(void)
{
	pid_t pid;

	real_need();
	if (!real._Fork)
		return (pid_t)shim_result(-ENOSYS);
	if (shim_enter())
		shim_fork_prepare();
	pid = real._Fork();
	if (pid == 0) {
		shim_fork_child();
		tls_after_fork();
	}
	return pid;
}
