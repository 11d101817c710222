/*
 * runtime - the ways a model version can be loaded and scored: xgboost
 * (libxgboost's C API) and plugin (a shared object implementing
 * server/assetfs_model.h). The registry only ever sees this table.
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

struct runtime_ops {
	const char *name;
	/*
	 * Load the version at @dir (a directory, or the file itself for a
	 * file asset) from its model file @path (the JSON/UBJ model, or the
	 * plugin's shared object). @config: JSON text or NULL.
	 */
	int (*load)(const char *dir, const char *path, const char *config,
		    void **state, struct runtime_info *info, char *err,
		    size_t errlen);
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

/* "xgboost" / "plugin" -> table, or NULL. */
const struct runtime_ops *runtime_find(const char *name);

#endif
