/*
 * gcs - the gs://bucket/prefix backend: Google Cloud Storage through its
 * JSON API (and emulators: STORAGE_EMULATOR_HOST), over the shared pool.
 *
 * Auth: GOOGLE_APPLICATION_CREDENTIALS names a service-account JSON key;
 * we sign a JWT with its RSA key (RS256, OpenSSL), trade it at its
 * token_uri for an OAuth2 access token, and cache that token until shortly
 * before it expires (half its lifetime, at most 5 minutes early), when the
 * next request fetches a new one. Without credentials requests are
 * anonymous, which works for public buckets.
 *
 * ETags: an object's "etag" here is its generation number. If-Match is
 * sent as ifGenerationMatch, which the JSON API honours on media reads, so
 * a replaced object is -ESTALE rather than mixed bytes.
 *
 * Secrets (the private key, the JWT, the access token) live only in struct
 * gcs and request headers; messages name gs://bucket/key only.
 *
 * Threads: the token cache is protected by gcs->lock (held across a
 * refresh, so concurrent requests wait for one fetch); everything else is
 * read-only after open. Errors: negative errno, prov_set_error().
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/fileutil.h"
#include "common/timeutil.h"
#include "providers/curl_list.h"
#include "providers/curl_pool.h"
#include "providers/curl_util.h"
#include "providers/provider_int.h"

#define GCS_KEYFILE_MAX (64u << 10)
#define GCS_TOKEN_BODY_MAX (64u << 10)
#define GCS_META_MAX (1u << 20)
#define GCS_LIST_BODY_MAX (32u << 20)
#define GCS_LIST_PAGES_MAX 100000
#define GCS_SCOPE "https://www.googleapis.com/auth/devstorage.read_write"
#define GCS_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"

struct gcs {
	struct cpool *pool;
	char *base;        /* "https://storage.googleapis.com" */
	char *email;       /* NULL: anonymous */
	EVP_PKEY *key;
	char *token_uri;
	int page_size;
	pthread_mutex_t lock;
	char *token;       /* protected by lock */
	int64_t refresh_at_ms; /* protected by lock: monotonic */
};

/* ---- configuration ---- */

static void gcs_free(struct gcs *g)
{
	if (!g)
		return;
	cpool_free(&g->pool);
	free(g->base);
	free(g->email);
	EVP_PKEY_free(g->key);
	free(g->token_uri);
	if (g->token)
		OPENSSL_cleanse(g->token, strlen(g->token));
	free(g->token);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

static int gcs_load_key(struct gcs *g, const char *path)
{
	cJSON *j = NULL, *email, *pk, *uri, *type;
	struct buf b;
	BIO *bio = NULL;
	int ret;

	buf_init(&b, GCS_KEYFILE_MAX);
	ret = file_read_capped(path, GCS_KEYFILE_MAX, &b);
	if (ret < 0) {
		prov_set_error("gs: GOOGLE_APPLICATION_CREDENTIALS %s: %s",
			       path, strerror(-ret));
		goto out;
	}
	j = cJSON_ParseWithLength(b.data ? b.data : "", b.len);
	type = cJSON_GetObjectItemCaseSensitive(j, "type");
	email = cJSON_GetObjectItemCaseSensitive(j, "client_email");
	pk = cJSON_GetObjectItemCaseSensitive(j, "private_key");
	uri = cJSON_GetObjectItemCaseSensitive(j, "token_uri");
	if (!j || !cJSON_IsString(email) || !cJSON_IsString(pk) ||
	    (type && (!cJSON_IsString(type) ||
		      strcmp(type->valuestring, "service_account") != 0))) {
		prov_set_error("gs: %s is not a service-account key file "
			       "(needs type, client_email, private_key)",
			       path);
		ret = -EINVAL;
		goto out;
	}
	bio = BIO_new_mem_buf(pk->valuestring, -1);
	g->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	if (!g->key || EVP_PKEY_get_base_id(g->key) != EVP_PKEY_RSA) {
		prov_set_error("gs: %s: private_key is not an RSA PEM key", path);
		ret = -EINVAL;
		goto out;
	}
	g->email = strdup(email->valuestring);
	g->token_uri = strdup(cJSON_IsString(uri) ? uri->valuestring :
						    GCS_DEFAULT_TOKEN_URI);
	ret = g->email && g->token_uri ? 0 : -ENOMEM;
out:
	BIO_free(bio);
	if (j) {
		pk = cJSON_GetObjectItemCaseSensitive(j, "private_key");
		if (cJSON_IsString(pk))
			OPENSSL_cleanse(pk->valuestring,
					strlen(pk->valuestring));
		cJSON_Delete(j);
	}
	if (b.data)
		OPENSSL_cleanse(b.data, b.len);
	buf_free(&b);
	return ret;
}

static int gcs_open(struct prov *p)
{
	const char *emu = getenv("STORAGE_EMULATOR_HOST");
	const char *cred = getenv("GOOGLE_APPLICATION_CREDENTIALS");
	const char *ps = getenv("ASSETFS_LIST_PAGE_SIZE");
	struct gcs *g;
	int ret = 0;

	if (!*p->bucket) {
		prov_set_error("gs: the URL names no bucket (gs://bucket/prefix)");
		return -EINVAL;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->lock, NULL);
	if (emu && *emu) {
		if (strstr(emu, "://"))
			g->base = strdup(emu);
		else if (asprintf(&g->base, "http://%s", emu) < 0)
			g->base = NULL;
	} else {
		g->base = strdup("https://storage.googleapis.com");
	}
	if (!g->base) {
		ret = -ENOMEM;
		goto out;
	}
	while (*g->base && g->base[strlen(g->base) - 1] == '/')
		g->base[strlen(g->base) - 1] = '\0';
	if (cred && *cred)
		ret = gcs_load_key(g, cred);
	if (ret == 0)
		ret = cpool_new(p, NULL, &g->pool);
	if (ps && *ps) {
		g->page_size = atoi(ps);
		if (g->page_size < 0 || g->page_size > 1000)
			g->page_size = 0;
	}
out:
	if (ret < 0) {
		gcs_free(g);
		return ret;
	}
	p->priv = g;
	return 0;
}

static void gcs_close(struct prov *p)
{
	gcs_free(p->priv);
	p->priv = NULL;
}

/* ---- OAuth2: RS256 JWT -> access token ---- */

static int gcs_jwt(struct gcs *g, struct buf *out)
{
	char hdr[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
	uint8_t sig[1024];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = NULL;
	cJSON *claims = NULL;
	char *cj = NULL;
	int64_t now;
	int32_t ns;
	int ret;

	time_now(&now, &ns);
	claims = cJSON_CreateObject();
	if (!claims ||
	    !cJSON_AddStringToObject(claims, "iss", g->email) ||
	    !cJSON_AddStringToObject(claims, "scope", GCS_SCOPE) ||
	    !cJSON_AddStringToObject(claims, "aud", g->token_uri) ||
	    !cJSON_AddNumberToObject(claims, "iat", (double)now) ||
	    !cJSON_AddNumberToObject(claims, "exp", (double)(now + 3600))) {
		ret = -ENOMEM;
		goto out;
	}
	cj = cJSON_PrintUnformatted(claims);
	if (!cj) {
		ret = -ENOMEM;
		goto out;
	}
	ret = cu_base64(out, hdr, strlen(hdr), true);
	if (ret == 0)
		ret = buf_puts(out, ".");
	if (ret == 0)
		ret = cu_base64(out, cj, strlen(cj), true);
	if (ret < 0)
		goto out;
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, g->key) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, (const uint8_t *)out->data,
			   out->len) != 1) {
		prov_set_error("gs: signing the JWT failed");
		ret = -EIO;
		goto out;
	}
	ret = buf_puts(out, ".");
	if (ret == 0)
		ret = cu_base64(out, sig, siglen, true);
out:
	EVP_MD_CTX_free(md);
	free(cj);
	cJSON_Delete(claims);
	return ret;
}

/* Fetch a fresh token into g->token; called with g->lock held. */
static int gcs_fetch_token(struct prov *p, struct gcs *g)
{
	struct buf jwt, body, resp, what;
	const char *hdrs[] = {
		"Content-Type: application/x-www-form-urlencoded", NULL
	};
	cJSON *j = NULL, *tok, *exp;
	struct cr_req r;
	int64_t ttl;
	int ret;

	buf_init(&jwt, 16384);
	buf_init(&body, 32768);
	buf_init(&resp, GCS_TOKEN_BODY_MAX);
	buf_init(&what, 1024);
	ret = gcs_jwt(g, &jwt);
	if (ret == 0)
		ret = buf_puts(&body, "grant_type=urn%3Aietf%3Aparams%3Aoauth"
				      "%3Agrant-type%3Ajwt-bearer&assertion=");
	if (ret == 0)
		ret = buf_append(&body, jwt.data, jwt.len);
	if (ret == 0)
		ret = buf_printf(&what, "POST %.200s (token for %.200s)",
				 g->token_uri, g->email);
	if (ret < 0)
		goto out;
	memset(&r, 0, sizeof(r));
	r.method = "POST";
	r.url = g->token_uri;
	r.what = what.data;
	r.headers = hdrs;
	cr_req_set_body(&r, body.data, body.len, -1, 0, 0);
	r.out = &resp;
	ret = cr_run(g->pool, p, &r);
	if (ret < 0) {
		if (ret == -EACCES || ret == -EINVAL)
			prov_set_error("%s: HTTP %ld %s: the service account's "
				       "JWT was refused",
				       what.data, r.status, r.err_code);
		if (ret == -EINVAL)
			ret = -EACCES;
		goto out;
	}
	j = cJSON_ParseWithLength(resp.data ? resp.data : "", resp.len);
	tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
	exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
	if (!cJSON_IsString(tok) || !*tok->valuestring ||
	    strpbrk(tok->valuestring, "\r\n")) {
		prov_set_error("%s: no access_token in the reply", what.data);
		ret = -EIO;
		goto out;
	}
	ttl = cJSON_IsNumber(exp) && exp->valuedouble > 0 ?
		      (int64_t)exp->valuedouble :
		      3600;
	if (g->token)
		OPENSSL_cleanse(g->token, strlen(g->token));
	free(g->token);
	g->token = strdup(tok->valuestring);
	if (!g->token) {
		ret = -ENOMEM;
		goto out;
	}
	/* refresh early: half the lifetime, at most 5 minutes before */
	ttl = ttl * 1000;
	g->refresh_at_ms = time_mono_ms() + ttl -
			   (ttl / 2 < 300000 ? ttl / 2 : 300000);
out:
	if (j) {
		tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
		if (cJSON_IsString(tok))
			OPENSSL_cleanse(tok->valuestring,
					strlen(tok->valuestring));
		cJSON_Delete(j);
	}
	if (jwt.data)
		OPENSSL_cleanse(jwt.data, jwt.len);
	if (body.data)
		OPENSSL_cleanse(body.data, body.len);
	if (resp.data)
		OPENSSL_cleanse(resp.data, resp.len);
	buf_free(&jwt);
	buf_free(&body);
	buf_free(&resp);
	buf_free(&what);
	return ret;
}

struct gcs_sign {
	struct prov *p;
};

static int gcs_sign(void *arg, const char *method, const char *url,
		    struct cr_hdrs *h)
{
	struct gcs_sign *sg = arg;
	struct gcs *g = sg->p->priv;
	int ret = 0;

	(void)method;
	(void)url;
	if (!g->email)
		return 0; /* anonymous */
	pthread_mutex_lock(&g->lock);
	if (!g->token || time_mono_ms() >= g->refresh_at_ms)
		ret = gcs_fetch_token(sg->p, g);
	if (ret == 0)
		ret = cr_hdr_add(h, "Authorization", "Bearer %s", g->token);
	pthread_mutex_unlock(&g->lock);
	return ret;
}

/*
 * cr_run() with one more try when the service refuses our cached token
 * (401: revoked or expired early): the token is dropped and fetched anew.
 * A 401 has no body for the sink, so nothing was delivered.
 */
static int gcs_run(struct prov *p, struct cr_req *r)
{
	struct gcs *g = p->priv;
	int ret = cr_run(g->pool, p, r);

	if (ret == -EACCES && r->status == 401 && g->email &&
	    r->delivered == 0) {
		pthread_mutex_lock(&g->lock);
		g->refresh_at_ms = 0;
		pthread_mutex_unlock(&g->lock);
		ret = cr_run(g->pool, p, r);
	}
	return ret;
}

/* ---- requests ---- */

struct gcs_call {
	struct buf url, what;
	struct gcs_sign sign;
	const char *hdrs[3];
};

/*
 * @kind: 'o' object URL (metadata; add "alt=media" in @query for bytes),
 * 'l' the listing URL, 'u' the upload URL. @query without '?'.
 */
static int gcs_call_init(struct prov *p, struct gcs_call *c, char kind,
			 const char *method, const char *key,
			 const char *query)
{
	struct gcs *g = p->priv;
	char full[PROV_URL_MAX] = "";
	int ret = 0;

	buf_init(&c->url, PROV_URL_MAX * 4);
	buf_init(&c->what, PROV_URL_MAX);
	c->sign.p = p;
	c->hdrs[0] = NULL;
	if (key)
		ret = prov_full_key(p, key, full, sizeof(full));
	if (ret == 0)
		ret = buf_printf(&c->url, "%s/%sstorage/v1/b/", g->base,
				 kind == 'u' ? "upload/" : "");
	if (ret == 0)
		ret = cu_url_encode(&c->url, p->bucket, false);
	if (ret == 0)
		ret = buf_puts(&c->url, "/o");
	if (ret == 0 && kind == 'o') {
		ret = buf_puts(&c->url, "/");
		if (ret == 0)
			ret = cu_url_encode(&c->url, full, false);
	}
	if (ret == 0 && kind == 'u') {
		ret = buf_puts(&c->url, "?uploadType=media&name=");
		if (ret == 0)
			ret = cu_url_encode(&c->url, full, false);
	}
	if (ret == 0 && query && *query)
		ret = buf_printf(&c->url, "%c%s", kind == 'u' ? '&' : '?',
				 query);
	if (ret == 0)
		ret = buf_printf(&c->what, "%s gs://%s/%s", method, p->bucket,
				 full);
	return ret;
}

static void gcs_call_free(struct gcs_call *c)
{
	buf_free(&c->url);
	buf_free(&c->what);
}

static void gcs_req_init(struct prov *p, struct cr_req *r,
			 struct gcs_call *c, const char *method)
{
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->url = c->url.data;
	r->what = c->what.data;
	r->headers = c->hdrs;
	r->sign = gcs_sign;
	r->sign_arg = &c->sign;
	r->body_fd = -1;
}

static void gcs_explain(struct cr_req *r, int ret)
{
	if (ret == -ENOENT)
		prov_set_error("%s: no such object", r->what);
}

/* Fill @o from an object resource (JSON); key stays unset. */
static int gcs_parse_object(const cJSON *it, uint64_t *size, char **gen,
			    int64_t *mtime)
{
	const cJSON *sz = cJSON_GetObjectItemCaseSensitive(it, "size");
	const cJSON *ge = cJSON_GetObjectItemCaseSensitive(it, "generation");
	const cJSON *up = cJSON_GetObjectItemCaseSensitive(it, "updated");
	int64_t sec = 0;
	int32_t nsec;

	if (cJSON_IsString(sz))
		*size = strtoull(sz->valuestring, NULL, 10);
	else if (cJSON_IsNumber(sz) && sz->valuedouble >= 0)
		*size = (uint64_t)sz->valuedouble;
	else
		return -EIO;
	*gen = NULL;
	if (cJSON_IsString(ge) && *ge->valuestring &&
	    strspn(ge->valuestring, "0123456789") == strlen(ge->valuestring))
		*gen = ge->valuestring;
	if (cJSON_IsString(up) &&
	    time_parse_iso8601(up->valuestring, &sec, &nsec) < 0)
		sec = 0;
	*mtime = sec;
	return 0;
}

static int gcs_list_fetch(struct prov *p, struct cl_page *pg)
{
	struct gcs *g = p->priv;
	struct buf *q = pg->query;
	struct gcs_call c;
	struct cr_req r;
	int ret;

	ret = buf_puts(q, "prefix=");
	if (ret == 0)
		ret = cu_url_encode(q, pg->full, false);
	if (ret == 0 && pg->delimited)
		ret = buf_puts(q, "&delimiter=%2F");
	if (ret == 0 && g->page_size > 0)
		ret = buf_printf(q, "&maxResults=%d", g->page_size);
	if (ret == 0 && pg->token->len) {
		ret = buf_puts(q, "&pageToken=");
		if (ret == 0)
			ret = cu_url_encode(q, pg->token->data, false);
	}
	if (ret < 0)
		return ret;
	ret = gcs_call_init(p, &c, 'l', "LIST", NULL, q->data);
	if (ret < 0)
		goto out;
	gcs_req_init(p, &r, &c, "GET");
	r.what = pg->what;
	r.out = pg->body;
	ret = gcs_run(p, &r);
	if (ret == -ENOENT)
		prov_set_error("%s: no such bucket", pg->what);
out:
	gcs_call_free(&c);
	return ret;
}

static int gcs_list_parse(struct prov *p, struct cl_page *pg)
{
	struct buf *body = pg->body;
	cJSON *j, *arr, *it, *nt;
	int ret = 0;

	(void)p;
	j = cJSON_ParseWithLength(body->data ? body->data : "", body->len);
	if (!j) {
		prov_set_error("%s: bad listing reply", pg->what);
		ret = -EIO;
	}
	arr = cJSON_GetObjectItemCaseSensitive(j, "items");
	cJSON_ArrayForEach(it, arr)
	{
		const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
		uint64_t size = 0;
		int64_t mtime = 0;
		char *gen = NULL;

		if (ret < 0)
			break;
		if (!cJSON_IsString(nm) ||
		    gcs_parse_object(it, &size, &gen, &mtime) < 0) {
			prov_set_error("%s: bad object in listing", pg->what);
			ret = -EIO;
			break;
		}
		ret = cl_add_object(pg->b, nm->valuestring, size, gen, mtime);
	}
	arr = cJSON_GetObjectItemCaseSensitive(j, "prefixes");
	cJSON_ArrayForEach(it, arr)
	{
		if (ret < 0)
			break;
		if (cJSON_IsString(it))
			ret = cl_add_prefix(pg->b, it->valuestring);
	}
	nt = cJSON_GetObjectItemCaseSensitive(j, "nextPageToken");
	if (ret == 0 && cJSON_IsString(nt) && *nt->valuestring)
		ret = buf_puts(pg->token, nt->valuestring);
	if (ret == -EFBIG) {
		prov_set_error("%s: listing too large", pg->what);
		ret = -EIO;
	}
	cJSON_Delete(j);
	return ret;
}

static const struct cl_pager gcs_pager = {
	.scheme = "gs",
	.body_max = GCS_LIST_BODY_MAX,
	.max_pages = GCS_LIST_PAGES_MAX,
	.fetch = gcs_list_fetch,
	.parse = gcs_list_parse,
};

static int gcs_list(struct prov *p, const char *prefix, bool delimited,
		    struct prov_listing *out)
{
	return cl_list_paged(p, &gcs_pager, prefix, delimited, out);
}

static int gcs_head(struct prov *p, const char *key, struct prov_object *out)
{
	struct gcs_call c;
	struct cr_req r;
	struct buf body;
	cJSON *j = NULL;
	uint64_t size = 0;
	int64_t mtime = 0;
	char *gen = NULL;
	int ret;

	buf_init(&body, GCS_META_MAX);
	ret = gcs_call_init(p, &c, 'o', "HEAD", key, NULL);
	if (ret < 0)
		goto out;
	gcs_req_init(p, &r, &c, "GET");
	r.out = &body;
	ret = gcs_run(p, &r);
	if (ret < 0) {
		gcs_explain(&r, ret);
		goto out;
	}
	j = cJSON_ParseWithLength(body.data ? body.data : "", body.len);
	if (!j || gcs_parse_object(j, &size, &gen, &mtime) < 0) {
		prov_set_error("%s: bad object metadata", c.what.data);
		ret = -EIO;
		goto out;
	}
	out->key = strdup(key);
	out->etag = gen ? strdup(gen) : NULL;
	out->size = size;
	out->mtime = mtime;
	if (!out->key || (gen && !out->etag))
		ret = -ENOMEM;
out:
	cJSON_Delete(j);
	buf_free(&body);
	gcs_call_free(&c);
	return ret;
}

static int64_t gcs_get(struct prov *p, const char *key, uint64_t off,
		       uint64_t len, const char *if_match, prov_sink_fn sink,
		       void *arg)
{
	struct gcs_call c;
	struct cr_req r;
	int ret;

	memset(&r, 0, sizeof(r));
	/* generations are decimal; anything else cannot match */
	if (if_match && (!*if_match || strlen(if_match) > 40 ||
			 strspn(if_match, "0123456789") != strlen(if_match))) {
		prov_set_error("GET gs://%s: If-Match '%.40s' is not a "
			       "generation", p->bucket, if_match);
		return -ESTALE;
	}
	ret = gcs_call_init(p, &c, 'o', "GET", key, "alt=media");
	if (ret < 0)
		goto out;
	gcs_req_init(p, &r, &c, "GET");
	cr_req_set_range(&r, off, len, if_match, sink, arg);
	/* the caller's generation, or on a resume the one first served,
	   goes into the URL as ifGenerationMatch: never mixed bytes */
	r.pin_query = "ifGenerationMatch";
	r.capture_hdr = "x-goog-generation";
	ret = gcs_run(p, &r);
	if (ret < 0)
		gcs_explain(&r, ret);
out:
	gcs_call_free(&c);
	return ret < 0 ? ret : (int64_t)r.delivered;
}

static int gcs_put(struct prov *p, const char *key, const void *data,
		   size_t len, int fd, uint64_t size, prov_progress_fn progress,
		   void *arg)
{
	struct gcs_call c;
	struct cr_req r;
	int ret;

	ret = gcs_call_init(p, &c, 'u', "PUT", key, NULL);
	if (ret < 0)
		goto out;
	c.hdrs[0] = "Content-Type: application/octet-stream";
	c.hdrs[1] = NULL;
	gcs_req_init(p, &r, &c, "POST");
	cr_req_set_body(&r, data, len, fd, 0, size);
	r.progress = progress;
	r.progress_arg = arg;
	ret = gcs_run(p, &r);
out:
	gcs_call_free(&c);
	return ret;
}

static int gcs_put_buf(struct prov *p, const char *key, const void *data,
		       size_t len)
{
	return gcs_put(p, key, data, len, -1, 0, NULL, NULL);
}

static int gcs_put_file(struct prov *p, const char *key, int fd,
			uint64_t size, prov_progress_fn progress, void *arg)
{
	return gcs_put(p, key, NULL, 0, fd, size, progress, arg);
}

static int gcs_del(struct prov *p, const char *key)
{
	struct gcs_call c;
	struct cr_req r;
	int ret;

	ret = gcs_call_init(p, &c, 'o', "DELETE", key, NULL);
	if (ret == 0) {
		gcs_req_init(p, &r, &c, "DELETE");
		ret = gcs_run(p, &r);
		if (ret == -ENOENT)
			ret = 0;
	}
	gcs_call_free(&c);
	return ret;
}

const struct prov_ops prov_gs_ops = {
	.scheme = "gs",
	.can_list = true,
	.can_put = true,
	.open = gcs_open,
	.close = gcs_close,
	.list = gcs_list,
	.head = gcs_head,
	.get = gcs_get,
	.put_buf = gcs_put_buf,
	.put_file = gcs_put_file,
	.del = gcs_del,
};
