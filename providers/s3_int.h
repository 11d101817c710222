/*
 * s3_int - what s3.c (requests) and s3_config.c (credentials, region,
 * endpoint) share; not for callers.
 */
#ifndef ASSETFS_PROVIDERS_S3_INT_H
#define ASSETFS_PROVIDERS_S3_INT_H

#include <stdint.h>

#include "providers/curl_pool.h"
#include "providers/provider_int.h"

struct s3 {
	struct cpool *pool;
	char *base;      /* "https://b.s3.us-east-1.amazonaws.com" or endpoint */
	char *host;      /* Host header, signed */
	char *path_base; /* "/bucket" (path style) or "" */
	char *region;
	char *access_key; /* NULL: anonymous */
	char *secret_key;
	char *token;      /* may be NULL */
	uint64_t part_size, multipart_threshold;
	int page_size;    /* max-keys, 0: the server's default */
};

/*
 * Fill @s from the environment and the AWS files as s3.c's header
 * describes: keys (or none: anonymous), region, endpoint and addressing
 * for the bucket of @p, and the tuning variables. Strings are owned by @s
 * (freed by s3_config_free()). Returns 0, -EINVAL (a named profile that
 * does not exist, a bad endpoint; message set) or -ENOMEM.
 */
int s3_config_load(struct prov *p, struct s3 *s);

/* Free what s3_config_load() set (the key is wiped first). */
void s3_config_free(struct s3 *s);

#endif
