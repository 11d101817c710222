/*
 * catalog_refresh - the mutable part of the tree: namespace levels and
 * asset version lists, each cached for versions_ttl and re-read after it
 * (the aliases "latest" and "N.latest" move with the list). A level is one
 * delimited listing (or, where the store cannot list, the assets.index
 * document) after which the assets' `.versions` are fetched in parallel.
 *
 * When the store cannot be reached, the last known copy stands in: the
 * one in memory, else the one kept in the cache's documents (also after a
 * restart), else (a level never listed) what the process knows.
 *
 * Threads: see catalog.h; c->lock is taken around map access only.
 * Errors: 0 or a negative errno.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "fs/catalog/catalog_int.h"

/* ---- levels ---- */

/* Level from a store listing (full names). */
static int level_from_store(const struct store_level *sl, struct cat_level *l)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < sl->n_assets && ret == 0; i++)
		ret = cat_strv_push(&l->assets, &l->n_assets,
				    cat_last_comp(sl->assets[i]));
	for (i = 0; i < sl->n_namespaces && ret == 0; i++)
		ret = cat_strv_push(&l->namespaces, &l->n_namespaces,
				    cat_last_comp(sl->namespaces[i]));
	return ret;
}

/* Level from the full asset list (stores that cannot list). */
static int level_from_index(const struct assets_index *ix, const char *ns,
			    struct cat_level *l)
{
	size_t nl = strlen(ns), i;
	int ret = 0;

	for (i = 0; i < ix->n && ret == 0; i++) {
		const char *rest = ix->names[i];
		char comp[SPEC_NAME_MAX + 1];
		const char *slash;

		if (nl) {
			if (strncmp(rest, ns, nl) != 0 || rest[nl] != '/')
				continue;
			rest += nl + 1;
		}
		slash = strchr(rest, '/');
		if (!slash) {
			ret = cat_strv_push(&l->assets, &l->n_assets, rest);
			continue;
		}
		snprintf(comp, sizeof(comp), "%.*s", (int)(slash - rest), rest);
		ret = cat_strv_push(&l->namespaces, &l->n_namespaces, comp);
	}
	cat_strv_sort_uniq(l->assets, &l->n_assets);
	cat_strv_sort_uniq(l->namespaces, &l->n_namespaces);
	return ret;
}

struct prefetch_ctx {
	struct catalog *c;
	const char *ns;
	const struct cat_level *l;
};

static void prefetch_one(void *arg, size_t i)
{
	struct prefetch_ctx *p = arg;
	char name[SPEC_NAME_MAX + 2];
	struct cat_versions *v = NULL;

	snprintf(name, sizeof(name), "%s%s%s", p->ns, p->ns[0] ? "/" : "",
		 p->l->assets[i]);
	if (catalog_versions(p->c, name, &v) == 0)
		cat_versions_unref(v);
}

static struct cat_level *level_ref(struct cat_level *l)
{
	atomic_fetch_add(&l->refs, 1);
	return l;
}

/*
 * The level at @ns; with @prefetch, a fresh listing also fetches its
 * assets' version lists in parallel (a listing's entries are looked up
 * next), which a lookup that only asks "is this a namespace?" skips.
 */
static int level_fetch(struct catalog *c, const char *ns, bool prefetch,
		       struct cat_level **out)
{
	char key[SPEC_NAME_MAX + sizeof(CAT_OBJ_LEVEL) + 1];
	char err[STORE_ERR_MAX] = "";
	struct store_level sl = {0};
	struct assets_index ix = {0};
	struct cat_level *l = NULL, *old = NULL;
	struct buf raw;
	struct ment *e;
	bool fresh = false;
	int ret;

	buf_init(&raw, CAT_DOC_MAX);
	snprintf(key, sizeof(key), "%s%s", CAT_OBJ_LEVEL, ns);
	pthread_mutex_lock(&c->lock);
	e = cat_map_get(&c->levels, ns);
	if (e && e->val)
		old = level_ref(e->val);
	pthread_mutex_unlock(&c->lock);

	l = calloc(1, sizeof(*l));
	if (!l) {
		ret = -ENOMEM;
		goto out;
	}
	atomic_init(&l->refs, 1);
	ret = cat_store_call(c);
	if (ret == 0) {
		ret = store_list_level(c->st, ns, &sl, err, sizeof(err));
		if (ret == -ENOTSUP) {
			ret = store_list_assets(c->st, &ix, err, sizeof(err));
			if (ret == 0)
				ret = level_from_index(&ix, ns, l);
		} else if (ret == 0) {
			ret = level_from_store(&sl, l);
		}
		if (ret < 0)
			cat_note_failure(c, ret, "listing", err);
	}
	if (ret == 0) {
		fresh = true;
		if (cat_level_to_json(l, &raw) == 0)
			cat_doc_put(c, key, raw.data, raw.len, NULL);
	} else if (cat_store_down(ret)) {
		/* offline: the last known level, in memory or kept */
		if (old) {
			cat_level_unref(l);
			l = level_ref(old);
			ret = 0;
		} else {
			buf_reset(&raw);
			if (cat_doc_get(c, key, &raw) == 0 &&
			    cat_level_from_json(raw.data, raw.len, l) == 0) {
				stats_inc(c->stats, STAT_OFFLINE_SERVES);
				ret = 0;
			} else if (cat_level_from_memory(c, ns, l) == 0) {
				stats_inc(c->stats, STAT_OFFLINE_SERVES);
				ret = 0;
			}
		}
	} else {
		log_warn("cannot list namespace '%s': %s", ns,
			 *err ? err : strerror(-ret));
	}
	pthread_mutex_lock(&c->lock);
	e = ret == 0 ? cat_map_put(&c->levels, ns) : cat_map_get(&c->levels, ns);
	if (e && ret == 0) {
		if (e->val)
			cat_level_unref(e->val);
		e->val = level_ref(l);
		e->at_ms = time_mono_ms();
		/* an offline copy is tried again soon, not after a TTL */
		if (!fresh && c->ttl_ms > CAT_RECHECK_MS)
			e->at_ms -= c->ttl_ms - CAT_RECHECK_MS;
	}
	if (e)
		e->refreshing = false;
	pthread_mutex_unlock(&c->lock);
	if (ret < 0)
		goto out;
	if (fresh && prefetch && l->n_assets) {
		struct prefetch_ctx p = {.c = c, .ns = ns, .l = l};

		cat_par_for(c->parallel, l->n_assets, prefetch_one, &p);
	}
	*out = l;
	l = NULL;
out:
	cat_level_unref(l);
	cat_level_unref(old);
	store_level_clear(&sl);
	assets_index_clear(&ix);
	buf_free(&raw);
	return ret;
}

static void level_bg(struct catalog *c, const char *ns)
{
	struct cat_level *l = NULL;

	if (level_fetch(c, ns, true, &l) == 0)
		cat_level_unref(l);
}

/*
 * The level at @ns: a known one at once (re-listed in the background
 * after the TTL: stale-while-revalidate), else listed now.
 */
static int level_get(struct catalog *c, const char *ns, bool prefetch,
		     struct cat_level **out)
{
	struct ment *e;
	bool queue = false;

	if (ns[0] && spec_check_name(ns, NULL, 0) < 0)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	e = cat_map_get(&c->levels, ns);
	if (e && e->val) {
		*out = level_ref(e->val);
		if (time_mono_ms() - e->at_ms >= c->ttl_ms && !e->refreshing)
			queue = e->refreshing = true;
		pthread_mutex_unlock(&c->lock);
		if (queue && cat_bg_push(c, level_bg, ns) < 0) {
			pthread_mutex_lock(&c->lock);
			e->refreshing = false;
			pthread_mutex_unlock(&c->lock);
		}
		return 0;
	}
	pthread_mutex_unlock(&c->lock);
	return level_fetch(c, ns, prefetch, out);
}

int catalog_level(struct catalog *c, const char *ns, struct cat_level **out)
{
	return level_get(c, ns, true, out);
}

int catalog_is_namespace(struct catalog *c, const char *name)
{
	struct cat_level *l = NULL;
	int ret;

	ret = level_get(c, name, false, &l);
	if (ret < 0)
		return ret;
	ret = (l->n_assets || l->n_namespaces) ? 1 : 0;
	cat_level_unref(l);
	/*
	 * A store that cannot list (plain HTTP) knows its namespaces only
	 * from assets.index, which may be missing or behind the store; yet
	 * lookups by name must never need it (DESIGN 2): "a/b" is found
	 * only if "a" is. So there any valid name that is not an asset may
	 * hold assets, and is a namespace (listed as far as it is known).
	 */
	if (ret == 0 && !prov_can_list(store_prov(c->st)))
		ret = 1;
	return ret;
}

/* ---- version lists ---- */

/*
 * warm_before_flip: each alias whose new target the gate holds back shows
 * the version the gate names instead, if it is listed and, for
 * "N.latest", of major N (aliases 1.. stay sorted by major, and a major
 * new to the list has nothing older to show). Returns whether any was
 * held.
 */
static bool gate_aliases(struct catalog *c, const char *name,
			 struct cat_versions *v)
{
	char keep[SPEC_VERSION_MAX + 1];
	bool held = false;
	size_t i;
	int k;

	for (i = 0; c->gate && i < v->n_aliases; i++) {
		const char *t = v->alias_targets[i];

		if (c->gate(c->gate_arg, name, &v->list, t, keep,
			    sizeof(keep)) <= 0 ||
		    strcmp(keep, t) == 0)
			continue;
		k = cat_versions_find(v, keep);
		if (k < 0 || (i > 0 && version_major(keep) != version_major(t)))
			continue;
		v->alias_targets[i] = v->list.v[k];
		v->alias_index[i] = (size_t)k;
		held = true;
	}
	return held;
}

static struct cat_versions *versions_ref(struct cat_versions *v)
{
	atomic_fetch_add(&v->refs, 1);
	return v;
}

/* Read @name's .versions now and publish it (or the last known copy). */
static int versions_fetch(struct catalog *c, const char *name,
			  struct cat_versions **out)
{
	char key[STORE_KEY_MAX];
	char err[STORE_ERR_MAX] = "";
	struct cat_versions *v = NULL, *old = NULL;
	struct ment *e;
	struct buf raw;
	char *etag = NULL;
	bool held = false;
	int ret, old_err;

	buf_init(&raw, VERSIONS_MAX_BYTES);
	ret = store_key_versions(name, key, sizeof(key));
	if (ret < 0)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	e = cat_map_get(&c->versions, name);
	if (e && e->val)
		old = versions_ref(e->val);
	old_err = e && !e->val ? e->err : 0;
	pthread_mutex_unlock(&c->lock);

	v = calloc(1, sizeof(*v));
	if (!v) {
		ret = -ENOMEM;
		goto out;
	}
	atomic_init(&v->refs, 1);
	ret = cat_store_call(c);
	if (ret == 0) {
		stats_inc(c->stats, STAT_VERSIONS_REFRESHES);
		ret = store_get_versions(c->st, name, &v->list, &raw, &etag,
					 err, sizeof(err));
		if (ret < 0)
			cat_note_failure(c, ret, key, err);
	}
	if (ret == 0) {
		v->doc_hash = digest_xxh3(raw.data, raw.len);
		/* the offline copy only changes when the document does */
		if (!old || old->doc_hash != v->doc_hash) {
			cat_doc_put(c, key, raw.data, raw.len, etag);
			if (v->list.n_invalid) /* once per document */
				log_warn("%s: %zu invalid version(s) "
					 "skipped",
					 key, v->list.n_invalid);
		}
	} else if (cat_store_down(ret)) {
		if (old) {
			cat_versions_unref(v);
			v = versions_ref(old);
			v->offline = true;
			ret = 0;
		} else if (old_err == -ENOENT || old_err == -EINVAL) {
			ret = old_err; /* what we knew before going offline */
		} else {
			char perr[SPEC_ERR_MAX];

			buf_reset(&raw);
			if (cat_doc_get(c, key, &raw) == 0 &&
			    store_parse_versions(c->st, raw.data, raw.len,
						 &v->list, perr,
						 sizeof(perr)) == 0) {
				v->offline = true;
				stats_inc(c->stats, STAT_OFFLINE_SERVES);
				ret = 0;
			}
		}
	} else if (ret != -ENOENT) {
		log_warn("skipping asset '%s': %s", name,
			 *err ? err : strerror(-ret));
	}
	if (ret == 0 && !v->alias_names) {
		ret = cat_versions_build_aliases(v);
		if (ret == 0)
			held = gate_aliases(c, name, v);
	}
	pthread_mutex_lock(&c->lock);
	/* a store error is not remembered: retried at the next lookup */
	e = ret < 0 && cat_store_down(ret) ? cat_map_get(&c->versions, name)
					   : cat_map_put(&c->versions, name);
	if (e && !(ret < 0 && cat_store_down(ret))) {
		if (e->val)
			cat_versions_unref(e->val);
		e->val = ret == 0 ? versions_ref(v) : NULL;
		e->err = ret;
		e->at_ms = time_mono_ms();
		/* an offline copy is tried again soon, not after a TTL; a
		   held alias moves as soon as the gate lets it */
		if ((v->offline || held) && c->ttl_ms > CAT_RECHECK_MS)
			e->at_ms -= c->ttl_ms - CAT_RECHECK_MS;
	}
	if (e)
		e->refreshing = false;
	pthread_mutex_unlock(&c->lock);
	if (ret < 0 && cat_store_down(ret))
		goto out;
	if (ret == 0) {
		*out = v;
		v = NULL;
	}
out:
	cat_versions_unref(v);
	cat_versions_unref(old);
	free(etag);
	buf_free(&raw);
	return ret;
}

static void versions_bg(struct catalog *c, const char *name)
{
	struct cat_versions *v = NULL;

	if (versions_fetch(c, name, &v) == 0)
		cat_versions_unref(v);
}

int catalog_versions(struct catalog *c, const char *name,
		     struct cat_versions **out)
{
	struct ment *e;
	bool queue = false;
	int ret;

	if (spec_check_name(name, NULL, 0) < 0)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	e = cat_map_get(&c->versions, name);
	if (e) {
		/* known (a list, or "no such asset"): answered now, and
		   refreshed in the background past the TTL
		   (stale-while-revalidate) */
		ret = e->val ? 0 : e->err;
		if (e->val)
			*out = versions_ref(e->val);
		if (time_mono_ms() - e->at_ms >= c->ttl_ms && !e->refreshing)
			queue = e->refreshing = true;
		pthread_mutex_unlock(&c->lock);
		if (queue && cat_bg_push(c, versions_bg, name) < 0) {
			pthread_mutex_lock(&c->lock);
			e->refreshing = false;
			pthread_mutex_unlock(&c->lock);
		}
		return ret;
	}
	pthread_mutex_unlock(&c->lock);
	return versions_fetch(c, name, out);
}
