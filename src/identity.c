/* identity.c - allow-client matching (identity.h).  No allocation, no
 * recursion: one pass over the pattern and the name, whatever their size. */
#include "identity.h"

#include <string.h>
#include <strings.h>

/* Where the path of URI S begins: the first '/' after "://", or the end
 * (no "://": the whole string is compared as it is). */
static const char *path_of(const char *s)
{
	const char *p = strstr(s, "://");
	const char *slash;

	if (!p)
		return s + strlen(s);
	slash = strchr(p + 3, '/');
	return slash ? slash : p + strlen(p);
}

/* May the segment [S, E) of a URI be taken by a wildcard? */
static bool wild_ok(const char *s, const char *e)
{
	size_t n = (size_t)(e - s);

	if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	return !memchr(s, '?', n) && !memchr(s, '#', n);
}

/* The end of the segment that starts at S (the next '/' or the end). */
static const char *seg_end(const char *s)
{
	const char *e = strchr(s, '/');

	return e ? e : s + strlen(s);
}

/* Does every segment of the rest REST ("a/b/c", at least one) suit a
 * wildcard? */
static bool rest_ok(const char *rest)
{
	const char *e;

	for (;;) {
		e = seg_end(rest);
		if (!wild_ok(rest, e))
			return false;
		if (*e == '\0')
			return true;
		rest = e + 1;
	}
}

/* Do the paths P (pattern) and U (URI), each empty or starting with '/',
 * match segment by segment? */
static bool path_matches(const char *p, const char *u)
{
	const char *pe, *ue;
	size_t pn;

	if (*p == '\0' || *u == '\0')
		return *p == '\0' && *u == '\0';
	for (;;) {
		/* Both at a '/': step over it to the segments. */
		p++;
		u++;
		pe = seg_end(p);
		ue = seg_end(u);
		pn = (size_t)(pe - p);
		if (pn == 2 && p[0] == '*' && p[1] == '*' && *pe == '\0')
			return rest_ok(u);
		if (pn == 1 && p[0] == '*') {
			if (!wild_ok(u, ue))
				return false;
		} else if (pn != (size_t)(ue - u) || memcmp(p, u, pn) != 0) {
			return false;
		}
		if (*pe == '\0' || *ue == '\0')
			return *pe == '\0' && *ue == '\0';
		p = pe;
		u = ue;
	}
}

bool identity_uri_matches(const char *pattern, const char *uri)
{
	const char *pp = path_of(pattern), *up = path_of(uri);

	if (pp - pattern != up - uri || memcmp(pattern, uri, (size_t)(pp - pattern)) != 0)
		return false;
	return path_matches(pp, up);
}

bool identity_dns_matches(const char *pattern, const char *name)
{
	size_t n = strlen(name), pn = strlen(pattern), suffix, i;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || pn == 0)
		return false;
	if (pattern[0] == '*' && pattern[1] == '.') {
		suffix = pn - 1; /* ".example.com" */
		if (n <= suffix || strncasecmp(name + n - suffix, pattern + 1, suffix) != 0)
			return false;
		for (i = 0; i < n - suffix; i++)
			if (name[i] == '.' || name[i] == '*')
				return false;
		return true;
	}
	return n == pn && strncasecmp(name, pattern, n) == 0;
}

/* Does the pattern PAT match one of the names of its kind? */
static bool one_matches(const struct policy_client_pattern *pat, const char *const *uris, size_t n_uris,
			const char *const *dns, size_t n_dns, const char *cn)
{
	size_t i;

	switch (pat->kind) {
	case POLICY_CLIENT_URI:
		for (i = 0; i < n_uris; i++)
			if (uris[i] && identity_uri_matches(pat->pattern, uris[i]))
				return true;
		return false;
	case POLICY_CLIENT_DNS:
		for (i = 0; i < n_dns; i++)
			if (dns[i] && identity_dns_matches(pat->pattern, dns[i]))
				return true;
		return false;
	case POLICY_CLIENT_CN:
		return cn && strcmp(pat->pattern, cn) == 0;
	}
	return false;
}

bool identity_allowed(const struct policy_client_pattern *pats, size_t n_pats, const char *const *uris,
		      size_t n_uris, const char *const *dns, size_t n_dns, const char *cn)
{
	size_t i;

	for (i = 0; i < n_pats; i++)
		if (pats[i].pattern && one_matches(&pats[i], uris, n_uris, dns, n_dns, cn))
			return true;
	return false;
}
