/*
 * mount_file - open files, reads and xattrs of the mount.
 *
 * Reads reply from read-only mappings of the cache's block files
 * (fuse_reply_iov), so the only copy of the bytes is the kernel's, from
 * the page cache into the FUSE request: no pread into our buffers. (fd
 * buffers with splice looked cheaper, but libfuse falls back to malloc +
 * pread + writev whenever its pipe cannot hold a whole reply, which is
 * the usual case for 1 MiB reads; that cost two copies and fresh pages.)
 * Block files never change once published and are never truncated, so a
 * mapping stays valid even after eviction unlinks the file. An open file
 * keeps the mappings of its last few blocks (struct fh slots) and its
 * read-ahead position.
 *
 * Threads: reads of one open file may run at once on several workers: a
 * handle's slots and read-ahead position are under its mutex, and its
 * refcount keeps it alive until the last read has closed its fds.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "fs/mount/mount.h"
#include "fs/mount/mount_int.h"

#define FH_SLOTS 4
#define XATTR_MAX 4096

struct fh_slot {
	uint64_t index;
	const char *map; /* NULL: empty; else a mapping of map_len bytes */
	size_t map_len;
	bool heap; /* map is a malloc'd copy (mmap failed), not a mapping */
	int refs;
};

/* A block's mapping held by a read: in slot @slot, or owned when -1. */
struct blk_map {
	const char *p;
	size_t len;
	bool heap;
	int slot;
};

static void unmap_block(const char *p, size_t len, bool heap)
{
	if (heap)
		free((void *)p);
	else
		munmap((void *)p, len);
}

/* An open file. */
struct fh {
	struct mnt_handle link; /* first: registered while open */
	struct cat_version *cv; /* reference */
	uint32_t node;
	struct fetch_obj obj;
	char key[STORE_KEY_MAX];
	atomic_int refs; /* the open file + reads still cleaning up */
	pthread_mutex_t lock;
	uint64_t next_off;		/* protected by lock */
	uint64_t ra_next;		/* protected by lock */
	uint64_t ra_win;		/* protected by lock: blocks ahead */
	uint64_t ra_grow_at;		/* protected by lock */
	struct fh_slot slot[FH_SLOTS];	/* protected by lock */
};

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
		if (h->slot[i].map)
			unmap_block(h->slot[i].map, h->slot[i].map_len,
				    h->slot[i].heap);
	cat_version_unref(h->cv);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/*
 * A handle for the file node @n into *@out: the version's catalog entry
 * and the object to fetch. Returns 0, -EISDIR or an error.
 */
static int fh_build(struct mnt *m, const struct inode *n, struct fh **out)
{
	const struct cat_node *cn;
	struct fh *h;
	int ret, k;

	*out = NULL;
	if (n->kind != INODE_VFILE && n->kind != INODE_FILE)
		return -EISDIR;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	atomic_init(&h->refs, 1);
	pthread_mutex_init(&h->lock, NULL);
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
	*out = h;
	return 0;
fail:
	fh_free(h);
	return ret;
}

void mount_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnt *m = mnt_of(req);
	const struct inode *n = inode_get(m->it, ino);
	struct fh *h = NULL;
	int ret;

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
	ret = fh_build(m, n, &h);
	if (ret == -EISDIR) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (ret < 0) {
		mount_reply_errno(req, ret);
		return;
	}
	fi->fh = mnt_handle_add(m, &h->link, ino, false);
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) != 0) {
		mnt_handle_del(m, &h->link);
		fh_free(h);
	}
}

/*
 * The open file @id of inode @ino, with a reference for the caller. A
 * number this worker does not know was handed out by a predecessor (a
 * crash or a takeover in between): the handle is rebuilt from the inode.
 */
static int fh_get(struct mnt *m, fuse_ino_t ino, uint64_t id, struct fh **out)
{
	struct mnt_handle *l = mnt_handle_get(m, id, false);
	const struct inode *n;
	struct fh *h = NULL;
	int ret;

	if (!l) {
		n = inode_get(m->it, ino);
		if (!n)
			return -ENOENT;
		ret = fh_build(m, n, &h);
		if (ret < 0)
			return ret;
		l = mnt_handle_adopt(m, &h->link, id, ino, false);
		if (l != &h->link)
			fh_free(h);
	}
	h = (struct fh *)(void *)l;
	atomic_fetch_add(&h->refs, 1);
	*out = h;
	return 0;
}

/*
 * Map block file @fd read-only, at most @len bytes (*@len becomes the
 * mapped length: a file shorter than expected is mapped as it is, so no
 * access past its end can fault); closes @fd. When mmap fails (the
 * process is out of mappings: vm.max_map_count), the block is read into
 * a heap copy instead and *@heap set.
 */
static int map_block(int fd, uint64_t *len, const char **out, bool *heap)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t n;
	void *p;
	int ret = 0;

	*heap = false;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size < *len)
		*len = (uint64_t)st.st_size;
	if (*len == 0 || *len > SIZE_MAX) {
		ret = -EIO;
		goto out;
	}
	p = mmap(NULL, (size_t)*len, PROT_READ, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		*out = p;
		goto out;
	}
	buf = malloc((size_t)*len);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (got < *len) {
		n = pread(fd, buf + got, (size_t)*len - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			free(buf);
			goto out;
		}
		got += (size_t)n;
	}
	*out = buf;
	*heap = true;
out:
	close(fd);
	return ret;
}

/*
 * Block @b's mapping from the handle's slots into @bm, one more reference
 * on it. Returns 0, or -ENOENT when no slot holds it. Called with
 * h->lock held.
 */
static int slot_take(struct fh *h, uint64_t b, struct blk_map *bm)
{
	int i;

	for (i = 0; i < FH_SLOTS; i++) {
		if (h->slot[i].map && h->slot[i].index == b) {
			h->slot[i].refs++;
			bm->p = h->slot[i].map;
			bm->len = h->slot[i].map_len;
			bm->heap = h->slot[i].heap;
			bm->slot = i;
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * A mapping of block @b into @bm: from the handle's slots or freshly
 * mapped (then kept in a free slot). Release with fh_put_map().
 */
static int fh_block_map(struct mnt *m, struct fh *h, uint64_t b,
			struct blk_map *bm)
{
	const char *p = NULL;
	bool heap = false;
	uint64_t len;
	int i, ret, nfd = -1;

	pthread_mutex_lock(&h->lock);
	ret = slot_take(h, b, bm);
	pthread_mutex_unlock(&h->lock);
	if (ret == 0) {
		stats_inc(m->stats, STAT_BLOCK_HITS);
		return 0;
	}
	ret = fetcher_block(m->fe, &h->obj, b, &nfd, &len);
	if (ret < 0)
		return ret;
	ret = map_block(nfd, &len, &p, &heap);
	if (ret < 0)
		return ret;
	bm->p = p;
	bm->len = (size_t)len;
	bm->heap = heap;
	bm->slot = -1;
	pthread_mutex_lock(&h->lock);
	if (slot_take(h, b, bm) == 0) {
		/* another read mapped it meanwhile: share that one */
		pthread_mutex_unlock(&h->lock);
		unmap_block(p, (size_t)len, heap);
		return 0;
	}
	for (i = 0; i < FH_SLOTS; i++) {
		if (h->slot[i].refs == 0) {
			if (h->slot[i].map)
				unmap_block(h->slot[i].map,
					    h->slot[i].map_len,
					    h->slot[i].heap);
			h->slot[i].map = p;
			h->slot[i].map_len = (size_t)len;
			h->slot[i].heap = heap;
			h->slot[i].index = b;
			h->slot[i].refs = 1;
			bm->slot = i;
			break;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static void fh_put_map(struct fh *h, const struct blk_map *bm)
{
	if (bm->slot < 0) {
		unmap_block(bm->p, bm->len, bm->heap);
		return;
	}
	pthread_mutex_lock(&h->lock);
	h->slot[bm->slot].refs--;
	pthread_mutex_unlock(&h->lock);
}

/*
 * Read-ahead for a sequential reader. The window starts at
 * MOUNT_RA_START blocks and doubles, up to m->readahead, each time the
 * reader has gone through a whole window: a reader that stops early costs
 * little, one that streams a large file keeps many GETs in flight, and
 * the blocks that arrive together share the cache's hashing passes. A seek
 * starts the window over. The kernel's own read-ahead sends a sequential
 * reader's reads several at a time, answered by different threads in any
 * order: a read counts as sequential when it starts within
 * MOUNT_RA_NEAR bytes of the furthest end read so far.
 */
static void maybe_readahead(struct mnt *m, struct fh *h, uint64_t off,
			    uint64_t end, uint64_t last_block)
{
	uint64_t from, to, max = (uint64_t)m->readahead;
	bool seq;

	if (m->readahead <= 0)
		return;
	pthread_mutex_lock(&h->lock);
	seq = off == 0 || (off + MOUNT_RA_NEAR >= h->next_off &&
			   off <= h->next_off + MOUNT_RA_NEAR);
	if (end > h->next_off || !seq)
		h->next_off = end;
	if (!seq || h->ra_win == 0) {
		h->ra_win = max < MOUNT_RA_START ? max : MOUNT_RA_START;
		h->ra_grow_at = last_block + h->ra_win;
		h->ra_next = 0; /* a seek back must not wait for the old mark */
	} else if (last_block >= h->ra_grow_at && h->ra_win < max) {
		h->ra_win = h->ra_win * 2 < max ? h->ra_win * 2 : max;
		h->ra_grow_at = last_block + h->ra_win;
	}
	from = last_block + 1;
	if (from < h->ra_next)
		from = h->ra_next;
	to = last_block + 1 + h->ra_win;
	if (seq && from < to)
		h->ra_next = to;
	pthread_mutex_unlock(&h->lock);
	if (seq && from < to)
		fetcher_readahead(m->fe, &h->obj, from, to - from);
}

void mount_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct mnt *m = mnt_of(req);
	struct fh *h = NULL;
	uint64_t bs, end, b0, b1, b, nb;
	struct blk_map maps[64];
	struct iovec iov[64];
	size_t k = 0, i;
	int ret = 0;

	stats_inc(m->stats, STAT_READS);
	ret = fh_get(m, ino, fi->fh, &h);
	if (ret < 0) {
		mount_reply_errno(req, ret);
		return;
	}
	bs = h->obj.block_size;
	if (off < 0 || (uint64_t)off >= h->obj.size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		fh_free(h);
		return;
	}
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
	for (b = b0; b <= b1; b++, k++) {
		uint64_t bstart = b * bs;
		uint64_t from = (uint64_t)off > bstart ? (uint64_t)off : bstart;
		uint64_t to = end < bstart + bs ? end : bstart + bs;

		ret = fh_block_map(m, h, b, &maps[k]);
		if (ret < 0)
			break;
		if (to - bstart > maps[k].len) {
			/* the block file is shorter than the object says */
			k++;
			ret = -EIO;
			break;
		}
		iov[k].iov_base = (void *)(maps[k].p + (from - bstart));
		iov[k].iov_len = (size_t)(to - from);
	}
	if (ret < 0) {
		fuse_reply_err(req, EIO);
	} else {
		stats_add(m->stats, STAT_BYTES_SERVED, end - (uint64_t)off);
		fuse_reply_iov(req, iov, (int)nb);
	}
	for (i = 0; i < k; i++)
		fh_put_map(h, &maps[i]);
	fh_free(h);
}

void mount_op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct mnt *m = mnt_of(req);
	struct mnt_handle *l = mnt_handle_take(m, fi->fh, false);

	/* NULL: opened before a crash or takeover and never read since */
	if (l)
		fh_free((struct fh *)(void *)l);
	fuse_reply_err(req, 0);
}

void mount_file_free_all(struct mnt *m)
{
	struct mnt_handle *l;

	/* no read is left to hold a reference */
	while ((l = mnt_handle_pop(m, false)))
		fh_free((struct fh *)(void *)l);
}

/* ---- xattrs ---- */

static const char *const version_xattrs[] = {
	"user.assetfs.version", "user.assetfs.spec", "user.assetfs.sha256",
	"user.assetfs.push_date", "user.assetfs.cached",
};

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
		stats_pull(m->stats, m->cache, store_prov(m->st));
		ret = stats_format(m->stats, STATS_FMT_TEXT, out);
		return ret < 0 ? ret : buf_printf(out, "version %s\n",
						   ASSETFS_VERSION);
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

void mount_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
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
		mount_reply_errno(req, ret);
	else if (size == 0)
		fuse_reply_xattr(req, out.len);
	else if (size < out.len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, out.data, out.len);
	buf_free(&out);
}

void mount_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
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
