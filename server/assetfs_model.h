/*
 * assetfs_model - the C ABI of a model plugin for assetfs-server.
 *
 * A plugin is a shared object shipped inside an asset version
 * (`/assets/NAME/VERSION/model.so`). The server dlopen()s it and calls
 * assetfs_model_entry(), which returns a static table of entry points.
 * The table starts with the ABI version the plugin was built against; the
 * server refuses a table whose abi_version it does not know, so old servers
 * never call into newer plugins blindly.
 *
 * Data: a request is a dense row-major matrix of doubles (rows x cols);
 * predict() writes rows x n_outputs doubles into a buffer the server
 * allocated. Strings and buffers passed to the plugin are borrowed for the
 * duration of the call only.
 *
 * Threads: load() and free() are called from one thread at a time for a
 * handle; predict() and metrics() may be called concurrently on one handle
 * from several threads, so a plugin keeps per-call state on the stack or
 * locks. Errors: 0 or a negative errno, with a message in @err (a plugin
 * writes at most @errlen bytes, NUL included).
 */
#ifndef ASSETFS_MODEL_H
#define ASSETFS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define ASSETFS_MODEL_ABI_VERSION 1

/* What a loaded model tells the server about itself. */
struct assetfs_model_info {
	int64_t n_features;	/* columns predict() expects, or -1 for any */
	uint32_t n_outputs;	/* doubles written per row by predict(), >= 1 */
	uint32_t is_classifier; /* 1: outputs are class probabilities */
};

struct assetfs_model_ops {
	uint32_t abi_version; /* ASSETFS_MODEL_ABI_VERSION */
	const char *name;     /* a short name for logs */

	/*
	 * Load the model whose files are in the directory @path (the asset
	 * version). @config is a JSON object as text (never NULL; "{}" when
	 * nothing was configured). On success store an opaque handle in
	 * *@handle and fill @info.
	 */
	int (*load)(const char *path, const char *config, void **handle,
		    struct assetfs_model_info *info, char *err, size_t errlen);

	/*
	 * Score @rows rows of @cols doubles at @x into @out, which holds
	 * rows * info.n_outputs doubles.
	 */
	int (*predict)(void *handle, const double *x, size_t rows, size_t cols,
		       double *out, char *err, size_t errlen);

	/*
	 * Optional (NULL when absent): evaluate the model on a whole data set
	 * at once (the batch command's metrics job). @labels holds @rows
	 * values or is NULL. Write a JSON object as text into @json (at most
	 * @jsonlen bytes, NUL included).
	 */
	int (*metrics)(void *handle, const double *x, const double *labels,
		       size_t rows, size_t cols, char *json, size_t jsonlen,
		       char *err, size_t errlen);

	/* Release everything @handle owns. Never fails. */
	void (*free)(void *handle);
};

/* The one symbol the server looks up. */
const struct assetfs_model_ops *assetfs_model_entry(void);

#endif
