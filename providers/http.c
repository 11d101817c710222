/*
 * http - the http:// and https:// backend: a store served by a plain
 * static web server (nginx, a CDN, S3 website hosting).
 *
 * A static server can answer GET (with Range and If-Match) and HEAD, and
 * nothing else: there is no listing (can_list is false, so the store
 * module falls back to <prefix>/assets.index) and no writing (can_put is
 * false: provider.c answers -EROFS, "this store is read-only"). Push to
 * whatever the server serves from, then let it serve the result.
 *
 * Auth: none, or "Authorization: Bearer <token>" with the token read once
 * at open from opts.bearer_token_file, else from the file named by
 * ASSETFS_BEARER_TOKEN_FILE (so every command and the mount can use one
 * without an option of their own). The token lives only in struct
 * http_store and the request headers; it is never logged.
 *
 * Threads: struct http_store is read-only after open.
 * Errors: negative errno, message via prov_set_error().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/fileutil.h"
#include "providers/curl_pool.h"
#include "providers/curl_util.h"
#include "providers/provider_int.h"

#define HTTP_TOKEN_MAX 16384

struct http_store {
	struct cpool *pool;
	char *base;  /* "https://host:port" */
	char *token; /* bearer token or NULL */
};

static void http_free(struct http_store *h)
{
	if (!h)
		return;
	cpool_free(&h->pool);
	free(h->base);
	if (h->token)
		OPENSSL_cleanse(h->token, strlen(h->token));
	free(h->token);
	free(h);
}

static int http_read_token(const char *path, char **out)
{
	struct buf b;
	char *t;
	int ret;

	buf_init(&b, HTTP_TOKEN_MAX);
	ret = file_read_capped(path, HTTP_TOKEN_MAX, &b);
	if (ret < 0) {
		prov_set_error("bearer token file %s: %s", path,
			       ret == -EFBIG ? "too large" : strerror(-ret));
		goto out;
	}
	t = cu_trim(b.data ? b.data : (char *)"");
	if (!*t || strpbrk(t, "\r\n")) {
		prov_set_error("bearer token file %s: %s", path,
			       *t ? "more than one line" : "empty");
		ret = -EINVAL;
		goto out;
	}
	*out = strdup(t);
	ret = *out ? 0 : -ENOMEM;
out:
	if (b.data)
		OPENSSL_cleanse(b.data, b.len);
	buf_free(&b);
	return ret;
}

static int http_open(struct prov *p)
{
	struct http_store *h;
	const char *tf;
	int ret;

	if (!*p->bucket) {
		prov_set_error("%s: the URL names no host", p->url);
		return -EINVAL;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (asprintf(&h->base, "%s://%s", p->scheme, p->bucket) < 0) {
		h->base = NULL;
		ret = -ENOMEM;
		goto fail;
	}
	tf = p->opts.bearer_token_file;
	if (!tf || !*tf)
		tf = getenv("ASSETFS_BEARER_TOKEN_FILE");
	if (tf && *tf) {
		ret = http_read_token(tf, &h->token);
		if (ret < 0)
			goto fail;
	}
	ret = cpool_new(p, NULL, &h->pool);
	if (ret < 0)
		goto fail;
	p->priv = h;
	return 0;
fail:
	http_free(h);
	return ret;
}

static void http_close(struct prov *p)
{
	http_free(p->priv);
	p->priv = NULL;
}

static int http_sign(void *arg, const char *method, const char *url,
		     struct cr_hdrs *hd)
{
	struct http_store *h = arg;

	(void)method;
	(void)url;
	if (!h->token)
		return 0;
	return cr_hdr_add(hd, "Authorization", "Bearer %s", h->token);
}

/* URL and message for @key. */
static int http_prepare(struct prov *p, const char *method, const char *key,
			struct buf *url, struct buf *what)
{
	struct http_store *h = p->priv;
	char full[PROV_URL_MAX];
	int ret;

	buf_init(url, PROV_URL_MAX * 3);
	buf_init(what, PROV_URL_MAX * 2);
	ret = prov_full_key(p, key, full, sizeof(full));
	if (ret == 0)
		ret = buf_printf(url, "%s/", h->base);
	if (ret == 0)
		ret = cu_url_encode(url, full, true);
	if (ret == 0)
		ret = buf_printf(what, "%s %s/%s", method, h->base, full);
	return ret;
}

static void http_req_init(struct prov *p, struct cr_req *r,
			  const char *method, struct buf *url,
			  struct buf *what)
{
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->url = url->data;
	r->what = what->data;
	r->sign = http_sign;
	r->sign_arg = p->priv;
	r->body_fd = -1;
}

static int http_head(struct prov *p, const char *key, struct prov_object *out)
{
	struct http_store *h = p->priv;
	struct buf url, what;
	struct cr_req r;
	int ret;

	ret = http_prepare(p, "HEAD", key, &url, &what);
	if (ret < 0)
		goto out;
	http_req_init(p, &r, "HEAD", &url, &what);
	ret = cr_run(h->pool, p, &r);
	if (ret == -ENOENT)
		prov_set_error("%s: no such object", what.data);
	if (ret < 0)
		goto out;
	ret = cr_head_object(&r, key, out);
out:
	buf_free(&url);
	buf_free(&what);
	return ret;
}

static int64_t http_get(struct prov *p, const char *key, uint64_t off,
			uint64_t len, const char *if_match, prov_sink_fn sink,
			void *arg)
{
	struct http_store *h = p->priv;
	struct buf url, what;
	struct cr_req r;
	int ret;

	memset(&r, 0, sizeof(r));
	ret = http_prepare(p, "GET", key, &url, &what);
	if (ret < 0)
		goto out;
	http_req_init(p, &r, "GET", &url, &what);
	cr_req_set_range(&r, off, len, if_match, sink, arg);
	ret = cr_run(h->pool, p, &r);
	if (ret == -ENOENT)
		prov_set_error("%s: no such object", what.data);
out:
	buf_free(&url);
	buf_free(&what);
	return ret < 0 ? ret : (int64_t)r.delivered;
}

/* Shared by "http" and "https"; provider.c picks it for both schemes. */
const struct prov_ops prov_http_ops = {
	.scheme = "http",
	.can_list = false,
	.can_put = false,
	.open = http_open,
	.close = http_close,
	.head = http_head,
	.get = http_get,
};
