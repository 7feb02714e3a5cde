/* ownfd_race.c LOGFILE VICTIM PORT ROUNDS - a program that takes tlsshim's
 * log descriptor number for its own file while another thread makes
 * tlsshim log (ownfd.sh).
 *
 * Thread "logger": connect() to 127.0.0.1:PORT again and again (the policy
 * refuses it: one error line each).  Main thread, ROUNDS times: find the
 * descriptor that names LOGFILE (tlsshim's, high), dup2 VICTIM onto that
 * number (tlsshim moves its own away first), keep it 5 ms, close it.  A log
 * line that lands in VICTIM was written to a number after the program had
 * it.  Prints "rounds=N moved=M" (the rounds end early if the log is
 * lost). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;
static int port;

static void *logger(void *arg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (!atomic_load(&stop)) {
		int s = socket(AF_INET, SOCK_STREAM, 0);

		if (s < 0)
			break;
		connect(s, (struct sockaddr *)&sin, sizeof sin);
		close(s);
	}
	return arg;
}

/* The descriptor (not SKIP) whose target is PATH, or -1. */
static int find_fd(const char *path, int skip)
{
	char link[64], target[PATH_MAX];
	struct dirent *de;
	DIR *dir = opendir("/proc/self/fd");
	int found = -1;

	while (dir && (de = readdir(dir)) != NULL) {
		int fd = atoi(de->d_name);
		ssize_t n;

		if (de->d_name[0] == '.' || fd == skip || fd == dirfd(dir))
			continue;
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof target - 1);
		if (n > 0 && (target[n] = '\0', strcmp(target, path) == 0))
			found = fd;
	}
	if (dir)
		closedir(dir);
	return found;
}

int main(int argc, char **argv)
{
	struct timespec hold = { 0, 5000000 };
	int victim, rounds, i, moved = 0, wait;
	pthread_t thread;

	if (argc != 5)
		return 2;
	port = atoi(argv[3]);
	rounds = atoi(argv[4]);
	victim = open(argv[2], O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (victim < 0 || pthread_create(&thread, NULL, logger, NULL) != 0)
		return 2;
	/* tlsshim opens its log at the first connection. */
	for (wait = 0; wait < 2000 && find_fd(argv[1], -1) < 0; wait++)
		nanosleep(&hold, NULL);
	for (i = 0; i < rounds; i++) {
		int ours = find_fd(argv[1], -1);

		if (ours < 0)
			break;
		if (dup2(victim, ours) == ours) {
			moved++;
			nanosleep(&hold, NULL);
			close(ours);
		}
	}
	atomic_store(&stop, 1);
	pthread_join(thread, NULL);
	printf("rounds=%d moved=%d\n", i, moved);
	return 0;
}
