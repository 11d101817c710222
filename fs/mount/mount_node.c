/*
 * mount_node - what a node of the mount is, shared by the ops of every
 * file above it (mount.c, mount_dir.c, mount_file.c): its attributes,
 * what a name in a dir resolves to, making the entry the kernel is handed,
 * the errno a reader sees, and the tuning applied once the kernel has
 * answered FUSE_INIT. It calls nothing of the other mount files: the arrows
 * run mount.c -> mount_dir.c / mount_file.c -> mount_node.c.
 *
 * Threads: any worker thread; all state is in the thread-safe modules.
 * Errors: 0 or a negative errno.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "fs/mount/mount_int.h"

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
int mount_node_attr(struct mnt *m, const struct inode *n, struct stat *st,
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

int mount_reply_errno(fuse_req_t req, int ret)
{
	if (ret == -ENOENT || ret == -ENOTDIR || ret == -EROFS ||
	    ret == -ENOMEM || ret == -ENAMETOOLONG || ret == -EISDIR)
		return fuse_reply_err(req, -ret);
	/* a version whose .meta signature does not verify: refused */
	if (ret == -EBADMSG)
		return fuse_reply_err(req, EACCES);
	/* the store failed us (or sent garbage): counted like a read */
	stats_inc(mnt_of(req)->stats, STAT_ERRORS);
	return fuse_reply_err(req, EIO);
}

/* ---- resolving a child ---- */

int mount_path_join(char *buf, size_t len, const char *a, const char *b)
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
int mount_resolve_child(struct mnt *m, const struct inode *p,
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
		ret = mount_path_join(full, sizeof(full), p->name, comp);
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
			if (ret < 0 && catalog_err_unreachable(ret))
				log_warn("%s:%s: store unreachable and its "
					 ".meta is not cached: EIO",
					 p->name, comp);
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
		ret = mount_path_join(full, sizeof(full), p->relpath, comp);
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

void mount_dent_clear(struct dent *d)
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
int mount_make_entry(struct mnt *m, uint64_t parent, const struct dent *d,
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
	ret = mount_node_attr(m, n, &e->attr, &t);
	if (ret < 0) {
		inode_forget(m->it, n->ino, 1);
		return ret;
	}
	e->ino = n->ino;
	e->attr_timeout = t;
	e->entry_timeout = t;
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

void mount_tune_once(struct mnt *m)
{
	if (atomic_load(&m->tuned) || atomic_exchange(&m->tuned, true))
		return;
	set_readahead(m->mountpoint, m->readahead_kb);
}

