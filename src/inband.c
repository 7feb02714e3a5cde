/* inband.c - TLS negotiated inside a plaintext protocol (inband.h): the
 * proxy's CONNECT, then postgres, smtp, imap, pop3, ldap or mysql.
 *
 * Each stage looks at in[] from its start every time it is asked: a reply
 * is consumed only once it is whole, so a reply cut anywhere by the reads
 * gives the same verdict, and every reply is bounded by INBAND_IN_MAX. */
#include "inband.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { ST_PROXY, ST_PROTO, ST_PROGRAM, ST_DONE, ST_FAILED };

#define MYSQL_CLIENT_PROTOCOL_41 0x0200
#define MYSQL_CLIENT_SSL 0x0800
#define MYSQL_SSLREQUEST_LEN 32
#define MYSQL_LAST_PACKET 0xffffffffu  /* inband_mysql_dir.len: an OK/ERR is passing */
#define IMAP_TAG "tls0"

static const unsigned char pg_ssl_request[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
static const unsigned char pg_gssenc_request[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30 };

/* LDAPMessage { messageID 1, extendedReq [APPLICATION 23] { requestName [0]
 * "1.3.6.1.4.1.1466.20037" } } (RFC 4511 4.12, RFC 4513 3). */
static const unsigned char ldap_starttls[] = {
	0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16,
	'1', '.', '3', '.', '6', '.', '1', '.', '4', '.', '1', '.',
	'1', '4', '6', '6', '.', '2', '0', '0', '3', '7',
};

/* Copy N bytes of SRC (a server's line: its CR LF dropped) into DST as
 * printable ASCII, each other byte shown as '?'; always NUL-terminated. */
static void quote(char *dst, size_t size, const unsigned char *src, size_t n)
{
	size_t i;

	while (n > 0 && (src[n - 1] == '\n' || src[n - 1] == '\r'))
		n--;
	for (i = 0; i < n && i + 1 < size; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
	if (size > 0)
		dst[i] = '\0';
}

/* Fail the negotiation: why[] from FMT, made printable ASCII.  Return
 * INBAND_FAIL. */
__attribute__((format(printf, 2, 3)))
static enum inband_next fail(struct inband *ib, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(ib->why, sizeof ib->why, fmt, ap);
	va_end(ap);
	for (i = 0; ib->why[i]; i++)
		if ((unsigned char)ib->why[i] < 0x20 || (unsigned char)ib->why[i] >= 0x7f)
			ib->why[i] = '?';
	ib->stage = ST_FAILED;
	ib->out_len = ib->out_off = 0;
	return INBAND_FAIL;
}

/* Fail with WHAT followed by the server's line LINE (N bytes). */
static enum inband_next fail_line(struct inband *ib, const char *what,
				  const unsigned char *line, size_t n)
{
	char q[INBAND_WHY_MAX];

	quote(q, sizeof q, line, n);
	return fail(ib, "%s: %s", what, q);
}

/* No verdict yet: ask for more server bytes, or fail if in[] is full. */
static enum inband_next need_more(struct inband *ib)
{
	if (ib->in_len >= INBAND_IN_MAX)
		return fail(ib, "the %s sent %d bytes without a complete reply",
			    ib->stage == ST_PROXY ? "proxy" : "server", INBAND_IN_MAX);
	return INBAND_READ;
}

/* Drop the first N bytes of in[] (a reply that was dealt with). */
static void consume(struct inband *ib, size_t n)
{
	memmove(ib->in, ib->in + n, ib->in_len - n);
	ib->in_len -= n;
}

/* Queue TEXT (LEN bytes) as our next request: INBAND_SEND. */
static enum inband_next send_bytes(struct inband *ib, const void *text, size_t len)
{
	if (len > sizeof ib->out)
		return fail(ib, "our %s request would be longer than %d bytes",
			    inband_proto_name(ib->proto), INBAND_OUT_MAX);
	memcpy(ib->out, text, len);
	ib->out_len = len;
	ib->out_off = 0;
	ib->step++;
	return INBAND_SEND;
}

/* Before a request: the server must not have sent anything unasked. */
static enum inband_next unasked(struct inband *ib, const char *before)
{
	return fail(ib, "the server sent %zu bytes before our %s, unasked", ib->in_len, before);
}

/* The reply that starts TLS was consumed: TLS now if nothing follows it
 * (STARTTLS command injection, CVE-2011-0411), else fail. */
static enum inband_next start_tls(struct inband *ib, const char *after)
{
	if (ib->in_len > 0)
		return fail(ib, "the %s sent %zu bytes after %s, before the TLS handshake "
			    "(command injection?)", ib->stage == ST_PROXY ? "proxy" : "server",
			    ib->in_len, after);
	ib->stage = ST_DONE;
	return INBAND_TLS;
}

/* The line starting at OFF in in[]: its length with the LF, 0 if it is not
 * complete yet, -1 (failed) if it is longer than INBAND_LINE_MAX. */
static long line_at(struct inband *ib, size_t off)
{
	const unsigned char *lf = memchr(ib->in + off, '\n', ib->in_len - off);
	size_t n = lf ? (size_t)(lf - (ib->in + off)) + 1 : ib->in_len - off;

	if (n > INBAND_LINE_MAX || (!lf && n >= INBAND_LINE_MAX)) {
		fail(ib, "the %s sent a line longer than %d bytes",
		     ib->stage == ST_PROXY ? "proxy" : "server", INBAND_LINE_MAX);
		return -1;
	}
	return lf ? (long)n : 0;
}

/* LINE (N bytes) starts with WORD, case-insensitively, followed by a space
 * or the end of the line. */
static bool word_is(const unsigned char *line, size_t n, const char *word)
{
	size_t w = strlen(word), i;

	if (n < w)
		return false;
	for (i = 0; i < w; i++) {
		unsigned char c = line[i];

		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		if (c != (unsigned char)word[i])
			return false;
	}
	return n == w || line[w] == ' ' || line[w] == '\r' || line[w] == '\n';
}

/* ---- the proxy's CONNECT */

/* Base64 (RFC 4648, padded) of SRC into DST (room for SIZE, NUL included):
 * false if it does not fit. */
static bool base64(char *dst, size_t size, const char *src)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(src), i, o = 0;
	uint32_t v;

	if ((n + 2) / 3 * 4 + 1 > size)
		return false;
	for (i = 0; i < n; i += 3) {
		v = (uint32_t)(unsigned char)src[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)src[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)src[i + 2];
		dst[o++] = abc[v >> 18 & 63];
		dst[o++] = abc[v >> 12 & 63];
		dst[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
		dst[o++] = i + 2 < n ? abc[v & 63] : '=';
	}
	dst[o] = '\0';
	return true;
}

/* CONNECT target HTTP/1.1, Host, Proxy-Authorization when there is one. */
static enum inband_next proxy_request(struct inband *ib)
{
	char b64[sizeof ib->auth / 3 * 4 + 8];
	int n;

	if (!base64(b64, sizeof b64, ib->auth))
		return fail(ib, "the proxy credentials are too long");
	if (ib->auth[0])
		n = snprintf((char *)ib->out, sizeof ib->out,
			     "CONNECT %s HTTP/1.1\r\nHost: %s\r\n"
			     "Proxy-Authorization: Basic %s\r\n\r\n", ib->target, ib->target, b64);
	else
		n = snprintf((char *)ib->out, sizeof ib->out,
			     "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", ib->target, ib->target);
	if (n < 0 || (size_t)n >= sizeof ib->out)
		return fail(ib, "the CONNECT request would be longer than %d bytes",
			    INBAND_OUT_MAX);
	ib->out_len = (size_t)n;
	ib->out_off = 0;
	ib->step++;
	return INBAND_SEND;
}

/* The status line "HTTP/1.x 2xx ..." (N bytes) says the tunnel is open. */
static bool proxy_status_ok(const unsigned char *line, size_t n)
{
	if (n < 12 || (memcmp(line, "HTTP/1.0 ", 9) && memcmp(line, "HTTP/1.1 ", 9)))
		return false;
	if (line[9] != '2' || line[10] < '0' || line[10] > '9' ||
	    line[11] < '0' || line[11] > '9')
		return false;
	return n == 12 || line[12] == ' ' || line[12] == '\r' || line[12] == '\n';
}

/* The proxy's reply: a 2xx status line, headers to the empty line.  Bytes
 * after it stay in in[] for the protocol stage. */
static enum inband_next proxy_reply(struct inband *ib)
{
	size_t off = 0;
	long n;

	while ((n = line_at(ib, off)) > 0) {
		const unsigned char *line = ib->in + off;

		if (off == 0 && !proxy_status_ok(line, (size_t)n))
			return fail_line(ib, "the proxy refused the CONNECT", line, (size_t)n);
		off += (size_t)n;
		if (off > (size_t)n && (n == 1 || (n == 2 && line[0] == '\r'))) {
			consume(ib, off);
			if (ib->proto == POLICY_PROTOCOL_TLS)
				return start_tls(ib, "its 2xx reply to CONNECT");
			ib->stage = ST_PROTO;
			ib->step = 0;
			return inband_next(ib);
		}
	}
	return n < 0 ? INBAND_FAIL : need_more(ib);
}

/* ---- postgres */

static enum inband_next postgres_step(struct inband *ib)
{
	unsigned char c;

	if (ib->step == 0) {
		if (ib->in_len > 0)
			return unasked(ib, "SSLRequest");
		return send_bytes(ib, pg_ssl_request, sizeof pg_ssl_request);
	}
	if (ib->in_len == 0)
		return need_more(ib);
	c = ib->in[0];
	if (c == 'S') {
		consume(ib, 1);
		return start_tls(ib, "its 'S' to SSLRequest");
	}
	if (c == 'N')
		return fail(ib, "the server does not do TLS (answered N to SSLRequest)");
	if (c == 'E')
		return fail(ib, "the server answered SSLRequest with an error ('E'), not 'S'");
	return fail(ib, "the server answered SSLRequest with byte 0x%02x, not 'S'", c);
}

/* ---- text replies: smtp, imap, pop3 */

/* One SMTP reply (RFC 5321 4.2: "250-..." lines, then "250 ..." or "250"):
 * 1 and its code and length in *CODE, *END; 0 not complete; -1 failed. */
static int smtp_reply(struct inband *ib, int *code, size_t *end)
{
	size_t off = 0, tl;
	long n;

	while ((n = line_at(ib, off)) > 0) {
		const unsigned char *line = ib->in + off;
		int c;

		tl = (size_t)n - 1 - (n >= 2 && line[n - 2] == '\r');
		if (tl < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
		    line[2] < '0' || line[2] > '9' || (tl > 3 && line[3] != '-' && line[3] != ' ')) {
			fail_line(ib, "the server's reply is not SMTP", line, (size_t)n);
			return -1;
		}
		c = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (off > 0 && c != *code) {
			fail_line(ib, "the server's reply mixes codes", line, (size_t)n);
			return -1;
		}
		*code = c;
		off += (size_t)n;
		if (tl == 3 || line[3] == ' ') {
			*end = off;
			return 1;
		}
	}
	return n < 0 ? -1 : 0;
}

/* The 250 reply to EHLO (END bytes) lists STARTTLS among its keywords
 * (every line but the first, which names the server). */
static bool smtp_has_starttls(const unsigned char *reply, size_t end)
{
	const unsigned char *line = reply, *lf;

	while ((lf = memchr(line, '\n', end - (size_t)(line - reply))) != NULL) {
		if (line != reply && word_is(line + 4, (size_t)(lf + 1 - line) - 4, "STARTTLS"))
			return true;
		line = lf + 1;
	}
	return false;
}

/* Step 0: the 220 greeting (kept for the program), EHLO; step 1: 250
 * with STARTTLS, STARTTLS; step 2: 220 -> TLS. */
static enum inband_next smtp_step(struct inband *ib)
{
	static const int want[] = { 220, 250, 220 };
	static const char *const refused[] = {
		"the server refused us", "the server refused EHLO", "the server refused STARTTLS",
	};
	char ehlo[sizeof ib->ehlo + 8];
	const unsigned char *lf;
	size_t end = 0;
	int code = 0, r;

	r = smtp_reply(ib, &code, &end);
	if (r <= 0)
		return r < 0 ? INBAND_FAIL : need_more(ib);
	if (code != want[ib->step]) {
		lf = memchr(ib->in, '\n', end);
		return fail_line(ib, refused[ib->step], ib->in, (size_t)(lf - ib->in) + 1);
	}
	if (ib->step == 2) {
		consume(ib, end);
		return start_tls(ib, "its 220 reply to STARTTLS");
	}
	if (ib->step == 0) {
		if (end > sizeof ib->greet)
			return fail(ib, "the server's greeting is longer than %d bytes",
				    INBAND_GREET_MAX);
		memcpy(ib->greet, ib->in, end);
		ib->greet_len = end;
		ib->greet_done = true;
		consume(ib, end);
		if (ib->in_len > 0)
			return unasked(ib, "EHLO");
		r = snprintf(ehlo, sizeof ehlo, "EHLO %s\r\n", ib->ehlo);
		return send_bytes(ib, ehlo, (size_t)r);
	}
	if (!smtp_has_starttls(ib->in, end))
		return fail(ib, "the server does not offer STARTTLS (not among its EHLO keywords)");
	consume(ib, end);
	if (ib->in_len > 0)
		return unasked(ib, "STARTTLS");
	return send_bytes(ib, "STARTTLS\r\n", 10);
}

/* The IMAP greeting LINE (N bytes, "* OK ...") into greet[] without a
 * [CAPABILITY ...] response code. */
static void imap_keep_greeting(struct inband *ib, const unsigned char *line, size_t n)
{
	const unsigned char *rest = line + 4, *end = line + n, *close;
	size_t len;

	while (rest < end && *rest == ' ')
		rest++;
	if (rest < end && *rest == '[' && word_is(rest + 1, (size_t)(end - rest - 1), "CAPABILITY") &&
	    (close = memchr(rest, ']', (size_t)(end - rest))) != NULL) {
		rest = close + 1;
		while (rest < end && *rest == ' ')
			rest++;
	}
	memcpy(ib->greet, line, 4);
	len = 4;
	if (rest < end && *rest != '\r' && *rest != '\n') {
		ib->greet[len++] = ' ';
		memcpy(ib->greet + len, rest, (size_t)(end - rest));
		len += (size_t)(end - rest);
	} else {
		memcpy(ib->greet + len, " ready\r\n", 8);
		len += 8;
	}
	ib->greet_len = len;
	ib->greet_done = true;
}

/* "* OK" greeting; tls0 STARTTLS; untagged lines skipped; tls0 OK. */
static enum inband_next imap_step(struct inband *ib)
{
	size_t off = 0;
	long n;
	const unsigned char *line;

	if (ib->step == 0) {
		if ((n = line_at(ib, 0)) <= 0)
			return n < 0 ? INBAND_FAIL : need_more(ib);
		line = ib->in;
		if (word_is(line, (size_t)n, "* PREAUTH"))
			return fail_line(ib, "the server pre-authenticated us (STARTTLS not allowed)",
					 line, (size_t)n);
		if (!word_is(line, (size_t)n, "* OK"))
			return fail_line(ib, "the server refused us", line, (size_t)n);
		imap_keep_greeting(ib, line, (size_t)n);
		consume(ib, (size_t)n);
		if (ib->in_len > 0)
			return unasked(ib, "STARTTLS");
		return send_bytes(ib, IMAP_TAG " STARTTLS\r\n", sizeof IMAP_TAG + 10);
	}
	while ((n = line_at(ib, off)) > 0) {
		line = ib->in + off;
		off += (size_t)n;
		if (n >= 2 && line[0] == '*' && line[1] == ' ')
			continue;
		if ((size_t)n <= sizeof IMAP_TAG || memcmp(line, IMAP_TAG " ", sizeof IMAP_TAG))
			return fail_line(ib, "the server's reply to STARTTLS is not ours", line,
					 (size_t)n);
		if (!word_is(line + sizeof IMAP_TAG, (size_t)n - sizeof IMAP_TAG, "OK"))
			return fail_line(ib, "the server refused STARTTLS", line, (size_t)n);
		consume(ib, off);
		return start_tls(ib, "its OK to STARTTLS");
	}
	return n < 0 ? INBAND_FAIL : need_more(ib);
}

/* "+OK" greeting (kept for the program); STLS; "+OK". */
static enum inband_next pop3_step(struct inband *ib)
{
	long n = line_at(ib, 0);
	const unsigned char *line = ib->in;

	if (n <= 0)
		return n < 0 ? INBAND_FAIL : need_more(ib);
	if (!word_is(line, (size_t)n, "+OK"))
		return fail_line(ib, ib->step == 0 ? "the server refused us" :
				 "the server refused STLS", line, (size_t)n);
	if (ib->step == 0) {
		memcpy(ib->greet, line, (size_t)n);
		ib->greet_len = (size_t)n;
		ib->greet_done = true;
		consume(ib, (size_t)n);
		if (ib->in_len > 0)
			return unasked(ib, "STLS");
		return send_bytes(ib, "STLS\r\n", 6);
	}
	consume(ib, (size_t)n);
	return start_tls(ib, "its +OK to STLS");
}

/* ---- ldap */

/* A BER tag and length at *POS of BUF (LEN bytes): 1 and *POS past them,
 * 0 if BUF ends first, -1 if malformed (high tag numbers, the indefinite
 * form, lengths over 4 bytes). */
static int ber_head(const unsigned char *buf, size_t len, size_t *pos, unsigned char *tag,
		    size_t *vlen)
{
	size_t p = *pos, n, i;

	if (p >= len)
		return 0;
	*tag = buf[p++];
	if ((*tag & 0x1f) == 0x1f)
		return -1;
	if (p >= len)
		return 0;
	if (buf[p] < 0x80) {
		*vlen = buf[p++];
	} else {
		n = buf[p++] & 0x7f;
		if (n == 0 || n > 4)
			return -1;
		if (p + n > len)
			return 0;
		for (*vlen = 0, i = 0; i < n; i++)
			*vlen = *vlen << 8 | buf[p++];
	}
	*pos = p;
	return 1;
}

/* The element of tag WANT at *POS within BUF (END bytes): its value's
 * start in *VAL and length in *VLEN, *POS past it; false if absent or
 * malformed. */
static bool ber_take(const unsigned char *buf, size_t end, size_t *pos, unsigned char want,
		     size_t *val, size_t *vlen)
{
	size_t p = *pos;
	unsigned char tag;

	if (ber_head(buf, end, &p, &tag, vlen) != 1 || tag != want || *vlen > end - p)
		return false;
	*val = p;
	*pos = p + *vlen;
	return true;
}

/* A non-negative INTEGER or ENUMERATED value of 1 to 4 bytes. */
static bool ber_uint(const unsigned char *v, size_t n, uint32_t *out)
{
	size_t i;

	if (n < 1 || n > 4 || (v[0] & 0x80))
		return false;
	for (*out = 0, i = 0; i < n; i++)
		*out = *out << 8 | v[i];
	return true;
}

/* The ExtendedResponse inside the whole LDAPMessage in[0..total). */
static enum inband_next ldap_response(struct inband *ib, size_t pos, size_t total)
{
	const unsigned char *b = ib->in;
	size_t val, vlen, op_end, dn, dnlen, msg = 0, msglen = 0, i;
	uint32_t id, code;
	char diag[200] = "";

	if (!ber_take(b, total, &pos, 0x02, &val, &vlen) || !ber_uint(b + val, vlen, &id))
		return fail(ib, "the server's reply to StartTLS is not LDAP (no message ID)");
	if (id != 0 && id != 1)
		return fail(ib, "the server answered StartTLS with message ID %u, not 1", id);
	if (!ber_take(b, total, &pos, 0x78, &val, &vlen))
		return fail(ib, "the server's reply to StartTLS is not an ExtendedResponse");
	op_end = val + vlen;
	pos = val;
	if (!ber_take(b, op_end, &pos, 0x0a, &val, &vlen) || !ber_uint(b + val, vlen, &code) ||
	    !ber_take(b, op_end, &pos, 0x04, &dn, &dnlen) ||
	    !ber_take(b, op_end, &pos, 0x04, &msg, &msglen))
		return fail(ib, "the server's ExtendedResponse to StartTLS is malformed");
	for (i = 0; i < msglen && b[msg + i] >= 0x20 && b[msg + i] < 0x7f; i++)
		;
	if (msglen > 0 && i == msglen)
		snprintf(diag, sizeof diag, ": %.*s", (int)msglen, (const char *)b + msg);
	if (id == 0)
		return fail(ib, "the server disconnected us (Notice of Disconnection, "
			    "resultCode %u)%s", code, diag);
	if (code != 0)
		return fail(ib, "the server refused StartTLS: resultCode %u%s", code, diag);
	consume(ib, total);
	return start_tls(ib, "its StartTLS success");
}

/* Send the StartTLS request; wait for one whole LDAPMessage. */
static enum inband_next ldap_step(struct inband *ib)
{
	size_t pos = 0, vlen = 0;
	unsigned char tag = 0;
	int r;

	if (ib->step == 0) {
		if (ib->in_len > 0)
			return unasked(ib, "StartTLS request");
		return send_bytes(ib, ldap_starttls, sizeof ldap_starttls);
	}
	r = ber_head(ib->in, ib->in_len, &pos, &tag, &vlen);
	if (r == 0)
		return need_more(ib);
	if (r < 0 || tag != 0x30)
		return fail(ib, "the server's reply to StartTLS is not an LDAP message");
	if (vlen > INBAND_IN_MAX - pos)
		return fail(ib, "the server's reply to StartTLS is longer than %d bytes",
			    INBAND_IN_MAX);
	if (ib->in_len < pos + vlen)
		return need_more(ib);
	return ldap_response(ib, pos, pos + vlen);
}

/* ---- mysql */

static uint32_t le24(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16;
}

/* An ERR packet's payload P (N bytes, 0xff first) as the failure. */
static enum inband_next mysql_err(struct inband *ib, const unsigned char *p, size_t n)
{
	char q[200];
	size_t skip = 3;

	if (n < 3)
		return fail(ib, "the server refused the connection (a short error packet)");
	if (n >= 9 && p[3] == '#')
		skip = 9;
	quote(q, sizeof q, p + skip, n - skip);
	return fail(ib, "the server refused the connection: error %u: %s",
		    (unsigned)p[1] | (unsigned)p[2] << 8, q);
}

/* The server's HandshakeV10: CLIENT_SSL required; greet[] gets it with
 * CLIENT_SSL cleared for the program (INBAND_PROGRAM). */
static enum inband_next mysql_step(struct inband *ib)
{
	const unsigned char *p = ib->in + 4, *nul;
	size_t total, plen, caps;

	if (ib->in_len < 4)
		return need_more(ib);
	plen = le24(ib->in);
	total = 4 + plen;
	if (total > INBAND_GREET_MAX)
		return fail(ib, "the server's greeting is longer than %d bytes", INBAND_GREET_MAX);
	if (ib->in_len < total)
		return need_more(ib);
	if (ib->in[3] != 0)
		return fail(ib, "the server's greeting has sequence ID %u, not 0", ib->in[3]);
	if (plen > 0 && p[0] == 0xff)
		return mysql_err(ib, p, plen);
	if (plen == 0 || p[0] != 10)
		return fail(ib, "the server's greeting is not protocol 10 (first byte 0x%02x)",
			    plen ? p[0] : 0);
	nul = memchr(p + 1, 0, plen - 1);
	caps = nul ? (size_t)(nul - p) + 1 + 4 + 8 + 1 : plen;
	if (caps + 2 > plen)
		return fail(ib, "the server's greeting is too short for its capabilities");
	if (!(p[caps + 1] & MYSQL_CLIENT_SSL >> 8))
		return fail(ib, "the server does not offer TLS (no CLIENT_SSL in its greeting)");
	memcpy(ib->greet, ib->in, total);
	ib->greet[4 + caps + 1] &= (unsigned char)~(MYSQL_CLIENT_SSL >> 8);
	ib->greet_len = total;
	ib->greet_done = true;
	consume(ib, total);
	if (ib->in_len > 0)
		return unasked(ib, "SSLRequest");
	ib->stage = ST_PROGRAM;
	ib->step = 0;
	return INBAND_PROGRAM;
}

/* The program's first packet is whole in held[]: check it, queue the
 * SSLRequest (its first 32 payload bytes, CLIENT_SSL set, sequence 1) and
 * make held[] sequence 2 with CLIENT_SSL set. */
static void mysql_program_packet(struct inband *ib)
{
	size_t plen = ib->held_len - 4;
	unsigned caps = plen >= 2 ? (unsigned)ib->held[4] | (unsigned)ib->held[5] << 8 : 0;

	if (ib->held[3] != 1) {
		fail(ib, "the program's first packet has sequence ID %u, not 1", ib->held[3]);
		return;
	}
	if (!(caps & MYSQL_CLIENT_PROTOCOL_41) || plen < MYSQL_SSLREQUEST_LEN) {
		fail(ib, "the program is a pre-4.1 client (no CLIENT_PROTOCOL_41 HandshakeResponse)");
		return;
	}
	if (caps & MYSQL_CLIENT_SSL) {
		fail(ib, "the program asked for TLS itself (CLIENT_SSL): turn it off in the "
		     "program, tlsshim provides TLS");
		return;
	}
	ib->out[0] = MYSQL_SSLREQUEST_LEN;
	ib->out[1] = ib->out[2] = 0;
	ib->out[3] = 1;
	memcpy(ib->out + 4, ib->held + 4, MYSQL_SSLREQUEST_LEN);
	ib->out[5] |= MYSQL_CLIENT_SSL >> 8;
	ib->out_len = 4 + MYSQL_SSLREQUEST_LEN;
	ib->out_off = 0;
	ib->held[5] |= MYSQL_CLIENT_SSL >> 8;
	ib->held[3] = 2;
	ib->step = 1;
}

ssize_t inband_program(struct inband *ib, const void *buf, size_t len)
{
	const unsigned char *b = buf;
	size_t taken = 0, total, n;

	if (ib->stage != ST_PROGRAM || ib->step != 0)
		return ib->stage == ST_FAILED ? -1 : 0;
	while (ib->held_len < 4 && taken < len)
		ib->held[ib->held_len++] = b[taken++];
	if (ib->held_len < 4)
		return (ssize_t)taken;
	total = 4 + (size_t)le24(ib->held);
	if (total > INBAND_HELD_MAX) {
		fail(ib, "the program's first packet is longer than %d bytes", INBAND_HELD_MAX);
		return -1;
	}
	n = total - ib->held_len < len - taken ? total - ib->held_len : len - taken;
	memcpy(ib->held + ib->held_len, b + taken, n);
	ib->held_len += n;
	taken += n;
	if (ib->held_len == total) {
		mysql_program_packet(ib);
		if (ib->stage == ST_FAILED)
			return -1;
	}
	return (ssize_t)taken;
}

/* ---- the state machine */

static enum inband_next proto_step(struct inband *ib)
{
	switch (ib->proto) {
	case POLICY_PROTOCOL_TLS:
		return start_tls(ib, "its reply");
	case POLICY_PROTOCOL_POSTGRES:
		return postgres_step(ib);
	case POLICY_PROTOCOL_SMTP:
		return smtp_step(ib);
	case POLICY_PROTOCOL_IMAP:
		return imap_step(ib);
	case POLICY_PROTOCOL_POP3:
		return pop3_step(ib);
	case POLICY_PROTOCOL_LDAP:
		return ldap_step(ib);
	case POLICY_PROTOCOL_MYSQL:
		return mysql_step(ib);
	}
	return fail(ib, "unknown protocol %d", (int)ib->proto);
}

enum inband_next inband_next(struct inband *ib)
{
	if (ib->stage == ST_FAILED)
		return INBAND_FAIL;
	if (ib->out_off < ib->out_len)
		return INBAND_SEND;
	ib->out_off = ib->out_len = 0;
	switch (ib->stage) {
	case ST_PROXY:
		return ib->step == 0 ? proxy_request(ib) : proxy_reply(ib);
	case ST_PROTO:
		return proto_step(ib);
	case ST_PROGRAM:
		/* Waiting for the program's first packet, or it was sent. */
		return ib->step == 0 ? INBAND_PROGRAM : start_tls(ib, "its greeting");
	case ST_DONE:
		return INBAND_TLS;
	}
	return fail(ib, "internal: stage %d", ib->stage);
}

enum inband_next inband_eof(struct inband *ib)
{
	char q[80];

	if (ib->stage == ST_FAILED)
		return INBAND_FAIL;
	quote(q, sizeof q, ib->in, ib->in_len);
	if (ib->stage == ST_PROXY)
		return fail(ib, "the proxy closed the connection before its reply to CONNECT%s%s",
			    ib->in_len ? " after: " : "", q);
	return fail(ib, "the server closed the connection during the %s negotiation%s%s",
		    inband_proto_name(ib->proto), ib->in_len ? " after: " : "", q);
}

/* S (may be NULL) fits a field of SIZE and holds no control character,
 * space or non-ASCII byte (it goes into a request line). */
static bool field_ok(const char *s, size_t size)
{
	size_t i;

	for (i = 0; s && s[i]; i++)
		if (i + 1 >= size || (unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

void inband_init(struct inband *ib, enum policy_protocol proto, const char *proxy_target,
		 const char *proxy_auth, const char *ehlo)
{
	memset(ib, 0, sizeof *ib);
	ib->proto = proto;
	ib->stage = proxy_target && proxy_target[0] ? ST_PROXY : ST_PROTO;
	if (!field_ok(proxy_target, sizeof ib->target)) {
		fail(ib, "the proxy target is too long or not printable");
		return;
	}
	if (proxy_auth && strlen(proxy_auth) >= sizeof ib->auth) {
		fail(ib, "the proxy credentials are longer than %zu bytes", sizeof ib->auth - 1);
		return;
	}
	if (ehlo && strlen(ehlo) >= sizeof ib->ehlo) {
		fail(ib, "the EHLO name is longer than %zu bytes", sizeof ib->ehlo - 1);
		return;
	}
	if (proxy_target)
		strcpy(ib->target, proxy_target);
	if (proxy_auth)
		strcpy(ib->auth, proxy_auth);
	strcpy(ib->ehlo, ehlo && ehlo[0] && field_ok(ehlo, sizeof ib->ehlo) ? ehlo : "localhost");
}

enum inband_pg inband_pg_program(const unsigned char *buf, size_t len)
{
	size_t n = len < INBAND_PG_REQUEST_LEN ? len : INBAND_PG_REQUEST_LEN;

	if (len == 0)
		return INBAND_PG_NEED_MORE;
	if (memcmp(buf, pg_ssl_request, n) && memcmp(buf, pg_gssenc_request, n))
		return INBAND_PG_PASS;
	return len < INBAND_PG_REQUEST_LEN ? INBAND_PG_NEED_MORE : INBAND_PG_ANSWER_N;
}

/* ---- mysql sequence IDs after the handshake */

void inband_mysql_start(struct inband_mysql *m)
{
	memset(m, 0, sizeof *m);
}

/* Renumber the packets of one direction in BUF (LEN bytes) by DELTA; a
 * server's OK or ERR (SERVER) ends the renumbering once it has passed. */
static void mysql_renumber(struct inband_mysql *m, struct inband_mysql_dir *d,
			   unsigned char *buf, size_t len, uint8_t delta, bool server)
{
	size_t i = 0, n;

	while (i < len && !m->done) {
		if (d->hpos < 4) {
			if (d->hpos < 3)
				d->len |= (uint32_t)buf[i] << (8 * d->hpos);
			else
				buf[i] = (uint8_t)(buf[i] + delta);
			d->hpos++;
			i++;
			if (d->hpos == 4) {
				d->left = d->len;
				d->first = true;
				if (d->left == 0) {
					d->hpos = 0;
					d->len = 0;
				}
			}
			continue;
		}
		if (d->first) {
			d->first = false;
			if (server && (buf[i] == 0x00 || buf[i] == 0xff))
				d->len = MYSQL_LAST_PACKET;
		}
		n = d->left < len - i ? d->left : len - i;
		d->left -= (uint32_t)n;
		i += n;
		if (d->left == 0) {
			if (d->len == MYSQL_LAST_PACKET)
				m->done = true;
			d->hpos = 0;
			d->len = 0;
		}
	}
}

void inband_mysql_from_program(struct inband_mysql *m, unsigned char *buf, size_t len)
{
	mysql_renumber(m, &m->up, buf, len, 1, false);
}

void inband_mysql_from_server(struct inband_mysql *m, unsigned char *buf, size_t len)
{
	mysql_renumber(m, &m->down, buf, len, 0xff, true);
}

const char *inband_proto_name(enum policy_protocol proto)
{
	switch (proto) {
	case POLICY_PROTOCOL_TLS:
		return "tls";
	case POLICY_PROTOCOL_POSTGRES:
		return "postgres (SSLRequest)";
	case POLICY_PROTOCOL_SMTP:
		return "smtp (STARTTLS)";
	case POLICY_PROTOCOL_IMAP:
		return "imap (STARTTLS)";
	case POLICY_PROTOCOL_POP3:
		return "pop3 (STLS)";
	case POLICY_PROTOCOL_LDAP:
		return "ldap (StartTLS)";
	case POLICY_PROTOCOL_MYSQL:
		return "mysql (SSLRequest)";
	}
	return "unknown";
}
