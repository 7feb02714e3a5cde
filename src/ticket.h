/* ticket.h - read a TLS 1.3 NewSessionTicket message (bytes from the
 * network: pure, bounds-checked, fuzzed). */
#ifndef TLSSHIM_TICKET_H
#define TLSSHIM_TICKET_H

#include <stddef.h>
#include <stdint.h>

/* The max_early_data_size of the early_data extension (type 42) of the
 * NewSessionTicket body P (LEN bytes), or 0 if it has none or is malformed. */
uint32_t ticket_early_max(const unsigned char *p, size_t len);

#endif
