/*
 * provider - the front of every backend: URL parsing, the scheme table,
 * key validation, statistics and the per-thread last error (see
 * provider.h for the contract, provider_int.h for what backends see).
 *
 * A URL is "scheme://rest". file: rest is an absolute directory path (an
 * empty host or "localhost" before it) and the prefix is empty: the
 * directory is the prefix. http/https: rest is host[:port][/prefix]. s3,
 * gs, az: rest is bucket[/prefix]. The prefix is stored without leading or
 * trailing '/'; empty segments, "." and ".." are refused.
 *
 * Adding a backend: define its struct prov_ops, declare it extern in
 * provider_int.h and add a line to prov_schemes[] below (one ops table may
 * serve several schemes, as http serves http and https).
 *
 * Threads: everything here is safe concurrently; the last error is
 * thread-local. Errors: 0 or a negative errno, message via prov_set_error().
 */
#include "providers/provider.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "providers/provider_int.h"

#define PROV_ERR_MAX 512

struct prov_scheme {
	const char *scheme;
	const struct prov_ops *ops; /* NULL: known, not built in */
};

/* The scheme table: add backends here. */
static const struct prov_scheme prov_schemes[] = {
    {"file", &prov_file_ops},  {"http", &prov_http_ops},
    {"https", &prov_http_ops}, {"s3", &prov_s3_ops},
    {"gs", &prov_gs_ops},      {"az", &prov_az_ops},
};

static __thread char prov_err[PROV_ERR_MAX];

void prov_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prov_err, sizeof(prov_err), fmt, ap);
	va_end(ap);
}

const char *prov_last_error(void)
{
	return prov_err;
}

static const struct prov_scheme *prov_find_scheme(const char *scheme)
{
	for (size_t i = 0; i < sizeof(prov_schemes) / sizeof(prov_schemes[0]);
	     i++)
		if (strcmp(prov_schemes[i].scheme, scheme) == 0)
			return &prov_schemes[i];
	return NULL;
}

/*
 * Normalise @s (len @n) as a prefix: strip leading and trailing '/',
 * refuse empty inner segments, "." and "..". Returns an owned string or
 * NULL with *@ret set.
 */
static char *prov_norm_prefix(const char *s, size_t n, const char *url,
			      int *ret)
{
	const char *seg;
	char *out;

	while (n && *s == '/') {
		s++;
		n--;
	}
	while (n && s[n - 1] == '/')
		n--;
	seg = s;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '/')
			continue;
		size_t sl = (size_t)(s + i - seg);

		if (n && (sl == 0 || (sl == 1 && seg[0] == '.') ||
			  (sl == 2 && seg[0] == '.' && seg[1] == '.'))) {
			prov_set_error("invalid store URL '%s': bad path "
				       "segment in the prefix",
				       url);
			*ret = -EINVAL;
			return NULL;
		}
		seg = s + i + 1;
	}
	out = strndup(s, n);
	if (!out)
		*ret = -ENOMEM;
	return out;
}

int prov_parse_url(const char *url, struct prov *p)
{
	const char *sep, *rest, *slash;
	char *scheme = NULL, *bucket = NULL, *prefix = NULL;
	int ret = 0;

	if (!url || !*url) {
		prov_set_error("empty store URL");
		return -EINVAL;
	}
	if (strlen(url) >= PROV_URL_MAX) {
		prov_set_error("store URL too long");
		return -EINVAL;
	}
	for (const char *c = url; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			prov_set_error("invalid store URL: control character");
			return -EINVAL;
		}
	}
	sep = strstr(url, "://");
	if (!sep || sep == url) {
		prov_set_error("invalid store URL '%s': expected "
			       "scheme://... (file, http, https, s3, gs, az)",
			       url);
		return -EINVAL;
	}
	scheme = strndup(url, (size_t)(sep - url));
	if (!scheme)
		return -ENOMEM;
	for (char *c = scheme; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	if (!prov_find_scheme(scheme)) {
		prov_set_error("invalid store URL '%s': unknown scheme '%s'",
			       url, scheme);
		ret = -EINVAL;
		goto out;
	}
	rest = sep + 3;
	if (strchr(rest, '?') || strchr(rest, '#')) {
		prov_set_error("invalid store URL '%s': query or fragment "
			       "not allowed",
			       url);
		ret = -EINVAL;
		goto out;
	}
	if (strcmp(scheme, "file") == 0) {
		size_t n;

		if (strncmp(rest, "localhost/", 10) == 0)
			rest += 9;
		if (*rest != '/') {
			prov_set_error("invalid store URL '%s': file URLs "
				       "take an absolute path (file:///dir)",
				       url);
			ret = -EINVAL;
			goto out;
		}
		/* The directory is the prefix; check its segments too. */
		n = strlen(rest);
		bucket = prov_norm_prefix(rest, n, url, &ret);
		if (!bucket)
			goto out;
		free(bucket);
		while (n > 1 && rest[n - 1] == '/')
			n--;
		bucket = strndup(rest, n);
		prefix = strdup("");
		if (!bucket || !prefix)
			ret = -ENOMEM;
		goto out;
	}
	slash = strchr(rest, '/');
	if (!slash)
		slash = rest + strlen(rest);
	if (slash == rest) {
		prov_set_error("invalid store URL '%s': no %s", url,
			       scheme[0] == 'h' ? "host" : "bucket");
		ret = -EINVAL;
		goto out;
	}
	bucket = strndup(rest, (size_t)(slash - rest));
	if (!bucket) {
		ret = -ENOMEM;
		goto out;
	}
	if (strchr(bucket, '@')) {
		/* Credentials in URLs end up in logs: refuse them. */
		prov_set_error("invalid store URL: credentials in the URL are "
			       "not supported");
		ret = -EINVAL;
		goto out;
	}
	prefix = prov_norm_prefix(slash, strlen(slash), url, &ret);
out:
	if (ret < 0) {
		free(scheme);
		free(bucket);
		free(prefix);
		return ret;
	}
	p->scheme = scheme;
	p->bucket = bucket;
	p->prefix = prefix;
	return 0;
}

static void prov_free_fields(struct prov *p)
{
	free(p->url);
	free(p->scheme);
	free(p->bucket);
	free(p->prefix);
}

int prov_open(const char *url, const struct prov_opts *opts, struct prov **out)
{
	const struct prov_scheme *sch;
	struct prov *p;
	int ret;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	ret = prov_parse_url(url, p);
	if (ret < 0) {
		free(p);
		return ret;
	}
	sch = prov_find_scheme(p->scheme);
	if (!sch || !sch->ops) {
		prov_set_error("store URL '%s': the %s backend is not built "
			       "in",
			       url, p->scheme);
		ret = -EINVAL;
		goto fail;
	}
	p->ops = sch->ops;
	p->url = strdup(url);
	if (!p->url) {
		ret = -ENOMEM;
		goto fail;
	}
	if (opts)
		p->opts = *opts;
	if (p->opts.timeout_ms <= 0)
		p->opts.timeout_ms = 30000;
	if (p->opts.connect_timeout_ms <= 0)
		p->opts.connect_timeout_ms = 5000;
	if (p->opts.max_conns <= 0)
		p->opts.max_conns = 16;
	/* bearer_token_file is borrowed by opts; backends copy what they
	   need during open. */
	if (p->ops->open) {
		ret = p->ops->open(p);
		if (ret < 0)
			goto fail;
	}
	*out = p;
	return 0;
fail:
	prov_free_fields(p);
	free(p);
	return ret;
}

void prov_close(struct prov **pp)
{
	struct prov *p;

	if (!pp || !*pp)
		return;
	p = *pp;
	if (p->ops && p->ops->close)
		p->ops->close(p);
	prov_free_fields(p);
	free(p);
	*pp = NULL;
}

const char *prov_url(const struct prov *p)
{
	return p->url;
}

bool prov_can_list(const struct prov *p)
{
	return p->ops->can_list && p->ops->list;
}

bool prov_can_put(const struct prov *p)
{
	return p->ops->can_put && p->ops->put_buf;
}

uint64_t prov_env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long x;

	if (!v || !*v)
		return def;
	x = strtoull(v, &end, 10);
	return *end || x == 0 ? def : x;
}

int prov_full_key(const struct prov *p, const char *key, char *buf, size_t len)
{
	int n;

	if (p->prefix && *p->prefix)
		n = snprintf(buf, len, "%s/%s", p->prefix, key);
	else
		n = snprintf(buf, len, "%s", key);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * Check a key (or, with @is_prefix, a listing prefix that may be "" or end
 * in '/'): no leading '/', no empty, "." or ".." segment, no control
 * character, bounded length.
 */
static int prov_check_key(const char *op, const char *key, bool is_prefix)
{
	const char *seg;
	size_t n;

	if (!key) {
		prov_set_error("%s: no key", op);
		return -EINVAL;
	}
	n = strlen(key);
	if (n >= PROV_URL_MAX) {
		prov_set_error("%s: key too long", op);
		return -EINVAL;
	}
	if (n == 0) {
		if (is_prefix)
			return 0;
		prov_set_error("%s: empty key", op);
		return -EINVAL;
	}
	if (key[0] == '/') {
		prov_set_error("%s: invalid key '%s': leading '/'", op, key);
		return -EINVAL;
	}
	seg = key;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)) {
			prov_set_error("%s: invalid key: control character",
				       op);
			return -EINVAL;
		}
		if (i < n && key[i] != '/')
			continue;
		size_t sl = (size_t)(key + i - seg);

		if (sl == 0 && !(is_prefix && i == n)) {
			prov_set_error("%s: invalid key '%s': empty segment",
				       op, key);
			return -EINVAL;
		}
		if ((sl == 1 && seg[0] == '.') ||
		    (sl == 2 && seg[0] == '.' && seg[1] == '.')) {
			/* A partial last segment of a prefix ("a/.") could
			   be a string prefix of "a/.x"; still refuse it. */
			prov_set_error("%s: invalid key '%s': '.' or '..' "
				       "segment",
				       op, key);
			return -EINVAL;
		}
		seg = key + i + 1;
	}
	return 0;
}

static void prov_count(struct prov *p, int ret)
{
	atomic_fetch_add(&p->stats.requests, 1);
	if (ret < 0 && ret != -ENOENT)
		atomic_fetch_add(&p->stats.errors, 1);
}

int prov_list(struct prov *p, const char *prefix, bool delimited,
	      struct prov_listing *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	ret = prov_check_key("LIST", prefix, true);
	if (ret < 0)
		return ret;
	if (!prov_can_list(p)) {
		prov_set_error("LIST %s: this store cannot list", p->url);
		return -ENOTSUP;
	}
	ret = p->ops->list(p, prefix, delimited, out);
	prov_count(p, ret);
	if (ret < 0)
		prov_listing_free(out);
	return ret;
}

void prov_listing_free(struct prov_listing *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n_objects; i++)
		prov_object_free(&l->objects[i]);
	free(l->objects);
	for (size_t i = 0; i < l->n_prefixes; i++)
		free(l->prefixes[i]);
	free(l->prefixes);
	memset(l, 0, sizeof(*l));
}

int prov_head(struct prov *p, const char *key, struct prov_object *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	ret = prov_check_key("HEAD", key, false);
	if (ret < 0)
		return ret;
	ret = p->ops->head(p, key, out);
	prov_count(p, ret);
	if (ret < 0)
		prov_object_free(out);
	return ret;
}

void prov_object_free(struct prov_object *o)
{
	if (!o)
		return;
	free(o->key);
	free(o->etag);
	memset(o, 0, sizeof(*o));
}

struct prov_count_sink {
	struct prov *p;
	prov_sink_fn sink;
	void *arg;
};

static int prov_count_sink_fn(void *arg, const void *data, size_t len)
{
	struct prov_count_sink *cs = arg;

	atomic_fetch_add(&cs->p->stats.bytes_received, len);
	return cs->sink(cs->arg, data, len);
}

int64_t prov_get(struct prov *p, const char *key, uint64_t off, uint64_t len,
		 const char *if_match, prov_sink_fn sink, void *arg)
{
	struct prov_count_sink cs = {p, sink, arg};
	int64_t ret;

	ret = prov_check_key("GET", key, false);
	if (ret < 0)
		return ret;
	if (len != PROV_WHOLE && off > UINT64_MAX - len) {
		prov_set_error("GET %s: bad range", key);
		return -EINVAL;
	}
	ret = p->ops->get(p, key, off, len, if_match, prov_count_sink_fn, &cs);
	prov_count(p, (int)(ret < 0 ? ret : 0));
	return ret;
}

struct prov_buf_sink {
	struct buf *b;
	size_t start, max;
};

static int prov_buf_sink_fn(void *arg, const void *data, size_t len)
{
	struct prov_buf_sink *bs = arg;

	if (len > bs->max - (bs->b->len - bs->start))
		return -EFBIG;
	return buf_append(bs->b, data, len);
}

int prov_get_buf(struct prov *p, const char *key, size_t max, struct buf *out,
		 char **etag_out)
{
	struct prov_object obj = {0};
	struct prov_buf_sink bs = {out, out->len, max};
	int64_t got;
	int ret, tries = 0;

	if (etag_out)
		*etag_out = NULL;
	if (p->ops->get_buf) {
		ret = prov_check_key("GET", key, false);
		if (ret < 0)
			return ret;
		ret = p->ops->get_buf(p, key, max, out, etag_out);
		prov_count(p, ret);
		if (ret == 0)
			atomic_fetch_add(&p->stats.bytes_received,
					 out->len - bs.start);
		return ret;
	}
again:
	ret = prov_head(p, key, &obj);
	if (ret < 0)
		return ret;
	if (obj.size > max) {
		prov_set_error("GET %s: %llu bytes, over the cap of %zu", key,
			       (unsigned long long)obj.size, max);
		ret = -EFBIG;
		goto out;
	}
	got = prov_get(p, key, 0, PROV_WHOLE, obj.etag, prov_buf_sink_fn, &bs);
	if (got == -ESTALE && ++tries < 3) {
		/* Replaced between HEAD and GET: read the new one. */
		out->len = bs.start;
		if (out->data)
			out->data[out->len] = '\0';
		prov_object_free(&obj);
		goto again;
	}
	if (got < 0) {
		ret = (int)got;
		if (ret == -EFBIG)
			prov_set_error("GET %s: over the cap of %zu bytes", key,
				       max);
		out->len = bs.start;
		if (out->data)
			out->data[out->len] = '\0';
		goto out;
	}
	if (etag_out && obj.etag) {
		*etag_out = obj.etag;
		obj.etag = NULL;
	}
	ret = 0;
out:
	prov_object_free(&obj);
	return ret;
}

static int prov_check_put(struct prov *p, const char *op, const char *key)
{
	int ret;

	ret = prov_check_key(op, key, false);
	if (ret < 0)
		return ret;
	if (!prov_can_put(p)) {
		prov_set_error("%s %s: this store is read-only", op, p->url);
		return -EROFS;
	}
	return 0;
}

int prov_put_buf(struct prov *p, const char *key, const void *data, size_t len)
{
	int ret;

	ret = prov_check_put(p, "PUT", key);
	if (ret < 0)
		return ret;
	ret = p->ops->put_buf(p, key, data, len);
	prov_count(p, ret);
	if (ret == 0)
		atomic_fetch_add(&p->stats.bytes_sent, len);
	return ret;
}

int prov_put_file(struct prov *p, const char *key, int fd, uint64_t size,
		  prov_progress_fn progress, void *arg)
{
	int ret;

	ret = prov_check_put(p, "PUT", key);
	if (ret < 0)
		return ret;
	if (!p->ops->put_file) {
		prov_set_error("PUT %s: this store is read-only", p->url);
		return -EROFS;
	}
	ret = p->ops->put_file(p, key, fd, size, progress, arg);
	prov_count(p, ret);
	if (ret == 0)
		atomic_fetch_add(&p->stats.bytes_sent, size);
	return ret;
}

int prov_prepare_put(struct prov *p)
{
	if (!p->ops->can_put) {
		prov_set_error("PUT %s: this store is read-only", p->url);
		return -EROFS;
	}
	return p->ops->prepare_put ? p->ops->prepare_put(p) : 0;
}

int prov_delete(struct prov *p, const char *key)
{
	int ret;

	ret = prov_check_put(p, "DELETE", key);
	if (ret < 0)
		return ret;
	if (!p->ops->del) {
		prov_set_error("DELETE %s: this store is read-only", p->url);
		return -EROFS;
	}
	ret = p->ops->del(p, key);
	prov_count(p, ret);
	return ret;
}

void prov_get_stats(const struct prov *p, struct prov_stats *out)
{
	struct prov *mp = (struct prov *)p; /* atomics: loads only */

	out->requests = atomic_load(&mp->stats.requests);
	out->retries = atomic_load(&mp->stats.retries);
	out->errors = atomic_load(&mp->stats.errors);
	out->bytes_received = atomic_load(&mp->stats.bytes_received);
	out->bytes_sent = atomic_load(&mp->stats.bytes_sent);
}

/* Make @path absolute against the working directory, into @buf. */
static int prov_abs_path(const char *path, char *buf, size_t len)
{
	char cwd[PATH_MAX];
	int n;

	if (path[0] == '/') {
		n = snprintf(buf, len, "%s", path);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		n = snprintf(buf, len, "%s/%s", strcmp(cwd, "/") ? cwd : "",
			     path);
	}
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int prov_put_url(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int prov_put_url(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		prov_set_error("store URL too long");
		return -ENAMETOOLONG;
	}
	return 0;
}

int prov_store_url(const char *arg, char *buf, size_t len)
{
	char path[PATH_MAX];
	const char *env, *bucket, *prefix, *scheme;
	int ret;

	if (arg && *arg) {
		if (strstr(arg, "://"))
			return prov_put_url(buf, len, "%s", arg);
		/* A bare directory path: a local store. */
		ret = prov_abs_path(arg, path, sizeof(path));
		if (ret < 0) {
			prov_set_error("store path '%s': %s", arg,
				       strerror(-ret));
			return ret;
		}
		return prov_put_url(buf, len, "file://%s", path);
	}
	env = getenv("ASSETFS_STORE");
	if (env && *env)
		return prov_store_url(env, buf, len);
	env = getenv("MODELKIT_STORAGE_PROVIDER");
	if (!env || !*env) {
		prov_set_error("no store given: use --store URL, "
			       "ASSETFS_STORE, or MODELKIT_STORAGE_PROVIDER "
			       "with MODELKIT_STORAGE_BUCKET");
		return -ENOENT;
	}
	if (strcmp(env, "local") == 0)
		scheme = "file";
	else if (strcmp(env, "s3") == 0 || strcmp(env, "s3ssm") == 0)
		scheme = "s3";
	else if (strcmp(env, "gcs") == 0)
		scheme = "gs";
	else if (strcmp(env, "az") == 0)
		scheme = "az";
	else {
		prov_set_error("MODELKIT_STORAGE_PROVIDER='%s': expected "
			       "local, s3, gcs or az",
			       env);
		return -EINVAL;
	}
	bucket = getenv("MODELKIT_STORAGE_BUCKET");
	if (!bucket || !*bucket) {
		prov_set_error("MODELKIT_STORAGE_PROVIDER=%s needs "
			       "MODELKIT_STORAGE_BUCKET",
			       env);
		return -EINVAL;
	}
	prefix = getenv("MODELKIT_STORAGE_PREFIX");
	if (!prefix)
		prefix = "modelkit-assets";
	while (*prefix == '/')
		prefix++;
	if (strcmp(scheme, "file") == 0) {
		ret = prov_abs_path(bucket, path, sizeof(path));
		if (ret < 0) {
			prov_set_error("MODELKIT_STORAGE_BUCKET '%s': %s",
				       bucket, strerror(-ret));
			return ret;
		}
		bucket = path;
		return prov_put_url(buf, len, "file://%s%s%s", bucket,
				    *prefix ? "/" : "", prefix);
	}
	return prov_put_url(buf, len, "%s://%s%s%s", scheme, bucket,
			    *prefix ? "/" : "", prefix);
}
