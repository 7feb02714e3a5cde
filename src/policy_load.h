/* policy_load.h - reading the policy file from disk (permission checks,
 * referenced files), finding it, and printing it. */
#ifndef TLSSHIM_POLICY_LOAD_H
#define TLSSHIM_POLICY_LOAD_H

#include <stddef.h>
#include <stdio.h>

#include "policy.h"

/* Read and parse the policy file at PATH.  The file is opened with
 * O_NOFOLLOW|O_CLOEXEC, must be a regular file owned by root or by the
 * effective user, not writable by group or others, and at most 1 MiB.  Files
 * the rules name (ca, cert, key) must exist, be readable regular files, owned
 * by root or the effective user, not writable by group or others (they are
 * opened following symbolic links, and the target is checked); a cert or key
 * that is a PKCS#11 URI is not a file and is not checked.  The keylog file,
 * if set and present, must be a regular file (not a symbolic link) owned by
 * root or the effective user, with no group or other permissions at all (it
 * will hold secrets); if absent, its directory must exist.  A rule's
 * proxy-credentials file must be a regular file owned by root or the
 * effective user with no group or other permissions, holding one line
 * "user:password" (at most 255 bytes, no control bytes): it is read into
 * the rule's proxy_auth (errors never quote it).  On error
 * return NULL and write one line into ERRBUF: "PATH:LINE: reason" (or
 * "PATH: reason" when no line applies), e.g.
 * "/etc/p:7: cannot read key file /x/k.pem: No such file or directory".
 * Uses open/fstat/read/lstat/stat only (no stdio). */
struct policy *policy_load(const char *path, char *errbuf, size_t errlen);

/* policy_load in two steps, for the library: policy_open at start-up (cheap:
 * raw system calls, no parsing; with MIN_FD > 0 the descriptor is moved to
 * MIN_FD or above, close-on-exec), policy_load_fd when a connection first
 * needs the rules (FD stays open; the caller closes it).  Opening early keeps
 * the file readable after the program changes directory, root or user.
 * policy_open returns the descriptor, or -1 with ERRBUF filled. */
int policy_open(const char *path, int min_fd, char *errbuf, size_t errlen);
struct policy *policy_load_fd(int fd, const char *path, char *errbuf, size_t errlen);

/* Which policy file to use when none was given: $TLSSHIM_POLICY (via
 * secure_getenv, so ignored in setuid programs; an empty value counts as
 * unset), else ~/.config/tlsshim/policy (HOME via secure_getenv) if it exists,
 * else SYSCONFDIR "/tlsshim/policy" if it exists.  "Exists" means lstat()
 * succeeds, so a symbolic link there is found and then refused by
 * policy_load (fail closed).  Writes the path into BUF and returns BUF, or
 * returns NULL when there is no policy at all (errno 0), or when the chosen
 * path does not fit in BUF (errno ENAMETOOLONG: treat as an error, not as
 * "no policy"). */
const char *policy_find(char *buf, size_t buflen);

/* Print the policy as understood (for `tlsshim check`): globals, then each
 * rule with its line, matches, action, port, server-name, ca (or system),
 * cert/key, pins (re-encoded sha256//...), alpn, resume, early-data,
 * rekey-after, ocsp, groups, ciphers, handshake-timeout, protocol, proxy,
 * proxy-credentials (its path, never its content) (the defaults of tls
 * rules as comments).  One block per rule.
 * The output is in policy syntax (explanations in comments) and parses back
 * to the same policy. */
void policy_print(const struct policy *policy, FILE *out);

#endif
