/*
 * azure_int - what azure.c (requests, SharedKey) and azure_config.c
 * (connection strings, keys, endpoint) share; not for callers.
 */
#ifndef ASSETFS_PROVIDERS_AZURE_INT_H
#define ASSETFS_PROVIDERS_AZURE_INT_H

#include <stdint.h>

#include "common/buf.h"
#include "providers/curl_pool.h"
#include "providers/provider_int.h"

struct az {
	struct cpool *pool;
	char *endpoint; /* "https://acct.blob.core.windows.net" (no '/') */
	char *account;
	struct buf key; /* decoded account key; empty: no SharedKey */
	char *sas;      /* SAS query without '?', or NULL */
	uint64_t block_size, put_threshold;
	int page_size;
};

/*
 * Fill @a from AZURE_STORAGE_CONNECTION_STRING, else AZURE_STORAGE_ACCOUNT
 * with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN (see azure.c), and the
 * tuning variables. Owned strings are freed by az_config_free(). Returns
 * 0, -EINVAL (no account, a key that is not base64, a bad endpoint;
 * message set) or -ENOMEM.
 */
int az_config_load(struct az *a);

/* Free what az_config_load() set; the key and the SAS are wiped first. */
void az_config_free(struct az *a);

#endif
