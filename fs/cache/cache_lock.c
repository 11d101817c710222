/*
 * cache_lock - single flight for block fetches: one fetch per block across
 * every thread and process sharing a cache dir.
 *
 * Across processes: an OFD byte-range lock on locks/blocks.lock at an
 * offset derived from the key, on a private open file description (so it
 * also excludes other threads, and the kernel drops it when the holder
 * dies); waiters poll it with a backoff capped at 5 ms. Within a process:
 * the keys held are listed in c->held (under the leaf lock c->lk_lock) and
 * waiters sleep on c->lk_cond, woken at once by cache_unlock(). Every wait
 * is bounded by the caller's timeout. Errors: 0 or a negative errno.
 */
#include "fs/cache/cache.h"
#include "fs/cache/cache_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct held_key *held_find(const struct cache *c, uint64_t key)
{
	const struct held_key *h;

	for (h = c->held; h; h = h->next) {
		if (h->key == key)
			return h;
	}
	return NULL;
}

static void held_drop(struct cache *c, uint64_t key)
{
	struct held_key **pp, *h;

	pthread_mutex_lock(&c->lk_lock);
	for (pp = &c->held; (h = *pp); pp = &h->next) {
		if (h->key == key) {
			*pp = h->next;
			free(h);
			break;
		}
	}
	pthread_cond_broadcast(&c->lk_cond);
	pthread_mutex_unlock(&c->lk_lock);
}

/*
 * Wait (until @deadline, CLOCK_MONOTONIC ms) for no thread of ours to hold
 * @key, then claim it in c->held. Returns 0, -EDEADLK if the calling
 * thread holds it already (waiting would only time out), -ETIMEDOUT or
 * -ENOMEM.
 */
static int held_claim(struct cache *c, uint64_t key, int64_t deadline)
{
	const struct held_key *cur;
	struct held_key *h;
	struct timespec ts;
	int ret = 0;

	pthread_mutex_lock(&c->lk_lock);
	while ((cur = held_find(c, key))) {
		if (pthread_equal(cur->owner, pthread_self())) {
			ret = -EDEADLK;
			goto out;
		}
		if (cache_mono_ms() >= deadline) {
			ret = -ETIMEDOUT;
			goto out;
		}
		ts.tv_sec = deadline / 1000;
		ts.tv_nsec = (deadline % 1000) * 1000000;
		pthread_cond_timedwait(&c->lk_cond, &c->lk_lock, &ts);
	}
	h = malloc(sizeof(*h));
	if (!h) {
		ret = -ENOMEM;
		goto out;
	}
	h->key = key;
	h->owner = pthread_self();
	h->next = c->held;
	c->held = h;
out:
	pthread_mutex_unlock(&c->lk_lock);
	return ret;
}

static int lock_at(struct cache *c, uint64_t key, unsigned timeout_ms,
		   struct cache_lock **out)
{
	struct flock fl = {
	    .l_type = F_WRLCK,
	    .l_whence = SEEK_SET,
	    .l_start = (off_t)(key >> 2), /* positive, < 2^62 */
	    .l_len = 1,
	};
	int64_t deadline = cache_mono_ms() + timeout_ms;
	long delay_us = 100;
	struct cache_lock *lk;
	struct timespec ts;
	int64_t left;
	int fd = -1, ret;

	ret = held_claim(c, key, deadline);
	if (ret < 0)
		return ret;
	fd = open(c->lock_path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	/* Only another process can hold it now: poll with backoff. */
	for (;;) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			break;
		if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
			ret = -errno;
			goto fail;
		}
		left = deadline - cache_mono_ms();
		if (left <= 0) {
			ret = -ETIMEDOUT;
			goto fail;
		}
		if (delay_us > left * 1000)
			delay_us = (long)left * 1000;
		ts.tv_sec = 0;
		ts.tv_nsec = delay_us * 1000;
		nanosleep(&ts, NULL);
		if (delay_us < 5000)
			delay_us *= 2;
	}
	lk = malloc(sizeof(*lk));
	if (!lk) {
		ret = -ENOMEM;
		goto fail;
	}
	lk->c = c;
	lk->key = key;
	lk->fd = fd;
	*out = lk;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	held_drop(c, key);
	return ret;
}

int cache_lock_block(struct cache *c, const struct digest *d,
		     unsigned timeout_ms, struct cache_lock **out)
{
	return lock_at(c, cache_digest_key64(d), timeout_ms, out);
}

void cache_unlock(struct cache_lock **lkp)
{
	struct cache_lock *lk = *lkp;

	if (!lk)
		return;
	*lkp = NULL;
	close(lk->fd); /* drops the OFD lock */
	held_drop(lk->c, lk->key);
	free(lk);
}

/* A digest naming a TOFU key, distinct from any block digest's domain. */
static int objkey_digest(const struct cache_objkey *k, struct digest *out)
{
	struct hasher *h = hasher_new();
	char num[48];
	int ret;

	if (!h)
		return -ENOMEM;
	hasher_update(h, "assetfs-objblock", 17);
	hasher_update(h, k->store, strlen(k->store) + 1);
	hasher_update(h, k->key, strlen(k->key) + 1);
	hasher_update(h, k->etag, strlen(k->etag) + 1);
	snprintf(num, sizeof(num), "%" PRIu32 ":%" PRIu64, k->block_size,
		 k->index);
	hasher_update(h, num, strlen(num) + 1);
	ret = hasher_final(h, out);
	hasher_free(h);
	return ret;
}

int cache_lock_objblock(struct cache *c, const struct cache_objkey *k,
			unsigned timeout_ms, struct cache_lock **out)
{
	struct digest d;
	int ret;

	if (!k->store || !k->key || !k->etag)
		return -EINVAL;
	ret = objkey_digest(k, &d);
	if (ret < 0)
		return ret;
	return lock_at(c, cache_digest_key64(&d), timeout_ms, out);
}
