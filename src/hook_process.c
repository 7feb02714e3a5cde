/* hook_process.c - process life.  fork() runs our pthread_atfork handlers
 * (fork.c); _Fork runs none, so the child learns its pid here.  Without the
 * prepare handler the parent keeps its connections: the child gets EIO.
 * _exit and _Exit run no destructor: the end of every connection this
 * process owns (the last bytes, close_notify, the wait for the server)
 * happens here, as init.c's destructor does it for exit(). */
#include "shim.h"
#include "conn.h"
#include "linger.h"
#include "owner.h"
#include "tls.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static __attribute__((noreturn)) void end_process(int status)
{
	real_need();
	if (shim_enter())
		linger_at_exit(SHIM_EXIT_WAIT_MS);
	if (real._exit)
		real._exit(status);
	for (;;)
		syscall(SYS_exit_group, status);
}

void _exit(int status)
{
	end_process(status);
}

void _Exit(int status)
{
	end_process(status);
}

pid_t _Fork(void)
{
	pid_t pid;

	real_need();
	if (!real._Fork)
		return (pid_t)shim_result(-ENOSYS);
	if (shim_enter())
		shim_fork_prepare();
	else
		shim_fork_unprepared();
	pid = real._Fork();
	if (pid == 0) {
		shim_fork_child();
		tls_after_fork();
	}
	return pid;
}
