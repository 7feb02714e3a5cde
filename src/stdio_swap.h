/* stdio_swap.h - keep stdio streams off upgraded sockets (hook_stdio.c). */
#ifndef TLSSHIM_STDIO_SWAP_H
#define TLSSHIM_STDIO_SWAP_H

/* Descriptor FD (0, 1 or 2) is about to be closed or replaced. */
void stdio_before_replace(int fd);
/* Descriptor FD now names an upgraded socket (after dup2 onto it, or
 * connect() on it): nothing for FD > 2. */
void stdio_after_upgrade(int fd);

#endif
