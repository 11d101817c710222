/*
 * store_int - what store.c, store_list.c and store_health.c share;
 * nothing outside them uses it.
 */
#ifndef ASSETFS_FS_STORE_INT_H
#define ASSETFS_FS_STORE_INT_H

struct prov;
struct store_health;

/* Make / free the health tracker of a store over @prov (borrowed). */
int store_health_new(struct prov *prov, struct store_health **out);
void store_health_free(struct store_health **h); /* joins the probe */

/* The provider's message for the failed call, or strerror(-@ret). */
const char *store_prov_reason(int ret);

#endif
