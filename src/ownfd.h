/* ownfd.h - the descriptors the library keeps for itself: the log's, the
 * NSS key log's, and the policy file's (from start-up until it is read).
 *
 * They live at high numbers (OWNFD_MIN and up), away from the ones programs
 * use, are close-on-exec, and survive the program closing or dup2-ing over
 * them: the close/dup2/dup3 hooks call ownfd_protect() first, which moves
 * ours to another number and lets the program have its own.
 *
 * A number must never be written to after it went back to the program (the
 * program may already have put its own file there).  So a user that loads a
 * number and then writes to it (a log line, the policy read) pins the
 * descriptors first, and whoever takes a number away (ownfd_protect, a
 * replacement by ownfd_set) waits for the users that pinned before it,
 * before the number is closed or handed back.  Pins are two counters in the
 * manner of a grace period: new users count in the other one, so a steady
 * stream of log lines never keeps a close() waiting. */
#ifndef TLSSHIM_OWNFD_H
#define TLSSHIM_OWNFD_H

#include <stddef.h>

/* Our descriptors live at this number and above when they can. */
#define OWNFD_MIN 500

enum ownfd {
	OWNFD_LOG,    /* the log's destination (stderr copy or file); -1 for syslog */
	OWNFD_KEYLOG, /* keylog = PATH, or -1 */
	OWNFD_POLICY, /* the policy file until it is read, or -1 */
	OWNFD_COUNT
};

/* WHICH's number now, or -1.  Good for "is N ours?"; a caller that goes on
 * to use the number takes it with ownfd_pin instead. */
int ownfd_get(enum ownfd which);

/* WHICH's number (or -1), pinned: it stays WHICH's file until
 * ownfd_unpin(*PIN).  Lock-free; pins nest. */
int ownfd_pin(enum ownfd which, int *pin);
void ownfd_unpin(int pin);

/* A copy of FD at OWNFD_MIN or above (or 3 and above), close-on-exec, or
 * -1 with errno set.  FD itself stays open. */
int ownfd_copy_high(int fd);

/* At start-up, before libc is resolved (raw system calls): the log's
 * descriptor is a high copy of descriptor 2. */
void ownfd_copy_stderr_early(void);
/* At start-up (no thread of ours yet, libc not resolved): hold FD as WHICH,
 * which holds nothing yet. */
void ownfd_hold_early(enum ownfd which, int fd);

/* WHICH becomes FD (a descriptor of ours, already high, or -1); the one it
 * replaces is closed once no pinned user can still write to it.  Takes
 * ownfd_lock; call it with no lock of this library held but rlock/wlock. */
void ownfd_set(enum ownfd which, int fd);

/* The program is about to close or replace FD (close, dup2 onto it,
 * close_range over it): if it is one of ours, move ours to a higher number
 * and wait for the users pinned on it.  Cheap when FD is not ours. */
void ownfd_protect(int fd);

/* The NSS key log file (keylog = PATH): opened 0600, held as OWNFD_KEYLOG.
 * Return 0 or a negative errno. */
int ownfd_open_keylog(const char *path);
/* Write LEN bytes of LINE (one NSS key-log line) to the key log, the
 * number pinned from its load to the write: never to a number the program
 * has taken meanwhile.  0 if all went, else a negative errno (-EBADF: no
 * key log).  Lock-free; for the TLS engine (tls_params.keylog_write). */
int ownfd_keylog_write(const char *line, size_t len);
/* Its path, for the log ("" if none). */
const char *ownfd_keylog_path(void);

#endif
