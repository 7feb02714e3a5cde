/* owner.h - which process owns an upgraded connection after fork().
 *
 * Parent and child share the socket but each has its own copy of the TLS
 * state: if both wrote, both would use the same nonces.  So each connection
 * has a word in memory shared across fork (MAP_SHARED) naming its owner.
 * Before fork() the parent marks its connections unowned; afterwards the
 * first process to read or write one claims it, and the other gets EIO
 * (a server that forks helpers keeps its connections; a program that
 * connects and then daemonizes hands them to the child). */
#ifndef TLSSHIM_OWNER_H
#define TLSSHIM_OWNER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

enum owner_state { OWNER_SELF, OWNER_NONE, OWNER_OTHER };

/* A new word, owned by this process, or NULL (no memory).  Without shared
 * memory it falls back to a private word (*PRIVATE_WORD set): a child then
 * never owns what its parent created. */
atomic_int *owner_new(bool *private_word, unsigned *gen);
void owner_delete(atomic_int *word, bool private_word, unsigned gen);
/* A fork is about to happen (both processes keep the count). */
void owner_forking(void);

enum owner_state owner_state(atomic_int *word);
/* Own WORD: true if this process owns it now (claimed if it was unowned). */
bool owner_claim(atomic_int *word);
/* Before fork: give up ownership, so that either side may claim. */
void owner_release(atomic_int *word);
/* In a new child: learn our pid.  (pthread_atfork, and the _Fork hook.) */
void owner_forked(void);
pid_t owner_pid(void);

#endif
