/* ticket.c - NewSessionTicket (RFC 8446 4.6.1):
 *   uint32 lifetime; uint32 age_add; opaque nonce<0..255>;
 *   opaque ticket<1..2^16-1>; Extension extensions<0..2^16-2>;  */
#include "ticket.h"

static size_t be16(const unsigned char *p)
{
	return (size_t)p[0] << 8 | p[1];
}

uint32_t ticket_early_max(const unsigned char *p, size_t len)
{
	size_t off = 8, ext_end;

	if (!p || len < off + 1)
		return 0;
	off += 1 + p[off];                 /* nonce */
	if (off + 2 > len)
		return 0;
	off += 2 + be16(p + off);          /* ticket */
	if (off + 2 > len)
		return 0;
	ext_end = off + 2 + be16(p + off); /* extensions */
	off += 2;
	if (ext_end > len)
		return 0;
	while (off + 4 <= ext_end) {
		size_t type = be16(p + off), elen = be16(p + off + 2);

		off += 4;
		if (elen > ext_end - off)
			return 0;
		if (type == 42 && elen == 4)
			return (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 | (uint32_t)p[off + 2] << 8 |
			       p[off + 3];
		off += elen;
	}
	return 0;
}
