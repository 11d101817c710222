/*
 * test_cache_docs - the documents the cache keeps beside blocks
 * (cache_docs.c): round trips with their ETags, the TOFU mapping keyed by
 * ETag, the walk by store and prefix, and the migration of an older docs
 * table.
 *
 * Each test works in its own temp dir, removed at the end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/digest.h"
#include "fs/cache/cache.h"
#include "tests/unit/cachetest.h"
#include "test.h"

/* ---- documents and TOFU
 * ------------------------------------------------------ */

test(cache_documents_round_trip)
{
	char *dir = ct_tmpdir();
	struct cache *c = NULL;
	const char *v1 = "{\"versions\": [\"1.0\", \"0.1\"]}";
	const char *v2 = "{\"versions\": [\"1.1\", \"1.0\", \"0.1\"]}";
	struct buf b, small;
	char *etag = NULL;
	int64_t when = 0;
	static char big[CACHE_DOC_MAX + 1];

	buf_init(&b, 1 << 20);
	buf_init(&small, 8);
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_doc_get(c, "file:///s", "a.versions", &b, &etag, NULL),
		  -ENOENT);
	CHECK_INT(cache_doc_put(c, "file:///s", "a.versions", v1, strlen(v1),
				"\"e1\""),
		  0);
	CHECK_INT(cache_doc_put(c, "file:///s", "a.versions", v2, strlen(v2),
				"\"e2\""),
		  0);
	CHECK_INT(
	    cache_doc_put(c, "file:///t", "a.versions", v1, strlen(v1), NULL),
	    0);
	cache_close(&c);

	/* survives a restart: that is what offline mode needs */
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_doc_get(c, "file:///s", "a.versions", &b, &etag, &when),
		  0);
	CHECK_STR(b.data, v2);
	CHECK_STR(etag, "\"e2\"");
	CHECK(when > time(NULL) - 60 && when <= time(NULL));
	free(etag);
	etag = NULL;
	buf_reset(&b);
	CHECK_INT(cache_doc_get(c, "file:///t", "a.versions", &b, &etag, NULL),
		  0);
	CHECK_STR(b.data, v1);
	CHECK(etag == NULL);
	/* the reader's cap holds; the writer's cap holds */
	CHECK_INT(
	    cache_doc_get(c, "file:///s", "a.versions", &small, NULL, NULL),
	    -EFBIG);
	CHECK_INT(cache_doc_put(c, "file:///s", "big", big, sizeof(big), NULL),
		  -EFBIG);
	/* binary content with NULs */
	CHECK_INT(cache_doc_put(c, "s", "bin", "a\0b", 3, NULL), 0);
	buf_reset(&b);
	CHECK_INT(cache_doc_get(c, "s", "bin", &b, NULL, NULL), 0);
	CHECK_INT(b.len, 3);
	CHECK(memcmp(b.data, "a\0b", 3) == 0);
	cache_close(&c);
	buf_free(&b);
	buf_free(&small);
	ct_rm_rf(dir);
	free(dir);
}

test(cache_tofu_mapping_keyed_by_etag)
{
	char *dir = ct_tmpdir();
	struct cache *c = NULL;
	struct cache_objkey k = {"s3://b/modelkit-assets", "fraud/xgb/0.0",
				 "\"abc\"", 4194304, 2};
	struct digest d1, d2, out;
	struct cache_stats st;

	memset(&d1, 0x11, sizeof(d1));
	memset(&d2, 0x22, sizeof(d2));
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_objblock_get(c, &k, &out), -ENOENT);
	CHECK_INT(cache_objblock_put(c, &k, &d1), 0);
	cache_close(&c);
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_objblock_get(c, &k, &out), 0);
	CHECK(digest_equal(&out, &d1));
	k.etag = "\"def\""; /* the object changed: a different mapping */
	CHECK_INT(cache_objblock_get(c, &k, &out), -ENOENT);
	CHECK_INT(cache_objblock_put(c, &k, &d2), 0);
	CHECK_INT(cache_objblock_get(c, &k, &out), 0);
	CHECK(digest_equal(&out, &d2));
	k.etag = "\"abc\"";
	CHECK_INT(cache_objblock_get(c, &k, &out), 0);
	CHECK(digest_equal(&out, &d1));
	k.index = 3;
	CHECK_INT(cache_objblock_get(c, &k, &out), -ENOENT);
	k.index = 2;
	k.block_size = 1 << 20;
	CHECK_INT(cache_objblock_get(c, &k, &out), -ENOENT);
	k.etag = NULL;
	CHECK_INT(cache_objblock_get(c, &k, &out), -EINVAL);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.objblocks, 2);
	cache_close(&c);
	ct_rm_rf(dir);
	free(dir);
}

/* The offline listing's walk over kept documents: by store and prefix. */
test(cache_doc_keys_by_prefix)
{
	static const char *const put[] = { "a/y/z.versions", "a/x.versions",
					   "b/q.versions", "ab.versions",
					   "assetfs:level:a" };
	char *dir = ct_tmpdir();
	struct cache *c = NULL;
	char **keys = NULL;
	size_t n = 0, i;

	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	for (i = 0; i < sizeof(put) / sizeof(put[0]); i++)
		CHECK_INT(cache_doc_put(c, "file:///s", put[i], "[]", 2, NULL),
			  0);
	CHECK_INT(cache_doc_put(c, "file:///t", "a/w.versions", "[]", 2,
				NULL), 0);
	CHECK_INT(cache_doc_keys(c, "file:///s", "a/", 100, &keys, &n), 0);
	CHECK_INT(n, 2); /* in key order, this store only, "ab" not "a/" */
	if (n == 2) {
		CHECK_STR(keys[0], "a/x.versions");
		CHECK_STR(keys[1], "a/y/z.versions");
	}
	for (i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	CHECK_INT(cache_doc_keys(c, "file:///s", "", 3, &keys, &n), 0);
	CHECK_INT(n, 3); /* the cap */
	for (i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	CHECK_INT(cache_doc_keys(c, "file:///u", "", 3, &keys, &n), 0);
	CHECK_INT(n, 0);
	free(keys);
	cache_close(&c);
	ct_rm_rf(dir);
	free(dir);
}

/*
 * An index made when the docs table was WITHOUT ROWID (large documents
 * made every key lookup read them whole) is moved to a rowid table at
 * open, documents kept.
 */
test(cache_docs_table_migrated_to_rowid)
{
	char *dir = ct_tmpdir();
	char path[512];
	struct cache *c = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct buf b;
	const char *sql = NULL;

	buf_init(&b, 1 << 20);
	snprintf(path, sizeof(path), "%s/index.db", dir);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db,
			       "CREATE TABLE docs(store TEXT NOT NULL,"
			       " dkey TEXT NOT NULL, etag TEXT,"
			       " stored_at INTEGER NOT NULL,"
			       " data BLOB NOT NULL, PRIMARY KEY(store, dkey))"
			       " WITHOUT ROWID;"
			       "INSERT INTO docs VALUES('s', 'a.versions',"
			       " 'e1', 1, '{\"versions\": [\"0.0\"]}');",
			       NULL, NULL, NULL),
		  SQLITE_OK);
	sqlite3_close(db);
	db = NULL;
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_doc_get(c, "s", "a.versions", &b, NULL, NULL), 0);
	CHECK_STR(b.data, "{\"versions\": [\"0.0\"]}");
	cache_close(&c);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master"
					 " WHERE name='docs'",
				     -1, &st, NULL),
		  SQLITE_OK);
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	sql = (const char *)sqlite3_column_text(st, 0);
	CHECK(sql && !strstr(sql, "WITHOUT ROWID"));
	sqlite3_finalize(st);
	sqlite3_close(db);
	buf_free(&b);
	ct_rm_rf(dir);
	free(dir);
}
