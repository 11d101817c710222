/*
 * azure - the az://container/prefix backend: Azure Blob Storage and
 * Azurite, over the shared curl pool.
 *
 * Configuration, as the Azure tools read it: AZURE_STORAGE_CONNECTION_STRING
 * ("AccountName=..;AccountKey=..", or "SharedAccessSignature=..", with
 * BlobEndpoint for Azurite or other clouds, DefaultEndpointsProtocol and
 * EndpointSuffix, or "UseDevelopmentStorage=true"), else
 * AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY (SharedKey) or
 * AZURE_STORAGE_SAS_TOKEN; with no key and no SAS, requests are anonymous
 * (public containers).
 *
 * SharedKey signs every attempt (x-ms-date changes, and Range and If-Match
 * are part of the string to sign). A SAS is appended to each URL; URLs are
 * never shown: messages name "az://container/key" only. The account key is
 * kept decoded in struct az and nowhere else.
 *
 * The account, key and endpoint are read in azure_config.c; this file
 * signs and makes the requests.
 *
 * Threads: struct az is read-only after open.
 * Errors: negative errno, message via prov_set_error().
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/timeutil.h"
#include "providers/azure_int.h"
#include "providers/curl_list.h"
#include "providers/curl_pool.h"
#include "providers/curl_util.h"
#include "providers/curl_xml.h"

#define AZ_VERSION "2021-12-02"
#define AZ_LIST_BODY_MAX (16u << 20)
#define AZ_MAX_BLOCKS 50000
#define AZ_LIST_PAGES_MAX 100000

static void az_free(struct az *a)
{
	if (!a)
		return;
	cpool_free(&a->pool);
	az_config_free(a);
	free(a);
}

static int az_open(struct prov *p)
{
	struct az *a;
	int ret;

	if (!*p->bucket) {
		prov_set_error("az: the URL names no container "
			       "(az://container/prefix)");
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	ret = az_config_load(a);
	if (ret == 0)
		ret = cpool_new(p, NULL, &a->pool);
	if (ret < 0) {
		az_free(a);
		return ret;
	}
	p->priv = a;
	return 0;
}

static void az_close(struct prov *p)
{
	az_free(p->priv);
	p->priv = NULL;
}

/* ---- SharedKey ---- */

struct az_param {
	char *name; /* decoded, lower-cased */
	char *value; /* decoded */
};

static int cmp_param(const void *x, const void *y)
{
	const struct az_param *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	return c ? c : strcmp(a->value, b->value);
}

/* "\nname:value" lines of the canonicalized resource, from @query. */
static int az_canon_query(const char *query, struct buf *out)
{
	struct az_param params[32];
	char *copy, *save = NULL, *tok;
	size_t n = 0;
	int ret = 0;

	if (!query || !*query)
		return 0;
	copy = strdup(query);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, "&", &save); tok && ret == 0;
	     tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');
		struct buf nb, vb;

		if (n >= sizeof(params) / sizeof(params[0])) {
			ret = -E2BIG;
			break;
		}
		if (eq)
			*eq = '\0';
		buf_init(&nb, 4096);
		buf_init(&vb, 16384);
		ret = cu_url_decode(&nb, tok);
		if (ret == 0)
			ret = cu_url_decode(&vb, eq ? eq + 1 : "");
		if (ret < 0) {
			buf_free(&nb);
			buf_free(&vb);
			break;
		}
		for (char *c = nb.data; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		params[n].name = buf_steal(&nb);
		params[n].value = buf_steal(&vb);
		if (!params[n].name || !params[n].value) {
			free(params[n].name);
			free(params[n].value);
			ret = -ENOMEM;
			break;
		}
		n++;
	}
	qsort(params, n, sizeof(params[0]), cmp_param);
	for (size_t i = 0; i < n && ret == 0; i++) {
		/* repeated names: one line, values joined by ',' */
		if (i > 0 && strcmp(params[i].name, params[i - 1].name) == 0)
			ret = buf_printf(out, ",%s", params[i].value);
		else
			ret = buf_printf(out, "\n%s:%s", params[i].name,
					 params[i].value);
	}
	for (size_t i = 0; i < n; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(copy);
	return ret;
}

static int cmp_line(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int az_sign(void *arg, const char *method, const char *url,
		   struct cr_hdrs *h)
{
	static const char *const std[] = {
		"Content-Encoding", "Content-Language", "Content-Length",
		"Content-MD5", "Content-Type", "Date", "If-Modified-Since",
		"If-Match", "If-None-Match", "If-Unmodified-Since", "Range",
	};
	struct az *a = arg;
	char date[64], *xms[CR_MAX_HDRS], *path = NULL, *query;
	uint8_t mac[CU_SHA256_LEN];
	struct buf sts, sig;
	size_t nx = 0;
	int64_t now;
	int32_t ns;
	int ret;

	time_now(&now, &ns);
	cu_http_date(now, date, sizeof(date));
	ret = cr_hdr_add(h, "x-ms-date", "%s", date);
	if (ret == 0)
		ret = cr_hdr_add(h, "x-ms-version", "%s", AZ_VERSION);
	if (ret < 0 || a->key.len == 0)
		return ret; /* SAS or anonymous: no header */

	buf_init(&sts, 1 << 16);
	buf_init(&sig, 256);
	ret = buf_printf(&sts, "%s\n", method);
	for (size_t i = 0; i < sizeof(std) / sizeof(std[0]) && ret == 0; i++) {
		const char *v = cr_hdr_get(h, std[i]);

		/* since 2015-02-21 a zero length is an empty line */
		if (v && strcmp(std[i], "Content-Length") == 0 &&
		    strcmp(v, "0") == 0)
			v = NULL;
		ret = buf_printf(&sts, "%s\n", v ? v : "");
	}
	/* x-ms-* headers, lower-cased and sorted */
	for (size_t i = 0; i < h->n && ret == 0; i++) {
		if (strncasecmp(h->line[i], "x-ms-", 5) != 0)
			continue;
		xms[nx] = strdup(h->line[i]);
		if (!xms[nx]) {
			ret = -ENOMEM;
			break;
		}
		for (char *c = xms[nx]; *c && *c != ':'; c++)
			*c = (char)tolower((unsigned char)*c);
		nx++;
	}
	qsort(xms, nx, sizeof(xms[0]), cmp_line);
	for (size_t i = 0; i < nx && ret == 0; i++) {
		char *colon = strchr(xms[i], ':');
		const char *v = colon ? colon + 1 : "";

		while (*v == ' ')
			v++;
		ret = buf_printf(&sts, "%.*s:%s\n",
				 (int)(colon ? colon - xms[i] : 0), xms[i], v);
	}
	/* canonicalized resource: /account/path plus the query */
	if (ret == 0) {
		const char *ps = strchr(strstr(url, "://") + 3, '/');

		path = strdup(ps ? ps : "/");
		if (!path)
			ret = -ENOMEM;
	}
	if (ret == 0) {
		query = strchr(path, '?');
		if (query)
			*query++ = '\0';
		ret = buf_printf(&sts, "/%s%s", a->account, path);
		if (ret == 0)
			ret = az_canon_query(query, &sts);
	}
	if (ret == 0)
		ret = cu_hmac_sha256(a->key.data, a->key.len, sts.data, sts.len,
				     mac);
	if (ret == 0)
		ret = cu_base64(&sig, mac, sizeof(mac), false);
	if (ret == 0)
		ret = cr_hdr_add(h, "Authorization", "SharedKey %s:%s",
				 a->account, sig.data);
	for (size_t i = 0; i < nx; i++)
		free(xms[i]);
	free(path);
	buf_free(&sts);
	buf_free(&sig);
	return ret;
}

/* ---- requests ---- */

struct az_call {
	struct buf url, what;
	const char *hdrs[4];
};

/*
 * URL of @key (or of the container when NULL) with @query (encoded,
 * without '?', may be NULL) and the SAS appended.
 */
static int az_call_init(struct prov *p, struct az_call *c,
			const char *method, const char *key,
			const char *query)
{
	struct az *a = p->priv;
	char full[PROV_URL_MAX] = "";
	bool q = false;
	int ret;

	buf_init(&c->url, PROV_URL_MAX * 4);
	buf_init(&c->what, PROV_URL_MAX);
	c->hdrs[0] = NULL;
	ret = buf_printf(&c->url, "%s/", a->endpoint);
	if (ret == 0)
		ret = cu_url_encode(&c->url, p->bucket, false);
	if (ret == 0 && key) {
		ret = prov_full_key(p, key, full, sizeof(full));
		if (ret == 0)
			ret = buf_puts(&c->url, "/");
		if (ret == 0)
			ret = cu_url_encode(&c->url, full, true);
	}
	if (ret == 0 && query && *query) {
		ret = buf_printf(&c->url, "?%s", query);
		q = true;
	}
	if (ret == 0 && a->sas)
		ret = buf_printf(&c->url, "%c%s", q ? '&' : '?', a->sas);
	if (ret == 0)
		ret = buf_printf(&c->what, "%s az://%s/%s", method, p->bucket,
				 full);
	return ret;
}

static void az_call_free(struct az_call *c)
{
	buf_free(&c->url);
	buf_free(&c->what);
}

static void az_req_init(struct prov *p, struct cr_req *r, struct az_call *c,
			const char *method)
{
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->url = c->url.data;
	r->what = c->what.data;
	r->headers = c->hdrs;
	r->sign = az_sign;
	r->sign_arg = p->priv;
	r->body_fd = -1;
}

/* Azure's names for auth failures, made plain. */
static void az_explain(struct cr_req *r, int ret)
{
	if (ret == -EACCES && (strcmp(r->err_code, "AuthenticationFailed") ==
				       0 ||
			       strcmp(r->err_code, "AuthorizationFailure") ==
				       0))
		prov_set_error("%s: HTTP %ld %s: the account key or SAS was "
			       "refused", r->what, r->status, r->err_code);
	else if (ret == -ENOENT && strcmp(r->err_code, "ContainerNotFound") == 0)
		prov_set_error("%s: no such container", r->what);
	else if (ret == -ENOENT)
		prov_set_error("%s: no such object", r->what);
}

static int az_list_fetch(struct prov *p, struct cl_page *pg)
{
	struct az *a = p->priv;
	struct buf *q = pg->query;
	struct az_call c;
	struct cr_req r;
	int ret;

	ret = buf_puts(q, "restype=container&comp=list");
	if (ret == 0 && pg->delimited)
		ret = buf_puts(q, "&delimiter=%2F");
	if (ret == 0 && pg->token->len) {
		ret = buf_puts(q, "&marker=");
		if (ret == 0)
			ret = cu_url_encode(q, pg->token->data, false);
	}
	if (ret == 0 && a->page_size > 0)
		ret = buf_printf(q, "&maxresults=%d", a->page_size);
	if (ret == 0 && *pg->full) {
		ret = buf_puts(q, "&prefix=");
		if (ret == 0)
			ret = cu_url_encode(q, pg->full, false);
	}
	if (ret < 0)
		return ret;
	ret = az_call_init(p, &c, "LIST", NULL, q->data);
	if (ret < 0)
		goto out;
	az_req_init(p, &r, &c, "GET");
	r.what = pg->what;
	r.out = pg->body;
	ret = cr_run(a->pool, p, &r);
	if (ret < 0)
		az_explain(&r, ret);
out:
	az_call_free(&c);
	return ret;
}

static const struct cl_xml_names az_list_names = {
	.object = "Blob", .key = "Name", .size = "Content-Length",
	.etag = "Etag", .mtime = "Last-Modified", .prefix = "BlobPrefix",
	.prefix_key = "Name", .parse_mtime = cu_parse_http_date,
	.quote_etags = true,
};

static int az_list_parse(struct prov *p, struct cl_page *pg)
{
	int ret;

	(void)p;
	ret = cl_parse_xml(pg, &az_list_names);
	if (ret == 0)
		cx_find_text(pg->body->data ? pg->body->data : "",
			     pg->body->len, "NextMarker", pg->token);
	return ret;
}

static const struct cl_pager az_pager = {
	.scheme = "az",
	.body_max = AZ_LIST_BODY_MAX,
	.max_pages = AZ_LIST_PAGES_MAX,
	.fetch = az_list_fetch,
	.parse = az_list_parse,
};

static int az_list(struct prov *p, const char *prefix, bool delimited,
		   struct prov_listing *out)
{
	return cl_list_paged(p, &az_pager, prefix, delimited, out);
}

static int az_head(struct prov *p, const char *key, struct prov_object *out)
{
	struct az *a = p->priv;
	struct az_call c;
	struct cr_req r;
	int ret;

	ret = az_call_init(p, &c, "HEAD", key, NULL);
	if (ret < 0)
		goto out;
	az_req_init(p, &r, &c, "HEAD");
	ret = cr_run(a->pool, p, &r);
	if (ret < 0) {
		az_explain(&r, ret);
		goto out;
	}
	ret = cr_head_object(&r, key, out);
out:
	az_call_free(&c);
	return ret;
}

static int64_t az_get(struct prov *p, const char *key, uint64_t off,
		      uint64_t len, const char *if_match, prov_sink_fn sink,
		      void *arg)
{
	struct az *a = p->priv;
	struct az_call c;
	struct cr_req r;
	int ret;

	memset(&r, 0, sizeof(r));
	ret = az_call_init(p, &c, "GET", key, NULL);
	if (ret < 0)
		goto out;
	az_req_init(p, &r, &c, "GET");
	cr_req_set_range(&r, off, len, if_match, sink, arg);
	ret = cr_run(a->pool, p, &r);
	if (ret < 0)
		az_explain(&r, ret);
out:
	az_call_free(&c);
	return ret < 0 ? ret : (int64_t)r.delivered;
}

/* The body of one PUT: memory, a whole file, or one part of a file. */
struct az_body {
	const void *data;
	size_t len;
	int fd; /* -1 for @data */
	uint64_t size;
	const struct cr_part *part; /* of @fd, or NULL */
	prov_progress_fn progress;  /* whole-file progress, may be NULL */
	void *arg;
};

/* One PUT of @b. */
static int az_put_call(struct prov *p, const char *key, const char *query,
		       const char *const *extra, const struct az_body *b)
{
	struct az *a = p->priv;
	struct az_call c;
	struct cr_req r;
	int ret;

	ret = az_call_init(p, &c, "PUT", key, query);
	if (ret < 0)
		goto out;
	az_req_init(p, &r, &c, "PUT");
	if (extra)
		r.headers = extra;
	if (b->part) {
		cr_req_set_part(&r, b->fd, b->part);
	} else {
		cr_req_set_body(&r, b->data, b->len, b->fd, 0, b->size);
		r.progress = b->progress;
		r.progress_arg = b->arg;
	}
	ret = cr_run(a->pool, p, &r);
	if (ret < 0)
		az_explain(&r, ret);
out:
	az_call_free(&c);
	return ret;
}

static const char *const az_blob_hdrs[] = { "x-ms-blob-type: BlockBlob",
					    NULL };

static int az_put_buf(struct prov *p, const char *key, const void *data,
		      size_t len)
{
	struct az_body b = { .data = data, .len = len, .fd = -1 };

	return az_put_call(p, key, NULL, az_blob_hdrs, &b);
}

struct az_parts {
	struct prov *p;
	const char *key;
	int fd;
};

/* Block ids of one blob must all have the same length. */
static int az_block_id(size_t i, struct buf *id)
{
	char raw[32];

	snprintf(raw, sizeof(raw), "block-%010zu", i);
	return cu_base64(id, raw, strlen(raw), false);
}

/* Put Block @part; run concurrently. */
static int az_put_block(void *arg, const struct cr_part *part)
{
	struct az_parts *ap = arg;
	struct az_body b = { .fd = ap->fd, .part = part };
	struct buf q, id;
	int ret;

	buf_init(&q, 512);
	buf_init(&id, 64);
	ret = az_block_id(part->i, &id);
	if (ret == 0)
		ret = buf_puts(&q, "comp=block&blockid=");
	if (ret == 0)
		ret = cu_url_encode(&q, id.data, false);
	if (ret == 0)
		ret = az_put_call(ap->p, ap->key, q.data, NULL, &b);
	buf_free(&q);
	buf_free(&id);
	return ret;
}

static int az_put_blocks(struct prov *p, const char *key, int fd,
			 uint64_t size, prov_progress_fn progress, void *arg)
{
	struct az *a = p->priv;
	struct az_parts ap = { .p = p, .key = key, .fd = fd };
	struct az_body b = { .fd = -1 };
	uint64_t bs = a->block_size, n;
	struct buf list, id;
	int ret;

	n = cr_parts_plan(size, &bs, AZ_MAX_BLOCKS);
	ret = cr_parts_run(size, bs, n, az_put_block, &ap, progress, arg);
	if (ret < 0)
		return ret;
	buf_init(&list, (size_t)n * 64 + 256);
	buf_init(&id, 64);
	ret = buf_puts(&list, "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
			      "<BlockList>");
	for (uint64_t i = 0; i < n && ret == 0; i++) {
		buf_reset(&id);
		ret = az_block_id((size_t)i, &id);
		if (ret == 0)
			ret = buf_printf(&list, "<Latest>%s</Latest>",
					 id.data);
	}
	if (ret == 0)
		ret = buf_puts(&list, "</BlockList>");
	b.data = list.data;
	b.len = list.len;
	if (ret == 0)
		ret = az_put_call(p, key, "comp=blocklist", NULL, &b);
	buf_free(&list);
	buf_free(&id);
	return ret;
}

static int az_put_file(struct prov *p, const char *key, int fd, uint64_t size,
		       prov_progress_fn progress, void *arg)
{
	struct az *a = p->priv;
	struct az_body b = { .fd = fd, .size = size, .progress = progress,
			     .arg = arg };

	if (size > a->put_threshold)
		return az_put_blocks(p, key, fd, size, progress, arg);
	return az_put_call(p, key, NULL, az_blob_hdrs, &b);
}

static int az_del(struct prov *p, const char *key)
{
	struct az *a = p->priv;
	struct az_call c;
	struct cr_req r;
	int ret;

	ret = az_call_init(p, &c, "DELETE", key, NULL);
	if (ret == 0) {
		az_req_init(p, &r, &c, "DELETE");
		ret = cr_run(a->pool, p, &r);
		if (ret == -ENOENT)
			ret = 0;
		else if (ret < 0)
			az_explain(&r, ret);
	}
	az_call_free(&c);
	return ret;
}

const struct prov_ops prov_az_ops = {
	.scheme = "az",
	.can_list = true,
	.can_put = true,
	.open = az_open,
	.close = az_close,
	.list = az_list,
	.head = az_head,
	.get = az_get,
	.put_buf = az_put_buf,
	.put_file = az_put_file,
	.del = az_del,
};
