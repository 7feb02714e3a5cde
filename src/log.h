/* log.h - log lines "tlsshim[PID]: level: message" (or JSON) to stderr,
 * syslog or a file, through a descriptor of our own (ownfd.h) that survives
 * the program closing or dup2-ing its descriptors.  Never touches the
 * program's stdio. */
#ifndef TLSSHIM_LOG_H
#define TLSSHIM_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

/* At start-up: log to (a descriptor of our own copied from) stderr, at
 * warning level, without resolving libc first. */
void log_setup_early(void);

/* Set destination and level, once the policy is read (at the first
 * connection, from init_once: one call per process).  The descriptor it
 * replaces is closed once no thread can still be writing to it. */
void log_setup(enum policy_log_dest dest, const char *path, enum policy_log_level level);

void log_set_format(enum policy_log_format format);
bool log_is_json(void);
/* One JSON line: FIELDS is the inside of an object ("\"a\":1,\"b\":\"x\""),
 * to which time, pid and level are added. */
void log_json(enum policy_log_level level, const char *fields);
/* Escape IN for a JSON string into OUT; return the length written. */
size_t log_json_escape(char *out, size_t outlen, const char *in);

/* Is a message of LEVEL shown? */
int log_enabled(enum policy_log_level level);

void log_msg(enum policy_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(POLICY_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(POLICY_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(POLICY_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(POLICY_LEVEL_DEBUG, __VA_ARGS__)

#endif
