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
#include <time.h>

#include <fcntl.h>
#include <unistd.h>

#include "common/log.h"
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

/*
 * Is @pid (a requester's thread) one of this daemon's processes: this
 * worker, the supervisor, or another child of the supervisor? From
 * /proc/PID/status (Tgid, PPid).
 */
static bool own_process(const struct mnt *m, pid_t pid)
{
	char path[64], line[256];
	long tgid = -1, ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Tgid:", 5) == 0)
			tgid = strtol(line + 5, NULL, 10);
		else if (strncmp(line, "PPid:", 5) == 0)
			ppid = strtol(line + 5, NULL, 10);
	}
	fclose(f);
	return tgid == (long)getpid() || tgid == (long)m->supervisor_pid ||
	       ppid == (long)m->supervisor_pid;
}

/*
 * Test only: hold the daemon's own start-up check of the mount (a GETATTR
 * of the root) in this worker, so that a test can kill the worker while
 * that request is in flight. Once per worker, and only in a supervisor's
 * first worker (mount_worker_run() arms it).
 */
static void test_hold(struct mnt *m, fuse_ino_t ino, fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	int ms = atomic_load(&m->test_hold_ms);
	struct timespec ts;

	if (ms <= 0 || ino != FUSE_ROOT_ID || !own_process(m, ctx->pid) ||
	    atomic_exchange(&m->test_hold_ms, 0) <= 0)
		return;
	log_info("mount: test hook: holding the GETATTR of the root from "
		 "pid %d (this daemon's own) for %d ms in worker pid %d",
		 (int)ctx->pid, ms, (int)getpid());
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
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
	test_hold(m, ino, req);
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

int mount_build_args(const struct mount_opts *o, struct fuse_args *args)
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

/*
 * Every worker says HO_READY as its loop starts. The supervisor then
 * checks that the mount answers from a prober of its own (a stat of the
 * mountpoint, supervisor_worker.c) before it tells anyone "ready": never
 * from this process, which serves the mount and must never wait on it
 * (a worker killed while one of its threads waited on its own mount
 * could not finish dying: the kernel waits for the answer to a request
 * already read uninterruptibly).
 */
static void say_ready(struct mount_io *io)
{
	struct ho_msg msg;

	ho_msg_start(&msg, HO_READY);
	mount_io_send(io, &msg);
}

/* Prometheus: assetfs_build_info{version="..."} 1 (a stats source). */
static int build_info(void *ctx, struct buf *out)
{
	static const char *const labels[] = { "version", ASSETFS_VERSION };
	int ret;

	ret = stats_prom_family(out, "assetfs_build_info", STAT_KIND_GAUGE,
				"The assetfs build serving the mount.");
	return ret < 0 ? ret : stats_prom_sample(out, "assetfs_build_info",
						 labels, 1, 1);
}

/* The parts of the mount the session serves from; 0 or an error. */
static int open_parts(const struct mount_opts *o, struct mnt *m)
{
	struct store_opts sto = { 0 };
	struct prov_opts po = { 0 };
	struct catalog_opts co = { 0 };
	struct fetcher_opts fo = { 0 };
	char err[STORE_ERR_MAX] = "";
	int ret;

	m->stats = stats_new();
	if (!m->stats) {
		log_error("mount: out of memory");
		return -ENOMEM;
	}
	ret = cache_open(&o->cache, &m->cache);
	if (ret < 0) {
		log_error("mount: cannot open the cache dir %s: %s",
			  o->cache.dir ? o->cache.dir : "(default)",
			  strerror(-ret));
		return ret;
	}
	po.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
	/* read-ahead GETs, foreground reads and parallel listings */
	po.max_conns = m->readahead + 32;
	po.bearer_token_file = o->bearer_token_file;
	sto.prov = &po;
	sto.versioning = o->versioning;
	sto.verify_key = o->verify_key;
	ret = store_open(o->store_url, &sto, &m->st, err, sizeof(err));
	if (ret < 0) {
		log_error("mount: %s", *err ? err : strerror(-ret));
		return ret;
	}
	co.versions_ttl_ms = o->versions_ttl_ms;
	co.parallel = 32;
	ret = catalog_new(m->st, m->cache, m->stats, &co, &m->cat);
	if (ret < 0) {
		log_error("mount: cannot start the catalog: %s",
			  strerror(-ret));
		return ret;
	}
	fo.timeout_ms = po.timeout_ms;
	fo.threads = m->readahead;
	ret = fetcher_new(m->st, m->cache, m->stats, &fo, &m->fe);
	if (ret < 0)
		log_error("mount: cannot start the fetcher: %s",
			  strerror(-ret));
	return ret;
}

/*
 * A takeover's worker has everything ready; it starts serving once the
 * old daemon is gone (HO_RESUME from the supervisor). 0 or -EPIPE.
 */
static int await_go(int ctl)
{
	struct ho_msg *msg = malloc(sizeof(*msg));
	int t;

	if (!msg)
		return -ENOMEM;
	do {
		t = ho_recv(ctl, msg, NULL, -1);
	} while (t > 0 && t != HO_RESUME);
	free(msg);
	return t == HO_RESUME ? 0 : -EPIPE;
}

int mount_worker_run(const struct mount_opts *o, struct mount_worker *w)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *lc = NULL;
	unsigned n_threads;
	struct fuse_session *se = NULL;
	struct metrics *mx = NULL;
	struct pins *pins = NULL;
	struct mnt m = { 0 };
	int32_t nsec;
	int ret, fd = -1, got_fd = -1;

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
	ret = open_parts(o, &m);
	if (ret < 0)
		goto out;
	if (w->await_state) {
		/* a takeover: ready before the old daemon drains */
		ret = ho_recv_state(w->ctl, w->st, &got_fd, -1);
		if (ret < 0) {
			log_error("mount: no state from the supervisor: %s",
				  strerror(-ret));
			goto out;
		}
		w->fuse_fd = got_fd;
	}
	/* the supervisor's copy of the table is ours from now on */
	m.it = w->st->it;
	w->st->it = NULL;
	m.ho = w->st;
	m.supervisor_pid = w->supervisor_pid;
	m.handle_next = (w->st->gen << 32) | 1;
	atomic_init(&m.test_hold_ms, 0);
	if (w->st->worker_restarts == 0 && w->st->takeovers == 0) {
		/* test only: see test_hold() */
		const char *hold = getenv("ASSETFS_TEST_HOLD_OWN_GETATTR_MS");

		if (hold && *hold)
			atomic_store(&m.test_hold_ms, atoi(hold));
	}
	stats_set(m.stats, STAT_PID, (uint64_t)getpid());
	stats_set(m.stats, STAT_SUPERVISOR_PID, (uint64_t)w->supervisor_pid);
	stats_set(m.stats, STAT_STARTED_AT, (uint64_t)m.start_sec);
	stats_set(m.stats, STAT_TAKEOVERS, w->st->takeovers);
	stats_set(m.stats, STAT_WORKER_RESTARTS, w->st->worker_restarts);
	stats_set(m.stats, STAT_RESENT_REQUESTS, w->st->resent);
	ret = stats_add_source(m.stats, build_info, NULL);
	if (ret < 0)
		goto out;
	ret = pins_mount_start(m.cat, m.fe, m.cache, m.stats, o->pins_file,
			       o->warm_before_flip, &pins);
	if (ret < 0) {
		log_error("mount: cannot start the pins: %s", strerror(-ret));
		goto out;
	}
	ret = mount_build_args(o, &args);
	if (ret < 0)
		goto out;
	se = fuse_session_new(&args, &ops, sizeof(ops), &m);
	if (!se) {
		log_error("mount: bad FUSE options '%s'",
			  o->fuse_opts ? o->fuse_opts : "");
		ret = -EINVAL;
		goto out;
	}
	fd = fcntl(w->fuse_fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = mount_io_new(fd, w->ctl, w->st, m.stats, &m.io);
	if (ret == 0)
		ret = fuse_session_custom_io(se, &mount_io_hooks, fd);
	if (ret < 0) {
		close(fd);
		goto out;
	}
	/* the session owns fd from here, and closes it when destroyed */
	inode_table_set_journal(m.it, mount_io_journal, m.io);
	if (w->await_state) {
		ret = await_go(w->ctl);
		if (ret < 0)
			goto out;
	}
	ret = mount_io_start(m.io);
	if (ret < 0)
		goto out;
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
	 * Keep every worker thread once started: with fewer idle threads
	 * than the maximum, libfuse creates and destroys threads all
	 * through a sequential read (about 100 clone() calls per 512 MiB);
	 * and the drain of a takeover counts on no thread leaving the loop.
	 */
	n_threads = o->threads > 0 ? (unsigned)o->threads : 16;
	fuse_loop_cfg_set_max_threads(lc, n_threads);
	fuse_loop_cfg_set_idle_threads(lc, n_threads);
	if (!w->first)
		log_info("serving %s on %s (pid %d, after pid %d's worker)",
			 o->store_url, o->mountpoint, (int)getpid(),
			 (int)w->supervisor_pid);
	say_ready(m.io);
	/* the terminal of `assetfs mount` is not ours to keep (the
	   supervisor, which lets go of it too, says "ready") */
	if (w->first && o->detach)
		o->detach(o->detach_arg);
	ret = fuse_session_loop_mt(se, lc);
	ret = ret < 0 ? ret : 0;
	log_info("%s is unmounted", o->mountpoint);
out:
	metrics_stop(&mx);
	if (se)
		fuse_session_destroy(se);
	mount_io_free(m.io);
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
	if (got_fd >= 0)
		close(got_fd);
	return ret;
}
