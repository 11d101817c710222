/*
 * cache - content-addressed block cache shared by every assetfs process
 * using the same directory. The contract is in cache.h; this file keeps
 * the moving parts:
 *
 * - The index (sqlite, WAL, synchronous=NORMAL) holds one row per block
 *   (size, xxh3, last access, write time, state) and running totals kept by
 *   triggers, so the shared quota is one cheap read. Every change to blocks
 *   happens in a BEGIN IMMEDIATE transaction, which serialises eviction and
 *   publication across all processes using the dir.
 * - Block state: 0 = written in this boot, not yet known durable; 1 =
 *   durable (a syncfs() ran after it was written, or it was re-hashed);
 *   2 = suspect (state 0 from a previous boot, or found on disk without an
 *   index row): checked before it is served.
 * - The hit path opens the file and records the access in an in-memory
 *   table (c->touch, under c->mem_lock); the maintenance thread flushes it
 *   every CACHE_FLUSH_MS, and commits flush it before choosing victims.
 *   Suspect digests are mirrored in memory (c->suspect) so a hit needs no
 *   sqlite unless the block is suspect.
 * - Fetch locks are OFD byte-range locks on locks/blocks.lock: one file,
 *   nothing to clean up, released by the kernel when the holder dies,
 *   exclusive between threads because each lock has its own open file
 *   description.
 *
 * Locks: c->db_lock (the sqlite connection and its statements) may be held
 * while taking c->mem_lock, never the reverse. Counters are atomics.
 */
#include "fs/cache.h"

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
#include <xxhash.h>

#include "common/fileutil.h"
#include "common/log.h"

#define CACHE_FLUSH_MS 2000           /* batched access times */
#define CACHE_SYNC_MS 30000           /* syncfs + mark durable */
#define CACHE_TOUCH_MAX (1u << 16)    /* touches kept between flushes */
#define CACHE_TMP_MIN_AGE 1           /* s: empty temp files younger are live */
#define CACHE_BUSY_MS 10000           /* sqlite busy timeout */
#define CACHE_IO_CHUNK (1u << 20)

enum { BLK_FRESH = 0, BLK_DURABLE = 1, BLK_SUSPECT = 2 };

enum cache_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_TOUCH,
	ST_GET_BLOCK,
	ST_PUT_BLOCK,
	ST_DEL_BLOCK,
	ST_VICTIMS,
	ST_TOTALS,
	ST_SET_STATE,
	ST_OBJ_GET,
	ST_OBJ_PUT,
	ST_DOC_GET,
	ST_DOC_PUT,
	ST_META_GET,
	ST_META_PUT,
	ST_COUNT_SUSPECT,
	ST_COUNT_DOCS,
	ST_COUNT_OBJ,
	ST__N,
};

static const char *const cache_sql[ST__N] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_TOUCH] = "UPDATE blocks SET atime=?2 WHERE digest=?1 AND atime<?2",
	[ST_GET_BLOCK] = "SELECT size, xxh3, state FROM blocks WHERE digest=?1",
	[ST_PUT_BLOCK] = "INSERT INTO blocks(digest,size,xxh3,atime,wtime,state)"
			 " VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(digest) DO"
			 " UPDATE SET size=excluded.size, xxh3=excluded.xxh3,"
			 " atime=excluded.atime, wtime=excluded.wtime,"
			 " state=excluded.state",
	[ST_DEL_BLOCK] = "DELETE FROM blocks WHERE digest=?1",
	[ST_VICTIMS] = "SELECT digest, size FROM blocks ORDER BY atime LIMIT 64",
	[ST_TOTALS] = "SELECT blocks, bytes FROM totals WHERE id=0",
	[ST_SET_STATE] = "UPDATE blocks SET state=?2, xxh3=?3 WHERE digest=?1",
	[ST_OBJ_GET] = "SELECT digest FROM objblocks WHERE store=?1 AND okey=?2"
		       " AND etag=?3 AND bsize=?4 AND idx=?5",
	[ST_OBJ_PUT] = "INSERT OR REPLACE INTO objblocks(store,okey,etag,bsize,"
		       "idx,digest) VALUES(?1,?2,?3,?4,?5,?6)",
	[ST_DOC_GET] = "SELECT data, etag, stored_at FROM docs WHERE store=?1"
		       " AND dkey=?2",
	[ST_DOC_PUT] = "INSERT OR REPLACE INTO docs(store,dkey,etag,stored_at,"
		       "data) VALUES(?1,?2,?3,?4,?5)",
	[ST_META_GET] = "SELECT v FROM meta WHERE k=?1",
	[ST_META_PUT] = "INSERT OR REPLACE INTO meta(k,v) VALUES(?1,?2)",
	[ST_COUNT_SUSPECT] = "SELECT count(*) FROM blocks WHERE state=2",
	[ST_COUNT_DOCS] = "SELECT count(*) FROM docs",
	[ST_COUNT_OBJ] = "SELECT count(*) FROM objblocks",
};

static const char cache_schema[] =
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT);"
	"CREATE TABLE IF NOT EXISTS blocks(digest BLOB PRIMARY KEY,"
	" size INTEGER NOT NULL, xxh3 INTEGER, atime INTEGER NOT NULL,"
	" wtime INTEGER NOT NULL, state INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS blocks_atime ON blocks(atime);"
	"CREATE TABLE IF NOT EXISTS totals(id INTEGER PRIMARY KEY,"
	" blocks INTEGER NOT NULL, bytes INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO totals VALUES(0, 0, 0);"
	"CREATE TRIGGER IF NOT EXISTS blocks_ins AFTER INSERT ON blocks BEGIN"
	" UPDATE totals SET blocks=blocks+1, bytes=bytes+NEW.size WHERE id=0;"
	" END;"
	"CREATE TRIGGER IF NOT EXISTS blocks_del AFTER DELETE ON blocks BEGIN"
	" UPDATE totals SET blocks=blocks-1, bytes=bytes-OLD.size WHERE id=0;"
	" END;"
	"CREATE TRIGGER IF NOT EXISTS blocks_upd AFTER UPDATE OF size ON blocks"
	" BEGIN UPDATE totals SET bytes=bytes-OLD.size+NEW.size WHERE id=0;"
	" END;"
	"CREATE TABLE IF NOT EXISTS objblocks(store TEXT NOT NULL,"
	" okey TEXT NOT NULL, etag TEXT NOT NULL, bsize INTEGER NOT NULL,"
	" idx INTEGER NOT NULL, digest BLOB NOT NULL,"
	" PRIMARY KEY(store, okey, etag, bsize, idx)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS docs(store TEXT NOT NULL,"
	" dkey TEXT NOT NULL, etag TEXT, stored_at INTEGER NOT NULL,"
	" data BLOB NOT NULL, PRIMARY KEY(store, dkey)) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO meta VALUES('schema', '1');";

/* An open-addressing digest -> value table; value 0 marks a free slot. */
struct dent {
	struct digest d;
	int64_t v;
};

struct dset {
	struct dent *e;
	size_t cap; /* power of two, or 0 */
	size_t n;
};

struct cache {
	char *dir;
	char lock_path[CACHE_PATH_MAX];
	char boot_id[64];
	uint64_t max_bytes;
	uint64_t min_free_bytes;
	bool inspect;

	pthread_mutex_t db_lock;
	sqlite3 *db;                 /* protected by db_lock */
	sqlite3_stmt *st[ST__N];     /* protected by db_lock */
	int64_t last_time;           /* protected by db_lock */

	pthread_mutex_t mem_lock;
	struct dset touch;           /* protected by mem_lock */
	struct dset suspect;         /* protected by mem_lock; 1 / -1 done */
	size_t suspect_live;         /* protected by mem_lock */

	pthread_t maint;
	bool maint_running;
	pthread_cond_t maint_cond;   /* with mem_lock */
	bool maint_stop;             /* protected by mem_lock */
	bool dirty;                  /* protected by mem_lock: unsynced writes */

	/*
	 * Fetch-lock keys held by this process, so that our own waiters
	 * sleep on a condvar and wake at once, instead of polling the OFD
	 * lock (which is what waiters in other processes do).
	 */
	pthread_mutex_t lk_lock;     /* a leaf lock */
	pthread_cond_t lk_cond;      /* with lk_lock; broadcast on unlock */
	struct held_key *held;       /* protected by lk_lock */

	uint64_t tmp_seq;            /* atomic */
	uint64_t hits, misses, bytes_written, blocks_written; /* atomic */
	uint64_t evictions, bytes_evicted, mismatches, corrupt; /* atomic */
};

struct cache_txn {
	struct cache *c;
	int fd;
	char path[CACHE_PATH_MAX];
	struct hasher *sha;
	XXH3_state_t *xxh;
	uint64_t len;
	int err;
};

struct held_key {
	uint64_t key;
	struct held_key *next;
};

struct cache_lock {
	struct cache *c;
	uint64_t key;
	int fd;
};

#define ATOMIC_ADD(p, n) __atomic_add_fetch((p), (n), __ATOMIC_RELAXED)
#define ATOMIC_GET(p) __atomic_load_n((p), __ATOMIC_RELAXED)

/* ---- small helpers ---------------------------------------------------- */

/* The one place SQLITE_* result codes become errno values. */
static int cache_sqlite_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_TOOBIG:
		return -EFBIG;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
		return -EINVAL;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	default:
		return -EIO;
	}
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t digest_key64(const struct digest *d)
{
	uint64_t k;

	memcpy(&k, d->b, sizeof(k));
	return k;
}

static struct dent *dset_slot(const struct dset *s, const struct digest *d)
{
	size_t mask = s->cap - 1;
	size_t i = (size_t)digest_key64(d) & mask;

	for (;;) {
		struct dent *e = &s->e[i];

		if (e->v == 0 || digest_equal(&e->d, d))
			return e;
		i = (i + 1) & mask;
	}
}

static struct dent *dset_find(const struct dset *s, const struct digest *d)
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
static int dset_put(struct dset *s, const struct digest *d, int64_t v,
		    size_t limit)
{
	struct dent *e;

	if (s->n + 1 > s->cap / 2) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct dset ns = { 0 };
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

static void dset_free(struct dset *s)
{
	free(s->e);
	memset(s, 0, sizeof(*s));
}

static int path_fmt(char *out, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int path_fmt(char *out, size_t len, const char *fmt, ...)
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

int cache_block_path(const struct cache *c, const struct digest *d,
		     char *out, size_t len)
{
	char hex[DIGEST_HEX_LEN + 1];

	digest_to_hex(d, hex);
	return path_fmt(out, len, "%s/blocks/%.2s/%s", c->dir, hex, hex);
}

const char *cache_dir(const struct cache *c)
{
	return c->dir;
}

/* ---- sizes and defaults ------------------------------------------------ */

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
			if (fscale < 1000000000ULL) {
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
	case 'k': case 'K': mult = 1ULL << 10; p++; break;
	case 'm': case 'M': mult = 1ULL << 20; p++; break;
	case 'g': case 'G': mult = 1ULL << 30; p++; break;
	case 't': case 'T': mult = 1ULL << 40; p++; break;
	default: break;
	}
	if (mult > 1 && *p == 'i')
		p++;
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p)
		return -EINVAL;
	if (ip > UINT64_MAX / mult)
		return -EINVAL;
	out->bytes = ip * mult + frac * mult / fscale;
	if (frac && mult == 1)
		return -EINVAL; /* fractional bytes */
	out->pct = 0;
	return 0;
}

int cache_default_dir(char *out, size_t len)
{
	const char *x = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");

	if (geteuid() == 0)
		return path_fmt(out, len, "/var/cache/assetfs");
	if (x && x[0] == '/')
		return path_fmt(out, len, "%s/assetfs", x);
	if (home && home[0])
		return path_fmt(out, len, "%s/.cache/assetfs", home);
	return -ENOENT;
}

static uint64_t size_resolve(const struct cache_size *s, const struct statvfs *v)
{
	if (s->pct)
		return (uint64_t)v->f_blocks * v->f_frsize / 100 * s->pct;
	return s->bytes;
}

static uint64_t disk_free(const struct cache *c)
{
	struct statvfs v;

	if (statvfs(c->dir, &v) < 0)
		return UINT64_MAX; /* unknown: do not evict for it */
	return (uint64_t)v.f_bavail * v.f_frsize;
}

/* ---- sqlite plumbing ---------------------------------------------------- */

/* Caller holds c->db_lock. Returns a reset statement or NULL (logged). */
static sqlite3_stmt *stmt(struct cache *c, enum cache_stmt id)
{
	int rc;

	if (!c->st[id]) {
		rc = sqlite3_prepare_v3(c->db, cache_sql[id], -1,
					SQLITE_PREPARE_PERSISTENT, &c->st[id],
					NULL);
		if (rc != SQLITE_OK) {
			log_error("cache: prepare \"%s\": %s", cache_sql[id],
				  sqlite3_errmsg(c->db));
			return NULL;
		}
	}
	sqlite3_reset(c->st[id]);
	sqlite3_clear_bindings(c->st[id]);
	return c->st[id];
}

/* Run a statement that returns no rows; resets it. Returns 0 or -errno. */
static int st_done(struct cache *c, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		log_warn("cache: index: %s", sqlite3_errmsg(c->db));
		return cache_sqlite_err(rc);
	}
	return 0;
}

static int simple(struct cache *c, enum cache_stmt id)
{
	sqlite3_stmt *s = stmt(c, id);

	return s ? st_done(c, s) : -EIO;
}

static int db_begin(struct cache *c)
{
	return simple(c, ST_BEGIN);
}

static int db_end(struct cache *c, int ret)
{
	if (ret < 0) {
		simple(c, ST_ROLLBACK);
		return ret;
	}
	ret = simple(c, ST_COMMIT);
	if (ret < 0)
		simple(c, ST_ROLLBACK);
	return ret;
}

static int meta_get(struct cache *c, const char *k, char *out, size_t len)
{
	sqlite3_stmt *s = stmt(c, ST_META_GET);
	const unsigned char *v;
	int rc, ret = -ENOENT;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		v = sqlite3_column_text(s, 0);
		ret = path_fmt(out, len, "%s", v ? (const char *)v : "");
	} else if (rc != SQLITE_DONE) {
		ret = cache_sqlite_err(rc);
	}
	sqlite3_reset(s);
	return ret;
}

static int meta_put(struct cache *c, const char *k, const char *v)
{
	sqlite3_stmt *s = stmt(c, ST_META_PUT);

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, v, -1, SQLITE_STATIC);
	return st_done(c, s);
}

/* Strictly increasing per process, so LRU order of our own writes holds. */
static int64_t cache_now(struct cache *c)
{
	int64_t t = now_us();

	if (t <= c->last_time)
		t = c->last_time + 1;
	c->last_time = t;
	return t;
}

/* ---- access times -------------------------------------------------------- */

static void touch_mem(struct cache *c, const struct digest *d)
{
	int64_t t = now_us();
	bool wake = false;

	pthread_mutex_lock(&c->mem_lock);
	if (dset_put(&c->touch, d, t, CACHE_TOUCH_MAX) == 0)
		wake = c->touch.n >= CACHE_TOUCH_MAX / 2;
	pthread_mutex_unlock(&c->mem_lock);
	if (wake)
		pthread_cond_signal(&c->maint_cond);
}

/* Write batched access times. Caller holds db_lock, inside a txn or not. */
static int flush_touches_locked(struct cache *c)
{
	struct dset t;
	sqlite3_stmt *s;
	size_t i;
	int ret = 0;

	pthread_mutex_lock(&c->mem_lock);
	t = c->touch;
	memset(&c->touch, 0, sizeof(c->touch));
	pthread_mutex_unlock(&c->mem_lock);
	if (!t.n)
		goto out;
	for (i = 0; i < t.cap && ret == 0; i++) {
		if (!t.e[i].v)
			continue;
		s = stmt(c, ST_TOUCH);
		if (!s) {
			ret = -EIO;
			break;
		}
		sqlite3_bind_blob(s, 1, t.e[i].d.b, DIGEST_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, t.e[i].v);
		ret = st_done(c, s);
	}
out:
	dset_free(&t);
	return ret;
}

static int flush_touches(struct cache *c)
{
	int ret;

	pthread_mutex_lock(&c->db_lock);
	ret = db_begin(c);
	if (ret == 0)
		ret = db_end(c, flush_touches_locked(c));
	pthread_mutex_unlock(&c->db_lock);
	return ret;
}

/* ---- eviction ------------------------------------------------------------ */

static int totals_locked(struct cache *c, uint64_t *blocks, uint64_t *bytes)
{
	sqlite3_stmt *s = stmt(c, ST_TOTALS);
	int rc, ret = 0;

	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*blocks = (uint64_t)sqlite3_column_int64(s, 0);
		*bytes = (uint64_t)sqlite3_column_int64(s, 1);
	} else {
		ret = rc == SQLITE_DONE ? -EIO : cache_sqlite_err(rc);
	}
	sqlite3_reset(s);
	return ret;
}

static int del_block_locked(struct cache *c, const struct digest *d)
{
	sqlite3_stmt *s = stmt(c, ST_DEL_BLOCK);

	if (!s)
		return -EIO;
	sqlite3_bind_blob(s, 1, d->b, DIGEST_LEN, SQLITE_STATIC);
	return st_done(c, s);
}

/*
 * Evict least recently used blocks until @need more bytes fit under
 * @target and the disk keeps min_free after writing them. Caller holds
 * db_lock inside a write txn. Returns 0, -ENOSPC if the index runs out of
 * blocks first, or -errno. Victims are unlinked at once: a reader with the
 * file open keeps its bytes.
 */
static int evict_locked(struct cache *c, uint64_t need, uint64_t target)
{
	struct digest v[64];
	uint64_t vsz[64];
	uint64_t blocks, bytes, dfree;
	char path[CACHE_PATH_MAX];
	sqlite3_stmt *s;
	int n, i, rc, ret;

	ret = flush_touches_locked(c);
	if (ret < 0)
		return ret;
	for (;;) {
		ret = totals_locked(c, &blocks, &bytes);
		if (ret < 0)
			return ret;
		dfree = disk_free(c);
		if (bytes + need <= target &&
		    (dfree == UINT64_MAX ||
		     dfree >= need + c->min_free_bytes))
			return 0;
		s = stmt(c, ST_VICTIMS);
		if (!s)
			return -EIO;
		n = 0;
		while (n < 64 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
			const void *b = sqlite3_column_blob(s, 0);

			if (b && sqlite3_column_bytes(s, 0) == DIGEST_LEN) {
				memcpy(v[n].b, b, DIGEST_LEN);
				vsz[n] = (uint64_t)sqlite3_column_int64(s, 1);
				n++;
			}
		}
		sqlite3_reset(s);
		if (n == 0)
			return -ENOSPC;
		/*
		 * Over quota: take just enough of the batch; short of disk:
		 * take it all and look at statvfs again.
		 */
		for (i = 0; i < n; i++) {
			ret = del_block_locked(c, &v[i]);
			if (ret < 0)
				return ret;
			if (cache_block_path(c, &v[i], path, sizeof(path)) == 0)
				unlink(path);
			ATOMIC_ADD(&c->evictions, 1);
			ATOMIC_ADD(&c->bytes_evicted, vsz[i]);
			bytes -= vsz[i] < bytes ? vsz[i] : bytes;
			if (bytes + need <= target &&
			    (dfree == UINT64_MAX ||
			     dfree >= need + c->min_free_bytes))
				break;
		}
	}
}

/* ---- temp files ---------------------------------------------------------- */

/*
 * Remove temp files of dead writers: a live writer holds flock() on its
 * temp file from just after creating it, so a file we can lock is dead,
 * unless it is empty and new (a writer between open and flock).
 */
static int clean_tmp(struct cache *c, uint64_t *removed)
{
	char path[CACHE_PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int fd, ret;

	*removed = 0;
	ret = path_fmt(path, sizeof(path), "%s/tmp", c->dir);
	if (ret < 0)
		return ret;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC |
			    O_NOFOLLOW | O_NONBLOCK);
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

/* ---- opening ------------------------------------------------------------- */

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
	return path_fmt(out, len, "%s", buf);
}

static void db_close(struct cache *c)
{
	int i;

	for (i = 0; i < ST__N; i++) {
		sqlite3_finalize(c->st[i]);
		c->st[i] = NULL;
	}
	sqlite3_close(c->db);
	c->db = NULL;
}

static int quick_check_row(void *arg, int n, char **v, char **names)
{
	bool *ok = arg;

	if (n < 1 || !v[0] || strcmp(v[0], "ok") != 0)
		*ok = false;
	return 0;
}

/*
 * sqlite3_exec() that also retries SQLITE_BUSY where sqlite does not call
 * the busy handler (switching to WAL, recovery by another opener).
 */
static int exec_retry(sqlite3 *db, const char *sql,
		      int (*cb)(void *, int, char **, char **), void *arg,
		      char **err)
{
	int64_t deadline = mono_ms() + CACHE_BUSY_MS;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int rc;

	for (;;) {
		sqlite3_free(*err);
		*err = NULL;
		rc = sqlite3_exec(db, sql, cb, arg, err);
		if ((rc & 0xff) != SQLITE_BUSY || mono_ms() >= deadline)
			return rc;
		nanosleep(&ts, NULL);
	}
}

/* Open index.db and create the schema. Returns 0, -EUCLEAN if corrupt. */
static int db_open(struct cache *c, bool *created)
{
	char path[CACHE_PATH_MAX];
	char *err = NULL;
	bool ok = true;
	struct stat st;
	int rc, ret;

	ret = path_fmt(path, sizeof(path), "%s/index.db", c->dir);
	if (ret < 0)
		return ret;
	*created = stat(path, &st) < 0 || st.st_size == 0;
	if (*created) {
		/* A WAL left beside a lost index must not be replayed. */
		char aux[CACHE_PATH_MAX];

		if (path_fmt(aux, sizeof(aux), "%s-wal", path) == 0)
			unlink(aux);
		if (path_fmt(aux, sizeof(aux), "%s-shm", path) == 0)
			unlink(aux);
	}
	rc = sqlite3_open_v2(path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		ret = cache_sqlite_err(rc);
		goto out;
	}
	sqlite3_busy_timeout(c->db, CACHE_BUSY_MS);
	rc = exec_retry(c->db, "PRAGMA journal_mode=WAL;"
			"PRAGMA synchronous=NORMAL;", NULL, NULL, &err);
	if (rc == SQLITE_OK)
		rc = exec_retry(c->db, "PRAGMA quick_check;", quick_check_row,
				&ok, &err);
	if (rc == SQLITE_OK && !ok)
		rc = SQLITE_CORRUPT;
	if (rc == SQLITE_OK) {
		rc = exec_retry(c->db, "BEGIN IMMEDIATE;", NULL, NULL, &err);
		if (rc == SQLITE_OK) {
			rc = sqlite3_exec(c->db, cache_schema, NULL, NULL,
					  &err);
			sqlite3_exec(c->db, rc == SQLITE_OK ? "COMMIT;" :
				     "ROLLBACK;", NULL, NULL, NULL);
		}
	}
	if (rc != SQLITE_OK) {
		log_warn("cache: %s: %s", path, err ? err : sqlite3_errstr(rc));
		ret = cache_sqlite_err(rc);
		goto out;
	}
	ret = 0;
out:
	sqlite3_free(err);
	if (ret < 0)
		db_close(c);
	return ret;
}

/* Move a corrupt index aside (index.db.corrupt) so a fresh one is built. */
static void db_discard(struct cache *c)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char a[CACHE_PATH_MAX], b[CACHE_PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		if (path_fmt(a, sizeof(a), "%s/index.db%s", c->dir, sfx[i]) ||
		    path_fmt(b, sizeof(b), "%s/index.db.corrupt%s", c->dir,
			     sfx[i]))
			continue;
		if (rename(a, b) < 0 && errno == ENOENT)
			unlink(b);
	}
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
		if (path_fmt(path, sizeof(path), "%s/blocks/%02x", c->dir, i))
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
			if (path_fmt(fpath, sizeof(fpath), "%s/%s", path,
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

static int block_row_exists(struct cache *c, const struct digest *d)
{
	sqlite3_stmt *s = stmt(c, ST_GET_BLOCK);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_blob(s, 1, d->b, DIGEST_LEN, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : cache_sqlite_err(rc);
}

static int put_block_row(struct cache *c, const struct digest *d,
			 uint64_t size, const uint64_t *xxh, int64_t atime,
			 int state)
{
	sqlite3_stmt *s = stmt(c, ST_PUT_BLOCK);

	if (!s)
		return -EIO;
	sqlite3_bind_blob(s, 1, d->b, DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)size);
	if (xxh)
		sqlite3_bind_int64(s, 3, (int64_t)*xxh);
	else
		sqlite3_bind_null(s, 3);
	sqlite3_bind_int64(s, 4, atime);
	sqlite3_bind_int64(s, 5, now_us());
	sqlite3_bind_int(s, 6, state);
	return st_done(c, s);
}

static int reconcile_file(struct cache *c, const struct digest *d,
			  const char *path, void *arg)
{
	struct reconcile *r = arg;
	struct stat st;
	int ret;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	ret = dset_put(&r->seen, d, 1, SIZE_MAX);
	if (ret < 0)
		return ret;
	ret = block_row_exists(c, d);
	if (ret != 0)
		return ret < 0 ? ret : 0;
	r->orphans++;
	/* Unknown history: old atime so it goes first, suspect until read. */
	return put_block_row(c, d, (uint64_t)st.st_size, NULL,
			     (int64_t)st.st_mtime * 1000000, r->state);
}

/*
 * Make the index match the block files: add rows for files it lacks (as
 * suspect: we do not know whether they were durable) and drop rows whose
 * file is gone. Runs in one write txn so no commit slips between the walk
 * and the row scan. Caller holds db_lock.
 */
static int reconcile_locked(struct cache *c, uint64_t *orphans,
			    uint64_t *missing)
{
	struct reconcile r = { .state = BLK_SUSPECT };
	struct digest gone[64];
	sqlite3_stmt *s = NULL;
	int n, i, rc, ret;

	ret = db_begin(c);
	if (ret < 0)
		return ret;
	ret = walk_blocks(c, reconcile_file, &r);
	if (ret < 0)
		goto out;
	rc = sqlite3_prepare_v2(c->db, "SELECT digest FROM blocks WHERE"
				" digest > ?1 ORDER BY digest LIMIT 256", -1,
				&s, NULL);
	if (rc != SQLITE_OK) {
		ret = cache_sqlite_err(rc);
		goto out;
	}
	{
		struct digest last = { { 0 } };
		bool more = true;

		while (more) {
			n = 0;
			more = false;
			sqlite3_reset(s);
			sqlite3_bind_blob(s, 1, last.b, DIGEST_LEN,
					  SQLITE_TRANSIENT);
			while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
				const void *b = sqlite3_column_blob(s, 0);
				struct digest d;

				more = true;
				if (!b || sqlite3_column_bytes(s, 0) !=
						  DIGEST_LEN)
					continue;
				memcpy(d.b, b, DIGEST_LEN);
				last = d;
				if (!dset_find(&r.seen, &d))
					gone[n++] = d;
				if (n == 64)
					break; /* next page starts at last */
			}
			sqlite3_reset(s);
			for (i = 0; i < n; i++) {
				ret = del_block_locked(c, &gone[i]);
				if (ret < 0)
					goto out;
				r.missing++;
			}
		}
	}
	ret = 0;
out:
	sqlite3_finalize(s);
	dset_free(&r.seen);
	ret = db_end(c, ret);
	if (ret == 0) {
		if (orphans)
			*orphans = r.orphans;
		if (missing)
			*missing = r.missing;
	}
	return ret;
}

/* After a reboot: unsynced blocks of the last boot become suspect. */
static int boot_check_locked(struct cache *c)
{
	char old[64] = "";
	int ret;

	ret = db_begin(c);
	if (ret < 0)
		return ret;
	ret = meta_get(c, "boot_id", old, sizeof(old));
	if (ret == -ENOENT || (ret == 0 && strcmp(old, c->boot_id) != 0)) {
		ret = sqlite3_exec(c->db, "UPDATE blocks SET state=2 WHERE"
				   " state=0", NULL, NULL, NULL);
		ret = cache_sqlite_err(ret);
		if (ret == 0 && sqlite3_changes(c->db) > 0)
			log_warn("cache: %s: previous boot ended without a"
				 " sync; %d block(s) will be re-checked",
				 c->dir, sqlite3_changes(c->db));
		if (ret == 0)
			ret = meta_put(c, "boot_id", c->boot_id);
	}
	return db_end(c, ret);
}

static int load_suspects_locked(struct cache *c)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(c->db, "SELECT digest FROM blocks WHERE"
				" state=2", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return cache_sqlite_err(rc);
	pthread_mutex_lock(&c->mem_lock);
	while (ret == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(s, 0);
		struct digest d;

		if (!b || sqlite3_column_bytes(s, 0) != DIGEST_LEN)
			continue;
		memcpy(d.b, b, DIGEST_LEN);
		ret = dset_put(&c->suspect, &d, 1, SIZE_MAX);
		if (ret == 0)
			c->suspect_live++;
	}
	pthread_mutex_unlock(&c->mem_lock);
	if (ret == 0 && rc != SQLITE_DONE)
		ret = cache_sqlite_err(rc);
	sqlite3_finalize(s);
	return ret;
}

static int limits_locked(struct cache *c, const struct cache_opts *o)
{
	struct statvfs v;
	char buf[32];
	int ret;

	if (statvfs(c->dir, &v) < 0)
		return -errno;
	c->max_bytes = size_resolve(&o->max, &v);
	c->min_free_bytes = size_resolve(&o->min_free, &v);
	if (o->inspect) {
		if (meta_get(c, "max_bytes", buf, sizeof(buf)) == 0)
			c->max_bytes = strtoull(buf, NULL, 10);
		if (meta_get(c, "min_free_bytes", buf, sizeof(buf)) == 0)
			c->min_free_bytes = strtoull(buf, NULL, 10);
		return 0;
	}
	snprintf(buf, sizeof(buf), "%" PRIu64, c->max_bytes);
	ret = meta_put(c, "max_bytes", buf);
	snprintf(buf, sizeof(buf), "%" PRIu64, c->min_free_bytes);
	if (ret == 0)
		ret = meta_put(c, "min_free_bytes", buf);
	return ret;
}

/* Mark what was written before @t0 durable: a syncfs() ran after it. */
static int sync_and_mark(struct cache *c)
{
	int64_t t0 = now_us();
	sqlite3_stmt *s = NULL;
	int fd, rc, ret;

	fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syncfs(fd) < 0 ? -errno : 0;
	close(fd);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&c->db_lock);
	rc = sqlite3_prepare_v2(c->db, "UPDATE blocks SET state=1 WHERE"
				" state=0 AND wtime<?1", -1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, t0);
		rc = sqlite3_step(s);
	}
	ret = rc == SQLITE_DONE ? 0 : cache_sqlite_err(rc);
	sqlite3_finalize(s);
	pthread_mutex_unlock(&c->db_lock);
	return ret;
}

static void *maint_main(void *arg)
{
	struct cache *c = arg;
	int64_t last_sync = mono_ms();
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
		flush_touches(c);
		if (dirty && mono_ms() - last_sync >= CACHE_SYNC_MS) {
			pthread_mutex_lock(&c->mem_lock);
			c->dirty = false;
			pthread_mutex_unlock(&c->mem_lock);
			sync_and_mark(c);
			last_sync = mono_ms();
		}
		if (c->min_free_bytes && disk_free(c) < c->min_free_bytes) {
			pthread_mutex_lock(&c->db_lock);
			if (db_begin(c) == 0)
				db_end(c, evict_locked(c, 0, c->max_bytes));
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

	static const char *const sub[] = { "blocks", "tmp", "locks" };

	ret = mkdir_p(c->dir, 0755);
	if (ret < 0)
		return ret;
	for (i = 0; i < 3; i++) {
		ret = path_fmt(path, sizeof(path), "%s/%s", c->dir, sub[i]);
		if (ret < 0)
			return ret;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	for (i = 0; i < 256; i++) {
		ret = path_fmt(path, sizeof(path), "%s/blocks/%02x", c->dir, i);
		if (ret < 0)
			return ret;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	ret = path_fmt(c->lock_path, sizeof(c->lock_path),
		       "%s/locks/blocks.lock", c->dir);
	if (ret < 0)
		return ret;
	fd = open(c->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

int cache_open(const struct cache_opts *opts, struct cache **out)
{
	char defdir[CACHE_PATH_MAX];
	const char *dir = opts->dir;
	struct cache *c = NULL;
	uint64_t removed = 0, orphans = 0, missing = 0;
	bool created = false;
	int ret;

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
	if (!c->dir) {
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
	clean_tmp(c, &removed);
	if (removed)
		log_info("cache: %s: removed %" PRIu64 " stale temp file(s)",
			 c->dir, removed);

	ret = db_open(c, &created);
	if (ret == -EUCLEAN) {
		log_warn("cache: %s: index.db is corrupt; rebuilding it from"
			 " the block files", c->dir);
		db_discard(c);
		ret = db_open(c, &created);
		created = true;
	}
	if (ret < 0) {
		log_error("cache: %s/index.db: %s", c->dir, strerror(-ret));
		goto out;
	}
	pthread_mutex_lock(&c->db_lock);
	if (created) {
		ret = reconcile_locked(c, &orphans, &missing);
		if (ret == 0 && orphans)
			log_info("cache: %s: index rebuilt: %" PRIu64
				 " block(s), to be re-checked on first read",
				 c->dir, orphans);
	}
	if (ret == 0)
		ret = boot_check_locked(c);
	if (ret == 0)
		ret = limits_locked(c, opts);
	if (ret == 0)
		ret = load_suspects_locked(c);
	pthread_mutex_unlock(&c->db_lock);
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
		flush_touches(c);
		pthread_mutex_lock(&c->mem_lock);
		dirty = c->dirty;
		pthread_mutex_unlock(&c->mem_lock);
		if (dirty)
			sync_and_mark(c);
		db_close(c);
	}
	dset_free(&c->touch);
	dset_free(&c->suspect);
	pthread_cond_destroy(&c->maint_cond);
	pthread_cond_destroy(&c->lk_cond);
	pthread_mutex_destroy(&c->lk_lock);
	pthread_mutex_destroy(&c->mem_lock);
	pthread_mutex_destroy(&c->db_lock);
	free(c->dir);
	free(c);
}

/* ---- hits ---------------------------------------------------------------- */

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
	sqlite3_stmt *s;
	char *buf = NULL;
	off_t off = 0;
	ssize_t n;
	int rc, ret;

	pthread_mutex_lock(&c->db_lock);
	s = stmt(c, ST_GET_BLOCK);
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
			  " shutdown or lost index); removed", hex,
			  have_xxh ? "xxh3" : "sha256");
		ATOMIC_ADD(&c->corrupt, 1);
		if (cache_block_path(c, d, path, sizeof(path)) == 0)
			unlink(path);
		ret = db_begin(c);
		if (ret == 0)
			ret = db_end(c, del_block_locked(c, d));
	} else {
		s = stmt(c, ST_SET_STATE);
		ret = s ? 0 : -EIO;
		if (s) {
			sqlite3_bind_blob(s, 1, d->b, DIGEST_LEN,
					  SQLITE_STATIC);
			sqlite3_bind_int(s, 2, BLK_DURABLE);
			sqlite3_bind_int64(s, 3, (int64_t)got_xxh);
			ret = st_done(c, s);
		}
	}
	pthread_mutex_unlock(&c->db_lock);
	pthread_mutex_lock(&c->mem_lock);
	{
		struct dent *e = dset_find(&c->suspect, d);

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
		      uint64_t *size, bool count_miss)
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
		if (ret == -ENOENT && count_miss)
			ATOMIC_ADD(&c->misses, 1);
		return ret;
	}
	pthread_mutex_lock(&c->mem_lock);
	if (c->suspect_live) {
		struct dent *e = dset_find(&c->suspect, d);

		suspect = e && e->v > 0;
	}
	pthread_mutex_unlock(&c->mem_lock);
	if (suspect) {
		ret = check_suspect(c, d, f);
		if (ret < 0) {
			close(f);
			if (ret == -EIO) {
				ret = -ENOENT;
				if (count_miss)
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

/* ---- fetch locks ----------------------------------------------------------- */

static bool held_has(const struct cache *c, uint64_t key)
{
	const struct held_key *h;

	for (h = c->held; h; h = h->next) {
		if (h->key == key)
			return true;
	}
	return false;
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
 * @key, then claim it in c->held. Returns 0 or -ETIMEDOUT / -ENOMEM.
 */
static int held_claim(struct cache *c, uint64_t key, int64_t deadline)
{
	struct held_key *h;
	struct timespec ts;
	int ret = 0;

	pthread_mutex_lock(&c->lk_lock);
	while (held_has(c, key)) {
		if (mono_ms() >= deadline) {
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
	int64_t deadline = mono_ms() + timeout_ms;
	long delay_us = 100;
	struct cache_lock *lk;
	struct timespec ts;
	int64_t left;
	int fd = -1, ret;

	*out = NULL;
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
		left = deadline - mono_ms();
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
	return lock_at(c, digest_key64(d), timeout_ms, out);
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

	*out = NULL;
	if (!k->store || !k->key || !k->etag)
		return -EINVAL;
	ret = objkey_digest(k, &d);
	if (ret < 0)
		return ret;
	return lock_at(c, digest_key64(&d), timeout_ms, out);
}

/* ---- writes ---------------------------------------------------------------- */

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
	t->sha = hasher_new();
	t->xxh = XXH3_createState();
	if (!t->sha || !t->xxh) {
		ret = -ENOMEM;
		goto fail;
	}
	XXH3_64bits_reset(t->xxh);
	for (tries = 0; tries < 16; tries++) {
		ret = path_fmt(t->path, sizeof(t->path),
			       "%s/tmp/%d.%" PRIu64 ".%" PRIx64, c->dir,
			       (int)getpid(), ATOMIC_ADD(&c->tmp_seq, 1),
			       (uint64_t)now_us());
		if (ret < 0)
			goto fail;
		t->fd = open(t->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			     0444);
		if (t->fd >= 0 || errno != EEXIST)
			break;
	}
	if (t->fd < 0) {
		ret = -errno;
		goto fail;
	}
	/* Marks the temp file live for clean_tmp() in other processes. */
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

int cache_txn_write(struct cache_txn *t, const void *data, size_t len)
{
	int ret;

	if (t->err)
		return t->err;
	ret = write_all(t->fd, data, len);
	if (ret < 0) {
		t->err = ret;
		return ret;
	}
	hasher_update(t->sha, data, len);
	XXH3_64bits_update(t->xxh, data, len);
	t->len += len;
	return 0;
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
	hasher_free(t->sha);
	XXH3_freeState(t->xxh);
	free(t);
}

int cache_txn_commit(struct cache *c, struct cache_txn *t,
		     const struct digest *want, struct digest *got)
{
	char path[CACHE_PATH_MAX], hex[DIGEST_HEX_LEN + 1];
	struct digest sum;
	uint64_t xxh;
	int ret;

	if (t->err) {
		ret = t->err;
		goto out;
	}
	ret = hasher_final(t->sha, &sum);
	if (ret < 0)
		goto out;
	if (got)
		*got = sum;
	xxh = XXH3_64bits_digest(t->xxh);
	if (want && !digest_equal(&sum, want)) {
		char whex[DIGEST_HEX_LEN + 1];

		digest_to_hex(want, whex);
		digest_to_hex(&sum, hex);
		log_error("cache: digest mismatch: expected %s, got %s (%"
			  PRIu64 " bytes); not cached", whex, hex, t->len);
		ATOMIC_ADD(&c->mismatches, 1);
		ret = -EIO;
		goto out;
	}
	ret = cache_block_path(c, &sum, path, sizeof(path));
	if (ret < 0)
		goto out;

	pthread_mutex_lock(&c->db_lock);
	ret = db_begin(c);
	if (ret < 0)
		goto unlock;
	if (t->len > c->max_bytes) {
		ret = -ENOSPC;
		goto end;
	}
	ret = block_row_exists(c, &sum);
	if (ret < 0)
		goto end;
	if (ret == 0) {
		ret = evict_locked(c, t->len, c->max_bytes);
		if (ret < 0)
			goto end;
	}
	if (rename(t->path, path) < 0) {
		ret = -errno;
		goto end;
	}
	t->path[0] = '\0';
	ret = put_block_row(c, &sum, t->len, &xxh, cache_now(c), BLK_FRESH);
end:
	ret = db_end(c, ret);
unlock:
	pthread_mutex_unlock(&c->db_lock);
	if (ret == 0) {
		ATOMIC_ADD(&c->bytes_written, t->len);
		ATOMIC_ADD(&c->blocks_written, 1);
		pthread_mutex_lock(&c->mem_lock);
		c->dirty = true;
		{
			/* freshly written: no longer suspect in our eyes */
			struct dent *e = dset_find(&c->suspect, &sum);

			if (e && e->v > 0) {
				e->v = -1;
				c->suspect_live--;
			}
		}
		pthread_mutex_unlock(&c->mem_lock);
	} else if (ret == -ENOSPC) {
		log_warn("cache: %s: no room for a %" PRIu64 "-byte block"
			 " (cache_size %" PRIu64 ", cache_min_free %" PRIu64
			 ")", c->dir, t->len, c->max_bytes, c->min_free_bytes);
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

/* ---- TOFU map and documents ------------------------------------------------ */

int cache_objblock_get(struct cache *c, const struct cache_objkey *k,
		       struct digest *out)
{
	sqlite3_stmt *s;
	int rc, ret = -ENOENT;

	if (!k->store || !k->key || !k->etag)
		return -EINVAL;
	pthread_mutex_lock(&c->db_lock);
	s = stmt(c, ST_OBJ_GET);
	if (!s) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, k->store, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, k->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, k->etag, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, k->block_size);
	sqlite3_bind_int64(s, 5, (int64_t)k->index);
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
	s = stmt(c, ST_OBJ_PUT);
	if (!s) {
		ret = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, k->store, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, k->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, k->etag, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, k->block_size);
	sqlite3_bind_int64(s, 5, (int64_t)k->index);
	sqlite3_bind_blob(s, 6, d->b, DIGEST_LEN, SQLITE_STATIC);
	ret = st_done(c, s);
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
	s = stmt(c, ST_DOC_PUT);
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
	ret = st_done(c, s);
out:
	pthread_mutex_unlock(&c->db_lock);
	return ret;
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
	s = stmt(c, ST_DOC_GET);
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

/* ---- stats, gc, verify --------------------------------------------------- */

static int64_t count_locked(struct cache *c, enum cache_stmt id)
{
	sqlite3_stmt *s = stmt(c, id);
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
	st->max_bytes = c->max_bytes;
	st->min_free_bytes = c->min_free_bytes;
	st->disk_free_bytes = disk_free(c);
	pthread_mutex_lock(&c->db_lock);
	ret = totals_locked(c, &st->blocks, &st->bytes);
	v = count_locked(c, ST_COUNT_SUSPECT);
	st->suspect_blocks = v > 0 ? (uint64_t)v : 0;
	v = count_locked(c, ST_COUNT_DOCS);
	st->docs = v > 0 ? (uint64_t)v : 0;
	v = count_locked(c, ST_COUNT_OBJ);
	st->objblocks = v > 0 ? (uint64_t)v : 0;
	pthread_mutex_unlock(&c->db_lock);
	return ret;
}

int cache_gc(struct cache *c, uint64_t target, uint64_t *evicted)
{
	uint64_t before = ATOMIC_GET(&c->evictions), removed = 0;
	int ret;

	clean_tmp(c, &removed);
	pthread_mutex_lock(&c->db_lock);
	ret = reconcile_locked(c, NULL, NULL);
	if (ret == 0)
		ret = db_begin(c);
	if (ret == 0) {
		ret = evict_locked(c, 0, target);
		if (ret == -ENOSPC) /* nothing left to evict: as far as we go */
			ret = 0;
		ret = db_end(c, ret);
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

static int verify_file(struct cache *c, const struct digest *d,
		       const char *path, void *arg)
{
	struct cache_verify_report *r = arg;
	char hex[DIGEST_HEX_LEN + 1];
	struct digest got;
	uint64_t xxh = 0, size = 0;
	sqlite3_stmt *s;
	int ret;

	ret = hash_file(path, &got, &xxh, &size);
	if (ret == -ENOENT)
		return 0; /* evicted meanwhile */
	digest_to_hex(d, hex);
	r->checked++;
	r->bytes += size;
	if (ret < 0 || !digest_equal(&got, d)) {
		r->bad++;
		ATOMIC_ADD(&c->corrupt, 1);
		if (r->on_bad)
			r->on_bad(hex, ret < 0 ? strerror(-ret) :
				  "content does not match its name", r->arg);
		log_error("cache: verify: block %s is bad; removed", hex);
		unlink(path);
		pthread_mutex_lock(&c->db_lock);
		if (db_begin(c) == 0)
			db_end(c, del_block_locked(c, d));
		pthread_mutex_unlock(&c->db_lock);
		return 0;
	}
	/* Good: now known durable, with a fresh xxh3. */
	pthread_mutex_lock(&c->db_lock);
	s = stmt(c, ST_SET_STATE);
	if (s) {
		sqlite3_bind_blob(s, 1, d->b, DIGEST_LEN, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, BLK_DURABLE);
		sqlite3_bind_int64(s, 3, (int64_t)xxh);
		st_done(c, s);
	}
	pthread_mutex_unlock(&c->db_lock);
	pthread_mutex_lock(&c->mem_lock);
	{
		struct dent *e = dset_find(&c->suspect, d);

		if (e && e->v > 0) {
			e->v = -1;
			c->suspect_live--;
		}
	}
	pthread_mutex_unlock(&c->mem_lock);
	return 0;
}

int cache_verify(struct cache *c, struct cache_verify_report *r)
{
	int ret;

	r->checked = r->bytes = r->bad = r->missing = r->orphans = 0;
	/* Index what is on disk first, so the walk can mark it durable. */
	pthread_mutex_lock(&c->db_lock);
	ret = reconcile_locked(c, &r->orphans, &r->missing);
	pthread_mutex_unlock(&c->db_lock);
	if (ret < 0)
		return ret;
	return walk_blocks(c, verify_file, r);
}
