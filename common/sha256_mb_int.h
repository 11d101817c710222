/*
 * sha256_mb_int - what the driver of sha256_mb (sha256_mb.c) and its x86
 * kernels (sha256_mb_x86.c) share: the kernel signature, the kernels and
 * the CPU checks. Private to common/. On other CPUs the checks say no
 * and the kernels are NULL, so only OpenSSL is ever chosen.
 */
#ifndef ASSETFS_COMMON_SHA256_MB_INT_H
#define ASSETFS_COMMON_SHA256_MB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define SHA256_MB_X86 1
#endif

/*
 * A kernel: hash @nblocks 64-byte blocks in every lane. Lane i reads its
 * blocks at @p[i], @p[i] + @stride[i], ... (stride 64, or 0 for an idle
 * lane); @st is the state, st[word * lanes + lane], updated in place.
 * Run one only after its check below returned true.
 */
typedef void sha256_mb_kernel_fn(uint32_t *st, const uint8_t *const p[],
				 const size_t stride[], size_t nblocks);

#ifdef SHA256_MB_X86
sha256_mb_kernel_fn sha256_mb_avx2_x8;	/* 8 lanes, AVX2 */
sha256_mb_kernel_fn sha256_mb_vl_x8;	/* 8 lanes, AVX-512VL on ymm */
sha256_mb_kernel_fn sha256_mb_zmm_x16; /* 16 lanes, AVX-512 on zmm */

/* Whether this CPU runs the kernels above, or has the SHA extensions. */
bool sha256_mb_has_avx2(void);
bool sha256_mb_has_avx512vl(void);
bool sha256_mb_has_avx512(void);
bool sha256_mb_has_sha(void);
#else
static inline bool sha256_mb_never(void)
{
	return false;
}

#define sha256_mb_has_avx2 sha256_mb_never
#define sha256_mb_has_avx512vl sha256_mb_never
#define sha256_mb_has_avx512 sha256_mb_never
#define sha256_mb_has_sha sha256_mb_never
#define sha256_mb_avx2_x8 NULL
#define sha256_mb_vl_x8 NULL
#define sha256_mb_zmm_x16 NULL
#endif

#endif
