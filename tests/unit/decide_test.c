/* decide_test.c - unit tests for the connection verdict (decide.h): every
 * verdict path of decide_connect and decide_accept, with policies parsed
 * from text and the names given as lists.  No sockets. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "decide.h"
#include "policy.h"
#include "tap.h"

/* ------------------------------------------------------------ helpers */

static struct policy *parse(const char *text)
{
	struct policy_error e;
	struct policy *p = policy_parse(text, strlen(text), &e);
	if (!p) {
		diag("unexpected error at line %u: %s", e.line, e.msg);
		exit(1);
	}
	return p;
}

static size_t count(const char *const *list)
{
	size_t n = 0;
	while (list && list[n])
		n++;
	return n;
}

/* The verdict for a connection to IP:PORT under P, with the names the
 * program resolved (RESOLVED, NULL-terminated, or NULL) and those the hosts
 * file lists (HOSTS, likewise). */
static struct decision *decide(const struct policy *p, const char *ip, uint16_t port,
			       const char *const *resolved, const char *const *hosts)
{
	static struct decision d;
	struct decide_names names = {
		.resolved = resolved, .n_resolved = count(resolved),
		.hosts = hosts, .n_hosts = count(hosts),
	};
	struct decide_addr a;

	memset(&a, 0, sizeof a);
	a.port = port;
	a.family = inet_pton(AF_INET, ip, a.addr) == 1 ? AF_INET : AF_INET6;
	if (a.family == AF_INET6 && inet_pton(AF_INET6, ip, a.addr) != 1) {
		diag("bad test address %s", ip);
		exit(1);
	}
	memset(&d, 0x55, sizeof d); /* decide_connect must set every field */
	decide_connect(p, &a, &names, &d);
	return &d;
}

#define NAMES(...) ((const char *const[]){ __VA_ARGS__, NULL })

static const char *verdict_name(enum decide_verdict v)
{
	switch (v) {
	case DECIDE_PLAIN: return "plain";
	case DECIDE_DENY: return "deny";
	case DECIDE_REFUSE: return "refuse";
	case DECIDE_UPGRADE: return "upgrade";
	}
	return "?";
}

static const char *str(const char *s)
{
	return s ? s : "(null)";
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* D has verdict V under the rule named RULE (NULL: none). */
static void expect(const struct decision *d, enum decide_verdict v, const char *rule, const char *what)
{
	const char *got_rule = d->rule ? d->rule->name : NULL;

	ok(d->verdict == v && same(got_rule, rule), "%s: %s under [%s] (got %s under [%s], %s)", what,
	   verdict_name(v), str(rule), verdict_name(d->verdict), str(got_rule), str(d->reason));
}

/* D upgrades, verifying NAME, sending SNI, connecting to DEST. */
static void expect_upgrade(const struct decision *d, const char *rule, const char *name, const char *sni,
			   const char *dest, const char *what)
{
	expect(d, DECIDE_UPGRADE, rule, what);
	ok(same(d->verify_name, name), "%s: verifies %s (got %s)", what, str(name), str(d->verify_name));
	ok(same(d->sni, sni), "%s: SNI %s (got %s)", what, str(sni), str(d->sni));
	ok(strcmp(d->dest, dest) == 0, "%s: connects to %s (got %s)", what, dest, d->dest);
}

/* ------------------------------------------------------------ the verdicts */

static void test_plain_deny(void)
{
	struct policy *p = parse("[open]\nmatch = 10.0.0.1:80\naction = plain\n"
				 "[closed]\nmatch = 10.0.0.2:*, blocked.example:*\naction = deny\n");
	struct decision *d;

	d = decide(NULL, "10.0.0.1", 80, NULL, NULL);
	expect(d, DECIDE_REFUSE, NULL, "no valid policy");
	ok(strcmp(d->reason, "invalid policy") == 0 && strcmp(d->app_dest, "10.0.0.1:80") == 0,
	   "no valid policy: reason \"%s\", destination %s", d->reason, d->app_dest);
	d = decide(p, "10.0.0.3", 80, NULL, NULL);
	expect(d, DECIDE_PLAIN, NULL, "no rule matches");
	ok(strcmp(d->reason, "no rule matches") == 0, "no rule matches: says so (%s)", d->reason);
	ok(d->app_dest[0] == '\0', "no rule matches: nothing formatted (the common case stays cheap)");
	expect(decide(p, "10.0.0.1", 80, NULL, NULL), DECIDE_PLAIN, "open", "plain rule");
	expect(decide(p, "10.0.0.1", 81, NULL, NULL), DECIDE_PLAIN, NULL, "plain rule, other port");
	d = decide(p, "10.0.0.2", 5432, NULL, NULL);
	expect(d, DECIDE_DENY, "closed", "deny by address");
	ok(d->verify_name == NULL && d->sni == NULL && d->cache_key[0] == '\0' && d->dest[0] == '\0',
	   "deny: no name, no SNI, no key, no destination");
	expect(decide(p, "10.0.0.9", 443, NULL, NULL), DECIDE_PLAIN, NULL, "deny by name: no name, no match");
	d = decide(p, "10.0.0.9", 443, NULL, NAMES("blocked.example"));
	expect(d, DECIDE_DENY, "closed", "deny by a hosts-file name");
	ok(d->n_names == 1 && strcmp(d->names[0], "blocked.example") == 0, "deny: the name is kept for the log");
	expect(decide(p, "10.0.0.9", 443, NAMES("BLOCKED.example."), NULL), DECIDE_DENY, "closed",
	       "deny by a resolved name, case and trailing dot ignored");
	policy_free(p);
}

static void test_names_to_verify(void)
{
	struct policy *p = parse("[fixed]\nmatch = 10.0.0.1:443\nserver-name = api.example.com\n"
				 "[byname]\nmatch = db.internal:5432, 10.0.0.0/24:5432\n"
				 "[wild]\nmatch = *.example.org:443, 10.0.1.0/24:443\n");
	struct decision *d;

	d = decide(p, "10.0.0.1", 443, NAMES("other.example"), NAMES("alias"));
	expect_upgrade(d, "fixed", "api.example.com", "api.example.com", "10.0.0.1:443",
		       "server-name wins over the resolved name");
	d = decide(p, "10.0.0.7", 5432, NAMES("db.internal", "older.internal"), NULL);
	expect_upgrade(d, "byname", "db.internal", "db.internal", "10.0.0.7:5432", "the name resolved last");
	d = decide(p, "10.0.0.7", 5432, NAMES("elsewhere.internal"), NAMES("db.internal"));
	expect_upgrade(d, "byname", "elsewhere.internal", "elsewhere.internal", "10.0.0.7:5432",
		       "a resolved name wins over a hosts-file name");
	d = decide(p, "10.0.0.7", 5432, NULL, NAMES("alias", "DB.internal"));
	expect_upgrade(d, "byname", "db.internal", "db.internal", "10.0.0.7:5432",
		       "a hosts-file name that a match names exactly (the match's spelling)");
	d = decide(p, "10.0.0.7", 5432, NULL, NAMES("alias", "other"));
	expect(d, DECIDE_REFUSE, "byname", "hosts-file aliases a match does not name: refused");
	d = decide(p, "10.0.1.7", 443, NULL, NAMES("www.example.org"));
	expect(d, DECIDE_REFUSE, "wild", "a wildcard never picks a hosts-file alias");
	d = decide(p, "10.0.0.7", 5432, NULL, NULL);
	expect(d, DECIDE_REFUSE, "byname", "no name at all: refused");
	ok(strstr(d->reason, "no host name is known") && strstr(d->reason, "never verified by accident"),
	   "refused: the reason says why (%s)", d->reason);
	ok(d->verify_name == NULL && d->sni == NULL && d->cache_key[0] == '\0',
	   "refused: no name, no SNI, no key");
	policy_free(p);
}

static void test_pins_and_literals(void)
{
	struct policy *p = parse("[pinned]\nmatch = 10.0.0.5:443\n"
				 "pin = sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
				 "[ipname]\nmatch = 10.0.0.4:443\nserver-name = 10.0.0.4\n"
				 "[ip6name]\nmatch = [2001:db8::4]:443\nserver-name = 2001:db8::4\n"
				 "[any]\nmatch = 10.0.2.0/24:443\n");
	struct decision *d;

	d = decide(p, "10.0.0.5", 443, NULL, NULL);
	expect_upgrade(d, "pinned", NULL, NULL, "10.0.0.5:443", "no name but a pin: pins only");
	d = decide(p, "10.0.0.4", 443, NULL, NULL);
	expect_upgrade(d, "ipname", "10.0.0.4", NULL, "10.0.0.4:443", "IPv4 server-name: verified, never SNI");
	d = decide(p, "2001:db8::4", 443, NULL, NULL);
	expect_upgrade(d, "ip6name", "2001:db8::4", NULL, "[2001:db8::4]:443",
		       "IPv6 server-name: verified, never SNI");
	d = decide(p, "10.0.2.1", 443, NAMES("192.0.2.1"), NULL);
	expect_upgrade(d, "any", "192.0.2.1", NULL, "10.0.2.1:443", "an IP literal as resolved name: no SNI");
	policy_free(p);
}

static void test_ports_and_families(void)
{
	struct policy *p = parse("[moved]\nmatch = 10.0.0.1:80\nport = 8443\nserver-name = a.example\n"
				 "[moved6]\nmatch = [2001:db8::1]:80\nport = 443\nserver-name = a.example\n"
				 "[v4]\nmatch = 10.1.2.3:443\nserver-name = mapped.example\n");
	struct decision *d;

	d = decide(p, "10.0.0.1", 80, NULL, NULL);
	expect_upgrade(d, "moved", "a.example", "a.example", "10.0.0.1:8443", "the rule's port replaces the program's");
	ok(d->to.family == AF_INET && d->to.port == 8443 && strcmp(d->app_dest, "10.0.0.1:80") == 0,
	   "port: to is AF_INET :8443, the program's destination stays %s", d->app_dest);
	d = decide(p, "2001:db8::1", 80, NULL, NULL);
	expect_upgrade(d, "moved6", "a.example", "a.example", "[2001:db8::1]:443", "IPv6, port replaced");
	ok(strcmp(d->app_dest, "[2001:db8::1]:80") == 0, "IPv6: the program's destination %s", d->app_dest);
	d = decide(p, "::ffff:10.1.2.3", 443, NULL, NULL);
	expect_upgrade(d, "v4", "mapped.example", "mapped.example", "[::ffff:10.1.2.3]:443",
		       "an IPv4-mapped destination matches an IPv4 rule");
	ok(d->to.family == AF_INET6, "IPv4-mapped: connects with the program's family");
	expect(decide(p, "::ffff:10.1.2.4", 443, NULL, NULL), DECIDE_PLAIN, NULL, "IPv4-mapped, other address");
	expect(decide(p, "10.0.0.1", 8443, NULL, NULL), DECIDE_PLAIN, NULL, "matched on the program's port, not the rule's");
	policy_free(p);
}

static void test_first_match(void)
{
	struct policy *a = parse("[first]\nmatch = 10.0.0.0/8:*\naction = deny\n"
				 "[second]\nmatch = 10.0.0.1:443\nserver-name = x.example\n");
	struct policy *b = parse("[second]\nmatch = 10.0.0.1:443\nserver-name = x.example\n"
				 "[first]\nmatch = 10.0.0.0/8:*\naction = deny\n");
	struct policy *c = parse("[byname]\nmatch = x.example:443\nserver-name = x.example\n"
				 "[byaddr]\nmatch = 10.0.0.1:443\naction = plain\n");

	expect(decide(a, "10.0.0.1", 443, NULL, NULL), DECIDE_DENY, "first", "first match: deny before tls");
	expect(decide(b, "10.0.0.1", 443, NULL, NULL), DECIDE_UPGRADE, "second", "first match: tls before deny");
	expect(decide(b, "10.0.0.2", 443, NULL, NULL), DECIDE_DENY, "first", "first match: the later rule still applies");
	expect(decide(c, "10.0.0.1", 443, NULL, NAMES("x.example")), DECIDE_UPGRADE, "byname",
	       "a name rule before an address rule");
	expect(decide(c, "10.0.0.1", 443, NULL, NULL), DECIDE_PLAIN, "byaddr", "without the name, the address rule");
	policy_free(a);
	policy_free(b);
	policy_free(c);
}

static void test_cache_key(void)
{
	struct policy *p = parse("session-cache = 10\n"
				 "[one]\nmatch = a.example:443\n"
				 "[two]\nmatch = b.example:443\nport = 8443\n"
				 "[off]\nmatch = c.example:443\nresume = off\n");
	struct policy *none = parse("session-cache = 0\n[one]\nmatch = a.example:443\n");
	struct decision *d;
	char key1[DECIDE_KEY_LEN];

	d = decide(p, "10.0.0.1", 443, NAMES("a.example", "b.example"), NULL);
	expect(d, DECIDE_UPGRADE, "one", "cache key: rule one");
	ok(strcmp(d->cache_key, "one|a.example|10.0.0.1:443") == 0, "cache key: RULE|NAME|DEST (%s)", d->cache_key);
	snprintf(key1, sizeof key1, "%s", d->cache_key);
	d = decide(p, "10.0.0.1", 443, NAMES("b.example", "a.example"), NULL);
	expect(d, DECIDE_UPGRADE, "one", "cache key: same rule, other name resolved last");
	ok(strcmp(d->cache_key, key1) != 0, "cache key: differs per name (%s)", d->cache_key);
	d = decide(p, "10.0.0.1", 443, NAMES("b.example"), NULL);
	expect(d, DECIDE_UPGRADE, "two", "cache key: rule two");
	ok(strcmp(d->cache_key, "two|b.example|10.0.0.1:8443") == 0 && strcmp(d->cache_key, key1) != 0,
	   "cache key: differs per rule, with the rule's port (%s)", d->cache_key);
	d = decide(p, "10.0.0.1", 443, NAMES("c.example"), NULL);
	expect(d, DECIDE_UPGRADE, "off", "cache key: resume = off");
	ok(d->cache_key[0] == '\0', "cache key: none with resume = off (%s)", d->cache_key);
	d = decide(none, "10.0.0.1", 443, NAMES("a.example"), NULL);
	ok(d->verdict == DECIDE_UPGRADE && d->cache_key[0] == '\0', "cache key: none with session-cache = 0");
	policy_free(p);
	policy_free(none);
}

/* The names considered: resolved first, each once, at most DECIDE_MAX_NAMES. */
static void test_names_considered(void)
{
	struct policy *p = parse("[late]\nmatch = name16.example:443\naction = deny\n");
	const char *many[DECIDE_MAX_NAMES + 3];
	char buf[DECIDE_MAX_NAMES + 2][32];
	struct decision *d;
	size_t i;

	d = decide(p, "10.0.0.1", 443, NAMES("a.example"), NAMES("A.example", "b.example", "b.example"));
	ok(d->n_names == 2 && strcmp(d->names[0], "a.example") == 0 && strcmp(d->names[1], "b.example") == 0,
	   "names: resolved first, duplicates dropped (%zu)", d->n_names);
	for (i = 0; i < DECIDE_MAX_NAMES + 2; i++) {
		snprintf(buf[i], sizeof buf[i], "name%zu.example", i);
		many[i] = buf[i];
	}
	many[DECIDE_MAX_NAMES + 2] = NULL;
	d = decide(p, "10.0.0.1", 443, NULL, many);
	ok(d->n_names == DECIDE_MAX_NAMES, "names: at most %d considered (%zu)", DECIDE_MAX_NAMES, d->n_names);
	expect(d, DECIDE_PLAIN, NULL, "names: one past the limit does not match");
	many[3] = "name16.example";
	expect(decide(p, "10.0.0.1", 443, NULL, many), DECIDE_DENY, "late", "names: within the limit, it matches");
	policy_free(p);
}

/* ------------------------------------------------------------ the inputs */

static void test_read_sockaddr(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(443) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(8443) };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct decide_addr a;

	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	ok(decide_read_sockaddr((struct sockaddr *)&sin, sizeof sin, &a) && a.family == AF_INET &&
	   a.port == 443 && memcmp(a.addr, &sin.sin_addr, 4) == 0, "sockaddr_in read");
	ok(!decide_read_sockaddr((struct sockaddr *)&sin, sizeof sin - 1, &a), "short sockaddr_in refused");
	ok(decide_read_sockaddr((struct sockaddr *)&sin6, sizeof sin6, &a) && a.family == AF_INET6 &&
	   a.port == 8443 && memcmp(a.addr, &sin6.sin6_addr, 16) == 0, "sockaddr_in6 read");
	ok(decide_read_sockaddr((struct sockaddr *)&sin6, 24, &a) && a.family == AF_INET6,
	   "sockaddr_in6 without scope id (24 bytes) read, as Linux accepts it");
	ok(!decide_read_sockaddr((struct sockaddr *)&sin6, 23, &a), "sockaddr_in6 of 23 bytes refused");
	ok(!decide_read_sockaddr((struct sockaddr *)&sun, sizeof sun, &a), "AF_UNIX is no TCP destination");
}

static void test_canon_name(void)
{
	char out[32], small[16], big[300];

	ok(decide_canon_name("API.Example.COM.", out, sizeof out) && strcmp(out, "api.example.com") == 0,
	   "canonical name: lower case, trailing dot dropped (%s)", out);
	ok(decide_canon_name(".", out, sizeof out) && strcmp(out, ".") == 0, "canonical name: \".\" kept");
	ok(!decide_canon_name("", out, sizeof out), "canonical name: empty refused");
	ok(decide_canon_name("fifteen-char.ex", small, sizeof small), "canonical name: 15 bytes fit 16");
	ok(!decide_canon_name("sixteen-chars.ex", small, sizeof small), "canonical name: 16 bytes do not");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ok(!decide_canon_name(big, big, 256), "canonical name: 299 bytes do not fit 256");
}

/* ------------------------------------------------------------ inbound */

/* IP (v4 or v6 text) and PORT as a decide_addr. */
static struct decide_addr addr_of(const char *ip, uint16_t port)
{
	struct decide_addr a;

	memset(&a, 0, sizeof a);
	a.port = port;
	a.family = inet_pton(AF_INET, ip, a.addr) == 1 ? AF_INET : AF_INET6;
	if (a.family == AF_INET6 && inet_pton(AF_INET6, ip, a.addr) != 1) {
		diag("bad test address %s", ip);
		exit(1);
	}
	return a;
}

/* The verdict for a connection accepted on LOCAL:LPORT from PEER (NULL:
 * unknown) under P. */
static struct decision *accept_on(const struct policy *p, const char *local, uint16_t lport, const char *peer,
				  uint16_t pport)
{
	static struct decision d;
	struct decide_addr l = addr_of(local, lport), r;

	if (peer)
		r = addr_of(peer, pport);
	memset(&d, 0x55, sizeof d); /* decide_accept must set every field */
	decide_accept(p, &l, peer ? &r : NULL, &d);
	return &d;
}

/* D leaves every outbound-only field empty. */
static bool no_outbound_fields(const struct decision *d)
{
	return d->n_names == 0 && d->verify_name == NULL && d->sni == NULL && d->cache_key[0] == '\0';
}

static void test_accept(void)
{
	struct policy *p = parse("[up]\nmatch = *:*\n"
				 "[web]\nlisten = 0.0.0.0:8080, [::]:8080\ncert = /s.pem\nkey = /k.pem\n"
				 "[admin]\nlisten = 127.0.0.1:9000\naction = plain\n"
				 "[closed]\nlisten = 10.0.0.0/8:*\naction = deny\n"
				 "[late]\nlisten = 127.0.0.1:9000\ncert = /s.pem\nkey = /k.pem\n");
	struct decision *d;

	d = accept_on(NULL, "127.0.0.1", 8080, "192.0.2.7", 40000);
	expect(d, DECIDE_REFUSE, NULL, "inbound, no valid policy (fail closed)");
	ok(strcmp(d->reason, "invalid policy") == 0 && strcmp(d->dest, "127.0.0.1:8080") == 0 &&
	   strcmp(d->app_dest, "192.0.2.7:40000") == 0 && no_outbound_fields(d),
	   "inbound, no valid policy: reason %s, local %s, peer %s", str(d->reason), d->dest, d->app_dest);

	d = accept_on(p, "127.0.0.1", 8081, "127.0.0.1", 40000);
	expect(d, DECIDE_PLAIN, NULL, "no listen covers the local address");
	ok(d->app_dest[0] == '\0' && strcmp(d->dest, "127.0.0.1:8081") == 0 && no_outbound_fields(d),
	   "no rule: no peer formatted, local %s", d->dest);
	ok(strstr(d->reason, "no inbound rule") != NULL, "no rule: reason says so (%s)", d->reason);

	d = accept_on(p, "192.0.2.1", 8080, "198.51.100.9", 5555);
	expect(d, DECIDE_UPGRADE, "web", "a tls listen rule (0.0.0.0 covers any IPv4 address)");
	ok(strcmp(d->dest, "192.0.2.1:8080") == 0 && strcmp(d->app_dest, "198.51.100.9:5555") == 0 &&
	   d->to.family == AF_INET && d->to.port == 8080 && memcmp(d->to.addr, "\xc0\x00\x02\x01", 4) == 0 &&
	   no_outbound_fields(d) && strcmp(d->reason, "upgrade") == 0,
	   "upgrade: dest and to are the local address, app_dest the peer, no names/SNI/key");

	d = accept_on(p, "2001:db8::1", 8080, "2001:db8::2", 6000);
	expect(d, DECIDE_UPGRADE, "web", "[::] covers any IPv6 address");
	ok(strcmp(d->dest, "[2001:db8::1]:8080") == 0 && strcmp(d->app_dest, "[2001:db8::2]:6000") == 0,
	   "IPv6 addresses as text (%s, %s)", d->dest, d->app_dest);

	d = accept_on(p, "::ffff:127.0.0.1", 9000, "::ffff:127.0.0.1", 7000);
	expect(d, DECIDE_PLAIN, "admin", "an IPv4-mapped local address matches an IPv4 listen; plain rule");
	ok(strcmp(d->reason, "plain") == 0 && strcmp(d->app_dest, "[::ffff:127.0.0.1]:7000") == 0,
	   "plain rule: reason %s, peer %s", d->reason, d->app_dest);

	d = accept_on(p, "10.1.2.3", 22, NULL, 0);
	expect(d, DECIDE_DENY, "closed", "deny listen rule, any port");
	ok(strcmp(d->reason, "denied by policy") == 0 && strcmp(d->app_dest, "-") == 0 &&
	   strcmp(d->dest, "10.1.2.3:22") == 0, "deny: reason %s, unknown peer shown as \"-\"", d->reason);

	d = accept_on(p, "127.0.0.1", 8080, NULL, 0);
	expect(d, DECIDE_UPGRADE, "web", "unknown peer (adoption) still upgrades");
	ok(strcmp(d->app_dest, "-") == 0, "unknown peer: app_dest \"-\"");

	/* The first matching inbound rule wins; outbound rules never match. */
	expect(accept_on(p, "127.0.0.1", 9000, "127.0.0.1", 1), DECIDE_PLAIN, "admin", "first inbound rule wins");
	d = decide(p, "127.0.0.1", 9000, NAMES("admin.example"), NULL);
	expect_upgrade(d, "up", "admin.example", "admin.example", "127.0.0.1:9000",
		       "outbound: listen rules are never matched");
	policy_free(p);

	/* A policy without inbound rules: everything accepted is left alone. */
	p = parse("[up]\nmatch = *:*\n");
	expect(accept_on(p, "127.0.0.1", 8080, "127.0.0.1", 1), DECIDE_PLAIN, NULL, "no inbound rule at all");
	policy_free(p);
}

int main(void)
{
	test_plain_deny();
	test_names_to_verify();
	test_pins_and_literals();
	test_ports_and_families();
	test_first_match();
	test_cache_key();
	test_names_considered();
	test_read_sockaddr();
	test_canon_name();
	test_accept();
	return done();
}
