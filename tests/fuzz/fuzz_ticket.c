/* libFuzzer target: the NewSessionTicket reader (bytes from the server). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ticket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly SIZE bytes, so that ASan sees any over-read. */
	unsigned char *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	(void)ticket_early_max(copy, size);
	free(copy);
	return 0;
}
