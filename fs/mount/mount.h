/*
 * mount - the FUSE low-level filesystem (DESIGN §4): the read-only tree
 * of namespaces, assets, versions and aliases over the catalog, file reads
 * through the fetcher and the block cache, xattrs, EROFS for every write.
 *
 * mount_run() is the supervisor (fs/mount/supervisor.c): it mounts (or,
 * with @takeover, takes a live mount over from the assetfs serving it),
 * holds the /dev/fuse descriptor, and forks a worker that builds the
 * cache, store, catalog and fetcher and serves the connection; a worker
 * that dies is replaced on the same connection. It returns once the mount
 * is unmounted (fusermount3 -u), after SIGTERM, SIGINT or SIGHUP (it
 * unmounts), or once it has handed the mount over to a newer process. It
 * must be called before any other thread exists (it forks).
 *
 * Errors: mount_run returns 0 after a clean unmount or hand-over, or a
 * negative errno, having logged one line saying what failed.
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
	/* take MOUNTPOINT over from the live assetfs serving it, if any */
	bool takeover;
	/* once handed over to a newer process, wait for SIGTERM (or SIGINT,
	   SIGHUP) before returning: a container's main process must not
	   exit and be restarted into a takeover back */
	bool linger;
	/* the control socket, or NULL: mount_control_path()'s */
	const char *control;
	/* called in the supervisor once mounted and answering (status 0)
	   or on failure (negative errno), may be NULL */
	void (*ready)(void *arg, int status);
	void *ready_arg;
	/* called in a worker started before the supervisor said ready,
	   as its loop starts (it may let go of the terminal), may be NULL */
	void (*detach)(void *arg);
	void *detach_arg;
};

/*
 * The control socket of the mount at @mountpoint (a realpath) into @buf:
 * <run>/assetfs/mnt-<xxh3 of the path>.sock, where <run> is /run for
 * root, else $XDG_RUNTIME_DIR, else /tmp/assetfs-<uid>. Derived from the
 * mountpoint, not the cache dir: a takeover names the mount it replaces,
 * and may bring another cache_dir. Returns 0 or -ENAMETOOLONG.
 */
int mount_control_path(const char *mountpoint, char *buf, size_t len);

/*
 * How many descriptors, from 3 on, systemd passed this process
 * (LISTEN_FDS: a mount kept across `systemctl restart`, for mount_run()
 * to adopt); 0 if none. The environment is left as it is.
 */
unsigned mount_passed_fds(void);

/* Mount and serve until unmounted. See above. */
int mount_run(const struct mount_opts *o);

#endif
