/* log.c - log lines: levels, text/JSON formatting, and the destination
 * (stderr, a file, syslog).  The descriptor a line goes to is one of ours,
 * kept by ownfd.c. */
#include "log.h"
#include "ownfd.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

/* The log runs on the program's threads, whose stacks may be small (musl's
 * 128 KiB, a runtime's own threads): a message is formatted on the stack up
 * to LOG_TEXT_MAX bytes (about 3 KiB of stack a call, JSON included), on
 * the heap beyond, up to LOG_LONG_MAX bytes (cut with "..." beyond). */
#define LOG_TEXT_MAX 1024
#define LOG_LONG_MAX 6144
/* A JSON message's escaped text on the stack: room for a few escapes. */
#define LOG_ESCAPED_MAX (LOG_TEXT_MAX + 128)

static atomic_int log_dest = POLICY_LOG_STDERR; /* enum policy_log_dest */
static atomic_int log_level = POLICY_LEVEL_WARNING;
static atomic_int log_format = POLICY_FORMAT_TEXT;

void log_set_format(enum policy_log_format format)
{
	atomic_store(&log_format, format);
}

bool log_is_json(void)
{
	return atomic_load(&log_format) == POLICY_FORMAT_JSON;
}

/* At start-up: the default destination (stderr, as it is now: a daemon
 * that later points its descriptor 2 at /dev/null keeps our log where it
 * was started), with one raw system call, before libc is resolved. */
void log_setup_early(void)
{
	ownfd_copy_stderr_early();
	atomic_store(&log_dest, POLICY_LOG_STDERR);
}

/* The descriptor for a log file at PATH (ours, high), or -1 with
 * *OPEN_ERRNO set. */
static int open_log_file(const char *path, int *open_errno)
{
	int opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600), fd;

	*open_errno = errno;
	fd = ownfd_copy_high(opened);
	if (opened >= 0)
		real.close(opened);
	return fd;
}

/* Called once, from init_once (pthread_once serialises it); no lock held.
 * The descriptor replaced is closed by ownfd_set, once no thread can still
 * be writing a line to it. */
void log_setup(enum policy_log_dest dest, const char *path, enum policy_log_level level)
{
	int fd = -1, open_errno = 0;
	enum policy_log_dest log_dest_before;

	real_init();
	log_dest_before = (enum policy_log_dest)atomic_load(&log_dest);
	if (dest == POLICY_LOG_STDERR && log_dest_before == POLICY_LOG_STDERR &&
	    ownfd_get(OWNFD_LOG) >= 0) {
		/* Already there (log_setup_early): keep the stderr of start-up. */
		atomic_store(&log_level, level);
		return;
	}
	atomic_store(&log_dest, dest);
	atomic_store(&log_level, level);
	if (dest == POLICY_LOG_STDERR) {
		fd = ownfd_copy_high(2);
	} else if (dest == POLICY_LOG_FILE && path) {
		fd = open_log_file(path, &open_errno);
		if (fd < 0 && ownfd_get(OWNFD_LOG) >= 0 && log_dest_before == POLICY_LOG_STDERR) {
			/* Say so where we can: on the stderr we have. */
			atomic_store(&log_dest, POLICY_LOG_STDERR);
			log_msg(POLICY_LEVEL_ERROR, "cannot open the log file %s: %s (logging to stderr)",
				path, strerror(open_errno));
			return;
		}
	} else if (dest == POLICY_LOG_SYSLOG) {
		openlog("tlsshim", LOG_PID | LOG_NDELAY, LOG_USER);
	}
	ownfd_set(OWNFD_LOG, fd);
}

int log_enabled(enum policy_log_level level)
{
	return (int)level <= atomic_load(&log_level);
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

/* Escape IN for a JSON string into OUT (OUTLEN bytes); return the length
 * written.  *CUT: IN did not fit whole. */
static size_t json_escape(char *out, size_t outlen, const char *in, bool *cut)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = 0;

	*cut = false;
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
	*cut = in && *in;
	return len;
}

size_t log_json_escape(char *out, size_t outlen, const char *in)
{
	bool cut;

	return json_escape(out, outlen, in, &cut);
}

/* Write the pieces of one line to our descriptor in one system call (a line
 * is never interleaved with another thread's).  The descriptor is pinned
 * from its load to the write: it cannot become the program's number in
 * between (ownfd.h).  Caller holds shim_guard. */
static void emit(const struct iovec *iov, int n)
{
	int pin, fd = ownfd_pin(OWNFD_LOG, &pin);

	if (fd >= 0 && real.writev) {
		ssize_t unused = real.writev(fd, iov, n);
		(void)unused;
	}
	ownfd_unpin(pin);
}

/* The start of a JSON line: time, pid, level.  Returns its length. */
static int json_head(char *line, size_t size, enum policy_log_level level)
{
	struct timespec ts;
	struct tm tm;
	char stamp[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	return snprintf(line, size,
			"{\"time\":\"%s.%03ldZ\",\"program\":\"tlsshim\",\"pid\":%ld,\"level\":\"%s\"", stamp,
			ts.tv_nsec / 1000000, (long)getpid(), policy_level_name(level));
}

/* The length of a head: snprintf's result LEN, bounded by its buffer. */
static size_t head_len(int len, size_t size)
{
	if (len < 0)
		return 0;
	return (size_t)len < size ? (size_t)len : size - 1;
}

void log_json(enum policy_log_level level, const char *fields)
{
	char head[160];
	int saved_errno = errno;
	size_t len;

	if (!log_enabled(level))
		return;
	real_init();
	shim_guard++;
	len = head_len(json_head(head, sizeof head, level), sizeof head);
	if (atomic_load(&log_dest) == POLICY_LOG_SYSLOG) {
		syslog(syslog_priority(level), "%s,%s}", head, fields);
	} else {
		struct iovec iov[4] = {
			{ head, len },
			{ (void *)",", 1 },
			{ (void *)fields, strlen(fields) },
			{ (void *)"}\n", 2 },
		};

		emit(iov, 4);
	}
	shim_guard--;
	errno = saved_errno;
}

/* A message as a JSON line.  Its text is escaped on the stack, or on the
 * heap when it does not fit there (cut, visibly, if memory is short). */
static void json_message(enum policy_log_level level, const char *text)
{
	char head[160], small[LOG_ESCAPED_MAX], *escaped = small, *big = NULL;
	static const char open[] = ",\"message\":\"", close[] = "\"}\n";
	size_t big_size = 6 * strlen(text) + 8; /* every byte escaped, and the check's 7 */
	struct iovec iov[4];
	bool cut;

	iov[2].iov_len = json_escape(small, sizeof small - 3, text, &cut);
	if (cut && (big = malloc(big_size)) != NULL) {
		escaped = big;
		iov[2].iov_len = json_escape(big, big_size, text, &cut);
	}
	if (cut) {
		memcpy(escaped + iov[2].iov_len, "...", 4); /* cut, visibly */
		iov[2].iov_len += 3;
	}
	iov[2].iov_base = escaped;
	iov[0] = (struct iovec){ head, head_len(json_head(head, sizeof head, level), sizeof head) };
	iov[1] = (struct iovec){ (void *)open, sizeof open - 1 };
	iov[3] = (struct iovec){ (void *)close, sizeof close - 1 };
	emit(iov, 4);
	free(big);
}

/* A message as a text line: "tlsshim[PID]: LEVEL: TEXT", one new line. */
static void text_message(enum policy_log_level level, const char *text)
{
	char head[64];
	size_t len = strlen(text);
	int hlen = snprintf(head, sizeof head, "tlsshim[%ld]: %s: ", (long)getpid(),
			    policy_level_name(level));
	bool has_newline = len > 0 && text[len - 1] == '\n';
	struct iovec iov[3] = {
		{ head, head_len(hlen, sizeof head) },
		{ (void *)text, len },
		{ (void *)"\n", has_newline ? 0 : 1 },
	};

	emit(iov, 3);
}

/* A message to syslog, one trailing new line dropped. */
static void syslog_message(enum policy_log_level level, const char *text)
{
	size_t len = strlen(text);

	if (len > 0 && text[len - 1] == '\n')
		len--;
	syslog(syslog_priority(level), "%.*s", (int)len, text);
}

/* A message of LEN bytes (vsnprintf's count) too long for the stack, formatted
 * again on the heap, at most LOG_LONG_MAX bytes (cut visibly beyond).  NULL
 * if memory is short. */
static char *format_long(int len, const char *fmt, va_list ap)
{
	size_t size = (size_t)len + 1 < LOG_LONG_MAX ? (size_t)len + 1 : LOG_LONG_MAX;
	char *text = malloc(size);

	if (!text)
		return NULL;
	vsnprintf(text, size, fmt, ap);
	if ((size_t)len + 1 > size)
		memcpy(text + size - 4, "...", 4);
	return text;
}

void log_msg(enum policy_log_level level, const char *fmt, ...)
{
	char small[LOG_TEXT_MAX], *text = small, *big = NULL;
	int saved_errno = errno, len;
	va_list ap;

	if (!log_enabled(level))
		return;
	real_init();
	shim_guard++;
	va_start(ap, fmt);
	len = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (len < 0) {
		small[0] = '\0';
	} else if (len >= (int)sizeof small) {
		va_start(ap, fmt);
		text = big = format_long(len, fmt, ap);
		va_end(ap);
		if (!big) {
			text = small;
			memcpy(small + sizeof small - 4, "...", 4); /* cut, visibly */
		}
	}
	if (atomic_load(&log_dest) == POLICY_LOG_SYSLOG)
		syslog_message(level, text);
	else if (log_is_json())
		json_message(level, text);
	else
		text_message(level, text);
	free(big);
	shim_guard--;
	errno = saved_errno;
}
