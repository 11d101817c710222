/*
 * cache_admin - walks over the block files: removal of dead writers' temp
 * files, reconciliation of the index with the files (the files are the
 * truth; used to rebuild a lost index), gc, and verify (re-hash every
 * block against its name).
 *
 * These are slow paths. Reconciliation runs inside one write transaction
 * so no commit from another process slips between the directory walk and
 * the row scan. Errors: 0 or a negative errno.
 */
#include "fs/cache/cache.h"
#include "fs/cache/cache_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/fileutil.h"
#include "common/log.h"
#include "common/sha256_mb.h"

/*
 * Remove temp files of dead writers: a live writer holds flock() on its
 * temp file from just after creating it, so a file we can lock is dead,
 * unless it is empty and new (a writer between open and flock).
 */
int cache_clean_tmp(struct cache *c, uint64_t *removed)
{
	char path[CACHE_PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int fd, ret;

	*removed = 0;
	ret = cache_path_fmt(path, sizeof(path), "%s/tmp", c->dir);
	if (ret < 0)
		return ret;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		fd = openat(dirfd(d), de->d_name,
			    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
		    (st.st_size > 0 ||
		     st.st_mtime + CACHE_TMP_MIN_AGE < time(NULL))) {
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				(*removed)++;
		}
		close(fd);
	}
	closedir(d);
	return 0;
}

static bool is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < DIGEST_HEX_LEN; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return s[DIGEST_HEX_LEN] == '\0';
}

/*
 * Calls @fn for each file blocks/<xx>/<64 hex> whose prefix matches. Stops
 * at the first negative return of @fn and returns it.
 */
static int walk_blocks(struct cache *c,
		       int (*fn)(struct cache *c, const struct digest *d,
				 const char *path, void *arg),
		       void *arg)
{
	char path[CACHE_PATH_MAX];
	struct digest d;
	struct dirent *de;
	DIR *dir;
	int i, ret = 0;

	for (i = 0; i < 256 && ret >= 0; i++) {
		if (cache_path_fmt(path, sizeof(path), "%s/blocks/%02x", c->dir,
				   i))
			return -ENAMETOOLONG;
		dir = opendir(path);
		if (!dir)
			continue;
		while (ret >= 0 && (de = readdir(dir))) {
			char fpath[CACHE_PATH_MAX];

			if (!is_hex64(de->d_name) ||
			    strncmp(de->d_name, path + strlen(path) - 2, 2))
				continue;
			if (digest_from_hex(de->d_name, &d) < 0)
				continue;
			if (cache_path_fmt(fpath, sizeof(fpath), "%s/%s", path,
					   de->d_name))
				continue;
			ret = fn(c, &d, fpath, arg);
		}
		closedir(dir);
	}
	return ret;
}

struct reconcile {
	struct dset seen;
	uint64_t orphans;
	uint64_t missing;
	int state; /* for orphans added */
};

static int reconcile_file(struct cache *c, const struct digest *d,
			  const char *path, void *arg)
{
	struct reconcile *r = arg;
	struct stat st;
	int ret;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	ret = cache_dset_put(&r->seen, d, 1, SIZE_MAX);
	if (ret < 0)
		return ret;
	ret = cache_block_row_exists(c, d);
	if (ret != 0)
		return ret < 0 ? ret : 0;
	r->orphans++;
	/* Unknown history: old atime so it goes first, suspect until read. */
	return cache_put_block_row(c, d, (uint64_t)st.st_size, NULL,
				   (int64_t)st.st_mtime * 1000000, r->state);
}

/*
 * Make the index match the block files: add rows for files it lacks (as
 * suspect: we do not know whether they were durable) and drop rows whose
 * file is gone. Runs in one write txn so no commit slips between the walk
 * and the row scan. Caller holds db_lock.
 */
int cache_reconcile_locked(struct cache *c, uint64_t *orphans,
			   uint64_t *missing)
{
	struct reconcile r = {.state = BLK_SUSPECT};
	int64_t young = cache_now_us() - 10 * 1000000;
	struct digest gone[64];
	sqlite3_stmt *s = NULL;
	int n, i, rc, ret;

	ret = cache_db_begin(c);
	if (ret < 0)
		return ret;
	ret = walk_blocks(c, reconcile_file, &r);
	if (ret < 0)
		goto out;
	/* rows no digest can name (a damaged index) would stall the paging */
	rc = sqlite3_exec(c->db,
			  "DELETE FROM blocks WHERE typeof(digest) != 'blob'"
			  " OR length(digest) != 32",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		ret = cache_sqlite_err(rc);
		goto out;
	}
	/*
	 * A row younger than a few seconds may belong to a commit in another
	 * process that is between committing its row and renaming its file:
	 * leave it (if it really is a ghost, the LRU ages it out).
	 */
	rc = sqlite3_prepare_v2(c->db,
				"SELECT digest FROM blocks WHERE"
				" digest > ?1 AND wtime < ?2"
				" ORDER BY digest LIMIT 256",
				-1, &s, NULL);
	if (rc != SQLITE_OK) {
		ret = cache_sqlite_err(rc);
		goto out;
	}
	{
		struct digest last = {{0}};
		bool more = true;

		while (more) {
			n = 0;
			more = false;
			sqlite3_reset(s);
			sqlite3_bind_blob(s, 1, last.b, DIGEST_LEN,
					  SQLITE_TRANSIENT);
			sqlite3_bind_int64(s, 2, young);
			while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
				const void *b = sqlite3_column_blob(s, 0);
				struct digest d;

				more = true;
				memcpy(d.b, b, DIGEST_LEN); /* length checked */
				last = d;
				if (!cache_dset_find(&r.seen, &d))
					gone[n++] = d;
				if (n == 64)
					break; /* next page starts at last */
			}
			sqlite3_reset(s);
			for (i = 0; i < n; i++) {
				ret = cache_del_block_locked(c, &gone[i]);
				if (ret < 0)
					goto out;
				r.missing++;
			}
		}
	}
	ret = 0;
out:
	sqlite3_finalize(s);
	cache_dset_free(&r.seen);
	ret = cache_db_end(c, ret);
	if (ret == 0) {
		if (orphans)
			*orphans = r.orphans;
		if (missing)
			*missing = r.missing;
	}
	return ret;
}

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
	sqlite3_stmt *s;

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
		if (cache_db_begin(c) == 0)
			cache_db_end(c, cache_del_block_locked(c, d));
		pthread_mutex_unlock(&c->db_lock);
		return;
	}
	/* Good: now known durable, with a fresh xxh3. */
	pthread_mutex_lock(&c->db_lock);
	s = cache_st(c, ST_SET_STATE);
	if (s) {
		sqlite3_bind_blob(s, 1, d->b, DIGEST_LEN, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, BLK_DURABLE);
		sqlite3_bind_int64(s, 3, (int64_t)xxh);
		cache_st_done(c, s);
	}
	pthread_mutex_unlock(&c->db_lock);
	pthread_mutex_lock(&c->mem_lock);
	{
		struct dent *e = cache_dset_find(&c->suspect, d);

		if (e && e->v > 0) {
			e->v = -1;
			c->suspect_live--;
		}
	}
	pthread_mutex_unlock(&c->mem_lock);
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

/* walk_blocks() callback: queue the file, hash the group once full. */
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
	ret = walk_blocks(c, verify_file, w);
	if (ret >= 0)
		ret = verify_flush(c, w);
	for (size_t i = 0; i < SHA256_MB_MAX; i++)
		free(w->slot[i].buf);
	free(w);
	return ret;
}
