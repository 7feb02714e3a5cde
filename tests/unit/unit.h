/* unit.h - small helpers the unit tests share (TAP output is tap.h).
 *
 *   uint64_t s = 0x1234;  unit_rnd(&s)   xorshift64: a fixed, repeatable
 *                                         sequence of pseudo-random numbers
 *                                         for each seed (s must not be 0)
 *   unit_read_file(path, &len)            the whole file, malloc'd (not
 *                                         NUL-terminated); NULL on error
 *   unit_write_file(path, text, len, mode)  replace path with text, then
 *                                         chmod it to mode; true on success
 */
#ifndef TLSSHIM_UNIT_H
#define TLSSHIM_UNIT_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The next number of the xorshift64 sequence in *state (never 0). */
__attribute__((unused))
static uint64_t unit_rnd(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* Read all of path into a malloc'd buffer (the caller frees it); its size
 * in *len.  NULL if the file cannot be opened or memory runs out. */
__attribute__((unused))
static char *unit_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *nb;
	size_t cap = 0, n = 0, r;

	if (!f)
		return NULL;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	*len = n;
	return buf;
}

/* Unlink path, write len bytes of text to a new file there, chmod it to
 * mode.  True if every step worked. */
__attribute__((unused))
static bool unit_write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd;
	bool done;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return false;
	done = write(fd, text, len) == (ssize_t)len;
	close(fd);
	return done && chmod(path, mode) == 0;
}

#endif
