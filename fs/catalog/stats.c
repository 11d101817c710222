/*
 * stats - atomic counters; see stats.h. Relaxed atomics are enough: the
 * counters are independent and only ever read as a snapshot for people.
 * The list of labelled-series sources changes rarely (at start and stop)
 * and is guarded by a mutex the renderer also takes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "fs/cache/cache.h"
#include "fs/cache/cache_pin.h"
#include "fs/catalog/stats.h"
#include "providers/provider.h"

struct stats_source {
	stats_source_fn fn;
	void *ctx;
};

struct stats {
	atomic_uint_fast64_t v[STAT__COUNT];
	pthread_mutex_t lock; /* orders the sources and their rendering */
	struct stats_source src[STATS_SOURCES_MAX]; /* protected by lock */
};

struct stat_def {
	const char *key;
	const char *prom;
	enum stat_kind kind;
	const char *help;
};

#define STATS_DEF_ROW(id, k, p, kd, h)                                         \
	[STAT_##id] = {.key = k, .prom = p, .kind = STAT_KIND_##kd, .help = h},
static const struct stat_def stat_defs[STAT__COUNT] = {
    STATS_TABLE(STATS_DEF_ROW)};
#undef STATS_DEF_ROW

struct stats *stats_new(void)
{
	struct stats *s = calloc(1, sizeof(*s));
	size_t i;

	if (!s)
		return NULL;
	for (i = 0; i < STAT__COUNT; i++)
		atomic_init(&s->v[i], 0);
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void stats_free(struct stats *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void stats_add(struct stats *s, enum stat_id id, uint64_t n)
{
	if (!s || (unsigned)id >= STAT__COUNT)
		return;
	atomic_fetch_add_explicit(&s->v[id], n, memory_order_relaxed);
}

void stats_set(struct stats *s, enum stat_id id, uint64_t v)
{
	if (!s || (unsigned)id >= STAT__COUNT)
		return;
	atomic_store_explicit(&s->v[id], v, memory_order_relaxed);
}

uint64_t stats_get(const struct stats *s, enum stat_id id)
{
	if (!s || (unsigned)id >= STAT__COUNT)
		return 0;
	return atomic_load_explicit(&((struct stats *)s)->v[id],
				    memory_order_relaxed);
}

const char *stats_name(enum stat_id id)
{
	return (unsigned)id < STAT__COUNT ? stat_defs[id].key : "unknown";
}

const char *stats_prom_name(enum stat_id id)
{
	return (unsigned)id < STAT__COUNT ? stat_defs[id].prom
					  : "assetfs_unknown";
}

const char *stats_help(enum stat_id id)
{
	return (unsigned)id < STAT__COUNT ? stat_defs[id].help : "";
}

bool stats_is_gauge(enum stat_id id)
{
	return (unsigned)id < STAT__COUNT &&
	       stat_defs[id].kind == STAT_KIND_GAUGE;
}

int stats_prom_family(struct buf *out, const char *name, enum stat_kind kind,
		      const char *help)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
			  kind == STAT_KIND_GAUGE ? "gauge" : "counter");
}

/* A label value in the exposition's escaping: \\, \" and \n. */
static int prom_escape(struct buf *out, const char *v)
{
	int ret = 0;

	for (; *v && ret == 0; v++) {
		if (*v == '\\' || *v == '"')
			ret = buf_printf(out, "\\%c", *v);
		else if (*v == '\n')
			ret = buf_puts(out, "\\n");
		else
			ret = buf_append(out, v, 1);
	}
	return ret;
}

int stats_prom_sample(struct buf *out, const char *name,
		      const char *const *labels, unsigned n_labels,
		      uint64_t value)
{
	unsigned i;
	int ret;

	ret = buf_puts(out, name);
	for (i = 0; i < n_labels && ret == 0; i++) {
		ret = buf_printf(out, "%s%s=\"", i ? "," : "{", labels[2 * i]);
		ret = ret ? ret : prom_escape(out, labels[2 * i + 1]);
		ret = ret ? ret : buf_puts(out, "\"");
	}
	if (ret == 0 && n_labels)
		ret = buf_puts(out, "}");
	return ret ? ret
		   : buf_printf(out, " %llu\n", (unsigned long long)value);
}

int stats_add_source(struct stats *s, stats_source_fn fn, void *ctx)
{
	int i, ret = -ENOSPC;

	if (!s || !fn)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < STATS_SOURCES_MAX; i++) {
		if (!s->src[i].fn) {
			s->src[i].fn = fn;
			s->src[i].ctx = ctx;
			ret = 0;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void stats_remove_source(struct stats *s, stats_source_fn fn, void *ctx)
{
	int i;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < STATS_SOURCES_MAX; i++)
		if (s->src[i].fn == fn && s->src[i].ctx == ctx)
			s->src[i].fn = NULL;
	pthread_mutex_unlock(&s->lock);
}

static int format_sources(struct stats *s, struct buf *out)
{
	int i, ret = 0;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < STATS_SOURCES_MAX && ret == 0; i++)
		if (s->src[i].fn)
			ret = s->src[i].fn(s->src[i].ctx, out);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int stats_format(struct stats *s, enum stats_format fmt, struct buf *out)
{
	int ret = 0;
	int i;

	if (fmt == STATS_FMT_JSON)
		ret = buf_puts(out, "{");
	for (i = 0; i < STAT__COUNT && ret == 0; i++) {
		const struct stat_def *d = &stat_defs[i];
		uint64_t v = stats_get(s, (enum stat_id)i);

		switch (fmt) {
		case STATS_FMT_TEXT:
			ret = buf_printf(out, "%s %llu\n", d->key,
					 (unsigned long long)v);
			break;
		case STATS_FMT_JSON:
			ret = buf_printf(out, "%s\"%s\": %llu", i ? ", " : "",
					 d->key, (unsigned long long)v);
			break;
		case STATS_FMT_PROM:
			ret = stats_prom_family(out, d->prom, d->kind, d->help);
			ret = ret ? ret
				  : stats_prom_sample(out, d->prom, NULL, 0, v);
			break;
		}
	}
	/* the store's state in words too (the gauge is store_offline) */
	if (ret == 0 && fmt == STATS_FMT_TEXT)
		ret = buf_printf(out, "store_state %s\n",
				 stats_get(s, STAT_STORE_OFFLINE) ? "offline" :
								    "online");
	if (ret == 0 && fmt == STATS_FMT_JSON)
		ret = buf_printf(out, ", \"store_state\": \"%s\"",
				 stats_get(s, STAT_STORE_OFFLINE) ? "offline" :
								    "online");
	if (ret == 0 && fmt == STATS_FMT_JSON)
		ret = buf_puts(out, "}\n");
	if (ret == 0 && fmt == STATS_FMT_PROM && s)
		ret = format_sources(s, out);
	return ret;
}

void stats_pull(struct stats *s, struct cache *c, struct prov *p)
{
	struct cache_pin_totals pt;
	struct cache_stats cs;
	struct prov_stats ps;

	if (c && cache_get_stats(c, &cs) == 0) {
		stats_set(s, STAT_CACHE_BYTES, cs.bytes);
		stats_set(s, STAT_EVICTIONS, cs.evictions);
		stats_set(s, STAT_SHA256_BLOCKS, cs.hashed_blocks);
		stats_set(s, STAT_SHA256_BATCHES, cs.hash_batches);
	}
	if (c && cache_pin_totals(c, &pt) == 0) {
		stats_set(s, STAT_PINS, pt.pins);
		stats_set(s, STAT_PINNED_BYTES_PRESENT, pt.bytes_present);
		stats_set(s, STAT_PINNED_BYTES_TOTAL, pt.bytes_total);
	}
	if (p) {
		prov_get_stats(p, &ps);
		stats_set(s, STAT_RETRIES, ps.retries);
	}
}
