/* identity.h - does a verified client certificate's identity match an
 * inbound rule's allow-client patterns?  Pure: strings in, a verdict out
 * (the TLS engine extracts the names; unit tests and fuzzers call this
 * directly).
 *
 * Pattern kinds (struct policy_client_pattern):
 *  - uri: "scheme://authority/path".  Everything up to the path (scheme
 *    and authority) is compared byte for byte.  The path is compared
 *    segment by segment: a segment "*" matches exactly one segment of the
 *    URI, a last segment "**" one or more (the rest of the path); every
 *    other segment, including one with a '*' inside ("bill*"), is compared
 *    byte for byte.  A segment taken by a wildcard is never empty, ".",
 *    "..", nor holds '?' or '#' (a query or fragment is not a path).
 *  - dns: compared without regard to ASCII case, one trailing dot of the
 *    name ignored; a leading "*." matches exactly one label that holds
 *    neither '.' nor '*', nor is empty.
 *  - cn: the subject CN, byte for byte.  NULL CN (absent, or ambiguous:
 *    more than one) matches nothing. */
#ifndef TLSSHIM_IDENTITY_H
#define TLSSHIM_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

/* Does the uri: PATTERN match URI? */
bool identity_uri_matches(const char *pattern, const char *uri);
/* Does the dns: PATTERN (lower case) match NAME? */
bool identity_dns_matches(const char *pattern, const char *name);

/* Does one of the N_PATS patterns PATS match the certificate whose URI
 * SANs are URIS, DNS SANs DNS and subject CN is CN (or NULL)?  No pattern
 * at all: false (the caller decides what an empty allow-list means). */
bool identity_allowed(const struct policy_client_pattern *pats, size_t n_pats, const char *const *uris,
		      size_t n_uris, const char *const *dns, size_t n_dns, const char *cn);

#endif
