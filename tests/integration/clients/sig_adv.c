/* sig_adv.c HOST PORT norestart|restart -- a SIGALRM every 300 us while a
 * blocking upgraded socket connects, writes and reads (tserver echo):
 * without SA_RESTART the calls may fail with EINTR (the program writes the
 * same bytes again / reads again, as POSIX programs do), with SA_RESTART
 * they must not.  Every echoed byte is compared with what was written.
 * Prints "eintr=N mismatch=M bytes=B" and exits 0 after a clean end. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t ticks;

static void on_alarm(int sig)
{
	(void)sig;
	ticks++;
}

int main(int argc, char **argv)
{
	static unsigned char out[8192], in[8192];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct itimerval it = { { 0, 300 }, { 0, 300 } };
	struct sigaction act;
	unsigned long eintr = 0, mismatch = 0, bytes = 0;
	size_t got, put;
	ssize_t n;
	int fd, round, i;

	if (argc != 4)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&act, 0, sizeof act);
	act.sa_handler = on_alarm;
	act.sa_flags = strcmp(argv[3], "restart") == 0 ? SA_RESTART : 0;
	sigaction(SIGALRM, &act, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	inet_pton(AF_INET, argv[1], &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	while (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (errno == EINTR || errno == EALREADY) {
			eintr++;
			continue;
		}
		if (errno == EISCONN)
			break;
		printf("connect: %s\n", strerror(errno));
		return 1;
	}
	for (round = 0; round < 200; round++) {
		for (i = 0; i < (int)sizeof out; i++)
			out[i] = (unsigned char)(round * 31 + i * 7);
		for (put = 0; put < sizeof out; put += (size_t)n) {
			n = write(fd, out + put, sizeof out - put);
			if (n < 0 && errno == EINTR) {
				eintr++;
				n = 0;
			} else if (n < 0) {
				printf("write: %s (round %d)\n", strerror(errno), round);
				return 1;
			}
		}
		for (got = 0; got < sizeof in; got += (size_t)n) {
			n = read(fd, in + got, sizeof in - got);
			if (n < 0 && errno == EINTR) {
				eintr++;
				n = 0;
			} else if (n <= 0) {
				printf("read: %s (round %d)\n", n ? strerror(errno) : "EOF", round);
				return 1;
			}
		}
		mismatch += memcmp(in, out, sizeof in) != 0;
		bytes += sizeof out;
	}
	it = (struct itimerval){ { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &it, NULL);
	printf("eintr=%lu mismatch=%lu bytes=%lu ticks=%d\n", eintr, mismatch, bytes, (int)ticks);
	shutdown(fd, SHUT_WR);
	(void)read(fd, in, 1);
	close(fd);
	return 0;
}
