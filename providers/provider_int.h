/*
 * provider_int - what backends implement and share; not for callers.
 *
 * provider.c parses the scheme, fills struct prov (url, bucket, prefix),
 * calls ops->open, and wraps every op to count stats and record errors.
 * A backend keeps its state in p->priv. Ops follow the contracts of
 * provider.h exactly; keys they receive are relative and already checked
 * (no leading '/', no NUL); they add p->prefix themselves.
 */
#ifndef ASSETFS_PROVIDERS_PROVIDER_INT_H
#define ASSETFS_PROVIDERS_PROVIDER_INT_H

#include <stdatomic.h>

#include "providers/provider.h"

struct prov_ops {
	const char *scheme; /* "file", "http", "https", "s3", "gs", "az" */
	bool can_list;
	bool can_put;
	int (*open)(struct prov *p);
	void (*close)(struct prov *p);
	int (*list)(struct prov *p, const char *prefix, bool delimited,
		    struct prov_listing *out);
	int (*head)(struct prov *p, const char *key, struct prov_object *out);
	int64_t (*get)(struct prov *p, const char *key, uint64_t off,
		       uint64_t len, const char *if_match, prov_sink_fn sink,
		       void *arg);
	int (*put_buf)(struct prov *p, const char *key, const void *data,
		       size_t len);
	int (*put_file)(struct prov *p, const char *key, int fd, uint64_t size,
			prov_progress_fn progress, void *arg);
	int (*del)(struct prov *p, const char *key);
	/* Optional: make the store ready for a first write (file: create
	   the store directory below an existing parent). */
	int (*prepare_put)(struct prov *p);
	/* Optional: one GET of a whole small object with its ETag, capped at
	   @max (-EFBIG), appended to @out; *@etag owned or NULL. Without it
	   prov_get_buf() does HEAD then GET with If-Match (two requests). */
	int (*get_buf)(struct prov *p, const char *key, size_t max,
		       struct buf *out, char **etag);
};

struct prov {
	const struct prov_ops *ops;
	char *url;    /* as given */
	char *scheme; /* "s3" */
	char *bucket; /* host[:port] for http(s), directory path for file, bucket
			 or container otherwise; "" if none */
	char *prefix; /* without leading or trailing '/'; "" if none */
	struct prov_opts opts; /* defaults filled in */
	void *priv;   /* backend state */
	struct {
		atomic_uint_fast64_t requests, retries, errors, bytes_received,
			bytes_sent;
	} stats;
};

/* Record the calling thread's last error (printf-style). Never pass secrets. */
void prov_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Join p->prefix and @key into "prefix/key" (or "key") in @buf.
 * Returns 0 or -ENAMETOOLONG.
 */
int prov_full_key(const struct prov *p, const char *key, char *buf,
		  size_t len);

/*
 * The positive decimal number in environment variable @name (a backend
 * tunable such as ASSETFS_LIST_PAGE_SIZE), or @def when it is unset,
 * empty, zero or not entirely digits.
 */
uint64_t prov_env_u64(const char *name, uint64_t def);

/*
 * Parse @url into p->scheme, p->bucket and p->prefix (owned; nothing else
 * is touched). Returns 0, -EINVAL (message via prov_set_error) or -ENOMEM.
 */
int prov_parse_url(const char *url, struct prov *p);

/* Backends. */
extern const struct prov_ops prov_file_ops;
extern const struct prov_ops prov_s3_ops;
extern const struct prov_ops prov_http_ops;
extern const struct prov_ops prov_az_ops;
extern const struct prov_ops prov_gs_ops;

#endif
