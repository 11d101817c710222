/*
 * test_fetcher - blocks of store objects into the cache: manifest digests
 * checked (altered bytes refused and not cached), trust on first use with
 * the ETag pinned, failures remembered (no second wait), read-ahead.
 * Against a real file:// store and cache in a temp dir.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileutil.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "fs/mount/fetcher.h"
#include "test.h"

#define BS (64u << 10)
#define SIZE (3 * BS + 1000)

struct env {
	char root[64];
	char store_dir[128];
	char url[160];
	struct store *st;
	struct cache *cache;
	struct fetcher *fe;
	struct stats *stats;
	unsigned char *data;
	struct manifest_file mf;
};

static void put(struct env *e, const char *key, const void *d, size_t n)
{
	char path[512], dir[512], *slash;

	snprintf(path, sizeof(path), "%s/%s", e->store_dir, key);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	CHECK_INT(mkdir_p(dir, 0755), 0);
	CHECK_INT(file_write_atomic(path, d, n, 0644, false), 0);
}

static void setup(struct env *e)
{
	struct fetcher_opts fo = { .timeout_ms = 5000, .threads = 4,
				   .fail_memory_ms = 300 };
	struct cache_opts co;
	char cdir[128], err[STORE_ERR_MAX];
	size_t i;

	memset(e, 0, sizeof(*e));
	snprintf(e->root, sizeof(e->root), "/tmp/test_fetcher.XXXXXX");
	CHECK(mkdtemp(e->root) != NULL);
	snprintf(e->store_dir, sizeof(e->store_dir), "%s/store", e->root);
	snprintf(e->url, sizeof(e->url), "file://%s", e->store_dir);
	e->data = malloc(SIZE);
	for (i = 0; i < SIZE; i++)
		e->data[i] = (unsigned char)(i * 7 + i / 251);
	put(e, "a/0.0", e->data, SIZE);
	e->mf.path = (char *)"";
	e->mf.size = SIZE;
	e->mf.n_blocks = 4;
	e->mf.blocks = calloc(4, sizeof(struct digest));
	for (i = 0; i < 4; i++) {
		size_t off = i * BS, n = SIZE - off < BS ? SIZE - off : BS;

		digest_buf(e->data + off, n, &e->mf.blocks[i]);
	}
	snprintf(cdir, sizeof(cdir), "%s/cache", e->root);
	cache_opts_init(&co);
	co.dir = cdir;
	CHECK_INT(cache_open(&co, &e->cache), 0);
	CHECK_INT(store_open(e->url, NULL, &e->st, err, sizeof(err)), 0);
	e->stats = stats_new();
	CHECK_INT(fetcher_new(e->st, e->cache, e->stats, &fo, &e->fe), 0);
}

static void teardown(struct env *e)
{
	char cmd[256];

	fetcher_free(e->fe);
	store_close(&e->st);
	cache_close(&e->cache);
	stats_free(e->stats);
	free(e->mf.blocks);
	free(e->data);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->root);
	CHECK_INT(system(cmd), 0);
}

/* Read block @i through the fetcher and compare with the source. */
static int check_block(struct env *e, const struct fetch_obj *o, uint64_t i)
{
	unsigned char buf[BS];
	uint64_t len = 0;
	int fd = -1, ret;

	ret = fetcher_block(e->fe, o, i, &fd, &len);
	if (ret < 0)
		return ret;
	CHECK_INT(pread_all(fd, buf, len, 0), (long long)len);
	CHECK(memcmp(buf, e->data + i * BS, len) == 0);
	close(fd);
	return 0;
}

test(fetcher_manifest_blocks)
{
	struct fetch_obj o;
	struct env e;
	uint64_t i, cached = 0;

	setup(&e);
	o = (struct fetch_obj){ .key = "a/0.0", .size = SIZE,
				.block_size = BS, .mf = &e.mf };
	CHECK_INT(fetcher_block_count(&o), 4);
	for (i = 0; i < 4; i++)
		CHECK_INT(check_block(&e, &o, i), 0);
	CHECK_INT(stats_get(e.stats, STAT_BYTES_FETCHED), SIZE);
	CHECK_INT(stats_get(e.stats, STAT_BLOCK_MISSES), 4);
	/* again: hits, nothing fetched */
	for (i = 0; i < 4; i++)
		CHECK_INT(check_block(&e, &o, i), 0);
	CHECK_INT(stats_get(e.stats, STAT_BYTES_FETCHED), SIZE);
	CHECK_INT(stats_get(e.stats, STAT_BLOCK_HITS), 4);
	CHECK_INT(fetcher_cached_bytes(e.fe, &o, &cached), 0);
	CHECK_INT(cached, SIZE);
	CHECK_INT(check_block(&e, &o, 4), -EINVAL);
	teardown(&e);
}

test(fetcher_refuses_altered_bytes)
{
	struct fetch_obj o;
	struct env e;
	uint64_t cached = 0;
	int64_t t0;

	setup(&e);
	e.data[BS + 3] ^= 0x55; /* the store now differs in block 1 */
	put(&e, "a/0.0", e.data, SIZE);
	e.data[BS + 3] ^= 0x55;
	o = (struct fetch_obj){ .key = "a/0.0", .size = SIZE,
				.block_size = BS, .mf = &e.mf };
	CHECK_INT(check_block(&e, &o, 0), 0);
	CHECK_INT(check_block(&e, &o, 1), -EIO);
	CHECK_INT(stats_get(e.stats, STAT_DIGEST_MISMATCHES), 1);
	CHECK_INT(stats_get(e.stats, STAT_ERRORS), 1);
	CHECK_INT(cache_block_stat(e.cache, &e.mf.blocks[1], NULL), -ENOENT);
	/* remembered: the retry fails at once without asking the store */
	t0 = time_mono_ms();
	CHECK_INT(check_block(&e, &o, 1), -EIO);
	CHECK_INT(stats_get(e.stats, STAT_DIGEST_MISMATCHES), 1);
	CHECK(time_mono_ms() - t0 < 100);
	CHECK_INT(fetcher_cached_bytes(e.fe, &o, &cached), 0);
	CHECK_INT(cached, BS);
	/* the store is fixed: after the failure memory the block reads */
	put(&e, "a/0.0", e.data, SIZE);
	usleep(350 * 1000);
	CHECK_INT(check_block(&e, &o, 1), 0);
	teardown(&e);
}

test(fetcher_trust_on_first_use)
{
	struct prov_object ob = { 0 };
	struct fetch_obj o;
	struct env e;
	uint64_t i;

	setup(&e);
	CHECK_INT(prov_head(store_prov(e.st), "a/0.0", &ob), 0);
	o = (struct fetch_obj){ .key = "a/0.0", .size = SIZE,
				.block_size = BS, .etag = ob.etag };
	for (i = 0; i < 4; i++)
		CHECK_INT(check_block(&e, &o, i), 0);
	CHECK_INT(stats_get(e.stats, STAT_BYTES_FETCHED), SIZE);
	for (i = 0; i < 4; i++)
		CHECK_INT(check_block(&e, &o, i), 0);
	CHECK_INT(stats_get(e.stats, STAT_BYTES_FETCHED), SIZE);
	/* the object changed under the pinned ETag: an uncached block fails */
	usleep(20 * 1000);
	put(&e, "a/0.0", e.data, SIZE);
	o.block_size = BS / 2; /* other blocks: not in the TOFU map */
	CHECK_INT(check_block(&e, &o, 0), -EIO);
	prov_object_free(&ob);
	teardown(&e);
}

test(fetcher_missing_store_fails_fast_and_once)
{
	struct fetch_obj o;
	char away[160];
	struct env e;
	uint64_t req;

	setup(&e);
	o = (struct fetch_obj){ .key = "a/0.0", .size = SIZE,
				.block_size = BS, .mf = &e.mf };
	snprintf(away, sizeof(away), "%s/away", e.root);
	CHECK_INT(rename(e.store_dir, away), 0);
	CHECK_INT(check_block(&e, &o, 2), -EIO);
	req = stats_get(e.stats, STAT_STORE_REQUESTS);
	CHECK_INT(check_block(&e, &o, 2), -EIO);
	CHECK_INT(stats_get(e.stats, STAT_STORE_REQUESTS), req);
	CHECK_INT(stats_get(e.stats, STAT_ERRORS), 1);
	CHECK_INT(rename(away, e.store_dir), 0);
	teardown(&e);
}

test(fetcher_readahead_fills_the_cache)
{
	struct fetch_obj o;
	struct env e;
	uint64_t cached = 0;
	int64_t end;

	setup(&e);
	o = (struct fetch_obj){ .key = "a/0.0", .size = SIZE,
				.block_size = BS, .mf = &e.mf };
	fetcher_readahead(e.fe, &o, 0, 100);
	/*
	 * A read-ahead job counts its block after committing it, so wait for
	 * the count: once it says 4, every block is in the cache.
	 */
	end = time_mono_ms() + 20000;
	while (time_mono_ms() < end &&
	       stats_get(e.stats, STAT_READAHEAD_BLOCKS) < 4)
		usleep(10 * 1000);
	CHECK_INT(stats_get(e.stats, STAT_READAHEAD_BLOCKS), 4);
	CHECK_INT(fetcher_cached_bytes(e.fe, &o, &cached), 0);
	CHECK_INT(cached, SIZE);
	CHECK_INT(stats_get(e.stats, STAT_BYTES_FETCHED), SIZE);
	/* queued again: nothing to do */
	fetcher_readahead(e.fe, &o, 0, 4);
	usleep(50 * 1000);
	CHECK_INT(stats_get(e.stats, STAT_BYTES_FETCHED), SIZE);
	teardown(&e);
}

__attribute__((constructor)) static void quiet(void)
{
	log_init("test_fetcher", LOG_LVL_ERROR);
}
