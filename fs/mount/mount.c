/*
 * mount - the FUSE low-level filesystem (see mount.h): lookups, getattr,
 * symlinks, EROFS for every write, the ops table and the session: the top
 * of the module. Dir listings are in mount_dir.c, open files, reads and
 * xattrs in mount_file.c, and what all of them need to know about a node
 * in mount_node.c, at the bottom (mount_int.h draws the arrows).
 *
 * Every node is an entry of the inode table (fs/inode); what it shows comes
 * from the catalog (version lists and metas with TTLs) and, for file bytes,
 * from the fetcher, which fills the block cache.
 *
 * Kernel caching: version content never changes, so its entries and
 * attributes get a long timeout and opens keep the page cache; namespace
 * and asset dirs and aliases get versions_ttl, so a new version and moved
 * aliases show within it.
 *
 * Threads: ops run on the session's worker threads; all state they share
 * is in the thread-safe modules.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "common/log.h"
#include "common/sdnotify.h"
#include "common/sha256_mb.h"
#include "common/timeutil.h"
#include "fs/mount/metrics.h"
#include "fs/mount/mount.h"
#include "fs/mount/mount_int.h"
#include "fs/mount/pins.h"

/* ---- ops ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~(unsigned)FUSE_CAP_CACHE_SYMLINKS;
	/* content never changes: no attribute checks on cached reads */
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mnt *m = mnt_of(req);
	const struct inode *p = inode_get(m->it, parent);
	struct fuse_entry_param e;
	struct dent d;
	int ret;

	stats_inc(m->stats, STAT_LOOKUPS);
	mount_tune_once(m);
	if (!p) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	ret = mount_resolve_child(m, p, name, &d);
	if (ret == 0)
		ret = mount_make_entry(m, parent, &d, &e);
	mount_dent_clear(&d);
	if (ret == -ENOENT) {
		/* a short negative entry: a new asset or version shows soon */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = p->kind == INODE_VDIR ||
						  p->kind == INODE_SUBDIR ?
					  LONG_TIMEOUT_S :
					  NEG_TIMEOUT_S;
		fuse_reply_entry(req, &e);
		return;
	}
	if (ret < 0) {
		mount_reply_errno(req, ret);
		return;
	}
	if (fuse_reply_entry(req, &e) != 0)
		inode_forget(m->it, e.ino, 1);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(mnt_of(req)->it, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct mnt *m = mnt_of(req);
	size_t i;

	for (i = 0; i < count; i++)
		inode_forget(m->it, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct mnt *m = mnt_of(req);
	const struct inode *n = inode_get(m->it, ino);
	struct stat st;
	double t;
	int ret;

	mount_tune_once(m);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	ret = mount_node_attr(m, n, &st, &t);
	if (ret < 0)
		mount_reply_errno(req, ret);
	else
		fuse_reply_attr(req, &st, t);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct mnt *m = mnt_of(req);
	const struct inode *n = inode_get(m->it, ino);
	struct cat_versions *vs = NULL;
	const char *target;
	int ret;

	if (!n || n->kind != INODE_ALIAS) {
		fuse_reply_err(req, n ? EINVAL : ENOENT);
		return;
	}
	ret = catalog_versions(m->cat, n->name, &vs);
	if (ret < 0) {
		mount_reply_errno(req, ret);
		return;
	}
	target = cat_versions_alias(vs, n->version);
	if (target)
		fuse_reply_readlink(req, target);
	else
		fuse_reply_err(req, ENOENT);
	cat_versions_unref(vs);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

/* ---- writes: all EROFS ---- */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	fuse_reply_err(req, EROFS);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			 off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.opendir = mount_op_opendir,
	.readdir = mount_op_readdir,
	.readdirplus = mount_op_readdirplus,
	.releasedir = mount_op_releasedir,
	.open = mount_op_open,
	.read = mount_op_read,
	.release = mount_op_release,
	.statfs = op_statfs,
	.getxattr = mount_op_getxattr,
	.listxattr = mount_op_listxattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_unlink,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.write = op_write,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
	.create = op_create,
	.fallocate = op_fallocate,
};

/* ---- running ---- */

static int build_args(const struct mount_opts *o, struct fuse_args *args)
{
	char opts[8192];
	const char *url = o->store_url;
	int n;

	/* fsname shows in /proc/mounts; a comma would split the options */
	if (strchr(url, ',') || strchr(url, '\\') || strlen(url) > 1024)
		url = "assetfs";
	n = snprintf(opts, sizeof(opts),
		     "ro,default_permissions,fsname=%s,subtype=assetfs%s%s%s",
		     url, o->allow_other ? ",allow_other" : "",
		     o->fuse_opts && *o->fuse_opts ? "," : "",
		     o->fuse_opts ? o->fuse_opts : "");
	if (n < 0 || (size_t)n >= sizeof(opts))
		return -E2BIG;
	if (fuse_opt_add_arg(args, "assetfs") || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, opts))
		return -ENOMEM;
	if (o->debug && fuse_opt_add_arg(args, "-d"))
		return -ENOMEM;
	return 0;
}

static void say_ready(const struct mount_opts *o, int status)
{
	if (o->ready)
		o->ready(o->ready_arg, status);
}

/*
 * Readiness: a session that is mounted has not yet answered FUSE_INIT,
 * so "ready" (systemd's READY=1, the daemon's parent) is said by a thread
 * of its own once a stat of the mount root, served by the session's
 * loop, has come back: anyone told "ready" finds the mount answering.
 */
struct ready_ctx {
	const struct mount_opts *o;
	atomic_bool stopping; /* the loop ended: say nothing any more */
};

static void *ready_thread(void *arg)
{
	struct ready_ctx *r = arg;
	struct stat st;

	if (stat(r->o->mountpoint, &st) < 0) {
		int err = errno;

		if (atomic_load(&r->stopping))
			return NULL; /* mount_run()'s caller reports it */
		/* mounted all the same: waiting on would hang the caller */
		log_warn("mount: %s does not answer its own stat (%s); "
			 "reporting ready anyway", r->o->mountpoint,
			 strerror(err));
	}
	if (atomic_load(&r->stopping))
		return NULL;
	log_info("mounted %s on %s (SHA-256: %s, %zu lane%s)",
		 r->o->store_url, r->o->mountpoint, sha256_mb_impl(),
		 sha256_mb_lanes(), sha256_mb_lanes() == 1 ? "" : "s");
	say_ready(r->o, 0);
	sd_notify_state("READY=1");
	return NULL;
}

int mount_run(const struct mount_opts *o)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *lc = NULL;
	unsigned n_threads;
	struct fuse_session *se = NULL;
	struct metrics *mx = NULL;
	struct pins *pins = NULL;
	struct store_opts sto = { 0 };
	struct prov_opts po = { 0 };
	struct catalog_opts co = { 0 };
	struct fetcher_opts fo = { 0 };
	char err[STORE_ERR_MAX] = "";
	struct mnt m = { 0 };
	struct ready_ctx rc = { .o = o };
	pthread_t rt;
	bool mounted = false, handlers = false, rt_started = false;
	int32_t nsec;
	int ret;

	time_now(&m.start_sec, &nsec);
	m.uid = o->uid;
	m.gid = o->gid;
	m.ttl_s = (o->versions_ttl_ms > 0 ? o->versions_ttl_ms : 60000) /
		  1000.0;
	m.readahead = o->readahead > 0 ? o->readahead : 32;
	m.mountpoint = o->mountpoint;
	m.readahead_kb = o->readahead_kb > 0 ? o->readahead_kb : 0;
	atomic_init(&m.tuned, false);
	pthread_mutex_init(&m.hlock, NULL);
	mnt_handle_init(&m.dirs);
	mnt_handle_init(&m.files);
	m.stats = stats_new();
	m.it = inode_table_new();
	if (!m.stats || !m.it) {
		ret = -ENOMEM;
		log_error("mount: out of memory");
		goto out;
	}
	ret = cache_open(&o->cache, &m.cache);
	if (ret < 0) {
		log_error("mount: cannot open the cache dir %s: %s",
			  o->cache.dir ? o->cache.dir : "(default)",
			  strerror(-ret));
		goto out;
	}
	po.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
	/* read-ahead GETs, foreground reads and parallel listings */
	po.max_conns = m.readahead + 32;
	po.bearer_token_file = o->bearer_token_file;
	sto.prov = &po;
	sto.versioning = o->versioning;
	sto.verify_key = o->verify_key;
	ret = store_open(o->store_url, &sto, &m.st, err, sizeof(err));
	if (ret < 0) {
		log_error("mount: %s", *err ? err : strerror(-ret));
		goto out;
	}
	co.versions_ttl_ms = o->versions_ttl_ms;
	co.parallel = 32;
	ret = catalog_new(m.st, m.cache, m.stats, &co, &m.cat);
	if (ret < 0) {
		log_error("mount: cannot start the catalog: %s",
			  strerror(-ret));
		goto out;
	}
	fo.timeout_ms = po.timeout_ms;
	fo.threads = m.readahead;
	ret = fetcher_new(m.st, m.cache, m.stats, &fo, &m.fe);
	if (ret < 0) {
		log_error("mount: cannot start the fetcher: %s",
			  strerror(-ret));
		goto out;
	}
	ret = pins_mount_start(m.cat, m.fe, m.cache, m.stats, o->pins_file,
			       o->warm_before_flip, &pins);
	if (ret < 0) {
		log_error("mount: cannot start the pins: %s", strerror(-ret));
		goto out;
	}
	ret = build_args(o, &args);
	if (ret < 0)
		goto out;
	se = fuse_session_new(&args, &ops, sizeof(ops), &m);
	if (!se) {
		log_error("mount: bad FUSE options '%s'",
			  o->fuse_opts ? o->fuse_opts : "");
		ret = -EINVAL;
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		ret = -EIO;
		goto out;
	}
	handlers = true;
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		log_error("mount: cannot mount on %s (see the line above)",
			  o->mountpoint);
		ret = -EIO;
		goto out;
	}
	mounted = true;
	if (o->metrics_port > 0) {
		const char *ma = o->metrics_addr ? o->metrics_addr :
						   METRICS_DEFAULT_ADDR;

		ret = metrics_start(ma, o->metrics_port, m.stats, m.cache,
				    store_prov(m.st), &mx);
		if (ret < 0) {
			log_error("mount: cannot serve metrics on %s%s%s:%d: "
				  "%s", strchr(ma, ':') ? "[" : "", ma,
				  strchr(ma, ':') ? "]" : "", o->metrics_port,
				  strerror(-ret));
			goto out;
		}
	}
	lc = fuse_loop_cfg_create();
	if (!lc) {
		ret = -ENOMEM;
		goto out;
	}
	/*
	 * Keep every worker once started: with fewer idle threads than the
	 * maximum, libfuse creates and destroys threads all through a
	 * sequential read (about 100 clone() calls per 512 MiB).
	 */
	n_threads = o->threads > 0 ? (unsigned)o->threads : 16;
	fuse_loop_cfg_set_max_threads(lc, n_threads);
	fuse_loop_cfg_set_idle_threads(lc, n_threads);
	atomic_init(&rc.stopping, false);
	ret = -pthread_create(&rt, NULL, ready_thread, &rc);
	if (ret < 0) {
		log_error("mount: cannot start a thread: %s", strerror(-ret));
		goto out;
	}
	rt_started = true;
	ret = fuse_session_loop_mt(se, lc);
	atomic_store(&rc.stopping, true);
	sd_notify_state("STOPPING=1");
	ret = ret < 0 ? ret : 0;
	log_info("unmounting %s", o->mountpoint);
out:
	if (ret < 0 && !mounted)
		say_ready(o, ret);
	metrics_stop(&mx);
	if (mounted)
		fuse_session_unmount(se);
	/* after the unmount: a stat still waiting on the session fails */
	if (rt_started)
		pthread_join(rt, NULL);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se)
		fuse_session_destroy(se);
	mount_dir_free_all(&m);
	mount_file_free_all(&m);
	pthread_mutex_destroy(&m.hlock);
	fuse_loop_cfg_destroy(lc);
	fuse_opt_free_args(&args);
	pins_mount_stop(&pins, m.stats);
	fetcher_free(m.fe);
	catalog_free(m.cat);
	store_close(&m.st);
	cache_close(&m.cache);
	inode_table_free(m.it);
	stats_free(m.stats);
	return ret;
}
