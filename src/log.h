/* log.h - log lines "tlsshim[PID]: level: message" to stderr, syslog or a
 * file, through a descriptor of our own that survives the program closing or
 * dup2-ing its descriptors.  Never touches the program's stdio. */
#ifndef TLSSHIM_LOG_H
#define TLSSHIM_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

/* At start-up: log to (a descriptor of our own copied from) stderr, at
 * warning level, without resolving libc first. */
void log_setup_early(void);

/* The policy file's descriptor, opened at start-up and read at the first
 * connection: one of our own descriptors, protected like the log's. */
void log_hold_policy_fd(int fd);
int log_policy_fd(void);
void log_release_policy_fd(void);

/* Set destination and level, once the policy is read (at the first
 * connection).  A later call would replace the destination (the old
 * descriptor is closed); nothing calls it twice today. */
void log_setup(enum policy_log_dest dest, const char *path, enum policy_log_level level);

void log_set_format(enum policy_log_format format);
bool log_is_json(void);
/* One JSON line: FIELDS is the inside of an object ("\"a\":1,\"b\":\"x\""),
 * to which time, pid and level are added. */
void log_json(enum policy_log_level level, const char *fields);
/* Escape IN for a JSON string into OUT; return the length written. */
size_t log_json_escape(char *out, size_t outlen, const char *in);

/* The NSS key log file (keylog = PATH): opened 0600, a descriptor of our own
 * protected like the log's.  Return 0 or a negative errno. */
int log_open_keylog(const char *path);
int log_keylog_fd(void);
const char *log_keylog_path(void);

/* Is a message of LEVEL shown? */
int log_enabled(enum policy_log_level level);

void log_msg(enum policy_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(POLICY_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(POLICY_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(POLICY_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(POLICY_LEVEL_DEBUG, __VA_ARGS__)

/* The program is about to close or replace FD (close, dup2 onto it,
 * close_range over it): if it is our log descriptor, move ours elsewhere
 * first.  Returns nothing; cheap when FD is not ours. */
void log_protect_fd(int fd);
/* Our log descriptor, or -1. */
int log_fd(void);

#endif
