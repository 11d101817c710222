/*
 * sha256_mb_x86 - the AVX2 and AVX-512 kernels of sha256_mb (see
 * sha256_mb.c for the layout of the state, the driver that feeds the
 * lanes and the figures that chose among them) and the CPU checks that
 * say which of them may run. Each kernel is compiled for its own target
 * with function attributes, so the file builds with the default flags
 * and a kernel only runs once its check said yes.
 *
 * Threads: the kernels touch only their arguments. No errors.
 */
#include <stdbool.h>
#include <stdint.h>

#include "common/sha256_mb_int.h"

#ifdef SHA256_MB_X86
#include <cpuid.h>
#include <immintrin.h>

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
/* The kernels (sha256_mb_kernel_fn).                                            */

/* An 8-lane kernel on ymm with operation prefix X, compiled for TARGET. */
#define MB_DEFINE_X8_KERNEL(name, X, TARGET)                                   \
	__attribute__((target(TARGET))) void name(                      \
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

MB_DEFINE_X8_KERNEL(sha256_mb_avx2_x8, avx2, "avx2")
MB_DEFINE_X8_KERNEL(sha256_mb_vl_x8, vl, MB_VL_TARGET)

__attribute__((target(MB_ZMM_TARGET))) void
sha256_mb_zmm_x16(uint32_t *st, const uint8_t *const p[], const size_t stride[],
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

bool sha256_mb_has_avx2(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}

bool sha256_mb_has_avx512vl(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") &&
	       __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512vl");
}

bool sha256_mb_has_avx512(void)
{
	return sha256_mb_has_avx512vl() && __builtin_cpu_supports("avx512bw");
}

/* CPUID leaf 7, EBX bit 29 (clang 14 has no "sha" for the builtin) */
bool sha256_mb_has_sha(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return (b >> 29) & 1;
}
#endif /* SHA256_MB_X86 */
