/* decide.h - decisions shared by the library and `tlsshim explain`. */
#ifndef TLSSHIM_DECIDE_H
#define TLSSHIM_DECIDE_H

#include <stddef.h>

#include "policy.h"

/* The name to verify for a connection under RULE: the rule's server-name,
 * else RESOLVED (the name the program resolved last for the address, or
 * NULL), else a hosts-file name (HOST_NAMES) that one of the rule's own
 * match entries names exactly.  Never an arbitrary alias.  NULL: no name. */
const char *decide_name(const struct policy_rule *rule, const char *resolved,
			const char *const *host_names, size_t n_host_names);

/* May the name be sent as SNI?  (Never an IP literal.) */
int decide_sni_ok(const char *name);

#endif
