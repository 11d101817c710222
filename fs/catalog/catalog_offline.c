/*
 * catalog_offline - the documents the catalog keeps in the cache for
 * offline use beside the store's own (`.versions`, `.meta`): a namespace
 * level as {"assets": [...], "namespaces": [...]} and the sizes and ETags
 * of a version without a manifest as {"files": [{"p","s","e"}]}, and the
 * level of a namespace never listed online, made up from what this
 * process and the kept version lists know.
 *
 * The kept documents are shared by every mount on the cache dir and are
 * read back as untrusted input: malformed entries are skipped, not
 * trusted (a level or objinfo that does not parse, or lacks its array, is
 * "not kept", and the level or objinfo is left empty).
 *
 * Threads: pure functions, except cat_level_from_memory() (c->lock).
 * Errors: 0 or a negative errno.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/catalog/catalog_int.h"

/* ---- levels ---- */

static int json_add_strv(cJSON *o, const char *key, char **v, size_t n)
{
	cJSON *arr = cJSON_AddArrayToObject(o, key);
	size_t i;

	if (!arr)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		cJSON *s = cJSON_CreateString(v[i]);

		if (!s || !cJSON_AddItemToArray(arr, s)) {
			cJSON_Delete(s);
			return -ENOMEM;
		}
	}
	return 0;
}

int cat_level_to_json(const struct cat_level *l, struct buf *out)
{
	cJSON *o = cJSON_CreateObject();
	char *s = NULL;
	int ret = -ENOMEM;

	if (!o)
		return -ENOMEM;
	if (json_add_strv(o, "assets", l->assets, l->n_assets) < 0 ||
	    json_add_strv(o, "namespaces", l->namespaces, l->n_namespaces) < 0)
		goto out;
	s = cJSON_PrintUnformatted(o);
	if (!s)
		goto out;
	ret = buf_puts(out, s);
out:
	free(s);
	cJSON_Delete(o);
	return ret;
}

/*
 * Append the strings of @arr to @v that are one valid name component
 * (what a listing gives: no '/', no "." or ".."; readdir shows them as
 * they are); other entries are skipped. Returns 0, -EINVAL (not an
 * array) or -ENOMEM.
 */
static int json_comps(const cJSON *arr, char ***v, size_t *n)
{
	const cJSON *it;
	int ret;

	if (!cJSON_IsArray(arr))
		return -EINVAL;
	cJSON_ArrayForEach(it, arr)
	{
		if (!cJSON_IsString(it) || strchr(it->valuestring, '/') ||
		    spec_check_name(it->valuestring, NULL, 0) < 0)
			continue;
		ret = cat_strv_push(v, n, it->valuestring);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void level_clear(struct cat_level *l)
{
	cat_strv_free(l->assets, l->n_assets);
	cat_strv_free(l->namespaces, l->n_namespaces);
	l->assets = l->namespaces = NULL;
	l->n_assets = l->n_namespaces = 0;
}

int cat_level_from_json(const char *s, size_t len, struct cat_level *l)
{
	cJSON *o = cJSON_ParseWithLength(s, len);
	int ret;

	if (!o)
		return -EINVAL;
	ret = json_comps(cJSON_GetObjectItemCaseSensitive(o, "assets"),
			 &l->assets, &l->n_assets);
	if (ret == 0)
		ret = json_comps(
		    cJSON_GetObjectItemCaseSensitive(o, "namespaces"),
		    &l->namespaces, &l->n_namespaces);
	cJSON_Delete(o);
	if (ret < 0) {
		level_clear(l);
		return ret;
	}
	cat_strv_sort_uniq(l->assets, &l->n_assets);
	cat_strv_sort_uniq(l->namespaces, &l->n_namespaces);
	return 0;
}

/* Add the child of @ns on the way to @full (an asset or a namespace). */
static int level_add_known(struct cat_level *l, const char *ns,
			   const char *full, bool is_asset)
{
	size_t nl = strlen(ns);
	const char *rest = full, *slash;
	char comp[SPEC_NAME_MAX + 1];

	if (nl) {
		if (strncmp(full, ns, nl) != 0 || full[nl] != '/')
			return 0;
		rest = full + nl + 1;
	}
	if (!*rest)
		return 0;
	slash = strchr(rest, '/');
	if (!slash)
		return is_asset ? cat_strv_push(&l->assets, &l->n_assets, rest)
				: cat_strv_push(&l->namespaces,
						&l->n_namespaces, rest);
	snprintf(comp, sizeof(comp), "%.*s", (int)(slash - rest), rest);
	return cat_strv_push(&l->namespaces, &l->n_namespaces, comp);
}

/*
 * The assets below @ns whose version list the cache keeps (for offline
 * use), from any earlier run: "<ns>/x.versions" is asset x, and
 * "<ns>/y/z.versions" namespace y.
 */
static int level_add_docs(struct catalog *c, const char *ns,
			  struct cat_level *l)
{
	char prefix[SPEC_NAME_MAX + 2], name[STORE_KEY_MAX];
	size_t n = 0, i, kl, sl = strlen(STORE_VERSIONS_SUFFIX);
	char **keys = NULL;
	int ret;

	if (!c->cache)
		return 0;
	snprintf(prefix, sizeof(prefix), "%s%s", ns, *ns ? "/" : "");
	ret = cache_doc_keys(c->cache, c->url, prefix, CAT_OFFLINE_KEYS_MAX,
			     &keys, &n);
	for (i = 0; i < n; i++) {
		kl = strlen(keys[i]);
		if (ret == 0 && kl > sl && kl - sl < sizeof(name) &&
		    strcmp(keys[i] + kl - sl, STORE_VERSIONS_SUFFIX) == 0) {
			snprintf(name, sizeof(name), "%.*s", (int)(kl - sl),
				 keys[i]);
			if (spec_check_name(name, NULL, 0) == 0)
				ret = level_add_known(l, ns, name, true);
		}
		free(keys[i]);
	}
	free(keys);
	return ret;
}

int cat_level_from_memory(struct catalog *c, const char *ns,
			  struct cat_level *l)
{
	size_t i;
	int ret = level_add_docs(c, ns, l);

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->versions.size && ret == 0; i++) {
		struct ment *e;

		for (e = c->versions.b[i]; e && ret == 0; e = e->next)
			if (e->val)
				ret = level_add_known(l, ns, e->key, true);
	}
	for (i = 0; i < c->levels.size && ret == 0; i++) {
		struct ment *e;

		for (e = c->levels.b[i]; e && ret == 0; e = e->next)
			ret = level_add_known(l, ns, e->key, false);
	}
	pthread_mutex_unlock(&c->lock);
	if (ret < 0)
		return ret;
	cat_strv_sort_uniq(l->assets, &l->n_assets);
	cat_strv_sort_uniq(l->namespaces, &l->n_namespaces);
	return l->n_assets || l->n_namespaces ? 0 : -ENOENT;
}

/* ---- object sizes and ETags ---- */
void cat_objinfo_clear(struct objinfo *oi)
{
	cat_strv_free(oi->paths, oi->n);
	cat_strv_free(oi->etags, oi->n);
	free(oi->sizes);
	memset(oi, 0, sizeof(*oi));
}

int cat_objinfo_add(struct objinfo *oi, const char *path, uint64_t size,
		    const char *etag)
{
	size_t n = oi->n;
	uint64_t *ns;
	int ret;

	ns = realloc(oi->sizes, (n + 1) * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	oi->sizes = ns;
	ns[n] = size;
	ret = cat_strv_push(&oi->paths, &n, path);
	if (ret < 0)
		return ret;
	n = oi->n;
	ret = cat_strv_push(&oi->etags, &n, etag ? etag : "");
	if (ret < 0) {
		free(oi->paths[oi->n]);
		return ret;
	}
	oi->n++;
	return 0;
}

int cat_objinfo_find(const struct objinfo *oi, const char *path)
{
	size_t i;

	for (i = 0; i < oi->n; i++)
		if (strcmp(oi->paths[i], path) == 0)
			return (int)i;
	return -ENOENT;
}

int cat_objinfo_to_json(const struct objinfo *oi, struct buf *out)
{
	cJSON *o = cJSON_CreateObject(), *arr;
	char *s = NULL;
	size_t i;
	int ret = -ENOMEM;

	if (!o)
		return -ENOMEM;
	arr = cJSON_AddArrayToObject(o, "files");
	if (!arr)
		goto out;
	for (i = 0; i < oi->n; i++) {
		cJSON *f = cJSON_CreateObject();
		char num[24];

		/* as an integer: cJSON prints doubles with 15 digits */
		snprintf(num, sizeof(num), "%" PRIu64, oi->sizes[i]);
		if (!f || !cJSON_AddItemToArray(arr, f) ||
		    !cJSON_AddStringToObject(f, "p", oi->paths[i]) ||
		    !cJSON_AddRawToObject(f, "s", num) ||
		    !cJSON_AddStringToObject(f, "e", oi->etags[i]))
			goto out;
	}
	s = cJSON_PrintUnformatted(o);
	if (s)
		ret = buf_puts(out, s);
out:
	free(s);
	cJSON_Delete(o);
	return ret;
}

/* Sizes are written as JSON numbers: exact up to 2^53, a file's size far
 * below it; anything else (negative, fractional, NaN, huge) is corrupt. */
#define CAT_OBJ_SIZE_MAX 9007199254740992.0

int cat_objinfo_from_json(const char *s, size_t len, struct objinfo *oi)
{
	cJSON *o = cJSON_ParseWithLength(s, len), *files, *it;
	int ret = 0;

	if (!o)
		return -EINVAL;
	files = cJSON_GetObjectItemCaseSensitive(o, "files");
	if (!cJSON_IsArray(files)) {
		cJSON_Delete(o);
		return -EINVAL;
	}
	cJSON_ArrayForEach(it, files)
	{
		cJSON *p = cJSON_GetObjectItemCaseSensitive(it, "p");
		cJSON *sz = cJSON_GetObjectItemCaseSensitive(it, "s");
		cJSON *e = cJSON_GetObjectItemCaseSensitive(it, "e");
		double d = cJSON_IsNumber(sz) ? sz->valuedouble : -1;

		/* !(d >= 0) also catches NaN */
		if (!cJSON_IsString(p) || !cJSON_IsString(e) || !(d >= 0) ||
		    d > CAT_OBJ_SIZE_MAX || (double)(uint64_t)d != d)
			continue;
		ret = cat_objinfo_add(oi, p->valuestring, (uint64_t)d,
				      e->valuestring);
		if (ret < 0)
			break;
	}
	cJSON_Delete(o);
	if (ret < 0)
		cat_objinfo_clear(oi);
	return ret;
}
