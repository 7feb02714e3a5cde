/* cmsg_client.c - ancillary data the kernel refuses, sent while an upgraded
 * connection is open (the library then looks at every sendmsg's control
 * data for SCM_RIGHTS).  Built by tests/integration/cmsg.sh.
 *
 *   cmsg_client ADDR PORT TEXT
 *     connect to ADDR:PORT, write TEXT; over a Unix socketpair, sendmsg a
 *     control message whose cmsg_len claims far more than msg_controllen
 *     (the kernel answers EINVAL), then sendmmsg the same; close the
 *     connection and exit.
 * Prints "sendmsg ret=N errno=NAME" and "sendmmsg ..." lines; exits 0 when
 * the connection calls succeeded, 1 otherwise, 2 on usage errors. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sin;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct cmsghdr *cmsg;
	struct mmsghdr mm;
	struct msghdr msg;
	struct iovec iov;
	int fd, pair[2];
	ssize_t ret;

	if (argc != 4)
		return 2;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1)
		return 2;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
	    write(fd, argv[3], strlen(argv[3])) != (ssize_t)strlen(argv[3]))
		return 1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) < 0)
		return 1;

	memset(&control, 0, sizeof control);
	memset(&msg, 0, sizeof msg);
	iov.iov_base = "x";
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof control.buf;
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = 1U << 30; /* a lie: the buffer holds one descriptor */
	memcpy(CMSG_DATA(cmsg), &pair[0], sizeof(int));

	ret = sendmsg(pair[1], &msg, 0);
	printf("sendmsg ret=%zd errno=%s\n", ret, ret < 0 ? strerrorname_np(errno) : "-");
	fflush(stdout);
	memset(&mm, 0, sizeof mm);
	mm.msg_hdr = msg;
	ret = sendmmsg(pair[1], &mm, 1, 0);
	printf("sendmmsg ret=%zd errno=%s\n", ret, ret < 0 ? strerrorname_np(errno) : "-");
	fflush(stdout);
	return close(fd) == 0 ? 0 : 1;
}
