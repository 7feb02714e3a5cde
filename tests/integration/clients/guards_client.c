/* guards_client.c -- a small C client for tests/integration/guards.sh.
 *
 *   guards_client HOST PORT eagain same|other poll|spin OUTFILE
 *       Non-blocking writes of growing size (each larger than any before)
 *       until one fails with EAGAIN; then the next write carries the SAME
 *       bytes again or OTHER bytes (POSIX allows either: EAGAIN means
 *       nothing was sent), after waiting with poll() for POLLOUT or by
 *       retrying (spin).  Every byte a write reported as sent is appended
 *       to OUTFILE, so the test compares it with what the server got; the
 *       bytes of the write that met EAGAIN to OUTFILE.queued (other).
 *       Prints "retry ret=N errno=NAME" for the write after EAGAIN.
 *   guards_client HOST PORT oob TEXT
 *       send/sendto/sendmsg/sendmmsg with MSG_OOB and recv with MSG_OOB,
 *       printing each result; then TEXT in the normal way, and close.
 *   guards_client HOST PORT null TEXT
 *       sendmsg/recvmsg with a NULL msg and with a NULL msg_iov,
 *       sendmmsg/recvmmsg with a NULL vector, printing each result; then
 *       TEXT, and close.
 * Exit 0 when it ran to its end, 1 on a setup error. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case EAGAIN: return "EAGAIN";
	case EIO: return "EIO";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EPIPE: return "EPIPE";
	case ECONNRESET: return "ECONNRESET";
	default: return strerror(e);
	}
}

static void report(const char *what, long ret)
{
	printf("%s ret=%ld errno=%s\n", what, ret, ret < 0 ? ename(errno) : "-");
	fflush(stdout);
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)('a' + (i * 7 + seed) % 26);
}

static int out_append(FILE *out, const unsigned char *buf, size_t len)
{
	return fwrite(buf, 1, len, out) == len ? 0 : -1;
}

static int eagain_mode(int fd, const char *kind, const char *wait, const char *path)
{
	static unsigned char buf[16384], other[16384];
	FILE *out = fopen(path, "wb");
	size_t size = 100;
	unsigned seed = 0;
	ssize_t ret;
	int i;

	if (!out)
		return 1;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	for (;;) {
		fill(buf, size, seed);
		ret = send(fd, buf, size, 0);
		if (ret < 0 && errno == EAGAIN)
			break;
		if (ret < 0) {
			report("send", ret);
			return 1;
		}
		out_append(out, buf, (size_t)ret);
		if ((size_t)ret == size && size < sizeof buf - 16)
			size += 16;
		seed++;
	}
	printf("eagain at size=%zu\n", size);
	if (strcmp(kind, "other") == 0) {
		/* OUTFILE.queued: the bytes of the write that met EAGAIN. */
		char qpath[4096];
		FILE *q;

		snprintf(qpath, sizeof qpath, "%s.queued", path);
		q = fopen(qpath, "wb");
		if (!q || fwrite(buf, 1, size, q) != size || fclose(q) != 0)
			return 1;
		fill(other, size, seed + 13);
		memcpy(buf, other, size);
	}
	for (i = 0;; i++) {
		if (strcmp(wait, "poll") == 0) {
			struct pollfd p = { fd, POLLOUT, 0 };

			poll(&p, 1, 60000);
		} else {
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
		}
		ret = send(fd, buf, size, 0);
		if (ret >= 0 || errno != EAGAIN)
			break;
	}
	report("retry", ret);
	if (ret > 0) {
		out_append(out, buf, (size_t)ret);
		/* The rest of that write, blocking. */
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		while ((size_t)ret < size) {
			ssize_t n = send(fd, buf + ret, size - (size_t)ret, 0);

			if (n <= 0)
				break;
			out_append(out, buf + ret, (size_t)n);
			ret += n;
		}
	}
	fclose(out);
	close(fd);
	return 0;
}

static int oob_mode(int fd, const char *text)
{
	struct sockaddr_in none;
	struct iovec iov = { (void *)"U", 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct mmsghdr mm = { .msg_hdr = msg };
	char c;

	memset(&none, 0, sizeof none);
	report("send_oob", (long)send(fd, "U", 1, MSG_OOB));
	report("sendto_oob", (long)sendto(fd, "U", 1, MSG_OOB, NULL, 0));
	report("sendmsg_oob", (long)sendmsg(fd, &msg, MSG_OOB));
	report("sendmmsg_oob", (long)sendmmsg(fd, &mm, 1, MSG_OOB));
	report("recv_oob", (long)recv(fd, &c, 1, MSG_OOB | MSG_DONTWAIT));
	report("send", (long)send(fd, text, strlen(text), 0));
	report("close", (long)close(fd));
	return 0;
}

static int null_mode(int fd, const char *text)
{
	struct msghdr msg = { .msg_iov = NULL, .msg_iovlen = 1 };

	report("sendmsg_null", (long)sendmsg(fd, NULL, 0));
	report("recvmsg_null", (long)recvmsg(fd, NULL, MSG_DONTWAIT));
	report("sendmsg_null_iov", (long)sendmsg(fd, &msg, 0));
	report("recvmsg_null_iov", (long)recvmsg(fd, &msg, MSG_DONTWAIT));
	report("sendmmsg_null", (long)sendmmsg(fd, NULL, 1, 0));
	report("recvmmsg_null", (long)recvmmsg(fd, NULL, 1, MSG_DONTWAIT, NULL));
	report("send", (long)send(fd, text, strlen(text), 0));
	report("close", (long)close(fd));
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin;
	int fd;

	if (argc < 4)
		return 1;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1)
		return 1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0 && strcmp(argv[3], "eagain") == 0) {
		/* A small send buffer: EAGAIN comes soon. */
		int sz = 16384;

		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		perror("connect");
		return 1;
	}
	if (strcmp(argv[3], "eagain") == 0 && argc == 7)
		return eagain_mode(fd, argv[4], argv[5], argv[6]);
	if (strcmp(argv[3], "oob") == 0 && argc == 5)
		return oob_mode(fd, argv[4]);
	if (strcmp(argv[3], "null") == 0 && argc == 5)
		return null_mode(fd, argv[4]);
	return 1;
}
