/* epoll_test.c - the epoll registry without sockets (src/epoll_reg.c):
 * cookies, the index per instance and per descriptor, and the rules that
 * turn a connection's readiness into the events the program sees. */
#include "epoll_reg.h"
#include "tap.h"

#include <poll.h>
#include <stdint.h>
#include <string.h>

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
	test_deliverable();
	test_merge();
	return done();
}
