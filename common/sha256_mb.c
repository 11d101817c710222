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

#if defined(__x86_64__) && defined(__GNUC__)
#define MB_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

/* The most lanes of any kernel. */
#define MB_LANES_MAX 16

#ifdef MB_X86
/* FIPS 180-4 4.2.2: the round constants K0..K63. */
static const uint32_t mb_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
#endif

/* FIPS 180-4 5.3.3: the initial hash value H(0). */
static const uint32_t mb_iv[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* What idle lanes read (stride 0): any readable block will do. */
static const uint8_t mb_dummy[64];

/*
 * A kernel: hash @nblocks 64-byte blocks in every lane. Lane i reads its
 * blocks at @p[i], @p[i] + @stride[i], ... (stride 64, or 0 for an idle
 * lane); @st is the state, st[word * lanes + lane], updated in place.
 */
typedef void mb_kernel_fn(uint32_t *st, const uint8_t *const p[],
			  const size_t stride[], size_t nblocks);

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
static void mb_run(mb_kernel_fn *kernel, size_t lanes, size_t n,
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

#ifdef MB_X86
/* ---------------------------------------------------------------------- */
/* The rounds, written once over per-implementation vector operations.    */

/*
 * Kt + Wt, with W kept as a ring of 16 words. @k is mb_k hidden from the
 * optimiser (MB_HIDE), so Kt becomes a broadcast load instead of a
 * constant moved through a general register.
 */
#define MB_KW(X, w, t) X##_add((w)[(t)&15], X##_set1(k[t]))
#define MB_HIDE(p) __asm__("" : "+r"(p))
/* Keep the compiler from re-associating the sum in @v with later adds. */
#define MB_HIDE_V(v) __asm__("" : "+v"(v))

/*
 * FIPS 180-4 6.2.2 step 1 for t >= 16:
 * Wt = sigma1(Wt-2) + Wt-7 + sigma0(Wt-15) + Wt-16, in the ring slot of Wt-16.
 */
#define MB_SCHEDULE(X, w, t)                                                   \
	((w)[(t)&15] =                                                         \
	     X##_add(X##_add(X##_ssig1((w)[((t)-2) & 15]), (w)[((t)-7) & 15]), \
		     X##_add(X##_ssig0((w)[((t)-15) & 15]), (w)[(t)&15])))

/*
 * FIPS 180-4 6.2.2 step 3, round t: T1 = h + SIGMA1(e) + Ch(e,f,g) + Kt + Wt,
 * T2 = SIGMA0(a) + Maj(a,b,c); d += T1, h = T1 + T2. Instead of moving a..h
 * down one place, the caller passes the names rotated (MB_ROUNDS8).
 * X is the operation prefix (avx2, vl, zmm); @t a constant.
 *
 * On entry h already holds h + Kt + Wt: each round computes W(t+1) (step
 * 1) and adds K(t+1) + W(t+1) to g, next round's h, so g's old value dies
 * in Ch and the three-input instruction may overwrite it (one register
 * copy fewer per round).
 */
#define MB_ROUND(X, w, t, a, b, c, d, e, f, g, h)                              \
	do {                                                                   \
		__typeof__(a) t1_, t2_, n_ = g;                                \
		if ((t) + 1 >= 16 && (t) + 1 < 64)                             \
			MB_SCHEDULE(X, w, (t) + 1);                            \
		if ((t) + 1 < 64)                                              \
			n_ = X##_add(g, MB_KW(X, w, ((t) + 1) & 63));          \
		MB_HIDE_V(n_);                                                 \
		t1_ = X##_add(X##_add(h, X##_ch(e, f, g)), X##_bsig1(e));      \
		t2_ = X##_add(X##_bsig0(a), X##_maj(a, b, c));                 \
		g = n_;                                                        \
		d = X##_add(d, t1_);                                           \
		h = X##_add(t1_, t2_);                                         \
	} while (0)

/* Rounds t..t+7: after 8 rounds the names are back in place. */
#define MB_ROUNDS8(X, w, t)                                                    \
	do {                                                                   \
		MB_ROUND(X, w, (t) + 0, a, b, c, d, e, f, g, h);               \
		MB_ROUND(X, w, (t) + 1, h, a, b, c, d, e, f, g);               \
		MB_ROUND(X, w, (t) + 2, g, h, a, b, c, d, e, f);               \
		MB_ROUND(X, w, (t) + 3, f, g, h, a, b, c, d, e);               \
		MB_ROUND(X, w, (t) + 4, e, f, g, h, a, b, c, d);               \
		MB_ROUND(X, w, (t) + 5, d, e, f, g, h, a, b, c);               \
		MB_ROUND(X, w, (t) + 6, c, d, e, f, g, h, a, b);               \
		MB_ROUND(X, w, (t) + 7, b, c, d, e, f, g, h, a);               \
	} while (0)

/*
 * One block for all lanes: the 64 rounds over the words in @w (6.2.2
 * steps 1-3) and the addition into the state @s (step 4). Straight-line
 * code, so every ring index is a constant and W stays in registers where
 * there are enough (32 with AVX-512; AVX2's 16 spill some). Needs a..h and
 * k declared by the caller.
 */
#define MB_BLOCK(X, s, w)                                                      \
	do {                                                                   \
		a = s[0], b = s[1], c = s[2], d = s[3];                        \
		e = s[4], f = s[5], g = s[6],                                  \
		h = X##_add(s[7], MB_KW(X, w, 0));                             \
		MB_ROUNDS8(X, w, 0);                                           \
		MB_ROUNDS8(X, w, 8);                                           \
		MB_ROUNDS8(X, w, 16);                                          \
		MB_ROUNDS8(X, w, 24);                                          \
		MB_ROUNDS8(X, w, 32);                                          \
		MB_ROUNDS8(X, w, 40);                                          \
		MB_ROUNDS8(X, w, 48);                                          \
		MB_ROUNDS8(X, w, 56);                                          \
		s[0] = X##_add(s[0], a), s[1] = X##_add(s[1], b);              \
		s[2] = X##_add(s[2], c), s[3] = X##_add(s[3], d);              \
		s[4] = X##_add(s[4], e), s[5] = X##_add(s[5], f);              \
		s[6] = X##_add(s[6], g), s[7] = X##_add(s[7], h);              \
	} while (0)

#define MB_AVX2_FN static inline __attribute__((target("avx2"), always_inline))
#define MB_VL_TARGET "avx2,avx512f,avx512vl"
#define MB_VL_FN                                                               \
	static inline __attribute__((target(MB_VL_TARGET), always_inline))
#define MB_ZMM_TARGET "avx2,avx512f,avx512vl,avx512bw"
#define MB_ZMM_FN                                                              \
	static inline __attribute__((target(MB_ZMM_TARGET), always_inline))

/* AVX2, 8 lanes: no rotate instruction, so ROTR is two shifts and an or. */
MB_AVX2_FN __m256i avx2_add(__m256i x, __m256i y)
{
	return _mm256_add_epi32(x, y);
}

MB_AVX2_FN __m256i avx2_set1(uint32_t k)
{
	return _mm256_set1_epi32((int)k);
}

MB_AVX2_FN __m256i avx2_rotr(__m256i x, int n)
{
	return _mm256_or_si256(_mm256_srli_epi32(x, n),
			       _mm256_slli_epi32(x, 32 - n));
}

/* 4.1.2 (4.4)-(4.7): SIGMA0, SIGMA1, sigma0, sigma1. */
MB_AVX2_FN __m256i avx2_bsig0(__m256i x)
{
	return _mm256_xor_si256(
	    _mm256_xor_si256(avx2_rotr(x, 2), avx2_rotr(x, 13)),
	    avx2_rotr(x, 22));
}

MB_AVX2_FN __m256i avx2_bsig1(__m256i x)
{
	return _mm256_xor_si256(
	    _mm256_xor_si256(avx2_rotr(x, 6), avx2_rotr(x, 11)),
	    avx2_rotr(x, 25));
}

MB_AVX2_FN __m256i avx2_ssig0(__m256i x)
{
	return _mm256_xor_si256(
	    _mm256_xor_si256(avx2_rotr(x, 7), avx2_rotr(x, 18)),
	    _mm256_srli_epi32(x, 3));
}

MB_AVX2_FN __m256i avx2_ssig1(__m256i x)
{
	return _mm256_xor_si256(
	    _mm256_xor_si256(avx2_rotr(x, 17), avx2_rotr(x, 19)),
	    _mm256_srli_epi32(x, 10));
}

/* 4.1.2 (4.2): Ch = (e AND f) XOR (NOT e AND g), as g ^ (e & (f ^ g)). */
MB_AVX2_FN __m256i avx2_ch(__m256i e, __m256i f, __m256i g)
{
	return _mm256_xor_si256(g, _mm256_and_si256(e, _mm256_xor_si256(f, g)));
}

/* 4.1.2 (4.3): Maj, as b ^ ((a ^ b) & (b ^ c)). */
MB_AVX2_FN __m256i avx2_maj(__m256i a, __m256i b, __m256i c)
{
	return _mm256_xor_si256(b, _mm256_and_si256(_mm256_xor_si256(a, b),
						    _mm256_xor_si256(b, c)));
}

/*
 * AVX-512VL, 8 lanes on ymm: ROTR is one vprord, and the three-input
 * functions (Ch, Maj, the XORs of SIGMA and sigma) are one vpternlogd each. The
 * immediate is the truth table of f(x, y, z) at bit 4x + 2y + z.
 */
#define MB_TL_XOR3 0x96 /* x ^ y ^ z */
#define MB_TL_CH 0xb8	/* y ? z : x: Ch(e, f, g) passed as (g, e, f) */
#define MB_TL_MAJ 0xe8	/* at least two of x, y, z */

MB_VL_FN __m256i vl_add(__m256i x, __m256i y)
{
	return _mm256_add_epi32(x, y);
}

MB_VL_FN __m256i vl_set1(uint32_t k)
{
	return _mm256_set1_epi32((int)k);
}

MB_VL_FN __m256i vl_bsig0(__m256i x)
{
	return _mm256_ternarylogic_epi32(_mm256_ror_epi32(x, 2),
					 _mm256_ror_epi32(x, 13),
					 _mm256_ror_epi32(x, 22), MB_TL_XOR3);
}

MB_VL_FN __m256i vl_bsig1(__m256i x)
{
	return _mm256_ternarylogic_epi32(_mm256_ror_epi32(x, 6),
					 _mm256_ror_epi32(x, 11),
					 _mm256_ror_epi32(x, 25), MB_TL_XOR3);
}

MB_VL_FN __m256i vl_ssig0(__m256i x)
{
	return _mm256_ternarylogic_epi32(_mm256_ror_epi32(x, 7),
					 _mm256_ror_epi32(x, 18),
					 _mm256_srli_epi32(x, 3), MB_TL_XOR3);
}

MB_VL_FN __m256i vl_ssig1(__m256i x)
{
	return _mm256_ternarylogic_epi32(_mm256_ror_epi32(x, 17),
					 _mm256_ror_epi32(x, 19),
					 _mm256_srli_epi32(x, 10), MB_TL_XOR3);
}

MB_VL_FN __m256i vl_ch(__m256i e, __m256i f, __m256i g)
{
	return _mm256_ternarylogic_epi32(g, e, f, MB_TL_CH);
}

MB_VL_FN __m256i vl_maj(__m256i a, __m256i b, __m256i c)
{
	return _mm256_ternarylogic_epi32(a, b, c, MB_TL_MAJ);
}

/* AVX-512, 16 lanes on zmm: the same as VL, twice as wide. */
MB_ZMM_FN __m512i zmm_add(__m512i x, __m512i y)
{
	return _mm512_add_epi32(x, y);
}

MB_ZMM_FN __m512i zmm_set1(uint32_t k)
{
	return _mm512_set1_epi32((int)k);
}

MB_ZMM_FN __m512i zmm_bsig0(__m512i x)
{
	return _mm512_ternarylogic_epi32(_mm512_ror_epi32(x, 2),
					 _mm512_ror_epi32(x, 13),
					 _mm512_ror_epi32(x, 22), MB_TL_XOR3);
}

MB_ZMM_FN __m512i zmm_bsig1(__m512i x)
{
	return _mm512_ternarylogic_epi32(_mm512_ror_epi32(x, 6),
					 _mm512_ror_epi32(x, 11),
					 _mm512_ror_epi32(x, 25), MB_TL_XOR3);
}

MB_ZMM_FN __m512i zmm_ssig0(__m512i x)
{
	return _mm512_ternarylogic_epi32(_mm512_ror_epi32(x, 7),
					 _mm512_ror_epi32(x, 18),
					 _mm512_srli_epi32(x, 3), MB_TL_XOR3);
}

MB_ZMM_FN __m512i zmm_ssig1(__m512i x)
{
	return _mm512_ternarylogic_epi32(_mm512_ror_epi32(x, 17),
					 _mm512_ror_epi32(x, 19),
					 _mm512_srli_epi32(x, 10), MB_TL_XOR3);
}

MB_ZMM_FN __m512i zmm_ch(__m512i e, __m512i f, __m512i g)
{
	return _mm512_ternarylogic_epi32(g, e, f, MB_TL_CH);
}

MB_ZMM_FN __m512i zmm_maj(__m512i a, __m512i b, __m512i c)
{
	return _mm512_ternarylogic_epi32(a, b, c, MB_TL_MAJ);
}

/* ---------------------------------------------------------------------- */
/* Loading a block of every lane as W0..W15 (6.2.2 step 1, t < 16).        */

/*
 * 8 lanes. Row r holds 16 bytes of lane r in its low half and of lane
 * r + 4 in its high half; a 4x4 transpose of 32-bit words inside each
 * half then gives 4 vectors of one word for lanes 0-3 | 4-7. vpshufb
 * turns each word big-endian (3.1, 5.2.1).
 */
MB_AVX2_FN void x8_load(__m256i w[16], const uint8_t *const q[8])
{
	const __m256i bswap = _mm256_setr_epi8(
	    3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7,
	    6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
	__m256i r[4], t[4];
	int off, i;

#pragma GCC unroll 4
	for (off = 0; off < 64; off += 16) {
#pragma GCC unroll 4
		for (i = 0; i < 4; i++)
			r[i] = _mm256_inserti128_si256(
			    _mm256_castsi128_si256(
				_mm_loadu_si128((const __m128i *)(q[i] + off))),
			    _mm_loadu_si128((const __m128i *)(q[i + 4] + off)),
			    1);
		t[0] = _mm256_unpacklo_epi32(r[0], r[1]);
		t[1] = _mm256_unpackhi_epi32(r[0], r[1]);
		t[2] = _mm256_unpacklo_epi32(r[2], r[3]);
		t[3] = _mm256_unpackhi_epi32(r[2], r[3]);
		w[off / 4 + 0] = _mm256_shuffle_epi8(
		    _mm256_unpacklo_epi64(t[0], t[2]), bswap);
		w[off / 4 + 1] = _mm256_shuffle_epi8(
		    _mm256_unpackhi_epi64(t[0], t[2]), bswap);
		w[off / 4 + 2] = _mm256_shuffle_epi8(
		    _mm256_unpacklo_epi64(t[1], t[3]), bswap);
		w[off / 4 + 3] = _mm256_shuffle_epi8(
		    _mm256_unpackhi_epi64(t[1], t[3]), bswap);
	}
}

/*
 * 16 lanes: the same, with row r holding lanes r, r + 4, r + 8, r + 12 in
 * its four 128-bit quarters.
 */
MB_ZMM_FN void x16_load(__m512i w[16], const uint8_t *const q[16])
{
	const __m512i bswap = _mm512_broadcast_i32x4(_mm_setr_epi8(
	    3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12));
	__m512i r[4], t[4];
	int off, i;

#pragma GCC unroll 4
	for (off = 0; off < 64; off += 16) {
#pragma GCC unroll 4
		for (i = 0; i < 4; i++) {
			__m512i v = _mm512_castsi128_si512(
			    _mm_loadu_si128((const __m128i *)(q[i] + off)));

			v = _mm512_inserti32x4(
			    v,
			    _mm_loadu_si128((const __m128i *)(q[i + 4] + off)),
			    1);
			v = _mm512_inserti32x4(
			    v,
			    _mm_loadu_si128((const __m128i *)(q[i + 8] + off)),
			    2);
			r[i] = _mm512_inserti32x4(
			    v,
			    _mm_loadu_si128((const __m128i *)(q[i + 12] + off)),
			    3);
		}
		t[0] = _mm512_unpacklo_epi32(r[0], r[1]);
		t[1] = _mm512_unpackhi_epi32(r[0], r[1]);
		t[2] = _mm512_unpacklo_epi32(r[2], r[3]);
		t[3] = _mm512_unpackhi_epi32(r[2], r[3]);
		w[off / 4 + 0] = _mm512_shuffle_epi8(
		    _mm512_unpacklo_epi64(t[0], t[2]), bswap);
		w[off / 4 + 1] = _mm512_shuffle_epi8(
		    _mm512_unpackhi_epi64(t[0], t[2]), bswap);
		w[off / 4 + 2] = _mm512_shuffle_epi8(
		    _mm512_unpacklo_epi64(t[1], t[3]), bswap);
		w[off / 4 + 3] = _mm512_shuffle_epi8(
		    _mm512_unpackhi_epi64(t[1], t[3]), bswap);
	}
}

/* ---------------------------------------------------------------------- */
/* The kernels (mb_kernel_fn).                                            */

/* An 8-lane kernel on ymm with operation prefix X, compiled for TARGET. */
#define MB_DEFINE_X8_KERNEL(name, X, TARGET)                                   \
	static __attribute__((target(TARGET))) void name(                      \
	    uint32_t *st, const uint8_t *const p[], const size_t stride[],     \
	    size_t nblocks)                                                    \
	{                                                                      \
		const uint8_t *q[8];                                           \
		__m256i s[8], w[16], a, b, c, d, e, f, g, h;                   \
		const uint32_t *k = mb_k;                                      \
		int i;                                                         \
                                                                               \
		MB_HIDE(k);                                                    \
		for (i = 0; i < 8; i++) {                                      \
			q[i] = p[i];                                           \
			s[i] =                                                 \
			    _mm256_loadu_si256((const __m256i *)(st + 8 * i)); \
		}                                                              \
		while (nblocks-- > 0) {                                        \
			x8_load(w, q);                                         \
			MB_BLOCK(X, s, w);                                     \
			for (i = 0; i < 8; i++)                                \
				q[i] += stride[i];                             \
		}                                                              \
		for (i = 0; i < 8; i++)                                        \
			_mm256_storeu_si256((__m256i *)(st + 8 * i), s[i]);    \
	}

MB_DEFINE_X8_KERNEL(avx2_x8, avx2, "avx2")
MB_DEFINE_X8_KERNEL(vl_x8, vl, MB_VL_TARGET)

static __attribute__((target(MB_ZMM_TARGET))) void
zmm_x16(uint32_t *st, const uint8_t *const p[], const size_t stride[],
	size_t nblocks)
{
	const uint8_t *q[16];
	__m512i s[8], w[16], a, b, c, d, e, f, g, h;
	const uint32_t *k = mb_k;
	int i;

	MB_HIDE(k);
	for (i = 0; i < 16; i++)
		q[i] = p[i];
	for (i = 0; i < 8; i++)
		s[i] = _mm512_loadu_si512(st + 16 * i);
	while (nblocks-- > 0) {
		x16_load(w, q);
		MB_BLOCK(zmm, s, w);
		for (i = 0; i < 16; i++)
			q[i] += stride[i];
	}
	for (i = 0; i < 8; i++)
		_mm512_storeu_si512(st + 16 * i, s[i]);
}

static bool mb_has_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}

static bool mb_has_avx512vl(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") &&
	       __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512vl");
}

static bool mb_has_avx512(void)
{
	return mb_has_avx512vl() && __builtin_cpu_supports("avx512bw");
}

/* CPUID leaf 7, EBX bit 29 (clang 14 has no "sha" for the builtin) */
static bool mb_has_sha(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return (b >> 29) & 1;
}
#else /* !MB_X86: only OpenSSL; the other names exist but are unsupported */
static bool mb_never(void)
{
	return false;
}

#define mb_has_avx2 mb_never
#define mb_has_avx512vl mb_never
#define mb_has_avx512 mb_never
#define mb_has_sha mb_never
#define avx2_x8 NULL
#define vl_x8 NULL
#define zmm_x16 NULL
#endif /* MB_X86 */

/* ---------------------------------------------------------------------- */
/* Implementations and the choice among them.                             */

struct mb_impl {
	const char *name;
	bool (*supported)(void); /* NULL: always */
	mb_kernel_fn *narrow;	 /* 8 lanes, for n <= 8; NULL: OpenSSL */
	mb_kernel_fn *wide;	 /* for n > 8 */
	size_t wide_lanes;
	size_t min_n; /* fewer messages go to OpenSSL: faster for them */
};

static const struct mb_impl mb_impls[] = {
    {"openssl", NULL, NULL, NULL, 1, 0},
    {"avx2", mb_has_avx2, avx2_x8, avx2_x8, 8, 3},
    {"avx512vl", mb_has_avx512vl, vl_x8, vl_x8, 8, 2},
    {"avx512", mb_has_avx512, vl_x8, zmm_x16, 16, 2},
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
	if (mb_has_sha())
		return mb_find("openssl");
	if (mb_has_avx512())
		return mb_find("avx512");
	if (mb_has_avx512vl())
		return mb_find("avx512vl");
	if (mb_has_avx2())
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
