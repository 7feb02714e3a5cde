/* sniff.c - a client's first bytes: TLS ClientHello or not (sniff.h). */
#include "sniff.h"

#include <stdio.h>

/* A TLS record header (RFC 8446, 5.1): type 22 (handshake), legacy
 * version 3.x (a ClientHello says 3.1 for compatibility, some 3.0 to 3.3),
 * a length of at least a handshake header and at most 2^14 plus expansion,
 * then the handshake type 1 (client_hello). */
enum sniff_verdict sniff_client_hello(const unsigned char *buf, size_t len)
{
	size_t reclen;

	if (len < 1)
		return SNIFF_MORE;
	if (buf[0] != 0x16)
		return SNIFF_PLAIN;
	if (len < 2)
		return SNIFF_MORE;
	if (buf[1] != 0x03)
		return SNIFF_PLAIN;
	if (len < 3)
		return SNIFF_MORE;
	if (buf[2] > 0x04)
		return SNIFF_PLAIN;
	if (len < 5)
		return SNIFF_MORE;
	reclen = ((size_t)buf[3] << 8) | buf[4];
	if (reclen < 4 || reclen > 16384 + 2048)
		return SNIFF_PLAIN;
	if (len < SNIFF_NEED)
		return SNIFF_MORE;
	return buf[5] == 0x01 ? SNIFF_TLS : SNIFF_PLAIN;
}

void sniff_hex(const unsigned char *buf, size_t len, char *out, size_t outlen)
{
	size_t i, used = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < len && i < 8 && used + 4 <= outlen; i++)
		used += (size_t)snprintf(out + used, outlen - used, "%s%02x", i ? " " : "", buf[i]);
}
