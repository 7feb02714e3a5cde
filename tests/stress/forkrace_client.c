/* forkrace_client - many threads fork at once while the process holds one
 * upgraded connection that nobody uses meanwhile.  Knows nothing about TLS:
 * run it under tlsshim with a policy that upgrades 127.0.0.1:PORT.
 *
 *   forkrace_client PORT THREADS FORKS [fork|_Fork]
 *
 * 1. Connect to 127.0.0.1:PORT and write 1000 bytes 'a'.
 * 2. THREADS threads each fork FORKS times (fork(), or _Fork() as a program
 *    that forks from a signal handler would), all at once; each child
 *    _exits at once, without touching the connection; the thread waits
 *    for it.  Every fork makes the child a holder of the connection and
 *    every child's exit lets go of it again (src/owner.h, point 7): the
 *    parent must still be counted, so no child may take the connection and
 *    end it.
 * 3. Write 1000 bytes 'b', close.
 *
 * Prints "forks N write=ok" (or "write=<errno>"); exits 0 if every fork and
 * the last write worked.  The server's log shows the rest: 2000 bytes, then
 * close_notify (a child that ended the connection sends close_notify after
 * the first 1000, and the parent's write then fails with EIO). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int forks_each;
static int use_underscore_fork;
static atomic_int forked, failed, started;
static int n_threads;

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n <= 0)
			return n < 0 ? errno : EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *forker(void *arg)
{
	int i, status;
	pid_t pid;

	(void)arg;
	/* Start together: the forks of all threads overlap. */
	atomic_fetch_add(&started, 1);
	while (atomic_load(&started) < n_threads)
		;
	for (i = 0; i < forks_each; i++) {
		pid = use_underscore_fork ? _Fork() : fork();
		if (pid == 0)
			_exit(0);
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			atomic_fetch_add(&failed, 1);
		else
			atomic_fetch_add(&forked, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin;
	pthread_t *threads;
	char buf[1000];
	int fd, i, err;

	if (argc < 4) {
		fprintf(stderr, "usage: forkrace_client PORT THREADS FORKS [fork|_Fork]\n");
		return 2;
	}
	n_threads = atoi(argv[2]);
	forks_each = atoi(argv[3]);
	use_underscore_fork = argc > 4 && strcmp(argv[4], "_Fork") == 0;
	threads = calloc((size_t)n_threads, sizeof *threads);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!threads || fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		perror("connect");
		return 1;
	}
	memset(buf, 'a', sizeof buf);
	if ((err = send_all(fd, buf, sizeof buf))) {
		printf("first write=%s\n", strerror(err));
		return 1;
	}
	for (i = 0; i < n_threads; i++)
		pthread_create(&threads[i], NULL, forker, NULL);
	for (i = 0; i < n_threads; i++)
		pthread_join(threads[i], NULL);
	memset(buf, 'b', sizeof buf);
	err = send_all(fd, buf, sizeof buf);
	printf("forks %d failed %d write=%s\n", atomic_load(&forked), atomic_load(&failed), err ? strerror(err) : "ok");
	if (close(fd) < 0 && !err)
		err = errno;
	return err || atomic_load(&failed) ? 1 : 0;
}
