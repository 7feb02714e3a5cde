/* owner.h - which process uses each direction of an upgraded connection
 * after fork().
 *
 * Parent and child share the socket but each has its own copy of the TLS
 * state: if both wrote, both would use the same nonces.  TLS 1.3's two
 * directions have independent keys and sequence numbers, so each direction
 * has its own owner: a record in memory shared across fork (MAP_SHARED)
 * holds one word for SENDING and one for RECEIVING.  Before fork() a process
 * gives up the directions it owns; afterwards the first process to write
 * claims the sending direction, the first to read the receiving one, and
 * any other process gets EIO for that direction (rsync's receiver reads
 * while its generator writes; a server that forks helpers keeps its
 * connections; a program that connects and then daemonizes hands them to
 * the child).  A handshake uses both directions: it needs both claimed.
 *
 * Why no nonce is ever used twice, in any interleaving:
 *  1. A TLS 1.3 nonce is (static IV of a key) XOR (record sequence number),
 *     and the keys and sequence numbers of one direction are used only by
 *     the code that encrypts (send) or decrypts (receive) that direction.
 *     Encrypting twice under one (key, sequence number) is the only reuse
 *     that hurts; it can only happen if two copies of the sending state
 *     both encrypt.  Copies exist only through fork.
 *  2. The sending state is only advanced by a process whose identity is in
 *     the SEND word: conn.c claims it before every path that encrypts
 *     (write, KeyUpdate, close_notify, flush, handshake), and tls.c's
 *     transport refuses every byte GnuTLS tries to push from a process that
 *     is not the send owner (GnuTLS queues a KeyUpdate answer or an alert
 *     from inside a read; such bytes never reach the wire).  A record that
 *     was encrypted but not written leaves nothing behind: its sequence
 *     number is used on the wire by nobody else.
 *  3. A claim is a compare-and-swap from 0 (unowned) to our identity, so of
 *     any number of racing processes exactly one wins a direction; the word
 *     is never set to another identity except by release (below), or by
 *     the hand-over of a connection whose handshake has not begun to a new
 *     program image (owner_hand_over: exec, posix_spawn), which no copy of
 *     this record ever gets back.
 *  4. Release (0) happens only before fork, by the owner itself, and only
 *     while it holds the direction's lock (trylock: a direction some thread
 *     is inside stays with the parent).  Every use of a direction checks
 *     (or claims) ownership again with that lock held, so no thread of the
 *     parent can be using a copy it checked before the release.  From the
 *     release on, the parent's and the child's copies are identical, and
 *     whichever claims first continues the sequence exactly where it was;
 *     the loser's copy is never used.  A direction owned by a third process
 *     is not released by a fork of ours: it keeps its owner.  (The child
 *     re-initialises the locks: a parent thread may have held one.)
 *  5. Identities are never reused: an identity is the pid plus a number
 *     drawn from a counter shared by every process that descends from the
 *     one that made the connection.  A new process whose pid happens to be
 *     that of an exited owner is still someone else.
 *  6. A direction never moves to another process after it was used: when
 *     its owner exits, the word keeps naming it, and every other process
 *     gets EIO (and a log line).  Its copy of the state is stale: the owner
 *     advanced the sequence numbers, may have changed keys by KeyUpdate,
 *     and may have read ciphertext ahead or left half a record unsent, so
 *     no copy elsewhere can continue the stream safely.
 *  7. The end: the record counts the processes that hold the connection
 *     (raised before each fork for the child, lowered when a process
 *     closes its last descriptor of it, exits, or execs).  The last one to
 *     let go claims the directions still unowned (never one another process
 *     used: point 6), so a parent that forked and then closes without
 *     writing again still sends close_notify, while a parent that forks
 *     and exits leaves the connection to its child.  Not counted: the
 *     vfork stand-in's child (it only execs), a process killed by a signal
 *     and a fork that fails (their count is never lowered: then nobody
 *     ends the stream, as before).
 * The receiving direction cannot reuse a nonce (it only decrypts); the same
 * rule keeps a stale copy from consuming records meant for the owner. */
#ifndef TLSSHIM_OWNER_H
#define TLSSHIM_OWNER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum owner_state { OWNER_SELF, OWNER_NONE, OWNER_OTHER };
enum owner_dir { OWNER_SEND, OWNER_RECV };

/* Shared across fork: who owns each direction (pid | identity << 32). */
struct owner {
	_Atomic uint64_t dir[2];
	/* The peer asked (KeyUpdate update_requested) for a new sending key,
	 * and the process that read it does not own the sending direction. */
	atomic_bool update_requested;
	/* Processes that hold the connection (a descriptor of it, not yet
	 * closed, exited or exec'd away): the last one to let go claims the
	 * directions nobody ever claimed since the fork, to end the stream
	 * (close_notify).  A process killed by a signal never lowers it. */
	atomic_uint holders;
};

/* A new record, both directions owned by this process, or NULL (no
 * memory).  Without shared memory it falls back to a private record
 * (*PRIVATE_WORD set): a child then never owns what its parent created. */
struct owner *owner_new(bool *private_word, unsigned *gen);
void owner_delete(struct owner *owner, bool private_word, unsigned gen);
/* A fork is about to happen (both processes keep the count). */
void owner_forking(void);

enum owner_state owner_state(struct owner *owner, enum owner_dir dir);
/* Own DIR: true if this process owns it now (claimed if it was unowned). */
bool owner_claim(struct owner *owner, enum owner_dir dir);
/* Before fork: give up DIR if we own it, so that either side may claim it.
 * The caller holds the direction's lock (conn.c) until the fork is done. */
void owner_release(struct owner *owner, enum owner_dir dir);
/* Holders (see struct owner): one more (before fork, for the child),
 * one less: true if that was the last. */
void owner_hold(struct owner *owner);
bool owner_let_go(struct owner *owner);
/* A new program image takes the connection over (hook_exec.c: a posix_spawn
 * child, or an exec of this very process): DIR, owned by whoever owns it
 * now, is handed to an identity made for PID (its pid, a serial nobody
 * else has), so that every process that still has a copy of the state
 * gets EIO (point 6).  The caller holds the direction's lock and knows that
 * the handshake has not begun.  *PREV gets the old word, *GIVEN the new one
 * for owner_take_back, which undoes it (the exec failed) unless the word
 * moved since. */
void owner_hand_over(struct owner *owner, enum owner_dir dir, pid_t pid, uint64_t *prev, uint64_t *given);
void owner_take_back(struct owner *owner, enum owner_dir dir, uint64_t prev, uint64_t given);
/* The pid of DIR's owner (0: none), for the log. */
pid_t owner_pid_of(struct owner *owner, enum owner_dir dir);
/* In a new child: learn our pid and identity.  (pthread_atfork, _Fork hook.) */
void owner_forked(void);
pid_t owner_pid(void);

#endif
