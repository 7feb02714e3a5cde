/* hosts.h - the hosts file (/etc/hosts format): address -> names, in file
 * order, and name -> addresses.  Pure apart from hosts_load. */
#ifndef TLSSHIM_HOSTS_H
#define TLSSHIM_HOSTS_H

#include <stddef.h>
#include <stdint.h>

struct hosts;  /* opaque */

/* Parse TEXT (LEN bytes; need not be NUL-terminated).  Lines are
 * "ADDR NAME [ALIASES...]", "#" starts a comment anywhere, blank lines and
 * tabs are fine.  Bad lines (bad address, no name) and bad names are skipped;
 * never fails on input.  Names are stored lower-case with one trailing dot
 * stripped; a name listed twice for the same address is kept once.  An IPv6
 * zone ("fe80::1%eth0") is ignored.  NULL only on ENOMEM. */
struct hosts *hosts_parse(const char *text, size_t len);

void hosts_free(struct hosts *hosts);

/* Names listed for the address (FAMILY AF_INET 4 bytes / AF_INET6 16 bytes),
 * in file order, canonical name first; an IPv4-mapped IPv6 address also finds
 * the IPv4 entries (and an IPv4 address the ::ffff:a.b.c.d entries).  Returns
 * the count, stores up to MAX pointers (owned by HOSTS) in NAMES. */
size_t hosts_names_for(const struct hosts *hosts, int family, const uint8_t *addr,
		       const char **names, size_t max);

/* Addresses listed for NAME (case-insensitive, trailing dot ignored), in file
 * order, as written (FAMILIES[i] AF_INET: 4 bytes of ADDRS[i] used), for
 * `tlsshim explain`: returns the count, fills up to MAX. */
size_t hosts_addrs_for(const struct hosts *hosts, const char *name, int *families,
		       uint8_t (*addrs)[16], size_t max);

/* Read and parse a hosts file from disk (open/read, no stdio; at most
 * 64 MiB); NULL if unreadable. */
struct hosts *hosts_load(const char *path);

#endif
