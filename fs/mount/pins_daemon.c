/*
 * pins_daemon - the mount's side of pins: a thread that wakes every
 * interval, re-reads the pin file when its inode, size or mtime changed
 * (pinning what was added, unpinning what the file no longer lists), and
 * keeps every pin of the store current through pins_ensure(); the
 * Prometheus source of the per-pin gauges; and the start and stop the
 * mount calls. A pin that failed is tried again after PINS_RETRY_MS, or
 * at once when its spec resolves to another version.
 *
 * Threads: one daemon thread per mount; pins_prom() runs on the metrics
 * thread. Locks: see pins_int.h. Errors: logged (one line per failure and
 * retry window); the calls return 0 or a negative errno.
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
#include "fs/catalog/stats.h"
#include "fs/mount/pins.h"
#include "fs/mount/pins_int.h"

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
	if (ret < 0 && ret != -ECANCELED)
		log_warn("pin %s: %s", spec, err);
	fail_note(p, spec, rep.version, ret < 0);
}

/* Read and parse the pin file (pins_file_parse()). Returns 0 or -errno. */
static int read_pin_file(const char *path, char ***specs, size_t *n)
{
	struct buf b;
	int ret;

	*specs = NULL;
	*n = 0;
	buf_init(&b, PINS_FILE_MAX);
	ret = file_read_capped(path, PINS_FILE_MAX, &b);
	if (ret == 0)
		ret = pins_file_parse(b.data ? b.data : "", b.len, path, specs,
				      n);
	buf_free(&b);
	return ret;
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
	pins_specs_free(specs, n);
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
		all &= pins_row_complete(&rows[i]);
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
