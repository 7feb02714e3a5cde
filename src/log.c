/* log.c - our own log descriptor and line formatting. */
#include "log.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* Our descriptors live high, away from the numbers programs use. */
#define LOG_FD_MIN 500

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int log_descriptor = -1;
static enum policy_log_dest log_dest = POLICY_LOG_STDERR;
static atomic_int log_level = POLICY_LEVEL_WARNING;

static int move_high(int fd)
{
	int high;

	if (fd < 0)
		return -1;
	high = real.fcntl(fd, F_DUPFD_CLOEXEC, LOG_FD_MIN);
	if (high < 0)
		high = real.fcntl(fd, F_DUPFD_CLOEXEC, 3);
	return high;
}

void log_setup(enum policy_log_dest dest, const char *path, enum policy_log_level level)
{
	int fd = -1, old;

	real_init();
	pthread_mutex_lock(&log_lock);
	log_dest = dest;
	atomic_store(&log_level, level);
	if (dest == POLICY_LOG_STDERR) {
		fd = move_high(2);
	} else if (dest == POLICY_LOG_FILE && path) {
		int opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		fd = move_high(opened);
		if (opened >= 0)
			real.close(opened);
	} else if (dest == POLICY_LOG_SYSLOG) {
		openlog("tlsshim", LOG_PID | LOG_NDELAY, LOG_USER);
	}
	old = atomic_exchange(&log_descriptor, fd);
	if (old >= 0)
		real.close(old);
	pthread_mutex_unlock(&log_lock);
}

int log_enabled(enum policy_log_level level)
{
	return (int)level <= atomic_load(&log_level);
}

int log_fd(void)
{
	return atomic_load(&log_descriptor);
}

void log_protect_fd(int fd)
{
	int high;

	if (fd < 0 || fd != atomic_load(&log_descriptor))
		return;
	pthread_mutex_lock(&log_lock);
	if (fd == atomic_load(&log_descriptor)) {
		high = real.fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
		atomic_store(&log_descriptor, high);
		/* The program closes or replaces FD itself. */
	}
	pthread_mutex_unlock(&log_lock);
}

static const char *level_word(enum policy_log_level level)
{
	switch (level) {
	case POLICY_LEVEL_ERROR: return "error";
	case POLICY_LEVEL_WARNING: return "warning";
	case POLICY_LEVEL_INFO: return "info";
	default: return "debug";
	}
}

static int syslog_priority(enum policy_log_level level)
{
	switch (level) {
	case POLICY_LEVEL_ERROR: return LOG_ERR;
	case POLICY_LEVEL_WARNING: return LOG_WARNING;
	case POLICY_LEVEL_INFO: return LOG_INFO;
	default: return LOG_DEBUG;
	}
}

void log_msg(enum policy_log_level level, const char *fmt, ...)
{
	char line[2048];
	int saved_errno = errno, len, fd;
	va_list ap;

	if (!log_enabled(level))
		return;
	real_init();
	shim_guard++;
	len = snprintf(line, sizeof line, "tlsshim[%ld]: %s: ", (long)getpid(), level_word(level));
	va_start(ap, fmt);
	len += vsnprintf(line + len, sizeof line - len - 1, fmt, ap);
	va_end(ap);
	if (len > (int)sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	line[len] = '\0';

	if (log_dest == POLICY_LOG_SYSLOG) {
		syslog(syslog_priority(level), "%s", strchr(line, ':') + 2);
	} else {
		fd = atomic_load(&log_descriptor);
		if (fd >= 0 && real.write) {
			ssize_t unused = real.write(fd, line, len);
			(void)unused;
		}
	}
	shim_guard--;
	errno = saved_errno;
}
