/* hook_names.c - remember which names the program resolved to which
 * addresses, so connect() knows the name behind an address. */
#include "shim.h"
#include "names.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static bool is_literal(const char *node)
{
	uint8_t scratch[16];

	return inet_pton(AF_INET, node, scratch) == 1 || inet_pton(AF_INET6, node, scratch) == 1;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	const struct addrinfo *ai;
	int ret;

	real_need();
	ret = real.getaddrinfo(node, service, hints, res);
	if (ret != 0 || !node || !shim_enter() || is_literal(node))
		return ret;
	for (ai = *res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET && ai->ai_addr)
			names_record(node, AF_INET, (const uint8_t *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr);
		else if (ai->ai_family == AF_INET6 && ai->ai_addr)
			names_record(node, AF_INET6,
				     (const uint8_t *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
	}
	return ret;
}

static void record_hostent(const char *name, const struct hostent *he)
{
	char **addr;

	if (!he || !name || is_literal(name) || (he->h_addrtype != AF_INET && he->h_addrtype != AF_INET6))
		return;
	for (addr = he->h_addr_list; *addr; addr++)
		names_record(name, he->h_addrtype, (const uint8_t *)*addr);
}

struct hostent *gethostbyname(const char *name)
{
	struct hostent *he;

	real_need();
	he = real.gethostbyname(name);
	if (shim_enter())
		record_hostent(name, he);
	return he;
}

struct hostent *gethostbyname2(const char *name, int af)
{
	struct hostent *he;

	real_need();
	he = real.gethostbyname2(name, af);
	if (shim_enter())
		record_hostent(name, he);
	return he;
}

int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
		    struct hostent **result, int *h_errnop)
{
	int rc;

	real_need();
	rc = real.gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
	if (rc == 0 && result && shim_enter())
		record_hostent(name, *result);
	return rc;
}

int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf, size_t buflen,
		     struct hostent **result, int *h_errnop)
{
	int rc;

	real_need();
	rc = real.gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
	if (rc == 0 && result && shim_enter())
		record_hostent(name, *result);
	return rc;
}
