/*
 * test_cache_admin - sizes, defaults and `assetfs cache verify`
 * (cache_util.c, cache_admin.c): cache sizes parse as written, the
 * default dir follows XDG, and verify finds, reports and removes exactly
 * the bad blocks, with any number of hashing lanes.
 *
 * Each test works in its own temp dir, removed at the end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/sha256_mb.h"
#include "fs/cache/cache.h"
#include "tests/unit/cachetest.h"
#include "test.h"

test(cache_parse_size_table)
{
	static const struct {
		const char *s;
		int ret;
		uint64_t bytes;
		unsigned pct;
	} t[] = {
	    {"10G", 0, 10ULL << 30, 0},
	    {"512M", 0, 512ULL << 20, 0},
	    {"512MiB", 0, 512ULL << 20, 0},
	    {"4k", 0, 4096, 0},
	    {"1.5G", 0, 3ULL << 29, 0},
	    {"123", 0, 123, 0},
	    {"123B", 0, 123, 0},
	    {"5%", 0, 0, 5},
	    {"100%", 0, 0, 100},
	    {"101%", -EINVAL, 0, 0},
	    {"1.5%", -EINVAL, 0, 0},
	    {"", -EINVAL, 0, 0},
	    {"G", -EINVAL, 0, 0},
	    {"10X", -EINVAL, 0, 0},
	    {"-1G", -EINVAL, 0, 0},
	    {"10G ", -EINVAL, 0, 0},
	    {"1.5", -EINVAL, 0, 0},
	    {"99999999999999999999", -EINVAL, 0, 0},
	    {"17179869184T", -EINVAL, 0, 0},
	    {"16777215.999999999999T", 0,
	     (16777215ULL << 40) + (999ULL << 40) / 1000, 0},
	    {"0.5k", 0, 512, 0},
	};
	struct cache_size out;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&out, 0, sizeof(out));
		int ret = cache_parse_size(t[i].s, &out);

		if (ret != t[i].ret)
			test_fail(__FILE__, __LINE__, "\"%s\": %d, want %d",
				  t[i].s, ret, t[i].ret);
		if (ret == 0 &&
		    (out.bytes != t[i].bytes || out.pct != t[i].pct))
			test_fail(__FILE__, __LINE__, "\"%s\": %llu/%u", t[i].s,
				  (unsigned long long)out.bytes, out.pct);
	}
}

test(cache_default_dir_follows_xdg)
{
	char out[CACHE_PATH_MAX];
	char *old_x = getenv("XDG_CACHE_HOME");
	char *old_h = getenv("HOME");

	old_x = old_x ? strdup(old_x) : NULL;
	old_h = old_h ? strdup(old_h) : NULL;
	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	setenv("HOME", "/home/u", 1);
	CHECK_INT(cache_default_dir(out, sizeof(out)), 0);
	CHECK_STR(out,
		  geteuid() == 0 ? "/var/cache/assetfs" : "/x/cache/assetfs");
	unsetenv("XDG_CACHE_HOME");
	CHECK_INT(cache_default_dir(out, sizeof(out)), 0);
	CHECK_STR(out, geteuid() == 0 ? "/var/cache/assetfs"
				      : "/home/u/.cache/assetfs");
	CHECK_INT(cache_default_dir(out, 4), -ENAMETOOLONG);
	if (old_x)
		setenv("XDG_CACHE_HOME", old_x, 1);
	if (old_h)
		setenv("HOME", old_h, 1);
	free(old_x);
	free(old_h);
}

test(cache_verify_finds_and_removes_bad_blocks)
{
	char *dir = ct_tmpdir();
	char bp[CACHE_PATH_MAX], hex[DIGEST_HEX_LEN + 1];
	struct cache *c = NULL;
	struct cache_verify_report r = {0};
	struct cache_stats st;
	struct digest d[3];

	ct_put_three(dir, d, true);
	digest_to_hex(&d[2], hex);
	snprintf(bp, sizeof(bp), "%s/blocks/%.2s/%s", dir, hex, hex);
	ct_corrupt_file(bp, 0);
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_verify(c, &r), 0);
	CHECK_INT(r.checked, 3);
	CHECK_INT(r.bad, 1);
	CHECK_INT(r.bytes, 3 * BLK - 3);
	CHECK(access(bp, F_OK) < 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 2);
	memset(&r, 0, sizeof(r));
	CHECK_INT(cache_verify(c, &r), 0);
	CHECK_INT(r.checked, 2);
	CHECK_INT(r.bad, 0);
	cache_close(&c);
	ct_rm_rf(dir);
	free(dir);
}

struct bad_seen {
	char hex[4][DIGEST_HEX_LEN + 1];
	int n;
};

static void note_bad(const char *hex, const char *why, void *arg)
{
	struct bad_seen *b = arg;

	CHECK_STR(why, "content does not match its name");
	if (b->n < 4)
		snprintf(b->hex[b->n], sizeof(b->hex[0]), "%s", hex);
	b->n++;
}

static int cmp_digest(const void *a, const void *b)
{
	return memcmp(a, b, DIGEST_LEN);
}

/*
 * Verify hashes in groups of sha256_mb_lanes(): 40 blocks (and one of
 * 5 MiB, hashed apart) with 2 corrupted ones inside the first groups
 * (walk order is about digest order) report exactly those 2, under each
 * implementation (1, 8 and 16 lanes).
 */
test(cache_verify_groups_report_exactly_the_bad)
{
	static const char *const impls[] = {"openssl", "avx2", "avx512"};
	enum { NB = 40 };
	static uint8_t data[5 << 20];
	char bp[CACHE_PATH_MAX], hex[2][DIGEST_HEX_LEN + 1];
	struct digest d[NB + 1];
	int runs = 0;

	for (size_t k = 0; k < 3; k++) {
		char *dir;
		struct cache *c = NULL;
		struct cache_verify_report r = {0};
		struct bad_seen seen = {0};
		struct cache_stats st;
		uint64_t bytes = 0;

		if (sha256_mb_use(impls[k]) < 0)
			continue;
		runs++;
		dir = ct_tmpdir();
		CHECK_INT(ct_open_cache(dir, 0, &c), 0);
		for (int i = 0; i < NB; i++) {
			size_t len = BLK - (size_t)i * 7;

			ct_fill(data, len, 500 + (unsigned)i);
			CHECK_INT(cache_put_block(c, data, len, NULL, &d[i]),
				  0);
			bytes += len;
		}
		ct_fill(data, sizeof(data), 999);
		CHECK_INT(cache_put_block(c, data, sizeof(data), NULL, &d[NB]),
			  0);
		bytes += sizeof(data);
		cache_close(&c);
		qsort(d, NB + 1, sizeof(d[0]), cmp_digest);
		/* the 6th and 12th in digest order: mid-group for 8 and 16 */
		for (int j = 0; j < 2; j++) {
			const struct digest *bad = &d[j ? 11 : 5];

			digest_to_hex(bad, hex[j]);
			snprintf(bp, sizeof(bp), "%s/blocks/%.2s/%s", dir,
				 hex[j], hex[j]);
			ct_corrupt_file(bp, 100 + j);
		}
		CHECK_INT(ct_open_cache(dir, 0, &c), 0);
		r.on_bad = note_bad;
		r.arg = &seen;
		CHECK_INT(cache_verify(c, &r), 0);
		CHECK_INT(r.checked, NB + 1);
		CHECK_INT(r.bytes, bytes);
		CHECK_INT(r.bad, 2);
		CHECK_INT(seen.n, 2);
		/* reported in walk order: by directory, so by first byte */
		if (memcmp(hex[0], hex[1], 2) != 0) {
			CHECK_STR(seen.hex[0], hex[0]);
			CHECK_STR(seen.hex[1], hex[1]);
		}
		for (int j = 0; j < 2; j++) {
			snprintf(bp, sizeof(bp), "%s/blocks/%.2s/%s", dir,
				 hex[j], hex[j]);
			CHECK(access(bp, F_OK) < 0);
		}
		CHECK_INT(cache_get_stats(c, &st), 0);
		CHECK_INT(st.blocks, NB - 1);
		memset(&r, 0, sizeof(r));
		CHECK_INT(cache_verify(c, &r), 0);
		CHECK_INT(r.checked, NB - 1);
		CHECK_INT(r.bad, 0);
		cache_close(&c);
		ct_rm_rf(dir);
		free(dir);
	}
	CHECK(runs >= 1);
}
