/*
 * test_cache_index - the index and eviction (cache_index.c, cache_scan.c):
 * eviction keeps the quota and the recently used, LRU touches reach other
 * processes, the disk reserve is honoured, a row without its file heals,
 * two processes share one quota, a lost or corrupt index is rebuilt from
 * the files, and blocks left unsynced by an unclean shutdown are
 * re-checked (and only then).
 *
 * Each test works in its own temp dir, removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/digest.h"
#include "fs/cache/cache.h"
#include "tests/unit/cachetest.h"
#include "test.h"

test(cache_eviction_keeps_quota_and_recent)
{
	enum { MAXB = 16 * BLK, NBLK = 48, HOT = 4 };
	char *dir = ct_tmpdir();
	struct cache *c = NULL;
	struct cache_stats st;
	static uint8_t data[BLK], back[BLK];
	struct digest d[NBLK];
	uint64_t worst = 0;
	int i, j, fd;
	bool over = false;

	CHECK_INT(ct_open_cache(dir, MAXB, &c), 0);
	for (i = 0; i < NBLK; i++) { /* 3x the quota */
		ct_fill(data, sizeof(data), 100 + (unsigned)i);
		CHECK_INT(cache_put_block(c, data, BLK, NULL, &d[i]), 0);
		CHECK_INT(cache_get_stats(c, &st), 0);
		if (st.bytes > MAXB)
			over = true;
		if (st.bytes > worst)
			worst = st.bytes;
		if (ct_du_blocks(dir) > MAXB)
			over = true;
		/* the first HOT blocks stay in use */
		for (j = 0; j < HOT && i >= HOT; j++) {
			if (cache_block_open(c, &d[j], &fd, NULL) == 0)
				close(fd);
		}
	}
	CHECK(!over);
	CHECK_INT(worst, MAXB);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.bytes, ct_du_blocks(dir));
	CHECK_INT(st.evictions, NBLK - MAXB / BLK);
	for (j = 0; j < HOT; j++) { /* most recently used survive */
		ct_fill(data, sizeof(data), 100 + (unsigned)j);
		CHECK_INT(ct_read_block(c, &d[j], back, sizeof(back)), BLK);
		CHECK(memcmp(back, data, BLK) == 0);
	}
	for (j = NBLK - 4; j < NBLK; j++)
		CHECK_INT(cache_block_stat(c, &d[j], NULL), 0);
	for (j = HOT; j < HOT + 8; j++) /* least recently used went */
		CHECK_INT(cache_block_stat(c, &d[j], NULL), -ENOENT);
	/* a block larger than the whole quota is refused, nothing lost */
	{
		uint8_t *big = calloc(1, MAXB + 1);

		CHECK(big != NULL);
		CHECK_INT(cache_put_block(c, big, MAXB + 1, NULL, NULL),
			  -ENOSPC);
		free(big);
	}
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.bytes, MAXB);
	/* gc to a lower target keeps the hot ones */
	{
		uint64_t ev = 0;

		CHECK_INT(cache_gc(c, 4 * BLK, &ev), 0);
		CHECK_INT(ev, MAXB / BLK - 4);
		CHECK_INT(ct_du_blocks(dir), 4 * BLK);
		for (j = 0; j < HOT; j++)
			CHECK_INT(cache_block_stat(c, &d[j], NULL), 0);
	}
	cache_close(&c);
	ct_rm_rf(dir);
	free(dir);
}

/* The last access of @d as the shared index has it (0 if unknown). */
static int64_t block_atime(const char *dir, const struct digest *d)
{
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = 0;

	snprintf(path, sizeof(path), "%s/index.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
		SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT atime FROM blocks WHERE digest=?1",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_blob(st, 1, d->b, DIGEST_LEN, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/*
 * Access times are batched in memory; the maintenance thread flushes them
 * to the shared index, so another process's eviction spares a block that
 * was only ever read (never written) by the first.
 */
test(cache_lru_touches_reach_other_processes)
{
	enum { MAXB = 4 * BLK };
	char *dir = ct_tmpdir();
	struct cache *c = NULL;
	static uint8_t data[BLK];
	struct digest d[5];
	int up[2], down[2], i, status;
	char x = 0;
	pid_t pid;

	/*
	 * Fork before this process opens its cache: a fork while the cache's
	 * maintenance thread holds a lock (ASan's allocator's, say) leaves
	 * the child waiting on it forever. The child goes on once the four
	 * blocks are in: the parent then writes d[0] down the pipe.
	 */
	CHECK_INT(pipe(up), 0);
	CHECK_INT(pipe(down), 0);
	pid = fork();
	if (pid == 0) {
		struct cache *cc = NULL;
		struct timespec ts = {0, 50 * 1000 * 1000};
		int64_t before;
		int fd, n;

		if (read(down[0], d, sizeof(d[0])) != (ssize_t)sizeof(d[0]))
			_exit(4);
		before = block_atime(dir, &d[0]);
		if (ct_open_cache(dir, MAXB, &cc) < 0 ||
		    cache_block_open(cc, &d[0], &fd, NULL) < 0)
			_exit(1);
		close(fd);
		/* the maintenance thread flushes within ~2 s; still open */
		for (n = 0; n < 200 && block_atime(dir, &d[0]) <= before; n++)
			nanosleep(&ts, NULL);
		if (n == 200)
			_exit(3);
		if (write(up[1], "r", 1) != 1 || read(down[0], &x, 1) != 1)
			_exit(2);
		_exit(0);
	}
	CHECK_INT(ct_open_cache(dir, MAXB, &c), 0);
	for (i = 0; i < 4; i++) {
		ct_fill(data, sizeof(data), 300 + (unsigned)i);
		CHECK_INT(cache_put_block(c, data, BLK, NULL, &d[i]), 0);
	}
	CHECK_INT(write(down[1], d, sizeof(d[0])), (int)sizeof(d[0]));
	CHECK_INT(read(up[0], &x, 1), 1);
	ct_fill(data, sizeof(data), 304);
	CHECK_INT(cache_put_block(c, data, BLK, NULL, &d[4]), 0);
	CHECK_INT(write(down[1], "d", 1), 1);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_INT(cache_block_stat(c, &d[0], NULL), 0); /* read by the child */
	CHECK_INT(cache_block_stat(c, &d[1], NULL), -ENOENT); /* the LRU */
	CHECK_INT(cache_block_stat(c, &d[4], NULL), 0);
	cache_close(&c);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	ct_rm_rf(dir);
	free(dir);
}

/* Below cache_min_free the cache gives its space back and takes no more. */
test(cache_min_free_yields_disk)
{
	char *dir = ct_tmpdir();
	struct cache *c = NULL;
	struct cache_opts o;
	struct cache_stats st;
	static uint8_t data[BLK];
	int i;

	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	for (i = 0; i < 2; i++) {
		ct_fill(data, sizeof(data), 400 + (unsigned)i);
		CHECK_INT(cache_put_block(c, data, BLK, NULL, NULL), 0);
	}
	CHECK_INT(cache_get_stats(c, &st), 0);
	cache_close(&c);

	cache_opts_init(&o);
	o.dir = dir;
	o.min_free.pct = 0;
	o.min_free.bytes = st.disk_free_bytes + (1ULL << 40); /* unreachable */
	CHECK_INT(cache_open(&o, &c), 0);
	ct_fill(data, sizeof(data), 402);
	CHECK_INT(cache_put_block(c, data, BLK, NULL, NULL), -ENOSPC);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 0);
	CHECK_INT(st.evictions, 2);
	CHECK_INT(ct_count_files(dir, "blocks"), 0);
	CHECK_INT(ct_count_files(dir, "tmp"), 0);
	cache_close(&c);
	ct_rm_rf(dir);
	free(dir);
}

/* Run @sql on the index behind the cache's back (as a crash or age would). */
static void index_sql(const char *dir, const char *sql)
{
	char path[512];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/index.db", dir);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/*
 * A process killed between committing a block's row and renaming its file
 * leaves a row without a file: a miss, counted in the quota until the LRU
 * ages it out or gc drops it; nothing breaks.
 */
test(cache_row_without_file_heals)
{
	char *dir = ct_tmpdir();
	char path[CACHE_PATH_MAX];
	struct cache *c = NULL;
	struct cache_stats st;
	static uint8_t data[BLK];
	struct digest d[6];
	uint64_t ev = 0;
	int i, fd;

	CHECK_INT(ct_open_cache(dir, 4 * BLK, &c), 0);
	for (i = 0; i < 2; i++) {
		ct_fill(data, sizeof(data), 500 + (unsigned)i);
		CHECK_INT(cache_put_block(c, data, BLK, NULL, &d[i]), 0);
	}
	CHECK_INT(cache_block_path(c, &d[0], path, sizeof(path)), 0);
	CHECK_INT(unlink(path), 0);
	CHECK_INT(cache_block_open(c, &d[0], &fd, NULL), -ENOENT);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.bytes, 2 * BLK); /* still counted */
	for (i = 2; i < 5; i++) {
		ct_fill(data, sizeof(data), 500 + (unsigned)i);
		CHECK_INT(cache_put_block(c, data, BLK, NULL, &d[i]), 0);
	}
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.bytes, 4 * BLK);
	CHECK_INT(st.evictions, 1); /* the ghost went first */
	CHECK_INT(cache_block_stat(c, &d[1], NULL), 0);
	/*
	 * gc leaves a ghost younger than a few seconds (it may be a commit
	 * of another process about to rename its file), drops older ones.
	 */
	CHECK_INT(cache_block_path(c, &d[1], path, sizeof(path)), 0);
	CHECK_INT(unlink(path), 0);
	CHECK_INT(cache_gc(c, 4 * BLK, &ev), 0);
	CHECK_INT(ev, 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 4);
	index_sql(dir, "UPDATE blocks SET wtime = wtime - 60000000");
	CHECK_INT(cache_gc(c, 4 * BLK, &ev), 0);
	CHECK_INT(ev, 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 3);
	CHECK_INT(st.bytes, 3 * BLK);
	cache_close(&c);
	ct_rm_rf(dir);
	free(dir);
}

test(cache_quota_shared_by_two_processes)
{
	enum { MAXB = 8 * BLK };
	char *dir = ct_tmpdir();
	int i, status;
	pid_t pid[2];

	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			struct cache *c = NULL;
			static uint8_t data[BLK];
			int k;

			if (ct_open_cache(dir, MAXB, &c) < 0)
				_exit(1);
			for (k = 0; k < 16; k++) {
				ct_fill(data, sizeof(data),
				     1000 + (unsigned)(i * 100 + k));
				if (cache_put_block(c, data, BLK, NULL, NULL))
					_exit(2);
			}
			cache_close(&c);
			_exit(0);
		}
	}
	for (i = 0; i < 2; i++) {
		waitpid(pid[i], &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CHECK_INT(ct_du_blocks(dir), MAXB);
	ct_rm_rf(dir);
	free(dir);
}

test(cache_index_deleted_or_corrupt_is_rebuilt)
{
	char *dir = ct_tmpdir();
	char path[512];
	struct cache *c = NULL;
	struct cache_stats st;
	struct digest d[3];
	int fd;

	ct_put_three(dir, d, true);
	snprintf(path, sizeof(path), "%s/index.db", dir);
	CHECK_INT(unlink(path), 0);
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 3);
	CHECK_INT(st.bytes, 3 * BLK - 3);
	CHECK_INT(st.suspect_blocks, 3);
	ct_check_three(c, d); /* re-checked by SHA-256 on first read: good */
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.suspect_blocks, 0);
	CHECK_INT(st.corrupt_blocks, 0);
	cache_close(&c);

	/* garbage in index.db: moved aside, rebuilt */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	CHECK(write(fd, "this is not a database, not at all....", 38) == 38);
	close(fd);
	snprintf(path, sizeof(path), "%s/index.db-wal", dir);
	unlink(path);
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 3);
	ct_check_three(c, d);
	cache_close(&c);

	/* a lost index and a damaged file: the SHA-256 re-check catches it */
	snprintf(path, sizeof(path), "%s/index.db", dir);
	unlink(path);
	{
		char bp[CACHE_PATH_MAX], hex[DIGEST_HEX_LEN + 1];

		digest_to_hex(&d[1], hex);
		snprintf(bp, sizeof(bp), "%s/blocks/%.2s/%s", dir, hex, hex);
		ct_corrupt_file(bp, 5);
		CHECK_INT(ct_open_cache(dir, 0, &c), 0);
		CHECK_INT(cache_block_open(c, &d[1], &fd, NULL), -ENOENT);
		CHECK(access(bp, F_OK) < 0);
		CHECK_INT(cache_get_stats(c, &st), 0);
		CHECK_INT(st.corrupt_blocks, 1);
		CHECK_INT(st.blocks, 2);
		cache_close(&c);
	}
	ct_rm_rf(dir);
	free(dir);
}

static void set_boot_id(const char *dir, const char *v)
{
	char path[512], sql[256];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/index.db", dir);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	snprintf(sql, sizeof(sql), "UPDATE meta SET v='%s' WHERE k='boot_id'",
		 v);
	CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_changes(db), 1);
	sqlite3_close(db);
}

test(cache_unclean_shutdown_rechecks_by_xxh3)
{
	char *dir = ct_tmpdir();
	char bp[CACHE_PATH_MAX], hex[DIGEST_HEX_LEN + 1];
	struct cache *c = NULL;
	struct cache_stats st;
	struct digest d[3];
	uint8_t back[BLK];
	int status, fd;
	pid_t pid;

	ct_three_digests(d);
	/* a writer dies without cache_close(): nothing was synced */
	pid = fork();
	if (pid == 0) {
		ct_put_three(dir, d, false);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the machine rebooted and block 0 lost its last write */
	set_boot_id(dir, "00000000-dead-beef-0000-000000000000");
	digest_to_hex(&d[0], hex);
	snprintf(bp, sizeof(bp), "%s/blocks/%.2s/%s", dir, hex, hex);
	ct_corrupt_file(bp, BLK / 2);

	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.suspect_blocks, 3);
	CHECK_INT(cache_block_open(c, &d[0], &fd, NULL), -ENOENT);
	CHECK(access(bp, F_OK) < 0);
	CHECK_INT(ct_read_block(c, &d[1], back, sizeof(back)), BLK - 1);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.corrupt_blocks, 1);
	CHECK_INT(st.suspect_blocks, 1);
	CHECK_INT(st.blocks, 2);
	cache_close(&c);

	/* a clean close syncs: after another reboot nothing is suspect */
	set_boot_id(dir, "11111111-dead-beef-0000-000000000000");
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.suspect_blocks, 1); /* d[2]: never read, still owed */
	cache_close(&c);
	ct_rm_rf(dir);
	free(dir);
}

/* A clean close syncs: a reboot right after needs no re-check. */
test(cache_clean_close_needs_no_recheck_after_reboot)
{
	char *dir = ct_tmpdir();
	struct cache *c = NULL;
	struct cache_stats st;
	struct digest d[3];

	ct_put_three(dir, d, true); /* written and closed within a second */
	set_boot_id(dir, "22222222-dead-beef-0000-000000000000");
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 3);
	CHECK_INT(st.suspect_blocks, 0);
	ct_check_three(c, d);
	cache_close(&c);
	ct_rm_rf(dir);
	free(dir);
}
