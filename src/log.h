/* log.h - log lines "tlsshim[PID]: level: message" to stderr, syslog or a
 * file, through a descriptor of our own that survives the program closing or
 * dup2-ing its descriptors.  Never touches the program's stdio. */
#ifndef TLSSHIM_LOG_H
#define TLSSHIM_LOG_H

#include "policy.h"

/* Set destination and level.  Safe to call again (e.g. after a reload). */
void log_setup(enum policy_log_dest dest, const char *path, enum policy_log_level level);

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
