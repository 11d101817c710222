/*
 * store - the modelkit layout over a provider (see store.h).
 *
 * Everything is built from the provider's primitives: a `.versions` or
 * `.meta` read is one capped prov_get_buf(), a namespace level is one
 * delimited prov_list(), the asset list is one full listing (or the
 * assets.index document where the backend cannot list). Messages name the
 * asset, version or object concerned and carry the provider's reason.
 * The listings (levels, the asset list) are in store_list.c.
 *
 * Signatures: a store opened with a verify key checks every `.meta` it
 * fetches against `.meta.sig` (fs/sign.h) before parsing it, so nothing
 * unverified reaches a caller of store_get_meta() or store_resolve().
 *
 * Threads: struct store is read-only after opening. Errors: 0 or a
 * negative errno with a message in @err.
 */
#include "fs/catalog/store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/catalog/sign.h"
#include "fs/catalog/store_int.h"

/* Cap on a `.meta.sig` read: a signature is 64 bytes, anything much
   larger is not one (and is refused without reading it all). */
#define STORE_SIG_MAX_BYTES 1024

struct store {
	struct prov *prov;	     /* owned */
	enum versioning sys;	     /* AUTO: detect per asset */
	struct sign_key *verify;     /* owned, or NULL: no verification */
	struct store_health *health; /* owned */
};

int store_from_prov(struct prov *prov, const char *versioning,
		    struct store **out, char *err, size_t errlen)
{
	enum versioning sys;
	struct store *s;
	int ret;

	*out = NULL;
	if (versioning) {
		ret = versioning_parse(versioning, &sys);
		if (ret < 0)
			log_errbuf(
			    err, errlen,
			    "unknown versioning system '%s' "
			    "(expected auto, major_minor or simple_date)",
			    versioning);
	} else {
		ret = versioning_from_env(&sys);
		if (ret < 0)
			log_errbuf(err, errlen,
				   "MODELKIT_ASSETS_VERSIONING_SYSTEM='%s': "
				   "expected major_minor or simple_date",
				   getenv("MODELKIT_ASSETS_VERSIONING_SYSTEM"));
	}
	if (ret < 0) {
		prov_close(&prov);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || store_health_new(prov, &s->health) < 0) {
		free(s);
		prov_close(&prov);
		log_errbuf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->prov = prov;
	s->sys = sys;
	*out = s;
	return 0;
}

int store_open(const char *url, const struct store_opts *opts,
	       struct store **out, char *err, size_t errlen)
{
	struct sign_key *key = NULL;
	struct prov *p = NULL;
	int ret;

	*out = NULL;
	if (opts && opts->verify_key) {
		/* Before the provider: a bad key fails without a network
		   handle to tear down. */
		ret = sign_load_public(opts->verify_key, &key, err, errlen);
		if (ret < 0)
			return ret;
	}
	ret = prov_open(url, opts ? opts->prov : NULL, &p);
	if (ret < 0) {
		log_errbuf(err, errlen, "%s",
			   *prov_last_error() ? prov_last_error()
					      : strerror(-ret));
		goto out;
	}
	ret = store_from_prov(p, opts ? opts->versioning : NULL, out, err,
			      errlen);
	if (ret < 0)
		goto out;
	(*out)->verify = key;
	key = NULL;
out:
	sign_key_free(&key);
	return ret;
}

void store_close(struct store **s)
{
	if (!s || !*s)
		return;
	store_health_free(&(*s)->health); /* its probe uses the provider */
	prov_close(&(*s)->prov);
	sign_key_free(&(*s)->verify);
	free(*s);
	*s = NULL;
}

const char *store_verify_key(const struct store *s)
{
	return s->verify ? sign_key_name(s->verify) : NULL;
}

struct prov *store_prov(const struct store *s)
{
	return s->prov;
}

struct store_health *store_health(struct store *s)
{
	return s->health;
}

enum versioning store_versioning(const struct store *s)
{
	return s->sys;
}

static int store_fmt(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int store_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return n;
}

int store_key_versions(const char *name, char *buf, size_t len)
{
	return store_fmt(buf, len, "%s" STORE_VERSIONS_SUFFIX, name);
}

int store_key_meta(const char *name, const char *version, char *buf, size_t len)
{
	return store_fmt(buf, len, "%s/%s" STORE_META_SUFFIX, name, version);
}

int store_key_sig(const char *name, const char *version, char *buf, size_t len)
{
	return store_fmt(buf, len, "%s/%s" STORE_SIG_SUFFIX, name, version);
}

int store_key_file(const char *name, const char *version, const char *relpath,
		   char *buf, size_t len)
{
	if (!relpath || !*relpath)
		return store_fmt(buf, len, "%s/%s", name, version);
	return store_fmt(buf, len, "%s/%s/%s", name, version, relpath);
}

int store_object_url(const struct store *s, const char *key, char *buf,
		     size_t len)
{
	const char *url = prov_url(s->prov);
	size_t ul = strlen(url);

	while (ul > 0 && url[ul - 1] == '/')
		ul--;
	return store_fmt(buf, len, "%.*s/%s", (int)ul, url, key);
}

const char *store_prov_reason(int ret)
{
	const char *m = prov_last_error();

	return (m && *m) ? m : strerror(-ret);
}

int store_parse_versions(const struct store *s, const char *json, size_t len,
			 struct version_list *out, char *err, size_t errlen)
{
	return versions_parse(json, len, s->sys, out, err, errlen);
}

/*
 * Read the small document @key (at most @max bytes) into @b, its ETag into
 * *@tag (owned by the caller). Returns 0 or a negative errno with @err set;
 * for -ENOENT the caller words the message, since only it knows what the
 * key stands for.
 */
static int store_fetch_doc(struct store *s, const char *key, size_t max,
			   struct buf *b, char **tag, char *err, size_t errlen)
{
	int ret = prov_get_buf(s->prov, key, max, b, tag);

	if (ret == -EFBIG)
		log_errbuf(err, errlen, "%s: larger than %zu bytes", key, max);
	else if (ret < 0 && ret != -ENOENT)
		log_errbuf(err, errlen, "cannot read %s: %s", key,
			   store_prov_reason(ret));
	return ret;
}

/*
 * Check @doc, the bytes of NAME:VERSION's `.meta`, against its
 * `.meta.sig` with the store's key. Returns 0, -EBADMSG (missing or bad
 * signature), or a provider error reading the signature.
 */
static int store_check_sig(struct store *s, const char *name,
			   const char *version, const struct buf *doc,
			   char *err, size_t errlen)
{
	const char *kname = sign_key_name(s->verify);
	char key[STORE_KEY_MAX];
	struct buf sig;
	int ret;

	buf_init(&sig, STORE_SIG_MAX_BYTES);
	ret = store_key_sig(name, version, key, sizeof(key));
	if (ret < 0) {
		log_errbuf(err, errlen, "asset name too long");
		goto out;
	}
	ret = prov_get_buf(s->prov, key, STORE_SIG_MAX_BYTES, &sig, NULL);
	if (ret == -ENOENT) {
		log_errbuf(err, errlen,
			   "%s:%s: .meta has no signature (no %s) to verify "
			   "with %s",
			   name, version, key, kname);
		ret = -EBADMSG;
		goto out;
	}
	if (ret < 0 && ret != -EFBIG) {
		log_errbuf(err, errlen, "cannot read %s: %s", key,
			   store_prov_reason(ret));
		goto out;
	}
	/* An oversized .sig is simply not a signature. */
	ret = ret < 0
		  ? -EBADMSG
		  : sign_verify(s->verify, doc->data ? doc->data : "", doc->len,
				sig.data ? sig.data : "", sig.len);
	if (ret == -EBADMSG)
		log_errbuf(err, errlen,
			   "%s:%s: .meta signature does not verify with %s",
			   name, version, kname);
	else if (ret < 0)
		log_errbuf(err, errlen, "%s:%s: cannot check the signature: %s",
			   name, version, strerror(-ret));
out:
	buf_free(&sig);
	return ret;
}

/* Parse a named document into @out (store_get_named). */
typedef int (*store_parse_fn)(const struct store *s, const char *doc,
			      size_t len, void *out, char *err, size_t errlen);

static int parse_versions(const struct store *s, const char *doc, size_t len,
			  void *out, char *err, size_t errlen)
{
	return store_parse_versions(s, doc, len, out, err, errlen);
}

static int parse_meta(const struct store *s, const char *doc, size_t len,
		      void *out, char *err, size_t errlen)
{
	(void)s;
	return meta_parse(doc, len, out, err, errlen);
}

/*
 * The one path of NAME's versions.json (@version NULL) and of
 * NAME:VERSION's .meta: check @name, read the document up to @max bytes
 * (a .meta's signature checked first when the store verifies), @parse it
 * into @out, then give the caller a copy of the raw bytes (if @raw) and
 * the ETag (if @etag, owned by the caller; cleared first). On failure
 * @out is cleared with @clear and @err says why.
 * Returns 0 or a negative errno (-ENOENT: no such document).
 */
static int store_get_named(struct store *s, const char *name,
			   const char *version, size_t max,
			   store_parse_fn parse, void (*clear)(void *),
			   void *out, struct buf *raw, char **etag, char *err,
			   size_t errlen)
{
	char key[STORE_KEY_MAX];
	char perr[SPEC_ERR_MAX];
	char *tag = NULL;
	struct buf b;
	int ret;

	buf_init(&b, max);
	if (etag)
		*etag = NULL;
	ret = spec_check_name(name, err, errlen);
	if (ret < 0)
		goto out;
	ret = version ? store_key_meta(name, version, key, sizeof(key))
		      : store_key_versions(name, key, sizeof(key));
	if (ret < 0) {
		log_errbuf(err, errlen, "asset name too long");
		goto out;
	}
	ret = store_fetch_doc(s, key, max, &b, &tag, err, errlen);
	if (ret == -ENOENT && version)
		log_errbuf(err, errlen, "no .meta for '%s:%s'", name, version);
	else if (ret == -ENOENT)
		log_errbuf(err, errlen, "no such asset '%s'", name);
	if (ret < 0)
		goto out;
	if (version && s->verify) {
		ret = store_check_sig(s, name, version, &b, err, errlen);
		if (ret < 0)
			goto out;
	}
	ret = parse(s, b.data ? b.data : "", b.len, out, perr, sizeof(perr));
	if (ret < 0) {
		log_errbuf(err, errlen, "%s: %s", key, perr);
		goto out;
	}
	if (raw) {
		ret = buf_append(raw, b.data ? b.data : "", b.len);
		if (ret < 0) {
			log_errbuf(err, errlen, "%s: %s", key, strerror(-ret));
			clear(out);
			goto out;
		}
	}
	if (etag) {
		*etag = tag;
		tag = NULL;
	}
out:
	free(tag);
	buf_free(&b);
	return ret < 0 ? ret : 0;
}

static void clear_versions(void *out)
{
	version_list_clear(out);
}

static void clear_meta(void *out)
{
	meta_clear(out);
}

int store_get_versions(struct store *s, const char *name,
		       struct version_list *out, struct buf *raw, char **etag,
		       char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	return store_get_named(s, name, NULL, VERSIONS_MAX_BYTES,
			       parse_versions, clear_versions, out, raw, etag,
			       err, errlen);
}

int store_get_meta(struct store *s, const char *name, const char *version,
		   struct meta *out, struct buf *raw, char **etag, char *err,
		   size_t errlen)
{
	memset(out, 0, sizeof(*out));
	return store_get_named(s, name, version, META_MAX_BYTES, parse_meta,
			       clear_meta, out, raw, etag, err, errlen);
}

int store_read_index(struct store *s, struct assets_index *out, char *err,
		     size_t errlen)
{
	char perr[SPEC_ERR_MAX];
	struct buf b;
	int ret;

	memset(out, 0, sizeof(*out));
	buf_init(&b, ASSETS_INDEX_MAX_BYTES);
	ret = prov_get_buf(s->prov, STORE_INDEX_KEY, ASSETS_INDEX_MAX_BYTES, &b,
			   NULL);
	if (ret == -ENOENT) {
		log_errbuf(err, errlen, "the store has no " STORE_INDEX_KEY);
		goto out;
	}
	if (ret < 0) {
		log_errbuf(err, errlen, "cannot read " STORE_INDEX_KEY ": %s",
			   store_prov_reason(ret));
		goto out;
	}
	ret = assets_index_parse(b.data ? b.data : "", b.len, out, perr,
				 sizeof(perr));
	if (ret < 0)
		log_errbuf(err, errlen, STORE_INDEX_KEY ": %s", perr);
out:
	buf_free(&b);
	return ret;
}

int store_write_index(struct store *s, const struct assets_index *ix, char *err,
		      size_t errlen)
{
	struct buf b;
	int ret;

	buf_init(&b, 0);
	ret = assets_index_format(ix, &b);
	if (ret < 0) {
		log_errbuf(err, errlen, "formatting " STORE_INDEX_KEY ": %s",
			   strerror(-ret));
		goto out;
	}
	ret =
	    prov_put_buf(s->prov, STORE_INDEX_KEY, b.data ? b.data : "", b.len);
	if (ret < 0)
		log_errbuf(err, errlen, "cannot write " STORE_INDEX_KEY ": %s",
			   store_prov_reason(ret));
out:
	buf_free(&b);
	return ret;
}

static int store_cmp_key(const void *key, const void *elem)
{
	return strcmp((const char *)key, *(char *const *)elem);
}

/* Is @sub a directory inside the folder (a strict prefix of an entry)? */
static bool store_is_subdir(const struct meta *m, const char *sub)
{
	size_t sl = strlen(sub);

	for (size_t i = 0; i < m->n_contents; i++)
		if (strncmp(m->contents[i], sub, sl) == 0 &&
		    m->contents[i][sl] == '/')
			return true;
	return false;
}

int store_resolve(struct store *s, const struct spec *spec,
		  struct store_resolved *out, char *err, size_t errlen)
{
	struct version_list vl = {0};
	const char *v = NULL, *sub = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = store_get_versions(s, spec->name, &vl, NULL, NULL, err, errlen);
	if (ret < 0)
		goto out;
	ret = version_resolve(&vl, spec->name, spec->version, &v, err, errlen);
	if (ret < 0)
		goto out;
	out->name = strdup(spec->name);
	out->version = strdup(v);
	if (!out->name || !out->version) {
		ret = -ENOMEM;
		log_errbuf(err, errlen, "out of memory");
		goto out;
	}
	ret = store_get_meta(s, spec->name, v, &out->meta, NULL, NULL, err,
			     errlen);
	if (ret < 0)
		goto out;
	if (spec->sub) {
		sub = spec->sub;
		while (*sub == '/')
			sub++;
		if (!out->meta.is_directory) {
			log_errbuf(err, errlen,
				   "'%s:%s' is a file asset: it "
				   "has no file '%s'",
				   spec->name, v, sub);
			ret = -ENOTDIR;
			goto out;
		}
		if (!out->meta.n_contents ||
		    !bsearch(sub, out->meta.contents, out->meta.n_contents,
			     sizeof(char *), store_cmp_key)) {
			bool dir = store_is_subdir(&out->meta, sub);

			log_errbuf(err, errlen, "%s '%s' in '%s:%s'",
				   dir ? "not a file:" : "no file", sub,
				   spec->name, v);
			ret = dir ? -EISDIR : -ENOENT;
			goto out;
		}
		out->sub = strdup(sub);
		if (!out->sub) {
			ret = -ENOMEM;
			log_errbuf(err, errlen, "out of memory");
			goto out;
		}
	}
	ret =
	    store_key_file(spec->name, v, out->sub, out->key, sizeof(out->key));
	if (ret < 0) {
		log_errbuf(err, errlen, "object key too long");
		goto out;
	}
	ret = 0;
out:
	version_list_clear(&vl);
	if (ret < 0)
		store_resolved_clear(out);
	return ret;
}

void store_resolved_clear(struct store_resolved *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->version);
	free(r->sub);
	meta_clear(&r->meta);
	memset(r, 0, sizeof(*r));
}
