/* exit_stdio_client.c - a small C client that leaves bytes in a stdio
 * buffer on an upgraded socket and ends without flushing: libc flushes
 * them at exit (after every atexit handler and destructor), as it does for
 * plain TCP.  Built by tests/integration/exit_stdio.sh.
 *
 *   exit_stdio_client fdopen ADDR PORT TEXT   connect, fdopen(fd, "w"),
 *                                             fputs TEXT, exit(0)
 *   exit_stdio_client stdout ADDR PORT TEXT   close(1), the socket lands on
 *                                             descriptor 1, connect, fputs
 *                                             TEXT to stdout, return from main
 *   exit_stdio_client _exit ADDR PORT TEXT    connect, write(TEXT), fputs
 *                                             "unflushed" into an fdopen
 *                                             stream, _exit(0): libc flushes
 *                                             nothing, TEXT alone arrives
 * Exits 0 when every call succeeded, 1 otherwise, 2 on usage errors. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int connect_to(int fd, const char *host, const char *port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(port));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -1;
	return connect(fd, (struct sockaddr *)&sin, sizeof sin);
}

int main(int argc, char **argv)
{
	const char *mode, *host, *port, *text;
	FILE *file;
	int fd;

	if (argc != 5)
		return 2;
	mode = argv[1], host = argv[2], port = argv[3], text = argv[4];
	if (strcmp(mode, "stdout") == 0) {
		/* Fully buffered: stdout is a socket, not a terminal. */
		close(1);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd != 1 || connect_to(fd, host, port) < 0)
			return 1;
		if (fputs(text, stdout) < 0)
			return 1;
		return 0;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect_to(fd, host, port) < 0)
		return 1;
	if (strcmp(mode, "fdopen") == 0) {
		if (!(file = fdopen(fd, "w")) || fputs(text, file) < 0)
			return 1;
		exit(0);
	}
	if (strcmp(mode, "_exit") == 0) {
		if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
			return 1;
		if (!(file = fdopen(fd, "w")) || fputs("unflushed", file) < 0)
			return 1;
		_exit(0);
	}
	return 2;
}
