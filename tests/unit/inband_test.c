/* inband_test.c - unit tests for the in-band TLS negotiation (inband.h):
 * every exchange with the exact bytes we send, every failure, each server
 * reply cut at every byte position (one read up to the cut, then the
 * rest, and one byte per read), STARTTLS injection, BER long forms, the
 * proxy's CONNECT, the MySQL greeting and HandshakeResponse41 of a real
 * MariaDB 10.11 and its mariadb client, and the MySQL renumbering cut at
 * every position. */
#include <stdlib.h>
#include <string.h>

#include "inband.h"
#include "tap.h"

#define B(s) (s), sizeof(s) - 1

/* One exchange: our requests (all of them, in order), the server's
 * replies (each released once AFTER bytes of ours were sent), the
 * program's bytes (mysql), and what must come of it. */
struct reply {
	size_t after;
	const char *bytes;
	size_t len;
};
struct exchange {
	const char *name;
	enum policy_protocol proto;
	const char *target, *auth, *ehlo;
	const char *out;
	size_t out_len;
	struct reply rep[4];
	const unsigned char *prog;
	size_t prog_len;
	enum inband_next want;
	const char *why;      /* a substring of why[] (INBAND_FAIL) */
	const char *greet;    /* greet[] for the program, or NULL */
	size_t greet_len;
	bool timing;          /* the verdict depends on how the reads cut the
			       * bytes (unasked or injected bytes): each cut
			       * must only fail or start TLS with in[] empty */
};

/* What came of one run. */
struct result {
	enum inband_next v;
	unsigned char sent[4096];
	size_t sent_len;
	unsigned char greet[INBAND_GREET_MAX];
	size_t greet_len;
	char why[INBAND_WHY_MAX];
	size_t in_len;
	bool overrun;         /* inband_program took past the first packet */
};

static struct inband ib;

/* The server bytes released once SENT bytes of ours went, into BUF. */
static size_t released(const struct exchange *ex, size_t sent, unsigned char *buf)
{
	size_t n = 0;
	int i;

	for (i = 0; i < 4 && ex->rep[i].bytes; i++)
		if (sent >= ex->rep[i].after) {
			memcpy(buf + n, ex->rep[i].bytes, ex->rep[i].len);
			n += ex->rep[i].len;
		}
	return n;
}

/* Hand the program's bytes to inband_program: the first CUT bytes in one
 * call, then the rest one call at a time (STEP bytes each). */
static void feed_program(const struct exchange *ex, struct result *r, size_t cut, size_t step)
{
	size_t off = 0, n, plen = 0;
	ssize_t took;

	if (ex->prog_len >= 4)
		plen = 4 + ((size_t)ex->prog[0] | (size_t)ex->prog[1] << 8 | (size_t)ex->prog[2] << 16);
	while (off < ex->prog_len) {
		n = off == 0 && cut ? cut : step;
		if (n > ex->prog_len - off)
			n = ex->prog_len - off;
		took = inband_program(&ib, ex->prog + off, n);
		if (took < 0)
			return;
		if (plen && off + (size_t)took > plen)
			r->overrun = true;
		if (took == 0)
			return;
		off += (size_t)took;
	}
}

/* Run EX: the first read gets at most CUT bytes (0: all), each later read
 * at most STEP bytes. */
static void run(const struct exchange *ex, size_t cut, size_t step, struct result *r)
{
	static unsigned char avail[65536];
	size_t got = 0, have, n;
	int reads = 0, turns = 0;

	memset(r, 0, sizeof *r);
	inband_init(&ib, ex->proto, ex->target, ex->auth, ex->ehlo);
	for (;;) {
		if (++turns > 200000) {
			r->v = (enum inband_next)-1;
			return;
		}
		r->v = inband_next(&ib);
		if (r->v == INBAND_SEND) {
			n = ib.out_len - ib.out_off;
			if (r->sent_len + n <= sizeof r->sent)
				memcpy(r->sent + r->sent_len, ib.out + ib.out_off, n);
			r->sent_len += n;
			ib.out_off = ib.out_len;
			continue;
		}
		if (r->v == INBAND_PROGRAM) {
			memcpy(r->greet, ib.greet, ib.greet_len);
			r->greet_len = ib.greet_len;
			ib.greet_len = 0;
			if (ib.held_len > 0)
				break;  /* asked again without the whole packet */
			feed_program(ex, r, cut, step);
			if (ib.held_len == 0)
				break;
			continue;
		}
		if (r->v != INBAND_READ)
			break;
		have = released(ex, r->sent_len, avail);
		if (got >= have) {
			r->v = inband_eof(&ib);
			break;
		}
		n = reads++ == 0 && cut ? cut : step;
		if (n > have - got)
			n = have - got;
		if (n > INBAND_IN_MAX - ib.in_len)
			n = INBAND_IN_MAX - ib.in_len;
		memcpy(ib.in + ib.in_len, avail + got, n);
		ib.in_len += n;
		got += n;
	}
	if (r->v == INBAND_TLS && ib.greet_len) {
		memcpy(r->greet, ib.greet, ib.greet_len);
		r->greet_len = ib.greet_len;
	}
	memcpy(r->why, ib.why, sizeof r->why);
	r->in_len = ib.in_len;
}

static bool printable(const char *s, size_t size)
{
	size_t i;

	for (i = 0; i < size && s[i]; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return i < size;
}

static bool same(const struct result *a, const struct result *b)
{
	return a->v == b->v && a->sent_len == b->sent_len &&
	       !memcmp(a->sent, b->sent, a->sent_len) && a->greet_len == b->greet_len &&
	       !memcmp(a->greet, b->greet, a->greet_len) && !strcmp(a->why, b->why) &&
	       a->overrun == b->overrun;
}

/* EX gives its verdict, requests and greeting; and the same for every cut
 * of the server's bytes and one byte per read.  Two TAP tests. */
static void check(const struct exchange *ex)
{
	struct result whole, cut;
	size_t total = 0, c;
	int i, bad = -1;
	bool good;

	for (i = 0; i < 4 && ex->rep[i].bytes; i++)
		total += ex->rep[i].len;
	total += ex->prog_len;
	run(ex, 0, 65536, &whole);
	good = whole.v == ex->want && whole.sent_len == ex->out_len &&
	       !memcmp(whole.sent, ex->out, ex->out_len) && printable(whole.why, sizeof whole.why) &&
	       !whole.overrun && (whole.v != INBAND_TLS || whole.in_len == 0) &&
	       (!ex->why || strstr(whole.why, ex->why)) &&
	       (!ex->greet || (whole.greet_len == ex->greet_len &&
			       !memcmp(whole.greet, ex->greet, ex->greet_len)));
	ok(good, "%s: verdict %d, %zu bytes sent, why \"%s\"", ex->name, (int)whole.v,
	   whole.sent_len, whole.why);
	if (!good && whole.sent_len != ex->out_len)
		diag("sent %.*s", (int)whole.sent_len, whole.sent);
	if (ex->timing) {
		for (c = 1; c <= total && bad < 0; c++) {
			run(ex, c, 1, &cut);
			if ((cut.v != INBAND_FAIL && cut.v != INBAND_TLS) ||
			    (cut.v == INBAND_TLS && cut.in_len) || !printable(cut.why, sizeof cut.why))
				bad = (int)c;
		}
		ok(bad < 0, "%s: each cut fails or starts TLS with nothing left (%d)", ex->name, bad);
		return;
	}
	for (c = 1; c <= total && bad < 0; c++) {
		run(ex, c, 65536, &cut);
		if (!same(&whole, &cut))
			bad = (int)c;
	}
	if (bad < 0) {
		run(ex, 0, 1, &cut);
		if (!same(&whole, &cut))
			bad = 0;
	}
	ok(bad < 0, "%s: the same cut at each of %zu positions and one byte per read (%d)",
	   ex->name, total, bad);
}

/* ---- hex, for the captured MariaDB bytes */

static size_t unhex(const char *hex, unsigned char *out)
{
	size_t n = 0;
	unsigned v;

	for (; hex[0] && hex[1]; hex += 2) {
		sscanf(hex, "%2x", &v);
		out[n++] = (unsigned char)v;
	}
	return n;
}

/* A real MariaDB 10.11.19 server greeting (Debian 12), CLIENT_SSL set. */
static const char mdb_greeting[] =
	"640000000a352e352e352d31302e31312e31392d4d6172696144422d302b6465623132753100080000004e5d6b216041"
	"645400feff080200ff81150000000000001d00000056343e7b74527d3e5c36364b006d7973716c5f6e61746976655f70"
	"617373776f726400";
/* The mariadb 10.11 client's HandshakeResponse41 (--skip-ssl, user ed). */
static const char mdb_response[] =
	"cd00000184a2bf000000100021000000000000000000000000000000000000001d000000656400146adc390849ad4b68"
	"4529ad431a5222d12213dfd36d7973716c5f6e61746976655f70617373776f7264007e035f6f73054c696e75780c5f63"
	"6c69656e745f6e616d650a6c69626d617269616462045f70696404363739360f5f636c69656e745f76657273696f6e06"
	"332e332e3230095f706c6174666f726d067838365f36340c70726f6772616d5f6e616d65056d7973716c0c5f73657276"
	"65725f686f7374093132372e302e302e31";
/* Then, as the server numbers them without TLS: its auth switch to
 * client_ed25519 (2), the client's signature (3), the server's OK (4). */
static const char mdb_switch[] =
	"30000002fe636c69656e745f6564323535313900cc1057abdc24ccb811fd1711dfc926889835014070af00b1f5525766"
	"3e5233ba";
static const char mdb_signature[] =
	"40000003ad3e413dfcf5fa6a831fac2c4828c298a301fa8fed0e8d84d41129ca6770996ce36d1731a9427614f10a1261"
	"79b4ddd0273a24e001ca01463ceadfcf43fbe00f";
static const char mdb_ok[] = "0700000400000002000000";
static const char mdb_query[] = "090000000373656c6563742031";
static const char mdb_result[] = "0200000101011800000203646566000000013100000c3f000100000003810000";


/* ---- the exchanges */

#define L(s) (sizeof(s) - 1)

#define PG_REQ "\x00\x00\x00\x08\x04\xd2\x16\x2f"
#define CONNECT_PG "CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n"
#define CONNECT_AUTH "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n" \
	"Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
#define CONNECT_AUTH2 "CONNECT mx:25 HTTP/1.1\r\nHost: mx:25\r\nProxy-Authorization: Basic dTpwMQ==\r\n\r\n"
#define TINYPROXY_200 "HTTP/1.1 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n"

#define SMTP_GREET "220-mail.example.org ESMTP Exim 4.96 Thu, 03 Dec 2026 14:00:00 +0000\r\n220 no UCE\r\n"
#define SMTP_EHLO "EHLO client.example\r\n"
#define SMTP_250 "250-mail.example.org Hello client.example [127.0.0.1]\r\n250-SIZE 52428800\r\n" \
	"250-8BITMIME\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 HELP\r\n"
#define SMTP_250_LAST "250-mx Hello\r\n250-SIZE 1000\r\n250 starttls\r\n"
#define SMTP_250_NONE "250-mx Hello STARTTLS\r\n250-SIZE 1000\r\n250 HELP\r\n"
#define SMTP_OUT SMTP_EHLO "STARTTLS\r\n"

#define IMAP_GREET "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ " \
	"STARTTLS LOGINDISABLED] Dovecot (Debian) ready.\r\n"
#define IMAP_OUT "tls0 STARTTLS\r\n"
#define IMAP_OK "* CAPABILITY IMAP4rev1 STARTTLS\r\n* OK still here\r\ntls0 OK Begin TLS negotiation now.\r\n"

#define POP3_GREET "+OK Dovecot (Debian) ready.\r\n"

/* slapd 2.5's StartTLS response (captured), and one with the responseName. */
#define LDAP_OID "1.3.6.1.4.1.1466.20037"
#define LDAP_SLAPD "\x30\x0c\x02\x01\x01\x78\x07\x0a\x01\x00\x04\x00\x04\x00"
#define LDAP_REQ "\x30\x1d\x02\x01\x01\x77\x18\x80\x16" LDAP_OID
#define LDAP_OK "\x30\x24\x02\x01\x01\x78\x1f\x0a\x01\x00\x04\x00\x04\x00\x8a\x16" LDAP_OID
#define LDAP_OK_LONG "\x30\x84\x00\x00\x00\x28\x02\x01\x01\x78\x81\x22\x0a\x01\x00\x04\x81\x00" \
	"\x04\x82\x00\x00\x8a\x16" LDAP_OID
#define LDAP_OK_LONG3 "\x30\x83\x00\x00\x27\x02\x01\x01\x78\x83\x00\x00\x1f\x0a\x01\x00\x04\x00" \
	"\x04\x00\x8a\x16" LDAP_OID
#define LDAP_REFUSED "\x30\x2c\x02\x01\x01\x78\x27\x0a\x01\x02\x04\x00\x04\x20" \
	"unsupported extended operation.."
#define LDAP_REFUSED_BIN "\x30\x0f\x02\x01\x01\x78\x0a\x0a\x01\x34\x04\x00\x04\x03\x01\x02\x03"
#define LDAP_NOTICE "\x30\x3b\x02\x01\x00\x78\x36\x0a\x01\x34\x04\x00\x04\x17" \
	"connection shutting dn." "\x8a\x16" "1.3.6.1.4.1.1466.20036"

static const struct exchange cases[] = {
	/* proxy */
	{ "proxy CONNECT, tls", POLICY_PROTOCOL_TLS, "db.example:5432", NULL, NULL, B(CONNECT_PG),
	  { { L(CONNECT_PG), B(TINYPROXY_200) } }, NULL, 0, INBAND_TLS, NULL, NULL, 0, false },
	{ "proxy CONNECT with Basic auth, IPv6", POLICY_PROTOCOL_TLS, "[2001:db8::1]:443",
	  "Aladdin:open sesame", NULL, B(CONNECT_AUTH),
	  { { L(CONNECT_AUTH), B("HTTP/1.0 200 OK\r\n\r\n") } }, NULL, 0, INBAND_TLS, NULL, NULL, 0, false },
	{ "proxy 407", POLICY_PROTOCOL_TLS, "db.example:5432", NULL, NULL, B(CONNECT_PG),
	  { { L(CONNECT_PG), B("HTTP/1.1 407 Proxy Authentication Required\r\n"
			       "Proxy-Authenticate: Basic realm=\"x\"\r\n\r\n") } }, NULL, 0,
	  INBAND_FAIL, "refused the CONNECT: HTTP/1.1 407 Proxy Authentication Required", NULL, 0, false },
	{ "proxy 403", POLICY_PROTOCOL_TLS, "db.example:5432", NULL, NULL, B(CONNECT_PG),
	  { { L(CONNECT_PG), B("HTTP/1.1 403 Access violation\r\n\r\n") } }, NULL, 0,
	  INBAND_FAIL, ": HTTP/1.1 403 Access violation", NULL, 0, false },
	{ "proxy status line not printable", POLICY_PROTOCOL_TLS, "db.example:5432", NULL, NULL,
	  B(CONNECT_PG), { { L(CONNECT_PG), B("HTTP/1.1 502 Bad\x01\xff\tGateway\r\n\r\n") } },
	  NULL, 0, INBAND_FAIL, ": HTTP/1.1 502 Bad???Gateway", NULL, 0, false },
	{ "proxy not HTTP", POLICY_PROTOCOL_TLS, "db.example:5432", NULL, NULL, B(CONNECT_PG),
	  { { L(CONNECT_PG), B("SSH-2.0-OpenSSH_9.2\r\n") } }, NULL, 0, INBAND_FAIL,
	  "SSH-2.0-OpenSSH_9.2", NULL, 0, false },
	{ "proxy HTTP/2 status", POLICY_PROTOCOL_TLS, "db.example:5432", NULL, NULL, B(CONNECT_PG),
	  { { L(CONNECT_PG), B("HTTP/2 200\r\n\r\n") } }, NULL, 0, INBAND_FAIL, "HTTP/2 200", NULL, 0, false },
	{ "proxy closes before the empty line", POLICY_PROTOCOL_TLS, "db.example:5432", NULL, NULL,
	  B(CONNECT_PG), { { L(CONNECT_PG), B("HTTP/1.1 200 OK\r\nVia: x\r\n") } }, NULL, 0,
	  INBAND_FAIL, "proxy closed the connection", NULL, 0, false },
	{ "proxy, tls: bytes after the 200 fail", POLICY_PROTOCOL_TLS, "db.example:5432", NULL, NULL,
	  B(CONNECT_PG), { { L(CONNECT_PG), B("HTTP/1.1 200 OK\r\n\r\n\x16\x03\x03") } }, NULL, 0,
	  INBAND_FAIL, "proxy sent 3 bytes after its 2xx reply", NULL, 0, true },
	{ "proxy then postgres", POLICY_PROTOCOL_POSTGRES, "db.example:5432", NULL, NULL,
	  B(CONNECT_PG PG_REQ), { { L(CONNECT_PG), B(TINYPROXY_200) },
				  { L(CONNECT_PG PG_REQ), B("S") } }, NULL, 0, INBAND_TLS, NULL, NULL, 0, false },
	{ "proxy then postgres: the server speaks first", POLICY_PROTOCOL_POSTGRES, "db.example:5432",
	  NULL, NULL, B(CONNECT_PG), { { L(CONNECT_PG), B("HTTP/1.1 200 OK\r\n\r\nS") } }, NULL, 0,
	  INBAND_FAIL, "sent 1 bytes before our SSLRequest", NULL, 0, true },
	{ "proxy 200 and the SMTP greeting in one read", POLICY_PROTOCOL_SMTP, "mx:25", "u:p1",
	  "client.example", B(CONNECT_AUTH2 SMTP_OUT),
	  { { L(CONNECT_AUTH2), B("HTTP/1.1 200 Connection established\r\nVia: 1.1 proxy\r\n\r\n"
				 SMTP_GREET) },
	    { L(CONNECT_AUTH2 SMTP_EHLO), B(SMTP_250) },
	    { L(CONNECT_AUTH2 SMTP_OUT), B("220 2.0.0 Ready to start TLS\r\n") } },
	  NULL, 0, INBAND_TLS, NULL, B(SMTP_GREET), false },
	/* postgres */
	{ "postgres S", POLICY_PROTOCOL_POSTGRES, NULL, NULL, NULL, B(PG_REQ),
	  { { L(PG_REQ), B("S") } }, NULL, 0, INBAND_TLS, NULL, NULL, 0, false },
	{ "postgres N", POLICY_PROTOCOL_POSTGRES, NULL, NULL, NULL, B(PG_REQ),
	  { { L(PG_REQ), B("N") } }, NULL, 0, INBAND_FAIL,
	  "the server does not do TLS (answered N to SSLRequest)", NULL, 0, false },
	{ "postgres E", POLICY_PROTOCOL_POSTGRES, NULL, NULL, NULL, B(PG_REQ),
	  { { L(PG_REQ), B("E\x00\x00\x00\x10SFATAL\x00\x00") } }, NULL, 0, INBAND_FAIL, "'E'", NULL, 0, false },
	{ "postgres other byte", POLICY_PROTOCOL_POSTGRES, NULL, NULL, NULL, B(PG_REQ),
	  { { L(PG_REQ), B("\x80") } }, NULL, 0, INBAND_FAIL, "byte 0x80", NULL, 0, false },
	{ "postgres injection after S", POLICY_PROTOCOL_POSTGRES, NULL, NULL, NULL, B(PG_REQ),
	  { { L(PG_REQ), B("SQ") } }, NULL, 0, INBAND_FAIL, "1 bytes after its 'S'", NULL, 0, true },
	{ "postgres closes", POLICY_PROTOCOL_POSTGRES, NULL, NULL, NULL, B(PG_REQ),
	  { { L(PG_REQ), B("") } }, NULL, 0, INBAND_FAIL, "closed the connection", NULL, 0, false },
	/* smtp */
	{ "smtp", POLICY_PROTOCOL_SMTP, NULL, NULL, "client.example", B(SMTP_OUT),
	  { { 0, B(SMTP_GREET) }, { L(SMTP_EHLO), B(SMTP_250) },
	    { L(SMTP_OUT), B("220 2.0.0 Ready to start TLS\r\n") } },
	  NULL, 0, INBAND_TLS, NULL, B(SMTP_GREET), false },
	{ "smtp, STARTTLS on the last line, bare LF, default EHLO", POLICY_PROTOCOL_SMTP, NULL, NULL,
	  NULL, B("EHLO localhost\r\nSTARTTLS\r\n"),
	  { { 0, B("220 mx\n") }, { L("EHLO localhost\r\n"), B(SMTP_250_LAST) },
	    { L("EHLO localhost\r\nSTARTTLS\r\n"), B("220\r\n") } },
	  NULL, 0, INBAND_TLS, NULL, B("220 mx\n"), false },
	{ "smtp, invalid EHLO name becomes localhost", POLICY_PROTOCOL_SMTP, NULL, NULL, "a b\r\nRSET",
	  B("EHLO localhost\r\n"), { { 0, B("220 mx\r\n") }, { L("EHLO localhost\r\n"), B("250 mx\r\n") } },
	  NULL, 0, INBAND_FAIL, "does not offer STARTTLS", NULL, 0, false },
	{ "smtp without STARTTLS", POLICY_PROTOCOL_SMTP, NULL, NULL, "client.example", B(SMTP_EHLO),
	  { { 0, B(SMTP_GREET) }, { L(SMTP_EHLO), B(SMTP_250_NONE) } }, NULL, 0, INBAND_FAIL,
	  "the server does not offer STARTTLS", NULL, 0, false },
	{ "smtp 554 greeting", POLICY_PROTOCOL_SMTP, NULL, NULL, "client.example", "", 0,
	  { { 0, B("554-mx no service\r\n554 go away\r\n") } }, NULL, 0, INBAND_FAIL,
	  "refused us: 554-mx no service", NULL, 0, false },
	{ "smtp EHLO refused", POLICY_PROTOCOL_SMTP, NULL, NULL, "client.example", B(SMTP_EHLO),
	  { { 0, B(SMTP_GREET) }, { L(SMTP_EHLO), B("550 5.7.1 not you\r\n") } }, NULL, 0,
	  INBAND_FAIL, "refused EHLO: 550 5.7.1 not you", NULL, 0, false },
	{ "smtp STARTTLS refused", POLICY_PROTOCOL_SMTP, NULL, NULL, "client.example", B(SMTP_OUT),
	  { { 0, B(SMTP_GREET) }, { L(SMTP_EHLO), B(SMTP_250) },
	    { L(SMTP_OUT), B("454 4.7.0 TLS not available\r\n") } }, NULL, 0, INBAND_FAIL,
	  "refused STARTTLS: 454 4.7.0 TLS not available", NULL, 0, false },
	{ "smtp injection after 220", POLICY_PROTOCOL_SMTP, NULL, NULL, "client.example", B(SMTP_OUT),
	  { { 0, B(SMTP_GREET) }, { L(SMTP_EHLO), B(SMTP_250) },
	    { L(SMTP_OUT), B("220 go ahead\r\n250-fake\r\n") } }, NULL, 0, INBAND_FAIL,
	  "10 bytes after its 220 reply to STARTTLS", NULL, 0, true },
	{ "smtp bytes before EHLO", POLICY_PROTOCOL_SMTP, NULL, NULL, "client.example", "", 0,
	  { { 0, B("220 mx\r\n250 STARTTLS\r\n") } }, NULL, 0, INBAND_FAIL, "before our EHLO", NULL, 0, true },
	{ "smtp reply mixing codes", POLICY_PROTOCOL_SMTP, NULL, NULL, "client.example", "", 0,
	  { { 0, B("220-mx\r\n250 hi\r\n") } }, NULL, 0, INBAND_FAIL, "mixes codes: 250 hi", NULL, 0, false },
	{ "smtp not SMTP", POLICY_PROTOCOL_SMTP, NULL, NULL, "client.example", "", 0,
	  { { 0, B("SSH-2.0-OpenSSH\r\n") } }, NULL, 0, INBAND_FAIL, "not SMTP: SSH-2.0-OpenSSH", NULL, 0, false },
	/* imap */
	{ "imap (dovecot)", POLICY_PROTOCOL_IMAP, NULL, NULL, NULL, B(IMAP_OUT),
	  { { 0, B(IMAP_GREET) }, { L(IMAP_OUT), B(IMAP_OK) } }, NULL, 0, INBAND_TLS, NULL,
	  B("* OK Dovecot (Debian) ready.\r\n"), false },
	{ "imap greeting without capabilities, [ALERT] kept", POLICY_PROTOCOL_IMAP, NULL, NULL, NULL,
	  B(IMAP_OUT), { { 0, B("* ok [ALERT] hi\r\n") }, { L(IMAP_OUT), B("tls0 OK\r\n") } }, NULL, 0,
	  INBAND_TLS, NULL, B("* ok [ALERT] hi\r\n"), false },
	{ "imap greeting only capabilities", POLICY_PROTOCOL_IMAP, NULL, NULL, NULL, B(IMAP_OUT),
	  { { 0, B("* OK [CAPABILITY IMAP4rev1 STARTTLS]\r\n") }, { L(IMAP_OUT), B("tls0 ok go\r\n") } },
	  NULL, 0, INBAND_TLS, NULL, B("* OK ready\r\n"), false },
	{ "imap PREAUTH", POLICY_PROTOCOL_IMAP, NULL, NULL, NULL, "", 0,
	  { { 0, B("* PREAUTH logged in as x\r\n") } }, NULL, 0, INBAND_FAIL, "PREAUTH logged in", NULL, 0, false },
	{ "imap BYE", POLICY_PROTOCOL_IMAP, NULL, NULL, NULL, "", 0,
	  { { 0, B("* BYE too many connections\r\n") } }, NULL, 0, INBAND_FAIL,
	  "refused us: * BYE too many connections", NULL, 0, false },
	{ "imap NO", POLICY_PROTOCOL_IMAP, NULL, NULL, NULL, B(IMAP_OUT),
	  { { 0, B(IMAP_GREET) }, { L(IMAP_OUT), B("tls0 NO [UNAVAILABLE] no TLS\r\n") } }, NULL, 0,
	  INBAND_FAIL, "refused STARTTLS: tls0 NO [UNAVAILABLE] no TLS", NULL, 0, false },
	{ "imap BAD", POLICY_PROTOCOL_IMAP, NULL, NULL, NULL, B(IMAP_OUT),
	  { { 0, B(IMAP_GREET) }, { L(IMAP_OUT), B("* BAD x\r\ntls0 BAD unknown command\r\n") } },
	  NULL, 0, INBAND_FAIL, "refused STARTTLS: tls0 BAD unknown command", NULL, 0, false },
	{ "imap other tag", POLICY_PROTOCOL_IMAP, NULL, NULL, NULL, B(IMAP_OUT),
	  { { 0, B(IMAP_GREET) }, { L(IMAP_OUT), B("a1 OK\r\n") } }, NULL, 0, INBAND_FAIL,
	  "not ours: a1 OK", NULL, 0, false },
	{ "imap injection after OK", POLICY_PROTOCOL_IMAP, NULL, NULL, NULL, B(IMAP_OUT),
	  { { 0, B(IMAP_GREET) }, { L(IMAP_OUT), B("tls0 OK go\r\n* OK fake\r\n") } }, NULL, 0,
	  INBAND_FAIL, "11 bytes after its OK", NULL, 0, true },
	/* pop3 */
	{ "pop3 (dovecot)", POLICY_PROTOCOL_POP3, NULL, NULL, NULL, B("STLS\r\n"),
	  { { 0, B(POP3_GREET) }, { 6, B("+OK Begin TLS negotiation now.\r\n") } }, NULL, 0, INBAND_TLS,
	  NULL, B(POP3_GREET), false },
	{ "pop3 -ERR greeting", POLICY_PROTOCOL_POP3, NULL, NULL, NULL, "", 0,
	  { { 0, B("-ERR [SYS/TEMP] busy\r\n") } }, NULL, 0, INBAND_FAIL, "-ERR [SYS/TEMP] busy", NULL, 0, false },
	{ "pop3 -ERR to STLS", POLICY_PROTOCOL_POP3, NULL, NULL, NULL, B("STLS\r\n"),
	  { { 0, B(POP3_GREET) }, { 6, B("-ERR Unknown command.\r\n") } }, NULL, 0, INBAND_FAIL,
	  "refused STLS: -ERR Unknown command.", NULL, 0, false },
	{ "pop3 injection after +OK", POLICY_PROTOCOL_POP3, NULL, NULL, NULL, B("STLS\r\n"),
	  { { 0, B(POP3_GREET) }, { 6, B("+OK\r\n+OK") } }, NULL, 0, INBAND_FAIL,
	  "3 bytes after its +OK to STLS", NULL, 0, true },
	/* ldap */
	{ "ldap (slapd 2.5)", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL, B(LDAP_REQ),
	  { { L(LDAP_REQ), B(LDAP_SLAPD) } }, NULL, 0, INBAND_TLS, NULL, NULL, 0, false },
	{ "ldap with responseName", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL, B(LDAP_REQ),
	  { { L(LDAP_REQ), B(LDAP_OK) } }, NULL, 0, INBAND_TLS, NULL, NULL, 0, false },
	{ "ldap, long forms 0x84, 0x81, 0x82", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL, B(LDAP_REQ),
	  { { L(LDAP_REQ), B(LDAP_OK_LONG) } }, NULL, 0, INBAND_TLS, NULL, NULL, 0, false },
	{ "ldap, long form 0x83", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL, B(LDAP_REQ),
	  { { L(LDAP_REQ), B(LDAP_OK_LONG3) } }, NULL, 0, INBAND_TLS, NULL, NULL, 0, false },
	{ "ldap refused, diagnosticMessage", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL, B(LDAP_REQ),
	  { { L(LDAP_REQ), B(LDAP_REFUSED) } }, NULL, 0, INBAND_FAIL,
	  "resultCode 2: unsupported extended operation..", NULL, 0, false },
	{ "ldap refused, binary diagnosticMessage left out", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL,
	  B(LDAP_REQ), { { L(LDAP_REQ), B(LDAP_REFUSED_BIN) } }, NULL, 0, INBAND_FAIL,
	  "refused StartTLS: resultCode 52", NULL, 0, false },
	{ "ldap Notice of Disconnection", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL, B(LDAP_REQ),
	  { { L(LDAP_REQ), B(LDAP_NOTICE) } }, NULL, 0, INBAND_FAIL,
	  "Notice of Disconnection, resultCode 52): connection shutting dn.", NULL, 0, false },
	{ "ldap injection after the response", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL, B(LDAP_REQ),
	  { { L(LDAP_REQ), B(LDAP_OK "\x30\x05") } }, NULL, 0, INBAND_FAIL, "2 bytes after", NULL, 0, true },
	{ "ldap indefinite length", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL, B(LDAP_REQ),
	  { { L(LDAP_REQ), B("\x30\x80\x02\x01\x01\x00\x00") } }, NULL, 0, INBAND_FAIL,
	  "not an LDAP message", NULL, 0, false },
	{ "ldap length of 5 bytes", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL, B(LDAP_REQ),
	  { { L(LDAP_REQ), B("\x30\x85\x00\x00\x00\x00\x05\x02\x01\x01\x00\x00") } }, NULL, 0,
	  INBAND_FAIL, "not an LDAP message", NULL, 0, false },
	{ "ldap length past the buffer", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL, B(LDAP_REQ),
	  { { L(LDAP_REQ), B("\x30\x84\x7f\xff\xff\xff\x02") } }, NULL, 0, INBAND_FAIL,
	  "longer than 8192", NULL, 0, false },
	{ "ldap message ID 2", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL, B(LDAP_REQ),
	  { { L(LDAP_REQ), B("\x30\x0c\x02\x01\x02\x78\x07\x0a\x01\x00\x04\x00\x04\x00") } }, NULL, 0,
	  INBAND_FAIL, "message ID 2", NULL, 0, false },
	{ "ldap inner length past its element", POLICY_PROTOCOL_LDAP, NULL, NULL, NULL, B(LDAP_REQ),
	  { { L(LDAP_REQ), B("\x30\x0c\x02\x01\x01\x78\x07\x0a\x01\x00\x04\x00\x04\x05") } }, NULL, 0,
	  INBAND_FAIL, "malformed", NULL, 0, false },
};

/* ---- built at run time: long lines, MySQL packets */

static char long_buf[8][INBAND_IN_MAX + 4096];

/* PREFIX, then FILL up to a line of LEN bytes with its CR LF, then SUFFIX. */
static const char *long_line(int slot, const char *prefix, size_t len, const char *suffix,
			     size_t *total)
{
	char *b = long_buf[slot];
	size_t p = strlen(prefix);

	memcpy(b, prefix, p);
	memset(b + p, 'x', len - 2 - p);
	memcpy(b + len - 2, "\r\n", 2);
	strcpy(b + len, suffix);
	*total = len + strlen(suffix);
	return b;
}

/* Many header lines, LINES of them, after a 200. */
static const char *many_lines(int slot, const char *first, const char *each, int lines,
			      size_t *total)
{
	char *b = long_buf[slot];
	size_t n = strlen(first);
	int i;

	memcpy(b, first, n);
	for (i = 0; i < lines && n + strlen(each) < sizeof long_buf[slot]; i++) {
		memcpy(b + n, each, strlen(each));
		n += strlen(each);
	}
	*total = n;
	return b;
}

static void long_cases(void)
{
	struct exchange ex;
	size_t n;

	memset(&ex, 0, sizeof ex);
	ex.proto = POLICY_PROTOCOL_SMTP;
	ex.ehlo = "c";
	ex.name = "smtp greeting line of INBAND_LINE_MAX bytes";
	ex.rep[0].bytes = long_line(0, "220 ", INBAND_LINE_MAX, "", &ex.rep[0].len);
	ex.out = "EHLO c\r\n";
	ex.out_len = 8;
	ex.want = INBAND_FAIL;   /* the server then closes */
	ex.why = "closed the connection";
	check(&ex);
	ex.name = "smtp greeting line over INBAND_LINE_MAX";
	ex.rep[0].bytes = long_line(1, "220 ", INBAND_LINE_MAX + 1, "", &ex.rep[0].len);
	ex.out = "";
	ex.out_len = 0;
	ex.why = "a line longer than 2048 bytes";
	check(&ex);
	ex.name = "smtp greeting line over INBAND_LINE_MAX, no LF yet";
	ex.rep[0].bytes = long_line(2, "220 ", INBAND_LINE_MAX + 100, "", &n);
	ex.rep[0].len = INBAND_LINE_MAX + 10;
	check(&ex);
	ex.name = "smtp multi-line greeting over INBAND_IN_MAX";
	ex.rep[0].bytes = many_lines(3, "", "220-0123456789012345678901234567890123456789\r\n", 300,
				     &ex.rep[0].len);
	ex.why = "sent 8192 bytes without a complete reply";
	check(&ex);

	memset(&ex, 0, sizeof ex);
	ex.proto = POLICY_PROTOCOL_TLS;
	ex.target = "h:1";
	ex.out = "CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n";
	ex.out_len = strlen(ex.out);
	ex.rep[0].after = ex.out_len;
	ex.name = "proxy header line over INBAND_LINE_MAX";
	ex.rep[0].bytes = long_line(4, "HTTP/1.1 200 OK\r\nVia: ", INBAND_LINE_MAX + 20, "\r\n",
				    &ex.rep[0].len);
	ex.want = INBAND_FAIL;
	ex.why = "proxy sent a line longer than 2048 bytes";
	check(&ex);
	ex.name = "proxy headers over INBAND_IN_MAX";
	ex.rep[0].bytes = many_lines(5, "HTTP/1.1 200 OK\r\n", "X-Filler: 01234567890123456789\r\n",
				     400, &ex.rep[0].len);
	ex.why = "proxy sent 8192 bytes without a complete reply";
	check(&ex);
	ex.name = "proxy 200 with many headers";
	ex.rep[0].bytes = many_lines(6, "HTTP/1.1 200 OK\r\n", "X-Filler: 01234567890123456789\r\n",
				     200, &n);
	strcpy(long_buf[6] + n, "\r\n");
	ex.rep[0].len = n + 2;
	ex.want = INBAND_TLS;
	ex.why = NULL;
	check(&ex);

	memset(&ex, 0, sizeof ex);
	ex.proto = POLICY_PROTOCOL_IMAP;
	ex.name = "imap untagged lines over INBAND_IN_MAX";
	ex.rep[0].bytes = "* OK hi\r\n";
	ex.rep[0].len = 9;
	ex.out = IMAP_OUT;
	ex.out_len = L(IMAP_OUT);
	ex.rep[1].after = ex.out_len;
	ex.rep[1].bytes = many_lines(7, "", "* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN\r\n", 300,
				     &ex.rep[1].len);
	ex.want = INBAND_FAIL;
	ex.why = "sent 8192 bytes without a complete reply";
	check(&ex);
}

static unsigned char greeting[512], response[512], pkt[8][512];
static size_t greeting_len, response_len;

/* A MySQL packet of sequence SEQ around PAYLOAD (N bytes), into pkt[SLOT]. */
static const unsigned char *packet(int slot, unsigned seq, const void *payload, size_t n,
				   size_t *len)
{
	pkt[slot][0] = (unsigned char)n;
	pkt[slot][1] = (unsigned char)(n >> 8);
	pkt[slot][2] = (unsigned char)(n >> 16);
	pkt[slot][3] = (unsigned char)seq;
	memcpy(pkt[slot] + 4, payload, n);
	*len = n + 4;
	return pkt[slot];
}

#define MYSQL_ERR "\xff\x6a\x04Host '10.0.0.1' is not allowed to connect to this MariaDB server"

static void mysql_cases(void)
{
	static unsigned char sslreq[36], prog[600], mod[512];
	struct exchange ex;
	struct result r;
	size_t n;

	greeting_len = unhex(mdb_greeting, greeting);
	response_len = unhex(mdb_response, response);
	ok(greeting_len == 104 && greeting[52] == 0xff && response_len == 0xcd + 4,
	   "mysql: the captured greeting (%zu bytes) and response (%zu bytes)", greeting_len,
	   response_len);
	memcpy(sslreq, "\x20\x00\x00\x01", 4);
	memcpy(sslreq + 4, response + 4, 32);
	sslreq[5] |= 0x08;

	memset(&ex, 0, sizeof ex);
	ex.name = "mysql (MariaDB 10.11 and its client)";
	ex.proto = POLICY_PROTOCOL_MYSQL;
	ex.out = (const char *)sslreq;
	ex.out_len = sizeof sslreq;
	ex.rep[0].bytes = (const char *)greeting;
	ex.rep[0].len = greeting_len;
	memcpy(prog, response, response_len);
	n = unhex(mdb_query, prog + response_len);
	ex.prog = prog;
	ex.prog_len = response_len + n;   /* the program's next packet is never taken */
	memcpy(mod, greeting, greeting_len);
	mod[52] = 0xf7;
	ex.greet = (const char *)mod;
	ex.greet_len = greeting_len;
	ex.want = INBAND_TLS;
	check(&ex);
	run(&ex, 0, 65536, &r);
	ok(r.v == INBAND_TLS && ib.held_len == response_len && ib.held[3] == 2 && ib.held[5] == 0xaa &&
	   !memcmp(ib.held + 6, response + 6, response_len - 6) && !memcmp(ib.held, response, 3) &&
	   ib.held[4] == response[4], "mysql: held[] is the response, sequence 2, CLIENT_SSL set");

	ex.want = INBAND_FAIL;
	ex.out = "";
	ex.out_len = 0;
	ex.greet = NULL;
	ex.name = "mysql: a pre-4.1 client";
	prog[5] &= (unsigned char)~0x02;
	ex.why = "pre-4.1 client";
	check(&ex);
	prog[5] = response[5] | 0x08;
	ex.name = "mysql: the program asks for TLS itself";
	ex.why = "asked for TLS itself";
	check(&ex);
	ex.name = "mysql: a first packet too short";
	ex.prog = packet(0, 1, "\x84\xa2\xbf\x00\x00\x00\x00\x01\x21", 9, &ex.prog_len);
	ex.why = "pre-4.1 client";
	check(&ex);
	ex.name = "mysql: a first packet over INBAND_HELD_MAX";
	ex.prog = (const unsigned char *)"\xff\xff\x00\x01\x84\xa2";
	ex.prog_len = 6;
	ex.why = "longer than 16384 bytes";
	check(&ex);
	ex.name = "mysql: a first packet of sequence 0";
	ex.prog = packet(1, 0, response + 4, response_len - 4, &ex.prog_len);
	ex.why = "sequence ID 0, not 1";
	check(&ex);

	ex.prog = NULL;
	ex.prog_len = 0;
	ex.name = "mysql: no CLIENT_SSL";
	ex.rep[0].bytes = (const char *)mod;
	ex.why = "the server does not offer TLS";
	check(&ex);
	ex.name = "mysql: an ERR packet as greeting";
	ex.rep[0].bytes = (const char *)packet(2, 0, B(MYSQL_ERR), &ex.rep[0].len);
	ex.why = "error 1130: Host '10.0.0.1' is not allowed to connect to this MariaDB server";
	check(&ex);
	ex.name = "mysql: protocol 9";
	ex.rep[0].bytes = (const char *)packet(3, 0, "\x09" "5.0\0abcd", 9, &ex.rep[0].len);
	ex.why = "not protocol 10";
	check(&ex);
	ex.name = "mysql: greeting without capabilities";
	ex.rep[0].bytes = (const char *)packet(4, 0, "\x0a" "5.0\0abcdefghijklm", 18, &ex.rep[0].len);
	ex.why = "too short for its capabilities";
	check(&ex);
	ex.name = "mysql: greeting with no NUL after the version";
	ex.rep[0].bytes = (const char *)packet(5, 0, "\x0a" "5.0abcdefghijklmnopqr", 22, &ex.rep[0].len);
	check(&ex);
	ex.name = "mysql: greeting of sequence 1";
	ex.rep[0].bytes = (const char *)packet(6, 1, greeting + 4, greeting_len - 4, &ex.rep[0].len);
	ex.why = "sequence ID 1, not 0";
	check(&ex);
	ex.name = "mysql: bytes after the greeting";
	memcpy(prog, greeting, greeting_len);
	memcpy(prog + greeting_len, "\x01\x00\x00\x01\x00", 5);
	ex.rep[0].bytes = (const char *)prog;
	ex.rep[0].len = greeting_len + 5;
	ex.why = "before our SSLRequest";
	ex.prog = response;
	ex.prog_len = response_len;
	ex.timing = true;
	check(&ex);
}

/* ---- the renumbering after the handshake */

/* Run SEG[0..NSEG) through M in order (even: from the server, odd: from
 * the program), segment CUTSEG cut at CUT; compare with WANT. */
static bool renumber(unsigned char seg[][512], const size_t *len, int nseg,
		     unsigned char want[][512], int cutseg, size_t cut, bool *done)
{
	struct inband_mysql m;
	unsigned char buf[512];
	int i;

	inband_mysql_start(&m);
	for (i = 0; i < nseg; i++) {
		void (*fn)(struct inband_mysql *, unsigned char *, size_t) =
			i % 2 ? inband_mysql_from_program : inband_mysql_from_server;

		memcpy(buf, seg[i], len[i]);
		if (i == cutseg && cut < len[i]) {
			fn(&m, buf, cut);
			fn(&m, buf + cut, len[i] - cut);
		} else {
			fn(&m, buf, len[i]);
		}
		if (memcmp(buf, want[i], len[i]))
			return false;
	}
	*done = m.done;
	return true;
}

/* Every segment cut at every position, and one byte per call. */
static void renumber_all(const char *what, unsigned char seg[][512], const size_t *len, int nseg,
			 unsigned char want[][512])
{
	struct inband_mysql m;
	unsigned char buf[512];
	bool good = true, done = false;
	size_t c, j;
	int i;

	good = renumber(seg, len, nseg, want, -1, 0, &done) && done;
	ok(good, "mysql renumbering, %s", what);
	for (i = 0; i < nseg && good; i++)
		for (c = 1; c < len[i] && good; c++)
			good = renumber(seg, len, nseg, want, i, c, &done) && done;
	inband_mysql_start(&m);
	for (i = 0; i < nseg && good; i++) {
		memcpy(buf, seg[i], len[i]);
		for (j = 0; j < len[i]; j++)
			(i % 2 ? inband_mysql_from_program : inband_mysql_from_server)(&m, buf + j, 1);
		good = !memcmp(buf, want[i], len[i]);
	}
	ok(good, "mysql renumbering, %s: the same cut anywhere", what);
}

static void renumber_cases(void)
{
	static unsigned char seg[4][512], want[4][512];
	size_t len[4], n;
	bool done = false;

	/* ed25519 user: the server (TLS numbering) switches with 3, the
	 * program signs with 3 (its numbering), the server's OK is 5, then a
	 * query and its result pass unchanged. */
	len[0] = unhex(mdb_switch, seg[0]);
	seg[0][3] = 3;
	len[1] = unhex(mdb_signature, seg[1]);
	len[2] = unhex(mdb_ok, seg[2]);
	seg[2][3] = 5;
	n = unhex(mdb_result, seg[2] + len[2]);
	len[2] += n;
	len[3] = unhex(mdb_query, seg[3]);
	memcpy(want, seg, sizeof want);
	want[0][3] = 2;
	want[1][3] = 4;
	want[2][3] = 4;
	renumber_all("auth switch (0xfe) then OK, then a query", seg, len, 4, want);

	/* caching_sha2 full auth: 01 04 (3 -> 2), the password (3 -> 4),
	 * then ERR (5 -> 4); the program's next bytes pass. */
	memcpy(seg[0], "\x02\x00\x00\x03\x01\x04", 6);
	len[0] = 6;
	memcpy(seg[1], "\x05\x00\x00\x03pass\x00", 9);
	len[1] = 9;
	memcpy(seg[2], "\x00\x00\x00\x05\x05\x00\x00\x06\xff\x15\x04\x23\x32", 13);
	len[2] = 13;
	memcpy(seg[3], "\x01\x00\x00\x00\x01", 5);
	len[3] = 5;
	memcpy(want, seg, sizeof want);
	want[0][3] = 2;
	want[1][3] = 4;
	want[2][3] = 4;  /* an empty packet does not end it */
	want[2][7] = 5;
	renumber_all("more data (0x01), an empty packet, ERR", seg, len, 4, want);

	/* mysql_native_password: straight to OK (3 -> 2), and sequence 0xff+1. */
	memcpy(seg[0], "\x07\x00\x00\x03\x00\x00\x00\x02\x00\x00\x00" "\x01\x00\x00\x00\x00", 16);
	len[0] = 16;
	memcpy(want[0], seg[0], 16);
	want[0][3] = 2;
	renumber_all("native password OK", seg, len, 1, want);
	memcpy(seg[0], "\x01\x00\x00\x00\xfe\x01\x00\x00\x01\x00", 10);
	memcpy(want[0], "\x01\x00\x00\xff\xfe\x01\x00\x00\x00\x00", 10);
	len[0] = 10;
	ok(renumber(seg, len, 1, want, -1, 0, &done) && done, "mysql renumbering: 0 - 1 is 255");
}

static void pg_cases(void)
{
	static const unsigned char ssl[] = PG_REQ, gss[] = "\x00\x00\x00\x08\x04\xd2\x16\x30";
	static const unsigned char startup[] = "\x00\x00\x00\x54\x00\x03\x00\x00user";
	unsigned char both[16];
	size_t i;
	bool good = true;

	ok(inband_pg_program(ssl, 8) == INBAND_PG_ANSWER_N, "postgres: the program's SSLRequest");
	ok(inband_pg_program(gss, 8) == INBAND_PG_ANSWER_N, "postgres: the program's GSSENCRequest");
	memcpy(both, ssl, 8);
	memcpy(both + 8, startup, 8);
	ok(inband_pg_program(both, 16) == INBAND_PG_ANSWER_N, "postgres: SSLRequest then more");
	for (i = 0; i < 8; i++)
		good = good && inband_pg_program(ssl, i) == INBAND_PG_NEED_MORE &&
		       inband_pg_program(gss, i) == INBAND_PG_NEED_MORE;
	ok(good, "postgres: a prefix waits");
	ok(inband_pg_program(startup, 12) == INBAND_PG_PASS, "postgres: a StartupMessage passes");
	ok(inband_pg_program((const unsigned char *)"\x00\x00\x00\x09", 4) == INBAND_PG_PASS,
	   "postgres: another length passes at once");
	ok(inband_pg_program((const unsigned char *)"\x00\x00\x00\x08\x04\xd2\x16\x31", 8) ==
	   INBAND_PG_PASS, "postgres: CancelRequest-like code passes");
}

static void init_cases(void)
{
	enum inband_next v;
	char big[1024];

	memset(big, 'a', sizeof big);
	big[300] = '\0';
	inband_init(&ib, POLICY_PROTOCOL_TLS, big, NULL, NULL);
	ok(inband_next(&ib) == INBAND_FAIL && printable(ib.why, sizeof ib.why),
	   "init: a target too long fails (%s)", ib.why);
	inband_init(&ib, POLICY_PROTOCOL_TLS, "h:1\r\nX: y", NULL, NULL);
	ok(inband_next(&ib) == INBAND_FAIL, "init: a target with CR LF fails (%s)", ib.why);
	big[400] = '\0';
	memset(big, 'a', 400);
	inband_init(&ib, POLICY_PROTOCOL_TLS, "h:1", big, NULL);
	ok(inband_next(&ib) == INBAND_FAIL, "init: credentials too long fail (%s)", ib.why);
	big[399] = '\0';
	inband_init(&ib, POLICY_PROTOCOL_TLS, "h:1", big, NULL);
	v = inband_next(&ib);
	ok(v == INBAND_SEND && ib.out_len == 33 + 27 + 532 + 4,
	   "init: the longest credentials fit (%zu bytes)", ib.out_len);
	memset(big, 'a', 299);
	big[299] = '\0';
	inband_init(&ib, POLICY_PROTOCOL_TLS, big, big, NULL);
	ok(inband_next(&ib) == INBAND_FAIL && strstr(ib.why, "longer than 1024"),
	   "init: a CONNECT too long fails (%s)", ib.why);
	big[256] = '\0';
	inband_init(&ib, POLICY_PROTOCOL_SMTP, NULL, NULL, big);
	ok(inband_next(&ib) == INBAND_FAIL, "init: an EHLO name too long fails (%s)", ib.why);
	inband_init(&ib, POLICY_PROTOCOL_TLS, NULL, NULL, NULL);
	ok(inband_next(&ib) == INBAND_TLS, "init: tls without a proxy starts TLS at once");
	inband_init(&ib, POLICY_PROTOCOL_LDAP, NULL, NULL, NULL);
	ok(inband_eof(&ib) == INBAND_FAIL && inband_next(&ib) == INBAND_FAIL &&
	   strstr(ib.why, "ldap (StartTLS)"), "eof: fails and says so (%s)", ib.why);
	ok(!strcmp(inband_proto_name(POLICY_PROTOCOL_SMTP), "smtp (STARTTLS)") &&
	   !strcmp(inband_proto_name(POLICY_PROTOCOL_TLS), "tls") &&
	   !strcmp(inband_proto_name((enum policy_protocol)99), "unknown"), "protocol names");
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check(&cases[i]);
	long_cases();
	mysql_cases();
	renumber_cases();
	pg_cases();
	init_cases();
	return done();
}
