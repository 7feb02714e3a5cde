/* libFuzzer target: the first-bytes sniffing of inbound connections
 * (sniff.h), fed as a client's bytes arrive.  Besides not crashing, the
 * verdict must be stable: once a prefix is TLS or PLAIN, every longer
 * prefix gets the same verdict (the library decides on what came so far). */
#include <stdint.h>
#include <stdlib.h>

#include "sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum sniff_verdict first = SNIFF_MORE, v;
	char hex[64];
	size_t n;

	for (n = 0; n <= size && n <= 64; n++) {
		v = sniff_client_hello(data, n);
		if (first == SNIFF_MORE)
			first = v;
		else if (v != first)
			abort();
		if (n >= SNIFF_NEED && v == SNIFF_MORE)
			abort();
	}
	sniff_hex(data, size, hex, sizeof hex);
	return 0;
}
