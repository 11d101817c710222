/*
 * test_cache_pin - the pin table of the block cache (fs/cache/cache_pin.h):
 * eviction under pressure never picks a pinned block (and picks it once
 * unpinned), a pin that would take all pins past cache_size is refused
 * with the sizes and records nothing, a digest shared by two versions
 * counts once, pending bytes count until learned, and presence follows
 * the blocks in the cache.
 */
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/cache/cache.h"
#include "fs/cache/cache_pin.h"
#include "test.h"

#define BLK (64 * 1024)
#define URL "file:///store"

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(p);
}

static char *setup(uint64_t max, struct cache **c)
{
	char tmpl[] = "/tmp/test_cache_pin.XXXXXX";
	char *d = mkdtemp(tmpl);
	struct cache_opts o;

	if (!d)
		return NULL;
	cache_opts_init(&o);
	o.dir = d;
	o.max.bytes = max;
	o.min_free.pct = 0;
	if (cache_open(&o, c) < 0)
		return NULL;
	return strdup(d);
}

static void teardown(char *dir, struct cache **c)
{
	cache_close(c);
	if (dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* Put a block of seed @seed; its digest into @d. */
static int put(struct cache *c, unsigned seed, struct digest *d)
{
	static unsigned char buf[BLK];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)((seed * 131 + i * 7) >> 3);
	return cache_put_block(c, buf, sizeof(buf), NULL, d);
}

test(cache_pin_eviction_spares_pinned_blocks)
{
	struct cache *c = NULL;
	char *dir = setup(8 * BLK, &c);
	struct digest p[3], o[12];
	uint64_t sz[3] = {BLK, BLK, BLK};
	struct cache_stats st;
	int i;

	CHECK(dir != NULL);
	for (i = 0; i < 3; i++)
		CHECK_INT(put(c, 1 + (unsigned)i, &p[i]), 0);
	CHECK_INT(
	    cache_pin_version(c, URL, "a/b", "1.0", p, sz, 3, 0, "cli", NULL),
	    0);
	/* 12 more blocks through an 8-block cache: 3 pinned stay */
	for (i = 0; i < 12; i++)
		CHECK_INT(put(c, 100 + (unsigned)i, &o[i]), 0);
	for (i = 0; i < 3; i++)
		CHECK_INT(cache_block_stat(c, &p[i], NULL), 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK(st.bytes <= 8 * BLK);
	CHECK_INT(st.evictions, 7);
	/* only 5 unpinned slots: the oldest others went */
	CHECK_INT(cache_block_stat(c, &o[0], NULL), -ENOENT);
	CHECK_INT(cache_block_stat(c, &o[11], NULL), 0);
	/* gc to nothing keeps the pinned ones */
	CHECK_INT(cache_gc(c, 0, NULL), 0);
	for (i = 0; i < 3; i++)
		CHECK_INT(cache_block_stat(c, &p[i], NULL), 0);
	CHECK_INT(cache_block_stat(c, &o[11], NULL), -ENOENT);
	/* unpinned, they are evictable like any other */
	CHECK_INT(cache_pin_remove(c, URL, "a/b"), 1);
	CHECK_INT(cache_gc(c, 0, NULL), 0);
	CHECK_INT(cache_block_stat(c, &p[0], NULL), -ENOENT);
	teardown(dir, &c);
}

test(cache_pin_fit_and_totals)
{
	struct cache *c = NULL;
	char *dir = setup(10 * BLK, &c);
	struct digest d[6];
	uint64_t sz[6];
	struct cache_pin_fit fit = {0};
	struct cache_pin_totals t;
	struct cache_pin_info *rows = NULL;
	size_t n = 0;
	int i;

	CHECK(dir != NULL);
	for (i = 0; i < 6; i++) {
		CHECK_INT(put(c, 10 + (unsigned)i, &d[i]), 0);
		sz[i] = BLK;
	}
	/* 1.0: blocks 0..3; 1.1 shares 2..3 and adds 4..5: 6 distinct */
	CHECK_INT(
	    cache_pin_version(c, URL, "a/b:1", "1.0", d, sz, 4, 0, "cli", NULL),
	    0);
	CHECK_INT(cache_pin_version(c, URL, "a/b:1", "1.1", d + 2, sz, 4, 0,
				    "cli", NULL),
		  0);
	CHECK_INT(cache_pin_totals(c, &t), 0);
	CHECK_INT(t.pins, 1);
	CHECK_INT(t.versions, 2);
	CHECK_INT(t.bytes_total, 6 * BLK);
	CHECK_INT(t.bytes_present, 6 * BLK);
	/* 5 more blocks' worth (pending, digests unknown) does not fit */
	CHECK_INT(cache_pin_version(c, URL, "x/y", "0.0", NULL, NULL, 0,
				    5 * BLK, "cli", &fit),
		  -ENOSPC);
	CHECK_INT(fit.need, 5 * BLK);
	CHECK_INT(fit.pinned, 6 * BLK);
	CHECK_INT(fit.cache_size, 10 * BLK);
	CHECK_INT(cache_pin_list(c, NULL, &rows, &n), 0);
	CHECK_INT(n, 2); /* nothing recorded for x/y */
	cache_pin_list_free(rows, n);
	/* 4 fit; learning a digest moves bytes from pending to blocks */
	CHECK_INT(cache_pin_version(c, URL, "x/y", "0.0", NULL, NULL, 0,
				    4 * BLK, "file:/p", NULL),
		  0);
	CHECK_INT(cache_pin_add_blocks(c, URL, "x/y", "0.0", d, sz, 1, BLK), 0);
	CHECK_INT(
	    cache_pin_set_state(c, URL, "x/y", "0.0", CACHE_PIN_READY, NULL),
	    0);
	CHECK_INT(cache_pin_list(c, URL, &rows, &n), 0);
	CHECK_INT(n, 3);
	CHECK_STR(rows[2].spec, "x/y");
	CHECK_STR(rows[2].source, "file:/p");
	CHECK_INT(rows[2].bytes_total, 4 * BLK);
	CHECK_INT(rows[2].bytes_present, BLK);
	CHECK_INT(rows[2].state, CACHE_PIN_READY);
	cache_pin_list_free(rows, n);
	/* releasing 1.0 keeps what 1.1 shares: 1.1's 4 blocks, x/y's
	   learned block (not one of them) and its 3 pending */
	CHECK_INT(cache_pin_release(c, URL, "a/b:1", "1.0"), 0);
	CHECK_INT(cache_pin_totals(c, &t), 0);
	CHECK_INT(t.versions, 2);
	CHECK_INT(t.bytes_total, 4 * BLK + BLK + 3 * BLK);
	CHECK_INT(cache_gc(c, 0, NULL), 0);
	CHECK_INT(cache_block_stat(c, &d[1], NULL), -ENOENT);
	CHECK_INT(cache_block_stat(c, &d[0], NULL), 0);
	CHECK_INT(cache_block_stat(c, &d[2], NULL), 0);
	/* a failure without any version is listed with its reason */
	CHECK_INT(cache_pin_fail(c, URL, "q/r", "cli", "no such asset"), 0);
	CHECK_INT(cache_pin_list(c, URL, &rows, &n), 0);
	CHECK_INT(n, 3);
	CHECK_STR(rows[1].spec, "q/r");
	CHECK_STR(rows[1].version, "");
	CHECK_INT(rows[1].state, CACHE_PIN_FAILED);
	CHECK_STR(rows[1].reason, "no such asset");
	cache_pin_list_free(rows, n);
	CHECK_INT(
	    cache_pin_set_state(c, URL, "q/r", "9.9", CACHE_PIN_READY, NULL),
	    -ENOENT);
	teardown(dir, &c);
}
