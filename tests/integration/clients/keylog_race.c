/* keylog_race.c KEYLOG VICTIM PORT ROUNDS - a program that takes tlsshim's
 * key-log descriptor number for its own file while another thread makes
 * upgraded connections, whose handshakes write TLS secrets to the key log
 * (keylog_race.sh).
 *
 * Thread "connector": connect() to 127.0.0.1:PORT (upgraded by the
 * policy), write one byte, close, again and again.  Main thread, ROUNDS
 * times: find the descriptor that names KEYLOG (tlsshim's, high), dup2
 * VICTIM onto that number (tlsshim moves its own away first), keep it
 * 5 ms, close it.  A key-log line that lands in VICTIM was written to a
 * number after the program had it: a secret leaked into the program's
 * file.  Prints "rounds=N moved=M conns=C". */
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

static atomic_int stop, conns;
static int port;

static void *connector(void *arg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (!atomic_load(&stop)) {
		int s = socket(AF_INET, SOCK_STREAM, 0);

		if (s < 0)
			break;
		if (connect(s, (struct sockaddr *)&sin, sizeof sin) == 0 && write(s, "x", 1) == 1)
			atomic_fetch_add(&conns, 1);
		close(s);
	}
	return arg;
}

/* The descriptor whose target is PATH, or -1. */
static int find_fd(const char *path)
{
	char link[64], target[PATH_MAX];
	struct dirent *de;
	DIR *dir = opendir("/proc/self/fd");
	int found = -1;

	while (dir && (de = readdir(dir)) != NULL) {
		int fd = atoi(de->d_name);
		ssize_t n;

		if (de->d_name[0] == '.' || fd == dirfd(dir))
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
	if (victim < 0 || pthread_create(&thread, NULL, connector, NULL) != 0)
		return 2;
	/* The key log is opened when the policy is read; wait for the first
	 * connection too. */
	for (wait = 0; wait < 2000 && (find_fd(argv[1]) < 0 || atomic_load(&conns) == 0); wait++)
		nanosleep(&hold, NULL);
	for (i = 0; i < rounds; i++) {
		int ours = find_fd(argv[1]);

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
	printf("rounds=%d moved=%d conns=%d\n", i, moved, atomic_load(&conns) > 0);
	return 0;
}
