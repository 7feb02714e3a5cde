/* hook_stdio.h - keep stdio streams off upgraded sockets (hook_stdio.c):
 * what the close/dup and connect paths tell it. */
#ifndef TLSSHIM_HOOK_STDIO_H
#define TLSSHIM_HOOK_STDIO_H

/* Descriptor FD (0, 1 or 2) is about to be closed or replaced. */
void stdio_before_replace(int fd);
/* Descriptor FD now names an upgraded socket (after dup2 onto it, or
 * connect() on it): nothing for FD > 2. */
void stdio_after_upgrade(int fd);
/* The process is ending by exit(): write out what our streams (fdopen
 * cookies, swapped stdin/stdout/stderr) still buffer, now, while their
 * connections are open.  glibc flushes stdio only after the destructors
 * (ours ends every connection) and, as glibc does there, without taking
 * the streams' locks (a thread may hold one for ever). */
void stdio_flush_ours(void);

#endif
