/* hosts_test.c - unit tests for the hosts file parser and lookups. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hosts.h"
#include "tap.h"
#include "unit.h"

static struct hosts *parse(const char *text)
{
	return hosts_parse(text, strlen(text));
}

/* The names for IP, joined with spaces, or "" for none. */
static const char *names_of(const struct hosts *h, const char *ip)
{
	static char out[4096];
	uint8_t a[16];
	int fam = AF_INET;
	if (inet_pton(AF_INET, ip, a) != 1) {
		fam = AF_INET6;
		if (inet_pton(AF_INET6, ip, a) != 1)
			return "(bad test address)";
	}
	const char *names[16];
	size_t n = hosts_names_for(h, fam, a, names, 16);
	out[0] = '\0';
	for (size_t i = 0; i < n && i < 16; i++) {
		if (i)
			strcat(out, " ");
		strncat(out, names[i], sizeof out - strlen(out) - 2);
	}
	return out;
}

static void expect_names(const struct hosts *h, const char *ip, const char *want)
{
	const char *got = names_of(h, ip);
	ok(strcmp(got, want) == 0, "%s -> \"%s\" (got \"%s\")", ip, want, got);
}

/* The addresses for NAME, as text joined with spaces. */
static const char *addrs_of(const struct hosts *h, const char *name)
{
	static char out[4096];
	int fams[16];
	uint8_t addrs[16][16];
	size_t n = hosts_addrs_for(h, name, fams, addrs, 16);
	out[0] = '\0';
	for (size_t i = 0; i < n && i < 16; i++) {
		char buf[INET6_ADDRSTRLEN];
		inet_ntop(fams[i], addrs[i], buf, sizeof buf);
		if (i)
			strcat(out, " ");
		strcat(out, buf);
	}
	return out;
}

static void expect_addrs(const struct hosts *h, const char *name, const char *want)
{
	const char *got = addrs_of(h, name);
	ok(strcmp(got, want) == 0, "%s -> \"%s\" (got \"%s\")", name, want, got);
}

static const char debian[] =
	"127.0.0.1\tlocalhost\n"
	"127.0.1.1\tmyhost.example.org\tmyhost\n"
	"\n"
	"# The following lines are desirable for IPv6 capable hosts\n"
	"::1     localhost ip6-localhost ip6-loopback\n"
	"ff02::1 ip6-allnodes\n"
	"ff02::2 ip6-allrouters\n";

static void test_debian(void)
{
	struct hosts *h = parse(debian);
	ok(h != NULL, "Debian /etc/hosts parses");
	expect_names(h, "127.0.0.1", "localhost");
	expect_names(h, "127.0.1.1", "myhost.example.org myhost");
	expect_names(h, "::1", "localhost ip6-localhost ip6-loopback");
	expect_names(h, "ff02::2", "ip6-allrouters");
	expect_names(h, "::ffff:127.0.0.1", "localhost");
	expect_names(h, "::ffff:127.0.1.1", "myhost.example.org myhost");
	expect_names(h, "127.0.0.2", "");
	expect_names(h, "::2", "");
	expect_names(h, "::127.0.0.1", "");
	expect_addrs(h, "localhost", "127.0.0.1 ::1");
	expect_addrs(h, "LocalHost.", "127.0.0.1 ::1");
	expect_addrs(h, "myhost", "127.0.1.1");
	expect_addrs(h, "ip6-loopback", "::1");
	expect_addrs(h, "nosuchhost", "");
	expect_addrs(h, "", "");
	expect_addrs(h, "bad name!", "");
	hosts_free(h);
}

static void test_syntax(void)
{
	struct hosts *h = parse(
		"# comment line\n"
		"   # indented comment\n"
		"10.0.0.1 one uno # trailing comment two\n"
		"10.0.0.2\tTwo.Example.COM.\t\tdos   \r\n"
		"10.0.0.3#no space before comment\n"
		"not-an-address foo\n"
		"300.1.1.1 bar\n"
		"10.0.0.4\n"
		"10.0.0.5     \n"
		"fe80::1%eth0 linklocal\n"
		"10.0.0.6 good b@d also-good \xff\xfe bad.\xc3\xa9 ok_name\n"
		"  10.0.0.7   indented\n"
		"10.0.0.1 one-more\n"
		"10.0.0.1 UNO\n"
		"::ffff:10.0.0.8 mapped-entry\n"
		"10.0.0.8 plain-entry\n"
		"1.2.3.4/24 cidr-not-allowed\n"
		"[::1] brackets-not-allowed\n"
		"10.0.0.9 last-line-without-newline");
	ok(h != NULL, "messy hosts file parses");
	expect_names(h, "10.0.0.1", "one uno one-more");
	expect_names(h, "10.0.0.2", "two.example.com dos");
	expect_names(h, "10.0.0.3", "");
	expect_names(h, "10.0.0.4", "");
	expect_names(h, "10.0.0.5", "");
	expect_names(h, "fe80::1", "linklocal");
	expect_names(h, "10.0.0.6", "good also-good ok_name");
	expect_names(h, "10.0.0.7", "indented");
	expect_names(h, "10.0.0.8", "mapped-entry plain-entry");
	expect_names(h, "::ffff:10.0.0.8", "mapped-entry plain-entry");
	expect_names(h, "1.2.3.4", "");
	expect_names(h, "1.2.3.0", "");
	expect_names(h, "::1", "");
	expect_names(h, "10.0.0.9", "last-line-without-newline");
	expect_addrs(h, "two.example.com", "10.0.0.2");
	expect_addrs(h, "TWO.EXAMPLE.COM.", "10.0.0.2");
	expect_addrs(h, "foo", "");
	expect_addrs(h, "bar", "");
	expect_addrs(h, "two", "");
	expect_addrs(h, "mapped-entry", "::ffff:10.0.0.8");
	expect_addrs(h, "uno", "10.0.0.1");
	hosts_free(h);
}

static void test_api_edges(void)
{
	struct hosts *h = parse("192.0.2.1 a b c d e f g h\n192.0.2.1 a i\n2001:db8::1 a\n");
	uint8_t a4[4] = { 192, 0, 2, 1 };
	const char *names[4] = { 0 };
	size_t n = hosts_names_for(h, AF_INET, a4, names, 3);
	ok(n == 9 && strcmp(names[0], "a") == 0 && strcmp(names[2], "c") == 0 && names[3] == NULL,
	   "count is the total (9, duplicate dropped), only MAX (3) stored");
	n = hosts_names_for(h, AF_INET, a4, NULL, 0);
	ok(n == 9, "MAX 0 with NULL names just counts");
	ok(hosts_names_for(h, AF_UNIX, a4, names, 3) == 0, "unknown family finds nothing");
	ok(hosts_names_for(h, AF_INET, NULL, names, 3) == 0, "NULL address finds nothing");
	ok(hosts_names_for(NULL, AF_INET, a4, names, 3) == 0, "NULL hosts finds nothing");
	int fams[1];
	uint8_t addrs[1][16];
	n = hosts_addrs_for(h, "a", fams, addrs, 1);
	ok(n == 2 && fams[0] == AF_INET && memcmp(addrs[0], a4, 4) == 0,
	   "hosts_addrs_for: count 2, first stored (in file order)");
	ok(hosts_addrs_for(h, "a", NULL, NULL, 0) == 2, "hosts_addrs_for with MAX 0");
	ok(hosts_addrs_for(h, NULL, fams, addrs, 1) == 0, "hosts_addrs_for NULL name");
	ok(hosts_addrs_for(NULL, "a", fams, addrs, 1) == 0, "hosts_addrs_for NULL hosts");
	expect_addrs(h, "i", "192.0.2.1");
	hosts_free(h);
	hosts_free(NULL);
	ok(true, "hosts_free(NULL) is fine");

	h = hosts_parse(NULL, 0);
	ok(h && hosts_names_for(h, AF_INET, a4, names, 4) == 0, "NULL text, length 0: empty");
	hosts_free(h);
	h = hosts_parse("", 0);
	ok(h && hosts_addrs_for(h, "localhost", NULL, NULL, 0) == 0, "empty text: empty");
	hosts_free(h);

	/* Text need not be NUL-terminated: only LEN bytes are read. */
	static const char t[] = "192.0.2.1 first\n192.0.2.2 second\n";
	h = hosts_parse(t, 16);
	expect_names(h, "192.0.2.1", "first");
	expect_names(h, "192.0.2.2", "");
	hosts_free(h);

	/* NUL bytes do not crash and do not end parsing. */
	static const char nul[] = "192.0.2.1 a\0b c\n192.0\0.2.3 x\n192.0.2.4 after\n";
	h = hosts_parse(nul, sizeof nul - 1);
	ok(h != NULL, "NUL bytes in the text");
	expect_names(h, "192.0.2.1", "c");
	expect_names(h, "192.0.2.4", "after");
	hosts_free(h);

	/* A 253-character name is kept, a 254-character one dropped. */
	char line[700], name[300];
	memset(name, 'a', 253);
	name[253] = '\0';
	snprintf(line, sizeof line, "192.0.2.9 %s %sa short\n", name, name);
	h = parse(line);
	const char *got = names_of(h, "192.0.2.9");
	ok(strlen(got) == 253 + 6 && strcmp(got + 254, "short") == 0, "names longer than 253 skipped");
	hosts_free(h);
}

static void test_large(void)
{
	/* An ad-blocking style file: many names on one address, many addresses. */
	size_t cap = 100000 * 40, len = 0;
	char *text = malloc(cap);
	for (int i = 0; i < 50000; i++)
		len += (size_t)snprintf(text + len, cap - len, "0.0.0.0 ad%d.example.net\n", i);
	for (int i = 0; i < 50000; i++)
		len += (size_t)snprintf(text + len, cap - len, "10.%d.%d.%d host%d\n", i >> 16,
					(i >> 8) & 255, i & 255, i);
	len += (size_t)snprintf(text + len, cap - len, "0.0.0.0 ad0.example.net\n");
	struct hosts *h = hosts_parse(text, len);
	free(text);
	ok(h != NULL, "100001-line hosts file parses");
	uint8_t zero[4] = { 0 };
	const char *names[2];
	size_t n = hosts_names_for(h, AF_INET, zero, names, 2);
	ok(n == 50000 && strcmp(names[0], "ad0.example.net") == 0 && strcmp(names[1], "ad1.example.net") == 0,
	   "50000 names on 0.0.0.0, in order, duplicate dropped");
	expect_names(h, "10.0.195.80", "");
	expect_names(h, "10.0.1.2", "host258");
	expect_addrs(h, "host49999", "10.0.195.79");
	expect_addrs(h, "AD49999.example.net", "0.0.0.0");
	hosts_free(h);
}

static void test_load(void)
{
	struct hosts *h = hosts_load("/etc/hosts");
	if (access("/etc/hosts", R_OK) == 0) {
		ok(h != NULL, "hosts_load(/etc/hosts)");
		int fams[4];
		uint8_t addrs[4][16];
		size_t n = hosts_addrs_for(h, "localhost", fams, addrs, 4);
		ok(n >= 1, "/etc/hosts lists localhost (%zu addresses)", n);
	} else {
		skip("no readable /etc/hosts");
		skip("no readable /etc/hosts");
	}
	hosts_free(h);
	ok(hosts_load("/nonexistent/hosts") == NULL, "hosts_load of a missing file is NULL");
	ok(hosts_load("/") == NULL, "hosts_load of a directory is NULL");
	ok(hosts_load(NULL) == NULL, "hosts_load(NULL) is NULL");

	char path[] = "/tmp/tlsshim-hosts-test.XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		ok(false, "mkstemp");
		return;
	}
	static const char text[] = "198.51.100.7 from-disk alias\n";
	ok(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1), "write temporary hosts file");
	close(fd);
	h = hosts_load(path);
	expect_names(h, "198.51.100.7", "from-disk alias");
	hosts_free(h);
	unlink(path);

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	close(fd);
	h = hosts_load(path);
	ok(h != NULL && hosts_addrs_for(h, "x", NULL, NULL, 0) == 0, "empty file loads as empty");
	hosts_free(h);
	unlink(path);
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
	return unit_rnd(&rng_state);
}

static void test_fuzz(void)
{
	static const char alphabet[] = "0123456789abcdef.:% \t\n#\r\0xyzAB-_[]/";
	char buf[512];
	size_t lookups = 0;
	for (int iter = 0; iter < 5000; iter++) {
		size_t len = rnd() % sizeof buf;
		bool raw = iter % 4 == 0;
		for (size_t i = 0; i < len; i++)
			buf[i] = raw ? (char)(rnd() & 0xff) : alphabet[rnd() % (sizeof alphabet - 1)];
		struct hosts *h = hosts_parse(buf, len);
		if (!h)
			break;
		uint8_t a[16] = { 0 };
		for (int k = 0; k < 4; k++) {
			a[k] = (uint8_t)(rnd() & 1);
			const char *names[4];
			lookups += hosts_names_for(h, AF_INET, a, names, 4);
			lookups += hosts_names_for(h, AF_INET6, a, names, 4);
		}
		lookups += hosts_addrs_for(h, "a", NULL, NULL, 0);
		hosts_free(h);
	}
	ok(true, "5000 random hosts files: no crash (%zu names found)", lookups);
}

int main(void)
{
	test_debian();
	test_syntax();
	test_api_edges();
	test_large();
	test_load();
	test_fuzz();
	return done();
}
