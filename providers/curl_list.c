/*
 * curl_list - listing assembly for the remote backends; see curl_list.h.
 */
#include "providers/curl_list.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/curl_xml.h"
#include "providers/provider_int.h"

#define CL_FIELD_MAX PROV_URL_MAX /* cap on a key, ETag or date */

void cl_init(struct cl_builder *b, struct prov_listing *l, const char *strip)
{
	memset(l, 0, sizeof(*l));
	b->l = l;
	b->strip = strip ? strip : "";
	b->cap_obj = 0;
	b->cap_pre = 0;
}

/* The relative part of @key, or NULL if it is not under the prefix. */
static const char *rel_of(struct cl_builder *b, const char *key)
{
	size_t n = strlen(b->strip);

	if (strncmp(key, b->strip, n) != 0)
		return NULL;
	return key + n;
}

int cl_add_object(struct cl_builder *b, const char *key, uint64_t size,
		  const char *etag, int64_t mtime)
{
	struct prov_listing *l = b->l;
	struct prov_object *o;
	const char *rel = rel_of(b, key);
	size_t n;

	if (!rel || !*rel || rel[strlen(rel) - 1] == '/')
		return 0;
	n = l->n_objects + l->n_prefixes;
	if (n >= CL_MAX_ENTRIES)
		return -EFBIG;
	if (l->n_objects == b->cap_obj) {
		size_t nc = b->cap_obj ? b->cap_obj * 2 : 64;
		struct prov_object *v = realloc(l->objects, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->objects = v;
		b->cap_obj = nc;
	}
	o = &l->objects[l->n_objects];
	memset(o, 0, sizeof(*o));
	o->key = strdup(rel);
	o->etag = etag && *etag ? strdup(etag) : NULL;
	if (!o->key || (etag && *etag && !o->etag)) {
		free(o->key);
		free(o->etag);
		return -ENOMEM;
	}
	o->size = size;
	o->mtime = mtime;
	l->n_objects++;
	return 0;
}

int cl_add_prefix(struct cl_builder *b, const char *prefix)
{
	struct prov_listing *l = b->l;
	const char *rel = rel_of(b, prefix);
	size_t n;

	if (!rel || !*rel)
		return 0;
	n = l->n_objects + l->n_prefixes;
	if (n >= CL_MAX_ENTRIES)
		return -EFBIG;
	if (l->n_prefixes == b->cap_pre) {
		size_t nc = b->cap_pre ? b->cap_pre * 2 : 64;
		char **v = realloc(l->prefixes, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->prefixes = v;
		b->cap_pre = nc;
	}
	l->prefixes[l->n_prefixes] = strdup(rel);
	if (!l->prefixes[l->n_prefixes])
		return -ENOMEM;
	l->n_prefixes++;
	return 0;
}

static int cmp_obj(const void *a, const void *b)
{
	return strcmp(((const struct prov_object *)a)->key,
		      ((const struct prov_object *)b)->key);
}

static int cmp_pre(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void cl_finish(struct cl_builder *b)
{
	struct prov_listing *l = b->l;
	size_t j = 0;

	if (l->n_objects > 1)
		qsort(l->objects, l->n_objects, sizeof(*l->objects), cmp_obj);
	for (size_t i = 0; i < l->n_objects; i++) {
		if (j > 0 && strcmp(l->objects[j - 1].key, l->objects[i].key) ==
				     0) {
			free(l->objects[i].key);
			free(l->objects[i].etag);
			continue;
		}
		l->objects[j++] = l->objects[i];
	}
	l->n_objects = j;
	if (l->n_prefixes > 1)
		qsort(l->prefixes, l->n_prefixes, sizeof(*l->prefixes),
		      cmp_pre);
	j = 0;
	for (size_t i = 0; i < l->n_prefixes; i++) {
		if (j > 0 && strcmp(l->prefixes[j - 1], l->prefixes[i]) == 0) {
			free(l->prefixes[i]);
			continue;
		}
		l->prefixes[j++] = l->prefixes[i];
	}
	l->n_prefixes = j;
}

int cl_list_paged(struct prov *p, const struct cl_pager *pager,
		  const char *prefix, bool delimited,
		  struct prov_listing *out)
{
	struct cl_builder cb;
	struct cl_page pg;
	struct buf token, body, q, full, strip, what;
	int ret, pages = 0;

	buf_init(&token, 4096);
	buf_init(&body, pager->body_max);
	buf_init(&q, 16384);
	buf_init(&full, PROV_URL_MAX);
	buf_init(&strip, PROV_URL_MAX);
	buf_init(&what, PROV_URL_MAX);
	ret = buf_printf(&strip, "%s%s", p->prefix, *p->prefix ? "/" : "");
	if (ret == 0)
		ret = buf_printf(&full, "%s%s", strip.data, prefix);
	if (ret == 0)
		ret = buf_printf(&what, "LIST %s://%s/%s", pager->scheme,
				 p->bucket, full.data);
	if (ret < 0)
		goto out;
	cl_init(&cb, out, strip.data);
	pg = (struct cl_page){
		.full = full.data, .what = what.data, .token = &token,
		.delimited = delimited, .query = &q, .body = &body, .b = &cb,
	};
	do {
		if (++pages > pager->max_pages) {
			prov_set_error("%s: too many pages", what.data);
			ret = -EIO;
			break;
		}
		buf_reset(&q);
		buf_reset(&body);
		ret = pager->fetch(p, &pg);
		if (ret < 0)
			break;
		buf_reset(&token);
		ret = pager->parse(p, &pg);
	} while (ret == 0 && token.len > 0);
	if (ret == 0)
		cl_finish(&cb);
out:
	buf_free(&token);
	buf_free(&body);
	buf_free(&q);
	buf_free(&full);
	buf_free(&strip);
	buf_free(&what);
	return ret;
}

enum { CLX_KEY, CLX_SIZE, CLX_ETAG, CLX_MTIME };

struct cl_xml_page {
	struct cl_page *pg;
	const struct cl_xml_names *n;
};

static int cl_xml_record(void *arg, size_t kind, const char *const *vals,
			 const bool *have)
{
	struct cl_xml_page *xp = arg;
	char qetag[CL_FIELD_MAX + 3];
	const char *etag = NULL;
	int64_t t = 0;

	if (kind == 1)
		return have[0] ? cl_add_prefix(xp->pg->b, vals[0]) : -EINVAL;
	if (!have[CLX_KEY] || !have[CLX_SIZE])
		return -EINVAL;
	if (have[CLX_ETAG]) {
		etag = vals[CLX_ETAG];
		if (xp->n->quote_etags && etag[0] != '"') {
			snprintf(qetag, sizeof(qetag), "\"%s\"", etag);
			etag = qetag;
		}
	}
	if (have[CLX_MTIME])
		t = xp->n->parse_mtime(vals[CLX_MTIME]);
	return cl_add_object(xp->pg->b, vals[CLX_KEY],
			     strtoull(vals[CLX_SIZE], NULL, 10), etag,
			     t > 0 ? t : 0);
}

int cl_parse_xml(struct cl_page *pg, const struct cl_xml_names *n)
{
	const char *const obj[] = { n->key, n->size, n->etag, n->mtime,
				    NULL };
	const char *const pre[] = { n->prefix_key, NULL };
	const struct cx_record kinds[] = {
		{ .item = n->object, .fields = obj,
		  .field_max = CL_FIELD_MAX },
		{ .item = n->prefix, .fields = pre,
		  .field_max = CL_FIELD_MAX },
	};
	struct cl_xml_page xp = { pg, n };
	struct buf *body = pg->body;
	int ret;

	ret = cx_records(body->data ? body->data : "", body->len, kinds, 2,
			 cl_xml_record, &xp);
	if (ret < 0 && ret != -ENOMEM)
		prov_set_error("%s: bad listing reply (%s)", pg->what,
			       strerror(-ret));
	return ret == -ENOMEM ? ret : ret < 0 ? -EIO : 0;
}
