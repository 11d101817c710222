/*
 * runtime - the table of runtimes by name, and the runtime a version's
 * files call for when the model named none.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "server/runtime.h"

const struct runtime_ops *runtime_find(const char *name)
{
#ifdef HAVE_XGBOOST
	if (strcmp(name, "xgboost") == 0)
		return &rt_xgboost_ops;
#endif
	if (strcmp(name, "plugin") == 0)
		return &rt_plugin_ops;
	if (strcmp(name, "sklearn") == 0)
		return &rt_sklearn_ops;
	if (strcmp(name, "python") == 0)
		return &rt_python_ops;
	return NULL;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n > t && strcmp(s + n - t, tail) == 0;
}

static const struct runtime_ops *by_name(const char *f)
{
	if (ends_with(f, ".joblib") || ends_with(f, ".pkl") ||
	    ends_with(f, ".pickle"))
		return &rt_sklearn_ops;
	if (ends_with(f, ".so"))
		return &rt_plugin_ops;
	return NULL;
}

static const struct runtime_ops *fallback(void)
{
	const struct runtime_ops *ops = runtime_find("xgboost");

	return ops ? ops : &rt_plugin_ops;
}

const struct runtime_ops *runtime_detect(const char *vpath, const char *file,
					 const char *config)
{
	const struct runtime_ops *ops = NULL, *f;
	char path[4096];
	struct dirent *de;
	struct stat st;
	bool xgb = false;
	cJSON *j;
	DIR *d;

	if (config) {
		j = cJSON_Parse(config);
		ops = cJSON_GetObjectItemCaseSensitive(j, "class")
			  ? &rt_python_ops
			  : NULL;
		cJSON_Delete(j);
		if (ops)
			return ops;
	}
	if (file)
		return (f = by_name(file)) ? f : fallback();
	snprintf(path, sizeof(path), "%s/model-settings.json", vpath);
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
		return &rt_python_ops;
	if (stat(vpath, &st) == 0 && !S_ISDIR(st.st_mode))
		return (f = by_name(vpath)) ? f : fallback();
	d = opendir(vpath);
	if (!d)
		return fallback();
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		f = by_name(de->d_name);
		if (f == &rt_sklearn_ops)
			ops = f;
		else if (f && !ops)
			ops = f;
		if (strcmp(de->d_name, "model.json") == 0 ||
		    strcmp(de->d_name, "model.ubj") == 0)
			xgb = true;
	}
	closedir(d);
	if (ops == &rt_plugin_ops && xgb)
		ops = NULL;
	return ops ? ops : fallback();
}
