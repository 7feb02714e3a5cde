/* cache.h - the per-process session cache: TLS 1.3 tickets, each used
 * once, bounded by the policy's session-cache, keyed by rule, server name,
 * address and port (a resumed session keeps the first session's identity,
 * so the key must cover everything the rule decides).  Every function is
 * thread-safe (one lock, cache_lock, held only inside them). */
#ifndef TLSSHIM_CACHE_H
#define TLSSHIM_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* TLS 1.3 tickets live at most seven days (RFC 8446 4.6.1): an older one
 * is freed, never offered. */
#define CACHE_TICKET_MAX_AGE (7 * 24 * 3600)

/* Maximum number of tickets kept (64 until set); past it the oldest ticket
 * stored goes first, whatever its key.  0 turns the cache off and empties
 * it. */
void cache_set_limit(unsigned limit);

/* Store a ticket (takes ownership of DATA, malloc'd: freed here if it is
 * not kept); EARLY_MAX is the 0-RTT size it allows (0: none).  A key may
 * hold several tickets. */
void cache_put(const char *key, void *data, size_t len, uint32_t early_max);

/* Take KEY's newest ticket out of the cache (caller frees), or NULL; the
 * expired ones met on the way are freed.  O(1) but for those. */
void *cache_take(const char *key, size_t *len, uint32_t *early_max);

/* The same at wall-clock time NOW (seconds; the unit tests give it). */
void cache_put_at(const char *key, void *data, size_t len, uint32_t early_max, time_t now);
void *cache_take_at(const char *key, time_t now, size_t *len, uint32_t *early_max);

/* Tickets held now (for tests and soak measurements). */
size_t cache_count(void);


#endif
