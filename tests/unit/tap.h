/* tap.h - a tiny header-only TAP producer for the unit tests.
 *
 *   plan(N);                      optional: "1..N" up front
 *   ok(cond, "what %s", ...);     "ok 3 - what ..." / "not ok 3 - what ..."
 *   skip("why");                  "ok 4 # SKIP why"
 *   diag("note %d", ...);         "# note ..." (each line of it)
 *   return done();                trailing plan if none was given; exit
 *                                 status 1 if any test failed or the count
 *                                 does not match the plan, else 0
 *
 * Descriptions are kept on one line (newlines and control characters
 * become spaces) and "#" is escaped, so they cannot break the TAP stream.
 */
#ifndef TLSSHIM_TAP_H
#define TLSSHIM_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int tap_planned = -1;
static int tap_run;
static int tap_failed;

__attribute__((unused))
static void plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

__attribute__((unused, format(printf, 1, 2)))
static void diag(const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fputs("# ", stdout);
	for (const char *c = buf; *c; c++) {
		putchar(*c);
		if (*c == '\n' && c[1])
			fputs("# ", stdout);
	}
	putchar('\n');
	fflush(stdout);
}

/* One line, '#' escaped, control characters shown as spaces. */
static void tap_put_description(const char *fmt, va_list ap)
{
	char buf[1024];
	vsnprintf(buf, sizeof buf, fmt, ap);
	for (const char *c = buf; *c; c++) {
		unsigned char u = (unsigned char)*c;
		if (u == '#')
			fputs("\\#", stdout);
		else if (u < 0x20 || u == 0x7f)
			putchar(' ');
		else
			putchar(u);
	}
}

__attribute__((unused, format(printf, 2, 3)))
static bool ok(bool cond, const char *fmt, ...)
{
	va_list ap;
	tap_run++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_run);
	va_start(ap, fmt);
	tap_put_description(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	return cond;
}

__attribute__((unused))
static void skip(const char *why)
{
	tap_run++;
	printf("ok %d # SKIP %s\n", tap_run, why);
	fflush(stdout);
}

__attribute__((unused))
static int done(void)
{
	if (tap_planned < 0) {
		printf("1..%d\n", tap_run);
	} else if (tap_planned != tap_run) {
		diag("planned %d tests but ran %d", tap_planned, tap_run);
		return 1;
	}
	if (tap_failed)
		diag("%d of %d tests failed", tap_failed, tap_run);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

#endif
