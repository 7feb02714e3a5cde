/* tlsshim - run a program with libtlsshim.so preloaded and a policy set.
 *
 *   tlsshim [-p POLICY] [-v] [--] COMMAND [ARG...]
 *   tlsshim check [-p POLICY]
 *   tlsshim explain [-p POLICY] HOST:PORT
 *   tlsshim explain [-p POLICY] listen ADDR:PORT
 */
#include "adopt.h"
#include "decide.h"
#include "elfinfo.h"
#include "hosts.h"
#include "policy.h"
#include "policy_load.h"
#include "redact.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib"
#endif

static const char *progname = "tlsshim";

static void usage(FILE *out)
{
	fprintf(out,
		"usage: %s [-p POLICY] [-v] [--] COMMAND [ARG...]\n"
		"       %s check [-p POLICY] [--show-secrets]\n"
		"       %s explain [-p POLICY] HOST:PORT\n"
		"       %s explain [-p POLICY] listen ADDR:PORT\n"
		"\n"
		"Runs COMMAND with its TCP connections upgraded to TLS 1.3 as POLICY says:\n"
		"those it makes (match rules) and those it accepts (listen rules).\n"
		"POLICY defaults to $TLSSHIM_POLICY, ~/.config/tlsshim/policy, then\n"
		"%s/tlsshim/policy.  -v logs every upgraded connection (info level).\n"
		"See tlsshim(1) and tlsshim.policy(5).\n",
		progname, progname, progname, progname, SYSCONFDIR);
}

/* ---- the policy ---- */

static int resolve_policy(const char *given, char *path, size_t pathlen)
{
	if (given) {
		char cwd[PATH_MAX];

		/* Absolute, but not resolved: a symbolic link must still be
		 * seen (and refused) by policy_load. */
		if (given[0] == '/') {
			snprintf(path, pathlen, "%s", given);
		} else if (!getcwd(cwd, sizeof cwd)) {
			fprintf(stderr, "%s: %s: %s\n", progname, given, strerror(errno));
			return -1;
		} else if ((size_t)snprintf(path, pathlen, "%s/%s", cwd, given) >= pathlen) {
			fprintf(stderr, "%s: %s: path too long\n", progname, given);
			return -1;
		}
		return 0;
	}
	if (!policy_find(path, pathlen)) {
		fprintf(stderr, "%s: no policy: give one with -p FILE, or set TLSSHIM_POLICY, or create "
			"~/.config/tlsshim/policy or %s/tlsshim/policy\n", progname, SYSCONFDIR);
		return -1;
	}
	return 0;
}

static struct policy *load_policy(const char *given, char *path, size_t pathlen)
{
	char err[3 * PATH_MAX];
	struct policy *policy;

	if (resolve_policy(given, path, pathlen) < 0)
		return NULL;
	policy = policy_load(path, err, sizeof err);
	if (!policy)
		fprintf(stderr, "%s\n", err);
	return policy;
}

/* ---- the library ---- */

static int readable(const char *path)
{
	return access(path, R_OK) == 0;
}

static const char *find_library(char *buf, size_t buflen)
{
	const char *env = getenv("TLSSHIM_LIBRARY");
	char self[PATH_MAX - 64];
	ssize_t len;
	char *slash;

	if (env && *env)
		return env;
	/* Run from the build tree: libtool keeps the library in .libs/. */
	len = readlink("/proc/self/exe", self, sizeof self - 1);
	if (len > 0) {
		self[len] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(buf, buflen, "%s/.libs/libtlsshim.so", self);
			if (readable(buf))
				return buf;
			snprintf(buf, buflen, "%s/../lib/libtlsshim.so", self);
			if (readable(buf))
				return buf;
		}
	}
	snprintf(buf, buflen, "%s/libtlsshim.so", PKGLIBDIR);
	return buf;
}

/* ---- what the command is ---- */

static int find_in_path(const char *cmd, char *out, size_t outlen)
{
	const char *path = getenv("PATH");
	const char *start, *end;

	if (strchr(cmd, '/')) {
		snprintf(out, outlen, "%s", cmd);
		return 0;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (start = path; *start; start = *end ? end + 1 : end) {
		end = strchr(start, ':');
		if (!end)
			end = start + strlen(start);
		snprintf(out, outlen, "%.*s/%s", (int)(end - start), start == end ? "." : start, cmd);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* Warn about programs that LD_PRELOAD cannot reach. */
static void warn_unreachable(const char *cmd)
{
	char path[PATH_MAX];
	struct stat st;
	enum elf_kind kind;
	int fd;

	if (find_in_path(cmd, path, sizeof path) < 0 || stat(path, &st) < 0)
		return;
	if (st.st_mode & (S_ISUID | S_ISGID))
		fprintf(stderr, "%s: warning: %s is setuid/setgid: the loader ignores LD_PRELOAD, its "
			"connections will not be upgraded\n", progname, path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	kind = elf_kind(fd); /* a script, or not ELF: nothing to say */
	close(fd);
	if (kind == ELF_STATIC)
		fprintf(stderr, "%s: warning: %s is statically linked: LD_PRELOAD has no effect, its "
			"connections will NOT be upgraded\n", progname, path);
}

/* Tell the library whether POLICY (read from PATH, whose identity was
 * BEFORE) has inbound rules, so that programs without them never look at
 * inherited descriptors (adopt.h).  Only if the file did not change while
 * it was read; the library checks the identity again. */
static void hint_inbound(const char *path, const struct stat *before, const struct policy *policy)
{
	struct stat after;
	char hint[160];

	unsetenv(ADOPT_HINT_ENV);
	if (stat(path, &after) != 0 || after.st_dev != before->st_dev || after.st_ino != before->st_ino ||
	    after.st_size != before->st_size || after.st_mtim.tv_sec != before->st_mtim.tv_sec ||
	    after.st_mtim.tv_nsec != before->st_mtim.tv_nsec)
		return;
	snprintf(hint, sizeof hint, "%d:%llu:%llu:%llu:%llu:%llu", policy->has_inbound ? 1 : 0,
		 (unsigned long long)after.st_dev, (unsigned long long)after.st_ino,
		 (unsigned long long)after.st_size, (unsigned long long)after.st_mtim.tv_sec,
		 (unsigned long long)after.st_mtim.tv_nsec);
	setenv(ADOPT_HINT_ENV, hint, 1);
}

static int run(const char *policy_arg, int verbose, char **argv)
{
	char path[PATH_MAX], lib[PATH_MAX], *preload;
	const char *old, *library;
	struct policy *policy;
	struct stat before;
	bool have_before;
	char err[3 * PATH_MAX];

	if (resolve_policy(policy_arg, path, sizeof path) < 0)
		return 2;
	have_before = stat(path, &before) == 0;
	policy = policy_load(path, err, sizeof err);
	if (!policy) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (have_before)
		hint_inbound(path, &before, policy);
	else
		unsetenv(ADOPT_HINT_ENV);
	policy_free(policy);
	library = find_library(lib, sizeof lib);
	if (!readable(library)) {
		fprintf(stderr, "%s: cannot find the library %s\n", progname, library);
		return 2;
	}
	old = getenv("LD_PRELOAD");
#ifdef SAN_RUNTIME
	/* A sanitizer build: the sanitizer's runtime must come first. */
	if (asprintf(&preload, "%s %s%s%s", SAN_RUNTIME, library, old && *old ? " " : "",
		     old && *old ? old : "") < 0)
		return 2;
#else
	if (asprintf(&preload, "%s%s%s", library, old && *old ? " " : "", old && *old ? old : "") < 0)
		return 2;
#endif
	setenv("LD_PRELOAD", preload, 1);
	setenv("TLSSHIM_POLICY", path, 1);
	if (verbose)
		setenv("TLSSHIM_LOG_LEVEL", "info", 1);
	warn_unreachable(argv[0]);
	execvp(argv[0], argv);
	fprintf(stderr, "%s: cannot run %s: %s\n", progname, argv[0], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

/* Write TEXT with every "pin-value=SECRET" in it replaced by
 * "pin-value=(hidden)" (redact.h): output that ends up in tickets and chat logs must
 * not carry a token's PIN.  True if something was hidden. */
static bool print_hiding_pins(const char *text, FILE *out)
{
	const char *value, *end;
	bool in_query = false, hidden = false;

	while ((value = redact_find_pin(text, &in_query, &end)) != NULL) {
		fwrite(text, 1, (size_t)(value - text), out);
		fputs(REDACT_HIDDEN, out);
		text = end;
		hidden = true;
	}
	fputs(text, out);
	return hidden;
}

/* The policy's warnings, "PATH:LINE: warning: ..." on stderr. */
static void print_warnings(const struct policy *policy, const char *path)
{
	for (size_t i = 0; i < policy->n_warnings; i++)
		fprintf(stderr, "%s:%u: warning: %s\n", path, policy->warnings[i].line, policy->warnings[i].msg);
	if (policy->n_warnings_dropped)
		fprintf(stderr, "%s: warning: %zu more warnings not shown\n", path, policy->n_warnings_dropped);
}

static int check(const char *policy_arg, bool show_secrets)
{
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	struct policy *policy = load_policy(policy_arg, path, sizeof path);
	FILE *mem;

	if (!policy)
		return 2;
	print_warnings(policy, path);
	printf("%s: valid, %zu rule%s", path, policy->n_rules, policy->n_rules == 1 ? "" : "s");
	if (policy->has_inbound) {
		size_t n_in = 0;

		for (size_t i = 0; i < policy->n_rules; i++)
			n_in += policy->rules[i].inbound;
		printf(" (%zu inbound: accepted connections on their listen addresses)", n_in);
	}
	printf("\n");
	mem = show_secrets ? NULL : open_memstream(&text, &len);
	if (!mem) {
		policy_print(policy, stdout);
	} else {
		policy_print(policy, mem);
		fclose(mem);
		if (print_hiding_pins(text ? text : "", stdout))
			printf("# PINs are hidden; tlsshim check --show-secrets prints them\n");
		free(text);
	}
	policy_free(policy);
	return 0;
}

/* ---- explain ---- */

static int split_hostport(const char *arg, char *host, size_t hostlen, unsigned *port)
{
	const char *colon = strrchr(arg, ':');
	char *end;
	unsigned long value;

	if (!colon || colon == arg)
		return -1;
	value = strtoul(colon + 1, &end, 10);
	if (*end || value == 0 || value > 65535)
		return -1;
	*port = (unsigned)value;
	if (arg[0] == '[' && colon[-1] == ']')
		snprintf(host, hostlen, "%.*s", (int)(colon - arg - 2), arg + 1);
	else
		snprintf(host, hostlen, "%.*s", (int)(colon - arg), arg);
	return 0;
}

/* The names the library would know for an address after the program
 * resolved a host name to it; NAMES points into this struct and into the
 * hosts file. */
struct known_names {
	char host[256];
	const char *resolved[1];
	const char *hosts[DECIDE_MAX_NAMES];
	struct decide_names names;
};

/* Fill *K for ADDR (FAMILY) reached through HOST (an IP literal if
 * IS_LITERAL): HOST as names.c records it (none for a literal), then what
 * HOSTS lists for the address. */
static void gather_known_names(const char *host, int is_literal, const struct hosts *hosts, int family,
			       const uint8_t *addr, struct known_names *k)
{
	memset(&k->names, 0, sizeof k->names);
	if (!is_literal && decide_canon_name(host, k->host, sizeof k->host)) {
		k->resolved[0] = k->host;
		k->names.resolved = k->resolved;
		k->names.n_resolved = 1;
	}
	if (hosts) {
		k->names.n_hosts = hosts_names_for(hosts, family, addr, k->hosts, DECIDE_MAX_NAMES);
		if (k->names.n_hosts > DECIDE_MAX_NAMES)
			k->names.n_hosts = DECIDE_MAX_NAMES;
		k->names.hosts = k->hosts;
	}
}

/* The in-band part of an upgrade under D: how TLS starts, and the proxy
 * with the CONNECT target (the name verified, else the address; the
 * rule's port) and where its credentials come from. */
static void explain_inband(const struct decision *d)
{
	const struct policy_rule *rule = d->rule;
	char target[DECIDE_ADDRSTRLEN + 256];
	bool v6;

	printf("    start: %s (protocol %s)\n", policy_protocol_exchange(rule->protocol),
	       policy_protocol_name(rule->protocol));
	if (!rule->proxy_host)
		return;
	decide_proxy_target(d, target, sizeof target);
	v6 = strchr(rule->proxy_host, ':') != NULL;
	printf("    via proxy http://%s%s%s:%u (CONNECT %s)\n", v6 ? "[" : "", rule->proxy_host,
	       v6 ? "]" : "", (unsigned)rule->proxy_port, target);
	if (rule->proxy_credentials)
		printf("    proxy authentication: Basic, credentials from %s\n", rule->proxy_credentials);
}

/* What an upgrade under D does: the name verified, against what, SNI, the
 * client certificate, ALPN, resumption. */
static void explain_upgrade(const struct decision *d)
{
	const struct policy_rule *rule = d->rule;
	size_t i;

	printf("upgraded to TLS 1.3 at %s\n", d->dest);
	explain_inband(d);
	printf("    verify: %s against %s%s\n", d->verify_name ? d->verify_name : "(no name: pins only)",
	       rule->ca ? rule->ca : "the system trust store",
	       rule->n_pins ? ", and the server key must match a pin" : "");
	printf("    SNI: %s\n", d->sni ? d->sni : "(none)");
	if (rule->cert) {
		printf("    client certificate: %s (key ", rule->cert);
		print_hiding_pins(rule->key, stdout);
		printf(")\n");
	}
	if (rule->n_alpn) {
		printf("    ALPN:");
		for (i = 0; i < rule->n_alpn; i++)
			printf(" %s", rule->alpn[i]);
		printf("\n");
	}
	printf("    resumption: %s\n", d->cache_key[0] ? "on" : "off");
}

/* One line (more for an upgrade) on what the library does with a
 * connection to ADDR:PORT after the program resolved HOST: the verdict of
 * decide_connect(), the function the library calls. */
static void explain_address(const struct policy *policy, const struct hosts *hosts, const char *host,
			    int is_literal, int family, const uint8_t *addr, unsigned port)
{
	struct known_names known;
	struct decide_addr dest;
	struct decision d;
	char where[DECIDE_ADDRSTRLEN];
	size_t i;

	memset(&dest, 0, sizeof dest);
	dest.family = family;
	memcpy(dest.addr, addr, family == AF_INET ? 4 : 16);
	dest.port = (uint16_t)port;
	gather_known_names(host, is_literal, hosts, family, addr, &known);
	decide_connect(policy, &dest, &known.names, &d);
	decide_addr_str(&dest, where, sizeof where);
	printf("%s", where);
	if (d.n_names > 0) {
		printf(" (names:");
		for (i = 0; i < d.n_names; i++)
			printf(" %s", d.names[i]);
		printf(")");
	}
	if (!d.rule) {
		/* No rule: passed through, unless the policy itself refuses. */
		if (d.verdict == DECIDE_PLAIN)
			printf(": %s: passed through untouched\n", d.reason);
		else
			printf(": REFUSED: %s\n", d.reason);
		return;
	}
	printf(": rule [%s] (line %u): ", d.rule->name, d.rule->line);
	switch (d.verdict) {
	case DECIDE_PLAIN:
		printf("%s: passed through untouched\n", d.reason);
		break;
	case DECIDE_DENY:
		printf("deny: connect() fails with ECONNREFUSED\n");
		break;
	case DECIDE_REFUSE:
		printf("tls, but REFUSED: %s\n", d.reason);
		break;
	case DECIDE_UPGRADE:
		explain_upgrade(&d);
		break;
	}
}

static int explain(const char *policy_arg, const char *target)
{
	char path[PATH_MAX], host[256];
	struct addrinfo hints, *res = NULL, *ai;
	struct policy *policy;
	struct hosts *hosts;
	uint8_t literal[16];
	unsigned port;
	int is_literal, ret;

	if (split_hostport(target, host, sizeof host, &port) < 0) {
		fprintf(stderr, "%s: explain: expected HOST:PORT, got \"%s\"\n", progname, target);
		return 2;
	}
	policy = load_policy(policy_arg, path, sizeof path);
	if (!policy)
		return 2;
	hosts = hosts_load("/etc/hosts");
	is_literal = inet_pton(AF_INET, host, literal) == 1 || inet_pton(AF_INET6, host, literal) == 1;
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	ret = getaddrinfo(host, NULL, &hints, &res);
	if (ret != 0) {
		fprintf(stderr, "%s: cannot resolve %s: %s\n", progname, host, gai_strerror(ret));
		policy_free(policy);
		hosts_free(hosts);
		return 1;
	}
	printf("policy %s\n", path);
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET)
			explain_address(policy, hosts, host, is_literal, AF_INET,
					(uint8_t *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr, port);
		else if (ai->ai_family == AF_INET6)
			explain_address(policy, hosts, host, is_literal, AF_INET6,
					(uint8_t *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, port);
	}
	freeaddrinfo(res);
	policy_free(policy);
	hosts_free(hosts);
	return 0;
}

/* ---- explain listen ---- */

/* Parse "ADDR:PORT" ("1.2.3.4:80", "[::1]:80"; an IP address, no name: it
 * is a local address) into *A.  0, or -1 with a message on stderr. */
static int parse_local(const char *arg, struct decide_addr *a)
{
	char host[INET6_ADDRSTRLEN + 2];
	unsigned port;

	memset(a, 0, sizeof *a);
	if (split_hostport(arg, host, sizeof host, &port) == 0) {
		a->port = (uint16_t)port;
		if (arg[0] != '[' && inet_pton(AF_INET, host, a->addr) == 1) {
			a->family = AF_INET;
			return 0;
		}
		if (arg[0] == '[' && inet_pton(AF_INET6, host, a->addr) == 1) {
			a->family = AF_INET6;
			return 0;
		}
	}
	fprintf(stderr, "%s: explain listen: expected the local address a connection is accepted on, "
		"as ADDR:PORT (127.0.0.1:8080, [::1]:8080), got \"%s\"\n", progname, arg);
	return -1;
}

/* The client side of an inbound tls rule: certificate requested, from
 * which anchors, which identities. */
static void explain_clients(const struct policy_rule *rule)
{
	size_t i;

	if (!rule->client_ca && !rule->client_ca_system) {
		printf("    client certificate: not requested\n");
		return;
	}
	printf("    client certificate: required, verified against %s\n",
	       rule->client_ca ? rule->client_ca : "the system trust store");
	if (!rule->n_allow_clients) {
		printf("    allowed clients: any certificate client-ca verifies\n");
		return;
	}
	printf("    allowed clients (one must match):");
	for (i = 0; i < rule->n_allow_clients; i++)
		printf(" %s:%s", rule->allow_clients[i].kind == POLICY_CLIENT_URI ? "uri" :
		       rule->allow_clients[i].kind == POLICY_CLIENT_DNS ? "dns" : "cn",
		       rule->allow_clients[i].pattern);
	printf("\n");
}

/* What the server side of an upgrade under D does. */
static void explain_serve(const struct decision *d)
{
	const struct policy_rule *rule = d->rule;
	size_t i;

	printf("served as TLS 1.3 (tlsshim is the server; the program reads and writes plaintext)\n");
	printf("    certificate: %s (key ", rule->cert);
	print_hiding_pins(rule->key, stdout);
	printf(")\n");
	explain_clients(rule);
	if (rule->plaintext == POLICY_PLAINTEXT_ALLOW)
		printf("    plaintext clients: ALLOWED, served in clear (migration mode, logged at warning)\n");
	else
		printf("    plaintext clients: refused (closed and logged; the program sees nothing)\n");
	if (rule->n_alpn) {
		printf("    ALPN (server preference):");
		for (i = 0; i < rule->n_alpn; i++)
			printf(" %s", rule->alpn[i]);
		printf("; %s\n", rule->alpn_required ? "a client offering none of them is refused"
			: "a client offering none of them is still accepted");
	}
	printf("    session tickets: %s\n", rule->session_tickets ? "on" : "off");
	if (rule->ocsp_staple)
		printf("    OCSP staple: %s\n", rule->ocsp_staple);
	if (rule->handshake_timeout_ms % 1000 == 0)
		printf("    handshake timeout: %us", rule->handshake_timeout_ms / 1000);
	else
		printf("    handshake timeout: %ums", rule->handshake_timeout_ms);
	printf(" (on the program's first read, write or poll; accept never waits)\n");
}

/* What the library does with a connection accepted on the local address
 * TARGET: the verdict of decide_accept(), the function the library calls. */
static int explain_listen(const char *policy_arg, const char *target)
{
	char path[PATH_MAX];
	struct decide_addr local;
	struct policy *policy;
	struct decision d;

	if (parse_local(target, &local) < 0)
		return 2;
	policy = load_policy(policy_arg, path, sizeof path);
	if (!policy)
		return 2;
	printf("policy %s\n", path);
	decide_accept(policy, &local, NULL, &d);
	printf("accepted on %s", d.dest);
	if (!d.rule) {
		printf(": %s%s: passed through untouched\n", d.reason,
		       policy->has_inbound ? "" : " (the policy has none)");
		policy_free(policy);
		return 0;
	}
	printf(": rule [%s] (line %u): ", d.rule->name, d.rule->line);
	switch (d.verdict) {
	case DECIDE_PLAIN:
		printf("%s: passed through untouched\n", d.reason);
		break;
	case DECIDE_DENY:
		printf("deny: the connection is reset and accept() fails with ECONNABORTED\n");
		break;
	case DECIDE_REFUSE:
		printf("REFUSED: %s\n", d.reason);
		break;
	case DECIDE_UPGRADE:
		explain_serve(&d);
		break;
	}
	policy_free(policy);
	return 0;
}

int main(int argc, char **argv)
{
	const char *policy_arg = NULL, *mode = "run";
	int verbose = 0, i = 1;
	bool show_secrets = false, listen = false;

	if (argc > 1 && (strcmp(argv[1], "check") == 0 || strcmp(argv[1], "explain") == 0)) {
		mode = argv[1];
		i = 2;
	}
	/* "explain listen [-p POLICY] ADDR:PORT" as well as "explain [-p POLICY] listen ...". */
	if (strcmp(mode, "explain") == 0 && i < argc && strcmp(argv[i], "listen") == 0) {
		listen = true;
		i++;
	}
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
			policy_arg = argv[++i];
		} else if (strncmp(argv[i], "-p", 2) == 0 && argv[i][2]) {
			policy_arg = argv[i] + 2;
		} else if (strcmp(argv[i], "-v") == 0) {
			verbose = 1;
		} else if (strcmp(argv[i], "--show-secrets") == 0 && strcmp(mode, "check") == 0) {
			show_secrets = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("tlsshim %s\n", PACKAGE_VERSION);
			return 0;
		} else {
			fprintf(stderr, "%s: unknown option %s\n", progname, argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (strcmp(mode, "check") == 0) {
		if (i != argc) {
			usage(stderr);
			return 2;
		}
		return check(policy_arg, show_secrets);
	}
	if (strcmp(mode, "explain") == 0) {
		if (!listen && i < argc && strcmp(argv[i], "listen") == 0) {
			listen = true;
			i++;
		}
		if (i + 1 != argc) {
			usage(stderr);
			return 2;
		}
		return listen ? explain_listen(policy_arg, argv[i]) : explain(policy_arg, argv[i]);
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	return run(policy_arg, verbose, argv + i);
}
