/* fork_banner.c - a classic fork-per-connection daemon for the inbound
 * tests, as plain as the ones tlsshim is meant to secure: it listens on
 * 127.0.0.1:PORT and, for each accepted connection, forks a child that owns
 * it; the parent closes its copy and goes back to accept().  The child
 * speaks first ("220 fork_banner ready\r\n"), then echoes every line; a
 * line "QUIT" is answered "221 bye\r\n" and ends the connection.
 *
 * Usage: fork_banner PORT LOG
 *
 * LOG gets one line per event, each written with a single write() to a file
 * opened O_APPEND (children write concurrently):
 *   conn pid=N peer=ADDR:PORT         accepted (getpeername in the child)
 *   line pid=N peer=ADDR:PORT text=T  a line received (without CR LF)
 *   end pid=N peer=ADDR:PORT bytes=N [error=STRERROR]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int log_fd = -1;
static char peer[64];

/* log_line: append one formatted line to the log with a single write. */
static void log_line(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(log_fd, buf, n) < 0)
		_exit(3);
}

/* write_all: write len bytes of buf to fd; 0 or -1 (errno set). */
static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

/* serve: the child's whole life on one connection: banner, echo, log. */
static void serve(int fd)
{
	static const char banner[] = "220 fork_banner ready\r\n";
	char line[512];
	size_t used = 0;
	long total = 0;
	ssize_t n;
	char c;

	log_line("conn pid=%d peer=%s", (int)getpid(), peer);
	if (write_all(fd, banner, sizeof(banner) - 1) < 0)
		goto fail;
	for (;;) {
		n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		total++;
		if (c != '\n') {
			if (used < sizeof(line) - 2)
				line[used++] = c;
			continue;
		}
		if (used > 0 && line[used - 1] == '\r')
			used--;
		line[used] = '\0';
		log_line("line pid=%d peer=%s text=%s", (int)getpid(), peer, line);
		if (strcmp(line, "QUIT") == 0) {
			if (write_all(fd, "221 bye\r\n", 9) < 0)
				goto fail;
			break;
		}
		line[used++] = '\r';
		line[used++] = '\n';
		if (write_all(fd, line, used) < 0)
			goto fail;
		used = 0;
	}
	log_line("end pid=%d peer=%s bytes=%ld", (int)getpid(), peer, total);
	close(fd);
	return;
fail:
	log_line("end pid=%d peer=%s bytes=%ld error=%s", (int)getpid(), peer, total, strerror(errno));
	close(fd);
}

/* listen_on: a socket listening on 127.0.0.1:port, or exit. */
static int listen_on(int port)
{
	struct sockaddr_in a;
	int s, one = 1;

	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0) {
		perror("socket");
		exit(1);
	}
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 16) < 0) {
		perror("bind/listen");
		exit(1);
	}
	return s;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	socklen_t alen;
	int ls, fd;
	pid_t pid;

	if (argc != 3) {
		fprintf(stderr, "usage: fork_banner PORT LOG\n");
		return 2;
	}
	log_fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd < 0) {
		perror(argv[2]);
		return 1;
	}
	signal(SIGCHLD, SIG_IGN);	/* children are reaped by the kernel */
	signal(SIGPIPE, SIG_IGN);
	ls = listen_on(atoi(argv[1]));
	for (;;) {
		fd = accept(ls, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("accept");
			return 1;
		}
		pid = fork();
		if (pid == 0) {
			close(ls);
			alen = sizeof(a);
			if (getpeername(fd, (struct sockaddr *)&a, &alen) == 0)
				snprintf(peer, sizeof(peer), "%s:%d", inet_ntoa(a.sin_addr), ntohs(a.sin_port));
			else
				snprintf(peer, sizeof(peer), "?(%s)", strerror(errno));
			serve(fd);
			_exit(0);
		}
		if (pid < 0)
			perror("fork");
		close(fd);
	}
}
