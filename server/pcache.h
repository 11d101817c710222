/*
 * pcache - the prediction cache: outputs of a model version for an input,
 * kept in this process (native LRU, MODELKIT_CACHE_PROVIDER=native,
 * MODELKIT_CACHE_MAX_SIZE entries, default 128 as in modelkit) or in
 * redis (MODELKIT_CACHE_PROVIDER=redis, MODELKIT_CACHE_HOST / _PORT),
 * where every worker and every server pointed at it share entries.
 *
 * A key is (model, version, xxh3 of the canonical input: rows, cols and
 * the doubles as sent to the model), so a version swap never serves a
 * stale output. Values are the output doubles.
 *
 * Threads: all calls are safe concurrently. A redis failure is a miss
 * (logged once per failure burst), never a failed request.
 * Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_SERVER_PCACHE_H
#define ASSETFS_SERVER_PCACHE_H

#include <stddef.h>
#include <stdint.h>

struct pcache;

/*
 * Build the cache the environment asks for: *@out is NULL when
 * MODELKIT_CACHE_PROVIDER is unset or "none". Returns 0 or -EINVAL for a
 * bad setting (message in @err).
 */
int pcache_from_env(struct pcache **out, char *err, size_t errlen);

void pcache_free(struct pcache *c); /* NULL-safe */

/* The key of an input matrix. */
uint64_t pcache_key(const double *x, size_t rows, size_t cols);

/* Copy the cached @n doubles into @out: 0 on a hit, -ENOENT on a miss. */
int pcache_get(struct pcache *c, const char *model, const char *version,
	       uint64_t key, double *out, size_t n);

/* Remember @n doubles. Best effort. */
void pcache_put(struct pcache *c, const char *model, const char *version,
		uint64_t key, const double *out, size_t n);

/* "native" or "redis". */
const char *pcache_kind(const struct pcache *c);

#endif
