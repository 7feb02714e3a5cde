/* fdtab.h - fd -> connection, the one shared registry.
 *
 * Looking up a descriptor that is not ours costs one atomic load and no
 * lock, so programs pay nothing on the descriptors we do not manage.  Each
 * slot holds a reference; dup'd descriptors share one connection. */
#ifndef TLSSHIM_FDTAB_H
#define TLSSHIM_FDTAB_H

#include <stdbool.h>

struct conn;

/* Map FD to CONN (takes a new reference).  APP_CLOEXEC is the close-on-exec
 * flag as the program sees it (the kernel's is always set, see hook_fd.c).
 * Return 0 or -ENOMEM / -EBADF. */
int fdtab_put(int fd, struct conn *conn, bool app_cloexec);

/* The connection for FD with a new reference (conn_unref it), or NULL. */
struct conn *fdtab_get(int fd);

/* The same, but first check (fstat) that FD still names the connection's
 * socket: a descriptor closed behind our back (syscall(SYS_close), as libuv
 * does) can come back as another file.  Used where a mapping is made or
 * trusted anew (connect); descriptors the program creates through libc drop
 * stale mappings at birth (fdtab_forget, hook_create.c). */
struct conn *fdtab_get_checked(int fd);

/* FD is new (socket, open, accept, pipe...): any mapping it has is stale. */
void fdtab_forget(int fd);

/* Unmap FD; return the reference the table held (or NULL). */
struct conn *fdtab_remove(int fd);

/* Is any descriptor managed at all?  (Cheap: one atomic load.) */
bool fdtab_any(void);

/* Another descriptor than FD that maps to CONN, or -1. */
int fdtab_other_fd(struct conn *conn, int fd);

bool fdtab_app_cloexec(int fd);
void fdtab_set_app_cloexec(int fd, bool on);

/* Call FN for every mapped descriptor (under the registry lock: FN must not
 * call back into fdtab). */
void fdtab_foreach(void (*fn)(int fd, struct conn *conn, void *arg), void *arg);

/* The same if the lock is free now, else false (at _exit, which a signal
 * handler may call while this very thread holds it). */
bool fdtab_foreach_try(void (*fn)(int fd, struct conn *conn, void *arg), void *arg);

/* The same, retried every millisecond for up to MAX_MS: false if the lock
 * never came free (the fork prepare step, which _Fork, async-signal-safe,
 * may run in a signal handler). */
bool fdtab_foreach_bounded(void (*fn)(int fd, struct conn *conn, void *arg), void *arg, int max_ms);

#endif
