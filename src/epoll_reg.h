/* epoll_reg.h - the epoll registry: which managed descriptor is registered
 * with which epoll instance, under which cookie, with which interest; and the
 * rules that turn a connection's readiness into what the program may see.
 * hook_epoll.c does the kernel and connection work around it.
 *
 * Index: as redis's ae keeps events[fd], one array indexed by descriptor
 * number.  Entry N heads two lists: the registrations OF descriptor N (the
 * watched descriptor, usually one) and the registrations IN epoll instance
 * N.  Every look-up is O(1) or O(registrations of that one descriptor or
 * instance); nothing scans the whole registry.  Only managed descriptors
 * are registered here: the program's other descriptors go straight to the
 * kernel.  The array grows (doubling) to the highest number seen, which the
 * kernel keeps below RLIMIT_NOFILE: numbers are dense, so an array beats a
 * hash (no hashing, no allocation per entry, no out-of-memory path inside a
 * look-up).
 *
 * Slots come from slabs that are never freed, so a slot number stays valid
 * for ever: the kernel holds a cookie (epreg_cookie) naming the slot and its
 * incarnation, recognised in O(1), without the lock.
 *
 * Locking: ep_lock (epreg_lock) protects everything here unless a comment
 * says "no lock".  Order: ep_lock -> fdtab_lock (hook_epoll.c looks up
 * descriptors while holding it), never the reverse.  ep_lock is a
 * FORKLOCK_MUTEX: a forked child starts with it free (forklock.h); a busy
 * flag, set while it is held, tells a child forked in the middle of an
 * update to rebuild the index from the slabs before it walks anything. */
#ifndef TLSSHIM_EPOLL_REG_H
#define TLSSHIM_EPOLL_REG_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct conn;

/* The program's interest bits that a connection answers for. */
#define EPREG_APP_BITS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI)

struct ep_reg {
	bool live;
	bool linked;           /* in the index (epreg_link; set before the
				* lists are touched: a child forked half-way
				* relinks it whole, epoll_reg.c rebuild) */
	int epfd, fd;
	uint32_t app_events;
	epoll_data_t app_data;
	uint32_t kernel_events;
	bool disarmed;         /* EPOLLONESHOT delivered, waiting for EPOLL_CTL_MOD */
	unsigned last_gen;     /* plaintext generation last reported (EPOLLET) */
	bool failed_reported;  /* EPOLLET: the failure was reported once */
	const struct conn *conn; /* identity only (no reference): a registration
				  * whose fd now names another connection is stale */
	unsigned seq;          /* bumped by every (re)registration: work done
				* outside the lock applies only if unchanged */
	unsigned incarnation;  /* bumped when the slot is handed out: in the cookie */
	uint32_t index;        /* the slot's number: in the cookie */
	struct ep_reg *next_free;
	struct ep_reg *fd_prev, *fd_next; /* the registrations of the same fd */
	struct ep_reg *ep_prev, *ep_next; /* the registrations in the same instance */
};

void epreg_lock(void);
void epreg_unlock(void);

/* A fresh slot (live, not in the index, seq and incarnation bumped), or NULL
 * (out of memory, or 2^24 slots in use).  Under ep_lock. */
struct ep_reg *epreg_alloc(void);
/* Put REG in the index under reg->epfd and reg->fd (both >= 0).  0, or
 * -ENOMEM (REG is then not in the index).  Under ep_lock. */
int epreg_link(struct ep_reg *reg);
/* Take REG out of the index (if it is in) and give its slot back.  Under
 * ep_lock. */
void epreg_free(struct ep_reg *reg);

/* The registration of FD in EPFD, or NULL.  O(registrations of FD).  Under
 * ep_lock. */
struct ep_reg *epreg_find(int epfd, int fd);
/* The first registration of descriptor FD (then ->fd_next), or of epoll
 * instance EPFD (then ->ep_next); NULL if none.  Under ep_lock. */
struct ep_reg *epreg_first_of_fd(int fd);
struct ep_reg *epreg_first_in_epfd(int epfd);

/* Is any registration live?  Was a slot ever handed out (a cookie may be in
 * the kernel)?  No lock: one atomic load. */
bool epreg_any(void);
bool epreg_ever(void);

/* The epoll_data the kernel holds for REG: a tag in the top 16 bits (no
 * user-space pointer has them set, so the program's own pointers never look
 * like one), the slot number and the slot's incarnation.  No lock (the
 * caller keeps REG alive). */
uint64_t epreg_cookie(const struct ep_reg *reg);
/* Is VALUE a cookie of ours (tag, and a slot that exists)?  No lock. */
bool epreg_is_cookie(uint64_t value);
/* The live registration a cookie (epreg_is_cookie) names, or NULL if that
 * registration has been freed or its slot handed out again since.  Under
 * ep_lock. */
struct ep_reg *epreg_of_cookie(uint64_t cookie);

/* The epoll instances the program has used (at most EPREG_MAX_EPFDS; the
 * rest are not adopted into).  note: record EPFD (takes ep_lock when it is
 * new).  known: is FD one of them (no lock: a short scan of atomic entries
 * that never move, so an instance noted before the call is found until it
 * is forgotten; a hint only for one being forgotten meanwhile).  list: copy
 * up to MAX of them into OUT, return how many (no lock, the same way).
 * forget: free every registration in instance EPFD and drop it from the set
 * (takes ep_lock). */
#define EPREG_MAX_EPFDS 64
void epreg_note_epfd(int epfd);
bool epreg_known_epfd(int fd);
/* Might FD be an epoll instance with registrations here?  Known, or, once
 * an instance could not be noted (over EPREG_MAX_EPFDS), any registration
 * at all: forget then looks FD up in the index (no lock here). */
bool epreg_maybe_epfd(int fd);
int epreg_list_epfds(int *out, int max);
void epreg_forget_epfd(int epfd);

/* The events the program may see for REG, given READY (the connection's
 * answer, poll bits) and GEN (its plaintext generation): READY within the
 * interest (errors and hang-ups always); with EPOLLET, readable once per new
 * plaintext and a failure once; nothing while a one-shot is disarmed.
 * Remembers what it reported; when a one-shot fires it sets reg->disarmed,
 * and the caller disarms it in the kernel too.  Under ep_lock. */
uint32_t epreg_deliverable(struct ep_reg *reg, unsigned gen, short ready);

/* Add EVENTS for the program's DATA to OUT[0..N): merged into an entry with
 * the same data, else appended if N < MAX.  Returns the new count.  Pure. */
int epreg_merge_event(struct epoll_event *out, int n, int max, epoll_data_t data, uint32_t events);

/* Defined in hook_epoll.c: the rest of the library tells epoll of changes.
 * adopt: FD was just upgraded: take over the registrations the program made
 * before (found in /proc/self/fdinfo of the instances it used).  forget_fd:
 * the upgraded descriptor FD (still open) is going away: unregister it.
 * forget_epfd: FD is being closed or replaced: if it is an epoll instance we
 * know, forget its registrations (cheap for any other descriptor). */
void epoll_adopt(int fd);
void epoll_forget_fd(int fd);
void epoll_forget_epfd(int fd);

#endif
