/* owner.c - ownership words in shared anonymous memory.
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
	atomic_int *words;
	pid_t creator;
	unsigned used;
	struct free_word *free_list;
};

struct free_word {
	atomic_int *word;
	struct free_word *next;
};

FORKLOCK_MUTEX(owner_lock);
static struct region region;
static atomic_int self_pid;
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
}

void owner_forking(void)
{
	atomic_fetch_add(&forks, 1);
}

static atomic_int *from_region(void)
{
	struct free_word *f;
	void *map;

	if (region.creator != owner_pid()) {
		/* A new process: a region of its own (the old one stays mapped
		 * for the inherited connections). */
		map = mmap(NULL, REGION_WORDS * sizeof(atomic_int), PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (map == MAP_FAILED)
			return NULL;
		region.words = map;
		region.creator = owner_pid();
		region.used = 0;
		region.free_list = NULL; /* entries of the parent's region: not ours */
	}
	if ((f = region.free_list)) {
		atomic_int *word = f->word;

		region.free_list = f->next;
		free(f);
		return word;
	}
	if (region.used == REGION_WORDS)
		return NULL;
	return &region.words[region.used++];
}

atomic_int *owner_new(bool *private_word, unsigned *gen)
{
	atomic_int *word;

	*gen = atomic_load(&forks);
	pthread_mutex_lock(&owner_lock);
	word = from_region();
	pthread_mutex_unlock(&owner_lock);
	*private_word = word == NULL;
	if (!word && !(word = malloc(sizeof *word)))
		return NULL;
	atomic_store(word, owner_pid());
	return word;
}

void owner_delete(atomic_int *word, bool private_word, unsigned gen)
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
	/* Words of a parent's region stay as they are: the parent may use them. */
	if (region.words && region.creator == owner_pid() && word >= region.words &&
	    word < region.words + REGION_WORDS && (f = malloc(sizeof *f))) {
		atomic_store(word, 0);
		f->word = word;
		f->next = region.free_list;
		region.free_list = f;
	}
	pthread_mutex_unlock(&owner_lock);
}

enum owner_state owner_state(atomic_int *word)
{
	int owner = atomic_load_explicit(word, memory_order_acquire);

	if (owner == owner_pid())
		return OWNER_SELF;
	return owner == 0 ? OWNER_NONE : OWNER_OTHER;
}

bool owner_claim(atomic_int *word)
{
	int expected = 0;
	pid_t self = owner_pid();

	if (atomic_load_explicit(word, memory_order_acquire) == self)
		return true;
	return atomic_compare_exchange_strong(word, &expected, self) || expected == self;
}

void owner_release(atomic_int *word)
{
	int expected = owner_pid();

	atomic_compare_exchange_strong(word, &expected, 0);
}
