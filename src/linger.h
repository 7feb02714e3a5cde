/* linger.h - a lingering close for upgraded sockets.
 *
 * TLS 1.3 servers send session tickets after the handshake, and a program
 * that only writes and then closes never reads them.  A socket closed with
 * unread data, or receiving data after it was closed, answers with a
 * reset, and the server then loses whatever it had not read yet: the end of
 * an upload.  So when the program closes an upgraded socket, a duplicate of
 * ours stays open (write side shut) and reads and discards until the server
 * closes too; at exit the library waits for those, a few seconds at most.
 *
 * When the program closes (or the process ends) while records the kernel
 * could not take yet still wait inside the session (the last bytes of a
 * non-blocking write, close_notify), the lingering socket holds the
 * connection too and pushes them first, then shuts its write side.  At
 * exit (exit, return from main, _exit, _Exit) connections the program never
 * closed get the same treatment: flushed, close_notify, lingering wait. */
#ifndef TLSSHIM_LINGER_H
#define TLSSHIM_LINGER_H

struct conn;

/* Keep FD (a duplicate of our own, close-on-exec) until its peer closes.
 * With CONN (whose reference it takes, transport on FD), first push what
 * the session still holds (conn_push_final), then shut FD's write side. */
void linger_add(int fd, struct conn *conn);
/* Keep FD (a duplicate of our own, close-on-exec, close_notify out) without
 * reading it until its peer closes: the receiving side is nobody's
 * (CONN_CLOSE_WAIT). */
void linger_add_waiting(int fd);
/* Read and discard what arrived; close those whose peer closed or that
 * waited too long.  Never blocks; cheap when nothing lingers. */
void linger_service(void);
/* The program is about to close or replace FD: if it is one of ours, let
 * it go (the number becomes the program's). */
void linger_forget(int fd);
void linger_forget_range(unsigned first, unsigned last);
/* Our lingering descriptors (up to MAX of them) into OUT; returns the count. */
#define LINGER_LIST_MAX 256
int linger_fds(int *out, int max);
/* At exit: wait until every peer closed, at most MAX_MS. */
void linger_wait_all(int max_ms);
/* The process is ending (exit, return from main, _exit, _Exit): every open
 * connection this process owns and never closed is flushed, gets its
 * close_notify and lingers, and then everything lingering is waited for,
 * MAX_MS in all.  Not in a vfork child (it shares the parent's memory), and
 * never for connections another process owns since fork. */
void linger_at_exit(int max_ms);
/* In a forked child: the sockets are the parent's business. */
void linger_forked_child(void);

#endif
