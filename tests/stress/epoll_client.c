/* epoll_client - a plain-TCP HTTP client driven by epoll, the way event-loop
 * programs (wrk, nginx, redis' ae) drive theirs.  Knows nothing about TLS:
 * tlsshim upgrades it, and the test checks on the server's side what went
 * over the wire.  Every connection asks 127.0.0.1:PORT for /bytes/N (N
 * distinct per connection within a run) and checks the answer byte by
 * byte (tserver's http mode: byte i of the body is i % 251).
 *
 *   epoll_client threads PORT T C R
 *       T threads, each with its OWN epoll instance driving C non-blocking
 *       connections at once, R rounds: connect -> EPOLLOUT -> write the
 *       request -> EPOLL_CTL_MOD to EPOLLIN -> read 4 KiB per event (level-
 *       triggered: the rest must be reported again) until EOF -> DEL, close.
 *       One connection in four is registered BEFORE connect() (the library
 *       adopts the registration when it upgrades the socket; here the later
 *       EPOLL_CTL_MOD would hide a missed adoption, edge mode would not).
 *       data.ptr = the connection; any other value, or events not asked
 *       for, or events for a finished connection, are problems.
 *   epoll_client shared PORT T S R
 *       One epoll instance, T threads waiting on it (maxevents 4), S slots
 *       each making R connections one after the other; every registration
 *       EPOLLONESHOT, re-armed with EPOLL_CTL_MOD after each event; a
 *       finished connection is closed with EPOLL_CTL_DEL (even generation) or
 *       without (odd).  data.u64 = magic|slot|generation.  Checks: an event
 *       never arrives for a disarmed registration (nor twice at once), never
 *       for an earlier generation, never with events not asked for.
 *   epoll_client edge PORT C R
 *       One thread, C connections at once, R rounds, registered once with
 *       EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET (as nginx does), never modified;
 *       every other one registered BEFORE connect() (as nginx connects to an
 *       upstream); after each edge write / read until EAGAIN; closed without
 *       DEL.  A lost edge leaves a connection stuck (fails on the deadline).
 *   epoll_client close PORT
 *       Upgraded sockets closed while registered, without EPOLL_CTL_DEL:
 *       afterwards epoll_wait on the same instance must return only events
 *       whose data is a live registration's (a pipe's marker), never the
 *       closed socket's and never any other value (such as the library's
 *       own cookie).  Six cases, see run_close().
 *
 * Prints one result line ("MODE ok N bad 0 ..." or "close ok ...") and exits
 * 0 only if everything was right; problems are described on stderr. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 4096
#ifndef MAX_REPORTS
#define MAX_REPORTS 20 /* problems described on stderr; the rest only counted */
#endif
#define DEADLINE_S 20

static int port;
static atomic_int good, bad, problems, spurious, next_id;
static long long deadline_ns;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void problem(const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	if (atomic_fetch_add(&problems, 1) >= MAX_REPORTS)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "epoll_client: %s\n", buf);
}

static bool timed_out(void)
{
	return now_ns() > deadline_ns;
}

/* ---- one HTTP exchange, non-blocking ---- */

enum state { CONNECTING, WRITING, READING, DONE, FAILED };

struct hconn {
	int fd;
	enum state state;
	uint32_t interest;   /* what the registration asks for now */
	size_t body;         /* expected body length */
	char req[128];
	size_t req_len, req_off;
	char *buf;
	size_t len, cap;
	uint64_t marker;
	unsigned reads;
};

static struct sockaddr_in server_addr(void)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

/* A fresh exchange asking for BASE + a per-connection amount of bytes. */
static void hconn_init_body(struct hconn *c, size_t base)
{
	int id = atomic_fetch_add(&next_id, 1);

	free(c->buf);
	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->body = base + (size_t)id * 97;
	c->req_len = (size_t)snprintf(c->req, sizeof c->req,
				      "GET /bytes/%zu HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
				      c->body);
}

static void hconn_init(struct hconn *c)
{
	hconn_init_body(c, 16000);
}

/* A non-blocking socket, connect() started.  0, or -1 (reported). */
static int hconn_connect(struct hconn *c, bool sock_nonblock)
{
	struct sockaddr_in sin = server_addr();

	if (c->fd < 0) {
		c->fd = socket(AF_INET, SOCK_STREAM | (sock_nonblock ? SOCK_NONBLOCK : 0), 0);
		if (c->fd < 0) {
			problem("socket: %s", strerror(errno));
			return -1;
		}
		if (!sock_nonblock && fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) {
			problem("fcntl O_NONBLOCK: %s", strerror(errno));
			return -1;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof sin) < 0 && errno != EINPROGRESS) {
		problem("connect to 127.0.0.1:%d: %s", port, strerror(errno));
		c->state = FAILED;
		return -1;
	}
	c->state = CONNECTING;
	return 0;
}

static void hconn_fail(struct hconn *c, const char *what, int err)
{
	problem("connection /bytes/%zu (fd %d): %s: %s", c->body, c->fd, what, err ? strerror(err) : "");
	c->state = FAILED;
}

/* Writable (or an error): finish connecting, write what we can. */
static void hconn_on_out(struct hconn *c)
{
	if (c->state == CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			hconn_fail(c, "connect (SO_ERROR)", err ? err : errno);
			return;
		}
		c->state = WRITING;
	}
	while (c->state == WRITING) {
		ssize_t n = write(c->fd, c->req + c->req_off, c->req_len - c->req_off);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			hconn_fail(c, "write", n < 0 ? errno : 0);
			return;
		}
		c->req_off += (size_t)n;
		if (c->req_off == c->req_len)
			c->state = READING;
	}
}

/* 0 if BUF holds a complete 200 answer with the expected body. */
static int check_answer(const struct hconn *c)
{
	const char *end, *cl;
	size_t head, i;

	if (c->len < 12 || memcmp(c->buf, "HTTP/1.1 200", 12) != 0)
		return -1;
	end = memmem(c->buf, c->len, "\r\n\r\n", 4);
	if (!end)
		return -1;
	head = (size_t)(end + 4 - c->buf);
	cl = memmem(c->buf, head, "Content-Length: ", 16);
	if (!cl || strtoull(cl + 16, NULL, 10) != c->body || c->len - head != c->body)
		return -1;
	for (i = 0; i < c->body; i++)
		if ((unsigned char)c->buf[head + i] != i % 251)
			return -1;
	return 0;
}

/* Readable: read one chunk (level-triggered) or until EAGAIN (edge).  An
 * event after which the very first read says EAGAIN counts as spurious. */
static void hconn_on_in(struct hconn *c, bool until_eagain)
{
	bool first = true;

	for (;;) {
		ssize_t n;

		if (c->cap - c->len < CHUNK) {
			char *b = realloc(c->buf, c->cap + 65536);

			if (!b) {
				hconn_fail(c, "out of memory", 0);
				return;
			}
			c->buf = b;
			c->cap += 65536;
		}
		n = read(c->fd, c->buf + c->len, CHUNK);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (first)
				atomic_fetch_add(&spurious, 1);
			return;
		}
		if (n < 0) {
			hconn_fail(c, "read", errno);
			return;
		}
		first = false;
		c->reads++;
		if (n == 0) {
			if (check_answer(c) == 0) {
				c->state = DONE;
			} else {
				problem("connection /bytes/%zu: incomplete or wrong answer (%zu bytes)", c->body, c->len);
				c->state = FAILED;
			}
			return;
		}
		c->len += (size_t)n;
		if (!until_eagain)
			return;
	}
}

/* Events beyond the registration's interest (EPOLLERR and EPOLLHUP are always
 * possible) are a library bug: the program never asked for them. */
static bool unasked(uint32_t events, uint32_t interest)
{
	return (events & ~(interest | EPOLLERR | EPOLLHUP) & (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI)) != 0;
}

static int ep_ctl(int ep, int op, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.u64 = data;
	if (epoll_ctl(ep, op, fd, &ev) < 0) {
		problem("epoll_ctl(%d, %s, fd %d): %s", ep,
			op == EPOLL_CTL_ADD ? "ADD" : op == EPOLL_CTL_MOD ? "MOD" : "DEL", fd, strerror(errno));
		return -1;
	}
	return 0;
}

static void count_result(struct hconn *c)
{
	atomic_fetch_add(c->state == DONE ? &good : &bad, 1);
}

/* ---- threads: one epoll instance per thread, level-triggered ---- */

static int t_conns, t_rounds;

static void *threads_worker(void *arg)
{
	struct hconn *cs = calloc((size_t)t_conns, sizeof *cs);
	int ep = epoll_create1(EPOLL_CLOEXEC), r, i;

	(void)arg;
	if (!cs || ep < 0) {
		problem("epoll_create1/calloc: %s", strerror(errno));
		atomic_fetch_add(&bad, t_conns * t_rounds);
		free(cs);
		return NULL;
	}
	for (r = 0; r < t_rounds; r++) {
		int active = 0;

		for (i = 0; i < t_conns; i++) {
			struct hconn *c = &cs[i];
			bool before = i % 4 == 1;

			hconn_init(c);
			c->interest = EPOLLOUT;
			if (before) {
				/* Registered while still a plain, unconnected socket. */
				c->fd = socket(AF_INET, SOCK_STREAM, 0);
				if (c->fd < 0 || fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0 ||
				    ep_ctl(ep, EPOLL_CTL_ADD, c->fd, c->interest, (uint64_t)(uintptr_t)c) < 0 ||
				    hconn_connect(c, false) < 0) {
					c->state = FAILED;
					continue;
				}
			} else if (hconn_connect(c, false) < 0 ||
				   ep_ctl(ep, EPOLL_CTL_ADD, c->fd, c->interest, (uint64_t)(uintptr_t)c) < 0) {
				c->state = FAILED;
				continue;
			}
			active++;
		}
		while (active > 0 && !timed_out()) {
			struct epoll_event evs[8];
			int n = epoll_wait(ep, evs, 8, 1000), k;

			if (n < 0 && errno != EINTR) {
				problem("epoll_wait: %s", strerror(errno));
				break;
			}
			for (k = 0; k < n; k++) {
				uintptr_t off = (uintptr_t)evs[k].data.ptr - (uintptr_t)cs;
				struct hconn *c = &cs[off / sizeof *cs];
				enum state before;

				if (off >= (uintptr_t)t_conns * sizeof *cs || off % sizeof *cs != 0) {
					problem("threads: event with unknown data 0x%" PRIx64, evs[k].data.u64);
					continue;
				}
				if (c->state == DONE || c->state == FAILED) {
					problem("threads: event 0x%x for a finished connection (fd %d)", evs[k].events, c->fd);
					continue;
				}
				if (unasked(evs[k].events, c->interest))
					problem("threads: events 0x%x on fd %d, interest 0x%x", evs[k].events, c->fd,
						c->interest);
				before = c->state;
				if (c->state == CONNECTING || c->state == WRITING)
					hconn_on_out(c);
				else if (c->state == READING)
					hconn_on_in(c, false);
				if (before != READING && c->state == READING) {
					c->interest = EPOLLIN;
					if (ep_ctl(ep, EPOLL_CTL_MOD, c->fd, c->interest, (uint64_t)(uintptr_t)c) < 0)
						c->state = FAILED;
				}
				if (c->state == DONE || c->state == FAILED) {
					/* As wrk does: unregister, then close. */
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					close(c->fd);
					active--;
				}
			}
		}
		for (i = 0; i < t_conns; i++) {
			if (cs[i].state != DONE && cs[i].state != FAILED) {
				problem("threads: /bytes/%zu stuck in state %d (%zu bytes read)", cs[i].body,
					cs[i].state, cs[i].len);
				close(cs[i].fd);
				cs[i].state = FAILED;
			}
			count_result(&cs[i]);
		}
	}
	for (i = 0; i < t_conns; i++)
		free(cs[i].buf);
	free(cs);
	close(ep);
	return NULL;
}

/* ---- shared: one epoll instance, many threads, EPOLLONESHOT ---- */

#define SHARED_MAGIC 0x5e0aULL

struct slot {
	struct hconn c;
	atomic_uint gen;
	atomic_bool busy;    /* a thread is handling an event of this slot */
	atomic_bool armed;   /* the one-shot registration may fire */
	int rounds_left;
};

static struct slot *slots;
static int s_slots, s_rounds, shared_ep;
static atomic_int s_finished;

static uint64_t slot_marker(int i, unsigned gen)
{
	return SHARED_MAGIC << 48 | (uint64_t)i << 24 | gen;
}

/* Start the slot's next connection and register it (one-shot, EPOLLOUT). */
static int slot_start(int i)
{
	struct slot *s = &slots[i];
	unsigned gen = atomic_fetch_add(&s->gen, 1) + 1;

	hconn_init(&s->c);
	s->c.interest = EPOLLOUT | EPOLLONESHOT;
	s->c.marker = slot_marker(i, gen);
	if (hconn_connect(&s->c, true) < 0)
		return -1;
	atomic_store(&s->armed, true);
	atomic_store(&s->busy, false);
	if (ep_ctl(shared_ep, EPOLL_CTL_ADD, s->c.fd, s->c.interest, s->c.marker) < 0) {
		close(s->c.fd);
		return -1;
	}
	return 0;
}

static void slot_finish(int i)
{
	struct slot *s = &slots[i];

	count_result(&s->c);
	atomic_fetch_add(&s_finished, 1);
	atomic_store(&s->busy, false);
}

static void shared_event(struct epoll_event *ev)
{
	uint64_t d = ev->data.u64;
	unsigned idx = (unsigned)(d >> 24) & 0xffffff, gen = (unsigned)d & 0xffffff;
	struct slot *s;
	struct hconn *c;
	enum state before;

	if (d >> 48 != SHARED_MAGIC || idx >= (unsigned)s_slots) {
		problem("shared: event with unknown data 0x%" PRIx64, d);
		return;
	}
	s = &slots[idx];
	if (atomic_exchange(&s->busy, true)) {
		problem("shared: slot %u: an EPOLLONESHOT event while another thread handles the last one", idx);
		return;
	}
	if (gen != (atomic_load(&s->gen) & 0xffffff)) {
		problem("shared: slot %u: event for generation %u, current is %u (a closed socket's event)", idx,
			gen, atomic_load(&s->gen));
		atomic_store(&s->busy, false);
		return;
	}
	if (!atomic_exchange(&s->armed, false)) {
		problem("shared: slot %u: event 0x%x for a disarmed EPOLLONESHOT registration", idx, ev->events);
		atomic_store(&s->busy, false);
		return;
	}
	c = &s->c;
	if (unasked(ev->events, c->interest))
		problem("shared: slot %u: events 0x%x, interest 0x%x", idx, ev->events, c->interest);
	before = c->state;
	if (c->state == CONNECTING || c->state == WRITING)
		hconn_on_out(c);
	else if (c->state == READING)
		hconn_on_in(c, false);
	if (c->state == DONE || c->state == FAILED) {
		/* Half the connections are closed while (disarmed but) registered. */
		if ((atomic_load(&s->gen) & 1) == 0)
			epoll_ctl(shared_ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		if (--s->rounds_left > 0) {
			count_result(c);
			if (slot_start((int)idx) < 0) {
				s->c.state = FAILED;
				s->rounds_left = 0;
				slot_finish((int)idx);
			}
		} else {
			slot_finish((int)idx);
		}
		return;
	}
	if (before != READING && c->state == READING)
		c->interest = EPOLLIN | EPOLLONESHOT;
	atomic_store(&s->armed, true);
	atomic_store(&s->busy, false);
	if (ep_ctl(shared_ep, EPOLL_CTL_MOD, c->fd, c->interest, c->marker) < 0)
		problem("shared: slot %u: re-arm failed", idx);
}

static void *shared_worker(void *arg)
{
	(void)arg;
	while (atomic_load(&s_finished) < s_slots && !timed_out()) {
		struct epoll_event evs[4];
		int n = epoll_wait(shared_ep, evs, 4, 100), k;

		if (n < 0 && errno != EINTR) {
			problem("epoll_wait: %s", strerror(errno));
			break;
		}
		for (k = 0; k < n; k++)
			shared_event(&evs[k]);
	}
	return NULL;
}

static int run_shared(int threads)
{
	pthread_t th[64];
	int i;

	slots = calloc((size_t)s_slots, sizeof *slots);
	shared_ep = epoll_create1(0);
	if (!slots || shared_ep < 0)
		return -1;
	for (i = 0; i < s_slots; i++) {
		slots[i].c.fd = -1;
		slots[i].rounds_left = s_rounds;
		if (slot_start(i) < 0) {
			slots[i].c.state = FAILED;
			atomic_fetch_add(&bad, s_rounds);
			atomic_fetch_add(&s_finished, 1);
		}
	}
	for (i = 0; i < threads; i++)
		if (pthread_create(&th[i], NULL, shared_worker, NULL) != 0)
			return -1;
	for (i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < s_slots; i++) {
		struct hconn *c = &slots[i].c;

		if (slots[i].rounds_left > 0 && c->state != DONE && c->state != FAILED) {
			problem("shared: slot %d: /bytes/%zu stuck in state %d (%zu bytes read)", i, c->body, c->state,
				c->len);
			atomic_fetch_add(&bad, slots[i].rounds_left);
		}
		free(c->buf);
	}
	free(slots);
	close(shared_ep);
	return 0;
}

/* ---- edge: EPOLLET, registered once ---- */

static void run_edge(int n_conns, int rounds)
{
	struct hconn *cs = calloc((size_t)n_conns, sizeof *cs);
	int ep = epoll_create1(0), r, i;
	unsigned gen = 0;

	if (!cs || ep < 0) {
		problem("epoll_create1/calloc: %s", strerror(errno));
		atomic_fetch_add(&bad, n_conns * rounds);
		free(cs);
		return;
	}
	for (r = 0; r < rounds; r++) {
		int active = 0;

		for (i = 0; i < n_conns; i++) {
			struct hconn *c = &cs[i];

			hconn_init(c);
			c->interest = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
			/* The slot index, and a generation: an event for an earlier
			 * socket that had the same descriptor number shows. */
			c->marker = (uint64_t)++gen << 32 | (uint32_t)i;
			if (i % 2 == 1) {
				/* As nginx connects upstream: registered, then connect(). */
				c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
				if (c->fd < 0 || ep_ctl(ep, EPOLL_CTL_ADD, c->fd, c->interest, c->marker) < 0 ||
				    hconn_connect(c, true) < 0) {
					c->state = FAILED;
					continue;
				}
			} else if (hconn_connect(c, true) < 0 ||
				   ep_ctl(ep, EPOLL_CTL_ADD, c->fd, c->interest, c->marker) < 0) {
				c->state = FAILED;
				continue;
			}
			active++;
		}
		while (active > 0 && !timed_out()) {
			struct epoll_event evs[16];
			int n = epoll_wait(ep, evs, 16, 1000), k;

			if (n < 0 && errno != EINTR) {
				problem("epoll_wait: %s", strerror(errno));
				break;
			}
			for (k = 0; k < n; k++) {
				uint32_t idx = (uint32_t)evs[k].data.u64, e = evs[k].events;
				struct hconn *c = idx < (uint32_t)n_conns ? &cs[idx] : NULL;

				if (!c || c->marker != evs[k].data.u64) {
					problem("edge: event 0x%x with unknown or stale data 0x%" PRIx64, e,
						evs[k].data.u64);
					continue;
				}
				if (c->state == DONE || c->state == FAILED) {
					problem("edge: event 0x%x for a finished connection", e);
					continue;
				}
				if (unasked(e, c->interest))
					problem("edge: events 0x%x, interest 0x%x", e, c->interest);
				if ((e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) &&
				    (c->state == CONNECTING || c->state == WRITING))
					hconn_on_out(c);
				if ((e & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) && c->state == READING)
					hconn_on_in(c, true);
				if (c->state == DONE || c->state == FAILED) {
					close(c->fd); /* as nginx does: no EPOLL_CTL_DEL */
					active--;
				}
			}
		}
		for (i = 0; i < n_conns; i++) {
			if (cs[i].state != DONE && cs[i].state != FAILED) {
				problem("edge: /bytes/%zu stuck in state %d (%zu bytes read): a lost edge", cs[i].body,
					cs[i].state, cs[i].len);
				close(cs[i].fd);
				cs[i].state = FAILED;
			}
			count_result(&cs[i]);
		}
	}
	for (i = 0; i < n_conns; i++)
		free(cs[i].buf);
	free(cs);
	close(ep);
}

/* ---- close: registered sockets closed without EPOLL_CTL_DEL ---- */

#define M_PIPE 0x5049504550495045ULL   /* "PIPEPIPE" */
#define M_DUP  0xd0d0000000000001ULL
#define M_NODUP 0xd0d0000000000002ULL
#define M_OLD  0xd0d0000000000003ULL
#define M_NEW  0xd0d0000000000004ULL
#define M_HS   0xd0d0000000000005ULL
#define M_RACE 0xd0d0000000000006ULL

static int close_checks;

/* A blocking, upgraded connection with its request written.  BIG: an answer
 * far larger than what the library reads ahead, so that the kernel holds
 * unread data (and reports the socket readable) until the program reads. */
static int dial_and_ask(struct hconn *c, bool big)
{
	struct sockaddr_in sin = server_addr();
	size_t off = 0;

	hconn_init_body(c, big ? 262144 : 16000);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		problem("close: connect to 127.0.0.1:%d: %s", port, strerror(errno));
		return -1;
	}
	while (off < c->req_len) {
		ssize_t n = write(c->fd, c->req + off, c->req_len - off);

		if (n <= 0) {
			problem("close: write: %s", strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Read the whole answer from FD (blocking) into C and check it. */
static int read_whole(struct hconn *c, int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags >= 0 && (flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	c->fd = fd;
	c->state = READING;
	while (c->state == READING)
		hconn_on_in(c, false);
	count_result(c);
	return c->state == DONE ? 0 : -1;
}

/* Wait up to MS for events: every one must carry the data *ALLOWED (with
 * ALLOWED NULL, no event may come at all).  Returns how many came, or -1
 * after a problem. */
static int expect_only(int ep, int ms, const char *what, const uint64_t *allowed)
{
	long long end = now_ns() + (long long)ms * 1000000;
	int hits = 0, bad_seen = 0;

	while (now_ns() < end) {
		struct epoll_event evs[16];
		int left = (int)((end - now_ns()) / 1000000), n, k;

		n = epoll_wait(ep, evs, 16, left > 50 ? 50 : left);
		if (n < 0 && errno != EINTR) {
			problem("close: %s: epoll_wait: %s", what, strerror(errno));
			return -1;
		}
		for (k = 0; k < n; k++) {
			if (allowed && evs[k].data.u64 == *allowed) {
				hits++;
				continue;
			}
			problem("close: %s: epoll_wait returned events 0x%x with data 0x%016" PRIx64
				" (not a live registration)", what, evs[k].events, evs[k].data.u64);
			bad_seen = 1;
		}
		if (n > 0)
			usleep(10000); /* a level-triggered pipe stays readable: do not spin */
	}
	close_checks++;
	return bad_seen ? -1 : hits;
}

/* Wait up to MS for the event with data WANT; nothing else may come. */
static int wait_for(int ep, int ms, const char *what, uint64_t want)
{
	long long end = now_ns() + (long long)ms * 1000000;

	while (now_ns() < end) {
		struct epoll_event evs[16];
		int n = epoll_wait(ep, evs, 16, 100), k, got = 0;

		for (k = 0; k < n; k++) {
			if (evs[k].data.u64 == want)
				got = 1;
			else
				problem("close: %s: unexpected event 0x%x data 0x%016" PRIx64, what, evs[k].events,
					evs[k].data.u64);
		}
		if (got)
			return 0;
	}
	problem("close: %s: no event with data 0x%016" PRIx64 " within %d ms", what, want, ms);
	return -1;
}

struct race {
	int ep;
	atomic_llong closed_at;  /* when close() returned, 0 before */
	long long until;
	int bad;
};

/* Wait on the shared instance while the main thread closes a registered
 * socket: M_RACE may come from a wait that began before close() returned,
 * never from a later one; nothing else may come at all. */
static void *race_waiter(void *arg)
{
	struct race *r = arg;

	while (now_ns() < r->until) {
		struct epoll_event evs[8];
		long long began = now_ns();
		int n = epoll_wait(r->ep, evs, 8, 20), k;
		long long closed = atomic_load(&r->closed_at);

		for (k = 0; k < n; k++) {
			if (evs[k].data.u64 == M_RACE && (!closed || began < closed))
				continue;
			problem("close: race: epoll_wait (begun %s close) returned events 0x%x with data 0x%016" PRIx64,
				closed && began >= closed ? "after" : "before", evs[k].events, evs[k].data.u64);
			r->bad = 1;
		}
		if (n > 0)
			usleep(1000);
	}
	return NULL;
}

static int run_close(void)
{
	int ep = epoll_create1(0), p[2], fd2, oldnum, failures = 0;
	struct hconn c;
	char x = 'x';
	const uint64_t pipe_marker = M_PIPE;

	memset(&c, 0, sizeof c);
	if (ep < 0 || pipe2(p, O_NONBLOCK) < 0)
		return -1;

	/* 1. dup(), then close() while registered: the socket lives on (the
	 * kernel would go on reporting it), the registration must not. */
	if (dial_and_ask(&c, true) < 0 || ep_ctl(ep, EPOLL_CTL_ADD, c.fd, EPOLLIN, M_DUP) < 0 ||
	    wait_for(ep, 5000, "dup: answer arrives", M_DUP) < 0)
		return -1;
	fd2 = dup(c.fd);
	if (fd2 < 0)
		return -1;
	close(c.fd);
	if (ep_ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, M_PIPE) < 0 || write(p[1], &x, 1) != 1)
		return -1;
	if (expect_only(ep, 150, "dup: pipe readable", &pipe_marker) < 1) {
		problem("close: dup: the pipe's event did not come alone");
		failures++;
	}
	if (read(p[0], &x, 1) != 1)
		return -1;
	if (expect_only(ep, 300, "dup: nothing ready", NULL) != 0)
		failures++;
	/* The connection itself lived on through the duplicate. */
	if (read_whole(&c, fd2) < 0) {
		problem("close: dup: the answer read through the duplicate is incomplete");
		failures++;
	}
	close(fd2);

	/* 2. No duplicate: the answer is waiting unread when the program closes
	 * (the library keeps the socket lingering until the server closes). */
	if (dial_and_ask(&c, false) < 0 || ep_ctl(ep, EPOLL_CTL_ADD, c.fd, EPOLLIN | EPOLLRDHUP, M_NODUP) < 0 ||
	    wait_for(ep, 5000, "nodup: answer arrives", M_NODUP) < 0)
		return -1;
	close(c.fd);
	if (write(p[1], &x, 1) != 1 || expect_only(ep, 150, "nodup: pipe readable", &pipe_marker) < 1) {
		problem("close: nodup: the pipe's event did not come alone");
		failures++;
	}
	if (read(p[0], &x, 1) != 1)
		return -1;
	if (expect_only(ep, 300, "nodup: nothing ready", NULL) != 0)
		failures++;

	/* 3. The descriptor number comes back as another upgraded socket,
	 * registered with new data: its events carry only the new data. */
	if (dial_and_ask(&c, false) < 0 || ep_ctl(ep, EPOLL_CTL_ADD, c.fd, EPOLLIN, M_OLD) < 0 ||
	    wait_for(ep, 5000, "reuse: first answer arrives", M_OLD) < 0)
		return -1;
	oldnum = c.fd;
	close(c.fd);
	if (dial_and_ask(&c, false) < 0)
		return -1;
	if (c.fd != oldnum) {
		if (dup2(c.fd, oldnum) < 0)
			return -1;
		close(c.fd);
		c.fd = oldnum;
	}
	if (ep_ctl(ep, EPOLL_CTL_ADD, c.fd, EPOLLIN, M_NEW) < 0 ||
	    wait_for(ep, 5000, "reuse: second answer arrives under the new data", M_NEW) < 0)
		failures++;
	if (read_whole(&c, c.fd) < 0) {
		problem("close: reuse: the second answer is incomplete");
		failures++;
	}
	close(c.fd);
	if (expect_only(ep, 300, "reuse: nothing after close", NULL) != 0)
		failures++;

	/* 4. Closed in the middle of its handshake: without a duplicate (the
	 * connection ends), then with one that finishes the exchange. */
	hconn_init(&c);
	if (hconn_connect(&c, true) < 0 || ep_ctl(ep, EPOLL_CTL_ADD, c.fd, EPOLLOUT | EPOLLIN, M_HS) < 0)
		return -1;
	close(c.fd);
	if (expect_only(ep, 300, "handshake: nothing after close", NULL) != 0)
		failures++;
	hconn_init(&c);
	if (hconn_connect(&c, true) < 0 || ep_ctl(ep, EPOLL_CTL_ADD, c.fd, EPOLLOUT | EPOLLIN, M_HS) < 0)
		return -1;
	fd2 = dup(c.fd);
	if (fd2 < 0)
		return -1;
	close(c.fd);
	if (expect_only(ep, 300, "handshake+dup: nothing after close", NULL) != 0)
		failures++;
	/* The duplicate, blocking now, writes the request and reads the answer. */
	fcntl(fd2, F_SETFL, fcntl(fd2, F_GETFL) & ~O_NONBLOCK);
	c.fd = fd2;
	c.state = CONNECTING;
	hconn_on_out(&c);
	if (c.state != READING || read_whole(&c, fd2) < 0) {
		problem("close: handshake+dup: no whole answer through the duplicate");
		failures++;
	}
	close(fd2);

	/* 5. Another thread waits on the instance while this one closes a
	 * registered socket whose answer is on its way; a duplicate keeps the
	 * socket (and the kernel's readiness for it) alive meanwhile. */
	{
		struct race r = { .ep = ep, .until = now_ns() + 400000000LL };
		pthread_t th;

		if (dial_and_ask(&c, true) < 0 || ep_ctl(ep, EPOLL_CTL_ADD, c.fd, EPOLLIN | EPOLLRDHUP, M_RACE) < 0 ||
		    (fd2 = dup(c.fd)) < 0)
			return -1;
		if (pthread_create(&th, NULL, race_waiter, &r) != 0)
			return -1;
		usleep(2000); /* the waiter is in epoll_wait; the answer is on its way */
		close(c.fd);
		atomic_store(&r.closed_at, now_ns());
		pthread_join(th, NULL);
		close_checks++;
		if (r.bad)
			failures++;
		if (read_whole(&c, fd2) < 0) {
			problem("close: race: the answer read through the duplicate is incomplete");
			failures++;
		}
		close(fd2);
	}
	free(c.buf);
	close(p[0]);
	close(p[1]);
	close(ep);
	return failures ? -1 : 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int ret = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	deadline_ns = now_ns() + DEADLINE_S * 1000000000LL;
	if (argc > 2)
		port = atoi(argv[2]);
	if (strcmp(mode, "threads") == 0 && argc == 6) {
		int t = atoi(argv[3]), i;
		pthread_t th[64];

		t_conns = atoi(argv[4]);
		t_rounds = atoi(argv[5]);
		if (t < 1 || t > 64 || t_conns < 1 || t_rounds < 1)
			return 2;
		for (i = 0; i < t; i++)
			if (pthread_create(&th[i], NULL, threads_worker, NULL) != 0)
				return 1;
		for (i = 0; i < t; i++)
			pthread_join(th[i], NULL);
	} else if (strcmp(mode, "shared") == 0 && argc == 6) {
		int t = atoi(argv[3]);

		s_slots = atoi(argv[4]);
		s_rounds = atoi(argv[5]);
		if (t < 1 || t > 64 || s_slots < 1 || s_slots > 4096 || s_rounds < 1)
			return 2;
		if (run_shared(t) < 0)
			ret = 1;
	} else if (strcmp(mode, "edge") == 0 && argc == 5) {
		int n = atoi(argv[3]), r = atoi(argv[4]);

		if (n < 1 || n > 1024 || r < 1)
			return 2;
		run_edge(n, r);
	} else if (strcmp(mode, "close") == 0 && argc == 3) {
		if (run_close() < 0)
			ret = 1;
	} else {
		fprintf(stderr, "usage: epoll_client threads PORT T C R | shared PORT T S R | edge PORT C R | close PORT\n");
		return 2;
	}
	if (strcmp(mode, "close") == 0)
		printf("close %s checks %d answers %d problems %d\n", ret == 0 && atomic_load(&problems) == 0 ? "ok" : "FAILED",
		       close_checks, atomic_load(&good), atomic_load(&problems));
	else
		printf("%s ok %d bad %d problems %d spurious %d\n", mode, atomic_load(&good), atomic_load(&bad),
		       atomic_load(&problems), atomic_load(&spurious));
	return ret == 0 && atomic_load(&bad) == 0 && atomic_load(&problems) == 0 ? 0 : 1;
}
