/*
 * test_provider - URL parsing, key validation, prov_store_url precedence
 * and the file:// backend (ranged get, If-Match, atomic put, delimited
 * listing, delete, a missing store directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileutil.h"
#include "providers/provider.h"
#include "providers/provider_int.h"
#include "tests/unit/test.h"

struct url_case {
	const char *url;
	int ret;
	const char *scheme, *bucket, *prefix;
};

static const struct url_case url_cases[] = {
    {"file:///srv/store/modelkit-assets", 0, "file",
     "/srv/store/modelkit-assets", ""},
    {"file:///srv/store/", 0, "file", "/srv/store", ""},
    {"file://localhost/srv/x", 0, "file", "/srv/x", ""},
    {"file:///", 0, "file", "/", ""},
    {"s3://bucket/prefix", 0, "s3", "bucket", "prefix"},
    {"s3://bucket/a/b/", 0, "s3", "bucket", "a/b"},
    {"s3://b", 0, "s3", "b", ""},
    {"s3://b/", 0, "s3", "b", ""},
    {"S3://b/p", 0, "s3", "b", "p"},
    {"gs://bkt/modelkit-assets", 0, "gs", "bkt", "modelkit-assets"},
    {"az://container/p/q", 0, "az", "container", "p/q"},
    {"http://127.0.0.1:8080/assets", 0, "http", "127.0.0.1:8080", "assets"},
    {"https://example.com", 0, "https", "example.com", ""},
    {"", -EINVAL, NULL, NULL, NULL},
    {"/srv/store", -EINVAL, NULL, NULL, NULL},
    {"ftp://host/x", -EINVAL, NULL, NULL, NULL},
    {"://x", -EINVAL, NULL, NULL, NULL},
    {"file://host/x", -EINVAL, NULL, NULL, NULL},
    {"file://relative", -EINVAL, NULL, NULL, NULL},
    {"s3://", -EINVAL, NULL, NULL, NULL},
    {"s3:///prefix", -EINVAL, NULL, NULL, NULL},
    {"s3://b/a//c", -EINVAL, NULL, NULL, NULL},
    {"s3://b/a/../c", -EINVAL, NULL, NULL, NULL},
    {"file:///srv/../etc", -EINVAL, NULL, NULL, NULL},
    {"http://user:pw@host/x", -EINVAL, NULL, NULL, NULL},
    {"http://host/x?y=1", -EINVAL, NULL, NULL, NULL},
    {"s3://b/p\n", -EINVAL, NULL, NULL, NULL},
};

test(url_parsing_table)
{
	for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
		const struct url_case *c = &url_cases[i];
		struct prov p = {0};
		int ret = prov_parse_url(c->url, &p);

		if (ret != c->ret) {
			test_fail(__FILE__, __LINE__, "'%s': %d, want %d",
				  c->url, ret, c->ret);
			continue;
		}
		if (ret == 0) {
			CHECK_STR(p.scheme, c->scheme);
			CHECK_STR(p.bucket, c->bucket);
			CHECK_STR(p.prefix, c->prefix);
		} else {
			CHECK(*prov_last_error() != '\0');
		}
		free(p.scheme);
		free(p.bucket);
		free(p.prefix);
	}
}

test(open_unbuilt_backend_is_einval)
{
	struct prov *p = NULL;

	/* gs has no backend in this build unless one was added: either it
	   opens or says so; an unknown scheme never opens. */
	CHECK_INT(prov_open("nope://x/y", NULL, &p), -EINVAL);
	CHECK(p == NULL);
	CHECK_STR_CONTAINS(prov_last_error(), "unknown scheme");
}

/* A fresh store directory under /tmp; returns the prov. */
static struct prov *open_tmp_store(char *dir, size_t len)
{
	char url[PROV_URL_MAX];
	struct prov *p = NULL;

	snprintf(dir, len, "/tmp/test_provider.XXXXXX");
	if (!mkdtemp(dir))
		return NULL;
	snprintf(url, sizeof(url), "file://%s", dir);
	if (prov_open(url, NULL, &p) < 0)
		return NULL;
	return p;
}

static void rm_rf(const char *dir)
{
	char cmd[PROV_URL_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

static int sink_buf(void *arg, const void *data, size_t len)
{
	return buf_append(arg, data, len);
}

test(key_validation)
{
	static const char *const bad[] = {
	    "/abs", "a/../b", "..", "a/./b", "a//b", "a/", "", "a/\x01",
	};
	struct prov_object o;
	char dir[256];
	struct prov *p = open_tmp_store(dir, sizeof(dir));

	CHECK(p != NULL);
	if (!p)
		return;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret = prov_head(p, bad[i], &o);

		if (ret != -EINVAL)
			test_fail(__FILE__, __LINE__,
				  "HEAD '%s' = %d, want "
				  "-EINVAL",
				  bad[i], ret);
		ret = prov_put_buf(p, bad[i], "x", 1);
		if (ret != -EINVAL)
			test_fail(__FILE__, __LINE__,
				  "PUT '%s' = %d, want "
				  "-EINVAL",
				  bad[i], ret);
	}
	CHECK_INT(prov_head(p, "..x", &o), -ENOENT); /* a legal name */
	prov_close(&p);
	rm_rf(dir);
}

test(file_put_get_ranges_and_if_match)
{
	struct prov_object o = {0}, o2 = {0};
	struct buf b;
	char dir[256];
	struct prov *p = open_tmp_store(dir, sizeof(dir));
	struct prov_stats st;

	CHECK(p != NULL);
	if (!p)
		return;
	buf_init(&b, 0);
	CHECK_INT(prov_put_buf(p, "ns/a/0.0", "hello world", 11), 0);
	CHECK_INT(prov_head(p, "ns/a/0.0", &o), 0);
	CHECK_INT(o.size, 11);
	CHECK(o.etag != NULL);
	CHECK_STR(o.key, "ns/a/0.0");

	CHECK_INT(prov_get(p, "ns/a/0.0", 6, 5, o.etag, sink_buf, &b), 5);
	CHECK_STR(b.data, "world");
	buf_reset(&b);
	CHECK_INT(prov_get(p, "ns/a/0.0", 0, PROV_WHOLE, NULL, sink_buf, &b),
		  11);
	CHECK_STR(b.data, "hello world");
	buf_reset(&b);
	CHECK_INT(prov_get(p, "ns/a/0.0", 11, PROV_WHOLE, NULL, sink_buf, &b),
		  0);
	CHECK_INT(prov_get(p, "ns/a/0.0", 12, 1, NULL, sink_buf, &b), -EINVAL);
	CHECK_INT(prov_get(p, "ns/a/0.0", 8, 4, NULL, sink_buf, &b), -EINVAL);
	CHECK_INT(prov_get(p, "ns/a/0.1", 0, 1, NULL, sink_buf, &b), -ENOENT);
	/* A directory is a prefix, not an object. */
	CHECK_INT(prov_get(p, "ns/a", 0, 1, NULL, sink_buf, &b), -ENOENT);
	CHECK_INT(prov_head(p, "ns", &o2), -ENOENT);

	/* Replacing the object changes its ETag: If-Match notices. */
	CHECK_INT(prov_put_buf(p, "ns/a/0.0", "HELLO world", 11), 0);
	buf_reset(&b);
	CHECK_INT(prov_get(p, "ns/a/0.0", 0, 5, o.etag, sink_buf, &b), -ESTALE);
	CHECK_INT(b.len, 0);
	CHECK_INT(prov_head(p, "ns/a/0.0", &o2), 0);
	CHECK(strcmp(o.etag, o2.etag) != 0);
	CHECK_INT(prov_get(p, "ns/a/0.0", 0, 5, o2.etag, sink_buf, &b), 5);
	CHECK_STR(b.data, "HELLO");

	prov_get_stats(p, &st);
	CHECK(st.requests >= 10);
	CHECK_INT(st.bytes_sent, 22);
	CHECK_INT(st.bytes_received, 5 + 11 + 5);

	prov_object_free(&o);
	prov_object_free(&o2);
	buf_free(&b);
	prov_close(&p);
	CHECK(p == NULL);
	rm_rf(dir);
}

test(file_get_buf_cap_and_etag)
{
	struct buf b;
	char *etag = NULL;
	char dir[256];
	struct prov *p = open_tmp_store(dir, sizeof(dir));

	CHECK(p != NULL);
	if (!p)
		return;
	buf_init(&b, 0);
	CHECK_INT(prov_put_buf(p, "x.versions", "{\"versions\": []}", 16), 0);
	CHECK_INT(prov_get_buf(p, "x.versions", 15, &b, &etag), -EFBIG);
	CHECK_INT(b.len, 0);
	CHECK(etag == NULL);
	CHECK_INT(prov_get_buf(p, "x.versions", 16, &b, &etag), 0);
	CHECK_STR(b.data, "{\"versions\": []}");
	CHECK(etag != NULL);
	CHECK_INT(prov_get_buf(p, "y.versions", 16, &b, NULL), -ENOENT);
	free(etag);
	buf_free(&b);
	prov_close(&p);
	rm_rf(dir);
}

static void progress(void *arg, uint64_t done, uint64_t total)
{
	(void)total;
	*(uint64_t *)arg = done;
}

test(file_put_file_atomic_and_progress)
{
	char dir[256], src[300], path[300];
	uint64_t last = 0;
	struct buf b;
	struct stat st;
	struct prov *p = open_tmp_store(dir, sizeof(dir));
	char *data;
	int fd;
	const size_t n = 1300000;

	CHECK(p != NULL);
	if (!p)
		return;
	data = malloc(n);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 7 + 3);
	snprintf(src, sizeof(src), "%s.src", dir);
	CHECK_INT(file_write_atomic(src, data, n, 0600, false), 0);
	fd = open(src, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_INT(prov_put_file(p, "deep/er/f.bin", fd, n, progress, &last), 0);
	CHECK_INT(last, n);
	close(fd);
	buf_init(&b, 0);
	CHECK_INT(prov_get_buf(p, "deep/er/f.bin", n, &b, NULL), 0);
	CHECK_INT(b.len, n);
	CHECK(b.len == n && memcmp(b.data, data, n) == 0);
	/* No temp file left beside it; mode 0644. */
	{
		struct prov_listing l;

		CHECK_INT(prov_list(p, "deep/er/", true, &l), 0);
		CHECK_INT(l.n_objects, 1);
		prov_listing_free(&l);
	}
	snprintf(path, sizeof(path), "%s/deep/er/f.bin", dir);
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0644);
	/* Putting over a directory fails and leaves it alone. */
	CHECK(prov_put_buf(p, "deep/er", "x", 1) < 0);
	CHECK_INT(stat(path, &st), 0);

	buf_free(&b);
	free(data);
	unlink(src);
	prov_close(&p);
	rm_rf(dir);
}

test(file_list_delimited_and_full)
{
	static const char *const keys[] = {
	    "a.versions",    "a/0.0",		"a/0.0.meta",
	    "ns/b.versions", "ns/b/1.0/x.json", "ns/b/1.0/sub/y.bin",
	    "ns/b/1.0.meta", "ns/c.versions",	"assets.index",
	};
	struct prov_listing l;
	char dir[256], tmp[400];
	struct prov *p = open_tmp_store(dir, sizeof(dir));

	CHECK(p != NULL);
	if (!p)
		return;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		CHECK_INT(prov_put_buf(p, keys[i], "{}", 2), 0);
	/* A stray temp file from a killed writer is not an object. */
	snprintf(tmp, sizeof(tmp), "%s/ns/.c.versions.assetfs-tmp.abc123", dir);
	CHECK_INT(file_write_atomic(tmp, "x", 1, 0644, false), 0);

	CHECK_INT(prov_list(p, "", true, &l), 0);
	CHECK_INT(l.n_objects, 2);
	if (l.n_objects == 2) {
		CHECK_STR(l.objects[0].key, "a.versions");
		CHECK_STR(l.objects[1].key, "assets.index");
		CHECK_INT(l.objects[0].size, 2);
	}
	CHECK_INT(l.n_prefixes, 2);
	if (l.n_prefixes == 2) {
		CHECK_STR(l.prefixes[0], "a/");
		CHECK_STR(l.prefixes[1], "ns/");
	}
	prov_listing_free(&l);

	CHECK_INT(prov_list(p, "ns/", true, &l), 0);
	CHECK_INT(l.n_objects, 2);
	if (l.n_objects == 2) {
		CHECK_STR(l.objects[0].key, "ns/b.versions");
		CHECK_STR(l.objects[1].key, "ns/c.versions");
	}
	CHECK_INT(l.n_prefixes, 1);
	if (l.n_prefixes == 1)
		CHECK_STR(l.prefixes[0], "ns/b/");
	prov_listing_free(&l);

	/* A string prefix, as object stores have it. */
	CHECK_INT(prov_list(p, "ns/b", true, &l), 0);
	CHECK_INT(l.n_objects, 1);
	CHECK_INT(l.n_prefixes, 1);
	prov_listing_free(&l);

	CHECK_INT(prov_list(p, "ns/b/", false, &l), 0);
	CHECK_INT(l.n_objects, 3);
	if (l.n_objects == 3) {
		CHECK_STR(l.objects[0].key, "ns/b/1.0.meta");
		CHECK_STR(l.objects[1].key, "ns/b/1.0/sub/y.bin");
		CHECK_STR(l.objects[2].key, "ns/b/1.0/x.json");
	}
	CHECK_INT(l.n_prefixes, 0);
	prov_listing_free(&l);

	CHECK_INT(prov_list(p, "", false, &l), 0);
	CHECK_INT(l.n_objects, sizeof(keys) / sizeof(keys[0]));
	prov_listing_free(&l);

	CHECK_INT(prov_list(p, "nothing/", true, &l), 0);
	CHECK_INT(l.n_objects + l.n_prefixes, 0);
	prov_listing_free(&l);
	CHECK_INT(prov_list(p, "../", true, &l), -EINVAL);

	/* Deleting the last objects of a directory removes it. */
	CHECK_INT(prov_delete(p, "ns/b/1.0/sub/y.bin"), 0);
	CHECK_INT(prov_delete(p, "ns/b/1.0/x.json"), 0);
	CHECK_INT(prov_delete(p, "ns/b/1.0/x.json"), 0); /* missing: ok */
	CHECK_INT(prov_list(p, "ns/b/", true, &l), 0);
	CHECK_INT(l.n_objects, 1);
	CHECK_INT(l.n_prefixes, 0);
	prov_listing_free(&l);

	prov_close(&p);
	rm_rf(dir);
}

test(file_missing_store_is_unreachable)
{
	struct prov_listing l;
	struct prov_object o;
	struct buf b;
	char dir[256], moved[300];
	struct prov *p = open_tmp_store(dir, sizeof(dir));

	CHECK(p != NULL);
	if (!p)
		return;
	CHECK_INT(prov_put_buf(p, "a.versions", "{}", 2), 0);
	snprintf(moved, sizeof(moved), "%s.away", dir);
	CHECK_INT(rename(dir, moved), 0);
	buf_init(&b, 0);
	CHECK_INT(prov_head(p, "a.versions", &o), -EIO);
	CHECK_STR_CONTAINS(prov_last_error(), "missing");
	CHECK_INT(prov_get_buf(p, "a.versions", 100, &b, NULL), -EIO);
	CHECK_INT(prov_list(p, "", true, &l), -EIO);
	CHECK_INT(rename(moved, dir), 0);
	CHECK_INT(prov_get_buf(p, "a.versions", 100, &b, NULL), 0);
	buf_free(&b);
	prov_close(&p);
	rm_rf(dir);
}

test(store_url_precedence)
{
	char buf[PROV_URL_MAX];

	unsetenv("ASSETFS_STORE");
	unsetenv("MODELKIT_STORAGE_PROVIDER");
	unsetenv("MODELKIT_STORAGE_BUCKET");
	unsetenv("MODELKIT_STORAGE_PREFIX");
	CHECK_INT(prov_store_url(NULL, buf, sizeof(buf)), -ENOENT);
	CHECK_STR_CONTAINS(prov_last_error(), "--store");

	setenv("MODELKIT_STORAGE_PROVIDER", "local", 1);
	CHECK_INT(prov_store_url(NULL, buf, sizeof(buf)), -EINVAL);
	CHECK_STR_CONTAINS(prov_last_error(), "MODELKIT_STORAGE_BUCKET");
	setenv("MODELKIT_STORAGE_BUCKET", "/data/bucket", 1);
	CHECK_INT(prov_store_url(NULL, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "file:///data/bucket/modelkit-assets");
	setenv("MODELKIT_STORAGE_PREFIX", "team/assets", 1);
	CHECK_INT(prov_store_url(NULL, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "file:///data/bucket/team/assets");
	setenv("MODELKIT_STORAGE_PROVIDER", "s3", 1);
	setenv("MODELKIT_STORAGE_BUCKET", "bkt", 1);
	unsetenv("MODELKIT_STORAGE_PREFIX");
	CHECK_INT(prov_store_url(NULL, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "s3://bkt/modelkit-assets");
	setenv("MODELKIT_STORAGE_PROVIDER", "gcs", 1);
	CHECK_INT(prov_store_url(NULL, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "gs://bkt/modelkit-assets");
	setenv("MODELKIT_STORAGE_PROVIDER", "az", 1);
	CHECK_INT(prov_store_url(NULL, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "az://bkt/modelkit-assets");
	setenv("MODELKIT_STORAGE_PROVIDER", "ftp", 1);
	CHECK_INT(prov_store_url(NULL, buf, sizeof(buf)), -EINVAL);
	CHECK_STR_CONTAINS(prov_last_error(), "ftp");

	setenv("ASSETFS_STORE", "s3://env/p", 1);
	CHECK_INT(prov_store_url(NULL, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "s3://env/p");
	CHECK_INT(prov_store_url("gs://arg/q", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "gs://arg/q");
	CHECK_INT(prov_store_url("/abs/dir", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "file:///abs/dir");
	CHECK_INT(prov_store_url("s3://arg/q", buf, 5), -ENAMETOOLONG);

	unsetenv("ASSETFS_STORE");
	unsetenv("MODELKIT_STORAGE_PROVIDER");
	unsetenv("MODELKIT_STORAGE_BUCKET");
}

/* A backend that answers from memory, counting calls. */
static int fake_heads, fake_gets, fake_get_bufs;

static int fake_head(struct prov *p, const char *key, struct prov_object *out)
{
	fake_heads++;
	out->key = strdup(key);
	out->etag = strdup("e1");
	out->size = 3;
	return 0;
}

static int64_t fake_get(struct prov *p, const char *key, uint64_t off,
			uint64_t len, const char *if_match, prov_sink_fn sink,
			void *arg)
{
	int ret;

	fake_gets++;
	if (if_match && strcmp(if_match, "e1") != 0)
		return -ESTALE;
	ret = sink(arg, "abc", 3);
	return ret < 0 ? ret : 3;
}

static int fake_get_buf(struct prov *p, const char *key, size_t max,
			struct buf *out, char **etag)
{
	fake_get_bufs++;
	if (max < 3)
		return -EFBIG;
	if (etag)
		*etag = strdup("e1");
	return buf_append(out, "abc", 3);
}

test(get_buf_uses_one_request_when_the_backend_can)
{
	struct prov_ops ops = {
	    .scheme = "fake", .head = fake_head, .get = fake_get};
	struct prov p = {.ops = &ops, .url = "fake://x"};
	struct prov_stats st;
	char *etag = NULL;
	struct buf b;

	buf_init(&b, 0);
	/* Without get_buf: HEAD, then GET pinned to the ETag. */
	CHECK_INT(prov_get_buf(&p, "k", 10, &b, &etag), 0);
	CHECK_INT(fake_heads, 1);
	CHECK_INT(fake_gets, 1);
	CHECK_STR(b.data, "abc");
	CHECK_STR(etag, "e1");
	free(etag);
	etag = NULL;
	/* With it: one request. */
	ops.get_buf = fake_get_buf;
	buf_reset(&b);
	CHECK_INT(prov_get_buf(&p, "k", 10, &b, &etag), 0);
	CHECK_INT(fake_get_bufs, 1);
	CHECK_INT(fake_heads + fake_gets, 2);
	CHECK_STR(b.data, "abc");
	CHECK_STR(etag, "e1");
	free(etag);
	CHECK_INT(prov_get_buf(&p, "k", 2, &b, NULL), -EFBIG);
	CHECK_INT(prov_get_buf(&p, "/k", 10, &b, NULL), -EINVAL);
	prov_get_stats(&p, &st);
	CHECK_INT(st.requests, 4);
	CHECK_INT(st.bytes_received, 6);
	buf_free(&b);
}
