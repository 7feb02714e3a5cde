/* writev_client - how fast writev() moves bytes through tlsshim.  A plain
 * TCP client (tlsshim upgrades it) that connects to 127.0.0.1:PORT and
 * writes MIB mebibytes with writev() in one of these shapes, then prints
 * one line of numbers.  The server is tserver --mode sink.
 *
 *   writev_client PORT MIB SHAPE
 *     small   16 buffers of 256 bytes per call (4 KiB: many small pieces)
 *     mixed   a 100-byte header and a 16 KiB body per call (a record
 *             spans the two)
 *     large   a 100-byte header and a 256 KiB body per call
 *
 * Output: "writev shape=S bytes=N seconds=T mb_per_s=R cpu_ns_per_kib=C":
 * C is this process's CPU time (user + system: the encryption and the
 * library's work, not the server's) per KiB written, steadier than the
 * wall clock on a shared machine.  Exit 0 when every byte was written, 1
 * otherwise.  No assertion on the speed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_IOV 16

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Fill IOV for SHAPE from BUF; return the number of buffers. */
static int shape_iov(const char *shape, unsigned char *buf, struct iovec *iov)
{
	int i;

	if (strcmp(shape, "small") == 0) {
		for (i = 0; i < MAX_IOV; i++) {
			iov[i].iov_base = buf + i * 256;
			iov[i].iov_len = 256;
		}
		return MAX_IOV;
	}
	iov[0].iov_base = buf;
	iov[0].iov_len = 100;
	iov[1].iov_base = buf + 100;
	iov[1].iov_len = strcmp(shape, "mixed") == 0 ? 16384 : 262144;
	return strcmp(shape, "mixed") == 0 || strcmp(shape, "large") == 0 ? 2 : 0;
}

/* Write TOTAL bytes, IOV over and over (a short write resumes inside it). */
static int run(int fd, struct iovec *iov, int n, size_t total)
{
	struct iovec cur[MAX_IOV];
	size_t done = 0, per = 0, skip;
	ssize_t ret;
	int i, k;

	for (i = 0; i < n; i++)
		per += iov[i].iov_len;
	while (done < total) {
		memcpy(cur, iov, sizeof cur[0] * (size_t)n);
		k = 0;
		skip = 0;
		while (skip < per) {
			ret = writev(fd, cur + k, n - k);
			if (ret <= 0) {
				perror("writev");
				return -1;
			}
			skip += (size_t)ret;
			while (k < n && (size_t)ret >= cur[k].iov_len) {
				ret -= (ssize_t)cur[k].iov_len;
				k++;
			}
			if (k < n) {
				cur[k].iov_base = (char *)cur[k].iov_base + ret;
				cur[k].iov_len -= (size_t)ret;
			}
		}
		done += per;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static unsigned char buf[300 * 1024];
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct iovec iov[MAX_IOV];
	size_t total;
	double t0, t1, c0, c1;
	int fd, n;

	if (argc != 4) {
		fprintf(stderr, "usage: writev_client PORT MIB small|mixed|large\n");
		return 1;
	}
	n = shape_iov(argv[3], buf, iov);
	total = strtoull(argv[2], NULL, 10) << 20;
	memset(buf, 'x', sizeof buf);
	sin.sin_port = htons((unsigned short)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (n == 0 || fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		perror("writev_client");
		return 1;
	}
	t0 = now_s();
	c0 = cpu_s();
	if (run(fd, iov, n, total) < 0)
		return 1;
	t1 = now_s();
	c1 = cpu_s();
	close(fd);
	printf("writev shape=%s bytes=%zu seconds=%.3f mb_per_s=%.1f cpu_ns_per_kib=%.0f\n", argv[3], total,
	       t1 - t0, total / (t1 - t0) / 1e6, (c1 - c0) * 1e9 / (total / 1024.0));
	return 0;
}
