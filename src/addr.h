/* addr.h - IPv4-mapped IPv6 addresses (::ffff:a.b.c.d): one rule for the
 * policy matcher, the hosts file and the names map, so that an address the
 * program writes either way finds the same rule and the same names.
 * Header-only (static inline): its users are in the core library and in the
 * preloaded library. */
#ifndef TLSSHIM_ADDR_H
#define TLSSHIM_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* Is A (16 bytes) an IPv4-mapped IPv6 address? */
static inline bool addr_is_v4mapped(const uint8_t *a)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(a, prefix, sizeof prefix) == 0;
}

/* IN (4 bytes for AF_INET, 16 for AF_INET6) in normal form into OUT: an
 * IPv4-mapped IPv6 address becomes its IPv4 address; unused bytes of OUT are
 * zero.  Returns the normal form's family (AF_INET or AF_INET6), or
 * AF_UNSPEC (OUT all zero) for any other FAMILY. */
static inline int addr_normalize(int family, const uint8_t *in, uint8_t out[16])
{
	memset(out, 0, 16);
	if (family == AF_INET || (family == AF_INET6 && addr_is_v4mapped(in))) {
		memcpy(out, family == AF_INET ? in : in + 12, 4);
		return AF_INET;
	}
	if (family == AF_INET6) {
		memcpy(out, in, 16);
		return AF_INET6;
	}
	return AF_UNSPEC;
}

#endif
