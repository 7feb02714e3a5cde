/* epoll_bench.c - what epoll_ctl and epoll_wait cost under the library with
 * many registrations.  A measurement, not a test: it prints numbers.
 *
 *   epoll_bench [-n TOTAL] [-m MANAGED] [-p PORT] [-r ROUNDS]
 *
 * Run under tlsshim with a policy that upgrades 127.0.0.1:PORT (default
 * 18080) to a TLS server (tests/bench/epoll_bench.sh does it).  It opens
 * MANAGED connections (default 256) to 127.0.0.1:PORT, blocking, so each is
 * upgraded and open, then fills up to TOTAL descriptors (default 10000)
 * with plain ones the library does not manage (socket pairs, pipes,
 * eventfds), and registers all of them with one epoll instance, BIG, for
 * EPOLLIN (nothing is readable: the kernel reports nothing for them).  One
 * managed connection also asks for EPOLLOUT (always writable: every wait
 * translates one cookie event, the path that asks the connection) and one
 * eventfd is readable (one plain event per wait).  A second instance,
 * SMALL, holds one managed connection and one eventfd.
 *
 * Then, ns per call (the median of ROUNDS passes, default 15):
 *   ctl MOD plain        EPOLL_CTL_MOD of each plain descriptor in BIG
 *   ctl DEL+ADD plain    EPOLL_CTL_DEL then ADD of each (per call)
 *   ctl MOD managed      the same for the managed connections
 *   ctl DEL+ADD managed
 *   wait BIG             epoll_wait(BIG, 64, 0): two events each time
 *   wait SMALL           epoll_wait(SMALL, 64, 0): while BIG holds the
 *                        other registrations */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int total = 10000, managed = 256, port = 18080, rounds = 15;
static int *plain_fds, n_plain;
static int *conn_fds, n_conn;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "epoll_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void ctl(int epfd, int op, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)fd };

	if (epoll_ctl(epfd, op, fd, &ev) < 0)
		die("epoll_ctl");
}

static void open_managed(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int i, fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < managed; i++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
			die("connect");
		conn_fds[n_conn++] = fd;
	}
}

/* Plain descriptors, a third each of socket-pair ends, pipe ends, eventfds. */
static void open_plain(void)
{
	int k = 0, p[2];

	while (n_plain + n_conn < total) {
		switch (k++ % 3) {
		case 0:
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) < 0)
				die("socketpair");
			break;
		case 1:
			if (pipe(p) < 0)
				die("pipe");
			break;
		default:
			if ((p[0] = eventfd(0, 0)) < 0)
				die("eventfd");
			p[1] = -1;
		}
		plain_fds[n_plain++] = p[0];
		if (p[1] >= 0 && n_plain + n_conn < total)
			plain_fds[n_plain++] = p[1];
		else if (p[1] >= 0)
			close(p[1]);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of V[0..N) (sorted in place). */
static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ns per epoll_ctl over FDS[0..N) in EPFD, MOD or DEL then ADD: the median
 * of ROUNDS passes. */
static double time_ctl(int epfd, const int *fds, int n, bool del_add)
{
	double per_round[rounds];
	int r, i;

	for (r = 0; r < rounds; r++) {
		long long t0 = now_ns();

		for (i = 0; i < n; i++) {
			if (del_add) {
				ctl(epfd, EPOLL_CTL_DEL, fds[i], 0);
				ctl(epfd, EPOLL_CTL_ADD, fds[i], EPOLLIN);
			} else {
				ctl(epfd, EPOLL_CTL_MOD, fds[i], EPOLLIN);
			}
		}
		per_round[r] = (double)(now_ns() - t0) / (del_add ? 2.0 * n : n);
	}
	return median(per_round, rounds);
}

/* ns per epoll_wait(EPFD, 64, 0), the median of ROUNDS passes of 200 calls;
 * *EVENTS: the events of the last call. */
static double time_wait(int epfd, int *events)
{
	struct epoll_event ev[64];
	double per_round[rounds];
	int r, i, n = 0;

	for (r = 0; r < rounds; r++) {
		long long t0 = now_ns();

		for (i = 0; i < 200; i++)
			if ((n = epoll_wait(epfd, ev, 64, 0)) < 0)
				die("epoll_wait");
		per_round[r] = (double)(now_ns() - t0) / 200;
	}
	*events = n;
	return median(per_round, rounds);
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	uint64_t one = 1;
	int big, small, i, opt, ev_big, ev_small;
	double t[6];

	while ((opt = getopt(argc, argv, "n:m:p:r:")) != -1) {
		switch (opt) {
		case 'n': total = atoi(optarg); break;
		case 'm': managed = atoi(optarg); break;
		case 'p': port = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: epoll_bench [-n TOTAL] [-m MANAGED] [-p PORT] [-r ROUNDS]\n");
			return 2;
		}
	}
	if (managed < 1 || total < managed + 5 || rounds < 1 || rounds > 1000) {
		fprintf(stderr, "epoll_bench: need 1 <= MANAGED <= TOTAL - 5, 1 <= ROUNDS <= 1000\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)total + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	plain_fds = calloc((size_t)total, sizeof *plain_fds);
	conn_fds = calloc((size_t)managed, sizeof *conn_fds);
	if (!plain_fds || !conn_fds)
		die("calloc");
	open_managed();
	open_plain();
	if ((big = epoll_create1(0)) < 0 || (small = epoll_create1(0)) < 0)
		die("epoll_create1");
	for (i = 0; i < n_conn; i++)
		ctl(big, EPOLL_CTL_ADD, conn_fds[i], EPOLLIN);
	for (i = 0; i < n_plain; i++)
		ctl(big, EPOLL_CTL_ADD, plain_fds[i], EPOLLIN);

	t[0] = time_ctl(big, plain_fds, n_plain, false);
	t[1] = time_ctl(big, plain_fds, n_plain, true);
	t[2] = time_ctl(big, conn_fds, n_conn, false);
	t[3] = time_ctl(big, conn_fds, n_conn, true);

	/* One cookie event and one plain event per wait. */
	ctl(big, EPOLL_CTL_MOD, conn_fds[0], EPOLLIN | EPOLLOUT);
	if (write(plain_fds[4], &one, sizeof one) != sizeof one) /* the first eventfd (open_plain) */
		die("eventfd write");
	ctl(small, EPOLL_CTL_ADD, conn_fds[n_conn - 1], EPOLLIN);
	ctl(small, EPOLL_CTL_ADD, plain_fds[4], EPOLLIN);
	t[4] = time_wait(big, &ev_big);
	t[5] = time_wait(small, &ev_small);

	printf("registrations: %d (%d managed, %d plain) in BIG; 2 in SMALL\n", n_conn + n_plain, n_conn, n_plain);
	printf("ctl MOD plain:       %8.0f ns/call\n", t[0]);
	printf("ctl DEL+ADD plain:   %8.0f ns/call\n", t[1]);
	printf("ctl MOD managed:     %8.0f ns/call\n", t[2]);
	printf("ctl DEL+ADD managed: %8.0f ns/call\n", t[3]);
	printf("wait BIG:            %8.0f ns/call (%d events)\n", t[4], ev_big);
	printf("wait SMALL:          %8.0f ns/call (%d events)\n", t[5], ev_small);
	return 0;
}
