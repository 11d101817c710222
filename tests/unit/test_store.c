/*
 * test_store - the modelkit layout over the file:// provider: keys,
 * version lists and .meta (raw bytes and ETags too), namespace levels,
 * the asset list, assets.index and spec resolution, with the errors a
 * user sees.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/catalog/store.h"
#include "providers/provider_int.h"
#include "tests/unit/test.h"

static char store_dir[256];

/* A fresh store holding @n objects given as key, content pairs. */
static struct store *make_store(const char *const (*objs)[2], size_t n)
{
	char url[PROV_URL_MAX], err[STORE_ERR_MAX];
	struct store *s = NULL;

	snprintf(store_dir, sizeof(store_dir), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(store_dir))
		return NULL;
	snprintf(url, sizeof(url), "file://%s", store_dir);
	if (store_open(url, NULL, &s, err, sizeof(err)) < 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (prov_put_buf(store_prov(s), objs[i][0], objs[i][1],
				 strlen(objs[i][1])) < 0)
			return NULL;
	return s;
}

static void drop_store(struct store **s)
{
	char cmd[300];

	store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", store_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
}

#define META_FILE                                                              \
	"{\"push_date\": \"2021-05-04T10:00:00.123456\", "                     \
	"\"is_directory\": false}"
#define META_DIR                                                               \
	"{\"push_date\": \"2021-05-04T10:00:00Z\", "                           \
	"\"is_directory\": true, \"contents\": [\"/model.json\", "             \
	"\"/sub/b.bin\"]}"

static const char *const objs[][2] = {
    {"fraud/xgb.versions",
     "{\"versions\": [\"1.10\", \"10.0\", \"1.2\", \"1.0\", \"1.2\"]}"},
    {"fraud/xgb/1.10.meta", META_DIR},
    {"fraud/xgb/1.10/model.json", "{}"},
    {"fraud/xgb/1.10/sub/b.bin", "bb"},
    {"fraud/xgb/1.10/sub/odd.versions", "{}"}, /* a file, not an asset */
    {"fraud/xgb/10.0.meta", META_FILE},
    {"fraud/xgb/10.0", "ten"},
    {"fraud/xgb/1.2.meta", META_FILE},
    {"fraud/xgb/1.2", "one-two"},
    {"fraud/team/lr.versions", "{\"versions\": [\"0.0\"]}"},
    {"fraud/team/lr/0.0.meta", META_FILE},
    {"fraud/team/lr/0.0", "lr"},
    {"top.versions", "{\"versions\": [\"2021-01-01T00-00-00Z\", "
		     "\"2022-03-04T05-06-07Z\"]}"},
    {"top/2022-03-04T05-06-07Z.meta", META_FILE},
    {"top/2022-03-04T05-06-07Z", "dated"},
    {"_bad.versions", "{\"versions\": []}"},
    {"broken.versions", "{\"versions\": 3"},
    {"assets.index", "{\"assets\": [\"fraud/xgb\", \"top\"]}"},
};

#define N_OBJS (sizeof(objs) / sizeof(objs[0]))

test(store_keys_and_urls)
{
	char buf[STORE_KEY_MAX], url[PROV_URL_MAX];
	struct store *s = make_store(NULL, 0);

	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_INT(store_key_versions("a/b", buf, sizeof(buf)), 12);
	CHECK_STR(buf, "a/b.versions");
	CHECK(store_key_meta("a/b", "1.0", buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "a/b/1.0.meta");
	CHECK(store_key_file("a/b", "1.0", NULL, buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "a/b/1.0");
	CHECK(store_key_file("a/b", "1.0", "x/y.json", buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "a/b/1.0/x/y.json");
	CHECK_INT(store_key_versions("a/b", buf, 5), -ENAMETOOLONG);
	CHECK(store_object_url(s, "a/b/1.0", url, sizeof(url)) > 0);
	CHECK(strncmp(url, "file:///tmp/test_store.", 23) == 0);
	CHECK(strstr(url, "/a/b/1.0") != NULL);
	CHECK_INT(store_versioning(s), VERSIONING_AUTO);
	drop_store(&s);
}

test(store_open_errors)
{
	char err[STORE_ERR_MAX];
	struct store_opts so = {.versioning = "semver"};
	struct store *s = NULL;

	CHECK_INT(store_open("ftp://x", NULL, &s, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "unknown scheme");
	CHECK_INT(store_open("file:///tmp", &so, &s, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR_CONTAINS(err, "semver");
	CHECK(s == NULL);
	so.versioning = "simple_date";
	CHECK_INT(store_open("file:///tmp", &so, &s, err, sizeof(err)), 0);
	CHECK_INT(store_versioning(s), VERSIONING_SIMPLE_DATE);
	store_close(&s);
	setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "nonsense", 1);
	CHECK_INT(store_open("file:///tmp", NULL, &s, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR_CONTAINS(err, "MODELKIT_ASSETS_VERSIONING_SYSTEM");
	setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "major_minor", 1);
	CHECK_INT(store_open("file:///tmp", NULL, &s, err, sizeof(err)), 0);
	CHECK_INT(store_versioning(s), VERSIONING_MAJOR_MINOR);
	store_close(&s);
	unsetenv("MODELKIT_ASSETS_VERSIONING_SYSTEM");
}

test(store_versions_raw_etag_and_errors)
{
	char err[STORE_ERR_MAX];
	struct version_list vl = {0};
	struct buf raw;
	char *etag = NULL;
	struct store *s = make_store(objs, N_OBJS);

	CHECK(s != NULL);
	if (!s)
		return;
	buf_init(&raw, 0);
	CHECK_INT(store_get_versions(s, "fraud/xgb", &vl, &raw, &etag, err,
				     sizeof(err)),
		  0);
	CHECK_INT(vl.n, 4);
	if (vl.n == 4) {
		CHECK_STR(vl.v[0], "10.0");
		CHECK_STR(vl.v[1], "1.10");
		CHECK_STR(vl.v[2], "1.2");
		CHECK_STR(vl.v[3], "1.0");
	}
	CHECK_STR(raw.data, objs[0][1]);
	CHECK(etag != NULL);
	free(etag);
	version_list_clear(&vl);

	CHECK_INT(
	    store_get_versions(s, "top", &vl, NULL, NULL, err, sizeof(err)), 0);
	CHECK_INT(vl.sys, VERSIONING_SIMPLE_DATE);
	CHECK_STR(vl.n ? vl.v[0] : NULL, "2022-03-04T05-06-07Z");
	version_list_clear(&vl);

	buf_reset(&raw);
	etag = NULL;
	CHECK_INT(store_get_versions(s, "fraud/nope", &vl, &raw, &etag, err,
				     sizeof(err)),
		  -ENOENT);
	CHECK_STR(err, "no such asset 'fraud/nope'");
	CHECK(etag == NULL);
	CHECK_INT(raw.len, 0);
	CHECK_INT(
	    store_get_versions(s, "broken", &vl, NULL, NULL, err, sizeof(err)),
	    -EINVAL);
	CHECK_STR_CONTAINS(err, "broken.versions");
	CHECK_INT(
	    store_get_versions(s, "a//b", &vl, NULL, NULL, err, sizeof(err)),
	    -EINVAL);
	CHECK_STR_CONTAINS(err, "empty segment");

	/* The offline path parses the same bytes the same way. */
	CHECK_INT(store_parse_versions(s, objs[0][1], strlen(objs[0][1]), &vl,
				       err, sizeof(err)),
		  0);
	CHECK_INT(vl.n, 4);
	version_list_clear(&vl);
	buf_free(&raw);
	drop_store(&s);
}

test(store_meta_modelkit_layout)
{
	char err[STORE_ERR_MAX];
	struct meta m = {0};
	struct buf raw;
	char *etag = NULL;
	struct store *s = make_store(objs, N_OBJS);

	CHECK(s != NULL);
	if (!s)
		return;
	buf_init(&raw, 0);
	CHECK_INT(store_get_meta(s, "fraud/xgb", "1.10", &m, &raw, &etag, err,
				 sizeof(err)),
		  0);
	CHECK(etag != NULL);
	free(etag);
	CHECK(m.is_directory);
	CHECK_INT(m.n_contents, 2);
	if (m.n_contents == 2) {
		CHECK_STR(m.contents[0], "model.json");
		CHECK_STR(m.contents[1], "sub/b.bin");
	}
	CHECK(m.manifest == NULL);
	CHECK_STR(raw.data, META_DIR);
	meta_clear(&m);
	etag = NULL;
	CHECK_INT(store_get_meta(s, "fraud/xgb", "1.0", &m, NULL, &etag, err,
				 sizeof(err)),
		  -ENOENT);
	CHECK_STR(err, "no .meta for 'fraud/xgb:1.0'");
	CHECK(etag == NULL);
	buf_free(&raw);
	drop_store(&s);
}

test(store_levels)
{
	char err[STORE_ERR_MAX];
	struct store_level lv = {0};
	struct store *s = make_store(objs, N_OBJS);

	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_INT(store_list_level(s, "", &lv, err, sizeof(err)), 0);
	/* broken and top are assets; _bad is not a valid name */
	CHECK_INT(lv.n_assets, 2);
	if (lv.n_assets == 2) {
		CHECK_STR(lv.assets[0], "broken");
		CHECK_STR(lv.assets[1], "top");
	}
	CHECK_INT(lv.n_namespaces, 1);
	CHECK_STR(lv.n_namespaces ? lv.namespaces[0] : NULL, "fraud");
	CHECK_INT(lv.n_skipped, 1);
	store_level_clear(&lv);

	CHECK_INT(store_list_level(s, "fraud", &lv, err, sizeof(err)), 0);
	CHECK_INT(lv.n_assets, 1);
	CHECK_STR(lv.n_assets ? lv.assets[0] : NULL, "fraud/xgb");
	CHECK_INT(lv.n_namespaces, 1); /* fraud/xgb/ is xgb's data */
	CHECK_STR(lv.n_namespaces ? lv.namespaces[0] : NULL, "fraud/team");
	store_level_clear(&lv);

	CHECK_INT(store_list_level(s, "fraud/team", &lv, err, sizeof(err)), 0);
	CHECK_INT(lv.n_assets, 1);
	CHECK_STR(lv.n_assets ? lv.assets[0] : NULL, "fraud/team/lr");
	CHECK_INT(lv.n_namespaces, 0);
	store_level_clear(&lv);

	CHECK_INT(store_list_level(s, "nothing", &lv, err, sizeof(err)), 0);
	CHECK_INT(lv.n_assets + lv.n_namespaces, 0);
	CHECK_INT(store_list_level(s, "../x", &lv, err, sizeof(err)), -EINVAL);
	drop_store(&s);
}

test(store_all_assets_and_index)
{
	char err[STORE_ERR_MAX];
	struct assets_index ix = {0};
	struct store *s = make_store(objs, N_OBJS);

	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_INT(store_list_assets(s, &ix, err, sizeof(err)), 0);
	/* fraud/xgb/1.10/sub/odd.versions is a file of fraud/xgb */
	CHECK_INT(ix.n, 4);
	if (ix.n == 4) {
		CHECK_STR(ix.names[0], "broken");
		CHECK_STR(ix.names[1], "fraud/team/lr");
		CHECK_STR(ix.names[2], "fraud/xgb");
		CHECK_STR(ix.names[3], "top");
	}
	CHECK_INT(ix.n_invalid, 1);
	CHECK_INT(store_write_index(s, &ix, err, sizeof(err)), 0);
	assets_index_clear(&ix);
	CHECK_INT(store_read_index(s, &ix, err, sizeof(err)), 0);
	CHECK_INT(ix.n, 4);
	assets_index_clear(&ix);
	CHECK_INT(prov_delete(store_prov(s), STORE_INDEX_KEY), 0);
	CHECK_INT(store_read_index(s, &ix, err, sizeof(err)), -ENOENT);
	drop_store(&s);
}

static int resolve(struct store *s, const char *text, struct store_resolved *r,
		   char *err, size_t errlen)
{
	struct spec sp = {0};
	int ret;

	ret = spec_parse(text, &sp, err, errlen);
	if (ret == 0)
		ret = store_resolve(s, &sp, r, err, errlen);
	spec_clear(&sp);
	return ret;
}

test(store_resolution)
{
	char err[STORE_ERR_MAX];
	struct store_resolved r = {0};
	struct store *s = make_store(objs, N_OBJS);

	CHECK(s != NULL);
	if (!s)
		return;
	/* Exact major: x:1 is 1.10, never 10.0. */
	CHECK_INT(resolve(s, "fraud/xgb:1[sub/b.bin]", &r, err, sizeof(err)),
		  0);
	CHECK_STR(r.version, "1.10");
	CHECK_STR(r.sub, "sub/b.bin");
	CHECK_STR(r.key, "fraud/xgb/1.10/sub/b.bin");
	store_resolved_clear(&r);

	CHECK_INT(resolve(s, "fraud/xgb", &r, err, sizeof(err)), 0);
	CHECK_STR(r.version, "10.0");
	CHECK_STR(r.key, "fraud/xgb/10.0");
	CHECK(!r.meta.is_directory);
	store_resolved_clear(&r);

	CHECK_INT(resolve(s, "fraud/xgb:1.10", &r, err, sizeof(err)), 0);
	CHECK_STR(r.key, "fraud/xgb/1.10");
	CHECK(r.sub == NULL);
	store_resolved_clear(&r);

	CHECK_INT(resolve(s, "top", &r, err, sizeof(err)), 0);
	CHECK_STR(r.version, "2022-03-04T05-06-07Z");
	store_resolved_clear(&r);

	CHECK_INT(resolve(s, "fraud/xgb:3", &r, err, sizeof(err)), -ENOENT);
	CHECK_STR_CONTAINS(err, "'3'");
	CHECK(r.name == NULL);
	CHECK_INT(resolve(s, "fraud/xgb:1.10[nope.txt]", &r, err, sizeof(err)),
		  -ENOENT);
	CHECK_STR(err, "no file 'nope.txt' in 'fraud/xgb:1.10'");
	CHECK_INT(resolve(s, "fraud/xgb:1.10[sub]", &r, err, sizeof(err)),
		  -EISDIR);
	CHECK_INT(resolve(s, "fraud/xgb:1.2[x]", &r, err, sizeof(err)),
		  -ENOTDIR);
	CHECK_STR_CONTAINS(err, "file asset");
	/* Listed, but its .meta is missing. */
	CHECK_INT(resolve(s, "fraud/xgb:1.0", &r, err, sizeof(err)), -ENOENT);
	CHECK_STR_CONTAINS(err, ".meta");
	CHECK_INT(resolve(s, "ghost", &r, err, sizeof(err)), -ENOENT);
	CHECK_STR(err, "no such asset 'ghost'");
	drop_store(&s);
}

test(store_missing_directory_is_not_enoent)
{
	char err[STORE_ERR_MAX], moved[300];
	struct version_list vl = {0};
	struct store_level lv = {0};
	struct store *s = make_store(objs, 1);

	CHECK(s != NULL);
	if (!s)
		return;
	snprintf(moved, sizeof(moved), "%s.away", store_dir);
	CHECK_INT(rename(store_dir, moved), 0);
	CHECK_INT(store_get_versions(s, "fraud/xgb", &vl, NULL, NULL, err,
				     sizeof(err)),
		  -EIO);
	CHECK_STR_CONTAINS(err, "missing");
	CHECK_INT(store_list_level(s, "", &lv, err, sizeof(err)), -EIO);
	CHECK_INT(rename(moved, store_dir), 0);
	CHECK_INT(store_get_versions(s, "fraud/xgb", &vl, NULL, NULL, err,
				     sizeof(err)),
		  0);
	version_list_clear(&vl);
	drop_store(&s);
}

test(store_without_listing_uses_the_index)
{
	char err[STORE_ERR_MAX], url[PROV_URL_MAX];
	struct assets_index ix = {0};
	struct store_level lv = {0};
	struct prov_ops no_list;
	struct store *s = make_store(objs, N_OBJS), *s2 = NULL;
	struct prov *p = NULL;

	CHECK(s != NULL);
	if (!s)
		return;
	/* The same directory behind a backend that cannot list, as plain
	   HTTP is. */
	no_list = prov_file_ops;
	no_list.can_list = false;
	snprintf(url, sizeof(url), "file://%s", store_dir);
	CHECK_INT(prov_open(url, NULL, &p), 0);
	p->ops = &no_list;
	CHECK_INT(store_from_prov(p, NULL, &s2, err, sizeof(err)), 0);
	CHECK_INT(store_list_assets(s2, &ix, err, sizeof(err)), 0);
	CHECK_INT(ix.n, 2);
	if (ix.n == 2) {
		CHECK_STR(ix.names[0], "fraud/xgb");
		CHECK_STR(ix.names[1], "top");
	}
	assets_index_clear(&ix);
	CHECK_INT(store_list_level(s2, "", &lv, err, sizeof(err)), -ENOTSUP);
	/* Without an index: an empty store, not an error. */
	CHECK_INT(prov_delete(store_prov(s), STORE_INDEX_KEY), 0);
	CHECK_INT(store_list_assets(s2, &ix, err, sizeof(err)), 0);
	CHECK_INT(ix.n, 0);
	store_close(&s2);
	drop_store(&s);
}
