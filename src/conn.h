/* conn.h - one upgraded connection and its state machine:
 *
 *   CONNECTING --TCP up--> HANDSHAKING --done--> OPEN
 *        \                     \                   \
 *         `----------------------`-------------------`--> FAILED
 *
 * A server connection (an inbound rule, accept.c) begins in HANDSHAKING:
 * its first step peeks at the client's first bytes (sniff.h); a client
 * that does not speak TLS fails it (plaintext = refuse) or turns it PLAIN
 * (plaintext = allow: the kernel carries its bytes as they are, for good).
 *
 * A client rule with `protocol` other than tls, or a proxy, first runs the
 * in-band exchange (inband.h) inside HANDSHAKING, on the kernel socket,
 * bounded by the handshake deadline; with mysql the program takes a turn
 * in the middle (program_turn: it reads the server's greeting and writes
 * its first packet, which is held and goes first inside TLS).
 *
 * FAILED is final and never carries plaintext: every later call on the
 * descriptor fails.  Locks: `rlock` serialises readers, `wlock` writers (GnuTLS
 * allows one of each at once); the handshake holds both, rlock first (a
 * writer holding wlock takes rlock only by trylock, and an open connection's
 * writer never needs it: a blocked reader cannot starve it).
 * Functions return a count or a negative errno, errno is set only by hooks. */
#ifndef TLSSHIM_CONN_H
#define TLSSHIM_CONN_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "inband.h"
#include "policy.h"

enum conn_state { CONN_CONNECTING, CONN_HANDSHAKING, CONN_OPEN, CONN_FAILED, CONN_PLAIN };

struct tls;

struct conn {
	atomic_int refs;
	pthread_mutex_t rlock, wlock;  /* forklock: conn_forked_child */
	_Atomic enum conn_state state;
	atomic_int fd;               /* transport descriptor: one of the program's
				      * numbers for the socket, changed by
				      * conn_set_fd without a lock (LOCKING) */
	atomic_int users;            /* poll/epoll calls into it in progress: close
				      * waits for them before the number can be reused */
	unsigned long long sock_dev, sock_ino; /* the socket's identity (fstat) */
	struct owner *owner;         /* which process uses each direction (owner.h),
				      * shared across fork */
	bool owner_private;
	unsigned owner_gen;          /* forks before it was made (owner.h) */
	const struct policy_rule *rule;
	struct tls *tls;
	bool server;                 /* accepted (an inbound rule): the server side */
	bool sniffed;                /* server: the client's first bytes were a
				      * ClientHello (both locks) */
	char *dest;                  /* "127.0.0.1:8443" as connected; server: the
				      * local address */
	char *app_dest;              /* what the program asked for; server: the
				      * client's address */
	char *server_name;           /* verified name (or NULL) */
	char *cache_key;             /* NULL: no resumption for this rule */
	/* error and so_error: fail() runs under rlock (a read failed), wlock
	 * (a write failed) or both, so two threads may fail it at once; the
	 * first one's values stay.  Atomics: read without a lock. */
	atomic_int error;            /* errno for I/O once FAILED */
	atomic_int so_error;         /* reported once by getsockopt(SO_ERROR) */
	bool eof;                    /* close_notify received */
	/* shut_wr, fin_pending, bye_owed: shutdown() sets them without
	 * waiting for wlock (a blocked writer may hold it for ever). */
	atomic_bool shut_wr;         /* the program writes no more (shutdown, close):
				      * close_notify sent, or queued behind data */
	atomic_bool fin_pending;     /* shutdown(SHUT_WR) waits for them to go out */
	atomic_bool bye_owed;        /* shutdown() found wlock busy: its holder
				      * queues close_notify before letting go */
	atomic_bool shut_rd;         /* shutdown(SHUT_RD): reads return end of stream */
	atomic_bool send_queued;     /* GnuTLS held records to push when wlock was
				      * last let go: poll's hint (write_unlock) */
	bool foreign_logged[2];      /* refused I/O logged, per direction (owner.h) */
	bool push_refused_logged;    /* GnuTLS tried to send without the send side */
	bool oob_logged;             /* MSG_OOB refused (logged once) */
	bool busy_at_fork;           /* this is a forked child, and another thread of
				      * the parent was inside this connection */
	bool holding;                /* this process counts among its holders (owner.h) */
	bool exec_let_go;            /* let go for an exec that may still fail */
	unsigned hold_fork;          /* the last fork it was counted for */
	atomic_bool early_pending;   /* 0-RTT possible: wait for the first write
				      * (written under both locks, read by poll) */
	atomic_bool early_sent;      /* the first bytes went out as early data */
	unsigned char *early_buf;    /* a copy, resent if the server rejects them;
				      * kept until all of it went again (wlock) */
	size_t early_len, early_off; /* its size; how much of it went again */
	uint64_t sent_since_rekey;   /* bytes sent since the last KeyUpdate */
	long long last_rekey_ns;
	unsigned key_updates;
	/* deadline_ns, hs_events, early_wait_until: written under both conn
	 * locks (or before the conn is shared), read without them by poll and
	 * epoll (conn_poll_prepare, conn_deadline): hints, relaxed atomics. */
	_Atomic long long deadline_ns; /* handshake deadline (CLOCK_MONOTONIC), 0: none */
	_Atomic short hs_events;     /* what the handshake waits for: POLLIN or POLLOUT */
	_Atomic long long early_wait_until; /* 0-RTT: when to stop waiting for the first write */
	atomic_bool nodelay_window;  /* TCP_NODELAY on until the first data moves */
	atomic_int app_nodelay;      /* TCP_NODELAY as the program set it */
	unsigned char *rbuf;         /* plaintext read ahead by poll probes */
	size_t rlen, roff;
	atomic_uint rgen;            /* bumped whenever plaintext becomes available */
	/* In-band negotiation (inband.h), client rules with a protocol or a
	 * proxy.  ib: while the exchange before TLS runs (both locks), then
	 * freed; greet: what the program reads once the handshake is done. */
	struct inband *ib;
	unsigned char *greet;
	size_t greet_len;
	atomic_bool program_turn;    /* mysql: the program reads the greeting and
				      * writes its first packet (both locks) */
	atomic_bool held_owed;       /* the program's first packet (mysql) was taken:
				      * held by the exchange, then in early_buf, owed
				      * first inside TLS (not 0-RTT) */
	bool pg_filter;              /* postgres: the program's own SSLRequest or
				      * GSSENCRequest is answered N (wlock) */
	atomic_uint pg_owed;         /* those N answers not yet in rbuf */
	atomic_bool mysql_on;        /* mysql: sequence IDs renumbered (the
				      * reader ends it at the OK/ERR) */
	struct inband_mysql mysql_up;   /* wlock */
	struct inband_mysql mysql_down; /* rlock */
	char *via;                   /* " protocol=smtp proxy=H:P" for the log, or NULL */
	char *proxy_addr;            /* the proxy as connected ("127.0.0.1:3128"), or NULL */
};


struct conn_params {
	int fd;
	const struct policy_rule *rule;
	const char *dest, *app_dest;
	const char *sni, *verify_name;
	const char *cache_key;
	bool server;                       /* an accepted connection: the server side */
	const unsigned char *ticket_key;   /* server: TLS_TICKET_KEY_LEN bytes, or NULL */
	const char *proxy_target;          /* client through rule->proxy_*: "host:port"
					    * for CONNECT, else NULL */
	const char *proxy_addr;            /* the proxy as connected, for the log */
};

/* New connection (one reference), TLS session ready, not yet started.
 * Return NULL and fill ERR on failure. */
struct conn *conn_new(const struct conn_params *params, char *err, size_t errlen);
void conn_ref(struct conn *conn);
/* A poll or epoll wait is about to call into CONN (handshake steps, reads,
 * flushes on conn->fd) for descriptor FD: true if FD still names CONN, and
 * then close() of that descriptor waits for conn_use_end before the kernel
 * may hand the number to another file. */
bool conn_use_begin(struct conn *conn, int fd);
/* The same when the caller already knows (under epoll's registration lock)
 * that the descriptor still names CONN. */
void conn_use_hold(struct conn *conn);
void conn_use_end(struct conn *conn);
/* Wait (briefly: those calls never block) until no poll/epoll call is in
 * CONN; the caller has already unmapped the descriptor. */
void conn_wait_unused(struct conn *conn);
void conn_unref(struct conn *conn);

/* An accepted server connection is registered: its handshake clock starts
 * (the handshake itself runs on the program's first use). */
void conn_start_server(struct conn *conn);

/* The TCP connect returned: 0 (connected) or IN_PROGRESS.  For a connected
 * blocking socket the handshake runs now.  Return 0 or a negative errno. */
int conn_start(struct conn *conn, bool in_progress);

/* Does FD still name this connection's socket?  (Programs close
 * descriptors behind our back, e.g. with syscall(SYS_close), and the number
 * comes back for another file.) */
bool conn_is_socket(const struct conn *conn, int fd);

/* Does another process own a direction of it (since fork)? */
bool conn_foreign(const struct conn *conn);
/* Use the whole connection from this process: true if both directions are
 * ours (claimed now if unowned). */
bool conn_claim(struct conn *conn);
/* Does this process own the sending (receiving) direction?  Only the send
 * owner may send anything (data, KeyUpdate, alerts, close_notify); only the
 * receive owner may read the socket.  Never claims. */
bool conn_owns_send(const struct conn *conn);
bool conn_owns_recv(const struct conn *conn);
/* Nobody owns the receiving side (released at fork, unclaimed since). */
bool conn_recv_unowned(const struct conn *conn);
/* Before fork(): let whichever process uses a direction first have it. */
void conn_release_for_fork(struct conn *conn);
/* In the forked child (one thread): reset its locks; if a thread of the
 * parent held one, the parent keeps the connection (the child gets EIO). */
void conn_forked_child(struct conn *conn);
/* Holders (owner.h): before fork FORK_SERIAL (counted once per connection,
 * however many descriptors name it), for the child; in a vfork stand-in's
 * child, which only execs and is not counted; around an exec (the new
 * image does not get the socket): let go, and hold again if it failed. */
void conn_hold_for_fork(struct conn *conn, unsigned fork_serial);
void conn_not_holding(struct conn *conn);
void conn_exec_let_go(struct conn *conn);
void conn_exec_failed(struct conn *conn);

ssize_t conn_recv(struct conn *conn, void *buf, size_t len, int flags);
/* What the kernel answers to a vector it refuses, before it reads a byte:
 * -EINVAL for IOVCNT < 0 or > IOV_MAX or a length > SSIZE_MAX, then
 * -EFAULT for a NULL IOV, a NULL base with a length, or a range no memory
 * can hold (past the address space, or more than SSIZE_MAX in all); else
 * 0 with *TOTAL the byte count.  Lock-free, pure. */
int conn_iov_check(const struct iovec *iov, int iovcnt, size_t *total);
/* One buffer (write, send): as conn_sendv, but -EFAULT (not -EINVAL) for a
 * LEN over SSIZE_MAX, as the kernel says. */
ssize_t conn_send(struct conn *conn, const void *buf, size_t len, int flags);
/* The IOVCNT buffers of IOV as one write (writev, sendmsg): the records are
 * cut from the whole, as from one buffer, read in place; copied are only a
 * record's worth (at most 16 KiB) whose bytes span two or more buffers
 * (gathered for GnuTLS), 0-RTT data (kept to resend if the server rejects
 * it), and a record queued after EAGAIN whose size is not yet known (kept
 * to check the retry).  Errors as conn_iov_check, before anything is sent. */
ssize_t conn_sendv(struct conn *conn, const struct iovec *iov, int iovcnt, int flags);

/* Readiness translation.  prepare: the kernel events to wait for, given the
 * program's WANT; *READY gets events true already (buffered plaintext, a
 * failure).  result: the program's events given the kernel's KREVENTS;
 * advances the handshake, flushes, probes one record, never blocks. */
short conn_poll_prepare(struct conn *conn, short want, short *ready);
short conn_poll_result(struct conn *conn, short want, short krevents);
/* The handshake deadline (CLOCK_MONOTONIC ns) while one runs, else 0:
 * waits must wake up then, so that a silent server fails the connection. */
long long conn_deadline(struct conn *conn);

/* Plaintext generation: changes when new data becomes readable. */
unsigned conn_read_generation(struct conn *conn);

/* shutdown(): a negative errno, or which sides the kernel must NOT shut
 * now (0: do as the program asked).  Never blocks: a writer blocked in a
 * full socket holds wlock, and then sends close_notify itself, after its
 * bytes, when its write ends.  CONN_SHUT_KEEP_WR: records the kernel
 * could not take yet (data the program was told was sent, then
 * close_notify) still wait inside the session; the write side closes once
 * they are out (conn_push_final, or a poll that flushes them).
 * CONN_SHUT_KEEP_RD: the read side is closed for the program only (reads
 * return end of stream); the kernel's SHUT_RD would answer the server's
 * next record with a reset. */
#define CONN_SHUT_KEEP_WR 1
#define CONN_SHUT_KEEP_RD 2
int conn_shutdown(struct conn *conn, int how);
/* What conn_closing says about the socket. */
enum conn_close {
	CONN_CLOSE_NOW,    /* nothing more to send or to wait for */
	CONN_CLOSE_LINGER, /* close_notify is out; the server may still send */
	CONN_CLOSE_OUTPUT, /* records (data, close_notify) still wait to be
			    * pushed: keep the socket and call conn_push_final */
	CONN_CLOSE_WAIT,   /* close_notify is out, and the receiving side is
			    * nobody's (released at a fork, never claimed since):
			    * keep the socket, without reading it, until the
			    * server closes (linger_add_waiting) */
};
/* The last descriptor is being closed, or the process is ending: read what
 * is pending, queue close_notify behind whatever data GnuTLS still holds,
 * push what goes without blocking.  Only the owner of an open connection
 * does anything (CONN_CLOSE_NOW otherwise).  LINGER is not said when the
 * server has closed already (close_notify or end of stream read): nothing
 * more can arrive to turn our close into a reset. */
enum conn_close conn_closing(struct conn *conn);
/* Push what conn_closing left (never blocks): 0 when close_notify is out
 * (the kernel's SHUT_WR may follow), -EAGAIN (wait for POLLOUT), -EBUSY
 * (another thread is writing: try again soon), or a negative errno (said
 * in the log: the rest cannot be delivered). */
int conn_push_final(struct conn *conn);
/* conn_push_final will not be called again (WHY): say in the log that the
 * program's last bytes or close_notify did not reach the server. */
void conn_log_undelivered(struct conn *conn, const char *why);
/* For getsockopt(SO_ERROR): the pending error, cleared. */
int conn_take_so_error(struct conn *conn);
/* getsockopt(SO_ERROR) found ERR pending on the socket: read the alert
 * that may have come before it, so the log says why. */
void conn_kernel_error(struct conn *conn, int err);
/* Nagle would hold the first request behind the unacknowledged handshake
 * Finished (and the server's delayed ACK: 40 ms): TCP_NODELAY is on from
 * connect() until the first data moves, then back to what the program set.
 * setsockopt/getsockopt of TCP_NODELAY during that window see the
 * program's own value. */
void conn_nodelay_begin(struct conn *conn);
void conn_nodelay_end(struct conn *conn);
/* The program sets TCP_NODELAY: return true if we took it (window open). */
bool conn_nodelay_set(struct conn *conn, int value);
/* The program asks: -1 if the kernel's answer is right, else its value. */
int conn_nodelay_get(struct conn *conn);
/* For FIONREAD: plaintext bytes readable without blocking. */
size_t conn_readable(struct conn *conn);
/* The transport is now FD (the number the connection used is being closed,
 * FD names the same socket): stores conn->fd and the engine's, atomically,
 * with no lock; a thread that loaded the old number may still use it once
 * (LOCKING, section 4). */
void conn_set_fd(struct conn *conn, int fd);

#endif
