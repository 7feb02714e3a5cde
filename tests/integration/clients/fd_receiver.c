/* fd_receiver - a plaintext server (run under tlsshim) that gets its
 * connection from another process over an AF_UNIX socket (SCM_RIGHTS), as
 * a worker fed by a privileged acceptor does:
 *
 *   fd_receiver UNIXFD LOG [--stale]
 *
 * UNIXFD is an inherited AF_UNIX stream socket; one descriptor arrives on
 * it with recvmsg.  With --stale the number it will take was first used by
 * a file that was then closed with syscall(SYS_close), behind any hook's
 * back (its number is stale to an interposer).  It reads one line from the
 * received descriptor with read() and answers "hello LINE\n".  LOG gets:
 *   stale=N                (--stale: the number closed behind the back)
 *   received=N peer=ADDR:PORT
 *   line=LINE              (printable; other bytes as \xNN)
 *   or error=ENAME / error=eof after read=BYTES
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The descriptor that arrives on the AF_UNIX socket U, or -1. */
static int receive_fd(int u)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			      .msg_controllen = sizeof ctl.buf };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(u, &msg, 0) <= 0)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

/* "ADDR:PORT" of FD's peer into OUT. */
static void peer_of(int fd, char *out, size_t outlen)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	char ip[INET_ADDRSTRLEN];

	if (getpeername(fd, (struct sockaddr *)&sin, &len) != 0 || sin.sin_family != AF_INET) {
		snprintf(out, outlen, "none(%s)", strerrorname_np(errno));
		return;
	}
	inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof ip);
	snprintf(out, outlen, "%s:%u", ip, ntohs(sin.sin_port));
}

/* BUF[0..N) printable into OUT (other bytes as \xNN). */
static void escape(const unsigned char *buf, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 5 < outlen; i++) {
		if (buf[i] >= 0x20 && buf[i] < 0x7f && buf[i] != '\\')
			out[o++] = (char)buf[i];
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", buf[i]);
	}
	out[o] = '\0';
}

int main(int argc, char **argv)
{
	unsigned char buf[512];
	char peer[128], text[4 * sizeof buf], out[sizeof text + 8];
	int u, fd, stale = -1, err = 0;
	size_t n = 0;
	ssize_t r;
	FILE *log;

	if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--stale") != 0)) {
		fprintf(stderr, "usage: fd_receiver UNIXFD LOG [--stale]\n");
		return 2;
	}
	u = atoi(argv[1]);
	log = fopen(argv[2], "a");
	if (!log)
		return 2;
	setvbuf(log, NULL, _IOLBF, 0);
	if (argc == 4) {
		stale = open("/dev/null", O_RDONLY);
		syscall(SYS_close, stale);
		fprintf(log, "stale=%d\n", stale);
	}
	fd = receive_fd(u);
	if (fd < 0) {
		fprintf(log, "received=none\n");
		return 1;
	}
	peer_of(fd, peer, sizeof peer);
	fprintf(log, "received=%d peer=%s\n", fd, peer);
	while (n < sizeof buf && (n == 0 || buf[n - 1] != '\n')) {
		r = read(fd, buf + n, sizeof buf - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? errno : 0;
			break;
		}
		n += (size_t)r;
	}
	if (n == 0 || buf[n - 1] != '\n') {
		escape(buf, n, text, sizeof text);
		fprintf(log, "read=%s error=%s\n", text, err ? strerrorname_np(err) : "eof");
		return 1;
	}
	escape(buf, n - 1, text, sizeof text);
	fprintf(log, "line=%s\n", text);
	snprintf(out, sizeof out, "hello %s\n", text);
	if (write(fd, out, strlen(out)) < 0)
		fprintf(log, "answer error=%s\n", strerrorname_np(errno));
	return 0;
}
