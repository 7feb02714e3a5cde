/* clock.h: the one clock the library measures time with.
 *
 * Deadlines, lingering and cache lifetimes all use CLOCK_MONOTONIC, so a
 * wall-clock step (NTP, an operator's `date -s`) never ends a handshake early
 * or keeps a connection forever. */
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
