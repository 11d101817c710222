/*
 * file - the file:// backend: a store that is a local directory, with the
 * semantics of an object store.
 *
 * Keys map to paths below the directory (p->bucket). Only regular files
 * are objects; a directory is just the "common prefix" of the keys below
 * it, so HEAD or GET of a directory is -ENOENT, and deleting the last
 * object of a directory removes the empty directories above it. Writes go
 * to a temp file ".<name>.assetfs-tmp.XXXXXX" in the target directory,
 * fsync'd and renamed into place: readers see the old or the new object.
 * Listings skip those temp files. The ETag is derived from inode, size and
 * mtime, so a replaced file gets a new one and If-Match notices.
 *
 * A missing store directory behaves like an unreachable store: every read
 * fails with -EIO ("store directory ... is missing"), never -ENOENT, so a
 * mount does not mistake it for deleted assets. A put creates it.
 *
 * Threads: no shared mutable state; safe concurrently.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileutil.h"
#include "providers/provider_int.h"

#define FILE_TMP_MARK ".assetfs-tmp."
#define FILE_CHUNK (256u << 10)
#define FILE_LIST_DEPTH_MAX 64

static int file_open(struct prov *p)
{
	return 0;
}

static void file_close(struct prov *p)
{
}

/* Fail with -EIO unless the store directory exists. */
static int file_check_root(struct prov *p, const char *op, const char *key)
{
	struct stat st;

	if (stat(p->bucket, &st) < 0 || !S_ISDIR(st.st_mode)) {
		prov_set_error("%s %s: store directory %s is missing", op,
			       *key ? key : "/", p->bucket);
		return -EIO;
	}
	return 0;
}

static int file_path(struct prov *p, const char *key, char *buf, size_t len)
{
	char full[PATH_MAX];
	int n, ret;

	ret = prov_full_key(p, key, full, sizeof(full));
	if (ret < 0)
		return ret;
	n = snprintf(buf, len, "%s/%s", strcmp(p->bucket, "/") ? p->bucket : "",
		     full);
	if (n < 0 || (size_t)n >= len) {
		prov_set_error("key too long: %s", key);
		return -ENAMETOOLONG;
	}
	return 0;
}

static char *file_etag(const struct stat *st)
{
	char tag[96];

	snprintf(tag, sizeof(tag), "%llx-%llx-%llx",
		 (unsigned long long)st->st_ino,
		 (unsigned long long)st->st_size,
		 (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
		     (unsigned long long)st->st_mtim.tv_nsec);
	return strdup(tag);
}

static int file_fill_object(const char *key, const struct stat *st,
			    struct prov_object *out)
{
	out->key = strdup(key);
	out->etag = file_etag(st);
	out->size = (uint64_t)st->st_size;
	out->mtime = st->st_mtim.tv_sec;
	if (!out->key || !out->etag) {
		prov_object_free(out);
		return -ENOMEM;
	}
	return 0;
}

static bool file_is_tmp(const char *name)
{
	return name[0] == '.' && strstr(name, FILE_TMP_MARK) != NULL;
}

struct file_lister {
	struct prov_listing *l;
	size_t cap_obj, cap_pre;
};

static int file_add_object(struct file_lister *fl, const char *key,
			   const struct stat *st)
{
	struct prov_listing *l = fl->l;

	if (l->n_objects == fl->cap_obj) {
		size_t nc = fl->cap_obj ? fl->cap_obj * 2 : 16;
		struct prov_object *o = realloc(l->objects, nc * sizeof(*o));

		if (!o)
			return -ENOMEM;
		l->objects = o;
		fl->cap_obj = nc;
	}
	memset(&l->objects[l->n_objects], 0, sizeof(l->objects[0]));
	if (file_fill_object(key, st, &l->objects[l->n_objects]) < 0)
		return -ENOMEM;
	l->n_objects++;
	return 0;
}

static int file_add_prefix(struct file_lister *fl, const char *pre)
{
	struct prov_listing *l = fl->l;

	if (l->n_prefixes == fl->cap_pre) {
		size_t nc = fl->cap_pre ? fl->cap_pre * 2 : 16;
		char **v = realloc(l->prefixes, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->prefixes = v;
		fl->cap_pre = nc;
	}
	l->prefixes[l->n_prefixes] = strdup(pre);
	if (!l->prefixes[l->n_prefixes])
		return -ENOMEM;
	l->n_prefixes++;
	return 0;
}

/*
 * List directory @dir (path) whose entries have keys "@keypre<name>",
 * keeping names that start with @start. Directories become prefixes when
 * @delimited, else are walked.
 */
static int file_list_dir(struct file_lister *fl, const char *dir,
			 const char *keypre, const char *start, bool delimited,
			 int depth)
{
	char path[PATH_MAX], key[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int ret = 0;

	if (depth > FILE_LIST_DEPTH_MAX) {
		prov_set_error("LIST %s: directories nested too deep", keypre);
		return -ELOOP;
	}
	d = opendir(dir);
	if (!d) {
		ret = -errno;
		if (ret == -ENOENT || ret == -ENOTDIR)
			return 0;
		prov_set_error("LIST %s: %s", keypre, strerror(-ret));
		return ret;
	}
	while ((de = readdir(d))) {
		const char *n = de->d_name;

		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
		    file_is_tmp(n))
			continue;
		if (strncmp(n, start, strlen(start)) != 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, n) >=
			sizeof(path) ||
		    (size_t)snprintf(key, sizeof(key), "%s%s", keypre, n) >=
			sizeof(key))
			continue; /* unreachable by any valid key */
		if (stat(path, &st) < 0)
			continue; /* vanished or dangling: not an object */
		if (S_ISREG(st.st_mode)) {
			ret = file_add_object(fl, key, &st);
		} else if (S_ISDIR(st.st_mode)) {
			size_t kl = strlen(key);

			if (kl + 2 > sizeof(key))
				continue;
			key[kl] = '/';
			key[kl + 1] = '\0';
			if (delimited)
				ret = file_add_prefix(fl, key);
			else
				ret = file_list_dir(fl, path, key, "", false,
						    depth + 1);
		}
		if (ret < 0)
			break;
	}
	closedir(d);
	return ret;
}

static int file_cmp_obj(const void *a, const void *b)
{
	return strcmp(((const struct prov_object *)a)->key,
		      ((const struct prov_object *)b)->key);
}

static int file_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int file_list(struct prov *p, const char *prefix, bool delimited,
		     struct prov_listing *out)
{
	char dir[PATH_MAX], keypre[PATH_MAX];
	struct file_lister fl = {out, 0, 0};
	const char *slash, *start;
	size_t dl;
	int ret;

	ret = file_check_root(p, "LIST", prefix);
	if (ret < 0)
		return ret;
	/* "a/b/c" lists directory "a/b" for names starting with "c". */
	slash = strrchr(prefix, '/');
	dl = slash ? (size_t)(slash - prefix) + 1 : 0;
	start = prefix + dl;
	if (dl >= sizeof(keypre))
		return -ENAMETOOLONG;
	memcpy(keypre, prefix, dl);
	keypre[dl] = '\0';
	if (dl) {
		char rel[PATH_MAX];

		memcpy(rel, prefix, dl - 1);
		rel[dl - 1] = '\0';
		ret = file_path(p, rel, dir, sizeof(dir));
	} else if (*p->prefix) {
		ret = file_path(p, "", dir, sizeof(dir));
	} else if ((size_t)snprintf(dir, sizeof(dir), "%s", p->bucket) >=
		   sizeof(dir)) {
		ret = -ENAMETOOLONG;
	}
	if (ret < 0)
		return ret;
	ret = file_list_dir(&fl, dir, keypre, start, delimited, 0);
	if (ret < 0)
		return ret;
	if (out->n_objects > 1)
		qsort(out->objects, out->n_objects, sizeof(out->objects[0]),
		      file_cmp_obj);
	if (out->n_prefixes > 1)
		qsort(out->prefixes, out->n_prefixes, sizeof(out->prefixes[0]),
		      file_cmp_str);
	return 0;
}

static int file_head(struct prov *p, const char *key, struct prov_object *out)
{
	char path[PATH_MAX];
	struct stat st;
	int ret;

	ret = file_check_root(p, "HEAD", key);
	if (ret < 0)
		return ret;
	ret = file_path(p, key, path, sizeof(path));
	if (ret < 0)
		return ret;
	if (stat(path, &st) < 0)
		ret = (errno == ENOENT || errno == ENOTDIR) ? -ENOENT : -errno;
	else if (!S_ISREG(st.st_mode))
		ret = -ENOENT; /* a directory is a prefix, not an object */
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
	char path[PATH_MAX];
	char *etag = NULL, *chunk = NULL;
	struct stat st;
	uint64_t end, pos;
	int64_t ret;
	int fd = -1;

	ret = file_check_root(p, "GET", key);
	if (ret < 0)
		return ret;
	ret = file_path(p, key, path, sizeof(path));
	if (ret < 0)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = (errno == ENOENT || errno == ENOTDIR) ? -ENOENT : -errno;
		prov_set_error("GET %s: %s", key,
			       ret == -ENOENT ? "no such object"
					      : strerror((int)-ret));
		goto out;
	}
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
 * Create a temp file beside @path for an atomic write. On success *@fd is
 * open for writing and @tmp holds its name.
 */
static int file_tmp_open(const char *key, const char *path, char *tmp,
			 size_t len, int *fd)
{
	char dir[PATH_MAX];
	const char *base;
	size_t dl;
	int n, ret;

	base = strrchr(path, '/');
	dl = (size_t)(base - path);
	base++;
	if (dl >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, dl);
	dir[dl] = '\0';
	ret = mkdir_p(dl ? dir : "/", 0755);
	if (ret < 0) {
		prov_set_error("PUT %s: cannot create %s: %s", key, dir,
			       strerror(-ret));
		return ret;
	}
	/* Keep the temp name within NAME_MAX whatever the base. */
	n = snprintf(tmp, len, "%s/.%.180s" FILE_TMP_MARK "XXXXXX", dir, base);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	*fd = mkostemp(tmp, O_CLOEXEC);
	if (*fd < 0) {
		ret = -errno;
		prov_set_error("PUT %s: %s", key, strerror(-ret));
		return ret;
	}
	return 0;
}

/* fsync, chmod and rename @tmp (open as @fd, which is closed) to @path. */
static int file_tmp_commit(const char *key, int fd, const char *tmp,
			   const char *path)
{
	struct stat st;
	int ret = 0;

	if (fchmod(fd, 0644) < 0 || fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		ret = -EISDIR; /* rename would replace an empty dir */
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0) {
		prov_set_error("PUT %s: %s", key, strerror(-ret));
		unlink(tmp);
	}
	return ret;
}

static int file_put_buf(struct prov *p, const char *key, const void *data,
			size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd = -1, ret;

	ret = file_path(p, key, path, sizeof(path));
	if (ret < 0)
		return ret;
	ret = file_tmp_open(key, path, tmp, sizeof(tmp), &fd);
	if (ret < 0)
		return ret;
	ret = write_all(fd, data, len);
	if (ret < 0) {
		prov_set_error("PUT %s: %s", key, strerror(-ret));
		close(fd);
		unlink(tmp);
		return ret;
	}
	return file_tmp_commit(key, fd, tmp, path);
}

static int file_put_file(struct prov *p, const char *key, int src,
			 uint64_t size, prov_progress_fn progress, void *arg)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	char *chunk = NULL;
	uint64_t pos = 0;
	int fd = -1, ret;

	ret = file_path(p, key, path, sizeof(path));
	if (ret < 0)
		return ret;
	chunk = malloc(FILE_CHUNK);
	if (!chunk)
		return -ENOMEM;
	ret = file_tmp_open(key, path, tmp, sizeof(tmp), &fd);
	if (ret < 0)
		goto out;
	while (pos < size) {
		size_t want = size - pos < FILE_CHUNK ? size - pos : FILE_CHUNK;
		ssize_t n = pread_all(src, chunk, want, (off_t)pos);

		if (n >= 0 && (size_t)n < want)
			n = -EIO; /* the source shrank under us */
		if (n < 0) {
			ret = (int)n;
			prov_set_error("PUT %s: reading the source: %s", key,
				       strerror(-ret));
			goto fail;
		}
		ret = write_all(fd, chunk, want);
		if (ret < 0) {
			prov_set_error("PUT %s: %s", key, strerror(-ret));
			goto fail;
		}
		pos += want;
		if (progress)
			progress(arg, pos, size);
	}
	ret = file_tmp_commit(key, fd, tmp, path);
	goto out;
fail:
	close(fd);
	unlink(tmp);
out:
	free(chunk);
	return ret;
}

static int file_del(struct prov *p, const char *key)
{
	char path[PATH_MAX];
	char *slash;
	size_t rootlen;
	int ret;

	ret = file_check_root(p, "DELETE", key);
	if (ret < 0)
		return ret;
	ret = file_path(p, key, path, sizeof(path));
	if (ret < 0)
		return ret;
	if (unlink(path) < 0 && errno != ENOENT) {
		ret = -errno;
		if (ret == -EISDIR || ret == -EPERM)
			return 0; /* a directory is not an object */
		prov_set_error("DELETE %s: %s", key, strerror(-ret));
		return ret;
	}
	/* Remove directories left empty, up to (not including) the root. */
	rootlen = strlen(p->bucket);
	while ((slash = strrchr(path, '/')) &&
	       (size_t)(slash - path) > rootlen) {
		*slash = '\0';
		if (rmdir(path) < 0)
			break;
	}
	return 0;
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
};
