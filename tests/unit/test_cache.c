/*
 * test_cache - the block cache as its users see it: bytes read back equal
 * what was committed, wrong bytes are never published, killed writers and
 * lost indexes heal at the next open, concurrent misses fetch once across
 * threads and processes, eviction keeps the quota and the recently used,
 * and blocks left unsynced by an unclean shutdown are re-checked.
 *
 * Each test works in its own temp dir, removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/digest.h"
#include "common/sha256_mb.h"
#include "fs/cache/cache.h"
#include "fs/cache/cache_int.h" /* CACHE_STAGE */
#include "test.h"

#define BLK (64 * 1024)

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(p);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/test_cache.XXXXXX";
	char *d = mkdtemp(tmpl);

	return d ? strdup(d) : NULL;
}

static void fill(void *p, size_t len, unsigned seed)
{
	uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
}

static int open_cache(const char *dir, uint64_t max, struct cache **c)
{
	struct cache_opts o;

	cache_opts_init(&o);
	o.dir = dir;
	if (max)
		o.max.bytes = max;
	o.min_free.pct = 0;
	o.min_free.bytes = 0;
	return cache_open(&o, c);
}

/* Read the whole block @d through the hit path; returns bytes or -errno. */
static ssize_t read_block(struct cache *c, const struct digest *d, void *buf,
			  size_t cap)
{
	uint64_t size = 0;
	ssize_t n;
	int fd, ret;

	ret = cache_block_open(c, d, &fd, &size);
	if (ret < 0)
		return ret;
	n = pread(fd, buf, cap, 0);
	close(fd);
	if (n >= 0 && (uint64_t)n != size)
		return -EIO;
	return n;
}

static int count_files(const char *dir, const char *sub)
{
	char path[512];
	int n = 0;
	FILE *p;

	snprintf(path, sizeof(path), "find %s/%s -type f | wc -l", dir, sub);
	p = popen(path, "r");
	if (!p)
		return -1;
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}

test(cache_commit_and_read_back)
{
	char *dir = tmpdir();
	struct cache *c = NULL;
	struct cache_txn *t = NULL;
	struct cache_stats st;
	struct digest want, got;
	static uint8_t data[3 * BLK + 17], back[4 * BLK];
	char path[CACHE_PATH_MAX], hex[DIGEST_HEX_LEN + 1];
	uint64_t size = 0;
	int fd = -1;

	fill(data, sizeof(data), 1);
	digest_buf(data, sizeof(data), &want);
	CHECK_INT(open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_block_open(c, &want, &fd, NULL), -ENOENT);
	CHECK_INT(cache_block_stat(c, &want, NULL), -ENOENT);

	/* streamed in uneven pieces */
	CHECK_INT(cache_txn_begin(c, &t), 0);
	CHECK_INT(cache_txn_write(t, data, 1000), 0);
	CHECK_INT(cache_txn_write(t, data + 1000, BLK), 0);
	CHECK_INT(
	    cache_txn_write(t, data + 1000 + BLK, sizeof(data) - 1000 - BLK),
	    0);
	CHECK_INT(cache_txn_commit(c, t, &want, &got), 0);
	CHECK(digest_equal(&want, &got));

	CHECK_INT(read_block(c, &want, back, sizeof(back)), sizeof(data));
	CHECK(memcmp(back, data, sizeof(data)) == 0);
	CHECK_INT(cache_block_stat(c, &want, &size), 0);
	CHECK_INT(size, sizeof(data));

	/* the file is where DESIGN §5 says, read-only */
	digest_to_hex(&want, hex);
	CHECK_INT(cache_block_path(c, &want, path, sizeof(path)), 0);
	CHECK_STR_CONTAINS(path, "/blocks/");
	CHECK_STR_CONTAINS(path, hex);
	CHECK(strncmp(strrchr(path, '/') - 2, hex, 2) == 0);

	/* committing the same bytes again is a success, not a second block */
	CHECK_INT(cache_put_block(c, data, sizeof(data), &want, NULL), 0);
	/* trust on first use: no expected digest, got is reported */
	memset(&got, 0, sizeof(got));
	CHECK_INT(cache_put_block(c, data, 10, NULL, &got), 0);
	CHECK_INT(read_block(c, &got, back, sizeof(back)), 10);

	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 2);
	CHECK_INT(st.bytes, sizeof(data) + 10);
	CHECK_INT(st.hits, 2);
	CHECK_INT(st.misses, 1);
	CHECK_INT(st.blocks_written, 3);
	CHECK_INT(count_files(dir, "tmp"), 0);
	cache_close(&c);
	CHECK(c == NULL);

	/* persistent: a new open serves it with no write */
	CHECK_INT(open_cache(dir, 0, &c), 0);
	CHECK_INT(read_block(c, &want, back, sizeof(back)), sizeof(data));
	CHECK(memcmp(back, data, sizeof(data)) == 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 2);
	cache_close(&c);
	rm_rf(dir);
	free(dir);
}

test(cache_digest_mismatch_not_published)
{
	char *dir = tmpdir();
	struct cache *c = NULL;
	struct cache_stats st;
	struct digest want, got, other;
	static uint8_t data[BLK];
	int fd = -1;

	fill(data, sizeof(data), 2);
	digest_buf(data, sizeof(data), &want);
	data[100] ^= 1; /* the store's bytes were altered */
	digest_buf(data, sizeof(data), &other);
	CHECK_INT(open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_put_block(c, data, sizeof(data), &want, &got), -EIO);
	CHECK(digest_equal(&got, &other));
	CHECK_INT(cache_block_open(c, &want, &fd, NULL), -ENOENT);
	CHECK_INT(cache_block_open(c, &other, &fd, NULL), -ENOENT);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.digest_mismatches, 1);
	CHECK_INT(st.blocks, 0);
	CHECK_INT(st.bytes_written, 0);
	CHECK_INT(count_files(dir, "blocks"), 0);
	CHECK_INT(count_files(dir, "tmp"), 0);
	cache_close(&c);
	rm_rf(dir);
	free(dir);
}

test(cache_killed_writer_leaves_temp_removed_at_open)
{
	char *dir = tmpdir();
	struct cache *c = NULL, *c2 = NULL;
	struct cache_txn *live = NULL;
	static uint8_t data[BLK];
	struct digest d;
	int status = 0;
	pid_t pid;

	fill(data, sizeof(data), 3);
	digest_buf(data, sizeof(data), &d);
	CHECK_INT(open_cache(dir, 0, &c), 0);
	cache_close(&c);
	pid = fork();
	if (pid == 0) {
		struct cache *cc = NULL;
		struct cache_txn *t = NULL;
		int i;

		/* past one staging buffer: some bytes reach the temp file */
		if (open_cache(dir, 0, &cc) < 0 ||
		    cache_txn_begin(cc, &t) < 0)
			_exit(1);
		for (i = 0; i <= (int)(CACHE_STAGE / BLK); i++)
			if (cache_txn_write(t, data, BLK) < 0)
				_exit(1);
		_exit(0); /* killed mid-transaction: no commit, no close */
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_INT(count_files(dir, "tmp"), 1);
	CHECK_INT(count_files(dir, "blocks"), 0);

	CHECK_INT(open_cache(dir, 0, &c), 0);
	CHECK_INT(count_files(dir, "tmp"), 0);
	CHECK_INT(cache_block_stat(c, &d, NULL), -ENOENT);

	/* a live writer's temp file survives another process opening */
	CHECK_INT(cache_txn_begin(c, &live), 0);
	CHECK_INT(cache_txn_write(live, data, BLK / 2), 0);
	CHECK_INT(open_cache(dir, 0, &c2), 0);
	cache_close(&c2);
	CHECK_INT(count_files(dir, "tmp"), 1);
	CHECK_INT(cache_txn_write(live, data + BLK / 2, BLK / 2), 0);
	CHECK_INT(cache_txn_commit(c, live, &d, NULL), 0);
	CHECK_INT(cache_block_stat(c, &d, NULL), 0);
	CHECK_INT(count_files(dir, "tmp"), 0);
	cache_close(&c);
	rm_rf(dir);
	free(dir);
}

/* ---- single flight ------------------------------------------------------ */

struct sf {
	struct cache *c;
	struct digest d;
	const uint8_t *data;
	int count_fd; /* O_APPEND file: one byte per fetch */
	pthread_barrier_t *bar;
	int result;
};

/* The fetcher's miss protocol of cache.h, with a slow "fetch". */
static void *sf_reader(void *arg)
{
	struct sf *s = arg;
	struct cache_lock *lk = NULL;
	uint8_t back[BLK];
	int fd = -1, ret;
	ssize_t n;

	if (s->bar)
		pthread_barrier_wait(s->bar);
	ret = cache_block_open(s->c, &s->d, &fd, NULL);
	if (ret == -ENOENT) {
		ret = cache_lock_block(s->c, &s->d, 10000, &lk);
		if (ret < 0)
			goto out;
		ret = cache_block_recheck(s->c, &s->d, &fd, NULL);
		if (ret == -ENOENT) {
			struct timespec ts = {0, 100 * 1000 * 1000};

			if (write(s->count_fd, "f", 1) != 1) {
				ret = -EIO;
				goto unlock;
			}
			nanosleep(&ts, NULL); /* the store is slow */
			ret = cache_put_block(s->c, s->data, BLK, &s->d, NULL);
			if (ret == 0)
				ret =
				    cache_block_recheck(s->c, &s->d, &fd, NULL);
		}
	unlock:
		cache_unlock(&lk);
	}
	if (ret == 0) {
		n = pread(fd, back, sizeof(back), 0);
		ret = n == BLK && memcmp(back, s->data, BLK) == 0 ? 0 : -EIO;
	}
out:
	if (fd >= 0)
		close(fd);
	s->result = ret;
	return NULL;
}

static int run_readers(const char *dir, const struct digest *d,
		       const uint8_t *data, int count_fd, int nthreads)
{
	pthread_t th[8];
	struct sf s[8];
	pthread_barrier_t bar;
	struct cache *c = NULL;
	int i, ret;

	ret = open_cache(dir, 0, &c);
	if (ret < 0)
		return ret;
	pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
	for (i = 0; i < nthreads; i++) {
		s[i] = (struct sf){.c = c,
				   .d = *d,
				   .data = data,
				   .count_fd = count_fd,
				   .bar = &bar};
		pthread_create(&th[i], NULL, sf_reader, &s[i]);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		if (s[i].result < 0)
			ret = s[i].result;
	}
	pthread_barrier_destroy(&bar);
	cache_close(&c);
	return ret;
}

static off_t fetch_count(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_size : -1;
}

test(cache_single_flight_8_threads)
{
	char *dir = tmpdir();
	char cpath[256];
	static uint8_t data[BLK];
	struct digest d;
	int cfd;

	fill(data, sizeof(data), 4);
	digest_buf(data, sizeof(data), &d);
	snprintf(cpath, sizeof(cpath), "%s/fetches", dir);
	cfd = open(cpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
	CHECK(cfd >= 0);
	CHECK_INT(run_readers(dir, &d, data, cfd, 8), 0);
	CHECK_INT(fetch_count(cfd), 1);
	close(cfd);
	rm_rf(dir);
	free(dir);
}

test(cache_single_flight_2_processes)
{
	char *dir = tmpdir();
	char cpath[256];
	static uint8_t data[BLK];
	struct digest d, d2;
	int cfd, go[2], i, status;
	pid_t pid[2];
	char x;

	fill(data, sizeof(data), 5);
	digest_buf(data, sizeof(data), &d);
	snprintf(cpath, sizeof(cpath), "%s/fetches", dir);
	cfd = open(cpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
	CHECK(cfd >= 0);
	CHECK_INT(pipe(go), 0);
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			close(go[1]);
			/* start together: wait for the parent to close */
			if (read(go[0], &x, 1) != 0)
				_exit(3);
			_exit(run_readers(dir, &d, data, cfd, 4) == 0 ? 0 : 1);
		}
	}
	close(go[0]);
	close(go[1]);
	for (i = 0; i < 2; i++) {
		CHECK(waitpid(pid[i], &status, 0) == pid[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CHECK_INT(fetch_count(cfd), 1);

	/* a holder that dies releases the lock: the next one fetches */
	fill(data, sizeof(data), 6);
	digest_buf(data, sizeof(data), &d2);
	pid[0] = fork();
	if (pid[0] == 0) {
		struct cache *c = NULL;
		struct cache_lock *lk = NULL;

		if (open_cache(dir, 0, &c) < 0 ||
		    cache_lock_block(c, &d2, 1000, &lk) < 0)
			_exit(1);
		_exit(0); /* dies holding it */
	}
	waitpid(pid[0], &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_INT(run_readers(dir, &d2, data, cfd, 2), 0);
	CHECK_INT(fetch_count(cfd), 2);
	close(cfd);
	rm_rf(dir);
	free(dir);
}

struct try_lock {
	struct cache *c;
	struct digest d;
	const struct cache_objkey *k;
	unsigned timeout_ms;
	int ret;
	long ms;
};

/* Another thread of the same process tries the lock. */
static void *try_lock_main(void *arg)
{
	struct try_lock *t = arg;
	struct cache_lock *lk = NULL;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (t->k)
		t->ret = cache_lock_objblock(t->c, t->k, t->timeout_ms, &lk);
	else
		t->ret = cache_lock_block(t->c, &t->d, t->timeout_ms, &lk);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	t->ms = (t1.tv_sec - t0.tv_sec) * 1000 +
		(t1.tv_nsec - t0.tv_nsec) / 1000000;
	cache_unlock(&lk);
	return NULL;
}

static int try_lock(struct cache *c, const struct digest *d,
		    const struct cache_objkey *k, unsigned timeout_ms, long *ms)
{
	struct try_lock t = {.c = c, .k = k, .timeout_ms = timeout_ms};
	pthread_t th;

	if (d)
		t.d = *d;
	pthread_create(&th, NULL, try_lock_main, &t);
	pthread_join(th, NULL);
	if (ms)
		*ms = t.ms;
	return t.ret;
}

test(cache_lock_bounded_wait)
{
	char *dir = tmpdir();
	struct cache *c = NULL;
	struct cache_lock *a = NULL, *b = NULL, *keep;
	struct cache_objkey k = {"s3://b/p", "x/1.0", "\"e1\"", BLK, 3};
	struct digest d;
	long ms = 0;

	memset(&d, 7, sizeof(d));
	CHECK_INT(open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_lock_block(c, &d, 0, &a), 0);
	CHECK_INT(try_lock(c, &d, NULL, 200, &ms), -ETIMEDOUT);
	CHECK(ms >= 190 && ms < 1000);
	/* the holder asking again fails at once, its lock kept */
	keep = a;
	CHECK_INT(cache_lock_block(c, &d, 5000, &a), -EDEADLK);
	CHECK(a == keep);
	cache_unlock(&a);
	CHECK(a == NULL);
	CHECK_INT(try_lock(c, &d, NULL, 0, NULL), 0);
	CHECK_INT(cache_lock_block(c, &d, 0, &b), 0);
	cache_unlock(&b);
	/* TOFU keys: same tuple excludes, another ETag does not */
	CHECK_INT(cache_lock_objblock(c, &k, 0, &a), 0);
	CHECK_INT(try_lock(c, NULL, &k, 0, NULL), -ETIMEDOUT);
	k.etag = "\"e2\"";
	CHECK_INT(try_lock(c, NULL, &k, 0, NULL), 0);
	CHECK_INT(cache_lock_objblock(c, &k, 0, &b), 0);
	cache_unlock(&a);
	cache_unlock(&b);
	cache_close(&c);
	rm_rf(dir);
	free(dir);
}

/* ---- eviction ------------------------------------------------------------ */

static uint64_t du_blocks(const char *dir)
{
	char cmd[512];
	unsigned long long n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "find %s/blocks -type f -printf '%%s\\n' |"
		 " awk '{s+=$1} END {print s+0}'",
		 dir);
	p = popen(cmd, "r");
	if (!p)
		return UINT64_MAX;
	if (fscanf(p, "%llu", &n) != 1)
		n = UINT64_MAX;
	pclose(p);
	return n;
}

test(cache_eviction_keeps_quota_and_recent)
{
	enum { MAXB = 16 * BLK, NBLK = 48, HOT = 4 };
	char *dir = tmpdir();
	struct cache *c = NULL;
	struct cache_stats st;
	static uint8_t data[BLK], back[BLK];
	struct digest d[NBLK];
	uint64_t worst = 0;
	int i, j, fd;
	bool over = false;

	CHECK_INT(open_cache(dir, MAXB, &c), 0);
	for (i = 0; i < NBLK; i++) { /* 3x the quota */
		fill(data, sizeof(data), 100 + (unsigned)i);
		CHECK_INT(cache_put_block(c, data, BLK, NULL, &d[i]), 0);
		CHECK_INT(cache_get_stats(c, &st), 0);
		if (st.bytes > MAXB)
			over = true;
		if (st.bytes > worst)
			worst = st.bytes;
		if (du_blocks(dir) > MAXB)
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
	CHECK_INT(st.bytes, du_blocks(dir));
	CHECK_INT(st.evictions, NBLK - MAXB / BLK);
	for (j = 0; j < HOT; j++) { /* most recently used survive */
		fill(data, sizeof(data), 100 + (unsigned)j);
		CHECK_INT(read_block(c, &d[j], back, sizeof(back)), BLK);
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
		CHECK_INT(du_blocks(dir), 4 * BLK);
		for (j = 0; j < HOT; j++)
			CHECK_INT(cache_block_stat(c, &d[j], NULL), 0);
	}
	cache_close(&c);
	rm_rf(dir);
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
	char *dir = tmpdir();
	struct cache *c = NULL;
	static uint8_t data[BLK];
	struct digest d[5];
	int up[2], down[2], i, status;
	char x = 0;
	pid_t pid;

	CHECK_INT(open_cache(dir, MAXB, &c), 0);
	for (i = 0; i < 4; i++) {
		fill(data, sizeof(data), 300 + (unsigned)i);
		CHECK_INT(cache_put_block(c, data, BLK, NULL, &d[i]), 0);
	}
	CHECK_INT(pipe(up), 0);
	CHECK_INT(pipe(down), 0);
	pid = fork();
	if (pid == 0) {
		struct cache *cc = NULL;
		struct timespec ts = {0, 50 * 1000 * 1000};
		int64_t before = block_atime(dir, &d[0]);
		int fd, n;

		if (open_cache(dir, MAXB, &cc) < 0 ||
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
	CHECK_INT(read(up[0], &x, 1), 1);
	fill(data, sizeof(data), 304);
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
	rm_rf(dir);
	free(dir);
}

/* Below cache_min_free the cache gives its space back and takes no more. */
test(cache_min_free_yields_disk)
{
	char *dir = tmpdir();
	struct cache *c = NULL;
	struct cache_opts o;
	struct cache_stats st;
	static uint8_t data[BLK];
	int i;

	CHECK_INT(open_cache(dir, 0, &c), 0);
	for (i = 0; i < 2; i++) {
		fill(data, sizeof(data), 400 + (unsigned)i);
		CHECK_INT(cache_put_block(c, data, BLK, NULL, NULL), 0);
	}
	CHECK_INT(cache_get_stats(c, &st), 0);
	cache_close(&c);

	cache_opts_init(&o);
	o.dir = dir;
	o.min_free.pct = 0;
	o.min_free.bytes = st.disk_free_bytes + (1ULL << 40); /* unreachable */
	CHECK_INT(cache_open(&o, &c), 0);
	fill(data, sizeof(data), 402);
	CHECK_INT(cache_put_block(c, data, BLK, NULL, NULL), -ENOSPC);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 0);
	CHECK_INT(st.evictions, 2);
	CHECK_INT(count_files(dir, "blocks"), 0);
	CHECK_INT(count_files(dir, "tmp"), 0);
	cache_close(&c);
	rm_rf(dir);
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
	char *dir = tmpdir();
	char path[CACHE_PATH_MAX];
	struct cache *c = NULL;
	struct cache_stats st;
	static uint8_t data[BLK];
	struct digest d[6];
	uint64_t ev = 0;
	int i, fd;

	CHECK_INT(open_cache(dir, 4 * BLK, &c), 0);
	for (i = 0; i < 2; i++) {
		fill(data, sizeof(data), 500 + (unsigned)i);
		CHECK_INT(cache_put_block(c, data, BLK, NULL, &d[i]), 0);
	}
	CHECK_INT(cache_block_path(c, &d[0], path, sizeof(path)), 0);
	CHECK_INT(unlink(path), 0);
	CHECK_INT(cache_block_open(c, &d[0], &fd, NULL), -ENOENT);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.bytes, 2 * BLK); /* still counted */
	for (i = 2; i < 5; i++) {
		fill(data, sizeof(data), 500 + (unsigned)i);
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
	rm_rf(dir);
	free(dir);
}

test(cache_quota_shared_by_two_processes)
{
	enum { MAXB = 8 * BLK };
	char *dir = tmpdir();
	int i, status;
	pid_t pid[2];

	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			struct cache *c = NULL;
			static uint8_t data[BLK];
			int k;

			if (open_cache(dir, MAXB, &c) < 0)
				_exit(1);
			for (k = 0; k < 16; k++) {
				fill(data, sizeof(data),
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
	CHECK_INT(du_blocks(dir), MAXB);
	rm_rf(dir);
	free(dir);
}

struct stress {
	struct cache *c;
	const struct digest *d; /* NKEYS digests */
	unsigned seed;
	int bad;    /* reads whose bytes did not hash to their name */
	int errors; /* unexpected returns */
	int fetches;
};

enum { SBLK = 4096, NKEYS = 32, SQUOTA = 8 * SBLK };

static void stress_fill(uint8_t *buf, int k)
{
	fill(buf, SBLK, 7000 + (unsigned)k);
}

static void *stress_main(void *arg)
{
	struct stress *s = arg;
	uint8_t buf[SBLK];
	struct digest got;
	int i, k, fd, ret;

	for (i = 0; i < 300; i++) {
		struct cache_lock *lk = NULL;

		s->seed = s->seed * 1103515245u + 12345u;
		k = (int)((s->seed >> 16) % NKEYS);
		ret = cache_block_open(s->c, &s->d[k], &fd, NULL);
		if (ret == -ENOENT) {
			ret = cache_lock_block(s->c, &s->d[k], 10000, &lk);
			if (ret == 0)
				ret = cache_block_recheck(s->c, &s->d[k], &fd,
							  NULL);
			if (ret == -ENOENT) {
				s->fetches++;
				stress_fill(buf, k);
				ret = cache_put_block(s->c, buf, SBLK, &s->d[k],
						      NULL);
				fd = -1;
			}
			cache_unlock(&lk);
		}
		if (ret < 0) {
			s->errors++;
			continue;
		}
		if (fd >= 0) {
			/* an open block keeps its bytes even if evicted */
			if (pread(fd, buf, SBLK, 0) != SBLK ||
			    digest_buf(buf, SBLK, &got) < 0 ||
			    !digest_equal(&got, &s->d[k]))
				s->bad++;
			close(fd);
		}
	}
	return NULL;
}

/* Hits, misses, locks, commits and evictions racing in one process. */
test(cache_stress_threads_tiny_quota)
{
	char *dir = tmpdir();
	struct cache *c = NULL;
	struct cache_stats st;
	struct cache_verify_report r = {0};
	struct digest d[NKEYS];
	struct stress s[6];
	pthread_t th[6];
	uint8_t buf[SBLK];
	int i, fetches = 0;

	for (i = 0; i < NKEYS; i++) {
		stress_fill(buf, i);
		digest_buf(buf, SBLK, &d[i]);
	}
	CHECK_INT(open_cache(dir, SQUOTA, &c), 0);
	for (i = 0; i < 6; i++) {
		s[i] =
		    (struct stress){.c = c, .d = d, .seed = 11u * (unsigned)i};
		pthread_create(&th[i], NULL, stress_main, &s[i]);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		CHECK_INT(s[i].bad, 0);
		CHECK_INT(s[i].errors, 0);
		fetches += s[i].fetches;
	}
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK(st.bytes <= SQUOTA);
	CHECK_INT(st.bytes, du_blocks(dir));
	CHECK_INT(st.blocks_written, fetches);
	CHECK(st.evictions > 0);
	CHECK_INT(st.hits + st.misses, 6 * 300);
	CHECK_INT(cache_verify(c, &r), 0);
	CHECK_INT(r.bad, 0);
	CHECK_INT(r.missing, 0);
	CHECK_INT(r.orphans, 0);
	cache_close(&c);
	rm_rf(dir);
	free(dir);
}

/* ---- index loss and unclean shutdown ---------------------------------------
 */

static void put_three(const char *dir, struct digest d[3], bool close_it)
{
	struct cache *c = NULL;
	static uint8_t data[BLK];
	int i;

	CHECK_INT(open_cache(dir, 0, &c), 0);
	for (i = 0; i < 3; i++) {
		fill(data, sizeof(data), 200 + (unsigned)i);
		CHECK_INT(
		    cache_put_block(c, data, BLK - (size_t)i, NULL, &d[i]), 0);
	}
	if (close_it)
		cache_close(&c);
	/* else: leaked on purpose, as a process that died */
}

static void three_digests(struct digest d[3])
{
	static uint8_t data[BLK];
	int i;

	for (i = 0; i < 3; i++) {
		fill(data, sizeof(data), 200 + (unsigned)i);
		digest_buf(data, (size_t)(BLK - i), &d[i]);
	}
}

static void check_three(struct cache *c, const struct digest d[3])
{
	static uint8_t data[BLK], back[BLK];
	int i;

	for (i = 0; i < 3; i++) {
		fill(data, sizeof(data), 200 + (unsigned)i);
		CHECK_INT(read_block(c, &d[i], back, sizeof(back)), BLK - i);
		CHECK(memcmp(back, data, (size_t)(BLK - i)) == 0);
	}
}

static void corrupt_file(const char *path, off_t off)
{
	int fd;
	uint8_t b = 0;

	chmod(path, 0644);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(pread(fd, &b, 1, off) == 1);
	b ^= 0x40;
	CHECK(pwrite(fd, &b, 1, off) == 1);
	close(fd);
}

test(cache_index_deleted_or_corrupt_is_rebuilt)
{
	char *dir = tmpdir();
	char path[512];
	struct cache *c = NULL;
	struct cache_stats st;
	struct digest d[3];
	int fd;

	put_three(dir, d, true);
	snprintf(path, sizeof(path), "%s/index.db", dir);
	CHECK_INT(unlink(path), 0);
	CHECK_INT(open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 3);
	CHECK_INT(st.bytes, 3 * BLK - 3);
	CHECK_INT(st.suspect_blocks, 3);
	check_three(c, d); /* re-checked by SHA-256 on first read: good */
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
	CHECK_INT(open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 3);
	check_three(c, d);
	cache_close(&c);

	/* a lost index and a damaged file: the SHA-256 re-check catches it */
	snprintf(path, sizeof(path), "%s/index.db", dir);
	unlink(path);
	{
		char bp[CACHE_PATH_MAX], hex[DIGEST_HEX_LEN + 1];

		digest_to_hex(&d[1], hex);
		snprintf(bp, sizeof(bp), "%s/blocks/%.2s/%s", dir, hex, hex);
		corrupt_file(bp, 5);
		CHECK_INT(open_cache(dir, 0, &c), 0);
		CHECK_INT(cache_block_open(c, &d[1], &fd, NULL), -ENOENT);
		CHECK(access(bp, F_OK) < 0);
		CHECK_INT(cache_get_stats(c, &st), 0);
		CHECK_INT(st.corrupt_blocks, 1);
		CHECK_INT(st.blocks, 2);
		cache_close(&c);
	}
	rm_rf(dir);
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
	char *dir = tmpdir();
	char bp[CACHE_PATH_MAX], hex[DIGEST_HEX_LEN + 1];
	struct cache *c = NULL;
	struct cache_stats st;
	struct digest d[3];
	uint8_t back[BLK];
	int status, fd;
	pid_t pid;

	three_digests(d);
	/* a writer dies without cache_close(): nothing was synced */
	pid = fork();
	if (pid == 0) {
		put_three(dir, d, false);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the machine rebooted and block 0 lost its last write */
	set_boot_id(dir, "00000000-dead-beef-0000-000000000000");
	digest_to_hex(&d[0], hex);
	snprintf(bp, sizeof(bp), "%s/blocks/%.2s/%s", dir, hex, hex);
	corrupt_file(bp, BLK / 2);

	CHECK_INT(open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.suspect_blocks, 3);
	CHECK_INT(cache_block_open(c, &d[0], &fd, NULL), -ENOENT);
	CHECK(access(bp, F_OK) < 0);
	CHECK_INT(read_block(c, &d[1], back, sizeof(back)), BLK - 1);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.corrupt_blocks, 1);
	CHECK_INT(st.suspect_blocks, 1);
	CHECK_INT(st.blocks, 2);
	cache_close(&c);

	/* a clean close syncs: after another reboot nothing is suspect */
	set_boot_id(dir, "11111111-dead-beef-0000-000000000000");
	CHECK_INT(open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.suspect_blocks, 1); /* d[2]: never read, still owed */
	cache_close(&c);
	rm_rf(dir);
	free(dir);
}

/* A clean close syncs: a reboot right after needs no re-check. */
test(cache_clean_close_needs_no_recheck_after_reboot)
{
	char *dir = tmpdir();
	struct cache *c = NULL;
	struct cache_stats st;
	struct digest d[3];

	put_three(dir, d, true); /* written and closed within a second */
	set_boot_id(dir, "22222222-dead-beef-0000-000000000000");
	CHECK_INT(open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 3);
	CHECK_INT(st.suspect_blocks, 0);
	check_three(c, d);
	cache_close(&c);
	rm_rf(dir);
	free(dir);
}

/* ---- documents and TOFU
 * ------------------------------------------------------ */

test(cache_documents_round_trip)
{
	char *dir = tmpdir();
	struct cache *c = NULL;
	const char *v1 = "{\"versions\": [\"1.0\", \"0.1\"]}";
	const char *v2 = "{\"versions\": [\"1.1\", \"1.0\", \"0.1\"]}";
	struct buf b, small;
	char *etag = NULL;
	int64_t when = 0;
	static char big[CACHE_DOC_MAX + 1];

	buf_init(&b, 1 << 20);
	buf_init(&small, 8);
	CHECK_INT(open_cache(dir, 0, &c), 0);
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
	CHECK_INT(open_cache(dir, 0, &c), 0);
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
	rm_rf(dir);
	free(dir);
}

test(cache_tofu_mapping_keyed_by_etag)
{
	char *dir = tmpdir();
	struct cache *c = NULL;
	struct cache_objkey k = {"s3://b/modelkit-assets", "fraud/xgb/0.0",
				 "\"abc\"", 4194304, 2};
	struct digest d1, d2, out;
	struct cache_stats st;

	memset(&d1, 0x11, sizeof(d1));
	memset(&d2, 0x22, sizeof(d2));
	CHECK_INT(open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_objblock_get(c, &k, &out), -ENOENT);
	CHECK_INT(cache_objblock_put(c, &k, &d1), 0);
	cache_close(&c);
	CHECK_INT(open_cache(dir, 0, &c), 0);
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
	rm_rf(dir);
	free(dir);
}

/* ---- sizes and defaults ----------------------------------------------------
 */

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
	char *dir = tmpdir();
	char bp[CACHE_PATH_MAX], hex[DIGEST_HEX_LEN + 1];
	struct cache *c = NULL;
	struct cache_verify_report r = {0};
	struct cache_stats st;
	struct digest d[3];

	put_three(dir, d, true);
	digest_to_hex(&d[2], hex);
	snprintf(bp, sizeof(bp), "%s/blocks/%.2s/%s", dir, hex, hex);
	corrupt_file(bp, 0);
	CHECK_INT(open_cache(dir, 0, &c), 0);
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
	rm_rf(dir);
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
		dir = tmpdir();
		CHECK_INT(open_cache(dir, 0, &c), 0);
		for (int i = 0; i < NB; i++) {
			size_t len = BLK - (size_t)i * 7;

			fill(data, len, 500 + (unsigned)i);
			CHECK_INT(cache_put_block(c, data, len, NULL, &d[i]),
				  0);
			bytes += len;
		}
		fill(data, sizeof(data), 999);
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
			corrupt_file(bp, 100 + j);
		}
		CHECK_INT(open_cache(dir, 0, &c), 0);
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
		rm_rf(dir);
		free(dir);
	}
	CHECK(runs >= 1);
}

/* The offline listing's walk over kept documents: by store and prefix. */
test(cache_doc_keys_by_prefix)
{
	static const char *const put[] = { "a/y/z.versions", "a/x.versions",
					   "b/q.versions", "ab.versions",
					   "assetfs:level:a" };
	char *dir = tmpdir();
	struct cache *c = NULL;
	char **keys = NULL;
	size_t n = 0, i;

	CHECK_INT(open_cache(dir, 0, &c), 0);
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
	rm_rf(dir);
	free(dir);
}

/*
 * An index made when the docs table was WITHOUT ROWID (large documents
 * made every key lookup read them whole) is moved to a rowid table at
 * open, documents kept.
 */
test(cache_docs_table_migrated_to_rowid)
{
	char *dir = tmpdir();
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
	CHECK_INT(open_cache(dir, 0, &c), 0);
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
	rm_rf(dir);
	free(dir);
}
