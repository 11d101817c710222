/*
 * cache - content-addressed block cache shared by every assetfs process
 * using the same directory. The contract is in cache.h; the shared
 * internals (struct cache, lock order) in cache_int.h. This file is the
 * process side: opening and closing, the maintenance thread, the hit path
 * and writes. cache_lock.c holds the fetch locks, cache_index.c the sqlite
 * index, cache_admin.c the walks over the block files (rebuild, gc,
 * verify).
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/buf.h"
#include "common/fileutil.h"
#include "common/log.h"

int64_t cache_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cache_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t cache_digest_key64(const struct digest *d)
{
	uint64_t k;

	memcpy(&k, d->b, sizeof(k));
	return k;
}

static struct dent *dset_slot(const struct dset *s, const struct digest *d)
{
	size_t mask = s->cap - 1;
	size_t i = (size_t)cache_digest_key64(d) & mask;

	for (;;) {
		struct dent *e = &s->e[i];

		if (e->v == 0 || digest_equal(&e->d, d))
			return e;
		i = (i + 1) & mask;
	}
}

struct dent *cache_dset_find(const struct dset *s, const struct digest *d)
{
	struct dent *e;

	if (!s->cap)
		return NULL;
	e = dset_slot(s, d);
	return e->v ? e : NULL;
}

/*
 * Set @d to @v (non-zero), keeping the larger value when present. Grows at
 * half load up to @limit entries. Returns 0, -ENOSPC at the limit, -ENOMEM.
 */
int cache_dset_put(struct dset *s, const struct digest *d, int64_t v,
		   size_t limit)
{
	struct dent *e = cache_dset_find(s, d);

	if (e) { /* present: update in place, never grows */
		if (v > e->v)
			e->v = v;
		return 0;
	}
	if (s->n + 1 > s->cap / 2) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct dset ns = {0};
		size_t i;

		if (s->n + 1 > limit)
			return -ENOSPC;
		ns.e = calloc(ncap, sizeof(*ns.e));
		if (!ns.e)
			return -ENOMEM;
		ns.cap = ncap;
		for (i = 0; i < s->cap; i++) {
			if (s->e[i].v)
				*dset_slot(&ns, &s->e[i].d) = s->e[i];
		}
		ns.n = s->n;
		free(s->e);
		*s = ns;
	}
	e = dset_slot(s, d);
	if (!e->v) {
		e->d = *d;
		e->v = v;
		s->n++;
	} else if (v > e->v) {
		e->v = v;
	}
	return 0;
}

void cache_dset_free(struct dset *s)
{
	free(s->e);
	memset(s, 0, sizeof(*s));
}

int cache_path_fmt(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int cache_block_path(const struct cache *c, const struct digest *d, char *out,
		     size_t len)
{
	char hex[DIGEST_HEX_LEN + 1];

	digest_to_hex(d, hex);
	return cache_path_fmt(out, len, "%s/blocks/%.2s/%s", c->dir, hex, hex);
}

const char *cache_dir(const struct cache *c)
{
	return c->dir;
}

void cache_opts_init(struct cache_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max.bytes = CACHE_DEFAULT_SIZE;
	o->min_free.pct = CACHE_DEFAULT_MIN_FREE_PCT;
}

int cache_parse_size(const char *s, struct cache_size *out)
{
	uint64_t ip = 0, frac = 0, fscale = 1, mult = 1;
	const char *p = s;
	bool digits = false;

	if (!s)
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		if (ip > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		ip = ip * 10 + (uint64_t)(*p++ - '0');
		digits = true;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (fscale < 1000) { /* 3 digits: no overflow below */
				frac = frac * 10 + (uint64_t)(*p - '0');
				fscale *= 10;
			}
			p++;
			digits = true;
		}
	}
	if (!digits)
		return -EINVAL;
	if (*p == '%') {
		if (p[1] || frac || ip > 100)
			return -EINVAL;
		out->bytes = 0;
		out->pct = (unsigned)ip;
		return 0;
	}
	switch (*p) {
	case 'k':
	case 'K':
		mult = 1ULL << 10;
		p++;
		break;
	case 'm':
	case 'M':
		mult = 1ULL << 20;
		p++;
		break;
	case 'g':
	case 'G':
		mult = 1ULL << 30;
		p++;
		break;
	case 't':
	case 'T':
		mult = 1ULL << 40;
		p++;
		break;
	default:
		break;
	}
	if (mult > 1 && *p == 'i')
		p++;
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p)
		return -EINVAL;
	if (frac && mult == 1)
		return -EINVAL; /* fractional bytes */
	if (ip > UINT64_MAX / mult ||
	    ip * mult > UINT64_MAX - frac * mult / fscale)
		return -EINVAL;
	out->bytes = ip * mult + frac * mult / fscale;
	out->pct = 0;
	return 0;
}

int cache_default_dir(char *out, size_t len)
{
	const char *x = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");

	if (geteuid() == 0)
		return cache_path_fmt(out, len, "/var/cache/assetfs");
	if (x && x[0] == '/')
		return cache_path_fmt(out, len, "%s/assetfs", x);
	if (home && home[0])
		return cache_path_fmt(out, len, "%s/.cache/assetfs", home);
	return -ENOENT;
}

uint64_t cache_size_resolve(const struct cache_size *s, const struct statvfs *v)
{
	if (s->pct)
		return (uint64_t)v->f_blocks * v->f_frsize / 100 * s->pct;
	return s->bytes;
}

uint64_t cache_disk_free(const struct cache *c)
{
	struct statvfs v;

	if (statvfs(c->dir, &v) < 0)
		return UINT64_MAX; /* unknown: do not evict for it */
	return (uint64_t)v.f_bavail * v.f_frsize;
}

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
		ret = cache_db_begin(c);
		if (ret == 0)
			ret = cache_db_end(c, cache_del_block_locked(c, d));
	} else {
		s = cache_st(c, ST_SET_STATE);
		ret = s ? 0 : -EIO;
		if (s) {
			sqlite3_bind_blob(s, 1, d->b, DIGEST_LEN,
					  SQLITE_STATIC);
			sqlite3_bind_int(s, 2, BLK_DURABLE);
			sqlite3_bind_int64(s, 3, (int64_t)got_xxh);
			ret = cache_st_done(c, s);
		}
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
		t->fd = open(t->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			     0444);
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
static int txn_sha256(struct cache *c, struct cache_txn *t,
		      struct digest *out)
{
	void *map = NULL;
	int ret;

	/* a block is at most a manifest block: size_t holds it */
	if (t->len) {
		map = mmap(NULL, (size_t)t->len, PROT_READ,
			   MAP_SHARED | MAP_POPULATE, t->fd, 0);
		if (map == MAP_FAILED)
			return -errno; /* still announced: abort takes it back */
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
		{
			/* freshly written: no longer suspect in our eyes */
			struct dent *e = cache_dset_find(&c->suspect, &sum);

			if (e && e->v > 0) {
				e->v = -1;
				c->suspect_live--;
			}
		}
		pthread_mutex_unlock(&c->mem_lock);
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
