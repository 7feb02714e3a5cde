/* hook_priv.c - a program about to give up rights.  Daemons read their
 * configuration as root, then change user (nginx's workers run as nobody)
 * or chroot: the rule files our connections need (certificates, keys,
 * trust anchors) may not be readable afterwards.  Before the first such
 * call the library reads the policy and loads the credentials of every
 * rule (init.c: shim_before_privdrop), while the program still may.
 * Each hook then calls libc's own function, which does the rest (glibc
 * applies set*id to every thread). */
#include "shim.h"

#include <grp.h>
#include <sys/types.h>
#include <unistd.h>

/* The credentials first (unless inside our own code), then libc. */
#define PRIV_HOOK(ret_type, name, params, args)                  \
	ret_type name params                                     \
	{                                                        \
		real_need();                                     \
		if (shim_enter())                                \
			shim_before_privdrop();                  \
		return real.name args;                           \
	}

PRIV_HOOK(int, setuid, (uid_t uid), (uid))
PRIV_HOOK(int, seteuid, (uid_t uid), (uid))
PRIV_HOOK(int, setreuid, (uid_t r, uid_t e), (r, e))
PRIV_HOOK(int, setresuid, (uid_t r, uid_t e, uid_t s), (r, e, s))
PRIV_HOOK(int, setgid, (gid_t gid), (gid))
PRIV_HOOK(int, setegid, (gid_t gid), (gid))
PRIV_HOOK(int, setregid, (gid_t r, gid_t e), (r, e))
PRIV_HOOK(int, setresgid, (gid_t r, gid_t e, gid_t s), (r, e, s))
PRIV_HOOK(int, setgroups, (size_t n, const gid_t *list), (n, list))
PRIV_HOOK(int, chroot, (const char *path), (path))
