/*
 * runtime - the table of runtimes by name.
 */
#include <string.h>

#include "server/runtime.h"

const struct runtime_ops *runtime_find(const char *name)
{
#ifdef HAVE_XGBOOST
	if (strcmp(name, "xgboost") == 0)
		return &rt_xgboost_ops;
#endif
	if (strcmp(name, "plugin") == 0)
		return &rt_plugin_ops;
	return NULL;
}
