/*
 * mount - the FUSE low-level ops (see mount.h).
 *
 * Every node is an entry of the inode table (fs/inode); what it shows comes
 * from the catalog (version lists and metas with TTLs) and, for file bytes,
 * from the fetcher, which fills the block cache. Reads reply with the
 * cache's block fds (fuse_reply_data with fd buffers), so bytes go from
 * the block files to the kernel without a copy through our buffers when
 * splice is available.
 *
 * Kernel caching: version content never changes, so its entries and
 * attributes get a long timeout and opens keep the page cache; namespace
 * and asset dirs and aliases get versions_ttl, so a new version and moved
 * aliases show within it.
 *
 * Threads: ops run on the session's worker threads; all state they share
 * is in the thread-safe modules. An open file's handle (struct fh) has its
 * own mutex for its block fd slots and read-ahead position.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sdnotify.h"
#include "common/timeutil.h"
#include "fs/catalog.h"
#include "fs/fetcher.h"
#include "fs/inode.h"
#include "fs/metrics.h"
#include "fs/mount.h"
#include "fs/stats.h"

#define LONG_TIMEOUT_S (24.0 * 3600)
#define NEG_TIMEOUT_S 1.0
#define FH_SLOTS 4
#define XATTR_MAX 4096

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
	int readahead;
	int64_t start_sec;
};

struct fh_slot {
	uint64_t index;
	int fd; /* -1: empty */
	int refs;
};

/* An open file. */
struct fh {
	struct cat_version *cv; /* reference */
	uint32_t node;
	struct fetch_obj obj;
	char key[STORE_KEY_MAX];
	atomic_int refs; /* the open file + reads still cleaning up */
	pthread_mutex_t lock;
	uint64_t next_off;		/* protected by lock */
	uint64_t ra_next;		/* protected by lock */
	struct fh_slot slot[FH_SLOTS];	/* protected by lock */
};

/* A directory listing taken at opendir. */
struct dent {
	char *comp;
	enum inode_kind kind;
	char *name;
	char *version;
	char *relpath;
};

struct dirh {
	struct dent *e;
	size_t n;
};

static struct mnt *mnt_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- attributes ---- */

static void base_attr(struct mnt *m, const struct inode *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_blksize = 128 * 1024;
	st->st_mtim.tv_sec = m->start_sec;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

static void dir_attr(struct stat *st)
{
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_size = 4096;
}

/*
 * Attributes of @n and the kernel timeout for them. Returns 0, -ENOENT
 * (the node no longer exists, e.g. an alias that went away) or an error.
 */
static int node_attr(struct mnt *m, const struct inode *n, struct stat *st,
		     double *timeout)
{
	struct cat_versions *vs = NULL;
	struct cat_version *cv = NULL;
	const struct cat_node *cn;
	const char *target;
	int ret = 0, k;

	base_attr(m, n, st);
	*timeout = m->ttl_s;
	switch (n->kind) {
	case INODE_NS:
	case INODE_ASSET:
		dir_attr(st);
		return 0;
	case INODE_ALIAS:
		ret = catalog_versions(m->cat, n->name, &vs);
		if (ret < 0)
			return ret;
		target = cat_versions_alias(vs, n->version);
		if (!target) {
			ret = -ENOENT;
		} else {
			st->st_mode = S_IFLNK | 0777;
			st->st_nlink = 1;
			st->st_size = (off_t)strlen(target);
		}
		cat_versions_unref(vs);
		return ret;
	default:
		break;
	}
	ret = catalog_version(m->cat, n->name, n->version, &cv);
	if (ret < 0)
		return ret;
	k = cat_version_find(cv, n->relpath ? n->relpath : "");
	if (k < 0) {
		ret = k;
		goto out;
	}
	cn = &cv->nodes[k];
	*timeout = LONG_TIMEOUT_S;
	if (cn->is_dir) {
		dir_attr(st);
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)cn->size;
		st->st_blocks = (blkcnt_t)((cn->size + 511) / 512);
	}
	st->st_mtim.tv_sec = cv->meta.push_date;
	st->st_mtim.tv_nsec = cv->meta.push_date_nsec;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
out:
	cat_version_unref(cv);
	return ret;
}

/* ---- resolving a child ---- */

static int join(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s%s%s", a, *a ? "/" : "", b);

	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

/*
 * Offline fallback: does the last known level of @p list @comp as a
 * namespace? Returns 1, or -EIO.
 */
static int parent_knows_ns(struct mnt *m, const struct inode *p,
			   const char *comp)
{
	struct cat_level *l = NULL;
	size_t i;
	int ret = -EIO;

	if (catalog_level(m->cat, p->name, &l) < 0)
		return -EIO;
	for (i = 0; i < l->n_namespaces; i++)
		if (strcmp(l->namespaces[i], comp) == 0)
			ret = 1;
	cat_level_unref(l);
	return ret;
}

/*
 * What @comp in dir @p is: fills @d (strings owned by @d). Returns 0,
 * -ENOENT, -ENOTDIR or an error.
 */
static int resolve_child(struct mnt *m, const struct inode *p,
			 const char *comp, struct dent *d)
{
	char full[SPEC_PATH_MAX + SPEC_NAME_MAX + 2];
	struct cat_versions *vs = NULL;
	struct cat_version *cv = NULL;
	int ret, k;

	memset(d, 0, sizeof(*d));
	if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0)
		return -ENOENT;
	switch (p->kind) {
	case INODE_NS:
		ret = join(full, sizeof(full), p->name, comp);
		if (ret < 0 || spec_check_name(full, NULL, 0) < 0)
			return -ENOENT;
		ret = catalog_versions(m->cat, full, &vs);
		if (ret == 0) {
			d->kind = INODE_ASSET;
		} else {
			/* not an asset, or unknown offline: a namespace? */
			int ns = catalog_is_namespace(m->cat, full);

			if (ns < 0 && ret != -ENOENT && ret != -EINVAL)
				ns = parent_knows_ns(m, p, comp);
			if (ns < 0 || (ns == 0 && ret != -ENOENT &&
				       ret != -EINVAL))
				return ns < 0 && (ret == -ENOENT ||
						  ret == -EINVAL) ? ns : ret;
			if (ns == 0)
				return -ENOENT;
			d->kind = INODE_NS;
		}
		cat_versions_unref(vs);
		d->name = strdup(full);
		break;
	case INODE_ASSET:
		ret = catalog_versions(m->cat, p->name, &vs);
		if (ret < 0)
			return ret;
		if (cat_versions_alias(vs, comp)) {
			d->kind = INODE_ALIAS;
		} else if (cat_versions_has(vs, comp)) {
			ret = catalog_version(m->cat, p->name, comp, &cv);
			if (ret < 0) {
				cat_versions_unref(vs);
				return ret == -EINVAL ? -ENOENT : ret;
			}
			d->kind = cv->nodes[0].is_dir ? INODE_VDIR :
							INODE_VFILE;
			d->relpath = strdup("");
			cat_version_unref(cv);
		} else {
			cat_versions_unref(vs);
			return -ENOENT;
		}
		cat_versions_unref(vs);
		d->name = strdup(p->name);
		d->version = strdup(comp);
		break;
	case INODE_VDIR:
	case INODE_SUBDIR:
		ret = catalog_version(m->cat, p->name, p->version, &cv);
		if (ret < 0)
			return ret;
		ret = join(full, sizeof(full), p->relpath, comp);
		k = ret < 0 ? ret : cat_version_find(cv, full);
		if (k < 0) {
			cat_version_unref(cv);
			return k;
		}
		d->kind = cv->nodes[k].is_dir ? INODE_SUBDIR : INODE_FILE;
		cat_version_unref(cv);
		d->name = strdup(p->name);
		d->version = strdup(p->version);
		d->relpath = strdup(full);
		break;
	default:
		return -ENOTDIR;
	}
	d->comp = strdup(comp);
	if (!d->comp || !d->name)
		return -ENOMEM;
	return 0;
}

static void dent_clear(struct dent *d)
{
	free(d->comp);
	free(d->name);
	free(d->version);
	free(d->relpath);
	memset(d, 0, sizeof(*d));
}

/*
 * Make the inode for @d under @parent and fill @e. Adds one lookup on
 * success.
 */
static int make_entry(struct mnt *m, uint64_t parent, const struct dent *d,
		      struct fuse_entry_param *e)
{
	const struct inode *n;
	double t;
	int ret;

	ret = inode_child(m->it, parent, d->comp, d->kind, d->name,
			  d->version, d->relpath, &n);
	if (ret < 0)
		return ret;
	memset(e, 0, sizeof(*e));
	ret = node_attr(m, n, &e->attr, &t);
	if (ret < 0) {
		inode_forget(m->it, n->ino, 1);
		return ret;
	}
	e->ino = n->ino;
	e->attr_timeout = t;
	e->entry_timeout = t;
	return 0;
}

static int reply_errno(fuse_req_t req, int ret)
{
	if (ret == -ENOENT || ret == -ENOTDIR || ret == -EROFS ||
	    ret == -ENOMEM || ret == -ENAMETOOLONG || ret == -EISDIR)
		return fuse_reply_err(req, -ret);
	return fuse_reply_err(req, EIO);
}

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
	if (!p) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	ret = resolve_child(m, p, name, &d);
	if (ret == 0)
		ret = make_entry(m, parent, &d, &e);
	dent_clear(&d);
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
		reply_errno(req, ret);
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

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	ret = node_attr(m, n, &st, &t);
	if (ret < 0)
		reply_errno(req, ret);
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
		reply_errno(req, ret);
		return;
	}
	target = cat_versions_alias(vs, n->version);
	if (target)
		fuse_reply_readlink(req, target);
	else
		fuse_reply_err(req, ENOENT);
	cat_versions_unref(vs);
}

/* ---- directories ---- */

static void dirh_free(struct dirh *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->n; i++)
		dent_clear(&h->e[i]);
	free(h->e);
	free(h);
}

static int dirh_add(struct dirh *h, size_t *cap, const char *comp,
		    enum inode_kind kind, const char *name,
		    const char *version, const char *relpath)
{
	struct dent *d;

	if (h->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;

		d = realloc(h->e, ncap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		h->e = d;
		*cap = ncap;
	}
	d = &h->e[h->n];
	memset(d, 0, sizeof(*d));
	d->comp = strdup(comp);
	d->kind = kind;
	d->name = strdup(name);
	d->version = version ? strdup(version) : NULL;
	d->relpath = relpath ? strdup(relpath) : NULL;
	h->n++;
	if (!d->comp || !d->name || (version && !d->version) ||
	    (relpath && !d->relpath))
		return -ENOMEM;
	return 0;
}

static int list_ns(struct mnt *m, const struct inode *n, struct dirh *h,
		   size_t *cap)
{
	char full[SPEC_NAME_MAX + 2];
	struct cat_level *l = NULL;
	size_t i, j;
	int ret;

	ret = catalog_level(m->cat, n->name, &l);
	if (ret < 0)
		return ret;
	for (i = 0; i < l->n_assets && ret == 0; i++) {
		struct cat_versions *vs = NULL;

		if (join(full, sizeof(full), n->name, l->assets[i]) < 0)
			continue;
		/* an asset whose .versions is malformed is skipped (logged) */
		if (catalog_versions(m->cat, full, &vs) == -EINVAL)
			continue;
		cat_versions_unref(vs);
		ret = dirh_add(h, cap, l->assets[i], INODE_ASSET, full, NULL,
			       NULL);
	}
	for (i = 0; i < l->n_namespaces && ret == 0; i++) {
		bool dup = false;

		for (j = 0; j < l->n_assets; j++)
			if (strcmp(l->assets[j], l->namespaces[i]) == 0)
				dup = true;
		if (dup || join(full, sizeof(full), n->name,
				l->namespaces[i]) < 0)
			continue;
		ret = dirh_add(h, cap, l->namespaces[i], INODE_NS, full, NULL,
			       NULL);
	}
	cat_level_unref(l);
	return ret;
}

static int list_asset(struct mnt *m, const struct inode *n, struct dirh *h,
		      size_t *cap)
{
	struct cat_versions *vs = NULL;
	size_t i;
	int ret;

	ret = catalog_versions(m->cat, n->name, &vs);
	if (ret < 0)
		return ret;
	catalog_prefetch_versions(m->cat, n->name, vs);
	for (i = vs->list.n; i-- > 0 && ret == 0;) {
		struct cat_version *cv = NULL;

		/* a version whose .meta is bad is skipped (logged once) */
		if (catalog_version(m->cat, n->name, vs->list.v[i], &cv) < 0)
			continue;
		ret = dirh_add(h, cap, vs->list.v[i],
			       cv->nodes[0].is_dir ? INODE_VDIR : INODE_VFILE,
			       n->name, vs->list.v[i], "");
		cat_version_unref(cv);
	}
	for (i = 0; i < vs->n_aliases && ret == 0; i++)
		ret = dirh_add(h, cap, vs->alias_names[i], INODE_ALIAS,
			       n->name, vs->alias_names[i], NULL);
	cat_versions_unref(vs);
	return ret;
}

static int list_vdir(struct mnt *m, const struct inode *n, struct dirh *h,
		     size_t *cap)
{
	struct cat_version *cv = NULL;
	uint32_t k;
	int ret, d;

	ret = catalog_version(m->cat, n->name, n->version, &cv);
	if (ret < 0)
		return ret;
	d = cat_version_find(cv, n->relpath);
	if (d < 0) {
		cat_version_unref(cv);
		return d;
	}
	for (k = cv->nodes[d].first_child; k && ret == 0;
	     k = cv->nodes[k].next_sibling) {
		const struct cat_node *c = &cv->nodes[k];

		ret = dirh_add(h, cap, c->comp,
			       c->is_dir ? INODE_SUBDIR : INODE_FILE, n->name,
			       n->version, c->relpath);
	}
	cat_version_unref(cv);
	return ret;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct mnt *m = mnt_of(req);
	const struct inode *n = inode_get(m->it, ino);
	struct dirh *h;
	size_t cap = 0;
	int ret;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	switch (n->kind) {
	case INODE_NS:
		ret = list_ns(m, n, h, &cap);
		break;
	case INODE_ASSET:
		ret = list_asset(m, n, h, &cap);
		break;
	case INODE_VDIR:
	case INODE_SUBDIR:
		ret = list_vdir(m, n, h, &cap);
		break;
	default:
		ret = -ENOTDIR;
	}
	if (ret < 0) {
		dirh_free(h);
		reply_errno(req, ret);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) != 0)
		dirh_free(h);
}

static unsigned dtype(enum inode_kind k)
{
	switch (k) {
	case INODE_VFILE:
	case INODE_FILE:
		return S_IFREG;
	case INODE_ALIAS:
		return S_IFLNK;
	default:
		return S_IFDIR;
	}
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi, bool plus)
{
	struct mnt *m = mnt_of(req);
	struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
	const struct inode *self = inode_get(m->it, ino);
	char *buf;
	size_t used = 0;
	off_t i;

	if (!self) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* offsets: 0 ".", 1 "..", 2 + i the i-th entry */
	for (i = off; i < (off_t)h->n + 2; i++) {
		struct fuse_entry_param e;
		const char *nm;
		size_t len;

		memset(&e, 0, sizeof(e));
		if (i < 2) {
			nm = i == 0 ? "." : "..";
			e.attr.st_ino = i == 0 ? self->ino : self->parent;
			e.attr.st_mode = S_IFDIR;
			len = plus ? fuse_add_direntry_plus(req, buf + used,
							    size - used, nm,
							    &e, i + 1) :
				     fuse_add_direntry(req, buf + used,
						       size - used, nm,
						       &e.attr, i + 1);
		} else {
			const struct dent *d = &h->e[i - 2];

			nm = d->comp;
			if (plus) {
				if (make_entry(m, ino, d, &e) < 0)
					continue; /* vanished: skip */
			} else {
				e.attr.st_ino = (ino_t)(digest_xxh3(
					d->comp, strlen(d->comp)) | 1);
				e.attr.st_mode = dtype(d->kind);
			}
			len = plus ? fuse_add_direntry_plus(req, buf + used,
							    size - used, nm,
							    &e, i + 1) :
				     fuse_add_direntry(req, buf + used,
						       size - used, nm,
						       &e.attr, i + 1);
			if (len > size - used && plus)
				inode_forget(m->it, e.ino, 1);
		}
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	dirh_free((struct dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- files ---- */

/*
 * Drop a reference. The kernel sends release only after every read of the
 * file was answered, but a read still closes its fds after answering: it
 * holds a reference until then.
 */
static void fh_free(struct fh *h)
{
	int i;

	if (!h || atomic_fetch_sub(&h->refs, 1) != 1)
		return;
	for (i = 0; i < FH_SLOTS; i++)
		if (h->slot[i].fd >= 0)
			close(h->slot[i].fd);
	cat_version_unref(h->cv);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt *m = mnt_of(req);
	const struct inode *n = inode_get(m->it, ino);
	const struct cat_node *cn;
	struct fh *h = NULL;
	int ret, k, i;

	stats_inc(m->stats, STAT_OPENS);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY ||
	    (fi->flags & (O_TRUNC | O_APPEND | O_CREAT))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (n->kind != INODE_VFILE && n->kind != INODE_FILE) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	atomic_init(&h->refs, 1);
	pthread_mutex_init(&h->lock, NULL);
	for (i = 0; i < FH_SLOTS; i++)
		h->slot[i].fd = -1;
	ret = catalog_version(m->cat, n->name, n->version, &h->cv);
	if (ret < 0)
		goto fail;
	k = cat_version_find(h->cv, n->relpath);
	if (k < 0 || h->cv->nodes[k].is_dir) {
		ret = k < 0 ? k : -EISDIR;
		goto fail;
	}
	cn = &h->cv->nodes[k];
	h->node = (uint32_t)k;
	ret = store_key_file(n->name, n->version,
			     *n->relpath ? n->relpath : NULL, h->key,
			     sizeof(h->key));
	if (ret < 0)
		goto fail;
	h->obj.key = h->key;
	h->obj.size = cn->size;
	h->obj.block_size = h->cv->block_size;
	h->obj.mf = cn->mf;
	h->obj.etag = cn->etag;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) != 0)
		fh_free(h);
	return;
fail:
	fh_free(h);
	reply_errno(req, ret);
}

/*
 * An fd for block @b: from the handle's slots or freshly opened (then kept
 * in a free slot). *@slot gets the slot index holding a reference, or -1
 * if the caller owns the fd.
 */
static int fh_block_fd(struct mnt *m, struct fh *h, uint64_t b, int *fd,
		       int *slot)
{
	uint64_t len;
	int i, ret, nfd = -1;

	pthread_mutex_lock(&h->lock);
	for (i = 0; i < FH_SLOTS; i++) {
		if (h->slot[i].fd >= 0 && h->slot[i].index == b) {
			h->slot[i].refs++;
			*fd = h->slot[i].fd;
			*slot = i;
			pthread_mutex_unlock(&h->lock);
			stats_inc(m->stats, STAT_BLOCK_HITS);
			return 0;
		}
	}
	pthread_mutex_unlock(&h->lock);
	ret = fetcher_block(m->fe, &h->obj, b, &nfd, &len);
	if (ret < 0)
		return ret;
	*fd = nfd;
	*slot = -1;
	pthread_mutex_lock(&h->lock);
	for (i = 0; i < FH_SLOTS; i++) {
		if (h->slot[i].refs == 0) {
			if (h->slot[i].fd >= 0)
				close(h->slot[i].fd);
			h->slot[i].fd = nfd;
			h->slot[i].index = b;
			h->slot[i].refs = 1;
			*slot = i;
			break;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static void fh_put_fd(struct fh *h, int fd, int slot)
{
	if (slot < 0) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&h->lock);
	h->slot[slot].refs--;
	pthread_mutex_unlock(&h->lock);
}

static void maybe_readahead(struct mnt *m, struct fh *h, uint64_t off,
			    uint64_t end, uint64_t last_block)
{
	uint64_t from, to;
	bool seq;

	if (m->readahead <= 0)
		return;
	pthread_mutex_lock(&h->lock);
	seq = off == 0 || off == h->next_off;
	h->next_off = end;
	from = last_block + 1;
	if (from < h->ra_next)
		from = h->ra_next;
	to = last_block + 1 + (uint64_t)m->readahead;
	if (seq && from < to)
		h->ra_next = to;
	pthread_mutex_unlock(&h->lock);
	if (seq && from < to)
		fetcher_readahead(m->fe, &h->obj, from, to - from);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct mnt *m = mnt_of(req);
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	struct fuse_bufvec *bv = NULL;
	uint64_t bs = h->obj.block_size, end, b0, b1, b, nb;
	int fds[64], slots[64];
	size_t k = 0, i;
	int ret = 0;

	stats_inc(m->stats, STAT_READS);
	if (off < 0 || (uint64_t)off >= h->obj.size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	atomic_fetch_add(&h->refs, 1);
	end = (uint64_t)off + size;
	if (end > h->obj.size)
		end = h->obj.size;
	b0 = (uint64_t)off / bs;
	b1 = (end - 1) / bs;
	nb = b1 - b0 + 1;
	if (nb > 64) {
		fuse_reply_err(req, EINVAL);
		fh_free(h);
		return;
	}
	maybe_readahead(m, h, (uint64_t)off, end, b1);
	bv = calloc(1, sizeof(*bv) + nb * sizeof(struct fuse_buf));
	if (!bv) {
		fuse_reply_err(req, ENOMEM);
		fh_free(h);
		return;
	}
	bv->count = nb;
	for (b = b0; b <= b1; b++, k++) {
		uint64_t bstart = b * bs;
		uint64_t from = (uint64_t)off > bstart ? (uint64_t)off : bstart;
		uint64_t to = end < bstart + bs ? end : bstart + bs;

		ret = fh_block_fd(m, h, b, &fds[k], &slots[k]);
		if (ret < 0)
			break;
		bv->buf[k].size = to - from;
		bv->buf[k].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK |
				   FUSE_BUF_FD_RETRY;
		bv->buf[k].fd = fds[k];
		bv->buf[k].pos = (off_t)(from - bstart);
	}
	if (ret < 0) {
		fuse_reply_err(req, EIO);
	} else {
		stats_add(m->stats, STAT_BYTES_SERVED, end - (uint64_t)off);
		fuse_reply_data(req, bv, FUSE_BUF_SPLICE_MOVE);
	}
	for (i = 0; i < k; i++)
		fh_put_fd(h, fds[i], slots[i]);
	free(bv);
	fh_free(h);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	fh_free((struct fh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
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

/* ---- xattrs ---- */

static const char *const version_xattrs[] = {
	"user.assetfs.version", "user.assetfs.spec", "user.assetfs.sha256",
	"user.assetfs.push_date", "user.assetfs.cached",
};

static void refresh_gauges(struct mnt *m)
{
	struct cache_stats cs;
	struct prov_stats ps;

	if (cache_get_stats(m->cache, &cs) == 0) {
		stats_set(m->stats, STAT_CACHE_BYTES, cs.bytes);
		stats_set(m->stats, STAT_EVICTIONS, cs.evictions);
	}
	prov_get_stats(store_prov(m->st), &ps);
	stats_set(m->stats, STAT_RETRIES, ps.retries);
}

/* Sum of cached bytes of every file under node @k of @cv. */
static uint64_t cached_under(struct mnt *m, const struct cat_version *cv,
			     uint32_t k)
{
	const struct cat_node *cn = &cv->nodes[k];
	char key[STORE_KEY_MAX];
	uint64_t total = 0, c;
	uint32_t ch;

	if (!cn->is_dir) {
		struct fetch_obj o = {
			.key = key, .size = cn->size,
			.block_size = cv->block_size, .mf = cn->mf,
			.etag = cn->etag,
		};

		if (store_key_file(cv->name, cv->version,
				   *cn->relpath ? cn->relpath : NULL, key,
				   sizeof(key)) < 0)
			return 0;
		if (fetcher_cached_bytes(m->fe, &o, &c) == 0)
			total = c;
		return total;
	}
	for (ch = cn->first_child; ch; ch = cv->nodes[ch].next_sibling)
		total += cached_under(m, cv, ch);
	return total;
}

/* The value of xattr @name of @n into @out. Returns 0, -ENODATA. */
static int xattr_value(struct mnt *m, const struct inode *n,
		       const char *name, struct buf *out)
{
	struct cat_version *cv = NULL;
	const struct cat_node *cn;
	char hex[DIGEST_HEX_LEN + 1], date[64];
	int ret, k;

	if (n->ino == INODE_ROOT_INO && strcmp(name, MOUNT_STATS_XATTR) == 0) {
		refresh_gauges(m);
		return stats_format(m->stats, STATS_FMT_TEXT, out);
	}
	if (strncmp(name, "user.assetfs.", 13) != 0 || !n->version ||
	    n->kind == INODE_ALIAS)
		return -ENODATA;
	ret = catalog_version(m->cat, n->name, n->version, &cv);
	if (ret < 0)
		return ret;
	k = cat_version_find(cv, n->relpath);
	if (k < 0) {
		ret = k;
		goto out;
	}
	cn = &cv->nodes[k];
	ret = -ENODATA;
	if (strcmp(name, "user.assetfs.version") == 0) {
		ret = buf_puts(out, n->version);
	} else if (strcmp(name, "user.assetfs.spec") == 0) {
		ret = buf_printf(out, "%s:%s", n->name, n->version);
		if (ret == 0 && *n->relpath)
			ret = buf_printf(out, "[%s]", n->relpath);
	} else if (strcmp(name, "user.assetfs.sha256") == 0) {
		if (!cn->is_dir && cn->mf) {
			digest_to_hex(&cn->mf->sha256, hex);
			ret = buf_puts(out, hex);
		}
	} else if (strcmp(name, "user.assetfs.push_date") == 0) {
		if (time_format_iso8601(cv->meta.push_date,
					cv->meta.push_date_nsec, date,
					sizeof(date)) > 0)
			ret = buf_puts(out, date);
	} else if (strcmp(name, "user.assetfs.cached") == 0) {
		ret = buf_printf(out, "%llu",
				 (unsigned long long)cached_under(
					 m, cv, (uint32_t)k));
	}
out:
	cat_version_unref(cv);
	return ret;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct mnt *m = mnt_of(req);
	const struct inode *n = inode_get(m->it, ino);
	struct buf out;
	int ret;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	buf_init(&out, XATTR_MAX);
	ret = xattr_value(m, n, name, &out);
	if (ret == -ENODATA || ret == -ENOENT)
		fuse_reply_err(req, ENODATA);
	else if (ret < 0)
		reply_errno(req, ret);
	else if (size == 0)
		fuse_reply_xattr(req, out.len);
	else if (size < out.len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, out.data, out.len);
	buf_free(&out);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct mnt *m = mnt_of(req);
	const struct inode *n = inode_get(m->it, ino);
	struct buf out, val;
	size_t i;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	buf_init(&out, XATTR_MAX);
	if (n->version && n->kind != INODE_ALIAS) {
		for (i = 0; i < sizeof(version_xattrs) /
				    sizeof(version_xattrs[0]);
		     i++) {
			buf_init(&val, XATTR_MAX);
			if (xattr_value(m, n, version_xattrs[i], &val) == 0)
				buf_append(&out, version_xattrs[i],
					   strlen(version_xattrs[i]) + 1);
			buf_free(&val);
		}
	}
	if (size == 0)
		fuse_reply_xattr(req, out.len);
	else if (size < out.len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, out.data ? out.data : "", out.len);
	buf_free(&out);
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
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
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

/*
 * Raise the kernel read-ahead of our mount's bdi (FUSE starts at 128 KiB,
 * which leaves a sequential reader waiting on small requests). Best
 * effort: only root may write sysfs. The bdi is named after the mount's
 * device number, found in /proc/self/mountinfo (a stat of the mountpoint
 * would need the session loop running).
 */
static void set_readahead(const char *mountpoint, int kb)
{
	char line[8192], dev[64] = "", path[128], val[32];
	FILE *f;

	if (kb <= 0)
		return;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mdev[64], mp[4096];

		if (sscanf(line, "%*u %*u %63s %*s %4095s", mdev, mp) == 2 &&
		    strcmp(mp, mountpoint) == 0)
			snprintf(dev, sizeof(dev), "%s", mdev);
	}
	fclose(f);
	if (!*dev)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	snprintf(val, sizeof(val), "%d", kb);
	f = fopen(path, "we");
	if (!f) {
		log_debug("cannot set %s: %s", path, strerror(errno));
		return;
	}
	fputs(val, f);
	if (fclose(f) != 0)
		log_debug("cannot set %s: %s", path, strerror(errno));
}

static void say_ready(const struct mount_opts *o, int status)
{
	if (o->ready)
		o->ready(o->ready_arg, status);
}

int mount_run(const struct mount_opts *o)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *lc = NULL;
	struct fuse_session *se = NULL;
	struct metrics *mx = NULL;
	struct store_opts sto = { 0 };
	struct prov_opts po = { 0 };
	struct catalog_opts co = { 0 };
	struct fetcher_opts fo = { 0 };
	char err[STORE_ERR_MAX] = "";
	struct mnt m = { 0 };
	bool mounted = false, handlers = false;
	int32_t nsec;
	int ret;

	time_now(&m.start_sec, &nsec);
	m.uid = o->uid;
	m.gid = o->gid;
	m.ttl_s = (o->versions_ttl_ms > 0 ? o->versions_ttl_ms : 60000) /
		  1000.0;
	m.readahead = o->readahead > 0 ? o->readahead : 8;
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
	po.max_conns = m.readahead + 8;
	sto.prov = &po;
	sto.versioning = o->versioning;
	ret = store_open(o->store_url, &sto, &m.st, err, sizeof(err));
	if (ret < 0) {
		log_error("mount: %s", *err ? err : strerror(-ret));
		goto out;
	}
	co.versions_ttl_ms = o->versions_ttl_ms;
	ret = catalog_new(m.st, m.cache, m.stats, &co, &m.cat);
	if (ret < 0)
		goto out;
	fo.timeout_ms = po.timeout_ms;
	fo.threads = m.readahead;
	ret = fetcher_new(m.st, m.cache, m.stats, &fo, &m.fe);
	if (ret < 0) {
		log_error("mount: cannot start the fetcher: %s",
			  strerror(-ret));
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
	set_readahead(o->mountpoint,
		      o->readahead_kb >= 0 ? o->readahead_kb : 0);
	if (o->metrics_port > 0) {
		ret = metrics_start(o->metrics_port, m.stats, m.cache,
				    store_prov(m.st), &mx);
		if (ret < 0) {
			log_error("mount: cannot serve metrics on "
				  "127.0.0.1:%d: %s", o->metrics_port,
				  strerror(-ret));
			goto out;
		}
	}
	log_info("mounted %s on %s", o->store_url, o->mountpoint);
	say_ready(o, 0);
	sd_notify_state("READY=1");
	lc = fuse_loop_cfg_create();
	if (!lc) {
		ret = -ENOMEM;
		goto out;
	}
	fuse_loop_cfg_set_max_threads(lc, o->threads > 0 ? (unsigned)o->threads
							 : 16);
	fuse_loop_cfg_set_idle_threads(lc, 4);
	ret = fuse_session_loop_mt(se, lc);
	sd_notify_state("STOPPING=1");
	ret = ret < 0 ? ret : 0;
	log_info("unmounting %s", o->mountpoint);
out:
	if (ret < 0 && !mounted)
		say_ready(o, ret);
	metrics_stop(&mx);
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se)
		fuse_session_destroy(se);
	fuse_loop_cfg_destroy(lc);
	fuse_opt_free_args(&args);
	fetcher_free(m.fe);
	catalog_free(m.cat);
	store_close(&m.st);
	cache_close(&m.cache);
	inode_table_free(m.it);
	stats_free(m.stats);
	return ret;
}
