/* cache.h - the per-process session cache: TLS 1.3 tickets, each used
 * once, bounded by the policy's session-cache, keyed by rule, server name,
 * address and port (a resumed session keeps the first session's identity,
 * so the key must cover everything the rule decides). */
#ifndef TLSSHIM_CACHE_H
#define TLSSHIM_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* Maximum number of tickets kept; 0 turns the cache off. */
void cache_set_limit(unsigned limit);

/* Store a ticket (takes ownership of DATA, malloc'd); EARLY_MAX is the
 * 0-RTT size it allows (0: none). */
void cache_put(const char *key, void *data, size_t len, uint32_t early_max);

/* Take one ticket for KEY (caller frees), or NULL. */
void *cache_take(const char *key, size_t *len, uint32_t *early_max);

/* Tickets held now (for tests and soak measurements). */
size_t cache_count(void);


#endif
