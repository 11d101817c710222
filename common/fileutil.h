/*
 * fileutil - small file helpers with the project's safety rules built in:
 * reads are capped, writes go to a temp file in the same directory and are
 * renamed into place, so no reader ever sees a half-written file.
 *
 * Thread-safe (no shared state). Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_COMMON_FILEUTIL_H
#define ASSETFS_COMMON_FILEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"

/*
 * Read the whole file at @path into @out (appending). Returns 0, -EFBIG if
 * the file is larger than @max bytes (nothing more than @max+1 bytes is
 * read), or the errno of open/read.
 */
int file_read_capped(const char *path, size_t max, struct buf *out);

/*
 * Write @len bytes to @path atomically: a temp file "<path>.tmp.<pid>.<n>"
 * beside it, fsync'd if @durable, then rename(2). On failure the temp file
 * is removed and @path is untouched.
 */
int file_write_atomic(const char *path, const void *data, size_t len,
		      mode_t mode, bool durable);

/* mkdir -p: create @path and missing parents with @mode. EEXIST is success. */
int mkdir_p(const char *path, mode_t mode);

/* write(2) until all of @len is written or an error. */
int write_all(int fd, const void *data, size_t len);

/* pread(2) until @len bytes or EOF. Returns bytes read or a negative errno. */
ssize_t pread_all(int fd, void *data, size_t len, off_t off);

#endif
