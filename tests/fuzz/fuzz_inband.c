/* libFuzzer target: the in-band negotiation (inband.h) and the MySQL
 * renumbering.
 *
 * First byte: the selector.  Bit 0x80 clear: a negotiation, protocol
 * (selector & 7) % 7, through a proxy if 0x08, with credentials if 0x10;
 * the rest is the peer's bytes as records (one length byte, then that
 * many bytes: one read, or one write of the program once it is asked
 * for).  Never a crash or an overrun; TLS only with in[] empty; why[]
 * printable and terminated.
 * Bit 0x80 set: the rest (after 8 bytes of seed for the cuts) is a stream
 * renumbered in each direction whole and cut at pseudo-random points:
 * the same bytes and the same end either way. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inband.h"

static struct inband ib;

/* why[] is terminated printable ASCII. */
static void check_why(void)
{
	size_t i;

	for (i = 0; i < sizeof ib.why && ib.why[i]; i++)
		if ((unsigned char)ib.why[i] < 0x20 || (unsigned char)ib.why[i] >= 0x7f)
			abort();
	if (i == sizeof ib.why)
		abort();
}

/* The buffers' lengths are within their bounds. */
static void check_bounds(void)
{
	if (ib.in_len > INBAND_IN_MAX || ib.out_len > INBAND_OUT_MAX || ib.out_off > ib.out_len ||
	    ib.greet_len > INBAND_GREET_MAX || ib.held_len > INBAND_HELD_MAX)
		abort();
}

/* One record at *POS of DATA: its bytes in *REC, their count returned. */
static size_t record(const uint8_t *data, size_t size, size_t *pos, const uint8_t **rec)
{
	size_t n;

	n = data[(*pos)++];
	if (n > size - *pos)
		n = size - *pos;
	*rec = data + *pos;
	*pos += n;
	return n;
}

static void negotiate(uint8_t sel, const uint8_t *data, size_t size)
{
	static const char *const targets[] = { "db.example:5432", "[2001:db8::1]:443" };
	enum inband_next v;
	const uint8_t *rec;
	size_t pos = 0, n;
	ssize_t took;
	int turns = 0;

	inband_init(&ib, (enum policy_protocol)((sel & 7) % 7), sel & 0x08 ? targets[sel >> 5 & 1] : NULL,
		    sel & 0x10 ? "user:secret" : NULL, sel & 0x20 ? "client.example" : NULL);
	for (;;) {
		if (++turns > 100000)
			abort();
		v = inband_next(&ib);
		check_bounds();
		if (v == INBAND_SEND) {
			if (ib.out_off >= ib.out_len)
				abort();
			ib.out_off = ib.out_len;
		} else if (v == INBAND_READ || v == INBAND_PROGRAM) {
			if (v == INBAND_PROGRAM)
				ib.greet_len = 0;
			if (pos >= size) {
				v = inband_eof(&ib);
				break;
			}
			n = record(data, size, &pos, &rec);
			if (v == INBAND_PROGRAM) {
				took = inband_program(&ib, rec, n);
				if (took > (ssize_t)n)
					abort();
				continue;
			}
			if (n > INBAND_IN_MAX - ib.in_len)
				n = INBAND_IN_MAX - ib.in_len;
			memcpy(ib.in + ib.in_len, rec, n);
			ib.in_len += n;
		} else {
			break;
		}
	}
	if (v == INBAND_TLS && ib.in_len != 0)
		abort();
	if (v == INBAND_FAIL) {
		check_why();
		if (inband_next(&ib) != INBAND_FAIL)
			abort();
	}
	check_bounds();
}

/* Renumber STREAM whole and cut where SEED says, in one direction: the
 * same result. */
static void renumber(const uint8_t *stream, size_t size, uint64_t seed, bool server)
{
	void (*fn)(struct inband_mysql *, unsigned char *, size_t) =
		server ? inband_mysql_from_server : inband_mysql_from_program;
	static unsigned char whole[65536], cut[65536];
	struct inband_mysql a, b;
	size_t off = 0, n;

	if (size > sizeof whole)
		size = sizeof whole;
	memcpy(whole, stream, size);
	memcpy(cut, stream, size);
	inband_mysql_start(&a);
	inband_mysql_start(&b);
	fn(&a, whole, size);
	seed |= 1;
	while (off < size) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		n = seed % 9 == 0 ? 0 : seed % (seed & 0x100 ? 4 : 64) + 1;
		if (n > size - off)
			n = size - off;
		fn(&b, cut + off, n);
		off += n;
	}
	if (memcmp(whole, cut, size) || a.done != b.done || (!a.done && memcmp(&a, &b, sizeof a)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t seed = 0;
	size_t i;

	if (size < 1)
		return 0;
	if (!(data[0] & 0x80)) {
		negotiate(data[0], data + 1, size - 1);
		return 0;
	}
	for (i = 1; i < 9 && i < size; i++)
		seed = seed << 8 | data[i];
	if (size <= 9)
		return 0;
	renumber(data + 9, size - 9, seed, true);
	renumber(data + 9, size - 9, seed, false);
	(void)inband_pg_program(data + 9, size - 9);
	return 0;
}
