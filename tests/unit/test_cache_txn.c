/*
 * test_cache_txn - publishing blocks (cache_txn.c, cache_lock.c) as users
 * see it: bytes read back equal what was committed, wrong bytes are never
 * published, killed writers leave temp files removed at the next open,
 * concurrent misses fetch once across threads and processes, a lock wait
 * is bounded, and many threads on a tiny quota keep every invariant.
 *
 * Each test works in its own temp dir, removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/digest.h"
#include "fs/cache/cache.h"
#include "fs/cache/cache_int.h" /* CACHE_STAGE */
#include "tests/unit/cachetest.h"
#include "test.h"

test(cache_commit_and_read_back)
{
	char *dir = ct_tmpdir();
	struct cache *c = NULL;
	struct cache_txn *t = NULL;
	struct cache_stats st;
	struct digest want, got;
	static uint8_t data[3 * BLK + 17], back[4 * BLK];
	char path[CACHE_PATH_MAX], hex[DIGEST_HEX_LEN + 1];
	uint64_t size = 0;
	int fd = -1;

	ct_fill(data, sizeof(data), 1);
	digest_buf(data, sizeof(data), &want);
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
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

	CHECK_INT(ct_read_block(c, &want, back, sizeof(back)), sizeof(data));
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
	CHECK_INT(ct_read_block(c, &got, back, sizeof(back)), 10);

	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 2);
	CHECK_INT(st.bytes, sizeof(data) + 10);
	CHECK_INT(st.hits, 2);
	CHECK_INT(st.misses, 1);
	CHECK_INT(st.blocks_written, 3);
	CHECK_INT(ct_count_files(dir, "tmp"), 0);
	cache_close(&c);
	CHECK(c == NULL);

	/* persistent: a new open serves it with no write */
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(ct_read_block(c, &want, back, sizeof(back)), sizeof(data));
	CHECK(memcmp(back, data, sizeof(data)) == 0);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.blocks, 2);
	cache_close(&c);
	ct_rm_rf(dir);
	free(dir);
}

test(cache_digest_mismatch_not_published)
{
	char *dir = ct_tmpdir();
	struct cache *c = NULL;
	struct cache_stats st;
	struct digest want, got, other;
	static uint8_t data[BLK];
	int fd = -1;

	ct_fill(data, sizeof(data), 2);
	digest_buf(data, sizeof(data), &want);
	data[100] ^= 1; /* the store's bytes were altered */
	digest_buf(data, sizeof(data), &other);
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(cache_put_block(c, data, sizeof(data), &want, &got), -EIO);
	CHECK(digest_equal(&got, &other));
	CHECK_INT(cache_block_open(c, &want, &fd, NULL), -ENOENT);
	CHECK_INT(cache_block_open(c, &other, &fd, NULL), -ENOENT);
	CHECK_INT(cache_get_stats(c, &st), 0);
	CHECK_INT(st.digest_mismatches, 1);
	CHECK_INT(st.blocks, 0);
	CHECK_INT(st.bytes_written, 0);
	CHECK_INT(ct_count_files(dir, "blocks"), 0);
	CHECK_INT(ct_count_files(dir, "tmp"), 0);
	cache_close(&c);
	ct_rm_rf(dir);
	free(dir);
}

test(cache_killed_writer_leaves_temp_removed_at_open)
{
	char *dir = ct_tmpdir();
	struct cache *c = NULL, *c2 = NULL;
	struct cache_txn *live = NULL;
	static uint8_t data[BLK];
	struct digest d;
	int status = 0;
	pid_t pid;

	ct_fill(data, sizeof(data), 3);
	digest_buf(data, sizeof(data), &d);
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	cache_close(&c);
	pid = fork();
	if (pid == 0) {
		struct cache *cc = NULL;
		struct cache_txn *t = NULL;
		int i;

		/* past one staging buffer: some bytes reach the temp file */
		if (ct_open_cache(dir, 0, &cc) < 0 ||
		    cache_txn_begin(cc, &t) < 0)
			_exit(1);
		for (i = 0; i <= (int)(CACHE_STAGE / BLK); i++)
			if (cache_txn_write(t, data, BLK) < 0)
				_exit(1);
		_exit(0); /* killed mid-transaction: no commit, no close */
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_INT(ct_count_files(dir, "tmp"), 1);
	CHECK_INT(ct_count_files(dir, "blocks"), 0);

	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
	CHECK_INT(ct_count_files(dir, "tmp"), 0);
	CHECK_INT(cache_block_stat(c, &d, NULL), -ENOENT);

	/* a live writer's temp file survives another process opening */
	CHECK_INT(cache_txn_begin(c, &live), 0);
	CHECK_INT(cache_txn_write(live, data, BLK / 2), 0);
	CHECK_INT(ct_open_cache(dir, 0, &c2), 0);
	cache_close(&c2);
	CHECK_INT(ct_count_files(dir, "tmp"), 1);
	CHECK_INT(cache_txn_write(live, data + BLK / 2, BLK / 2), 0);
	CHECK_INT(cache_txn_commit(c, live, &d, NULL), 0);
	CHECK_INT(cache_block_stat(c, &d, NULL), 0);
	CHECK_INT(ct_count_files(dir, "tmp"), 0);
	cache_close(&c);
	ct_rm_rf(dir);
	free(dir);
}

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

	ret = ct_open_cache(dir, 0, &c);
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
	char *dir = ct_tmpdir();
	char cpath[256];
	static uint8_t data[BLK];
	struct digest d;
	int cfd;

	ct_fill(data, sizeof(data), 4);
	digest_buf(data, sizeof(data), &d);
	snprintf(cpath, sizeof(cpath), "%s/fetches", dir);
	cfd = open(cpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
	CHECK(cfd >= 0);
	CHECK_INT(run_readers(dir, &d, data, cfd, 8), 0);
	CHECK_INT(fetch_count(cfd), 1);
	close(cfd);
	ct_rm_rf(dir);
	free(dir);
}

test(cache_single_flight_2_processes)
{
	char *dir = ct_tmpdir();
	char cpath[256];
	static uint8_t data[BLK];
	struct digest d, d2;
	int cfd, go[2], i, status;
	pid_t pid[2];
	char x;

	ct_fill(data, sizeof(data), 5);
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
	ct_fill(data, sizeof(data), 6);
	digest_buf(data, sizeof(data), &d2);
	pid[0] = fork();
	if (pid[0] == 0) {
		struct cache *c = NULL;
		struct cache_lock *lk = NULL;

		if (ct_open_cache(dir, 0, &c) < 0 ||
		    cache_lock_block(c, &d2, 1000, &lk) < 0)
			_exit(1);
		_exit(0); /* dies holding it */
	}
	waitpid(pid[0], &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_INT(run_readers(dir, &d2, data, cfd, 2), 0);
	CHECK_INT(fetch_count(cfd), 2);
	close(cfd);
	ct_rm_rf(dir);
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
	char *dir = ct_tmpdir();
	struct cache *c = NULL;
	struct cache_lock *a = NULL, *b = NULL, *keep;
	struct cache_objkey k = {"s3://b/p", "x/1.0", "\"e1\"", BLK, 3};
	struct digest d;
	long ms = 0;

	memset(&d, 7, sizeof(d));
	CHECK_INT(ct_open_cache(dir, 0, &c), 0);
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
	ct_rm_rf(dir);
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
	ct_fill(buf, SBLK, 7000 + (unsigned)k);
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
	char *dir = ct_tmpdir();
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
	CHECK_INT(ct_open_cache(dir, SQUOTA, &c), 0);
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
	CHECK_INT(st.bytes, ct_du_blocks(dir));
	CHECK_INT(st.blocks_written, fetches);
	CHECK(st.evictions > 0);
	CHECK_INT(st.hits + st.misses, 6 * 300);
	CHECK_INT(cache_verify(c, &r), 0);
	CHECK_INT(r.bad, 0);
	CHECK_INT(r.missing, 0);
	CHECK_INT(r.orphans, 0);
	cache_close(&c);
	ct_rm_rf(dir);
	free(dir);
}
