/*
 * file_base - the bottom of the file:// backend (see file.c): the store
 * root, keys as paths below it, the once-per-key log of symlinks that
 * leave the store, and objects filled from a stat. file.c and file_list.c
 * call down into it; it calls nothing of theirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "providers/file_int.h"

/* FNV-1a: only to remember which keys were logged. */
static uint64_t file_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

int file_escaped(struct prov *p, const char *op, const char *key,
			int ret)
{
	struct file_priv *f = p->priv;
	uint64_t h = file_hash(key);
	bool seen = false;

	if (ret != -EXDEV && ret != -ELOOP)
		return ret;
	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < f->n_logged && i < FILE_LOGGED_MAX; i++)
		seen = seen || f->logged[i] == h;
	if (!seen)
		f->logged[f->n_logged++ % FILE_LOGGED_MAX] = h;
	pthread_mutex_unlock(&f->lock);
	if (!seen)
		log_warn("file store %s: '%s': a symlink on its path %s; "
			 "treated as missing",
			 p->bucket, *key ? key : "/",
			 ret == -EXDEV ? "leaves the store" : "loops");
	prov_set_error("%s %s: a symlink on its path %s", op, *key ? key : "/",
		       ret == -EXDEV ? "leaves the store" : "loops");
	return -ENOENT;
}

int file_root(struct prov *p, const char *op, const char *key)
{
	int fd = open(p->bucket, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		prov_set_error("%s %s: store directory %s is missing", op,
			       *key ? key : "/", p->bucket);
		return -EIO;
	}
	return fd;
}

int file_rel(struct prov *p, const char *key, char *buf, size_t len)
{
	int ret = prov_full_key(p, key, buf, len);

	if (ret < 0)
		prov_set_error("key too long: %s", key);
	return ret;
}

char *file_etag(const struct stat *st)
{
	char tag[96];

	snprintf(tag, sizeof(tag), "%llx-%llx-%llx",
		 (unsigned long long)st->st_ino,
		 (unsigned long long)st->st_size,
		 (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
		     (unsigned long long)st->st_mtim.tv_nsec);
	return strdup(tag);
}

int file_fill_object(const char *key, const struct stat *st,
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

bool file_is_tmp(const char *name)
{
	return name[0] == '.' && strstr(name, FILE_TMP_MARK) != NULL;
}

