/* elfinfo.c - PT_INTERP or not (elfinfo.h), for 32- and 64-bit ELF files
 * of either byte order. */
#include "elfinfo.h"

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static bool full_read(int fd, void *buf, size_t len, off_t off)
{
	return pread(fd, buf, len, off) == (ssize_t)len;
}

/* A field of SIZE bytes at P in the file's byte order (BIG). */
static uint64_t field(const unsigned char *p, size_t size, bool big)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < size; i++)
		v |= (uint64_t)p[big ? size - 1 - i : i] << (8 * i);
	return v;
}

enum elf_kind elf_kind(int fd)
{
	unsigned char eh[sizeof(Elf64_Ehdr)], ph[sizeof(Elf64_Phdr)];
	uint64_t phoff, phentsize, phnum, i;
	bool wide, big;

	if (!full_read(fd, eh, EI_NIDENT, 0))
		return ELF_NOT_ELF; /* shorter than an ELF identification */
	if (memcmp(eh, ELFMAG, SELFMAG) != 0)
		return ELF_NOT_ELF;
	wide = eh[EI_CLASS] == ELFCLASS64;
	big = eh[EI_DATA] == ELFDATA2MSB;
	if ((!wide && eh[EI_CLASS] != ELFCLASS32) || !full_read(fd, eh, wide ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr), 0))
		return ELF_UNREADABLE;
	if (wide) {
		phoff = field(eh + offsetof(Elf64_Ehdr, e_phoff), 8, big);
		phentsize = field(eh + offsetof(Elf64_Ehdr, e_phentsize), 2, big);
		phnum = field(eh + offsetof(Elf64_Ehdr, e_phnum), 2, big);
	} else {
		phoff = field(eh + offsetof(Elf32_Ehdr, e_phoff), 4, big);
		phentsize = field(eh + offsetof(Elf32_Ehdr, e_phentsize), 2, big);
		phnum = field(eh + offsetof(Elf32_Ehdr, e_phnum), 2, big);
	}
	if (phentsize < (wide ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) || phnum == PN_XNUM || phoff > INT64_MAX / 2)
		return ELF_UNREADABLE;
	for (i = 0; i < phnum; i++) {
		/* p_type is the first word of either layout. */
		if (!full_read(fd, ph, 4, (off_t)(phoff + i * phentsize)))
			return ELF_UNREADABLE;
		if (field(ph, 4, big) == PT_INTERP)
			return ELF_DYNAMIC;
	}
	return ELF_STATIC;
}
