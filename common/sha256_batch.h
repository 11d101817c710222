/*
 * sha256_batch - hash messages from many threads in shared SIMD batches.
 *
 * sha256_mb() hashes up to a lane count of messages for about the price of
 * one, but the blocks a mount fetches finish one by one, in different
 * threads. A batcher gathers them the way a database groups commits: a
 * thread that wants a digest queues its message; when fewer than
 * @max_hashers threads are hashing, it takes every queued message (up to
 * the lane count) and hashes them in one sha256_mb() call, while messages
 * that arrive meanwhile queue for the next batch; a second hasher starts
 * alongside only when a full batch is waiting.
 *
 * Callers may announce messages that are on their way
 * (sha256_batch_expect()): the cache announces a block when its fetch
 * starts. While more are announced than queued and lanes are free, a pass
 * waits for them, at most SHA256_BATCH_WAIT_NS after its oldest message
 * was queued: a slow store then still fills passes, instead of each block
 * costing a single-stream hash. Nothing announced: a message is hashed at
 * once. With one lane (OpenSSL), callers hash their own message.
 *
 * Threads: sha256_batch_hash() is called from any number of threads; the
 * message stays borrowed (and must stay readable) until it returns.
 * Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_COMMON_SHA256_BATCH_H
#define ASSETFS_COMMON_SHA256_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

struct sha256_batch;

/* The longest a queued message waits for announced ones to join it. */
#define SHA256_BATCH_WAIT_NS (20 * 1000000LL)

/*
 * A batcher with at most @max_hashers threads hashing at once (0: one per
 * online CPU) whose passes wait at most @wait_ns for announced messages
 * (0: SHA256_BATCH_WAIT_NS). Returns NULL on out of memory.
 */
struct sha256_batch *sha256_batch_new(unsigned max_hashers, int64_t wait_ns);
/* All callers must have returned. NULL-safe. */
void sha256_batch_free(struct sha256_batch *b);

/*
 * *@out = SHA-256 of the @len bytes at @data. @announced: this message was
 * announced with sha256_batch_expect(), and it is taken back here, in the
 * same step that queues it (a pass never sees it neither coming nor
 * queued). Returns 0, -ENOMEM (OpenSSL out of memory) or -EINVAL (@b
 * NULL).
 */
int sha256_batch_hash(struct sha256_batch *b, const void *data, size_t len,
		      bool announced, struct digest *out);

/*
 * Announce @delta (> 0) messages that will be hashed soon, or take back
 * (< 0) announced ones that will not be (those that are hashed are taken
 * back by sha256_batch_hash()). NULL-safe.
 */
void sha256_batch_expect(struct sha256_batch *b, int delta);

/* Counters, for stats and tests: messages hashed and batches run. */
void sha256_batch_counts(struct sha256_batch *b, uint64_t *messages,
			 uint64_t *batches);

#endif
