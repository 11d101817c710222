/*
 * metrics - counters in shared memory, rendered as Prometheus text.
 *
 * Series slots go free (0) -> filling (1) -> ready (2) exactly once, by
 * compare-and-swap, so lookups never lock; a reader that meets a slot
 * being filled waits for it (a few instructions). The per-worker model
 * state is written by one thread at a time (the worker's registry) under
 * a sequence counter so the renderer never prints a torn version string.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "common/digest.h"
#include "server/metrics.h"

#define MET_SERIES 2048
#define MET_STR 64

static const double met_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
				    0.005,  0.01,    0.025,  0.05,  0.1,
				    0.25,   0.5,     1,	     2.5,   10};
#define MET_BUCKETS (sizeof(met_bounds) / sizeof(met_bounds[0]))

struct met_series {
	atomic_uint state;
	char model[MET_STR];
	char version[MET_STR];
	char protocol[16];
	int status;
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_ns;
	atomic_uint_fast64_t buckets[MET_BUCKETS]; /* not cumulative */
};

struct met_model {
	atomic_uint seq; /* odd while the strings are being written */
	atomic_uint used;
	atomic_uint serving;
	char name[MET_STR];
	char version[MET_STR];
	atomic_uint_fast64_t loads, failures, load_ns;
};

static const double met_rows[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
#define MET_ROW_BUCKETS (sizeof(met_rows) / sizeof(met_rows[0]))

/* Python model processes, by model name (claimed like series). */
struct met_proc {
	atomic_uint state;
	char model[MET_STR];
	atomic_uint_fast64_t restarts;
	atomic_uint_fast64_t batches, rows;
	atomic_uint_fast64_t row_buckets[MET_ROW_BUCKETS]; /* not cumulative */
	atomic_uint_fast64_t queued, queue_ns;
	atomic_uint_fast64_t queue_buckets[MET_BUCKETS]; /* not cumulative */
};

struct metrics {
	struct met_proc procs[METRICS_MAX_MODELS];
	struct met_series series[MET_SERIES];
	struct met_model models[METRICS_MAX_WORKERS][METRICS_MAX_MODELS];
	atomic_uint_fast64_t dropped;
	atomic_uint_fast64_t cache_hits, cache_misses;
	atomic_uint_fast64_t worker_restarts;
};

int metrics_new(struct metrics **out)
{
	void *p = mmap(NULL, sizeof(struct metrics), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	*out = p; /* zero-filled by the kernel */
	return 0;
}

void metrics_free(struct metrics *m)
{
	if (m)
		munmap(m, sizeof(*m));
}

static void copy_str(char *dst, const char *src, size_t n)
{
	snprintf(dst, n, "%s", src ? src : "");
}

static bool series_match(const struct met_series *s, const char *model,
			 const char *version, const char *protocol, int status)
{
	/* the stored strings are truncated: compare what was kept */
	return s->status == status &&
	       strncmp(s->model, model, MET_STR - 1) == 0 &&
	       strncmp(s->version, version, MET_STR - 1) == 0 &&
	       strncmp(s->protocol, protocol, sizeof(s->protocol) - 1) == 0;
}

/* Append up to @max bytes of @s and a '|' at @key + @n; the new length. */
static size_t key_put(char *key, size_t n, const char *s, size_t max)
{
	size_t len = strnlen(s, max);

	memcpy(key + n, s, len);
	key[n + len] = '|';
	return n + len + 1;
}

static struct met_series *series_get(struct metrics *m, const char *model,
				     const char *version, const char *protocol,
				     int status)
{
	char key[MET_STR * 3 + 32];
	unsigned i, idx, st;
	size_t n;

	/* model|version|protocol|status, built without printf (hot path) */
	n = key_put(key, 0, model, MET_STR - 1);
	n = key_put(key, n, version, MET_STR - 1);
	n = key_put(key, n, protocol, 15);
	memcpy(key + n, &status, sizeof(status));
	n += sizeof(status);
	idx = (unsigned)(digest_xxh3(key, n) % MET_SERIES);
	for (i = 0; i < MET_SERIES; i++) {
		struct met_series *s = &m->series[(idx + i) % MET_SERIES];

		st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (st == 0) {
			unsigned zero = 0;

			if (atomic_compare_exchange_strong(&s->state, &zero,
							   1)) {
				copy_str(s->model, model, MET_STR);
				copy_str(s->version, version, MET_STR);
				copy_str(s->protocol, protocol,
					 sizeof(s->protocol));
				s->status = status;
				atomic_store_explicit(&s->state, 2,
						      memory_order_release);
				return s;
			}
			st = atomic_load_explicit(&s->state,
						  memory_order_acquire);
		}
		while (st == 1) {
			sched_yield();
			st = atomic_load_explicit(&s->state,
						  memory_order_acquire);
		}
		if (series_match(s, model, version, protocol, status))
			return s;
	}
	return NULL;
}

void metrics_request(struct metrics *m, const char *model, const char *version,
		     const char *protocol, int status, int64_t latency_ns)
{
	struct met_series *s;
	double secs = (double)latency_ns / 1e9;
	size_t b;

	if (!m)
		return;
	s = series_get(m, model ? model : "", version ? version : "",
		       protocol ? protocol : "other", status);
	if (!s) {
		atomic_fetch_add(&m->dropped, 1);
		return;
	}
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_ns, (uint64_t)latency_ns,
				  memory_order_relaxed);
	for (b = 0; b < MET_BUCKETS; b++)
		if (secs <= met_bounds[b])
			break;
	if (b < MET_BUCKETS)
		atomic_fetch_add_explicit(&s->buckets[b], 1,
					  memory_order_relaxed);
}

static struct met_model *model_slot(struct metrics *m, unsigned worker,
				    unsigned idx)
{
	if (!m || worker >= METRICS_MAX_WORKERS || idx >= METRICS_MAX_MODELS)
		return NULL;
	return &m->models[worker][idx];
}

static void set_strings(struct met_model *mm, const char *name,
			const char *version)
{
	atomic_fetch_add(&mm->seq, 1);
	copy_str(mm->name, name, MET_STR);
	copy_str(mm->version, version, MET_STR);
	atomic_fetch_add(&mm->seq, 1);
	atomic_store(&mm->used, 1);
}

void metrics_model_load(struct metrics *m, unsigned worker, unsigned idx,
			const char *name, const char *version, bool ok,
			int64_t load_ns)
{
	struct met_model *mm = model_slot(m, worker, idx);

	if (!mm)
		return;
	if (!atomic_load(&mm->used))
		set_strings(mm, name, "");
	atomic_fetch_add(ok ? &mm->loads : &mm->failures, 1);
	if (ok)
		atomic_fetch_add(&mm->load_ns, (uint64_t)load_ns);
}

void metrics_model_serving(struct metrics *m, unsigned worker, unsigned idx,
			   const char *name, const char *version)
{
	struct met_model *mm = model_slot(m, worker, idx);

	if (!mm)
		return;
	set_strings(mm, name, version);
	atomic_store(&mm->serving, version && version[0]);
}

void metrics_cache(struct metrics *m, bool hit)
{
	if (m)
		atomic_fetch_add_explicit(hit ? &m->cache_hits
					      : &m->cache_misses,
					  1, memory_order_relaxed);
}

void metrics_worker_restart(struct metrics *m)
{
	if (m)
		atomic_fetch_add(&m->worker_restarts, 1);
}

void metrics_worker_gone(struct metrics *m, unsigned worker)
{
	unsigned i;

	if (!m || worker >= METRICS_MAX_WORKERS)
		return;
	for (i = 0; i < METRICS_MAX_MODELS; i++)
		atomic_store(&m->models[worker][i].serving, 0);
}

static struct met_proc *proc_get(struct metrics *m, const char *model)
{
	unsigned i, st;

	if (!m || !model)
		return NULL;
	for (i = 0; i < METRICS_MAX_MODELS; i++) {
		struct met_proc *p = &m->procs[i];

		st = atomic_load_explicit(&p->state, memory_order_acquire);
		if (st == 0) {
			unsigned zero = 0;

			if (atomic_compare_exchange_strong(&p->state, &zero,
							   1)) {
				copy_str(p->model, model, MET_STR);
				atomic_store_explicit(&p->state, 2,
						      memory_order_release);
				return p;
			}
			st = atomic_load_explicit(&p->state,
						  memory_order_acquire);
		}
		while (st == 1) {
			sched_yield();
			st = atomic_load_explicit(&p->state,
						  memory_order_acquire);
		}
		if (strncmp(p->model, model, MET_STR - 1) == 0)
			return p;
	}
	return NULL;
}

void metrics_model_process_restart(struct metrics *m, const char *model)
{
	struct met_proc *p = proc_get(m, model);

	if (p)
		atomic_fetch_add(&p->restarts, 1);
}

void metrics_model_batch(struct metrics *m, const char *model, size_t rows)
{
	struct met_proc *p = proc_get(m, model);
	size_t b;

	if (!p)
		return;
	atomic_fetch_add_explicit(&p->batches, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->rows, rows, memory_order_relaxed);
	for (b = 0; b < MET_ROW_BUCKETS; b++)
		if ((double)rows <= met_rows[b])
			break;
	if (b < MET_ROW_BUCKETS)
		atomic_fetch_add_explicit(&p->row_buckets[b], 1,
					  memory_order_relaxed);
}

void metrics_model_queue(struct metrics *m, const char *model, int64_t ns)
{
	struct met_proc *p = proc_get(m, model);
	double secs = (double)ns / 1e9;
	size_t b;

	if (!p)
		return;
	atomic_fetch_add_explicit(&p->queued, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->queue_ns, (uint64_t)(ns > 0 ? ns : 0),
				  memory_order_relaxed);
	for (b = 0; b < MET_BUCKETS; b++)
		if (secs <= met_bounds[b])
			break;
	if (b < MET_BUCKETS)
		atomic_fetch_add_explicit(&p->queue_buckets[b], 1,
					  memory_order_relaxed);
}

static int label(struct buf *b, const char *s);

/* One histogram of @n buckets (not cumulative) with @count and @sum. */
static int histogram(struct buf *out, const char *name, const char *model,
		     const double *bounds, const atomic_uint_fast64_t *bk,
		     size_t n, uint64_t count, double sum)
{
	uint64_t cum = 0;
	size_t b;
	int ret = 0;

	for (b = 0; b < n && ret == 0; b++) {
		cum += atomic_load(&bk[b]);
		ret = buf_printf(out, "%s_bucket{model=\"", name);
		ret = ret ? ret : label(out, model);
		ret = ret ? ret
			  : buf_printf(out, "\",le=\"%g\"} %llu\n", bounds[b],
				       (unsigned long long)cum);
	}
	ret = ret ? ret : buf_printf(out, "%s_bucket{model=\"", name);
	ret = ret ? ret : label(out, model);
	ret = ret ? ret
		  : buf_printf(out, "\",le=\"+Inf\"} %llu\n%s_sum{model=\"",
			       (unsigned long long)count, name);
	ret = ret ? ret : label(out, model);
	ret = ret ? ret
		  : buf_printf(out, "\"} %.9g\n%s_count{model=\"", sum, name);
	ret = ret ? ret : label(out, model);
	return ret ? ret
		   : buf_printf(out, "\"} %llu\n", (unsigned long long)count);
}

static int render_procs(struct metrics *m, struct buf *out)
{
	unsigned i;
	int ret;

	ret = buf_puts(
	    out, "# HELP assetfs_server_model_process_restarts_total Python "
		 "model processes that died or were killed.\n"
		 "# TYPE assetfs_server_model_process_restarts_total counter\n"
		 "# HELP assetfs_server_model_batch_rows Rows per call into a "
		 "Python model process.\n"
		 "# TYPE assetfs_server_model_batch_rows histogram\n"
		 "# HELP assetfs_server_model_queue_seconds Time a request "
		 "waited for its batch to be sent.\n"
		 "# TYPE assetfs_server_model_queue_seconds histogram\n");
	for (i = 0; i < METRICS_MAX_MODELS && ret == 0; i++) {
		struct met_proc *p = &m->procs[i];
		char model[MET_STR];

		if (atomic_load_explicit(&p->state, memory_order_acquire) != 2)
			continue;
		memcpy(model, p->model, MET_STR);
		model[MET_STR - 1] = '\0';
		ret = buf_puts(out, "assetfs_server_model_process_restarts_"
				    "total{model=\"");
		ret = ret ? ret : label(out, model);
		ret = ret ? ret
			  : buf_printf(out, "\"} %llu\n",
				       (unsigned long long)atomic_load(
					   &p->restarts));
		ret = ret ? ret
			  : histogram(out, "assetfs_server_model_batch_rows",
				      model, met_rows, p->row_buckets,
				      MET_ROW_BUCKETS, atomic_load(&p->batches),
				      (double)atomic_load(&p->rows));
		ret = ret ? ret
			  : histogram(out, "assetfs_server_model_queue_seconds",
				      model, met_bounds, p->queue_buckets,
				      MET_BUCKETS, atomic_load(&p->queued),
				      (double)atomic_load(&p->queue_ns) / 1e9);
	}
	return ret;
}

/* Snapshot a model slot's strings consistently. */
static void read_model(struct met_model *mm, char *name, char *version)
{
	unsigned s1, s2;
	int tries = 0;

	do {
		s1 = atomic_load(&mm->seq);
		memcpy(name, mm->name, MET_STR);
		memcpy(version, mm->version, MET_STR);
		s2 = atomic_load(&mm->seq);
	} while ((s1 != s2 || (s1 & 1)) && ++tries < 1000);
	name[MET_STR - 1] = version[MET_STR - 1] = '\0';
}

/* A label value: the strings come from our own options and the asset
 * tree, but escape anyway. */
static int label(struct buf *b, const char *s)
{
	int ret = 0;

	for (; *s && ret == 0; s++) {
		if (*s == '"' || *s == '\\')
			ret = buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			ret = buf_puts(b, "\\n");
		else
			ret = buf_append(b, s, 1);
	}
	return ret;
}

static int series_labels(struct buf *b, const struct met_series *s)
{
	int ret = buf_puts(b, "model=\"");

	ret = ret ? ret : label(b, s->model);
	ret = ret ? ret : buf_puts(b, "\",version=\"");
	ret = ret ? ret : label(b, s->version);
	ret = ret ? ret : buf_puts(b, "\",protocol=\"");
	ret = ret ? ret : label(b, s->protocol);
	ret = ret ? ret : buf_printf(b, "\",status=\"%d\"", s->status);
	return ret;
}

static int render_models(struct metrics *m, struct buf *out)
{
	char name[MET_STR], version[MET_STR];
	unsigned w, i, j;
	int ret = 0;

	ret = buf_puts(out,
		       "# HELP assetfs_server_model_loads_total Successful "
		       "model version loads.\n"
		       "# TYPE assetfs_server_model_loads_total counter\n"
		       "# HELP assetfs_server_model_load_failures_total Failed "
		       "model version loads.\n"
		       "# TYPE assetfs_server_model_load_failures_total "
		       "counter\n"
		       "# HELP assetfs_server_model_load_seconds_total Time "
		       "spent loading model versions.\n"
		       "# TYPE assetfs_server_model_load_seconds_total "
		       "counter\n"
		       "# HELP assetfs_server_model_serving Workers serving "
		       "this version of the model.\n"
		       "# TYPE assetfs_server_model_serving gauge\n");
	for (i = 0; i < METRICS_MAX_MODELS && ret == 0; i++) {
		uint64_t loads = 0, fails = 0, ns = 0;
		bool any = false;
		char first[MET_STR] = "";

		for (w = 0; w < METRICS_MAX_WORKERS; w++) {
			struct met_model *mm = &m->models[w][i];

			if (!atomic_load(&mm->used))
				continue;
			if (!any)
				read_model(mm, first, version);
			any = true;
			loads += atomic_load(&mm->loads);
			fails += atomic_load(&mm->failures);
			ns += atomic_load(&mm->load_ns);
		}
		if (!any)
			continue;
		ret =
		    buf_puts(out, "assetfs_server_model_loads_total{model=\"");
		ret = ret ? ret : label(out, first);
		ret = ret ? ret
			  : buf_printf(out,
				       "\"} %llu\n"
				       "assetfs_server_model_load_failures_"
				       "total{model=\"",
				       (unsigned long long)loads);
		ret = ret ? ret : label(out, first);
		ret = ret ? ret
			  : buf_printf(out,
				       "\"} %llu\n"
				       "assetfs_server_model_load_seconds_"
				       "total{model=\"",
				       (unsigned long long)fails);
		ret = ret ? ret : label(out, first);
		ret =
		    ret ? ret : buf_printf(out, "\"} %.6f\n", (double)ns / 1e9);
		/* one line per distinct version served, counting workers */
		for (w = 0; w < METRICS_MAX_WORKERS && ret == 0; w++) {
			struct met_model *mm = &m->models[w][i];
			unsigned count = 0;
			bool seen = false;

			if (!atomic_load(&mm->serving))
				continue;
			read_model(mm, name, version);
			for (j = 0; j < w; j++) {
				char n2[MET_STR], v2[MET_STR];

				if (!atomic_load(&m->models[j][i].serving))
					continue;
				read_model(&m->models[j][i], n2, v2);
				if (strcmp(v2, version) == 0)
					seen = true;
			}
			if (seen)
				continue;
			for (j = w; j < METRICS_MAX_WORKERS; j++) {
				char n2[MET_STR], v2[MET_STR];

				if (!atomic_load(&m->models[j][i].serving))
					continue;
				read_model(&m->models[j][i], n2, v2);
				if (strcmp(v2, version) == 0)
					count++;
			}
			ret = buf_puts(out,
				       "assetfs_server_model_serving{model=\"");
			ret = ret ? ret : label(out, name);
			ret = ret ? ret : buf_puts(out, "\",version=\"");
			ret = ret ? ret : label(out, version);
			ret = ret ? ret : buf_printf(out, "\"} %u\n", count);
		}
	}
	return ret;
}

int metrics_render(struct metrics *m, struct buf *out)
{
	unsigned i;
	size_t b;
	int ret;

	ret =
	    buf_puts(out, "# HELP assetfs_server_requests_total Requests "
			  "answered, by model, version, protocol and status.\n"
			  "# TYPE assetfs_server_requests_total counter\n");
	for (i = 0; i < MET_SERIES && ret == 0; i++) {
		struct met_series *s = &m->series[i];

		if (atomic_load_explicit(&s->state, memory_order_acquire) != 2)
			continue;
		ret = buf_puts(out, "assetfs_server_requests_total{");
		ret = ret ? ret : series_labels(out, s);
		ret = ret ? ret
			  : buf_printf(
				out, "} %llu\n",
				(unsigned long long)atomic_load(&s->count));
	}
	ret = ret ? ret
		  : buf_puts(out,
			     "# HELP assetfs_server_request_duration_seconds "
			     "Time from "
			     "the request line to the response.\n"
			     "# TYPE assetfs_server_request_duration_seconds "
			     "histogram\n");
	for (i = 0; i < MET_SERIES && ret == 0; i++) {
		struct met_series *s = &m->series[i];
		uint64_t cum = 0;

		if (atomic_load_explicit(&s->state, memory_order_acquire) != 2)
			continue;
		for (b = 0; b < MET_BUCKETS && ret == 0; b++) {
			cum += atomic_load(&s->buckets[b]);
			ret = buf_puts(out, "assetfs_server_request_duration_"
					    "seconds_bucket{");
			ret = ret ? ret : series_labels(out, s);
			ret = ret ? ret
				  : buf_printf(out, ",le=\"%g\"} %llu\n",
					       met_bounds[b],
					       (unsigned long long)cum);
		}
		ret = ret ? ret
			  : buf_puts(out, "assetfs_server_request_"
					  "duration_seconds_bucket{");
		ret = ret ? ret : series_labels(out, s);
		ret = ret ? ret
			  : buf_printf(
				out, ",le=\"+Inf\"} %llu\n",
				(unsigned long long)atomic_load(&s->count));
		ret = ret ? ret
			  : buf_puts(out, "assetfs_server_request_"
					  "duration_seconds_sum{");
		ret = ret ? ret : series_labels(out, s);
		ret = ret ? ret
			  : buf_printf(out, "} %.9f\n",
				       (double)atomic_load(&s->sum_ns) / 1e9);
		ret = ret ? ret
			  : buf_puts(out, "assetfs_server_request_"
					  "duration_seconds_count{");
		ret = ret ? ret : series_labels(out, s);
		ret = ret ? ret
			  : buf_printf(
				out, "} %llu\n",
				(unsigned long long)atomic_load(&s->count));
	}
	ret = ret ? ret : render_models(m, out);
	ret = ret ? ret : render_procs(m, out);
	ret =
	    ret ? ret
		: buf_printf(
		      out,
		      "# HELP assetfs_server_cache_hits_total Prediction cache "
		      "hits.\n# TYPE assetfs_server_cache_hits_total counter\n"
		      "assetfs_server_cache_hits_total %llu\n"
		      "# HELP assetfs_server_cache_misses_total Prediction "
		      "cache "
		      "misses.\n# TYPE assetfs_server_cache_misses_total "
		      "counter\n"
		      "assetfs_server_cache_misses_total %llu\n"
		      "# HELP assetfs_server_worker_restarts_total Workers "
		      "replaced (max-requests or crash).\n"
		      "# TYPE assetfs_server_worker_restarts_total counter\n"
		      "assetfs_server_worker_restarts_total %llu\n"
		      "# HELP assetfs_server_metrics_series_dropped_total "
		      "Requests "
		      "not counted because the series table was full.\n"
		      "# TYPE assetfs_server_metrics_series_dropped_total "
		      "counter\n"
		      "assetfs_server_metrics_series_dropped_total %llu\n",
		      (unsigned long long)atomic_load(&m->cache_hits),
		      (unsigned long long)atomic_load(&m->cache_misses),
		      (unsigned long long)atomic_load(&m->worker_restarts),
		      (unsigned long long)atomic_load(&m->dropped));
	return ret;
}
