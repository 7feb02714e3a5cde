/* redact_test.c - unit tests for PIN redaction (redact.h).  No PIN digit may
 * survive, wherever the pin-value sits in a PKCS#11 URI, and the rest of the
 * URI is kept. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "redact.h"
#include "tap.h"

/* Does S hold a digit of a PIN?  The test PINs are made of 2 to 9 (also
 * when percent-encoded: %32 is "2"); the rest of the test URIs holds no
 * digit but the 1s of "pkcs11". */
static bool has_digit(const char *s)
{
	for (; *s; s++)
		if (*s >= '2' && *s <= '9')
			return true;
	return false;
}

/* Redact URI; it must come out as WANT, with no digit left. */
static void hides(const char *uri, const char *want, const char *what)
{
	char out[512];
	bool hidden = redact_pins(uri, out, sizeof out);

	ok(hidden && !has_digit(out) && strcmp(out, want) == 0, "%s: %s -> %s", what, uri, out);
	if (strcmp(out, want) != 0)
		diag("wanted %s", want);
}

/* The same through the scanner, as `tlsshim check` uses it on a text. */
static void text_hides(const char *text, const char *want, const char *what)
{
	char out[1024];
	const char *value, *end, *at = text;
	bool in_query = false;
	size_t len = 0;

	out[0] = '\0';
	while ((value = redact_find_pin(at, &in_query, &end)) != NULL) {
		len += (size_t)snprintf(out + len, sizeof out - len, "%.*s%s", (int)(value - at), at,
					REDACT_HIDDEN);
		at = end;
	}
	snprintf(out + len, sizeof out - len, "%s", at);
	ok(!has_digit(out) && strcmp(out, want) == 0, "%s: %s", what, out);
}

static void test_positions(void)
{
	hides("pkcs11:token=t;object=c?pin-value=2345", "pkcs11:token=t;object=c?pin-value=(hidden)",
	      "query, last");
	hides("pkcs11:token=t?pin-value=2345&module-name=m", "pkcs11:token=t?pin-value=(hidden)&module-name=m",
	      "query, first");
	hides("pkcs11:token=t?module-name=m&pin-value=2345&x=y",
	      "pkcs11:token=t?module-name=m&pin-value=(hidden)&x=y", "query, middle");
	hides("pkcs11:pin-value=2345;token=t", "pkcs11:pin-value=(hidden);token=t", "path, first");
	hides("pkcs11:token=t;pin-value=2345", "pkcs11:token=t;pin-value=(hidden)", "path, last");
	hides("pkcs11:token=t;pin-value=2345?module-name=m", "pkcs11:token=t;pin-value=(hidden)?module-name=m",
	      "path, before the query");
	hides("pkcs11:token=t?pin-value=%32%33%34%35", "pkcs11:token=t?pin-value=(hidden)", "percent-encoded");
	hides("pkcs11:token=t?pin-value=%32%33&x=y", "pkcs11:token=t?pin-value=(hidden)&x=y",
	      "percent-encoded, then more");
	hides("pkcs11:token=t?PIN-Value=2345", "pkcs11:token=t?PIN-Value=(hidden)", "name in capitals");
}

/* p11-kit 0.24 reads the query's pin-value up to '&' only: ";", "?", "#"
 * and "/" there are part of the PIN, and p11-kit uses the last pin-value. */
static void test_query_characters(void)
{
	hides("pkcs11:token=t?pin-value=23;45", "pkcs11:token=t?pin-value=(hidden)", "';' inside a query PIN");
	hides("pkcs11:token=t?pin-value=23;45&x=y", "pkcs11:token=t?pin-value=(hidden)&x=y",
	      "';' inside a query PIN, then more");
	hides("pkcs11:token=t?pin-value=23?45", "pkcs11:token=t?pin-value=(hidden)", "'?' inside a query PIN");
	hides("pkcs11:token=t?pin-value=23#45", "pkcs11:token=t?pin-value=(hidden)", "'#' inside a query PIN");
	hides("pkcs11:token=t?pin-value=23/45", "pkcs11:token=t?pin-value=(hidden)", "'/' inside a query PIN");
	hides("pkcs11:token=t?pin-value=2345&pin-value=6789",
	      "pkcs11:token=t?pin-value=(hidden)&pin-value=(hidden)", "two in the query");
	hides("pkcs11:pin-value=2345;token=t?pin-value=6789",
	      "pkcs11:pin-value=(hidden);token=t?pin-value=(hidden)", "one in the path, one in the query");
}

static void test_texts(void)
{
	char small[20];

	text_hides("key = pkcs11:object=c?pin-value=23#45  # PKCS#11 URI\ncert = /c\n",
		   "key = pkcs11:object=c?pin-value=(hidden)  # PKCS#11 URI\ncert = /c\n",
		   "a text: the comment after the URI is kept");
	text_hides("a?pin-value=2;3\nkey = pkcs11:pin-value=45;x=y\n",
		   "a?pin-value=(hidden)\nkey = pkcs11:pin-value=(hidden);x=y\n",
		   "a new line starts a new URI (path again)");
	ok(!redact_pins("pkcs11:token=t;object=c", small, sizeof small) && strcmp(small, "pkcs11:token=t;obje") == 0,
	   "no PIN: copied (truncated to the buffer), nothing hidden");
	ok(redact_pins("pkcs11:token=t?pin-value=2345", small, sizeof small) && !has_digit(small),
	   "truncated output holds no PIN byte: %s", small);
	ok(redact_pins("pkcs11:t?pin-value=2345", small, sizeof small) && !has_digit(small) &&
	   strcmp(small, "pkcs11:t?pin-value=") == 0,
	   "truncated right after the name: %s", small);
}

int main(void)
{
	test_positions();
	test_query_characters();
	test_texts();
	return done();
}
