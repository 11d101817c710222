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
 */
#include "fs/cli/push.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/sha256_mb.h"
#include "common/timeutil.h"
#include "resolver/assets_index.h"
#include "resolver/meta.h"
#include "resolver/version.h"

struct push_file {
	char *rel;  /* relpath in the asset, "" for a file asset */
	char *path; /* local path */
	uint64_t size;
	struct timespec mtime;
};

struct push_ctx {
	struct store *s;
	struct push_file *files;
	size_t n_files, cap_files;
	uint64_t total;
	char **written; /* keys written so far (for cleanup) */
	size_t n_written, cap_written;
	struct progress prog;
	uint64_t base; /* bytes of the files already uploaded */
	char *err;
	size_t errlen;
};

static int push_fail(struct push_ctx *c, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int push_fail(struct push_ctx *c, int ret, const char *fmt, ...)
{
	va_list ap;

	if (c->err && c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static const char *push_reason(int ret)
{
	const char *m = prov_last_error();

	return (m && *m) ? m : strerror(-ret);
}

static int push_add_file(struct push_ctx *c, const char *rel, const char *path,
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

/*
 * Hashing reads PUSH_HASH_GROUP blocks at a time into one half of a buffer
 * of PUSH_HASH_BUF_SIZE bytes (allocated once per push) and hashes them
 * with one sha256_mb() call, while a second thread feeds the other half,
 * read just before, to the whole-file hasher. That serial hash is the
 * critical path; reading and block hashing hide behind it. 2 x 8 blocks
 * keep the buffer at 64 MiB (8 messages fill the AVX2 lanes).
 */
#define PUSH_HASH_GROUP 8
#define PUSH_HASH_BUF_SIZE (2 * PUSH_HASH_GROUP * (size_t)MANIFEST_BLOCK_SIZE)

/* The whole-file hash, fed one group at a time on its own thread. */
struct push_file_hash {
	struct hasher *h;
	const char *data; /* borrowed: a half of the hash buffer */
	size_t len;
	pthread_t thread;
	bool running; /* thread started and not yet joined */
};

static void *push_file_hash_main(void *arg)
{
	struct push_file_hash *fh = arg;

	hasher_update(fh->h, fh->data, fh->len);
	return NULL;
}

/*
 * Feed @len bytes at @data to the file hash, on a thread when one can be
 * started (else inline). The previous group must be done (see _wait).
 */
static void push_file_hash_start(struct push_file_hash *fh, const char *data,
				 size_t len)
{
	fh->data = data;
	fh->len = len;
	fh->running = pthread_create(&fh->thread, NULL, push_file_hash_main,
				     fh) == 0;
	if (!fh->running)
		hasher_update(fh->h, data, len);
}

/* Wait until the group given to the file hash is hashed. */
static void push_file_hash_wait(struct push_file_hash *fh)
{
	if (fh->running) {
		pthread_join(fh->thread, NULL);
		fh->running = false;
	}
}

/*
 * Hash @f into @mf: every MANIFEST_BLOCK_SIZE block and the whole file.
 * @buf (borrowed) holds PUSH_HASH_BUF_SIZE bytes.
 */
static int push_hash(struct push_ctx *c, const struct push_file *f,
		     struct manifest_file *mf, char *buf)
{
	struct push_file_hash fh = {0};
	uint64_t n_blocks, off = 0;
	unsigned half = 0;
	int fd = -1, ret = 0;

	mf->path = strdup(f->rel);
	n_blocks = manifest_block_count(f->size, MANIFEST_BLOCK_SIZE);
	mf->blocks = calloc(n_blocks ? n_blocks : 1, sizeof(*mf->blocks));
	fh.h = hasher_new();
	if (!mf->path || !mf->blocks || !fh.h) {
		ret = push_fail(c, -ENOMEM, "out of memory");
		goto out;
	}
	mf->size = f->size;
	mf->n_blocks = n_blocks;
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		push_fail(c, ret, "cannot read %s: %s", f->path,
			  strerror(-ret));
		goto out;
	}
	for (uint64_t i = 0; i < n_blocks;) {
		char *group = buf + half * PUSH_HASH_BUF_SIZE / 2;
		const void *data[PUSH_HASH_GROUP];
		size_t len[PUSH_HASH_GROUP], n, want = 0;
		ssize_t got;

		n = n_blocks - i < PUSH_HASH_GROUP ? (size_t)(n_blocks - i)
						   : PUSH_HASH_GROUP;
		for (size_t j = 0; j < n; j++) {
			uint64_t left = f->size - off - want;

			len[j] = left < MANIFEST_BLOCK_SIZE
				     ? (size_t)left
				     : MANIFEST_BLOCK_SIZE;
			data[j] = group + want;
			want += len[j];
		}
		/* the file hash may still read the other half, not this one */
		got = pread_all(fd, group, want, (off_t)off);
		if (got < 0 || (size_t)got != want) {
			ret = got < 0 ? (int)got : -EIO;
			push_fail(c, ret, "cannot read %s: %s", f->path,
				  got < 0 ? strerror(-ret)
					  : "the file shrank while pushing");
			goto out;
		}
		ret = sha256_mb(n, data, len, &mf->blocks[i]);
		if (ret < 0) {
			push_fail(c, ret, "hashing %s failed", f->path);
			goto out;
		}
		push_file_hash_wait(&fh);
		/* one block: the file's digest is the block's */
		if (n_blocks > 1)
			push_file_hash_start(&fh, group, want);
		i += n;
		off += want;
		half ^= 1;
		c->base += want;
		progress_update(&c->prog, c->base);
	}
	push_file_hash_wait(&fh);
	if (n_blocks == 1) {
		mf->sha256 = mf->blocks[0];
	} else {
		ret = hasher_final(fh.h, &mf->sha256);
		if (ret < 0)
			push_fail(c, ret, "hashing %s failed", f->path);
	}
out:
	push_file_hash_wait(&fh); /* it reads @buf */
	if (fd >= 0)
		close(fd);
	hasher_free(fh.h);
	return ret;
}

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
 * Build the .meta of the new version: push_date now, contents for a
 * folder, and the manifest (hashing every file).
 */
static int push_build_meta(struct push_ctx *c, bool is_dir, struct meta *m)
{
	struct manifest *mf = NULL;
	char *buf = NULL;
	int ret = 0;

	memset(m, 0, sizeof(*m));
	time_now(&m->push_date, &m->push_date_nsec);
	m->is_directory = is_dir;
	mf = calloc(1, sizeof(*mf));
	/* pages are touched only as reads fill them: small pushes stay small */
	buf = malloc(PUSH_HASH_BUF_SIZE);
	if (!mf || !buf) {
		free(mf);
		ret = push_fail(c, -ENOMEM, "out of memory");
		goto out;
	}
	m->manifest = mf;
	mf->format = MANIFEST_FORMAT;
	mf->block_size = MANIFEST_BLOCK_SIZE;
	mf->files = calloc(c->n_files, sizeof(*mf->files));
	if (is_dir)
		m->contents = calloc(c->n_files, sizeof(*m->contents));
	if (!mf->files || (is_dir && !m->contents)) {
		ret = push_fail(c, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c->n_files; i++) {
		mf->n_files++; /* counted first so meta_clear frees it */
		ret = push_hash(c, &c->files[i], &mf->files[i], buf);
		if (ret < 0)
			goto out;
		if (is_dir) {
			m->contents[i] = strdup(c->files[i].rel);
			if (!m->contents[i]) {
				ret = push_fail(c, -ENOMEM, "out of memory");
				goto out;
			}
			m->n_contents++;
		}
	}
out:
	free(buf);
	if (ret < 0)
		meta_clear(m);
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

/*
 * The version list of @name as it is now (empty if the asset is new),
 * under the store's system or, for a new asset with an explicit @want,
 * the system @want belongs to.
 */
static int push_read_versions(struct push_ctx *c, const char *name,
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
static int push_check_placement(struct push_ctx *c, const char *name)
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
static int push_clear_leftovers(struct push_ctx *c, const char *name,
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

static bool push_listed(const struct version_list *vl, const char *v)
{
	for (size_t i = 0; i < vl->n; i++)
		if (strcmp(vl->v[i], v) == 0)
			return true;
	return false;
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
		ret = push_walk(&c, path, "", 0);
		if (ret < 0)
			goto out;
		if (c.n_files == 0) {
			ret = push_fail(&c, -EINVAL,
					"cannot push %s: the "
					"folder has no files (dotfiles are "
					"skipped)",
					path);
			goto out;
		}
		qsort(c.files, c.n_files, sizeof(*c.files), push_cmp_file);
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
	ret = store_key_meta(spec.name, version, key, sizeof(key));
	if (ret >= 0)
		ret = push_record(&c, key);
	if (ret < 0) {
		push_fail(&c, ret, "out of memory");
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
	ret = prov_put_buf(store_prov(s), key, doc.data, doc.len);
	if (ret < 0) {
		push_fail(&c, ret, "cannot write %s: %s", key,
			  push_reason(ret));
		goto out;
	}
	/* The signature before .versions: no listed version lacks it. */
	if (opts->sign) {
		ret = store_key_sig(spec.name, version, key, sizeof(key));
		if (ret >= 0)
			ret = push_record(&c, key);
		if (ret < 0) {
			push_fail(&c, ret, "out of memory");
			goto out;
		}
		ret = prov_put_buf(store_prov(s), key, sig, sizeof(sig));
		if (ret < 0) {
			push_fail(&c, ret, "cannot write %s: %s", key,
				  push_reason(ret));
			goto out;
		}
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
	ret = prov_put_buf(store_prov(s), key, doc.data, doc.len);
	if (ret < 0) {
		push_fail(&c, ret, "cannot write %s: %s", key,
			  push_reason(ret));
		goto out;
	}
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
