/* stale_fd.c HOST PORT MODE -- an upgraded connection's socket closed
 * behind the library's back (syscall(SYS_close), as libuv's uv__close
 * does), then its number reused by a call that is not socket() or open():
 *   inotify   inotify_init1 (hooked): read() must read the inotify event
 *   timerfd   timerfd_create (hooked): read() must read the expirations
 *   rawepoll  eventfd made by a raw system call (no hook sees it), then
 *             epoll_ctl(ADD) and read(): the eventfd's counter
 *   exit      a Unix socket made by a raw system call on that number,
 *             connected to a watcher child, then exit: nothing of ours
 *             (close_notify) may arrive at the watcher
 * Prints "ok ..." or "bad ..." lines; exit 0 when every step ran. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <stddef.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int connected(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int s = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, host, &sa.sin_addr);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("connect");
		exit(2);
	}
	if (write(s, "hello\n", 6) != 6) {
		perror("write");
		exit(2);
	}
	return s;
}

/* exit: a child, forked before any connection exists (so it holds none),
 * listens on an abstract Unix address (in *UN, *LEN) and counts the bytes
 * that arrive until EOF: "ok" for none.  Raw system calls only. */
static void watcher(struct sockaddr_un *un, socklen_t *len)
{
	char buf[4096];
	long total = 0, got;
	int l, c, n;

	memset(un, 0, sizeof *un);
	un->sun_family = AF_UNIX;
	n = snprintf(un->sun_path + 1, sizeof un->sun_path - 1, "stale_fd_%d", (int)getpid());
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	l = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || syscall(SYS_bind, l, (struct sockaddr *)un, *len) < 0 || syscall(SYS_listen, l, 1) < 0)
		exit(2);
	if (fork() == 0) {
		c = (int)syscall(SYS_accept, l, NULL, NULL);
		while (c >= 0 && (got = syscall(SYS_read, c, buf, sizeof buf)) > 0)
			total += got;
		n = snprintf(buf, sizeof buf, "%s exit: %ld bytes arrived at the reused number\n",
			     c >= 0 && total == 0 ? "ok" : "bad", total);
		syscall(SYS_write, 1, buf, n);
		syscall(SYS_exit_group, 0);
	}
	syscall(SYS_close, l);
}

static void report(const char *what, int fd, int s, ssize_t n, ssize_t want)
{
	printf("%s %s: fd %d (socket was %d) read %zd (%s)\n", n == want && fd == s ? "ok" : "bad", what, fd,
	       s, n, n < 0 ? strerror(errno) : "data");
}

int main(int argc, char **argv)
{
	char buf[4096], dir[] = "/tmp/stale_fdXXXXXX", path[64];
	int s, fd, ep;
	struct epoll_event ev = { .events = EPOLLIN };
	struct itimerspec its = { .it_value = { 0, 1000000 } };
	struct sockaddr_un un;
	socklen_t unlen = 0;
	uint64_t one = 1;
	ssize_t n;

	if (argc != 4)
		return 2;
	if (!strcmp(argv[3], "exit"))
		watcher(&un, &unlen);
	s = connected(argv[1], atoi(argv[2]));
	syscall(SYS_close, s);
	if (!strcmp(argv[3], "inotify")) {
		fd = inotify_init1(0);
		if (!mkdtemp(dir) || inotify_add_watch(fd, dir, IN_CREATE) < 0)
			return 2;
		snprintf(path, sizeof path, "%s/x", dir);
		close(open(path, O_CREAT | O_WRONLY, 0600));
		n = read(fd, buf, sizeof buf);
		report("inotify", fd, s, n > 0 ? 1 : n, 1);
		unlink(path);
		rmdir(dir);
	} else if (!strcmp(argv[3], "timerfd")) {
		fd = timerfd_create(CLOCK_MONOTONIC, 0);
		timerfd_settime(fd, 0, &its, NULL);
		n = read(fd, buf, sizeof buf);
		report("timerfd", fd, s, n, 8);
	} else if (!strcmp(argv[3], "rawepoll")) {
		fd = (int)syscall(SYS_eventfd2, 0, 0);
		ep = epoll_create1(0);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			printf("bad epoll_ctl: %s\n", strerror(errno));
		syscall(SYS_write, fd, &one, sizeof one);
		if (epoll_wait(ep, &ev, 1, 5000) != 1)
			printf("bad epoll_wait: not readable\n");
		n = read(fd, buf, sizeof buf);
		report("rawepoll", fd, s, n, 8);
	} else if (!strcmp(argv[3], "exit")) {
		/* The number becomes a Unix socket no hook saw, connected to
		 * the watcher: whatever our exit sends into it arrives there. */
		fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
		if (fd != s || syscall(SYS_connect, fd, (struct sockaddr *)&un, unlen) < 0)
			return 2;
		return 0;
	} else {
		return 2;
	}
	return 0;
}
