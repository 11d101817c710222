/*
 * curl_pool - pooled libcurl handles sharing one CURLSH (DNS, TLS
 * sessions), and the per-request header sets. The retrying request
 * runner is in curl_req.c.
 *
 * Handles are kept in a LIFO of idle handles (protected by pool->lock).
 * The share (DNS and TLS sessions, not connections: see cpool_new()) is
 * guarded by one mutex per curl_lock_data kind; connections are reused
 * through the idle handles, each of which keeps its own.
 * A handle is owned by exactly one thread between cpool_get_handle() and
 * cpool_put_handle().
 */
#include "providers/curl_pool_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- request set-up shared by the backends ---- */

void cr_req_set_range(struct cr_req *r, uint64_t off, uint64_t len,
		      const char *if_match, prov_sink_fn sink, void *arg)
{
	r->ranged = !(off == 0 && len == PROV_WHOLE);
	r->off = off;
	r->len = len;
	r->resumable = true;
	r->if_match = if_match;
	r->sink = sink;
	r->sink_arg = arg;
}

int cr_head_object(const struct cr_req *r, const char *key,
		   struct prov_object *out)
{
	out->key = strdup(key);
	out->etag = r->etag[0] ? strdup(r->etag) : NULL;
	out->size = r->have_length ? r->content_length : 0;
	out->mtime = r->mtime;
	if (!out->key || (r->etag[0] && !out->etag))
		return -ENOMEM;
	return 0;
}

/* ---- headers ---- */

int cr_hdr_add(struct cr_hdrs *h, const char *name, const char *fmt, ...)
{
	char *val = NULL, *line = NULL;
	va_list ap;
	int n;

	if (h->n >= CR_MAX_HDRS)
		return -E2BIG;
	va_start(ap, fmt);
	n = vasprintf(&val, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	n = asprintf(&line, "%s: %s", name, val);
	free(val);
	if (n < 0)
		return -ENOMEM;
	h->line[h->n++] = line;
	return 0;
}

const char *cr_hdr_get(const struct cr_hdrs *h, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < h->n; i++) {
		const char *l = h->line[i];

		if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
			l += nl + 1;
			while (*l == ' ')
				l++;
			return l;
		}
	}
	return NULL;
}

void cr_hdrs_clear(struct cr_hdrs *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->line[i]);
	h->n = 0;
}

/* ---- the pool ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access acc,
		       void *arg)
{
	struct cpool *pool = arg;

	(void)h;
	(void)acc;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&pool->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct cpool *pool = arg;

	(void)h;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&pool->share_locks[data]);
}

int cpool_new(struct prov *p, const char *ca_env, struct cpool **out)
{
	const char *envs[] = { ca_env, "CURL_CA_BUNDLE", "SSL_CERT_FILE" };
	struct cpool *pool;

	*out = NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		prov_set_error("libcurl initialisation failed");
		return -EIO;
	}
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&pool->share_locks[i], NULL);
	pthread_mutex_init(&pool->lock, NULL);
	pool->max_idle = p->opts.max_conns > 0 ? (size_t)p->opts.max_conns : 16;
	if (pool->max_idle > POOL_IDLE_MAX)
		pool->max_idle = POOL_IDLE_MAX;
	pool->timeout_ms = p->opts.timeout_ms > 0 ? p->opts.timeout_ms : 30000;
	pool->connect_timeout_ms =
		p->opts.connect_timeout_ms > 0 ? p->opts.connect_timeout_ms :
						 5000;
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		const char *v = envs[i] ? getenv(envs[i]) : NULL;

		if (v && *v) {
			pool->ca_file = strdup(v);
			if (!pool->ca_file)
				goto nomem;
			break;
		}
	}
	pool->share = curl_share_init();
	if (!pool->share)
		goto nomem;
	curl_share_setopt(pool->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(pool->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(pool->share, CURLSHOPT_USERDATA, pool);
	curl_share_setopt(pool->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(pool->share, CURLSHOPT_SHARE,
			  CURL_LOCK_DATA_SSL_SESSION);
	/* Not CURL_LOCK_DATA_CONNECT: a connection cache shared by threads
	   is libcurl's known bug 11.11 (curl/curl#4915); with many threads
	   at once (a long version list's .meta fetches) it corrupted the
	   heap and the mount died of SIGSEGV in libcurl's free(). Each idle
	   handle keeps its own connections (curl_easy_reset() leaves them),
	   so connections are still reused. */
	*out = pool;
	return 0;
nomem:
	cpool_free(&pool);
	return -ENOMEM;
}

void cpool_free(struct cpool **poolp)
{
	struct cpool *pool = poolp ? *poolp : NULL;

	if (!pool)
		return;
	for (size_t i = 0; i < pool->n_idle; i++)
		curl_easy_cleanup(pool->idle[i]);
	if (pool->share)
		curl_share_cleanup(pool->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&pool->share_locks[i]);
	pthread_mutex_destroy(&pool->lock);
	free(pool->ca_file);
	free(pool);
	*poolp = NULL;
}

CURL *cpool_get_handle(struct cpool *pool)
{
	CURL *h = NULL;

	pthread_mutex_lock(&pool->lock);
	if (pool->n_idle > 0)
		h = pool->idle[--pool->n_idle];
	pthread_mutex_unlock(&pool->lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

void cpool_put_handle(struct cpool *pool, CURL *h, bool broken)
{
	if (!h)
		return;
	pthread_mutex_lock(&pool->lock);
	if (!broken && pool->n_idle < pool->max_idle) {
		pool->idle[pool->n_idle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&pool->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* ---- parallel parts ---- */

struct par {
	size_t n;
	int (*fn)(void *arg, size_t i);
	void *arg;
	pthread_mutex_t lock;
	size_t next;   /* protected by lock */
	int ret;       /* protected by lock: the first failure */
	char err[512]; /* protected by lock: its message */
};

static void *par_worker(void *x)
{
	struct par *pr = x;

	for (;;) {
		size_t i;
		int r;

		pthread_mutex_lock(&pr->lock);
		if (pr->ret < 0 || pr->next >= pr->n) {
			pthread_mutex_unlock(&pr->lock);
			break;
		}
		i = pr->next++;
		pthread_mutex_unlock(&pr->lock);
		r = pr->fn(pr->arg, i);
		if (r < 0) {
			pthread_mutex_lock(&pr->lock);
			if (pr->ret == 0) {
				pr->ret = r;
				snprintf(pr->err, sizeof(pr->err), "%s",
					 prov_last_error());
			}
			pthread_mutex_unlock(&pr->lock);
		}
	}
	return NULL;
}

int cr_parallel(size_t n, int threads, int (*fn)(void *arg, size_t i),
		void *arg)
{
	struct par pr = { .n = n, .fn = fn, .arg = arg };
	pthread_t th[16];
	int started = 0;

	if (threads > 16)
		threads = 16;
	if ((size_t)threads > n)
		threads = (int)n;
	pthread_mutex_init(&pr.lock, NULL);
	for (int t = 1; t < threads; t++) {
		if (pthread_create(&th[started], NULL, par_worker, &pr) != 0)
			break; /* fewer threads will do */
		started++;
	}
	par_worker(&pr);
	for (int t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_destroy(&pr.lock);
	if (pr.ret < 0)
		prov_set_error("%s", pr.err);
	return pr.ret;
}

/* Progress summed over the parts of one upload. */
struct cr_progress {
	pthread_mutex_t lock;
	uint64_t done; /* protected by lock */
	uint64_t total;
	prov_progress_fn fn; /* may be NULL */
	void *arg;
};

/* One part's view: what it reported last (a retry starts again at 0). */
struct cr_part_progress {
	struct cr_progress *pg;
	uint64_t last;
};

static void cr_part_progress(void *arg, uint64_t done, uint64_t total)
{
	struct cr_part_progress *pp = arg;
	struct cr_progress *pg = pp->pg;

	(void)total;
	pthread_mutex_lock(&pg->lock);
	pg->done = pg->done - pp->last + done;
	pp->last = done;
	if (pg->fn)
		pg->fn(pg->arg, pg->done, pg->total);
	pthread_mutex_unlock(&pg->lock);
}

struct cr_parts {
	uint64_t size, part;
	cr_part_fn fn;
	void *arg;
	struct cr_progress pg;
};

static int cr_parts_one(void *arg, size_t i)
{
	struct cr_parts *ps = arg;
	struct cr_part_progress pp = { .pg = &ps->pg };
	struct cr_part part = { .i = i, .progress_arg = &pp,
				.total = ps->size };

	part.off = (uint64_t)i * ps->part;
	part.len = ps->size - part.off < ps->part ? ps->size - part.off
						  : ps->part;
	return ps->fn(ps->arg, &part);
}

uint64_t cr_parts_plan(uint64_t size, uint64_t *part, uint64_t max_parts)
{
	uint64_t n = (size + *part - 1) / *part;

	if (n > max_parts) {
		*part = (size + max_parts - 1) / max_parts;
		n = (size + *part - 1) / *part;
	}
	return n;
}

int cr_parts_run(uint64_t size, uint64_t part, uint64_t n, cr_part_fn fn,
		 void *arg, prov_progress_fn progress, void *progress_arg)
{
	struct cr_parts ps = { .size = size, .part = part, .fn = fn,
			       .arg = arg };
	int ret;

	pthread_mutex_init(&ps.pg.lock, NULL);
	ps.pg.total = size;
	ps.pg.fn = progress;
	ps.pg.arg = progress_arg;
	ret = cr_parallel((size_t)n, CR_PARTS_THREADS, cr_parts_one, &ps);
	pthread_mutex_destroy(&ps.pg.lock);
	return ret;
}

void cr_req_set_body(struct cr_req *r, const void *data, size_t len, int fd,
		     uint64_t off, uint64_t size)
{
	r->has_body = true;
	r->body_fd = fd;
	if (fd < 0) {
		r->body = data;
		r->body_len = len;
		r->progress_total = len;
	} else {
		r->body_off = off;
		r->body_size = size;
		r->progress_total = size;
	}
}

void cr_req_set_part(struct cr_req *r, int fd, const struct cr_part *part)
{
	cr_req_set_body(r, NULL, 0, fd, part->off, part->len);
	r->progress = cr_part_progress;
	r->progress_arg = part->progress_arg;
	r->progress_base = 0; /* parts report their own bytes */
	r->progress_total = part->total;
}
