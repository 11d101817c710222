/*
 * fetcher - see fetcher.h.
 *
 * A miss follows the cache's single-flight protocol: open, lock, re-check,
 * fetch into a transaction, commit (which hashes the block, in a SIMD pass
 * shared with other blocks) against the expected digest (or record it, for trust on first use), unlock, open.
 *
 * Locks: f->lock guards the read-ahead queue, the in-flight set and the
 * failure memory; it is never held across I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "fs/mount/fetcher.h"

#define FETCH_QUEUE_MAX 256
#define FETCH_FAIL_SLOTS 256
#define FETCH_MAX_THREADS 64

struct fetch_job {
	char *key;
	char *etag;
	uint64_t size;
	uint32_t block_size;
	uint64_t index;
	bool have_digest;
	struct digest want;
	struct fetch_job *next;
};

struct fail_slot {
	char *key;
	uint64_t index;
	int err;
	int64_t until_ms;
};

struct fetcher {
	struct store *st;
	struct prov *prov;
	struct cache *cache;
	struct stats *stats;
	const char *url;
	int timeout_ms;
	int fail_ms;
	int n_threads;
	pthread_t threads[FETCH_MAX_THREADS];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fetch_job *head, *tail; /* protected by lock */
	size_t queued;		       /* protected by lock */
	struct fetch_job *running;     /* protected by lock: jobs being run,
					  chained through next */
	bool stop;		       /* protected by lock */
	struct fail_slot fails[FETCH_FAIL_SLOTS]; /* protected by lock */
	struct fail_slot logged[FETCH_FAIL_SLOTS]; /* protected by lock */
};

/* ---- the failure memory ---- */

static size_t fail_slot_of(const char *key, uint64_t index)
{
	return (size_t)((digest_xxh3(key, strlen(key)) ^ index) %
			FETCH_FAIL_SLOTS);
}

/* A recent failure of (key, index), or 0. */
static int fail_recent(struct fetcher *f, const char *key, uint64_t index)
{
	struct fail_slot *s;
	int ret = 0;

	pthread_mutex_lock(&f->lock);
	s = &f->fails[fail_slot_of(key, index)];
	if (s->key && s->index == index && strcmp(s->key, key) == 0 &&
	    time_mono_ms() < s->until_ms)
		ret = s->err;
	pthread_mutex_unlock(&f->lock);
	return ret;
}

/*
 * Remember a failure and log it, once per object per failure window.
 */
static void fail_note(struct fetcher *f, const char *key, uint64_t index,
		      int err, const char *why)
{
	struct fail_slot *s, *l;
	bool log = false;
	int64_t now = time_mono_ms();

	pthread_mutex_lock(&f->lock);
	s = &f->fails[fail_slot_of(key, index)];
	free(s->key);
	s->key = strdup(key);
	s->index = index;
	s->err = err;
	s->until_ms = now + f->fail_ms;
	l = &f->logged[fail_slot_of(key, 0)];
	if (!l->key || strcmp(l->key, key) != 0 || now >= l->until_ms) {
		free(l->key);
		l->key = strdup(key);
		l->until_ms = now + f->fail_ms;
		log = true;
	}
	/*
	 * Logged under the lock: another thread that finds this failure
	 * remembered must not return EIO before the line is written.
	 */
	if (log)
		log_error("read of %s/%s failed at block %llu: %s; "
			  "returning EIO", f->url, key,
			  (unsigned long long)index, why);
	pthread_mutex_unlock(&f->lock);
	stats_inc(f->stats, STAT_ERRORS);
	if (err == -ETIMEDOUT)
		stats_inc(f->stats, STAT_TIMEOUTS);
}

/* ---- fetching one block ---- */

struct sink_ctx {
	struct cache_txn *txn;
	struct stats *stats;
};

static int sink(void *arg, const void *data, size_t len)
{
	struct sink_ctx *s = arg;

	stats_add(s->stats, STAT_BYTES_FETCHED, len);
	return cache_txn_write(s->txn, data, len);
}

uint64_t fetcher_block_count(const struct fetch_obj *o)
{
	if (!o->block_size)
		return 0;
	return (o->size + o->block_size - 1) / o->block_size;
}

static uint64_t block_len(const struct fetch_job *j)
{
	uint64_t off = j->index * (uint64_t)j->block_size;
	uint64_t left = j->size - off;

	return left < j->block_size ? left : j->block_size;
}

/*
 * Fetch the block's bytes into the cache. With a digest, the commit checks
 * it; without (TOFU), the digest of what arrived is returned in @got.
 */
static int fetch_into_cache(struct fetcher *f, const struct fetch_job *j,
			    struct digest *got, char *why, size_t whylen)
{
	struct cache_txn *txn = NULL;
	struct sink_ctx sc = { .stats = f->stats };
	uint64_t len = block_len(j);
	int64_t n;
	int ret;

	ret = cache_txn_begin(f->cache, &txn);
	if (ret < 0) {
		snprintf(why, whylen, "cache: %s", strerror(-ret));
		return ret;
	}
	sc.txn = txn;
	/* a store known to be offline is not asked: EIO at once */
	if (store_health_gate(store_health(f->st)) < 0) {
		snprintf(why, whylen, "the store is offline (unreachable; "
			 "probing until it answers)");
		cache_txn_abort(&txn);
		return -EIO;
	}
	stats_inc(f->stats, STAT_STORE_REQUESTS);
	n = prov_get(f->prov, j->key, j->index * (uint64_t)j->block_size, len,
		     j->etag && *j->etag ? j->etag : NULL, sink, &sc);
	if (n < 0 || (uint64_t)n != len) {
		ret = n < 0 ? (int)n : -EIO;
		snprintf(why, whylen, "%s",
			 *prov_last_error() ? prov_last_error() :
			 n < 0 ? strerror(-ret) : "short read");
		if (n < 0)
			store_health_report(store_health(f->st), ret, j->key,
					    why);
		cache_txn_abort(&txn);
		return ret;
	}
	store_health_report_ok(store_health(f->st));
	ret = cache_txn_commit(f->cache, txn,
			       j->have_digest ? &j->want : NULL, got);
	if (ret == -EIO && j->have_digest) {
		stats_inc(f->stats, STAT_DIGEST_MISMATCHES);
		snprintf(why, whylen, "the store's bytes do not match the "
			 "manifest's SHA-256 (altered after the push?)");
	} else if (ret < 0) {
		snprintf(why, whylen, "cache: %s", strerror(-ret));
	} else {
		stats_inc(f->stats, STAT_BLOCKS_FETCHED);
	}
	return ret;
}

static void objkey_of(const struct fetcher *f, const struct fetch_job *j,
		      struct cache_objkey *k)
{
	k->store = f->url;
	k->key = j->key;
	k->etag = j->etag ? j->etag : "";
	k->block_size = j->block_size;
	k->index = j->index;
}

/*
 * Make the block present and open it (@fd may be NULL: just make it
 * present). @foreground: a reader waits for it (counted as a hit, or a miss
 * when this call fetches it); read-ahead is counted separately.
 */
static int get_block(struct fetcher *f, struct fetch_job *j, int *fd,
		     bool foreground, char *why, size_t whylen)
{
	struct cache_lock *lk = NULL;
	struct cache_objkey k;
	struct digest got;
	int tries, ret, bfd = -1;

	*why = '\0';
	objkey_of(f, j, &k);
	for (tries = 0; tries < 3; tries++) {
		if (!j->have_digest &&
		    cache_objblock_get(f->cache, &k, &j->want) == 0)
			j->have_digest = true;
		if (j->have_digest) {
			ret = cache_block_open(f->cache, &j->want, &bfd, NULL);
			if (ret == 0) {
				if (foreground)
					stats_inc(f->stats, STAT_BLOCK_HITS);
				goto done;
			}
			if (ret != -ENOENT)
				goto fail;
			ret = cache_lock_block(f->cache, &j->want,
					       (unsigned)f->timeout_ms, &lk);
			if (ret < 0) {
				snprintf(why, whylen, "waiting for another "
					 "fetch of the block: %s",
					 strerror(-ret));
				goto fail;
			}
			ret = cache_block_recheck(f->cache, &j->want, &bfd,
						  NULL);
			if (ret == 0 && foreground) {
				/* another thread or process fetched it */
				stats_inc(f->stats, STAT_BLOCK_HITS);
			} else if (ret == -ENOENT) {
				if (foreground && tries == 0)
					stats_inc(f->stats, STAT_BLOCK_MISSES);
				ret = fetch_into_cache(f, j, &got, why,
						       whylen);
				if (ret == 0) {
					ret = cache_block_recheck(
						f->cache, &j->want, &bfd,
						NULL);
					/* (not a store's -ENOENT: a failure) */
					if (ret == -ENOENT) {
						cache_unlock(&lk);
						continue; /* evicted at once */
					}
				}
			}
			cache_unlock(&lk);
			if (ret < 0)
				goto fail;
			goto done;
		}
		/* trust on first use: the digest is not known yet */
		ret = cache_lock_objblock(f->cache, &k,
					  (unsigned)f->timeout_ms, &lk);
		if (ret < 0) {
			snprintf(why, whylen, "waiting for another fetch of "
				 "the block: %s", strerror(-ret));
			goto fail;
		}
		if (cache_objblock_get(f->cache, &k, &j->want) == 0) {
			j->have_digest = true;
			cache_unlock(&lk);
			continue;
		}
		if (foreground && tries == 0)
			stats_inc(f->stats, STAT_BLOCK_MISSES);
		ret = fetch_into_cache(f, j, &got, why, whylen);
		if (ret == 0)
			ret = cache_objblock_put(f->cache, &k, &got);
		cache_unlock(&lk);
		if (ret < 0)
			goto fail;
		j->want = got;
		j->have_digest = true;
	}
	ret = -EIO;
	snprintf(why, whylen, "the block was evicted as soon as it was "
		 "fetched (cache_size too small?)");
fail:
	cache_unlock(&lk);
	if (bfd >= 0)
		close(bfd);
	return ret;
done:
	cache_unlock(&lk);
	if (fd)
		*fd = bfd;
	else
		close(bfd);
	return 0;
}

static void job_of(const struct fetch_obj *o, uint64_t index,
		   struct fetch_job *j)
{
	memset(j, 0, sizeof(*j));
	j->key = (char *)o->key;
	j->etag = (char *)(o->mf ? NULL : o->etag);
	j->size = o->size;
	j->block_size = o->block_size;
	j->index = index;
	if (o->mf && index < o->mf->n_blocks) {
		j->want = o->mf->blocks[index];
		j->have_digest = true;
	}
}

int fetcher_block(struct fetcher *f, const struct fetch_obj *o,
		  uint64_t index, int *fd, uint64_t *len)
{
	struct fetch_job j;
	char why[512];
	int ret;

	if (index >= fetcher_block_count(o))
		return -EINVAL;
	if (o->mf && index >= o->mf->n_blocks)
		return -EIO;
	job_of(o, index, &j);
	*len = block_len(&j);
	ret = fail_recent(f, o->key, index);
	if (ret < 0)
		return -EIO;
	ret = get_block(f, &j, fd, true, why, sizeof(why));
	if (ret < 0) {
		fail_note(f, o->key, index, ret, *why ? why : strerror(-ret));
		return -EIO;
	}
	return 0;
}

/* ---- read-ahead ---- */

static bool job_same(const struct fetch_job *a, const char *key,
		     uint64_t index)
{
	return a->index == index && strcmp(a->key, key) == 0;
}

/* Is (key, index) queued or running? Called with f->lock held. */
static bool job_known(struct fetcher *f, const char *key, uint64_t index)
{
	struct fetch_job *j;

	for (j = f->head; j; j = j->next)
		if (job_same(j, key, index))
			return true;
	for (j = f->running; j; j = j->next)
		if (job_same(j, key, index))
			return true;
	return false;
}

static void job_free(struct fetch_job *j)
{
	if (!j)
		return;
	free(j->key);
	free(j->etag);
	free(j);
}

static void running_remove(struct fetcher *f, struct fetch_job *j)
{
	struct fetch_job **pp;

	for (pp = &f->running; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			return;
		}
	}
}

static void *ra_thread(void *arg)
{
	struct fetcher *f = arg;
	char why[512];

	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		struct fetch_job *j = f->head;
		int ret;

		if (!j) {
			pthread_cond_wait(&f->cond, &f->lock);
			continue;
		}
		f->head = j->next;
		if (!f->head)
			f->tail = NULL;
		f->queued--;
		j->next = f->running;
		f->running = j;
		pthread_mutex_unlock(&f->lock);

		ret = fail_recent(f, j->key, j->index);
		if (ret == 0) {
			ret = get_block(f, j, NULL, false, why, sizeof(why));
			if (ret < 0)
				fail_note(f, j->key, j->index, ret,
					  *why ? why : strerror(-ret));
			else
				stats_inc(f->stats, STAT_READAHEAD_BLOCKS);
		}

		pthread_mutex_lock(&f->lock);
		running_remove(f, j);
		job_free(j);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* Ask the kernel to read a cached block into the page cache, async. */
static void warm_block(struct fetcher *f, const struct digest *d)
{
	char path[CACHE_PATH_MAX];
	int fd;

	if (cache_block_path(f->cache, d, path, sizeof(path)) < 0)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
	close(fd);
}

void fetcher_readahead(struct fetcher *f, const struct fetch_obj *o,
		       uint64_t first, uint64_t n)
{
	uint64_t count = fetcher_block_count(o), i;

	for (i = first; i < first + n && i < count; i++) {
		struct fetch_job *j, tmp;

		if (o->mf && i >= o->mf->n_blocks)
			break;
		job_of(o, i, &tmp);
		/*
		 * What is cached needs no fetch (no LRU touch, no sqlite for
		 * manifests), but its pages are read in ahead of the reader.
		 */
		if (tmp.have_digest &&
		    cache_block_stat(f->cache, &tmp.want, NULL) == 0) {
			warm_block(f, &tmp.want);
			continue;
		}
		pthread_mutex_lock(&f->lock);
		if (f->stop || f->queued >= FETCH_QUEUE_MAX ||
		    job_known(f, o->key, i)) {
			pthread_mutex_unlock(&f->lock);
			continue;
		}
		pthread_mutex_unlock(&f->lock);
		j = calloc(1, sizeof(*j));
		if (!j)
			return;
		*j = tmp;
		j->key = strdup(o->key);
		j->etag = tmp.etag ? strdup(tmp.etag) : NULL;
		if (!j->key || (tmp.etag && !j->etag)) {
			job_free(j);
			return;
		}
		pthread_mutex_lock(&f->lock);
		if (f->stop || job_known(f, o->key, i)) {
			pthread_mutex_unlock(&f->lock);
			job_free(j);
			continue;
		}
		if (f->tail)
			f->tail->next = j;
		else
			f->head = j;
		f->tail = j;
		f->queued++;
		pthread_cond_signal(&f->cond);
		pthread_mutex_unlock(&f->lock);
	}
}

int fetcher_cached_bytes(struct fetcher *f, const struct fetch_obj *o,
			 uint64_t *out)
{
	uint64_t count = fetcher_block_count(o), i, total = 0;

	for (i = 0; i < count; i++) {
		struct fetch_job j;
		struct cache_objkey k;

		job_of(o, i, &j);
		if (!j.have_digest) {
			objkey_of(f, &j, &k);
			if (cache_objblock_get(f->cache, &k, &j.want) < 0)
				continue;
		}
		if (cache_block_stat(f->cache, &j.want, NULL) == 0)
			total += block_len(&j);
	}
	*out = total;
	return 0;
}

/* ---- life cycle ---- */

int fetcher_new(struct store *st, struct cache *cache, struct stats *stats,
		const struct fetcher_opts *opts, struct fetcher **out)
{
	struct fetcher *f = calloc(1, sizeof(*f));
	int i, n;

	if (!f)
		return -ENOMEM;
	f->st = st;
	f->prov = store_prov(st);
	f->url = prov_url(f->prov);
	f->cache = cache;
	f->stats = stats;
	f->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms :
							30000;
	f->fail_ms = opts && opts->fail_memory_ms > 0 ? opts->fail_memory_ms :
							 3000;
	n = opts && opts->threads > 0 ? opts->threads : 8;
	if (n > FETCH_MAX_THREADS)
		n = FETCH_MAX_THREADS;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	for (i = 0; i < n; i++) {
		if (pthread_create(&f->threads[i], NULL, ra_thread, f) != 0)
			break;
		f->n_threads++;
	}
	if (f->n_threads == 0) {
		fetcher_free(f);
		return -EAGAIN;
	}
	*out = f;
	return 0;
}

void fetcher_free(struct fetcher *f)
{
	struct fetch_job *j, *next;
	int i;

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	for (i = 0; i < f->n_threads; i++)
		pthread_join(f->threads[i], NULL);
	for (j = f->head; j; j = next) {
		next = j->next;
		job_free(j);
	}
	for (i = 0; i < FETCH_FAIL_SLOTS; i++) {
		free(f->fails[i].key);
		free(f->logged[i].key);
	}
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
