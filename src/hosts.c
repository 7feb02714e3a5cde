/* hosts.c - the hosts file: address -> names and name -> addresses.
 * Hosts files can be large (ad-blocking lists have 100k+ lines), so both
 * directions use small open-addressing hash tables.  Pure except hosts_load. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "hosts.h"
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HOSTS_FILE (64u * 1024 * 1024)
#define MAX_NAME 253

struct addr_entry {          /* one distinct address (IPv4-mapped stored as IPv4) */
	int family;
	uint8_t addr[16];
	const char **names;      /* point into name_entry.name */
	size_t n, cap;
};

struct addr_ref {
	int family;              /* as written in the file */
	uint8_t addr[16];
};

struct name_entry {          /* one distinct name */
	char *name;              /* lower-case, no trailing dot */
	struct addr_ref *addrs;
	size_t n, cap;
};

struct table {
	size_t *slots;           /* index + 1; 0 = empty */
	size_t size;             /* power of two, or 0 */
};

struct hosts {
	struct addr_entry *a;
	size_t na, capa;
	struct table at;
	struct name_entry *nm;
	size_t nn, capn;
	struct table nt;
};

/* ---------------------------------------------------------------- utils */

static char to_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static uint64_t fnv(const void *data, size_t n, uint64_t h)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

#define FNV_INIT 14695981039346656037ull

static uint64_t addr_hash(int family, const uint8_t *addr)
{
	uint8_t f = (uint8_t)family;

	return fnv(addr, 16, fnv(&f, 1, FNV_INIT));
}

static uint64_t name_hash(const char *name)
{
	return fnv(name, strlen(name), FNV_INIT);
}

/* ---------------------------------------------------------- hash tables */

/* The address entry for (FAMILY, ADDR) (normalized): its index + 1, or 0. */
static size_t addr_find(const struct hosts *h, int family, const uint8_t *addr)
{
	const struct addr_entry *e;
	size_t mask, s;

	if (!h->at.size)
		return 0;
	mask = h->at.size - 1;
	for (size_t i = addr_hash(family, addr) & mask;; i = (i + 1) & mask) {
		s = h->at.slots[i];
		if (!s)
			return 0;
		e = &h->a[s - 1];
		if (e->family == family && memcmp(e->addr, addr, 16) == 0)
			return s;
	}
}

/* The name entry for NAME (normalized): its index + 1, or 0. */
static size_t name_find(const struct hosts *h, const char *name)
{
	size_t mask, s;

	if (!h->nt.size)
		return 0;
	mask = h->nt.size - 1;
	for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
		s = h->nt.slots[i];
		if (!s)
			return 0;
		if (strcmp(h->nm[s - 1].name, name) == 0)
			return s;
	}
}

/* Make sure the table has room for COUNT entries at load <= 1/2; rehash
 * with HASH(index). */
static bool table_reserve(struct table *t, size_t count, const struct hosts *h,
			  uint64_t (*hash)(const struct hosts *, size_t))
{
	size_t size, *slots, s, j;

	if (t->size && count * 2 <= t->size)
		return true;
	size = t->size ? t->size * 2 : 64;
	while (size < count * 2)
		size *= 2;
	slots = calloc(size, sizeof *slots);
	if (!slots)
		return false;
	for (size_t i = 0; i < t->size; i++) {
		s = t->slots[i];
		if (!s)
			continue;
		j = hash(h, s - 1) & (size - 1);
		while (slots[j])
			j = (j + 1) & (size - 1);
		slots[j] = s;
	}
	free(t->slots);
	t->slots = slots;
	t->size = size;
	return true;
}

static void table_insert(struct table *t, uint64_t hv, size_t index)
{
	size_t mask = t->size - 1;
	size_t j = hv & mask;

	while (t->slots[j])
		j = (j + 1) & mask;
	t->slots[j] = index + 1;
}

static uint64_t addr_hash_at(const struct hosts *h, size_t i)
{
	return addr_hash(h->a[i].family, h->a[i].addr);
}

static uint64_t name_hash_at(const struct hosts *h, size_t i)
{
	return name_hash(h->nm[i].name);
}

/* Room for NEED elements of ELEM bytes in *ARR (capacity *CAP). */
static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *n;

	if (need <= *cap)
		return true;
	ncap = *cap ? *cap * 2 : 4;
	while (ncap < need)
		ncap *= 2;
	n = realloc(*arr, ncap * elem);
	if (!n)
		return false;
	*arr = n;
	*cap = ncap;
	return true;
}

/* The entry for NAME (normalized), added if new: its index + 1, or 0 when
 * memory is short. */
static size_t name_entry_for(struct hosts *h, const char *name)
{
	size_t ni = name_find(h, name);
	struct name_entry *e;
	char *copy;

	if (ni)
		return ni;
	if (!grow((void **)&h->nm, &h->capn, h->nn + 1, sizeof *h->nm))
		return 0;
	if (!table_reserve(&h->nt, h->nn + 1, h, name_hash_at))
		return 0;
	copy = strdup(name);
	if (!copy)
		return 0;
	e = &h->nm[h->nn];
	memset(e, 0, sizeof *e);
	e->name = copy;
	table_insert(&h->nt, name_hash(copy), h->nn);
	return ++h->nn;
}

/* The entry for the normalized address (NFAM, NORM), added if new: its
 * index + 1, or 0 when memory is short. */
static size_t addr_entry_for(struct hosts *h, int nfam, const uint8_t *norm)
{
	size_t ai = addr_find(h, nfam, norm);
	struct addr_entry *e;

	if (ai)
		return ai;
	if (!grow((void **)&h->a, &h->capa, h->na + 1, sizeof *h->a))
		return 0;
	if (!table_reserve(&h->at, h->na + 1, h, addr_hash_at))
		return 0;
	e = &h->a[h->na];
	memset(e, 0, sizeof *e);
	e->family = nfam;
	memcpy(e->addr, norm, 16);
	table_insert(&h->at, addr_hash(nfam, norm), h->na);
	return ++h->na;
}

/* Is the normalized address (NFAM, NORM) already listed for NE? */
static bool name_has_addr(const struct name_entry *ne, int nfam, const uint8_t *norm)
{
	uint8_t a[16];

	for (size_t i = 0; i < ne->n; i++)
		if (addr_normalize(ne->addrs[i].family, ne->addrs[i].addr, a) == nfam &&
		    memcmp(a, norm, 16) == 0)
			return true;
	return false;
}

/* Record NAME (normalized) for the address as written (FAMILY, ADDR).
 * False when memory is short. */
static bool add_pair(struct hosts *h, int family, const uint8_t *addr, const char *name)
{
	uint8_t norm[16];
	int nfam = addr_normalize(family, addr, norm);
	struct name_entry *ne;
	struct addr_entry *ae;
	size_t ni, ai;

	/* The name. */
	ni = name_entry_for(h, name);
	if (!ni)
		return false;
	ne = &h->nm[ni - 1];
	if (name_has_addr(ne, nfam, norm))
		return true;   /* already listed for this address */
	if (!grow((void **)&ne->addrs, &ne->cap, ne->n + 1, sizeof *ne->addrs))
		return false;
	ne->addrs[ne->n].family = family;
	memset(ne->addrs[ne->n].addr, 0, 16);
	memcpy(ne->addrs[ne->n].addr, addr, family == AF_INET ? 4 : 16);
	ne->n++;

	/* The address. */
	ai = addr_entry_for(h, nfam, norm);
	if (!ai)
		return false;
	ae = &h->a[ai - 1];
	if (!grow((void **)&ae->names, &ae->cap, ae->n + 1, sizeof *ae->names)) {
		ne->n--;   /* keep both directions consistent */
		return false;
	}
	ae->names[ae->n++] = ne->name;
	return true;
}

/* -------------------------------------------------------------- parsing */

/* The address token TOK (N bytes) into FAMILY and ADDR (16 bytes, zero
 * padded); false if it is not an address. */
static bool parse_addr(const char *tok, size_t n, int *family, uint8_t addr[16])
{
	char buf[64];

	for (size_t i = 0; i < n; i++)
		if (tok[i] == '%') {   /* IPv6 zone: ignored */
			n = i;
			break;
		}
	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, tok, n);
	buf[n] = '\0';
	if (memchr(buf, '\0', n))
		return false;
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, buf, addr) == 1) {
		*family = AF_INET6;
		return true;
	}
	return false;
}

/* Normalize a name token into OUT (MAX_NAME + 1 bytes); false if unusable. */
static bool parse_name(const char *tok, size_t n, char *out)
{
	char c;

	if (n > 0 && tok[n - 1] == '.')
		n--;
	if (n == 0 || n > MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		c = tok[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
		out[i] = to_lower(c);
	}
	out[n] = '\0';
	return true;
}

/* One line S (N bytes): its address and names into H.  False only when
 * memory is short (a bad line or name is skipped). */
static bool parse_line(struct hosts *h, const char *s, size_t n)
{
	const char *hash = memchr(s, '#', n), *tok;
	char name[MAX_NAME + 1];
	size_t i = 0, start, tl;
	bool have_addr = false;
	int family = 0;
	uint8_t addr[16];

	if (hash)
		n = (size_t)(hash - s);
	while (i < n) {
		while (i < n && is_blank(s[i]))
			i++;
		if (i >= n)
			break;
		start = i;
		while (i < n && !is_blank(s[i]))
			i++;
		tok = s + start;
		tl = i - start;
		if (!have_addr) {
			if (!parse_addr(tok, tl, &family, addr))
				return true;   /* bad line: skipped */
			have_addr = true;
			continue;
		}
		if (!parse_name(tok, tl, name))
			continue;          /* bad name: skipped */
		if (!add_pair(h, family, addr, name))
			return false;
	}
	return true;
}

struct hosts *hosts_parse(const char *text, size_t len)
{
	struct hosts *h = calloc(1, sizeof *h);
	const char *start, *nl;
	size_t pos = 0, n;

	if (!h)
		return NULL;
	if (!text)
		return h;
	while (pos < len) {
		start = text + pos;
		nl = memchr(start, '\n', len - pos);
		n = nl ? (size_t)(nl - start) : len - pos;
		pos += n + (nl ? 1 : 0);
		if (!parse_line(h, start, n)) {
			hosts_free(h);
			errno = ENOMEM;
			return NULL;
		}
	}
	return h;
}

void hosts_free(struct hosts *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->na; i++)
		free(h->a[i].names);
	for (size_t i = 0; i < h->nn; i++) {
		free(h->nm[i].name);
		free(h->nm[i].addrs);
	}
	free(h->a);
	free(h->nm);
	free(h->at.slots);
	free(h->nt.slots);
	free(h);
}

/* -------------------------------------------------------------- lookups */

size_t hosts_names_for(const struct hosts *h, int family, const uint8_t *addr,
		       const char **names, size_t max)
{
	const struct addr_entry *e;
	uint8_t norm[16];
	size_t ai;
	int nfam;

	if (!h || !addr || (nfam = addr_normalize(family, addr, norm)) == AF_UNSPEC)
		return 0;
	ai = addr_find(h, nfam, norm);
	if (!ai)
		return 0;
	e = &h->a[ai - 1];
	for (size_t i = 0; i < e->n && i < max && names; i++)
		names[i] = e->names[i];
	return e->n;
}

size_t hosts_addrs_for(const struct hosts *h, const char *name, int *families,
		       uint8_t (*addrs)[16], size_t max)
{
	char norm[MAX_NAME + 1];
	const struct name_entry *e;
	size_t ni;

	if (!h || !name || !parse_name(name, strlen(name), norm))
		return 0;
	ni = name_find(h, norm);
	if (!ni)
		return 0;
	e = &h->nm[ni - 1];
	for (size_t i = 0; i < e->n && i < max; i++) {
		if (families)
			families[i] = e->addrs[i].family;
		if (addrs)
			memcpy(addrs[i], e->addrs[i].addr, 16);
	}
	return e->n;
}

/* All of FD (a regular file of SIZE bytes, which may grow while it is read;
 * at most about MAX_HOSTS_FILE is used).  Returns the buffer (caller frees;
 * *LEN its length), or NULL. */
static char *read_hosts_file(int fd, size_t size, size_t *len)
{
	size_t cap = size + 1, n = 0;
	char *buf, *nb;
	ssize_t r;

	if (cap < 4096)
		cap = 4096;
	buf = malloc(cap);
	if (!buf)
		return NULL;
	for (;;) {
		if (n == cap) {
			if (cap > MAX_HOSTS_FILE)
				break;   /* grew while reading: use what fits */
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return buf;
}

struct hosts *hosts_load(const char *path)
{
	struct hosts *h;
	struct stat st;
	size_t n = 0;
	char *buf;
	int fd;

	if (!path)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_HOSTS_FILE) {
		close(fd);
		return NULL;
	}
	buf = read_hosts_file(fd, (size_t)st.st_size, &n);
	close(fd);
	if (!buf)
		return NULL;
	h = hosts_parse(buf, n);
	free(buf);
	return h;
}
