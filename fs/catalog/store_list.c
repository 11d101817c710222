/*
 * store_list - what a listing of the store says (see store.h): the assets
 * and sub-namespaces of one namespace level (one delimited listing), and
 * every asset of the store (one full listing, or assets.index where the
 * backend cannot list). An asset is a `<name>.versions` object whose name
 * is valid (DESIGN §3); invalid names are counted, never shown; the data
 * prefix of an asset is not a namespace, nor is a `.versions` file inside
 * a version an asset.
 *
 * Threads: as store.c (a struct store is read-only). Errors: 0 or a
 * negative errno with a message in @err.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/catalog/store.h"
#include "fs/catalog/store_int.h"

/* A growable vector of owned strings. */
struct strvec {
	char **v;
	size_t n, cap;
};

static int strvec_push(struct strvec *sv, const char *s, size_t len)
{
	if (sv->n == sv->cap) {
		size_t nc = sv->cap ? sv->cap * 2 : 16;
		char **nv = realloc(sv->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		sv->v = nv;
		sv->cap = nc;
	}
	sv->v[sv->n] = strndup(s, len);
	if (!sv->v[sv->n])
		return -ENOMEM;
	sv->n++;
	return 0;
}

static void strvec_free(struct strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof(*sv));
}

static int store_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and drop duplicates. */
static void strvec_sort_unique(struct strvec *sv)
{
	size_t j = 0;

	if (sv->n == 0)
		return;
	qsort(sv->v, sv->n, sizeof(sv->v[0]), store_cmp_str);
	for (size_t i = 1; i < sv->n; i++) {
		if (strcmp(sv->v[i], sv->v[j]) == 0)
			free(sv->v[i]);
		else
			sv->v[++j] = sv->v[i];
	}
	sv->n = j + 1;
}

static bool strvec_has(const struct strvec *sv, const char *s)
{
	return sv->n && bsearch(&s, sv->v, sv->n, sizeof(sv->v[0]),
				store_cmp_str) != NULL;
}

/* If @key is "<name>.versions", the length of <name>, else 0. */
static size_t store_versions_name_len(const char *key)
{
	size_t kl = strlen(key), sl = strlen(STORE_VERSIONS_SUFFIX);

	if (kl <= sl || strcmp(key + kl - sl, STORE_VERSIONS_SUFFIX) != 0)
		return 0;
	return kl - sl;
}

static bool store_name_ok(const char *name)
{
	char e[SPEC_ERR_MAX];

	return spec_check_name(name, e, sizeof(e)) == 0;
}

int store_list_level(struct store *s, const char *ns, struct store_level *out,
		     char *err, size_t errlen)
{
	struct strvec assets = {0}, spaces = {0};
	struct prov_listing l = {0};
	char prefix[SPEC_NAME_MAX + 2];
	size_t pl;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!ns)
		ns = "";
	if (*ns) {
		ret = spec_check_name(ns, err, errlen);
		if (ret < 0)
			return ret;
	}
	ret = snprintf(prefix, sizeof(prefix), "%s%s", ns, *ns ? "/" : "");
	if (ret < 0 || (size_t)ret >= sizeof(prefix)) {
		ret = -ENAMETOOLONG;
		log_errbuf(err, errlen, "namespace name too long");
		return ret;
	}
	pl = (size_t)ret;
	ret = prov_list(store_prov(s), prefix, true, &l);
	if (ret < 0) {
		log_errbuf(err, errlen, "cannot list '%s': %s", *ns ? ns : "/",
			   store_prov_reason(ret));
		return ret;
	}
	for (size_t i = 0; i < l.n_objects; i++) {
		const char *k = l.objects[i].key;
		size_t nl = store_versions_name_len(k);

		if (nl <= pl || strncmp(k, prefix, pl) != 0)
			continue;
		if (memchr(k + pl, '/', nl - pl))
			continue;
		ret = strvec_push(&assets, k, nl);
		if (ret < 0)
			goto out;
		if (!store_name_ok(assets.v[assets.n - 1])) {
			free(assets.v[--assets.n]);
			out->n_skipped++;
		}
	}
	strvec_sort_unique(&assets);
	for (size_t i = 0; i < l.n_prefixes; i++) {
		const char *k = l.prefixes[i];
		size_t kl = strlen(k);

		if (kl <= pl + 1 || strncmp(k, prefix, pl) != 0 ||
		    k[kl - 1] != '/')
			continue;
		ret = strvec_push(&spaces, k, kl - 1);
		if (ret < 0)
			goto out;
		if (strvec_has(&assets, spaces.v[spaces.n - 1])) {
			/* the data prefix of an asset */
			free(spaces.v[--spaces.n]);
		} else if (!store_name_ok(spaces.v[spaces.n - 1])) {
			free(spaces.v[--spaces.n]);
			out->n_skipped++;
		}
	}
	strvec_sort_unique(&spaces);
	out->assets = assets.v;
	out->n_assets = assets.n;
	out->namespaces = spaces.v;
	out->n_namespaces = spaces.n;
	memset(&assets, 0, sizeof(assets));
	memset(&spaces, 0, sizeof(spaces));
	ret = 0;
out:
	if (ret < 0) {
		log_errbuf(err, errlen, "out of memory");
		out->n_skipped = 0;
	}
	strvec_free(&assets);
	strvec_free(&spaces);
	prov_listing_free(&l);
	return ret;
}

void store_level_clear(struct store_level *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n_assets; i++)
		free(l->assets[i]);
	free(l->assets);
	for (size_t i = 0; i < l->n_namespaces; i++)
		free(l->namespaces[i]);
	free(l->namespaces);
	memset(l, 0, sizeof(*l));
}

/* Does a proper ancestor of @name ("a" or "a/b" of "a/b/c") appear in @sv? */
static bool store_has_asset_ancestor(const struct strvec *sv, const char *name)
{
	char anc[SPEC_NAME_MAX + 1];
	size_t nl = strlen(name);

	if (nl > SPEC_NAME_MAX)
		return false;
	memcpy(anc, name, nl + 1);
	/* Truncate a copy: @name itself is an element of @sv. */
	for (size_t i = 0; i < nl; i++) {
		if (anc[i] != '/')
			continue;
		anc[i] = '\0';
		if (strvec_has(sv, anc))
			return true;
		anc[i] = '/';
	}
	return false;
}

int store_list_assets(struct store *s, struct assets_index *out, char *err,
		      size_t errlen)
{
	struct prov_listing l = {0};
	struct strvec cand = {0};
	size_t invalid = 0, j = 0;
	bool *inside = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!prov_can_list(store_prov(s))) {
		ret = store_read_index(s, out, err, errlen);
		if (ret == -ENOENT) {
			memset(out, 0, sizeof(*out));
			ret = 0;
		}
		return ret;
	}
	ret = prov_list(store_prov(s), "", false, &l);
	if (ret < 0) {
		log_errbuf(err, errlen, "cannot list the store: %s",
			   store_prov_reason(ret));
		return ret;
	}
	for (size_t i = 0; i < l.n_objects; i++) {
		size_t nl = store_versions_name_len(l.objects[i].key);

		if (!nl)
			continue;
		ret = strvec_push(&cand, l.objects[i].key, nl);
		if (ret < 0)
			goto out;
		if (!store_name_ok(cand.v[cand.n - 1])) {
			free(cand.v[--cand.n]);
			invalid++;
		}
	}
	strvec_sort_unique(&cand);
	/* "x/1.0/a.versions" is a file inside asset x, not an asset: mark
	   first (the test needs the whole sorted set), then compact. */
	inside = calloc(cand.n ? cand.n : 1, sizeof(*inside));
	if (!inside) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cand.n; i++)
		inside[i] = store_has_asset_ancestor(&cand, cand.v[i]);
	for (size_t i = 0; i < cand.n; i++) {
		if (inside[i])
			free(cand.v[i]);
		else
			cand.v[j++] = cand.v[i];
	}
	cand.n = j;
	out->names = cand.v;
	out->n = cand.n;
	out->n_invalid = invalid;
	memset(&cand, 0, sizeof(cand));
	ret = 0;
out:
	if (ret < 0)
		log_errbuf(err, errlen, "out of memory");
	free(inside);
	strvec_free(&cand);
	prov_listing_free(&l);
	return ret;
}
