/*
 * store_int - what store.c and store_list.c share; nothing outside them
 * uses it.
 */
#ifndef ASSETFS_FS_STORE_INT_H
#define ASSETFS_FS_STORE_INT_H

/* The provider's message for the failed call, or strerror(-@ret). */
const char *store_prov_reason(int ret);

#endif
