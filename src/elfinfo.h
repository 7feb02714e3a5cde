/* elfinfo.h - what an executable file says about how it will be loaded:
 * the launcher warns about statically linked programs (LD_PRELOAD cannot
 * reach them), and exec (hook_exec.c) will not hand an inbound connection
 * whose TLS handshake has not begun to one. */
#ifndef TLSSHIM_ELFINFO_H
#define TLSSHIM_ELFINFO_H

enum elf_kind {
	ELF_DYNAMIC,   /* an ELF file with a program interpreter (PT_INTERP) */
	ELF_STATIC,    /* an ELF file without one: the loader never runs */
	ELF_NOT_ELF,   /* not an ELF file (a script, or unknown) */
	ELF_UNREADABLE /* a read failed, or the headers are cut short */
};

/* Read FD's ELF header and program headers (pread: the offset stays). */
enum elf_kind elf_kind(int fd);

#endif
