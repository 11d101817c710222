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
#include "fs/mount/handover.h"
#include "fs/mount/inode.h"
#include "fs/mount/mount.h"
#include "fs/catalog/stats.h"
#include "fs/catalog/store.h"

#define LONG_TIMEOUT_S (24.0 * 3600) /* version content never changes */
#define NEG_TIMEOUT_S 1.0	     /* "no such asset/version" */

/*
 * An open file or dir handle, registered by the number the kernel holds
 * as its fh (never a pointer: a worker that replaces another one gets
 * numbers it never handed out, and rebuilds the handle from its inode),
 * so that what the kernel never released is also freed at unmount.
 */
struct mnt_handle {
	uint64_t id;		  /* the kernel's fh */
	uint64_t ino;		  /* what was opened */
	bool dir;
	struct mnt_handle *hnext; /* protected by mnt->hlock */
};

#define MNT_HANDLE_BUCKETS 4096

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
	struct mount_io *io;	/* the connection's hooks and journal */
	/* lifecycle, for stats: set before the session runs */
	pid_t supervisor_pid;
	const struct ho_state *ho; /* the supervisor's copy as forked */
	/* test only (ASSETFS_TEST_HOLD_OWN_GETATTR_MS): hold the first
	   GETATTR of the root asked by this daemon's own processes this
	   long; 0 once used */
	atomic_int test_hold_ms;
	pthread_mutex_t hlock;	/* guards the handle registry only */
	struct mnt_handle *handles[MNT_HANDLE_BUCKETS]; /* protected by hlock */
	uint64_t handle_next;	/* protected by hlock: next fh */
};

/* ---- mount_handle.c ---- */

/*
 * Register @h (an open file or dir of @ino) under a new number, and
 * journal it. Returns the number, the kernel's fh.
 */
uint64_t mnt_handle_add(struct mnt *m, struct mnt_handle *h, uint64_t ino,
			bool dir);
/* The handle registered as @id if it is a @dir one, else NULL. */
struct mnt_handle *mnt_handle_get(struct mnt *m, uint64_t id, bool dir);
/*
 * Register @h, rebuilt by this worker, as @id (a number another worker
 * handed out). Returns @h, or the handle another thread registered first
 * (then free @h).
 */
struct mnt_handle *mnt_handle_adopt(struct mnt *m, struct mnt_handle *h,
				    uint64_t id, uint64_t ino, bool dir);
/* Unregister @h and journal its release. */
void mnt_handle_del(struct mnt *m, struct mnt_handle *h);
/*
 * The kernel released @id: unregister it and journal the release. Returns
 * the handle (the caller frees it), or NULL if this worker never built it.
 */
struct mnt_handle *mnt_handle_take(struct mnt *m, uint64_t id, bool dir);
/* Unregister and return any @dir handle (freeing at unmount), or NULL. */
struct mnt_handle *mnt_handle_pop(struct mnt *m, bool dir);

/* ---- mount_io.c ---- */

struct ho_msg;
/* The custom I/O hooks every worker's session runs on (userdata: mnt). */
extern const struct fuse_custom_io mount_io_hooks;
/*
 * The hooks' state for /dev/fuse descriptor @fd (made O_NONBLOCK) and
 * supervisor socket @ctl (-1: none). @st (borrowed, may be NULL): an INIT
 * exchange in it is replayed. Returns 0 or a negative errno.
 */
int mount_io_new(int fd, int ctl, const struct ho_state *st,
		 struct stats *stats, struct mount_io **out);
/* Start taking the supervisor's commands (drain, resume). */
int mount_io_start(struct mount_io *io);
void mount_io_free(struct mount_io *io); /* NULL-safe */
/* Send @msg to the supervisor; a dead supervisor is logged once. */
void mount_io_send(struct mount_io *io, const struct ho_msg *msg);
/* inode_table_set_journal() hook: @arg is the struct mount_io. */
void mount_io_journal(void *arg, const struct inode *n, int64_t delta);
/* Requests the kernel re-sent to this worker. */
uint64_t mount_io_resent(const struct mount_io *io);

/*
 * What a worker is given by the supervisor that forked it (mount.c runs
 * it): all borrowed except @ctl and the inode table in @st, which the
 * worker takes.
 */
struct mount_worker {
	int fuse_fd;	   /* the connection (the worker serves a dup) */
	int ctl;	   /* socket to the supervisor */
	struct ho_state *st; /* the supervisor's state, as forked */
	pid_t supervisor_pid;
	bool first;	   /* the supervisor has not said "ready" yet */
	/* a takeover's worker, forked before the state is known: it
	   prepares, then reads the state and the fd (ho_send_state()) from
	   @ctl, then waits for HO_RESUME before serving */
	bool await_state;
};

/*
 * Serve the connection until it ends (unmount): 0, or a negative errno
 * after one log line (the supervisor then starts another worker, unless
 * the mount is gone or no worker ever came up).
 */
int mount_worker_run(const struct mount_opts *o, struct mount_worker *w);

/*
 * libfuse's arguments for @o's mount (fsname, ro, allow_other, ...) into
 * @args, as both the supervisor's mount and the worker's session parse
 * them. Returns 0, -E2BIG or -ENOMEM.
 */
int mount_build_args(const struct mount_opts *o, struct fuse_args *args);

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
