/*
 * cachetest - what the block cache's unit tests (test_cache_*.c) share:
 * temp dirs, deterministic block contents, a cache opened with a quota
 * and no disk reserve, reading a block through the hit path, counting
 * what lies on disk, and three committed blocks to lose or corrupt.
 * Failures inside are reported with CHECK (test.h).
 */
#ifndef ASSETFS_TESTS_UNIT_CACHETEST_H
#define ASSETFS_TESTS_UNIT_CACHETEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/digest.h"
#include "fs/cache/cache.h"

#define BLK (64 * 1024)

/* Remove @dir and everything below it. */
void ct_rm_rf(const char *dir);
/* A new temp dir (malloc'd path), or NULL. */
char *ct_tmpdir(void);
/* @len pseudo-random bytes from @seed (the same seed, the same bytes). */
void ct_fill(void *p, size_t len, unsigned seed);
/* Open the cache in @dir with quota @max (0: the default), no reserve. */
int ct_open_cache(const char *dir, uint64_t max, struct cache **c);
/* Read the whole block @d through the hit path; returns bytes or -errno. */
ssize_t ct_read_block(struct cache *c, const struct digest *d, void *buf,
		      size_t cap);
/* Regular files below @dir/@sub, or -1. */
int ct_count_files(const char *dir, const char *sub);
/* Bytes the files of @dir/blocks take on disk. */
uint64_t ct_du_blocks(const char *dir);
/* Commit three known blocks into a cache at @dir; close it if @close_it
 * (else it stays open until the process ends: an unclean shutdown). */
void ct_put_three(const char *dir, struct digest d[3], bool close_it);
/* The digests ct_put_three() commits. */
void ct_three_digests(struct digest d[3]);
/* CHECK that @c reads back the three blocks of ct_put_three(). */
void ct_check_three(struct cache *c, const struct digest d[3]);
/* Flip one byte of the file at @path at offset @off. */
void ct_corrupt_file(const char *path, off_t off);

#endif
