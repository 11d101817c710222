/*
 * mount_dir - directories of the mount: listings taken whole at
 * opendir (so offsets stay stable while the catalog refreshes) and
 * served by readdir and readdirplus (which hands the kernel entries, and
 * so counts lookups, like lookup does).
 *
 * Threads: any worker thread; a dir handle belongs to one open dir.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "fs/mount/mount_int.h"

struct dirh {
	struct mnt_handle link; /* first: registered while open */
	struct dent *e;
	size_t n;
	/* An asset dir's entries borrow their strings from @vs (a
	   reference) and @name (owned): 48 bytes an entry, not 200, for a
	   list of 100,000 versions. NULL for other dirs. */
	struct cat_versions *vs;
	char *name;
};

/* ---- directories ---- */

static void dirh_free(struct dirh *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->n && !h->vs; i++)
		mount_dent_clear(&h->e[i]);
	free(h->e);
	cat_versions_unref(h->vs);
	free(h->name);
	free(h);
}

/* Room for one more entry, zeroed. NULL on out of memory. */
static struct dent *dirh_next(struct dirh *h, size_t *cap)
{
	struct dent *d;

	if (h->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;

		d = realloc(h->e, ncap * sizeof(*d));
		if (!d)
			return NULL;
		h->e = d;
		*cap = ncap;
	}
	d = &h->e[h->n];
	memset(d, 0, sizeof(*d));
	return d;
}

/* An entry of an asset dir: strings borrowed (see struct dirh). */
static int dirh_add_version(struct dirh *h, size_t *cap, const char *comp,
			    enum inode_kind kind, bool unknown)
{
	struct dent *d = dirh_next(h, cap);

	if (!d)
		return -ENOMEM;
	d->comp = (char *)comp;
	d->kind = kind;
	d->name = h->name;
	d->version = (char *)comp;
	d->relpath = kind == INODE_ALIAS ? NULL : (char *)"";
	d->unknown = unknown;
	h->n++;
	return 0;
}

static int dirh_add(struct dirh *h, size_t *cap, const char *comp,
		    enum inode_kind kind, const char *name,
		    const char *version, const char *relpath)
{
	struct dent *d = dirh_next(h, cap);

	if (!d)
		return -ENOMEM;
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

		if (mount_path_join(full, sizeof(full), n->name,
				    l->assets[i]) < 0)
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
		if (dup || mount_path_join(full, sizeof(full), n->name,
				l->namespaces[i]) < 0)
			continue;
		ret = dirh_add(h, cap, l->namespaces[i], INODE_NS, full, NULL,
			       NULL);
	}
	cat_level_unref(l);
	return ret;
}

/*
 * An asset dir: every version of the version list (the last known one
 * when the store is away) and the aliases. The `.meta` of a bounded
 * number of versions is fetched for the listing
 * (catalog_prefetch_versions()): those get their type, and one whose
 * .meta is bad is skipped (logged once). The others are listed with no
 * type (DT_UNKNOWN; readdirplus hands no attributes for them), and a
 * lookup, which `ls` without -l or --color never makes, fetches their
 * .meta then: `ls` of 100,000 versions costs a few hundred requests, and
 * `ls -l` what it asks for. One whose .meta cannot be had now (store
 * away, not cached) is likewise listed with no type and fails EIO when
 * looked up. An alias is listed only if its target is, so the two always
 * agree.
 */
static int list_asset(struct mnt *m, const struct inode *n, struct dirh *h,
		      size_t *cap)
{
	struct cat_versions *vs = NULL;
	bool *shown = NULL;
	size_t i;
	int ret;

	ret = catalog_versions(m->cat, n->name, &vs);
	if (ret < 0)
		return ret;
	h->vs = vs;
	h->name = strdup(n->name);
	shown = calloc(vs->list.n + 1, sizeof(*shown));
	if (!shown || !h->name)
		return -ENOMEM;
	catalog_prefetch_versions(m->cat, n->name, vs);
	for (i = vs->list.n; i-- > 0 && ret == 0;) {
		struct cat_version *cv = NULL;
		enum inode_kind kind = INODE_VFILE;
		int r;

		r = catalog_version_peek(m->cat, n->name, vs->list.v[i], &cv);
		if (r == -ENOMEM) {
			ret = r;
			break;
		}
		if (r < 0 && r != -EAGAIN && !catalog_err_unreachable(r))
			continue; /* a bad .meta: skipped */
		if (r == 0)
			kind = cv->nodes[0].is_dir ? INODE_VDIR : INODE_VFILE;
		cat_version_unref(cv);
		ret = dirh_add_version(h, cap, vs->list.v[i], kind, r < 0);
		if (ret == 0)
			shown[i] = true;
	}
	for (i = 0; i < vs->n_aliases && ret == 0; i++)
		if (shown[vs->alias_index[i]])
			ret = dirh_add_version(h, cap, vs->alias_names[i],
					       INODE_ALIAS, false);
	free(shown);
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

/* The listing of dir @n, taken whole, into *@out. */
static int dirh_build(struct mnt *m, const struct inode *n,
		      struct dirh **out)
{
	struct dirh *h;
	size_t cap = 0;
	int ret;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
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
		return ret;
	}
	*out = h;
	return 0;
}

void mount_op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct mnt *m = mnt_of(req);
	const struct inode *n = inode_get(m->it, ino);
	struct dirh *h;
	int ret;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	ret = dirh_build(m, n, &h);
	if (ret < 0) {
		mount_reply_errno(req, ret);
		return;
	}
	fi->fh = mnt_handle_add(m, &h->link, ino, true);
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) != 0) {
		mnt_handle_del(m, &h->link);
		dirh_free(h);
	}
}

/*
 * Open dir @id of @ino: a number a predecessor handed out (crash or
 * takeover in between) gets a fresh listing.
 */
static int dirh_get(struct mnt *m, const struct inode *n, uint64_t id,
		    struct dirh **out)
{
	struct mnt_handle *l = mnt_handle_get(m, id, true);
	struct dirh *h;
	int ret;

	if (!l) {
		ret = dirh_build(m, n, &h);
		if (ret < 0)
			return ret;
		l = mnt_handle_adopt(m, &h->link, id, n->ino, true);
		if (l != &h->link)
			dirh_free(h);
	}
	*out = (struct dirh *)(void *)l;
	return 0;
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
	struct dirh *h = NULL;
	const struct inode *self = inode_get(m->it, ino);
	char *buf;
	size_t used = 0;
	off_t i;
	int ret;

	if (!self) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	ret = dirh_get(m, self, fi->fh, &h);
	if (ret < 0) {
		mount_reply_errno(req, ret);
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
		} else {
			const struct dent *d = &h->e[i - 2];

			nm = d->comp;
			if (plus && !d->unknown) {
				if (mount_make_entry(m, ino, d, &e) < 0)
					continue; /* vanished: skip */
			} else {
				/* readdirplus: ino 0 = a name without
				   attributes; the lookup decides */
				e.attr.st_ino = (ino_t)(digest_xxh3(
					d->comp, strlen(d->comp)) | 1);
				e.attr.st_mode = d->unknown ? 0 :
							      dtype(d->kind);
			}
		}
		len = plus ? fuse_add_direntry_plus(req, buf + used,
						    size - used, nm, &e,
						    i + 1) :
			     fuse_add_direntry(req, buf + used, size - used,
					       nm, &e.attr, i + 1);
		/* no room: the entry made for it is not handed out */
		if (len > size - used && plus && e.ino)
			inode_forget(m->it, e.ino, 1);
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

void mount_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

void mount_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

void mount_op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct mnt_handle *l = mnt_handle_take(mnt_of(req), fi->fh, true);

	dirh_free((struct dirh *)(void *)l); /* NULL: never listed here */
	fuse_reply_err(req, 0);
}

void mount_dir_free_all(struct mnt *m)
{
	struct mnt_handle *l;

	while ((l = mnt_handle_pop(m, true)))
		dirh_free((struct dirh *)(void *)l);
}
