/* decide.h - the verdict: what tlsshim does with a connection, and why.
 *
 * Pure: an address, names and the policy in, a struct decision out.  No
 * sockets, no locks, no globals, no logging.  The caller gathers the
 * inputs, calls one entry point, then acts on the verdict and logs its
 * reason.  The library (connect.c) and `tlsshim explain` call the same
 * entry point, so explain says what the library does.
 *
 * One entry point per direction, the same struct decision out, the same
 * helpers inside (decide.c: the names considered, the rule, the name to
 * verify, SNI, the session-cache key, an address as text):
 *
 *   decide_connect()  outbound, today: a program connects to DEST, known
 *                     under NAMES; the first rule whose match covers DEST
 *                     or one of the names.
 *   decide_accept()   inbound: an accepted connection's local address
 *                     (the listening socket's address, made concrete by
 *                     the kernel); the first inbound rule whose
 *                     `listen = ADDR:PORT` covers it.
 */
#ifndef TLSSHIM_DECIDE_H
#define TLSSHIM_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policy.h"

/* An address and port, as connect() or getsockname() gives them. */
struct decide_addr {
	int family;               /* AF_INET or AF_INET6 */
	uint8_t addr[16];         /* network order; 4 bytes used for AF_INET */
	uint16_t port;            /* host order */
};

/* The names known for an address.  Either list may be empty. */
struct decide_names {
	const char *const *resolved;  /* the program resolved them to it, most recent first (names.h) */
	size_t n_resolved;
	const char *const *hosts;     /* the hosts file lists them for it, in file order */
	size_t n_hosts;
};

enum decide_verdict {
	DECIDE_PLAIN = 0,         /* pass through untouched: no rule, or a plain rule */
	DECIDE_DENY,              /* a deny rule: the connection fails */
	DECIDE_REFUSE,            /* no valid policy, or a tls rule that cannot be kept: fails */
	DECIDE_UPGRADE,           /* TLS 1.3, to decision.to */
};

#define DECIDE_MAX_NAMES 16       /* names considered for one address */
#define DECIDE_ADDRSTRLEN 64      /* "[v6 address]:port" and its NUL */
#define DECIDE_KEY_LEN 512        /* a session-cache key, truncated to fit */

/* What to do with one connection.  Its pointers point into the policy and
 * the names given to the entry point: valid while those are. */
struct decision {
	enum decide_verdict verdict;
	const struct policy_rule *rule;      /* the rule that matched; NULL: none */
	const char *reason;                  /* why, one phrase for the log and explain (static) */
	const char *names[DECIDE_MAX_NAMES]; /* the names considered: resolved first, no duplicates */
	size_t n_names;
	char app_dest[DECIDE_ADDRSTRLEN];    /* the destination the program gave, as text;
					      * "" when no rule matched (kept cheap) */
	/* DECIDE_UPGRADE only: */
	const char *verify_name;             /* the name the certificate must carry; NULL: pins only */
	const char *sni;                     /* verify_name unless an IP literal; NULL: no SNI */
	struct decide_addr to;               /* where to connect: the rule's port, else the program's */
	char dest[DECIDE_ADDRSTRLEN];        /* TO as text */
	char cache_key[DECIDE_KEY_LEN];      /* the session-cache key; "": no resumption */
};

/* Fill *OUT from connect()'s SA (LEN bytes): true for AF_INET and AF_INET6
 * (a sockaddr_in6 without sin6_scope_id included, as Linux accepts it),
 * false for any other family or a short LEN (not a TCP/IP destination). */
bool decide_read_sockaddr(const struct sockaddr *sa, socklen_t len, struct decide_addr *out);

/* Outbound: fill *D for a connection to DEST known under NAMES.
 *   no valid policy (POLICY NULL)       REFUSE, no rule;
 *   no rule matches                     PLAIN, no rule;
 *   the first matching rule is plain    PLAIN;  deny: DENY;
 *   a tls rule                          UPGRADE with the name to verify:
 *     its server-name, else the name the program resolved last, else a
 *     hosts-file name that one of the rule's own match entries names
 *     exactly (never an arbitrary alias); REFUSE if there is none and the
 *     rule has no pin.  SNI is that name unless it is an IP literal.  The
 *     rule's port replaces DEST's.  The session-cache key ("RULE|NAME|DEST")
 *     is set when the rule resumes and the policy keeps sessions. */
void decide_connect(const struct policy *policy, const struct decide_addr *dest,
		    const struct decide_names *names, struct decision *d);

/* Inbound: fill *D for a connection accepted on the local address LOCAL
 * from the client PEER (NULL: not known, e.g. adoption found none).
 *   no valid policy (POLICY NULL)       REFUSE, no rule (fail closed: the
 *                                       daemon would serve in clear);
 *   no inbound rule covers LOCAL        PLAIN, no rule;
 *   the first that does is plain        PLAIN;  deny: DENY;
 *   a tls rule                          UPGRADE (the server side).
 * D->dest is LOCAL as text, D->app_dest PEER as text ("" without a rule,
 * or "-" when PEER is NULL); names, verify_name, sni and cache_key stay
 * empty, D->to is LOCAL. */
void decide_accept(const struct policy *policy, const struct decide_addr *local,
		   const struct decide_addr *peer, struct decision *d);

/* A as "1.2.3.4:443" or "[::1]:443" in OUT (DECIDE_ADDRSTRLEN bytes). */
void decide_addr_str(const struct decide_addr *a, char *out, size_t outlen);

/* UPGRADE through the rule's proxy: the destination its CONNECT names, in
 * OUT: the name the certificate is verified for (server-name, else the
 * name the program resolved; an IP literal in brackets if IPv6), else the
 * address; the port is D->to's (the rule's, else the program's). */
void decide_proxy_target(const struct decision *d, char *out, size_t outlen);

/* NAME as the library records a resolved name (names.c): lower case, one
 * trailing dot removed.  False (OUT untouched) if it does not fit in
 * OUTLEN bytes: the library then records no name. */
bool decide_canon_name(const char *name, char *out, size_t outlen);

#endif
