/*
 * cache_index - the sqlite side of the block cache (index.db): schema,
 * prepared statements, the one SQLITE_* -> errno mapping, block rows and
 * their running totals, batched access times, LRU eviction, crash
 * detection by boot id and the recorded limits. The TOFU map, documents
 * and statistics are in cache_docs.c, over the same statements.
 *
 * Every function named *_locked expects c->db_lock held by the caller;
 * the others take it. Changes to blocks happen inside BEGIN IMMEDIATE
 * transactions, which serialise eviction and publication across every
 * process sharing the cache dir. Calls only cache_util.c below it.
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
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/log.h"

/* clang-format off */
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
	[ST_VICTIMS] = "SELECT digest, size FROM blocks WHERE NOT EXISTS"
		       " (SELECT 1 FROM pinblocks p WHERE p.digest="
		       "blocks.digest) ORDER BY atime LIMIT 64",
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
	[ST_DOC_KEYS] = "SELECT dkey FROM docs WHERE store=?1 AND"
			" substr(dkey,1,?3)=?2 ORDER BY dkey LIMIT ?4",
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
	/* a rowid table: documents reach megabytes (a .versions of 100,000
	   versions), and in a WITHOUT ROWID table every key comparison on
	   the way to a row read a large row's whole overflow chain */
	"CREATE TABLE IF NOT EXISTS docs(store TEXT NOT NULL,"
	" dkey TEXT NOT NULL, etag TEXT, stored_at INTEGER NOT NULL,"
	" data BLOB NOT NULL, PRIMARY KEY(store, dkey));"
	"CREATE TABLE IF NOT EXISTS pins(store TEXT NOT NULL,"
	" spec TEXT NOT NULL, version TEXT NOT NULL, source TEXT NOT NULL,"
	" state INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT '',"
	" pending INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL,"
	" PRIMARY KEY(store, spec, version)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS pinblocks(store TEXT NOT NULL,"
	" spec TEXT NOT NULL, version TEXT NOT NULL, digest BLOB NOT NULL,"
	" size INTEGER NOT NULL,"
	" PRIMARY KEY(store, spec, version, digest)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS pinblocks_digest ON pinblocks(digest);"
	"INSERT OR IGNORE INTO meta VALUES('schema', '1');";

/* An index made before the docs table had rowids: moved over, in the
   schema's transaction (older binaries use either table alike). */
static const char cache_docs_migrate[] =
	"CREATE TABLE docs_rowid(store TEXT NOT NULL,"
	" dkey TEXT NOT NULL, etag TEXT, stored_at INTEGER NOT NULL,"
	" data BLOB NOT NULL, PRIMARY KEY(store, dkey));"
	"INSERT INTO docs_rowid SELECT store, dkey, etag, stored_at, data"
	" FROM docs;"
	"DROP TABLE docs;"
	"ALTER TABLE docs_rowid RENAME TO docs;";

static int docs_without_rowid(void *arg, int n, char **v, char **names)
{
	(void)names;
	if (n >= 1 && v[0] && strstr(v[0], "WITHOUT ROWID"))
		*(bool *)arg = true;
	return 0;
}
/* clang-format on */

int cache_sqlite_err(int rc)
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

sqlite3_stmt *cache_st(struct cache *c, enum cache_stmt id)
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

int cache_st_done(struct cache *c, sqlite3_stmt *s)
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
	sqlite3_stmt *s = cache_st(c, id);

	return s ? cache_st_done(c, s) : -EIO;
}

int cache_db_begin(struct cache *c)
{
	return simple(c, ST_BEGIN);
}

int cache_db_end(struct cache *c, int ret)
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
	sqlite3_stmt *s = cache_st(c, ST_META_GET);
	const unsigned char *v;
	int rc, ret = -ENOENT;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		v = sqlite3_column_text(s, 0);
		ret = cache_path_fmt(out, len, "%s", v ? (const char *)v : "");
	} else if (rc != SQLITE_DONE) {
		ret = cache_sqlite_err(rc);
	}
	sqlite3_reset(s);
	return ret;
}

static int meta_put(struct cache *c, const char *k, const char *v)
{
	sqlite3_stmt *s = cache_st(c, ST_META_PUT);

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, v, -1, SQLITE_STATIC);
	return cache_st_done(c, s);
}

int64_t cache_now(struct cache *c)
{
	int64_t t = cache_now_us();

	if (t <= c->last_time)
		t = c->last_time + 1;
	c->last_time = t;
	return t;
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
		s = cache_st(c, ST_TOUCH);
		if (!s) {
			ret = -EIO;
			break;
		}
		sqlite3_bind_blob(s, 1, t.e[i].d.b, DIGEST_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, t.e[i].v);
		ret = cache_st_done(c, s);
	}
out:
	cache_dset_free(&t);
	return ret;
}

int cache_flush_touches(struct cache *c)
{
	size_t n;
	int ret;

	pthread_mutex_lock(&c->mem_lock);
	n = c->touch.n;
	pthread_mutex_unlock(&c->mem_lock);
	if (!n) /* idle: no write transaction at all */
		return 0;
	pthread_mutex_lock(&c->db_lock);
	ret = cache_db_begin(c);
	if (ret == 0)
		ret = cache_db_end(c, flush_touches_locked(c));
	pthread_mutex_unlock(&c->db_lock);
	return ret;
}

int cache_totals_locked(struct cache *c, uint64_t *blocks, uint64_t *bytes)
{
	sqlite3_stmt *s = cache_st(c, ST_TOTALS);
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

int cache_del_block_locked(struct cache *c, const struct digest *d)
{
	sqlite3_stmt *s = cache_st(c, ST_DEL_BLOCK);

	if (!s)
		return -EIO;
	sqlite3_bind_blob(s, 1, d->b, DIGEST_LEN, SQLITE_STATIC);
	return cache_st_done(c, s);
}

int cache_forget_block_locked(struct cache *c, const struct digest *d)
{
	int ret = cache_db_begin(c);

	if (ret < 0)
		return ret;
	return cache_db_end(c, cache_del_block_locked(c, d));
}

int cache_mark_durable_locked(struct cache *c, const struct digest *d,
			      uint64_t xxh)
{
	sqlite3_stmt *s = cache_st(c, ST_SET_STATE);

	if (!s)
		return -EIO;
	sqlite3_bind_blob(s, 1, d->b, DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, BLK_DURABLE);
	sqlite3_bind_int64(s, 3, (int64_t)xxh);
	return cache_st_done(c, s);
}

int cache_evict_locked(struct cache *c, uint64_t need, uint64_t target)
{
	struct digest v[64];
	uint64_t vsz[64];
	uint64_t blocks = 0, bytes = 0, dfree;
	char path[CACHE_PATH_MAX];
	sqlite3_stmt *s;
	int n, i, rc, ret;

	ret = flush_touches_locked(c);
	if (ret < 0)
		return ret;
	for (;;) {
		ret = cache_totals_locked(c, &blocks, &bytes);
		if (ret < 0)
			return ret;
		dfree = cache_disk_free(c);
		if (bytes + need <= target &&
		    (dfree == UINT64_MAX || dfree >= need + c->min_free_bytes))
			return 0;
		s = cache_st(c, ST_VICTIMS);
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
		 * Take just enough of the batch, counting an evicted block's
		 * bytes as freed on disk; then statvfs again (a block still
		 * open in some reader frees nothing until it is closed).
		 */
		for (i = 0; i < n; i++) {
			ret = cache_del_block_locked(c, &v[i]);
			if (ret < 0)
				return ret;
			if (cache_block_path(c, &v[i], path, sizeof(path)) == 0)
				unlink(path);
			ATOMIC_ADD(&c->evictions, 1);
			ATOMIC_ADD(&c->bytes_evicted, vsz[i]);
			bytes -= vsz[i] < bytes ? vsz[i] : bytes;
			if (dfree != UINT64_MAX)
				dfree += vsz[i];
			if (bytes + need <= target &&
			    (dfree == UINT64_MAX ||
			     dfree >= need + c->min_free_bytes))
				break;
		}
	}
}

void cache_db_close(struct cache *c)
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
	int64_t deadline = cache_mono_ms() + CACHE_BUSY_MS;
	struct timespec ts = {0, 10 * 1000 * 1000};
	int rc;

	for (;;) {
		sqlite3_free(*err);
		*err = NULL;
		rc = sqlite3_exec(db, sql, cb, arg, err);
		if ((rc & 0xff) != SQLITE_BUSY || cache_mono_ms() >= deadline)
			return rc;
		nanosleep(&ts, NULL);
	}
}

/* Open index.db and create the schema. Returns 0, -EUCLEAN if corrupt. */
int cache_db_open(struct cache *c, bool *created)
{
	char path[CACHE_PATH_MAX];
	char *err = NULL;
	bool ok = true;
	struct stat st;
	int rc, ret;

	ret = cache_path_fmt(path, sizeof(path), "%s/index.db", c->dir);
	if (ret < 0)
		return ret;
	*created = stat(path, &st) < 0 || st.st_size == 0;
	if (*created) {
		/* A WAL left beside a lost index must not be replayed. */
		char aux[CACHE_PATH_MAX];

		if (cache_path_fmt(aux, sizeof(aux), "%s-wal", path) == 0)
			unlink(aux);
		if (cache_path_fmt(aux, sizeof(aux), "%s-shm", path) == 0)
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
	rc = exec_retry(c->db,
			"PRAGMA journal_mode=WAL;"
			"PRAGMA synchronous=NORMAL;",
			NULL, NULL, &err);
	if (rc == SQLITE_OK)
		rc = exec_retry(c->db, "PRAGMA quick_check;", quick_check_row,
				&ok, &err);
	if (rc == SQLITE_OK && !ok)
		rc = SQLITE_CORRUPT;
	if (rc == SQLITE_OK) {
		rc = exec_retry(c->db, "BEGIN IMMEDIATE;", NULL, NULL, &err);
		if (rc == SQLITE_OK) {
			bool old_docs = false;

			rc =
			    sqlite3_exec(c->db, cache_schema, NULL, NULL, &err);
			if (rc == SQLITE_OK)
				rc = sqlite3_exec(c->db,
						  "SELECT sql FROM sqlite_master"
						  " WHERE name='docs';",
						  docs_without_rowid, &old_docs,
						  &err);
			if (rc == SQLITE_OK && old_docs)
				rc = sqlite3_exec(c->db, cache_docs_migrate,
						  NULL, NULL, &err);
			sqlite3_exec(c->db,
				     rc == SQLITE_OK ? "COMMIT;" : "ROLLBACK;",
				     NULL, NULL, NULL);
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
		cache_db_close(c);
	return ret;
}

/* Move a corrupt index aside (index.db.corrupt) so a fresh one is built. */
void cache_db_discard(struct cache *c)
{
	static const char *const sfx[] = {"", "-wal", "-shm"};
	char a[CACHE_PATH_MAX], b[CACHE_PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		if (cache_path_fmt(a, sizeof(a), "%s/index.db%s", c->dir,
				   sfx[i]) ||
		    cache_path_fmt(b, sizeof(b), "%s/index.db.corrupt%s",
				   c->dir, sfx[i]))
			continue;
		if (rename(a, b) < 0 && errno == ENOENT)
			unlink(b);
	}
}

int cache_block_row_exists(struct cache *c, const struct digest *d)
{
	sqlite3_stmt *s = cache_st(c, ST_GET_BLOCK);
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

int cache_put_block_row(struct cache *c, const struct digest *d, uint64_t size,
			const uint64_t *xxh, int64_t atime, int state)
{
	sqlite3_stmt *s = cache_st(c, ST_PUT_BLOCK);

	if (!s)
		return -EIO;
	sqlite3_bind_blob(s, 1, d->b, DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)size);
	if (xxh)
		sqlite3_bind_int64(s, 3, (int64_t)*xxh);
	else
		sqlite3_bind_null(s, 3);
	sqlite3_bind_int64(s, 4, atime);
	sqlite3_bind_int64(s, 5, cache_now_us());
	sqlite3_bind_int(s, 6, state);
	return cache_st_done(c, s);
}

/* After a reboot: unsynced blocks of the last boot become suspect. */
int cache_boot_check_locked(struct cache *c)
{
	char old[64] = "";
	int ret;

	ret = cache_db_begin(c);
	if (ret < 0)
		return ret;
	ret = meta_get(c, "boot_id", old, sizeof(old));
	if (ret == -ENOENT || (ret == 0 && strcmp(old, c->boot_id) != 0)) {
		ret = sqlite3_exec(c->db,
				   "UPDATE blocks SET state=2 WHERE"
				   " state=0",
				   NULL, NULL, NULL);
		ret = cache_sqlite_err(ret);
		if (ret == 0 && sqlite3_changes(c->db) > 0)
			log_warn("cache: %s: previous boot ended without a"
				 " sync; %d block(s) will be re-checked",
				 c->dir, sqlite3_changes(c->db));
		if (ret == 0)
			ret = meta_put(c, "boot_id", c->boot_id);
	}
	return cache_db_end(c, ret);
}

int cache_load_suspects_locked(struct cache *c)
{
	sqlite3_stmt *s = NULL;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(c->db,
				"SELECT digest FROM blocks WHERE"
				" state=2",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return cache_sqlite_err(rc);
	pthread_mutex_lock(&c->mem_lock);
	while (ret == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(s, 0);
		struct digest d;

		if (!b || sqlite3_column_bytes(s, 0) != DIGEST_LEN)
			continue;
		memcpy(d.b, b, DIGEST_LEN);
		ret = cache_dset_put(&c->suspect, &d, 1, SIZE_MAX);
		if (ret == 0)
			c->suspect_live++;
	}
	pthread_mutex_unlock(&c->mem_lock);
	if (ret == 0 && rc != SQLITE_DONE)
		ret = cache_sqlite_err(rc);
	sqlite3_finalize(s);
	return ret;
}

int cache_limits_locked(struct cache *c, const struct cache_opts *o)
{
	struct statvfs v;
	char buf[32];
	int ret;

	if (statvfs(c->dir, &v) < 0)
		return -errno;
	c->max_bytes = cache_size_resolve(&o->max, &v);
	c->min_free_bytes = cache_size_resolve(&o->min_free, &v);
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

/*
 * syncfs(), then mark durable the blocks it covered: our own commits made
 * before it began (c->unsynced; taken under db_lock, and our renames happen
 * under db_lock, so each of them is complete) and any process's rows
 * committed well before it ("well": another process commits a row just
 * before renaming its file, so a row from the last moments may name a file
 * renamed after the sync started; those wait for the next sync).
 */
int cache_sync_and_mark(struct cache *c)
{
	struct dset mine;
	int64_t t0;
	sqlite3_stmt *s = NULL;
	size_t i;
	int fd, rc, ret;

	pthread_mutex_lock(&c->db_lock);
	t0 = cache_now_us() - 5 * 1000000;
	pthread_mutex_lock(&c->mem_lock);
	mine = c->unsynced;
	memset(&c->unsynced, 0, sizeof(c->unsynced));
	pthread_mutex_unlock(&c->mem_lock);
	pthread_mutex_unlock(&c->db_lock);

	fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = syncfs(fd) < 0 ? -errno : 0;
	close(fd);
	if (ret < 0)
		goto out;
	pthread_mutex_lock(&c->db_lock);
	ret = cache_db_begin(c);
	if (ret < 0)
		goto unlock;
	rc = sqlite3_prepare_v2(c->db,
				"UPDATE blocks SET state=1 WHERE state=0 AND"
				" (wtime<?1 OR digest=?2)",
				-1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, t0);
		sqlite3_bind_null(s, 2);
		rc = sqlite3_step(s);
	}
	for (i = 0; rc == SQLITE_DONE && i < mine.cap; i++) {
		if (!mine.e[i].v)
			continue;
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, 0);
		sqlite3_bind_blob(s, 2, mine.e[i].d.b, DIGEST_LEN,
				  SQLITE_STATIC);
		rc = sqlite3_step(s);
	}
	ret = rc == SQLITE_DONE ? 0 : cache_sqlite_err(rc);
	sqlite3_finalize(s);
	ret = cache_db_end(c, ret);
unlock:
	pthread_mutex_unlock(&c->db_lock);
out:
	cache_dset_free(&mine);
	return ret;
}
