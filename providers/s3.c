/*
 * s3 - the s3:// backend: Amazon S3 and S3-compatible servers (MinIO,
 * s3rver, Ceph), SigV4 header auth over the shared curl pool.
 *
 * Credentials, as the AWS tools look for them: AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; else the profile AWS_PROFILE
 * (or "default") in AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
 * AWS_CONFIG_FILE (~/.aws/config); else anonymous (unsigned requests, for
 * public buckets). Region: AWS_REGION, AWS_DEFAULT_REGION, the profile,
 * then us-east-1. Endpoint: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or
 * S3_ENDPOINT with path-style addressing; otherwise virtual-hosted AWS
 * endpoints. TLS trust: AWS_CA_BUNDLE, then the generic variables.
 *
 * Requests sign host, x-amz-date, x-amz-content-sha256 (the body's hash for
 * small puts, UNSIGNED-PAYLOAD otherwise) and x-amz-security-token. The
 * keys live only in struct s3 and in the signing call; messages name the
 * bucket and key only.
 *
 * Credentials, region and endpoint are read in s3_config.c; this file
 * makes the requests.
 *
 * Threads: after open, struct s3 is read-only; everything else is per
 * request. Errors: negative errno, message via prov_set_error().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/timeutil.h"
#include "providers/curl_list.h"
#include "providers/curl_pool.h"
#include "providers/curl_util.h"
#include "providers/curl_xml.h"
#include "providers/s3_int.h"
#include "providers/sigv4.h"

#define S3_LIST_BODY_MAX (16u << 20)
#define S3_SMALL_BODY_MAX (1u << 20)
#define S3_MAX_PARTS 10000
#define S3_LIST_PAGES_MAX 100000

struct s3_sign {
	struct s3 *s;
	const char *payload_hash;
};

static void s3_free(struct s3 *s)
{
	if (!s)
		return;
	cpool_free(&s->pool);
	s3_config_free(s);
	free(s);
}

static int s3_open(struct prov *p)
{
	struct s3 *s;
	int ret;

	if (!*p->bucket) {
		prov_set_error("s3: the URL names no bucket (s3://bucket/prefix)");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	ret = s3_config_load(p, s);
	if (ret == 0)
		ret = cpool_new(p, "AWS_CA_BUNDLE", &s->pool);
	if (ret < 0) {
		s3_free(s);
		return ret;
	}
	p->priv = s;
	return 0;
}

static void s3_close(struct prov *p)
{
	s3_free(p->priv);
	p->priv = NULL;
}

/* ---- signing ---- */

static int s3_sign_cb(void *arg, const char *method, const char *url,
		      struct cr_hdrs *h)
{
	struct s3_sign *sg = arg;
	struct s3 *s = sg->s;
	struct sigv4_hdr sh[SIGV4_MAX_HEADERS];
	char amz_date[20], *path = NULL, *query;
	const char *pstart;
	struct buf auth;
	int64_t now;
	int32_t ns;
	struct tm tm;
	time_t t;
	size_t n = 0;
	int ret;

	buf_init(&auth, 4096);
	if (!s->access_key)
		return 0; /* anonymous */
	time_now(&now, &ns);
	t = (time_t)now;
	gmtime_r(&t, &tm);
	strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
	ret = cr_hdr_add(h, "x-amz-date", "%s", amz_date);
	if (ret == 0)
		ret = cr_hdr_add(h, "x-amz-content-sha256", "%s",
				 sg->payload_hash);
	if (ret == 0 && s->token)
		ret = cr_hdr_add(h, "x-amz-security-token", "%s", s->token);
	if (ret < 0)
		return ret;
	/* sign Host and every x-amz-* header we send */
	for (size_t i = 0; i < h->n && n < SIGV4_MAX_HEADERS; i++) {
		char *colon = strchr(h->line[i], ':');

		if (!colon)
			continue;
		if (strncasecmp(h->line[i], "host:", 5) == 0 ||
		    strncasecmp(h->line[i], "x-amz-", 6) == 0) {
			*colon = '\0';
			sh[n].name = h->line[i];
			sh[n].value = colon + 1;
			n++;
		}
	}
	pstart = strchr(strstr(url, "://") + 3, '/');
	path = strdup(pstart ? pstart : "/");
	if (!path) {
		ret = -ENOMEM;
		goto out;
	}
	query = strchr(path, '?');
	if (query)
		*query++ = '\0';
	{
		struct sigv4_req r = {
			.method = method, .path = path, .query = query,
			.headers = sh, .n_headers = n,
			.payload_hash = sg->payload_hash, .amz_date = amz_date,
			.region = s->region, .service = "s3",
		};

		ret = sigv4_authorization(&r, s->access_key, s->secret_key,
					  &auth);
	}
out:
	/* restore the ':' we cut for signing */
	for (size_t i = 0; i < n; i++)
		((char *)sh[i].name)[strlen(sh[i].name)] = ':';
	if (ret == 0)
		ret = cr_hdr_add(h, "Authorization", "%s", auth.data);
	buf_free(&auth);
	free(path);
	return ret;
}

/* ---- URLs ---- */

/* Full key "prefix/key" percent-encoded into @enc. */
static int s3_key_path(struct prov *p, struct s3 *s, const char *key,
		       struct buf *path)
{
	char full[PROV_URL_MAX];
	int ret;

	ret = prov_full_key(p, key, full, sizeof(full));
	if (ret < 0)
		return ret;
	ret = buf_printf(path, "%s/", s->path_base);
	if (ret == 0)
		ret = cu_url_encode(path, full, true);
	return ret;
}

struct s3_call {
	struct buf url, what;
	struct s3_sign sign;
	const char *hdrs[4];
	char host_hdr[300];
};

static int s3_call_init(struct prov *p, struct s3 *s, struct s3_call *c,
			const char *method, const char *key,
			const char *query)
{
	int ret;

	buf_init(&c->url, PROV_URL_MAX * 3);
	buf_init(&c->what, PROV_URL_MAX);
	c->sign.s = s;
	c->sign.payload_hash = "UNSIGNED-PAYLOAD";
	snprintf(c->host_hdr, sizeof(c->host_hdr), "Host: %s", s->host);
	c->hdrs[0] = c->host_hdr;
	c->hdrs[1] = NULL;
	ret = buf_puts(&c->url, s->base);
	if (ret == 0 && key)
		ret = s3_key_path(p, s, key, &c->url);
	else if (ret == 0)
		ret = buf_printf(&c->url, "%s",
				 *s->path_base ? s->path_base : "/");
	if (ret == 0 && query && *query)
		ret = buf_printf(&c->url, "?%s", query);
	if (ret == 0) {
		char full[PROV_URL_MAX] = "";

		if (key)
			prov_full_key(p, key, full, sizeof(full));
		ret = buf_printf(&c->what, "%s s3://%s/%s", method, p->bucket,
				 full);
	}
	return ret;
}

static void s3_call_free(struct s3_call *c)
{
	buf_free(&c->url);
	buf_free(&c->what);
}

static void s3_req_init(struct cr_req *r, struct s3_call *c,
			const char *method)
{
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->url = c->url.data;
	r->what = c->what.data;
	r->headers = c->hdrs;
	r->sign = s3_sign_cb;
	r->sign_arg = &c->sign;
	r->body_fd = -1;
	r->capture_hdr = "x-amz-bucket-region";
}

/*
 * cr_run(), and when S3 says the bucket lives in another region (301,
 * 400 AuthorizationHeaderMalformed, 403 with x-amz-bucket-region), a
 * message that says which region to set.
 */
static int s3_run(struct prov *p, struct s3 *s, struct cr_req *r)
{
	int ret = cr_run(s->pool, p, r);
	const char *reg = r->captured;

	(void)p;
	if (ret < 0 && reg[0] && strlen(reg) < 40 &&
	    strspn(reg, "abcdefghijklmnopqrstuvwxyz0123456789-") ==
		    strlen(reg) &&
	    strcmp(reg, s->region) != 0)
		prov_set_error("%s: HTTP %ld%s%s: the bucket is in region %s, "
			       "not %s (set AWS_REGION=%s)",
			       r->what, r->status, r->err_code[0] ? " " : "",
			       r->err_code, reg, s->region, reg);
	return ret;
}

/* ---- operations ---- */

static int s3_list_fetch(struct prov *p, struct cl_page *pg)
{
	struct s3 *s = p->priv;
	struct buf *q = pg->query;
	struct s3_call c;
	struct cr_req r;
	int ret = 0;

	if (pg->token->len) {
		ret = buf_puts(q, "continuation-token=");
		if (ret == 0)
			ret = cu_url_encode(q, pg->token->data, false);
		if (ret == 0)
			ret = buf_puts(q, "&");
	}
	if (ret == 0 && pg->delimited)
		ret = buf_puts(q, "delimiter=%2F&");
	if (ret == 0)
		ret = buf_puts(q, "list-type=2");
	if (ret == 0 && s->page_size > 0)
		ret = buf_printf(q, "&max-keys=%d", s->page_size);
	if (ret == 0)
		ret = buf_puts(q, "&prefix=");
	if (ret == 0)
		ret = cu_url_encode(q, pg->full, false);
	if (ret < 0)
		return ret;
	ret = s3_call_init(p, s, &c, "LIST", NULL, q->data);
	if (ret < 0)
		goto out;
	s3_req_init(&r, &c, "GET");
	r.what = pg->what;
	r.out = pg->body;
	ret = s3_run(p, s, &r);
	if (ret == -ENOENT)
		prov_set_error("LIST s3://%s: no such bucket", p->bucket);
out:
	s3_call_free(&c);
	return ret;
}

static int64_t s3_parse_mtime(const char *s)
{
	int64_t sec = 0;
	int32_t nsec;

	return time_parse_iso8601(s, &sec, &nsec) < 0 ? 0 : sec;
}

static const struct cl_xml_names s3_list_names = {
	.object = "Contents", .key = "Key", .size = "Size", .etag = "ETag",
	.mtime = "LastModified", .prefix = "CommonPrefixes",
	.prefix_key = "Prefix", .parse_mtime = s3_parse_mtime,
};

static int s3_list_parse(struct prov *p, struct cl_page *pg)
{
	const char *doc = pg->body->data ? pg->body->data : "";
	struct buf v;
	int ret;

	(void)p;
	ret = cl_parse_xml(pg, &s3_list_names);
	if (ret < 0)
		return ret;
	buf_init(&v, 64);
	if (cx_find_text(doc, pg->body->len, "IsTruncated", &v) == 0 &&
	    strcmp(v.data, "true") == 0 &&
	    (cx_find_text(doc, pg->body->len, "NextContinuationToken",
			  pg->token) < 0 ||
	     pg->token->len == 0)) {
		ret = -EIO;
		prov_set_error("%s: truncated listing without a "
			       "continuation token", pg->what);
	}
	buf_free(&v);
	return ret;
}

static const struct cl_pager s3_pager = {
	.scheme = "s3",
	.body_max = S3_LIST_BODY_MAX,
	.max_pages = S3_LIST_PAGES_MAX,
	.fetch = s3_list_fetch,
	.parse = s3_list_parse,
};

static int s3_list(struct prov *p, const char *prefix, bool delimited,
		   struct prov_listing *out)
{
	return cl_list_paged(p, &s3_pager, prefix, delimited, out);
}

static int s3_head(struct prov *p, const char *key, struct prov_object *out)
{
	struct s3 *s = p->priv;
	struct s3_call c;
	struct cr_req r;
	int ret;

	ret = s3_call_init(p, s, &c, "HEAD", key, NULL);
	if (ret < 0)
		goto out;
	s3_req_init(&r, &c, "HEAD");
	ret = s3_run(p, s, &r);
	if (ret == -ENOENT)
		prov_set_error("%s: no such object", c.what.data);
	if (ret < 0)
		goto out;
	ret = cr_head_object(&r, key, out);
out:
	s3_call_free(&c);
	return ret;
}

static int64_t s3_get(struct prov *p, const char *key, uint64_t off,
		      uint64_t len, const char *if_match, prov_sink_fn sink,
		      void *arg)
{
	struct s3 *s = p->priv;
	struct s3_call c;
	struct cr_req r;
	int ret;

	ret = s3_call_init(p, s, &c, "GET", key, NULL);
	if (ret < 0)
		goto out;
	s3_req_init(&r, &c, "GET");
	cr_req_set_range(&r, off, len, if_match, sink, arg);
	ret = s3_run(p, s, &r);
	if (ret == -ENOENT)
		prov_set_error("%s: no such object", c.what.data);
out:
	s3_call_free(&c);
	return ret < 0 ? ret : (int64_t)r.delivered;
}

static int s3_put_one(struct prov *p, const char *key, const void *data,
		      size_t len, int fd, uint64_t size,
		      prov_progress_fn progress, void *arg)
{
	struct s3 *s = p->priv;
	char hash[CU_SHA256_HEX_LEN + 1];
	struct s3_call c;
	struct cr_req r;
	int ret;

	ret = s3_call_init(p, s, &c, "PUT", key, NULL);
	if (ret < 0)
		goto out;
	s3_req_init(&r, &c, "PUT");
	if (fd < 0) {
		ret = cu_sha256_hex(data, len, hash);
		if (ret < 0)
			goto out;
		c.sign.payload_hash = hash;
	}
	cr_req_set_body(&r, data, len, fd, 0, size);
	r.progress = progress;
	r.progress_arg = arg;
	ret = s3_run(p, s, &r);
out:
	s3_call_free(&c);
	return ret;
}

static int s3_put_buf(struct prov *p, const char *key, const void *data,
		      size_t len)
{
	return s3_put_one(p, key, data, len, -1, 0, NULL, NULL);
}

/* POST/DELETE on a multipart upload; body/out optional. */
static int s3_mp_call(struct prov *p, const char *method, const char *key,
		      const char *query, const char *body, struct buf *out)
{
	struct s3 *s = p->priv;
	char hash[CU_SHA256_HEX_LEN + 1];
	struct s3_call c;
	struct cr_req r;
	int ret;

	ret = s3_call_init(p, s, &c, method, key, query);
	if (ret < 0)
		goto out;
	s3_req_init(&r, &c, method);
	if (body) {
		cr_req_set_body(&r, body, strlen(body), -1, 0, 0);
		ret = cu_sha256_hex(body, r.body_len, hash);
		if (ret < 0)
			goto out;
		c.sign.payload_hash = hash;
	}
	r.out = out;
	ret = s3_run(p, s, &r);
out:
	s3_call_free(&c);
	return ret;
}

struct s3_parts {
	struct prov *p;
	struct s3 *s;
	const char *key;
	int fd;
	const char *upload_id;
	char **etags;	/* one slot per part, each written by its own part */
};

/* Upload one part of a multipart upload; run concurrently. */
static int s3_put_part(void *arg, const struct cr_part *part)
{
	struct s3_parts *sp = arg;
	struct s3_call c;
	struct cr_req r;
	struct buf q;
	int ret;

	buf_init(&q, 4096);
	ret = buf_printf(&q, "partNumber=%zu&uploadId=", part->i + 1);
	if (ret == 0)
		ret = cu_url_encode(&q, sp->upload_id, false);
	if (ret < 0) {
		buf_free(&q);
		return ret;
	}
	ret = s3_call_init(sp->p, sp->s, &c, "PUT", sp->key, q.data);
	if (ret < 0)
		goto out;
	s3_req_init(&r, &c, "PUT");
	cr_req_set_part(&r, sp->fd, part);
	ret = s3_run(sp->p, sp->s, &r);
	if (ret == 0 && !r.etag[0]) {
		prov_set_error("%s: no ETag for part %zu", c.what.data,
			       part->i + 1);
		ret = -EIO;
	}
	if (ret == 0) {
		sp->etags[part->i] = strdup(r.etag);
		if (!sp->etags[part->i])
			ret = -ENOMEM;
	}
out:
	s3_call_free(&c);
	buf_free(&q);
	return ret;
}

static int s3_put_multipart(struct prov *p, const char *key, int fd,
			    uint64_t size, prov_progress_fn progress,
			    void *arg)
{
	struct s3 *s = p->priv;
	struct buf resp, upload_id, q, done;
	struct s3_parts sp = { .p = p, .s = s, .key = key, .fd = fd };
	uint64_t part = s->part_size, nparts;
	char **etags = NULL;
	int ret;

	nparts = cr_parts_plan(size, &part, S3_MAX_PARTS);
	buf_init(&resp, S3_SMALL_BODY_MAX);
	buf_init(&upload_id, 1024);
	buf_init(&q, 4096);
	buf_init(&done, (size_t)nparts * 200 + 4096);
	etags = calloc((size_t)nparts, sizeof(*etags));
	if (!etags) {
		ret = -ENOMEM;
		goto out;
	}
	ret = s3_mp_call(p, "POST", key, "uploads=", NULL, &resp);
	if (ret < 0)
		goto out;
	if (cx_find_text(resp.data ? resp.data : "", resp.len, "UploadId",
			 &upload_id) < 0 ||
	    !upload_id.len) {
		prov_set_error("PUT s3://%s: no UploadId in the reply",
			       p->bucket);
		ret = -EIO;
		goto out;
	}
	sp.upload_id = upload_id.data;
	sp.etags = etags;
	ret = cr_parts_run(size, part, nparts, s3_put_part, &sp, progress,
			   arg);
	if (ret < 0)
		goto abort;
	ret = buf_puts(&done, "<CompleteMultipartUpload>");
	for (uint64_t i = 0; i < nparts && ret == 0; i++) {
		ret = buf_printf(&done, "<Part><PartNumber>%" PRIu64
				 "</PartNumber><ETag>", i + 1);
		if (ret == 0)
			ret = cx_escape(&done, etags[i]);
		if (ret == 0)
			ret = buf_puts(&done, "</ETag></Part>");
	}
	if (ret == 0)
		ret = buf_puts(&done, "</CompleteMultipartUpload>");
	buf_reset(&q);
	if (ret == 0)
		ret = buf_puts(&q, "uploadId=");
	if (ret == 0)
		ret = cu_url_encode(&q, upload_id.data, false);
	buf_reset(&resp);
	if (ret == 0)
		ret = s3_mp_call(p, "POST", key, q.data, done.data, &resp);
	/* a 200 whose body is an <Error> is a failure (S3 does this) */
	if (ret == 0 && resp.data && strstr(resp.data, "<Error>")) {
		prov_set_error("PUT s3://%s: completing the upload failed",
			       p->bucket);
		ret = -EIO;
	}
	if (ret == 0)
		goto out;
abort: {
	char msg[512];
	int r2;

	snprintf(msg, sizeof(msg), "%s", prov_last_error());
	buf_reset(&q);
	r2 = buf_puts(&q, "uploadId=");
	if (r2 == 0)
		r2 = cu_url_encode(&q, upload_id.data, false);
	if (r2 == 0)
		s3_mp_call(p, "DELETE", key, q.data, NULL, NULL);
	prov_set_error("%s", msg);
}
out:
	for (uint64_t i = 0; etags && i < nparts; i++)
		free(etags[i]);
	free(etags);
	buf_free(&resp);
	buf_free(&upload_id);
	buf_free(&q);
	buf_free(&done);
	return ret;
}

static int s3_put_file(struct prov *p, const char *key, int fd,
		       uint64_t size, prov_progress_fn progress, void *arg)
{
	struct s3 *s = p->priv;

	if (size > s->multipart_threshold)
		return s3_put_multipart(p, key, fd, size, progress, arg);
	return s3_put_one(p, key, NULL, 0, fd, size, progress, arg);
}

static int s3_del(struct prov *p, const char *key)
{
	int ret = s3_mp_call(p, "DELETE", key, NULL, NULL, NULL);

	return ret == -ENOENT ? 0 : ret;
}

const struct prov_ops prov_s3_ops = {
	.scheme = "s3",
	.can_list = true,
	.can_put = true,
	.open = s3_open,
	.close = s3_close,
	.list = s3_list,
	.head = s3_head,
	.get = s3_get,
	.put_buf = s3_put_buf,
	.put_file = s3_put_file,
	.del = s3_del,
};
