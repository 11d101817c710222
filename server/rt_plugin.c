/*
 * rt_plugin - models as shared objects implementing server/assetfs_model.h.
 *
 * Each loaded version dlopen()s its own file (versions live in different
 * directories, so two versions of one plugin are two distinct objects and
 * can be loaded side by side during a swap). The object stays open until
 * the version's state is freed, after the plugin's free() has run.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/assetfs_model.h"
#include "server/runtime.h"

#define PLUGIN_METRICS_MAX (1u << 20)

struct plugin {
	void *dl;
	const struct assetfs_model_ops *ops;
	void *handle;
	bool loaded;
};

static void plugin_free(void *state)
{
	struct plugin *p = state;

	if (!p)
		return;
	if (p->loaded && p->ops->free)
		p->ops->free(p->handle);
	if (p->dl)
		dlclose(p->dl);
	free(p);
}

static int plugin_load(const struct runtime_ctx *ctx, const char *dir,
		       const char *path, const char *config, void **state,
		       struct runtime_info *info, char *err, size_t errlen)
{
	const struct assetfs_model_ops *(*entry)(void);
	struct assetfs_model_info mi = {.n_features = -1, .n_outputs = 1};
	struct plugin *p;
	int ret;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!p->dl) {
		snprintf(err, errlen, "cannot load plugin: %s", dlerror());
		ret = -EINVAL;
		goto fail;
	}
	*(void **)&entry = dlsym(p->dl, "assetfs_model_entry");
	if (!entry) {
		snprintf(err, errlen, "%s has no assetfs_model_entry", path);
		ret = -EINVAL;
		goto fail;
	}
	p->ops = entry();
	if (!p->ops || p->ops->abi_version != ASSETFS_MODEL_ABI_VERSION ||
	    !p->ops->load || !p->ops->predict) {
		snprintf(err, errlen,
			 "%s: unsupported plugin ABI version %u "
			 "(this server speaks %u)",
			 path, p->ops ? p->ops->abi_version : 0,
			 ASSETFS_MODEL_ABI_VERSION);
		ret = -EINVAL;
		goto fail;
	}
	err[0] = '\0';
	ret = p->ops->load(dir, config ? config : "{}", &p->handle, &mi, err,
			   errlen);
	if (ret < 0 || ret > 0) {
		if (!err[0])
			snprintf(err, errlen, "plugin load failed (%d)", ret);
		ret = -EINVAL;
		goto fail;
	}
	p->loaded = true;
	if (mi.n_outputs < 1 || mi.n_outputs > RUNTIME_MAX_OUTPUTS) {
		snprintf(err, errlen, "plugin reports %u outputs",
			 mi.n_outputs);
		ret = -EINVAL;
		goto fail;
	}
	info->n_features = mi.n_features > 0 ? mi.n_features : -1;
	info->n_outputs = mi.n_outputs;
	info->is_classifier = mi.is_classifier != 0;
	snprintf(info->objective, sizeof(info->objective), "plugin:%s",
		 p->ops->name ? p->ops->name : "?");
	*state = p;
	return 0;
fail:
	plugin_free(p);
	return ret;
}

static int plugin_predict(void *state, const double *x, size_t rows,
			  size_t cols, double *out, char *err, size_t errlen)
{
	struct plugin *p = state;
	int ret;

	err[0] = '\0';
	ret = p->ops->predict(p->handle, x, rows, cols, out, err, errlen);
	if (ret == 0)
		return 0;
	if (!err[0])
		snprintf(err, errlen, "plugin predict failed (%d)", ret);
	return ret == -EINVAL ? -EINVAL : -EIO;
}

static int plugin_metrics(void *state, const double *x, const double *labels,
			  size_t rows, size_t cols, struct buf *json, char *err,
			  size_t errlen)
{
	struct plugin *p = state;
	char *text;
	int ret;

	if (!p->ops->metrics) {
		snprintf(err, errlen, "the plugin has no metrics entry point");
		return -EOPNOTSUPP;
	}
	text = calloc(1, PLUGIN_METRICS_MAX);
	if (!text)
		return -ENOMEM;
	err[0] = '\0';
	ret = p->ops->metrics(p->handle, x, labels, rows, cols, text,
			      PLUGIN_METRICS_MAX, err, errlen);
	if (ret == 0) {
		text[PLUGIN_METRICS_MAX - 1] = '\0';
		ret = buf_puts(json, text);
	} else if (!err[0]) {
		snprintf(err, errlen, "plugin metrics failed (%d)", ret);
	}
	free(text);
	return ret < 0 ? ret : (ret > 0 ? -EIO : 0);
}

const struct runtime_ops rt_plugin_ops = {
    .name = "plugin",
    .load = plugin_load,
    .predict = plugin_predict,
    .metrics = plugin_metrics,
    .free = plugin_free,
};
