/*
 * catalog - see catalog.h.
 *
 * Three maps under one mutex (c->lock), never held across I/O:
 *   levels:   namespace -> struct cat_level, refreshed after the TTL
 *   versions: asset name -> struct cat_versions (or a remembered error),
 *             refreshed after the TTL
 *   metas:    "name\nversion" -> struct cat_version, kept for the mount's
 *             life (version content is immutable); errors are remembered
 *             for one TTL.
 * Two threads refreshing the same entry both fetch and the last one wins:
 * rare, harmless, and simpler than a per-entry flight.
 *
 * Offline copies go to the cache's documents under the store's own keys
 * (`x.versions`, `x/1.0.meta`) and under "assetfs:level:NS" and
 * "assetfs:objinfo:NAME/VERSION" (sizes and ETags of versions without a
 * manifest), as small JSON documents.
 *
 * Signatures: with a verify key (the store's, loaded again here), a
 * `.meta` is used only once store_get_meta() verified it; its `.meta.sig`
 * is then kept (hex) under "assetfs:sig:NAME/VERSION.meta.sig" beside the
 * document. The documents are shared by every mount on the cache dir,
 * with or without a key, so nothing in them is trusted: offline, a cached
 * `.meta` is used only if the cached signature verifies its exact bytes
 * with this mount's key. -EBADMSG (a refused signature) is never a store
 * outage, so it never falls back to a cached copy.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "fs/catalog/catalog.h"
#include "fs/catalog/sign.h"

#define CAT_DOC_MAX (64u << 20)
#define CAT_OBJ_LEVEL "assetfs:level:"
#define CAT_OBJ_INFO "assetfs:objinfo:"
#define CAT_OBJ_SIG "assetfs:sig:"
/* The most kept documents an offline listing looks through. */
#define CAT_OFFLINE_KEYS_MAX 100000
#define CAT_SIG_MAX 4096 /* cap on a fetched .meta.sig (64 bytes) */

struct ment {
	char *key;
	void *val;     /* the snapshot, or NULL for a remembered error */
	int err;       /* the error when val is NULL */
	int64_t at_ms; /* when fetched */
	struct ment *next;
};

struct smap {
	struct ment **b;
	size_t size; /* power of two */
	size_t n;
};

struct catalog {
	struct store *st;
	struct cache *cache;
	struct stats *stats;
	const char *url;
	struct sign_key *verify; /* owned, or NULL: no signature checks */
	int ttl_ms;
	int parallel;
	int offline_ms;
	pthread_mutex_t lock;
	struct smap levels;   /* protected by lock */
	struct smap versions; /* protected by lock */
	struct smap metas;    /* protected by lock */
	int64_t offline_until_ms; /* protected by lock */
};

/* ---- a small string map ---- */

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int smap_init(struct smap *m)
{
	m->size = 256;
	m->n = 0;
	m->b = calloc(m->size, sizeof(*m->b));
	return m->b ? 0 : -ENOMEM;
}

static struct ment *smap_get(struct smap *m, const char *key)
{
	struct ment *e = m->b[str_hash(key) & (m->size - 1)];

	for (; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void smap_grow(struct smap *m)
{
	struct ment **nb;
	size_t nsize = m->size * 2, i;

	if (m->n < m->size)
		return;
	nb = calloc(nsize, sizeof(*nb));
	if (!nb)
		return;
	for (i = 0; i < m->size; i++) {
		struct ment *e = m->b[i], *next;

		for (; e; e = next) {
			size_t h = str_hash(e->key) & (nsize - 1);

			next = e->next;
			e->next = nb[h];
			nb[h] = e;
		}
	}
	free(m->b);
	m->b = nb;
	m->size = nsize;
}

/* Find or add the entry for @key. Returns NULL on out of memory. */
static struct ment *smap_put(struct smap *m, const char *key)
{
	struct ment *e = smap_get(m, key);
	size_t h;

	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = strdup(key);
	if (!e->key) {
		free(e);
		return NULL;
	}
	h = str_hash(key) & (m->size - 1);
	e->next = m->b[h];
	m->b[h] = e;
	m->n++;
	smap_grow(m);
	return e;
}

static void smap_clear(struct smap *m, void (*unref)(void *))
{
	size_t i;

	for (i = 0; m->b && i < m->size; i++) {
		struct ment *e = m->b[i], *next;

		for (; e; e = next) {
			next = e->next;
			if (e->val)
				unref(e->val);
			free(e->key);
			free(e);
		}
	}
	free(m->b);
	m->b = NULL;
}

/* ---- parallel for ---- */

struct par {
	void (*fn)(void *arg, size_t i);
	void *arg;
	size_t n;
	atomic_size_t next;
};

static void *par_worker(void *arg)
{
	struct par *p = arg;
	size_t i;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->n)
		p->fn(p->arg, i);
	return NULL;
}

/* Run @fn(@arg, i) for i in [0, @n) on up to @threads threads. */
static void par_for(int threads, size_t n, void (*fn)(void *, size_t),
		    void *arg)
{
	struct par p = { .fn = fn, .arg = arg, .n = n };
	pthread_t tid[64];
	int k, started = 0;

	atomic_init(&p.next, 0);
	if (threads > 64)
		threads = 64;
	for (k = 0; k < threads && (size_t)k + 1 < n; k++) {
		if (pthread_create(&tid[k], NULL, par_worker, &p) != 0)
			break;
		started++;
	}
	par_worker(&p);
	for (k = 0; k < started; k++)
		pthread_join(tid[k], NULL);
}

/* ---- snapshots ---- */

static void free_strv(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void cat_level_unref(struct cat_level *l)
{
	if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	free_strv(l->assets, l->n_assets);
	free_strv(l->namespaces, l->n_namespaces);
	free(l);
}

void cat_versions_unref(struct cat_versions *v)
{
	if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	version_list_clear(&v->list);
	free_strv(v->alias_names, v->n_aliases);
	free_strv(v->alias_targets, v->n_aliases);
	free(v);
}

void cat_version_unref(struct cat_version *v)
{
	size_t i;

	if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	for (i = 0; i < v->n_nodes; i++) {
		free(v->nodes[i].relpath);
		free(v->nodes[i].etag);
	}
	free(v->nodes);
	meta_clear(&v->meta);
	free(v->name);
	free(v->version);
	free(v);
}

static void level_unref_v(void *p)
{
	cat_level_unref(p);
}

static void versions_unref_v(void *p)
{
	cat_versions_unref(p);
}

static void version_unref_v(void *p)
{
	cat_version_unref(p);
}

/* ---- catalog ---- */

int catalog_new(struct store *st, struct cache *cache, struct stats *stats,
		const struct catalog_opts *opts, struct catalog **out)
{
	struct catalog *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->st = st;
	c->cache = cache;
	c->stats = stats;
	c->url = prov_url(store_prov(st));
	c->ttl_ms = opts && opts->versions_ttl_ms > 0 ? opts->versions_ttl_ms :
							 60000;
	c->parallel = opts && opts->parallel > 0 ? opts->parallel : 16;
	c->offline_ms = opts && opts->offline_ms > 0 ? opts->offline_ms : 5000;
	pthread_mutex_init(&c->lock, NULL);
	if (smap_init(&c->levels) < 0 || smap_init(&c->versions) < 0 ||
	    smap_init(&c->metas) < 0) {
		catalog_free(c);
		return -ENOMEM;
	}
	if (store_verify_key(st)) {
		char err[STORE_ERR_MAX];
		int ret = sign_load_public(store_verify_key(st), &c->verify,
					   err, sizeof(err));

		if (ret < 0) {
			log_error("%s", err);
			catalog_free(c);
			return ret;
		}
	}
	*out = c;
	return 0;
}

void catalog_free(struct catalog *c)
{
	if (!c)
		return;
	smap_clear(&c->levels, level_unref_v);
	smap_clear(&c->versions, versions_unref_v);
	smap_clear(&c->metas, version_unref_v);
	sign_key_free(&c->verify);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int catalog_ttl_ms(const struct catalog *c)
{
	return c->ttl_ms;
}

struct store *catalog_store(const struct catalog *c)
{
	return c->st;
}

/* Errors that say the store is unreachable rather than "no such thing". */
static bool store_down(int err)
{
	return err != -ENOENT && err != -EINVAL && err != -EFBIG &&
	       err != -ENOTSUP && err != -ENOMEM && err != -ENAMETOOLONG &&
	       err != -ENOTDIR && err != -EISDIR && err != -EBADMSG;
}

bool catalog_err_unreachable(int err)
{
	return err < 0 && store_down(err);
}

static bool is_offline(struct catalog *c)
{
	bool off;

	pthread_mutex_lock(&c->lock);
	off = time_mono_ms() < c->offline_until_ms;
	pthread_mutex_unlock(&c->lock);
	return off;
}

static void note_failure(struct catalog *c, int err, const char *what,
			 const char *msg)
{
	bool was;

	if (!store_down(err))
		return;
	pthread_mutex_lock(&c->lock);
	was = time_mono_ms() < c->offline_until_ms;
	c->offline_until_ms = time_mono_ms() + c->offline_ms;
	pthread_mutex_unlock(&c->lock);
	if (!was && err == -EACCES)
		log_warn("store %s refused access (%s: %s): check its "
			 "credentials (http(s): -o bearer_token_file=FILE or "
			 "$ASSETFS_BEARER_TOKEN_FILE); serving the last known "
			 "lists and cached data for %d s",
			 c->url, what, msg && *msg ? msg : strerror(-err),
			 c->offline_ms / 1000);
	else if (!was)
		log_warn("store %s unreachable (%s: %s); serving the last "
			 "known lists and cached data for %d s",
			 c->url, what, msg && *msg ? msg : strerror(-err),
			 c->offline_ms / 1000);
}

static void doc_put(struct catalog *c, const char *key, const char *data,
		    size_t len, const char *etag)
{
	int ret;

	if (!c->cache || !data)
		return;
	ret = cache_doc_put(c->cache, c->url, key, data, len, etag);
	if (ret < 0)
		log_debug("cannot keep %s for offline use: %s", key,
			  strerror(-ret));
}

static int doc_get(struct catalog *c, const char *key, struct buf *out)
{
	if (!c->cache)
		return -ENOENT;
	return cache_doc_get(c->cache, c->url, key, out, NULL, NULL);
}

/* ---- levels ---- */

static int strv_push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strv_sort_uniq(char **v, size_t *n)
{
	size_t i, j = 0;

	if (*n == 0)
		return;
	qsort(v, *n, sizeof(*v), cmp_str);
	for (i = 1; i < *n; i++) {
		if (strcmp(v[i], v[j]) == 0)
			free(v[i]);
		else
			v[++j] = v[i];
	}
	*n = j + 1;
}

static const char *last_comp(const char *full)
{
	const char *s = strrchr(full, '/');

	return s ? s + 1 : full;
}

/* Level from a store listing (full names). */
static int level_from_store(const struct store_level *sl,
			    struct cat_level *l)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < sl->n_assets && ret == 0; i++)
		ret = strv_push(&l->assets, &l->n_assets,
				last_comp(sl->assets[i]));
	for (i = 0; i < sl->n_namespaces && ret == 0; i++)
		ret = strv_push(&l->namespaces, &l->n_namespaces,
				last_comp(sl->namespaces[i]));
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
			ret = strv_push(&l->assets, &l->n_assets, rest);
			continue;
		}
		snprintf(comp, sizeof(comp), "%.*s", (int)(slash - rest),
			 rest);
		ret = strv_push(&l->namespaces, &l->n_namespaces, comp);
	}
	strv_sort_uniq(l->assets, &l->n_assets);
	strv_sort_uniq(l->namespaces, &l->n_namespaces);
	return ret;
}

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

static int level_to_json(const struct cat_level *l, struct buf *out)
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

static int json_strv(const cJSON *arr, char ***v, size_t *n)
{
	const cJSON *it;
	int ret;

	if (!cJSON_IsArray(arr))
		return -EINVAL;
	cJSON_ArrayForEach(it, arr)
	{
		if (!cJSON_IsString(it))
			continue;
		ret = strv_push(v, n, it->valuestring);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int level_from_json(const char *s, size_t len, struct cat_level *l)
{
	cJSON *o = cJSON_ParseWithLength(s, len);
	int ret;

	if (!o)
		return -EINVAL;
	ret = json_strv(cJSON_GetObjectItemCaseSensitive(o, "assets"),
			&l->assets, &l->n_assets);
	if (ret == 0)
		ret = json_strv(cJSON_GetObjectItemCaseSensitive(o,
								 "namespaces"),
				&l->namespaces, &l->n_namespaces);
	cJSON_Delete(o);
	return ret;
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
		return is_asset ? strv_push(&l->assets, &l->n_assets, rest) :
				  strv_push(&l->namespaces, &l->n_namespaces,
					    rest);
	snprintf(comp, sizeof(comp), "%.*s", (int)(slash - rest), rest);
	return strv_push(&l->namespaces, &l->n_namespaces, comp);
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

/*
 * Offline and never listed: the level as far as this process knows it,
 * from the assets and namespaces it has seen and the version lists the
 * cache keeps. Returns 0 if anything is known below @ns, else -ENOENT.
 */
static int level_from_memory(struct catalog *c, const char *ns,
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
	strv_sort_uniq(l->assets, &l->n_assets);
	strv_sort_uniq(l->namespaces, &l->n_namespaces);
	return l->n_assets || l->n_namespaces ? 0 : -ENOENT;
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

int catalog_level(struct catalog *c, const char *ns, struct cat_level **out)
{
	char key[SPEC_NAME_MAX + sizeof(CAT_OBJ_LEVEL) + 1];
	char err[STORE_ERR_MAX] = "";
	struct store_level sl = { 0 };
	struct assets_index ix = { 0 };
	struct cat_level *l = NULL, *old = NULL;
	struct buf raw;
	struct ment *e;
	bool fresh = false;
	int ret;

	buf_init(&raw, CAT_DOC_MAX);
	if (ns[0] && spec_check_name(ns, NULL, 0) < 0)
		return -ENOENT;
	snprintf(key, sizeof(key), "%s%s", CAT_OBJ_LEVEL, ns);
	pthread_mutex_lock(&c->lock);
	e = smap_get(&c->levels, ns);
	if (e && e->val) {
		old = level_ref(e->val);
		if (time_mono_ms() - e->at_ms < c->ttl_ms) {
			pthread_mutex_unlock(&c->lock);
			*out = old;
			return 0;
		}
	}
	pthread_mutex_unlock(&c->lock);

	l = calloc(1, sizeof(*l));
	if (!l) {
		ret = -ENOMEM;
		goto out;
	}
	atomic_init(&l->refs, 1);
	if (is_offline(c)) {
		ret = -EIO;
	} else {
		stats_inc(c->stats, STAT_STORE_REQUESTS);
		ret = store_list_level(c->st, ns, &sl, err, sizeof(err));
		if (ret == -ENOTSUP) {
			ret = store_list_assets(c->st, &ix, err, sizeof(err));
			if (ret == 0)
				ret = level_from_index(&ix, ns, l);
		} else if (ret == 0) {
			ret = level_from_store(&sl, l);
		}
		if (ret < 0)
			note_failure(c, ret, "listing", err);
	}
	if (ret == 0) {
		fresh = true;
		if (level_to_json(l, &raw) == 0)
			doc_put(c, key, raw.data, raw.len, NULL);
	} else if (store_down(ret)) {
		/* offline: the last known level, in memory or kept */
		if (old) {
			cat_level_unref(l);
			l = level_ref(old);
			ret = 0;
		} else {
			buf_reset(&raw);
			if (doc_get(c, key, &raw) == 0 &&
			    level_from_json(raw.data, raw.len, l) == 0) {
				stats_inc(c->stats, STAT_OFFLINE_SERVES);
				ret = 0;
			} else if (level_from_memory(c, ns, l) == 0) {
				stats_inc(c->stats, STAT_OFFLINE_SERVES);
				ret = 0;
			}
		}
	} else {
		log_warn("cannot list namespace '%s': %s", ns,
			 *err ? err : strerror(-ret));
	}
	if (ret < 0)
		goto out;
	pthread_mutex_lock(&c->lock);
	e = smap_put(&c->levels, ns);
	if (e) {
		if (e->val)
			cat_level_unref(e->val);
		e->val = level_ref(l);
		e->at_ms = time_mono_ms();
	}
	pthread_mutex_unlock(&c->lock);
	if (fresh && l->n_assets) {
		struct prefetch_ctx p = { .c = c, .ns = ns, .l = l };

		par_for(c->parallel, l->n_assets, prefetch_one, &p);
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

int catalog_is_namespace(struct catalog *c, const char *name)
{
	struct cat_level *l = NULL;
	int ret;

	ret = catalog_level(c, name, &l);
	if (ret < 0)
		return ret;
	ret = (l->n_assets || l->n_namespaces) ? 1 : 0;
	cat_level_unref(l);
	return ret;
}

/* ---- version lists ---- */

static int build_aliases(struct cat_versions *v)
{
	size_t i, j;
	int ret;
	char alias[64];

	if (v->list.n == 0)
		return 0;
	ret = strv_push(&v->alias_names, &v->n_aliases, "latest");
	if (ret == 0) {
		size_t n = 0;

		ret = strv_push(&v->alias_targets, &n, v->list.v[0]);
	}
	if (ret < 0 || v->list.sys != VERSIONING_MAJOR_MINOR)
		return ret;
	for (i = 0; i < v->list.n; i++) {
		unsigned long major = version_major(v->list.v[i]);
		bool seen = false;

		for (j = 0; j < i; j++)
			if (version_major(v->list.v[j]) == major)
				seen = true;
		if (seen)
			continue;
		snprintf(alias, sizeof(alias), "%lu.latest", major);
		ret = strv_push(&v->alias_names, &v->n_aliases, alias);
		if (ret == 0) {
			size_t n = v->n_aliases - 1;

			ret = strv_push(&v->alias_targets, &n, v->list.v[i]);
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

static struct cat_versions *versions_ref(struct cat_versions *v)
{
	atomic_fetch_add(&v->refs, 1);
	return v;
}

int catalog_versions(struct catalog *c, const char *name,
		     struct cat_versions **out)
{
	char key[STORE_KEY_MAX];
	char err[STORE_ERR_MAX] = "";
	struct cat_versions *v = NULL, *old = NULL;
	struct ment *e;
	struct buf raw;
	char *etag = NULL;
	int ret, old_err;

	buf_init(&raw, VERSIONS_MAX_BYTES);
	if (spec_check_name(name, NULL, 0) < 0)
		return -ENOENT;
	ret = store_key_versions(name, key, sizeof(key));
	if (ret < 0)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	e = smap_get(&c->versions, name);
	if (e && time_mono_ms() - e->at_ms < c->ttl_ms) {
		ret = e->val ? 0 : e->err;
		if (e->val)
			*out = versions_ref(e->val);
		pthread_mutex_unlock(&c->lock);
		return ret;
	}
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
	if (is_offline(c)) {
		ret = -EIO;
	} else {
		stats_inc(c->stats, STAT_STORE_REQUESTS);
		stats_inc(c->stats, STAT_VERSIONS_REFRESHES);
		ret = store_get_versions(c->st, name, &v->list, &raw, &etag,
					 err, sizeof(err));
		if (ret < 0)
			note_failure(c, ret, key, err);
	}
	if (ret == 0) {
		v->doc_hash = digest_xxh3(raw.data, raw.len);
		/* the offline copy only changes when the document does */
		if (!old || old->doc_hash != v->doc_hash) {
			doc_put(c, key, raw.data, raw.len, etag);
			if (v->list.n_invalid) /* once per document */
				log_warn("%s: %zu invalid version(s) "
					 "skipped", key, v->list.n_invalid);
		}
	} else if (store_down(ret)) {
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
			if (doc_get(c, key, &raw) == 0 &&
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
	if (ret == 0 && !v->alias_names)
		ret = build_aliases(v);
	if (ret < 0 && store_down(ret))
		goto out; /* not remembered: retried at the next lookup */
	pthread_mutex_lock(&c->lock);
	e = smap_put(&c->versions, name);
	if (e) {
		if (e->val)
			cat_versions_unref(e->val);
		e->val = ret == 0 ? versions_ref(v) : NULL;
		e->err = ret;
		/* an offline copy is re-checked soon, not after a TTL */
		e->at_ms = time_mono_ms();
		if (v->offline && c->ttl_ms > c->offline_ms)
			e->at_ms -= c->ttl_ms - c->offline_ms;
	}
	pthread_mutex_unlock(&c->lock);
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

const char *cat_versions_alias(const struct cat_versions *v,
			       const char *alias)
{
	size_t i;

	for (i = 0; i < v->n_aliases; i++)
		if (strcmp(v->alias_names[i], alias) == 0)
			return v->alias_targets[i];
	return NULL;
}

bool cat_versions_has(const struct cat_versions *v, const char *version)
{
	size_t i;

	for (i = 0; i < v->list.n; i++)
		if (strcmp(v->list.v[i], version) == 0)
			return true;
	return false;
}

/* ---- versions ---- */

struct objinfo {
	char **paths;
	uint64_t *sizes;
	char **etags;
	size_t n;
};

static void objinfo_clear(struct objinfo *oi)
{
	free_strv(oi->paths, oi->n);
	free_strv(oi->etags, oi->n);
	free(oi->sizes);
	memset(oi, 0, sizeof(*oi));
}

static int objinfo_add(struct objinfo *oi, const char *path, uint64_t size,
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
	ret = strv_push(&oi->paths, &n, path);
	if (ret < 0)
		return ret;
	n = oi->n;
	ret = strv_push(&oi->etags, &n, etag ? etag : "");
	if (ret < 0) {
		free(oi->paths[oi->n]);
		return ret;
	}
	oi->n++;
	return 0;
}

static int objinfo_find(const struct objinfo *oi, const char *path)
{
	size_t i;

	for (i = 0; i < oi->n; i++)
		if (strcmp(oi->paths[i], path) == 0)
			return (int)i;
	return -ENOENT;
}

static int objinfo_to_json(const struct objinfo *oi, struct buf *out)
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

		if (!f || !cJSON_AddItemToArray(arr, f) ||
		    !cJSON_AddStringToObject(f, "p", oi->paths[i]) ||
		    !cJSON_AddNumberToObject(f, "s", (double)oi->sizes[i]) ||
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

static int objinfo_from_json(const char *s, size_t len, struct objinfo *oi)
{
	cJSON *o = cJSON_ParseWithLength(s, len), *it;
	int ret = 0;

	if (!o)
		return -EINVAL;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "files"))
	{
		cJSON *p = cJSON_GetObjectItemCaseSensitive(it, "p");
		cJSON *sz = cJSON_GetObjectItemCaseSensitive(it, "s");
		cJSON *e = cJSON_GetObjectItemCaseSensitive(it, "e");

		if (!cJSON_IsString(p) || !cJSON_IsNumber(sz) ||
		    !cJSON_IsString(e) || sz->valuedouble < 0)
			continue;
		ret = objinfo_add(oi, p->valuestring,
				  (uint64_t)sz->valuedouble, e->valuestring);
		if (ret < 0)
			break;
	}
	cJSON_Delete(o);
	return ret;
}

/*
 * Sizes and ETags of a version without a manifest: HEAD of a file asset,
 * or one listing of a folder version's prefix.
 */
static int objinfo_fetch(struct catalog *c, const char *name,
			 const char *version, bool is_dir, struct objinfo *oi)
{
	char key[STORE_KEY_MAX], dkey[STORE_KEY_MAX + 32];
	struct prov_listing ls = { 0 };
	struct prov_object ob = { 0 };
	struct buf raw;
	size_t i, plen;
	int ret;

	buf_init(&raw, CAT_DOC_MAX);
	ret = store_key_file(name, version, NULL, key, sizeof(key));
	if (ret < 0)
		goto out;
	snprintf(dkey, sizeof(dkey), "%s%s", CAT_OBJ_INFO, key);
	ret = is_offline(c) ? -EIO : 0;
	if (ret == 0 && !is_dir) {
		stats_inc(c->stats, STAT_STORE_REQUESTS);
		ret = prov_head(store_prov(c->st), key, &ob);
		if (ret == 0)
			ret = objinfo_add(oi, "", ob.size, ob.etag);
	} else if (ret == 0) {
		strcat(key, "/");
		plen = strlen(key);
		stats_inc(c->stats, STAT_STORE_REQUESTS);
		ret = prov_list(store_prov(c->st), key, false, &ls);
		for (i = 0; ret == 0 && i < ls.n_objects; i++) {
			if (strncmp(ls.objects[i].key, key, plen) != 0)
				continue;
			ret = objinfo_add(oi, ls.objects[i].key + plen,
					  ls.objects[i].size,
					  ls.objects[i].etag);
		}
	}
	if (ret == 0) {
		if (objinfo_to_json(oi, &raw) == 0)
			doc_put(c, dkey, raw.data, raw.len, NULL);
	} else if (store_down(ret)) {
		note_failure(c, ret, key, prov_last_error());
		objinfo_clear(oi);
		if (doc_get(c, dkey, &raw) == 0 &&
		    objinfo_from_json(raw.data, raw.len, oi) == 0)
			ret = 0;
	}
out:
	prov_object_free(&ob);
	prov_listing_free(&ls);
	buf_free(&raw);
	return ret;
}

static int node_add(struct cat_version *v, size_t *cap, const char *relpath,
		    bool is_dir, uint32_t parent)
{
	struct cat_node *n;
	uint32_t idx = (uint32_t)v->n_nodes;

	if (v->n_nodes == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;

		n = realloc(v->nodes, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		v->nodes = n;
		*cap = ncap;
	}
	n = &v->nodes[idx];
	memset(n, 0, sizeof(*n));
	n->relpath = strdup(relpath);
	if (!n->relpath)
		return -ENOMEM;
	n->comp = last_comp(n->relpath);
	n->is_dir = is_dir;
	n->parent = parent;
	v->n_nodes++;
	if (idx == 0)
		return 0;
	/* append to the parent's children, keeping the contents' order */
	if (!v->nodes[parent].first_child) {
		v->nodes[parent].first_child = idx;
	} else {
		uint32_t k = v->nodes[parent].first_child;

		while (v->nodes[k].next_sibling)
			k = v->nodes[k].next_sibling;
		v->nodes[k].next_sibling = idx;
	}
	return (int)idx;
}

static int child_find(const struct cat_version *v, uint32_t dir,
		      const char *comp, size_t len)
{
	uint32_t k = v->nodes[dir].first_child;

	for (; k; k = v->nodes[k].next_sibling)
		if (strlen(v->nodes[k].comp) == len &&
		    memcmp(v->nodes[k].comp, comp, len) == 0)
			return (int)k;
	return -ENOENT;
}

int cat_version_find(const struct cat_version *v, const char *relpath)
{
	uint32_t cur = 0;
	const char *p = relpath;

	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		int k;

		if (!v->nodes[cur].is_dir)
			return -ENOENT;
		k = child_find(v, cur, p, len);
		if (k < 0)
			return k;
		cur = (uint32_t)k;
		p += len;
		if (*p == '/')
			p++;
	}
	return (int)cur;
}

/* Add a file of a folder version with its parent dirs. */
static int add_file(struct cat_version *v, size_t *cap, const char *path)
{
	char sub[SPEC_PATH_MAX + 1];
	uint32_t cur = 0;
	const char *p = path;
	int k;

	while (1) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		k = child_find(v, cur, p, len);
		if (!slash) {
			if (k >= 0)
				return -EEXIST;
			return node_add(v, cap, path, false, cur);
		}
		if (k >= 0 && !v->nodes[k].is_dir)
			return -EEXIST;
		if (k < 0) {
			if ((size_t)(slash - path) > SPEC_PATH_MAX)
				return -ENAMETOOLONG;
			snprintf(sub, sizeof(sub), "%.*s",
				 (int)(slash - path), path);
			k = node_add(v, cap, sub, true, cur);
			if (k < 0)
				return k;
		}
		cur = (uint32_t)k;
		p = slash + 1;
	}
}

static int build_nodes(struct catalog *c, struct cat_version *v)
{
	const struct manifest *mf = v->meta.manifest;
	struct objinfo oi = { 0 };
	size_t cap = 0, i;
	int ret, k;

	v->block_size = mf ? mf->block_size : CAT_TOFU_BLOCK_SIZE;
	if (!mf) {
		ret = objinfo_fetch(c, v->name, v->version,
				    v->meta.is_directory, &oi);
		if (ret < 0) {
			log_warn("%s:%s: cannot read object sizes: %s",
				 v->name, v->version,
				 *prov_last_error() ? prov_last_error() :
						      strerror(-ret));
			goto out;
		}
	}
	ret = node_add(v, &cap, "", v->meta.is_directory, 0);
	if (ret < 0)
		goto out;
	if (!v->meta.is_directory) {
		if (mf) {
			v->nodes[0].mf = manifest_find(mf, "");
			if (!v->nodes[0].mf) {
				log_warn("%s:%s: manifest has no entry for "
					 "the file", v->name, v->version);
				ret = -EINVAL;
				goto out;
			}
			v->nodes[0].size = v->nodes[0].mf->size;
		} else {
			k = objinfo_find(&oi, "");
			if (k < 0) {
				ret = -ENOENT;
				goto out;
			}
			v->nodes[0].size = oi.sizes[k];
			v->nodes[0].etag = strdup(oi.etags[k]);
		}
		goto out;
	}
	for (i = 0; i < v->meta.n_contents; i++) {
		const char *path = v->meta.contents[i];
		const struct manifest_file *f = NULL;
		int oik = -1;

		if (mf) {
			f = manifest_find(mf, path);
			if (!f) {
				log_warn("%s:%s: '%s' is not in the manifest; "
					 "skipped", v->name, v->version, path);
				continue;
			}
		} else {
			oik = objinfo_find(&oi, path);
			if (oik < 0) {
				log_warn("%s:%s: no object for '%s'; skipped",
					 v->name, v->version, path);
				continue;
			}
		}
		k = add_file(v, &cap, path);
		if (k == -EEXIST) {
			log_warn("%s:%s: '%s' clashes with another entry; "
				 "skipped", v->name, v->version, path);
			continue;
		}
		if (k < 0) {
			ret = k;
			goto out;
		}
		if (f) {
			v->nodes[k].mf = f;
			v->nodes[k].size = f->size;
		} else {
			v->nodes[k].size = oi.sizes[oik];
			v->nodes[k].etag = strdup(oi.etags[oik]);
			if (!v->nodes[k].etag) {
				ret = -ENOMEM;
				goto out;
			}
		}
	}
	ret = 0;
out:
	objinfo_clear(&oi);
	return ret;
}

/* ---- signatures ---- */

static void sig_hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_val(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Decode exactly SIGN_SIG_LEN bytes of lower-case hex. 0 or -EBADMSG. */
static int sig_unhex(const char *s, size_t len, uint8_t out[SIGN_SIG_LEN])
{
	size_t i;

	if (!s || len != 2 * SIGN_SIG_LEN)
		return -EBADMSG;
	for (i = 0; i < SIGN_SIG_LEN; i++) {
		int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EBADMSG;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int sig_doc_key(const char *name, const char *version, char *buf,
		       size_t len)
{
	char skey[STORE_KEY_MAX];
	int ret = store_key_sig(name, version, skey, sizeof(skey));

	if (ret < 0)
		return ret;
	ret = snprintf(buf, len, "%s%s", CAT_OBJ_SIG, skey);
	return ret < 0 || (size_t)ret >= len ? -ENAMETOOLONG : 0;
}

/*
 * With a key, once store_get_meta() verified @raw (the `.meta` of
 * @name:@version, store key @key): read the `.meta.sig` again, check it
 * against @raw and keep both for offline use. Returns 0 (also when the
 * signature cannot be read now: the document was verified, it is just not
 * kept), or -EBADMSG with a message in @err if the signature no longer
 * verifies @raw.
 */
static int keep_signed(struct catalog *c, const char *name,
		       const char *version, const char *key,
		       const struct buf *raw, const char *etag, char *err,
		       size_t errlen)
{
	char skey[STORE_KEY_MAX], dkey[STORE_KEY_MAX + sizeof(CAT_OBJ_SIG)];
	char hex[2 * SIGN_SIG_LEN + 1];
	struct buf sig;
	int ret;

	buf_init(&sig, CAT_SIG_MAX);
	if (store_key_sig(name, version, skey, sizeof(skey)) < 0 ||
	    sig_doc_key(name, version, dkey, sizeof(dkey)) < 0) {
		ret = 0; /* cannot be kept; still verified */
		goto out;
	}
	stats_inc(c->stats, STAT_STORE_REQUESTS);
	ret = prov_get_buf(store_prov(c->st), skey, CAT_SIG_MAX, &sig, NULL);
	if (ret < 0 && store_down(ret)) {
		log_debug("cannot keep %s for offline use: %s", skey,
			  strerror(-ret));
		ret = 0;
		goto out;
	}
	if (ret == 0 && sig.len == SIGN_SIG_LEN)
		ret = sign_verify(c->verify, raw->data ? raw->data : "",
				  raw->len, sig.data, sig.len);
	else
		ret = -EBADMSG; /* gone, oversized or not a signature */
	if (ret == -EBADMSG) {
		snprintf(err, errlen,
			 "%s:%s: .meta signature changed while it was read "
			 "(no longer verifies with %s)",
			 name, version, sign_key_name(c->verify));
		goto out;
	}
	if (ret < 0) { /* OpenSSL could not check: do not keep */
		ret = 0;
		goto out;
	}
	sig_hex((const uint8_t *)sig.data, SIGN_SIG_LEN, hex);
	doc_put(c, dkey, hex, 2 * SIGN_SIG_LEN, NULL);
	doc_put(c, key, raw->data, raw->len, etag);
out:
	buf_free(&sig);
	return ret;
}

/*
 * Offline, with a key: does the kept signature of @name:@version verify
 * @raw, its kept `.meta`, with this mount's key? Returns 0, or -EBADMSG
 * with a message in @err (no kept signature, or a wrong one).
 */
static int cached_sig_ok(struct catalog *c, const char *name,
			 const char *version, const struct buf *raw, char *err,
			 size_t errlen)
{
	char dkey[STORE_KEY_MAX + sizeof(CAT_OBJ_SIG)];
	uint8_t sig[SIGN_SIG_LEN];
	struct buf hex;
	int ret;

	buf_init(&hex, 2 * SIGN_SIG_LEN + 16);
	ret = sig_doc_key(name, version, dkey, sizeof(dkey));
	if (ret == 0)
		ret = doc_get(c, dkey, &hex);
	if (ret == 0)
		ret = sig_unhex(hex.data, hex.len, sig);
	if (ret == 0)
		ret = sign_verify(c->verify, raw->data ? raw->data : "",
				  raw->len, sig, sizeof(sig));
	if (ret == -ENOENT)
		snprintf(err, errlen,
			 "%s:%s: store unreachable and no signature of the "
			 "cached .meta is kept to verify with %s",
			 name, version, sign_key_name(c->verify));
	else if (ret < 0)
		snprintf(err, errlen,
			 "%s:%s: store unreachable and the cached .meta does "
			 "not verify with %s",
			 name, version, sign_key_name(c->verify));
	buf_free(&hex);
	return ret < 0 ? -EBADMSG : 0;
}

static struct cat_version *version_ref(struct cat_version *v)
{
	atomic_fetch_add(&v->refs, 1);
	return v;
}

int catalog_version(struct catalog *c, const char *name, const char *version,
		    struct cat_version **out)
{
	char mkey[STORE_KEY_MAX + SPEC_VERSION_MAX + 2];
	char key[STORE_KEY_MAX];
	char err[STORE_ERR_MAX] = "";
	struct cat_version *v = NULL;
	struct ment *e;
	struct buf raw;
	char *etag = NULL;
	int ret;

	buf_init(&raw, META_MAX_BYTES);
	if (spec_check_name(name, NULL, 0) < 0 || !*version ||
	    strlen(version) > SPEC_VERSION_MAX || strchr(version, '/'))
		return -ENOENT;
	snprintf(mkey, sizeof(mkey), "%s\n%s", name, version);
	ret = store_key_meta(name, version, key, sizeof(key));
	if (ret < 0)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	e = smap_get(&c->metas, mkey);
	if (e && (e->val || time_mono_ms() - e->at_ms < c->ttl_ms)) {
		ret = e->val ? 0 : e->err;
		if (e->val)
			*out = version_ref(e->val);
		pthread_mutex_unlock(&c->lock);
		return ret;
	}
	pthread_mutex_unlock(&c->lock);

	v = calloc(1, sizeof(*v));
	if (!v) {
		ret = -ENOMEM;
		goto out;
	}
	atomic_init(&v->refs, 1);
	v->name = strdup(name);
	v->version = strdup(version);
	if (!v->name || !v->version) {
		ret = -ENOMEM;
		goto out;
	}
	if (is_offline(c)) {
		ret = -EIO;
	} else {
		stats_inc(c->stats, STAT_STORE_REQUESTS);
		ret = store_get_meta(c->st, name, version, &v->meta, &raw,
				     &etag, err, sizeof(err));
		if (ret < 0)
			note_failure(c, ret, key, err);
	}
	if (ret == 0 && c->verify) {
		ret = keep_signed(c, name, version, key, &raw, etag, err,
				  sizeof(err));
	} else if (ret == 0) {
		doc_put(c, key, raw.data, raw.len, etag);
	} else if (store_down(ret)) {
		char perr[SPEC_ERR_MAX];
		int r = -ENOENT;

		buf_reset(&raw);
		if (doc_get(c, key, &raw) == 0)
			r = c->verify ? cached_sig_ok(c, name, version, &raw,
						      err, sizeof(err)) :
					0;
		if (r == -EBADMSG)
			ret = r; /* never the unverified copy */
		else if (r == 0 && meta_parse(raw.data, raw.len, &v->meta,
					      perr, sizeof(perr)) == 0)
			ret = 0;
	} else if (ret != -EBADMSG) {
		log_warn("skipping version %s:%s: %s", name, version,
			 *err ? err : strerror(-ret));
	}
	if (ret == -EBADMSG) /* remembered below: once per TTL */
		log_warn("%s: version refused (EACCES)",
			 *err ? err : strerror(-ret));
	if (ret == 0)
		ret = build_nodes(c, v);
	if (ret < 0 && store_down(ret))
		goto out;
	pthread_mutex_lock(&c->lock);
	e = smap_put(&c->metas, mkey);
	if (e && !e->val) {
		e->val = ret == 0 ? version_ref(v) : NULL;
		e->err = ret;
		e->at_ms = time_mono_ms();
	} else if (e && ret == 0) {
		/* another thread won: use its copy */
		cat_version_unref(v);
		v = version_ref(e->val);
	}
	pthread_mutex_unlock(&c->lock);
	if (ret == 0) {
		*out = v;
		v = NULL;
	}
out:
	cat_version_unref(v);
	free(etag);
	buf_free(&raw);
	return ret;
}

struct vprefetch_ctx {
	struct catalog *c;
	const char *name;
	const struct cat_versions *v;
	size_t *todo; /* indexes into v->list of versions not yet known */
};

static void vprefetch_one(void *arg, size_t i)
{
	struct vprefetch_ctx *p = arg;
	struct cat_version *cv = NULL;

	if (catalog_version(p->c, p->name, p->v->list.v[p->todo[i]], &cv) ==
	    0)
		cat_version_unref(cv);
}

int catalog_prefetch_versions(struct catalog *c, const char *name,
			      const struct cat_versions *v)
{
	struct vprefetch_ctx p = { .c = c, .name = name, .v = v };
	char mkey[SPEC_NAME_MAX + SPEC_VERSION_MAX + 2];
	size_t i, n = 0;

	if (!v->list.n)
		return 0;
	p.todo = calloc(v->list.n, sizeof(*p.todo));
	if (!p.todo)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < v->list.n; i++) {
		snprintf(mkey, sizeof(mkey), "%s\n%s", name, v->list.v[i]);
		if (!smap_get(&c->metas, mkey))
			p.todo[n++] = i;
	}
	pthread_mutex_unlock(&c->lock);
	if (n)
		par_for(c->parallel, n, vprefetch_one, &p);
	free(p.todo);
	return 0;
}
