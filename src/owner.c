/* owner.c - ownership records in shared anonymous memory.
 *
 * Each process allocates only from a region it mapped itself: a child that
 * allocated from its parent's region could hand out a word the parent uses
 * too.  Inherited connections keep pointing into the parent's region. */
#include "owner.h"
#include "forklock.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define REGION_WORDS 16384

struct region {
	struct owner *words;
	pid_t creator;
	unsigned used;
	struct free_word *free_list;
};

struct free_word {
	struct owner *word;
	struct free_word *next;
};

FORKLOCK_MUTEX(owner_lock);
static struct region region;
static atomic_int self_pid;
/* Our identity's other half (owner.h, point 5), and the counter it comes
 * from, shared with every process forked from the one that mapped it. */
static _Atomic uint32_t self_serial;
static _Atomic uint32_t *serials;
/* Forks so far: a word that existed at a fork may be in use by the child,
 * so it is never handed out again. */
static atomic_uint forks;

pid_t owner_pid(void)
{
	pid_t pid = atomic_load_explicit(&self_pid, memory_order_relaxed);

	if (pid == 0) {
		pid = getpid();
		atomic_store(&self_pid, pid);
	}
	return pid;
}

void owner_forked(void)
{
	atomic_store(&self_pid, getpid());
	/* No counter: this process has no connection record to share. */
	atomic_store(&self_serial, serials ? atomic_fetch_add(serials, 1) + 1 : 0);
}

static uint64_t self_id(void)
{
	return (uint64_t)(uint32_t)owner_pid() | (uint64_t)atomic_load(&self_serial) << 32;
}

void owner_forking(void)
{
	atomic_fetch_add(&forks, 1);
}

static struct owner *from_region(void)
{
	struct free_word *f;
	void *map;

	if (!serials) {
		map = mmap(NULL, sizeof *serials, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (map == MAP_FAILED)
			return NULL;
		serials = map;
		atomic_store(serials, atomic_load(&self_serial));
	}

	if (region.creator != owner_pid()) {
		/* A new process: a region of its own (the old one stays mapped
		 * for the inherited connections). */
		map = mmap(NULL, REGION_WORDS * sizeof(struct owner), PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (map == MAP_FAILED)
			return NULL;
		region.words = map;
		region.creator = owner_pid();
		region.used = 0;
		region.free_list = NULL; /* entries of the parent's region: not ours */
	}
	if ((f = region.free_list)) {
		struct owner *word = f->word;

		region.free_list = f->next;
		free(f);
		return word;
	}
	if (region.used == REGION_WORDS)
		return NULL;
	return &region.words[region.used++];
}

struct owner *owner_new(bool *private_word, unsigned *gen)
{
	struct owner *word;

	*gen = atomic_load(&forks);
	pthread_mutex_lock(&owner_lock);
	word = from_region();
	pthread_mutex_unlock(&owner_lock);
	*private_word = word == NULL;
	if (!word && !(word = malloc(sizeof *word)))
		return NULL;
	atomic_store(&word->dir[OWNER_SEND], self_id());
	atomic_store(&word->dir[OWNER_RECV], self_id());
	atomic_store(&word->update_requested, false);
	atomic_store(&word->holders, 1);
	return word;
}

void owner_delete(struct owner *word, bool private_word, unsigned gen)
{
	struct free_word *f;

	if (!word)
		return;
	if (private_word) {
		free(word);
		return;
	}
	/* A fork since it was made: a child may still own it. */
	if (gen != atomic_load(&forks))
		return;
	pthread_mutex_lock(&owner_lock);
	/* Records of a parent's region stay as they are: the parent may use them. */
	if (region.words && region.creator == owner_pid() && word >= region.words &&
	    word < region.words + REGION_WORDS && (f = malloc(sizeof *f))) {
		atomic_store(&word->dir[OWNER_SEND], 0);
		atomic_store(&word->dir[OWNER_RECV], 0);
		f->word = word;
		f->next = region.free_list;
		region.free_list = f;
	}
	pthread_mutex_unlock(&owner_lock);
}

enum owner_state owner_state(struct owner *word, enum owner_dir dir)
{
	uint64_t owner = atomic_load_explicit(&word->dir[dir], memory_order_acquire);

	if (owner == self_id())
		return OWNER_SELF;
	return owner == 0 ? OWNER_NONE : OWNER_OTHER;
}

bool owner_claim(struct owner *word, enum owner_dir dir)
{
	uint64_t expected = 0, self = self_id();

	if (atomic_load_explicit(&word->dir[dir], memory_order_acquire) == self)
		return true;
	return atomic_compare_exchange_strong(&word->dir[dir], &expected, self) || expected == self;
}

void owner_release(struct owner *word, enum owner_dir dir)
{
	uint64_t expected = self_id();

	atomic_compare_exchange_strong(&word->dir[dir], &expected, 0);
}

void owner_hold(struct owner *word)
{
	atomic_fetch_add(&word->holders, 1);
}

bool owner_let_go(struct owner *word)
{
	unsigned n = atomic_load(&word->holders);

	/* Never below zero (a count that went wrong stays at zero). */
	while (n > 0 && !atomic_compare_exchange_weak(&word->holders, &n, n - 1))
		;
	return n == 1;
}

void owner_hand_over(struct owner *word, enum owner_dir dir, pid_t pid, uint64_t *prev, uint64_t *given)
{
	/* No shared counter (never made a record): a serial no process draws. */
	uint64_t serial = serials ? atomic_fetch_add(serials, 1) + 1 : UINT32_MAX;

	*given = (uint64_t)(uint32_t)pid | (uint64_t)(uint32_t)serial << 32;
	*prev = atomic_exchange(&word->dir[dir], *given);
}

void owner_take_back(struct owner *word, enum owner_dir dir, uint64_t prev, uint64_t given)
{
	atomic_compare_exchange_strong(&word->dir[dir], &given, prev);
}

pid_t owner_pid_of(struct owner *word, enum owner_dir dir)
{
	return (pid_t)(uint32_t)atomic_load(&word->dir[dir]);
}
