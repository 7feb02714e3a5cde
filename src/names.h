/* names.h - which host names the program resolved to which addresses.
 *
 * Filled by the resolver hooks (getaddrinfo, gethostbyname...), read at
 * connect() so that name rules match and the certificate is verified
 * against the name the program asked for. */
#ifndef TLSSHIM_NAMES_H
#define TLSSHIM_NAMES_H

#include <stddef.h>
#include <stdint.h>

#define NAMES_MAX_PER_ADDR 8
#define NAMES_MAX_ADDRS 4096 /* addresses kept; the least recently recorded goes */
#define NAMES_LEN 256

struct name_list {
	size_t count;
	char names[NAMES_MAX_PER_ADDR][NAMES_LEN]; /* most recently resolved first */
};

/* Record that NAME resolved to ADDR (FAMILY AF_INET/AF_INET6): NAME goes
 * first in ADDR's list, lower-cased, without a final dot; a name of
 * NAMES_LEN bytes or more is ignored, and past NAMES_MAX_PER_ADDR the
 * oldest name of the list goes.  An IPv4-mapped IPv6 address is recorded
 * as its IPv4 address.  Thread-safe. */
void names_record(const char *name, int family, const uint8_t *addr);

/* Copy the names resolved for ADDR into *OUT, most recent first.  An
 * IPv4-mapped IPv6 address also finds IPv4 records.  Thread-safe. */
void names_lookup(int family, const uint8_t *addr, struct name_list *out);


#endif
