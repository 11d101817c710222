/*
 * file_list - listings of a file:// store (see file.c): a directory read
 * beneath the store root, regular files as objects and directories as
 * prefixes (delimited) or walked (recursive), sorted as provider.h
 * promises.
 *
 * A symlinked entry is resolved beneath the root through its own key, so
 * a link that stays inside shows what it points to, and one that leaves,
 * dangles or loops is left out (the leaving ones logged once). A
 * recursive listing never descends through a symlinked directory: two
 * links to "." would make it exponential. Threads: no shared state.
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

#include "providers/file_beneath.h"
#include "providers/file_int.h"

#define FILE_LIST_DEPTH_MAX 64

struct file_lister {
	struct prov *p;
	int rootfd;
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
 * What entry @name of @dirfd is, with symlinks resolved beneath the root
 * through @key (its key): fills @st, sets *@link. Returns 0, or -ENOENT
 * for what is no object (vanished, dangling, leaving: the last logged).
 */
static int file_entry_stat(struct file_lister *fl, int dirfd,
			   const char *name, const char *key,
			   struct stat *st, bool *link)
{
	char rel[PATH_MAX];
	int fd, ret;

	*link = false;
	if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
		return -ENOENT;
	if (!S_ISLNK(st->st_mode))
		return 0;
	*link = true;
	ret = file_rel(fl->p, key, rel, sizeof(rel));
	if (ret < 0)
		return -ENOENT;
	fd = fb_open(fl->rootfd, rel, O_PATH);
	if (fd < 0) {
		file_escaped(fl->p, "LIST", key, fd);
		return -ENOENT;
	}
	ret = fstat(fd, st) < 0 ? -ENOENT : 0;
	close(fd);
	return ret;
}

/*
 * List directory @dirfd (consumed) whose entries have keys
 * "@keypre<name>", keeping names that start with @start. Directories
 * become prefixes when @delimited, else are walked (not through links).
 */
static int file_list_dir(struct file_lister *fl, int dirfd,
			 const char *keypre, const char *start, bool delimited,
			 int depth)
{
	char key[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int ret = 0;

	if (depth > FILE_LIST_DEPTH_MAX) {
		close(dirfd);
		prov_set_error("LIST %s: directories nested too deep", keypre);
		return -ELOOP;
	}
	d = fdopendir(dirfd);
	if (!d) {
		ret = -errno;
		close(dirfd);
		prov_set_error("LIST %s: %s", keypre, strerror(-ret));
		return ret;
	}
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		bool link;

		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
		    file_is_tmp(n))
			continue;
		if (strncmp(n, start, strlen(start)) != 0)
			continue;
		if ((size_t)snprintf(key, sizeof(key), "%s%s", keypre, n) >=
		    sizeof(key) - 1)
			continue; /* unreachable by any valid key */
		if (file_entry_stat(fl, dirfd, n, key, &st, &link) < 0)
			continue; /* vanished, dangling or leaving */
		if (S_ISREG(st.st_mode)) {
			ret = file_add_object(fl, key, &st);
		} else if (S_ISDIR(st.st_mode)) {
			size_t kl = strlen(key);

			key[kl] = '/';
			key[kl + 1] = '\0';
			if (delimited) {
				ret = file_add_prefix(fl, key);
			} else if (!link) {
				int sub = openat(dirfd, n,
						 O_RDONLY | O_DIRECTORY |
						     O_NOFOLLOW | O_CLOEXEC);

				if (sub >= 0)
					ret = file_list_dir(fl, sub, key, "",
							    false, depth + 1);
			}
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

int file_list(struct prov *p, const char *prefix, bool delimited,
		     struct prov_listing *out)
{
	char keypre[PATH_MAX], dir[PATH_MAX];
	struct file_lister fl = {.p = p, .l = out};
	const char *slash;
	size_t dl;
	int dirfd, ret;

	/* "a/b/c" lists directory "a/b" for names starting with "c". */
	slash = strrchr(prefix, '/');
	dl = slash ? (size_t)(slash - prefix) + 1 : 0;
	if (dl >= sizeof(keypre))
		return -ENAMETOOLONG;
	memcpy(keypre, prefix, dl);
	keypre[dl] = '\0';
	fl.rootfd = file_root(p, "LIST", prefix);
	if (fl.rootfd < 0)
		return fl.rootfd;
	if (dl)
		keypre[dl - 1] = '\0'; /* the directory's key, for a moment */
	ret = file_rel(p, keypre, dir, sizeof(dir));
	if (dl)
		keypre[dl - 1] = '/';
	if (ret < 0)
		goto out;
	dirfd = fb_open(fl.rootfd, dir, O_RDONLY | O_DIRECTORY);
	if (dirfd < 0) {
		if (dl)
			keypre[dl - 1] = '\0'; /* logged as the directory */
		ret = dirfd == -ENOENT || dirfd == -ENOTDIR
			  ? 0
			  : file_escaped(p, "LIST", keypre, dirfd);
		if (ret == -ENOENT)
			ret = 0; /* behind a link that leaves: empty */
		else if (ret < 0)
			prov_set_error("LIST %s: %s", prefix, strerror(-ret));
		goto out;
	}
	ret = file_list_dir(&fl, dirfd, keypre, prefix + dl, delimited, 0);
	if (ret < 0)
		goto out;
	if (out->n_objects > 1)
		qsort(out->objects, out->n_objects, sizeof(out->objects[0]),
		      file_cmp_obj);
	if (out->n_prefixes > 1)
		qsort(out->prefixes, out->n_prefixes, sizeof(out->prefixes[0]),
		      file_cmp_str);
out:
	close(fl.rootfd);
	return ret;
}

