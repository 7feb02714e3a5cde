/* hook_connect.c - connect(): the one place where a socket is upgraded. */
#include "shim.h"

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (!shim_enter())
		return real.connect(fd, addr, len);
	shim_init();
	return (int)shim_result(shim_connect(fd, addr, len));
}
