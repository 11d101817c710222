/*
 * pins - see pins.h. The pin table lives in the cache (cache_pin.c); this
 * file decides what goes in it: the version a spec resolves to now, its
 * blocks, and when an older version may be released. The daemon thread
 * wakes every interval, re-reads the pin file when its inode, size or
 * mtime changed, and walks the store's pins.
 *
 * Locks: p->lock guards the daemon's state (stop flag, the failure
 * memory, the file's last identity); never held across I/O.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/buf.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "fs/cache/cache_pin.h"
#include "fs/mount/pins.h"
#include "resolver/spec.h"

#define PINS_FILE_MAX (1u << 20) /* a pin file past this is refused */
#define PINS_RETRY_MS 5000	 /* a failed pin is tried again after */
#define PINS_FAILS 64		 /* failures remembered */

struct pin_fail {
	char spec[SPEC_NAME_MAX + SPEC_VERSION_MAX + 2];
	char version[SPEC_VERSION_MAX + 1];
	int64_t at_ms;
};

struct pins {
	struct catalog *cat;
	struct fetcher *fe;
	struct cache *cache;
	const char *url;
	int threads;
	/* the daemon */
	pthread_t tid;
	bool running;
	const char *file; /* borrowed from the mount's options */
	char source[4200];
	int interval_ms;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;			   /* protected by lock */
	struct pin_fail fails[PINS_FAILS]; /* protected by lock */
};

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

static void fmt_size(uint64_t b, char *out, size_t len)
{
	if (b >= (1ull << 30))
		snprintf(out, len, "%.1f GiB", (double)b / (1ull << 30));
	else if (b >= (1ull << 20))
		snprintf(out, len, "%.1f MiB", (double)b / (1ull << 20));
	else if (b >= (1ull << 10))
		snprintf(out, len, "%.1f KiB", (double)b / (1ull << 10));
	else
		snprintf(out, len, "%llu bytes", (unsigned long long)b);
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

static bool row_complete(const struct cache_pin_info *r)
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

/* Pin @v for @spec and warm it. */
static int pin_and_warm(struct pins *p, const char *spec, const char *source,
			const struct cat_version *v, warm_progress_fn progress,
			void *arg, struct pins_report *rep, char *err,
			size_t errlen)
{
	struct warm_blocks b = {0};
	struct cache_pin_fit fit = {0};
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

		fmt_size(fit.need, need, sizeof(need));
		fmt_size(fit.pinned, held, sizeof(held));
		fmt_size(fit.cache_size, lim, sizeof(lim));
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
	ret = warm_version(p->fe, p->cache, p->url, v, p->threads, progress,
			   arg, &rep->w, err, errlen);
	for (i = 0; i < rep->w.learned.n; i++)
		learned += rep->w.learned.size[i];
	if (rep->w.learned.n)
		cache_pin_add_blocks(p->cache, p->url, spec, v->version,
				     rep->w.learned.d, rep->w.learned.size,
				     rep->w.learned.n, learned);
	warm_blocks_clear(&rep->w.learned);
	if (ret < 0) {
		cache_pin_set_state(p->cache, p->url, spec, v->version,
				    CACHE_PIN_FAILED, err);
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
			ready = row_complete(&rows[i]);
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
				done = row_complete(&rows[j]);
		if (done)
			continue;
		/* show the version this pin held before, if complete */
		for (j = 0; j < n && !held; j++) {
			bool listed = false;
			size_t k;

			if (strcmp(rows[j].spec, rows[i].spec) != 0 ||
			    !row_complete(&rows[j]))
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

/* ---- the daemon ---- */

/* Was @spec's last failure at @version recent? Then skip it. */
static bool fail_recent(struct pins *p, const char *spec, const char *version)
{
	int64_t now = time_mono_ms();
	bool ret = false;
	int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < PINS_FAILS; i++) {
		struct pin_fail *f = &p->fails[i];

		if (f->at_ms && strcmp(f->spec, spec) == 0)
			ret = strcmp(f->version, version) == 0 &&
			      now - f->at_ms < PINS_RETRY_MS;
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

static void fail_note(struct pins *p, const char *spec, const char *version,
		      bool failed)
{
	struct pin_fail *slot = NULL;
	int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < PINS_FAILS && !slot; i++)
		if (p->fails[i].at_ms && strcmp(p->fails[i].spec, spec) == 0)
			slot = &p->fails[i];
	for (i = 0; i < PINS_FAILS && !slot && failed; i++)
		if (!p->fails[i].at_ms)
			slot = &p->fails[i];
	if (!slot && failed)
		slot = &p->fails[time_mono_ms() % PINS_FAILS];
	if (slot && !failed)
		slot->at_ms = 0;
	else if (slot) {
		snprintf(slot->spec, sizeof(slot->spec), "%s", spec);
		snprintf(slot->version, sizeof(slot->version), "%s", version);
		slot->at_ms = time_mono_ms();
	}
	pthread_mutex_unlock(&p->lock);
}

/* Keep @spec current, unless it failed recently at the same version. */
static void keep_current(struct pins *p, const char *spec, const char *source)
{
	struct cat_version *v = NULL;
	struct pins_report rep;
	char err[WARM_ERR_MAX];
	const char *ver = "";
	int ret;

	if (pins_resolve(p, spec, &v, err, sizeof(err)) == 0)
		ver = v->version;
	if (fail_recent(p, spec, ver)) {
		cat_version_unref(v);
		return;
	}
	cat_version_unref(v);
	ret = pins_ensure(p, spec, source, false, NULL, NULL, &rep, err,
			  sizeof(err));
	if (ret < 0)
		log_warn("pin %s: %s", spec, err);
	fail_note(p, spec, rep.version, ret < 0);
}

/*
 * Read the pin file: one spec per line, '#' starts a comment. *@specs
 * gets a malloc'd array of *@n normalised specs. Returns 0 or -errno.
 */
static int read_pin_file(const char *path, char ***specs, size_t *n)
{
	struct buf b;
	char *line, *save = NULL, **v = NULL, **nv;
	char key[SPEC_NAME_MAX + SPEC_VERSION_MAX + 2], e[WARM_ERR_MAX];
	size_t k = 0;
	int ret;

	*specs = NULL;
	*n = 0;
	buf_init(&b, PINS_FILE_MAX);
	ret = file_read_capped(path, PINS_FILE_MAX, &b);
	if (ret == 0)
		ret = buf_append(&b, "", 1); /* an empty file: data non-NULL */
	if (ret < 0)
		goto out;
	for (line = strtok_r(b.data, "\n", &save); line;
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
		nv = realloc(v, (k + 1) * sizeof(*v));
		if (!nv || !(nv[k] = strdup(key))) {
			v = nv ? nv : v;
			ret = -ENOMEM;
			break;
		}
		v = nv;
		k++;
	}
out:
	buf_free(&b);
	if (ret < 0) {
		while (k)
			free(v[--k]);
		free(v);
		return ret;
	}
	*specs = v;
	*n = k;
	return 0;
}

static void free_strv(char **v, size_t n)
{
	while (n)
		free(v[--n]);
	free(v);
}

/* Apply the pin file: pin what it lists, unpin what it no longer does. */
static void apply_pin_file(struct pins *p)
{
	struct cache_pin_info *rows = NULL;
	char **specs = NULL;
	size_t i, j, n = 0, nr = 0;
	int ret;

	ret = read_pin_file(p->file, &specs, &n);
	if (ret < 0) {
		log_warn("pins file %s: %s; pins left as they are", p->file,
			 strerror(-ret));
		return;
	}
	log_info("pins file %s: %zu spec(s)", p->file, n);
	if (cache_pin_list(p->cache, p->url, &rows, &nr) == 0) {
		for (i = 0; i < nr; i++) {
			bool listed = false;

			if (strcmp(rows[i].source, p->source) != 0)
				continue;
			for (j = 0; j < n; j++)
				listed |= strcmp(specs[j], rows[i].spec) == 0;
			if (!listed && cache_pin_remove(p->cache, p->url,
							rows[i].spec) > 0)
				log_info("pin %s: unpinned (no longer in %s)",
					 rows[i].spec, p->file);
		}
		cache_pin_list_free(rows, nr);
	}
	for (i = 0; i < n; i++) {
		fail_note(p, specs[i], "", false);
		keep_current(p, specs[i], p->source);
	}
	free_strv(specs, n);
}

static void *daemon_main(void *arg)
{
	struct pins *p = arg;
	struct stat st, last = {0};
	bool have = false;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct cache_pin_info *rows = NULL;
		size_t i, n = 0;
		struct timespec ts;

		pthread_mutex_unlock(&p->lock);
		if (p->file && stat(p->file, &st) == 0 &&
		    (!have || st.st_ino != last.st_ino ||
		     st.st_size != last.st_size ||
		     st.st_mtim.tv_sec != last.st_mtim.tv_sec ||
		     st.st_mtim.tv_nsec != last.st_mtim.tv_nsec)) {
			last = st;
			have = true;
			apply_pin_file(p);
		}
		if (cache_pin_list(p->cache, p->url, &rows, &n) == 0) {
			for (i = 0; i < n; i++)
				if (i == 0 ||
				    strcmp(rows[i].spec, rows[i - 1].spec))
					keep_current(p, rows[i].spec,
						     rows[i].source);
			cache_pin_list_free(rows, n);
		}
		pthread_mutex_lock(&p->lock);
		if (p->stop)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += p->interval_ms / 1000;
		ts.tv_nsec += (long)(p->interval_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int pins_daemon_start(struct pins *p, const struct pins_daemon_opts *o)
{
	int ret;

	p->file = o->file;
	p->interval_ms = o->interval_ms > 0 ? o->interval_ms : 1000;
	if (p->file)
		snprintf(p->source, sizeof(p->source), "file:%s", p->file);
	ret = -pthread_create(&p->tid, NULL, daemon_main, p);
	if (ret == 0)
		p->running = true;
	return ret;
}

/* ---- the mount's side ---- */

static bool spec_ready(const struct cache_pin_info *rows, size_t n,
		       const char *spec)
{
	bool any = false, all = true;
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(rows[i].spec, spec) != 0)
			continue;
		any = true;
		all &= row_complete(&rows[i]);
	}
	return any && all;
}

int pins_prom(void *ctx, struct buf *out)
{
	struct pins *p = ctx;
	struct cache_pin_info *rows = NULL;
	size_t i, n = 0;
	int ret;

	ret = cache_pin_list(p->cache, p->url, &rows, &n);
	if (ret < 0 || n == 0)
		goto out;
	ret = stats_prom_family(
	    out, "assetfs_pin_bytes_present", STAT_KIND_GAUGE,
	    "Bytes of a pinned version present in the cache.");
	for (i = 0; ret == 0 && i < n; i++) {
		const char *l[] = {"spec", rows[i].spec, "version",
				   rows[i].version};

		ret = stats_prom_sample(out, "assetfs_pin_bytes_present", l, 2,
					rows[i].bytes_present);
	}
	if (ret == 0)
		ret =
		    stats_prom_family(out, "assetfs_pin_bytes", STAT_KIND_GAUGE,
				      "Bytes of a pinned version in all.");
	for (i = 0; ret == 0 && i < n; i++) {
		const char *l[] = {"spec", rows[i].spec, "version",
				   rows[i].version};

		ret = stats_prom_sample(out, "assetfs_pin_bytes", l, 2,
					rows[i].bytes_total);
	}
	if (ret == 0)
		ret =
		    stats_prom_family(out, "assetfs_pin_ready", STAT_KIND_GAUGE,
				      "1 when every block of the version a "
				      "pin resolves to is in the cache.");
	for (i = 0; ret == 0 && i < n; i++) {
		const char *l[] = {"spec", rows[i].spec};

		if (i > 0 && strcmp(rows[i].spec, rows[i - 1].spec) == 0)
			continue;
		ret = stats_prom_sample(out, "assetfs_pin_ready", l, 1,
					spec_ready(rows, n, rows[i].spec));
	}
out:
	cache_pin_list_free(rows, n);
	return ret;
}

int pins_mount_start(struct catalog *cat, struct fetcher *fe,
		     struct cache *cache, struct stats *stats, const char *file,
		     bool warm_before_flip, struct pins **out)
{
	struct pins_daemon_opts o = {.file = file};
	struct pins *p = NULL;
	int ret;

	*out = NULL;
	ret = pins_new(cat, fe, cache, 8, &p);
	if (ret < 0)
		return ret;
	if (warm_before_flip)
		catalog_set_alias_gate(cat, pins_gate, p);
	ret = stats_add_source(stats, pins_prom, p);
	if (ret == 0)
		ret = pins_daemon_start(p, &o);
	if (ret < 0) {
		pins_mount_stop(&p, stats);
		return ret;
	}
	*out = p;
	return 0;
}

void pins_mount_stop(struct pins **pp, struct stats *stats)
{
	struct pins *p = *pp;

	if (!p)
		return;
	*pp = NULL;
	catalog_set_alias_gate(p->cat, NULL, NULL);
	stats_remove_source(stats, pins_prom, p);
	pins_free(p); /* joins the daemon */
}
