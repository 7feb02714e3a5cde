/* tls_server_probe.c - the TLS engine's server role on its own, for tests
 * with real clients before (and beside) the library's accept path.
 *
 *   tls_server_probe PORTFILE CERT KEY [--client-ca PATH|system]
 *       [--allow uri:P|dns:P|cn:P]... [--alpn a,b] [--alpn-required]
 *       [--no-tickets] [--ocsp PATH] [--count N] [--key HEX128] [--rule NAME]
 *
 * Loads libtlsshim-tls.so (TLSSHIM_TLS_MODULE, else next to this program's
 * build tree) and uses its ops table directly, listens on 127.0.0.1 (port
 * written to PORTFILE), serves N connections one after the other (default
 * 1): a blocking handshake, then one read echoed and close_notify.  Prints one
 * line per connection: "ok version=... alpn=... resumed=... sni=...
 * client_id=... subject=..." or "refused: REASON".  --key: the ticket
 * master key (two probes with one key are two workers of one process);
 * --rule: the rule's name (default "probe"). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls_module.h"

static struct real_fns fns;
static const struct tls_ops *ops;

static void die(const char *what)
{
	fprintf(stderr, "tls_server_probe: %s\n", what);
	exit(2);
}

static void load(void)
{
	const char *path = getenv("TLSSHIM_TLS_MODULE");
	void *h = dlopen(path ? path : "src/.libs/libtlsshim-tls.so", RTLD_NOW | RTLD_LOCAL);

	if (!h)
		die(dlerror());
	ops = dlsym(h, "tlsshim_tls_ops");
	if (!ops || ops->abi != TLS_OPS_ABI || !ops->new_server)
		die("the module does not match");
	fns.read = read;
	fns.write = write;
	fns.recv = recv;
	fns.send = send;
	fns.sendmsg = sendmsg;
	fns.close = close;
	fns.fcntl = fcntl;
	fns.poll = poll;
	fns.open = open;
	ops->init(&fns);
}

/* "a,b,c" as a NULL-free list (the string is cut in place). */
static char **split(char *s, size_t *n)
{
	char **list = calloc(16, sizeof *list), *tok;

	*n = 0;
	for (tok = strtok(s, ","); tok && *n < 16; tok = strtok(NULL, ","))
		list[(*n)++] = tok;
	return list;
}

static void add_allow(struct policy_rule *rule, char *arg)
{
	struct policy_client_pattern *p;

	rule->allow_clients = realloc(rule->allow_clients, (rule->n_allow_clients + 1) * sizeof *p);
	p = &rule->allow_clients[rule->n_allow_clients++];
	if (strncmp(arg, "uri:", 4) == 0)
		p->kind = POLICY_CLIENT_URI;
	else if (strncmp(arg, "dns:", 4) == 0)
		p->kind = POLICY_CLIENT_DNS;
	else if (strncmp(arg, "cn:", 3) == 0)
		p->kind = POLICY_CLIENT_CN;
	else
		die("--allow takes uri:, dns: or cn:");
	p->pattern = strchr(arg, ':') + 1;
}

/* HEX (128 digits) into KEY. */
static void parse_key(const char *hex, unsigned char *key)
{
	unsigned i, byte;

	if (strlen(hex) != 2 * TLS_TICKET_KEY_LEN)
		die("--key takes 128 hex digits");
	for (i = 0; i < TLS_TICKET_KEY_LEN; i++) {
		if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
			die("--key takes 128 hex digits");
		key[i] = (unsigned char)byte;
	}
}

static void parse(struct policy_rule *rule, int argc, char **argv, int *count, unsigned char *key, bool *have_key)
{
	int i;

	for (i = 4; i < argc; i++) {
		if (strcmp(argv[i], "--client-ca") == 0 && i + 1 < argc) {
			if (strcmp(argv[++i], "system") == 0)
				rule->client_ca_system = true;
			else
				rule->client_ca = argv[i];
		} else if (strcmp(argv[i], "--allow") == 0 && i + 1 < argc) {
			add_allow(rule, argv[++i]);
		} else if (strcmp(argv[i], "--alpn") == 0 && i + 1 < argc) {
			rule->alpn = split(argv[++i], &rule->n_alpn);
		} else if (strcmp(argv[i], "--alpn-required") == 0) {
			rule->alpn_required = true;
		} else if (strcmp(argv[i], "--no-tickets") == 0) {
			rule->session_tickets = false;
		} else if (strcmp(argv[i], "--ocsp") == 0 && i + 1 < argc) {
			rule->ocsp_staple = argv[++i];
		} else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
			parse_key(argv[++i], key);
			*have_key = true;
		} else if (strcmp(argv[i], "--rule") == 0 && i + 1 < argc) {
			rule->name = argv[++i];
		} else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			*count = atoi(argv[++i]);
		} else {
			die("unknown option");
		}
	}
}

static int listen_loopback(const char *portfile)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	FILE *f;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		die("cannot listen");
	f = fopen(portfile, "w");
	if (!f)
		die("cannot write the port file");
	fprintf(f, "%u\n", ntohs(sin.sin_port));
	fclose(f);
	return fd;
}

/* One connection: handshake, report, echo. */
static void serve(int fd, const struct policy_rule *rule, const unsigned char *key)
{
	struct tls_server_params params = { .common = { .rule = rule, .fd = fd }, .ticket_key = key,
					    .peer = "127.0.0.1" };
	struct tls_info info;
	struct tls *tls;
	char err[512], buf[16384];
	ssize_t n;
	int ret;

	if (ops->new_server(&tls, &params, err, sizeof err) < 0) {
		printf("setup failed: %s\n", err);
		return;
	}
	ret = ops->handshake(tls, TLS_BLOCKING);
	if (ret < 0) {
		printf("refused: %s (%d)\n", ops->reason(tls), ret);
		ops->free(tls);
		return;
	}
	ops->get_info(tls, &info);
	printf("ok version=%s cipher=%s group=%s alpn=%s resumed=%d sni=%s client_id=%s subject=%s issuer=%s "
	       "expiry=%s\n", info.version, info.cipher, info.group, info.alpn, info.resumed, info.sni,
	       info.client_id, info.subject, info.issuer, info.expiry);
	fflush(stdout);
	/* One read echoed, then close_notify: the client sees the end. */
	n = ops->recv(tls, buf, sizeof buf, TLS_BLOCKING);
	if (n > 0)
		ops->sendv(tls, &(struct iovec){ buf, (size_t)n }, 1, TLS_BLOCKING);
	if (n < 0)
		printf("read ended: %s\n", ops->reason(tls));
	ops->bye(tls, TLS_BLOCKING);
	ops->free(tls);
}

int main(int argc, char **argv)
{
	struct policy_rule rule = { .name = (char *)"probe", .inbound = true, .session_tickets = true,
				    .handshake_timeout_ms = 5000 };
	unsigned char key[TLS_TICKET_KEY_LEN];
	int lfd, fd, count = 1, i, rnd;
	bool have_key = false;

	if (argc < 4)
		die("usage: tls_server_probe PORTFILE CERT KEY [options]");
	rule.cert = argv[2];
	rule.key = argv[3];
	parse(&rule, argc, argv, &count, key, &have_key);
	load();
	if (!have_key) {
		rnd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (rnd < 0 || read(rnd, key, sizeof key) != (ssize_t)sizeof key)
			die("no random key");
		close(rnd);
	}
	lfd = listen_loopback(argv[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < count; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			die("accept");
		serve(fd, &rule, key);
		close(fd);
	}
	free(rule.allow_clients);
	free(rule.alpn);
	return 0;
}
