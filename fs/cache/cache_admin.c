/*
 * cache_admin - the top of the block cache, behind `assetfs cache gc` and
 * `assetfs cache verify`: eviction down to a target, and a re-hash of
 * every block file against its name (several files per SIMD pass).
 *
 * Slow paths, run by the CLI on a cache that mounts may be using at the
 * same time. Calls the file walks (cache_scan_int.h), the sqlite layer and
 * the bottom; nothing calls it but the CLI. Errors: 0 or a negative errno.
 */
#include "fs/cache/cache.h"
#include "fs/cache/cache_index_int.h"
#include "fs/cache/cache_int.h"
#include "fs/cache/cache_scan_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sha256_mb.h"

int cache_gc(struct cache *c, uint64_t target, uint64_t *evicted)
{
	uint64_t before = ATOMIC_GET(&c->evictions), removed = 0;
	int ret;

	cache_clean_tmp(c, &removed);
	pthread_mutex_lock(&c->db_lock);
	ret = cache_reconcile_locked(c, NULL, NULL);
	if (ret == 0)
		ret = cache_db_begin(c);
	if (ret == 0) {
		/* Victims are unlinked as they go: always commit their rows. */
		int fail = cache_evict_locked(c, 0, target);

		ret = cache_db_end(c, 0);
		if (ret == 0 && fail != -ENOSPC) /* -ENOSPC: all evicted */
			ret = fail;
	}
	pthread_mutex_unlock(&c->db_lock);
	if (evicted)
		*evicted = ATOMIC_GET(&c->evictions) - before;
	return ret;
}

/* SHA-256 (and xxh3) of a whole file in one pass. */
static int hash_file(const char *path, struct digest *sha, uint64_t *xxh,
		     uint64_t *size)
{
	struct hasher *h = hasher_new();
	XXH3_state_t *x = XXH3_createState();
	char *buf = malloc(CACHE_IO_CHUNK);
	ssize_t n;
	int fd = -1, ret;

	*size = 0;
	if (!h || !x || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	XXH3_64bits_reset(x);
	while ((n = read(fd, buf, CACHE_IO_CHUNK)) > 0) {
		hasher_update(h, buf, (size_t)n);
		XXH3_64bits_update(x, buf, (size_t)n);
		*size += (uint64_t)n;
	}
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	ret = hasher_final(h, sha);
	*xxh = XXH3_64bits_digest(x);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	XXH3_freeState(x);
	hasher_free(h);
	return ret;
}

/*
 * Verify hashes block files in groups of up to sha256_mb_lanes(), one
 * sha256_mb() call per group, reading each file whole into its slot's
 * buffer (read(), not mmap: a disk error must be a bad block, not a
 * SIGBUS). A file over VERIFY_INLINE_MAX bytes is streamed by hash_file()
 * instead, so the buffers stay within SHA256_MB_MAX x 4 MiB.
 */
#define VERIFY_INLINE_MAX (4u << 20) /* the block size assetfs push writes */

struct verify_slot {
	struct digest d;
	char path[CACHE_PATH_MAX];
	char *buf; /* owned, cap bytes, reused across groups */
	size_t cap, len;
	struct digest got;
	uint64_t xxh;
	int ret; /* of reading the file */
};

struct verify_walk {
	struct cache_verify_report *r;
	struct verify_slot slot[SHA256_MB_MAX];
	size_t n, lanes; /* queued slots; group size */
};

/*
 * Read the file at @path whole into @v->buf. Returns 0, -EAGAIN if it is
 * too large or no buffer can be had (hash_file() it), or the errno of
 * open/read.
 */
static int verify_read(struct verify_slot *v, const char *path)
{
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	v->len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR; /* what read() says */
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > VERIFY_INLINE_MAX) {
		ret = -EAGAIN;
		goto out;
	}
	if (v->cap < (size_t)st.st_size + 1) {
		char *nb = realloc(v->buf, (size_t)st.st_size + 1);

		if (!nb) {
			ret = -EAGAIN; /* streaming needs only 1 MiB */
			goto out;
		}
		v->buf = nb;
		v->cap = (size_t)st.st_size + 1;
	}
	/* one spare byte: a file that grew since fstat() is streamed */
	while (v->len < v->cap &&
	       (n = read(fd, v->buf + v->len, v->cap - v->len)) != 0) {
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		v->len += (size_t)n;
	}
	if (v->len == v->cap)
		ret = -EAGAIN;
out:
	close(fd);
	return ret;
}

/* The verdict on block @d at @path, hashed (@ret < 0: unreadable). */
static void verify_judge(struct cache *c, struct cache_verify_report *r,
			 const struct digest *d, const char *path, int ret,
			 const struct digest *got, uint64_t xxh, uint64_t size)
{
	char hex[DIGEST_HEX_LEN + 1];

	if (ret == -ENOENT)
		return; /* evicted meanwhile */
	digest_to_hex(d, hex);
	r->checked++;
	r->bytes += size;
	if (ret < 0 || !digest_equal(got, d)) {
		r->bad++;
		ATOMIC_ADD(&c->corrupt, 1);
		if (r->on_bad)
			r->on_bad(hex,
				  ret < 0 ? strerror(-ret)
					  : "content does not match its name",
				  r->arg);
		log_error("cache: verify: block %s is bad; removed", hex);
		unlink(path);
		pthread_mutex_lock(&c->db_lock);
		cache_forget_block_locked(c, d);
		pthread_mutex_unlock(&c->db_lock);
		return;
	}
	/* Good: now known durable, with a fresh xxh3. */
	pthread_mutex_lock(&c->db_lock);
	cache_mark_durable_locked(c, d, xxh);
	pthread_mutex_unlock(&c->db_lock);
	cache_suspect_clear(c, d);
}

/*
 * Hash the queued files (one sha256_mb() call) and judge them in the order
 * they were queued. Returns 0 or -ENOMEM when sha256_mb fails.
 */
static int verify_flush(struct cache *c, struct verify_walk *w)
{
	const void *data[SHA256_MB_MAX];
	size_t len[SHA256_MB_MAX];
	struct digest got[SHA256_MB_MAX];
	size_t i, n = 0;
	int ret;

	/* the files read whole, packed for one call */
	for (i = 0; i < w->n; i++) {
		struct verify_slot *v = &w->slot[i];

		if (v->ret < 0)
			continue;
		data[n] = v->buf;
		len[n++] = v->len;
	}
	ret = sha256_mb(n, data, len, got);
	if (ret < 0)
		return ret;
	for (i = 0, n = 0; i < w->n; i++) {
		struct verify_slot *v = &w->slot[i];
		uint64_t size = 0;

		if (v->ret == -EAGAIN) {
			v->ret = hash_file(v->path, &v->got, &v->xxh, &size);
		} else if (v->ret == 0) {
			v->got = got[n++];
			v->xxh = digest_xxh3(v->buf, v->len);
			size = v->len;
		}
		verify_judge(c, w->r, &v->d, v->path, v->ret, &v->got, v->xxh,
			     size);
	}
	w->n = 0;
	return 0;
}

/* cache_walk_blocks() callback: queue the file, hash the group once full. */
static int verify_file(struct cache *c, const struct digest *d,
		       const char *path, void *arg)
{
	struct verify_walk *w = arg;
	struct verify_slot *v = &w->slot[w->n];

	if (snprintf(v->path, sizeof(v->path), "%s", path) >=
	    (int)sizeof(v->path))
		return -ENAMETOOLONG; /* walk_blocks' paths fit */
	v->d = *d;
	v->ret = verify_read(v, path);
	w->n++;
	return w->n < w->lanes ? 0 : verify_flush(c, w);
}

int cache_verify(struct cache *c, struct cache_verify_report *r)
{
	struct verify_walk *w;
	int ret;

	r->checked = r->bytes = r->bad = r->missing = r->orphans = 0;
	/* Index what is on disk first, so the walk can mark it durable. */
	pthread_mutex_lock(&c->db_lock);
	ret = cache_reconcile_locked(c, &r->orphans, &r->missing);
	pthread_mutex_unlock(&c->db_lock);
	if (ret < 0)
		return ret;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->r = r;
	w->lanes = sha256_mb_lanes();
	if (w->lanes < 1 || w->lanes > SHA256_MB_MAX)
		w->lanes = w->lanes < 1 ? 1 : SHA256_MB_MAX;
	ret = cache_walk_blocks(c, verify_file, w);
	if (ret >= 0)
		ret = verify_flush(c, w);
	for (size_t i = 0; i < SHA256_MB_MAX; i++)
		free(w->slot[i].buf);
	free(w);
	return ret;
}

int cache_block_verify(struct cache *c, const struct digest *d,
		       uint64_t *size)
{
	char path[CACHE_PATH_MAX], hex[DIGEST_HEX_LEN + 1];
	struct digest got;
	uint64_t xxh = 0, len = 0;
	int ret;

	ret = cache_block_path(c, d, path, sizeof(path));
	if (ret < 0)
		return ret;
	ret = hash_file(path, &got, &xxh, &len);
	if (ret == -ENOENT)
		return ret;
	if (ret == 0 && digest_equal(&got, d)) {
		pthread_mutex_lock(&c->db_lock);
		cache_mark_durable_locked(c, d, xxh);
		pthread_mutex_unlock(&c->db_lock);
		cache_suspect_clear(c, d);
		if (size)
			*size = len;
		return 0;
	}
	digest_to_hex(d, hex);
	log_error("cache: block %s %s; removed", hex,
		  ret < 0 ? strerror(-ret) : "does not match its name");
	ATOMIC_ADD(&c->corrupt, 1);
	unlink(path);
	pthread_mutex_lock(&c->db_lock);
	cache_forget_block_locked(c, d);
	pthread_mutex_unlock(&c->db_lock);
	return -EIO;
}
