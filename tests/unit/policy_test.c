/* policy_test.c - unit tests for the policy parser, matcher and loader. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "policy_load.h"
#include "tap.h"
#include "unit.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

/* ------------------------------------------------------------ helpers */

static struct policy *parse(const char *text)
{
	struct policy_error e;
	struct policy *p = policy_parse(text, strlen(text), &e);
	if (!p)
		diag("unexpected error at line %u: %s", e.line, e.msg);
	return p;
}

/* TEXT must fail at LINE with a message containing SUB. */
static void bad(const char *text, unsigned line, const char *sub)
{
	struct policy_error e;
	memset(&e, 0x55, sizeof e);
	struct policy *p = policy_parse(text, strlen(text), &e);
	bool good = !p && e.line == line && strstr(e.msg, sub) != NULL &&
		    memchr(e.msg, '\0', sizeof e.msg) != NULL;
	ok(good, "rejects %.40s... -> line %u: %s", text, p ? 0 : e.line, p ? "(accepted!)" : e.msg);
	if (!good)
		diag("wanted line %u containing \"%s\"", line, sub);
	policy_free(p);
}

static void good(const char *text, const char *what)
{
	struct policy *p = parse(text);
	ok(p != NULL, "accepts %s", what);
	policy_free(p);
}

/* A one-rule policy from rule lines (no header). */
static struct policy *rule(const char *body)
{
	char buf[8192];
	snprintf(buf, sizeof buf, "[r]\n%s\n", body);
	return parse(buf);
}

static void bad_rule(const char *body, const char *sub)
{
	char buf[8192];
	snprintf(buf, sizeof buf, "[r]\n%s\n", body);
	bad(buf, 2, sub);
}

/* Which rule matches NAME (may be NULL) at IP:PORT?  "-" for none. */
static const char *which(const struct policy *p, const char *name, const char *ip, uint16_t port)
{
	uint8_t a[16];
	int fam = AF_INET;
	if (inet_pton(AF_INET, ip, a) != 1) {
		fam = AF_INET6;
		if (inet_pton(AF_INET6, ip, a) != 1)
			return "bad test address";
	}
	const char *names[1] = { name };
	const struct policy_rule *r = policy_match(p, name ? names : NULL, name ? 1 : 0, fam, a, port);
	return r ? r->name : "-";
}

static void expect_match(const struct policy *p, const char *name, const char *ip, uint16_t port,
			 const char *want)
{
	const char *got = which(p, name, ip, port);
	ok(strcmp(got, want) == 0, "%s (%s) port %u -> [%s] (got [%s])", name ? name : "(no name)",
	   ip, port, want, got);
}

static const char *mstr(const struct policy_match *m)
{
	static char buf[POLICY_MATCH_STRLEN];
	return policy_match_str(m, buf, sizeof buf);
}

/* Do two policies say the same thing? */
static bool same_policy(const struct policy *a, const struct policy *b)
{
#define SAMESTR(x, y) (((x) == NULL) == ((y) == NULL) && (!(x) || strcmp((x), (y)) == 0))
	if (a->log_dest != b->log_dest || a->log_level != b->log_level ||
	    a->session_cache != b->session_cache || a->n_rules != b->n_rules ||
	    a->log_format != b->log_format || !SAMESTR(a->keylog_path, b->keylog_path) ||
	    a->has_inbound != b->has_inbound)
		return false;
	if ((a->log_path == NULL) != (b->log_path == NULL) ||
	    (a->log_path && strcmp(a->log_path, b->log_path)))
		return false;
	for (size_t i = 0; i < a->n_rules; i++) {
		const struct policy_rule *r = &a->rules[i], *s = &b->rules[i];
		if (strcmp(r->name, s->name) || r->n_matches != s->n_matches || r->action != s->action ||
		    r->port != s->port || !SAMESTR(r->server_name, s->server_name) ||
		    r->server_name_is_ip != s->server_name_is_ip || !SAMESTR(r->ca, s->ca) ||
		    !SAMESTR(r->cert, s->cert) || !SAMESTR(r->key, s->key) ||
		    r->n_pins != s->n_pins || r->n_alpn != s->n_alpn || r->resume != s->resume ||
		    r->early_data != s->early_data || r->rekey_after != s->rekey_after ||
		    r->ocsp != s->ocsp || r->n_groups != s->n_groups || r->n_ciphers != s->n_ciphers ||
		    r->handshake_timeout_ms != s->handshake_timeout_ms)
			return false;
		if (r->inbound != s->inbound || r->n_listens != s->n_listens ||
		    !SAMESTR(r->client_ca, s->client_ca) || r->client_ca_system != s->client_ca_system ||
		    r->n_allow_clients != s->n_allow_clients || r->plaintext != s->plaintext ||
		    r->alpn_required != s->alpn_required || r->session_tickets != s->session_tickets ||
		    !SAMESTR(r->ocsp_staple, s->ocsp_staple))
			return false;
		if (r->protocol != s->protocol || !SAMESTR(r->proxy_host, s->proxy_host) ||
		    r->proxy_port != s->proxy_port || !SAMESTR(r->proxy_credentials, s->proxy_credentials))
			return false;
		for (size_t j = 0; j < r->n_listens; j++) {
			const struct policy_match *m = &r->listens[j], *n = &s->listens[j];
			if (m->kind != n->kind || m->port != n->port || m->family != n->family ||
			    m->prefix != n->prefix || memcmp(m->addr, n->addr, 16))
				return false;
		}
		for (size_t j = 0; j < r->n_allow_clients; j++)
			if (r->allow_clients[j].kind != s->allow_clients[j].kind ||
			    strcmp(r->allow_clients[j].pattern, s->allow_clients[j].pattern))
				return false;
		for (size_t j = 0; j < r->n_groups; j++)
			if (strcmp(r->groups[j], s->groups[j]))
				return false;
		for (size_t j = 0; j < r->n_ciphers; j++)
			if (strcmp(r->ciphers[j], s->ciphers[j]))
				return false;
		for (size_t j = 0; j < r->n_matches; j++) {
			const struct policy_match *m = &r->matches[j], *n = &s->matches[j];
			if (m->kind != n->kind || m->port != n->port || !SAMESTR(m->name, n->name) ||
			    m->family != n->family || m->prefix != n->prefix ||
			    memcmp(m->addr, n->addr, 16))
				return false;
		}
		if (r->n_pins && memcmp(r->pins, s->pins, r->n_pins * POLICY_PIN_LEN))
			return false;
		for (size_t j = 0; j < r->n_alpn; j++)
			if (strcmp(r->alpn[j], s->alpn[j]))
				return false;
	}
#undef SAMESTR
	return true;
}

/* policy_print output parses back to the same policy. */
static void check_roundtrip(const struct policy *p, const char *what)
{
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	if (!f) {
		ok(false, "open_memstream");
		return;
	}
	policy_print(p, f);
	fclose(f);
	struct policy_error e;
	struct policy *q = policy_parse(out, outlen, &e);
	ok(q && same_policy(p, q), "policy_print of %s parses back to the same policy%s%s", what,
	   q ? "" : ": ", q ? "" : e.msg);
	if (!q)
		diag("%s", out);
	policy_free(q);
	free(out);
}

/* ------------------------------------------------------------- tests */

static void test_defaults(void)
{
	struct policy *p = parse("");
	ok(p && p->n_rules == 0 && p->log_dest == POLICY_LOG_STDERR &&
	   p->log_level == POLICY_LEVEL_WARNING && p->session_cache == 64 && !p->log_path &&
	   !p->keylog_path && p->log_format == POLICY_FORMAT_TEXT,
	   "empty text: no rules, default globals (keylog off, log-format text)");
	policy_free(p);

	p = policy_new_empty();
	ok(p && p->n_rules == 0 && p->log_dest == POLICY_LOG_STDERR &&
	   p->log_level == POLICY_LEVEL_WARNING && p->session_cache == 64 &&
	   !p->keylog_path && p->log_format == POLICY_FORMAT_TEXT,
	   "policy_new_empty has the defaults");
	ok(policy_match(p, NULL, 0, AF_INET, (const uint8_t *)"\x7f\0\0\1", 80) == NULL,
	   "empty policy matches nothing");
	policy_free(p);
	policy_free(NULL);
	ok(true, "policy_free(NULL) is fine");

	p = parse("# just a comment\n\n   \n\t# indented comment\n#[notarule]\n");
	ok(p && p->n_rules == 0, "comments and blank lines only");
	policy_free(p);

	p = policy_parse(NULL, 0, NULL);
	ok(p && p->n_rules == 0, "NULL text with length 0, NULL err");
	policy_free(p);

	p = parse("[api]\nmatch = api.example.com:443\n");
	ok(p && p->n_rules == 1, "one rule");
	if (p && p->n_rules == 1) {
		const struct policy_rule *r = &p->rules[0];
		ok(strcmp(r->name, "api") == 0 && r->line == 1, "rule name and line");
		ok(r->action == POLICY_TLS && r->resume && r->port == 0 && !r->server_name &&
		   !r->server_name_is_ip && !r->ca && !r->cert && !r->key && r->n_pins == 0 &&
		   r->n_alpn == 0, "rule defaults: tls, resume on, no port/name/ca/cert/pins/alpn");
		ok(!r->early_data && r->rekey_after == 0 && r->ocsp == POLICY_OCSP_REQUEST &&
		   r->n_groups == 0 && !r->groups && r->n_ciphers == 0 && !r->ciphers &&
		   r->handshake_timeout_ms == 10000 && POLICY_HANDSHAKE_TIMEOUT_MS == 10000,
		   "rule defaults: early-data off, no rekey, ocsp request, default groups/ciphers, 10s handshake");
		ok(r->n_matches == 1 && r->matches[0].kind == POLICY_HOST_NAME &&
		   strcmp(r->matches[0].name, "api.example.com") == 0 && r->matches[0].port == 443,
		   "match api.example.com:443");
	}
	policy_free(p);
}

static void test_globals(void)
{
	struct policy *p = parse("log = syslog\nlog-level = debug\nsession-cache = 0\n");
	ok(p && p->log_dest == POLICY_LOG_SYSLOG && p->log_level == POLICY_LEVEL_DEBUG &&
	   p->session_cache == 0, "log=syslog, log-level=debug, session-cache=0");
	policy_free(p);

	p = parse("log = file:/var/log/t.log\nsession-cache = 100000\nlog-level = ERROR\n");
	ok(p && p->log_dest == POLICY_LOG_FILE && p->log_path &&
	   strcmp(p->log_path, "/var/log/t.log") == 0 && p->session_cache == 100000 &&
	   p->log_level == POLICY_LEVEL_ERROR, "log=file:PATH, session-cache max, level case-insensitive");
	policy_free(p);

	p = parse("log = stderr\nlog-level = info\n");
	ok(p && p->log_dest == POLICY_LOG_STDERR && p->log_level == POLICY_LEVEL_INFO, "log=stderr, info");
	policy_free(p);

	bad("log = file:var/log/x\n", 1, "absolute");
	bad("log = file:\n", 1, "absolute");
	bad("log = journal\n", 1, "bad log \"journal\"");
	bad("log-level = verbose\n", 1, "bad log-level \"verbose\"");
	bad("session-cache = 100001\n", 1, "bad session-cache");
	bad("session-cache = -1\n", 1, "bad session-cache");
	bad("session-cache = 12abc\n", 1, "bad session-cache");
	bad("session-cache = 99999999999999999999999\n", 1, "bad session-cache");
	bad("log = stderr\nlog = syslog\n", 2, "duplicate key \"log\" (first at line 1)");
	bad("[a]\nmatch = *:*\nlog = syslog\n", 3, "global key \"log\" inside rule [a]");
	bad("match = *:*\n", 1, "key \"match\" outside a rule");
	bad("port = 443\n", 1, "key \"port\" outside a rule");
	bad("colour = blue\n", 1, "unknown key \"colour\"");
	bad("log =\n", 1, "empty value for \"log\"");
}

static void test_syntax(void)
{
	struct policy *p;

	p = parse("  [api]   # the api\n\tmatch\t=\tapi.example.com:443   \r\n"
		  "alpn = a#b   # a#b is a value, this is a comment\n");
	ok(p && p->n_rules == 1 && p->rules[0].n_alpn == 1 && strcmp(p->rules[0].alpn[0], "a#b") == 0,
	   "whitespace trimmed, tabs, CRLF, '#' inside a value kept");
	policy_free(p);

	p = parse("\xef\xbb\xbf[bom]\nmatch = *:*\n");
	ok(p && p->n_rules == 1 && strcmp(p->rules[0].name, "bom") == 0, "UTF-8 BOM ignored");
	policy_free(p);

	p = parse("[a]\nmatch = *:1");
	ok(p && p->n_rules == 1 && p->rules[0].matches[0].port == 1, "no final newline");
	policy_free(p);

	p = parse("[ spaced ]\nmatch = *:*\n");
	ok(p && strcmp(p->rules[0].name, "spaced") == 0, "spaces inside [ ] trimmed");
	policy_free(p);

	char name64[80], buf[200];
	memset(name64, 'n', 64);
	name64[64] = '\0';
	snprintf(buf, sizeof buf, "[%s]\nmatch = *:*\n", name64);
	good(buf, "a 64-character rule name");
	snprintf(buf, sizeof buf, "[%sx]\nmatch = *:*\n", name64);
	bad(buf, 1, "longer than 64");
	good("[A-z_0.9]\nmatch = *:*\n", "rule name with letters, digits, - _ .");
	bad("[a b]\nmatch = *:*\n", 1, "bad rule name [a b]");
	bad("[api!]\nmatch = *:*\n", 1, "bad rule name");
	bad("[]\nmatch = *:*\n", 1, "empty rule name");
	bad("[api\nmatch = *:*\n", 1, "bad section header");
	bad("[api] x\nmatch = *:*\n", 1, "bad section header");
	bad("[a]\nmatch = *:*\njust some words\n", 3, "expected \"key = value\"");
	bad("[a]\nmatch = *:*\n= 5\n", 3, "missing key");
	bad("[api]\nmatch = *:*\nprot = 443\n", 3, "unknown key \"prot\" in rule [api]");
	bad("[api]\nMatch = *:*\n", 2, "unknown key \"Match\" in rule [api]");
	bad("[api]\nmatch = *:*\nport =   \n", 3, "empty value for \"port\" in rule [api]");
	bad("[api]\nport = 1\n", 1, "rule [api] has no \"match\"");
	bad("[a]\nmatch=*:*\n[b]\n[c]\nmatch=*:*\n", 3, "rule [b] has no \"match\"");
	bad("[api]\nmatch = *:1\n\n[api]\nmatch = *:2\n", 4, "duplicate rule name [api] (first at line 1)");
	bad("[api]\nmatch = *:1\nport = 2\nport = 3\n", 4, "duplicate key \"port\" in rule [api] (first at line 3)");
	bad("[api]\nmatch = *:1\naction = tls\naction = deny\n", 4, "duplicate key \"action\"");
	bad("[api]\nmatch = *:1\nalpn = h2\nalpn = h2\n", 4, "duplicate key \"alpn\"");
	bad("[api]\nmatch = *:1\nresume = on\nresume = on\n", 4, "duplicate key \"resume\"");
	bad("[api]\nmatch = *:1\nserver-name = a.com\nserver-name = b.com\n", 4, "duplicate key \"server-name\"");
	bad("[api]\nmatch = *:1\nca = system\nca = /x\n", 4, "duplicate key \"ca\"");
	bad("[api]\nmatch = *:1\nca = /x\nca = system\n", 4, "duplicate key \"ca\"");

	/* A key repeated in another rule is fine. */
	good("[a]\nmatch=*:1\nport=2\n[b]\nmatch=*:1\nport=3\n", "the same key in two rules");

	/* match and pin are repeatable. */
	p = parse("[a]\nmatch = a.com:1\nmatch = b.com:2, c.com:3\nmatch=d.com:4,e.com:5 , f.com:6\n");
	ok(p && p->rules[0].n_matches == 6 && strcmp(p->rules[0].matches[5].name, "f.com") == 0 &&
	   p->rules[0].matches[5].port == 6, "repeated match lines and comma lists: 6 entries in order");
	policy_free(p);
}

static void test_limits(void)
{
	/* NUL bytes. */
	static const char nul[] = "[a]\nmatch = *:*\nport = 4\0 43\n";
	struct policy_error e;
	struct policy *p = policy_parse(nul, sizeof nul - 1, &e);
	ok(!p && e.line == 3 && strstr(e.msg, "NUL"), "NUL byte reported at its line (%u: %s)",
	   e.line, e.msg);
	policy_free(p);
	static const char nul2[] = "\0";
	p = policy_parse(nul2, 1, &e);
	ok(!p && e.line == 1 && strstr(e.msg, "NUL"), "a lone NUL byte");
	policy_free(p);
	static const char nul3[] = "# comment \0 in a comment\n";
	p = policy_parse(nul3, sizeof nul3 - 1, &e);
	ok(!p && e.line == 1, "NUL byte even inside a comment");
	policy_free(p);

	/* Long lines: 4096 bytes ok, 4097 not. */
	char *line = malloc(8192);
	size_t n = (size_t)snprintf(line, 8192, "# ");
	memset(line + n, 'x', 4096 - n);
	line[4096] = '\n';
	line[4097] = '\0';
	p = policy_parse(line, 4097, &e);
	ok(p != NULL, "a 4096-byte line is fine");
	policy_free(p);
	memmove(line + 1, line, 4098);
	line[0] = '#';
	p = policy_parse(line, 4098, &e);
	ok(!p && e.line == 1 && strstr(e.msg, "too long"), "a 4097-byte line is an error (%s)", e.msg);
	policy_free(p);
	free(line);

	/* A long value in an error message is bounded and printable. */
	char *big = malloc(5000);
	n = (size_t)snprintf(big, 5000, "[a]\nmatch = *:*\nport = ");
	memset(big + n, '\x01', 4000);
	big[n + 4000] = '\0';
	p = policy_parse(big, strlen(big), &e);
	bool printable = true;
	for (const char *c = e.msg; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			printable = false;
	ok(!p && e.line == 3 && printable && strstr(e.msg, "..."),
	   "long value with control characters: message bounded and printable");
	free(big);

	/* 10000 rules ok, 10001 not. */
	size_t cap = 10001 * 40;
	char *many = malloc(cap);
	size_t len = 0;
	for (int i = 0; i < 10000; i++)
		len += (size_t)snprintf(many + len, cap - len, "[r%d]\nmatch=*:%d\n", i, i % 65535 + 1);
	p = policy_parse(many, len, &e);
	ok(p && p->n_rules == 10000, "10000 rules are accepted");
	ok(p && strcmp(which(p, NULL, "1.2.3.4", 9999), "r9998") == 0, "...and the right one matches");
	policy_free(p);
	len += (size_t)snprintf(many + len, cap - len, "[r10000]\nmatch=*:*\n");
	p = policy_parse(many, len, &e);
	ok(!p && e.line == 20001 && strstr(e.msg, "too many rules"), "10001 rules: error at line %u (%s)",
	   e.line, e.msg);
	free(many);

	/* 1 MiB limit. */
	size_t mib = 1024 * 1024;
	char *huge = malloc(mib + 1);
	memset(huge, '\n', mib + 1);
	p = policy_parse(huge, mib, &e);
	ok(p != NULL, "exactly 1 MiB is accepted");
	policy_free(p);
	p = policy_parse(huge, mib + 1, &e);
	ok(!p && e.line == 0 && strstr(e.msg, "too large"), "1 MiB + 1 byte is rejected (%s)", e.msg);
	free(huge);
}

static void test_hosts_syntax(void)
{
	struct policy *p;
	const struct policy_match *m;

	p = rule("match = *:*");
	m = p ? &p->rules[0].matches[0] : NULL;
	ok(m && m->kind == POLICY_HOST_ANY && m->port == 0, "*:* is any host, any port");
	policy_free(p);

	p = rule("match = *.Example.COM.:443");
	m = p ? &p->rules[0].matches[0] : NULL;
	ok(m && m->kind == POLICY_HOST_WILDCARD && strcmp(m->name, ".example.com") == 0 &&
	   m->port == 443, "*.Example.COM. -> wildcard suffix .example.com");
	policy_free(p);

	p = rule("match = WWW.Example.Com.:80");
	m = p ? &p->rules[0].matches[0] : NULL;
	ok(m && m->kind == POLICY_HOST_NAME && strcmp(m->name, "www.example.com") == 0,
	   "names lower-cased, one trailing dot stripped");
	policy_free(p);

	p = rule("match = my_host-1.local:1");
	ok(p && strcmp(p->rules[0].matches[0].name, "my_host-1.local") == 0, "underscore and hyphen in names");
	policy_free(p);

	p = rule("match = localhost:631");
	ok(p && p->rules[0].matches[0].kind == POLICY_HOST_NAME, "single-label name");
	policy_free(p);

	p = rule("match = 192.0.2.7:25");
	m = p ? &p->rules[0].matches[0] : NULL;
	ok(m && m->kind == POLICY_HOST_CIDR && m->family == AF_INET && m->prefix == 32 &&
	   memcmp(m->addr, "\xc0\x00\x02\x07", 4) == 0, "IPv4 address -> /32");
	policy_free(p);

	p = rule("match = 10.1.2.3/8:*");
	m = p ? &p->rules[0].matches[0] : NULL;
	ok(m && m->kind == POLICY_HOST_CIDR && m->prefix == 8 && memcmp(m->addr, "\x0a\0\0\0", 4) == 0,
	   "IPv4 CIDR with host bits set is masked");
	policy_free(p);

	p = rule("match = 10.255.255.255/13:1");
	m = p ? &p->rules[0].matches[0] : NULL;
	ok(m && memcmp(m->addr, "\x0a\xf8\0\0", 4) == 0, "mask on a non-byte boundary (/13)");
	policy_free(p);

	p = rule("match = 0.0.0.0/0:*, 1.2.3.4/32:5");
	ok(p && p->rules[0].matches[0].prefix == 0 && p->rules[0].matches[1].prefix == 32,
	   "/0 and /32 prefixes");
	policy_free(p);

	p = rule("match = [::1]:443");
	m = p ? &p->rules[0].matches[0] : NULL;
	ok(m && m->kind == POLICY_HOST_CIDR && m->family == AF_INET6 && m->prefix == 128 &&
	   m->addr[15] == 1 && m->port == 443, "[::1]:443");
	policy_free(p);

	p = rule("match = [fd00::1]/8:*");
	m = p ? &p->rules[0].matches[0] : NULL;
	ok(m && m->family == AF_INET6 && m->prefix == 8 && m->addr[0] == 0xfd && m->addr[15] == 0,
	   "[fd00::1]/8 masked to fd00::/8");
	policy_free(p);

	p = rule("match = [2001:db8::/32]:80");
	m = p ? &p->rules[0].matches[0] : NULL;
	ok(m && m->prefix == 32 && m->port == 80, "prefix inside the brackets also accepted");
	policy_free(p);

	p = rule("match = [::ffff:10.0.0.1]:1");
	ok(p && p->rules[0].matches[0].family == AF_INET && p->rules[0].matches[0].prefix == 32,
	   "IPv4-mapped IPv6 literal: the IPv4 address");
	policy_free(p);

	p = rule("match = a.com:00443");
	ok(p && p->rules[0].matches[0].port == 443, "leading zeros in a port");
	policy_free(p);

	p = rule("match = *.com:65535");
	ok(p && p->rules[0].matches[0].kind == POLICY_HOST_WILDCARD && p->rules[0].matches[0].port == 65535,
	   "*.com and port 65535");
	policy_free(p);

	char longname[300], body[400];
	/* 253 characters: four 62-character labels + dots + "a" */
	snprintf(longname, sizeof longname, "%.62s.%.62s.%.62s.%.62s.a",
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		 "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
		 "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
	ok(strlen(longname) == 253, "test name is 253 characters");
	snprintf(body, sizeof body, "match = %s:1", longname);
	p = rule(body);
	ok(p != NULL, "a 253-character name is accepted");
	policy_free(p);
	snprintf(body, sizeof body, "match = %s.:1", longname);
	p = rule(body);
	ok(p != NULL, "... with a trailing dot too");
	policy_free(p);
	snprintf(body, sizeof body, "match = a%s:1", longname);
	bad_rule(body, "longer than 253");
	char label[70];
	memset(label, 'l', 63);
	label[63] = '\0';
	snprintf(body, sizeof body, "match = %s.com:1", label);
	p = rule(body);
	ok(p != NULL, "a 63-character label is accepted");
	policy_free(p);
	snprintf(body, sizeof body, "match = %sl.com:1", label);
	bad_rule(body, "longer than 63");

	bad_rule("match = a..b.com:1", "empty label");
	bad_rule("match = .a.com:1", "empty label");
	bad_rule("match = a.com..:1", "empty label");
	bad_rule("match = .:1", "empty name");
	bad_rule("match = exa$mple.com:1", "bad character");
	bad_rule("match = foo*.com:1", "only allowed as a leading");
	bad_rule("match = a.*.com:1", "only allowed as a leading");
	bad_rule("match = **.com:1", "only allowed as a leading");
	bad_rule("match = *.:1", "empty name after");
	bad_rule("match = *.*.com:1", "only allowed as a leading");
	bad_rule("match = 300.1.1.1:80", "numeric");
	bad_rule("match = 1.2.3:80", "numeric");
	bad_rule("match = 1.2.3.4.5:80", "numeric");
	bad_rule("match = api.example.com", "missing port");
	bad_rule("match = api.example.com:", "bad port");
	bad_rule("match = api.example.com:0", "bad port");
	bad_rule("match = api.example.com:65536", "bad port");
	bad_rule("match = api.example.com:70000", "bad port");
	bad_rule("match = api.example.com:-1", "bad port");
	bad_rule("match = api.example.com:+1", "bad port");
	bad_rule("match = api.example.com:4 43", "bad port");
	bad_rule("match = api.example.com:http", "bad port");
	bad_rule("match = :443", "missing host");
	bad_rule("match = ::1:443", "brackets");
	bad_rule("match = fd00::/8:443", "brackets");
	bad_rule("match = [::1]", "missing port");
	bad_rule("match = [::1]443", "missing port");
	bad_rule("match = [::1]x:443", "unexpected text");
	bad_rule("match = [::1:443", "missing \"]\"");
	bad_rule("match = [1.2.3.4]:443", "bad IPv6 address");
	bad_rule("match = [zz::1]:443", "bad IPv6 address");
	bad_rule("match = []:443", "bad IPv6 address");
	bad_rule("match = [::1]/129:443", "longer than the address (128 bits)");
	bad_rule("match = [::1]/:443", "bad prefix");
	bad_rule("match = [::1/64]/64:443", "two prefix");
	bad_rule("match = 10.0.0.0/33:1", "longer than the address (32 bits)");
	bad_rule("match = 10.0.0.0/:1", "bad prefix");
	bad_rule("match = 10.0.0.0/8/8:1", "bad prefix");
	bad_rule("match = 10.0.0.0/-1:1", "bad prefix");
	bad_rule("match = example.com/8:1", "bad IPv4 address before");
	bad_rule("match = a.com:1,,b.com:2", "empty entry");
	bad_rule("match = a.com:1,", "empty entry");
	bad_rule("match = ,a.com:1", "empty entry");
	bad_rule("match = a.com:1, ,b.com:2", "empty entry");
	bad_rule("match = a.com:1, b.com", "missing port");
	bad("[r]\nmatch = a.com:1\nmatch = b.com:x\n", 3, "bad match \"b.com:x\" in rule [r]");
}

static void test_rule_keys(void)
{
	struct policy *p;

	p = rule("match=*:*\naction = plain");
	ok(p && p->rules[0].action == POLICY_PLAIN, "action = plain");
	policy_free(p);
	p = rule("match=*:*\naction = DENY");
	ok(p && p->rules[0].action == POLICY_DENY, "action = DENY (case-insensitive)");
	policy_free(p);
	p = rule("match=*:*\naction = tls");
	ok(p && p->rules[0].action == POLICY_TLS, "action = tls");
	policy_free(p);
	bad_rule("action = upgrade\nmatch=*:*", "bad action \"upgrade\" in rule [r]");

	p = rule("match=*:*\nport = 8443");
	ok(p && p->rules[0].port == 8443, "port = 8443");
	policy_free(p);
	bad_rule("port = 70000\nmatch=*:*", "bad port \"70000\" in rule [r]: expected 1-65535");
	bad_rule("port = 0\nmatch=*:*", "bad port");
	bad_rule("port = *\nmatch=*:*", "bad port");
	bad_rule("port = 44x\nmatch=*:*", "bad port");

	p = rule("match=*:*\nserver-name = API.Example.com.");
	ok(p && strcmp(p->rules[0].server_name, "api.example.com") == 0 && !p->rules[0].server_name_is_ip,
	   "server-name is a DNS name, normalized");
	policy_free(p);
	p = rule("match=*:*\nserver-name = 192.0.2.1");
	ok(p && strcmp(p->rules[0].server_name, "192.0.2.1") == 0 && p->rules[0].server_name_is_ip,
	   "server-name IPv4 literal");
	policy_free(p);
	p = rule("match=*:*\nserver-name = [2001:DB8::1]");
	ok(p && strcmp(p->rules[0].server_name, "2001:db8::1") == 0 && p->rules[0].server_name_is_ip,
	   "server-name [IPv6] literal stored without brackets");
	policy_free(p);
	p = rule("match=*:*\nserver-name = ::1");
	ok(p && strcmp(p->rules[0].server_name, "::1") == 0 && p->rules[0].server_name_is_ip,
	   "server-name IPv6 literal without brackets");
	policy_free(p);
	bad_rule("server-name = *.example.com\nmatch=*:*", "bad server-name");
	bad_rule("server-name = [1.2.3.4]\nmatch=*:*", "bad IPv6");
	bad_rule("server-name = [::1\nmatch=*:*", "bad IPv6");
	bad_rule("server-name = []\nmatch=*:*", "bad IPv6");
	bad_rule("server-name = a b\nmatch=*:*", "bad character");
	bad_rule("server-name = 1.2.3.256\nmatch=*:*", "numeric");
	bad_rule("server-name = example.com:443\nmatch=*:*", "bad server-name");

	p = rule("match=*:*\nca = system");
	ok(p && p->rules[0].ca == NULL && p->rules[0].ca_line == 3, "ca = system -> NULL");
	policy_free(p);
	p = rule("match=*:*\nca = /etc/ssl/my ca.pem\ncert = /c.pem\nkey = /k.pem");
	ok(p && strcmp(p->rules[0].ca, "/etc/ssl/my ca.pem") == 0 && p->rules[0].ca_line == 3 &&
	   strcmp(p->rules[0].cert, "/c.pem") == 0 && p->rules[0].cert_line == 4 &&
	   strcmp(p->rules[0].key, "/k.pem") == 0 && p->rules[0].key_line == 5,
	   "ca, cert, key paths and their lines");
	policy_free(p);
	bad_rule("ca = certs/ca.pem\nmatch=*:*", "must be \"system\" or an absolute path");
	bad_rule("cert = c.pem\nkey=/k\nmatch=*:*", "bad cert \"c.pem\" in rule [r]: must be an absolute path");
	bad_rule("key = ./k.pem\ncert=/c\nmatch=*:*", "must be an absolute path");
	bad_rule("key = ~/k.pem\ncert=/c\nmatch=*:*", "must be an absolute path");
	bad("[r]\nmatch=*:*\ncert = /c.pem\n", 3, "\"cert\" without \"key\" in rule [r]");
	bad("[r]\nmatch=*:*\n\nkey = /k.pem\n[s]\nmatch=*:*\n", 4, "\"key\" without \"cert\" in rule [r]");

	static const char pin1[] = "sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=";
	static const uint8_t pin1_bytes[32] = {
		0xca, 0x97, 0x81, 0x12, 0xca, 0x1b, 0xbd, 0xca, 0xfa, 0xc2, 0x31, 0xb3, 0x9a, 0x23, 0xdc, 0x4d,
		0xa7, 0x86, 0xef, 0xf8, 0x14, 0x7c, 0x4e, 0x72, 0xb9, 0x80, 0x77, 0x85, 0xaf, 0xee, 0x48, 0xbb,
	};  /* sha256("a") */
	char body[512];
	snprintf(body, sizeof body, "match=*:*\npin = %s\npin = SHA256//PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0",
		 pin1);
	p = rule(body);
	ok(p && p->rules[0].n_pins == 2 && memcmp(p->rules[0].pins[0], pin1_bytes, 32) == 0,
	   "two pins decoded (padding optional, prefix case-insensitive)");
	if (p && p->rules[0].n_pins == 2) {
		char s[POLICY_PIN_STRLEN];
		ok(strcmp(policy_pin_str(p->rules[0].pins[0], s, sizeof s), pin1) == 0,
		   "policy_pin_str re-encodes the pin (%s)", s);
		ok(strcmp(policy_pin_str(p->rules[0].pins[1], s, sizeof s),
			  "sha256//PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0=") == 0,
		   "second pin re-encoded with padding");
	}
	policy_free(p);
	p = rule("match=*:*\npin = sha256//ypeBEsobvcr6wjGzmiPcTaeG7_gUfE5yuYB3ha_uSLs, "
		 "sha256//PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0=");
	ok(p && p->rules[0].n_pins == 2 && memcmp(p->rules[0].pins[0], pin1_bytes, 32) == 0,
	   "pin list with commas; base64url accepted");
	policy_free(p);
	bad_rule("pin = ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=\nmatch=*:*", "expected sha256//");
	bad_rule("pin = sha1//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=\nmatch=*:*", "expected sha256//");
	bad_rule("pin = sha256//\nmatch=*:*", "exactly 32 bytes");
	bad_rule("pin = sha256//\nmatch=*:*", "exactly 32 bytes");
	bad_rule("pin = sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSL=\nmatch=*:*", "exactly 32 bytes");
	bad_rule("pin = sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLsA\nmatch=*:*", "exactly 32 bytes");
	bad_rule("pin = sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLt=\nmatch=*:*", "exactly 32 bytes");
	bad_rule("pin = sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uS!s=\nmatch=*:*", "exactly 32 bytes");
	bad_rule("pin = sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs==\nmatch=*:*", "exactly 32 bytes");
	bad_rule("pin = sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=,\nmatch=*:*", "empty entry");

	p = rule("match=*:*\nalpn = h2, http/1.1 ,x");
	ok(p && p->rules[0].n_alpn == 3 && strcmp(p->rules[0].alpn[0], "h2") == 0 &&
	   strcmp(p->rules[0].alpn[1], "http/1.1") == 0 && strcmp(p->rules[0].alpn[2], "x") == 0,
	   "alpn list in order, trimmed");
	policy_free(p);
	char alpn[300];
	memset(alpn, 'p', 255);
	alpn[255] = '\0';
	snprintf(body, sizeof body, "match=*:*\nalpn = %s", alpn);
	p = rule(body);
	ok(p && strlen(p->rules[0].alpn[0]) == 255, "a 255-byte ALPN protocol");
	policy_free(p);
	snprintf(body, sizeof body, "alpn = %sp\nmatch=*:*", alpn);
	bad_rule(body, "at most 255 bytes");
	bad_rule("alpn = h2,,http/1.1\nmatch=*:*", "empty protocol");
	bad_rule("alpn = h2,\nmatch=*:*", "empty protocol");
	bad_rule("alpn = http 1.1\nmatch=*:*", "printable ASCII");
	bad_rule("alpn = caf\xc3\xa9\nmatch=*:*", "printable ASCII");

	static const char *const yes[] = { "on", "yes", "true", "1", "ON", "Yes" };
	static const char *const no[] = { "off", "no", "false", "0", "OFF", "False" };
	for (size_t i = 0; i < 6; i++) {
		snprintf(body, sizeof body, "match=*:*\nresume = %s", yes[i]);
		p = rule(body);
		ok(p && p->rules[0].resume, "resume = %s", yes[i]);
		policy_free(p);
		snprintf(body, sizeof body, "match=*:*\nresume = %s", no[i]);
		p = rule(body);
		ok(p && !p->rules[0].resume, "resume = %s", no[i]);
		policy_free(p);
	}
	bad_rule("resume = maybe\nmatch=*:*", "bad resume \"maybe\"");
	bad_rule("resume = 2\nmatch=*:*", "bad resume");

	/* An IP-only TLS rule without server-name or pin is not a parse error. */
	good("[ip]\nmatch = 10.0.0.0/8:443, [fd00::]/8:443, *:8443\n", "an IP-only tls rule without server-name");

	/* TLS settings on plain/deny rules are accepted (and unused). */
	good("[d]\nmatch = *:1\naction = deny\nport = 2\nalpn = h2\n", "TLS keys on a deny rule");

	/* An error in a later rule frees the earlier ones (valgrind checks). */
	bad("[a]\nmatch = a.com:1, 10.0.0.0/8:2\nalpn=h2,x\npin=sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs\n"
	    "server-name=x.com\nca=/ca\ncert=/c\nkey=/k\n[b]\nmatch=*:*\nbogus=1\n", 11, "unknown key \"bogus\"");
}

static void test_new_globals(void)
{
	struct policy *p;

	p = parse("keylog = /tmp/keys.log\nlog-format = json\n");
	ok(p && p->keylog_path && strcmp(p->keylog_path, "/tmp/keys.log") == 0 && p->keylog_line == 1 &&
	   p->log_format == POLICY_FORMAT_JSON, "keylog = /PATH, log-format = json");
	policy_free(p);
	p = parse("log-format = TEXT\n\nkeylog = OFF\n");
	ok(p && !p->keylog_path && p->keylog_line == 3 && p->log_format == POLICY_FORMAT_TEXT,
	   "keylog = OFF -> NULL, log-format = TEXT (case-insensitive)");
	policy_free(p);
	p = parse("keylog = /var/tmp/my keys.log\n");
	ok(p && p->keylog_path && strcmp(p->keylog_path, "/var/tmp/my keys.log") == 0,
	   "keylog path with a space");
	policy_free(p);

	bad("keylog = keys.log\n", 1, "bad keylog \"keys.log\": expected off or an absolute path");
	bad("keylog = ~/keys.log\n", 1, "expected off or an absolute path");
	bad("keylog = on\n", 1, "bad keylog \"on\"");
	bad("keylog = $SSLKEYLOGFILE\n", 1, "bad keylog");
	bad("keylog =\n", 1, "empty value for \"keylog\"");
	bad("keylog = off\nkeylog = /k\n", 2, "duplicate key \"keylog\" (first at line 1)");
	bad("[a]\nmatch = *:*\nkeylog = /k\n", 3, "global key \"keylog\" inside rule [a]");
	bad("log-format = xml\n", 1, "bad log-format \"xml\": expected text or json");
	bad("log-format = json-lines\n", 1, "bad log-format");
	bad("log-format = json\nlog-format = text\n", 2, "duplicate key \"log-format\"");
	bad("[a]\nmatch = *:*\nlog-format = json\n", 3, "global key \"log-format\" inside rule [a]");
}

/* rekey-after = VALUE must give WANT bytes. */
static void check_size(const char *value, uint64_t want)
{
	char body[256];
	snprintf(body, sizeof body, "match=*:*\nrekey-after = %s", value);
	struct policy *p = rule(body);
	ok(p && p->rules[0].rekey_after == want, "rekey-after = %s -> %llu (got %llu)", value,
	   (unsigned long long)want, p ? (unsigned long long)p->rules[0].rekey_after : 0ull);
	policy_free(p);
}

/* handshake-timeout = VALUE must give WANT milliseconds. */
static void check_duration(const char *value, unsigned want)
{
	char body[256];
	snprintf(body, sizeof body, "match=*:*\nhandshake-timeout = %s", value);
	struct policy *p = rule(body);
	ok(p && p->rules[0].handshake_timeout_ms == want, "handshake-timeout = %s -> %u ms (got %u)",
	   value, want, p ? p->rules[0].handshake_timeout_ms : 0);
	policy_free(p);
}

static void test_new_rule_keys(void)
{
	struct policy *p;
	char body[1024];

	/* early-data: a boolean like resume. */
	static const char *const yes[] = { "on", "yes", "true", "1", "ON", "True" };
	static const char *const no[] = { "off", "no", "false", "0", "Off", "NO" };
	for (size_t i = 0; i < 6; i++) {
		snprintf(body, sizeof body, "match=*:*\nearly-data = %s", yes[i]);
		p = rule(body);
		ok(p && p->rules[0].early_data, "early-data = %s", yes[i]);
		policy_free(p);
		snprintf(body, sizeof body, "match=*:*\nearly-data = %s", no[i]);
		p = rule(body);
		ok(p && !p->rules[0].early_data, "early-data = %s", no[i]);
		policy_free(p);
	}
	bad_rule("early-data = 0rtt\nmatch=*:*", "bad early-data \"0rtt\" in rule [r]: expected on or off");
	bad_rule("early-data = onn\nmatch=*:*", "bad early-data");
	bad("[r]\nmatch=*:*\nearly-data = on\nearly-data = off\n", 4,
	    "duplicate key \"early-data\" in rule [r] (first at line 3)");

	/* rekey-after: bytes with binary suffixes. */
	check_size("0", 0);
	check_size("1", 1);
	check_size("1000", 1000);
	check_size("4096B", 4096);
	check_size("64K", 64 * 1024);
	check_size("64k", 64 * 1024);
	check_size("64KiB", 64 * 1024);
	check_size("64kib", 64 * 1024);
	check_size("64KB", 64 * 1024);
	check_size("64 KiB", 64 * 1024);
	check_size("1M", 1024 * 1024);
	check_size("16MiB", 16ull << 20);
	check_size("2G", 2ull << 30);
	check_size("1024G", 1ull << 40);
	check_size("1T", 1ull << 40);
	check_size("1tib", 1ull << 40);
	check_size("0K", 0);
	check_size("1099511627776", 1ull << 40);
	bad_rule("rekey-after = 1099511627777\nmatch=*:*", "bad rekey-after \"1099511627777\" in rule [r]: "
		 "expected a byte count like 0, 64K, 64KiB or 1M (at most 1T; 0 = never)");
	bad_rule("rekey-after = 2T\nmatch=*:*", "at most 1T");
	bad_rule("rekey-after = 1025G\nmatch=*:*", "at most 1T");
	bad_rule("rekey-after = 99999999999999999999999999\nmatch=*:*", "bad rekey-after");
	bad_rule("rekey-after = -1\nmatch=*:*", "bad rekey-after");
	bad_rule("rekey-after = +1K\nmatch=*:*", "bad rekey-after");
	bad_rule("rekey-after = 1.5M\nmatch=*:*", "bad rekey-after");
	bad_rule("rekey-after = K\nmatch=*:*", "bad rekey-after");
	bad_rule("rekey-after = 64Ki\nmatch=*:*", "bad rekey-after");
	bad_rule("rekey-after = 64iB\nmatch=*:*", "bad rekey-after");
	bad_rule("rekey-after = 64KBB\nmatch=*:*", "bad rekey-after");
	bad_rule("rekey-after = 64P\nmatch=*:*", "bad rekey-after");
	bad_rule("rekey-after = 64KB x\nmatch=*:*", "bad rekey-after");
	bad_rule("rekey-after = 0x100\nmatch=*:*", "bad rekey-after");
	bad_rule("rekey-after = never\nmatch=*:*", "bad rekey-after");

	/* ocsp */
	p = rule("match=*:*\nocsp = off");
	ok(p && p->rules[0].ocsp == POLICY_OCSP_OFF, "ocsp = off");
	policy_free(p);
	p = rule("match=*:*\nocsp = Require");
	ok(p && p->rules[0].ocsp == POLICY_OCSP_REQUIRE, "ocsp = Require (case-insensitive)");
	policy_free(p);
	p = rule("match=*:*\nocsp = request");
	ok(p && p->rules[0].ocsp == POLICY_OCSP_REQUEST, "ocsp = request");
	policy_free(p);
	bad_rule("ocsp = on\nmatch=*:*", "bad ocsp \"on\" in rule [r]: expected off, request or require");
	bad_rule("ocsp = must-staple\nmatch=*:*", "bad ocsp");
	bad("[r]\nmatch=*:*\nocsp = off\n\nocsp = off\n", 5, "duplicate key \"ocsp\"");

	/* cert and key as PKCS#11 URIs. */
	p = rule("match=*:*\ncert = pkcs11:token=tlsshim;object=client;type=cert\n"
		 "key = PKCS11:token=tlsshim;object=client;type=private?pin-value=1234");
	ok(p && strcmp(p->rules[0].cert, "pkcs11:token=tlsshim;object=client;type=cert") == 0 &&
	   strcmp(p->rules[0].key, "pkcs11:token=tlsshim;object=client;type=private?pin-value=1234") == 0 &&
	   p->rules[0].cert_line == 3 && p->rules[0].key_line == 4,
	   "cert and key as PKCS#11 URIs (scheme stored lower-case), with their lines");
	policy_free(p);
	p = rule("match=*:*\ncert = /etc/tlsshim/client.crt\nkey = pkcs11:object=client%20key;type=private");
	ok(p && strcmp(p->rules[0].cert, "/etc/tlsshim/client.crt") == 0 && policy_is_pkcs11(p->rules[0].key),
	   "cert a file, key a URI");
	policy_free(p);
	p = rule("match=*:*\ncert = pkcs11:object=c\nkey = /k.pem");
	ok(p && policy_is_pkcs11(p->rules[0].cert) && !policy_is_pkcs11(p->rules[0].key),
	   "cert a URI, key a file");
	policy_free(p);
	p = rule("match=*:*\ncert = pkcs11:object=c#frag\nkey = pkcs11:object=c #comment");
	ok(p && strcmp(p->rules[0].cert, "pkcs11:object=c#frag") == 0 &&
	   strcmp(p->rules[0].key, "pkcs11:object=c") == 0, "'#' in a URI kept, ' #' starts a comment");
	policy_free(p);
	bad_rule("cert = pkcs11:object=my key\nkey = /k\nmatch=*:*",
		 "bad cert \"pkcs11:object=my key\" in rule [r]: a PKCS#11 URI has no spaces");
	bad_rule("key = pkcs11:object=a\tb\ncert = /c\nmatch=*:*", "bad key");
	bad_rule("key = pkcs11:object=a\x01" "b\ncert = /c\nmatch=*:*", "no spaces or control characters");
	bad_rule("key = pkcs11-object=a\ncert = /c\nmatch=*:*",
		 "bad key \"pkcs11-object=a\" in rule [r]: must be an absolute path or a PKCS#11 URI");
	bad_rule("key = pkcs:object=a\ncert = /c\nmatch=*:*", "must be an absolute path or a PKCS#11 URI");
	bad_rule("cert = file:/c.pem\nkey = /k\nmatch=*:*", "must be an absolute path or a PKCS#11 URI");
	bad("[r]\nmatch=*:*\ncert = pkcs11:object=c\n", 3, "\"cert\" without \"key\" in rule [r]");
	bad("[r]\nmatch=*:*\nkey = pkcs11:object=c\n", 3, "\"key\" without \"cert\" in rule [r]");
	bad_rule("ca = pkcs11:object=ca\nmatch=*:*", "bad ca");
	ok(policy_is_pkcs11("pkcs11:") && policy_is_pkcs11("PkCs11:token=x") &&
	   !policy_is_pkcs11("pkcs11") && !policy_is_pkcs11("/pkcs11:x") && !policy_is_pkcs11("") &&
	   !policy_is_pkcs11(NULL), "policy_is_pkcs11");

	/* groups */
	p = rule("match=*:*\ngroups = x25519, Secp256r1,FFDHE2048 ,x448,SECP384R1,secp521r1,"
		 "ffdhe3072,ffdhe4096,ffdhe6144,ffdhe8192");
	static const char *const all_groups[] = { "X25519", "SECP256R1", "FFDHE2048", "X448", "SECP384R1",
						  "SECP521R1", "FFDHE3072", "FFDHE4096", "FFDHE6144",
						  "FFDHE8192" };
	bool gok = p && p->rules[0].n_groups == 10;
	for (size_t i = 0; gok && i < 10; i++)
		gok = strcmp(p->rules[0].groups[i], all_groups[i]) == 0;
	ok(gok, "all ten groups, in order, stored upper-case");
	policy_free(p);
	p = rule("match=*:*\ngroups = SECP384R1");
	ok(p && p->rules[0].n_groups == 1 && strcmp(p->rules[0].groups[0], "SECP384R1") == 0, "one group");
	policy_free(p);
	bad_rule("groups = X25519,X25520\nmatch=*:*",
		 "unknown group \"X25520\" in rule [r] (known: X25519, X448, SECP256R1, SECP384R1, "
		 "SECP521R1, FFDHE2048, FFDHE3072, FFDHE4096, FFDHE6144, FFDHE8192)");
	bad_rule("groups = GROUP-X25519\nmatch=*:*", "unknown group \"GROUP-X25519\"");
	bad_rule("groups = P-256\nmatch=*:*", "unknown group \"P-256\"");
	bad_rule("groups = X25519, x25519\nmatch=*:*", "group X25519 listed twice in rule [r]");
	bad_rule("groups = X25519,,X448\nmatch=*:*", "bad groups \"X25519,,X448\" in rule [r]: empty entry");
	bad_rule("groups = X25519,\nmatch=*:*", "empty entry");
	bad_rule("groups = ,X25519\nmatch=*:*", "empty entry");
	bad_rule("groups = X25519 X448\nmatch=*:*", "unknown group \"X25519 X448\"");
	bad("[r]\nmatch=*:*\ngroups = X25519\ngroups = X448\n", 4, "duplicate key \"groups\" in rule [r]");

	/* A very long unknown name: the message stays bounded and still lists the names. */
	char longname[300];
	memset(longname, 'Z', 200);
	longname[200] = '\0';
	snprintf(body, sizeof body, "[a-rather-long-rule-name-of-sixty-four-characters-xxxxxxxxxxxxxxx]\n"
		 "match=*:*\ngroups = %s\n", longname);
	bad(body, 3, "(known: X25519, X448, SECP256R1, SECP384R1, SECP521R1, FFDHE2048, FFDHE3072, "
	    "FFDHE4096, FFDHE6144, FFDHE8192)");

	/* ciphers */
	p = rule("match=*:*\nciphers = chacha20-poly1305, AES-256-GCM,aes-128-gcm,AES-128-CCM,aes-128-ccm-8");
	static const char *const all_ciphers[] = { "CHACHA20-POLY1305", "AES-256-GCM", "AES-128-GCM",
						   "AES-128-CCM", "AES-128-CCM-8" };
	bool cok = p && p->rules[0].n_ciphers == 5;
	for (size_t i = 0; cok && i < 5; i++)
		cok = strcmp(p->rules[0].ciphers[i], all_ciphers[i]) == 0;
	ok(cok, "all five ciphers, in order, stored upper-case");
	policy_free(p);
	bad_rule("ciphers = AES-128-GCM,AES-192-GCM\nmatch=*:*",
		 "unknown cipher \"AES-192-GCM\" in rule [r] (known: AES-128-GCM, AES-256-GCM, "
		 "CHACHA20-POLY1305, AES-128-CCM, AES-128-CCM-8)");
	bad_rule("ciphers = TLS_AES_128_GCM_SHA256\nmatch=*:*", "unknown cipher");
	bad_rule("ciphers = AES-128-CBC\nmatch=*:*", "unknown cipher \"AES-128-CBC\"");
	bad_rule("ciphers = AES-128-GCM,aes-128-gcm\nmatch=*:*", "cipher AES-128-GCM listed twice");
	bad_rule("ciphers = ,\nmatch=*:*", "empty entry");
	bad("[r]\nmatch=*:*\nciphers = AES-128-GCM\nciphers = AES-256-GCM\n", 4, "duplicate key \"ciphers\"");

	/* handshake-timeout */
	check_duration("10s", 10000);
	check_duration("10", 10000);
	check_duration("500ms", 500);
	check_duration("100ms", 100);
	check_duration("100MS", 100);
	check_duration("1500ms", 1500);
	check_duration("2m", 120000);
	check_duration("10m", 600000);
	check_duration("600", 600000);
	check_duration("600s", 600000);
	check_duration("1", 1000);
	check_duration("30 s", 30000);
	check_duration("600000ms", 600000);
	bad_rule("handshake-timeout = fast\nmatch=*:*", "bad handshake-timeout \"fast\" in rule [r]: "
		 "expected a duration like 10s or 500ms (100ms..10m)");
	bad_rule("handshake-timeout = 99ms\nmatch=*:*", "(100ms..10m)");
	bad_rule("handshake-timeout = 0\nmatch=*:*", "bad handshake-timeout \"0\"");
	bad_rule("handshake-timeout = 0s\nmatch=*:*", "bad handshake-timeout");
	bad_rule("handshake-timeout = 601\nmatch=*:*", "bad handshake-timeout");
	bad_rule("handshake-timeout = 11m\nmatch=*:*", "bad handshake-timeout");
	bad_rule("handshake-timeout = 600001ms\nmatch=*:*", "bad handshake-timeout");
	bad_rule("handshake-timeout = 1h\nmatch=*:*", "bad handshake-timeout");
	bad_rule("handshake-timeout = 1.5s\nmatch=*:*", "bad handshake-timeout");
	bad_rule("handshake-timeout = -1s\nmatch=*:*", "bad handshake-timeout");
	bad_rule("handshake-timeout = s\nmatch=*:*", "bad handshake-timeout");
	bad_rule("handshake-timeout = 10sec\nmatch=*:*", "bad handshake-timeout");
	bad_rule("handshake-timeout = 10s5\nmatch=*:*", "bad handshake-timeout");
	bad_rule("handshake-timeout = 99999999999999999999s\nmatch=*:*", "bad handshake-timeout");
	bad("[r]\nmatch=*:*\nhandshake-timeout = 1s\nhandshake-timeout = 2s\n", 4,
	    "duplicate key \"handshake-timeout\"");

	/* Rule keys are not global keys. */
	bad("early-data = on\n", 1, "key \"early-data\" outside a rule");
	bad("groups = X25519\n", 1, "key \"groups\" outside a rule");
	bad("handshake-timeout = 5s\n", 1, "key \"handshake-timeout\" outside a rule");

	/* Each setting is per rule; the defaults apply to rules that don't set it. */
	p = parse("[a]\nmatch = a.com:1\nhandshake-timeout = 3s\nearly-data = on\nrekey-after = 1M\n"
		  "ocsp = require\ngroups = X25519\nciphers = AES-256-GCM\n[b]\nmatch = b.com:1\n");
	ok(p && p->n_rules == 2 && p->rules[0].handshake_timeout_ms == 3000 && p->rules[0].early_data &&
	   p->rules[0].rekey_after == 1048576 && p->rules[0].ocsp == POLICY_OCSP_REQUIRE &&
	   p->rules[0].n_groups == 1 && p->rules[0].n_ciphers == 1 &&
	   p->rules[1].handshake_timeout_ms == 10000 && !p->rules[1].early_data &&
	   p->rules[1].rekey_after == 0 && p->rules[1].ocsp == POLICY_OCSP_REQUEST &&
	   p->rules[1].n_groups == 0 && p->rules[1].n_ciphers == 0, "settings are per rule, defaults elsewhere");
	policy_free(p);

	/* Accepted (and unused) on plain and deny rules. */
	good("[d]\nmatch = *:1\naction = deny\nearly-data = on\nrekey-after = 1K\nocsp = require\n"
	     "groups = X448\nciphers = AES-128-CCM\nhandshake-timeout = 1m\n"
	     "cert = pkcs11:object=c\nkey = pkcs11:object=c\n", "the new keys on a deny rule");
	good("[p]\nmatch = *:1\naction = plain\nocsp = off\nhandshake-timeout = 100ms\n",
	     "the new keys on a plain rule");

	/* An error after lists were filled frees them (valgrind/ASan check). */
	bad("[a]\nmatch=*:*\ngroups = X25519,X448\nciphers = AES-128-GCM\ncert = pkcs11:x\nkey = pkcs11:y\n"
	    "[b]\nmatch=*:*\ngroups = X448,SECP256R1,X448\n", 9, "group X448 listed twice in rule [b]");
	bad("keylog = /k\n[a]\nmatch=*:*\nciphers = AES-128-GCM, nope\n", 4, "unknown cipher \"nope\" in rule [a]");

	ok(strcmp(policy_ocsp_name(POLICY_OCSP_OFF), "off") == 0 &&
	   strcmp(policy_ocsp_name(POLICY_OCSP_REQUEST), "request") == 0 &&
	   strcmp(policy_ocsp_name(POLICY_OCSP_REQUIRE), "require") == 0 &&
	   strcmp(policy_ocsp_name((enum policy_ocsp)7), "?") == 0, "policy_ocsp_name");
	ok(strcmp(policy_format_name(POLICY_FORMAT_TEXT), "text") == 0 &&
	   strcmp(policy_format_name(POLICY_FORMAT_JSON), "json") == 0 &&
	   strcmp(policy_format_name((enum policy_log_format)7), "?") == 0, "policy_format_name");
}

static void test_matching(void)
{
	struct policy *p = parse(
		"[local]\nmatch = 127.0.0.0/8:*, [::1]:*, localhost:*\naction = plain\n"
		"[deny]\nmatch = bad.example.com:80\naction = deny\n"
		"[exact]\nmatch = API.example.com:443\n"
		"[wild]\nmatch = *.example.com:443\n"
		"[net4]\nmatch = 10.0.0.0/8:5432\n"
		"[net6]\nmatch = [fd00::]/8:*\n"
		"[mapped]\nmatch = [::ffff:192.0.2.0]/120:7\n"
		"[anyhost]\nmatch = *:9999\n"
		"[multi]\nmatch = a.test:1, b.test:2\nmatch = 198.51.100.0/24:3\n");
	ok(p && p->n_rules == 9, "matching policy parsed");
	if (!p)
		return;
	expect_match(p, NULL, "127.0.0.1", 80, "local");
	expect_match(p, NULL, "127.255.1.2", 1, "local");
	expect_match(p, NULL, "::1", 443, "local");
	expect_match(p, "localhost", "192.0.2.1", 80, "local");
	expect_match(p, "LOCALHOST.", "192.0.2.1", 80, "local");
	expect_match(p, NULL, "::ffff:127.0.0.1", 80, "local");
	expect_match(p, "bad.example.com", "192.0.2.1", 80, "deny");
	expect_match(p, "bad.example.com", "192.0.2.1", 443, "wild");
	expect_match(p, "api.example.com", "192.0.2.1", 443, "exact");
	expect_match(p, "Api.Example.Com.", "192.0.2.1", 443, "exact");
	expect_match(p, "api.example.com", "192.0.2.1", 80, "-");
	expect_match(p, "www.example.com", "192.0.2.1", 443, "wild");
	expect_match(p, "a.b.c.example.com", "192.0.2.1", 443, "wild");
	expect_match(p, "example.com", "192.0.2.1", 443, "-");
	expect_match(p, "badexample.com", "192.0.2.1", 443, "-");
	expect_match(p, "example.com.evil", "192.0.2.1", 443, "-");
	expect_match(p, NULL, "10.1.2.3", 5432, "net4");
	expect_match(p, NULL, "10.1.2.3", 5433, "-");
	expect_match(p, NULL, "11.1.2.3", 5432, "-");
	expect_match(p, NULL, "::ffff:10.9.9.9", 5432, "net4");
	expect_match(p, NULL, "::10.9.9.9", 5432, "-");
	expect_match(p, NULL, "fd12:3456::1", 1, "net6");
	expect_match(p, NULL, "fe80::1", 1, "-");
	expect_match(p, NULL, "::ffff:192.0.2.55", 7, "mapped");
	expect_match(p, NULL, "192.0.2.55", 7, "mapped");
	expect_match(p, NULL, "192.0.3.55", 7, "-");
	expect_match(p, NULL, "203.0.113.1", 9999, "anyhost");
	expect_match(p, NULL, "2001:db8::1", 9999, "anyhost");
	expect_match(p, "b.test", "203.0.113.1", 2, "multi");
	expect_match(p, "a.test", "203.0.113.1", 2, "-");
	expect_match(p, NULL, "198.51.100.200", 3, "multi");

	/* Several names: any may match. */
	const char *names[3] = { "x.invalid", "api.example.com", "y.invalid" };
	uint8_t a[4] = { 192, 0, 2, 1 };
	const struct policy_rule *r = policy_match(p, names, 3, AF_INET, a, 443);
	ok(r && strcmp(r->name, "exact") == 0, "the second of three names matches");
	r = policy_match(p, names, 1, AF_INET, a, 443);
	ok(r == NULL, "n_names limits the names looked at");
	ok(policy_match(NULL, names, 3, AF_INET, a, 443) == NULL, "NULL policy matches nothing");
	ok(policy_match(p, NULL, 0, AF_UNIX, a, 5432) == NULL, "unknown family matches no CIDR");
	policy_free(p);

	/* First match wins, in file order. */
	p = parse("[first]\nmatch = *.example.com:*\n[second]\nmatch = www.example.com:443\n");
	expect_match(p, "www.example.com", "192.0.2.1", 443, "first");
	policy_free(p);
	p = parse("[all4]\nmatch = 0.0.0.0/0:*\n[all6]\nmatch = [::]/0:*\n");
	expect_match(p, NULL, "8.8.8.8", 53, "all4");
	expect_match(p, NULL, "2001:4860::8888", 53, "all6");
	expect_match(p, NULL, "::ffff:8.8.8.8", 53, "all4");
	policy_free(p);
}

/* A rule in IPv4-mapped form (::ffff:a.b.c.d, prefix /96 or longer) is the
 * IPv4 address or network: it matches a.b.c.d whichever family the program
 * connects with, and reads back as IPv4. */
static void test_v4mapped(void)
{
	static const struct {
		const char *item, *as_understood;
		unsigned prefix;
	} cases[] = {
		{ "[::ffff:127.0.0.1]:8080", "127.0.0.1:8080", 32 },
		{ "[::FFFF:7f00:1]:8080", "127.0.0.1:8080", 32 },
		{ "[::ffff:10.0.0.0]/104:*", "10.0.0.0/8:*", 8 },
		{ "[::ffff:10.1.2.3/112]:5", "10.1.0.0/16:5", 16 },
		{ "[::ffff:0:0]/96:1", "0.0.0.0/0:1", 0 },
		{ "[::ffff:192.0.2.129]/127:2", "192.0.2.128/31:2", 31 },
	};
	char text[128];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(text, sizeof text, "match = %s", cases[i].item);
		struct policy *p = rule(text);
		const struct policy_match *m = p ? &p->rules[0].matches[0] : NULL;

		ok(m && m->family == AF_INET && m->prefix == cases[i].prefix, "%s is IPv4 /%u", cases[i].item,
		   cases[i].prefix);
		ok(m && strcmp(mstr(m), cases[i].as_understood) == 0, "%s reads back as %s", cases[i].item,
		   cases[i].as_understood);
		policy_free(p);
	}

	struct policy *p = parse("[one]\nmatch = [::ffff:127.0.0.1]:8080\n"
				 "[net]\nmatch = [::ffff:10.0.0.0]/104:*\n"
				 "[short]\nmatch = [::ffff:0:0]/95:9\n"
				 "[v6]\nmatch = [::1]:*\n");
	ok(p && p->n_rules == 4, "IPv4-mapped policy parsed");
	if (!p)
		return;
	expect_match(p, NULL, "127.0.0.1", 8080, "one");
	expect_match(p, NULL, "::ffff:127.0.0.1", 8080, "one");
	expect_match(p, NULL, "127.0.0.1", 8081, "-");
	expect_match(p, NULL, "127.0.0.2", 8080, "-");
	expect_match(p, NULL, "10.200.0.1", 1, "net");
	expect_match(p, NULL, "::ffff:10.200.0.1", 1, "net");
	expect_match(p, NULL, "11.0.0.1", 1, "-");
	/* Shorter than /96 it is an IPv6 network that merely contains the
	 * mapped block: left as written. */
	ok(p->rules[2].matches[0].family == AF_INET6 && p->rules[2].matches[0].prefix == 95,
	   "[::ffff:0:0]/95 stays IPv6");
	expect_match(p, NULL, "::ffff:1.2.3.4", 9, "short");
	expect_match(p, NULL, "::1", 5, "v6");
	expect_match(p, NULL, "::7f00:1", 8080, "-");
	policy_free(p);
}

static void test_name_matches(void)
{
	struct policy_match m = { .kind = POLICY_HOST_NAME, .name = "example.com" };
	ok(policy_name_matches(&m, "example.com"), "name: exact");
	ok(policy_name_matches(&m, "EXAMPLE.com."), "name: case and trailing dot");
	ok(!policy_name_matches(&m, "example.com.."), "name: two trailing dots");
	ok(!policy_name_matches(&m, "www.example.com"), "name: subdomain does not match");
	ok(!policy_name_matches(&m, "example.co"), "name: prefix does not match");
	ok(!policy_name_matches(&m, ""), "name: empty");
	ok(!policy_name_matches(&m, NULL), "name: NULL");
	struct policy_match w = { .kind = POLICY_HOST_WILDCARD, .name = ".example.com" };
	ok(policy_name_matches(&w, "a.example.com"), "wildcard: one level");
	ok(policy_name_matches(&w, "A.B.EXAMPLE.COM."), "wildcard: deeper, case, dot");
	ok(!policy_name_matches(&w, "example.com"), "wildcard: not the base name");
	ok(!policy_name_matches(&w, "example.com."), "wildcard: not the base name with dot");
	ok(!policy_name_matches(&w, "aexample.com"), "wildcard: label boundary");
	ok(!policy_name_matches(&w, "a.example.com.x"), "wildcard: suffix must be at the end");
	struct policy_match any = { .kind = POLICY_HOST_ANY };
	ok(policy_name_matches(&any, "whatever"), "any: matches a name");
	struct policy_match c = { .kind = POLICY_HOST_CIDR, .family = AF_INET, .prefix = 8 };
	ok(!policy_name_matches(&c, "10.0.0.1"), "cidr: names never match");
	ok(!policy_name_matches(NULL, "x"), "NULL match entry");
}

static void test_names_and_strings(void)
{
	ok(strcmp(policy_action_name(POLICY_TLS), "tls") == 0 &&
	   strcmp(policy_action_name(POLICY_PLAIN), "plain") == 0 &&
	   strcmp(policy_action_name(POLICY_DENY), "deny") == 0 &&
	   strcmp(policy_action_name((enum policy_action)42), "?") == 0, "policy_action_name");
	ok(strcmp(policy_level_name(POLICY_LEVEL_ERROR), "error") == 0 &&
	   strcmp(policy_level_name(POLICY_LEVEL_WARNING), "warning") == 0 &&
	   strcmp(policy_level_name(POLICY_LEVEL_INFO), "info") == 0 &&
	   strcmp(policy_level_name(POLICY_LEVEL_DEBUG), "debug") == 0 &&
	   strcmp(policy_level_name((enum policy_log_level)9), "?") == 0, "policy_level_name");
	ok(policy_level_parse("error") == POLICY_LEVEL_ERROR && policy_level_parse("Warning") == POLICY_LEVEL_WARNING &&
	   policy_level_parse("INFO") == POLICY_LEVEL_INFO && policy_level_parse("debug") == POLICY_LEVEL_DEBUG,
	   "policy_level_parse known names");
	ok(policy_level_parse("warn") == -1 && policy_level_parse("") == -1 && policy_level_parse(NULL) == -1 &&
	   policy_level_parse("debugx") == -1, "policy_level_parse unknown names");

	struct policy *p = rule("match = *:*, *.Ex.com:1, a.com:2, 10.1.0.0/16:3, 1.2.3.4:4, [fd00::]/8:5, [::1]:*");
	static const char *const want[] = { "*:*", "*.ex.com:1", "a.com:2", "10.1.0.0/16:3", "1.2.3.4:4",
					    "[fd00::]/8:5", "[::1]:*" };
	for (size_t i = 0; p && i < 7; i++)
		ok(strcmp(mstr(&p->rules[0].matches[i]), want[i]) == 0, "policy_match_str: %s", want[i]);
	char tiny[4];
	if (p)
		policy_match_str(&p->rules[0].matches[2], tiny, sizeof tiny);
	ok(strcmp(tiny, "a.c") == 0, "policy_match_str truncates safely");
	policy_free(p);
}

/* TEXT parses, with exactly N warnings; if N > 0 the first one is at LINE
 * and contains SUB (and SUB2, if not NULL). */
static void warns(const char *text, size_t n, unsigned line, const char *sub, const char *sub2,
		  const char *what)
{
	struct policy *p = parse(text);
	bool good = p && p->n_warnings == n && p->n_warnings_dropped == 0;

	if (good && n > 0)
		good = p->warnings[0].line == line && strstr(p->warnings[0].msg, sub) &&
		       (!sub2 || strstr(p->warnings[0].msg, sub2));
	ok(good, "warnings: %s (%zu warning%s%s%s)", what, p ? p->n_warnings : 0,
	   p && p->n_warnings == 1 ? "" : "s", p && p->n_warnings ? ": " : "",
	   p && p->n_warnings ? p->warnings[0].msg : "");
	if (!good && p && n > 0 && p->n_warnings > 0)
		diag("wanted line %u containing \"%s\", got line %u", line, sub, p->warnings[0].line);
	policy_free(p);
}

static void test_warnings(void)
{
	const char *name_only = "matches by host name only";

	/* Name-only rules. */
	warns("[api]\nmatch = api.example.com:80\nport = 443\n", 1, 1, "rule [api] matches by host name only",
	      "leaves in clear", "a name-only tls rule");
	warns("log = stderr\n\n[web]\nmatch = *.example.com:443\n", 1, 3, name_only, NULL,
	      "a wildcard-only rule, at its header line");
	warns("[old]\nmatch = legacy.example.com:23\naction = deny\n", 1, 1, name_only, "is not denied",
	      "a name-only deny rule");
	good("[api]\nmatch = api.example.com:80\naction = plain\n", "a name-only plain rule");
	warns("[api]\nmatch = api.example.com:80\naction = plain\n", 0, 0, NULL, NULL,
	      "none for a name-only plain rule");
	warns("[api]\nmatch = api.example.com:80, 192.0.2.7:80\n", 0, 0, NULL, NULL,
	      "none for a rule with an address too");
	warns("[api]\nmatch = api.example.com:80\nmatch = *:80\n", 0, 0, NULL, NULL,
	      "none for a rule with * too");
	warns("[api]\nmatch = api.example.com:80\n[default]\nmatch = *:*\naction = deny\n", 0, 0, NULL,
	      NULL, "none with a catch-all deny rule after it");
	warns("[api]\nmatch = a.example.com:80, b.example.com:8080\n[d]\nmatch = *:80\naction = deny\n", 1, 1,
	      name_only, NULL, "a catch-all deny on one of its two ports only");
	warns("[api]\nmatch = a.example.com:80, b.example.com:8080\n[d]\nmatch = *:80, *:8080\naction = deny\n",
	      0, 0, NULL, NULL, "none with catch-all denies on both its ports");
	warns("[api]\nmatch = api.example.com:80\n[rest]\nmatch = *:*\naction = plain\n[default]\nmatch = *:*\n"
	      "action = deny\n", 1, 1, name_only, NULL, "a catch-all plain rule before the deny opens it again");
	warns("[api]\nmatch = api.example.com:80\n[d4]\nmatch = 0.0.0.0/0:*\naction = deny\n", 1, 1, name_only,
	      NULL, "an IPv4-only catch-all leaves IPv6 open");
	warns("[api]\nmatch = api.example.com:80\n[d]\nmatch = 0.0.0.0/0:*, [::]/0:*\naction = deny\n", 0, 0,
	      NULL, NULL, "none with 0.0.0.0/0 and [::]/0 denied");
	warns("[default]\nmatch = *:*\naction = deny\n[api]\nmatch = api.example.com:80\n", 0, 0, NULL,
	      NULL, "none with a catch-all deny before the rule (nothing leaks)");
	warns("[rest]\nmatch = *:*\naction = plain\n[api]\nmatch = api.example.com:80\n[default]\nmatch = *:*\n"
	      "action = deny\n", 1, 4, name_only, NULL, "a catch-all plain rule before the rule and the deny");
	warns("[api]\nmatch = api.example.com:80\n[all]\nmatch = *:*\nserver-name = x.example.com\n", 0, 0,
	      NULL, NULL, "none with a catch-all tls rule after it");

	/* rekey-after below what four KeyUpdates a second keep. */
	warns("[r]\nmatch = 10.0.0.0/8:*\nserver-name = x\n\nrekey-after = 64K\n", 1, 5,
	      "rekey-after = 64K in rule [r]", "more than 256K bytes a second", "rekey-after = 64K, at its line");
	warns("[r]\nmatch = 10.0.0.0/8:*\nrekey-after = 1000\n", 1, 3, "rekey-after = 1000 in rule [r]",
	      "4 KeyUpdates", "rekey-after = 1000");
	warns("[r]\nmatch = 10.0.0.0/8:*\nrekey-after = 32M\n", 0, 0, NULL, NULL, "none for rekey-after = 32M");
	warns("[r]\nmatch = 10.0.0.0/8:*\nrekey-after = 0\n", 0, 0, NULL, NULL, "none for rekey-after = 0");
	warns("[r]\nmatch = 10.0.0.0/8:*\nrekey-after = 64K\naction = plain\n", 0, 0, NULL, NULL,
	      "none for rekey-after on a plain rule");

	/* Both kinds, in line order; a policy full of them is capped. */
	{
		struct policy *p = parse("[a]\nmatch = a.example.com:80\nrekey-after = 1K\n[b]\nmatch = 10.0.0.1:1\n"
					 "rekey-after = 2K\n");
		ok(p && p->n_warnings == 3 && p->warnings[0].line == 1 && p->warnings[1].line == 3 &&
		   p->warnings[2].line == 6, "warnings: in line order (%zu)", p ? p->n_warnings : 0);
		policy_free(p);
	}
	{
		char text[8192];
		size_t len = 0;
		for (int i = 0; i < POLICY_MAX_WARNINGS + 8; i++)
			len += (size_t)snprintf(text + len, sizeof text - len, "[r%d]\nmatch = h%d.example.com:80\n", i, i);
		struct policy *p = parse(text);
		ok(p && p->n_warnings == POLICY_MAX_WARNINGS && p->n_warnings_dropped == 8 &&
		   p->warnings[POLICY_MAX_WARNINGS - 1].line == 2 * POLICY_MAX_WARNINGS - 1,
		   "warnings: at most %d kept, the rest counted (%zu, %zu dropped)", POLICY_MAX_WARNINGS,
		   p ? p->n_warnings : 0, p ? p->n_warnings_dropped : 0);
		policy_free(p);
	}
}

static void test_examples(void)
{
	const char *top = getenv("top_srcdir");
	static const struct {
		const char *file;
		size_t rules;
	} ex[] = {
		{ "basic.policy", 2 },
		{ "mtls.policy", 2 },
		{ "pinning.policy", 2 },
		{ "mixed.policy", 6 },
		{ "advanced.policy", 2 },
		{ "names.policy", 5 },
		{ "inbound.policy", 6 },
		{ "inband.policy", 10 },
	};
	if (!top || !*top)
		top = ".";
	for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
		char path[PATH_MAX];
		size_t len = 0;
		snprintf(path, sizeof path, "%s/policy/%s", top, ex[i].file);
		char *text = unit_read_file(path, &len);
		ok(text != NULL, "read example %s", path);
		if (!text)
			continue;
		struct policy_error e = { 0 };
		struct policy *p = policy_parse(text, len, &e);
		ok(p && p->n_rules == ex[i].rules, "example %s parses: %zu rules%s%s", ex[i].file,
		   p ? p->n_rules : 0, p ? "" : " -- ", p ? "" : e.msg);
		if (p)
			check_roundtrip(p, ex[i].file);
		if (p && strcmp(ex[i].file, "inbound.policy") == 0)
			ok(p->has_inbound && p->n_warnings == 1 && p->warnings[0].line == 57 &&
			   strstr(p->warnings[0].msg, "plaintext = allow"),
			   "example %s: inbound, one warning (plaintext = allow, line %u)", ex[i].file,
			   p->n_warnings ? p->warnings[0].line : 0);
		if (p && strcmp(ex[i].file, "inband.policy") == 0)
			ok(p->n_warnings == 0 && p->rules[0].protocol == POLICY_PROTOCOL_POSTGRES &&
			   p->rules[1].protocol == POLICY_PROTOCOL_TLS && p->rules[1].n_alpn == 1 &&
			   p->rules[6].protocol == POLICY_PROTOCOL_MYSQL && p->rules[7].proxy_host &&
			   !p->rules[7].proxy_credentials && p->rules[8].proxy_credentials &&
			   p->rules[8].protocol == POLICY_PROTOCOL_SMTP,
			   "example %s: every protocol, a proxy with and without credentials, no warning",
			   ex[i].file);
		if (p && strcmp(ex[i].file, "names.policy") == 0)
			ok(p->n_warnings == 0, "example %s: no warning (its catch-all deny covers the name rules)",
			   ex[i].file);
		policy_free(p);
		free(text);
	}
}

static void test_print(void)
{
	struct policy *p = parse(
		"log = file:/tmp/x.log\nlog-level = debug\nsession-cache = 0\n"
		"[full]\nmatch = a.com:1, *.b.com:*, 10.0.0.0/8:2, [fd00::]/8:*\naction = tls\nport = 443\n"
		"server-name = [::1]\nca = /ca.pem\ncert = /c.pem\nkey = /k.pem\n"
		"pin = sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=\nalpn = h2,http/1.1\nresume = off\n"
		"[p]\nmatch = *:*\naction = plain\n[d]\nmatch = x.com:1\naction = deny\n");
	ok(p != NULL, "print policy parsed");
	if (!p)
		return;
	check_roundtrip(p, "a policy using every key");
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	policy_print(p, f);
	fclose(f);
	ok(out && strstr(out, "[full]") && strstr(out, "line 4") && strstr(out, "server-name = ::1") &&
	   strstr(out, "pin = sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=") &&
	   strstr(out, "resume = off") && strstr(out, "log = file:/tmp/x.log") && strstr(out, "action = deny"),
	   "policy_print shows rules, lines, pins, server-name, resume");
	free(out);
	policy_print(NULL, stdout);
	ok(true, "policy_print(NULL) is harmless");
	policy_free(p);

	/* The new keys: non-defaults printed as keys, tls defaults as comments. */
	p = parse("keylog = /tmp/k.log\nlog-format = json\n"
		  "[new]\nmatch = a.com:1\nearly-data = on\nrekey-after = 64K\nocsp = require\n"
		  "groups = x25519,secp256r1\nciphers = chacha20-poly1305,aes-128-gcm\n"
		  "handshake-timeout = 1500ms\ncert = PKCS11:object=c;type=cert\n"
		  "key = pkcs11:object=c;type=private?pin-value=1234\n"
		  "[defaults]\nmatch = b.com:1\n"
		  "[odd]\nmatch = c.com:1\nrekey-after = 1000\nhandshake-timeout = 120\nocsp = off\n"
		  "[big]\nmatch = d.com:1\nrekey-after = 1T\nhandshake-timeout = 600000ms\n"
		  "[sizes]\nmatch = e.com:1\nrekey-after = 3072M\nhandshake-timeout = 61s\n"
		  "[d]\nmatch = f.com:1\naction = deny\nearly-data = yes\nocsp = off\n");
	ok(p != NULL, "policy with the new keys parsed");
	if (!p)
		return;
	check_roundtrip(p, "a policy using the new keys");
	out = NULL;
	f = open_memstream(&out, &len);
	policy_print(p, f);
	fclose(f);
	ok(out && strstr(out, "keylog = /tmp/k.log  # DEBUGGING ONLY") && strstr(out, "log-format = json\n") &&
	   strstr(out, "early-data = on") && strstr(out, "rekey-after = 64KiB") &&
	   strstr(out, "ocsp = require") && strstr(out, "groups = X25519,SECP256R1\n") &&
	   strstr(out, "ciphers = CHACHA20-POLY1305,AES-128-GCM\n") &&
	   strstr(out, "handshake-timeout = 1500ms\n") &&
	   strstr(out, "cert = pkcs11:object=c;type=cert  # PKCS#11 URI") &&
	   strstr(out, "rekey-after = 1000 ") && strstr(out, "handshake-timeout = 2m\n") &&
	   strstr(out, "ocsp = off") && strstr(out, "rekey-after = 1TiB") &&
	   strstr(out, "handshake-timeout = 10m\n") && strstr(out, "rekey-after = 3GiB") &&
	   strstr(out, "handshake-timeout = 61s\n"),
	   "policy_print shows the new keys in canonical form");
	const char *dflt = out ? strstr(out, "[defaults]") : NULL;
	ok(dflt && strstr(dflt, "# early-data: off") && strstr(dflt, "# rekey-after: 0") &&
	   strstr(dflt, "# ocsp: request") && strstr(dflt, "# groups: the GnuTLS defaults") &&
	   strstr(dflt, "# ciphers: the GnuTLS defaults") && strstr(dflt, "# handshake-timeout: 10s"),
	   "policy_print shows the defaults of a tls rule as comments");
	const char *deny = out ? strstr(out, "[d]") : NULL;
	ok(deny && strstr(deny, "early-data = on") && strstr(deny, "ocsp = off") &&
	   !strstr(deny, "# groups"), "a deny rule: set keys printed, no default comments");
	free(out);
	policy_free(p);

	p = parse("");
	out = NULL;
	f = open_memstream(&out, &len);
	policy_print(p, f);
	fclose(f);
	ok(out && strstr(out, "keylog = off\n") && strstr(out, "log-format = text\n"),
	   "policy_print shows keylog = off and log-format = text");
	check_roundtrip(p, "the empty policy");
	free(out);
	policy_free(p);
}

static void test_load(void)
{
	char dir[] = "/tmp/tlsshim-policy-test.XXXXXX";
	char path[PATH_MAX], other[PATH_MAX], err[512], body[3 * PATH_MAX];
	if (!mkdtemp(dir)) {
		ok(false, "mkdtemp");
		return;
	}
	snprintf(path, sizeof path, "%s/policy", dir);

	static const char text[] = "[a]\nmatch = a.example.com:443\n";
	unit_write_file(path, text, sizeof text - 1, 0644);
	struct policy *p = policy_load(path, err, sizeof err);
	ok(p && p->n_rules == 1, "policy_load of a good file%s%s", p ? "" : ": ", p ? "" : err);
	policy_free(p);

	unit_write_file(path, text, sizeof text - 1, 0600);
	p = policy_load(path, err, sizeof err);
	ok(p != NULL, "mode 0600 is fine");
	policy_free(p);

	unit_write_file(path, "[a]\nmatch = a.example.com:443\nprot = 1\n", 37, 0644);
	p = policy_load(path, err, sizeof err);
	snprintf(body, sizeof body, "%s:3: unknown key \"prot\" in rule [a]", path);
	ok(!p && strcmp(err, body) == 0, "parse error formatted PATH:LINE: reason (%s)", err);
	policy_free(p);

	unit_write_file(path, text, sizeof text - 1, 0664);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, "writable by group or others") && strncmp(err, path, strlen(path)) == 0,
	   "group-writable policy refused (%s)", err);
	unit_write_file(path, text, sizeof text - 1, 0646);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, "writable by group or others"), "world-writable policy refused");

	snprintf(other, sizeof other, "%s/link", dir);
	unit_write_file(path, text, sizeof text - 1, 0644);
	ok(symlink(path, other) == 0, "make a symlink to the policy");
	p = policy_load(other, err, sizeof err);
	ok(!p && strstr(err, "symbolic link"), "symlinked policy refused (%s)", err);

	p = policy_load(dir, err, sizeof err);
	ok(!p && strstr(err, "not a regular file"), "a directory is refused (%s)", err);

	snprintf(other, sizeof other, "%s/missing", dir);
	p = policy_load(other, err, sizeof err);
	snprintf(body, sizeof body, "%s: cannot open: No such file or directory", other);
	ok(!p && strcmp(err, body) == 0, "missing policy: %s", err);

	p = policy_load("", err, sizeof err);
	ok(!p, "empty path refused");
	p = policy_load(other, NULL, 0);
	ok(!p, "NULL errbuf is fine");
	p = policy_load(other, err, 5);
	ok(!p && strlen(err) == 4, "short errbuf truncated");

	/* Size limit on disk. */
	size_t mib = 1024 * 1024;
	char *huge = malloc(mib + 1);
	memset(huge, '\n', mib + 1);
	unit_write_file(path, huge, mib + 1, 0644);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, "too large"), "a file over 1 MiB is refused (%s)", err);
	unit_write_file(path, huge, mib, 0644);
	p = policy_load(path, err, sizeof err);
	ok(p != NULL, "a 1 MiB file is accepted");
	policy_free(p);
	free(huge);

	/* Referenced files. */
	char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
	snprintf(ca, sizeof ca, "%s/ca.pem", dir);
	snprintf(cert, sizeof cert, "%s/c.pem", dir);
	snprintf(key, sizeof key, "%s/k.pem", dir);
	unit_write_file(ca, "x", 1, 0644);
	unit_write_file(cert, "x", 1, 0644);
	unit_write_file(key, "x", 1, 0600);
	int n = snprintf(body, sizeof body, "# mtls\n[m]\nmatch = m.example.com:443\nca = %s\ncert = %s\n\nkey = %s\n",
			 ca, cert, key);
	unit_write_file(path, body, (size_t)n, 0644);
	p = policy_load(path, err, sizeof err);
	ok(p && p->rules[0].key && strcmp(p->rules[0].key, key) == 0, "ca/cert/key files present%s%s",
	   p ? "" : ": ", p ? "" : err);
	policy_free(p);

	unlink(key);
	p = policy_load(path, err, sizeof err);
	char want[3 * PATH_MAX];
	snprintf(want, sizeof want, "%s:7: cannot read key file %s: No such file or directory", path, key);
	ok(!p && strcmp(err, want) == 0, "missing key file reported at its line: %s", err);

	unit_write_file(key, "x", 1, 0620);
	p = policy_load(path, err, sizeof err);
	snprintf(want, sizeof want, "%s:7: key file %s is writable by group or others (mode 0620)", path, key);
	ok(!p && strcmp(err, want) == 0, "group-writable key file refused: %s", err);
	unit_write_file(key, "x", 1, 0600);

	chmod(ca, 0666);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, ":4: ca file") && strstr(err, "writable"), "world-writable ca refused: %s", err);
	chmod(ca, 0644);

	unlink(cert);
	mkdir(cert, 0755);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, ":5: cert file") && strstr(err, "not a regular file"), "cert is a directory: %s", err);
	rmdir(cert);
	unit_write_file(cert, "x", 1, 0644);

	/* A symlinked key is followed, and the target checked. */
	char target[PATH_MAX];
	snprintf(target, sizeof target, "%s/real-key.pem", dir);
	unit_write_file(target, "x", 1, 0600);
	unlink(key);
	ok(symlink(target, key) == 0, "make a symlinked key file");
	p = policy_load(path, err, sizeof err);
	ok(p != NULL, "a symlinked key file is followed%s%s", p ? "" : ": ", p ? "" : err);
	policy_free(p);
	chmod(target, 0666);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, "writable"), "... and its target checked: %s", err);
	unlink(target);
	unlink(key);

	/* PKCS#11 URIs are not files: no file checks for them. */
	n = snprintf(body, sizeof body, "[m]\nmatch = m.example.com:443\nca = %s\n"
		     "cert = pkcs11:token=tlsshim;object=client;type=cert\n"
		     "key = pkcs11:token=tlsshim;object=client;type=private?pin-value=1234\n", ca);
	unit_write_file(path, body, (size_t)n, 0644);
	p = policy_load(path, err, sizeof err);
	ok(p && policy_is_pkcs11(p->rules[0].cert) && policy_is_pkcs11(p->rules[0].key),
	   "PKCS#11 cert and key: no file checks%s%s", p ? "" : ": ", p ? "" : err);
	policy_free(p);
	n = snprintf(body, sizeof body, "[m]\nmatch = m.example.com:443\ncert = %s/missing.crt\n"
		     "key = pkcs11:object=client;type=private\n", dir);
	unit_write_file(path, body, (size_t)n, 0644);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, ":3: cannot read cert file") && strstr(err, "missing.crt"),
	   "a file cert next to a URI key is still checked: %s", err);
	n = snprintf(body, sizeof body, "[m]\nmatch = m.example.com:443\ncert = pkcs11:object=client\n"
		     "key = %s/missing.key\n", dir);
	unit_write_file(path, body, (size_t)n, 0644);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, ":4: cannot read key file") && strstr(err, "missing.key"),
	   "a file key next to a URI cert is still checked: %s", err);

	/* keylog: absent (directory must exist) or a private regular file. */
	char keylog[PATH_MAX], kdir[PATH_MAX];
	snprintf(keylog, sizeof keylog, "%s/keys.log", dir);
	n = snprintf(body, sizeof body, "log-format = json\nkeylog = %s\n[a]\nmatch = a.example.com:443\n",
		     keylog);
	unit_write_file(path, body, (size_t)n, 0644);
	p = policy_load(path, err, sizeof err);
	ok(p && p->keylog_path && strcmp(p->keylog_path, keylog) == 0 && p->log_format == POLICY_FORMAT_JSON,
	   "keylog file absent, directory present: fine%s%s", p ? "" : ": ", p ? "" : err);
	policy_free(p);
	unit_write_file(keylog, "", 0, 0600);
	p = policy_load(path, err, sizeof err);
	ok(p != NULL, "keylog file present, mode 0600: fine%s%s", p ? "" : ": ", p ? "" : err);
	policy_free(p);
	chmod(keylog, 0640);
	p = policy_load(path, err, sizeof err);
	snprintf(want, sizeof want, "%s:2: keylog file %s is accessible by group or others (mode 0640;", path,
		 keylog);
	ok(!p && strncmp(err, want, strlen(want)) == 0, "group-readable keylog refused: %s", err);
	chmod(keylog, 0604);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, "accessible by group or others (mode 0604"), "world-readable keylog refused: %s", err);
	chmod(keylog, 0602);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, ":2: keylog file") && strstr(err, "writable by group or others"),
	   "world-writable keylog refused: %s", err);
	chmod(keylog, 0600);
	snprintf(target, sizeof target, "%s/real-keys.log", dir);
	unit_write_file(target, "", 0, 0600);
	unlink(keylog);
	ok(symlink(target, keylog) == 0, "make a symlinked keylog file");
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, ":2: keylog file") && strstr(err, "symbolic link"), "symlinked keylog refused: %s", err);
	unlink(keylog);
	unlink(target);
	mkdir(keylog, 0700);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, "not a regular file"), "keylog is a directory: %s", err);
	rmdir(keylog);

	snprintf(kdir, sizeof kdir, "%s/nodir", dir);
	snprintf(keylog, sizeof keylog, "%s/nodir/keys.log", dir);
	n = snprintf(body, sizeof body, "\n\n\nkeylog = %s\n", keylog);
	unit_write_file(path, body, (size_t)n, 0644);
	p = policy_load(path, err, sizeof err);
	snprintf(want, sizeof want, "%s:4: keylog file %s: cannot use its directory %s: No such file or directory",
		 path, keylog, kdir);
	ok(!p && strcmp(err, want) == 0, "keylog in a missing directory refused: %s", err);
	unit_write_file(kdir, "x", 1, 0600);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, ":4: cannot check keylog file") && strstr(err, "Not a directory"),
	   "keylog under a regular file refused: %s", err);
	unlink(kdir);
	n = snprintf(body, sizeof body, "keylog = /keys.log\n");
	unit_write_file(path, body, (size_t)n, 0644);
	p = policy_load(path, err, sizeof err);
	ok(p || strstr(err, "keylog file /keys.log") != NULL, "keylog in / (the directory exists)%s%s",
	   p ? "" : ": ", p ? "" : err);
	policy_free(p);

	/* Back to the mutual-TLS policy. */
	n = snprintf(body, sizeof body, "# mtls\n[m]\nmatch = m.example.com:443\nca = %s\ncert = %s\n\nkey = %s\n",
		     ca, cert, key);
	unit_write_file(path, body, (size_t)n, 0644);

	if (geteuid() == 0) {
		unit_write_file(key, "x", 1, 0600);
		if (chown(key, 4242, 4242) == 0) {
			p = policy_load(path, err, sizeof err);
			ok(!p && strstr(err, "owned by uid 4242"), "key owned by another user refused: %s", err);
			policy_free(p);
		}
		char klog[PATH_MAX];
		snprintf(klog, sizeof klog, "%s/keys.log", dir);
		unit_write_file(klog, "", 0, 0600);
		n = snprintf(body, sizeof body, "keylog = %s\n", klog);
		unit_write_file(path, body, (size_t)n, 0644);
		if (chown(klog, 4242, 4242) == 0) {
			p = policy_load(path, err, sizeof err);
			ok(!p && strstr(err, ":1: keylog file") && strstr(err, "owned by uid 4242"),
			   "keylog owned by another user refused: %s", err);
			policy_free(p);
		}
		unlink(klog);
		unit_write_file(path, text, sizeof text - 1, 0644);
		if (chown(path, 4242, 0) == 0) {
			p = policy_load(path, err, sizeof err);
			ok(!p && strstr(err, "owned by uid 4242"), "policy owned by another user refused: %s", err);
			policy_free(p);
		}
	} else {
		skip("ownership checks need root");
		skip("ownership checks need root");
		skip("ownership checks need root");
	}

	/* policy_find */
	char buf[PATH_MAX];
	const char *r;
	char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("TLSSHIM_POLICY", "/some/where/policy", 1);
	r = policy_find(buf, sizeof buf);
	ok(r == buf && strcmp(buf, "/some/where/policy") == 0, "policy_find: $TLSSHIM_POLICY first");
	errno = 0;
	r = policy_find(buf, 5);
	ok(r == NULL && errno == ENAMETOOLONG, "policy_find: buffer too small -> ENAMETOOLONG");
	setenv("TLSSHIM_POLICY", "", 1);
	setenv("HOME", dir, 1);
	char cfg[PATH_MAX];
	snprintf(cfg, sizeof cfg, "%s/.config", dir);
	mkdir(cfg, 0700);
	snprintf(cfg, sizeof cfg, "%s/.config/tlsshim", dir);
	mkdir(cfg, 0700);
	snprintf(cfg, sizeof cfg, "%s/.config/tlsshim/policy", dir);
	unit_write_file(cfg, text, sizeof text - 1, 0644);
	r = policy_find(buf, sizeof buf);
	ok(r && strcmp(r, cfg) == 0, "policy_find: empty TLSSHIM_POLICY ignored, ~/.config/tlsshim/policy found");
	unlink(cfg);
	unsetenv("TLSSHIM_POLICY");
	errno = 12345;
	r = policy_find(buf, sizeof buf);
	ok((r == NULL && errno == 0) || (r && strcmp(r, SYSCONFDIR "/tlsshim/policy") == 0),
	   "policy_find: else " SYSCONFDIR "/tlsshim/policy or nothing (%s)", r ? r : "none");
	unsetenv("HOME");
	r = policy_find(buf, sizeof buf);
	ok(r == NULL || strcmp(r, SYSCONFDIR "/tlsshim/policy") == 0, "policy_find without HOME");
	if (old_home)
		setenv("HOME", old_home, 1);
	free(old_home);
	rmdir(cfg);
	snprintf(cfg, sizeof cfg, "%s/.config/tlsshim", dir);
	rmdir(cfg);
	snprintf(cfg, sizeof cfg, "%s/.config", dir);
	rmdir(cfg);

	unlink(ca);
	unlink(cert);
	unlink(key);
	unlink(path);
	snprintf(other, sizeof other, "%s/link", dir);
	unlink(other);
	ok(rmdir(dir) == 0, "temporary directory cleaned up");
}

/* Random inputs: never crash, never leak (run under valgrind/ASan). */
/* ------------------------------------------------------------ inbound */

/* Which rule policy_match_listen finds for the local address IP:PORT; "-"
 * for none. */
static const char *which_listen(const struct policy *p, const char *ip, uint16_t port)
{
	uint8_t a[16];
	int fam = AF_INET;
	const struct policy_rule *r;
	if (inet_pton(AF_INET, ip, a) != 1) {
		fam = AF_INET6;
		if (inet_pton(AF_INET6, ip, a) != 1)
			return "bad test address";
	}
	r = policy_match_listen(p, fam, a, port);
	return r ? r->name : "-";
}

static void expect_listen(const struct policy *p, const char *ip, uint16_t port, const char *want)
{
	const char *got = which_listen(p, ip, port);
	ok(strcmp(got, want) == 0, "local %s port %u -> [%s] (got [%s])", ip, port, want, got);
}

#define SRV "cert = /s.pem\nkey = /s-key.pem\n"

static void test_inbound_keys(void)
{
	/* The issue's four-line example. */
	struct policy *p = parse("[legacy-web]\n"
				 "listen = 0.0.0.0:8080, [::]:8080        # the program's own listening address(es)\n"
				 "cert = /etc/tlsshim/web.pem             # server certificate chain\n"
				 "key = /etc/tlsshim/web-key.pem          # its key\n");
	ok(p && p->has_inbound && p->n_rules == 1, "the issue's example parses, has_inbound set");
	if (p) {
		const struct policy_rule *r = &p->rules[0];
		ok(r->inbound && r->n_listens == 2 && r->n_matches == 0, "a listen rule is inbound, no matches");
		ok(r->listens[0].kind == POLICY_HOST_CIDR && r->listens[0].family == AF_INET &&
		   r->listens[0].prefix == 0 && r->listens[0].port == 8080, "0.0.0.0 is stored as 0.0.0.0/0");
		ok(r->listens[1].kind == POLICY_HOST_CIDR && r->listens[1].family == AF_INET6 &&
		   r->listens[1].prefix == 0 && r->listens[1].port == 8080, "[::] is stored as [::]/0");
		ok(r->action == POLICY_TLS && strcmp(r->cert, "/etc/tlsshim/web.pem") == 0 &&
		   strcmp(r->key, "/etc/tlsshim/web-key.pem") == 0 && r->cert_line == 3 && r->key_line == 4,
		   "cert and key stored with their lines");
		ok(!r->client_ca && !r->client_ca_system && !r->n_allow_clients &&
		   r->plaintext == POLICY_PLAINTEXT_REFUSE && !r->alpn_required && r->session_tickets &&
		   !r->ocsp_staple && r->handshake_timeout_ms == POLICY_HANDSHAKE_TIMEOUT_MS,
		   "inbound defaults: no client-ca, plaintext refuse, tickets on, 10s");
		ok(p->n_warnings == 0, "no warning for the plain example");
	}
	policy_free(p);

	p = parse("[out]\nmatch = *:443\n");
	ok(p && !p->has_inbound && !p->rules[0].inbound, "an outbound-only policy has no inbound rule");
	policy_free(p);

	p = rule("listen = 10.1.2.3:1, 10.0.0.0/8:*, [fd00::1]:2, [fd00::]/8:3, *:*, [::ffff:10.9.9.9]:4, "
		 "0.0.0.0/0:5\n"
		 "listen = 192.168.1.1:6\n" SRV
		 "client-ca = /ca.pem\n"
		 "allow-client = uri:spiffe://prod.example/ns/billing/*, DNS:*.Svc.Example.COM., cn:Billing Svc\n"
		 "allow-client = uri:spiffe://prod.example/ns/**, Uri:urn:example:x, dns:host.example\n"
		 "plaintext = REFUSE\nalpn = h2, http/1.1\nalpn-required = yes\nsession-tickets = off\n"
		 "ocsp-staple = /ocsp.der\nhandshake-timeout = 2s\ngroups = x25519\nciphers = aes-256-gcm\n"
		 "rekey-after = 1G\naction = tls");
	ok(p != NULL, "an inbound rule with every key parses");
	if (p) {
		const struct policy_rule *r = &p->rules[0];
		ok(r->n_listens == 8, "listen is repeatable: 8 entries (%zu)", r->n_listens);
		ok(strcmp(mstr(&r->listens[0]), "10.1.2.3:1") == 0 && strcmp(mstr(&r->listens[1]), "10.0.0.0/8:*") == 0 &&
		   strcmp(mstr(&r->listens[2]), "[fd00::1]:2") == 0 && strcmp(mstr(&r->listens[3]), "[fd00::]/8:3") == 0 &&
		   r->listens[4].kind == POLICY_HOST_ANY && r->listens[4].port == 0 &&
		   strcmp(mstr(&r->listens[5]), "10.9.9.9:4") == 0 && strcmp(mstr(&r->listens[6]), "0.0.0.0/0:5") == 0 &&
		   strcmp(mstr(&r->listens[7]), "192.168.1.1:6") == 0,
		   "listen entries: addresses, prefixes, *, mapped v6 as v4");
		ok(r->client_ca && strcmp(r->client_ca, "/ca.pem") == 0 && !r->client_ca_system && r->client_ca_line == 6,
		   "client-ca = PATH");
		ok(r->n_allow_clients == 6 && r->allow_clients[0].kind == POLICY_CLIENT_URI &&
		   strcmp(r->allow_clients[0].pattern, "spiffe://prod.example/ns/billing/*") == 0 &&
		   r->allow_clients[1].kind == POLICY_CLIENT_DNS &&
		   strcmp(r->allow_clients[1].pattern, "*.svc.example.com") == 0 &&
		   r->allow_clients[2].kind == POLICY_CLIENT_CN &&
		   strcmp(r->allow_clients[2].pattern, "Billing Svc") == 0 &&
		   strcmp(r->allow_clients[3].pattern, "spiffe://prod.example/ns/**") == 0 &&
		   r->allow_clients[4].kind == POLICY_CLIENT_URI && strcmp(r->allow_clients[4].pattern, "urn:example:x") == 0 &&
		   strcmp(r->allow_clients[5].pattern, "host.example") == 0,
		   "allow-client: prefixes any case, dns lower-cased without the trailing dot, cn exact, repeatable");
		ok(r->plaintext == POLICY_PLAINTEXT_REFUSE && r->n_alpn == 2 && strcmp(r->alpn[0], "h2") == 0 &&
		   r->alpn_required && !r->session_tickets && strcmp(r->ocsp_staple, "/ocsp.der") == 0 &&
		   r->ocsp_staple_line == 13 && r->handshake_timeout_ms == 2000 && r->n_groups == 1 &&
		   r->n_ciphers == 1 && r->rekey_after == ((uint64_t)1 << 30),
		   "plaintext, alpn (server order), alpn-required, session-tickets, ocsp-staple, timeout, groups, "
		   "ciphers, rekey-after");
		check_roundtrip(p, "an inbound rule with every key");
	}
	policy_free(p);

	p = rule("listen = *:443\n" SRV "client-ca = system\nallow-client = cn:x\nplaintext = allow\n"
		 "session-tickets = yes\nalpn = h2\nalpn-required = no\n");
	ok(p && p->rules[0].client_ca_system && !p->rules[0].client_ca && p->rules[0].client_ca_line == 5 &&
	   p->rules[0].plaintext == POLICY_PLAINTEXT_ALLOW && p->rules[0].session_tickets &&
	   !p->rules[0].alpn_required, "client-ca = system, plaintext = allow, alpn-required = no");
	if (p)
		check_roundtrip(p, "client-ca = system, plaintext = allow");
	policy_free(p);

	/* cert and key: pkcs11 URIs too; not needed for plain and deny. */
	p = rule("listen = *:1\ncert = PKCS11:object=s;type=cert\nkey = pkcs11:object=s;type=private\n");
	ok(p && strcmp(p->rules[0].cert, "pkcs11:object=s;type=cert") == 0, "inbound cert/key as pkcs11: URIs");
	policy_free(p);
	p = parse("[p]\nlisten = 127.0.0.1:*\naction = plain\n[d]\nlisten = *:*\naction = deny\n");
	ok(p && p->has_inbound && p->rules[0].action == POLICY_PLAIN && p->rules[1].action == POLICY_DENY,
	   "inbound plain and deny rules need no cert");
	if (p)
		check_roundtrip(p, "inbound plain and deny rules");
	policy_free(p);

	/* Both kinds in one policy. */
	p = parse("[up]\nmatch = api.example.com:443\n[in]\nlisten = *:8080\n" SRV "[rest]\nmatch = *:*\naction = plain\n");
	ok(p && p->n_rules == 3 && !p->rules[0].inbound && p->rules[1].inbound && !p->rules[2].inbound &&
	   p->has_inbound, "one policy holds outbound and inbound rules");
	if (p)
		check_roundtrip(p, "a mixed policy");
	policy_free(p);
}

static void test_inbound_errors(void)
{
	/* listen entries. */
	bad_rule("listen = localhost:8080", "a host name: listen is matched against the socket's local address");
	bad_rule("listen = *.example.com:8080", "a host name");
	bad_rule("listen = web.internal:*", "a host name");
	bad_rule("listen = 10.0.0.1", "missing port");
	bad_rule("listen = 10.0.0.1:0", "bad port");
	bad_rule("listen = 10.0.0.1:65536", "bad port");
	bad_rule("listen = 10.0.0.1:x", "bad port");
	bad_rule("listen = 10.0.0.0/33:1", "prefix longer than the address");
	bad_rule("listen = [fd00::]/129:1", "prefix longer than the address");
	bad_rule("listen = ::1:80", "must be in brackets");
	bad_rule("listen = [::1:80", "missing \"]\"");
	bad_rule("listen = [zz::1]:80", "bad IPv6 address");
	bad_rule("listen = 1.2.3.4:80,", "empty entry");
	bad_rule("listen = 300.1.2.3:80", "bad listen \"300.1.2.3:80\"");
	bad_rule("listen = :80", "missing host");
	/* listen and match together; neither. */
	bad("[r]\nmatch = *:1\nlisten = *:1\n" SRV, 3, "both \"match\" (line 2) and \"listen\" (line 3)");
	bad("[r]\nlisten = *:1\n" SRV "match = *:1\n", 5, "a rule is outbound (match) or inbound (listen)");
	bad("[r]\n" SRV, 1, "rule [r] has no \"match\" (outbound) or \"listen\" (inbound)");
	/* cert and key. */
	bad("[web]\nlisten = *:1\n", 1, "inbound rule [web] needs \"cert\" and \"key\"");
	bad("[a]\nlisten = *:1\naction = tls\n", 1, "needs \"cert\" and \"key\"");
	bad("[a]\nlisten = *:1\ncert = /c.pem\n", 3, "\"cert\" without \"key\"");
	bad("[a]\nlisten = *:1\nkey = /k.pem\n", 3, "\"key\" without \"cert\"");
	bad("[a]\nlisten = *:1\ncert = c.pem\nkey = /k\n", 3, "must be an absolute path or a PKCS#11 URI");
	/* client-ca, allow-client. */
	bad_rule("client-ca = ca.pem", "must be \"system\" or an absolute path");
	bad("[a]\nlisten = *:1\n" SRV "client-ca = /a\nclient-ca = /b\n", 6, "duplicate key \"client-ca\"");
	bad("[a]\nlisten = *:1\n" SRV "allow-client = cn:x\n", 5, "\"allow-client\" without \"client-ca\"");
	bad_rule("allow-client = spiffe://x/y", "expected uri:PATTERN, dns:PATTERN or cn:NAME");
	bad_rule("allow-client = ip:10.0.0.1", "expected uri:PATTERN, dns:PATTERN or cn:NAME");
	bad_rule("allow-client = uri:", "empty pattern");
	bad_rule("allow-client = dns:", "empty pattern");
	bad_rule("allow-client = cn:", "empty pattern");
	bad_rule("allow-client = cn:a,,cn:b", "empty entry");
	bad_rule("allow-client = cn:a,", "empty entry");
	bad_rule("allow-client = dns:a.*.example.com", "\"*\" is only allowed as a leading \"*.\"");
	bad_rule("allow-client = dns:*", "\"*\" is only allowed as a leading \"*.\"");
	bad_rule("allow-client = dns:*.", "empty name after \"*.\"");
	bad_rule("allow-client = dns:*x.example.com", "\"*\" is only allowed as a leading \"*.\"");
	bad_rule("allow-client = dns:bad_name!.com", "bad character in name");
	bad_rule("allow-client = uri:no-scheme", "not a URI");
	bad_rule("allow-client = uri:/just/a/path", "not a URI");
	bad_rule("allow-client = uri:spiffe://td/ns/bill*", "must be a whole path segment");
	bad_rule("allow-client = uri:spiffe://td/*x/y", "must be a whole path segment");
	bad_rule("allow-client = uri:spiffe://td/***", "must be a whole path segment");
	bad_rule("allow-client = uri:spiffe://td/**/x", "\"**\" is only allowed as the last segment");
	bad_rule("allow-client = uri:spiffe://*.td/x", "only allowed in the path");
	bad_rule("allow-client = uri:urn:*", "only allowed in the path");
	bad_rule("allow-client = uri:spiffe://td/a b", "no spaces or control characters");
	/* plaintext, alpn-required, session-tickets, ocsp-staple values. */
	bad_rule("plaintext = yes", "expected refuse or allow");
	bad_rule("alpn-required = maybe", "expected yes or no");
	bad_rule("session-tickets = sometimes", "expected on or off");
	bad_rule("ocsp-staple = ocsp.der", "must be an absolute path");
	bad("[a]\nlisten = *:1\n" SRV "alpn-required = yes\n", 5, "\"alpn-required = yes\" without \"alpn\"");
	/* Outbound keys on an inbound rule, at their own line. */
	bad("[a]\nlisten = *:1\n" SRV "early-data = on\n", 5,
	    "\"early-data\" in inbound rule [a]: not allowed on inbound rules: no anti-replay");
	bad("[a]\nearly-data = off\nlisten = *:1\n" SRV, 2, "not allowed on inbound rules: no anti-replay");
	bad("[a]\nlisten = *:1\n" SRV "ca = /ca.pem\n", 5, "\"ca\" in inbound rule [a]: it verifies servers: use \"client-ca\"");
	bad("[a]\nlisten = *:1\n" SRV "port = 443\n", 5, "\"port\" in inbound rule [a]");
	bad("[a]\nlisten = *:1\n" SRV "server-name = x.com\n", 5, "\"server-name\" in inbound rule [a]");
	bad("[a]\nlisten = *:1\n" SRV "pin = sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=\n", 5,
	    "\"pin\" in inbound rule [a]");
	bad("[a]\nlisten = *:1\n" SRV "resume = off\n", 5, "use \"session-tickets = on|off\"");
	bad("[a]\nlisten = *:1\n" SRV "ocsp = require\n", 5, "use \"ocsp-staple = PATH\"");
	/* The first wrong key by line is named, even on a plain rule. */
	bad("[a]\nlisten = *:1\naction = plain\nresume = on\nca = /x\n", 4, "\"resume\" in inbound rule [a]");
	/* Inbound keys on an outbound rule. */
	bad("[o]\nmatch = *:1\nclient-ca = /ca.pem\n", 3, "\"client-ca\" in outbound rule [o]: only for inbound rules");
	bad("[o]\nmatch = *:1\nallow-client = cn:x\n", 3, "\"allow-client\" in outbound rule [o]");
	bad("[o]\nmatch = *:1\nplaintext = allow\n", 3, "\"plaintext\" in outbound rule [o]");
	bad("[o]\nmatch = *:1\nalpn = h2\nalpn-required = yes\n", 4, "\"alpn-required\" in outbound rule [o]");
	bad("[o]\nmatch = *:1\nsession-tickets = on\n", 3, "use \"resume = on|off\"");
	bad("[o]\nmatch = *:1\nocsp-staple = /o.der\n", 3, "use \"ocsp\"");
	/* Outside a rule. */
	bad("listen = *:1\n", 1, "key \"listen\" outside a rule");
	/* An error in the rule before another rule: found at the next header. */
	bad("[a]\nlisten = *:1\n[b]\nmatch = *:1\n", 1, "inbound rule [a] needs");
}

static void test_inbound_warnings(void)
{
	warns("[a]\nlisten = *:1\n" SRV "plaintext = allow\n", 1, 5, "plaintext = allow in rule [a] is a migration mode",
	      "served in clear", "plaintext = allow");
	warns("[a]\nlisten = *:1\n" SRV "client-ca = system\n", 1, 5, "client-ca = system without allow-client",
	      "any public CA", "client-ca = system alone");
	warns("[a]\nlisten = *:1\n" SRV "client-ca = system\nallow-client = dns:x.example\n", 0, 0, NULL, NULL,
	      "client-ca = system with allow-client");
	warns("[a]\nlisten = *:1\naction = plain\nplaintext = allow\n", 0, 0, NULL, NULL,
	      "plaintext = allow on a plain rule");
	warns("[a]\nlisten = *:1\naction = deny\n", 0, 0, NULL, NULL, "an inbound deny rule is not name-only");
}

static void test_listen_matching(void)
{
	struct policy *p = parse("[one]\nlisten = 127.0.0.1:8080\n" SRV
				 "[net]\nlisten = 10.0.0.0/8:*\n" SRV
				 "[v6]\nlisten = [fd00::]/8:9000, [::1]:9000\n" SRV
				 "[any4]\nlisten = 0.0.0.0:7000\n" SRV
				 "[any6]\nlisten = [::]:7001\n" SRV
				 "[star]\nlisten = *:6000\naction = plain\n"
				 "[mapped]\nlisten = [::ffff:192.0.2.1]:5000\naction = deny\n"
				 "[out]\nmatch = *:*\n");
	ok(p != NULL, "listen matching policy parses");
	if (!p)
		return;
	expect_listen(p, "127.0.0.1", 8080, "one");
	expect_listen(p, "127.0.0.1", 8081, "-");
	expect_listen(p, "127.0.0.2", 8080, "-");
	expect_listen(p, "::ffff:127.0.0.1", 8080, "one");
	expect_listen(p, "10.200.3.4", 1, "net");
	expect_listen(p, "10.200.3.4", 65535, "net");
	expect_listen(p, "::ffff:10.1.1.1", 22, "net");
	expect_listen(p, "11.0.0.1", 22, "-");
	expect_listen(p, "fd12::5", 9000, "v6");
	expect_listen(p, "::1", 9000, "v6");
	expect_listen(p, "fd12::5", 9001, "-");
	expect_listen(p, "fe80::1", 9000, "-");
	expect_listen(p, "192.0.2.77", 7000, "any4");
	expect_listen(p, "::ffff:192.0.2.77", 7000, "any4");
	expect_listen(p, "2001:db8::1", 7000, "-");
	expect_listen(p, "2001:db8::1", 7001, "any6");
	expect_listen(p, "::ffff:192.0.2.77", 7001, "any6");
	expect_listen(p, "192.0.2.77", 7001, "-");
	expect_listen(p, "192.0.2.77", 6000, "star");
	expect_listen(p, "2001:db8::1", 6000, "star");
	expect_listen(p, "192.0.2.1", 5000, "mapped");
	expect_listen(p, "::ffff:192.0.2.1", 5000, "mapped");
	/* Outbound and inbound rules never match the other direction. */
	ok(strcmp(which(p, NULL, "127.0.0.1", 8080), "out") == 0, "policy_match skips inbound rules");
	ok(policy_match_listen(p, AF_INET, NULL, 1) == NULL, "policy_match_listen with no address: NULL");
	ok(policy_match_listen(NULL, AF_INET, (const uint8_t *)"\x7f\0\0\1", 8080) == NULL,
	   "policy_match_listen(NULL policy): NULL");
	policy_free(p);

	/* First inbound rule wins; an outbound rule in between changes nothing. */
	p = parse("[a]\nlisten = *:*\naction = plain\n[o]\nmatch = *:*\n[b]\nlisten = 127.0.0.1:80\n" SRV);
	ok(p != NULL, "first-wins policy parses");
	if (p)
		expect_listen(p, "127.0.0.1", 80, "a");
	policy_free(p);

	p = parse("[o]\nmatch = *:*\n");
	ok(p && policy_match_listen(p, AF_INET, (const uint8_t *)"\x7f\0\0\1", 80) == NULL,
	   "no inbound rule: policy_match_listen NULL");
	policy_free(p);
}

static void test_inbound_print(void)
{
	struct policy *p = parse("[web]\nlisten = 0.0.0.0:8080, [::]:8080, 10.0.0.0/8:*, *:*\n" SRV
				 "client-ca = /ca.pem\nallow-client = uri:spiffe://td/ns/*, dns:*.x.example, cn:Ops\n"
				 "plaintext = allow\nalpn = h2,http/1.1\nalpn-required = yes\nsession-tickets = off\n"
				 "ocsp-staple = /o.der\n"
				 "[dflt]\nlisten = 127.0.0.1:1\n" SRV);
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	ok(p != NULL, "inbound print policy parses");
	if (!p)
		return;
	f = open_memstream(&out, &len);
	policy_print(p, f);
	fclose(f);
	ok(out && strstr(out, "[web]  # line 1, rule 1, inbound\n") &&
	   strstr(out, "listen = 0.0.0.0:8080  # any local IPv4 address\n") &&
	   strstr(out, "listen = [::]:8080  # any local IPv6 address") &&
	   strstr(out, "listen = 10.0.0.0/8:*  # any port\n") &&
	   strstr(out, "listen = *:*  # any local address, IPv4 and IPv6, any port\n") &&
	   strstr(out, "cert = /s.pem") && strstr(out, "key = /s-key.pem") &&
	   strstr(out, "client-ca = /ca.pem  # mTLS") &&
	   strstr(out, "allow-client = uri:spiffe://td/ns/*,dns:*.x.example,cn:Ops\n") &&
	   strstr(out, "plaintext = allow  # MIGRATION MODE") && strstr(out, "alpn = h2,http/1.1\n") &&
	   strstr(out, "alpn-required = yes") && strstr(out, "session-tickets = off") &&
	   strstr(out, "ocsp-staple = /o.der"),
	   "policy_print shows an inbound rule's listen entries and keys");
	const char *d = out ? strstr(out, "[dflt]") : NULL;
	ok(d && strstr(d, "# client-ca: none") && strstr(d, "plaintext = refuse") &&
	   strstr(d, "session-tickets = on") && strstr(d, "# alpn: none") && strstr(d, "# ocsp-staple: none") &&
	   strstr(d, "# handshake-timeout: 10s") && !strstr(d, "ca = system") && !strstr(d, "resume") &&
	   !strstr(d, "early-data") && !strstr(d, "# ocsp:"),
	   "an inbound rule's defaults; no outbound-only key printed");
	check_roundtrip(p, "inbound rules");
	free(out);
	policy_free(p);
}

static void test_inbound_load(void)
{
	char dir[] = "/tmp/tlsshim-inbound-test.XXXXXX";
	char path[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX], ocsp[PATH_MAX];
	char body[6 * PATH_MAX], err[3 * PATH_MAX], want[3 * PATH_MAX];
	struct policy *p;
	int n;

	if (!mkdtemp(dir)) {
		ok(false, "mkdtemp");
		return;
	}
	snprintf(path, sizeof path, "%s/policy", dir);
	snprintf(cert, sizeof cert, "%s/s.pem", dir);
	snprintf(key, sizeof key, "%s/s-key.pem", dir);
	snprintf(ca, sizeof ca, "%s/ca.pem", dir);
	snprintf(ocsp, sizeof ocsp, "%s/o.der", dir);
	unit_write_file(cert, "x", 1, 0644);
	unit_write_file(key, "x", 1, 0600);
	unit_write_file(ca, "x", 1, 0644);
	unit_write_file(ocsp, "x", 1, 0644);
	n = snprintf(body, sizeof body,
		     "[web]\nlisten = *:8443\ncert = %s\nkey = %s\nclient-ca = %s\nocsp-staple = %s\n",
		     cert, key, ca, ocsp);
	unit_write_file(path, body, (size_t)n, 0644);
	p = policy_load(path, err, sizeof err);
	ok(p && p->has_inbound, "inbound policy with its files loads%s%s", p ? "" : ": ", p ? "" : err);
	policy_free(p);

	chmod(key, 0640);
	p = policy_load(path, err, sizeof err);
	snprintf(want, sizeof want, "%s:4: key file %s is accessible by group or others (mode 0640;", path, key);
	ok(!p && strncmp(err, want, strlen(want)) == 0, "inbound key readable by group refused: %s", err);
	chmod(key, 0604);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, "accessible by group or others (mode 0604"), "inbound key readable by others refused");
	chmod(key, 0600);

	unlink(ca);
	p = policy_load(path, err, sizeof err);
	snprintf(want, sizeof want, "%s:5: cannot read client-ca file %s: No such file or directory", path, ca);
	ok(!p && strcmp(err, want) == 0, "missing client-ca at its line: %s", err);
	unit_write_file(ca, "x", 1, 0666);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, ":5: client-ca file") && strstr(err, "writable by group or others"),
	   "world-writable client-ca refused: %s", err);
	chmod(ca, 0644);

	unlink(ocsp);
	mkdir(ocsp, 0755);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, ":6: ocsp-staple file") && strstr(err, "not a regular file"),
	   "ocsp-staple is a directory: %s", err);
	rmdir(ocsp);
	unit_write_file(ocsp, "x", 1, 0644);

	unlink(cert);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, ":3: cannot read cert file"), "missing server cert at its line: %s", err);
	unit_write_file(cert, "x", 1, 0644);

	/* pkcs11: URIs are not files; client-ca = system is not a file. */
	n = snprintf(body, sizeof body,
		     "[web]\nlisten = *:8443\ncert = pkcs11:object=nope;type=cert\n"
		     "key = pkcs11:object=nope;type=private\nclient-ca = system\nallow-client = cn:x\n");
	unit_write_file(path, body, (size_t)n, 0644);
	p = policy_load(path, err, sizeof err);
	ok(p != NULL, "inbound pkcs11 cert/key and client-ca = system: no file checked%s%s", p ? "" : ": ",
	   p ? "" : err);
	policy_free(p);

	/* Parse errors of inbound rules carry the file and line. */
	n = snprintf(body, sizeof body, "[web]\nlisten = *:8443\ncert = %s\nkey = %s\nearly-data = on\n", cert, key);
	unit_write_file(path, body, (size_t)n, 0644);
	p = policy_load(path, err, sizeof err);
	snprintf(want, sizeof want, "%s:5: \"early-data\" in inbound rule [web]: not allowed on inbound rules", path);
	ok(!p && strncmp(err, want, strlen(want)) == 0, "early-data inbound: %s", err);

	unlink(path);
	unlink(cert);
	unlink(key);
	unlink(ca);
	unlink(ocsp);
	rmdir(dir);
}

/* ------------------------------------------------- in-band and proxy keys */

static void expect_proxy(const char *value, const char *host, uint16_t port)
{
	char body[512];
	snprintf(body, sizeof body, "match = *:1\nproxy = %s", value);
	struct policy *p = rule(body);
	ok(p && p->rules[0].proxy_host && strcmp(p->rules[0].proxy_host, host) == 0 &&
	   p->rules[0].proxy_port == port && p->rules[0].proxy_line == 3,
	   "proxy = %s -> host %s port %u (got %s %u)", value, host, port,
	   p && p->rules[0].proxy_host ? p->rules[0].proxy_host : "(none)", p ? p->rules[0].proxy_port : 0);
	policy_free(p);
}

static void test_inband_keys(void)
{
	static const struct {
		const char *value;
		enum policy_protocol want;
	} protos[] = {
		{ "tls", POLICY_PROTOCOL_TLS }, { "postgres", POLICY_PROTOCOL_POSTGRES },
		{ "smtp", POLICY_PROTOCOL_SMTP }, { "imap", POLICY_PROTOCOL_IMAP },
		{ "pop3", POLICY_PROTOCOL_POP3 }, { "ldap", POLICY_PROTOCOL_LDAP },
		{ "mysql", POLICY_PROTOCOL_MYSQL }, { "SMTP", POLICY_PROTOCOL_SMTP },
		{ "MySQL", POLICY_PROTOCOL_MYSQL },
	};
	char body[256];

	/* Defaults: TLS from the first byte, no proxy. */
	struct policy *p = rule("match = *:1");
	ok(p && p->rules[0].protocol == POLICY_PROTOCOL_TLS && p->rules[0].protocol_line == 0 &&
	   !p->rules[0].proxy_host && p->rules[0].proxy_port == 0 && !p->rules[0].proxy_credentials &&
	   !p->rules[0].proxy_auth, "defaults: protocol tls, no proxy, no credentials");
	policy_free(p);

	for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++) {
		snprintf(body, sizeof body, "match = *:1\nprotocol = %s", protos[i].value);
		p = rule(body);
		ok(p && p->rules[0].protocol == protos[i].want && p->rules[0].protocol_line == 3,
		   "protocol = %s (line 3)", protos[i].value);
		policy_free(p);
	}
	ok(strcmp(policy_protocol_name(POLICY_PROTOCOL_POSTGRES), "postgres") == 0 &&
	   strcmp(policy_protocol_name(POLICY_PROTOCOL_TLS), "tls") == 0 &&
	   strcmp(policy_protocol_name(POLICY_PROTOCOL_MYSQL), "mysql") == 0 &&
	   strcmp(policy_protocol_name((enum policy_protocol)99), "?") == 0, "policy_protocol_name");

	/* proxy: a name (lower case, trailing dot dropped), IPv4, [IPv6]. */
	expect_proxy("http://proxy.example.com:3128", "proxy.example.com", 3128);
	expect_proxy("HTTP://Proxy.Example.COM.:8080", "proxy.example.com", 8080);
	expect_proxy("http://10.0.0.1:3128", "10.0.0.1", 3128);
	expect_proxy("http://[::1]:3128", "::1", 3128);
	expect_proxy("http://[FD00:0::1]:1", "fd00::1", 1);
	expect_proxy("http://proxy:65535/", "proxy", 65535);
	expect_proxy("http://a-b_c.internal:80", "a-b_c.internal", 80);

	/* Credentials, with protocol and proxy together. */
	p = rule("match = db.example.com:5432\nprotocol = postgres\nproxy = http://p:3128\n"
		 "proxy-credentials = /etc/tlsshim/proxy.cred");
	ok(p && p->rules[0].protocol == POLICY_PROTOCOL_POSTGRES && p->rules[0].proxy_credentials &&
	   strcmp(p->rules[0].proxy_credentials, "/etc/tlsshim/proxy.cred") == 0 &&
	   p->rules[0].proxy_credentials_line == 5 && !p->rules[0].proxy_auth,
	   "proxy-credentials: the path and its line; the pure parser reads nothing");
	policy_free(p);

	/* A plain or deny rule may say protocol = tls (the default). */
	good("[r]\nmatch = *:1\naction = plain\nprotocol = tls\n", "protocol = tls on a plain rule");
	good("[r]\nmatch = *:1\naction = deny\nprotocol = tls\n", "protocol = tls on a deny rule");
	/* early-data stays allowed without protocol or proxy. */
	good("[r]\nmatch = *:1\nprotocol = tls\nearly-data = on\n", "early-data with protocol = tls");
	good("[r]\nmatch = *:1\nprotocol = smtp\nearly-data = off\n", "early-data = off with protocol = smtp");
}

static void test_inband_errors(void)
{
	/* protocol values. */
	bad_rule("protocol = starttls", "bad protocol \"starttls\" in rule [r]: expected tls, postgres, smtp, imap, pop3, ldap or mysql");
	bad_rule("protocol = pgsql", "expected tls, postgres");
	bad_rule("protocol = smtps", "expected tls, postgres");
	bad("[r]\nmatch = *:1\nprotocol = smtp\nprotocol = imap\n", 4, "duplicate key \"protocol\" in rule [r] (first at line 3)");
	bad("protocol = smtp\n", 1, "key \"protocol\" outside a rule");
	/* proxy URLs. */
	bad_rule("proxy = https://p:3128", "an https:// proxy is not supported: write http://HOST:PORT");
	bad_rule("proxy = socks5://p:1080", "expected http://HOST:PORT");
	bad_rule("proxy = p:3128", "expected http://HOST:PORT");
	bad_rule("proxy = http:/p:3128", "expected http://HOST:PORT");
	bad_rule("proxy = http://p", "missing port: write http://HOST:PORT");
	bad_rule("proxy = http://p:", "bad port");
	bad_rule("proxy = http://[::1]", "missing port");
	bad_rule("proxy = http://p:0", "bad port (1-65535)");
	bad_rule("proxy = http://p:65536", "bad port (1-65535)");
	bad_rule("proxy = http://p:3128x", "bad port");
	bad_rule("proxy = http://p:3128/x", "no path, query or fragment");
	bad_rule("proxy = http://p:3128//", "no path, query or fragment");
	bad_rule("proxy = http://p:3128?a=b", "no path, query or fragment");
	bad_rule("proxy = http://p:3128#x", "no path, query or fragment");
	bad_rule("proxy = http://:3128", "missing host");
	bad_rule("proxy = http://", "missing host");
	bad_rule("proxy = http://[]:3128", "missing host");
	bad_rule("proxy = http://::1:3128", "an IPv6 address must be in brackets");
	bad_rule("proxy = http://[::1:3128", "missing \"]\"");
	bad_rule("proxy = http://[zz::1]:3128", "bad IPv6 address");
	bad_rule("proxy = http://[::1]x:3128", "unexpected text after \"]\"");
	bad_rule("proxy = http://bad!host:3128", "bad character in name");
	bad_rule("proxy = http://*.example.com:3128", "\"*\" is only allowed as a leading");
	bad_rule("proxy = http://300.1.2.3:3128", "the last label is numeric");
	bad("[r]\nmatch = *:1\nproxy = http://a:1\nproxy = http://b:1\n", 4, "duplicate key \"proxy\"");
	/* Credentials in the URL: refused, and the password is not echoed. */
	{
		struct policy_error e;
		static const char t[] = "[r]\nmatch = *:1\nproxy = http://alice:s3cret@p:3128\n";
		struct policy *p = policy_parse(t, sizeof t - 1, &e);
		ok(!p && e.line == 3 && strstr(e.msg, "use proxy-credentials = PATH") && !strstr(e.msg, "s3cret") &&
		   !strstr(e.msg, "alice"), "user:pass@ in the proxy URL: use proxy-credentials, not echoed (%s)", e.msg);
		policy_free(p);
	}
	bad_rule("proxy = http://p:3128/@x", "use proxy-credentials");
	/* proxy-credentials. */
	bad_rule("proxy-credentials = proxy.cred", "bad proxy-credentials \"proxy.cred\" in rule [r]: must be an absolute path");
	bad("[r]\nmatch = *:1\nproxy-credentials = /c\n", 3, "\"proxy-credentials\" without \"proxy\" in rule [r]");
	bad("[r]\nmatch = *:1\nproxy = http://p:1\nproxy-credentials = /c\nproxy-credentials = /d\n", 5,
	    "duplicate key \"proxy-credentials\"");
	/* Outbound only: on a listen rule, at the key's line. */
	bad("[a]\nlisten = *:1\n" SRV "protocol = smtp\n", 5, "\"protocol\" in inbound rule [a]: only for outbound rules");
	bad("[a]\nlisten = *:1\n" SRV "proxy = http://p:1\n", 5, "\"proxy\" in inbound rule [a]: only for outbound rules");
	bad("[a]\nlisten = *:1\n" SRV "proxy-credentials = /c\n", 5,
	    "\"proxy-credentials\" in inbound rule [a]: only for outbound rules");
	bad("[a]\nprotocol = tls\nlisten = *:1\n" SRV, 2, "\"protocol\" in inbound rule [a]");
	/* Only with action = tls. */
	bad("[r]\nmatch = *:1\nprotocol = smtp\naction = plain\n", 3,
	    "protocol = smtp in rule [r] with action = plain: the in-band exchange is how TLS starts");
	bad("[r]\nmatch = *:1\naction = deny\nprotocol = mysql\n", 4, "protocol = mysql in rule [r] with action = deny");
	bad("[r]\nmatch = *:1\nproxy = http://p:1\naction = plain\n", 3,
	    "\"proxy\" in rule [r] with action = plain: only action = tls rules go through the proxy");
	bad("[r]\nmatch = *:1\naction = deny\nproxy = http://p:1\nproxy-credentials = /c\n", 4,
	    "\"proxy\" in rule [r] with action = deny");
	/* No 0-RTT before an in-band exchange or a tunnel. */
	bad("[r]\nmatch = *:1\nearly-data = on\nprotocol = postgres\n", 3,
	    "early-data = on with protocol = postgres (line 4) in rule [r]: no 0-RTT: the in-band exchange comes before TLS");
	bad("[r]\nmatch = *:1\nprotocol = smtp\nearly-data = yes\n", 4, "no 0-RTT: the in-band exchange");
	bad("[r]\nmatch = *:1\nproxy = http://p:1\nearly-data = on\n", 4,
	    "early-data = on with proxy (line 3) in rule [r]: no 0-RTT: the proxy tunnel comes before TLS");
	/* The error of a rule is found when the next one starts. */
	bad("[a]\nmatch = *:1\nprotocol = ldap\naction = plain\n[b]\nmatch = *:2\n", 3, "with action = plain");
}

static void test_inband_print(void)
{
	struct policy *p = parse("[mail]\nmatch = mail.example.com:25\nprotocol = smtp\n"
				 "proxy = http://[fd00::1]:3128\nproxy-credentials = /etc/tlsshim/proxy.cred\n"
				 "[db]\nmatch = 10.0.0.5:3306\nserver-name = db.internal\nprotocol = MYSQL\n"
				 "proxy = http://Proxy.Internal:8080/\n"
				 "[web]\nmatch = *:443\n"
				 "[open]\nmatch = *:*\naction = plain\nprotocol = tls\n");
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	ok(p != NULL, "in-band print policy parses");
	if (!p)
		return;
	p->rules[0].proxy_auth = strdup("alice:s3cret");  /* as policy_load would */
	f = open_memstream(&out, &len);
	policy_print(p, f);
	fclose(f);
	const char *mail = out ? strstr(out, "[mail]") : NULL, *db = out ? strstr(out, "[db]") : NULL;
	const char *web = out ? strstr(out, "[web]") : NULL, *open = out ? strstr(out, "[open]") : NULL;
	ok(mail && strstr(mail, "protocol = smtp  # the server's 220, EHLO, STARTTLS (RFC 3207), then TLS\n") &&
	   strstr(mail, "proxy = http://[fd00::1]:3128  # CONNECT through it") &&
	   strstr(mail, "proxy-credentials = /etc/tlsshim/proxy.cred  # Proxy-Authorization: Basic, "
		  "credentials from /etc/tlsshim/proxy.cred (not shown)\n"),
	   "policy_print: protocol, an IPv6 proxy, the credentials' file");
	ok(out && !strstr(out, "s3cret") && !strstr(out, "alice"), "policy_print never shows the credentials");
	ok(db && strstr(db, "protocol = mysql  #") && strstr(db, "proxy = http://proxy.internal:8080  #"),
	   "policy_print: mysql, a proxy by name (normalized)");
	ok(web && strstr(web, "# protocol: tls (TLS from the first byte)\n") && !strstr(web, "proxy") ,
	   "policy_print: a tls rule's default protocol as a comment, no proxy");
	ok(open && !strstr(open, "protocol"), "policy_print: no protocol line on a plain rule");
	check_roundtrip(p, "in-band and proxy rules");
	free(out);
	policy_free(p);
}

/* GOT must be WANT. */
static void is_str(const char *got, const char *want, const char *what)
{
	ok(strcmp(got, want) == 0, "%s%s%s", what, *got ? ": " : "", got);
	if (strcmp(got, want) != 0)
		diag("wanted \"%s\"", want);
}

/* Write a proxy-credentials file CRED (TEXT, MODE) and load POLICY; the
 * error, or "" when it loads with AUTH (NULL: any) as the credentials. */
static const char *load_cred(const char *policy, const char *cred, const char *text, size_t len, mode_t mode,
			     const char *auth, char *err, size_t errlen)
{
	unit_write_file(cred, text, len, mode);
	struct policy *p = policy_load(policy, err, errlen);
	if (p) {
		const char *got = p->rules[0].proxy_auth;
		snprintf(err, errlen, "%s", got && (!auth || strcmp(got, auth) == 0) ? "" : "(wrong credentials)");
	}
	policy_free(p);
	return err;
}

static void test_inband_load(void)
{
	char dir[] = "/tmp/tlsshim-inband-test.XXXXXX";
	char path[PATH_MAX], cred[PATH_MAX], body[2 * PATH_MAX], err[3 * PATH_MAX], want[3 * PATH_MAX];
	char long_line[300];
	int n;

	if (!mkdtemp(dir)) {
		ok(false, "mkdtemp");
		return;
	}
	snprintf(path, sizeof path, "%s/policy", dir);
	snprintf(cred, sizeof cred, "%s/proxy.cred", dir);
	n = snprintf(body, sizeof body, "[db]\nmatch = db.example.com:5432\nprotocol = postgres\n"
		     "proxy = http://127.0.0.1:3128\nproxy-credentials = %s\n", cred);
	unit_write_file(path, body, (size_t)n, 0644);

#define CRED(text, mode, auth) load_cred(path, cred, text, sizeof text - 1, mode, auth, err, sizeof err)
	is_str(CRED("alice:s3cret\n", 0600, "alice:s3cret"), "", "credentials loaded, newline dropped");
	is_str(CRED("alice:s3cret", 0400, "alice:s3cret"), "", "no newline, mode 0400");
	is_str(CRED("alice:s3cret\r\n", 0600, "alice:s3cret"), "", "CRLF dropped");
	is_str(CRED("alice:pa:ss:word\n", 0600, "alice:pa:ss:word"), "", "':' in the password");
	is_str(CRED("alice:\n", 0600, "alice:"), "", "an empty password");
	memset(long_line, 'a', sizeof long_line);
	long_line[0] = 'u';
	long_line[1] = ':';
	unit_write_file(cred, long_line, 255, 0600);
	struct policy *p = policy_load(path, err, sizeof err);
	ok(p && p->rules[0].proxy_auth && strlen(p->rules[0].proxy_auth) == 255, "255 bytes: accepted%s%s",
	   p ? "" : ": ", p ? "" : err);
	policy_free(p);
	unit_write_file(cred, long_line, 256, 0600);
	p = policy_load(path, err, sizeof err);
	snprintf(want, sizeof want, "%s:5: proxy-credentials file %s is longer than 255 bytes", path, cred);
	ok(!p && strncmp(err, want, strlen(want)) == 0, "256 bytes: refused (%s)", err);
	unit_write_file(cred, long_line, sizeof long_line, 0600);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, "longer than 255 bytes"), "300 bytes: refused");

	/* Content errors: file and policy line, never the content. */
	snprintf(want, sizeof want, "%s:5: proxy-credentials file %s has no \":\"", path, cred);
	ok(strncmp(CRED("alice-s3cret\n", 0600, NULL), want, strlen(want)) == 0 && !strstr(err, "s3cret"),
	   "no ':': %s", err);
	ok(strstr(CRED(":s3cret\n", 0600, NULL), "has an empty user name") && !strstr(err, "s3cret"),
	   "empty user: %s", err);
	ok(strstr(CRED("", 0600, NULL), "is empty (expected one line user:password"), "empty file: %s", err);
	ok(strstr(CRED("\n", 0600, NULL), "is empty"), "just a newline: empty");
	ok(strstr(CRED("alice:s3cret\nbob:x\n", 0600, NULL), "has a control character or more than one line") &&
	   !strstr(err, "s3cret") && !strstr(err, "bob"), "two lines: %s", err);
	ok(strstr(CRED("alice:s3c\tret\n", 0600, NULL), "control character"), "a tab: refused");
	ok(strstr(CRED("alice:s3cret\n\n", 0600, NULL), "control character"), "a blank second line: refused");
	ok(strstr(CRED("alice:s3c\x7fret", 0600, NULL), "control character"), "DEL: refused");

	/* Permissions, as for key files. */
	snprintf(want, sizeof want, "%s:5: proxy-credentials file %s is accessible by group or others (mode 0640; "
		 "it holds the proxy password: chmod 600 it)", path, cred);
	is_str(CRED("alice:s3cret\n", 0640, NULL), want, "group-readable credentials refused");
	ok(strstr(CRED("alice:s3cret\n", 0604, NULL), "accessible by group or others (mode 0604"),
	   "world-readable credentials refused");
	ok(strstr(CRED("alice:s3cret\n", 0620, NULL), "writable by group or others"),
	   "group-writable credentials refused: %s", err);
	unlink(cred);
	p = policy_load(path, err, sizeof err);
	snprintf(want, sizeof want, "%s:5: cannot read proxy-credentials file %s: No such file or directory", path,
		 cred);
	ok(!p && strcmp(err, want) == 0, "missing credentials file: %s", err);
	mkdir(cred, 0700);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, ":5: proxy-credentials file") && strstr(err, "is not a regular file"),
	   "a directory: %s", err);
	rmdir(cred);
	/* A symbolic link is followed and its target checked, as for key files. */
	char target[PATH_MAX];
	snprintf(target, sizeof target, "%s/real.cred", dir);
	unit_write_file(target, "alice:s3cret\n", 13, 0600);
	ok(symlink(target, cred) == 0, "symlink the credentials");
	p = policy_load(path, err, sizeof err);
	ok(p && p->rules[0].proxy_auth && strcmp(p->rules[0].proxy_auth, "alice:s3cret") == 0,
	   "a symbolic link to a 0600 file: its target is read");
	policy_free(p);
	chmod(target, 0644);
	p = policy_load(path, err, sizeof err);
	ok(!p && strstr(err, "accessible by group or others"), "a symbolic link to a 0644 file: refused");
	unlink(cred);
	unlink(target);
#undef CRED

	/* Parse errors carry the file and line. */
	n = snprintf(body, sizeof body, "[db]\nmatch = *:5432\nproxy = http://u:pw@p:1\n");
	unit_write_file(path, body, (size_t)n, 0644);
	p = policy_load(path, err, sizeof err);
	snprintf(want, sizeof want, "%s:3: bad proxy in rule [db]: no user:password in the URL: use proxy-credentials", path);
	ok(!p && strncmp(err, want, strlen(want)) == 0 && !strstr(err, "pw@"), "URL credentials: %s", err);

	unlink(path);
	rmdir(dir);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	return unit_rnd(&rng_state);
}

static void test_fuzz(void)
{
	static const char seed[] =
		"log = syslog\nlog-level = info\nsession-cache = 5\nkeylog = /k.log\nlog-format = json\n"
		"[a]\nmatch = a.com:1, *.b.com:*, 10.0.0.0/8:2, [fd00::]/8:*\nport = 443\n"
		"server-name = [::1]\nca = /ca.pem\ncert = /c.pem\nkey = /k.pem\n"
		"pin = sha256//ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs=\nalpn = h2,http/1.1\nresume = off\n"
		"early-data = on\nrekey-after = 64KiB\nocsp = require\ngroups = X25519,SECP256R1\n"
		"ciphers = AES-128-GCM,AES-128-CCM-8\nhandshake-timeout = 500ms\n"
		"[b]\nmatch = *:*\naction = plain\ncert = pkcs11:object=c\nkey = pkcs11:object=k\n"
		"[c]\nmatch = db.example.com:5432\nprotocol = postgres\nproxy = http://[::1]:3128\n"
		"proxy-credentials = /p.cred\n[d]\nmatch = 10.0.0.9:25\nprotocol = smtp\nproxy = http://p.x:8080/\n";
	static const char alphabet[] = "[]=:,/#*.\n \t\r\0aZ09-_sha/+KMGTiBms";
	size_t accepted = 0, rejected = 0;
	char buf[sizeof seed + 64];
	int roundtrip_bad = 0;
	FILE *null = fopen("/dev/null", "w");
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = sizeof seed - 1;
		memcpy(buf, seed, len);
		int muts = 1 + (int)(rnd() % 4);
		for (int k = 0; k < muts; k++) {
			size_t pos = rnd() % len;
			switch (rnd() % 3) {
			case 0:
				buf[pos] = alphabet[rnd() % (sizeof alphabet - 1)];
				break;
			case 1:
				buf[pos] = (char)(rnd() & 0xff);
				break;
			case 2:
				if (len > 1) {
					memmove(buf + pos, buf + pos + 1, len - pos - 1);
					len--;
				}
				break;
			}
		}
		struct policy_error e;
		struct policy *p = policy_parse(buf, len, &e);
		if (p) {
			accepted++;
			uint8_t a[16] = { 10, 1, 2, 3 };
			const char *names[] = { "x.b.com", "a.com" };
			policy_match(p, names, 2, AF_INET, a, 2);
			policy_match(p, names, 2, AF_INET6, a, 443);
			if (null)
				policy_print(p, null);
			/* Every accepted policy prints back to itself. */
			char *out = NULL;
			size_t outlen = 0;
			FILE *f = open_memstream(&out, &outlen);
			if (f) {
				policy_print(p, f);
				fclose(f);
				struct policy *q = policy_parse(out, outlen, &e);
				if (!q || !same_policy(p, q)) {
					if (roundtrip_bad++ == 0)
						diag("round trip failed for:\n%.*s\n-- printed:\n%s", (int)len,
						     buf, out);
				}
				policy_free(q);
				free(out);
			}
		} else {
			rejected++;
			if (!memchr(e.msg, '\0', sizeof e.msg))
				break;
		}
		policy_free(p);
	}
	/* Pure random bytes too. */
	for (int iter = 0; iter < 2000; iter++) {
		size_t len = rnd() % sizeof buf;
		for (size_t i = 0; i < len; i++)
			buf[i] = (char)(rnd() & 0xff);
		struct policy_error e;
		policy_free(policy_parse(buf, len, &e));
	}
	if (null)
		fclose(null);
	ok(accepted > 0 && rejected > 0, "22000 mutated/random inputs: %zu accepted, %zu rejected, no crash",
	   accepted, rejected);
	ok(roundtrip_bad == 0, "every accepted mutated policy prints back to the same policy (%d did not)",
	   roundtrip_bad);
}

int main(void)
{
	test_defaults();
	test_globals();
	test_syntax();
	test_limits();
	test_hosts_syntax();
	test_rule_keys();
	test_new_globals();
	test_new_rule_keys();
	test_matching();
	test_v4mapped();
	test_name_matches();
	test_names_and_strings();
	test_warnings();
	test_examples();
	test_print();
	test_load();
	test_inbound_keys();
	test_inbound_errors();
	test_inbound_warnings();
	test_listen_matching();
	test_inbound_print();
	test_inbound_load();
	test_inband_keys();
	test_inband_errors();
	test_inband_print();
	test_inband_load();
	test_fuzz();
	return done();
}
