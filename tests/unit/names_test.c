/* names_test.c - the names map (src/names.c): what the program resolved,
 * address -> names, most recent first; IPv4, IPv6 and IPv4-mapped IPv6
 * addresses; at most NAMES_MAX_PER_ADDR names per address and
 * NAMES_MAX_ADDRS addresses, the least recently recorded going first. */
#include "names.h"
#include "tap.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ADDR, an IPv4 or IPv6 literal, in *BYTES; returns its family. */
static int parse(const char *addr, uint8_t bytes[16])
{
	memset(bytes, 0, 16);
	if (inet_pton(AF_INET, addr, bytes) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, addr, bytes) == 1)
		return AF_INET6;
	abort();
}

static void record(const char *name, const char *addr)
{
	uint8_t bytes[16];
	int family = parse(addr, bytes);

	names_record(name, family, bytes);
}

/* The names for ADDR, most recent first, joined by spaces ("" for none). */
static const char *lookup(const char *addr)
{
	static char joined[NAMES_MAX_PER_ADDR * NAMES_LEN + NAMES_MAX_PER_ADDR];
	static struct name_list list;
	uint8_t bytes[16];
	int family = parse(addr, bytes);
	size_t i;

	names_lookup(family, bytes, &list);
	joined[0] = '\0';
	for (i = 0; i < list.count; i++) {
		if (i)
			strcat(joined, " ");
		strcat(joined, list.names[i]);
	}
	return joined;
}

static void expect(const char *addr, const char *want, const char *what)
{
	const char *got = lookup(addr);

	if (!ok(strcmp(got, want) == 0, "%s", what))
		diag("%s: got \"%s\", want \"%s\"", addr, got, want);
}

static void v4_of(char *addr, size_t size, unsigned i)
{
	snprintf(addr, size, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

/* First, while the map is empty: the bound is exact. */
static void test_bound(void)
{
	char addr[32], first[32], second[32], third[32];
	unsigned i, found = 0;

	for (i = 0; i < NAMES_MAX_ADDRS; i++) {
		v4_of(addr, sizeof addr, i);
		record("bulk.example", addr);
	}
	for (i = 0; i < NAMES_MAX_ADDRS; i++) {
		v4_of(addr, sizeof addr, i);
		found += strcmp(lookup(addr), "bulk.example") == 0;
	}
	ok(found == NAMES_MAX_ADDRS, "%d addresses kept", NAMES_MAX_ADDRS);
	v4_of(first, sizeof first, 0);
	v4_of(second, sizeof second, 1);
	v4_of(third, sizeof third, 2);
	record("again.example", first); /* now the most recent */
	v4_of(addr, sizeof addr, NAMES_MAX_ADDRS);
	record("new.example", addr);
	expect(addr, "new.example", "one more address is kept");
	expect(second, "", "it pushed out the address recorded longest ago");
	expect(first, "again.example bulk.example", "not one recorded again since (a look-up does not count)");
	expect(third, "bulk.example", "nor the next one");
	v4_of(addr, sizeof addr, NAMES_MAX_ADDRS + 1);
	record("new.example", addr);
	expect(third, "", "the next address pushes out the next oldest");
	expect(first, "again.example bulk.example", "still not the one recorded again");
}

static void test_record(void)
{
	expect("192.0.2.1", "", "nothing for an address never recorded");
	record("www.Example.COM.", "192.0.2.1");
	expect("192.0.2.1", "www.example.com", "recorded, lower-cased, without the final dot");
	record("api.example.com", "192.0.2.1");
	expect("192.0.2.1", "api.example.com www.example.com", "a second name goes first");
	record("WWW.example.com", "192.0.2.1");
	expect("192.0.2.1", "www.example.com api.example.com", "a name resolved again moves first (any case)");
	record("", "192.0.2.1");
	record(NULL, "192.0.2.1");
	expect("192.0.2.1", "www.example.com api.example.com", "an empty name is not recorded");
}

static void test_families(void)
{
	record("v4.example", "198.51.100.7");
	record("v6.example", "2001:db8::7");
	expect("198.51.100.7", "v4.example", "IPv4 address");
	expect("2001:db8::7", "v6.example", "IPv6 address");
	expect("::ffff:198.51.100.7", "v4.example", "the IPv4-mapped form finds the IPv4 record");
	record("mapped.example", "::ffff:198.51.100.8");
	expect("198.51.100.8", "mapped.example", "an IPv4-mapped record is found by the IPv4 address");
	expect("::198.51.100.7", "", "an IPv4-compatible IPv6 address is another address");
	record("c000.example", "c633:6407::");
	expect("198.51.100.7", "v4.example", "an IPv6 address starting with the IPv4 bytes is another address");
	expect("2001:db8::8", "", "a neighbour IPv6 address has nothing");
}

static void test_list_bound(void)
{
	char name[NAMES_LEN + 1], want[NAMES_MAX_PER_ADDR * 16] = "";
	int i;

	for (i = 0; i <= NAMES_MAX_PER_ADDR; i++) {
		snprintf(name, sizeof name, "n%d.example", i);
		record(name, "203.0.113.5");
	}
	for (i = NAMES_MAX_PER_ADDR; i > 0; i--) {
		snprintf(name, sizeof name, "%sn%d.example", i == NAMES_MAX_PER_ADDR ? "" : " ", i);
		strcat(want, name);
	}
	expect("203.0.113.5", want, "past the bound of names per address the oldest goes");
	memset(name, 'a', NAMES_LEN - 1);
	name[NAMES_LEN - 1] = '\0';
	record(name, "203.0.113.6");
	ok(strlen(lookup("203.0.113.6")) == NAMES_LEN - 1, "a name of NAMES_LEN - 1 bytes is recorded");
	name[NAMES_LEN - 1] = 'a';
	name[NAMES_LEN] = '\0';
	record(name, "203.0.113.7");
	expect("203.0.113.7", "", "a longer one is not");
}

int main(void)
{
	test_bound();
	test_record();
	test_families();
	test_list_bound();
	return done();
}
