/*
 * runtime - the ways a model version can be loaded and scored: xgboost
 * (libxgboost's C API), plugin (a shared object implementing
 * server/assetfs_model.h), and sklearn / python (rt_python.c: Python
 * processes of their own). The registry only ever sees this table.
 *
 * Threads: load/free once per state; predict and metrics concurrently on
 * one state. Errors: 0 or a negative errno with a message in @err
 * (-EINVAL: the input does not fit the model; -EIO: the model failed).
 */
#ifndef ASSETFS_SERVER_RUNTIME_H
#define ASSETFS_SERVER_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define RUNTIME_MAX_OUTPUTS 65536

struct runtime_info {
	int64_t n_features; /* -1 when any width is accepted */
	uint32_t n_outputs; /* doubles per row out of predict */
	bool is_classifier; /* outputs are class probabilities */
	char objective[64]; /* for metadata ("multi:softprob", "plugin") */
};

struct metrics;

/* What a load may need beyond the model's files. Every pointer borrowed
 * for the duration of the load; NULL strings mean the default. */
struct runtime_ctx {
	const char *model;	       /* the name it is served as */
	struct metrics *metrics;       /* may be NULL */
	const char *python;	       /* interpreter (/usr/bin/python3) */
	const char *python_env_dir;    /* where environments are built */
	const char *python_wheelhouse; /* pip --no-index --find-links DIR */
	const char *python_worker;     /* the worker program */
};

struct runtime_ops {
	const char *name;
	/*
	 * Load the version at @dir (a directory, or the file itself for a
	 * file asset) from its model file @path (the JSON/UBJ model, the
	 * plugin's shared object, the joblib file; the directory for
	 * python). @config: JSON text or NULL.
	 */
	int (*load)(const struct runtime_ctx *ctx, const char *dir,
		    const char *path, const char *config, void **state,
		    struct runtime_info *info, char *err, size_t errlen);
	/* @out holds rows * info.n_outputs doubles. */
	int (*predict)(void *state, const double *x, size_t rows, size_t cols,
		       double *out, char *err, size_t errlen);
	/* Optional: a JSON object for a whole data set into @json. */
	int (*metrics)(void *state, const double *x, const double *labels,
		       size_t rows, size_t cols, struct buf *json, char *err,
		       size_t errlen);
	void (*free)(void *state);
};

extern const struct runtime_ops rt_xgboost_ops;
extern const struct runtime_ops rt_plugin_ops;
extern const struct runtime_ops rt_sklearn_ops;
extern const struct runtime_ops rt_python_ops;

/* "xgboost" / "plugin" / "sklearn" / "python" -> table, or NULL. */
const struct runtime_ops *runtime_find(const char *name);

/*
 * The runtime of the version at @vpath when none was named: python when
 * @config names a "class" or the version holds MLServer's
 * model-settings.json; sklearn for a *.joblib / *.pkl model file
 * (@file when given); plugin for a *.so; else xgboost.
 */
const struct runtime_ops *runtime_detect(const char *vpath, const char *file,
					 const char *config);

#endif
