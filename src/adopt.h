/* adopt.h - inherited sockets (inetd style): a connected TCP socket this
 * process did not accept itself -- it came through exec, from an acceptor
 * that is preloaded too (tcpserver, inetd under tlsshim) or not (systemd
 * with Accept=yes, systemd-socket-activate --inetd) -- becomes a server
 * connection on its first use when an inbound rule covers its LOCAL
 * address, exactly as if accept() had returned it here (accept.c).
 *
 * Which descriptors are looked at: every descriptor number has a "checked"
 * bit.  Descriptors the program creates through our hooks (socket, accept,
 * open, pipe, dup...) are born checked; close() clears the bit, so a number
 * that comes back some other way (an inherited one, SCM_RIGHTS, libc's own
 * open) is looked at once, on its first use through a hook: one
 * getsockname, remembered.  Descriptors 0-2 are looked at when the library
 * starts, because stdio reads and writes them through libc's internal calls,
 * which no hook sees.
 *
 * Cost: nothing at all (one relaxed load per hook) unless adoption is
 * armed.  It is off when there is no policy, and when the launcher said in
 * the environment (TLSSHIM_INBOUND, tied to the policy file's identity) that
 * the policy has no inbound rule.  Otherwise (an inbound policy, or a
 * library preloaded by hand: the policy is not read at start-up) it is
 * armed; the policy is read at the first inherited TCP/IP socket, and a
 * policy without inbound rules disarms it for good. */
#ifndef TLSSHIM_ADOPT_H
#define TLSSHIM_ADOPT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>

struct decision;

/* The launcher's hint: "0" or "1" (inbound rules), then the policy file's
 * identity ":DEV:INO:SIZE:MTIME_SEC:MTIME_NSEC". */
#define ADOPT_HINT_ENV "TLSSHIM_INBOUND"

#define ADOPT_FDS (1 << 20) /* as fdtab: numbers beyond are never adopted */
#define ADOPT_WORD_BITS (8 * sizeof(unsigned long))

extern atomic_bool adopt_armed;
/* A set bit: the number was looked at, or born through a hook. */
extern _Atomic unsigned long adopt_checked[ADOPT_FDS / ADOPT_WORD_BITS];

/* Start-up (the constructor, init.c): POLICY_ST is the policy file opened
 * (NULL: none), BROKEN if it could not be opened although one was named.
 * Arms adoption or not, then looks at descriptors 0-2. */
void adopt_setup(const struct stat *policy_st, bool named, bool broken);

/* The slow path of adopt_maybe: FD not checked yet. */
void adopt_check(int fd);
/* FD was made by the program through a hook (or is a new duplicate of a
 * checked one): nothing to adopt there. */
void adopt_mark(int fd);
/* FD (or [FIRST, LAST]) is closed: a number that comes back otherwise than
 * through a hook is looked at again. */
void adopt_unmark(int fd);
void adopt_unmark_range(unsigned first, unsigned last);

/* A hook is about to use FD: adopt it first if it is an inherited socket
 * an inbound rule covers.  Call after shim_enter(). */
static inline bool adopt_is_checked(int fd)
{
	return (unsigned)fd >= ADOPT_FDS ||
	       (atomic_load_explicit(&adopt_checked[(unsigned)fd / ADOPT_WORD_BITS], memory_order_acquire) >>
		((unsigned)fd % ADOPT_WORD_BITS)) & 1;
}

static inline void adopt_maybe(int fd)
{
	if (__builtin_expect(atomic_load_explicit(&adopt_armed, memory_order_relaxed), 0) && !adopt_is_checked(fd))
		adopt_check(fd);
}

static inline void adopt_born(int fd)
{
	if (__builtin_expect(atomic_load_explicit(&adopt_armed, memory_order_relaxed), 0))
		adopt_mark(fd);
}

static inline void adopt_closed(int fd)
{
	if (__builtin_expect(atomic_load_explicit(&adopt_armed, memory_order_relaxed), 0))
		adopt_unmark(fd);
}

/* accept.c: register FD as a server connection for the verdict D (UPGRADE),
 * close-on-exec as the program sees it APP_CLOEXEC; HOW says where it came
 * from for the log ("accepted", "inherited").  0, or a negative errno
 * (logged; FD untouched: the caller refuses it). */
int shim_server_conn(int fd, bool app_cloexec, const struct decision *d, const char *how);

#endif
