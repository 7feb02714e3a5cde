/* decide.c - see decide.h. */
#include "decide.h"

#include <arpa/inet.h>
#include <stdint.h>

const char *decide_name(const struct policy_rule *rule, const char *resolved,
			const char *const *host_names, size_t n_host_names)
{
	size_t i, j;

	if (rule->server_name)
		return rule->server_name;
	if (resolved)
		return resolved;
	for (i = 0; i < rule->n_matches; i++) {
		if (rule->matches[i].kind != POLICY_HOST_NAME)
			continue;
		for (j = 0; j < n_host_names; j++)
			if (policy_name_matches(&rule->matches[i], host_names[j]))
				return rule->matches[i].name;
	}
	return NULL;
}

int decide_sni_ok(const char *name)
{
	uint8_t scratch[16];

	return name && inet_pton(AF_INET, name, scratch) != 1 && inet_pton(AF_INET6, name, scratch) != 1;
}
