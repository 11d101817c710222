/*
 * test_catalog - the mount's view of a store: levels, version lists and
 * aliases, folder trees from .meta contents, hostile documents skipped,
 * TTL refresh, offline copies in memory and (after a restart) in the
 * cache's documents. Against a real file:// store in a temp dir.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileutil.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "fs/catalog/catalog.h"
#include "test.h"

struct env {
	char root[64];
	char store_dir[128];
	char url[160];
	struct store *st;
	struct cache *cache;
	struct catalog *cat;
	struct stats *stats;
};

static void put(struct env *e, const char *key, const char *text)
{
	char path[512], dir[512], *slash;

	snprintf(path, sizeof(path), "%s/%s", e->store_dir, key);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	CHECK_INT(mkdir_p(dir, 0755), 0);
	CHECK_INT(file_write_atomic(path, text, strlen(text), 0644, false), 0);
}

static void open_catalog(struct env *e, int ttl_ms)
{
	struct catalog_opts co = { .versions_ttl_ms = ttl_ms };
	struct cache_opts opts;
	char cdir[128], err[STORE_ERR_MAX];

	snprintf(cdir, sizeof(cdir), "%s/cache", e->root);
	cache_opts_init(&opts);
	opts.dir = cdir;
	CHECK_INT(cache_open(&opts, &e->cache), 0);
	CHECK_INT(store_open(e->url, NULL, &e->st, err, sizeof(err)), 0);
	e->stats = stats_new();
	CHECK_INT(catalog_new(e->st, e->cache, e->stats, &co, &e->cat), 0);
}

static void close_catalog(struct env *e)
{
	catalog_free(e->cat);
	store_close(&e->st);
	cache_close(&e->cache);
	stats_free(e->stats);
	e->cat = NULL;
}

#define META_FILE "{\"push_date\": \"2026-01-02T03:04:05Z\", " \
		  "\"is_directory\": false}"
#define META_DIR(contents) \
	"{\"push_date\": \"2026-01-02T03:04:05.5\", \"is_directory\": true, " \
	"\"contents\": " contents "}"

static void setup(struct env *e, int ttl_ms)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->root, sizeof(e->root), "/tmp/test_catalog.XXXXXX");
	CHECK(mkdtemp(e->root) != NULL);
	snprintf(e->store_dir, sizeof(e->store_dir), "%s/store", e->root);
	snprintf(e->url, sizeof(e->url), "file://%s", e->store_dir);
	put(e, "fraud/xgb.versions",
	    "{\"versions\": [\"0.0\", \"1.0\", \"0.1\", \"0.1\", \"10.2\"]}");
	put(e, "fraud/xgb/0.0", "zero");
	put(e, "fraud/xgb/0.0.meta", META_FILE);
	put(e, "fraud/xgb/0.1/a.json", "{}");
	put(e, "fraud/xgb/0.1/sub/deep/b.bin", "bbb");
	put(e, "fraud/xgb/0.1.meta",
	    META_DIR("[\"a.json\", \"/sub/deep/b.bin\"]"));
	put(e, "fraud/xgb/1.0.meta",
	    META_DIR("[\"../../etc/passwd\"]"));
	put(e, "fraud/team/nlp.versions", "{\"versions\": [\"0.0\"]}");
	put(e, "broken.versions", "not json at all");
	put(e, "top.versions", "{\"versions\": []}");
	open_catalog(e, ttl_ms);
}

static void teardown(struct env *e)
{
	char cmd[256];

	close_catalog(e);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->root);
	CHECK_INT(system(cmd), 0);
}

test(catalog_levels)
{
	struct cat_level *l = NULL;
	struct env e;

	setup(&e, 60000);
	CHECK_INT(catalog_level(e.cat, "", &l), 0);
	if (l) {
		CHECK_INT(l->n_namespaces, 1);
		CHECK_STR(l->namespaces[0], "fraud");
		CHECK_INT(l->n_assets, 2); /* broken, top */
	}
	cat_level_unref(l);
	l = NULL;
	CHECK_INT(catalog_level(e.cat, "fraud", &l), 0);
	if (l) {
		CHECK_INT(l->n_assets, 1);
		CHECK_STR(l->assets[0], "xgb");
		CHECK_INT(l->n_namespaces, 1);
		CHECK_STR(l->namespaces[0], "team");
	}
	cat_level_unref(l);
	CHECK_INT(catalog_is_namespace(e.cat, "fraud/team"), 1);
	CHECK_INT(catalog_is_namespace(e.cat, "nothing"), 0);
	CHECK_INT(catalog_level(e.cat, "../x", &l), -ENOENT);
	teardown(&e);
}

test(catalog_versions_and_aliases)
{
	struct cat_versions *v = NULL;
	struct env e;

	setup(&e, 60000);
	CHECK_INT(catalog_versions(e.cat, "fraud/xgb", &v), 0);
	if (v) {
		CHECK_INT(v->list.n, 4);
		CHECK_STR(v->list.v[0], "10.2");
		CHECK_STR(cat_versions_alias(v, "latest"), "10.2");
		CHECK_STR(cat_versions_alias(v, "10.latest"), "10.2");
		CHECK_STR(cat_versions_alias(v, "1.latest"), "1.0");
		CHECK_STR(cat_versions_alias(v, "0.latest"), "0.1");
		CHECK(cat_versions_alias(v, "1") == NULL);
		CHECK(cat_versions_alias(v, "2.latest") == NULL);
		CHECK(cat_versions_has(v, "0.0"));
		CHECK(!cat_versions_has(v, "0"));
		CHECK_INT(v->n_aliases, 4);
	}
	cat_versions_unref(v);
	v = NULL;
	CHECK_INT(catalog_versions(e.cat, "top", &v), 0);
	if (v)
		CHECK_INT(v->n_aliases, 0);
	cat_versions_unref(v);
	CHECK_INT(catalog_versions(e.cat, "broken", &v), -EINVAL);
	CHECK_INT(catalog_versions(e.cat, "nothing", &v), -ENOENT);
	CHECK_INT(catalog_versions(e.cat, "a/../b", &v), -ENOENT);
	CHECK_INT(catalog_versions(e.cat, "fraud//xgb", &v), -ENOENT);
	teardown(&e);
}

test(catalog_version_trees)
{
	struct cat_version *cv = NULL;
	struct env e;
	int k;

	setup(&e, 60000);
	CHECK_INT(catalog_version(e.cat, "fraud/xgb", "0.0", &cv), 0);
	if (cv) {
		CHECK(!cv->nodes[0].is_dir);
		CHECK_INT(cv->nodes[0].size, 4);
		CHECK(cv->nodes[0].etag != NULL);
		CHECK(cv->nodes[0].mf == NULL);
		CHECK_INT(cv->meta.push_date, 1767323045);
	}
	cat_version_unref(cv);
	cv = NULL;
	CHECK_INT(catalog_version(e.cat, "fraud/xgb", "0.1", &cv), 0);
	if (cv) {
		CHECK(cv->nodes[0].is_dir);
		CHECK_INT(cv->n_nodes, 5); /* root a.json sub sub/deep b.bin */
		k = cat_version_find(cv, "sub/deep/b.bin");
		CHECK(k > 0);
		if (k > 0) {
			CHECK_INT(cv->nodes[k].size, 3);
			CHECK_STR(cv->nodes[k].comp, "b.bin");
		}
		k = cat_version_find(cv, "sub/deep");
		CHECK(k > 0 && cv->nodes[k].is_dir);
		CHECK_INT(cat_version_find(cv, "sub/nope"), -ENOENT);
		CHECK_INT(cat_version_find(cv, "a.json/x"), -ENOENT);
		CHECK_INT(cat_version_find(cv, ""), 0);
	}
	cat_version_unref(cv);
	/* contents escaping the version: the version is refused */
	CHECK_INT(catalog_version(e.cat, "fraud/xgb", "1.0", &cv), -EINVAL);
	CHECK_INT(catalog_version(e.cat, "fraud/xgb", "9.9", &cv), -ENOENT);
	CHECK_INT(catalog_version(e.cat, "fraud/xgb", "../x", &cv), -ENOENT);
	teardown(&e);
}

/* Poll catalog_versions() for up to 3 s until the list has @n versions. */
static size_t wait_list_len(struct env *e, const char *name, size_t n)
{
	struct cat_versions *v = NULL;
	int64_t end = time_mono_ms() + 3000;
	size_t got = 0;

	do {
		if (catalog_versions(e->cat, name, &v) == 0)
			got = v->list.n;
		cat_versions_unref(v);
		v = NULL;
		if (got == n)
			break;
		usleep(20 * 1000);
	} while (time_mono_ms() < end);
	return got;
}

/*
 * Past the TTL a known list is answered at once, as it was, and read
 * again in the background (stale-while-revalidate): the new list and its
 * aliases show once the refresh lands.
 */
test(catalog_ttl_refresh)
{
	struct cat_versions *v = NULL;
	struct env e;
	uint64_t before;

	setup(&e, 100);
	CHECK_INT(catalog_versions(e.cat, "fraud/team/nlp", &v), 0);
	if (v)
		CHECK_STR(cat_versions_alias(v, "latest"), "0.0");
	cat_versions_unref(v);
	v = NULL;
	put(&e, "fraud/team/nlp.versions",
	    "{\"versions\": [\"0.0\", \"0.1\"]}");
	/* within the TTL: the old list */
	CHECK_INT(catalog_versions(e.cat, "fraud/team/nlp", &v), 0);
	if (v)
		CHECK_INT(v->list.n, 1);
	cat_versions_unref(v);
	v = NULL;
	usleep(150 * 1000);
	/* past it: the old list at once, no request made on this thread */
	before = stats_get(e.stats, STAT_VERSIONS_REFRESHES);
	CHECK_INT(catalog_versions(e.cat, "fraud/team/nlp", &v), 0);
	if (v)
		CHECK_INT(v->list.n, 1);
	cat_versions_unref(v);
	v = NULL;
	/* the refresh lands: the alias moves */
	CHECK_INT(wait_list_len(&e, "fraud/team/nlp", 2), 2);
	CHECK(stats_get(e.stats, STAT_VERSIONS_REFRESHES) > before);
	CHECK_INT(catalog_versions(e.cat, "fraud/team/nlp", &v), 0);
	if (v)
		CHECK_STR(cat_versions_alias(v, "latest"), "0.1");
	cat_versions_unref(v);
	teardown(&e);
}

test(catalog_offline_memory_and_restart)
{
	struct cat_versions *v = NULL;
	struct cat_version *cv = NULL;
	struct cat_level *l = NULL;
	char away[160];
	struct env e;

	setup(&e, 50);
	CHECK_INT(catalog_level(e.cat, "fraud", &l), 0);
	cat_level_unref(l);
	l = NULL;
	CHECK_INT(catalog_version(e.cat, "fraud/xgb", "0.0", &cv), 0);
	cat_version_unref(cv);
	cv = NULL;
	snprintf(away, sizeof(away), "%s/away", e.root);
	CHECK_INT(rename(e.store_dir, away), 0);
	usleep(80 * 1000); /* past the TTL */
	/* the known list at once; its refresh fails in the background and
	   takes the store offline */
	CHECK_INT(catalog_versions(e.cat, "fraud/xgb", &v), 0);
	if (v)
		CHECK_STR(cat_versions_alias(v, "latest"), "10.2");
	cat_versions_unref(v);
	v = NULL;
	for (int i = 0; i < 150; i++) {
		if (store_health_state(store_health(e.st), NULL) ==
		    STORE_OFFLINE)
			break;
		usleep(20 * 1000);
	}
	CHECK_INT(store_health_state(store_health(e.st), NULL), STORE_OFFLINE);
	CHECK_INT(stats_get(e.stats, STAT_STORE_OFFLINE), 1);
	CHECK_INT(catalog_versions(e.cat, "fraud/xgb", &v), 0);
	if (v)
		CHECK_STR(cat_versions_alias(v, "latest"), "10.2");
	cat_versions_unref(v);
	v = NULL;
	CHECK_INT(catalog_level(e.cat, "fraud", &l), 0);
	cat_level_unref(l);
	l = NULL;
	CHECK_INT(catalog_versions(e.cat, "never/seen", &v), -EIO);

	/* restart while the store is away: the cache's documents */
	close_catalog(&e);
	open_catalog(&e, 50);
	CHECK_INT(catalog_versions(e.cat, "fraud/xgb", &v), 0);
	if (v)
		CHECK_INT(v->list.n, 4);
	cat_versions_unref(v);
	CHECK_INT(catalog_level(e.cat, "fraud", &l), 0);
	if (l) {
		CHECK_INT(l->n_assets, 1);
		CHECK_STR(l->assets[0], "xgb");
	}
	cat_level_unref(l);
	CHECK_INT(catalog_version(e.cat, "fraud/xgb", "0.0", &cv), 0);
	if (cv)
		CHECK_INT(cv->nodes[0].size, 4); /* objinfo kept offline */
	cat_version_unref(cv);
	CHECK(stats_get(e.stats, STAT_OFFLINE_SERVES) >= 2);
	CHECK_INT(store_health_state(store_health(e.st), NULL), STORE_OFFLINE);
	/* the store back: the probe notices within its interval */
	CHECK_INT(rename(away, e.store_dir), 0);
	for (int i = 0; i < 300; i++) {
		if (store_health_state(store_health(e.st), NULL) ==
		    STORE_ONLINE)
			break;
		usleep(20 * 1000);
	}
	CHECK_INT(store_health_state(store_health(e.st), NULL), STORE_ONLINE);
	CHECK_INT(stats_get(e.stats, STAT_STORE_OFFLINE), 0);
	teardown(&e);
}

static void put_buf(struct env *e, const char *key, struct buf *b)
{
	put(e, key, b->data ? b->data : "");
	buf_reset(b);
}

/*
 * 100,000 versions (major_minor: 1000 majors of 100 minors, shuffled, and
 * one with a major per version): the list and its aliases are built in
 * linear time, every lookup is a binary search, and a listing's prefetch
 * asks the store for at most CATALOG_LIST_AHEAD `.meta` documents.
 */
test(catalog_long_lists)
{
	struct cat_versions *v = NULL;
	struct cat_version *cv = NULL;
	struct buf b;
	struct env e;
	uint64_t before;
	int64_t t0;
	size_t i, n = 100000;

	setup(&e, 60000);
	buf_init(&b, 0);
	CHECK_INT(buf_puts(&b, "{\"versions\": ["), 0);
	for (i = 0; i < n; i++) /* a shuffle: a stride coprime with n */
		CHECK_INT(buf_printf(&b, "%s\"%zu.%zu\"", i ? ", " : "",
				     (i * 7919 % n) / 100,
				     (i * 7919 % n) % 100), 0);
	CHECK_INT(buf_puts(&b, "]}"), 0);
	put_buf(&e, "long/mm.versions", &b);
	put(&e, "long/mm/990.99", "nine hundred and ninety");
	put(&e, "long/mm/990.99.meta", META_FILE);
	t0 = time_mono_ms();
	CHECK_INT(catalog_versions(e.cat, "long/mm", &v), 0);
	CHECK(time_mono_ms() - t0 < 5000);
	if (v) {
		CHECK_INT(v->list.n, n);
		CHECK_INT(v->n_aliases, 1001);
		CHECK_STR(cat_versions_alias(v, "latest"), "999.99");
		CHECK_STR(cat_versions_alias(v, "500.latest"), "500.99");
		CHECK_STR(cat_versions_alias(v, "0.latest"), "0.99");
		CHECK(cat_versions_alias(v, "1000.latest") == NULL);
		CHECK(cat_versions_alias(v, "0500.latest") == NULL);
		CHECK(cat_versions_alias(v, "500.latest.x") == NULL);
		CHECK(cat_versions_alias(v, ".latest") == NULL);
		CHECK_INT(cat_versions_find(v, "999.99"), 0);
		CHECK_INT(cat_versions_find(v, "0.0"), (int)n - 1);
		CHECK(cat_versions_has(v, "123.45"));
		CHECK(!cat_versions_has(v, "123.100"));
		CHECK(!cat_versions_has(v, "2026-01-01T00-00-00Z"));
		for (i = 0; i < v->n_aliases; i++)
			CHECK_STR(v->list.v[v->alias_index[i]],
				  v->alias_targets[i]);
		before = stats_get(e.stats, STAT_STORE_REQUESTS);
		CHECK_INT(catalog_prefetch_versions(e.cat, "long/mm", v), 0);
		/* a .meta each, and a HEAD for one without a manifest */
		CHECK(stats_get(e.stats, STAT_STORE_REQUESTS) - before <=
		      2 * CATALOG_LIST_AHEAD);
		CHECK(stats_get(e.stats, STAT_STORE_REQUESTS) - before >=
		      CATALOG_LIST_AHEAD / 2);
		/* a target of an alias was fetched; an old version was not */
		CHECK_INT(catalog_version_peek(e.cat, "long/mm", "990.99",
					       &cv), 0);
		cat_version_unref(cv);
		cv = NULL;
		CHECK_INT(catalog_version_peek(e.cat, "long/mm", "999.99",
					       &cv), -ENOENT); /* no .meta */
		CHECK_INT(catalog_version_peek(e.cat, "long/mm", "3.3", &cv),
			  -EAGAIN);
	}
	cat_versions_unref(v);
	v = NULL;

	/* hostile: a major per version, 100,000 aliases */
	CHECK_INT(buf_puts(&b, "{\"versions\": ["), 0);
	for (i = 0; i < n; i++)
		CHECK_INT(buf_printf(&b, "%s\"%zu.0\"", i ? ", " : "", i), 0);
	CHECK_INT(buf_puts(&b, "]}"), 0);
	put_buf(&e, "long/majors.versions", &b);
	t0 = time_mono_ms();
	CHECK_INT(catalog_versions(e.cat, "long/majors", &v), 0);
	CHECK(time_mono_ms() - t0 < 5000);
	if (v) {
		CHECK_INT(v->n_aliases, n + 1);
		CHECK_STR(cat_versions_alias(v, "77777.latest"), "77777.0");
		CHECK_STR(cat_versions_alias(v, "latest"), "99999.0");
	}
	cat_versions_unref(v);
	buf_free(&b);
	teardown(&e);
}

/*
 * A folder version of 20,000 files in one dir and 20,000 below others is
 * built in linear time and found by path.
 */
test(catalog_large_folder)
{
	static const char empty[] = "e3b0c44298fc1c149afbf4c8996fb924"
				    "27ae41e4649b934ca495991b7852b855";
	struct cat_version *cv = NULL;
	struct buf b;
	struct env e;
	int64_t t0;
	size_t i, n = 20000;
	int k;

	setup(&e, 60000);
	buf_init(&b, 0);
	CHECK_INT(buf_puts(&b, "{\"push_date\": \"2026-01-02T03:04:05Z\", "
			       "\"is_directory\": true, \"contents\": ["), 0);
	for (i = 0; i < 2 * n; i++)
		CHECK_INT(buf_printf(&b, "%s\"%s%06zu\"", i ? ", " : "",
				     i < n ? "flat/f" : "d/", i), 0);
	CHECK_INT(buf_puts(&b, "], \"assetfs\": {\"format\": 1, "
			       "\"block_size\": 4194304, \"files\": ["), 0);
	for (i = 0; i < 2 * n; i++)
		CHECK_INT(buf_printf(&b, "%s{\"path\": \"%s%06zu\", "
				     "\"size\": 0, \"sha256\": \"%s\", "
				     "\"blocks\": []}", i ? ", " : "",
				     i < n ? "flat/f" : "d/", i, empty), 0);
	CHECK_INT(buf_puts(&b, "]}}"), 0);
	put_buf(&e, "big/folder/0.0.meta", &b);
	put(&e, "big/folder.versions", "{\"versions\": [\"0.0\"]}");
	t0 = time_mono_ms();
	CHECK_INT(catalog_version(e.cat, "big/folder", "0.0", &cv), 0);
	CHECK(time_mono_ms() - t0 < 5000);
	if (cv) {
		CHECK_INT(cv->n_nodes, 2 * n + 3); /* root, flat, d */
		k = cat_version_find(cv, "flat/f000042");
		CHECK(k > 0 && !cv->nodes[k].is_dir);
		k = cat_version_find(cv, "d/039999");
		CHECK(k > 0 && cv->nodes[k].parent > 0);
		CHECK_INT(cat_version_find(cv, "flat/f020000"), -ENOENT);
		/* children keep the contents' order ("d/..." sort first) */
		CHECK_INT(cat_version_find(cv, "d"), 1);
		k = cat_version_find(cv, "flat");
		CHECK_INT(k, (int)n + 2);
		if (k > 0)
			k = (int)cv->nodes[k].first_child;
		CHECK(k > 0 && strcmp(cv->nodes[k].comp, "f000000") == 0);
	}
	cat_version_unref(cv);
	buf_free(&b);
	teardown(&e);
}

__attribute__((constructor)) static void quiet(void)
{
	log_init("test_catalog", LOG_LVL_ERROR);
}

/* warm_before_flip's gate: hold every alias at version "keep". */
static int gate_keep(void *arg, const char *name,
		     const struct version_list *l, const char *target,
		     char *keep, size_t len)
{
	const char *k = arg;

	(void)l;
	if (strcmp(name, "fraud/xgb") != 0 || !k)
		return 0;
	snprintf(keep, len, "%s", k);
	return 1;
}

/*
 * Poll catalog_versions() for up to 3 s until alias @alias of @name names
 * @want (a refresh lands in the background: stale-while-revalidate).
 */
static bool wait_alias(struct env *e, const char *name, const char *alias,
		       const char *want)
{
	struct cat_versions *v = NULL;
	int64_t end = time_mono_ms() + 3000;
	bool ok = false;

	do {
		if (catalog_versions(e->cat, name, &v) == 0) {
			const char *t = cat_versions_alias(v, alias);

			ok = t && strcmp(t, want) == 0;
		}
		cat_versions_unref(v);
		v = NULL;
		if (!ok)
			usleep(20 * 1000);
	} while (!ok && time_mono_ms() < end);
	return ok;
}

test(catalog_alias_gate)
{
	struct cat_versions *v = NULL;
	uint64_t reads;
	struct env e;

	setup(&e, 60000);
	catalog_set_alias_gate(e.cat, gate_keep, "1.0");
	CHECK_INT(catalog_versions(e.cat, "fraud/xgb", &v), 0);
	if (v) {
		CHECK_INT(v->list.n, 4); /* every version is listed */
		CHECK_STR(cat_versions_alias(v, "latest"), "1.0");
		/* N.latest holds only within its major */
		CHECK_STR(cat_versions_alias(v, "10.latest"), "10.2");
		CHECK_STR(cat_versions_alias(v, "1.latest"), "1.0");
		CHECK_STR(cat_versions_alias(v, "0.latest"), "0.1");
	}
	cat_versions_unref(v);
	v = NULL;
	catalog_set_alias_gate(e.cat, gate_keep, "0.0");
	/* held: asked again within a second, not after the 60 s TTL */
	reads = stats_get(e.stats, STAT_VERSIONS_REFRESHES);
	usleep(1100 * 1000);
	CHECK(wait_alias(&e, "fraud/xgb", "0.latest", "0.0"));
	CHECK_INT(stats_get(e.stats, STAT_VERSIONS_REFRESHES), reads + 1);
	CHECK_INT(catalog_versions(e.cat, "fraud/xgb", &v), 0);
	if (v) {
		CHECK_STR(cat_versions_alias(v, "0.latest"), "0.0");
		CHECK_STR(cat_versions_alias(v, "latest"), "0.0");
		CHECK_STR(cat_versions_alias(v, "1.latest"), "1.0");
	}
	cat_versions_unref(v);
	v = NULL;
	/* the gate lets go: the aliases move at the next refresh */
	catalog_set_alias_gate(e.cat, gate_keep, NULL);
	usleep(1100 * 1000);
	CHECK(wait_alias(&e, "fraud/xgb", "0.latest", "0.1"));
	CHECK(wait_alias(&e, "fraud/xgb", "latest", "10.2"));
	teardown(&e);
}
