/* inetd_handler - a plaintext, inetd-style handler, as tcpserver, inetd or
 * systemd (Accept=yes) start one per connection: it knows nothing of TLS.
 *
 *   inetd_handler LOG            the connection is stdin/stdout: one line is
 *                                read with stdio (fgets), the answer written
 *                                with printf -- libc's internal I/O, which no
 *                                hook sees
 *   inetd_handler LOG --fd N     the connection is descriptor N (systemd
 *                                without --inetd: 3): read() and write()
 *
 * The answer is "hello LINE\n", or for an HTTP request line an HTTP/1.0
 * response whose body is "hello PATH\n" (curl).  LOG gets one line:
 *   peer=ADDR:PORT line=LINE      (the client's address as getpeername says)
 *   peer=... error=ENAME          (nothing could be read: ENAME, or "eof")
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void peer_of(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char ip[INET6_ADDRSTRLEN];

	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
		snprintf(out, outlen, "none(%s)", strerrorname_np(errno));
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
		snprintf(out, outlen, "%s:%u", ip, ntohs(sin->sin_port));
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
		snprintf(out, outlen, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	}
}

/* One line from FD with read(), without the newline: its length, or -1. */
static ssize_t read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < size) {
		r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return n ? (ssize_t)n : (r == 0 ? (errno = 0, -1) : -1);
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

static void answer_text(const char *line, char *out, size_t outlen)
{
	char path[256];

	if (sscanf(line, "GET %255s HTTP/", path) == 1)
		snprintf(out, outlen,
			 "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nhello %s\n",
			 path);
	else
		snprintf(out, outlen, "hello %s\n", line);
}

/* An HTTP request: its headers, up to the empty line, are read and
 * dropped before the answer. */
static void skip_headers(int fd, const char *request)
{
	char hdr[1024];

	if (strncmp(request, "GET ", 4) != 0)
		return;
	for (;;) {
		if (fd >= 0 ? read_line(fd, hdr, sizeof hdr) < 0 : !fgets(hdr, sizeof hdr, stdin))
			return;
		if (hdr[strspn(hdr, "\r\n")] == '\0')
			return;
	}
}

int main(int argc, char **argv)
{
	char line[1024], peer[128], out[1400];
	bool got;
	FILE *log;
	int fd = -1, err;

	if (argc < 2 || (argc == 4 && strcmp(argv[2], "--fd") == 0 ? (fd = atoi(argv[3])) < 0 : argc != 2)) {
		fprintf(stderr, "usage: inetd_handler LOG [--fd N]\n");
		return 2;
	}
	/* The connection first: the log must not take descriptor 0 when the
	 * acceptor passed none. */
	peer_of(fd >= 0 ? fd : 0, peer, sizeof peer);
	errno = 0;
	got = fd >= 0 ? read_line(fd, line, sizeof line) >= 0 : fgets(line, sizeof line, stdin) != NULL;
	err = errno;
	log = fopen(argv[1], "a");
	if (!log)
		return 2;
	setvbuf(log, NULL, _IOLBF, 0);
	if (!got) {
		fprintf(log, "peer=%s error=%s\n", peer, err ? strerrorname_np(err) : "eof");
		return 1;
	}
	line[strcspn(line, "\r\n")] = '\0';
	fprintf(log, "peer=%s line=%s\n", peer, line);
	answer_text(line, out, sizeof out);
	skip_headers(fd, line);
	if (fd >= 0) {
		if (write(fd, out, strlen(out)) < 0)
			fprintf(log, "write error=%s\n", strerrorname_np(errno));
		return 0;
	}
	fputs(out, stdout);
	if (fflush(stdout) != 0)
		fprintf(log, "write error=%s\n", strerrorname_np(errno));
	return 0;
}
