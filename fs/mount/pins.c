/*
 * pins - see pins.h. The pin table lives in the cache (cache_pin.c); this
 * file decides what goes in it: the version a spec resolves to now, its
 * blocks, and when an older version may be released; and it answers the
 * alias gate of warm_before_flip; and it parses a pin file's text. The
 * mount's thread, reading the pin file and the gauges are in
 * pins_daemon.c, which calls this file.
 *
 * Threads: every function is safe concurrently; the shared state is the
 * pin table (sqlite). Errors: 0 or a negative errno, a message in @err.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/progress.h"
#include "fs/cache/cache_pin.h"
#include "fs/mount/pins.h"
#include "fs/mount/pins_int.h"
#include "resolver/spec.h"

int pins_new(struct catalog *cat, struct fetcher *fe, struct cache *cache,
	     int threads, struct pins **out)
{
	struct pins *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->cat = cat;
	p->fe = fe;
	p->cache = cache;
	p->url = prov_url(store_prov(catalog_store(cat)));
	p->threads = threads;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	*out = p;
	return 0;
}

void pins_free(struct pins *p)
{
	if (!p)
		return;
	if (p->running) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->tid, NULL);
	}
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

bool pins_stopping(struct pins *p)
{
	bool stop;

	pthread_mutex_lock(&p->lock);
	stop = p->stop;
	pthread_mutex_unlock(&p->lock);
	return stop;
}

const char *pins_store(const struct pins *p)
{
	return p->url;
}

int pins_spec_norm(const char *text, char *out, size_t len, char *err,
		   size_t errlen)
{
	struct spec s = {0};
	int ret, n;

	ret = spec_parse(text, &s, err, errlen);
	if (ret < 0)
		return ret;
	if (s.sub) {
		snprintf(err, errlen,
			 "'%s': a pin keeps whole versions; drop the [%s]",
			 text, s.sub);
		spec_clear(&s);
		return -EINVAL;
	}
	n = snprintf(out, len, "%s%s%s", s.name, s.version ? ":" : "",
		     s.version ? s.version : "");
	spec_clear(&s);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void pins_specs_free(char **specs, size_t n)
{
	while (n)
		free(specs[--n]);
	free(specs);
}

/* Is @key among the first @n of @v? (pin files are short: a scan) */
static bool specs_have(char *const *v, size_t n, const char *key)
{
	while (n)
		if (strcmp(v[--n], key) == 0)
			return true;
	return false;
}

int pins_file_parse(const char *text, size_t len, const char *path,
		    char ***specs, size_t *n)
{
	char key[SPEC_NAME_MAX + SPEC_VERSION_MAX + 2], e[WARM_ERR_MAX];
	char *copy, *line, *save = NULL, **v = NULL, **nv;
	size_t k = 0;
	int ret = 0;

	*specs = NULL;
	*n = 0;
	copy = strndup(text, len);
	if (!copy)
		return -ENOMEM;
	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *hash = strchr(line, '#'), *end;

		if (hash)
			*hash = '\0';
		line += strspn(line, " \t\r");
		end = line + strlen(line);
		while (end > line && strchr(" \t\r", end[-1]))
			*--end = '\0';
		if (!*line)
			continue;
		if (pins_spec_norm(line, key, sizeof(key), e, sizeof(e)) < 0) {
			log_warn("pins file %s: skipping '%s': %s", path, line,
				 e);
			continue;
		}
		if (specs_have(v, k, key))
			continue;
		nv = realloc(v, (k + 1) * sizeof(*v));
		if (!nv) {
			ret = -ENOMEM;
			break;
		}
		v = nv;
		v[k] = strdup(key);
		if (!v[k]) {
			ret = -ENOMEM;
			break;
		}
		k++;
	}
	free(copy);
	if (ret < 0) {
		pins_specs_free(v, k);
		return ret;
	}
	*specs = v;
	*n = k;
	return 0;
}

/* Resolve @spec's version in @l: *@out points into @l. */
static int resolve_in(const struct version_list *l, const struct spec *s,
		      const char **out, char *err, size_t errlen)
{
	return version_resolve(l, s->name, s->version, out, err, errlen);
}

int pins_resolve(struct pins *p, const char *spec, struct cat_version **v,
		 char *err, size_t errlen)
{
	struct cat_versions *vs = NULL;
	struct spec s = {0};
	const char *ver;
	int ret;

	*v = NULL;
	ret = spec_parse(spec, &s, err, errlen);
	if (ret < 0)
		return ret;
	ret = catalog_versions(p->cat, s.name, &vs);
	if (ret < 0) {
		snprintf(err, errlen, "%s: %s", s.name,
			 ret == -ENOENT ? "no such asset" : strerror(-ret));
		goto out;
	}
	ret = resolve_in(&vs->list, &s, &ver, err, errlen);
	if (ret < 0)
		goto out;
	ret = catalog_version(p->cat, s.name, ver, v);
	if (ret < 0)
		snprintf(err, errlen, "%s:%s: %s", s.name, ver,
			 ret == -EBADMSG ? "signature does not verify"
					 : strerror(-ret));
out:
	cat_versions_unref(vs);
	spec_clear(&s);
	return ret;
}


/* The rows of pin @spec: a malloc'd list (cache_pin_list_free()). */
static int rows_of(struct pins *p, const char *spec,
		   struct cache_pin_info **rows, size_t *n)
{
	struct cache_pin_info *all = NULL;
	size_t i, na = 0, k = 0;
	int ret;

	*rows = NULL;
	*n = 0;
	ret = cache_pin_list(p->cache, p->url, &all, &na);
	if (ret < 0)
		return ret;
	for (i = 0; i < na; i++) {
		if (strcmp(all[i].spec, spec) == 0) {
			struct cache_pin_info t = all[k];

			all[k++] = all[i];
			all[i] = t;
		}
	}
	for (i = k; i < na; i++)
		cache_pin_info_clear(&all[i]);
	if (!k) {
		free(all);
		all = NULL;
	}
	*rows = all;
	*n = k;
	return 0;
}

bool pins_row_complete(const struct cache_pin_info *r)
{
	return r->state == CACHE_PIN_READY &&
	       r->bytes_present == r->bytes_total && r->version[0];
}

/*
 * Are the block files of a pinned version all there? The index may still
 * list a block whose file went away behind its back (removed by hand, a
 * disk error): a stat per block, no hashing (pin wait re-hashes).
 */
static bool files_present(struct pins *p, const char *spec, const char *version)
{
	struct digest *d = NULL;
	uint64_t *size = NULL;
	size_t i, n = 0;
	bool ok;

	ok = cache_pin_blocks(p->cache, p->url, spec, version, &d, &size, &n) ==
	     0;
	for (i = 0; ok && i < n; i++)
		ok = cache_block_stat(p->cache, &d[i], NULL) == 0;
	free(d);
	free(size);
	return ok;
}

/* Release every version of @spec but @keep. */
static void release_others(struct pins *p, const char *spec, const char *keep)
{
	struct cache_pin_info *rows = NULL;
	size_t i, n = 0;

	if (rows_of(p, spec, &rows, &n) < 0)
		return;
	for (i = 0; i < n; i++) {
		if (strcmp(rows[i].version, keep) == 0)
			continue;
		if (cache_pin_release(p->cache, p->url, spec,
				      rows[i].version) == 0 &&
		    rows[i].version[0])
			log_info("pin %s: released %s (now %s)", spec,
				 rows[i].version, keep);
	}
	cache_pin_list_free(rows, n);
}

struct prog_wrap {
	struct pins *p;
	warm_progress_fn fn;
	void *arg;
};

/* The caller's progress, and a stop when the mount is going away. */
static int prog_wrap(void *arg, uint64_t done, uint64_t total)
{
	struct prog_wrap *w = arg;

	if (w->fn && w->fn(w->arg, done, total))
		return 1;
	return pins_stopping(w->p);
}

/* Pin @v for @spec and warm it. */
static int pin_and_warm(struct pins *p, const char *spec, const char *source,
			const struct cat_version *v, warm_progress_fn progress,
			void *arg, struct pins_report *rep, char *err,
			size_t errlen)
{
	struct warm_blocks b = {0};
	struct cache_pin_fit fit = {0};
	struct prog_wrap pw = {.p = p, .fn = progress, .arg = arg};
	uint64_t learned = 0;
	size_t i;
	int ret;

	ret = warm_list_blocks(v, &b);
	if (ret < 0)
		goto out;
	ret = cache_pin_version(p->cache, p->url, spec, v->version, b.d, b.size,
				b.n, b.pending, source, &fit);
	if (ret == -ENOSPC) {
		char need[32], held[32], lim[32];

		progress_fmt_size(fit.need, need, sizeof(need));
		progress_fmt_size(fit.pinned, held, sizeof(held));
		progress_fmt_size(fit.cache_size, lim, sizeof(lim));
		snprintf(err, errlen,
			 "pin %s (%s) does not fit: it needs %s, pins hold "
			 "%s already, cache_size is %s",
			 spec, v->version, need, held, lim);
		goto out;
	} else if (ret < 0) {
		snprintf(err, errlen, "pin %s: cache index: %s", spec,
			 strerror(-ret));
		goto out;
	}
	log_info("pin %s: warming %s", spec, v->version);
	rep->warmed = true;
	ret = warm_version(p->fe, p->cache, p->url, v, p->threads, prog_wrap,
			   &pw, &rep->w, err, errlen);
	for (i = 0; i < rep->w.learned.n; i++)
		learned += rep->w.learned.size[i];
	if (rep->w.learned.n)
		cache_pin_add_blocks(p->cache, p->url, spec, v->version,
				     rep->w.learned.d, rep->w.learned.size,
				     rep->w.learned.n, learned);
	warm_blocks_clear(&rep->w.learned);
	if (ret < 0) {
		/* stopped (unmount): still to be warmed, not failed */
		cache_pin_set_state(p->cache, p->url, spec, v->version,
				    ret == -ECANCELED ? CACHE_PIN_WARMING
						      : CACHE_PIN_FAILED,
				    ret == -ECANCELED ? NULL : err);
		goto out;
	}
	cache_pin_set_state(p->cache, p->url, spec, v->version, CACHE_PIN_READY,
			    NULL);
	log_info("pin %s: %s ready", spec, v->version);
	release_others(p, spec, v->version);
out:
	warm_blocks_clear(&b);
	return ret;
}

int pins_ensure(struct pins *p, const char *spec, const char *source,
		bool fresh, warm_progress_fn progress, void *arg,
		struct pins_report *rep, char *err, size_t errlen)
{
	char key[SPEC_NAME_MAX + SPEC_VERSION_MAX + 2];
	struct cache_pin_info *rows = NULL;
	struct cat_version *v = NULL;
	size_t i, n = 0;
	bool ready = false;
	int ret;

	memset(rep, 0, sizeof(*rep));
	*err = '\0';
	ret = pins_spec_norm(spec, key, sizeof(key), err, errlen);
	if (ret < 0)
		return ret;
	ret = pins_resolve(p, key, &v, err, errlen);
	if (ret < 0)
		goto fail;
	snprintf(rep->version, sizeof(rep->version), "%s", v->version);
	ret = rows_of(p, key, &rows, &n);
	for (i = 0; ret == 0 && i < n; i++)
		if (strcmp(rows[i].version, v->version) == 0)
			ready = pins_row_complete(&rows[i]);
	cache_pin_list_free(rows, n);
	if (ret < 0) {
		snprintf(err, errlen, "pin %s: cache index: %s", key,
			 strerror(-ret));
		goto out;
	}
	if (ready && files_present(p, key, v->version)) {
		release_others(p, key, v->version);
		goto out;
	}
	ret = pin_and_warm(p, key, source, v, progress, arg, rep, err, errlen);
	if (ret < 0 && ret != -ENOSPC)
		goto out; /* the version's row carries the reason */
fail:
	if (ret < 0 && !fresh)
		cache_pin_fail(p->cache, p->url, key, source, err);
out:
	cat_version_unref(v);
	return ret;
}

int pins_gate(void *arg, const char *name, const struct version_list *l,
	      const char *target, char *keep, size_t len)
{
	struct pins *p = arg;
	struct cache_pin_info *rows = NULL;
	size_t i, j, n = 0;
	int held = 0;

	if (cache_pin_list(p->cache, p->url, &rows, &n) < 0)
		return 0;
	for (i = 0; i < n && !held; i++) {
		struct spec s = {0};
		const char *r = NULL;
		char e[SPEC_ERR_MAX];
		bool done = false;

		if (spec_parse(rows[i].spec, &s, e, sizeof(e)) < 0)
			continue;
		if (strcmp(s.name, name) != 0 ||
		    resolve_in(l, &s, &r, e, sizeof(e)) < 0 ||
		    strcmp(r, target) != 0) {
			spec_clear(&s);
			continue;
		}
		spec_clear(&s);
		for (j = 0; j < n; j++)
			if (strcmp(rows[j].spec, rows[i].spec) == 0 &&
			    strcmp(rows[j].version, target) == 0)
				done = pins_row_complete(&rows[j]);
		if (done)
			continue;
		/* show the version this pin held before, if complete */
		for (j = 0; j < n && !held; j++) {
			bool listed = false;
			size_t k;

			if (strcmp(rows[j].spec, rows[i].spec) != 0 ||
			    !pins_row_complete(&rows[j]))
				continue;
			for (k = 0; k < l->n; k++)
				listed |= strcmp(l->v[k], rows[j].version) == 0;
			if (listed && snprintf(keep, len, "%s",
					       rows[j].version) < (int)len)
				held = 1;
		}
	}
	cache_pin_list_free(rows, n);
	return held;
}
