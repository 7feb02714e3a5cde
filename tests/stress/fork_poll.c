/* fork_poll.c PORT [FORKS] - a measurement, not a make-check test (it times
 * a close): a thread polls an upgraded connection to 127.0.0.1:PORT in a
 * tight loop (timeout 0: most of its time is spent inside the library's
 * poll translation, where it counts as a user of the connection) while
 * the main thread forks FORKS times (200); each child closes the
 * connection and reports how long close() took.  That thread does not
 * exist in the child: a close that waits for it waits 2 s
 * (conn_wait_unused).  Prints "forks N max_close_ms M slow K" and exits 1
 * if K (closes of 1.5 s or more) is not 0.  Knows nothing about TLS. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int sock;
static atomic_bool stop;

static void *spinner(void *arg)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };

	(void)arg;
	while (!atomic_load(&stop))
		(void)poll(&pfd, 1, 0);
	return NULL;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int forks = argc > 2 ? atoi(argv[2]) : 200, i, slow = 0;
	long long max = 0;
	pthread_t t;
	char buf[2];

	if (argc < 2)
		return 2;
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sock = socket(AF_INET, SOCK_STREAM, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof sa) < 0 || write(sock, "hi", 2) != 2 ||
	    read(sock, buf, 2) != 2) {
		perror("connect");
		return 2;
	}
	pthread_create(&t, NULL, spinner, NULL);
	for (i = 0; i < forks; i++) {
		int p[2];
		long long took = -1;
		pid_t pid;

		if (pipe(p) < 0)
			return 2;
		pid = fork();
		if (pid == 0) {
			long long t0 = now_ms();

			close(sock);
			took = now_ms() - t0;
			(void)!write(p[1], &took, sizeof took);
			_exit(0);
		}
		close(p[1]);
		if (read(p[0], &took, sizeof took) != sizeof took)
			took = 99999;
		close(p[0]);
		waitpid(pid, NULL, 0);
		if (took > max)
			max = took;
		slow += took >= 1500;
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	close(sock);
	printf("forks %d max_close_ms %lld slow %d\n", forks, max, slow);
	return slow ? 1 : 0;
}
