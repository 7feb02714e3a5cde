/* forklock_test.c - the lock registry (src/forklock.h): every registered
 * lock, held by another thread at fork(), is free in the child after the
 * reset; a lock that was not registered stays held (which is what the
 * registry exists to prevent, and shows that the check can fail). */
#include "forklock.h"
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

FORKLOCK_MUTEX(alpha_lock);
FORKLOCK_MUTEX(beta_lock);
FORKLOCK_MUTEX(gamma_lock);

/* What a loaded module brings (as the TLS engine does, tls_loader.c). */
static pthread_mutex_t module_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct forklock module_locks[] = { { &module_lock, "module_lock" } };

/* Not registered: must stay held in the child. */
static pthread_mutex_t stray_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t *const all[] = { &alpha_lock, &beta_lock, &gamma_lock, &module_lock, &stray_lock };
static const char *const names[] = { "alpha_lock", "beta_lock", "gamma_lock", "module_lock", "stray_lock" };
#define N_ALL (int)(sizeof all / sizeof all[0])

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int stage; /* 1: the holder holds everything; 2: main has forked */

static void *holder(void *arg)
{
	int i;

	for (i = 0; i < N_ALL; i++)
		pthread_mutex_lock(all[i]);
	pthread_mutex_lock(&gate);
	stage = 1;
	pthread_cond_broadcast(&cond);
	while (stage != 2)
		pthread_cond_wait(&cond, &gate);
	pthread_mutex_unlock(&gate);
	for (i = 0; i < N_ALL; i++)
		pthread_mutex_unlock(all[i]);
	return arg;
}

static int reset_count = -1;

static void child_handler(void)
{
	reset_count = forklock_child_reset();
}

static void collect(const struct forklock *lock, void *arg)
{
	char *list = arg;

	strcat(list, " ");
	strcat(list, lock->name);
}

int main(void)
{
	char list[512] = "";
	pthread_t thread;
	int fds[2], i, status;
	pid_t pid;
	unsigned char result[N_ALL + 1];

	ok(forklock_add(module_locks, module_locks + 1) == 0, "a module's locks are added");
	ok(forklock_add(module_locks, module_locks + 1) == 0, "adding the same range again is harmless");
	forklock_foreach(collect, list);
	strcat(list, " ");
	for (i = 0; i < N_ALL - 1; i++) {
		char word[64], *at;

		snprintf(word, sizeof word, " %s ", names[i]);
		at = strstr(list, word);
		ok(at && !strstr(at + 1, word), "the registry lists %s once:%s", names[i], list);
	}
	ok(!strstr(list, " stray_lock "), "and not stray_lock");
	ok(strlen(list) == strlen(" alpha_lock beta_lock gamma_lock module_lock "), "and nothing else");

	pthread_atfork(NULL, NULL, child_handler);
	if (pipe(fds) != 0 || pthread_create(&thread, NULL, holder, NULL) != 0) {
		diag("setup failed: %s", strerror(errno));
		return 1;
	}
	pthread_mutex_lock(&gate);
	while (stage != 1)
		pthread_cond_wait(&cond, &gate);
	pthread_mutex_unlock(&gate);

	/* Another thread holds every lock: fork. */
	pid = fork();
	if (pid == 0) {
		/* One thread here; nobody will ever unlock what the holder held. */
		for (i = 0; i < N_ALL; i++) {
			int r = pthread_mutex_trylock(all[i]);

			result[i] = r == 0 ? 'F' : r == EBUSY ? 'H' : '?'; /* free, held */
			if (r == 0)
				pthread_mutex_unlock(all[i]);
		}
		result[N_ALL] = (unsigned char)reset_count;
		_exit(write(fds[1], result, sizeof result) == (ssize_t)sizeof result ? 0 : 1);
	}
	close(fds[1]);
	ok(pid > 0, "fork");
	i = pid > 0 ? (int)read(fds[0], result, sizeof result) : -1;
	ok(i == (int)sizeof result, "the child reported");
	pthread_mutex_lock(&gate);
	stage = 2;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&gate);
	pthread_join(thread, NULL);
	if (pid > 0)
		waitpid(pid, &status, 0);
	if (i != (int)sizeof result)
		memset(result, '?', sizeof result);

	for (i = 0; i < N_ALL - 1; i++)
		ok(result[i] == 'F', "%s, held by another thread at fork, is free in the child (%c)", names[i],
		   result[i]);
	ok(result[N_ALL - 1] == 'H', "stray_lock, not registered, is still held in the child (%c)", result[N_ALL - 1]);
	ok(result[N_ALL] == 4, "the child handler reset 4 locks (%d)", result[N_ALL]);

	/* The table of ranges is bounded: the error is reported. */
	{
		static const struct forklock more[8][1];
		int last = 0;

		for (i = 0; i < 8; i++)
			last = forklock_add(more[i], more[i]);
		ok(last == -ENOSPC, "too many ranges: -ENOSPC, not an overflow (%d)", last);
	}
	return done();
}
