/*
 * test_sha256_batch - digests hashed in shared batches from many threads at
 * once equal OpenSSL's digest of each message, whatever batch each landed
 * in, for every implementation this CPU has; every message is counted once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "common/sha256_batch.h"
#include "common/sha256_mb.h"
#include "test.h"

#define THREADS 12
#define ROUNDS 6

struct worker {
	struct sha256_batch *b;
	unsigned seed;
	int bad; /* messages whose digest differed */
};

/* A message of a length drawn from sizes a fetch sees: empty, tiny, a
 * partial last block, a whole 4 MiB block. */
static size_t pick_len(unsigned *seed)
{
	static const size_t lens[] = { 0, 1, 55, 64, 4096, 100000,
				       (4u << 20) - 1, 4u << 20 };

	return lens[(unsigned)rand_r(seed) % (sizeof(lens) / sizeof(lens[0]))];
}

static void *work(void *arg)
{
	struct worker *w = arg;
	unsigned char *msg = malloc(4u << 20);
	struct digest got, want;

	if (!msg) {
		w->bad = ROUNDS;
		return NULL;
	}
	for (int r = 0; r < ROUNDS; r++) {
		size_t len = pick_len(&w->seed);

		for (size_t i = 0; i < len; i++)
			msg[i] = (unsigned char)rand_r(&w->seed);
		if (sha256_batch_hash(w->b, msg, len, false, &got) != 0 ||
		    digest_buf(msg, len, &want) != 0 ||
		    !digest_equal(&got, &want))
			w->bad++;
	}
	free(msg);
	return NULL;
}

/* THREADS threads of ROUNDS messages each through one batcher. */
static void run_threads(unsigned max_hashers)
{
	struct sha256_batch *b = sha256_batch_new(max_hashers, 0);
	struct worker w[THREADS];
	pthread_t th[THREADS];
	uint64_t messages = 0, batches = 0;
	int i;

	CHECK(b != NULL);
	if (!b)
		return;
	for (i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .b = b, .seed = 1000u + (unsigned)i };
		CHECK_INT(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		CHECK_INT(w[i].bad, 0);
	}
	sha256_batch_counts(b, &messages, &batches);
	CHECK_INT(messages, THREADS * ROUNDS);
	CHECK(batches >= 1 && batches <= messages);
	sha256_batch_free(b);
}

static void each_impl(unsigned max_hashers)
{
	static const char *const impls[] = { "openssl", "avx2", "avx512vl",
					     "avx512" };
	char keep[32];

	snprintf(keep, sizeof(keep), "%s", sha256_mb_impl());
	for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++) {
		if (sha256_mb_use(impls[i]) != 0)
			continue; /* this CPU lacks it */
		run_threads(max_hashers);
	}
	CHECK_INT(sha256_mb_use(keep), 0);
}

test(batch_digests_match_openssl_one_hasher)
{
	each_impl(1);
}

test(batch_digests_match_openssl_per_cpu_hashers)
{
	each_impl(0);
}

test(batch_null_is_einval)
{
	struct digest d;

	CHECK_INT(sha256_batch_hash(NULL, "", 0, false, &d), -EINVAL);
}

struct announced {
	struct sha256_batch *b;
	pthread_barrier_t *go;
	unsigned char msg[1024];
	struct digest got;
	int ret;
};

static void *hash_announced(void *arg)
{
	struct announced *a = arg;

	pthread_barrier_wait(a->go);
	a->ret = sha256_batch_hash(a->b, a->msg, sizeof(a->msg), true,
				   &a->got);
	return NULL;
}

/*
 * Messages announced ahead share a pass: with a wait longer than any
 * test, the first one queued can only go once the other seven are queued
 * (nothing is announced any more), so all eight take exactly one pass.
 * Were announcements ignored, the first thread in would hash alone.
 */
test(batch_announced_messages_share_a_pass)
{
	struct sha256_batch *b = sha256_batch_new(1, 3600LL * 1000000000);
	struct announced a[8];
	pthread_t th[8];
	pthread_barrier_t go;
	uint64_t messages = 0, batches = 0;
	struct digest want;
	int i;

	CHECK(b != NULL);
	if (!b || sha256_mb_lanes() < 8) {
		sha256_batch_free(b);
		return; /* OpenSSL only: every caller hashes its own */
	}
	pthread_barrier_init(&go, NULL, 8);
	sha256_batch_expect(b, 8);
	for (i = 0; i < 8; i++) {
		a[i] = (struct announced){ .b = b, .go = &go };
		memset(a[i].msg, 'a' + i, sizeof(a[i].msg));
		CHECK_INT(pthread_create(&th[i], NULL, hash_announced, &a[i]),
			  0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CHECK_INT(a[i].ret, 0);
		digest_buf(a[i].msg, sizeof(a[i].msg), &want);
		CHECK(digest_equal(&a[i].got, &want));
	}
	sha256_batch_counts(b, &messages, &batches);
	CHECK_INT(messages, 8);
	CHECK_INT(batches, 1);
	/* one announced and taken back: nothing to wait for */
	sha256_batch_expect(b, 1);
	sha256_batch_expect(b, -5); /* more than announced: none left */
	CHECK_INT(sha256_batch_hash(b, "x", 1, false, &a[0].got), 0);
	sha256_batch_counts(b, &messages, &batches);
	CHECK_INT(batches, 2);
	pthread_barrier_destroy(&go);
	sha256_batch_free(b);
}
