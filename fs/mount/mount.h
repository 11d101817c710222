/*
 * mount - the FUSE low-level filesystem (DESIGN §4): the read-only tree
 * of namespaces, assets, versions and aliases over the catalog, file reads
 * through the fetcher and the block cache, xattrs, EROFS for every write.
 *
 * mount_run() owns everything it builds: cache, store, catalog, fetcher,
 * inode table, metrics responder; it mounts, serves on a multithreaded
 * session loop until unmounted (fusermount3 -u) or signalled (SIGTERM,
 * SIGINT, SIGHUP), then unmounts and frees. It must be called before any
 * other thread exists if the caller forked (the cache and fetcher start
 * threads).
 *
 * Errors: mount_run returns 0 after a clean unmount or a negative errno,
 * having logged one line saying what failed.
 */
#ifndef ASSETFS_FS_MOUNT_H
#define ASSETFS_FS_MOUNT_H

#include <stdbool.h>
#include <sys/types.h>

#include "fs/cache/cache.h"

#define MOUNT_STATS_XATTR "user.assetfs.stats"

struct mount_opts {
	const char *store_url;	/* borrowed */
	const char *mountpoint; /* borrowed */
	bool debug;		/* libfuse -d */
	bool allow_other;
	uid_t uid;
	gid_t gid;
	int versions_ttl_ms; /* 0 -> 60000 */
	int timeout_ms;	     /* 0 -> 30000 */
	int readahead;	     /* most blocks fetched ahead (and GETs in
				flight) for a sequential reader; 0 -> 32 */
	int threads;	     /* max FUSE worker threads; 0 -> 16 */
	int readahead_kb;    /* kernel read-ahead of the mount (root only);
				0: leave the kernel's default */
	int metrics_port;    /* 0: none */
	const char *metrics_addr; /* NULL: METRICS_DEFAULT_ADDR (loopback) */
	const char *versioning; /* NULL: environment / auto */
	/* Ed25519 public key (PEM) every version's .meta must be signed
	   with (docs/signing.md), or NULL: no checks */
	const char *verify_key;
	/* http(s) stores: file holding a bearer token, or NULL (the
	   backend then reads $ASSETFS_BEARER_TOKEN_FILE) */
	const char *bearer_token_file;
	const char *fuse_opts;	/* more -o options for libfuse, or NULL */
	/* -o pins=FILE: specs to keep pinned and warm (fs/mount/pins.h) */
	const char *pins_file;
	/* -o warm_before_flip: an alias moves to a version of a pinned
	   asset only once that version is complete in the cache */
	bool warm_before_flip;
	struct cache_opts cache;
	/* called once mounted and answering (status 0; from a thread of
	   its own) or on failure (negative errno), may be NULL */
	void (*ready)(void *arg, int status);
	void *ready_arg;
};

/* Mount and serve until unmounted. See above. */
int mount_run(const struct mount_opts *o);

#endif
