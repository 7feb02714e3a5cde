/* identity_test.c - unit tests for allow-client matching (identity.h):
 * SPIFFE-style URI patterns, DNS wildcards, CN, and hostile names. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "tap.h"

static void uri(const char *pattern, const char *name, bool want)
{
	ok(identity_uri_matches(pattern, name) == want, "uri:%s %s %s", pattern, want ? "matches" : "refuses", name);
}

static void dns(const char *pattern, const char *name, bool want)
{
	ok(identity_dns_matches(pattern, name) == want, "dns:%s %s %s", pattern, want ? "matches" : "refuses", name);
}

static void uri_cases(void)
{
	const char *b = "spiffe://prod.example/ns/billing/*";
	const char *r = "spiffe://prod.example/ns/**";

	uri(b, "spiffe://prod.example/ns/billing/api", true);
	uri(b, "spiffe://prod.example/ns/billing/a-b_c.d", true);
	uri(b, "spiffe://prod.example/ns/billing", false);            /* no segment for '*' */
	uri(b, "spiffe://prod.example/ns/billing/", false);           /* empty segment */
	uri(b, "spiffe://prod.example/ns/billing/api/", false);       /* trailing slash */
	uri(b, "spiffe://prod.example/ns/billing/api/v2", false);     /* '*' is one segment */
	uri(b, "spiffe://prod.example/ns/billing//api", false);
	uri(b, "spiffe://prod.example/ns/billing/..", false);
	uri(b, "spiffe://prod.example/ns/billing/.", false);
	uri(b, "spiffe://prod.example/ns/billing/x?y", false);
	uri(b, "spiffe://prod.example/ns/billing/x#y", false);
	uri(b, "spiffe://prod.example/ns/billingx/api", false);
	uri(b, "spiffe://prod.example/ns/Billing/api", false);        /* paths are exact */
	uri(b, "spiffe://PROD.example/ns/billing/api", false);        /* authority exact */
	uri(b, "SPIFFE://prod.example/ns/billing/api", false);        /* scheme exact */
	uri(b, "spiffe://prod.example.evil/ns/billing/api", false);
	uri(b, "spiffe://prod.exampl/ns/billing/api", false);
	uri(b, "spiffe://other.example/ns/billing/api", false);
	uri(b, "http://prod.example/ns/billing/api", false);
	uri(b, "spiffe://prod.example", false);
	uri(b, "", false);
	/* a last "**": one or more segments */
	uri(r, "spiffe://prod.example/ns/a", true);
	uri(r, "spiffe://prod.example/ns/a/b/c", true);
	uri(r, "spiffe://prod.example/ns", false);
	uri(r, "spiffe://prod.example/ns/", false);
	uri(r, "spiffe://prod.example/ns/a/", false);
	uri(r, "spiffe://prod.example/ns/a//b", false);
	uri(r, "spiffe://prod.example/ns/a/../../x", false);
	uri(r, "spiffe://prod.example/nsx/a", false);
	uri("spiffe://prod.example/**", "spiffe://prod.example/anything/at/all", true);
	uri("spiffe://prod.example/**", "spiffe://prod.example", false);
	/* "**" anywhere else and '*' inside a segment are plain text */
	uri("spiffe://prod.example/**/x", "spiffe://prod.example/a/x", false);
	uri("spiffe://prod.example/**/x", "spiffe://prod.example/**/x", true);
	uri("spiffe://prod.example/ns/bill*", "spiffe://prod.example/ns/billing", false);
	uri("spiffe://prod.example/ns/bill*", "spiffe://prod.example/ns/bill*", true);
	uri("spiffe://prod.example/ns/*x", "spiffe://prod.example/ns/ax", false);
	uri("spiffe://*/ns/a", "spiffe://prod.example/ns/a", false);  /* no wildcard authority */
	/* '*' in the middle */
	uri("spiffe://prod.example/ns/*/sa/web", "spiffe://prod.example/ns/billing/sa/web", true);
	uri("spiffe://prod.example/ns/*/sa/web", "spiffe://prod.example/ns/billing/x/sa/web", false);
	uri("spiffe://prod.example/ns/*/sa/web", "spiffe://prod.example/ns//sa/web", false);
	uri("spiffe://prod.example/ns/*/*", "spiffe://prod.example/ns/a/b", true);
	/* exact patterns */
	uri("spiffe://prod.example/ns/a", "spiffe://prod.example/ns/a", true);
	uri("spiffe://prod.example/ns/a", "spiffe://prod.example/ns/a/", false);
	uri("spiffe://prod.example/ns/a/", "spiffe://prod.example/ns/a", false);
	uri("spiffe://prod.example", "spiffe://prod.example", true);
	uri("spiffe://prod.example", "spiffe://prod.example/", false);
	uri("urn:example:a", "urn:example:a", true);
	uri("urn:example:*", "urn:example:a", false);
}

static void long_cases(void)
{
	size_t n = 1 << 20, i;
	char *big = malloc(n + 64), *pat = malloc(n + 64);

	if (!big || !pat) {
		ok(false, "memory for the long names");
		free(big);
		free(pat);
		return;
	}
	/* A million one-letter segments under "**". */
	strcpy(big, "spiffe://prod.example/ns");
	for (i = strlen(big); i + 2 < n; i += 2) {
		big[i] = '/';
		big[i + 1] = 'a';
	}
	big[i] = '\0';
	uri("spiffe://prod.example/ns/**", big, true);
	uri("spiffe://prod.example/ns/*", big, false);
	big[i - 1] = '\0'; /* ends with an empty segment */
	uri("spiffe://prod.example/ns/**", big, false);
	/* A pattern of half a million '*' segments against a shorter URI. */
	strcpy(pat, "spiffe://prod.example");
	for (i = strlen(pat); i + 2 < n; i += 2) {
		pat[i] = '/';
		pat[i + 1] = '*';
	}
	pat[i] = '\0';
	uri(pat, "spiffe://prod.example/a/b", false);
	/* A one-megabyte label. */
	memset(big, 'a', n);
	strcpy(big + n, ".example.com");
	dns("*.example.com", big, true);
	big[n / 2] = '.';
	dns("*.example.com", big, false);
	free(big);
	free(pat);
}

static void dns_cases(void)
{
	dns("*.svc.example", "api.svc.example", true);
	dns("*.svc.example", "API.SVC.Example", true);
	dns("*.svc.example", "api.svc.example.", true);                /* one trailing dot */
	dns("*.svc.example", "api.svc.example..", false);
	dns("*.svc.example", "a.b.svc.example", false);                /* one label only */
	dns("*.svc.example", "svc.example", false);
	dns("*.svc.example", ".svc.example", false);                   /* empty label */
	dns("*.svc.example", "*.svc.example", false);                  /* wildcard certificate */
	dns("*.svc.example", "a*.svc.example", false);
	dns("*.svc.example", "apisvc.example", false);
	dns("*.svc.example", "api.svc.example.evil", false);
	dns("*.svc.example", "", false);
	dns("api.svc.example", "API.svc.example", true);
	dns("api.svc.example", "api.svc.example.", true);
	dns("api.svc.example", "api.svc.exampl", false);
	dns("api.svc.example", "xapi.svc.example", false);
	dns("api.svc.example", "", false);
	dns("api.svc.example", ".", false);
}

static void allowed_cases(void)
{
	struct policy_client_pattern pats[] = {
		{ POLICY_CLIENT_URI, (char *)"spiffe://prod.example/ns/billing/*" },
		{ POLICY_CLIENT_DNS, (char *)"*.svc.example" },
		{ POLICY_CLIENT_CN, (char *)"legacy-batch" },
	};
	const char *good_uri[] = { "spiffe://other/x", "spiffe://prod.example/ns/billing/api" };
	const char *bad_uri[] = { "spiffe://prod.example/ns/payroll/api" };
	const char *good_dns[] = { "web.svc.example" };
	const char *bad_dns[] = { "web.other.example" };

	ok(identity_allowed(pats, 3, good_uri, 2, NULL, 0, NULL), "allowed: second URI SAN matches");
	ok(!identity_allowed(pats, 3, bad_uri, 1, bad_dns, 1, "legacy"), "allowed: nothing matches");
	ok(identity_allowed(pats, 3, bad_uri, 1, good_dns, 1, NULL), "allowed: DNS SAN matches");
	ok(identity_allowed(pats, 3, NULL, 0, NULL, 0, "legacy-batch"), "allowed: CN matches");
	ok(!identity_allowed(pats, 3, NULL, 0, NULL, 0, "legacy-batch2"), "allowed: CN is exact");
	ok(!identity_allowed(pats, 3, NULL, 0, NULL, 0, "Legacy-batch"), "allowed: CN is case-sensitive");
	ok(!identity_allowed(pats, 3, NULL, 0, NULL, 0, NULL), "allowed: no names, no match");
	ok(!identity_allowed(pats, 0, good_uri, 2, good_dns, 1, "legacy-batch"), "allowed: no patterns, no match");
	/* A URI SAN is not a DNS name and the reverse. */
	ok(!identity_allowed(pats, 2, (const char *[]){ "web.svc.example" }, 1, NULL, 0, NULL),
	   "allowed: a DNS name in a URI SAN does not match dns:");
	ok(!identity_allowed(pats, 1, NULL, 0, (const char *[]){ "spiffe://prod.example/ns/billing/api" }, 1,
			     NULL), "allowed: a URI in a DNS SAN does not match uri:");
	ok(!identity_allowed(pats + 2, 1, NULL, 0, (const char *[]){ "legacy-batch" }, 1, NULL),
	   "allowed: a DNS SAN equal to the CN pattern does not match cn:");
}

int main(void)
{
	uri_cases();
	dns_cases();
	allowed_cases();
	long_cases();
	return done();
}
