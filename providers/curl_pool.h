/*
 * curl_pool - the libcurl machinery every remote backend (http, s3, az, gs)
 * runs its requests through: a pool of easy handles sharing one connection
 * cache, DNS cache and TLS session cache (a CURLSH with share locks), and
 * cr_run(), which performs one logical request with retries.
 *
 * cr_run() retries 5xx, 429, connection resets, timeouts, stalls and
 * truncated bodies with exponential backoff and full jitter, honouring
 * Retry-After, and never runs past opts.timeout_ms in total. A GET that is
 * marked resumable delivers every byte of its range exactly once: a retry
 * asks for the first byte not yet delivered, pinned with If-Match to the
 * ETag of the first answer, so a replaced object is -ESTALE, never a mix.
 * TLS is always verified; a custom CA comes from the backend's variable
 * (e.g. AWS_CA_BUNDLE), then CURL_CA_BUNDLE, then SSL_CERT_FILE.
 *
 * Secrets: request URLs may carry one (an Azure SAS); they are never shown.
 * Error messages name the operation with r->what, which the backend builds
 * without secrets, plus the HTTP status and the service's error code.
 *
 * Threads: a pool is safe to use from any number of threads; one cr_req
 * belongs to one thread. Errors: 0 or a negative errno (provider.h list);
 * on failure the message is left in prov_set_error().
 */
#ifndef ASSETFS_PROVIDERS_CURL_POOL_H
#define ASSETFS_PROVIDERS_CURL_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "providers/provider_int.h"

struct cpool;

#define CR_MAX_HDRS 32
#define CR_ETAG_MAX 256

/* Request headers, built per attempt: "Name: value" lines, owned. */
struct cr_hdrs {
	size_t n;
	char *line[CR_MAX_HDRS];
};

/*
 * Add a header. Returns 0, -E2BIG when full, -ENOMEM.
 * A later header of the same name does not replace an earlier one.
 */
int cr_hdr_add(struct cr_hdrs *h, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The value of header @name (case-insensitive), or NULL. Borrowed. */
const char *cr_hdr_get(const struct cr_hdrs *h, const char *name);

/* Free every line; @h is empty again. */
void cr_hdrs_clear(struct cr_hdrs *h);

/*
 * Called before every attempt with the complete header set of that attempt
 * (the request's fixed headers plus Range, If-Match and Content-Length as
 * they will be sent) to add authentication. @url is the full URL.
 * Returns 0 or a negative errno (the request then fails with it).
 */
typedef int (*cr_sign_fn)(void *arg, const char *method, const char *url,
			  struct cr_hdrs *h);

struct cr_req {
	/* --- in --- */
	const char *method; /* "GET", "HEAD", "PUT", "POST", "DELETE" */
	const char *url;    /* full URL, may carry a secret: never shown */
	const char *what;   /* for messages: "GET s3://b/p/k", no secret */
	const char *const *headers; /* NULL-terminated "Name: value", or NULL */
	cr_sign_fn sign;    /* may be NULL */
	void *sign_arg;

	/* request body (PUT/POST): memory, or @body_size bytes of @body_fd
	   from @body_off */
	bool has_body;
	const void *body;
	size_t body_len;
	int body_fd; /* -1 for memory */
	uint64_t body_off, body_size;
	prov_progress_fn progress; /* may be NULL */
	void *progress_arg;
	uint64_t progress_base, progress_total;

	/* GET range: only when @ranged; @len may be PROV_WHOLE */
	bool ranged;
	uint64_t off, len;
	bool resumable;       /* a retry resumes at the first undelivered byte */
	const char *if_match; /* sent as If-Match, may be NULL */
	/* pinning by query instead of If-Match (gs): the pin goes into the
	   URL as "&<pin_query>=<value>", and a resume pins the value of the
	   response header capture_hdr instead of the ETag */
	const char *pin_query;
	const char *capture_hdr; /* a response header to keep in captured[] */

	/* 2xx body: to @sink, or appended to @out (its cap applies), or
	   dropped */
	prov_sink_fn sink;
	void *sink_arg;
	struct buf *out;

	/* --- out --- */
	long status;
	char etag[CR_ETAG_MAX]; /* "" if none */
	bool have_length;
	uint64_t content_length; /* of the last answer's body */
	bool have_total;
	uint64_t total_size; /* whole object size (Content-Range, or
				Content-Length of a 200) */
	int64_t mtime;       /* Last-Modified, 0 if none */
	char err_code[128];  /* service error code, "" if none */
	char captured[256];  /* value of capture_hdr, "" if none */
	uint64_t delivered;  /* body bytes delivered to sink/out */
};

/*
 * Make a pool for @p (opts borrowed from p->opts). @ca_env names the
 * backend's CA bundle variable (e.g. "AWS_CA_BUNDLE"), may be NULL.
 * Returns 0, -ENOMEM, or -EIO if libcurl cannot be initialised.
 */
int cpool_new(struct prov *p, const char *ca_env, struct cpool **out);

/* Free the pool and its handles; sets *@pool to NULL. NULL-safe. */
void cpool_free(struct cpool **pool);

/*
 * Perform @r (see struct cr_req) with retries, counting into p->stats.
 * Returns 0 for a 2xx answer whose body was fully delivered, or:
 * -ENOENT (404), -EACCES (401/403), -ESTALE (412), -EINVAL (416, 400),
 * -ENOTSUP (405, 501), -ETIMEDOUT (deadline reached), -EIO (other), or the
 * sink's own error. r->status holds the last HTTP status (0 if none).
 * On failure prov_set_error() names r->what, the status and the service's
 * error code. Thread-safe.
 */
int cr_run(struct cpool *pool, struct prov *p, struct cr_req *r);

/* The errno for a final HTTP status (the single mapping point). */
int cr_status_errno(long status);

/*
 * Set @r up to GET [@off, @off + @len) of an object (@len may be
 * PROV_WHOLE; 0 and PROV_WHOLE is an unranged GET) into @sink(@arg),
 * resumable, pinned to @if_match (may be NULL). Pointers are borrowed
 * for the life of @r. The backend adds its own pinning fields.
 */
void cr_req_set_range(struct cr_req *r, uint64_t off, uint64_t len,
		      const char *if_match, prov_sink_fn sink, void *arg);

/*
 * Fill @out from the answer to the HEAD request @r of @key: the key
 * (copied), the ETag (copied, NULL if none), Content-Length (0 if none)
 * and Last-Modified. Returns 0 or -ENOMEM (what was copied stays in @out
 * for the caller's prov_object_free()).
 */
int cr_head_object(const struct cr_req *r, const char *key,
		   struct prov_object *out);

/*
 * Set @r up to send a body: @len bytes at @data when @fd < 0, else @size
 * bytes of @fd from @off (read with pread, so a retry sends them again).
 * Progress, when the caller sets r->progress, counts against the body's
 * length. Pointers are borrowed for the life of @r.
 */
void cr_req_set_body(struct cr_req *r, const void *data, size_t len, int fd,
		     uint64_t off, uint64_t size);

/* Parts of a large upload in flight at once. */
#define CR_PARTS_THREADS 4

/*
 * Run @fn(@arg, i) for every i in [0, @n) on up to @threads threads (the
 * caller's among them). After the first failure no new part starts.
 * Returns 0, or the first failure's negative errno with its
 * prov_last_error() message carried over to the calling thread. @fn must
 * be safe to call concurrently for different parts.
 */
int cr_parallel(size_t n, int threads, int (*fn)(void *arg, size_t i),
		void *arg);

/*
 * A large upload of @size bytes of a file cut into parts (S3 multipart,
 * Azure blocks): cr_parts_plan() sizes them, cr_parts_run() sends them
 * concurrently and sums their progress for the caller's callback.
 */
struct cr_part {
	size_t i;	   /* 0-based part number */
	uint64_t off, len; /* the part's bytes of the file */
	void *progress_arg; /* for cr_req_set_part() */
	uint64_t total;	   /* the whole upload's size */
};

/* Sends one part; runs concurrently with other parts. 0 or -errno. */
typedef int (*cr_part_fn)(void *arg, const struct cr_part *part);

/*
 * The number of parts of @size bytes, each *@part bytes (the last one
 * shorter); *@part grows when more than @max_parts would be needed.
 */
uint64_t cr_parts_plan(uint64_t size, uint64_t *part, uint64_t max_parts);

/*
 * Call @fn(@arg, part) for each of the @n parts of @part bytes of an
 * upload of @size bytes, CR_PARTS_THREADS at a time. @progress (may be
 * NULL) sees the sum over all parts, called under a lock so it needs none
 * of its own. Returns 0 or the first failure (see cr_parallel()).
 */
int cr_parts_run(uint64_t size, uint64_t part, uint64_t n, cr_part_fn fn,
		 void *arg, prov_progress_fn progress, void *progress_arg);

/* Set @r up to send @part of @fd, its progress summed by cr_parts_run(). */
void cr_req_set_part(struct cr_req *r, int fd, const struct cr_part *part);

#endif
