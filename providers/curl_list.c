/*
 * curl_list - listing assembly for the remote backends; see curl_list.h.
 */
#include "providers/curl_list.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
