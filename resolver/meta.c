/*
 * meta - see meta.h.
 *
 * The document is parsed with cJSON (bounded by META_MAX_BYTES before any
 * parsing, nesting bounded by cJSON's own limit) and then copied into
 * plain C structures, checking as we go, so that a caller never sees a
 * half-valid struct meta: either every invariant in meta.h holds or the
 * result is empty and @err names the first bad part.
 *
 * Numbers: JSON numbers arrive as doubles; sizes must be integral and at
 * most 2^53 (the largest exactly representable), anything else is refused.
 */
#include "resolver/meta.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "resolver/resolver_int.h"
#include "resolver/spec.h"

#define QUOTE_BUF (RESOLVER_QUOTE_MAX * 4 + 8)
#define META_MAX_SIZE 9007199254740992.0 /* 2^53 */

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	resolver_err(err, errlen, "%s", msg);
	return ret;
}

static void quote_str(const char *s, char *out, size_t outlen)
{
	resolver_quote(s, strnlen(s, SPEC_PATH_MAX + 1), out, outlen);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_mfile(const void *a, const void *b)
{
	return strcmp(((const struct manifest_file *)a)->path,
		      ((const struct manifest_file *)b)->path);
}

/* An integral JSON number in [0, 2^53]. */
static bool get_u64(const cJSON *it, uint64_t *out)
{
	double d;

	if (!cJSON_IsNumber(it))
		return false;
	d = it->valuedouble;
	if (!(d >= 0.0 && d <= META_MAX_SIZE))
		return false;
	if ((double)(uint64_t)d != d)
		return false;
	*out = (uint64_t)d;
	return true;
}

static bool get_hex(const cJSON *it, struct digest *out)
{
	return cJSON_IsString(it) && digest_from_hex(it->valuestring, out) == 0;
}

uint64_t manifest_block_count(uint64_t size, uint32_t block_size)
{
	if (size == 0 || block_size == 0)
		return 0;
	return (size - 1) / block_size + 1;
}

static void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_files; i++) {
		free(m->files[i].path);
		free(m->files[i].blocks);
	}
	free(m->files);
	free(m);
}

void meta_clear(struct meta *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_contents; i++)
		free(m->contents[i]);
	free(m->contents);
	manifest_free(m->manifest);
	memset(m, 0, sizeof(*m));
}

const struct manifest_file *manifest_find(const struct manifest *m,
					  const char *path)
{
	size_t lo = 0, hi;

	if (!m || !path)
		return NULL;
	hi = m->n_files;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->files[mid].path, path);

		if (c == 0)
			return &m->files[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Is any entry of sorted @v (n entries) inside directory @dir, i.e. does
 * one start with "@dir/"? Binary search for the first entry >= "@dir/".
 */
static bool has_child(char *const *v, size_t n, const char *dir)
{
	size_t dl = strlen(dir), lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strncmp(v[mid], dir, dl);

		if (c == 0)
			c = (unsigned char)v[mid][dl] < '/' ? -1 : 0;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && strncmp(v[lo], dir, dl) == 0 && v[lo][dl] == '/';
}

static int parse_contents(const cJSON *arr, struct meta *m, char *err,
			  size_t errlen)
{
	char q[QUOTE_BUF];
	const cJSON *it;
	size_t n, w;
	int ret;

	if (!arr)
		return fail(err, errlen, -EINVAL,
			    "folder asset without \"contents\"");
	if (!cJSON_IsArray(arr))
		return fail(err, errlen, -EINVAL,
			    "\"contents\" is not an array");
	n = (size_t)cJSON_GetArraySize(arr);
	if (n > META_MAX_FILES)
		return fail(err, errlen, -EINVAL,
			    "\"contents\" has %zu entries, over the cap of %d",
			    n, META_MAX_FILES);
	if (n) {
		m->contents = calloc(n, sizeof(*m->contents));
		if (!m->contents)
			return fail(err, errlen, -ENOMEM, "out of memory");
	}
	cJSON_ArrayForEach(it, arr)
	{
		const char *p;

		if (m->n_contents >= n)
			break;
		if (!cJSON_IsString(it))
			return fail(err, errlen, -EINVAL,
				    "\"contents\" entry %zu is not a string",
				    m->n_contents);
		p = it->valuestring;
		if (p[0] == '/')
			p++;
		if (p[0] == '/') {
			quote_str(it->valuestring, q, sizeof(q));
			return fail(
			    err, errlen, -EINVAL,
			    "invalid contents entry '%s': absolute path", q);
		}
		ret = resolver_check_relpath(p, strnlen(p, SPEC_PATH_MAX + 1),
					     "contents entry", err, errlen);
		if (ret < 0)
			return ret;
		m->contents[m->n_contents] = strdup(p);
		if (!m->contents[m->n_contents])
			return fail(err, errlen, -ENOMEM, "out of memory");
		m->n_contents++;
	}
	if (m->n_contents > 1)
		qsort(m->contents, m->n_contents, sizeof(*m->contents),
		      cmp_str);
	w = 0;
	for (size_t i = 0; i < m->n_contents; i++) {
		if (w > 0 && strcmp(m->contents[w - 1], m->contents[i]) == 0) {
			free(m->contents[i]);
			continue;
		}
		m->contents[w++] = m->contents[i];
	}
	m->n_contents = w;
	for (size_t i = 0; i < m->n_contents; i++) {
		if (has_child(m->contents, m->n_contents, m->contents[i])) {
			quote_str(m->contents[i], q, sizeof(q));
			return fail(err, errlen, -EINVAL,
				    "contents entry '%s' is both a file and a "
				    "directory",
				    q);
		}
	}
	return 0;
}

static int parse_mfile(const cJSON *o, size_t idx, const struct manifest *mf,
		       bool is_dir, struct manifest_file *f, char *err,
		       size_t errlen)
{
	const cJSON *path, *size, *sha, *blocks, *it;
	struct digest empty;
	char q[QUOTE_BUF];
	const char *p;
	uint64_t want;
	int ret;

	if (!cJSON_IsObject(o))
		return fail(err, errlen, -EINVAL,
			    "manifest file %zu is not an object", idx);
	path = cJSON_GetObjectItemCaseSensitive(o, "path");
	size = cJSON_GetObjectItemCaseSensitive(o, "size");
	sha = cJSON_GetObjectItemCaseSensitive(o, "sha256");
	blocks = cJSON_GetObjectItemCaseSensitive(o, "blocks");
	if (!cJSON_IsString(path))
		return fail(err, errlen, -EINVAL,
			    "manifest file %zu: \"path\" %s", idx,
			    path ? "is not a string" : "is missing");
	p = path->valuestring;
	quote_str(p, q, sizeof(q));
	if (is_dir) {
		if (p[0] == '/')
			p++;
		if (p[0] == '/')
			return fail(err, errlen, -EINVAL,
				    "invalid manifest path '%s': absolute path",
				    q);
		ret = resolver_check_relpath(p, strnlen(p, SPEC_PATH_MAX + 1),
					     "manifest path", err, errlen);
		if (ret < 0)
			return ret;
	} else if (p[0] != '\0') {
		return fail(err, errlen, -EINVAL,
			    "manifest of a file asset has path '%s', want \"\"",
			    q);
	}
	f->path = strdup(p);
	if (!f->path)
		return fail(err, errlen, -ENOMEM, "out of memory");
	if (!get_u64(size, &f->size))
		return fail(
		    err, errlen, -EINVAL, "manifest file '%s': \"size\" %s", q,
		    size ? "is not an integer in 0..2^53" : "is missing");
	if (!get_hex(sha, &f->sha256))
		return fail(err, errlen, -EINVAL,
			    "manifest file '%s': \"sha256\" %s", q,
			    sha ? "is not 64 hex digits" : "is missing");
	if (!cJSON_IsArray(blocks))
		return fail(err, errlen, -EINVAL,
			    "manifest file '%s': \"blocks\" %s", q,
			    blocks ? "is not an array" : "is missing");
	want = manifest_block_count(f->size, mf->block_size);
	if ((uint64_t)cJSON_GetArraySize(blocks) != want)
		return fail(err, errlen, -EINVAL,
			    "manifest file '%s': %d blocks, want %llu for %llu "
			    "bytes in blocks of %u",
			    q, cJSON_GetArraySize(blocks),
			    (unsigned long long)want,
			    (unsigned long long)f->size, mf->block_size);
	if (want) {
		f->blocks = calloc((size_t)want, sizeof(*f->blocks));
		if (!f->blocks)
			return fail(err, errlen, -ENOMEM, "out of memory");
	}
	cJSON_ArrayForEach(it, blocks)
	{
		if (f->n_blocks >= want)
			break;
		if (!get_hex(it, &f->blocks[f->n_blocks]))
			return fail(err, errlen, -EINVAL,
				    "manifest file '%s': block %zu is not 64 "
				    "hex digits",
				    q, f->n_blocks);
		f->n_blocks++;
	}
	/* A file of one block hashes like its block; an empty one like "". */
	if (f->n_blocks == 1 && !digest_equal(&f->sha256, &f->blocks[0]))
		return fail(
		    err, errlen, -EINVAL,
		    "manifest file '%s': sha256 differs from its only block",
		    q);
	if (f->n_blocks == 0) {
		ret = digest_buf("", 0, &empty);
		if (ret < 0)
			return fail(err, errlen, ret, "out of memory");
		if (!digest_equal(&f->sha256, &empty))
			return fail(err, errlen, -EINVAL,
				    "manifest file '%s': sha256 of an empty "
				    "file is wrong",
				    q);
	}
	return 0;
}

/* Does the (sorted) manifest list exactly the (sorted) contents? */
static int check_agreement(const struct meta *m, char *err, size_t errlen)
{
	const struct manifest *mf = m->manifest;
	char q[QUOTE_BUF];
	size_t i = 0, j = 0;

	if (!m->is_directory) {
		if (mf->n_files != 1)
			return fail(err, errlen, -EINVAL,
				    "manifest of a file asset has %zu entries, "
				    "want exactly one with path \"\"",
				    mf->n_files);
		return 0;
	}
	while (i < mf->n_files || j < m->n_contents) {
		int c;

		if (i == mf->n_files)
			c = 1;
		else if (j == m->n_contents)
			c = -1;
		else
			c = strcmp(mf->files[i].path, m->contents[j]);
		if (c < 0) {
			quote_str(mf->files[i].path, q, sizeof(q));
			return fail(
			    err, errlen, -EINVAL,
			    "manifest lists '%s', which is not in contents", q);
		}
		if (c > 0) {
			quote_str(m->contents[j], q, sizeof(q));
			return fail(
			    err, errlen, -EINVAL,
			    "contents entry '%s' is missing from the manifest",
			    q);
		}
		i++;
		j++;
	}
	return 0;
}

static int parse_manifest(const cJSON *o, struct meta *m, char *err,
			  size_t errlen)
{
	const cJSON *fmt, *bs, *files, *it;
	struct manifest *mf;
	uint64_t v;
	size_t n;
	int ret;

	if (!cJSON_IsObject(o))
		return fail(err, errlen, -EINVAL,
			    "\"assetfs\" is not an object");
	fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
	if (!get_u64(fmt, &v) || v < 1)
		return fail(err, errlen, -EINVAL, "manifest \"format\" %s",
			    fmt ? "is not a positive integer" : "is missing");
	if (v > MANIFEST_FORMAT)
		return 0; /* a newer format: read the version as unmanifested */
	bs = cJSON_GetObjectItemCaseSensitive(o, "block_size");
	if (!get_u64(bs, &v) || v < MANIFEST_BLOCK_MIN ||
	    v > MANIFEST_BLOCK_MAX || (v & (v - 1)))
		return fail(err, errlen, -EINVAL, "manifest \"block_size\" %s",
			    bs ? "is not a power of two in 64 KiB..64 MiB"
			       : "is missing");
	files = cJSON_GetObjectItemCaseSensitive(o, "files");
	if (!cJSON_IsArray(files))
		return fail(err, errlen, -EINVAL, "manifest \"files\" %s",
			    files ? "is not an array" : "is missing");
	n = (size_t)cJSON_GetArraySize(files);
	if (n > META_MAX_FILES)
		return fail(err, errlen, -EINVAL,
			    "manifest has %zu files, over the cap of %d", n,
			    META_MAX_FILES);
	mf = calloc(1, sizeof(*mf));
	if (!mf)
		return fail(err, errlen, -ENOMEM, "out of memory");
	m->manifest = mf;
	mf->format = MANIFEST_FORMAT;
	mf->block_size = (uint32_t)v;
	if (n) {
		mf->files = calloc(n, sizeof(*mf->files));
		if (!mf->files)
			return fail(err, errlen, -ENOMEM, "out of memory");
	}
	cJSON_ArrayForEach(it, files)
	{
		if (mf->n_files >= n)
			break;
		/* Count the entry first so meta_clear() frees its parts. */
		mf->n_files++;
		ret = parse_mfile(it, mf->n_files - 1, mf, m->is_directory,
				  &mf->files[mf->n_files - 1], err, errlen);
		if (ret < 0)
			return ret;
	}
	if (mf->n_files > 1)
		qsort(mf->files, mf->n_files, sizeof(*mf->files), cmp_mfile);
	for (size_t i = 1; i < mf->n_files; i++) {
		if (strcmp(mf->files[i - 1].path, mf->files[i].path) == 0) {
			char q[QUOTE_BUF];

			quote_str(mf->files[i].path, q, sizeof(q));
			return fail(err, errlen, -EINVAL,
				    "manifest lists '%s' twice", q);
		}
	}
	return check_agreement(m, err, errlen);
}

int meta_parse(const char *json, size_t len, struct meta *out, char *err,
	       size_t errlen)
{
	const cJSON *pd, *isdir, *contents, *af;
	char q[QUOTE_BUF];
	cJSON *root = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	if (len > META_MAX_BYTES)
		return fail(
		    err, errlen, -EFBIG,
		    ".meta document of %zu bytes is over the %u byte cap", len,
		    META_MAX_BYTES);
	ret = resolver_json_parse(json, len, ".meta document", &root, err,
				  errlen);
	if (ret < 0)
		return ret;
	if (!cJSON_IsObject(root)) {
		ret = fail(err, errlen, -EINVAL,
			   ".meta document is not a JSON object");
		goto out;
	}
	pd = cJSON_GetObjectItemCaseSensitive(root, "push_date");
	if (!cJSON_IsString(pd)) {
		ret = fail(err, errlen, -EINVAL, "\"push_date\" %s",
			   pd ? "is not a string" : "is missing");
		goto out;
	}
	if (time_parse_iso8601(pd->valuestring, &out->push_date,
			       &out->push_date_nsec) < 0) {
		quote_str(pd->valuestring, q, sizeof(q));
		ret = fail(err, errlen, -EINVAL,
			   "invalid push_date '%s': not an ISO-8601 date-time",
			   q);
		goto out;
	}
	isdir = cJSON_GetObjectItemCaseSensitive(root, "is_directory");
	if (!cJSON_IsBool(isdir)) {
		ret = fail(err, errlen, -EINVAL, "\"is_directory\" %s",
			   isdir ? "is not a boolean" : "is missing");
		goto out;
	}
	out->is_directory = cJSON_IsTrue(isdir);
	if (out->is_directory) {
		contents = cJSON_GetObjectItemCaseSensitive(root, "contents");
		ret = parse_contents(contents, out, err, errlen);
		if (ret < 0)
			goto out;
	}
	af = cJSON_GetObjectItemCaseSensitive(root, "assetfs");
	if (af && !cJSON_IsNull(af)) {
		ret = parse_manifest(af, out, err, errlen);
		if (ret < 0)
			goto out;
	}
	ret = 0;
out:
	cJSON_Delete(root);
	if (ret < 0)
		meta_clear(out);
	return ret;
}

static cJSON *format_manifest(const struct manifest *mf)
{
	cJSON *o, *files, *f, *blocks;
	char hex[DIGEST_HEX_LEN + 1];

	o = cJSON_CreateObject();
	if (!o)
		return NULL;
	if (!cJSON_AddNumberToObject(o, "format", mf->format) ||
	    !cJSON_AddNumberToObject(o, "block_size", mf->block_size))
		goto fail;
	files = cJSON_AddArrayToObject(o, "files");
	if (!files)
		goto fail;
	for (size_t i = 0; i < mf->n_files; i++) {
		const struct manifest_file *mfi = &mf->files[i];

		f = cJSON_CreateObject();
		if (!f)
			goto fail;
		cJSON_AddItemToArray(files, f);
		digest_to_hex(&mfi->sha256, hex);
		if (!cJSON_AddStringToObject(f, "path", mfi->path) ||
		    !cJSON_AddNumberToObject(f, "size", (double)mfi->size) ||
		    !cJSON_AddStringToObject(f, "sha256", hex))
			goto fail;
		blocks = cJSON_AddArrayToObject(f, "blocks");
		if (!blocks)
			goto fail;
		for (size_t b = 0; b < mfi->n_blocks; b++) {
			cJSON *s;

			digest_to_hex(&mfi->blocks[b], hex);
			s = cJSON_CreateString(hex);
			if (!s)
				goto fail;
			cJSON_AddItemToArray(blocks, s);
		}
	}
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

int meta_format(const struct meta *m, struct buf *out)
{
	char date[64];
	cJSON *root = NULL, *arr, *mf;
	char *text = NULL;
	int ret = -ENOMEM;

	if (time_format_iso8601(m->push_date, m->push_date_nsec, date,
				sizeof(date)) < 0)
		return -EINVAL;
	root = cJSON_CreateObject();
	if (!root)
		goto out;
	if (!cJSON_AddStringToObject(root, "push_date", date) ||
	    !cJSON_AddBoolToObject(root, "is_directory", m->is_directory))
		goto out;
	if (m->is_directory) {
		arr = cJSON_AddArrayToObject(root, "contents");
		if (!arr)
			goto out;
		for (size_t i = 0; i < m->n_contents; i++) {
			cJSON *s = cJSON_CreateString(m->contents[i]);

			if (!s)
				goto out;
			cJSON_AddItemToArray(arr, s);
		}
	}
	if (m->manifest) {
		mf = format_manifest(m->manifest);
		if (!mf)
			goto out;
		cJSON_AddItemToObject(root, "assetfs", mf);
	}
	text = cJSON_PrintUnformatted(root);
	if (!text)
		goto out;
	ret = buf_puts(out, text);
out:
	free(text);
	cJSON_Delete(root);
	return ret;
}
