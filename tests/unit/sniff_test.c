/* sniff_test.c - unit tests for the first-bytes sniffing of inbound
 * connections (sniff.h): real ClientHello headers are TLS, plaintext
 * protocols and other records are PLAIN as soon as they can be told, and
 * a prefix of a ClientHello waits for more. */
#include <string.h>

#include "sniff.h"
#include "tap.h"

static void is(const char *bytes, size_t len, enum sniff_verdict want, const char *what)
{
	enum sniff_verdict got = sniff_client_hello((const unsigned char *)bytes, len);

	ok(got == want, "%s: verdict %d (want %d)", what, (int)got, (int)want);
}

int main(void)
{
	/* What real clients send first (curl/OpenSSL, GnuTLS, Python). */
	static const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	static const char hello30[] = "\x16\x03\x00\x00\x40\x01";
	static const char hello33[] = "\x16\x03\x03\x00\x40\x01";
	char hex[64];
	size_t i;

	plan(22);
	is(hello, sizeof hello - 1, SNIFF_TLS, "OpenSSL ClientHello");
	is(hello30, 6, SNIFF_TLS, "record version 3.0");
	is(hello33, 6, SNIFF_TLS, "record version 3.3");
	for (i = 0; i < SNIFF_NEED; i++)
		is(hello, i, SNIFF_MORE, "ClientHello prefix waits");
	is("GET / HTTP/1.1\r\n", 16, SNIFF_PLAIN, "HTTP request");
	is("G", 1, SNIFF_PLAIN, "one plaintext byte is enough");
	is("*1\r\n$4\r\nPING\r\n", 14, SNIFF_PLAIN, "redis RESP");
	is("\x80\x2e\x01\x00\x02", 5, SNIFF_PLAIN, "SSLv2 ClientHello");
	is("\x16\x02", 2, SNIFF_PLAIN, "not version 3");
	is("\x16\x03\x05", 3, SNIFF_PLAIN, "minor version past TLS 1.3");
	is("\x17\x03\x03\x00\x20\x01", 6, SNIFF_PLAIN, "application data record");
	is("\x16\x03\x01\x00\x02\x01", 6, SNIFF_PLAIN, "record too short for a handshake");
	is("\x16\x03\x01\xff\xff\x01", 6, SNIFF_PLAIN, "record longer than TLS allows");
	is("\x16\x03\x01\x02\x00\x02", 6, SNIFF_PLAIN, "a ServerHello from a client");
	is("\x16\x03\x01\x02\x00", 5, SNIFF_MORE, "header without handshake type");
	sniff_hex((const unsigned char *)hello, sizeof hello - 1, hex, sizeof hex);
	ok(strcmp(hex, "16 03 01 02 00 01 00 01") == 0, "hex shows at most 8 bytes: %s", hex);
	sniff_hex((const unsigned char *)hello, sizeof hello - 1, hex, 10);
	ok(strcmp(hex, "16 03 01") == 0, "hex fits its buffer: %s", hex);
	return done();
}
