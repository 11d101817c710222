/*
 * cache_pin - the pin table of index.db (see cache_pin.h): pins(store,
 * spec, version, source, state, reason, pending, updated) and
 * pinblocks(store, spec, version, digest, size). Eviction
 * (cache_index.c) skips every digest pinblocks lists; this file keeps the
 * two tables and answers questions about them.
 *
 * Each call is one transaction under c->db_lock, with statements prepared
 * per call (pins change rarely; the hit path never comes here). Part of
 * the sqlite layer: calls cache_index.c and cache_util.c only.
 * Errors: 0 or a negative errno.
 */
#include "fs/cache/cache_pin.h"
#include "fs/cache/cache.h"
#include "fs/cache/cache_index_int.h"
#include "fs/cache/cache_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

/* Bytes all pins hold: distinct pinned blocks plus pending bytes. */
#define PINNED_SQL                                                             \
	"SELECT (SELECT COALESCE(SUM(sz),0) FROM (SELECT MAX(size) AS sz"      \
	" FROM pinblocks GROUP BY digest)) + (SELECT COALESCE(SUM(pending),0)" \
	" FROM pins)"

static int vprep(struct cache *c, sqlite3_stmt **s, const char *sql,
		 va_list ap)
{
	const char *a;
	int rc, i = 1;

	rc = sqlite3_prepare_v2(c->db, sql, -1, s, NULL);
	if (rc != SQLITE_OK)
		return cache_sqlite_err(rc);
	while ((a = va_arg(ap, const char *)))
		sqlite3_bind_text(*s, i++, a, -1, SQLITE_TRANSIENT);
	return 0;
}

/*
 * Prepare @sql and bind the text arguments that follow (NULL-terminated
 * list, bound to ?1, ?2, ...). Caller holds db_lock. Returns 0 or -errno.
 */
static int prep(struct cache *c, sqlite3_stmt **s, const char *sql, ...)
{
	va_list ap;
	int ret;

	va_start(ap, sql);
	ret = vprep(c, s, sql, ap);
	va_end(ap);
	return ret;
}

/* Step @s to the end; finalize it. Returns 0 or -errno. */
static int run(sqlite3_stmt *s)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : cache_sqlite_err(rc);
}

/* The first column of the first row of @s, as an integer; finalizes. */
static int one_u64(sqlite3_stmt *s, uint64_t *out)
{
	int rc = sqlite3_step(s);

	*out = 0;
	if (rc == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(s, 0);

		*out = v > 0 ? (uint64_t)v : 0;
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : cache_sqlite_err(rc);
}

/*
 * prep() then run(): a statement with only text arguments and no rows.
 * Caller holds db_lock. Returns 0 or -errno.
 */
static int exec(struct cache *c, const char *sql, ...)
{
	sqlite3_stmt *s = NULL;
	va_list ap;
	int ret;

	va_start(ap, sql);
	ret = vprep(c, &s, sql, ap);
	va_end(ap);
	return ret < 0 ? ret : run(s);
}

/*
 * Take db_lock and begin a transaction (each write of several statements
 * is one). Returns 0, the caller then ends it with pin_txn_end(); or
 * -errno with db_lock released.
 */
static int pin_txn_begin(struct cache *c)
{
	int ret;

	pthread_mutex_lock(&c->db_lock);
	ret = cache_db_begin(c);
	if (ret < 0)
		pthread_mutex_unlock(&c->db_lock);
	return ret;
}

/* Commit when @ret >= 0, else roll back; release db_lock. Returns the
 * outcome as cache_db_end() does. */
static int pin_txn_end(struct cache *c, int ret)
{
	ret = cache_db_end(c, ret);
	pthread_mutex_unlock(&c->db_lock);
	return ret;
}

static int pinned_bytes_locked(struct cache *c, uint64_t *out)
{
	sqlite3_stmt *s = NULL;
	int ret = prep(c, &s, PINNED_SQL, NULL);

	return ret < 0 ? ret : one_u64(s, out);
}

static int insert_blocks_locked(struct cache *c, const char *store,
				const char *spec, const char *version,
				const struct digest *d, const uint64_t *size,
				size_t n)
{
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc, ret;

	ret = prep(c, &s,
		   "INSERT INTO pinblocks(store,spec,version,digest,size)"
		   " VALUES(?1,?2,?3,?4,?5) ON CONFLICT DO NOTHING",
		   store, spec, version, NULL);
	if (ret < 0)
		return ret;
	for (i = 0; i < n; i++) {
		sqlite3_reset(s);
		sqlite3_bind_blob(s, 4, d[i].b, DIGEST_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(s, 5, (int64_t)size[i]);
		rc = sqlite3_step(s);
		if (rc != SQLITE_DONE) {
			sqlite3_finalize(s);
			return cache_sqlite_err(rc);
		}
	}
	sqlite3_finalize(s);
	return 0;
}

static int delete_version_locked(struct cache *c, const char *store,
				 const char *spec, const char *version)
{
	int ret;

	ret = exec(c,
		   "DELETE FROM pinblocks WHERE store=?1 AND spec=?2 AND"
		   " version=?3",
		   store, spec, version, NULL);
	if (ret == 0)
		ret = exec(c,
			   "DELETE FROM pins WHERE store=?1 AND spec=?2 AND"
			   " version=?3",
			   store, spec, version, NULL);
	return ret;
}

int cache_pin_version(struct cache *c, const char *store, const char *spec,
		      const char *version, const struct digest *d,
		      const uint64_t *size, size_t n, uint64_t pending,
		      const char *source, struct cache_pin_fit *fit)
{
	uint64_t before = 0, after = 0, need = 0;
	sqlite3_stmt *s = NULL;
	int ret;

	if (!store || !spec || !version || !*version || !source ||
	    (n && (!d || !size)))
		return -EINVAL;
	ret = pin_txn_begin(c);
	if (ret < 0)
		return ret;
	ret = delete_version_locked(c, store, spec, version);
	if (ret == 0)
		ret = pinned_bytes_locked(c, &before);
	if (ret == 0)
		ret = insert_blocks_locked(c, store, spec, version, d, size, n);
	if (ret == 0)
		ret = prep(c, &s,
			   "INSERT INTO pins(store,spec,version,source,state,"
			   "reason,pending,updated) VALUES(?1,?2,?3,?4,?5,'',"
			   "?6,?7)",
			   store, spec, version, source, NULL);
	if (ret == 0) {
		sqlite3_bind_int(s, 5, CACHE_PIN_WARMING);
		sqlite3_bind_int64(s, 6, (int64_t)pending);
		sqlite3_bind_int64(s, 7, (int64_t)time(NULL));
		ret = run(s);
	}
	/* a version-less failed row has served its purpose */
	if (ret == 0)
		ret = delete_version_locked(c, store, spec, "");
	if (ret == 0)
		ret = pinned_bytes_locked(c, &after);
	if (ret == 0)
		ret = prep(c, &s,
			   "SELECT COALESCE(SUM(size),0) FROM pinblocks WHERE"
			   " store=?1 AND spec=?2 AND version=?3",
			   store, spec, version, NULL);
	if (ret == 0)
		ret = one_u64(s, &need);
	need += pending;
	if (ret == 0 && after > c->max_bytes) {
		if (fit) {
			fit->need = need;
			fit->pinned = before;
			fit->cache_size = c->max_bytes;
		}
		ret = -ENOSPC;
	}
	return pin_txn_end(c, ret);
}

int cache_pin_fail(struct cache *c, const char *store, const char *spec,
		   const char *source, const char *reason)
{
	sqlite3_stmt *s = NULL;
	uint64_t n = 0;
	int ret;

	if (!store || !spec || !source || !reason)
		return -EINVAL;
	ret = pin_txn_begin(c);
	if (ret < 0)
		return ret;
	ret = prep(c, &s,
		   "SELECT count(*) FROM pins WHERE store=?1 AND spec=?2 AND"
		   " version != ''",
		   store, spec, NULL);
	if (ret == 0)
		ret = one_u64(s, &n);
	if (ret == 0 && n == 0)
		ret = prep(c, &s,
			   "INSERT OR REPLACE INTO pins(store,spec,version,"
			   "source,state,reason,pending,updated) VALUES(?1,?2,"
			   "'',?3,?4,?5,0,?6)",
			   store, spec, source, NULL);
	else if (ret == 0)
		/* the versions not ready carry the reason (?3 unused) */
		ret = prep(c, &s,
			   "UPDATE pins SET state=?4, reason=?5, updated=?6"
			   " WHERE store=?1 AND spec=?2 AND state != 1",
			   store, spec, source, NULL);
	if (ret == 0) {
		sqlite3_bind_int(s, 4, CACHE_PIN_FAILED);
		sqlite3_bind_text(s, 5, reason, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 6, (int64_t)time(NULL));
		ret = run(s);
	}
	return pin_txn_end(c, ret);
}

/* Does (store, spec, version) have a row? 1, 0 or -errno. */
static int exists_locked(struct cache *c, const char *store, const char *spec,
			 const char *version)
{
	sqlite3_stmt *s = NULL;
	uint64_t n = 0;
	int ret;

	ret = prep(c, &s,
		   "SELECT count(*) FROM pins WHERE store=?1 AND spec=?2 AND"
		   " version=?3",
		   store, spec, version, NULL);
	if (ret == 0)
		ret = one_u64(s, &n);
	return ret < 0 ? ret : n > 0;
}

int cache_pin_add_blocks(struct cache *c, const char *store, const char *spec,
			 const char *version, const struct digest *d,
			 const uint64_t *size, size_t n, uint64_t done_pending)
{
	sqlite3_stmt *s = NULL;
	int ret;

	ret = pin_txn_begin(c);
	if (ret < 0)
		return ret;
	ret = exists_locked(c, store, spec, version);
	if (ret == 0)
		ret = -ENOENT;
	else if (ret > 0)
		ret = insert_blocks_locked(c, store, spec, version, d, size, n);
	if (ret == 0)
		ret = prep(c, &s,
			   "UPDATE pins SET pending=MAX(0, pending-?4) WHERE"
			   " store=?1 AND spec=?2 AND version=?3",
			   store, spec, version, NULL);
	if (ret == 0) {
		sqlite3_bind_int64(s, 4, (int64_t)done_pending);
		ret = run(s);
	}
	return pin_txn_end(c, ret);
}

int cache_pin_set_state(struct cache *c, const char *store, const char *spec,
			const char *version, enum cache_pin_state state,
			const char *reason)
{
	sqlite3_stmt *s = NULL;
	int ret;

	pthread_mutex_lock(&c->db_lock);
	ret = prep(c, &s,
		   "UPDATE pins SET state=?4, reason=?5, updated=?6 WHERE"
		   " store=?1 AND spec=?2 AND version=?3",
		   store, spec, version, NULL);
	if (ret == 0) {
		sqlite3_bind_int(s, 4, (int)state);
		sqlite3_bind_text(s, 5, reason ? reason : "", -1,
				  SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 6, (int64_t)time(NULL));
		ret = run(s);
		if (ret == 0 && sqlite3_changes(c->db) == 0)
			ret = -ENOENT;
	}
	pthread_mutex_unlock(&c->db_lock);
	return ret;
}

int cache_pin_release(struct cache *c, const char *store, const char *spec,
		      const char *version)
{
	int ret = pin_txn_begin(c);

	if (ret < 0)
		return ret;
	return pin_txn_end(c, delete_version_locked(c, store, spec, version));
}

int cache_pin_remove(struct cache *c, const char *store, const char *spec)
{
	int ret, n = 0;

	if (!spec)
		return -EINVAL;
	ret = pin_txn_begin(c);
	if (ret < 0)
		return ret;
	ret = exec(c,
		   "DELETE FROM pinblocks WHERE spec=?1 AND (?2 IS NULL OR"
		   " store=?2)",
		   spec, store, NULL);
	if (ret == 0)
		ret = exec(c,
			   "DELETE FROM pins WHERE spec=?1 AND (?2 IS NULL OR"
			   " store=?2)",
			   spec, store, NULL);
	if (ret == 0)
		n = sqlite3_changes(c->db);
	ret = pin_txn_end(c, ret);
	return ret < 0 ? ret : n;
}

static char *col_dup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return strdup(t ? (const char *)t : "");
}

void cache_pin_info_clear(struct cache_pin_info *e)
{
	if (!e)
		return;
	free(e->store);
	free(e->spec);
	free(e->version);
	free(e->source);
	free(e->reason);
	memset(e, 0, sizeof(*e));
}

void cache_pin_list_free(struct cache_pin_info *p, size_t n)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < n; i++)
		cache_pin_info_clear(&p[i]);
	free(p);
}

int cache_pin_list(struct cache *c, const char *store,
		   struct cache_pin_info **out, size_t *n)
{
	struct cache_pin_info *v = NULL, *nv, *e;
	sqlite3_stmt *s = NULL;
	size_t count = 0;
	int rc, ret;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&c->db_lock);
	ret = prep(
	    c, &s,
	    "SELECT p.store, p.spec, p.version, p.source, p.state, p.reason,"
	    " p.updated, p.pending,"
	    " (SELECT count(*) FROM pinblocks b WHERE b.store=p.store AND"
	    "  b.spec=p.spec AND b.version=p.version),"
	    " (SELECT COALESCE(SUM(b.size),0) FROM pinblocks b WHERE"
	    "  b.store=p.store AND b.spec=p.spec AND b.version=p.version),"
	    " (SELECT count(*) FROM pinblocks b JOIN blocks k ON"
	    "  k.digest=b.digest WHERE b.store=p.store AND b.spec=p.spec AND"
	    "  b.version=p.version),"
	    " (SELECT COALESCE(SUM(b.size),0) FROM pinblocks b JOIN blocks k"
	    "  ON k.digest=b.digest WHERE b.store=p.store AND b.spec=p.spec"
	    "  AND b.version=p.version)"
	    " FROM pins p WHERE (?1 IS NULL OR p.store=?1)"
	    " ORDER BY p.store, p.spec, p.version",
	    store, NULL);
	if (ret < 0)
		goto unlock;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		nv = realloc(v, (count + 1) * sizeof(*v));
		if (!nv) {
			ret = -ENOMEM;
			break;
		}
		v = nv;
		e = &v[count++];
		memset(e, 0, sizeof(*e));
		e->store = col_dup(s, 0);
		e->spec = col_dup(s, 1);
		e->version = col_dup(s, 2);
		e->source = col_dup(s, 3);
		e->state = (enum cache_pin_state)sqlite3_column_int(s, 4);
		e->reason = col_dup(s, 5);
		e->updated = sqlite3_column_int64(s, 6);
		e->blocks = (uint64_t)sqlite3_column_int64(s, 8);
		e->bytes_total = (uint64_t)sqlite3_column_int64(s, 7) +
				 (uint64_t)sqlite3_column_int64(s, 9);
		e->blocks_present = (uint64_t)sqlite3_column_int64(s, 10);
		e->bytes_present = (uint64_t)sqlite3_column_int64(s, 11);
		if (!e->store || !e->spec || !e->version || !e->source ||
		    !e->reason) {
			ret = -ENOMEM;
			break;
		}
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = cache_sqlite_err(rc);
	sqlite3_finalize(s);
unlock:
	pthread_mutex_unlock(&c->db_lock);
	if (ret < 0) {
		cache_pin_list_free(v, count);
		return ret;
	}
	*out = v;
	*n = count;
	return 0;
}

int cache_pin_blocks(struct cache *c, const char *store, const char *spec,
		     const char *version, struct digest **d, uint64_t **size,
		     size_t *n)
{
	struct digest *dv = NULL;
	uint64_t *sv = NULL, total = 0;
	sqlite3_stmt *s = NULL;
	size_t count = 0;
	int rc, ret;

	*d = NULL;
	*size = NULL;
	*n = 0;
	pthread_mutex_lock(&c->db_lock);
	ret = exists_locked(c, store, spec, version);
	if (ret == 0)
		ret = -ENOENT;
	if (ret > 0)
		ret = prep(c, &s,
			   "SELECT count(*) FROM pinblocks WHERE store=?1 AND"
			   " spec=?2 AND version=?3",
			   store, spec, version, NULL);
	if (ret == 0)
		ret = one_u64(s, &total);
	if (ret == 0 && total) {
		dv = calloc(total, sizeof(*dv));
		sv = calloc(total, sizeof(*sv));
		if (!dv || !sv)
			ret = -ENOMEM;
	}
	if (ret == 0)
		ret = prep(c, &s,
			   "SELECT digest, size FROM pinblocks WHERE store=?1"
			   " AND spec=?2 AND version=?3",
			   store, spec, version, NULL);
	if (ret < 0)
		goto unlock;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && count < total) {
		const void *b = sqlite3_column_blob(s, 0);

		if (!b || sqlite3_column_bytes(s, 0) != DIGEST_LEN)
			continue;
		memcpy(dv[count].b, b, DIGEST_LEN);
		sv[count++] = (uint64_t)sqlite3_column_int64(s, 1);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = cache_sqlite_err(rc);
	sqlite3_finalize(s);
unlock:
	pthread_mutex_unlock(&c->db_lock);
	if (ret < 0) {
		free(dv);
		free(sv);
		return ret;
	}
	*d = dv;
	*size = sv;
	*n = count;
	return 0;
}

int cache_pin_totals(struct cache *c, struct cache_pin_totals *t)
{
	sqlite3_stmt *s = NULL;
	int ret;

	memset(t, 0, sizeof(*t));
	pthread_mutex_lock(&c->db_lock);
	ret = prep(c, &s,
		   "SELECT count(*) FROM (SELECT DISTINCT store, spec FROM"
		   " pins)",
		   NULL);
	if (ret == 0)
		ret = one_u64(s, &t->pins);
	if (ret == 0)
		ret = prep(c, &s, "SELECT count(*) FROM pins WHERE version!=''",
			   NULL);
	if (ret == 0)
		ret = one_u64(s, &t->versions);
	if (ret == 0)
		ret = pinned_bytes_locked(c, &t->bytes_total);
	if (ret == 0)
		ret = prep(c, &s,
			   "SELECT COALESCE(SUM(sz),0) FROM (SELECT MAX(p.size)"
			   " AS sz FROM pinblocks p JOIN blocks k ON"
			   " k.digest=p.digest GROUP BY p.digest)",
			   NULL);
	if (ret == 0)
		ret = one_u64(s, &t->bytes_present);
	pthread_mutex_unlock(&c->db_lock);
	return ret;
}
