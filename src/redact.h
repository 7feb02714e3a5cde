/* redact.h - hiding the PIN of a PKCS#11 URI (RFC 7512) before it is shown.
 *
 * One rule for every place that shows a key URI (the log, `tlsshim check`,
 * `tlsshim explain`): a PIN that survives redaction in one of them leaks to
 * a log or a ticket.  Header-only (static inline) because its users live in
 * three separately linked objects: the TLS engine, the core library and the
 * launcher.
 *
 * Where a pin-value ends is where p11-kit (what GnuTLS hands the URI to)
 * ends it, checked against p11-kit 0.24:
 *  - in the path (before the URI's first '?'): at ';' or '?';
 *  - in the query: at '&' only (';', '?', '#' and '/' are part of the PIN);
 *  - anywhere: at whitespace or a control character.  No URI in a policy
 *    holds one (the parser refuses them), so in a text (`tlsshim check`'s
 *    output, "key = URI  # comment") the URI has ended there.
 * Every pin-value is hidden, not only the first (p11-kit uses the last).  The
 * attribute name is matched without regard to case: hiding too much is
 * harmless, too little is not. */
#ifndef TLSSHIM_REDACT_H
#define TLSSHIM_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define REDACT_HIDDEN "(hidden)"

/* Does a pin-value's value end at C?  IN_QUERY: C is in a URI's query. */
static inline bool redact_ends_value(char c, bool in_query)
{
	if (c == '\0' || (unsigned char)c <= 0x20 || c == 0x7f)
		return true;
	return in_query ? c == '&' : c == ';' || c == '?';
}

/* Does S start with "pin-value=" (ASCII, any case)? */
static inline bool redact_at_name(const char *s)
{
	static const char name[] = "pin-value=";
	size_t i;

	for (i = 0; i < sizeof name - 1; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != name[i])
			return false;
	}
	return true;
}

/* The next PIN in S: return its first byte (just after "pin-value=") and set
 * *END one past its last byte, or return NULL when S holds no more.
 * *IN_QUERY carries the scan's state (false at the start of a text); resume
 * the scan at *END with the same *IN_QUERY. */
static inline const char *redact_find_pin(const char *s, bool *in_query, const char **end)
{
	const char *value;

	for (; *s; s++) {
		if ((unsigned char)*s <= 0x20 || *s == 0x7f) {
			*in_query = false; /* a new word: a new URI */
		} else if (*s == '?') {
			*in_query = true;
		} else if (redact_at_name(s)) {
			value = s + strlen("pin-value=");
			*end = value;
			while (!redact_ends_value(**end, *in_query))
				(*end)++;
			return value;
		}
	}
	return NULL;
}

/* Append N bytes of S to OUT (OUTLEN bytes, *LEN used), truncating. */
static inline void redact_append(char *out, size_t outlen, size_t *len, const char *s, size_t n)
{
	if (*len + n > outlen - 1)
		n = outlen - 1 - *len;
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = '\0';
}

/* TEXT (a URI, or a text holding URIs) into OUT (OUTLEN > 0 bytes, always
 * NUL-terminated, truncated if need be) with every PIN replaced by
 * "(hidden)".  No byte of a PIN is ever copied, truncated or not.  Returns
 * true if a PIN was hidden. */
static inline bool redact_pins(const char *text, char *out, size_t outlen)
{
	const char *value, *end;
	bool in_query = false, hidden = false;
	size_t len = 0;

	if (outlen == 0)
		return false;
	out[0] = '\0';
	while ((value = redact_find_pin(text, &in_query, &end)) != NULL) {
		redact_append(out, outlen, &len, text, (size_t)(value - text));
		redact_append(out, outlen, &len, REDACT_HIDDEN, strlen(REDACT_HIDDEN));
		text = end;
		hidden = true;
	}
	redact_append(out, outlen, &len, text, strlen(text));
	return hidden;
}

#endif
