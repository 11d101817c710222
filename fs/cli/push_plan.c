/*
 * push_plan - the planning phase of a push (see push_int.h): walk PATH
 * into a sorted list of files, read the asset's version list, and check
 * that a new asset may take its name (no nesting in an asset, no clash
 * with a namespace) and that no leftover of an interrupted push of the
 * same version stays. Nothing here writes to the store but the removal
 * of such leftovers, which no listing shows. It is also the bottom of the
 * push files: push_fail() and push_reason() live here, so push_hash.c and
 * push.c call down into it and nothing calls up (the cli_layers test).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/cli/push_int.h"

int push_fail(struct push_ctx *c, int ret, const char *fmt, ...)
{
	va_list ap;

	if (c->err && c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

const char *push_reason(int ret)
{
	const char *m = prov_last_error();

	return (m && *m) ? m : strerror(-ret);
}

int push_add_file(struct push_ctx *c, const char *rel, const char *path,
		  const struct stat *st)
{
	struct push_file *f;

	if (c->n_files >= META_MAX_FILES)
		return push_fail(c, -EFBIG, "too many files (over %u)",
				 META_MAX_FILES);
	if (c->n_files == c->cap_files) {
		size_t nc = c->cap_files ? c->cap_files * 2 : 32;

		f = realloc(c->files, nc * sizeof(*f));
		if (!f)
			return push_fail(c, -ENOMEM, "out of memory");
		c->files = f;
		c->cap_files = nc;
	}
	f = &c->files[c->n_files];
	f->rel = strdup(rel);
	f->path = strdup(path);
	if (!f->rel || !f->path) {
		free(f->rel);
		free(f->path);
		return push_fail(c, -ENOMEM, "out of memory");
	}
	f->size = (uint64_t)st->st_size;
	f->mtime = st->st_mtim;
	c->n_files++;
	c->total += f->size;
	return 0;
}

/* Walk @dir, whose files have relpaths "@rel<name>". */
static int push_walk(struct push_ctx *c, const char *dir, const char *rel,
		     int depth)
{
	char path[PATH_MAX], sub[SPEC_PATH_MAX + 2], perr[SPEC_ERR_MAX];
	struct dirent *de;
	struct stat st, lst;
	DIR *d;
	int ret = 0;

	if (depth > PUSH_MAX_DEPTH)
		return push_fail(c, -ELOOP, "%s: folders nested deeper than %d",
				 dir, PUSH_MAX_DEPTH);
	d = opendir(dir);
	if (!d) {
		ret = -errno;
		return push_fail(c, ret, "cannot read folder %s: %s", dir,
				 strerror(-ret));
	}
	while ((de = readdir(d))) {
		const char *n = de->d_name;

		if (n[0] == '.')
			continue; /* dotfiles, ".", ".." */
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, n) >=
			sizeof(path) ||
		    (size_t)snprintf(sub, sizeof(sub), "%s%s", rel, n) >=
			SPEC_PATH_MAX) {
			ret = push_fail(c, -ENAMETOOLONG,
					"path too long: "
					"%s/%s",
					dir, n);
			break;
		}
		if (lstat(path, &lst) < 0) {
			ret = -errno;
			push_fail(c, ret, "%s: %s", path, strerror(-ret));
			break;
		}
		if (stat(path, &st) < 0) {
			if (errno == ENOENT && S_ISLNK(lst.st_mode))
				continue; /* dangling symlink */
			ret = -errno;
			push_fail(c, ret, "%s: %s", path, strerror(-ret));
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if (S_ISLNK(lst.st_mode))
				continue; /* may loop; modelkit skips too */
			strcat(sub, "/");
			ret = push_walk(c, path, sub, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			ret = spec_check_relpath(sub, perr, sizeof(perr));
			if (ret < 0) {
				push_fail(c, ret, "cannot push %s: %s", path,
					  perr);
				break;
			}
			ret = push_add_file(c, sub, path, &st);
		}
		if (ret < 0)
			break;
	}
	closedir(d);
	return ret;
}

static int push_cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct push_file *)a)->rel,
		      ((const struct push_file *)b)->rel);
}

int push_collect(struct push_ctx *c, const char *dir)
{
	int ret = push_walk(c, dir, "", 0);

	if (ret < 0)
		return ret;
	if (c->n_files == 0)
		return push_fail(c, -EINVAL,
				 "cannot push %s: the folder has no files "
				 "(dotfiles are skipped)",
				 dir);
	qsort(c->files, c->n_files, sizeof(*c->files), push_cmp_file);
	return 0;
}

int push_read_versions(struct push_ctx *c, const char *name,
		       const char *want, struct version_list *vl,
		       bool *is_new)
{
	enum versioning sys = store_versioning(c->s);
	int ret;

	*is_new = false;
	ret = store_get_versions(c->s, name, vl, NULL, NULL, c->err, c->errlen);
	if (ret != -ENOENT)
		return ret;
	*is_new = true;
	if (sys == VERSIONING_AUTO)
		sys = (want && version_valid(VERSIONING_SIMPLE_DATE, want))
			  ? VERSIONING_SIMPLE_DATE
			  : VERSIONING_MAJOR_MINOR;
	ret = version_list_from(NULL, 0, sys, vl);
	if (ret < 0)
		return push_fail(c, ret, "out of memory");
	return 0;
}

/*
 * Is @rest (a key or prefix below "<name>/") foreign to asset <name>: not
 * "<version>", "<version>.meta", "<version>.meta.sig" or "<version>/"?
 */
static bool push_foreign(const char *rest, bool is_prefix)
{
	char v[SPEC_VERSION_MAX + 8];
	size_t n = strlen(rest);

	if (is_prefix && n && rest[n - 1] == '/')
		n--;
	if (n > 9 && strncmp(rest + n - 9, STORE_SIG_SUFFIX, 9) == 0)
		n -= 9;
	else if (n > 5 && strncmp(rest + n - 5, STORE_META_SUFFIX, 5) == 0)
		n -= 5;
	if (n == 0 || n >= sizeof(v))
		return true;
	memcpy(v, rest, n);
	v[n] = '\0';
	return !version_valid(VERSIONING_MAJOR_MINOR, v) &&
	       !version_valid(VERSIONING_SIMPLE_DATE, v);
}

/*
 * A new asset must not nest inside another asset ("a/b" when "a" is an
 * asset: its keys would be read as files of a's versions) nor take the
 * name of a namespace that holds keys ("a" when "a/b" exists): in the
 * tree, a name is either an asset or a namespace.
 */
int push_check_placement(struct push_ctx *c, const char *name)
{
	char key[STORE_KEY_MAX];
	struct prov_listing l = {0};
	struct prov_object o = {0};
	struct prov *p = store_prov(c->s);
	size_t nl = strlen(name);
	int ret;

	for (size_t i = 0; i < nl; i++) {
		if (name[i] != '/')
			continue;
		ret = snprintf(key, sizeof(key), "%.*s" STORE_VERSIONS_SUFFIX,
			       (int)i, name);
		if (ret < 0 || (size_t)ret >= sizeof(key))
			return push_fail(c, -ENAMETOOLONG, "name too long");
		ret = prov_head(p, key, &o);
		prov_object_free(&o);
		if (ret == 0)
			return push_fail(c, -EEXIST,
					 "cannot create '%s': "
					 "'%.*s' is an asset, and assets do "
					 "not nest",
					 name, (int)i, name);
		if (ret != -ENOENT)
			return push_fail(c, ret, "cannot read %s: %s", key,
					 push_reason(ret));
	}
	if (!prov_can_list(p))
		return 0;
	ret = snprintf(key, sizeof(key), "%s/", name);
	if (ret < 0 || (size_t)ret >= sizeof(key))
		return push_fail(c, -ENAMETOOLONG, "name too long");
	ret = prov_list(p, key, true, &l);
	if (ret < 0)
		return push_fail(c, ret, "cannot list %s: %s", key,
				 push_reason(ret));
	/* Leftovers of an interrupted push of this asset (version-shaped
	   keys) do not count; another asset or namespace does. */
	for (size_t i = 0; i < l.n_objects && ret == 0; i++)
		if (push_foreign(l.objects[i].key + nl + 1, false))
			ret = push_fail(c, -EEXIST,
					"cannot create '%s': it "
					"is a namespace holding '%s'",
					name, l.objects[i].key);
	for (size_t i = 0; i < l.n_prefixes && ret == 0; i++)
		if (push_foreign(l.prefixes[i] + nl + 1, true))
			ret = push_fail(c, -EEXIST,
					"cannot create '%s': it "
					"is a namespace holding '%s'",
					name, l.prefixes[i]);
	prov_listing_free(&l);
	return ret;
}

/*
 * Delete what an interrupted push of this (unlisted, so invisible)
 * version left under "<name>/<version>/", so stale files cannot mix with
 * the new ones and a file version can replace a folder leftover.
 */
int push_clear_leftovers(struct push_ctx *c, const char *name,
			 const char *version)
{
	char key[STORE_KEY_MAX];
	struct prov_listing l = {0};
	struct prov *p = store_prov(c->s);
	int ret;

	if (!prov_can_list(p))
		return 0;
	ret = snprintf(key, sizeof(key), "%s/%s/", name, version);
	if (ret < 0 || (size_t)ret >= sizeof(key))
		return push_fail(c, -ENAMETOOLONG, "name too long");
	ret = prov_list(p, key, false, &l);
	for (size_t i = 0; ret == 0 && i < l.n_objects; i++)
		ret = prov_delete(p, l.objects[i].key);
	if (ret < 0)
		push_fail(c, ret,
			  "cannot remove the leftovers of an earlier "
			  "push under %s: %s",
			  key, push_reason(ret));
	prov_listing_free(&l);
	return ret;
}

bool push_listed(const struct version_list *vl, const char *v)
{
	for (size_t i = 0; i < vl->n; i++)
		if (strcmp(vl->v[i], v) == 0)
			return true;
	return false;
}
