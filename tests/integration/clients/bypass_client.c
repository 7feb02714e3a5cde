/* bypass_client.c - a small C client that sends bytes through the paths
 * that glibc takes without a hook (stdio, address forms, ancillary data).
 * Built by tests/integration/bypass.sh with the system compiler.
 *
 *   bypass_client dprintf  ADDR PORT TEXT   connect, dprintf(fd, "%s", TEXT)
 *   bypass_client vdprintf ADDR PORT TEXT   connect, vdprintf
 *   bypass_client fdopen   ADDR PORT TEXT   fdopen(socket) BEFORE connect,
 *                                           then connect, fputs, fclose
 *   bypass_client short6   ADDR6 PORT TEXT  connect with a 24-byte sockaddr_in6
 *   bypass_client mmsg-fastopen ADDR PORT TEXT  sendmmsg(MSG_FASTOPEN, msg_name)
 *   bypass_client mmsg-rights ADDR PORT TEXT    connect, pass the socket over
 *                                           a Unix socketpair with sendmmsg
 *                                           (SCM_RIGHTS); if that works, write
 *                                           TEXT on the copy received back
 * Prints what the program saw ("ret=N errno=NAME" lines) and exits 0 when
 * every call it made succeeded, 1 otherwise, 2 on usage errors. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int failed;

static void report(const char *what, long ret)
{
	if (ret < 0) {
		printf("%s ret=%ld errno=%s\n", what, ret, strerrorname_np(errno));
		failed = 1;
	} else {
		printf("%s ret=%ld\n", what, ret);
	}
	fflush(stdout);
}

static socklen_t make_addr(const char *host, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)atoi(port));
		return sizeof *sin;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)atoi(port));
		return sizeof *sin6;
	}
	fprintf(stderr, "bad address %s\n", host);
	exit(2);
}

static int connected(const char *host, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(host, port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
		report("connect", -1);
		exit(1);
	}
	return fd;
}

static int call_vdprintf(int fd, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vdprintf(fd, fmt, ap);
	va_end(ap);
	return ret;
}

/* Pass FD over a Unix socketpair with sendmmsg; return the copy received,
 * or -1 (the sendmmsg was refused). */
static int pass_fd(int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct mmsghdr mm;
	struct msghdr rmsg;
	struct iovec iov;
	struct cmsghdr *cmsg;
	char byte = 'x';
	int pair[2], got = -1, ret;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) < 0)
		return -1;
	memset(&mm, 0, sizeof mm);
	memset(&ctl, 0, sizeof ctl);
	iov.iov_base = &byte;
	iov.iov_len = 1;
	mm.msg_hdr.msg_iov = &iov;
	mm.msg_hdr.msg_iovlen = 1;
	mm.msg_hdr.msg_control = ctl.buf;
	mm.msg_hdr.msg_controllen = sizeof ctl.buf;
	cmsg = CMSG_FIRSTHDR(&mm.msg_hdr);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
	ret = sendmmsg(pair[0], &mm, 1, 0);
	report("sendmmsg-scm-rights", ret);
	if (ret != 1)
		return -1;
	memset(&rmsg, 0, sizeof rmsg);
	memset(&ctl, 0, sizeof ctl);
	rmsg.msg_iov = &iov;
	rmsg.msg_iovlen = 1;
	rmsg.msg_control = ctl.buf;
	rmsg.msg_controllen = sizeof ctl.buf;
	if (recvmsg(pair[1], &rmsg, 0) == 1 && (cmsg = CMSG_FIRSTHDR(&rmsg)) && cmsg->cmsg_type == SCM_RIGHTS)
		memcpy(&got, CMSG_DATA(cmsg), sizeof got);
	return got;
}

int main(int argc, char **argv)
{
	const char *mode, *host, *port, *text;
	int fd;

	if (argc != 5) {
		fprintf(stderr, "usage: bypass_client MODE ADDR PORT TEXT\n");
		return 2;
	}
	mode = argv[1], host = argv[2], port = argv[3], text = argv[4];
	if (strcmp(mode, "dprintf") == 0) {
		fd = connected(host, port);
		report("dprintf", dprintf(fd, "%s", text));
		report("close", close(fd));
	} else if (strcmp(mode, "vdprintf") == 0) {
		fd = connected(host, port);
		report("vdprintf", call_vdprintf(fd, "%s", text));
		report("close", close(fd));
	} else if (strcmp(mode, "fdopen") == 0) {
		struct sockaddr_storage ss;
		socklen_t len = make_addr(host, port, &ss);
		FILE *f;

		fd = socket(ss.ss_family, SOCK_STREAM, 0);
		f = fdopen(fd, "w");
		if (!f) {
			report("fdopen", -1);
			return 1;
		}
		report("connect", connect(fd, (struct sockaddr *)&ss, len));
		report("fputs", fputs(text, f));
		printf("fileno %s\n", fileno(f) == fd ? "same" : "differs");
		report("fflush", fflush(f));
		report("fclose", fclose(f));
	} else if (strcmp(mode, "short6") == 0) {
		struct sockaddr_storage ss;

		make_addr(host, port, &ss);
		fd = socket(AF_INET6, SOCK_STREAM, 0);
		/* Linux accepts the RFC 2133 size: no sin6_scope_id. */
		report("connect24", connect(fd, (struct sockaddr *)&ss, offsetof(struct sockaddr_in6, sin6_scope_id)));
		report("write", write(fd, text, strlen(text)));
		report("close", close(fd));
	} else if (strcmp(mode, "mmsg-fastopen") == 0) {
		struct sockaddr_storage ss;
		struct mmsghdr mm;
		struct iovec iov;

		memset(&mm, 0, sizeof mm);
		mm.msg_hdr.msg_namelen = make_addr(host, port, &ss);
		mm.msg_hdr.msg_name = &ss;
		iov.iov_base = (void *)text;
		iov.iov_len = strlen(text);
		mm.msg_hdr.msg_iov = &iov;
		mm.msg_hdr.msg_iovlen = 1;
		fd = socket(ss.ss_family, SOCK_STREAM, 0);
		report("sendmmsg-fastopen", sendmmsg(fd, &mm, 1, MSG_FASTOPEN));
		report("close", close(fd));
	} else if (strcmp(mode, "mmsg-rights") == 0) {
		int copy;

		fd = connected(host, port);
		copy = pass_fd(fd);
		if (copy >= 0) {
			report("write-on-copy", write(copy, text, strlen(text)));
			close(copy);
		}
		report("write-on-original", write(fd, text, strlen(text)));
		report("close", close(fd));
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	return failed;
}
