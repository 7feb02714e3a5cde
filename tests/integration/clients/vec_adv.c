/* vec_adv.c -- adversarial vectors on an upgraded socket (refactor_adv.sh).
 *
 *   vec_adv HOST PORT shapes COPYFILE
 *	blocking writes of odd vectors: IOV_MAX one-byte buffers, empty
 *	buffers with a NULL base among them, one large buffer between tiny
 *	ones, sendmmsg of several messages.  (refused: calls the kernel
 *	refuses -- more than IOV_MAX buffers, a length that is negative as
 *	ssize_t, lengths whose sum wraps -- are made on a socketpair first:
 *	the upgraded socket must answer as the kernel did, and send nothing.)
 *	Every byte the program was told went is appended
 *	to COPYFILE; prints one line per call, "parity-bad ..." on a mismatch.
 *
 *   vec_adv HOST PORT refused COPYFILE
 *	only the calls the kernel refuses: a crash here leaves the others
 *	their own connection.  Every vector entry point (refused_more) and
 *	write/send of one huge buffer; "efault-bad ..." where the upgraded
 *	socket must say EFAULT and did not.
 *
 *   vec_adv HOST PORT resplit COPYFILE
 *	non-blocking, small send buffer: after each EAGAIN the program writes
 *	the SAME remaining bytes cut differently (one buffer, 7-byte buffers,
 *	only the first 10 bytes): POSIX says nothing went, so any split of
 *	the same bytes must be accepted, and the server must get each byte
 *	once.  Prints "eagain=N".
 *
 *   vec_adv HOST PORT then-block COPYFILE
 *	non-blocking writes until the first EAGAIN, then blocking:
 *	shutdown(SHUT_WR) and a blocking read until the server's end.
 *
 * Exit 0 after a clean close; the test compares COPYFILE with tserver's
 * bytes_in and sha256_in. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static FILE *copy;
static unsigned long long total_told;

static void die(const char *what)
{
	fprintf(stderr, "vec_adv: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Append the first N bytes of IOV to the copy (what the program was told
 * went). */
static void told(const struct iovec *iov, int cnt, size_t n)
{
	int i;
	size_t step;

	total_told += n;
	for (i = 0; i < cnt && n > 0; i++) {
		step = iov[i].iov_len < n ? iov[i].iov_len : n;
		if (step && fwrite(iov[i].iov_base, 1, step, copy) != step)
			die("fwrite");
		n -= step;
	}
}

/* Write the whole vector (blocking), resuming after short counts. */
static void write_all(int fd, struct iovec *iov, int cnt, const char *name)
{
	ssize_t n;
	size_t left = 0;
	int i;

	for (i = 0; i < cnt; i++)
		left += iov[i].iov_len;
	while (left > 0) {
		n = writev(fd, iov, cnt);
		if (n < 0) {
			printf("%s: writev failed: %s\n", name, strerror(errno));
			exit(1);
		}
		told(iov, cnt, (size_t)n);
		left -= (size_t)n;
		while (n > 0 && cnt > 0) {
			if ((size_t)n >= iov->iov_len) {
				n -= (ssize_t)iov->iov_len;
				iov++;
				cnt--;
			} else {
				iov->iov_base = (char *)iov->iov_base + n;
				iov->iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	printf("%s: ok\n", name);
}

static unsigned char pattern[1 << 21];

static void fill(void)
{
	size_t i;

	for (i = 0; i < sizeof pattern; i++)
		pattern[i] = (unsigned char)(i * 7 + (i >> 11));
}

/* One vector call of kind HOW: 'w' writev, 's' sendmsg, 'm' sendmmsg (one
 * message), 'r' readv, 'v' recvmsg (MSG_DONTWAIT).  CNT goes into
 * msg_iovlen as a size_t (BIG: 2^33, which an int cast would cut). */
static ssize_t vcall(int how, int fd, const struct iovec *iov, long long cnt)
{
	struct mmsghdr mm;
	int r;

	memset(&mm, 0, sizeof mm);
	mm.msg_hdr.msg_iov = (struct iovec *)iov;
	mm.msg_hdr.msg_iovlen = (size_t)cnt;
	switch (how) {
	case 'w':
		return writev(fd, iov, (int)cnt);
	case 'r':
		return readv(fd, iov, (int)cnt);
	case 's':
		return sendmsg(fd, &mm.msg_hdr, 0);
	case 'v':
		return recvmsg(fd, &mm.msg_hdr, MSG_DONTWAIT);
	default:
		r = sendmmsg(fd, &mm, 1, 0);
		return r == 1 ? (ssize_t)mm.msg_len : r;
	}
}

/* A call the kernel refuses: same result and errno on the upgraded socket,
 * and nothing sent (or read). */
static void parity_how(int how, int fd, int ref, const struct iovec *iov, long long cnt, const char *name)
{
	ssize_t r1, r2;
	int e1, e2;

	errno = 0;
	r1 = vcall(how, ref, iov, cnt);
	e1 = errno;
	errno = 0;
	r2 = vcall(how, fd, iov, cnt);
	e2 = errno;
	if (r2 > 0 && how != 'r' && how != 'v')
		told(iov, (int)cnt, (size_t)r2);
	if (r1 != r2 || (r1 < 0 && e1 != e2))
		printf("parity-bad %s: kernel %zd (%s), upgraded %zd (%s)\n", name, r1, strerrorname_np(e1),
		       r2, strerrorname_np(e2));
	else
		printf("%s: parity ok (%zd %s)\n", name, r1, r1 < 0 ? strerrorname_np(e1) : "");
}

static void parity(int fd, int ref, const struct iovec *iov, int cnt, const char *name)
{
	parity_how('w', fd, ref, iov, cnt, name);
}

static void shapes(int fd)
{
	static struct iovec iov[IOV_MAX + 8];
	struct mmsghdr mm[3];
	int i, r;

	/* 1. IOV_MAX buffers of one byte each. */
	for (i = 0; i < IOV_MAX; i++)
		iov[i] = (struct iovec){ pattern + i * 3, 1 };
	write_all(fd, iov, IOV_MAX, "iovmax-1byte");
	/* 2. Empty buffers, some with no memory, between real ones. */
	for (i = 0; i < 64; i++)
		iov[i] = (i % 3 == 0) ? (struct iovec){ NULL, 0 }
				      : (i % 3 == 1) ? (struct iovec){ pattern + 5000 + i, 0 }
						     : (struct iovec){ pattern + 9000 + i * 100, 100 + (size_t)i };
	write_all(fd, iov, 64, "empty-mixed");
	/* 3. Only empty buffers: 0, nothing sent. */
	iov[0] = (struct iovec){ NULL, 0 };
	iov[1] = (struct iovec){ pattern, 0 };
	r = (int)writev(fd, iov, 2);
	printf("only-empty: %s\n", r == 0 ? "ok" : "bad");
	/* 4. One large buffer between tiny ones. */
	iov[0] = (struct iovec){ pattern + 1, 1 };
	iov[1] = (struct iovec){ pattern + 2, 16383 };
	iov[2] = (struct iovec){ pattern + 100, (1 << 20) + 17 };
	iov[3] = (struct iovec){ NULL, 0 };
	iov[4] = (struct iovec){ pattern + 3, 1 };
	iov[5] = (struct iovec){ pattern + 4, 2 };
	write_all(fd, iov, 6, "huge-between-tiny");
	/* 6. sendmmsg: three messages of two buffers. */
	memset(mm, 0, sizeof mm);
	for (i = 0; i < 3; i++) {
		iov[2 * i] = (struct iovec){ pattern + 20000 * i, 5 + (size_t)i };
		iov[2 * i + 1] = (struct iovec){ pattern + 20000 * i + 500, 20000 };
		mm[i].msg_hdr.msg_iov = &iov[2 * i];
		mm[i].msg_hdr.msg_iovlen = 2;
	}
	r = sendmmsg(fd, mm, 3, 0);
	for (i = 0; i < (r > 0 ? r : 0); i++)
		told(&iov[2 * i], 2, mm[i].msg_len);
	printf("sendmmsg: r=%d len=%u,%u,%u %s\n", r, mm[0].msg_len, mm[1].msg_len, mm[2].msg_len,
	       r == 3 && mm[2].msg_len == 20007 ? "ok" : "bad");
}

/* A range no memory can hold: the upgraded socket says EFAULT (and sends
 * nothing, reads nothing past the buffer). */
static void refused_efault(int how, int fd, const struct iovec *iov, int cnt, const char *name)
{
	ssize_t r;

	errno = 0;
	r = vcall(how, fd, iov, cnt);
	if (r == -1 && errno == EFAULT)
		printf("%s: efault ok\n", name);
	else
		printf("efault-bad %s: upgraded %zd (%s)\n", name, r, strerrorname_np(errno));
}

/* Every vector entry point, against the kernel's answers: too many
 * buffers (EINVAL; EMSGSIZE for a msghdr, also with a count an int cast
 * would cut), a length > SSIZE_MAX after a NULL base (EINVAL first), a
 * NULL base with a length, a range that wraps, a NULL vector (EFAULT);
 * lengths no address space holds and a sum over SSIZE_MAX: EFAULT. */
static void refused_more(int fd, int ref, int peer, struct iovec *iov)
{
	static const char kinds[] = "wsmrv";
	char name[64];
	const char *k;

	/* Bytes waiting on the kernel's side, so that its reads never block
	 * (the upgraded socket has none: a read it accepted would block). */
	if (write(peer, pattern, 4096) != 4096)
		die("write");

	for (k = kinds; *k; k++) {
		int i;

		for (i = 0; i < IOV_MAX + 1; i++)
			iov[i] = (struct iovec){ pattern + i, 1 };
		snprintf(name, sizeof name, "%c-count-over", *k);
		parity_how(*k, fd, ref, iov, IOV_MAX + 1, name);
		if (*k == 's' || *k == 'v' || *k == 'm') {
			snprintf(name, sizeof name, "%c-count-2^33", *k);
			parity_how(*k, fd, ref, iov, 1LL << 33, name);
		}
		iov[0] = (struct iovec){ NULL, 16 };
		iov[1] = (struct iovec){ pattern, (size_t)SSIZE_MAX + 1 };
		snprintf(name, sizeof name, "%c-null-then-negative", *k);
		parity_how(*k, fd, ref, iov, 2, name);
		/* NULL first: a read would fill the first buffer before the
		 * fault (and the kernel's reads find data waiting: below). */
		iov[0] = (struct iovec){ NULL, 5 };
		iov[1] = (struct iovec){ pattern, 16 };
		snprintf(name, sizeof name, "%c-null-base", *k);
		parity_how(*k, fd, ref, iov, 2, name);
		/* Ranges no memory can hold: EFAULT on the upgraded socket.
		 * (Not compared: Linux 6.x on x86-64 checks only where a range
		 * starts and reads the program's memory until a fault.) */
		iov[0] = (struct iovec){ pattern, (size_t)1 << 60 };
		snprintf(name, sizeof name, "%c-past-address-space", *k);
		refused_efault(*k, fd, iov, 1, name);
		iov[0] = (struct iovec){ (void *)(UINTPTR_MAX - 10), 5 };
		snprintf(name, sizeof name, "%c-range-wraps", *k);
		parity_how(*k, fd, ref, iov, 1, name);
		/* Each in the address space, the sum wraps past SIZE_MAX. */
		for (i = 0; i < IOV_MAX; i++)
			iov[i] = (struct iovec){ pattern, (size_t)1 << 54 };
		snprintf(name, sizeof name, "%c-sum-over-ssize", *k);
		refused_efault(*k, fd, iov, IOV_MAX, name);
		snprintf(name, sizeof name, "%c-null-vector", *k);
		parity_how(*k, fd, ref, NULL, 1, name);
	}
}

/* write() and send() of one buffer whose length wraps the address space
 * (negative as ssize_t), nothing read: write() against the kernel's answer
 * (EFAULT: it checks the whole range); send() must say EFAULT (the kernel
 * cuts the length to MAX_RW_COUNT first and reads until a fault). */
static void refused_single(int fd, int ref)
{
	volatile size_t huge = SIZE_MAX - 7;
	ssize_t r1, r2;
	int e1, e2;

	errno = 0;
	r1 = write(ref, pattern, huge);
	e1 = errno;
	errno = 0;
	r2 = write(fd, pattern, huge);
	e2 = errno;
	if (r1 != r2 || e1 != e2)
		printf("parity-bad write-huge: kernel %zd (%s), upgraded %zd (%s)\n", r1, strerrorname_np(e1), r2,
		       strerrorname_np(e2));
	else
		printf("write-huge: parity ok (%zd %s)\n", r1, strerrorname_np(e1));
	errno = 0;
	r2 = send(fd, pattern, huge, 0);
	if (r2 == -1 && errno == EFAULT)
		printf("send-huge: efault ok\n");
	else
		printf("efault-bad send-huge: upgraded %zd (%s)\n", r2, strerrorname_np(errno));
}

/* Calls the kernel refuses (EINVAL before it reads a byte), made on a
 * socketpair first: the upgraded socket must say the same, send nothing,
 * and not crash. */
static void refused(int fd)
{
	static struct iovec iov[IOV_MAX + 8];
	int sp[2], i;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
		die("socketpair");
	for (i = 0; i < IOV_MAX + 1; i++)
		iov[i] = (struct iovec){ pattern + i, 1 };
	parity(fd, sp[0], iov, IOV_MAX + 1, "iovmax+1");
	iov[0] = (struct iovec){ pattern, 16 };
	iov[1] = (struct iovec){ pattern, SIZE_MAX - 7 }; /* the sum wraps to 8 */
	parity(fd, sp[0], iov, 2, "sum-wraps");
	iov[0] = (struct iovec){ pattern, 16 };
	iov[1] = (struct iovec){ pattern, (size_t)SSIZE_MAX + 1 }; /* negative as ssize_t */
	parity(fd, sp[0], iov, 2, "len-negative");
	parity(fd, sp[0], iov, -1, "count-negative");
	refused_more(fd, sp[0], sp[1], iov);
	refused_single(fd, sp[0]);
	close(sp[0]);
	close(sp[1]);
}

/* The remaining bytes [P, P+LEFT) cut as variant K. */
static int cut(struct iovec *iov, const unsigned char *p, size_t left, int k)
{
	int n = 0;
	size_t off = 0, step;

	if (k == 0) {
		iov[0] = (struct iovec){ (void *)p, left };
		return 1;
	}
	if (k == 2) {
		iov[0] = (struct iovec){ (void *)p, left < 10 ? left : 10 };
		return 1;
	}
	while (off < left && n < IOV_MAX) {
		step = left - off < 7 ? left - off : 7;
		iov[n++] = (struct iovec){ (void *)(p + off), step };
		off += step;
	}
	return n;
}

static void resplit(int fd)
{
	static struct iovec iov[IOV_MAX];
	struct pollfd pfd = { fd, POLLOUT, 0 };
	size_t pos = 0, len = sizeof pattern;
	unsigned eagain = 0;
	int k = -1, cnt, sz = 4096;
	ssize_t n;

	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		die("fcntl");
	(void)sz;
	while (pos < len) {
		if (k < 0) {
			/* first try: two buffers, a record spans them */
			iov[0] = (struct iovec){ pattern + pos, 300 };
			iov[1] = (struct iovec){ pattern + pos + 300, 60000 };
			cnt = pos + 60300 <= len ? 2 : cut(iov, pattern + pos, len - pos, 0);
		} else {
			cnt = cut(iov, pattern + pos, len - pos, k);
		}
		n = writev(fd, iov, cnt);
		if (n < 0 && errno == EAGAIN) {
			eagain++;
			k = (int)(eagain % 3);
			if (eagain % 2)
				(void)poll(&pfd, 1, 60000);
			else
				usleep(2000);
			continue;
		}
		if (n < 0) {
			printf("resplit: writev failed after %zu: %s\n", pos, strerror(errno));
			exit(1);
		}
		told(iov, cnt, (size_t)n);
		pos += (size_t)n;
		k = -1;
	}
	printf("resplit: eagain=%u\n", eagain);
	if (fcntl(fd, F_SETFL, 0) < 0)
		die("fcntl");
}

/* Non-blocking writes of one record's worth until the first EAGAIN, then
 * the program turns the socket blocking and ends as a plain TCP program
 * may: shutdown(SHUT_WR), then a blocking read for the server's end.  The
 * kernel would deliver everything it accepted and the FIN in the
 * background; so must the library, or the server, still waiting for the
 * rest, never ends, and neither does the program. */
static void then_block(int fd)
{
	struct iovec one;
	size_t pos = 0;
	ssize_t n;

	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		die("fcntl");
	for (;;) {
		one = (struct iovec){ pattern + pos % (sizeof pattern - 16384), 16384 };
		n = writev(fd, &one, 1);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			printf("then-block: writev failed: %s\n", strerror(errno));
			exit(1);
		}
		told(&one, 1, (size_t)n);
		pos += (size_t)n;
	}
	printf("then-block: eagain after %zu bytes\n", pos);
	if (fcntl(fd, F_SETFL, 0) < 0)
		die("fcntl");
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, buf = 8192;
	char c;

	if (argc != 5)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	fill();
	copy = fopen(argv[4], "w");
	if (!copy)
		die("fopen");
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	inet_pton(AF_INET, argv[1], &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (strcmp(argv[3], "resplit") == 0 || strcmp(argv[3], "then-block") == 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect");
	if (strcmp(argv[3], "shapes") == 0)
		shapes(fd);
	else if (strcmp(argv[3], "then-block") == 0)
		then_block(fd);
	else if (strcmp(argv[3], "refused") == 0)
		refused(fd);
	else
		resplit(fd);
	fclose(copy);
	if (shutdown(fd, SHUT_WR) < 0)
		die("shutdown");
	(void)read(fd, &c, 1);
	close(fd);
	printf("told=%llu\n", total_told);
	return 0;
}
