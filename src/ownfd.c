/* ownfd.c - the descriptors the library keeps for itself (ownfd.h): where
 * they live, how they move out of the program's way, and the pins that keep
 * a number from going back to the program while one of our threads is about
 * to write to it. */
#include "ownfd.h"
#include "real.h"
#include "owner.h"
#include "forklock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How long a number's taker waits for pinned users: a user is pinned from
 * loading the number to entering write(), microseconds unless it is
 * preempted or a signal handler runs in between.  One already inside the
 * system call is safe anyway (the kernel holds the file, not the number).
 * Past this bound the taker goes on rather than hang the program's close(). */
#define OWNFD_WAIT_STEPS 20000 /* x 100 us = 2 s */

/* ownfd_lock: changes of fds[] (ownfd_set, ownfd_protect) and the waits
 * for pinned users.  Under it: real.fcntl/real.close, nanosleep.  Leaf. */
FORKLOCK_MUTEX(ownfd_lock);
static atomic_int fds[OWNFD_COUNT] = { -1, -1, -1 };
static char keylog_path[4096];

/* The pins: users count in pins[epoch & 1].  A count carries the pid of
 * the process it belongs to (pid << 32 | count): a forked child inherits
 * the parent's counts of threads it does not have, and must not wait for
 * them (it starts again from zero at its first pin or wait). */
static atomic_uint epoch;
static _Atomic uint64_t pins[2];

/* The live count in V for this process. */
static uint32_t pin_count(uint64_t v, pid_t self)
{
	return (pid_t)(v >> 32) == self ? (uint32_t)v : 0;
}

/* Add DELTA (+1 or -1) to pins[SLOT] for this process. */
static void pin_add(int slot, int delta)
{
	pid_t self = owner_pid();
	uint64_t v = atomic_load(&pins[slot]), nv;

	do {
		nv = (uint64_t)(uint32_t)self << 32 | (uint32_t)(pin_count(v, self) + delta);
	} while (!atomic_compare_exchange_weak(&pins[slot], &v, nv));
}

int ownfd_pin(enum ownfd which, int *pin)
{
	*pin = (int)(atomic_load(&epoch) & 1);
	pin_add(*pin, 1);
	/* Loaded after the count is up: a taker that stored a new number
	 * after this load sees the count (all seq_cst). */
	return atomic_load(&fds[which]);
}

void ownfd_unpin(int pin)
{
	pin_add(pin, -1);
}

/* After a number was taken out of fds[]: wait until every user that may
 * have loaded it is done.  Users that pin from now on count in the other
 * slot and load the new number.  Caller holds ownfd_lock. */
static void wait_for_pinned(void)
{
	int slot = (int)(atomic_fetch_add(&epoch, 1) & 1), step;
	struct timespec pause = { 0, 100000 };
	pid_t self = owner_pid();

	for (step = 0; step < OWNFD_WAIT_STEPS; step++) {
		if (pin_count(atomic_load(&pins[slot]), self) == 0)
			return;
		nanosleep(&pause, NULL);
	}
}

int ownfd_get(enum ownfd which)
{
	return atomic_load(&fds[which]);
}

int ownfd_copy_high(int fd)
{
	int high;

	if (fd < 0)
		return -1;
	high = real.fcntl(fd, F_DUPFD_CLOEXEC, OWNFD_MIN);
	if (high < 0)
		high = real.fcntl(fd, F_DUPFD_CLOEXEC, 3);
	return high;
}

/* Start-up runs before libc is resolved: raw system calls only.  Nothing
 * is pinned yet, nothing to replace. */
void ownfd_copy_stderr_early(void)
{
	int fd = (int)syscall(SYS_fcntl, 2, F_DUPFD_CLOEXEC, OWNFD_MIN);

	if (fd < 0)
		fd = (int)syscall(SYS_fcntl, 2, F_DUPFD_CLOEXEC, 3);
	ownfd_hold_early(OWNFD_LOG, fd);
}

void ownfd_hold_early(enum ownfd which, int fd)
{
	atomic_store(&fds[which], fd);
}

void ownfd_set(enum ownfd which, int fd)
{
	int old;

	real_init();
	pthread_mutex_lock(&ownfd_lock);
	old = atomic_exchange(&fds[which], fd);
	if (old >= 0 && old != fd) {
		wait_for_pinned();
		real.close(old);
	}
	pthread_mutex_unlock(&ownfd_lock);
}

void ownfd_protect(int fd)
{
	int which;
	bool moved = false;

	if (fd < 0)
		return;
	for (which = 0; which < OWNFD_COUNT; which++)
		if (fd == atomic_load(&fds[which]))
			break;
	if (which == OWNFD_COUNT)
		return;
	pthread_mutex_lock(&ownfd_lock);
	for (which = 0; which < OWNFD_COUNT; which++) {
		if (fd == atomic_load(&fds[which])) {
			/* -1 if no number is left: lost, as the program wants FD. */
			atomic_store(&fds[which], real.fcntl(fd, F_DUPFD_CLOEXEC, fd + 1));
			moved = true;
		}
	}
	/* The program closes or replaces FD itself, once we return. */
	if (moved)
		wait_for_pinned();
	pthread_mutex_unlock(&ownfd_lock);
}

int ownfd_open_keylog(const char *path)
{
	int opened, fd, copy_errno;

	real_init();
	opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (opened < 0)
		return -errno;
	/* An existing file keeps its mode: make sure it is ours alone. */
	fchmod(opened, 0600);
	fd = ownfd_copy_high(opened);
	copy_errno = errno;
	real.close(opened);
	if (fd < 0)
		return -copy_errno;
	snprintf(keylog_path, sizeof keylog_path, "%s", path);
	ownfd_set(OWNFD_KEYLOG, fd);
	return 0;
}

int ownfd_keylog_write(const char *line, size_t len)
{
	int pin, fd = ownfd_pin(OWNFD_KEYLOG, &pin), ret = -EBADF;

	if (fd >= 0) {
		ssize_t n = real.write(fd, line, len);

		ret = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
	}
	ownfd_unpin(pin);
	return ret;
}

const char *ownfd_keylog_path(void)
{
	return keylog_path;
}
