/*
 * mount_int - what the files of the mount share. Calls run one way, top
 * to bottom:
 *
 *   mount.c       the ops table, lookups, attributes ops, the session
 *     |-> mount_dir.c   listing dirs (opendir, readdir[plus])
 *     |-> mount_file.c  open files, reads, xattrs
 *     v
 *   mount_node.c  what a node is: attributes, resolving a name, making
 *                 an entry, the errno a reader sees, post-INIT tuning
 *
 * Nothing below calls up. Not part of any contract outside fs/mount/.
 *
 * Threads: the ops run on the session's worker threads; struct mnt is
 * read-only once the session runs, and everything it points to is
 * thread-safe.
 */
#ifndef ASSETFS_FS_MOUNT_INT_H
#define ASSETFS_FS_MOUNT_INT_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fs/cache/cache.h"
#include "fs/catalog/catalog.h"
#include "fs/mount/fetcher.h"
#include "fs/mount/inode.h"
#include "fs/catalog/stats.h"
#include "fs/catalog/store.h"

#define LONG_TIMEOUT_S (24.0 * 3600) /* version content never changes */
#define NEG_TIMEOUT_S 1.0	     /* "no such asset/version" */

/*
 * An open file or dir handle, on a list of the mount's, so that what the
 * kernel never released (the session ended first, e.g. on SIGTERM) is
 * freed at unmount.
 */
struct mnt_handle {
	struct mnt_handle *prev, *next; /* protected by mnt->hlock */
};

/* The read-ahead window a sequential reader starts with, in blocks. */
#define MOUNT_RA_START 8
/* How far from the last read a read may start and still be sequential. */
#define MOUNT_RA_NEAR (32ull << 20)

struct mnt {
	struct inode_table *it;
	struct catalog *cat;
	struct fetcher *fe;
	struct cache *cache;
	struct store *st;
	struct stats *stats;
	uid_t uid;
	gid_t gid;
	double ttl_s;
	int readahead; /* most blocks fetched ahead of a reader */
	int64_t start_sec;
	const char *mountpoint; /* borrowed from the options */
	int readahead_kb;	/* kernel read-ahead to set, 0: leave it */
	atomic_bool tuned;	/* readahead_kb applied (after FUSE_INIT) */
	pthread_mutex_t hlock;	/* guards the two lists below only */
	struct mnt_handle dirs;	/* open dir handles (struct dirh) */
	struct mnt_handle files; /* open file handles (struct fh) */
};

static inline void mnt_handle_init(struct mnt_handle *list)
{
	list->prev = list->next = list;
}

static inline void mnt_handle_add(struct mnt *m, struct mnt_handle *list,
				  struct mnt_handle *h)
{
	pthread_mutex_lock(&m->hlock);
	h->next = list->next;
	h->prev = list;
	list->next->prev = h;
	list->next = h;
	pthread_mutex_unlock(&m->hlock);
}

static inline void mnt_handle_del(struct mnt *m, struct mnt_handle *h)
{
	pthread_mutex_lock(&m->hlock);
	h->prev->next = h->next;
	h->next->prev = h->prev;
	h->prev = h->next = h;
	pthread_mutex_unlock(&m->hlock);
}

/* ---- mount_node.c ---- */

/*
 * Apply what can only be set once the kernel has processed FUSE_INIT
 * (the bdi's read-ahead, which INIT's reply resets): called by the first
 * ops, cheap afterwards.
 */
void mount_tune_once(struct mnt *m);

/* What a name in a dir is: a node to make (strings owned). */
struct dent {
	char *comp;
	enum inode_kind kind;
	char *name;
	char *version;
	char *relpath;
	bool unknown; /* a version whose .meta is unknown (store away, not
			 cached): listed with no type, lookups fail EIO */
};

static inline struct mnt *mnt_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/*
 * Attributes of @n and the kernel timeout for them. Returns 0, -ENOENT
 * (the node no longer exists, e.g. an alias that went away) or an error.
 */
int mount_node_attr(struct mnt *m, const struct inode *n, struct stat *st,
		    double *timeout);

/*
 * What @comp in dir @p is: fills @d (mount_dent_clear() it on every
 * path). Returns 0, -ENOENT, -ENOTDIR or an error.
 */
int mount_resolve_child(struct mnt *m, const struct inode *p,
			const char *comp, struct dent *d);
void mount_dent_clear(struct dent *d);

/*
 * Make the inode for @d under @parent and fill @e. Adds one lookup on
 * success. Returns 0 or an error.
 */
int mount_make_entry(struct mnt *m, uint64_t parent, const struct dent *d,
		     struct fuse_entry_param *e);

/* Reply with @ret mapped to the errno a reader should see. */
int mount_reply_errno(fuse_req_t req, int ret);

/*
 * "@a/@b" (or "@b" when @a is empty) into @buf. Returns 0 or
 * -ENAMETOOLONG.
 */
int mount_path_join(char *buf, size_t len, const char *a, const char *b);

/* ---- mount_dir.c ---- */
/*
 * Free the dir handles the kernel never released. Only once the session's
 * threads are gone.
 */
void mount_dir_free_all(struct mnt *m);
void mount_op_opendir(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi);
void mount_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi);
void mount_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi);
void mount_op_releasedir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi);

/* ---- mount_file.c ---- */
/* As mount_dir_free_all(), for open files. */
void mount_file_free_all(struct mnt *m);
void mount_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mount_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void mount_op_release(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi);
void mount_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       size_t size);
void mount_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);

#endif
