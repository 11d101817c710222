/*
 * sha256_mb - SHA-256 (FIPS 180-4) of up to 16 messages at once, one
 * message per 32-bit lane of an AVX2 or AVX-512 register.
 *
 * Layout: a kernel hashes whole 64-byte blocks of all its lanes in step;
 * the state lives in memory as st[word * lanes + lane] between kernel calls,
 * so the driver (mb_run) can read a finished lane's digest and restart the
 * lane on the next message. Each lane reads its full blocks straight from
 * the caller's memory (unaligned loads, transposed into lanes with in-lane
 * unpacks), then its last 1 or 2 blocks from a small per-lane tail buffer
 * holding the leftover bytes and the padding (5.1.1). A kernel call runs
 * as many blocks as the shortest run among the busy lanes; idle lanes read
 * a zero block with stride 0, so no lane ever reads outside a message.
 *
 * Measured on the target (Xeon Cascade Lake, 2.5 GHz, no SHA-NI, 2 cores
 * shared with other work; bench/sha256_speed, release build, best of 10
 * runs, aggregate MB/s of N messages of 4 MiB in one call):
 *
 *   N                    1     2     4     8    16
 *   openssl            393   397   397   395   393  (one at a time)
 *   avx2 (8 lanes)     398o  397o  587  1151  1152
 *   avx512vl (8 lanes) 397o  522  1028  2000  2009
 *   avx512 (16 lanes)  394o  521v 1025v 2022v 2719
 *   (o: handed to OpenSSL; v: run by the 8-lane avx512vl kernel)
 *
 * so 8 messages hash at 5.1x OpenSSL's speed on one, 16 at 6.9x. One
 * message alone in the lanes ran at 262 MB/s (avx512vl) and 150 (avx2),
 * two in AVX2 lanes at 300: such calls go to OpenSSL instead (min_n
 * below). Default: "avx512", i.e. the 16-lane zmm
 * kernel for N > 8 (1.35x the 8-lane one at full lanes) and the 8-lane
 * AVX-512VL kernel for N <= 8 (half-empty zmm lanes would cost more).
 * Loading the blocks with vpgatherdd instead of 16-byte loads and unpacks
 * ran at 1064 MB/s against 1900 (avx512vl, N = 8): shuffles it is.
 * Caveat: OpenSSL measured right after the zmm kernel was no slower here
 * (a VM), but on bare metal 512-bit code may lower the core's clock for
 * a few ms (AVX-512 licences), slowing whatever runs next on that core;
 * ASSETFS_SHA256=avx512vl keeps to 256-bit registers.
 *
 * The kernels and CPU checks live in sha256_mb_x86.c.
 *
 * Threads: everything is reentrant; the implementation is chosen once
 * (pthread_once) and read through an atomic pointer. Errors: 0 or a
 * negative errno.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "common/log.h"
#include "common/sha256_mb.h"
#include "common/sha256_mb_int.h"

/* The most lanes of any kernel. */
#define MB_LANES_MAX 16

/* FIPS 180-4 5.3.3: the initial hash value H(0). */
static const uint32_t mb_iv[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* What idle lanes read (stride 0): any readable block will do. */
static const uint8_t mb_dummy[64];

/* ---------------------------------------------------------------------- */
/* The driver: lanes, padding, refilling (generic C).                     */

/*
 * One lane of the driver: it reads its message's full blocks from the
 * caller's memory, then the 1 or 2 blocks of @tail (leftover bytes and
 * padding); @left counts the blocks of the run being read. @msg is the
 * index of the message in the lane, or -1 when the lane is idle.
 */
struct mb_lane {
	uint8_t tail[128];
	size_t left;
	size_t tail_blocks;
	long msg;
	bool in_tail;
};

/*
 * FIPS 180-4 5.1.1 and 5.2.1: the bytes after the last full block, a 1 bit,
 * zeros, and the 64-bit big-endian bit length, ending on a block boundary.
 * Returns the number of blocks written to @tail (1 or 2).
 */
static size_t mb_pad(uint8_t tail[128], const uint8_t *msg, size_t len)
{
	size_t r = len % 64, nb = r < 56 ? 1 : 2;
	uint64_t bits = (uint64_t)len * 8;
	int i;

	memset(tail, 0, nb * 64);
	if (r)
		memcpy(tail, msg + (len - r), r);
	tail[r] = 0x80;
	for (i = 0; i < 8; i++)
		tail[nb * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
	return nb;
}

/* Put message @m in lane @i: state H(0), then its full blocks, if any. */
static void mb_lane_start(struct mb_lane *ln, uint32_t *st, size_t lanes,
			  size_t i, const uint8_t **ptr, size_t *stride,
			  size_t m, const void *data, size_t len)
{
	size_t full = len / 64, j;

	for (j = 0; j < 8; j++)
		st[j * lanes + i] = mb_iv[j];
	ln->msg = (long)m;
	ln->tail_blocks = mb_pad(ln->tail, data, len);
	stride[i] = 64;
	if (full > 0) {
		ptr[i] = data;
		ln->left = full;
		ln->in_tail = false;
	} else {
		ptr[i] = ln->tail;
		ln->left = ln->tail_blocks;
		ln->in_tail = true;
	}
}

static void mb_lane_idle(struct mb_lane *ln, size_t i, const uint8_t **ptr,
			 size_t *stride)
{
	ln->msg = -1;
	ptr[i] = mb_dummy;
	stride[i] = 0;
}

/* FIPS 180-4 6.2.2: H(N) of lane @i, as big-endian bytes. */
static void mb_lane_digest(const uint32_t *st, size_t lanes, size_t i,
			   struct digest *out)
{
	size_t j;

	for (j = 0; j < 8; j++) {
		uint32_t v = st[j * lanes + i];

		out->b[4 * j] = (uint8_t)(v >> 24);
		out->b[4 * j + 1] = (uint8_t)(v >> 16);
		out->b[4 * j + 2] = (uint8_t)(v >> 8);
		out->b[4 * j + 3] = (uint8_t)v;
	}
}

/*
 * Hash the @n messages with @kernel on @lanes lanes: each lane takes the
 * next message as soon as its previous one is done, and every kernel call
 * runs until the first busy lane reaches the end of a run.
 */
static void mb_run(sha256_mb_kernel_fn *kernel, size_t lanes, size_t n,
		   const void *const data[], const size_t len[],
		   struct digest out[])
{
	uint32_t st[8 * MB_LANES_MAX];
	const uint8_t *ptr[MB_LANES_MAX];
	size_t stride[MB_LANES_MAX];
	struct mb_lane ln[MB_LANES_MAX];
	size_t next = 0, busy = 0, i, run;

	for (i = 0; i < lanes; i++) {
		if (next < n) {
			mb_lane_start(&ln[i], st, lanes, i, ptr, stride, next,
				      data[next], len[next]);
			next++;
			busy++;
		} else {
			mb_lane_idle(&ln[i], i, ptr, stride);
		}
	}
	while (busy > 0) {
		run = SIZE_MAX;
		for (i = 0; i < lanes; i++)
			if (ln[i].msg >= 0 && ln[i].left < run)
				run = ln[i].left;
		kernel(st, ptr, stride, run);
		for (i = 0; i < lanes; i++) {
			if (ln[i].msg < 0)
				continue;
			ln[i].left -= run;
			if (ln[i].left > 0) {
				ptr[i] += run * 64;
				continue;
			}
			if (!ln[i].in_tail) {
				ptr[i] = ln[i].tail;
				ln[i].left = ln[i].tail_blocks;
				ln[i].in_tail = true;
				continue;
			}
			mb_lane_digest(st, lanes, i, &out[ln[i].msg]);
			if (next < n) {
				mb_lane_start(&ln[i], st, lanes, i, ptr, stride,
					      next, data[next], len[next]);
				next++;
			} else {
				mb_lane_idle(&ln[i], i, ptr, stride);
				busy--;
			}
		}
	}
}


/* ---------------------------------------------------------------------- */
/* Implementations and the choice among them.                             */

struct mb_impl {
	const char *name;
	bool (*supported)(void); /* NULL: always */
	sha256_mb_kernel_fn *narrow;	 /* 8 lanes, for n <= 8; NULL: OpenSSL */
	sha256_mb_kernel_fn *wide;	 /* for n > 8 */
	size_t wide_lanes;
	size_t min_n; /* fewer messages go to OpenSSL: faster for them */
};

static const struct mb_impl mb_impls[] = {
    {"openssl", NULL, NULL, NULL, 1, 0},
    {"avx2", sha256_mb_has_avx2, sha256_mb_avx2_x8, sha256_mb_avx2_x8, 8,
     3},
    {"avx512vl", sha256_mb_has_avx512vl, sha256_mb_vl_x8, sha256_mb_vl_x8,
     8, 2},
    {"avx512", sha256_mb_has_avx512, sha256_mb_vl_x8, sha256_mb_zmm_x16, 16,
     2},
};

#define MB_NIMPLS (sizeof(mb_impls) / sizeof(mb_impls[0]))

static pthread_once_t mb_once = PTHREAD_ONCE_INIT;
static _Atomic(const struct mb_impl *) mb_cur;

static const struct mb_impl *mb_find(const char *name)
{
	size_t i;

	for (i = 0; i < MB_NIMPLS; i++)
		if (strcmp(mb_impls[i].name, name) == 0)
			return &mb_impls[i];
	return NULL;
}

static bool mb_supported(const struct mb_impl *impl)
{
	return !impl->supported || impl->supported();
}

/*
 * The CPU's choice: OpenSSL with SHA extensions (one message then runs
 * faster than lanes) or without AVX2; else the fastest lanes (see the
 * figures at the top).
 */
static const struct mb_impl *mb_default(void)
{
	if (sha256_mb_has_sha())
		return mb_find("openssl");
	if (sha256_mb_has_avx512())
		return mb_find("avx512");
	if (sha256_mb_has_avx512vl())
		return mb_find("avx512vl");
	if (sha256_mb_has_avx2())
		return mb_find("avx2");
	return mb_find("openssl");
}

static void mb_init(void)
{
	const struct mb_impl *impl = mb_default(), *forced;
	const char *env = getenv("ASSETFS_SHA256");

	if (env && *env) {
		forced = mb_find(env);
		if (!forced)
			log_warn("ASSETFS_SHA256=%.32s is unknown; using %s",
				 env, impl->name);
		else if (!mb_supported(forced))
			log_warn("ASSETFS_SHA256=%s is not supported by this "
				 "CPU; using %s",
				 forced->name, impl->name);
		else
			impl = forced;
	}
	atomic_store(&mb_cur, impl);
}

static const struct mb_impl *mb_impl(void)
{
	pthread_once(&mb_once, mb_init);
	return atomic_load(&mb_cur);
}

int sha256_mb(size_t n, const void *const data[], const size_t len[],
	      struct digest out[])
{
	const struct mb_impl *impl = mb_impl();
	size_t i;
	int ret;

	if (n > SHA256_MB_MAX)
		return -EINVAL;
	if (!impl->narrow || n < impl->min_n) {
		for (i = 0; i < n; i++) {
			ret = digest_buf(data[i], len[i], &out[i]);
			if (ret < 0)
				return ret;
		}
		return 0;
	}
	if (n <= 8)
		mb_run(impl->narrow, 8, n, data, len, out);
	else
		mb_run(impl->wide, impl->wide_lanes, n, data, len, out);
	return 0;
}

size_t sha256_mb_lanes(void)
{
	return mb_impl()->wide_lanes;
}

const char *sha256_mb_impl(void)
{
	return mb_impl()->name;
}

int sha256_mb_use(const char *name)
{
	const struct mb_impl *impl;

	pthread_once(&mb_once, mb_init);
	impl = mb_find(name);
	if (!impl)
		return -ENOENT;
	if (!mb_supported(impl))
		return -ENOTSUP;
	atomic_store(&mb_cur, impl);
	return 0;
}
