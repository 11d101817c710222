/*
 * curl_pool_int - what the pool (curl_pool.c) shares with the request
 * runner (curl_req.c); not for backends.
 *
 * struct cpool: the CURLSH and its per-kind locks are set up once in
 * cpool_new(); idle handles are protected by pool->lock; the rest is
 * read-only after cpool_new().
 */
#ifndef ASSETFS_PROVIDERS_CURL_POOL_INT_H
#define ASSETFS_PROVIDERS_CURL_POOL_INT_H

#include <pthread.h>
#include <stdbool.h>

#include <curl/curl.h>

#include "providers/curl_pool.h"

#define POOL_IDLE_MAX 64

struct cpool {
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t lock;
	CURL *idle[POOL_IDLE_MAX]; /* protected by lock */
	size_t n_idle;		   /* protected by lock */
	size_t max_idle;
	char *ca_file; /* NULL: the system store */
	int timeout_ms, connect_timeout_ms;
};

/* A handle for one request (reset, or new), or NULL on out of memory. */
CURL *cpool_get_handle(struct cpool *pool);

/* Return @h for reuse; @broken handles (odd state) are freed instead. */
void cpool_put_handle(struct cpool *pool, CURL *h, bool broken);

#endif
