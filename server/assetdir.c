/*
 * assetdir - version resolution and model file lookup in a mount-shaped
 * directory. Reads the directory on every call: the registry's poll loop
 * is what rate-limits it.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resolver/spec.h"
#include "server/assetdir.h"

#define ASSETDIR_MAX_ENTRIES 100000

static bool is_alias(const char *n)
{
	size_t len = strlen(n);

	return strcmp(n, "latest") == 0 ||
	       (len > 7 && strcmp(n + len - 7, ".latest") == 0);
}

/* Follow alias @alias of @adir; 0 with *@out set, or -ENOENT. */
static int read_alias(const char *adir, const char *alias, char **out)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	ssize_t n;

	if (snprintf(path, sizeof(path), "%s/%s", adir, alias) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -ENOENT;
	target[n] = '\0';
	while (n > 1 && target[n - 1] == '/')
		target[--n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (!base[0] || base[0] == '.' || is_alias(base))
		return -ENOENT;
	*out = strdup(base);
	return *out ? 0 : -ENOMEM;
}

static int list_versions(const char *adir, enum versioning sys,
			 struct version_list *l)
{
	const char **names = NULL;
	size_t n = 0, cap = 0, i;
	struct dirent *de;
	DIR *d;
	int ret = 0;

	d = opendir(adir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		const char **nn;

		if (de->d_name[0] == '.' || is_alias(de->d_name))
			continue;
		if (n >= ASSETDIR_MAX_ENTRIES)
			break;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				ret = -ENOMEM;
				goto out;
			}
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			ret = -ENOMEM;
			goto out;
		}
		n++;
	}
	ret = version_list_from(names, n, sys, l);
out:
	for (i = 0; i < n; i++)
		free((char *)names[i]);
	free(names);
	closedir(d);
	return ret;
}

int assetdir_resolve(const char *root, const char *name, const char *want,
		     enum versioning sys, char **version, char *err,
		     size_t errlen)
{
	struct version_list l = {0};
	char adir[PATH_MAX], alias[SPEC_VERSION_MAX + 16], path[PATH_MAX];
	const char *got = NULL;
	struct stat st;
	int ret;

	*version = NULL;
	if (snprintf(adir, sizeof(adir), "%s/%s", root, name) >=
	    (int)sizeof(adir)) {
		snprintf(err, errlen, "path too long for asset '%s'", name);
		return -ENAMETOOLONG;
	}
	if (stat(adir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "no such asset '%s' in %s", name, root);
		return -ENOENT;
	}
	if (want && !version_is_major(want)) {
		/* a complete version names itself */
		if (snprintf(path, sizeof(path), "%s/%s", adir, want) >=
			(int)sizeof(path) ||
		    want[0] == '.' || strchr(want, '/') ||
		    stat(path, &st) < 0) {
			snprintf(err, errlen, "no such version '%s' of '%s'",
				 want, name);
			return -ENOENT;
		}
		*version = strdup(want);
		return *version ? 0 : -ENOMEM;
	}
	snprintf(alias, sizeof(alias), "%s%slatest", want ? want : "",
		 want ? "." : "");
	if (read_alias(adir, alias, version) == 0)
		return 0;
	ret = list_versions(adir, sys, &l);
	if (ret < 0) {
		snprintf(err, errlen, "cannot list %s: %s", adir,
			 strerror(-ret));
		return ret;
	}
	ret = version_resolve(&l, name, want, &got, err, errlen);
	if (ret == 0) {
		*version = strdup(got);
		if (!*version)
			ret = -ENOMEM;
	}
	version_list_clear(&l);
	return ret;
}

static int find_one(const char *vpath, const char *const *exts, char **out)
{
	struct dirent *de;
	char *found = NULL;
	int count = 0, ret;
	DIR *d;

	d = opendir(vpath);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		const char *const *e;

		if (de->d_name[0] == '.')
			continue;
		for (e = exts; *e; e++) {
			size_t el = strlen(*e);

			if (len > el && strcmp(de->d_name + len - el, *e) == 0)
				break;
		}
		if (!*e)
			continue;
		count++;
		if (!found)
			found = strdup(de->d_name);
	}
	closedir(d);
	if (count != 1) {
		free(found);
		return count ? -EEXIST : -ENOENT;
	}
	if (!found)
		return -ENOMEM;
	ret = asprintf(out, "%s/%s", vpath, found) < 0 ? -ENOMEM : 0;
	free(found);
	return ret;
}

int assetdir_model_file(const char *vpath, const char *hint,
			const char *runtime, char **out, char *err,
			size_t errlen)
{
	static const char *const xgb_names[] = {"model.json", "model.ubj",
						NULL};
	static const char *const xgb_exts[] = {".json", ".ubj", NULL};
	static const char *const so_names[] = {"model.so", NULL};
	static const char *const so_exts[] = {".so", NULL};
	static const char *const skl_names[] = {"model.joblib", "model.pkl",
						NULL};
	static const char *const skl_exts[] = {".joblib", ".pkl", ".pickle",
					       NULL};
	bool plugin = strcmp(runtime, "plugin") == 0;
	bool sklearn = strcmp(runtime, "sklearn") == 0;
	const char *const *names = plugin    ? so_names
				   : sklearn ? skl_names
					     : xgb_names;
	char path[PATH_MAX];
	struct stat st;
	size_t i;
	int ret;

	*out = NULL;
	if (stat(vpath, &st) < 0) {
		snprintf(err, errlen, "cannot open %s: %s", vpath,
			 strerror(errno));
		return -ENOENT;
	}
	if (!S_ISDIR(st.st_mode) ||
	    (!hint && strcmp(runtime, "python") == 0)) {
		*out = strdup(vpath);
		return *out ? 0 : -ENOMEM;
	}
	if (hint) {
		if (spec_check_relpath(hint, err, errlen) < 0)
			return -EINVAL;
		if (snprintf(path, sizeof(path), "%s/%s", vpath, hint) >=
			(int)sizeof(path) ||
		    stat(path, &st) < 0 || S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "no file '%s' in %s", hint,
				 vpath);
			return -ENOENT;
		}
		*out = strdup(path);
		return *out ? 0 : -ENOMEM;
	}
	for (i = 0; names[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", vpath, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			*out = strdup(path);
			return *out ? 0 : -ENOMEM;
		}
	}
	ret = find_one(vpath,
		       plugin	 ? so_exts
		       : sklearn ? skl_exts
				 : xgb_exts,
		       out);
	if (ret == -ENOENT || ret == -EEXIST)
		snprintf(err, errlen,
			 "%s model file in %s (name it with "
			 "file=)",
			 ret == -ENOENT ? "no" : "more than one", vpath);
	return ret;
}
