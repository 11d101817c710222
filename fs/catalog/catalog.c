/*
 * catalog - see catalog.h. This file: making and freeing a catalog, the
 * snapshots' refcounts, whether the store is reachable, the offline
 * documents' I/O and the small helpers the other catalog files share
 * (catalog_int.h says which file holds what).
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
 * manifest), as small JSON documents (catalog_offline.c). A store failure
 * takes the store offline (store_health): requests are not even tried
 * until its probe sees it back, so lookups do not each wait a `timeout`.
 *
 * Background refreshes (stale-while-revalidate, catalog_refresh.c) run on
 * CAT_BG_THREADS threads from a bounded queue; catalog_free() stops them
 * (dropping what is queued) before anything else goes.
 *
 * Threads: see catalog.h. Errors: 0 or a negative errno.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "fs/catalog/catalog_int.h"

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

void cat_par_for(int threads, size_t n, void (*fn)(void *, size_t), void *arg)
{
	struct par p = {.fn = fn, .arg = arg, .n = n};
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

void cat_strv_free(char **v, size_t n)
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
	cat_strv_free(l->assets, l->n_assets);
	cat_strv_free(l->namespaces, l->n_namespaces);
	free(l);
}

void cat_versions_unref(struct cat_versions *v)
{
	if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	version_list_clear(&v->list);
	cat_strv_free(v->alias_names, v->n_aliases);
	free(v->alias_targets); /* they point into list */
	free(v->alias_index);
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
	free(v->by_path);
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

/* ---- background refreshes ---- */

static void *bg_main(void *arg)
{
	struct catalog *c = arg;
	struct cat_bg_job *j;

	pthread_mutex_lock(&c->bg_lock);
	while (!c->bg_stop) {
		j = c->bg_head;
		if (!j) {
			pthread_cond_wait(&c->bg_cond, &c->bg_lock);
			continue;
		}
		c->bg_head = j->next;
		if (!c->bg_head)
			c->bg_tail = NULL;
		c->bg_n--;
		pthread_mutex_unlock(&c->bg_lock);
		j->fn(c, j->key);
		free(j);
		pthread_mutex_lock(&c->bg_lock);
	}
	pthread_mutex_unlock(&c->bg_lock);
	return NULL;
}

int cat_bg_push(struct catalog *c, void (*fn)(struct catalog *, const char *),
		const char *key)
{
	size_t kl = strlen(key);
	struct cat_bg_job *j = malloc(sizeof(*j) + kl + 1);
	int ret = 0;

	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->next = NULL;
	memcpy(j->key, key, kl + 1);
	pthread_mutex_lock(&c->bg_lock);
	if (c->bg_stop || c->bg_n >= CAT_BG_QUEUE_MAX) {
		ret = -EAGAIN;
	} else {
		if (c->bg_tail)
			c->bg_tail->next = j;
		else
			c->bg_head = j;
		c->bg_tail = j;
		c->bg_n++;
		j = NULL;
		pthread_cond_signal(&c->bg_cond);
	}
	pthread_mutex_unlock(&c->bg_lock);
	free(j);
	return ret;
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
	c->ttl_ms =
	    opts && opts->versions_ttl_ms > 0 ? opts->versions_ttl_ms : 60000;
	c->parallel = opts && opts->parallel > 0 ? opts->parallel : 16;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->bg_lock, NULL);
	pthread_cond_init(&c->bg_cond, NULL);
	if (cat_map_init(&c->levels) < 0 || cat_map_init(&c->versions) < 0 ||
	    cat_map_init(&c->metas) < 0) {
		catalog_free(c);
		return -ENOMEM;
	}
	store_health_set_stats(store_health(st), stats);
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
	for (int i = 0; i < CAT_BG_THREADS; i++) {
		if (pthread_create(&c->bg_threads[i], NULL, bg_main, c) != 0)
			break;
		c->bg_started++;
	}
	if (!c->bg_started) {
		catalog_free(c);
		return -EAGAIN;
	}
	*out = c;
	return 0;
}

void catalog_free(struct catalog *c)
{
	struct cat_bg_job *j;

	if (!c)
		return;
	pthread_mutex_lock(&c->bg_lock);
	c->bg_stop = true;
	pthread_cond_broadcast(&c->bg_cond);
	pthread_mutex_unlock(&c->bg_lock);
	for (int i = 0; i < c->bg_started; i++)
		pthread_join(c->bg_threads[i], NULL);
	while ((j = c->bg_head)) {
		c->bg_head = j->next;
		free(j);
	}
	pthread_cond_destroy(&c->bg_cond);
	pthread_mutex_destroy(&c->bg_lock);
	cat_map_clear(&c->levels, level_unref_v);
	cat_map_clear(&c->versions, versions_unref_v);
	cat_map_clear(&c->metas, version_unref_v);
	sign_key_free(&c->verify);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void catalog_set_alias_gate(struct catalog *c, catalog_alias_gate_fn gate,
			    void *arg)
{
	c->gate = gate;
	c->gate_arg = arg;
}

int catalog_ttl_ms(const struct catalog *c)
{
	return c->ttl_ms;
}

struct store *catalog_store(const struct catalog *c)
{
	return c->st;
}

bool cat_store_down(int err)
{
	return err != -ENOENT && err != -EINVAL && err != -EFBIG &&
	       err != -ENOTSUP && err != -ENOMEM && err != -ENAMETOOLONG &&
	       err != -ENOTDIR && err != -EISDIR && err != -EBADMSG;
}

bool catalog_err_unreachable(int err)
{
	return err < 0 && cat_store_down(err);
}

int cat_store_call(struct catalog *c)
{
	if (store_health_gate(store_health(c->st)) < 0)
		return -EIO;
	stats_inc(c->stats, STAT_STORE_REQUESTS);
	return 0;
}

void cat_note_failure(struct catalog *c, int err, const char *what,
		      const char *msg)
{
	store_health_report(store_health(c->st), err, what, msg);
}

void cat_doc_put(struct catalog *c, const char *key, const char *data,
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

int cat_doc_get(struct catalog *c, const char *key, struct buf *out)
{
	if (!c->cache)
		return -ENOENT;
	return cache_doc_get(c->cache, c->url, key, out, NULL, NULL);
}

/* ---- string vectors ---- */

int cat_strv_push(char ***v, size_t *n, const char *s)
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

void cat_strv_sort_uniq(char **v, size_t *n)
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

const char *cat_last_comp(const char *full)
{
	const char *s = strrchr(full, '/');

	return s ? s + 1 : full;
}
