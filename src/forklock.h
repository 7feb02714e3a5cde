/* forklock.h - every lock of the library, in one registry, reset in a
 * forked child.
 *
 * After fork() the child has only the thread that forked.  A lock another
 * thread of the parent held at that moment stays locked in the child for
 * ever, and the child's first call that wants it hangs (issue 9: a fork while
 * a thread built credentials deadlocked the child's first connection).  So
 * every static lock is defined with FORKLOCK_MUTEX, which also records it in
 * the section "tlsshim_forklocks" of the object that defines it; the child
 * handler (shim_fork_child, and the _Fork hook) re-initialises all of them.
 * The TLS engine is a module of its own (tls_loader.c): its section is
 * registered when it is loaded.  Locks inside objects (a connection's rlock
 * and wlock) are reset by their owner's child handler (conn_forked_child).
 * tests/unit/locks_registered.sh fails the build's checks on any lock
 * defined another way.
 *
 * Why reset in the child rather than take every lock before fork and release
 * it after: some are held for long (cred_lock while a PKCS#11 token or a large
 * CA file is read, a connection's rlock across a blocking read), so fork would
 * wait for them, or for ever; the forking thread may itself hold one (p11-kit
 * forks from inside credential loading); and the modules' lock orders would
 * all have to be known in one place.  What a reset cannot restore is data
 * another thread was changing: each lock's users keep their updates to a
 * final pointer store, and a connection busy in another thread at the fork
 * is refused in the child (conn_forked_child). */
#ifndef TLSSHIM_FORKLOCK_H
#define TLSSHIM_FORKLOCK_H

#include <pthread.h>

struct forklock {
	pthread_mutex_t *mutex;
	const char *name;
};

#define FORKLOCK_SECTION "tlsshim_forklocks"

/* static pthread_mutex_t NAME, registered. */
#define FORKLOCK_MUTEX(name)                                                                       \
	static pthread_mutex_t name = PTHREAD_MUTEX_INITIALIZER;                                   \
	static const struct forklock forklock_entry_##name                                         \
		__attribute__((used, section(FORKLOCK_SECTION), aligned(sizeof(void *)))) = { &name, #name }

/* The registry of the object this is linked into (its own section). */
/* The registry of the object this is compiled into: the linker's bounds of
 * its section (hidden: never another object's; weak: NULL without locks). */
extern const struct forklock __start_tlsshim_forklocks[] __attribute__((weak, visibility("hidden")));
extern const struct forklock __stop_tlsshim_forklocks[] __attribute__((weak, visibility("hidden")));
#define FORKLOCK_OWN_BEGIN() (__start_tlsshim_forklocks)
#define FORKLOCK_OWN_END() (__stop_tlsshim_forklocks)

/* Add the locks [BEGIN, END) of another loaded object (the TLS module).
 * 0, or -ENOSPC. */
int forklock_add(const struct forklock *begin, const struct forklock *end);
/* In a forked child (one thread): re-initialise every registered lock.
 * Returns how many. */
int forklock_child_reset(void);
/* For tests: call FN for every registered lock. */
void forklock_foreach(void (*fn)(const struct forklock *lock, void *arg), void *arg);

#endif
