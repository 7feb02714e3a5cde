/* threads_client - a plain-TCP stress client: THREADS threads, each opening
 * ROUNDS connections in turn to 127.0.0.1:PORT, writing an HTTP request,
 * reading the whole answer and closing.  Some threads also share one
 * connection between a reader and a writer thread.  Knows nothing about
 * TLS: tlsshim upgrades it.  Built with the project's sanitizer flags, so a
 * ThreadSanitizer build checks the library's locking from inside.
 *
 *   threads_client PORT THREADS ROUNDS
 * Prints "ok N" (answers that were complete HTTP 200s) and exits 0 if all were. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int port, rounds;
static atomic_int good, bad;

static int dial(void)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read the answer until EOF; 0 if it was a 200 with its whole body. */
static int read_answer(int fd)
{
	char buf[65536];
	size_t have = 0;
	ssize_t n;
	char *body;
	long want;

	while ((n = read(fd, buf + have, sizeof buf - 1 - have)) > 0)
		have += (size_t)n;
	if (n < 0)
		return -1;
	buf[have] = '\0';
	body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || !body || !strstr(buf, "Content-Length: "))
		return -1;
	want = strtol(strstr(buf, "Content-Length: ") + 16, NULL, 10);
	return (long)(have - (size_t)(body + 4 - buf)) == want ? 0 : -1;
}

static const char request[] = "GET /bytes/20000 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

struct duplex {
	int fd;
	int result;
};

static void *duplex_reader(void *arg)
{
	struct duplex *d = arg;

	d->result = read_answer(d->fd);
	return NULL;
}

/* One connection, its answer read by another thread while this one writes. */
static int one_duplex(void)
{
	struct duplex d = { dial(), -1 };
	pthread_t reader;

	if (d.fd < 0)
		return -1;
	if (pthread_create(&reader, NULL, duplex_reader, &d) != 0) {
		close(d.fd);
		return -1;
	}
	if (send_all(d.fd, request, sizeof request - 1) < 0)
		shutdown(d.fd, SHUT_RDWR);
	pthread_join(reader, NULL);
	close(d.fd);
	return d.result;
}

static int one_simple(void)
{
	int fd = dial(), ret = -1;

	if (fd < 0)
		return -1;
	if (send_all(fd, request, sizeof request - 1) == 0)
		ret = read_answer(fd);
	close(fd);
	return ret;
}

static void *worker(void *arg)
{
	long id = (long)arg;
	int i;

	for (i = 0; i < rounds; i++) {
		int ret = (id % 4 == 3 && i % 2 == 0) ? one_duplex() : one_simple();

		atomic_fetch_add(ret == 0 ? &good : &bad, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t threads[256];
	long n, i;

	if (argc != 4) {
		fprintf(stderr, "usage: threads_client PORT THREADS ROUNDS\n");
		return 2;
	}
	port = atoi(argv[1]);
	n = atol(argv[2]);
	rounds = atoi(argv[3]);
	if (n < 1 || n > 256 || rounds < 1)
		return 2;
	for (i = 0; i < n; i++)
		if (pthread_create(&threads[i], NULL, worker, (void *)i) != 0)
			return 1;
	for (i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	printf("ok %d bad %d\n", atomic_load(&good), atomic_load(&bad));
	return atomic_load(&bad) == 0 ? 0 : 1;
}
