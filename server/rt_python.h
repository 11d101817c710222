/*
 * rt_python - what the sklearn and python runtimes (rt_python.c) read
 * from a model's config, and where the worker program is.
 *
 * A model's config (JSON; from --model NAME=SPEC,key=value or the models
 * file) may hold, besides what the worker reads (class, parameters,
 * n_features, n_outputs):
 *   replicas           processes per loaded version (1..64, default 1)
 *   timeout            seconds one batch may take (default 60; 0: none)
 *   max_memory         RLIMIT_AS of each process: bytes, or with a K, M,
 *                      G or T suffix (default: none)
 *   max_batch_size     rows per call (default 64)
 *   max_batch_wait_us  how long a batch may wait to fill while the
 *                      model is busy (default 500; 0: never)
 *   load_timeout       seconds a process may take to load (default 300)
 * Values may be JSON numbers or strings ("2", "512M").
 *
 * Pure parsing and path lookup. Errors: 0 or -EINVAL with a message.
 */
#ifndef ASSETFS_SERVER_RT_PYTHON_H
#define ASSETFS_SERVER_RT_PYTHON_H

#include <stddef.h>
#include <stdint.h>

#include "server/runtime.h"

struct pyrt_conf {
	unsigned replicas;
	int64_t timeout_ms; /* 0: none */
	uint64_t max_memory; /* bytes; 0: none */
	size_t max_batch_rows;
	int64_t max_wait_us;
	int64_t load_timeout_ms;
};

/* Read @config (JSON text or NULL) into @c, defaults for what is not
 * there. Unknown keys are left to the worker. */
int pyrt_conf_parse(const char *config, struct pyrt_conf *c, char *err,
		    size_t errlen);

/*
 * The worker program: @ctx->python_worker, else $ASSETFS_PYTHON_WORKER,
 * else assetfs_model_worker.py beside the server binary (a build tree),
 * else the installed copy. *@out is malloc'd. -ENOENT with a
 * message when none exists.
 */
int rt_python_worker_path(const struct runtime_ctx *ctx, char **out,
			  char *err, size_t errlen);

#endif
