/*
 * file - the file:// backend: a store that is a local directory, with the
 * semantics of an object store.
 *
 * Keys map to paths below the directory (p->bucket, the store root). Only
 * regular files are objects; a directory is just the "common prefix" of
 * the keys below it, so HEAD or GET of a directory is -ENOENT, and
 * deleting the last object of a directory removes the empty directories
 * above it. Writes go to a temp file ".<name>.assetfs-tmp.<hex>" in the
 * target directory, fsync'd and renamed into place: readers see the old
 * or the new object. Listings skip those temp files. The ETag is derived
 * from inode, size and mtime, so a replaced file gets a new one and
 * If-Match notices.
 *
 * Nothing outside the root ever shows (DESIGN §4): every path is opened
 * beneath a descriptor of the root (file_beneath.h), so a symlink in the
 * store is followed only while it stays inside. One that leaves (or
 * loops) is a missing object, a directory that is not there, or an entry
 * a listing leaves out, with one log line per key (a small per-store
 * memory keeps a key from being logged again at every refresh). A
 * recursive listing does not descend into symlinked directories (they
 * could nest without end); a delimited one shows those that stay inside
 * as prefixes. Writes never go through a symlink that leaves: directories
 * are created beneath the root and the rename replaces a link itself.
 *
 * A missing store directory behaves like an unreachable store: every read
 * fails with -EIO ("store directory ... is missing"), never -ENOENT, so a
 * mount does not mistake it for deleted assets. prepare_put creates it
 * when its parent exists (a push into a new prefix).
 *
 * Threads: the log memory is protected by its lock; otherwise no shared
 * mutable state; safe concurrently.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fileutil.h"
#include "providers/file_beneath.h"
#include "providers/file_int.h"

#define FILE_CHUNK (256u << 10)
static int file_open(struct prov *p)
{
	struct file_priv *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	p->priv = f;
	return 0;
}

static void file_close(struct prov *p)
{
	struct file_priv *f = p->priv;

	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f);
	p->priv = NULL;
}

/*
 * Open @key beneath the root with @flags. Returns a descriptor or a
 * negative errno with the message set (-ENOENT for a missing object or
 * one behind a symlink that leaves). Closes nothing of the caller's.
 */
static int file_open_key(struct prov *p, int rootfd, const char *op,
			 const char *key, int flags)
{
	char rel[PATH_MAX];
	int fd;

	fd = file_rel(p, key, rel, sizeof(rel));
	if (fd < 0)
		return fd;
	fd = fb_open(rootfd, rel, flags);
	if (fd >= 0)
		return fd;
	if (fd == -ENOTDIR)
		fd = -ENOENT;
	fd = file_escaped(p, op, key, fd);
	if (fd == -ENOENT && !strstr(prov_last_error(), "symlink"))
		prov_set_error("%s %s: no such object", op, key);
	else if (fd != -ENOENT)
		prov_set_error("%s %s: %s", op, key, strerror(-fd));
	return fd;
}

static int file_head(struct prov *p, const char *key, struct prov_object *out)
{
	struct stat st;
	int rootfd, fd, ret = 0;

	rootfd = file_root(p, "HEAD", key);
	if (rootfd < 0)
		return rootfd;
	fd = file_open_key(p, rootfd, "HEAD", key, O_PATH);
	close(rootfd);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		ret = -errno;
	else if (!S_ISREG(st.st_mode))
		ret = -ENOENT; /* a directory is a prefix, not an object */
	close(fd);
	if (ret < 0) {
		prov_set_error("HEAD %s: %s", key,
			       ret == -ENOENT ? "no such object"
					      : strerror(-ret));
		return ret;
	}
	return file_fill_object(key, &st, out);
}

static int64_t file_get(struct prov *p, const char *key, uint64_t off,
			uint64_t len, const char *if_match, prov_sink_fn sink,
			void *arg)
{
	char *etag = NULL, *chunk = NULL;
	struct stat st;
	uint64_t end, pos;
	int64_t ret;
	int rootfd, fd;

	rootfd = file_root(p, "GET", key);
	if (rootfd < 0)
		return rootfd;
	/* O_NONBLOCK: a FIFO in the store must not hang the open */
	fd = file_open_key(p, rootfd, "GET", key, O_RDONLY | O_NONBLOCK);
	close(rootfd);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		prov_set_error("GET %s: %s", key, strerror((int)-ret));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -ENOENT;
		prov_set_error("GET %s: no such object", key);
		goto out;
	}
	if (if_match) {
		etag = file_etag(&st);
		if (!etag) {
			ret = -ENOMEM;
			goto out;
		}
		if (strcmp(etag, if_match) != 0) {
			ret = -ESTALE;
			prov_set_error("GET %s: the object changed (ETag %s, "
				       "expected %s)",
				       key, etag, if_match);
			goto out;
		}
	}
	if (off > (uint64_t)st.st_size ||
	    (len != PROV_WHOLE && len > (uint64_t)st.st_size - off)) {
		ret = -EINVAL;
		prov_set_error("GET %s: range past the end (%llu bytes)", key,
			       (unsigned long long)st.st_size);
		goto out;
	}
	end = len == PROV_WHOLE ? (uint64_t)st.st_size : off + len;
	chunk = malloc(FILE_CHUNK);
	if (!chunk) {
		ret = -ENOMEM;
		goto out;
	}
	for (pos = off; pos < end;) {
		size_t want = end - pos < FILE_CHUNK ? end - pos : FILE_CHUNK;
		ssize_t n = pread_all(fd, chunk, want, (off_t)pos);

		if (n < 0) {
			ret = n;
			prov_set_error("GET %s: %s", key, strerror((int)-n));
			goto out;
		}
		if ((size_t)n < want) {
			ret = -EIO;
			prov_set_error("GET %s: truncated while reading", key);
			goto out;
		}
		ret = sink(arg, chunk, (size_t)n);
		if (ret < 0)
			goto out;
		pos += (uint64_t)n;
	}
	ret = (int64_t)(end - off);
out:
	free(chunk);
	free(etag);
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * The directory of @key's parent, created beneath the root as needed
 * (never through a link that leaves). Returns an O_PATH descriptor and
 * points *@base at the key's last component, or a negative errno with
 * the message set.
 */
static int file_put_dir(struct prov *p, int rootfd, const char *key,
			const char **base)
{
	char rel[PATH_MAX];
	char *slash, *s;
	int fd, parent = -1, ret;

	ret = file_rel(p, key, rel, sizeof(rel));
	if (ret < 0)
		return ret;
	slash = strrchr(rel, '/');
	*base = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
	if (!slash)
		return fb_open(rootfd, "", O_PATH | O_DIRECTORY);
	*slash = '\0';
	fd = fb_open(rootfd, rel, O_PATH | O_DIRECTORY);
	/* Create what is missing, one component at a time, each beneath. */
	for (s = rel; fd == -ENOENT && s;) {
		char *next = strchr(s, '/');

		if (next)
			*next = '\0';
		fd = fb_open(rootfd, rel, O_PATH | O_DIRECTORY);
		if (fd == -ENOENT) {
			const char *comp = strrchr(rel, '/');

			comp = comp ? comp + 1 : rel;
			if (mkdirat(parent >= 0 ? parent : rootfd, comp,
				    0755) < 0 &&
			    errno != EEXIST) {
				fd = -errno;
			} else {
				fd = fb_open(rootfd, rel, O_PATH | O_DIRECTORY);
			}
		}
		if (next)
			*next = '/';
		if (parent >= 0)
			close(parent);
		parent = -1;
		if (fd < 0 || !next)
			break;
		parent = fd;
		fd = -ENOENT;
		s = next + 1;
	}
	if (parent >= 0)
		close(parent);
	if (fd < 0) {
		ret = file_escaped(p, "PUT", key, fd);
		prov_set_error("PUT %s: cannot create its directory: %s", key,
			       ret == -ENOENT && fd != -ENOENT
				   ? "a symlink on the way leaves the store"
				   : strerror(-fd));
		return fd == -EXDEV || fd == -ELOOP ? -EACCES : fd;
	}
	return fd;
}

/*
 * Create a temp file in @dirfd beside @base for an atomic write. On
 * success *@fd is open for writing and @tmp holds its name.
 */
static int file_tmp_open(const char *key, int dirfd, const char *base,
			 char *tmp, size_t len, int *fd)
{
	int ret = -EEXIST;

	for (int i = 0; i < 100 && ret == -EEXIST; i++) {
		uint64_t r = 0;
		int n;

		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
			r = (uint64_t)time(NULL) * 2654435761u ^
			    (uint64_t)getpid() << 20 ^ (uint64_t)i;
		/* Keep the temp name within NAME_MAX whatever the base. */
		n = snprintf(tmp, len, ".%.180s" FILE_TMP_MARK "%012llx", base,
			     (unsigned long long)(r & 0xffffffffffffull));
		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
		*fd = openat(dirfd, tmp,
			     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				 O_CLOEXEC,
			     0600);
		ret = *fd < 0 ? -errno : 0;
	}
	if (ret < 0)
		prov_set_error("PUT %s: %s", key, strerror(-ret));
	return ret;
}

/* fsync, chmod and rename @tmp (open as @fd, closed) to @base in @dirfd. */
static int file_tmp_commit(const char *key, int fd, int dirfd,
			   const char *tmp, const char *base)
{
	struct stat st;
	int ret = 0;

	if (fchmod(fd, 0644) < 0 || fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode))
		ret = -EISDIR; /* rename would replace an empty dir */
	/* a symlink at @base is replaced, never written through */
	if (ret == 0 && renameat(dirfd, tmp, dirfd, base) < 0)
		ret = -errno;
	if (ret < 0) {
		prov_set_error("PUT %s: %s", key, strerror(-ret));
		unlinkat(dirfd, tmp, 0);
	}
	return ret;
}

/*
 * Write @key: @len bytes at @data, or (@src >= 0) @size bytes read from
 * @src, reporting to @progress. The temp file, then the rename.
 */
static int file_put(struct prov *p, const char *key, const void *data,
		    size_t len, int src, uint64_t size,
		    prov_progress_fn progress, void *arg)
{
	char tmp[NAME_MAX + 1];
	char *chunk = NULL;
	const char *base;
	uint64_t pos = 0;
	int rootfd, dirfd = -1, fd = -1, ret;

	rootfd = file_root(p, "PUT", key);
	if (rootfd < 0)
		return rootfd;
	dirfd = file_put_dir(p, rootfd, key, &base);
	if (dirfd < 0) {
		ret = dirfd;
		goto out;
	}
	if (src >= 0) {
		chunk = malloc(FILE_CHUNK);
		if (!chunk) {
			ret = -ENOMEM;
			goto out;
		}
	}
	ret = file_tmp_open(key, dirfd, base, tmp, sizeof(tmp), &fd);
	if (ret < 0)
		goto out;
	if (src < 0) {
		ret = write_all(fd, data, len);
		if (ret < 0)
			goto fail;
	}
	while (src >= 0 && pos < size) {
		size_t want = size - pos < FILE_CHUNK ? size - pos : FILE_CHUNK;
		ssize_t n = pread_all(src, chunk, want, (off_t)pos);

		if (n >= 0 && (size_t)n < want)
			n = -EIO; /* the source shrank under us */
		if (n < 0) {
			ret = (int)n;
			prov_set_error("PUT %s: reading the source: %s", key,
				       strerror(-ret));
			goto fail_msg;
		}
		ret = write_all(fd, chunk, want);
		if (ret < 0)
			goto fail;
		pos += want;
		if (progress)
			progress(arg, pos, size);
	}
	ret = file_tmp_commit(key, fd, dirfd, tmp, base);
	goto out;
fail:
	prov_set_error("PUT %s: %s", key, strerror(-ret));
fail_msg:
	close(fd);
	unlinkat(dirfd, tmp, 0);
out:
	free(chunk);
	if (dirfd >= 0)
		close(dirfd);
	close(rootfd);
	return ret;
}

static int file_put_buf(struct prov *p, const char *key, const void *data,
			size_t len)
{
	return file_put(p, key, data, len, -1, 0, NULL, NULL);
}

static int file_put_file(struct prov *p, const char *key, int src,
			 uint64_t size, prov_progress_fn progress, void *arg)
{
	return file_put(p, key, NULL, 0, src, size, progress, arg);
}

static int file_del(struct prov *p, const char *key)
{
	char rel[PATH_MAX];
	char *slash;
	int rootfd, dirfd, ret;

	rootfd = file_root(p, "DELETE", key);
	if (rootfd < 0)
		return rootfd;
	ret = file_rel(p, key, rel, sizeof(rel));
	if (ret < 0)
		goto out;
	slash = strrchr(rel, '/');
	if (slash)
		*slash = '\0';
	dirfd = fb_open(rootfd, slash ? rel : "", O_PATH | O_DIRECTORY);
	if (dirfd < 0) {
		/* no directory, or one behind a link that leaves: nothing
		   of the store to delete */
		ret = dirfd == -ENOENT || dirfd == -ENOTDIR
			  ? 0
			  : file_escaped(p, "DELETE", key, dirfd);
		ret = ret == -ENOENT ? 0 : ret;
		goto out;
	}
	if (unlinkat(dirfd, slash ? slash + 1 : rel, 0) < 0 &&
	    errno != ENOENT && errno != EISDIR && errno != EPERM) {
		ret = -errno;
		prov_set_error("DELETE %s: %s", key, strerror(-ret));
	}
	close(dirfd);
	/* Remove directories left empty, up to (not including) the root. */
	while (ret == 0 && slash) {
		const char *comp;

		slash = strrchr(rel, '/');
		if (slash)
			*slash = '\0';
		comp = slash ? slash + 1 : rel;
		dirfd = fb_open(rootfd, slash ? rel : "", O_PATH | O_DIRECTORY);
		if (dirfd < 0)
			break;
		if (unlinkat(dirfd, comp, AT_REMOVEDIR) < 0)
			slash = NULL;
		close(dirfd);
	}
out:
	close(rootfd);
	return ret;
}

/*
 * Before a push: create the store directory when it is missing and its
 * parent exists (a new prefix below an existing directory); a missing
 * parent is an error naming it.
 */
static int file_prepare_put(struct prov *p)
{
	char parent[PATH_MAX];
	char *slash;
	int ret;

	if (mkdir(p->bucket, 0755) == 0 || errno == EEXIST)
		return 0;
	ret = -errno;
	snprintf(parent, sizeof(parent), "%s", p->bucket);
	slash = strrchr(parent, '/');
	if (slash)
		*(slash == parent ? slash + 1 : slash) = '\0';
	if (ret == -ENOENT)
		prov_set_error("cannot create the store directory %s: its "
			       "parent %s does not exist",
			       p->bucket, parent);
	else
		prov_set_error("cannot create the store directory %s: %s",
			       p->bucket, strerror(-ret));
	return ret;
}

const struct prov_ops prov_file_ops = {
    .scheme = "file",
    .can_list = true,
    .can_put = true,
    .open = file_open,
    .close = file_close,
    .list = file_list,
    .head = file_head,
    .get = file_get,
    .put_buf = file_put_buf,
    .put_file = file_put_file,
    .del = file_del,
    .prepare_put = file_prepare_put,
};
