/* hook_io.c - every way a program moves bytes on a socket.  For a managed
 * descriptor the bytes go through the connection; for any other the real
 * function runs after one atomic load. */
#include "shim.h"
#include "adopt.h"
#include "conn.h"
#include "fdtab.h"
#include "log.h"
#include "policy.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

/* An inherited socket is adopted on its first use (adopt.h). */
#define MANAGED(fd) (shim_enter() && (adopt_maybe(fd), fdtab_any()) ? fdtab_get(fd) : NULL)

/* A write that hit a closed peer raises SIGPIPE where the program's own call
 * would have (our transport always uses MSG_NOSIGNAL). */
static ssize_t sent(ssize_t ret, int flags)
{
	if (ret == -EPIPE && !(flags & MSG_NOSIGNAL))
		raise(SIGPIPE);
	return shim_result(ret);
}

static ssize_t do_recv(struct conn *conn, void *buf, size_t len, int flags)
{
	ssize_t ret = conn_recv(conn, buf, len, flags);

	conn_unref(conn);
	return shim_result(ret);
}

static ssize_t do_send(struct conn *conn, const void *buf, size_t len, int flags)
{
	ssize_t ret = conn_send(conn, buf, len, flags);

	conn_unref(conn);
	return sent(ret, flags);
}

/* A fortified call whose buffer is smaller than its length: a bug in the
 * program, reported by glibc's own __chk_fail as without us (the library
 * itself never aborts a program). */
static ssize_t fortify_fail(void)
{
	if (real.chk_fail)
		real.chk_fail();
	return shim_result(-EINVAL);
}

ssize_t read(int fd, void *buf, size_t len)
{
	struct conn *conn = MANAGED(fd);

	return conn ? do_recv(conn, buf, len, 0) : real.read(fd, buf, len);
}

ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		return fortify_fail(); /* the program's bug: glibc's verdict */
	return read(fd, buf, len);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	struct conn *conn = MANAGED(fd);

	return conn ? do_send(conn, buf, len, 0) : real.write(fd, buf, len);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct conn *conn = MANAGED(fd);

	return conn ? do_recv(conn, buf, len, flags) : real.recv(fd, buf, len, flags);
}

ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (len > buflen)
		return fortify_fail();
	return recv(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr, socklen_t *addrlen)
{
	struct conn *conn = MANAGED(fd);

	if (!conn)
		return real.recvfrom(fd, buf, len, flags, addr, addrlen);
	/* A connected stream socket reports no source address. */
	if (addrlen)
		*addrlen = 0;
	return do_recv(conn, buf, len, flags);
}

ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
		       struct sockaddr *addr, socklen_t *addrlen)
{
	if (len > buflen)
		return fortify_fail();
	return recvfrom(fd, buf, len, flags, addr, addrlen);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	struct conn *conn = MANAGED(fd);

	return conn ? do_send(conn, buf, len, flags) : real.send(fd, buf, len, flags);
}

/* TCP Fast Open (sendto, sendmsg or sendmmsg with MSG_FASTOPEN and a
 * destination) is an implicit connect: decide as connect() would.  Return
 * the connection if FD was upgraded, NULL with *ERR 0 if it was connected
 * in clear, NULL with *ERR < 0 if the connect failed. */
static struct conn *fastopen_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int *err)
{
	int ret;

	shim_init();
	ret = shim_connect(fd, addr, addrlen);
	*err = ret < 0 && ret != -EINPROGRESS ? ret : 0;
	return *err ? NULL : fdtab_get(fd);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr,
	       socklen_t addrlen)
{
	struct conn *conn = MANAGED(fd);
	int err;

	if (conn)
		return do_send(conn, buf, len, flags & ~MSG_FASTOPEN);
	if (!(flags & MSG_FASTOPEN) || !addr || !shim_enter())
		return real.sendto(fd, buf, len, flags, addr, addrlen);
	conn = fastopen_connect(fd, addr, addrlen, &err);
	if (err)
		return shim_result(err);
	if (!conn)
		return real.send(fd, buf, len, flags & ~MSG_FASTOPEN);
	return do_send(conn, buf, len, flags & ~MSG_FASTOPEN);
}

/* ---- scatter/gather ---- */

/* Read into the first iovec as the socket's mode allows, then fill the
 * rest only from what is already there.  A vector the kernel refuses is
 * refused as the kernel does (conn_iov_check), before any byte is read. */
static ssize_t recv_iov(struct conn *conn, const struct iovec *iov, int iovcnt, int flags)
{
	ssize_t done = 0, ret = 0;
	size_t total;
	int i;

	if ((ret = conn_iov_check(iov, iovcnt, &total)) < 0) {
		conn_unref(conn);
		return shim_result(ret);
	}
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len == 0)
			continue;
		ret = conn_recv(conn, iov[i].iov_base, iov[i].iov_len,
				done ? (flags | MSG_DONTWAIT) & ~MSG_WAITALL : flags);
		if (ret <= 0)
			break;
		done += ret;
		if ((size_t)ret < iov[i].iov_len || (flags & MSG_PEEK))
			break;
	}
	conn_unref(conn);
	if (done > 0)
		return done;
	return shim_result(ret);
}

/* writev, sendmsg, pwritev2: the buffers go as one write (conn_sendv says
 * which bytes are copied on the way). */
static ssize_t send_iov(struct conn *conn, const struct iovec *iov, int iovcnt, int flags)
{
	ssize_t ret = conn_sendv(conn, iov, iovcnt, flags);

	conn_unref(conn);
	return sent(ret, flags);
}

/* sendmsg/recvmsg's vector: the kernel refuses more than UIO_MAXIOV
 * (= IOV_MAX) buffers with EMSGSIZE, before anything else it checks in
 * the vector.  Return 0 or -EMSGSIZE. */
static int msg_iovlen_check(const struct msghdr *msg)
{
	return msg->msg_iovlen > IOV_MAX ? -EMSGSIZE : 0;
}

ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct conn *conn = MANAGED(fd);

	return conn ? recv_iov(conn, iov, iovcnt, 0) : real.readv(fd, iov, iovcnt);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct conn *conn = MANAGED(fd);

	return conn ? send_iov(conn, iov, iovcnt, 0) : real.writev(fd, iov, iovcnt);
}

/* Descriptors that arrived with MSG (SCM_RIGHTS) are new here: a mapping
 * their number still has is stale (as at birth, hook_create.c), and each
 * is looked at on its first use like an inherited one (its number may
 * still carry the mark of a file closed behind our back). */
static void received_fds(const struct msghdr *msg)
{
	struct cmsghdr *c;
	size_t i, n;
	int fd;

	if (!msg || !msg->msg_control || msg->msg_controllen == 0)
		return;
	for (c = CMSG_FIRSTHDR((struct msghdr *)msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (fdtab_any())
				fdtab_forget(fd);
			adopt_closed(fd);
		}
	}
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct conn *conn = MANAGED(fd);
	size_t total;
	ssize_t got;
	int err;

	if (!conn) {
		got = real.recvmsg(fd, msg, flags);
		if (got >= 0)
			received_fds(msg);
		return got;
	}
	if (!msg) {
		conn_unref(conn);
		return shim_result(-EFAULT);
	}
	if (msg_iovlen_check(msg) < 0) {
		conn_unref(conn);
		return shim_result(-EMSGSIZE);
	}
	/* A vector the kernel refuses leaves the msghdr as it was. */
	if ((err = conn_iov_check(msg->msg_iov, (int)msg->msg_iovlen, &total)) < 0) {
		conn_unref(conn);
		return shim_result(err);
	}
	msg->msg_namelen = 0;
	msg->msg_controllen = 0;
	msg->msg_flags = 0;
	return recv_iov(conn, msg->msg_iov, (int)msg->msg_iovlen, flags);
}

/* SCM_RIGHTS would hand an upgraded descriptor to another process (or back
 * to this one under a new number) as a raw socket, without its TLS session:
 * whatever is written on the copy would go out in clear.  Return -EPERM
 * (and log it) if MSG passes one of ours over FD in CALL, else 0. */
static int rights_check(const char *call, int fd, const struct msghdr *msg)
{
	const unsigned char *end;
	struct cmsghdr *cmsg;

	if (!msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr) || !fdtab_any())
		return 0;
	/* Only now: arithmetic on a NULL pointer is undefined. */
	end = (const unsigned char *)msg->msg_control + msg->msg_controllen;
	for (cmsg = CMSG_FIRSTHDR((struct msghdr *)msg); cmsg; cmsg = CMSG_NXTHDR((struct msghdr *)msg, cmsg)) {
		size_t i, n;

		/* A message that claims more than its buffer holds: the
		 * kernel refuses the whole call (EINVAL); never read past. */
		if (cmsg->cmsg_len > (size_t)(end - (const unsigned char *)cmsg))
			return 0;
		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
		    cmsg->cmsg_len < CMSG_LEN(0))
			continue;
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			int passed;
			struct conn *conn;

			memcpy(&passed, CMSG_DATA(cmsg) + i * sizeof(int), sizeof passed);
			conn = fdtab_get(passed);
			if (!conn)
				continue;
			log_error("rule [%s] %s: descriptor %d refused in %s on descriptor %d "
				  "(EPERM): an upgraded connection cannot be passed with SCM_RIGHTS, "
				  "its TLS session cannot leave the process",
				  conn->rule ? conn->rule->name : "?", conn->app_dest ? conn->app_dest : "?",
				  passed, call, fd);
			conn_unref(conn);
			return -EPERM;
		}
	}
	return 0;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct conn *conn = MANAGED(fd);
	struct msghdr plain;
	size_t total;
	int err;

	if (!conn) {
		if (!msg || !shim_enter())
			return real.sendmsg(fd, msg, flags);
		if ((err = rights_check("sendmsg", fd, msg)) < 0)
			return shim_result(err);
		if (!(flags & MSG_FASTOPEN) || !msg->msg_name)
			return real.sendmsg(fd, msg, flags);
		/* The kernel refuses a bad vector before it connects. */
		if ((err = msg_iovlen_check(msg)) < 0 ||
		    (err = conn_iov_check(msg->msg_iov, (int)msg->msg_iovlen, &total)) < 0)
			return shim_result(err);
		conn = fastopen_connect(fd, msg->msg_name, msg->msg_namelen, &err);
		if (err)
			return shim_result(err);
		if (!conn) {
			/* Connected in clear: the rest is a plain sendmsg. */
			plain = *msg;
			plain.msg_name = NULL;
			plain.msg_namelen = 0;
			return real.sendmsg(fd, &plain, flags & ~MSG_FASTOPEN);
		}
	}
	flags &= ~MSG_FASTOPEN;
	if (!msg) {
		conn_unref(conn);
		return shim_result(-EFAULT);
	}
	/* The vector first, as the kernel (a refused one sends nothing). */
	if ((err = msg_iovlen_check(msg)) < 0 ||
	    (err = conn_iov_check(msg->msg_iov, (int)msg->msg_iovlen, &total)) < 0) {
		conn_unref(conn);
		return shim_result(err);
	}
	if (msg->msg_controllen > 0) {
		/* Ancillary data cannot ride inside TLS records. */
		conn_unref(conn);
		return shim_result(-EOPNOTSUPP);
	}
	return send_iov(conn, msg->msg_iov, (int)msg->msg_iovlen, flags);
}

int recvmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags, struct timespec *timeout)
{
	struct conn *conn = MANAGED(fd);
	ssize_t ret;
	int i, got;

	if (!conn) {
		if (!real.recvmmsg)
			return shim_result(-ENOSYS);
		got = real.recvmmsg(fd, msgs, vlen, flags, timeout);
		for (i = 0; i < got; i++)
			received_fds(&msgs[i].msg_hdr);
		return got;
	}
	conn_unref(conn);
	if (vlen == 0)
		return 0;
	if (!msgs)
		return shim_result(-EFAULT);
	ret = recvmsg(fd, &msgs[0].msg_hdr, flags & ~MSG_WAITFORONE);
	if (ret < 0)
		return -1;
	msgs[0].msg_len = (unsigned)ret;
	return 1;
}

/* Message by message through sendmsg(): the first may connect (Fast Open),
 * the later ones then go through the connection. */
static int sendmmsg_each(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags)
{
	unsigned i;

	for (i = 0; i < vlen; i++) {
		ssize_t ret = sendmsg(fd, &msgs[i].msg_hdr, i > 0 ? flags & ~MSG_FASTOPEN : flags);

		if (ret < 0)
			return i > 0 ? (int)i : -1;
		msgs[i].msg_len = (unsigned)ret;
	}
	return (int)i;
}

int sendmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags)
{
	struct conn *conn = MANAGED(fd);
	unsigned i;
	int err;

	if (conn) {
		conn_unref(conn);
		if (!msgs && vlen > 0)
			return shim_result(-EFAULT);
		return sendmmsg_each(fd, msgs, vlen, flags);
	}
	if (!real.sendmmsg)
		return shim_result(-ENOSYS);
	if (!msgs || vlen == 0 || !shim_enter())
		return real.sendmmsg(fd, msgs, vlen, flags);
	/* Refused before anything is sent. */
	for (i = 0; i < vlen; i++)
		if ((err = rights_check("sendmmsg", fd, &msgs[i].msg_hdr)) < 0)
			return shim_result(err);
	if ((flags & MSG_FASTOPEN) && msgs[0].msg_hdr.msg_name)
		return sendmmsg_each(fd, msgs, vlen, flags);
	return real.sendmmsg(fd, msgs, vlen, flags);
}

/* preadv2/pwritev2 with offset -1 use the file position: on a socket that is
 * plain reading and writing. */
ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags)
{
	struct conn *conn = MANAGED(fd);

	if (!conn)
		return real.preadv2 ? real.preadv2(fd, iov, iovcnt, offset, flags) : shim_result(-ENOSYS);
	if (offset != -1) {
		conn_unref(conn);
		return shim_result(-ESPIPE);
	}
	return recv_iov(conn, iov, iovcnt, (flags & RWF_NOWAIT) ? MSG_DONTWAIT : 0);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags)
{
	struct conn *conn = MANAGED(fd);

	if (!conn)
		return real.pwritev2 ? real.pwritev2(fd, iov, iovcnt, offset, flags) : shim_result(-ENOSYS);
	if (offset != -1) {
		conn_unref(conn);
		return shim_result(-ESPIPE);
	}
	return send_iov(conn, iov, iovcnt, (flags & RWF_NOWAIT) ? MSG_DONTWAIT : 0);
}

/* ---- kernel copies: encrypted by hand, or refused ---- */

#define SENDFILE_CHUNK 16384

static ssize_t sendfile_tls(struct conn *conn, int in_fd, off_t *offset, size_t count)
{
	/* On the heap: the program's thread stacks may be small. */
	char *buf = malloc(count < SENDFILE_CHUNK ? (count ? count : 1) : SENDFILE_CHUNK);
	size_t done = 0;
	ssize_t n, ret = 0;

	if (!buf) {
		conn_unref(conn);
		return shim_result(-ENOMEM);
	}
	while (done < count) {
		size_t want = count - done < SENDFILE_CHUNK ? count - done : SENDFILE_CHUNK;

		n = offset ? pread(in_fd, buf, want, *offset) : real.read(in_fd, buf, want);
		if (n <= 0) {
			if (n < 0 && done == 0)
				ret = -errno;
			break;
		}
		ret = conn_send(conn, buf, (size_t)n, done ? MSG_DONTWAIT : 0);
		if (ret < 0) {
			/* Not sent: give the bytes back to the file position. */
			if (!offset)
				lseek(in_fd, -n, SEEK_CUR);
			break;
		}
		if (ret < n && !offset)
			lseek(in_fd, ret - n, SEEK_CUR);
		done += ret;
		if (offset)
			*offset += ret;
		if (ret < n)
			break;
	}
	free(buf);
	conn_unref(conn);
	if (done > 0)
		return done;
	return sent(ret, 0);
}

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	struct conn *conn = MANAGED(out_fd);

	if (!conn) {
		struct conn *in = MANAGED(in_fd);

		if (in) {
			conn_unref(in);
			return shim_result(-EINVAL);
		}
		return real.sendfile(out_fd, in_fd, offset, count);
	}
	return sendfile_tls(conn, in_fd, offset, count);
}

ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return sendfile(out_fd, in_fd, offset, count);
}

ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len, unsigned int flags)
{
	struct conn *in = MANAGED(fd_in), *out = MANAGED(fd_out);

	if (in || out) {
		/* Splicing would move ciphertext or plaintext behind our back:
		 * programs fall back to read/write on EINVAL. */
		if (in)
			conn_unref(in);
		if (out)
			conn_unref(out);
		return shim_result(-EINVAL);
	}
	return real.splice(fd_in, off_in, fd_out, off_out, len, flags);
}
