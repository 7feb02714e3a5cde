/* clock.h - the one clock the library measures durations with.
 *
 * Handshake deadlines, lingering, poll/epoll timeouts and the verification
 * cache's lifetime use CLOCK_MONOTONIC, so a wall-clock step (NTP, an
 * operator's `date -s`) never ends a handshake early or keeps a connection
 * for ever.  (Session tickets age by the wall clock, in cache.c: their
 * lifetimes are the server's, in real time.) */
#ifndef TLSSHIM_CLOCK_H
#define TLSSHIM_CLOCK_H

#include <time.h>

/* Monotonic time in nanoseconds. */
static inline long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif
