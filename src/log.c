/* log.c - our own log descriptor and line formatting. */
#include "log.h"
#include "real.h"
#include "forklock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Our descriptors live high, away from the numbers programs use. */
#define LOG_FD_MIN 500

FORKLOCK_MUTEX(log_lock);
static atomic_int log_descriptor = -1;
static atomic_int log_dest = POLICY_LOG_STDERR; /* enum policy_log_dest */
static atomic_int log_level = POLICY_LEVEL_WARNING;
static atomic_int log_format = POLICY_FORMAT_TEXT;
static atomic_int keylog_descriptor = -1;
static atomic_int policy_descriptor = -1; /* the policy file, until it is read */
static char keylog_path[4096];

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

void log_set_format(enum policy_log_format format)
{
	atomic_store(&log_format, format);
}

bool log_is_json(void)
{
	return atomic_load(&log_format) == POLICY_FORMAT_JSON;
}

int log_open_keylog(const char *path)
{
	int opened, fd;

	real_init();
	opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (opened < 0)
		return -errno;
	/* An existing file keeps its mode: make sure it is ours alone. */
	fchmod(opened, 0600);
	fd = move_high(opened);
	real.close(opened);
	if (fd < 0)
		return -errno;
	snprintf(keylog_path, sizeof keylog_path, "%s", path);
	atomic_store(&keylog_descriptor, fd);
	return 0;
}

int log_keylog_fd(void)
{
	return atomic_load(&keylog_descriptor);
}

const char *log_keylog_path(void)
{
	return keylog_path;
}

/* At start-up: the default destination (stderr, as it is now: a daemon
 * that later points its descriptor 2 at /dev/null keeps our log where it
 * was started), with one raw system call, before libc is resolved. */
void log_setup_early(void)
{
	int fd = (int)syscall(SYS_fcntl, 2, F_DUPFD_CLOEXEC, LOG_FD_MIN);

	if (fd < 0)
		fd = (int)syscall(SYS_fcntl, 2, F_DUPFD_CLOEXEC, 3);
	atomic_store(&log_dest, POLICY_LOG_STDERR);
	atomic_store(&log_descriptor, fd);
}

void log_hold_policy_fd(int fd)
{
	atomic_store(&policy_descriptor, fd);
}

int log_policy_fd(void)
{
	return atomic_load(&policy_descriptor);
}

void log_release_policy_fd(void)
{
	int fd;

	pthread_mutex_lock(&log_lock);
	fd = atomic_exchange(&policy_descriptor, -1);
	if (fd >= 0)
		real.close(fd);
	pthread_mutex_unlock(&log_lock);
}

void log_setup(enum policy_log_dest dest, const char *path, enum policy_log_level level)
{
	int fd = -1, old, open_errno = 0;
	enum policy_log_dest log_dest_before;

	real_init();
	pthread_mutex_lock(&log_lock);
	log_dest_before = (enum policy_log_dest)atomic_load(&log_dest);
	if (dest == POLICY_LOG_STDERR && log_dest_before == POLICY_LOG_STDERR && atomic_load(&log_descriptor) >= 0) {
		/* Already there (log_setup_early): keep the stderr of start-up. */
		atomic_store(&log_level, level);
		pthread_mutex_unlock(&log_lock);
		return;
	}
	atomic_store(&log_dest, dest);
	atomic_store(&log_level, level);
	if (dest == POLICY_LOG_STDERR) {
		fd = move_high(2);
	} else if (dest == POLICY_LOG_FILE && path) {
		int opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

		open_errno = errno;
		fd = move_high(opened);
		if (opened >= 0)
			real.close(opened);
		if (fd < 0 && atomic_load(&log_descriptor) >= 0 && log_dest_before == POLICY_LOG_STDERR) {
			/* Say so where we can: on the stderr we have. */
			atomic_store(&log_dest, POLICY_LOG_STDERR);
			pthread_mutex_unlock(&log_lock);
			log_msg(POLICY_LEVEL_ERROR, "cannot open the log file %s: %s (logging to stderr)", path,
				strerror(open_errno));
			return;
		}
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

static void protect(atomic_int *ours, int fd)
{
	int high;

	if (fd < 0 || fd != atomic_load(ours))
		return;
	pthread_mutex_lock(&log_lock);
	if (fd == atomic_load(ours)) {
		high = real.fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
		atomic_store(ours, high);
		/* The program closes or replaces FD itself. */
	}
	pthread_mutex_unlock(&log_lock);
}

void log_protect_fd(int fd)
{
	protect(&log_descriptor, fd);
	protect(&keylog_descriptor, fd);
	protect(&policy_descriptor, fd);
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

size_t log_json_escape(char *out, size_t outlen, const char *in)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = 0;

	if (outlen == 0)
		return 0;
	for (; in && *in && len + 7 < outlen; in++) {
		unsigned char c = (unsigned char)*in;

		if (c == '"' || c == '\\') {
			out[len++] = '\\';
			out[len++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			out[len++] = '\\';
			out[len++] = 'u';
			out[len++] = '0';
			out[len++] = '0';
			out[len++] = hex[c >> 4];
			out[len++] = hex[c & 15];
		} else {
			out[len++] = (char)c;
		}
	}
	out[len] = '\0';
	return len;
}

static void emit(enum policy_log_level level, char *line, int len)
{
	int fd;

	if (len > 0 && line[len - 1] != '\n')
		line[len++] = '\n';
	if (atomic_load(&log_dest) == POLICY_LOG_SYSLOG) {
		syslog(syslog_priority(level), "%.*s", len - 1, line);
		return;
	}
	fd = atomic_load(&log_descriptor);
	if (fd >= 0 && real.write) {
		ssize_t unused = real.write(fd, line, len);
		(void)unused;
	}
}

/* The start of a JSON line: time, pid, level. */
static int json_head(char *line, size_t size, enum policy_log_level level)
{
	struct timespec ts;
	struct tm tm;
	char stamp[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	return snprintf(line, size, "{\"time\":\"%s.%03ldZ\",\"program\":\"tlsshim\",\"pid\":%ld,\"level\":\"%s\"",
			stamp, ts.tv_nsec / 1000000, (long)getpid(), level_word(level));
}

void log_json(enum policy_log_level level, const char *fields)
{
	char line[4096];
	int saved_errno = errno, len;

	if (!log_enabled(level))
		return;
	real_init();
	shim_guard++;
	len = json_head(line, sizeof line, level);
	len += snprintf(line + len, sizeof line - len - 3, ",%s}", fields);
	if (len > (int)sizeof line - 3)
		len = sizeof line - 3;
	line[len] = '\0';
	emit(level, line, len);
	shim_guard--;
	errno = saved_errno;
}

void log_msg(enum policy_log_level level, const char *fmt, ...)
{
	char text[6144], line[8192];
	int saved_errno = errno, len;
	va_list ap;

	if (!log_enabled(level))
		return;
	real_init();
	shim_guard++;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (log_is_json() && atomic_load(&log_dest) != POLICY_LOG_SYSLOG) {
		char escaped[7000];

		log_json_escape(escaped, sizeof escaped, text);
		len = json_head(line, sizeof line, level);
		len += snprintf(line + len, sizeof line - len - 3, ",\"message\":\"%s\"}", escaped);
	} else if (atomic_load(&log_dest) == POLICY_LOG_SYSLOG) {
		len = snprintf(line, sizeof line - 2, "%s", text);
	} else {
		len = snprintf(line, sizeof line - 2, "tlsshim[%ld]: %s: %s", (long)getpid(), level_word(level),
			       text);
	}
	if (len > (int)sizeof line - 3)
		len = sizeof line - 3;
	line[len] = '\0';
	emit(level, line, len);
	shim_guard--;
	errno = saved_errno;
}
