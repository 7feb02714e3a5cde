/* policy_load.c - the policy file on disk: reading it safely (no stdio: this
 * runs inside arbitrary programs), checking the files it names, finding it,
 * and printing it for `tlsshim check`. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "policy_load.h"

#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

#define MAX_POLICY_FILE (1024 * 1024)

__attribute__((format(printf, 3, 4)))
static void put_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

static const char *errstr(int e, char *buf, size_t len)
{
	/* GNU strerror_r: returns the message (maybe not in BUF). */
	return strerror_r(e, buf, len);
}

/* Is the file described by ST safe to trust?  Return NULL or a reason
 * (written to WHY). */
static const char *check_owner_mode(const struct stat *st, char *why, size_t len)
{
	uid_t euid = geteuid();

	if (!S_ISREG(st->st_mode)) {
		snprintf(why, len, "is not a regular file");
		return why;
	}
	if (st->st_uid != 0 && st->st_uid != euid) {
		snprintf(why, len, "is owned by uid %u (must be root or uid %u)",
			 (unsigned)st->st_uid, (unsigned)euid);
		return why;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, len, "is writable by group or others (mode %04o)",
			 (unsigned)(st->st_mode & 07777));
		return why;
	}
	return NULL;
}

/* Read all of FD (a regular file of about SIZE bytes) up to MAX bytes, from
 * offset 0 (pread: a descriptor shared with a forked process has one offset).
 * Return the buffer (caller frees) or NULL with errno set (EFBIG: too
 * large). */
static char *read_all(int fd, size_t size, size_t max, size_t *out_len)
{
	size_t cap = size + 1 > max + 1 ? max + 1 : size + 1;
	size_t n = 0, ncap;
	char *buf, *nb;
	ssize_t r;
	int e;

	if (cap < 4096)
		cap = 4096;
	buf = malloc(cap);
	if (!buf)
		return NULL;
	for (;;) {
		if (n == cap) {
			if (cap > max) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
			cap = ncap;
		}
		r = pread(fd, buf + n, cap - n, (off_t)n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			e = errno;
			free(buf);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	*out_len = n;
	return buf;
}

/* Check a file named by the policy (ca, cert, key). */
static bool check_ref(const char *policy_path, unsigned line, const char *what,
		      const char *file, char *errbuf, size_t errlen)
{
	char eb[128], why[160];
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), e;
	struct stat st;

	if (fd < 0) {
		e = errno;
		put_err(errbuf, errlen, "%s:%u: cannot read %s file %s: %s", policy_path, line,
			what, file, errstr(e, eb, sizeof eb));
		return false;
	}
	if (fstat(fd, &st) != 0) {
		e = errno;
		close(fd);
		put_err(errbuf, errlen, "%s:%u: cannot read %s file %s: %s", policy_path, line,
			what, file, errstr(e, eb, sizeof eb));
		return false;
	}
	close(fd);
	if (check_owner_mode(&st, why, sizeof why)) {
		put_err(errbuf, errlen, "%s:%u: %s file %s %s", policy_path, line, what, file, why);
		return false;
	}
	return true;
}

/* The keylog file FILE exists, described (lstat) by ST: a regular file (not
 * a symbolic link) owned by root or the effective user, neither readable nor
 * writable by group or others (it will hold TLS secrets)?  True, or false
 * with ERRBUF filled. */
static bool check_keylog_file(const char *policy_path, unsigned line, const char *file,
			      const struct stat *st, char *errbuf, size_t errlen)
{
	char why[160];

	if (S_ISLNK(st->st_mode)) {
		put_err(errbuf, errlen,
			"%s:%u: keylog file %s is a symbolic link (not allowed: it will hold TLS secrets)",
			policy_path, line, file);
		return false;
	}
	if (check_owner_mode(st, why, sizeof why)) {
		put_err(errbuf, errlen, "%s:%u: keylog file %s %s", policy_path, line, file, why);
		return false;
	}
	if (st->st_mode & (S_IRWXG | S_IRWXO)) {
		put_err(errbuf, errlen,
			"%s:%u: keylog file %s is accessible by group or others (mode %04o; "
			"it will hold TLS secrets: chmod 600 it)",
			policy_path, line, file, (unsigned)(st->st_mode & 07777));
		return false;
	}
	return true;
}

/* The keylog file FILE is not there yet: it is created (mode 0600) in an
 * existing directory.  True if that directory exists, or false with ERRBUF
 * filled. */
static bool check_keylog_dir(const char *policy_path, unsigned line, const char *file,
			     char *errbuf, size_t errlen)
{
	const char *slash = strrchr(file, '/');
	size_t dl = slash && slash != file ? (size_t)(slash - file) : 1;
	char eb[128], *dir = strndup(file, dl);
	bool good = false;
	struct stat st;
	int e;

	if (!dir) {
		put_err(errbuf, errlen, "%s:%u: out of memory", policy_path, line);
		return false;
	}
	if (stat(dir, &st) != 0) {
		e = errno;
		put_err(errbuf, errlen, "%s:%u: keylog file %s: cannot use its directory %s: %s",
			policy_path, line, file, dir, errstr(e, eb, sizeof eb));
	} else if (!S_ISDIR(st.st_mode)) {
		put_err(errbuf, errlen, "%s:%u: keylog file %s: %s is not a directory", policy_path,
			line, file, dir);
	} else {
		good = true;
	}
	free(dir);
	return good;
}

/* Check the keylog file FILE (absolute): if it exists, check_keylog_file;
 * if not, check_keylog_dir.  True, or false with ERRBUF filled. */
static bool check_keylog(const char *policy_path, unsigned line, const char *file,
			 char *errbuf, size_t errlen)
{
	char eb[128];
	struct stat st;
	int e;

	if (lstat(file, &st) == 0)
		return check_keylog_file(policy_path, line, file, &st, errbuf, errlen);
	e = errno;
	if (e != ENOENT) {
		put_err(errbuf, errlen, "%s:%u: cannot check keylog file %s: %s", policy_path, line,
			file, errstr(e, eb, sizeof eb));
		return false;
	}
	return check_keylog_dir(policy_path, line, file, errbuf, errlen);
}

int policy_open(const char *path, int min_fd, char *errbuf, size_t errlen)
{
	char eb[128];
	int fd, e;

	if (!path || !*path) {
		put_err(errbuf, errlen, "(no policy file): empty path");
		return -1;
	}
	/* Raw system calls: the library opens the policy at start-up, where a
	 * call through its own hooks would resolve all of libc first. */
	fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP)
			put_err(errbuf, errlen, "%s: is a symbolic link (not allowed for the policy file)",
				path);
		else
			put_err(errbuf, errlen, "%s: cannot open: %s", path, errstr(e, eb, sizeof eb));
		return -1;
	}
	if (min_fd > 0) {
		int high = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, min_fd);

		if (high >= 0) {
			syscall(SYS_close, fd);
			fd = high;
		}
	}
	return fd;
}

struct policy *policy_load(const char *path, char *errbuf, size_t errlen)
{
	int fd = policy_open(path, 0, errbuf, errlen);
	struct policy *p;

	if (fd < 0)
		return NULL;
	p = policy_load_fd(fd, path, errbuf, errlen);
	syscall(SYS_close, fd);
	return p;
}

/* Read the text of the policy file open at FD (named PATH): a file we can
 * trust, at most 1 MiB.  Returns the text (caller frees; *LEN its length),
 * or NULL with ERRBUF filled. */
static char *read_policy_text(int fd, const char *path, size_t *len, char *errbuf, size_t errlen)
{
	char eb[128], why[160], *text;
	struct stat st;
	int e;

	if (fstat(fd, &st) != 0) {
		e = errno;
		put_err(errbuf, errlen, "%s: cannot stat: %s", path, errstr(e, eb, sizeof eb));
		return NULL;
	}
	if (check_owner_mode(&st, why, sizeof why)) {
		put_err(errbuf, errlen, "%s: %s", path, why);
		return NULL;
	}
	if (st.st_size > MAX_POLICY_FILE) {
		put_err(errbuf, errlen, "%s: policy file too large (%lld bytes, at most 1 MiB)", path,
			(long long)st.st_size);
		return NULL;
	}
	text = read_all(fd, (size_t)st.st_size, MAX_POLICY_FILE, len);
	e = errno;
	if (!text) {
		if (e == EFBIG)
			put_err(errbuf, errlen, "%s: policy file too large (at most 1 MiB)", path);
		else
			put_err(errbuf, errlen, "%s: cannot read: %s", path, errstr(e, eb, sizeof eb));
	}
	return text;
}

/* A private key file must not be readable by group or others: a server's
 * key lets anyone impersonate the daemon.  True, or false with ERRBUF
 * filled.  (Checked after check_ref, which checked the rest.) */
static bool check_key_private(const char *policy_path, unsigned line, const char *file,
			      char *errbuf, size_t errlen)
{
	struct stat st;

	if (stat(file, &st) != 0 || !(st.st_mode & (S_IRWXG | S_IRWXO)))
		return true;
	put_err(errbuf, errlen,
		"%s:%u: key file %s is accessible by group or others (mode %04o; it is the server's "
		"private key: chmod 600 it)", policy_path, line, file, (unsigned)(st.st_mode & 07777));
	return false;
}

/* The files an inbound rule R names (client-ca, ocsp-staple; its key
 * private) can be trusted?  True, or false with ERRBUF filled. */
static bool check_inbound_refs(const struct policy_rule *r, const char *path, char *errbuf, size_t errlen)
{
	if (r->key && !policy_is_pkcs11(r->key) &&
	    !check_key_private(path, r->key_line, r->key, errbuf, errlen))
		return false;
	if (r->client_ca && !check_ref(path, r->client_ca_line, "client-ca", r->client_ca, errbuf, errlen))
		return false;
	if (r->ocsp_staple &&
	    !check_ref(path, r->ocsp_staple_line, "ocsp-staple", r->ocsp_staple, errbuf, errlen))
		return false;
	return true;
}

/* The files policy P names (keylog, ca, cert, key, client-ca, ocsp-staple)
 * exist and can be trusted?  True, or false with ERRBUF filled. */
static bool check_refs(const struct policy *p, const char *path, char *errbuf, size_t errlen)
{
	if (p->keylog_path && !check_keylog(path, p->keylog_line, p->keylog_path, errbuf, errlen))
		return false;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];

		/* A PKCS#11 URI names an object in a token, not a file. */
		if ((r->ca && !check_ref(path, r->ca_line, "ca", r->ca, errbuf, errlen)) ||
		    (r->cert && !policy_is_pkcs11(r->cert) &&
		     !check_ref(path, r->cert_line, "cert", r->cert, errbuf, errlen)) ||
		    (r->key && !policy_is_pkcs11(r->key) &&
		     !check_ref(path, r->key_line, "key", r->key, errbuf, errlen)))
			return false;
		if (r->inbound && !check_inbound_refs(r, path, errbuf, errlen))
			return false;
	}
	return true;
}

#define MAX_PROXY_AUTH 255  /* "user:password", without the line end */

/* The text of a proxy-credentials file (BUF, LEN bytes): one line
 * "user:password" (a final "\n" or "\r\n" allowed), no other control bytes,
 * a user name, at most MAX_PROXY_AUTH bytes.  Return the length of
 * "user:password", or 0 with *WHY set (never quoting the text: it holds a
 * password). */
static size_t check_credentials_text(const char *buf, size_t len, const char **why)
{
	const char *colon;

	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	*why = NULL;
	if (len == 0)
		*why = "is empty";
	else if (len > MAX_PROXY_AUTH)
		*why = "is longer than 255 bytes";
	for (size_t i = 0; i < len && !*why; i++)
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] == 0x7f)
			*why = "has a control character or more than one line";
	colon = *why ? NULL : memchr(buf, ':', len);
	if (!*why && !colon)
		*why = "has no \":\" between the user and the password";
	else if (!*why && colon == buf)
		*why = "has an empty user name";
	return *why ? 0 : len;
}

/* Read up to MAX_PROXY_AUTH + 3 bytes of FD into BUF (that size): enough
 * to tell a good file from a too long one.  The length, or -1 with errno
 * set. */
static ssize_t read_credentials(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;

	while (n < size) {
		r = pread(fd, buf + n, size - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	return (ssize_t)n;
}

/* Open the proxy-credentials file FILE (policy line LINE) and check it as
 * a key file is checked: a regular file owned by root or the effective
 * user, with no group or other permissions (it holds a password).  The
 * descriptor, or -1 with ERRBUF filled. */
static int open_credentials(const char *policy_path, unsigned line, const char *file, char *errbuf,
			    size_t errlen)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), e;
	char eb[128], why[160];
	struct stat st;

	if (fd < 0 || fstat(fd, &st) != 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		put_err(errbuf, errlen, "%s:%u: cannot read proxy-credentials file %s: %s", policy_path,
			line, file, errstr(e, eb, sizeof eb));
		return -1;
	}
	if (check_owner_mode(&st, why, sizeof why)) {
		put_err(errbuf, errlen, "%s:%u: proxy-credentials file %s %s", policy_path, line, file, why);
	} else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		put_err(errbuf, errlen, "%s:%u: proxy-credentials file %s is accessible by group or others "
			"(mode %04o; it holds the proxy password: chmod 600 it)", policy_path, line, file,
			(unsigned)(st.st_mode & 07777));
	} else {
		return fd;
	}
	close(fd);
	return -1;
}

/* Rule R's proxy-credentials file (open_credentials) read into
 * R->proxy_auth.  True, or false with ERRBUF filled ("PATH:LINE:
 * proxy-credentials file F ..."; the password is never in it). */
static bool load_proxy_credentials(struct policy_rule *r, const char *policy_path, char *errbuf,
				   size_t errlen)
{
	const char *file = r->proxy_credentials, *why;
	char text[MAX_PROXY_AUTH + 3], eb[128];
	unsigned line = r->proxy_credentials_line;
	int fd = open_credentials(policy_path, line, file, errbuf, errlen), e;
	ssize_t n;
	size_t len;

	if (fd < 0)
		return false;
	n = read_credentials(fd, text, sizeof text);
	e = errno;
	close(fd);
	if (n < 0) {
		put_err(errbuf, errlen, "%s:%u: cannot read proxy-credentials file %s: %s", policy_path, line,
			file, errstr(e, eb, sizeof eb));
		return false;
	}
	len = check_credentials_text(text, (size_t)n, &why);
	if (len)
		r->proxy_auth = strndup(text, len);
	explicit_bzero(text, sizeof text);
	if (!len) {
		put_err(errbuf, errlen, "%s:%u: proxy-credentials file %s %s (expected one line "
			"user:password, at most 255 bytes)", policy_path, line, file, why);
		return false;
	}
	if (!r->proxy_auth) {
		put_err(errbuf, errlen, "%s:%u: out of memory", policy_path, line);
		return false;
	}
	return true;
}

/* Every rule's proxy-credentials, read (load_proxy_credentials).  True,
 * or false with ERRBUF filled. */
static bool load_credentials(struct policy *p, const char *path, char *errbuf, size_t errlen)
{
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].proxy_credentials &&
		    !load_proxy_credentials(&p->rules[i], path, errbuf, errlen))
			return false;
	return true;
}

struct policy *policy_load_fd(int fd, const char *path, char *errbuf, size_t errlen)
{
	struct policy_error perr;
	struct policy *p;
	size_t len = 0;
	char *text = read_policy_text(fd, path, &len, errbuf, errlen);

	if (!text)
		return NULL;
	p = policy_parse(text, len, &perr);
	free(text);
	if (!p) {
		if (perr.line)
			put_err(errbuf, errlen, "%s:%u: %s", path, perr.line, perr.msg);
		else
			put_err(errbuf, errlen, "%s: %s", path, perr.msg);
		return NULL;
	}
	if (!check_refs(p, path, errbuf, errlen) || !load_credentials(p, path, errbuf, errlen)) {
		policy_free(p);
		return NULL;
	}
	return p;
}

/* Copy S into BUF; NULL with ENAMETOOLONG if it does not fit. */
static const char *put_path(char *buf, size_t buflen, const char *s)
{
	size_t n = strlen(s);

	if (!buf || n >= buflen) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	memcpy(buf, s, n + 1);
	errno = 0;
	return buf;
}

/* ~/.config/tlsshim/policy (HOME from secure_getenv), if it exists: copied
 * into BUF as put_path does, and *FOUND set.  Otherwise *FOUND is false. */
static const char *find_in_home(char *buf, size_t buflen, bool *found)
{
	static const char rel[] = "/.config/tlsshim/policy";
	const char *home = secure_getenv("HOME"), *r;
	struct stat st;
	size_t hl;
	char *p;
	int e;

	*found = false;
	if (!home || !*home)
		return NULL;
	hl = strlen(home);
	p = malloc(hl + sizeof rel);
	if (!p)
		return NULL;
	memcpy(p, home, hl);
	memcpy(p + hl, rel, sizeof rel);
	if (lstat(p, &st) != 0) {
		free(p);
		return NULL;
	}
	*found = true;
	r = put_path(buf, buflen, p);
	e = errno;
	free(p);
	errno = e;
	return r;
}

const char *policy_find(char *buf, size_t buflen)
{
	static const char sys[] = SYSCONFDIR "/tlsshim/policy";
	const char *env = secure_getenv("TLSSHIM_POLICY"), *r;
	struct stat st;
	bool found;

	if (env && *env)
		return put_path(buf, buflen, env);
	r = find_in_home(buf, buflen, &found);
	if (found)
		return r;
	if (lstat(sys, &st) == 0)
		return put_path(buf, buflen, sys);
	errno = 0;
	return NULL;
}

/* ------------------------------------------------------------ printing */

/* BYTES in the largest unit that is exact: "64KiB", "1GiB", "1000". */
static const char *size_str(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "TiB", "GiB", "MiB", "KiB" };

	for (unsigned i = 0; i < 4; i++) {
		unsigned shift = 40 - 10 * i;
		uint64_t unit = (uint64_t)1 << shift;

		if (bytes >= unit && bytes % unit == 0) {
			snprintf(buf, len, "%llu%s", (unsigned long long)(bytes >> shift), units[i]);
			return buf;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
	return buf;
}

/* MS in the largest unit that is exact: "2m", "10s", "1500ms". */
static const char *duration_str(unsigned ms, char *buf, size_t len)
{
	if (ms >= 60000 && ms % 60000 == 0)
		snprintf(buf, len, "%um", ms / 60000);
	else if (ms >= 1000 && ms % 1000 == 0)
		snprintf(buf, len, "%us", ms / 1000);
	else
		snprintf(buf, len, "%ums", ms);
	return buf;
}

/* "KEY = A,B,C" and a new line. */
static void print_list(FILE *out, const char *key, char *const *items, size_t n)
{
	fprintf(out, "%s = ", key);
	for (size_t j = 0; j < n; j++)
		fprintf(out, "%s%s", j ? "," : "", items[j]);
	fprintf(out, "\n");
}

/* The globals, for policy_print. */
static void print_globals(const struct policy *p, FILE *out)
{
	switch (p->log_dest) {
	case POLICY_LOG_STDERR:
		fprintf(out, "log = stderr\n");
		break;
	case POLICY_LOG_SYSLOG:
		fprintf(out, "log = syslog\n");
		break;
	case POLICY_LOG_FILE:
		fprintf(out, "log = file:%s\n", p->log_path ? p->log_path : "?");
		break;
	}
	fprintf(out, "log-level = %s\n", policy_level_name(p->log_level));
	fprintf(out, "session-cache = %u%s\n", p->session_cache,
		p->session_cache ? "" : "  # resumption off");
	fprintf(out, "log-format = %s\n", policy_format_name(p->log_format));
	if (p->keylog_path)
		fprintf(out, "keylog = %s  # DEBUGGING ONLY: TLS secrets are written to this file\n",
			p->keylog_path);
	else
		fprintf(out, "keylog = off\n");
}

/* A rule's matches, action, port and server-name, for policy_print. */
static void print_rule_target(const struct policy_rule *r, FILE *out)
{
	char buf[POLICY_MATCH_STRLEN];
	bool tls = r->action == POLICY_TLS;

	for (size_t j = 0; j < r->n_matches; j++)
		fprintf(out, "match = %s\n", policy_match_str(&r->matches[j], buf, sizeof buf));
	switch (r->action) {
	case POLICY_TLS:
		fprintf(out, "action = tls  # upgrade to TLS 1.3\n");
		break;
	case POLICY_PLAIN:
		fprintf(out, "action = plain  # passed through untouched\n");
		break;
	case POLICY_DENY:
		fprintf(out, "action = deny  # connect() fails with ECONNREFUSED\n");
		break;
	}
	if (r->port)
		fprintf(out, "port = %u\n", (unsigned)r->port);
	else if (tls)
		fprintf(out, "# port: the port the program connects to\n");
	if (r->server_name)
		fprintf(out, "server-name = %s%s\n", r->server_name,
			r->server_name_is_ip ? "  # IP address: verified against the IP SAN, no SNI sent" : "");
	else if (tls)
		fprintf(out, "# server-name: the host name the program resolved for the address\n");
}

/* An outbound rule's protocol, proxy and proxy-credentials (never the
 * credentials themselves), for policy_print. */
static void print_rule_inband(const struct policy_rule *r, FILE *out)
{
	bool v6 = r->proxy_host && strchr(r->proxy_host, ':');

	if (r->protocol != POLICY_PROTOCOL_TLS)
		fprintf(out, "protocol = %s  # %s\n", policy_protocol_name(r->protocol),
			policy_protocol_exchange(r->protocol));
	else if (r->action == POLICY_TLS)
		fprintf(out, "# protocol: tls (%s)\n", policy_protocol_exchange(POLICY_PROTOCOL_TLS));
	if (r->proxy_host)
		fprintf(out, "proxy = http://%s%s%s:%u  # CONNECT through it; the certificate verified is "
			"the destination's\n", v6 ? "[" : "", r->proxy_host, v6 ? "]" : "",
			(unsigned)r->proxy_port);
	if (r->proxy_credentials)
		fprintf(out, "proxy-credentials = %s  # Proxy-Authorization: Basic, credentials from %s "
			"(not shown)\n", r->proxy_credentials, r->proxy_credentials);
}

/* A rule's credentials (ca, cert, key, pins), ALPN and resume, for
 * policy_print. */
static void print_rule_credentials(const struct policy_rule *r, FILE *out)
{
	bool tls = r->action == POLICY_TLS;
	char pin[POLICY_PIN_STRLEN];

	fprintf(out, "ca = %s\n", r->ca ? r->ca : "system");
	if (r->cert)
		fprintf(out, "cert = %s%s\n", r->cert,
			policy_is_pkcs11(r->cert) ? "  # PKCS#11 URI" : "");
	if (r->key)
		fprintf(out, "key = %s%s\n", r->key,
			policy_is_pkcs11(r->key) ? "  # PKCS#11 URI" : "");
	if (!r->cert && tls)
		fprintf(out, "# no client certificate\n");
	for (size_t j = 0; j < r->n_pins; j++)
		fprintf(out, "pin = %s\n", policy_pin_str(r->pins[j], pin, sizeof pin));
	if (r->n_alpn)
		print_list(out, "alpn", r->alpn, r->n_alpn);
	else if (tls)
		fprintf(out, "# alpn: none offered\n");
	fprintf(out, "resume = %s\n", r->resume ? "on" : "off");
}

/* A rule's rekey-after, for policy_print. */
static void print_rekey(const struct policy_rule *r, FILE *out)
{
	char val[32];

	if (r->rekey_after)
		fprintf(out, "rekey-after = %s  # %llu bytes sent, then a KeyUpdate\n",
			size_str(r->rekey_after, val, sizeof val),
			(unsigned long long)r->rekey_after);
	else if (r->action == POLICY_TLS)
		fprintf(out, "# rekey-after: 0 (never; the peer's KeyUpdate is always answered)\n");
}

/* A rule's groups, ciphers and handshake timeout, for policy_print. */
static void print_suites(const struct policy_rule *r, FILE *out)
{
	bool tls = r->action == POLICY_TLS;
	char val[32];

	if (r->n_groups)
		print_list(out, "groups", r->groups, r->n_groups);
	else if (tls)
		fprintf(out, "# groups: the GnuTLS defaults\n");
	if (r->n_ciphers)
		print_list(out, "ciphers", r->ciphers, r->n_ciphers);
	else if (tls)
		fprintf(out, "# ciphers: the GnuTLS defaults\n");
	if (r->handshake_timeout_ms != POLICY_HANDSHAKE_TIMEOUT_MS)
		fprintf(out, "handshake-timeout = %s\n",
			duration_str(r->handshake_timeout_ms, val, sizeof val));
	else if (tls)
		fprintf(out, "# handshake-timeout: 10s\n");
}

/* A rule's TLS options (early data, rekey, OCSP, groups, ciphers, handshake
 * timeout), for policy_print. */
static void print_rule_options(const struct policy_rule *r, FILE *out)
{
	bool tls = r->action == POLICY_TLS;

	if (r->early_data)
		fprintf(out, "early-data = on  # 0-RTT on resumed connections: replayable, "
			"idempotent requests only\n");
	else if (tls)
		fprintf(out, "# early-data: off\n");
	print_rekey(r, out);
	switch (r->ocsp) {
	case POLICY_OCSP_REQUEST:
		if (tls)
			fprintf(out, "# ocsp: request (a stapled response, if sent, must be good)\n");
		break;
	case POLICY_OCSP_OFF:
		fprintf(out, "ocsp = off  # stapled responses ignored (must-staple certificates still need a good one)\n");
		break;
	case POLICY_OCSP_REQUIRE:
		fprintf(out, "ocsp = require  # no good stapled OCSP response: refused\n");
		break;
	}
	print_suites(r, out);
}

/* An inbound rule's listen entries and action, for policy_print. */
static void print_inbound_target(const struct policy_rule *r, FILE *out)
{
	char buf[POLICY_MATCH_STRLEN];
	const struct policy_match *m;
	const char *what;

	for (size_t j = 0; j < r->n_listens; j++) {
		m = &r->listens[j];
		what = m->kind == POLICY_HOST_ANY ? "any local address, IPv4 and IPv6"
		       : m->prefix != 0 ? NULL
		       : m->family == AF_INET ? "any local IPv4 address"
		       : "any local IPv6 address (IPv4-mapped included)";
		if (m->kind == POLICY_HOST_CIDR && m->prefix == 0)
			snprintf(buf, sizeof buf, "%s", m->family == AF_INET ? "0.0.0.0" : "[::]");
		else
			policy_match_str(m, buf, sizeof buf);
		if (m->kind == POLICY_HOST_CIDR && m->prefix == 0)
			snprintf(buf + strlen(buf), sizeof buf - strlen(buf), m->port ? ":%u" : ":*",
				 (unsigned)m->port);
		fprintf(out, "listen = %s", buf);
		if (what)
			fprintf(out, "  # %s%s", what, m->port ? "" : ", any port");
		else if (!m->port)
			fprintf(out, "  # any port");
		fprintf(out, "\n");
	}
	switch (r->action) {
	case POLICY_TLS:
		fprintf(out, "action = tls  # accepted connections speak TLS 1.3 (tlsshim is the server)\n");
		break;
	case POLICY_PLAIN:
		fprintf(out, "action = plain  # accepted connections left untouched\n");
		break;
	case POLICY_DENY:
		fprintf(out, "action = deny  # accepted connections are reset; accept() fails with ECONNABORTED\n");
		break;
	}
}

/* An inbound rule's certificate, client checks and plaintext handling, for
 * policy_print. */
static void print_inbound_credentials(const struct policy_rule *r, FILE *out)
{
	bool tls = r->action == POLICY_TLS;

	if (r->cert)
		fprintf(out, "cert = %s%s\n", r->cert,
			policy_is_pkcs11(r->cert) ? "  # PKCS#11 URI" : "  # the server certificate chain");
	if (r->key)
		fprintf(out, "key = %s%s\n", r->key, policy_is_pkcs11(r->key) ? "  # PKCS#11 URI" : "");
	if (r->client_ca || r->client_ca_system)
		fprintf(out, "client-ca = %s  # mTLS: a client certificate is required and verified\n",
			r->client_ca ? r->client_ca : "system");
	else if (tls)
		fprintf(out, "# client-ca: none (no client certificate requested)\n");
	if (r->n_allow_clients) {
		fprintf(out, "allow-client = ");
		for (size_t j = 0; j < r->n_allow_clients; j++)
			fprintf(out, "%s%s:%s", j ? "," : "",
				r->allow_clients[j].kind == POLICY_CLIENT_URI ? "uri" :
				r->allow_clients[j].kind == POLICY_CLIENT_DNS ? "dns" : "cn",
				r->allow_clients[j].pattern);
		fprintf(out, "\n");
	} else if (tls && (r->client_ca || r->client_ca_system)) {
		fprintf(out, "# allow-client: any certificate client-ca verifies\n");
	}
	if (r->plaintext == POLICY_PLAINTEXT_ALLOW)
		fprintf(out, "plaintext = allow  # MIGRATION MODE: clients that do not start TLS are served in clear\n");
	else if (tls)
		fprintf(out, "plaintext = refuse  # a client that does not start TLS is closed; the program sees nothing\n");
}

/* An inbound rule's ALPN, tickets, OCSP staple and TLS options, for
 * policy_print. */
static void print_inbound_options(const struct policy_rule *r, FILE *out)
{
	bool tls = r->action == POLICY_TLS;

	if (r->n_alpn) {
		print_list(out, "alpn", r->alpn, r->n_alpn);
		fprintf(out, "alpn-required = %s\n", r->alpn_required
			? "yes  # a client offering none of them is refused"
			: "no  # a client offering none of them is still accepted");
	} else if (tls) {
		fprintf(out, "# alpn: none negotiated\n");
	}
	if (!r->session_tickets)
		fprintf(out, "session-tickets = off  # no resumption\n");
	else if (tls)
		fprintf(out, "session-tickets = on\n");
	if (r->ocsp_staple)
		fprintf(out, "ocsp-staple = %s  # DER OCSP response, stapled when asked\n", r->ocsp_staple);
	else if (tls)
		fprintf(out, "# ocsp-staple: none\n");
	print_rekey(r, out);
	print_suites(r, out);
}

void policy_print(const struct policy *p, FILE *out)
{
	if (!p || !out)
		return;
	fprintf(out, "# tlsshim policy as understood: %zu rule%s, tried in this order\n",
		p->n_rules, p->n_rules == 1 ? "" : "s");
	print_globals(p, out);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];

		fprintf(out, "\n[%s]  # line %u, rule %zu, %s\n", r->name, r->line, i + 1,
			r->inbound ? "inbound" : "outbound");
		if (r->inbound) {
			print_inbound_target(r, out);
			print_inbound_credentials(r, out);
			print_inbound_options(r, out);
			continue;
		}
		print_rule_target(r, out);
		print_rule_inband(r, out);
		print_rule_credentials(r, out);
		print_rule_options(r, out);
	}
}
