/* decide.c - the verdict for a connection (decide.h).
 *
 * The helpers below are shared by both entry points: decide_accept()
 * matches its rule differently (a `listen` address) and reuses the rest. */
#include "decide.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char reason_no_policy[] = "invalid policy";
static const char reason_no_rule[] = "no rule matches";
static const char reason_no_listen[] = "no inbound rule covers the local address";
static const char reason_plain[] = "plain";
static const char reason_deny[] = "denied by policy";
static const char reason_no_name[] =
	"no host name is known for this address and the rule has neither server-name nor pin "
	"(an IP address is never verified by accident)";
static const char reason_upgrade[] = "upgrade";

bool decide_read_sockaddr(const struct sockaddr *sa, socklen_t len, struct decide_addr *out)
{
	memset(out, 0, sizeof *out);
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		out->family = AF_INET;
		memcpy(out->addr, &sin->sin_addr, 4);
		out->port = ntohs(sin->sin_port);
		return true;
	}
	/* Linux accepts a sockaddr_in6 without sin6_scope_id (RFC 2133's
	 * 24 bytes): so must we, or it would pass through in clear. */
	if (sa->sa_family == AF_INET6 && len >= offsetof(struct sockaddr_in6, sin6_scope_id)) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		out->family = AF_INET6;
		memcpy(out->addr, &sin6->sin6_addr, 16);
		out->port = ntohs(sin6->sin6_port);
		return true;
	}
	return false;
}

bool decide_canon_name(const char *name, char *out, size_t outlen)
{
	size_t len, i;

	if (!name || !*name || (len = strlen(name)) >= outlen)
		return false;
	if (len > 1 && name[len - 1] == '.')
		len--;
	for (i = 0; i < len; i++)
		out[i] = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] + 'a' - 'A') : name[i];
	out[len] = '\0';
	return true;
}

void decide_addr_str(const struct decide_addr *a, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN];

	inet_ntop(a->family, a->addr, ip, sizeof ip);
	if (a->family == AF_INET6)
		snprintf(out, outlen, "[%s]:%u", ip, a->port);
	else
		snprintf(out, outlen, "%s:%u", ip, a->port);
}

void decide_proxy_target(const struct decision *d, char *out, size_t outlen)
{
	if (!d->verify_name)
		decide_addr_str(&d->to, out, outlen);
	else if (strchr(d->verify_name, ':'))
		snprintf(out, outlen, "[%s]:%u", d->verify_name, d->to.port);
	else
		snprintf(out, outlen, "%s:%u", d->verify_name, d->to.port);
}

/* Add NAME to D's names unless it is there already or the list is full. */
static void add_name(struct decision *d, const char *name)
{
	size_t i;

	if (d->n_names == DECIDE_MAX_NAMES)
		return;
	for (i = 0; i < d->n_names; i++)
		if (strcasecmp(d->names[i], name) == 0)
			return;
	d->names[d->n_names++] = name;
}

/* D's names: the resolved ones, then the hosts file's, each once, at most
 * DECIDE_MAX_NAMES.  Returns how many of them were resolved. */
static size_t gather_names(struct decision *d, const struct decide_names *names)
{
	size_t i, n_resolved;

	for (i = 0; i < names->n_resolved; i++)
		add_name(d, names->resolved[i]);
	n_resolved = d->n_names;
	for (i = 0; i < names->n_hosts; i++)
		add_name(d, names->hosts[i]);
	return n_resolved;
}

/* The name to verify under RULE: its server-name, else RESOLVED (or NULL),
 * else one of the rule's own match names that one of HOSTS (N_HOSTS names
 * from the hosts file) fits.  Never an arbitrary alias.  NULL: none. */
static const char *name_to_verify(const struct policy_rule *rule, const char *resolved,
				  const char *const *hosts, size_t n_hosts)
{
	size_t i, j;

	if (rule->server_name)
		return rule->server_name;
	if (resolved)
		return resolved;
	for (i = 0; i < rule->n_matches; i++) {
		if (rule->matches[i].kind != POLICY_HOST_NAME)
			continue;
		for (j = 0; j < n_hosts; j++)
			if (policy_name_matches(&rule->matches[i], hosts[j]))
				return rule->matches[i].name;
	}
	return NULL;
}

/* May NAME be sent as SNI?  Never an IP literal, whatever its source. */
static bool sni_ok(const char *name)
{
	uint8_t scratch[16];

	return name && inet_pton(AF_INET, name, scratch) != 1 && inet_pton(AF_INET6, name, scratch) != 1;
}

/* Fill D's upgrade fields for its tls rule, connecting to DEST (the
 * session cache on when POLICY keeps sessions); REFUSE if no name can be
 * verified and the rule has no pin.  N_RESOLVED: how many of D's names the
 * program resolved. */
static void decide_upgrade(const struct policy *policy, const struct decide_addr *dest,
			   size_t n_resolved, struct decision *d)
{
	const struct policy_rule *rule = d->rule;

	d->verify_name = name_to_verify(rule, n_resolved ? d->names[0] : NULL, d->names + n_resolved,
					d->n_names - n_resolved);
	if (!d->verify_name && rule->n_pins == 0) {
		d->verdict = DECIDE_REFUSE;
		d->reason = reason_no_name;
		return;
	}
	d->verdict = DECIDE_UPGRADE;
	d->reason = reason_upgrade;
	d->sni = sni_ok(d->verify_name) ? d->verify_name : NULL;
	d->to = *dest;
	if (rule->port)
		d->to.port = rule->port;
	decide_addr_str(&d->to, d->dest, sizeof d->dest);
	if (rule->resume && policy->session_cache > 0)
		snprintf(d->cache_key, sizeof d->cache_key, "%s|%s|%s", rule->name,
			 d->verify_name ? d->verify_name : "", d->dest);
}

/* D's rule is plain or deny: set the verdict and reason and return true.
 * False for a tls rule (the caller fills the upgrade). */
static bool decide_plain_deny(struct decision *d)
{
	if (d->rule->action == POLICY_PLAIN) {
		d->verdict = DECIDE_PLAIN;
		d->reason = reason_plain;
		return true;
	}
	if (d->rule->action == POLICY_DENY) {
		d->verdict = DECIDE_DENY;
		d->reason = reason_deny;
		return true;
	}
	return false;
}

void decide_connect(const struct policy *policy, const struct decide_addr *dest,
		    const struct decide_names *names, struct decision *d)
{
	size_t n_resolved;

	memset(d, 0, sizeof *d);
	if (!policy) {
		decide_addr_str(dest, d->app_dest, sizeof d->app_dest);
		d->verdict = DECIDE_REFUSE;
		d->reason = reason_no_policy;
		return;
	}
	n_resolved = gather_names(d, names);
	d->rule = policy_match(policy, d->names, d->n_names, dest->family, dest->addr, dest->port);
	if (!d->rule) {
		/* The common case for a program's other connections: nothing
		 * is formatted (app_dest stays empty; decide_addr_str makes it). */
		d->verdict = DECIDE_PLAIN;
		d->reason = reason_no_rule;
		return;
	}
	decide_addr_str(dest, d->app_dest, sizeof d->app_dest);
	if (!decide_plain_deny(d))
		decide_upgrade(policy, dest, n_resolved, d);
}

/* PEER as text into D->app_dest, "-" when it is not known. */
static void peer_str(const struct decide_addr *peer, struct decision *d)
{
	if (peer)
		decide_addr_str(peer, d->app_dest, sizeof d->app_dest);
	else
		snprintf(d->app_dest, sizeof d->app_dest, "-");
}

void decide_accept(const struct policy *policy, const struct decide_addr *local,
		   const struct decide_addr *peer, struct decision *d)
{
	memset(d, 0, sizeof *d);
	d->to = *local;
	decide_addr_str(local, d->dest, sizeof d->dest);
	if (!policy) {
		peer_str(peer, d);
		d->verdict = DECIDE_REFUSE;
		d->reason = reason_no_policy;
		return;
	}
	d->rule = policy_match_listen(policy, local->family, local->addr, local->port);
	if (!d->rule) {
		d->verdict = DECIDE_PLAIN;
		d->reason = reason_no_listen;
		return;
	}
	peer_str(peer, d);
	if (!decide_plain_deny(d)) {
		d->verdict = DECIDE_UPGRADE;
		d->reason = reason_upgrade;
	}
}
