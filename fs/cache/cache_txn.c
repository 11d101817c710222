/*
 * cache_txn - writes to the block cache: a txn streams a block into a
 * temp file in tmp/ (staged in whole CACHE_STAGE pieces, xxh3'd as they
 * go), and cache_txn_commit() hashes it through the shared SHA-256 batcher,
 * checks the digest, commits the block's row (evicting to make room) and
 * only then renames the file into blocks/.
 *
 * A txn has one owner thread at a time; commits from any number of
 * threads and processes serialise on the index (BEGIN IMMEDIATE). Calls
 * the sqlite layer (cache_index_int.h) and the bottom (cache_int.h) only.
 * Errors: 0 or a negative errno.
 */
#include "fs/cache/cache.h"
#include "fs/cache/cache_index_int.h"
#include "fs/cache/cache_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fileutil.h"
#include "common/log.h"

static char *stage_get(struct cache *c)
{
	char *p = NULL;

	pthread_mutex_lock(&c->mem_lock);
	if (c->n_stages > 0)
		p = c->stages[--c->n_stages];
	pthread_mutex_unlock(&c->mem_lock);
	return p ? p : malloc(CACHE_STAGE);
}

static void stage_put(struct cache *c, char *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&c->mem_lock);
	if (c->n_stages < CACHE_STAGES_KEPT) {
		c->stages[c->n_stages++] = p;
		p = NULL;
	}
	pthread_mutex_unlock(&c->mem_lock);
	free(p);
}

int cache_txn_begin(struct cache *c, struct cache_txn **out)
{
	struct cache_txn *t;
	int ret, tries;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->c = c;
	t->fd = -1;
	t->xxh = XXH3_createState();
	t->stage = stage_get(c);
	if (!t->xxh || !t->stage) {
		ret = -ENOMEM;
		goto fail;
	}
	XXH3_64bits_reset(t->xxh);
	sha256_batch_expect(c->hash, 1);
	t->announced = true;
	for (tries = 0; tries < 16; tries++) {
		ret = cache_path_fmt(t->path, sizeof(t->path),
				     "%s/tmp/%d.%" PRIu64 ".%" PRIx64, c->dir,
				     (int)getpid(), ATOMIC_ADD(&c->tmp_seq, 1),
				     (uint64_t)cache_now_us());
		if (ret < 0)
			goto fail;
		/* read back (mapped) for the SHA-256 at commit */
		t->fd =
		    open(t->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
		if (t->fd >= 0 || errno != EEXIST)
			break;
	}
	if (t->fd < 0) {
		ret = -errno;
		goto fail;
	}
	/* Marks the temp file live for cache_clean_tmp() in other processes. */
	if (flock(t->fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -errno;
		goto fail;
	}
	*out = t;
	return 0;
fail:
	cache_txn_abort(&t);
	return ret;
}

/* Write out the staged bytes. */
static int txn_flush(struct cache_txn *t)
{
	int ret;

	if (t->err || !t->staged)
		return t->err;
	ret = write_all(t->fd, t->stage, t->staged);
	if (ret < 0) {
		t->err = ret;
		return ret;
	}
	XXH3_64bits_update(t->xxh, t->stage, t->staged);
	t->staged = 0;
	return 0;
}

int cache_txn_write(struct cache_txn *t, const void *data, size_t len)
{
	const char *p = data;
	int ret;

	while (len > 0 && !t->err) {
		t->len += buf_fill(t->stage, &t->staged, CACHE_STAGE, &p, &len);
		if (t->staged == CACHE_STAGE) {
			ret = txn_flush(t);
			if (ret < 0)
				return ret;
		}
	}
	return t->err;
}

void cache_txn_abort(struct cache_txn **tp)
{
	struct cache_txn *t = *tp;

	if (!t)
		return;
	*tp = NULL;
	if (t->fd >= 0) {
		unlink(t->path);
		close(t->fd);
	}
	if (t->announced)
		sha256_batch_expect(t->c->hash, -1);
	XXH3_freeState(t->xxh);
	stage_put(t->c, t->stage);
	free(t);
}

/*
 * The SHA-256 of what the txn wrote, hashed from a mapping of its temp
 * file (still in the page cache) through the cache's batcher: blocks that
 * finish together in several fetch threads share one SIMD pass, where
 * hashing each as its bytes arrived would take one core-pass apiece.
 */
static int txn_sha256(struct cache *c, struct cache_txn *t, struct digest *out)
{
	void *map = NULL;
	int ret;

	/* a block is at most a manifest block: size_t holds it */
	if (t->len) {
		map = mmap(NULL, (size_t)t->len, PROT_READ,
			   MAP_SHARED | MAP_POPULATE, t->fd, 0);
		if (map == MAP_FAILED)
			return -errno; /* still announced: abort takes it back
					*/
	}
	ret = sha256_batch_hash(c->hash, map ? map : "", (size_t)t->len,
				t->announced, out);
	t->announced = false;
	if (map)
		munmap(map, (size_t)t->len);
	return ret;
}

int cache_txn_commit(struct cache *c, struct cache_txn *t,
		     const struct digest *want, struct digest *got)
{
	char path[CACHE_PATH_MAX], hex[DIGEST_HEX_LEN + 1];
	struct digest sum;
	uint64_t xxh;
	bool existed = false;
	int ret, fail = 0;

	ret = txn_flush(t);
	if (ret < 0)
		goto out;
	ret = txn_sha256(c, t, &sum);
	if (ret < 0)
		goto out;
	if (got)
		*got = sum;
	xxh = XXH3_64bits_digest(t->xxh);
	if (want && !digest_equal(&sum, want)) {
		char whex[DIGEST_HEX_LEN + 1];

		digest_to_hex(want, whex);
		digest_to_hex(&sum, hex);
		log_error(
		    "cache: digest mismatch: expected %s, got %s (%" PRIu64
		    " bytes); not cached",
		    whex, hex, t->len);
		ATOMIC_ADD(&c->mismatches, 1);
		ret = -EIO;
		goto out;
	}
	ret = cache_block_path(c, &sum, path, sizeof(path));
	if (ret < 0)
		goto out;

	pthread_mutex_lock(&c->db_lock);
	ret = cache_db_begin(c);
	if (ret < 0)
		goto unlock;
	if (t->len > c->max_bytes) {
		ret = -ENOSPC;
		goto end;
	}
	ret = cache_block_row_exists(c, &sum);
	if (ret < 0)
		goto end;
	existed = ret > 0;
	if (!existed) {
		/*
		 * Victims are unlinked as they go: from here on the txn is
		 * committed even when this block is not published, so the
		 * index never keeps rows of files already gone.
		 */
		ret = cache_evict_locked(c, t->len, c->max_bytes);
		if (ret < 0) {
			fail = ret;
			ret = 0;
			goto end;
		}
	}
	ret =
	    cache_put_block_row(c, &sum, t->len, &xxh, cache_now(c), BLK_FRESH);
end:
	ret = cache_db_end(c, ret);
	if (ret == 0)
		ret = fail;
	/*
	 * Publish only once the row is committed: a crash in between leaves
	 * a row without a file (a miss, and LRU ages it out), never a file
	 * the quota does not count.
	 */
	if (ret == 0 && rename(t->path, path) < 0) {
		ret = -errno;
		if (!existed && cache_db_begin(c) == 0)
			cache_db_end(c, cache_del_block_locked(c, &sum));
	}
	if (ret == 0)
		t->path[0] = '\0';
unlock:
	pthread_mutex_unlock(&c->db_lock);
	if (ret == 0) {
		ATOMIC_ADD(&c->bytes_written, t->len);
		ATOMIC_ADD(&c->blocks_written, 1);
		pthread_mutex_lock(&c->mem_lock);
		c->dirty = true;
		/* renamed: the next sync may mark it durable (or, if full,
		 * the time margin of cache_sync_and_mark() will) */
		cache_dset_put(&c->unsynced, &sum, 1, CACHE_TOUCH_MAX);
		pthread_mutex_unlock(&c->mem_lock);
		/* freshly written: no longer suspect in our eyes */
		cache_suspect_clear(c, &sum);
	} else if (ret == -ENOSPC) {
		log_warn("cache: %s: no room for a %" PRIu64 "-byte block"
			 " (cache_size %" PRIu64 ", cache_min_free %" PRIu64
			 ")",
			 c->dir, t->len, c->max_bytes, c->min_free_bytes);
	}
out:
	if (t->fd >= 0) {
		if (t->path[0])
			unlink(t->path);
		close(t->fd);
		t->fd = -1;
	}
	cache_txn_abort(&t);
	return ret;
}

int cache_put_block(struct cache *c, const void *data, size_t len,
		    const struct digest *want, struct digest *got)
{
	struct cache_txn *t = NULL;
	int ret;

	ret = cache_txn_begin(c, &t);
	if (ret < 0)
		return ret;
	ret = cache_txn_write(t, data, len);
	if (ret < 0) {
		cache_txn_abort(&t);
		return ret;
	}
	return cache_txn_commit(c, t, want, got);
}
