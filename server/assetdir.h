/*
 * assetdir - find a model's version and file in a directory laid out like
 * the mount (DESIGN §4): ROOT/NAME/VERSION[/file], with optional alias
 * symlinks `latest` and `MAJOR.latest`.
 *
 * An alias symlink, when present, is the truth (that is how the mount
 * shows a moved version); without one, the version entries of the asset
 * dir are listed and resolved with resolver/version.h, so any plain copy
 * of an assets dir works as well.
 *
 * Thread-safe (no shared state). Errors: 0, -ENOENT (no such asset,
 * version or file; message in @err), -EINVAL (bad spec), -ENOMEM.
 */
#ifndef ASSETFS_SERVER_ASSETDIR_H
#define ASSETFS_SERVER_ASSETDIR_H

#include <stddef.h>

#include "resolver/version.h"

/*
 * Resolve @want (NULL: newest; "1": newest 1.x; "1.2": itself) of asset
 * @name under @root. On success *@version is a malloc'd version string.
 */
int assetdir_resolve(const char *root, const char *name, const char *want,
		     enum versioning sys, char **version, char *err,
		     size_t errlen);

/*
 * The model file of version path @vpath: @vpath itself for a file asset;
 * else @vpath/@hint when @hint is set; else the usual names for @runtime
 * (model.json, model.ubj, or the only *.json / *.ubj; model.so or the
 * only *.so for plugins; model.joblib, model.pkl or the only *.joblib /
 * *.pkl / *.pickle for sklearn; @vpath itself for python). *@out is
 * malloc'd.
 */
int assetdir_model_file(const char *vpath, const char *hint,
			const char *runtime, char **out, char *err,
			size_t errlen);

#endif
