/*
 * sha256_batch - see sha256_batch.h.
 *
 * The queue is a FIFO of requests living on their callers' stacks. A
 * caller that becomes a hasher unlinks up to a lane count of requests from
 * the head (its own among them or not), hashes them without the lock, marks
 * them done and wakes everyone; each caller returns once its own request is
 * done. FIFO order bounds the wait: a request is in one of the next
 * (queue length / lanes) batches.
 *
 * Locks: b->lock guards the queue, the hasher count and the counters; it is
 * never held while hashing.
 */
#include "common/sha256_batch.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/sha256_mb.h"

struct req {
	const void *data;
	size_t len;
	int64_t since_ns; /* when it was queued (CLOCK_MONOTONIC) */
	struct digest *out;
	int err;   /* sha256_mb()'s return, set with done */
	bool done; /* protected by b->lock */
	struct req *next;
};

struct sha256_batch {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	struct req *head, *tail; /* protected by lock */
	size_t queued;		 /* protected by lock: requests on the queue */
	size_t coming;		 /* protected by lock: announced, not queued */
	unsigned hashing;	 /* protected by lock: threads hashing now */
	unsigned max_hashers;
	int64_t wait_ns;
	uint64_t messages, batches; /* protected by lock */
};

struct sha256_batch *sha256_batch_new(unsigned max_hashers, int64_t wait_ns)
{
	struct sha256_batch *b = calloc(1, sizeof(*b));
	long ncpu;

	if (!b)
		return NULL;
	if (!max_hashers) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		max_hashers = ncpu > 0 && ncpu < 64 ? (unsigned)ncpu : 4;
	}
	b->max_hashers = max_hashers;
	b->wait_ns = wait_ns > 0 ? wait_ns : SHA256_BATCH_WAIT_NS;
	pthread_mutex_init(&b->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&b->done_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	return b;
}

void sha256_batch_free(struct sha256_batch *b)
{
	if (!b)
		return;
	pthread_cond_destroy(&b->done_cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* Hash the requests of @batch (unlinked, @n of them) and mark them done. */
static void run_batch(struct sha256_batch *b, struct req **batch, size_t n)
{
	const void *data[SHA256_MB_MAX];
	size_t len[SHA256_MB_MAX];
	struct digest out[SHA256_MB_MAX];
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		data[i] = batch[i]->data;
		len[i] = batch[i]->len;
	}
	ret = sha256_mb(n, data, len, out);
	pthread_mutex_lock(&b->lock);
	for (i = 0; i < n; i++) {
		if (ret == 0)
			*batch[i]->out = out[i];
		batch[i]->err = ret;
		batch[i]->done = true;
	}
	b->messages += n;
	b->batches++;
	b->hashing--;
	pthread_cond_broadcast(&b->done_cond);
	pthread_mutex_unlock(&b->lock);
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Take back @n announced messages. Called with b->lock held. */
static void unannounce(struct sha256_batch *b, size_t n)
{
	b->coming = n <= b->coming ? b->coming - n : 0;
	pthread_cond_broadcast(&b->done_cond); /* maybe none to wait for */
}

void sha256_batch_expect(struct sha256_batch *b, int delta)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	if (delta > 0)
		b->coming += (size_t)delta;
	else
		unannounce(b, (size_t)-(int64_t)delta);
	pthread_mutex_unlock(&b->lock);
}

/*
 * Whether a hasher should start a pass now, and if not, until when (*@until)
 * it waits. Called with b->lock held and the queue not empty.
 */
static bool pass_now(struct sha256_batch *b, size_t lanes, int64_t *until)
{
	if (b->hashing >= b->max_hashers)
		return false;
	if (b->hashing > 0) /* a second pass: only a full one */
		return b->queued >= lanes;
	if (b->queued >= lanes || b->coming == 0)
		return true;
	*until = b->head->since_ns + b->wait_ns;
	return mono_ns() >= *until;
}

int sha256_batch_hash(struct sha256_batch *b, const void *data, size_t len,
		      bool announced, struct digest *out)
{
	struct req me = { .data = data, .len = len, .out = out };
	struct req *batch[SHA256_MB_MAX];
	size_t lanes = sha256_mb_lanes(), n;

	if (!b)
		return -EINVAL;
	if (lanes > SHA256_MB_MAX)
		lanes = SHA256_MB_MAX;
	if (lanes <= 1) {
		/* no lanes to share: hash it here, in parallel with others */
		const void *d[1] = { data };
		size_t l[1] = { len };
		int ret = sha256_mb(1, d, l, out);

		pthread_mutex_lock(&b->lock);
		if (announced)
			unannounce(b, 1);
		b->messages++;
		b->batches++;
		pthread_mutex_unlock(&b->lock);
		return ret;
	}
	pthread_mutex_lock(&b->lock);
	if (announced)
		b->coming = b->coming ? b->coming - 1 : 0; /* now queued */
	if (b->tail)
		b->tail->next = &me;
	else
		b->head = &me;
	b->tail = &me;
	b->queued++;
	me.since_ns = mono_ns();
	pthread_cond_broadcast(&b->done_cond); /* a waiting hasher may go */
	while (!me.done) {
		int64_t until = 0;

		if (b->head && pass_now(b, lanes, &until)) {
			for (n = 0; n < lanes && b->head; n++) {
				batch[n] = b->head;
				b->head = b->head->next;
			}
			b->queued -= n;
			if (!b->head)
				b->tail = NULL;
			b->hashing++;
			pthread_mutex_unlock(&b->lock);
			run_batch(b, batch, n);
			pthread_mutex_lock(&b->lock);
			continue;
		}
		if (until) {
			struct timespec ts = {
				.tv_sec = (time_t)(until / 1000000000),
				.tv_nsec = (long)(until % 1000000000),
			};

			pthread_cond_timedwait(&b->done_cond, &b->lock, &ts);
		} else {
			pthread_cond_wait(&b->done_cond, &b->lock);
		}
	}
	pthread_mutex_unlock(&b->lock);
	return me.err;
}

void sha256_batch_counts(struct sha256_batch *b, uint64_t *messages,
			 uint64_t *batches)
{
	pthread_mutex_lock(&b->lock);
	*messages = b->messages;
	*batches = b->batches;
	pthread_mutex_unlock(&b->lock);
}
