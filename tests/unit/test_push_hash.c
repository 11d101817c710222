/*
 * test_push_hash - the manifest `assetfs push` writes: every block digest
 * and every whole-file digest equal OpenSSL's SHA-256 of the source bytes,
 * computed here independently (EVP, one call per block and per file), for
 * the sizes where grouped hashing could go wrong: 0 bytes, under a block,
 * exactly one block, 9 blocks + 17 bytes (a group and a partial block),
 * 16 blocks + 5 bytes (both halves of the buffer, then the first again),
 * under each sha256_mb implementation this CPU has.
 *
 * Each test pushes to its own file:// store in a temp dir, removed at the
 * end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/sha256_mb.h"
#include "fs/cli/push.h"
#include "fs/catalog/store.h"
#include "resolver/meta.h"
#include "tests/unit/test.h"

#define BS ((size_t)MANIFEST_BLOCK_SIZE)

static char top[256];

/* A temp dir holding src/ and store/; returns the store, or NULL. */
static struct store *make_store(void)
{
	char url[PROV_URL_MAX], err[STORE_ERR_MAX], path[300];
	struct store *s = NULL;

	snprintf(top, sizeof(top), "/tmp/test_push_hash.XXXXXX");
	if (!mkdtemp(top))
		return NULL;
	snprintf(path, sizeof(path), "%s/src", top);
	if (mkdir(path, 0755) < 0)
		return NULL;
	snprintf(path, sizeof(path), "%s/store", top);
	if (mkdir(path, 0755) < 0)
		return NULL;
	snprintf(url, sizeof(url), "file://%s", path);
	if (store_open(url, NULL, &s, err, sizeof(err)) < 0)
		return NULL;
	return s;
}

static void drop_store(struct store **s)
{
	char cmd[300];

	store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
}

static void fill(uint8_t *b, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)(x >> 24);
	}
}

/* Write @len pseudo-random bytes (@seed) to <top>/src/@rel; NULL on error. */
static uint8_t *make_file(const char *rel, size_t len, uint64_t seed)
{
	char path[400];
	uint8_t *b = malloc(len ? len : 1);
	FILE *f;

	if (!b)
		return NULL;
	fill(b, len, seed);
	snprintf(path, sizeof(path), "%s/src/%s", top, rel);
	f = fopen(path, "wb");
	if (!f || fwrite(b, 1, len, f) != len || fclose(f) != 0) {
		free(b);
		return NULL;
	}
	return b;
}

static void sha256_evp(const void *p, size_t len, struct digest *out)
{
	unsigned int n = 0;

	CHECK(EVP_Digest(p, len, out->b, &n, EVP_sha256(), NULL) == 1);
	CHECK_INT(n, DIGEST_LEN);
}

/* @mf describes exactly the @len bytes at @data. */
static void check_entry(const struct manifest_file *mf, const uint8_t *data,
			size_t len)
{
	size_t n = len ? (len - 1) / BS + 1 : 0;
	struct digest want;

	CHECK(mf != NULL);
	if (!mf)
		return;
	CHECK_INT(mf->size, len);
	CHECK_INT(mf->n_blocks, n);
	sha256_evp(data, len, &want);
	CHECK(digest_equal(&mf->sha256, &want));
	for (size_t i = 0; i < n && i < mf->n_blocks; i++) {
		size_t off = i * BS, l = len - off < BS ? len - off : BS;

		sha256_evp(data + off, l, &want);
		if (!digest_equal(&mf->blocks[i], &want))
			test_fail(__FILE__, __LINE__,
				  "block %zu of %zu (%zu bytes) differs", i, n,
				  l);
	}
}

static int get_meta(struct store *s, const char *name, const char *version,
		    struct meta *m)
{
	char err[STORE_ERR_MAX];
	int ret = store_get_meta(s, name, version, m, NULL, NULL, err,
				 sizeof(err));

	if (ret < 0)
		fprintf(stderr, "store_get_meta: %s\n", err);
	return ret;
}

test(push_folder_manifest_matches_openssl)
{
	static const struct {
		const char *rel;
		size_t len;
	} files[] = {
	    {"empty", 0},
	    {"small", 17},
	    {"one", BS},
	    {"nine", 9 * BS + 17},
	    {"wraps", 16 * BS + 5},
	};
	enum { N = sizeof(files) / sizeof(files[0]) };
	char path[300], err[STORE_ERR_MAX];
	struct push_result res = {0};
	struct store *s = make_store();
	struct meta m = {0};
	uint8_t *data[N] = {0};

	CHECK(s != NULL);
	if (!s)
		return;
	for (size_t i = 0; i < N; i++) {
		data[i] = make_file(files[i].rel, files[i].len, i + 1);
		CHECK(data[i] != NULL);
	}
	snprintf(path, sizeof(path), "%s/src", top);
	CHECK_INT(push_asset(s, path, "t/dir", NULL, &res, err, sizeof(err)),
		  0);
	CHECK_INT(res.n_files, N);
	CHECK_INT(get_meta(s, "t/dir", "0.0", &m), 0);
	CHECK(m.manifest != NULL);
	if (m.manifest) {
		CHECK_INT(m.manifest->block_size, BS);
		CHECK_INT(m.manifest->n_files, N);
		for (size_t i = 0; i < N; i++)
			if (data[i])
				check_entry(manifest_find(m.manifest,
							  files[i].rel),
					    data[i], files[i].len);
	}
	meta_clear(&m);
	for (size_t i = 0; i < N; i++)
		free(data[i]);
	drop_store(&s);
}

/* The same file asset, pushed under each implementation (1, 8, 16 lanes). */
test(push_file_manifest_matches_openssl_under_each_impl)
{
	static const char *const impls[] = {"openssl", "avx2", "avx512vl",
					    "avx512"};
	static const size_t sizes[] = {9 * BS + 17, 0};
	char path[300], err[STORE_ERR_MAX], version[16];
	struct store *s = make_store();
	int pushed = 0;

	CHECK(s != NULL);
	if (!s)
		return;
	for (size_t k = 0; k < 2; k++) {
		uint8_t *data = make_file(k ? "f0" : "f9", sizes[k], 40 + k);

		CHECK(data != NULL);
		snprintf(path, sizeof(path), "%s/src/%s", top, k ? "f0" : "f9");
		for (size_t i = 0; data && i < 4; i++) {
			struct meta m = {0};

			if (sha256_mb_use(impls[i]) < 0)
				continue; /* this CPU lacks it */
			CHECK_INT(push_asset(s, path, "t/file", NULL, NULL,
					     err, sizeof(err)),
				  0);
			snprintf(version, sizeof(version), "0.%d", pushed++);
			CHECK_INT(get_meta(s, "t/file", version, &m), 0);
			CHECK(m.manifest && m.manifest->n_files == 1);
			if (m.manifest && m.manifest->n_files == 1)
				check_entry(manifest_find(m.manifest, ""),
					    data, sizes[k]);
			meta_clear(&m);
		}
		free(data);
	}
	CHECK(pushed >= 2); /* openssl at least, for both sizes */
	drop_store(&s);
}
