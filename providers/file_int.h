/*
 * file_int - what the files of the file:// backend share (file.c: objects
 * and writes; file_list.c: listings; file_base.c: what both call). See
 * file.c for the contract of the backend as a whole. Errors: a negative
 * errno with prov_set_error().
 */
#ifndef ASSETFS_PROVIDERS_FILE_INT_H
#define ASSETFS_PROVIDERS_FILE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "providers/provider_int.h"

struct stat;

#define FILE_TMP_MARK ".assetfs-tmp."
#define FILE_LOGGED_MAX 256 /* keys remembered as already logged */

struct file_priv {
	pthread_mutex_t lock;
	uint64_t logged[FILE_LOGGED_MAX]; /* protected by lock: key hashes */
	unsigned n_logged;		  /* protected by lock */
};

/*
 * @key's path left the store (@ret -EXDEV) or looped (-ELOOP): log it
 * once per key and return -ENOENT, as for a missing object, with the
 * message set. Any other @ret is returned as it is. Thread-safe.
 */
int file_escaped(struct prov *p, const char *op, const char *key, int ret);

/* An O_PATH descriptor of the store root (the caller closes it), or -EIO
   when the store directory is missing. */
int file_root(struct prov *p, const char *op, const char *key);

/* @key as a path relative to the root (the prefix added). 0 or
   -ENAMETOOLONG. */
int file_rel(struct prov *p, const char *key, char *buf, size_t len);

/* The ETag of a file: inode, size and mtime (owned; NULL out of memory). */
char *file_etag(const struct stat *st);

/* Fill @out for @key from @st (key and ETag copied). 0 or -ENOMEM. */
int file_fill_object(const char *key, const struct stat *st,
		     struct prov_object *out);

/* Whether directory entry @name is one of our temp files. */
bool file_is_tmp(const char *name);

/* The list op (file_list.c). */
int file_list(struct prov *p, const char *prefix, bool delimited,
	      struct prov_listing *out);

#endif
