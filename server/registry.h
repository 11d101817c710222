/*
 * registry - the models a server serves, by name, and the version of each
 * that is serving right now.
 *
 * Each loaded version is a refcounted struct model_version. A request
 * takes a reference (model_acquire) and drops it when done; a version
 * swap replaces the model's current pointer under its lock and drops the
 * registry's reference, so the old version is freed by whichever request
 * finishes with it last, never under a request's feet.
 *
 * A spec with a partial or no version ("iris", "iris:1") floats: a poll
 * thread re-resolves it every poll interval (alias symlink or directory
 * listing, see assetdir.h), loads a new version beside the old one and
 * swaps. A version that fails to load leaves the old one serving; the
 * failure is logged and counted, and the same version is tried again only
 * after six poll intervals (at least 2 s). With lazy loading a model is
 * loaded by its first request.
 *
 * Lock order: model->lock is a leaf (never held while loading).
 * Errors: 0 or a negative errno with a message in @err.
 */
#ifndef ASSETFS_SERVER_REGISTRY_H
#define ASSETFS_SERVER_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resolver/version.h"
#include "server/runtime.h"
#include "server/tensor.h"

struct metrics;
struct pcache;

struct model_version {
	atomic_int refs;
	char *version; /* "1.2" */
	char *path;    /* the model file loaded */
	const struct runtime_ops *ops;
	void *state;
	struct runtime_info info;
	int64_t load_ns;
};

struct registry_opts {
	const char *assets_dir; /* borrowed */
	int poll_ms;		/* 0: never re-resolve */
	bool lazy;
	enum versioning sys;
	unsigned worker;	 /* slot in the metrics segment */
	struct metrics *metrics; /* borrowed, may be NULL */
	struct pcache *cache;	 /* borrowed, may be NULL */
	/* the Python runtimes (struct runtime_ctx); borrowed, may be NULL */
	const char *python, *python_env_dir, *python_wheelhouse;
};

struct registry;
struct model;

int registry_new(const struct registry_opts *o, struct registry **out);

/* Stop polling, drop every version (in-flight references keep theirs). */
void registry_free(struct registry *r); /* NULL-safe */

/*
 * Add a model served as @name (URL-safe: [A-Za-z0-9._-]) from asset
 * @spec with runtime @runtime ("xgboost", "plugin", "sklearn", "python",
 * or NULL: detected per version, runtime_detect()); @file (may be NULL)
 * names the model file inside the version; @config (may be NULL) is JSON
 * text for the runtime. Returns 0, -EEXIST, -EINVAL.
 */
int registry_add(struct registry *r, const char *name, const char *spec,
		 const char *runtime, const char *file, const char *config,
		 char *err, size_t errlen);

/* Load every model now (not lazy). Fails on the first model that fails. */
int registry_load_all(struct registry *r, char *err, size_t errlen);

/* Start the poll thread (no-op when poll_ms is 0). */
int registry_start(struct registry *r);

size_t registry_count(const struct registry *r);
struct model *registry_at(struct registry *r, size_t i);
struct model *registry_find(struct registry *r, const char *name);

const char *model_name(const struct model *m);
const char *model_spec(const struct model *m);
const char *model_runtime(const struct model *m);

/* Is a version loaded and serving? */
bool model_ready(struct model *m);

/* Has no version been loaded, and did the last attempt fail? */
bool model_failed(struct model *m);

/* Is loading lazy? */
bool registry_lazy(const struct registry *r);

/*
 * Take a reference to the serving version; with @version non-NULL it must
 * be the serving one. Loads the model first when lazy. Returns 0,
 * -ENOENT (@version is not the serving version), -EAGAIN (not loaded:
 * the load failed or is pending; message in @err).
 */
int model_acquire(struct registry *r, struct model *m, const char *version,
		  struct model_version **out, char *err, size_t errlen);

/*
 * As model_acquire, but never waits for a load another thread is doing:
 * -EBUSY ("is loading") instead. For front ends whose threads must not
 * block behind a lazy load (gRPC).
 */
int model_try_acquire(struct registry *r, struct model *m,
		      const char *version, struct model_version **out,
		      char *err, size_t errlen);

/* Would acquiring @m now start loading it (lazy, nothing loaded yet, no
 * load running)? */
bool model_would_load(struct registry *r, struct model *m);

void model_version_unref(struct model_version *v); /* NULL-safe */

/*
 * Score @in with @v, through the prediction cache when there is one.
 * *@out (malloc'd) gets in->rows * v->info.n_outputs doubles.
 * Returns 0, -EINVAL (input does not fit the model), -EAGAIN (a Python
 * model's process crashed, hung or ran out of memory: try later), -EIO.
 */
int model_predict(struct registry *r, struct model *m, struct model_version *v,
		  const struct matrix *in, double **out, char *err,
		  size_t errlen);

/* Re-resolve and swap every floating model once (what the poller does). */
void registry_poll_once(struct registry *r);

#endif
