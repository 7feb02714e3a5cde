/* libFuzzer target: the policy parser, the matchers (match and listen) and
 * the printer.
 * Bytes in: a policy file.  Never a crash, a leak or undefined behaviour. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "policy.h"
#include "policy_load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *names[] = { "localhost", "api.example.com", "a.b.example.org", "" };
	static const uint8_t v4[4] = { 127, 0, 0, 1 };
	static const uint8_t v6[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3 };
	struct policy_error err;
	struct policy *policy;
	uint16_t port = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 443;
	FILE *sink;

	policy = policy_parse((const char *)data, size, &err);
	if (!policy) {
		/* The error must be a terminated string. */
		if (strlen(err.msg) >= sizeof err.msg)
			__builtin_trap();
		return 0;
	}
	(void)policy_match(policy, names, 4, AF_INET, v4, port);
	(void)policy_match(policy, names + 1, 1, AF_INET6, v6, 80);
	(void)policy_match(policy, NULL, 0, AF_INET, v4, 0);
	(void)policy_match_listen(policy, AF_INET, v4, port);
	(void)policy_match_listen(policy, AF_INET6, v6, 8080);
	sink = fopen("/dev/null", "w");
	if (sink) {
		policy_print(policy, sink);
		fclose(sink);
	}
	policy_free(policy);
	return 0;
}
