/* policy.h - the policy file: a pure parser (text in, rules out) and the
 * rule matcher.  Nothing here does I/O: policy_load.c reads files and checks
 * permissions; this module only turns text into rules and matches them, so
 * it is unit-testable and fuzzable. */
#ifndef TLSSHIM_POLICY_H
#define TLSSHIM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum policy_action { POLICY_TLS = 0, POLICY_PLAIN, POLICY_DENY };

enum policy_log_dest { POLICY_LOG_STDERR = 0, POLICY_LOG_SYSLOG, POLICY_LOG_FILE };

/* log-format: one text line per event, or one JSON object per line. */
enum policy_log_format { POLICY_FORMAT_TEXT = 0, POLICY_FORMAT_JSON };

/* ocsp: request (default) asks for a stapled OCSP response and, when one
 * comes, requires it to be valid and good; require also refuses a server that
 * staples none; off ignores stapled responses (GnuTLS 3.7 asks anyway).  A must-staple certificate
 * always requires a good stapled response, whatever the rule says. */
enum policy_ocsp { POLICY_OCSP_REQUEST = 0, POLICY_OCSP_OFF, POLICY_OCSP_REQUIRE };

/* Ordered: a message is shown when its level <= the configured level. */
enum policy_log_level {
	POLICY_LEVEL_ERROR = 0,
	POLICY_LEVEL_WARNING,
	POLICY_LEVEL_INFO,
	POLICY_LEVEL_DEBUG,
};

enum policy_host_kind {
	POLICY_HOST_ANY = 0,   /* "*" */
	POLICY_HOST_NAME,      /* exact DNS name, stored lower-case, no trailing dot */
	POLICY_HOST_WILDCARD,  /* "*.example.com": stored as the suffix ".example.com" */
	POLICY_HOST_CIDR,      /* an address or a prefix; a bare address has the full length */
};

struct policy_match {
	enum policy_host_kind kind;
	char *name;               /* POLICY_HOST_NAME / POLICY_HOST_WILDCARD */
	int family;               /* AF_INET or AF_INET6, POLICY_HOST_CIDR only */
	uint8_t addr[16];         /* network order; 4 bytes used for AF_INET */
	unsigned prefix;          /* prefix length in bits */
	uint16_t port;            /* 0 = any port ("*") */
};

#define POLICY_PIN_LEN 32     /* SHA-256 */

#define POLICY_HANDSHAKE_TIMEOUT_MS 10000                 /* default: 10s */
#define POLICY_HANDSHAKE_TIMEOUT_MIN_MS 100               /* 100ms */
#define POLICY_HANDSHAKE_TIMEOUT_MAX_MS (10u * 60 * 1000) /* 10m */
#define POLICY_REKEY_AFTER_MAX ((uint64_t)1 << 40)        /* 1 TiB */

/* plaintext (inbound): what a client gets whose first bytes are not a TLS
 * ClientHello. */
enum policy_plaintext { POLICY_PLAINTEXT_REFUSE = 0, POLICY_PLAINTEXT_ALLOW };

/* protocol (outbound): how TLS starts.  tls: at the first byte; the others
 * ask for it inside the plaintext protocol first (inband.h). */
enum policy_protocol {
	POLICY_PROTOCOL_TLS = 0,
	POLICY_PROTOCOL_POSTGRES,
	POLICY_PROTOCOL_SMTP,
	POLICY_PROTOCOL_IMAP,
	POLICY_PROTOCOL_POP3,
	POLICY_PROTOCOL_LDAP,
	POLICY_PROTOCOL_MYSQL,
};

/* allow-client (inbound, with client-ca): one pattern the verified client
 * certificate may match. */
enum policy_client_kind {
	POLICY_CLIENT_URI = 0,    /* "uri:" a URI SAN; '*' one path segment, a last "**" segment any rest */
	POLICY_CLIENT_DNS,        /* "dns:" a DNS SAN; a leading "*." one label */
	POLICY_CLIENT_CN,         /* "cn:"  the subject CN, exact */
};

struct policy_client_pattern {
	enum policy_client_kind kind;
	char *pattern;            /* without its "uri:"/"dns:"/"cn:" prefix; dns: lower case */
};

struct policy_rule {
	char *name;
	unsigned line;            /* line of the [section] header */
	/* Outbound rules have matches (`match`), inbound rules listens
	 * (`listen`); a rule never has both. */
	struct policy_match *matches;
	size_t n_matches;
	bool inbound;             /* a `listen` rule: the program's accepted sockets */
	struct policy_match *listens; /* kind POLICY_HOST_ANY ("*": any address, both
				   * families) or POLICY_HOST_CIDR (an address, or a
				   * prefix); port 0 = any.  0.0.0.0 and [::] as a
				   * bare address are stored as a /0 of their family
				   * (they cover every local address of it) */
	size_t n_listens;
	enum policy_action action;
	uint16_t port;            /* TLS port; 0 = the program's port */
	char *server_name;        /* NULL = the name the program resolved */
	bool server_name_is_ip;   /* server_name is an IP literal: verify IP SAN, no SNI */
	char *ca;                 /* NULL = system trust store, else a PEM path */
	char *cert;               /* client certificate chain (PEM path or pkcs11: URI) or NULL */
	char *key;                /* its private key (PEM path or pkcs11: URI) or NULL */
	unsigned ca_line, cert_line, key_line;  /* where they were set, for load errors */
	uint8_t (*pins)[POLICY_PIN_LEN];        /* decoded sha256 pins */
	size_t n_pins;
	char **alpn;              /* protocols offered, in order */
	size_t n_alpn;
	bool resume;              /* use the session cache (default on) */
	bool early_data;          /* send the first bytes as 0-RTT on resumption (default off) */
	uint64_t rekey_after;     /* KeyUpdate after this many bytes sent; 0 = never */
	enum policy_ocsp ocsp;    /* default POLICY_OCSP_REQUEST */
	char **groups;            /* key-exchange groups, canonical upper-case names, in order */
	size_t n_groups;          /* 0 = the GnuTLS default */
	char **ciphers;           /* TLS 1.3 cipher suites, canonical upper-case names, in order */
	size_t n_ciphers;         /* 0 = the GnuTLS default */
	unsigned handshake_timeout_ms;  /* default POLICY_HANDSHAKE_TIMEOUT_MS */
	/* Inbound only (cert and key above are then the server's, required): */
	char *client_ca;          /* PEM path: request and require a client certificate
				   * verified against it; NULL: none requested */
	bool client_ca_system;    /* client-ca = system: the system trust store */
	unsigned client_ca_line;
	struct policy_client_pattern *allow_clients; /* NULL: any certificate client-ca verifies */
	size_t n_allow_clients;
	enum policy_plaintext plaintext; /* default POLICY_PLAINTEXT_REFUSE */
	bool alpn_required;       /* refuse a client offering none of alpn */
	bool session_tickets;     /* issue tickets (default on) */
	char *ocsp_staple;        /* DER OCSP response file to staple, or NULL */
	unsigned ocsp_staple_line;
	/* Outbound, in-band negotiation (inband.h): */
	enum policy_protocol protocol; /* default POLICY_PROTOCOL_TLS */
	unsigned protocol_line;
	char *proxy_host;         /* proxy = http://HOST:PORT: HOST (a name, an IPv4
				   * address or an IPv6 address without brackets), or NULL */
	uint16_t proxy_port;
	unsigned proxy_line;
	char *proxy_credentials;  /* proxy-credentials = PATH (a 0600 file), or NULL */
	unsigned proxy_credentials_line;
	char *proxy_auth;         /* "user:password", read from proxy_credentials by
				   * policy_load.c (never by the pure parser); NULL: none */
};

/* rekey-after below this draws a load warning: at most 4 KeyUpdates go out
 * a second (conn.c), so a smaller value is not kept by a connection sending
 * faster than 4 x the value a second (32M: about 1 Gbit/s). */
#define POLICY_REKEY_WARN_BELOW ((uint64_t)32 << 20)
#define POLICY_MAX_WARNINGS 32  /* kept; the rest are only counted */

/* Something valid but probably not what the author meant (a name-only rule
 * that a program connecting by address escapes, a rekey-after the rate
 * limit cannot keep).  Data, for the caller to print or log. */
struct policy_warning {
	unsigned line;            /* 0 when not tied to a line */
	char msg[480];
};

struct policy {
	enum policy_log_dest log_dest;
	char *log_path;           /* POLICY_LOG_FILE */
	enum policy_log_level log_level;
	unsigned session_cache;   /* tickets kept per process; 0 = off */
	char *keylog_path;        /* NSS key log file (absolute); NULL = off */
	unsigned keylog_line;     /* where keylog was set, for load errors */
	enum policy_log_format log_format;
	struct policy_rule *rules;
	size_t n_rules;
	bool has_inbound;         /* some rule is inbound (the library then looks at accept) */
	struct policy_warning *warnings;  /* in line order, at most POLICY_MAX_WARNINGS */
	size_t n_warnings;
	size_t n_warnings_dropped;        /* warnings beyond POLICY_MAX_WARNINGS */
};

struct policy_error {
	unsigned line;            /* 0 when the error is not tied to a line */
	char msg[256];
};

/* Parse TEXT (LEN bytes, need not be NUL-terminated; NUL bytes are an error).
 * Return a new policy, or NULL with *ERR filled in (line and reason). */
struct policy *policy_parse(const char *text, size_t len, struct policy_error *err);

/* policy_parse also fills policy->warnings: a tls or deny rule that matches
 * only by host name, unless the first other rule that catches every address
 * on its ports is not plain ("match = *:*  action = deny" at the end); a tls
 * rule whose rekey-after is below POLICY_REKEY_WARN_BELOW. */

/* A policy with no rules and the defaults, for a process without a policy. */
struct policy *policy_new_empty(void);

void policy_free(struct policy *policy);

/* The first rule that matches a connection to ADDR (FAMILY AF_INET with 4
 * bytes or AF_INET6 with 16 bytes) port PORT, where NAMES are the host names
 * known for the address (any of them may match a name rule).  NULL: no rule,
 * the connection is left alone.  An IPv4-mapped IPv6 address matches IPv4
 * rules as well. */
const struct policy_rule *policy_match(const struct policy *policy,
				       const char *const *names, size_t n_names,
				       int family, const uint8_t *addr, uint16_t port);

/* Does NAME fit the match entry M?  (Names are compared case-insensitively,
 * a trailing dot ignored.) */
bool policy_name_matches(const struct policy_match *m, const char *name);

/* Is VALUE (a cert or key setting) a PKCS#11 URI (RFC 7512), i.e. does it
 * start with "pkcs11:" (scheme case-insensitive)?  False for NULL.  Such a
 * value is not a file: policy_load does not check it, and the parser stores
 * it with the scheme in lower case. */
bool policy_is_pkcs11(const char *value);

/* Inbound: the first inbound rule one of whose listens covers the local
 * address ADDR (FAMILY, 4 or 16 bytes) port PORT of an accepted
 * connection, or NULL.  A /0 of a family (0.0.0.0, [::]) covers every
 * address of it; an IPv4-mapped IPv6 address matches IPv4 entries as well,
 * and "*" any address. */
const struct policy_rule *policy_match_listen(const struct policy *policy, int family, const uint8_t *addr,
					      uint16_t port);

const char *policy_action_name(enum policy_action action);
const char *policy_ocsp_name(enum policy_ocsp ocsp);            /* "request", ... */
const char *policy_format_name(enum policy_log_format format);  /* "text", "json" */
const char *policy_protocol_name(enum policy_protocol proto);  /* "tls", "postgres", ... */
/* What the protocol does before TLS, for check and explain ("the server's
 * 220, EHLO, STARTTLS (RFC 3207), then TLS"). */
const char *policy_protocol_exchange(enum policy_protocol proto);
const char *policy_level_name(enum policy_log_level level);
/* Parse a level name ("error", ...); return -1 if unknown. */
int policy_level_parse(const char *name);

/* Helpers for printing (tlsshim check/explain, logs). */
#define POLICY_MATCH_STRLEN 272   /* enough for any match entry as text */
#define POLICY_PIN_STRLEN 64      /* enough for "sha256//" + base64 + NUL */

/* Write the match entry M as it would appear in a policy ("*.example.com:443",
 * "10.0.0.0/8:*", "[fd00::]/8:443", ...) into BUF; return BUF. */
char *policy_match_str(const struct policy_match *m, char *buf, size_t len);

/* Write PIN as "sha256//BASE64" into BUF; return BUF. */
char *policy_pin_str(const uint8_t pin[POLICY_PIN_LEN], char *buf, size_t len);

#endif
