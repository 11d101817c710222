/*
 * test_sha256_mb - every sha256_mb implementation this CPU supports gives
 * OpenSSL's digests: the FIPS 180-4 example vectors, every length 0..300
 * in every lane, the padding boundaries, all batch sizes, mixed lengths up
 * to 4 MiB in one call, misaligned pointers and random batches. (One
 * message, or two with avx2, goes to OpenSSL by design: faster for it.
 * Larger batches reach the lanes.) Each
 * message is copied to a heap buffer of its exact size, so under ASan a
 * read past the end of a message fails the test.
 */
#include <errno.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "common/digest.h"
#include "common/sha256_mb.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MIB (1024u * 1024u)

static const char *const impls[] = {"openssl", "avx2", "avx512vl", "avx512"};

/* A fixed-seed generator (xorshift64), so every run tests the same bytes. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 32);
}

/* Bytes every message is cut from: pseudo-random, so lanes differ. */
static uint8_t *pool;
static size_t pool_len;

static const uint8_t *pool_get(size_t len)
{
	size_t i;

	if (len > pool_len) {
		free(pool);
		pool = malloc(len);
		if (!pool) {
			pool_len = 0;
			return NULL;
		}
		for (i = 0; i < len; i++)
			pool[i] = (uint8_t)rng();
		pool_len = len;
	}
	return pool;
}

/*
 * Hash @n messages (message i: @len[i] bytes of @src[i]) with the current
 * implementation, each from its own heap buffer of exactly @len[i] bytes
 * placed @misalign[i] bytes past an allocation, and compare with
 * EVP_Digest. Returns the number of wrong digests (each reported).
 */
static int check_batch(size_t n, const uint8_t *const src[], const size_t len[],
		       const size_t misalign[])
{
	uint8_t *bufs[SHA256_MB_MAX] = {0};
	const void *data[SHA256_MB_MAX] = {0};
	struct digest out[SHA256_MB_MAX];
	uint8_t want[DIGEST_LEN];
	size_t i;
	int bad = 0, ret;

	for (i = 0; i < n; i++) {
		size_t off = misalign ? misalign[i] : 0;

		bufs[i] = malloc(len[i] + off);
		if (!bufs[i] && len[i] + off > 0) {
			test_fail(__FILE__, __LINE__, "out of memory");
			bad++;
			goto out;
		}
		if (len[i] > 0)
			memcpy(bufs[i] + off, src[i], len[i]);
		data[i] = bufs[i] ? bufs[i] + off : NULL;
	}
	memset(out, 0xaa, sizeof(out));
	ret = sha256_mb(n, data, len, out);
	if (ret != 0) {
		test_fail(__FILE__, __LINE__, "%s: sha256_mb(%zu) = %d",
			  sha256_mb_impl(), n, ret);
		bad++;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!EVP_Digest(src[i], len[i], want, NULL, EVP_sha256(),
				NULL)) {
			test_fail(__FILE__, __LINE__, "EVP_Digest failed");
			bad++;
			continue;
		}
		if (memcmp(want, out[i].b, DIGEST_LEN) != 0) {
			test_fail(__FILE__, __LINE__,
				  "%s: n=%zu lane %zu len %zu misalign %zu: "
				  "wrong digest",
				  sha256_mb_impl(), n, i, len[i],
				  misalign ? misalign[i] : 0);
			bad++;
		}
	}
out:
	for (i = 0; i < n; i++)
		free(bufs[i]);
	return bad;
}

/*
 * Run @fn once for each implementation this CPU supports; checks that
 * "openssl" is among them and that the others answer 0 or -ENOTSUP.
 */
static void for_each_impl(void (*fn)(void))
{
	size_t i;
	int ret;

	for (i = 0; i < N(impls); i++) {
		ret = sha256_mb_use(impls[i]);
		if (i == 0)
			CHECK_INT(ret, 0);
		if (ret == -ENOTSUP)
			continue;
		CHECK_INT(ret, 0);
		if (ret < 0)
			continue;
		CHECK_STR(sha256_mb_impl(), impls[i]);
		fn();
	}
}

/* FIPS 180-4 / NIST example vectors, also checked against fixed digests. */
static const struct {
	const char *msg;
	size_t repeat; /* the message is msg repeated this many times */
	const char *hex;
} fips[] = {
    {"abc", 1,
     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
     "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     1, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    {"a", 1000000,
     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
};

static void fips_one_impl(void)
{
	const uint8_t *src[N(fips)];
	uint8_t *bufs[N(fips)] = {0};
	const void *data[N(fips)];
	size_t len[N(fips)], i, j, k;
	struct digest out[N(fips)], want;

	for (i = 0; i < N(fips); i++) {
		size_t m = strlen(fips[i].msg);

		len[i] = m * fips[i].repeat;
		bufs[i] = malloc(len[i] + 1);
		if (!bufs[i])
			goto out;
		for (j = 0; j < fips[i].repeat; j++)
			memcpy(bufs[i] + j * m, fips[i].msg, m);
		src[i] = bufs[i];
		data[i] = bufs[i];
	}
	/* All together, then each alone. */
	CHECK_INT(sha256_mb(N(fips), data, len, out), 0);
	for (i = 0; i < N(fips); i++) {
		CHECK_INT(digest_from_hex(fips[i].hex, &want), 0);
		if (!digest_equal(&out[i], &want))
			test_fail(__FILE__, __LINE__,
				  "%s: FIPS vector %zu wrong", sha256_mb_impl(),
				  i);
		memset(&out[0], 0, sizeof(out[0]));
		CHECK_INT(sha256_mb(1, &data[i], &len[i], &out[0]), 0);
		if (!digest_equal(&out[0], &want))
			test_fail(__FILE__, __LINE__,
				  "%s: FIPS vector %zu alone wrong",
				  sha256_mb_impl(), i);
	}
	/* And in every other lane position of a full batch. */
	for (k = 0; k < SHA256_MB_MAX; k++) {
		const uint8_t *s16[SHA256_MB_MAX];
		size_t l16[SHA256_MB_MAX];

		for (i = 0; i < SHA256_MB_MAX; i++) {
			s16[i] = src[(i + k) % N(fips)];
			l16[i] = len[(i + k) % N(fips)];
		}
		CHECK_INT(check_batch(SHA256_MB_MAX, s16, l16, NULL), 0);
	}
out:
	for (i = 0; i < N(fips); i++)
		free(bufs[i]);
}

test(sha256_mb_fips_vectors)
{
	for_each_impl(fips_one_impl);
}

/*
 * Every length 0..300 in every lane: in call L, lane i hashes (L + 37 i)
 * mod 301 bytes, so over the 301 calls each lane sees each length once.
 * Batches of 16 (the wide kernels) and 8 (the narrow ones).
 */
static void lengths_one_impl(void)
{
	const uint8_t *p = pool_get(400);
	const uint8_t *src[SHA256_MB_MAX];
	size_t len[SHA256_MB_MAX], l, i, n;
	int bad = 0;

	if (!p)
		return;
	for (n = 8; n <= 16; n += 8) {
		for (l = 0; l <= 300 && bad == 0; l++) {
			for (i = 0; i < n; i++) {
				len[i] = (l + 37 * i) % 301;
				src[i] = p + i; /* different bytes per lane */
			}
			bad += check_batch(n, src, len, NULL);
		}
	}
	CHECK_INT(bad, 0);
}

test(sha256_mb_every_length_every_lane)
{
	for_each_impl(lengths_one_impl);
}

/* Lengths at the padding boundaries: one or two tail blocks (5.1.1). */
static void boundaries_one_impl(void)
{
	static const size_t edge[] = {0,   1,	55,  56,  57,  63,  64,	 65,
				      119, 120, 121, 127, 128, 129, 183, 184};
	const uint8_t *p = pool_get(400);
	const uint8_t *src[SHA256_MB_MAX];
	size_t len[SHA256_MB_MAX], i;

	if (!p)
		return;
	for (i = 0; i < N(edge); i++) {
		src[0] = p;
		CHECK_INT(check_batch(1, src, &edge[i], NULL), 0);
	}
	for (i = 0; i < N(edge); i++) {
		src[i] = p + 3 * i;
		len[i] = edge[i];
	}
	CHECK_INT(check_batch(N(edge), src, len, NULL), 0);
	CHECK_INT(check_batch(8, src, len, NULL), 0);
	CHECK_INT(check_batch(8, src + 8, len + 8, NULL), 0);
}

test(sha256_mb_padding_boundaries)
{
	for_each_impl(boundaries_one_impl);
}

/* Every batch size from the brief, including 0 and one past 8. */
static void counts_one_impl(void)
{
	static const size_t counts[] = {0, 1, 7, 8, 9, 15, 16};
	const uint8_t *p = pool_get(8192);
	const uint8_t *src[SHA256_MB_MAX];
	size_t len[SHA256_MB_MAX], i, j;
	struct digest out[1];

	if (!p)
		return;
	for (i = 0; i < N(counts); i++) {
		for (j = 0; j < counts[i]; j++) {
			len[j] = rng() % 4000;
			src[j] = p + rng() % 4000;
		}
		CHECK_INT(check_batch(counts[i], src, len, NULL), 0);
	}
	/* n = 0 touches nothing: NULL arrays are fine. */
	CHECK_INT(sha256_mb(0, NULL, NULL, out), 0);
}

test(sha256_mb_batch_sizes)
{
	for_each_impl(counts_one_impl);
}

/* Lanes finishing far apart: 4 MiB next to empty and tiny messages. */
static void mixed_one_impl(void)
{
	static const size_t four[] = {4 * MIB, 0, 1, 4 * MIB - 1};
	static const size_t nine[] = {4 * MIB - 64, 65, 0, 4 * MIB, 1000, 3, 64,
				      2 * MIB + 55, 129};
	const uint8_t *p = pool_get(4 * MIB + 64);
	const uint8_t *src[SHA256_MB_MAX];
	size_t i;

	if (!p)
		return;
	for (i = 0; i < N(nine); i++)
		src[i] = p + i;
	CHECK_INT(check_batch(N(four), src, four, NULL), 0);
	CHECK_INT(check_batch(N(nine), src, nine, NULL), 0);
}

test(sha256_mb_mixed_lengths)
{
	for_each_impl(mixed_one_impl);
}

/* Messages starting 1 and 3 bytes past an allocation. */
static void misaligned_one_impl(void)
{
	const uint8_t *p = pool_get(8192);
	const uint8_t *src[SHA256_MB_MAX];
	size_t len[SHA256_MB_MAX], mis[SHA256_MB_MAX], i, n;

	if (!p)
		return;
	for (n = 1; n <= SHA256_MB_MAX; n++) {
		for (i = 0; i < n; i++) {
			src[i] = p + 5 * i;
			len[i] = 60 + 67 * i + 11 * n;
			mis[i] = (i + n) % 2 ? 1 : 3;
		}
		CHECK_INT(check_batch(n, src, len, mis), 0);
	}
}

test(sha256_mb_misaligned)
{
	for_each_impl(misaligned_one_impl);
}

/* Random batches, lengths, offsets and contents, from a fixed seed. */
static void random_one_impl(void)
{
	const uint8_t *p = pool_get(300000);
	const uint8_t *src[SHA256_MB_MAX];
	size_t len[SHA256_MB_MAX], mis[SHA256_MB_MAX], i, n;
	int iter, bad = 0;

	if (!p)
		return;
	for (iter = 0; iter < 150 && bad == 0; iter++) {
		n = rng() % (SHA256_MB_MAX + 1);
		for (i = 0; i < n; i++) {
			/* mostly short, sometimes up to ~200 KiB */
			len[i] = rng() % 8 == 0 ? rng() % 200000 : rng() % 3000;
			src[i] = p + rng() % 4096;
			mis[i] = rng() % 64;
		}
		bad += check_batch(n, src, len, mis);
	}
	CHECK_INT(bad, 0);
}

test(sha256_mb_random)
{
	for_each_impl(random_one_impl);
}

/* NULL pointers for empty messages are accepted. */
static void null_empty_one_impl(void)
{
	const void *data[3] = {NULL, "abc", NULL};
	size_t len[3] = {0, 3, 0};
	struct digest out[3], want;

	CHECK_INT(sha256_mb(3, data, len, out), 0);
	CHECK_INT(digest_from_hex(fips[1].hex, &want), 0);
	CHECK(digest_equal(&out[0], &want));
	CHECK(digest_equal(&out[2], &want));
	CHECK_INT(digest_from_hex(fips[0].hex, &want), 0);
	CHECK(digest_equal(&out[1], &want));
}

test(sha256_mb_null_empty)
{
	for_each_impl(null_empty_one_impl);
}

static void errors_one_impl(void)
{
	const void *data[SHA256_MB_MAX + 1] = {0};
	size_t len[SHA256_MB_MAX + 1] = {0};
	struct digest out[SHA256_MB_MAX + 1];

	CHECK_INT(sha256_mb(SHA256_MB_MAX + 1, data, len, out), -EINVAL);
}

test(sha256_mb_errors)
{
	for_each_impl(errors_one_impl);
	CHECK_INT(sha256_mb_use("sha1"), -ENOENT);
	CHECK_INT(sha256_mb_use(""), -ENOENT);
	CHECK_INT(sha256_mb_use("AVX2"), -ENOENT);
}

/* The lane counts callers size their batches with. */
test(sha256_mb_lanes_per_impl)
{
	static const size_t lanes[] = {1, 8, 8, 16};
	size_t i;

	for (i = 0; i < N(impls); i++) {
		if (sha256_mb_use(impls[i]) < 0)
			continue;
		CHECK_INT(sha256_mb_lanes(), lanes[i]);
	}
	free(pool);
	pool = NULL;
	pool_len = 0;
}
