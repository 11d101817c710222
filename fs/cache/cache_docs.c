/*
 * cache_docs - the index's tables besides blocks: the TOFU object->block
 * map (objects without a manifest), the documents kept for offline use
 * (version lists, .meta, assets.index) and the statistics read by
 * `assetfs stats` and `assetfs cache stat`.
 *
 * Each call takes c->db_lock for one statement; documents are capped at
 * CACHE_DOC_MAX. Part of the sqlite layer (cache_index_int.h): calls only
 * cache_index.c and cache_util.c. Errors: 0 or a negative errno.
 */
#include "fs/cache/cache.h"
#include "fs/cache/cache_index_int.h"
#include "fs/cache/cache_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "common/buf.h"

/* Bind @k to parameters 1..5 of the TOFU map statements. */
static void objkey_bind(sqlite3_stmt *s, const struct cache_objkey *k)
{
	sqlite3_bind_text(s, 1, k->store, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, k->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, k->etag, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, k->block_size);
	sqlite3_bind_int64(s, 5, (int64_t)k->index);
}

int cache_objblock_get(struct cache *c, const struct cache_objkey *k,
		       struct digest *out)
{
	sqlite3_stmt *s;
	int rc, ret = -ENOENT;

	if (!k->store || !k->key || !k->etag)
		return -EINVAL;
	pthread_mutex_lock(&c->db_lock);
	s = cache_st(c, ST_OBJ_GET);
	if (!s) {
		ret = -EIO;
		goto out;
	}
	objkey_bind(s, k);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(s, 0);

		if (b && sqlite3_column_bytes(s, 0) == DIGEST_LEN) {
			memcpy(out->b, b, DIGEST_LEN);
			ret = 0;
		} else {
			ret = -EIO;
		}
	} else if (rc != SQLITE_DONE) {
		ret = cache_sqlite_err(rc);
	}
	sqlite3_reset(s);
out:
	pthread_mutex_unlock(&c->db_lock);
	return ret;
}

int cache_objblock_put(struct cache *c, const struct cache_objkey *k,
		       const struct digest *d)
{
	sqlite3_stmt *s;
	int ret;

	if (!k->store || !k->key || !k->etag)
		return -EINVAL;
	pthread_mutex_lock(&c->db_lock);
	s = cache_st(c, ST_OBJ_PUT);
	if (!s) {
		ret = -EIO;
		goto out;
	}
	objkey_bind(s, k);
	sqlite3_bind_blob(s, 6, d->b, DIGEST_LEN, SQLITE_STATIC);
	ret = cache_st_done(c, s);
out:
	pthread_mutex_unlock(&c->db_lock);
	return ret;
}

int cache_doc_put(struct cache *c, const char *store, const char *key,
		  const void *data, size_t len, const char *etag)
{
	sqlite3_stmt *s;
	int ret;

	if (!store || !key || (!data && len))
		return -EINVAL;
	if (len > CACHE_DOC_MAX)
		return -EFBIG;
	pthread_mutex_lock(&c->db_lock);
	s = cache_st(c, ST_DOC_PUT);
	if (!s) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, store, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	if (etag)
		sqlite3_bind_text(s, 3, etag, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 3);
	sqlite3_bind_int64(s, 4, (int64_t)time(NULL));
	sqlite3_bind_blob(s, 5, len ? data : "", (int)len, SQLITE_STATIC);
	ret = cache_st_done(c, s);
out:
	pthread_mutex_unlock(&c->db_lock);
	return ret;
}

int cache_doc_keys(struct cache *c, const char *store, const char *prefix,
		   size_t max, char ***keys, size_t *n)
{
	sqlite3_stmt *s;
	char **v = NULL, **nv;
	size_t count = 0;
	int rc, ret = 0;

	*keys = NULL;
	*n = 0;
	if (!store || !prefix)
		return -EINVAL;
	pthread_mutex_lock(&c->db_lock);
	s = cache_st(c, ST_DOC_KEYS);
	if (!s) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, store, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, prefix, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)strlen(prefix));
	sqlite3_bind_int64(s, 4, (sqlite3_int64)max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *k = sqlite3_column_text(s, 0);

		if (!k)
			continue;
		nv = realloc(v, (count + 1) * sizeof(*v));
		if (!nv) {
			ret = -ENOMEM;
			break;
		}
		v = nv;
		v[count] = strdup((const char *)k);
		if (!v[count]) {
			ret = -ENOMEM;
			break;
		}
		count++;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = cache_sqlite_err(rc);
	sqlite3_reset(s);
out:
	pthread_mutex_unlock(&c->db_lock);
	if (ret < 0) {
		while (count > 0)
			free(v[--count]);
		free(v);
		return ret;
	}
	*keys = v;
	*n = count;
	return 0;
}

int cache_doc_get(struct cache *c, const char *store, const char *key,
		  struct buf *out, char **etag, int64_t *stored_at)
{
	sqlite3_stmt *s;
	const unsigned char *e;
	char *ecopy = NULL;
	int rc, ret = -ENOENT;

	if (etag)
		*etag = NULL;
	if (!store || !key)
		return -EINVAL;
	pthread_mutex_lock(&c->db_lock);
	s = cache_st(c, ST_DOC_GET);
	if (!s) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, store, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(s, 0);
		int n = sqlite3_column_bytes(s, 0);

		ret = buf_append(out, b ? b : "", (size_t)n);
		e = sqlite3_column_text(s, 1);
		if (ret == 0 && etag && e) {
			ecopy = strdup((const char *)e);
			if (!ecopy)
				ret = -ENOMEM;
		}
		if (ret == 0 && stored_at)
			*stored_at = sqlite3_column_int64(s, 2);
	} else if (rc != SQLITE_DONE) {
		ret = cache_sqlite_err(rc);
	}
	sqlite3_reset(s);
out:
	pthread_mutex_unlock(&c->db_lock);
	if (ret == 0 && etag)
		*etag = ecopy;
	else
		free(ecopy);
	return ret;
}

static int64_t count_locked(struct cache *c, enum cache_stmt id)
{
	sqlite3_stmt *s = cache_st(c, id);
	int64_t v = -1;

	if (!s)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return v;
}

int cache_get_stats(struct cache *c, struct cache_stats *st)
{
	int64_t v;
	int ret;

	memset(st, 0, sizeof(*st));
	st->hits = ATOMIC_GET(&c->hits);
	st->misses = ATOMIC_GET(&c->misses);
	st->bytes_written = ATOMIC_GET(&c->bytes_written);
	st->blocks_written = ATOMIC_GET(&c->blocks_written);
	st->evictions = ATOMIC_GET(&c->evictions);
	st->bytes_evicted = ATOMIC_GET(&c->bytes_evicted);
	st->digest_mismatches = ATOMIC_GET(&c->mismatches);
	st->corrupt_blocks = ATOMIC_GET(&c->corrupt);
	sha256_batch_counts(c->hash, &st->hashed_blocks, &st->hash_batches);
	st->max_bytes = c->max_bytes;
	st->min_free_bytes = c->min_free_bytes;
	st->disk_free_bytes = cache_disk_free(c);
	pthread_mutex_lock(&c->db_lock);
	ret = cache_totals_locked(c, &st->blocks, &st->bytes);
	v = count_locked(c, ST_COUNT_SUSPECT);
	st->suspect_blocks = v > 0 ? (uint64_t)v : 0;
	v = count_locked(c, ST_COUNT_DOCS);
	st->docs = v > 0 ? (uint64_t)v : 0;
	v = count_locked(c, ST_COUNT_OBJ);
	st->objblocks = v > 0 ? (uint64_t)v : 0;
	pthread_mutex_unlock(&c->db_lock);
	return ret;
}
