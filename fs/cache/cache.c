/*
 * cache - content-addressed block cache shared by every assetfs process
 * using the same directory. The contract is in cache.h; the shared
 * internals (struct cache, lock order, the map of layers) in cache_int.h.
 * This file is the process side: opening and closing, the maintenance
 * thread and the hit path (with the re-check of suspect blocks). Writes
 * are in cache_txn.c; it calls the sqlite layer (cache_index_int.h) and
 * the file walks (cache_scan_int.h), never the admin commands above it.
 *
 * Threads: every call is safe from any thread; the hit path takes only
 * c->mem_lock unless the block is suspect. Errors: 0 or a negative errno.
 */
#include "fs/cache/cache.h"
#include "fs/cache/cache_index_int.h"
#include "fs/cache/cache_int.h"
#include "fs/cache/cache_scan_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/fileutil.h"
#include "common/log.h"

static void touch_mem(struct cache *c, const struct digest *d)
{
	int64_t t = cache_now_us();
	bool wake = false;

	pthread_mutex_lock(&c->mem_lock);
	if (cache_dset_put(&c->touch, d, t, CACHE_TOUCH_MAX) == 0)
		wake = c->touch.n >= CACHE_TOUCH_MAX / 2;
	pthread_mutex_unlock(&c->mem_lock);
	if (wake)
		pthread_cond_signal(&c->maint_cond);
}

static int read_boot_id(char *out, size_t len)
{
	char buf[64] = "";
	ssize_t n;
	int fd;

	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0)
			buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
	}
	if (!buf[0])
		snprintf(buf, sizeof(buf), "unknown");
	return cache_path_fmt(out, len, "%s", buf);
}

static void *maint_main(void *arg)
{
	struct cache *c = arg;
	int64_t last_sync = cache_mono_ms();
	struct timespec ts;
	bool stop, dirty;

	pthread_mutex_lock(&c->mem_lock);
	while (!c->maint_stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += CACHE_FLUSH_MS / 1000;
		pthread_cond_timedwait(&c->maint_cond, &c->mem_lock, &ts);
		stop = c->maint_stop;
		dirty = c->dirty;
		pthread_mutex_unlock(&c->mem_lock);
		if (stop)
			goto relock;
		cache_flush_touches(c);
		if (dirty && cache_mono_ms() - last_sync >= CACHE_SYNC_MS) {
			pthread_mutex_lock(&c->mem_lock);
			c->dirty = false;
			pthread_mutex_unlock(&c->mem_lock);
			cache_sync_and_mark(c);
			last_sync = cache_mono_ms();
		}
		if (c->min_free_bytes &&
		    cache_disk_free(c) < c->min_free_bytes) {
			pthread_mutex_lock(&c->db_lock);
			/* what was evicted is committed whatever the end */
			if (cache_db_begin(c) == 0) {
				cache_evict_locked(c, 0, c->max_bytes);
				cache_db_end(c, 0);
			}
			pthread_mutex_unlock(&c->db_lock);
		}
	relock:
		pthread_mutex_lock(&c->mem_lock);
	}
	pthread_mutex_unlock(&c->mem_lock);
	return NULL;
}

static int make_dirs(struct cache *c)
{
	char path[CACHE_PATH_MAX];
	int i, ret, fd;

	static const char *const sub[] = {"blocks", "tmp", "locks"};

	ret = mkdir_p(c->dir, 0755);
	if (ret < 0)
		return ret;
	for (i = 0; i < 3; i++) {
		ret =
		    cache_path_fmt(path, sizeof(path), "%s/%s", c->dir, sub[i]);
		if (ret < 0)
			return ret;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	for (i = 0; i < 256; i++) {
		ret = cache_path_fmt(path, sizeof(path), "%s/blocks/%02x",
				     c->dir, i);
		if (ret < 0)
			return ret;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	ret = cache_path_fmt(c->lock_path, sizeof(c->lock_path),
			     "%s/locks/blocks.lock", c->dir);
	if (ret < 0)
		return ret;
	fd = open(c->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/*
 * Serialise index setup (creation, rebuild, boot check) between processes
 * opening the same dir at once: one of them must not take the other's
 * brand-new index for a lost one. Returns an fd holding flock(), or -errno
 * (-ETIMEDOUT after CACHE_BUSY_MS).
 */
static int open_lock(struct cache *c)
{
	struct timespec ts = {0, 5 * 1000 * 1000};
	int64_t deadline = cache_mono_ms() + CACHE_BUSY_MS;
	char path[CACHE_PATH_MAX];
	int fd, ret;

	ret = cache_path_fmt(path, sizeof(path), "%s/locks/open.lock", c->dir);
	if (ret < 0)
		return ret;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -errno;
		if (ret != -EWOULDBLOCK && ret != -EINTR)
			goto fail;
		if (cache_mono_ms() >= deadline) {
			ret = -ETIMEDOUT;
			goto fail;
		}
		nanosleep(&ts, NULL);
	}
	return fd;
fail:
	close(fd);
	return ret;
}

int cache_open(const struct cache_opts *opts, struct cache **out)
{
	char defdir[CACHE_PATH_MAX];
	const char *dir = opts->dir;
	struct cache *c = NULL;
	uint64_t removed = 0, orphans = 0, missing = 0;
	bool created = false;
	int ret, olk = -1;

	*out = NULL;
	if (!dir) {
		ret = cache_default_dir(defdir, sizeof(defdir));
		if (ret < 0)
			return ret;
		dir = defdir;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->db_lock, NULL);
	pthread_mutex_init(&c->mem_lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->maint_cond, &ca);
		pthread_cond_init(&c->lk_cond, &ca);
		pthread_condattr_destroy(&ca);
		pthread_mutex_init(&c->lk_lock, NULL);
	}
	c->inspect = opts->inspect;
	c->dir = strdup(dir);
	/* as many hashing threads as CPUs, the extra ones for full passes */
	c->hash = sha256_batch_new(0, 0);
	if (!c->dir || !c->hash) {
		ret = -ENOMEM;
		goto out;
	}
	ret = read_boot_id(c->boot_id, sizeof(c->boot_id));
	if (ret < 0)
		goto out;
	ret = make_dirs(c);
	if (ret < 0) {
		log_error("cache: %s: %s", c->dir, strerror(-ret));
		goto out;
	}
	cache_clean_tmp(c, &removed);
	if (removed)
		log_info("cache: %s: removed %" PRIu64 " stale temp file(s)",
			 c->dir, removed);

	olk = open_lock(c);
	if (olk < 0) {
		ret = olk;
		log_error("cache: %s: waiting for another process opening it:"
			  " %s",
			  c->dir, strerror(-ret));
		goto out;
	}
	ret = cache_db_open(c, &created);
	if (ret == -EUCLEAN) {
		log_warn("cache: %s: index.db is corrupt; rebuilding it from"
			 " the block files",
			 c->dir);
		cache_db_discard(c);
		ret = cache_db_open(c, &created);
		created = true;
	}
	if (ret < 0) {
		log_error("cache: %s/index.db: %s", c->dir, strerror(-ret));
		goto out;
	}
	pthread_mutex_lock(&c->db_lock);
	if (created) {
		ret = cache_reconcile_locked(c, &orphans, &missing);
		if (ret == 0 && orphans)
			log_info("cache: %s: index rebuilt: %" PRIu64
				 " block(s), to be re-checked on first read",
				 c->dir, orphans);
	}
	if (ret == 0)
		ret = cache_boot_check_locked(c);
	if (ret == 0)
		ret = cache_limits_locked(c, opts);
	if (ret == 0)
		ret = cache_load_suspects_locked(c);
	pthread_mutex_unlock(&c->db_lock);
	close(olk); /* drops the flock */
	olk = -1;
	if (ret < 0) {
		log_error("cache: %s/index.db: %s", c->dir, strerror(-ret));
		goto out;
	}
	if (!opts->inspect) {
		ret = -pthread_create(&c->maint, NULL, maint_main, c);
		if (ret < 0)
			goto out;
		c->maint_running = true;
	}
	*out = c;
	c = NULL;
	ret = 0;
out:
	if (olk >= 0)
		close(olk);
	cache_close(&c);
	return ret;
}

void cache_close(struct cache **cp)
{
	struct cache *c = *cp;
	bool dirty;

	if (!c)
		return;
	*cp = NULL;
	if (c->maint_running) {
		pthread_mutex_lock(&c->mem_lock);
		c->maint_stop = true;
		pthread_mutex_unlock(&c->mem_lock);
		pthread_cond_signal(&c->maint_cond);
		pthread_join(c->maint, NULL);
	}
	if (c->db) {
		cache_flush_touches(c);
		pthread_mutex_lock(&c->mem_lock);
		dirty = c->dirty;
		pthread_mutex_unlock(&c->mem_lock);
		if (dirty)
			cache_sync_and_mark(c);
		cache_db_close(c);
	}
	while (c->n_stages > 0)
		free(c->stages[--c->n_stages]);
	cache_dset_free(&c->touch);
	cache_dset_free(&c->suspect);
	cache_dset_free(&c->unsynced);
	pthread_cond_destroy(&c->maint_cond);
	pthread_cond_destroy(&c->lk_cond);
	pthread_mutex_destroy(&c->lk_lock);
	pthread_mutex_destroy(&c->mem_lock);
	pthread_mutex_destroy(&c->db_lock);
	sha256_batch_free(c->hash);
	free(c->dir);
	free(c);
}

/*
 * Re-check a suspect block (open as @fd) against its recorded xxh3, or
 * its SHA-256 when no xxh3 was recorded. Returns 0 when good (now
 * durable), -EIO when bad (removed, counted), or -errno.
 */
static int check_suspect(struct cache *c, const struct digest *d, int fd)
{
	char path[CACHE_PATH_MAX], hex[DIGEST_HEX_LEN + 1];
	struct hasher *sha = NULL;
	XXH3_state_t *xxh = NULL;
	bool have_xxh = false, bad = false;
	uint64_t want_xxh = 0, got_xxh;
	struct digest got;
	struct stat fst, pst;
	sqlite3_stmt *s;
	char *buf = NULL;
	off_t off = 0;
	ssize_t n;
	int rc, ret;

	pthread_mutex_lock(&c->db_lock);
	s = cache_st(c, ST_GET_BLOCK);
	if (!s) {
		pthread_mutex_unlock(&c->db_lock);
		return -EIO;
	}
	sqlite3_bind_blob(s, 1, d->b, DIGEST_LEN, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 1) != SQLITE_NULL) {
		have_xxh = true;
		want_xxh = (uint64_t)sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	pthread_mutex_unlock(&c->db_lock);

	buf = malloc(CACHE_IO_CHUNK);
	sha = hasher_new();
	xxh = XXH3_createState();
	if (!buf || !sha || !xxh) {
		ret = -ENOMEM;
		goto out;
	}
	XXH3_64bits_reset(xxh);
	while ((n = pread(fd, buf, CACHE_IO_CHUNK, off)) > 0) {
		XXH3_64bits_update(xxh, buf, (size_t)n);
		if (!have_xxh)
			hasher_update(sha, buf, (size_t)n);
		off += n;
	}
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	got_xxh = XXH3_64bits_digest(xxh);
	if (have_xxh) {
		bad = got_xxh != want_xxh;
	} else {
		ret = hasher_final(sha, &got);
		if (ret < 0)
			goto out;
		bad = !digest_equal(&got, d);
	}
	digest_to_hex(d, hex);
	pthread_mutex_lock(&c->db_lock);
	if (bad) {
		log_error("cache: block %s failed its %s re-check (unclean"
			  " shutdown or lost index); removed",
			  hex, have_xxh ? "xxh3" : "sha256");
		ATOMIC_ADD(&c->corrupt, 1);
		/* unless someone already replaced it with a good copy */
		if (cache_block_path(c, d, path, sizeof(path)) == 0 &&
		    fstat(fd, &fst) == 0 && stat(path, &pst) == 0 &&
		    fst.st_ino == pst.st_ino && fst.st_dev == pst.st_dev)
			unlink(path);
		ret = cache_forget_block_locked(c, d);
	} else {
		ret = cache_mark_durable_locked(c, d, got_xxh);
	}
	pthread_mutex_unlock(&c->db_lock);
	cache_suspect_clear(c, d);
	if (bad)
		ret = -EIO;
out:
	XXH3_freeState(xxh);
	hasher_free(sha);
	free(buf);
	return ret;
}

static int block_open(struct cache *c, const struct digest *d, int *fd,
		      uint64_t *size, bool count)
{
	char path[CACHE_PATH_MAX];
	bool suspect = false;
	struct stat st;
	int ret, f;

	*fd = -1;
	ret = cache_block_path(c, d, path, sizeof(path));
	if (ret < 0)
		return ret;
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0) {
		ret = -errno;
		if (ret == -ENOENT && count)
			ATOMIC_ADD(&c->misses, 1);
		return ret;
	}
	pthread_mutex_lock(&c->mem_lock);
	if (c->suspect_live) {
		struct dent *e = cache_dset_find(&c->suspect, d);

		suspect = e && e->v > 0;
	}
	pthread_mutex_unlock(&c->mem_lock);
	if (suspect) {
		ret = check_suspect(c, d, f);
		if (ret < 0) {
			close(f);
			if (ret == -EIO) {
				ret = -ENOENT;
				if (count)
					ATOMIC_ADD(&c->misses, 1);
			}
			return ret;
		}
	}
	if (size) {
		if (fstat(f, &st) < 0) {
			ret = -errno;
			close(f);
			return ret;
		}
		*size = (uint64_t)st.st_size;
	}
	touch_mem(c, d);
	if (count)
		ATOMIC_ADD(&c->hits, 1);
	*fd = f;
	return 0;
}

int cache_block_open(struct cache *c, const struct digest *d, int *fd,
		     uint64_t *size)
{
	return block_open(c, d, fd, size, true);
}

int cache_block_recheck(struct cache *c, const struct digest *d, int *fd,
			uint64_t *size)
{
	return block_open(c, d, fd, size, false);
}

int cache_block_stat(struct cache *c, const struct digest *d, uint64_t *size)
{
	char path[CACHE_PATH_MAX];
	struct stat st;
	int ret;

	ret = cache_block_path(c, d, path, sizeof(path));
	if (ret < 0)
		return ret;
	if (stat(path, &st) < 0)
		return -errno;
	if (size)
		*size = (uint64_t)st.st_size;
	return 0;
}
