/* epoll_test.c - the epoll registry without sockets (src/epoll_reg.c):
 * cookies, the index per instance and per descriptor, the rules that turn
 * a connection's readiness into the events the program sees, and a child
 * forked while the registry was half-way through an update. */
#include "epoll_reg.h"
#include "forklock.h"
#include "tap.h"

#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A live registration of FD in EPFD with interest EVENTS, indexed. */
static struct ep_reg *reg_new(int epfd, int fd, uint32_t events)
{
	struct ep_reg *reg;

	epreg_lock();
	reg = epreg_alloc();
	if (reg) {
		reg->epfd = epfd;
		reg->fd = fd;
		reg->app_events = events;
		reg->app_data.u64 = ((uint64_t)epfd << 32) | (uint32_t)fd;
		if (epreg_link(reg) < 0)
			reg = NULL;
	}
	epreg_unlock();
	return reg;
}

static int count_in_epfd(int epfd)
{
	struct ep_reg *reg;
	int n = 0;

	for (reg = epreg_first_in_epfd(epfd); reg; reg = reg->ep_next)
		n++;
	return n;
}

static int count_of_fd(int fd)
{
	struct ep_reg *reg;
	int n = 0;

	for (reg = epreg_first_of_fd(fd); reg; reg = reg->fd_next)
		n++;
	return n;
}

static void test_cookies(void)
{
	struct ep_reg *reg, *again;
	uint64_t cookie, old;
	int local;

	ok(!epreg_ever() && !epreg_is_cookie(0x7e5fULL << 48), "no slot handed out: nothing is a cookie");
	reg = reg_new(3, 4, EPOLLIN);
	ok(reg != NULL && epreg_ever() && epreg_any(), "a registration: slots exist, one is live");
	cookie = epreg_cookie(reg);
	ok(cookie >> 48 == 0x7e5f, "the cookie carries the tag in its top 16 bits");
	ok(epreg_is_cookie(cookie), "the cookie is recognised");
	ok(!epreg_is_cookie((uint64_t)(uintptr_t)&local) && !epreg_is_cookie(0) && !epreg_is_cookie(4) &&
		   !epreg_is_cookie(UINT64_MAX),
	   "a stack pointer, 0, a descriptor number, all ones: not cookies");
	ok(!epreg_is_cookie(0x7e5fULL << 48 | (uint64_t)0xffffff << 24), "the tag with a slot that does not exist: not a cookie");
	epreg_lock();
	ok(epreg_of_cookie(cookie) == reg, "the cookie names its registration");
	epreg_free(reg);
	ok(epreg_of_cookie(cookie) == NULL, "freed: the cookie names nothing");
	epreg_unlock();
	old = cookie;
	again = reg_new(3, 4, EPOLLIN);
	ok(again == reg, "the slot is handed out again");
	cookie = epreg_cookie(again);
	ok(cookie != old && epreg_is_cookie(old), "with another incarnation in its cookie (the old one still looks like ours)");
	epreg_lock();
	ok(epreg_of_cookie(old) == NULL && epreg_of_cookie(cookie) == again,
	   "an event queued for the old registration is stale, the new one is found");
	epreg_free(again);
	epreg_unlock();
	ok(!epreg_any(), "nothing live");
}

static void test_index(void)
{
	struct ep_reg *a, *b, *c, *far;

	a = reg_new(5, 10, EPOLLIN);
	b = reg_new(5, 11, EPOLLIN);
	c = reg_new(6, 10, EPOLLOUT);
	epreg_note_epfd(5);
	epreg_note_epfd(6);
	epreg_lock();
	ok(epreg_find(5, 10) == a && epreg_find(5, 11) == b && epreg_find(6, 10) == c,
	   "found by instance and descriptor");
	ok(epreg_find(6, 11) == NULL && epreg_find(5, 12) == NULL && epreg_find(7, 10) == NULL,
	   "what was not registered is not found");
	ok(epreg_find(-1, 10) == NULL && epreg_find(5, -1) == NULL && epreg_find(5, 1 << 30) == NULL,
	   "negative and huge numbers are not found (and do not crash)");
	ok(count_in_epfd(5) == 2 && count_in_epfd(6) == 1 && count_in_epfd(7) == 0, "per instance: 2, 1, 0");
	ok(count_of_fd(10) == 2 && count_of_fd(11) == 1, "per descriptor: 2, 1");
	far = epreg_alloc();
	far->epfd = 5;
	far->fd = 5000;
	ok(epreg_link(far) == 0 && epreg_find(5, 5000) == far && epreg_find(5, 10) == a && epreg_find(6, 10) == c,
	   "a high descriptor grows the index; the others are still found");
	epreg_free(b);
	ok(epreg_find(5, 11) == NULL && count_in_epfd(5) == 2 && count_of_fd(11) == 0,
	   "freed: gone from its instance and its descriptor");
	epreg_unlock();
	ok(epreg_known_epfd(5) && epreg_known_epfd(6) && !epreg_known_epfd(7), "the instances used are known");
	epreg_forget_epfd(5);
	epreg_lock();
	ok(!a->live && !far->live && c->live, "instance 5 closed: its registrations are freed, instance 6's kept");
	ok(epreg_find(5, 10) == NULL && epreg_find(6, 10) == c && count_of_fd(10) == 1 && count_in_epfd(5) == 0,
	   "descriptor 10 is left with its registration in instance 6");
	epreg_unlock();
	ok(!epreg_known_epfd(5) && epreg_known_epfd(6), "instance 5 is no longer known");
	epreg_forget_epfd(6);
	ok(!epreg_any(), "instance 6 closed: nothing live");
}

/* Registrations in instance EPFD, or -1 if the walk does not end. */
static int bounded_in_epfd(int epfd)
{
	struct ep_reg *reg;
	int n = 0;

	for (reg = epreg_first_in_epfd(epfd); reg; reg = reg->ep_next)
		if (++n > 100)
			return -1;
	return n;
}

#define FORK_CHECKS 6

/* Send one check's result (one byte) to the parent. */
static void report(int out, bool good)
{
	char c = good;

	if (write(out, &c, 1) != 1)
		_exit(1);
}

/* The child's side of test_forked_mid_update: what a forked child does
 * (forklock_child_reset), then the registry; each check's result goes to
 * OUT as soon as it is known (a crash or a hang loses only the rest). */
static void forked_child(int out, struct ep_reg *a, struct ep_reg *b, struct ep_reg *d, struct ep_reg *half)
{
	struct ep_reg *e;

	alarm(10); /* a walk that loops for ever: killed, and the rest fails */
	forklock_child_reset();
	epreg_lock();
	report(out, bounded_in_epfd(7) == 3);
	report(out, epreg_find(7, 20) == a && epreg_find(7, 21) == b && epreg_find(8, 20) == d);
	report(out, count_of_fd(20) == 2 && count_of_fd(21) == 1);
	report(out, !half->live);
	epreg_free(b);
	report(out, bounded_in_epfd(7) == 2 && epreg_find(7, 21) == NULL);
	epreg_unlock();
	e = reg_new(8, 20, EPOLLIN);
	epreg_lock();
	report(out, e && epreg_find(8, 20) == d && count_of_fd(20) == 3 && bounded_in_epfd(8) == 2);
	epreg_unlock();
	_exit(0);
}

/* A fork while another thread of the parent is inside the registry (ep_lock
 * held, a list half-linked): the child (one thread, the lock reset by
 * forklock) must rebuild the index from the slabs, not walk the lists. */
static void test_forked_mid_update(void)
{
	static const char *what[FORK_CHECKS] = {
		"child: the walk of an instance ends and counts its 3 registrations",
		"child: each registration is found by instance and descriptor",
		"child: per descriptor: 2, 1",
		"child: a registration half-made at the fork (allocated, not yet linked) is freed",
		"child: freeing one afterwards leaves a sound list",
		"child: a new registration links after the rebuilt ones",
	};
	struct ep_reg *a, *b, *c, *d, *half, *saved_next, *saved_prev;
	char r[FORK_CHECKS];
	int pipefd[2], i, status, got = 0;
	pid_t pid;

	a = reg_new(7, 20, EPOLLIN);
	b = reg_new(7, 21, EPOLLIN);
	c = reg_new(7, 22, EPOLLIN);
	d = reg_new(8, 20, EPOLLIN);
	epreg_note_epfd(7);
	epreg_note_epfd(8);
	/* The other thread: inside ep_lock, one registration allocated but not
	 * yet linked, and two lists left half-linked (pointers as a torn update
	 * may leave them: a loop in instance 7's, a head without its tail). */
	epreg_lock();
	half = epreg_alloc();
	half->epfd = 7;
	half->fd = 23;
	saved_next = c->ep_next;
	c->ep_next = a;
	saved_prev = epreg_first_of_fd(20)->fd_prev;
	epreg_first_of_fd(20)->fd_prev = NULL;
	if (pipe(pipefd) == 0 && (pid = fork()) == 0) {
		close(pipefd[0]);
		forked_child(pipefd[1], a, b, d, half);
	}
	close(pipefd[1]);
	while (got < FORK_CHECKS && read(pipefd[0], r + got, 1) == 1)
		got++;
	close(pipefd[0]);
	status = 0;
	waitpid(pid, &status, 0);
	if (got < FORK_CHECKS)
		diag("the child reported %d checks (status %#x%s)", got, status,
		     WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? ": a walk never ended" : "");
	for (i = 0; i < FORK_CHECKS; i++)
		ok(i < got && r[i], "%s", what[i]);
	/* The parent's thread finishes its update. */
	c->ep_next = saved_next;
	epreg_first_of_fd(20)->fd_prev = saved_prev;
	epreg_free(half);
	epreg_unlock();
	epreg_forget_epfd(7);
	epreg_forget_epfd(8);
	ok(!epreg_any() && !epreg_known_epfd(7), "parent: its registry is untouched by the child's rebuild");
}

static void test_epfds(void)
{
	int list[EPREG_MAX_EPFDS], i, n;

	epreg_note_epfd(0);
	epreg_note_epfd(30);
	epreg_note_epfd(31);
	epreg_note_epfd(32);
	epreg_forget_epfd(31);
	ok(epreg_known_epfd(0) && epreg_known_epfd(30) && !epreg_known_epfd(31) && epreg_known_epfd(32),
	   "instances: 0 is a number like any other; a forgotten one is not known, the others stay");
	epreg_note_epfd(33);
	n = epreg_list_epfds(list, EPREG_MAX_EPFDS);
	ok(n == 4 && list[0] == 0 && list[1] == 30 && list[2] == 33 && list[3] == 32,
	   "a new instance takes the free entry; the others never move");
	for (i = 0; i < 2 * EPREG_MAX_EPFDS; i++)
		epreg_note_epfd(100 + i);
	ok(epreg_list_epfds(list, EPREG_MAX_EPFDS) == EPREG_MAX_EPFDS && !epreg_known_epfd(100 + EPREG_MAX_EPFDS),
	   "at most %d instances are remembered", EPREG_MAX_EPFDS);
	for (i = 0; i < 2 * EPREG_MAX_EPFDS; i++)
		epreg_forget_epfd(100 + i);
	epreg_forget_epfd(0);
	epreg_forget_epfd(30);
	epreg_forget_epfd(32);
	epreg_forget_epfd(33);
	ok(epreg_list_epfds(list, EPREG_MAX_EPFDS) == 0, "all forgotten: none listed");
}

static void test_deliverable(void)
{
	struct ep_reg reg;

	memset(&reg, 0, sizeof reg);
	reg.app_events = EPOLLIN;
	ok(epreg_deliverable(&reg, 1, POLLIN | POLLOUT) == EPOLLIN, "level: only the interest (in, not out)");
	ok(epreg_deliverable(&reg, 1, POLLIN) == EPOLLIN, "level: reported again while ready");
	ok(epreg_deliverable(&reg, 1, POLLERR | POLLHUP) == (EPOLLERR | EPOLLHUP), "errors and hang-ups always");
	ok(epreg_deliverable(&reg, 1, 0) == 0, "nothing ready: nothing");

	memset(&reg, 0, sizeof reg);
	reg.app_events = EPOLLIN | EPOLLOUT | EPOLLET;
	reg.last_gen = 6;
	ok(epreg_deliverable(&reg, 7, POLLIN) == EPOLLIN, "edge: new plaintext is reported");
	ok(epreg_deliverable(&reg, 7, POLLIN | POLLOUT) == EPOLLOUT, "edge: the same plaintext is not reported twice");
	ok(epreg_deliverable(&reg, 8, POLLIN) == EPOLLIN, "edge: more plaintext is reported");
	ok(epreg_deliverable(&reg, 8, POLLERR | POLLIN) == (EPOLLERR | EPOLLIN), "edge: a failure is reported");
	ok(epreg_deliverable(&reg, 9, POLLERR | POLLHUP | POLLIN | POLLOUT) == 0, "edge: a failure only once");

	memset(&reg, 0, sizeof reg);
	reg.app_events = EPOLLIN | EPOLLONESHOT;
	ok(epreg_deliverable(&reg, 1, POLLOUT) == 0 && !reg.disarmed, "one-shot: nothing it wants: stays armed");
	ok(epreg_deliverable(&reg, 1, POLLIN) == EPOLLIN && reg.disarmed, "one-shot: fires once and is disarmed");
	ok(epreg_deliverable(&reg, 2, POLLIN | POLLERR) == 0, "one-shot: disarmed, nothing more (not even errors)");
}

static void test_merge(void)
{
	struct epoll_event out[3];
	epoll_data_t x = { .u64 = 42 }, y = { .u64 = 43 }, z = { .u64 = 44 }, w = { .u64 = 45 };
	int n = 0;

	n = epreg_merge_event(out, n, 3, x, EPOLLIN);
	n = epreg_merge_event(out, n, 3, y, EPOLLOUT);
	ok(n == 2 && out[0].data.u64 == 42 && out[0].events == EPOLLIN && out[1].data.u64 == 43,
	   "two registrations, two events, in order");
	n = epreg_merge_event(out, n, 3, x, EPOLLOUT);
	ok(n == 2 && out[0].events == (EPOLLIN | EPOLLOUT), "the same data again: merged into its event");
	n = epreg_merge_event(out, n, 3, z, EPOLLIN);
	n = epreg_merge_event(out, n, 3, w, EPOLLIN);
	ok(n == 3 && out[2].data.u64 == 44, "full: the fourth waits (never written past the array)");
	out[1].events = 0;
	n = epreg_merge_event(out, 2, 3, y, EPOLLHUP);
	ok(n == 3 && out[1].events == 0 && out[2].data.u64 == 43 && out[2].events == EPOLLHUP,
	   "never merged into an entry with no events");
}

int main(void)
{
	test_cookies();
	test_index();
	test_forked_mid_update();
	test_epfds();
	test_deliverable();
	test_merge();
	return done();
}
