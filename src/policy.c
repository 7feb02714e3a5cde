/* policy.c - the policy file parser and the rule matcher.  Pure: text in,
 * rules out; no I/O, no environment, no global mutable state. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "policy.h"
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_FILE (1024 * 1024)
#define MAX_LINE 4096
#define MAX_RULES 10000
#define MAX_RULE_NAME 64
#define MAX_SESSION_CACHE 100000
#define MAX_DNS_NAME 253

/* ---------------------------------------------------------------- ASCII */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char to_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_caseeq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (to_lower(*a) != to_lower(*b))
			return false;
	return *a == *b;
}

static bool ascii_caseeq_n(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (to_lower(a[i]) != to_lower(b[i]))
			return false;
	return true;
}

/* Trim in place; return the start. */
static char *trim(char *s)
{
	size_t n;

	while (is_space(*s))
		s++;
	n = strlen(s);
	while (n > 0 && is_space(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* A printable, bounded rendering of a user string for error messages. */
static const char *show(const char *s, char *buf, size_t len)
{
	size_t i = 0, j = 0;
	const size_t max = len > 4 ? len - 4 : 0;

	for (; s[i] && j < max; i++, j++) {
		unsigned char c = (unsigned char)s[i];

		buf[j] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (s[i] && len >= 4) {
		memcpy(buf + j, "...", 3);
		j += 3;
	}
	if (len > 0)
		buf[j < len ? j : len - 1] = '\0';
	return buf;
}

/* ------------------------------------------------------------- numbers */

/* Decimal digits only, no sign, value <= MAX. */
static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (!is_digit(*s))
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

/* ----------------------------------------------------------- DNS names */

/* Check a DNS name and write its normalized form (lower-case, one trailing
 * dot stripped) into OUT (at least MAX_DNS_NAME + 1 bytes).  Return NULL on
 * success or a reason. */
static const char *check_dns_name(const char *in, char *out)
{
	size_t n = strlen(in), label = 0;
	bool all_digits = true;
	char c;

	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0)
		return "empty name";
	if (n > MAX_DNS_NAME)
		return "name longer than 253 characters";
	for (size_t i = 0; i < n; i++) {
		c = in[i];
		if (c == '.') {
			if (label == 0)
				return "empty label in name";
			label = 0;
			all_digits = true;
			out[i] = '.';
			continue;
		}
		if (c == '*')
			return "\"*\" is only allowed as a leading \"*.\" (as in *.example.com)";
		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
			return "bad character in name (letters, digits, \"-\", \"_\" and \".\" only)";
		if (!is_digit(c))
			all_digits = false;
		if (++label > 63)
			return "label longer than 63 characters in name";
		out[i] = to_lower(c);
	}
	if (label == 0)
		return "empty label in name";
	if (all_digits)
		return "neither a name nor an IPv4 address (the last label is numeric)";
	out[n] = '\0';
	return NULL;
}

/* -------------------------------------------------------------- base64 */

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decode exactly 32 bytes: 43 base64 characters plus an optional "=". */
static bool decode_pin(const char *s, uint8_t out[POLICY_PIN_LEN])
{
	size_t n = strlen(s), o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;
	int v;

	if (n == 44 && s[43] == '=')
		n = 43;
	if (n != 43)
		return false;
	for (size_t i = 0; i < n; i++) {
		v = b64val(s[i]);
		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* 43 * 6 = 258 bits: 32 bytes and 2 left-over bits, which must be 0. */
	return o == POLICY_PIN_LEN && acc == 0;
}

char *policy_pin_str(const uint8_t pin[POLICY_PIN_LEN], char *buf, size_t len)
{
	char tmp[POLICY_PIN_STRLEN];
	size_t j = 8;

	memcpy(tmp, "sha256//", 8);
	for (size_t i = 0; i < POLICY_PIN_LEN; i += 3) {
		uint32_t v = (uint32_t)pin[i] << 16;
		size_t left = POLICY_PIN_LEN - i;

		if (left > 1)
			v |= (uint32_t)pin[i + 1] << 8;
		if (left > 2)
			v |= pin[i + 2];
		tmp[j++] = b64chars[(v >> 18) & 63];
		tmp[j++] = b64chars[(v >> 12) & 63];
		tmp[j++] = left > 1 ? b64chars[(v >> 6) & 63] : '=';
		tmp[j++] = left > 2 ? b64chars[v & 63] : '=';
	}
	tmp[j] = '\0';
	if (len > 0)
		snprintf(buf, len, "%s", tmp);
	return buf;
}

/* ---------------------------------------------------------- addresses */

static void mask_prefix(uint8_t *addr, size_t alen, unsigned prefix)
{
	for (size_t i = 0; i < alen; i++) {
		unsigned bit = (unsigned)i * 8;

		if (bit >= prefix)
			addr[i] = 0;
		else if (prefix - bit < 8)
			addr[i] &= (uint8_t)(0xffu << (8 - (prefix - bit)));
	}
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rem = bits % 8;
	uint8_t mask;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rem) {
		mask = (uint8_t)(0xffu << (8 - rem));
		return ((a[full] ^ b[full]) & mask) == 0;
	}
	return true;
}

char *policy_match_str(const struct policy_match *m, char *buf, size_t len)
{
	char host[POLICY_MATCH_STRLEN];
	char port[8];

	if (len == 0)
		return buf;
	switch (m->kind) {
	case POLICY_HOST_ANY:
		snprintf(host, sizeof host, "*");
		break;
	case POLICY_HOST_NAME:
		snprintf(host, sizeof host, "%s", m->name ? m->name : "?");
		break;
	case POLICY_HOST_WILDCARD:
		snprintf(host, sizeof host, "*%s", m->name ? m->name : "?");
		break;
	case POLICY_HOST_CIDR: {
		char a[INET6_ADDRSTRLEN] = "?";

		if (m->family == AF_INET) {
			inet_ntop(AF_INET, m->addr, a, sizeof a);
			if (m->prefix < 32)
				snprintf(host, sizeof host, "%s/%u", a, m->prefix);
			else
				snprintf(host, sizeof host, "%s", a);
		} else {
			inet_ntop(AF_INET6, m->addr, a, sizeof a);
			if (m->prefix < 128)
				snprintf(host, sizeof host, "[%s]/%u", a, m->prefix);
			else
				snprintf(host, sizeof host, "[%s]", a);
		}
		break;
	}
	default:
		snprintf(host, sizeof host, "?");
	}
	if (m->port)
		snprintf(port, sizeof port, "%u", (unsigned)m->port);
	else
		snprintf(port, sizeof port, "*");
	snprintf(buf, len, "%s:%s", host, port);
	return buf;
}

/* ------------------------------------------------------------- parser */

enum key_id {
	K_LOG, K_LOG_LEVEL, K_SESSION_CACHE, K_KEYLOG, K_LOG_FORMAT,
	K_MATCH, K_ACTION, K_PORT, K_SERVER_NAME, K_CA, K_CERT, K_KEY, K_PIN,
	K_ALPN, K_RESUME, K_EARLY_DATA, K_REKEY_AFTER, K_OCSP, K_GROUPS, K_CIPHERS,
	K_HANDSHAKE_TIMEOUT,
	K_LISTEN, K_CLIENT_CA, K_ALLOW_CLIENT, K_PLAINTEXT, K_ALPN_REQUIRED,
	K_SESSION_TICKETS, K_OCSP_STAPLE,
	K_PROTOCOL, K_PROXY, K_PROXY_CREDENTIALS,
	K_COUNT
};

/* Which rules a key belongs to. */
enum key_dir { DIR_ANY = 0, DIR_OUT, DIR_IN };

static const struct {
	const char *name;
	bool global;
	bool repeatable;
	enum key_dir dir;
	const char *wrong;       /* why it is refused on a rule of the other direction */
} key_table[K_COUNT] = {
	[K_LOG] = { "log", true, false },
	[K_LOG_LEVEL] = { "log-level", true, false },
	[K_SESSION_CACHE] = { "session-cache", true, false },
	[K_KEYLOG] = { "keylog", true, false },
	[K_LOG_FORMAT] = { "log-format", true, false },
	[K_MATCH] = { "match", false, true, DIR_OUT, NULL },
	[K_ACTION] = { "action", false, false },
	[K_PORT] = { "port", false, false, DIR_OUT,
		     "it is the port to connect to; an inbound rule's port is in \"listen\"" },
	[K_SERVER_NAME] = { "server-name", false, false, DIR_OUT,
			    "it names the server to verify; an inbound rule serves \"cert\"" },
	[K_CA] = { "ca", false, false, DIR_OUT,
		   "it verifies servers: use \"client-ca\" to require and verify client certificates" },
	[K_CERT] = { "cert", false, false },
	[K_KEY] = { "key", false, false },
	[K_PIN] = { "pin", false, true, DIR_OUT,
		    "it pins a server's key: use \"client-ca\" and \"allow-client\" for clients" },
	[K_ALPN] = { "alpn", false, false },
	[K_RESUME] = { "resume", false, false, DIR_OUT,
		       "it is the client session cache: use \"session-tickets = on|off\"" },
	[K_EARLY_DATA] = { "early-data", false, false, DIR_OUT,
			   "not allowed on inbound rules: no anti-replay (a replayed 0-RTT request would reach the program twice)" },
	[K_REKEY_AFTER] = { "rekey-after", false, false },
	[K_OCSP] = { "ocsp", false, false, DIR_OUT,
		     "it checks a server's staple: use \"ocsp-staple = PATH\" to staple a response" },
	[K_GROUPS] = { "groups", false, false },
	[K_CIPHERS] = { "ciphers", false, false },
	[K_HANDSHAKE_TIMEOUT] = { "handshake-timeout", false, false },
	[K_LISTEN] = { "listen", false, true, DIR_IN, NULL },
	[K_CLIENT_CA] = { "client-ca", false, false, DIR_IN,
			  "an outbound rule verifies the server with \"ca\" and presents \"cert\"/\"key\"" },
	[K_ALLOW_CLIENT] = { "allow-client", false, true, DIR_IN,
			     "it checks client certificates; an outbound rule uses \"ca\" and \"pin\"" },
	[K_PLAINTEXT] = { "plaintext", false, false, DIR_IN,
			  "it says what a client that does not start TLS gets" },
	[K_ALPN_REQUIRED] = { "alpn-required", false, false, DIR_IN,
			      "a client offers \"alpn\" and the server picks" },
	[K_SESSION_TICKETS] = { "session-tickets", false, false, DIR_IN,
				"it is the server's tickets: use \"resume = on|off\"" },
	[K_OCSP_STAPLE] = { "ocsp-staple", false, false, DIR_IN,
			    "a server staples, a client checks: use \"ocsp\"" },
	[K_PROTOCOL] = { "protocol", false, false, DIR_OUT,
			 "only for outbound rules: asking for TLS inside the protocol (STARTTLS and "
			 "kin) is the client's side; an inbound rule serves TLS from the first byte" },
	[K_PROXY] = { "proxy", false, false, DIR_OUT,
		      "only for outbound rules: a proxy carries the connections the program makes" },
	[K_PROXY_CREDENTIALS] = { "proxy-credentials", false, false, DIR_OUT,
				  "only for outbound rules: it authenticates to an outbound rule's proxy" },
};

/* Names accepted by "groups" and "ciphers" (the GnuTLS spellings, without
 * GnuTLS's "GROUP-" prefix), in the order the documentation lists them. */
static const char *const known_groups[] = {
	"X25519", "X448", "SECP256R1", "SECP384R1", "SECP521R1",
	"FFDHE2048", "FFDHE3072", "FFDHE4096", "FFDHE6144", "FFDHE8192",
};

static const char *const known_ciphers[] = {
	"AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305", "AES-128-CCM", "AES-128-CCM-8",
};

struct parser {
	struct policy *p;
	struct policy_error *err;
	char *scratch;           /* MAX_LINE + 1 bytes for a list's items (not on the stack) */
	unsigned line;
	size_t cap_rules;
	bool in_rule;            /* the last rule of p->rules is being filled */
	unsigned seen[K_COUNT];  /* line where each key was set in this scope */
};

#define QLEN 72  /* quoted user text in messages */

__attribute__((format(printf, 3, 4)))
static bool fail(struct parser *ps, unsigned line, const char *fmt, ...)
{
	va_list ap;

	ps->err->line = line;
	va_start(ap, fmt);
	vsnprintf(ps->err->msg, sizeof ps->err->msg, fmt, ap);
	va_end(ap);
	return false;
}

static bool oom(struct parser *ps)
{
	return fail(ps, ps->line, "out of memory");
}

static struct policy_rule *cur_rule(struct parser *ps)
{
	return &ps->p->rules[ps->p->n_rules - 1];
}

static bool set_string(struct parser *ps, char **field, const char *value)
{
	char *s = strdup(value);

	if (!s)
		return oom(ps);
	free(*field);
	*field = s;
	return true;
}

static bool bad_value(struct parser *ps, const char *key, const char *value, const char *why)
{
	char q[QLEN];

	if (ps->in_rule)
		return fail(ps, ps->line, "bad %s \"%s\" in rule [%s]: %s", key,
			    show(value, q, sizeof q), cur_rule(ps)->name, why);
	return fail(ps, ps->line, "bad %s \"%s\": %s", key, show(value, q, sizeof q), why);
}

static bool parse_port(const char *s, bool star_ok, uint16_t *out)
{
	unsigned long v;

	if (star_ok && strcmp(s, "*") == 0) {
		*out = 0;
		return true;
	}
	if (!parse_uint(s, 65535, &v) || v == 0)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* Parse a "/N" prefix length (S points after the "/"). */
static const char *parse_prefix(const char *s, unsigned bits, unsigned *out)
{
	unsigned long v;

	if (!parse_uint(s, 999, &v))
		return "bad prefix length";
	if (v > bits)
		return bits == 32 ? "prefix longer than the address (32 bits)"
				  : "prefix longer than the address (128 bits)";
	*out = (unsigned)v;
	return NULL;
}

/* The host of an "[ADDR]:PORT" item S (modified in place) into M; *PORT
 * points at the port text.  Return NULL or a reason. */
static const char *parse_match_v6(char *s, struct policy_match *m, char **port)
{
	char *close = strchr(s, ']'), *addr = s + 1, *rest, *slash, *colon;
	const char *why;

	if (!close)
		return "missing \"]\" after the IPv6 address";
	*close = '\0';
	rest = close + 1;
	slash = strchr(addr, '/');   /* also accept [fd00::/8] */
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET6, addr, m->addr) != 1)
		return "bad IPv6 address";
	m->kind = POLICY_HOST_CIDR;
	m->family = AF_INET6;
	m->prefix = 128;
	colon = strchr(rest, ':');
	if (!colon)
		return "missing port (write [ADDR]:PORT, or [ADDR]:* for any port)";
	*colon = '\0';
	*port = colon + 1;
	if (slash && rest[0] == '/')
		return "two prefix lengths";
	if (slash) {
		if ((why = parse_prefix(slash + 1, 128, &m->prefix)))
			return why;
	} else if (rest[0] == '/') {
		if ((why = parse_prefix(rest + 1, 128, &m->prefix)))
			return why;
	} else if (rest[0] != '\0') {
		return "unexpected text after \"]\"";
	}
	mask_prefix(m->addr, 16, m->prefix);
	/* An IPv4-mapped address (::ffff:a.b.c.d, /96 or longer) is the
	 * IPv4 address: a connection to a.b.c.d must match it too. */
	if (m->prefix >= 96 && addr_is_v4mapped(m->addr)) {
		memmove(m->addr, m->addr + 12, 4);
		memset(m->addr + 4, 0, 12);
		m->family = AF_INET;
		m->prefix -= 96;
	}
	return NULL;
}

/* The name or "*.name" HOST into M.  Return NULL or a reason. */
static const char *parse_match_name(const char *host, struct policy_match *m)
{
	char norm[MAX_DNS_NAME + 2];
	bool wild = host[0] == '*' && host[1] == '.';
	const char *why;

	if (wild && host[2] == '\0')
		return "empty name after \"*.\"";
	if ((why = check_dns_name(wild ? host + 2 : host, norm + 1)))
		return why;
	norm[0] = '.';
	m->kind = wild ? POLICY_HOST_WILDCARD : POLICY_HOST_NAME;
	m->name = strdup(wild ? norm : norm + 1);
	if (!m->name)
		return "out of memory";
	return NULL;
}

/* The host of a "HOST:PORT" item S (modified in place; HOST is "*", an IPv4
 * address or prefix, or a name) into M; *PORT points at the port text.
 * Return NULL or a reason. */
static const char *parse_match_host(char *s, struct policy_match *m, char **port)
{
	char *colon = strrchr(s, ':'), *host = s, *slash;
	const char *why;

	if (!colon)
		return "missing port (write HOST:PORT, or HOST:* for any port)";
	*colon = '\0';
	*port = colon + 1;
	if (strchr(host, ':'))
		return "an IPv6 address must be in brackets, as in [::1]:443";
	if (host[0] == '\0')
		return "missing host (write HOST:PORT, or *:PORT for any host)";
	slash = strchr(host, '/');
	if (strcmp(host, "*") == 0) {
		m->kind = POLICY_HOST_ANY;
	} else if (slash) {
		*slash = '\0';
		if (inet_pton(AF_INET, host, m->addr) != 1)
			return "bad IPv4 address before \"/\"";
		m->kind = POLICY_HOST_CIDR;
		m->family = AF_INET;
		if ((why = parse_prefix(slash + 1, 32, &m->prefix)))
			return why;
		mask_prefix(m->addr, 4, m->prefix);
	} else if (inet_pton(AF_INET, host, m->addr) == 1) {
		m->kind = POLICY_HOST_CIDR;
		m->family = AF_INET;
		m->prefix = 32;
	} else {
		return parse_match_name(host, m);
	}
	return NULL;
}

/* Parse one HOST:PORT item (modified in place).  Return NULL or a reason
 * (M holds nothing to free then). */
static const char *parse_match_item(char *s, struct policy_match *m)
{
	char *port = NULL;
	const char *why;

	memset(m, 0, sizeof *m);
	why = s[0] == '[' ? parse_match_v6(s, m, &port) : parse_match_host(s, m, &port);
	if (why)
		return why;
	if (!parse_port(port, true, &m->port)) {
		free(m->name);
		m->name = NULL;
		return "bad port (1-65535, or * for any port)";
	}
	return NULL;
}

/* Is an entry of the comma-separated list VALUE empty? */
static bool has_empty_entry(const char *value)
{
	bool empty = true;

	for (const char *v = value;; v++) {
		if (*v == ',' || *v == '\0') {
			if (empty)
				return true;
			if (*v == '\0')
				return false;
			empty = true;
		} else if (!is_space(*v)) {
			empty = false;
		}
	}
}

/* Append M to the entries *LIST (*N of them: a rule's matches or
 * listens).  False (M's name freed) when memory is short. */
static bool add_match(struct policy_match **list, size_t *n, struct policy_match *m)
{
	struct policy_match *nm;
	size_t cap;

	/* Capacity doubles (4, 8, 16, ...): a rule may have tens of
	 * thousands of entries, and one realloc each is quadratic. */
	if (*n == 0 || (*n >= 4 && !(*n & (*n - 1)))) {
		cap = *n ? *n * 2 : 4;
		nm = realloc(*list, cap * sizeof *nm);
		if (!nm) {
			free(m->name);
			return false;
		}
		*list = nm;
	}
	(*list)[(*n)++] = *m;
	return true;
}

/* "match = ITEM, ITEM...": VALUE (a line of the parser's, cut up here). */
static bool do_match(struct parser *ps, char *value)
{
	struct policy_rule *r = cur_rule(ps);
	struct policy_match m;
	char *save = NULL, *item;
	const char *why;

	/* Empty items: check the raw text first, strtok would skip them. */
	if (has_empty_entry(value))
		return bad_value(ps, "match", value, "empty entry in the list");
	for (item = strtok_r(value, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		item = trim(item);
		/* The item as written, for a message: parsing cuts it up. */
		snprintf(ps->scratch, MAX_LINE + 1, "%s", item);
		why = parse_match_item(item, &m);
		if (why) {
			if (strcmp(why, "out of memory") == 0)
				return oom(ps);
			return bad_value(ps, "match", ps->scratch, why);
		}
		if (!add_match(&r->matches, &r->n_matches, &m))
			return oom(ps);
	}
	return true;
}

/* "pin = sha256//BASE64, ...": VALUE (a line of the parser's, cut up here). */
static bool do_pin(struct parser *ps, char *value)
{
	struct policy_rule *r = cur_rule(ps);
	uint8_t pin[POLICY_PIN_LEN], (*np)[POLICY_PIN_LEN];
	char *save = NULL;

	if (value[strlen(value) - 1] == ',' || value[0] == ',' || strstr(value, ",,"))
		return bad_value(ps, "pin", value, "empty entry in the list");
	for (char *item = strtok_r(value, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		item = trim(item);
		if (!ascii_caseeq_n(item, "sha256//", 8) || strlen(item) < 8)
			return bad_value(ps, "pin", item, "expected sha256//BASE64 (the base64 of a 32-byte SPKI SHA-256 digest)");
		if (!decode_pin(item + 8, pin))
			return bad_value(ps, "pin", item, "the part after sha256// must be the base64 of exactly 32 bytes");
		np = realloc(r->pins, (r->n_pins + 1) * sizeof *np);
		if (!np)
			return oom(ps);
		r->pins = np;
		memcpy(r->pins[r->n_pins++], pin, POLICY_PIN_LEN);
	}
	return true;
}

/* The item of a comma-separated list that starts at P (ending at *COMMA, a
 * comma or NULL at the end), trimmed, in the parser's scratch buffer. */
static char *list_item(struct parser *ps, const char *p, const char **comma)
{
	size_t n;

	*comma = strchr(p, ',');
	n = *comma ? (size_t)(*comma - p) : strlen(p);
	memcpy(ps->scratch, p, n);
	ps->scratch[n] = '\0';
	return trim(ps->scratch);
}

/* Append a copy of S to the list *LIST (*N items).  False when memory is
 * short. */
static bool add_string(char ***list, size_t *n, const char *s)
{
	char **grown = realloc(*list, (*n + 1) * sizeof *grown);

	if (!grown)
		return false;
	*list = grown;
	if (!((*list)[*n] = strdup(s)))
		return false;
	(*n)++;
	return true;
}

/* Does the host part of the "HOST:PORT" item S (not bracketed) look like a
 * host name (a letter in it: no IPv4 address has one; an unbracketed IPv6
 * address, with a colon, is not a name)? */
static bool host_is_name(const char *s)
{
	const char *colon = strrchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);

	if (memchr(s, ':', n))
		return false;
	for (size_t i = 0; i < n; i++)
		if (is_alpha(s[i]))
			return true;
	return false;
}

/* Parse one listen item S (modified in place): "*", an IPv4 address or
 * prefix, or a bracketed IPv6 one, then ":PORT" or ":*".  A bare 0.0.0.0
 * or [::] becomes a /0 of its family.  Return NULL or a reason (M holds
 * nothing to free then). */
static const char *parse_listen_item(char *s, struct policy_match *m)
{
	static const uint8_t zero[16];
	const char *why;
	unsigned full;

	if (s[0] != '[' && host_is_name(s))
		return "a host name: listen is matched against the socket's local address "
		       "(write an IPv4 address, [IPv6], a CIDR, 0.0.0.0, [::] or *)";
	why = parse_match_item(s, m);
	if (why)
		return why;
	if (m->kind != POLICY_HOST_ANY && m->kind != POLICY_HOST_CIDR) {
		free(m->name);
		m->name = NULL;
		return "expected an IPv4 address, [IPv6], a CIDR, 0.0.0.0, [::] or *";
	}
	full = m->family == AF_INET ? 32 : 128;
	if (m->kind == POLICY_HOST_CIDR && m->prefix == full &&
	    memcmp(m->addr, zero, full / 8) == 0)
		m->prefix = 0;
	return NULL;
}

/* "listen = ITEM, ITEM...": VALUE (a line of the parser's, cut up here). */
static bool do_listen(struct parser *ps, char *value)
{
	struct policy_rule *r = cur_rule(ps);
	struct policy_match m;
	char *save = NULL, *item;
	const char *why;

	if (has_empty_entry(value))
		return bad_value(ps, "listen", value, "empty entry in the list");
	for (item = strtok_r(value, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		item = trim(item);
		snprintf(ps->scratch, MAX_LINE + 1, "%s", item);
		why = parse_listen_item(item, &m);
		if (why) {
			if (strcmp(why, "out of memory") == 0)
				return oom(ps);
			return bad_value(ps, "listen", ps->scratch, why);
		}
		if (!add_match(&r->listens, &r->n_listens, &m))
			return oom(ps);
	}
	r->inbound = true;
	return true;
}

/* Check a "uri:" pattern: SCHEME:REST, printable, no spaces; "*" only as a
 * whole path segment, "**" only as the last one.  NULL or a reason. */
static const char *check_uri_pattern(const char *u)
{
	const char *path, *auth, *seg, *end;
	size_t i = 0, n;

	if (!is_alpha(u[0]))
		return "not a URI (expected SCHEME:..., as in uri:spiffe://trust.domain/path)";
	while (is_alpha(u[i]) || is_digit(u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.')
		i++;
	if (u[i] != ':' || u[i + 1] == '\0')
		return "not a URI (expected SCHEME:..., as in uri:spiffe://trust.domain/path)";
	for (const char *c = u; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			return "a URI has no spaces or control characters (percent-encode them)";
	auth = u + i + 1;
	if (auth[0] == '/' && auth[1] == '/')
		auth += 2;
	path = strchr(auth, '/');
	n = path ? (size_t)(path - u) : strlen(u);
	if (memchr(u, '*', n))
		return "\"*\" is only allowed in the path, as a whole segment (spiffe://td/ns/*)";
	for (seg = path; seg; seg = end) {
		seg++;
		end = strchr(seg, '/');
		n = end ? (size_t)(end - seg) : strlen(seg);
		if (!memchr(seg, '*', n))
			continue;
		if (n == 2 && seg[1] == '*') {
			if (end)
				return "\"**\" is only allowed as the last segment (spiffe://td/ns/**)";
		} else if (n != 1) {
			return "\"*\" must be a whole path segment (/*/ or a last /**)";
		}
	}
	return NULL;
}

/* Parse one allow-client pattern T ("uri:...", "dns:...", "cn:...") into
 * *OUT (pattern allocated).  NULL or a reason. */
static const char *parse_client_pattern(const char *t, struct policy_client_pattern *out)
{
	char norm[MAX_DNS_NAME + 3];
	const char *why, *v;
	bool wild;

	if (ascii_caseeq_n(t, "uri:", 4)) {
		out->kind = POLICY_CLIENT_URI;
		v = t + 4;
	} else if (ascii_caseeq_n(t, "dns:", 4)) {
		out->kind = POLICY_CLIENT_DNS;
		v = t + 4;
	} else if (ascii_caseeq_n(t, "cn:", 3)) {
		out->kind = POLICY_CLIENT_CN;
		v = t + 3;
	} else {
		return "expected uri:PATTERN, dns:PATTERN or cn:NAME";
	}
	if (*v == '\0')
		return "empty pattern after the prefix";
	if (out->kind == POLICY_CLIENT_URI && (why = check_uri_pattern(v)))
		return why;
	if (out->kind == POLICY_CLIENT_DNS) {
		wild = v[0] == '*' && v[1] == '.';
		if (wild && v[2] == '\0')
			return "empty name after \"*.\"";
		if ((why = check_dns_name(wild ? v + 2 : v, norm + 2)))
			return why;
		memcpy(norm, "*.", 2);
		v = wild ? norm : norm + 2;
	}
	if (out->kind == POLICY_CLIENT_CN)
		for (const char *c = v; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
				return "control character in the CN";
	out->pattern = strdup(v);
	return out->pattern ? NULL : "out of memory";
}

/* "allow-client = PATTERN, ...": appended to the rule's patterns. */
static bool do_allow_client(struct parser *ps, char *value)
{
	struct policy_rule *r = cur_rule(ps);
	struct policy_client_pattern pat, *np;
	const char *p = value, *comma, *why;
	char *t;

	for (;;) {
		t = list_item(ps, p, &comma);
		if (*t == '\0')
			return bad_value(ps, "allow-client", value, "empty entry in the list");
		why = parse_client_pattern(t, &pat);
		if (why) {
			if (strcmp(why, "out of memory") == 0)
				return oom(ps);
			return bad_value(ps, "allow-client", t, why);
		}
		np = realloc(r->allow_clients, (r->n_allow_clients + 1) * sizeof *np);
		if (!np) {
			free(pat.pattern);
			return oom(ps);
		}
		r->allow_clients = np;
		r->allow_clients[r->n_allow_clients++] = pat;
		if (!comma)
			break;
		p = comma + 1;
	}
	return true;
}

/* "alpn = NAME, NAME...": printable protocol names of 1 to 255 bytes. */
static bool do_alpn(struct parser *ps, char *value)
{
	struct policy_rule *r = cur_rule(ps);
	const char *p = value, *comma;
	char *t;
	size_t tl;

	for (;;) {
		t = list_item(ps, p, &comma);
		tl = strlen(t);
		if (tl == 0)
			return bad_value(ps, "alpn", value, "empty protocol name in the list");
		if (tl > 255)
			return bad_value(ps, "alpn", t, "a protocol name is at most 255 bytes");
		for (size_t i = 0; i < tl; i++)
			if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
				return bad_value(ps, "alpn", t, "protocol names are printable ASCII without spaces");
		if (!add_string(&r->alpn, &r->n_alpn, t))
			return oom(ps);
		if (!comma)
			break;
		p = comma + 1;
	}
	return true;
}

static bool do_path(struct parser *ps, const char *key, char **field, unsigned *line,
		    const char *value)
{
	if (value[0] != '/')
		return bad_value(ps, key, value,
				 strcmp(key, "ca") == 0
				 ? "must be \"system\" or an absolute path"
				 : "must be an absolute path");
	*line = ps->line;
	return set_string(ps, field, value);
}

bool policy_is_pkcs11(const char *value)
{
	return value && ascii_caseeq_n(value, "pkcs11:", 7);
}

/* cert and key: an absolute path, or a PKCS#11 URI (RFC 7512). */
static bool do_cert_key(struct parser *ps, const char *key, char **field, unsigned *line,
			const char *value)
{
	char *s;

	if (!policy_is_pkcs11(value)) {
		if (value[0] != '/')
			return bad_value(ps, key, value,
					 "must be an absolute path or a PKCS#11 URI (pkcs11:...)");
		return do_path(ps, key, field, line, value);
	}
	for (const char *c = value; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c == 0x7f)
			return bad_value(ps, key, value,
					 "a PKCS#11 URI has no spaces or control characters "
					 "(percent-encode them, as in %20)");
	/* Stored with the scheme in lower case, the spelling every library takes. */
	s = strdup(value);
	if (!s)
		return oom(ps);
	memcpy(s, "pkcs11:", 7);
	free(*field);
	*field = s;
	*line = ps->line;
	return true;
}

/* A comma-separated list of names from KNOWN (N of them), case-insensitive,
 * no duplicates; stored as the canonical (upper-case) spellings, in order. */
static bool do_name_list(struct parser *ps, const char *key, const char *what, char *value,
			 const char *const *known, size_t n_known, char ***out, size_t *n_out)
{
	struct policy_rule *r = cur_rule(ps);
	const char *p = value, *comma;
	char q[40], list[256], *t;
	size_t k, len;

	for (;;) {
		t = list_item(ps, p, &comma);
		if (*t == '\0')
			return bad_value(ps, key, value, "empty entry in the list");
		for (k = 0; k < n_known && !ascii_caseeq(t, known[k]); k++)
			;
		if (k == n_known) {
			len = 0;
			for (size_t i = 0; i < n_known; i++)
				len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
							i ? ", " : "", known[i]);
			return fail(ps, ps->line, "unknown %s \"%s\" in rule [%s] (known: %s)", what,
				    show(t, q, sizeof q), r->name, list);
		}
		for (size_t i = 0; i < *n_out; i++)
			if (strcmp((*out)[i], known[k]) == 0)
				return fail(ps, ps->line, "%s %s listed twice in rule [%s]", what,
					    known[k], r->name);
		if (!add_string(out, n_out, known[k]))
			return oom(ps);
		if (!comma)
			break;
		p = comma + 1;
	}
	return true;
}

/* Skip spaces and tabs. */
static const char *skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Leading decimal digits of S as a number (at most MAX); *END after them. */
static bool parse_leading_uint(const char *s, uint64_t max, uint64_t *out, const char **end)
{
	uint64_t v = 0;

	if (!is_digit(*s))
		return false;
	for (; is_digit(*s); s++) {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return false;
	}
	*out = v;
	*end = s;
	return true;
}

/* A byte count: N, optionally followed by K, M, G or T (powers of 1024,
 * case-insensitive), then optionally "B" or "iB" ("64K", "64KiB", "1M",
 * "4096B"); at most 1T. */
static bool parse_size(const char *s, uint64_t *out)
{
	unsigned shift = 0;
	const char *e;
	uint64_t v;

	if (!parse_leading_uint(s, POLICY_REKEY_AFTER_MAX, &v, &e))
		return false;
	e = skip_blanks(e);
	switch (to_lower(*e)) {
	case 'k': shift = 10; break;
	case 'm': shift = 20; break;
	case 'g': shift = 30; break;
	case 't': shift = 40; break;
	default: break;
	}
	if (shift) {
		e++;
		if (to_lower(e[0]) == 'i' && to_lower(e[1]) == 'b')
			e += 2;
		else if (to_lower(e[0]) == 'b')
			e++;
	} else if (to_lower(e[0]) == 'b') {
		e++;
	}
	if (*e != '\0')
		return false;
	if (v > (POLICY_REKEY_AFTER_MAX >> shift))
		return false;
	*out = v << shift;
	return true;
}

/* A duration: "10s", "500ms", "2m", or a bare number of seconds, within
 * 100ms..10m; result in milliseconds. */
static bool parse_duration(const char *s, unsigned *out_ms)
{
	uint64_t v, ms;
	const char *e;

	if (!parse_leading_uint(s, 1000000000, &v, &e))
		return false;
	e = skip_blanks(e);
	if (*e == '\0' || ascii_caseeq(e, "s"))
		ms = v * 1000;
	else if (ascii_caseeq(e, "ms"))
		ms = v;
	else if (ascii_caseeq(e, "m"))
		ms = v * 60 * 1000;
	else
		return false;
	if (ms < POLICY_HANDSHAKE_TIMEOUT_MIN_MS || ms > POLICY_HANDSHAKE_TIMEOUT_MAX_MS)
		return false;
	*out_ms = (unsigned)ms;
	return true;
}

static bool do_server_name(struct parser *ps, const char *value)
{
	struct policy_rule *r = cur_rule(ps);
	uint8_t a[16];
	char buf[INET6_ADDRSTRLEN + 2], norm[MAX_DNS_NAME + 1];
	size_t n = strlen(value);
	const char *why;

	if (value[0] == '[') {
		if (n < 3 || value[n - 1] != ']' || n - 2 >= sizeof buf)
			return bad_value(ps, "server-name", value, "bad IPv6 address");
		memcpy(buf, value + 1, n - 2);
		buf[n - 2] = '\0';
		if (inet_pton(AF_INET6, buf, a) != 1)
			return bad_value(ps, "server-name", value, "bad IPv6 address");
		inet_ntop(AF_INET6, a, buf, sizeof buf);
		r->server_name_is_ip = true;
		return set_string(ps, &r->server_name, buf);
	}
	if (inet_pton(AF_INET6, value, a) == 1) {
		inet_ntop(AF_INET6, a, buf, sizeof buf);
		r->server_name_is_ip = true;
		return set_string(ps, &r->server_name, buf);
	}
	if (inet_pton(AF_INET, value, a) == 1) {
		inet_ntop(AF_INET, a, buf, sizeof buf);
		r->server_name_is_ip = true;
		return set_string(ps, &r->server_name, buf);
	}
	why = check_dns_name(value, norm);
	if (why)
		return bad_value(ps, "server-name", value, why);
	r->server_name_is_ip = false;
	return set_string(ps, &r->server_name, norm);
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "on", "yes", "true", "1" };
	static const char *const no[] = { "off", "no", "false", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (ascii_caseeq(s, yes[i])) {
			*out = true;
			return true;
		}
		if (ascii_caseeq(s, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* "log = stderr | syslog | file:/PATH". */
static bool do_log(struct parser *ps, char *value)
{
	struct policy *p = ps->p;
	const char *path;

	if (ascii_caseeq(value, "stderr")) {
		p->log_dest = POLICY_LOG_STDERR;
	} else if (ascii_caseeq(value, "syslog")) {
		p->log_dest = POLICY_LOG_SYSLOG;
	} else if (ascii_caseeq_n(value, "file:", 5)) {
		path = trim(value + 5);
		if (path[0] != '/')
			return bad_value(ps, "log", value, "the file must be an absolute path (file:/PATH)");
		if (!set_string(ps, &p->log_path, path))
			return false;
		p->log_dest = POLICY_LOG_FILE;
	} else {
		return bad_value(ps, "log", value, "expected stderr, syslog or file:/PATH");
	}
	return true;
}

/* A global key K (before the first rule) = VALUE. */
static bool do_global_key(struct parser *ps, enum key_id k, char *value)
{
	struct policy *p = ps->p;
	unsigned long v;
	int level;

	switch (k) {
	case K_LOG:
		return do_log(ps, value);
	case K_LOG_LEVEL:
		level = policy_level_parse(value);
		if (level < 0)
			return bad_value(ps, "log-level", value, "expected error, warning, info or debug");
		p->log_level = (enum policy_log_level)level;
		return true;
	case K_SESSION_CACHE:
		if (!parse_uint(value, MAX_SESSION_CACHE, &v))
			return bad_value(ps, "session-cache", value, "expected a number from 0 to 100000");
		p->session_cache = (unsigned)v;
		return true;
	case K_KEYLOG:
		if (ascii_caseeq(value, "off")) {
			free(p->keylog_path);
			p->keylog_path = NULL;
		} else if (value[0] != '/') {
			return bad_value(ps, "keylog", value, "expected off or an absolute path");
		} else if (!set_string(ps, &p->keylog_path, value)) {
			return false;
		}
		p->keylog_line = ps->line;
		return true;
	case K_LOG_FORMAT:
		if (ascii_caseeq(value, "text"))
			p->log_format = POLICY_FORMAT_TEXT;
		else if (ascii_caseeq(value, "json"))
			p->log_format = POLICY_FORMAT_JSON;
		else
			return bad_value(ps, "log-format", value, "expected text or json");
		return true;
	default:
		return fail(ps, ps->line, "internal error");
	}
}

/* "action = tls | plain | deny". */
static bool do_action(struct parser *ps, const char *value)
{
	struct policy_rule *r = cur_rule(ps);

	if (ascii_caseeq(value, "tls"))
		r->action = POLICY_TLS;
	else if (ascii_caseeq(value, "plain"))
		r->action = POLICY_PLAIN;
	else if (ascii_caseeq(value, "deny"))
		r->action = POLICY_DENY;
	else
		return bad_value(ps, "action", value, "expected tls, plain or deny");
	return true;
}

/* "ca = system | /PATH". */
static bool do_ca(struct parser *ps, const char *value)
{
	struct policy_rule *r = cur_rule(ps);

	if (ascii_caseeq(value, "system")) {
		free(r->ca);
		r->ca = NULL;
		r->ca_line = ps->line;
		return true;
	}
	return do_path(ps, "ca", &r->ca, &r->ca_line, value);
}

/* "ocsp = off | request | require". */
static bool do_ocsp(struct parser *ps, const char *value)
{
	struct policy_rule *r = cur_rule(ps);

	if (ascii_caseeq(value, "off"))
		r->ocsp = POLICY_OCSP_OFF;
	else if (ascii_caseeq(value, "request"))
		r->ocsp = POLICY_OCSP_REQUEST;
	else if (ascii_caseeq(value, "require"))
		r->ocsp = POLICY_OCSP_REQUIRE;
	else
		return bad_value(ps, "ocsp", value, "expected off, request or require");
	return true;
}

/* A TLS option K of the current rule (resume, early-data, rekey-after,
 * groups, ciphers, handshake-timeout) = VALUE. */
static bool do_tls_option(struct parser *ps, enum key_id k, char *value)
{
	struct policy_rule *r = cur_rule(ps);

	switch (k) {
	case K_RESUME:
		if (!parse_bool(value, &r->resume))
			return bad_value(ps, "resume", value, "expected on or off (yes/no, true/false, 1/0)");
		return true;
	case K_EARLY_DATA:
		if (!parse_bool(value, &r->early_data))
			return bad_value(ps, "early-data", value,
					 "expected on or off (yes/no, true/false, 1/0)");
		return true;
	case K_REKEY_AFTER:
		if (!parse_size(value, &r->rekey_after))
			return bad_value(ps, "rekey-after", value,
					 "expected a byte count like 0, 64K, 64KiB or 1M (at most 1T; 0 = never)");
		return true;
	case K_GROUPS:
		return do_name_list(ps, "groups", "group", value, known_groups,
				    sizeof known_groups / sizeof known_groups[0], &r->groups, &r->n_groups);
	case K_CIPHERS:
		return do_name_list(ps, "ciphers", "cipher", value, known_ciphers,
				    sizeof known_ciphers / sizeof known_ciphers[0], &r->ciphers, &r->n_ciphers);
	case K_HANDSHAKE_TIMEOUT:
		if (!parse_duration(value, &r->handshake_timeout_ms))
			return bad_value(ps, "handshake-timeout", value,
					 "expected a duration like 10s or 500ms (100ms..10m)");
		return true;
	default:
		return fail(ps, ps->line, "internal error");
	}
}

/* An inbound key K of the current rule (client-ca, allow-client,
 * plaintext, alpn-required, session-tickets, ocsp-staple) = VALUE.  Which
 * rules may carry it is checked when the rule is complete. */
static bool do_inbound_option(struct parser *ps, enum key_id k, char *value)
{
	struct policy_rule *r = cur_rule(ps);

	switch (k) {
	case K_CLIENT_CA:
		if (ascii_caseeq(value, "system")) {
			free(r->client_ca);
			r->client_ca = NULL;
			r->client_ca_system = true;
			r->client_ca_line = ps->line;
			return true;
		}
		if (value[0] != '/')
			return bad_value(ps, "client-ca", value, "must be \"system\" or an absolute path");
		return do_path(ps, "client-ca", &r->client_ca, &r->client_ca_line, value);
	case K_ALLOW_CLIENT:
		return do_allow_client(ps, value);
	case K_PLAINTEXT:
		if (ascii_caseeq(value, "refuse"))
			r->plaintext = POLICY_PLAINTEXT_REFUSE;
		else if (ascii_caseeq(value, "allow"))
			r->plaintext = POLICY_PLAINTEXT_ALLOW;
		else
			return bad_value(ps, "plaintext", value, "expected refuse or allow");
		return true;
	case K_ALPN_REQUIRED:
		if (!parse_bool(value, &r->alpn_required))
			return bad_value(ps, "alpn-required", value, "expected yes or no (on/off, true/false, 1/0)");
		return true;
	case K_SESSION_TICKETS:
		if (!parse_bool(value, &r->session_tickets))
			return bad_value(ps, "session-tickets", value, "expected on or off (yes/no, true/false, 1/0)");
		return true;
	case K_OCSP_STAPLE:
		return do_path(ps, "ocsp-staple", &r->ocsp_staple, &r->ocsp_staple_line, value);
	default:
		return fail(ps, ps->line, "internal error");
	}
}

/* The "protocol =" values, in enum policy_protocol order. */
static const char *const protocol_names[] = {
	[POLICY_PROTOCOL_TLS] = "tls",
	[POLICY_PROTOCOL_POSTGRES] = "postgres",
	[POLICY_PROTOCOL_SMTP] = "smtp",
	[POLICY_PROTOCOL_IMAP] = "imap",
	[POLICY_PROTOCOL_POP3] = "pop3",
	[POLICY_PROTOCOL_LDAP] = "ldap",
	[POLICY_PROTOCOL_MYSQL] = "mysql",
};

#define N_PROTOCOLS (sizeof protocol_names / sizeof protocol_names[0])

/* What each does before TLS, in the same order. */
static const char *const protocol_exchanges[N_PROTOCOLS] = {
	[POLICY_PROTOCOL_TLS] = "TLS from the first byte",
	[POLICY_PROTOCOL_POSTGRES] = "SSLRequest, the server's 'S', then TLS",
	[POLICY_PROTOCOL_SMTP] = "the server's 220, EHLO, STARTTLS (RFC 3207), then TLS",
	[POLICY_PROTOCOL_IMAP] = "the server's * OK, STARTTLS, then TLS",
	[POLICY_PROTOCOL_POP3] = "the server's +OK, STLS, then TLS",
	[POLICY_PROTOCOL_LDAP] = "the StartTLS extended operation, then TLS",
	[POLICY_PROTOCOL_MYSQL] = "the server's greeting, an SSLRequest, then TLS",
};

const char *policy_protocol_name(enum policy_protocol proto)
{
	if ((unsigned)proto >= N_PROTOCOLS)
		return "?";
	return protocol_names[proto];
}

const char *policy_protocol_exchange(enum policy_protocol proto)
{
	if ((unsigned)proto >= N_PROTOCOLS)
		return "?";
	return protocol_exchanges[proto];
}

/* "protocol = tls | postgres | smtp | imap | pop3 | ldap | mysql"
 * (case-insensitive, as every other word value). */
static bool do_protocol(struct parser *ps, const char *value)
{
	struct policy_rule *r = cur_rule(ps);

	for (size_t i = 0; i < N_PROTOCOLS; i++) {
		if (ascii_caseeq(value, protocol_names[i])) {
			r->protocol = (enum policy_protocol)i;
			r->protocol_line = ps->line;
			return true;
		}
	}
	return bad_value(ps, "protocol", value, "expected tls, postgres, smtp, imap, pop3, ldap or mysql");
}

/* The authority S of a proxy URL (modified in place): HOST (a DNS name,
 * an IPv4 address or a bracketed IPv6 address), then ":PORT".  HOST goes
 * into OUT (at least MAX_DNS_NAME + 1 bytes) normalized and without
 * brackets, PORT into *PORT.  NULL or a reason. */
static const char *parse_proxy_authority(char *s, char *out, uint16_t *port)
{
	char *host = s, *rest, *port_text;
	const char *why;
	uint8_t a[16];

	if (s[0] == '[') {
		rest = strchr(s, ']');
		if (!rest)
			return "missing \"]\" after the IPv6 address";
		*rest++ = '\0';
		host = s + 1;
		if (*rest != '\0' && *rest != ':')
			return "unexpected text after \"]\"";
	} else {
		rest = strchr(s, ':');
		if (rest && strchr(rest + 1, ':'))
			return "an IPv6 address must be in brackets, as in http://[::1]:3128";
		if (!rest)
			rest = s + strlen(s);
	}
	port_text = *rest ? rest + 1 : NULL;
	*rest = '\0';
	if (host[0] == '\0')
		return "missing host: write http://HOST:PORT";
	if (s[0] == '[') {
		if (inet_pton(AF_INET6, host, a) != 1)
			return "bad IPv6 address";
		inet_ntop(AF_INET6, a, out, MAX_DNS_NAME + 1);
	} else if (inet_pton(AF_INET, host, a) == 1) {
		inet_ntop(AF_INET, a, out, MAX_DNS_NAME + 1);
	} else if ((why = check_dns_name(host, out))) {
		return why;
	}
	if (!port_text)
		return "missing port: write http://HOST:PORT (there is no default proxy port)";
	if (!parse_port(port_text, false, port))
		return "bad port (1-65535)";
	return NULL;
}

/* "proxy = http://HOST:PORT" (a trailing "/" allowed).  Credentials in the
 * URL are refused without echoing the value: it holds a password. */
static bool do_proxy(struct parser *ps, const char *value)
{
	struct policy_rule *r = cur_rule(ps);
	char host[MAX_DNS_NAME + 1];
	const char *sep = strstr(value, "://"), *auth, *why;
	size_t scheme, n;

	if (strchr(value, '@'))
		return fail(ps, ps->line, "bad proxy in rule [%s]: no user:password in the URL: use "
			    "proxy-credentials = PATH (a 0600 file holding user:password)", r->name);
	scheme = sep ? (size_t)(sep - value) : 0;
	if (scheme == 5 && ascii_caseeq_n(value, "https", 5))
		return bad_value(ps, "proxy", value, "an https:// proxy is not supported: write http://HOST:PORT "
				 "(the rule's TLS runs end to end through the CONNECT tunnel)");
	if (scheme != 4 || !ascii_caseeq_n(value, "http", 4))
		return bad_value(ps, "proxy", value, "expected http://HOST:PORT (an HTTP CONNECT proxy)");
	auth = sep + 3;
	n = strcspn(auth, "/?#");
	if (auth[n] != '\0' && strcmp(auth + n, "/") != 0)
		return bad_value(ps, "proxy", value, "no path, query or fragment: write http://HOST:PORT");
	memcpy(ps->scratch, auth, n);
	ps->scratch[n] = '\0';
	why = parse_proxy_authority(ps->scratch, host, &r->proxy_port);
	if (why)
		return bad_value(ps, "proxy", value, why);
	r->proxy_line = ps->line;
	return set_string(ps, &r->proxy_host, host);
}

/* Key K = VALUE (a line of the parser's, which list keys cut up), in the
 * scope key_table allows it (do_line checked). */
static bool do_key(struct parser *ps, enum key_id k, char *value)
{
	if (key_table[k].global)
		return do_global_key(ps, k, value);
	switch (k) {
	case K_MATCH:
		return do_match(ps, value);
	case K_ACTION:
		return do_action(ps, value);
	case K_PORT:
		if (!parse_port(value, false, &cur_rule(ps)->port))
			return bad_value(ps, "port", value, "expected 1-65535");
		return true;
	case K_SERVER_NAME:
		return do_server_name(ps, value);
	case K_CA:
		return do_ca(ps, value);
	case K_CERT:
		return do_cert_key(ps, "cert", &cur_rule(ps)->cert, &cur_rule(ps)->cert_line, value);
	case K_KEY:
		return do_cert_key(ps, "key", &cur_rule(ps)->key, &cur_rule(ps)->key_line, value);
	case K_PIN:
		return do_pin(ps, value);
	case K_ALPN:
		return do_alpn(ps, value);
	case K_OCSP:
		return do_ocsp(ps, value);
	case K_LISTEN:
		return do_listen(ps, value);
	case K_CLIENT_CA:
	case K_ALLOW_CLIENT:
	case K_PLAINTEXT:
	case K_ALPN_REQUIRED:
	case K_SESSION_TICKETS:
	case K_OCSP_STAPLE:
		return do_inbound_option(ps, k, value);
	case K_PROTOCOL:
		return do_protocol(ps, value);
	case K_PROXY:
		return do_proxy(ps, value);
	case K_PROXY_CREDENTIALS:
		return do_path(ps, "proxy-credentials", &cur_rule(ps)->proxy_credentials,
			       &cur_rule(ps)->proxy_credentials_line, value);
	default:
		return do_tls_option(ps, k, value);
	}
}

/* Record a warning (policy->warnings): never fails the parse. */
__attribute__((format(printf, 3, 4)))
static void warn(struct policy *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	if (p->n_warnings >= POLICY_MAX_WARNINGS) {
		p->n_warnings_dropped++;
		return;
	}
	if (!p->warnings && !(p->warnings = calloc(POLICY_MAX_WARNINGS, sizeof *p->warnings))) {
		p->n_warnings_dropped++;
		return;
	}
	p->warnings[p->n_warnings].line = line;
	va_start(ap, fmt);
	vsnprintf(p->warnings[p->n_warnings].msg, sizeof p->warnings[p->n_warnings].msg, fmt, ap);
	va_end(ap);
	p->n_warnings++;
}

/* BYTES as a policy would write it: "64K", "1G", or a plain number. */
static const char *bytes_str(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (u < 3 && bytes >= 1024 && bytes % 1024 == 0) {
		bytes /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)bytes, units[u]);
	return buf;
}

/* rekey-after below what four KeyUpdates a second can keep. */
static void warn_rekey(struct parser *ps, const struct policy_rule *r)
{
	char value[32], rate[32];

	if (r->action != POLICY_TLS || r->rekey_after == 0 || r->rekey_after >= POLICY_REKEY_WARN_BELOW)
		return;
	warn(ps->p, ps->seen[K_REKEY_AFTER],
	     "rekey-after = %s in rule [%s] is not kept on fast connections: at most 4 KeyUpdates are sent "
	     "a second, so a connection sending more than %s bytes a second uses one key for more than %s "
	     "bytes (values from 32M up are kept up to about 1 Gbit/s)",
	     bytes_str(r->rekey_after, value, sizeof value), r->name,
	     bytes_str(r->rekey_after * 4, rate, sizeof rate), value);
}

/* Rule R has a key of the other direction?  The first one (by line) fails
 * the parse, naming its line and what to write instead. */
static bool check_key_directions(struct parser *ps, const struct policy_rule *r)
{
	enum key_dir wrong = r->inbound ? DIR_OUT : DIR_IN;
	unsigned line = 0;
	int k = -1;

	for (int i = 0; i < K_COUNT; i++)
		if (key_table[i].dir == wrong && ps->seen[i] && (!line || ps->seen[i] < line)) {
			line = ps->seen[i];
			k = i;
		}
	if (k < 0)
		return true;
	return fail(ps, line, "\"%s\" in %s rule [%s]: %s%s", key_table[k].name,
		    r->inbound ? "inbound" : "outbound", r->name,
		    r->inbound ? "" : "only for inbound rules (listen); ", key_table[k].wrong);
}

/* The checks of a complete inbound rule R: keys that need others. */
static bool finish_inbound(struct parser *ps, struct policy_rule *r)
{
	if (r->action == POLICY_TLS && (!r->cert || !r->key))
		return fail(ps, r->line,
			    "inbound rule [%s] needs \"cert\" and \"key\" (the server certificate chain "
			    "and its key, files or pkcs11: URIs)", r->name);
	if (r->n_allow_clients && !r->client_ca && !r->client_ca_system)
		return fail(ps, ps->seen[K_ALLOW_CLIENT],
			    "\"allow-client\" without \"client-ca\" in rule [%s]: client certificates are "
			    "requested and verified only with client-ca = PATH | system", r->name);
	if (r->alpn_required && !r->n_alpn)
		return fail(ps, ps->seen[K_ALPN_REQUIRED],
			    "\"alpn-required = yes\" without \"alpn\" in rule [%s]: list the protocols accepted",
			    r->name);
	ps->p->has_inbound = true;
	return true;
}

/* Warnings for a complete inbound rule R. */
static void warn_inbound(struct parser *ps, const struct policy_rule *r)
{
	if (r->action != POLICY_TLS)
		return;
	if (r->plaintext == POLICY_PLAINTEXT_ALLOW)
		warn(ps->p, ps->seen[K_PLAINTEXT],
		     "plaintext = allow in rule [%s] is a migration mode: clients that do not start TLS are "
		     "served in clear (logged at warning); set refuse once every client speaks TLS", r->name);
	if (r->client_ca_system && !r->n_allow_clients)
		warn(ps->p, r->client_ca_line,
		     "client-ca = system without allow-client in rule [%s]: any client holding a certificate "
		     "from any public CA is accepted; add allow-client = uri:...|dns:...|cn:...", r->name);
}

/* The checks of a complete outbound rule R: protocol, proxy and
 * proxy-credentials need action = tls; no 0-RTT before an exchange. */
static bool finish_outbound(struct parser *ps, const struct policy_rule *r)
{
	const char *proto = policy_protocol_name(r->protocol), *action = policy_action_name(r->action);

	if (r->proxy_credentials && !r->proxy_host)
		return fail(ps, r->proxy_credentials_line,
			    "\"proxy-credentials\" without \"proxy\" in rule [%s]: they authenticate to the "
			    "proxy (proxy = http://HOST:PORT)", r->name);
	if (r->action != POLICY_TLS && r->protocol != POLICY_PROTOCOL_TLS)
		return fail(ps, r->protocol_line,
			    "protocol = %s in rule [%s] with action = %s: the in-band exchange is how TLS "
			    "starts, it needs action = tls (or remove protocol)", proto, r->name, action);
	if (r->action != POLICY_TLS && r->proxy_host)
		return fail(ps, r->proxy_line,
			    "\"proxy\" in rule [%s] with action = %s: only action = tls rules go through "
			    "the proxy (or remove proxy)", r->name, action);
	if (r->early_data && r->protocol != POLICY_PROTOCOL_TLS)
		return fail(ps, ps->seen[K_EARLY_DATA],
			    "early-data = on with protocol = %s (line %u) in rule [%s]: no 0-RTT: the in-band "
			    "exchange comes before TLS", proto, r->protocol_line, r->name);
	if (r->early_data && r->proxy_host)
		return fail(ps, ps->seen[K_EARLY_DATA],
			    "early-data = on with proxy (line %u) in rule [%s]: no 0-RTT: the proxy tunnel "
			    "comes before TLS", r->proxy_line, r->name);
	return true;
}

/* The rule being filled is complete: check it. */
static bool finish_rule(struct parser *ps)
{
	struct policy_rule *r;

	if (!ps->in_rule)
		return true;
	r = cur_rule(ps);
	ps->in_rule = false;
	if (r->n_matches == 0 && r->n_listens == 0)
		return fail(ps, r->line, "rule [%s] has no \"match\" (outbound) or \"listen\" (inbound)",
			    r->name);
	if (r->n_matches && r->n_listens)
		return fail(ps, ps->seen[K_MATCH] > ps->seen[K_LISTEN] ? ps->seen[K_MATCH] : ps->seen[K_LISTEN],
			    "rule [%s] has both \"match\" (line %u) and \"listen\" (line %u): a rule is "
			    "outbound (match) or inbound (listen); write two rules", r->name,
			    ps->seen[K_MATCH], ps->seen[K_LISTEN]);
	if (!check_key_directions(ps, r))
		return false;
	if (r->cert && !r->key)
		return fail(ps, r->cert_line, "\"cert\" without \"key\" in rule [%s]", r->name);
	if (r->key && !r->cert)
		return fail(ps, r->key_line, "\"key\" without \"cert\" in rule [%s]", r->name);
	if (r->inbound) {
		if (!finish_inbound(ps, r))
			return false;
		warn_inbound(ps, r);
	} else if (!finish_outbound(ps, r)) {
		return false;
	}
	warn_rekey(ps, r);
	return true;
}

/* Does M match every address of FAMILY on port PORT? */
static bool covers_family(const struct policy_match *m, int family, uint16_t port)
{
	if (m->port != 0 && m->port != port)
		return false;
	return m->kind == POLICY_HOST_ANY ||
	       (m->kind == POLICY_HOST_CIDR && m->prefix == 0 && m->family == family);
}

/* A connection to an address on PORT that rule SKIP (by name) did not
 * catch: is it denied (or upgraded, which refuses it without a name) by the
 * first rule that catches every address of both families, rather than
 * passed through in clear? */
static bool caught_elsewhere(const struct policy *p, size_t skip, uint16_t port)
{
	bool decided[2] = { false, false }, caught[2] = { false, false };
	const int families[2] = { AF_INET, AF_INET6 };

	for (size_t i = 0; i < p->n_rules && !(decided[0] && decided[1]); i++) {
		const struct policy_rule *r = &p->rules[i];

		if (i == skip)
			continue;
		for (int f = 0; f < 2; f++) {
			for (size_t j = 0; j < r->n_matches && !decided[f]; j++) {
				if (covers_family(&r->matches[j], families[f], port)) {
					decided[f] = true;
					caught[f] = r->action != POLICY_PLAIN;
				}
			}
		}
	}
	return caught[0] && caught[1];
}

/* Warnings in line order (insertion sort: at most POLICY_MAX_WARNINGS). */
static void sort_warnings(struct policy *p)
{
	for (size_t i = 1; i < p->n_warnings; i++) {
		struct policy_warning w = p->warnings[i];
		size_t j = i;

		for (; j > 0 && p->warnings[j - 1].line > w.line; j--)
			p->warnings[j] = p->warnings[j - 1];
		p->warnings[j] = w;
	}
}

/* A tls or deny rule that matches only by host name does not see a
 * connection to an address the program did not resolve through us (an
 * address literal, curl resolving localhost itself, a cached address). */
static void warn_name_only(struct policy *p)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];
		bool name_only = r->action != POLICY_PLAIN, escapes = false;

		for (size_t j = 0; j < r->n_matches && name_only; j++)
			if (r->matches[j].kind != POLICY_HOST_NAME && r->matches[j].kind != POLICY_HOST_WILDCARD)
				name_only = false;
		if (!name_only)
			continue;
		for (size_t j = 0; j < r->n_matches && !escapes; j++)
			if (!caught_elsewhere(p, i, r->matches[j].port))
				escapes = true;
		if (!escapes)
			continue;
		warn(p, r->line,
		     "rule [%s] matches by host name only: a connection to the server's address made without "
		     "resolving the name (an address literal such as [::1], a program that resolves names "
		     "itself or caches addresses) does not match it and %s; end the policy with "
		     "\"[default] match = *:* action = deny\", or add the server's addresses to the rule",
		     r->name, r->action == POLICY_DENY ? "is not denied" : "leaves in clear");
	}
}

/* Append a new rule NAME (line ps->line) with the defaults, and make it the
 * one being filled.  False with the error set. */
static bool new_rule(struct parser *ps, const char *name)
{
	struct policy *p = ps->p;
	struct policy_rule *r, *nr;
	size_t cap;

	for (size_t i = 0; i < p->n_rules; i++)
		if (strcmp(p->rules[i].name, name) == 0)
			return fail(ps, ps->line, "duplicate rule name [%s] (first at line %u)",
				    name, p->rules[i].line);
	if (p->n_rules >= MAX_RULES)
		return fail(ps, ps->line, "too many rules (at most %d)", MAX_RULES);
	if (p->n_rules == ps->cap_rules) {
		cap = ps->cap_rules ? ps->cap_rules * 2 : 8;
		nr = realloc(p->rules, cap * sizeof *nr);
		if (!nr)
			return oom(ps);
		p->rules = nr;
		ps->cap_rules = cap;
	}
	r = &p->rules[p->n_rules];
	memset(r, 0, sizeof *r);
	if (!(r->name = strdup(name)))
		return oom(ps);
	p->n_rules++;
	r->line = ps->line;
	r->action = POLICY_TLS;
	r->resume = true;
	r->early_data = false;
	r->rekey_after = 0;
	r->ocsp = POLICY_OCSP_REQUEST;
	r->handshake_timeout_ms = POLICY_HANDSHAKE_TIMEOUT_MS;
	r->plaintext = POLICY_PLAINTEXT_REFUSE;
	r->session_tickets = true;
	ps->in_rule = true;
	memset(ps->seen, 0, sizeof ps->seen);
	return true;
}

/* A "[NAME]" header S (trimmed, modified in place): the rule before it is
 * complete, a new one starts. */
static bool do_section(struct parser *ps, char *s)
{
	size_t n = strlen(s), nl;
	char q[QLEN], *name;

	if (s[n - 1] != ']')
		return fail(ps, ps->line, "bad section header \"%s\" (expected [NAME])",
			    show(s, q, sizeof q));
	s[n - 1] = '\0';
	name = trim(s + 1);
	nl = strlen(name);
	if (nl == 0)
		return fail(ps, ps->line, "empty rule name \"[]\"");
	if (nl > MAX_RULE_NAME)
		return fail(ps, ps->line, "rule name [%s] is longer than %d characters",
			    show(name, q, sizeof q), MAX_RULE_NAME);
	for (size_t i = 0; i < nl; i++)
		if (!is_alpha(name[i]) && !is_digit(name[i]) && name[i] != '.' &&
		    name[i] != '_' && name[i] != '-')
			return fail(ps, ps->line,
				    "bad rule name [%s] (letters, digits, \".\", \"_\" and \"-\" only)",
				    show(name, q, sizeof q));
	if (!finish_rule(ps))
		return false;
	return new_rule(ps, name);
}

static bool do_line(struct parser *ps, char *line)
{
	char q[QLEN], *s, *eq, *key, *value;
	int k = -1;

	/* A "#" at the start or after whitespace starts a comment. */
	for (size_t i = 0; line[i]; i++) {
		if (line[i] == '#' && (i == 0 || is_space(line[i - 1]))) {
			line[i] = '\0';
			break;
		}
	}
	s = trim(line);
	if (*s == '\0')
		return true;
	if (*s == '[')
		return do_section(ps, s);
	eq = strchr(s, '=');
	if (!eq)
		return fail(ps, ps->line,
			    "expected \"key = value\", \"[NAME]\", a comment or a blank line, not \"%s\"",
			    show(s, q, sizeof q));
	*eq = '\0';
	key = trim(s);
	value = trim(eq + 1);
	if (*key == '\0')
		return fail(ps, ps->line, "missing key before \"=\"");
	for (int i = 0; i < K_COUNT; i++)
		if (strcmp(key, key_table[i].name) == 0)
			k = i;
	if (k < 0) {
		if (ps->in_rule)
			return fail(ps, ps->line, "unknown key \"%s\" in rule [%s]",
				    show(key, q, sizeof q), cur_rule(ps)->name);
		return fail(ps, ps->line, "unknown key \"%s\"", show(key, q, sizeof q));
	}
	if (key_table[k].global && ps->in_rule)
		return fail(ps, ps->line,
			    "global key \"%s\" inside rule [%s] (global keys go before the first [rule])",
			    key, cur_rule(ps)->name);
	if (!key_table[k].global && !ps->in_rule)
		return fail(ps, ps->line, "key \"%s\" outside a rule (put it under a [NAME] header)",
			    key);
	if (*value == '\0') {
		if (ps->in_rule)
			return fail(ps, ps->line, "empty value for \"%s\" in rule [%s]", key,
				    cur_rule(ps)->name);
		return fail(ps, ps->line, "empty value for \"%s\"", key);
	}
	if (ps->seen[k] && !key_table[k].repeatable) {
		if (ps->in_rule)
			return fail(ps, ps->line, "duplicate key \"%s\" in rule [%s] (first at line %u)",
				    key, cur_rule(ps)->name, ps->seen[k]);
		return fail(ps, ps->line, "duplicate key \"%s\" (first at line %u)", key, ps->seen[k]);
	}
	if (!ps->seen[k])
		ps->seen[k] = ps->line;
	return do_key(ps, (enum key_id)k, value);
}

static void policy_defaults(struct policy *p)
{
	p->log_dest = POLICY_LOG_STDERR;
	p->log_level = POLICY_LEVEL_WARNING;
	p->session_cache = 64;
	p->keylog_path = NULL;
	p->log_format = POLICY_FORMAT_TEXT;
}

struct policy *policy_new_empty(void)
{
	struct policy *p = calloc(1, sizeof *p);

	if (p)
		policy_defaults(p);
	return p;
}

/* Parse TEXT (LEN bytes) line by line into PS's policy, through BUF (a line
 * of MAX_LINE + 1 bytes).  True, or false with the error set. */
static bool parse_lines(struct parser *ps, const char *text, size_t len, char *buf)
{
	const char *start, *nl;
	size_t pos = 0, n;

	/* A UTF-8 byte order mark is ignored. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		start = text + pos;
		nl = memchr(start, '\n', len - pos);
		n = nl ? (size_t)(nl - start) : len - pos;
		pos += n + (nl ? 1 : 0);
		ps->line++;
		if (memchr(start, '\0', n))
			return fail(ps, ps->line, "NUL byte in line");
		if (n > MAX_LINE)
			return fail(ps, ps->line, "line too long (%zu bytes, at most %d)", n, MAX_LINE);
		memcpy(buf, start, n);
		buf[n] = '\0';
		if (!do_line(ps, buf))
			return false;
	}
	return finish_rule(ps);
}

struct policy *policy_parse(const char *text, size_t len, struct policy_error *err)
{
	struct policy_error dummy;
	struct parser ps = { 0 };
	struct policy_rule *r;
	char *buf;
	bool ok;

	if (!err)
		err = &dummy;
	memset(err, 0, sizeof *err);
	ps.err = err;
	if (!text && len > 0) {
		snprintf(err->msg, sizeof err->msg, "no text");
		return NULL;
	}
	if (len > MAX_FILE) {
		snprintf(err->msg, sizeof err->msg,
			 "policy file too large (%zu bytes, at most 1 MiB)", len);
		return NULL;
	}
	ps.p = policy_new_empty();
	/* The line and the scratch buffer: on the heap, not the caller's stack. */
	buf = malloc(2 * (MAX_LINE + 1));
	if (!ps.p || !buf) {
		policy_free(ps.p);
		free(buf);
		snprintf(err->msg, sizeof err->msg, "out of memory");
		return NULL;
	}
	ps.scratch = buf + MAX_LINE + 1;
	ok = parse_lines(&ps, text, len, buf);
	free(buf);
	if (!ok) {
		policy_free(ps.p);
		return NULL;
	}
	if (ps.p->n_rules < ps.cap_rules && ps.p->n_rules > 0) {
		r = realloc(ps.p->rules, ps.p->n_rules * sizeof *r);
		if (r)
			ps.p->rules = r;
	}
	warn_name_only(ps.p);
	sort_warnings(ps.p);
	return ps.p;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_rules; i++) {
		struct policy_rule *r = &p->rules[i];

		free(r->name);
		for (size_t j = 0; j < r->n_matches; j++)
			free(r->matches[j].name);
		free(r->matches);
		free(r->server_name);
		free(r->ca);
		free(r->cert);
		free(r->key);
		free(r->pins);
		for (size_t j = 0; j < r->n_alpn; j++)
			free(r->alpn[j]);
		free(r->alpn);
		for (size_t j = 0; j < r->n_groups; j++)
			free(r->groups[j]);
		free(r->groups);
		for (size_t j = 0; j < r->n_ciphers; j++)
			free(r->ciphers[j]);
		free(r->ciphers);
		free(r->listens);
		free(r->client_ca);
		for (size_t j = 0; j < r->n_allow_clients; j++)
			free(r->allow_clients[j].pattern);
		free(r->allow_clients);
		free(r->ocsp_staple);
		free(r->proxy_host);
		free(r->proxy_credentials);
		if (r->proxy_auth) {
			explicit_bzero(r->proxy_auth, strlen(r->proxy_auth));
			free(r->proxy_auth);
		}
	}
	free(p->rules);
	free(p->warnings);
	free(p->log_path);
	free(p->keylog_path);
	free(p);
}

/* ------------------------------------------------------------ matching */

bool policy_name_matches(const struct policy_match *m, const char *name)
{
	size_t n, ml;

	if (!m)
		return false;
	if (m->kind == POLICY_HOST_ANY)
		return true;
	if (!name || !m->name || (m->kind != POLICY_HOST_NAME && m->kind != POLICY_HOST_WILDCARD))
		return false;
	n = strlen(name);
	if (n > 0 && name[n - 1] == '.')
		n--;
	ml = strlen(m->name);
	if (m->kind == POLICY_HOST_NAME)
		return n == ml && ascii_caseeq_n(name, m->name, n);
	/* ".example.com": strictly below, at any depth. */
	return n > ml && ascii_caseeq_n(name + n - ml, m->name, ml);
}

static bool entry_matches(const struct policy_match *m, const char *const *names, size_t n_names,
			  int family, const uint8_t *addr)
{
	switch (m->kind) {
	case POLICY_HOST_ANY:
		return true;
	case POLICY_HOST_NAME:
	case POLICY_HOST_WILDCARD:
		if (!names)
			return false;
		for (size_t i = 0; i < n_names; i++)
			if (policy_name_matches(m, names[i]))
				return true;
		return false;
	case POLICY_HOST_CIDR:
		if (!addr)
			return false;
		if (m->family == family)
			return prefix_equal(m->addr, addr, m->prefix);
		if (m->family == AF_INET && family == AF_INET6 && addr_is_v4mapped(addr))
			return prefix_equal(m->addr, addr + 12, m->prefix);
		return false;
	}
	return false;
}

const struct policy_rule *policy_match(const struct policy *policy,
				       const char *const *names, size_t n_names,
				       int family, const uint8_t *addr, uint16_t port)
{
	if (!policy)
		return NULL;
	for (size_t i = 0; i < policy->n_rules; i++) {
		const struct policy_rule *r = &policy->rules[i];

		for (size_t j = 0; j < r->n_matches; j++) {
			const struct policy_match *m = &r->matches[j];

			if (m->port != 0 && m->port != port)
				continue;
			if (entry_matches(m, names, n_names, family, addr))
				return r;
		}
	}
	return NULL;
}

const struct policy_rule *policy_match_listen(const struct policy *policy, int family, const uint8_t *addr,
					      uint16_t port)
{
	if (!policy || !policy->has_inbound || !addr)
		return NULL;
	for (size_t i = 0; i < policy->n_rules; i++) {
		const struct policy_rule *r = &policy->rules[i];

		for (size_t j = 0; j < r->n_listens; j++) {
			const struct policy_match *m = &r->listens[j];

			if (m->port != 0 && m->port != port)
				continue;
			if (entry_matches(m, NULL, 0, family, addr))
				return r;
		}
	}
	return NULL;
}

/* --------------------------------------------------------------- names */

const char *policy_action_name(enum policy_action action)
{
	switch (action) {
	case POLICY_TLS: return "tls";
	case POLICY_PLAIN: return "plain";
	case POLICY_DENY: return "deny";
	}
	return "?";
}

const char *policy_ocsp_name(enum policy_ocsp ocsp)
{
	switch (ocsp) {
	case POLICY_OCSP_REQUEST: return "request";
	case POLICY_OCSP_OFF: return "off";
	case POLICY_OCSP_REQUIRE: return "require";
	}
	return "?";
}

const char *policy_format_name(enum policy_log_format format)
{
	switch (format) {
	case POLICY_FORMAT_TEXT: return "text";
	case POLICY_FORMAT_JSON: return "json";
	}
	return "?";
}

/* The one table of level names: the policy's log-level, TLSSHIM_LOG_LEVEL
 * and the word in every log line. */
static const char *const level_names[] = {
	[POLICY_LEVEL_ERROR] = "error",
	[POLICY_LEVEL_WARNING] = "warning",
	[POLICY_LEVEL_INFO] = "info",
	[POLICY_LEVEL_DEBUG] = "debug",
};

const char *policy_level_name(enum policy_log_level level)
{
	if ((unsigned)level >= sizeof level_names / sizeof level_names[0])
		return "?";
	return level_names[level];
}

int policy_level_parse(const char *name)
{
	if (!name)
		return -1;
	for (int l = POLICY_LEVEL_ERROR; l <= POLICY_LEVEL_DEBUG; l++)
		if (ascii_caseeq(name, policy_level_name((enum policy_log_level)l)))
			return l;
	return -1;
}
