/*
 * metrics - request and model counters shared by every worker process, and
 * their Prometheus text form.
 *
 * The counters live in one shared anonymous mapping created by the parent
 * before it forks its workers, so any process can render the sum. Series
 * (model, version, protocol, status) are claimed lock-free in an open
 * addressed table; a full table drops new series and counts the drops.
 * Model state is kept per worker slot (the version serving, loads, load
 * failures, load time).
 *
 * Threads and processes: every call is safe from any thread of any
 * process sharing the mapping (atomics only). Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_SERVER_METRICS_H
#define ASSETFS_SERVER_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

#define METRICS_MAX_WORKERS 64
#define METRICS_MAX_MODELS 64

struct metrics;

/* Map a segment for up to METRICS_MAX_WORKERS workers. */
int metrics_new(struct metrics **out);
void metrics_free(struct metrics *m); /* NULL-safe; unmaps */

/* Count one answered request. @model/@version may be "" (not a model). */
void metrics_request(struct metrics *m, const char *model, const char *version,
		     const char *protocol, int status, int64_t latency_ns);

/* Record a load attempt by @worker of model number @idx. */
void metrics_model_load(struct metrics *m, unsigned worker, unsigned idx,
			const char *name, const char *version, bool ok,
			int64_t load_ns);

/* The version @worker now serves for model @idx ("" when none). */
void metrics_model_serving(struct metrics *m, unsigned worker, unsigned idx,
			   const char *name, const char *version);

void metrics_cache(struct metrics *m, bool hit);
void metrics_worker_restart(struct metrics *m);
/* Mark @worker's slot unused (it exited): its model state stops counting
 * as serving, but its counters are kept. */
void metrics_worker_gone(struct metrics *m, unsigned worker);

/* A Python model process of @model died or was killed (it restarts). */
void metrics_model_process_restart(struct metrics *m, const char *model);

/* One call into a Python model process carried @rows rows. */
void metrics_model_batch(struct metrics *m, const char *model, size_t rows);

/* A request to a Python model waited @ns in its queue before it went. */
void metrics_model_queue(struct metrics *m, const char *model, int64_t ns);

/* Append the Prometheus text exposition to @out. */
int metrics_render(struct metrics *m, struct buf *out);

#endif
