/* accept_errno - a plaintext server (run under tlsshim) that checks two
 * promises of its hooks on one accepted connection:
 *
 *   accept_errno PORTFILE LOG [--sigpipe]
 *
 * It listens on 127.0.0.1 (an ephemeral port, written to PORTFILE), sets
 * errno to a sentinel, accepts one connection and logs errno as accept
 * left it ("errno=SENTINEL" when the call kept it).  It reads one line and
 * answers "hello LINE\n".  With --sigpipe it then reads until the client's
 * end (EOF or an error), and writes until a write fails with EPIPE,
 * counting SIGPIPE: a program that writes to a closed connection gets one
 * SIGPIPE per failed write, not two.  LOG gets one line per step:
 *   accepted=yes errno=N
 *   line=LINE                 (or error=ENAME / error=eof)
 *   end=eof|ENAME
 *   writes=N write_error=ENAME sigpipe=N
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SENTINEL 4242

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

/* Listen on 127.0.0.1, ephemeral port, written to PORTFILE: the socket. */
static int listen_on(const char *portfile)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;
	char tmp[4096];
	FILE *f;
	int l;

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(l, 4) != 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) != 0)
		return -1;
	snprintf(tmp, sizeof tmp, "%s.tmp", portfile);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%u\n", ntohs(sin.sin_port));
	if (fclose(f) != 0 || rename(tmp, portfile) != 0)
		return -1;
	return l;
}

/* One line from FD with read(), without the newline: its length, or -1
 * (errno 0 for EOF). */
static ssize_t read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < size) {
		r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = 0;
			return -1;
		}
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

/* Read FD until its end; then write until a write fails with EPIPE. */
static void write_to_closed(int c, FILE *log)
{
	char buf[256];
	ssize_t r;
	int i, err = 0;

	while ((r = read(c, buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR))
		;
	fprintf(log, "end=%s\n", r == 0 ? "eof" : strerrorname_np(errno));
	for (i = 1; i <= 1000; i++) {
		if (write(c, "x", 1) < 0) {
			err = errno;
			if (err == EPIPE)
				break;
		}
	}
	fprintf(log, "writes=%d write_error=%s sigpipe=%d\n", i, err ? strerrorname_np(err) : "none",
		(int)sigpipes);
}

int main(int argc, char **argv)
{
	char line[1024], out[1100];
	int l, c, err;
	FILE *log;

	if (argc < 3 || (argc == 4 && strcmp(argv[3], "--sigpipe") != 0) || argc > 4) {
		fprintf(stderr, "usage: accept_errno PORTFILE LOG [--sigpipe]\n");
		return 2;
	}
	signal(SIGPIPE, on_sigpipe);
	log = fopen(argv[2], "a");
	l = listen_on(argv[1]);
	if (!log || l < 0)
		return 2;
	setvbuf(log, NULL, _IOLBF, 0);
	errno = SENTINEL;
	c = accept(l, NULL, NULL);
	err = errno;
	if (c < 0) {
		fprintf(log, "accepted=no error=%s\n", strerrorname_np(err));
		return 1;
	}
	fprintf(log, "accepted=yes errno=%d\n", err);
	if (read_line(c, line, sizeof line) < 0) {
		fprintf(log, "error=%s\n", errno ? strerrorname_np(errno) : "eof");
		return 1;
	}
	fprintf(log, "line=%s\n", line);
	snprintf(out, sizeof out, "hello %s\n", line);
	if (write(c, out, strlen(out)) < 0)
		fprintf(log, "answer error=%s\n", strerrorname_np(errno));
	if (argc == 4)
		write_to_closed(c, log);
	return 0;
}
