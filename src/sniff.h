/* sniff.h - is a client's first bytes a TLS ClientHello?  (Inbound rules:
 * `plaintext = refuse` closes a client that speaks anything else before
 * the program sees a byte; `allow` passes it through in clear.)
 *
 * Pure: bytes in, verdict out.  The library peeks (MSG_PEEK) at what the
 * client sent so far and asks; nothing is consumed. */
#ifndef TLSSHIM_SNIFF_H
#define TLSSHIM_SNIFF_H

#include <stddef.h>

/* Bytes needed for a verdict: the record header (5) and the handshake type. */
#define SNIFF_NEED 6

enum sniff_verdict {
	SNIFF_MORE = 0,   /* too few bytes to tell: wait for more */
	SNIFF_TLS,        /* a TLS handshake record carrying a ClientHello */
	SNIFF_PLAIN,      /* anything else (plaintext, SSLv2, another record type) */
};

/* The verdict on the first LEN bytes BUF a client sent.  A prefix that can
 * still become a ClientHello is SNIFF_MORE; once it cannot, SNIFF_PLAIN,
 * however few bytes came (a plaintext client is told apart at its first
 * byte, so a server-speaks-first protocol's one-line answer is enough). */
enum sniff_verdict sniff_client_hello(const unsigned char *buf, size_t len);

/* "16 03 01 02 00 01" for the log: the first bytes as hex, at most 8. */
void sniff_hex(const unsigned char *buf, size_t len, char *out, size_t outlen);

#endif
