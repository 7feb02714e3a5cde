/* libFuzzer target: the hosts-file parser and its look-ups. */
#include <stdint.h>
#include <sys/socket.h>

#include "hosts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t v4[4] = { 127, 0, 0, 1 };
	static const uint8_t v6[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	const char *names[8];
	int families[8];
	uint8_t addrs[8][16];
	struct hosts *hosts = hosts_parse((const char *)data, size);

	if (!hosts)
		return 0;
	(void)hosts_names_for(hosts, AF_INET, v4, names, 8);
	(void)hosts_names_for(hosts, AF_INET6, v6, names, 8);
	(void)hosts_addrs_for(hosts, "localhost", families, addrs, 8);
	hosts_free(hosts);
	return 0;
}
