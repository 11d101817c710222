/*
 * push - see push.h.
 *
 * The push runs in phases: plan (parse the spec, walk PATH, read the
 * version list, pick the version), hash (SHA-256 of every block and file:
 * the manifest), upload (data objects, then .meta, then .meta.sig when
 * signing), publish (.versions),
 * index (assets.index). Everything written before publishing is recorded
 * in ctx->written and deleted if a later step fails, so a failed push
 * leaves no object behind that any listing would show. A source file that
 * changes between hashing and uploading (size or mtime) fails the push:
 * the manifest would not describe what was uploaded.
 *
 * This file runs the upload/commit sequence; push_plan.c plans the push,
 * push_hash.c builds the manifest (see push_int.h).
 */
#include "fs/cli/push.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "fs/cli/push_int.h"
#include "resolver/assets_index.h"

static int push_record(struct push_ctx *c, const char *key)
{
	if (c->n_written == c->cap_written) {
		size_t nc = c->cap_written ? c->cap_written * 2 : 32;
		char **v = realloc(c->written, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->written = v;
		c->cap_written = nc;
	}
	c->written[c->n_written] = strdup(key);
	if (!c->written[c->n_written])
		return -ENOMEM;
	c->n_written++;
	return 0;
}

/* Delete what this push wrote, newest first (the .meta before data). */
static void push_cleanup(struct push_ctx *c)
{
	for (size_t i = c->n_written; i-- > 0;) {
		if (prov_delete(store_prov(c->s), c->written[i]) < 0)
			log_warn("push: could not remove %s: %s", c->written[i],
				 prov_last_error());
	}
}

static void push_progress(void *arg, uint64_t done, uint64_t total)
{
	struct push_ctx *c = arg;

	(void)total;
	progress_update(&c->prog, c->base + done);
}

static bool push_same_file(const struct stat *st, const struct push_file *f)
{
	return (uint64_t)st->st_size == f->size &&
	       st->st_mtim.tv_sec == f->mtime.tv_sec &&
	       st->st_mtim.tv_nsec == f->mtime.tv_nsec;
}

static int push_upload(struct push_ctx *c, const struct push_file *f,
		       const char *name, const char *version)
{
	char key[STORE_KEY_MAX];
	struct stat st;
	int fd = -1, ret;

	ret = store_key_file(name, version, f->rel, key, sizeof(key));
	if (ret < 0)
		return push_fail(c, ret, "object key too long for %s", f->path);
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		return push_fail(c, ret, "cannot read %s: %s", f->path,
				 strerror(-ret));
	}
	if (fstat(fd, &st) < 0 || !push_same_file(&st, f)) {
		ret =
		    push_fail(c, -EAGAIN, "%s changed while pushing", f->path);
		goto out;
	}
	ret = push_record(c, key);
	if (ret < 0) {
		push_fail(c, ret, "out of memory");
		goto out;
	}
	ret =
	    prov_put_file(store_prov(c->s), key, fd, f->size, push_progress, c);
	if (ret < 0) {
		push_fail(c, ret, "cannot write %s: %s", key, push_reason(ret));
		goto out;
	}
	if (fstat(fd, &st) < 0 || !push_same_file(&st, f))
		ret =
		    push_fail(c, -EAGAIN, "%s changed while pushing", f->path);
out:
	close(fd);
	return ret;
}

/*
 * Write a small document @data to @key, recorded for the cleanup when
 * @record (everything before .versions). Returns 0 or a negative errno
 * with the message set.
 */
static int push_put_doc(struct push_ctx *c, const char *key, const void *data,
			size_t len, bool record)
{
	int ret;

	if (record && push_record(c, key) < 0)
		return push_fail(c, -ENOMEM, "out of memory");
	ret = prov_put_buf(store_prov(c->s), key, data, len);
	if (ret < 0)
		push_fail(c, ret, "cannot write %s: %s", key, push_reason(ret));
	return ret;
}

/* Add @name to assets.index unless it is there. */
static void push_update_index(struct push_ctx *c, const char *name,
			      struct push_result *res)
{
	struct assets_index ix = {0};
	char err[STORE_ERR_MAX / 2];
	int ret;

	ret = store_read_index(c->s, &ix, err, sizeof(err));
	if (ret == -ENOENT) {
		memset(&ix, 0, sizeof(ix));
		ret = 0;
	}
	if (ret < 0)
		goto fail;
	for (size_t i = 0; i < ix.n; i++)
		if (strcmp(ix.names[i], name) == 0)
			goto out;
	ret = assets_index_add(&ix, name);
	if (ret < 0) {
		snprintf(err, sizeof(err), "adding '%s': %s", name,
			 strerror(-ret));
		goto fail;
	}
	ret = store_write_index(c->s, &ix, err, sizeof(err));
	if (ret < 0)
		goto fail;
	res->index_updated = true;
	goto out;
fail:
	snprintf(res->warning, sizeof(res->warning),
		 "pushed, but " STORE_INDEX_KEY " was not updated (%s); run "
		 "`assetfs index`",
		 err);
out:
	assets_index_clear(&ix);
}

int push_asset(struct store *s, const char *path, const char *spec_text,
	       const struct push_opts *opts, struct push_result *res, char *err,
	       size_t errlen)
{
	static const struct push_opts defaults = {0};
	struct push_ctx c = {.s = s, .err = err, .errlen = errlen};
	struct version_list vl = {0}, fresh = {0};
	struct push_result dummy;
	struct spec spec = {0};
	struct meta m = {0};
	struct buf doc;
	char version[SPEC_VERSION_MAX + 1], key[STORE_KEY_MAX];
	char label[PROGRESS_LABEL_MAX];
	uint8_t sig[SIGN_SIG_LEN];
	struct stat st;
	bool is_dir, is_new, published = false;
	int ret;

	if (!opts)
		opts = &defaults;
	if (!res)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	buf_init(&doc, 0);
	if (opts->sign && !sign_key_is_private(opts->sign)) {
		ret = push_fail(&c, -EINVAL,
				"cannot sign with %s: it is a public key "
				"(sign with the private key keygen made)",
				sign_key_name(opts->sign));
		goto out;
	}

	/* Plan. */
	ret = spec_parse(spec_text, &spec, err, errlen);
	if (ret < 0)
		goto out;
	if (spec.sub) {
		ret = push_fail(&c, -EINVAL,
				"cannot push to '%s': a push "
				"spec names an asset and optionally a version, "
				"not a [file]",
				spec_text);
		goto out;
	}
	if (stat(path, &st) < 0) {
		ret = -errno;
		push_fail(&c, ret, "cannot push %s: %s", path, strerror(-ret));
		goto out;
	}
	is_dir = S_ISDIR(st.st_mode);
	if (is_dir) {
		ret = push_collect(&c, path);
		if (ret < 0)
			goto out;
	} else if (S_ISREG(st.st_mode)) {
		ret = push_add_file(&c, "", path, &st);
		if (ret < 0)
			goto out;
	} else {
		ret = push_fail(&c, -EINVAL,
				"cannot push %s: not a file or "
				"folder",
				path);
		goto out;
	}

	/* A file store's new prefix is created now (not in a dry run). */
	if (!opts->dry_run) {
		ret = prov_prepare_put(store_prov(s));
		if (ret < 0 && ret != -EROFS) {
			push_fail(&c, ret, "%s", push_reason(ret));
			goto out;
		}
	}
	ret = push_read_versions(&c, spec.name, spec.version, &vl, &is_new);
	if (ret < 0)
		goto out;
	if (is_new) {
		ret = push_check_placement(&c, spec.name);
		if (ret < 0)
			goto out;
	}
	if (spec.version) {
		if (!version_valid(vl.sys, spec.version)) {
			ret = push_fail(&c, -EINVAL,
					"invalid version '%s' "
					"for %s versioning%s",
					spec.version, versioning_name(vl.sys),
					vl.sys == VERSIONING_MAJOR_MINOR
					    ? " (expected MAJOR.MINOR)"
					    : "");
			goto out;
		}
		if (opts->bump_major) {
			ret = push_fail(&c, -EINVAL,
					"--bump-major and an "
					"explicit version ('%s') conflict",
					spec.version);
			goto out;
		}
		snprintf(version, sizeof(version), "%s", spec.version);
	} else {
		ret = version_next(&vl, opts->bump_major, version,
				   sizeof(version));
		if (ret < 0) {
			push_fail(&c, ret,
				  "cannot pick the next version of "
				  "'%s': %s",
				  spec.name, strerror(-ret));
			goto out;
		}
	}
	if (push_listed(&vl, version)) {
		ret = push_fail(&c, -EEXIST,
				"version '%s' of '%s' already "
				"exists; versions are immutable",
				version, spec.name);
		goto out;
	}
	snprintf(res->name, sizeof(res->name), "%s", spec.name);
	snprintf(res->version, sizeof(res->version), "%s", version);
	res->is_directory = is_dir;
	res->is_signed = opts->sign != NULL;
	res->n_files = c.n_files;
	res->bytes = c.total;
	if (opts->dry_run) {
		ret = 0;
		goto out;
	}
	if (!prov_can_put(store_prov(s))) {
		ret = push_fail(&c, -EROFS,
				"cannot push to %s: the store is "
				"read-only",
				prov_url(store_prov(s)));
		goto out;
	}

	/* Hash (the manifest), then upload data and .meta. */
	snprintf(label, sizeof(label), "hashing %.36s:%.18s", spec.name,
		 version);
	progress_init(&c.prog, label, c.total,
		      opts->progress ? PUSH_PROGRESS_MIN : UINT64_MAX);
	ret = push_build_meta(&c, is_dir, &m);
	if (ret < 0)
		goto out;
	progress_finish(&c.prog);
	c.base = 0;
	snprintf(label, sizeof(label), "pushing %.36s:%.18s", spec.name,
		 version);
	progress_init(&c.prog, label, c.total,
		      opts->progress ? PUSH_PROGRESS_MIN : UINT64_MAX);
	ret = push_clear_leftovers(&c, spec.name, version);
	if (ret < 0)
		goto out;
	for (size_t i = 0; i < c.n_files; i++) {
		ret = push_upload(&c, &c.files[i], spec.name, version);
		if (ret < 0)
			goto out;
		c.base += c.files[i].size;
		progress_update(&c.prog, c.base);
	}
	ret = meta_format(&m, &doc);
	if (ret < 0) {
		push_fail(&c, ret, "formatting the .meta failed");
		goto out;
	}
	if (opts->sign) {
		ret = sign_bytes(opts->sign, doc.data, doc.len, sig);
		if (ret < 0) {
			push_fail(&c, ret, "signing the .meta with %s failed",
				  sign_key_name(opts->sign));
			goto out;
		}
	}
	ret = store_key_meta(spec.name, version, key, sizeof(key));
	if (ret < 0)
		push_fail(&c, ret, "object key too long for %s", spec.name);
	else
		ret = push_put_doc(&c, key, doc.data, doc.len, true);
	if (ret < 0)
		goto out;
	/* The signature before .versions: no listed version lacks it. */
	if (opts->sign) {
		ret = store_key_sig(spec.name, version, key, sizeof(key));
		if (ret < 0)
			push_fail(&c, ret, "object key too long for %s",
				  spec.name);
		else
			ret = push_put_doc(&c, key, sig, sizeof(sig), true);
		if (ret < 0)
			goto out;
	}

	/* Publish: re-read the list (someone may have pushed meanwhile). */
	ret = push_read_versions(&c, spec.name, spec.version, &fresh, &is_new);
	if (ret < 0)
		goto out;
	if (push_listed(&fresh, version)) {
		ret = push_fail(&c, -EEXIST,
				"version '%s' of '%s' was "
				"pushed by someone else meanwhile",
				version, spec.name);
		goto out;
	}
	if (fresh.n_invalid)
		log_warn("push: dropping %zu invalid entries of %s.versions",
			 fresh.n_invalid, spec.name);
	ret = version_list_add(&fresh, version);
	if (ret < 0) {
		push_fail(&c, ret, "out of memory");
		goto out;
	}
	buf_reset(&doc);
	ret = versions_format(&fresh, &doc);
	if (ret >= 0)
		ret = store_key_versions(spec.name, key, sizeof(key));
	if (ret < 0) {
		push_fail(&c, ret, "formatting the version list failed");
		goto out;
	}
	ret = push_put_doc(&c, key, doc.data, doc.len, false);
	if (ret < 0)
		goto out;
	published = true;
	progress_finish(&c.prog);
	push_update_index(&c, spec.name, res);
	ret = 0;
out:
	if (ret < 0) {
		progress_abort(&c.prog);
		if (!published)
			push_cleanup(&c);
	}
	for (size_t i = 0; i < c.n_files; i++) {
		free(c.files[i].rel);
		free(c.files[i].path);
	}
	free(c.files);
	for (size_t i = 0; i < c.n_written; i++)
		free(c.written[i]);
	free(c.written);
	buf_free(&doc);
	meta_clear(&m);
	version_list_clear(&vl);
	version_list_clear(&fresh);
	spec_clear(&spec);
	return ret;
}
