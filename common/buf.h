/*
 * buf - a growable byte buffer with a hard cap.
 *
 * Everything read from outside (a store object, an HTTP body) lands in a
 * buf whose cap was chosen by the caller, so a hostile peer cannot make us
 * allocate without bound. data is always NUL-terminated when non-NULL, so
 * text can be handed to parsers directly.
 *
 * Not thread-safe: one owner at a time. Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_COMMON_BUF_H
#define ASSETFS_COMMON_BUF_H

#include <stddef.h>

struct buf {
	char *data; /* NULL until something is appended */
	size_t len;
	size_t cap; /* allocated, excluding the NUL */
	size_t max; /* hard cap on len */
};

/* Start empty with a cap of @max bytes (0 means no cap). Allocates nothing. */
void buf_init(struct buf *b, size_t max);

/* Append @n bytes. Returns 0, -EFBIG past the cap (b unchanged), -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Append a NUL-terminated string. Same returns as buf_append(). */
int buf_puts(struct buf *b, const char *s);

/* Append formatted text. Same returns as buf_append(). */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Forget the contents, keep the allocation. */
void buf_reset(struct buf *b);

/* Free the allocation; @b may be reused after buf_init(). NULL-safe. */
void buf_free(struct buf *b);

/*
 * Take ownership of the data (caller frees with free()); @b becomes empty.
 * Returns a NUL-terminated string, "" allocated if nothing was appended, or
 * NULL on out of memory.
 */
char *buf_steal(struct buf *b);

/*
 * Fill a fixed buffer from a stream of pieces: move bytes from (*@in,
 * *@in_len) into @dst, which holds *@have of its @cap bytes, until it is
 * full or the piece ends, advancing all three. Returns the bytes moved.
 */
size_t buf_fill(char *dst, size_t *have, size_t cap, const char **in,
		size_t *in_len);

#endif
