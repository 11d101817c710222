/*
 * test_meta - the `.meta` document and its assetfs manifest (DESIGN §2):
 * push_date forms, contents normalisation and traversal attempts, the
 * manifest's self-consistency, caps, malformed and hostile documents, and
 * the formatter's round trip.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/digest.h"
#include "resolver/meta.h"
#include "resolver/spec.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define T0 1609556645 /* 2021-01-02T03:04:05Z */
#define BS 65536      /* smallest block size: multi-block files stay small */

static int parse(const char *json, struct meta *m, char *err)
{
	err[0] = '\0';
	return meta_parse(json, strlen(json), m, err, SPEC_ERR_MAX);
}

static void hex_of(const void *data, size_t len, char out[DIGEST_HEX_LEN + 1])
{
	struct digest d;

	digest_buf(data, len, &d);
	digest_to_hex(&d, out);
}

/*
 * Append a manifest file entry for @len bytes of content (byte i is
 * (i * 7 + seed) & 255) with correct digests for blocks of @bs bytes.
 */
static void add_file(struct buf *b, const char *path, size_t len, int seed,
		     uint32_t bs)
{
	unsigned char *data = calloc(1, len ? len : 1);
	char hex[DIGEST_HEX_LEN + 1];

	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)((i * 7 + (size_t)seed) & 255);
	hex_of(data, len, hex);
	buf_printf(b,
		   "{\"path\": \"%s\", \"size\": %zu, \"sha256\": \"%s\", "
		   "\"blocks\": [",
		   path, len, hex);
	for (size_t off = 0; off < len; off += bs) {
		size_t n = len - off < bs ? len - off : bs;

		hex_of(data + off, n, hex);
		buf_printf(b, "%s\"%s\"", off ? ", " : "", hex);
	}
	buf_puts(b, "]}");
	free(data);
}

test(push_date_forms)
{
	static const struct {
		const char *date;
		int64_t sec;
		int32_t nsec;
	} t[] = {
	    {"2021-01-02T03:04:05", T0, 0},
	    {"2021-01-02T03:04:05Z", T0, 0},
	    {"2021-01-02T03:04:05.123456", T0, 123456000},
	    {"2021-01-02T03:04:05.123456Z", T0, 123456000},
	    {"2021-01-02T03:04:05.5", T0, 500000000},
	    {"2021-01-02T03:04:05.123456789", T0, 123456789},
	    {"2021-01-02T03:04:05.1234567891", T0, 123456789},
	    {"2021-01-02T03:04:05+00:00", T0, 0},
	    {"2021-01-02T05:04:05+02:00", T0, 0},
	    {"2021-01-01T21:34:05-05:30", T0, 0},
	    {"2021-01-01T21:34:05-0530", T0, 0},
	    {"2021-01-02T05:04:05.250+02:00", T0, 250000000},
	    {"2021-01-02 03:04:05", T0, 0},
	    {"2021-01-02t03:04:05z", T0, 0},
	};
	char json[256], err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(t); i++) {
		struct meta m;

		snprintf(json, sizeof(json),
			 "{\"push_date\": \"%s\", \"is_directory\": false}",
			 t[i].date);
		if (parse(json, &m, err) != 0) {
			test_fail(__FILE__, __LINE__, "'%s' rejected: %s",
				  t[i].date, err);
			continue;
		}
		if (m.push_date != t[i].sec || m.push_date_nsec != t[i].nsec)
			test_fail(__FILE__, __LINE__, "'%s' = %lld.%09d",
				  t[i].date, (long long)m.push_date,
				  m.push_date_nsec);
		CHECK(!m.is_directory);
		CHECK(m.contents == NULL && m.n_contents == 0);
		CHECK(m.manifest == NULL);
		meta_clear(&m);
	}
}

test(push_date_invalid)
{
	static const char *const bad[] = {
	    "2021-02-30T03:04:05",
	    "2021-02-29T03:04:05",
	    "2021-13-01T00:00:00",
	    "2021-01-02",
	    "2021-01-02T03:04",
	    "yesterday",
	    "",
	    "2021-01-02T03:04:05.",
	    "2021-01-02T03:04:05+25:00",
	    "2021-01-02T03:04:05+02",
	    "2021-01-02T24:00:00",
	    "2021-01-02T03:04:05Zjunk",
	    "2021-01-02T03:04:05 ",
	    "21-01-02T03:04:05",
	    "2021/01/02T03:04:05",
	};
	char json[256], err[SPEC_ERR_MAX], want[128];

	for (size_t i = 0; i < N(bad); i++) {
		struct meta m;

		snprintf(json, sizeof(json),
			 "{\"push_date\": \"%s\", \"is_directory\": false}",
			 bad[i]);
		CHECK_INT(parse(json, &m, err), -EINVAL);
		snprintf(want, sizeof(want), "invalid push_date '%s'", bad[i]);
		CHECK_STR_CONTAINS(err, want);
	}
}

test(required_fields_table)
{
	static const struct {
		const char *json, *msg;
	} bad[] = {
	    {"{\"is_directory\": false}", "\"push_date\" is missing"},
	    {"{\"push_date\": 1609556645, \"is_directory\": false}",
	     "\"push_date\" is not a string"},
	    {"{\"push_date\": null, \"is_directory\": false}",
	     "\"push_date\" is not a string"},
	    {"{\"push_date\": \"2021-01-02T03:04:05\"}",
	     "\"is_directory\" is missing"},
	    {"{\"push_date\": \"2021-01-02T03:04:05\", \"is_directory\": "
	     "\"false\"}",
	     "\"is_directory\" is not a boolean"},
	    {"{\"push_date\": \"2021-01-02T03:04:05\", \"is_directory\": 0}",
	     "\"is_directory\" is not a boolean"},
	    {"{\"push_date\": \"2021-01-02T03:04:05\", \"is_directory\": null}",
	     "\"is_directory\" is not a boolean"},
	    {"{\"push_date\": \"2021-01-02T03:04:05\", \"is_directory\": true}",
	     "folder asset without \"contents\""},
	    {"{\"push_date\": \"2021-01-02T03:04:05\", \"is_directory\": true, "
	     "\"contents\": \"a\"}",
	     "\"contents\" is not an array"},
	    {"{\"push_date\": \"2021-01-02T03:04:05\", \"is_directory\": true, "
	     "\"contents\": {}}",
	     "\"contents\" is not an array"},
	    {"{\"push_date\": \"2021-01-02T03:04:05\", \"is_directory\": true, "
	     "\"contents\": [\"a\", 3]}",
	     "\"contents\" entry 1 is not a string"},
	    {"{\"push_date\": \"2021-01-02T03:04:05\", \"is_directory\": true, "
	     "\"contents\": [null]}",
	     "\"contents\" entry 0 is not a string"},
	    /* Key names are case-sensitive. */
	    {"{\"Push_Date\": \"2021-01-02T03:04:05\", \"is_directory\": "
	     "false}",
	     "\"push_date\" is missing"},
	};
	char err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(bad); i++) {
		struct meta m = {.push_date = 42};

		CHECK_INT(parse(bad[i].json, &m, err), -EINVAL);
		CHECK_STR_CONTAINS(err, bad[i].msg);
		CHECK(m.push_date == 0 && m.contents == NULL &&
		      m.manifest == NULL);
	}
}

test(malformed_documents)
{
	static const struct {
		const char *json, *msg;
	} bad[] = {
	    {"", ".meta document is empty"},
	    {"{", "not valid JSON (at byte"},
	    {"{\"push_date\": \"2021-01-02T03:04:05\", \"is_directory\": false",
	     "not valid JSON"},
	    {"{\"push_date\": \"2021-01-02T03:04:05\" \"is_directory\": false}",
	     "not valid JSON"},
	    {"{'push_date': '2021-01-02T03:04:05'}", "not valid JSON"},
	    {"{\"push_date\": \"2021-01-02T03:04:05\", \"is_directory\": "
	     "false} {}",
	     "trailing data at byte 60"},
	    {"[]", ".meta document is not a JSON object"},
	    {"true", "not a JSON object"},
	    {"\"x\"", "not a JSON object"},
	    {"\xff\xfe{}", "not valid JSON"},
	};
	char err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(bad); i++) {
		struct meta m;

		CHECK_INT(parse(bad[i].json, &m, err), -EINVAL);
		CHECK_STR_CONTAINS(err, bad[i].msg);
	}
	/* A NUL inside the given length is not the end of the document. */
	{
		const char doc[] = "{\"push_date\": \"2021-01-02T03:04:05\", "
				   "\"is_directory\": false}\0junk";
		struct meta m;

		CHECK_INT(
		    meta_parse(doc, sizeof(doc) - 1, &m, err, sizeof(err)),
		    -EINVAL);
		CHECK_INT(
		    meta_parse(doc, sizeof(doc) - 6, &m, err, sizeof(err)), 0);
		meta_clear(&m);
	}
}

test(contents_normalised_sorted_deduped)
{
	struct meta m;
	char err[SPEC_ERR_MAX];

	CHECK_INT(
	    parse("{\"push_date\": \"2021-01-02T03:04:05.000001\", "
		  "\"is_directory\": true, \"contents\": [\"/sub/b.bin\", "
		  "\"a.json\", \"/a.json\", \"c d.txt\", \"sub/a.bin\", "
		  "\".hidden\"], \"unknown\": {\"x\": [1, 2]}}",
		  &m, err),
	    0);
	CHECK(m.is_directory);
	CHECK_INT(m.n_contents, 5);
	if (m.n_contents == 5) {
		CHECK_STR(m.contents[0], ".hidden");
		CHECK_STR(m.contents[1], "a.json");
		CHECK_STR(m.contents[2], "c d.txt");
		CHECK_STR(m.contents[3], "sub/a.bin");
		CHECK_STR(m.contents[4], "sub/b.bin");
	}
	CHECK_INT(m.push_date_nsec, 1000);
	meta_clear(&m);
	CHECK(m.contents == NULL && m.n_contents == 0);
	meta_clear(&m);
	meta_clear(NULL);

	/* An empty folder is allowed. */
	CHECK_INT(parse("{\"push_date\": \"2021-01-02T03:04:05\", "
			"\"is_directory\": true, \"contents\": []}",
			&m, err),
		  0);
	CHECK(m.is_directory);
	CHECK_INT(m.n_contents, 0);
	meta_clear(&m);
}

test(contents_traversal_rejected)
{
	static const struct {
		const char *entry, *msg;
	} bad[] = {
	    {"../etc/passwd", "invalid contents entry '../etc/passwd': segment "
			      "'..' is not allowed"},
	    {"/../x",
	     "invalid contents entry '../x': segment '..' is not allowed"},
	    {"a/../../x", "segment '..' is not allowed"},
	    {"a/..", "segment '..' is not allowed"},
	    {"..", "segment '..' is not allowed"},
	    {".", "segment '.' is not allowed"},
	    {"./a", "segment '.' is not allowed"},
	    {"a//b", "invalid contents entry 'a//b': empty segment"},
	    {"a/", "invalid contents entry 'a/': trailing '/'"},
	    {"", "invalid contents entry '': empty"},
	    {"/", "invalid contents entry '': empty"},
	    {"//etc/passwd",
	     "invalid contents entry '//etc/passwd': absolute path"},
	    {"a\\u0001b", "invalid character '\\x01'"},
	    {"a\\nb", "invalid character '\\x0a'"},
	};
	char json[512], err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(bad); i++) {
		struct meta m;

		snprintf(json, sizeof(json),
			 "{\"push_date\": \"2021-01-02T03:04:05\", "
			 "\"is_directory\": true, \"contents\": [\"ok.json\", "
			 "\"%s\"]}",
			 bad[i].entry);
		CHECK_INT(parse(json, &m, err), -EINVAL);
		CHECK_STR_CONTAINS(err, bad[i].msg);
		CHECK(m.contents == NULL);
	}
}

test(contents_file_and_dir_conflict)
{
	static const struct {
		const char *contents;
		int ret;
	} t[] = {
	    {"[\"a\", \"a/b\"]", -EINVAL},
	    {"[\"a/b\", \"a\"]", -EINVAL},
	    {"[\"a\", \"a-b\", \"a.c\", \"a/b\"]", -EINVAL},
	    {"[\"x/a\", \"x/a/b/c\"]", -EINVAL},
	    {"[\"a\", \"a-b\", \"a.c\", \"ab/c\"]", 0},
	    {"[\"a/b\", \"a/c\", \"ab\"]", 0},
	};
	char json[512], err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(t); i++) {
		struct meta m;

		snprintf(json, sizeof(json),
			 "{\"push_date\": \"2021-01-02T03:04:05\", "
			 "\"is_directory\": true, \"contents\": %s}",
			 t[i].contents);
		CHECK_INT(parse(json, &m, err), t[i].ret);
		if (t[i].ret)
			CHECK_STR_CONTAINS(err,
					   "is both a file and a directory");
		meta_clear(&m);
	}
}

test(file_asset_ignores_contents)
{
	static const char *const contents[] = {
	    "[\"a\"]",	   "[\"../../etc/passwd\"]", "\"junk\"", "42", "null",
	    "[1, {}, []]",
	};
	char json[512], err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(contents); i++) {
		struct meta m;

		snprintf(json, sizeof(json),
			 "{\"push_date\": \"2021-01-02T03:04:05\", "
			 "\"is_directory\": false, \"contents\": %s}",
			 contents[i]);
		CHECK_INT(parse(json, &m, err), 0);
		CHECK(!m.is_directory);
		CHECK(m.contents == NULL && m.n_contents == 0);
		meta_clear(&m);
	}
}

test(manifest_file_asset)
{
	struct buf b;
	struct meta m;
	const struct manifest_file *f;
	char err[SPEC_ERR_MAX];
	static const size_t sizes[] = {0, 1, BS - 1, BS, BS + 1, 3 * BS + 17};

	for (size_t i = 0; i < N(sizes); i++) {
		buf_init(&b, 0);
		buf_printf(
		    &b,
		    "{\"push_date\": \"2021-01-02T03:04:05\", "
		    "\"is_directory\": false, \"assetfs\": {\"format\": 1, "
		    "\"block_size\": %d, \"files\": [",
		    BS);
		add_file(&b, "", sizes[i], (int)i, BS);
		buf_puts(&b, "]}}");
		if (parse(b.data, &m, err) != 0) {
			test_fail(__FILE__, __LINE__, "size %zu: %s", sizes[i],
				  err);
			buf_free(&b);
			continue;
		}
		CHECK(m.manifest != NULL);
		CHECK_INT(m.manifest->format, 1);
		CHECK_INT(m.manifest->block_size, BS);
		CHECK_INT(m.manifest->n_files, 1);
		f = manifest_find(m.manifest, "");
		CHECK(f != NULL);
		if (f) {
			CHECK_INT(f->size, sizes[i]);
			CHECK_INT(f->n_blocks,
				  manifest_block_count(sizes[i], BS));
		}
		CHECK(manifest_find(m.manifest, "x") == NULL);
		meta_clear(&m);
		buf_free(&b);
	}
}

test(manifest_folder_asset_agrees_with_contents)
{
	struct buf b;
	struct meta m;
	const struct manifest_file *f;
	char err[SPEC_ERR_MAX];

	buf_init(&b, 0);
	buf_printf(&b,
		   "{\"push_date\": \"2021-01-02T03:04:05\", "
		   "\"is_directory\": true, \"contents\": [\"/sub/b.bin\", "
		   "\"a.json\", \"empty\"], \"assetfs\": {\"format\": 1, "
		   "\"block_size\": %d, \"files\": [",
		   BS);
	add_file(&b, "sub/b.bin", 5 * BS + 3, 1, BS);
	buf_puts(&b, ", ");
	add_file(&b, "/a.json", 100, 2, BS); /* a leading '/' is normalised */
	buf_puts(&b, ", ");
	add_file(&b, "empty", 0, 3, BS);
	buf_puts(&b, "]}}");
	CHECK_INT(parse(b.data, &m, err), 0);
	if (!m.manifest) {
		test_fail(__FILE__, __LINE__, "no manifest: %s", err);
		buf_free(&b);
		return;
	}
	CHECK_INT(m.manifest->n_files, 3);
	CHECK_STR(m.manifest->files[0].path, "a.json");
	CHECK_STR(m.manifest->files[1].path, "empty");
	CHECK_STR(m.manifest->files[2].path, "sub/b.bin");
	f = manifest_find(m.manifest, "sub/b.bin");
	CHECK(f && f->size == 5 * BS + 3 && f->n_blocks == 6);
	f = manifest_find(m.manifest, "empty");
	CHECK(f && f->size == 0 && f->n_blocks == 0 && f->blocks == NULL);
	CHECK(manifest_find(m.manifest, "a") == NULL);
	CHECK(manifest_find(m.manifest, "zzz") == NULL);
	CHECK(manifest_find(NULL, "a.json") == NULL);
	meta_clear(&m);
	buf_free(&b);
}

/* Copy @tmpl replacing the first "%s" with @a and later ones with @b. */
static void subst(char *out, size_t outlen, const char *tmpl, const char *a,
		  const char *b)
{
	size_t o = 0;
	int k = 0;

	for (const char *p = tmpl; *p && o + 1 < outlen; p++) {
		if (p[0] == '%' && p[1] == 's') {
			const char *r = k++ ? b : a;
			size_t rl = strlen(r);

			if (o + rl + 1 >= outlen)
				break;
			memcpy(out + o, r, rl);
			o += rl;
			p++;
			continue;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
}

/* A manifest that disagrees with itself or with contents: each a table row
 * that builds the document from parts. */
test(manifest_inconsistent_table)
{
	static const char okhex[] =
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	static const char otherhex[] =
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	static const struct {
		const char *is_dir_contents; /* after "is_directory": */
		const char *assetfs;
		const char *msg;
	} t[] = {
	    {"false", "[]", "\"assetfs\" is not an object"},
	    {"false", "\"x\"", "\"assetfs\" is not an object"},
	    {"false", "{}", "manifest \"format\" is missing"},
	    {"false", "{\"format\": 0}",
	     "\"format\" is not a positive integer"},
	    {"false", "{\"format\": \"1\"}",
	     "\"format\" is not a positive integer"},
	    {"false", "{\"format\": 1.5}",
	     "\"format\" is not a positive integer"},
	    {"false", "{\"format\": 1, \"files\": []}",
	     "manifest \"block_size\" is missing"},
	    {"false", "{\"format\": 1, \"block_size\": 100000, \"files\": []}",
	     "\"block_size\" is not a power of two in 64 KiB..64 MiB"},
	    {"false", "{\"format\": 1, \"block_size\": 32768, \"files\": []}",
	     "\"block_size\" is not a power of two"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 134217728, \"files\": []}",
	     "\"block_size\" is not a power of two"},
	    {"false", "{\"format\": 1, \"block_size\": -65536, \"files\": []}",
	     "\"block_size\" is not a power of two"},
	    {"false", "{\"format\": 1, \"block_size\": 65536}",
	     "manifest \"files\" is missing"},
	    {"false", "{\"format\": 1, \"block_size\": 65536, \"files\": {}}",
	     "manifest \"files\" is not an array"},
	    {"false", "{\"format\": 1, \"block_size\": 65536, \"files\": []}",
	     "manifest of a file asset has 0 entries, want exactly one with "
	     "path \"\""},
	    {"false", "{\"format\": 1, \"block_size\": 65536, \"files\": [3]}",
	     "manifest file 0 is not an object"},
	    {"false", "{\"format\": 1, \"block_size\": 65536, \"files\": [{}]}",
	     "manifest file 0: \"path\" is missing"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "1}]}",
	     "manifest file 0: \"path\" is not a string"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"model.json\"}]}",
	     "manifest of a file asset has path 'model.json', want \"\""},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\"}]}",
	     "manifest file '': \"size\" is missing"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": -1}]}",
	     "\"size\" is not an integer in 0..2^53"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": 1.5}]}",
	     "\"size\" is not an integer"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": \"3\"}]}",
	     "\"size\" is not an integer"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": 1e300}]}",
	     "\"size\" is not an integer"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": 0}]}",
	     "manifest file '': \"sha256\" is missing"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": 0, \"sha256\": \"abc\"}]}",
	     "\"sha256\" is not 64 hex digits"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": 0, \"sha256\": \"%s\"}]}",
	     "manifest file '': \"blocks\" is missing"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": 0, \"sha256\": \"%s\", \"blocks\": \"x\"}]}",
	     "\"blocks\" is not an array"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": 0, \"sha256\": \"%s\", \"blocks\": [\"%s\"]}]}",
	     "manifest file '': 1 blocks, want 0 for 0 bytes in blocks of "
	     "65536"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": 65537, \"sha256\": \"%s\", \"blocks\": "
	     "[\"%s\"]}]}",
	     "1 blocks, want 2 for 65537 bytes"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": 65537, \"sha256\": \"%s\", \"blocks\": [\"%s\", "
	     "7]}]}",
	     "block 1 is not 64 hex digits"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": 10, \"sha256\": \"%s\", \"blocks\": [\"%s\"]}]}",
	     "sha256 differs from its only block"},
	    {"false",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\", \"size\": 0, \"sha256\": \"%s\", \"blocks\": []}, "
	     "{\"path\": \"\", \"size\": 0, \"sha256\": \"%s\", \"blocks\": "
	     "[]}]}",
	     "manifest lists '' twice"},
	    {"true, \"contents\": [\"a\"]",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"../a\"}]}",
	     "invalid manifest path '../a': segment '..' is not allowed"},
	    {"true, \"contents\": [\"a\"]",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"\"}]}",
	     "invalid manifest path '': empty"},
	    {"true, \"contents\": [\"a\"]",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"//a\"}]}",
	     "invalid manifest path '//a': absolute path"},
	    {"true, \"contents\": [\"a\", \"b\"]",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"a\", \"size\": 0, \"sha256\": \"%s\", \"blocks\": []}]}",
	     "contents entry 'b' is missing from the manifest"},
	    {"true, \"contents\": [\"a\"]",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"a\", \"size\": 0, \"sha256\": \"%s\", \"blocks\": []}, "
	     "{\"path\": \"c\", \"size\": 0, \"sha256\": \"%s\", \"blocks\": "
	     "[]}]}",
	     "manifest lists 'c', which is not in contents"},
	    {"true, \"contents\": [\"a\"]",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"a\", \"size\": 0, \"sha256\": \"%s\", \"blocks\": []}, "
	     "{\"path\": \"/a\", \"size\": 0, \"sha256\": \"%s\", \"blocks\": "
	     "[]}]}",
	     "manifest lists 'a' twice"},
	    {"true, \"contents\": []",
	     "{\"format\": 1, \"block_size\": 65536, \"files\": [{\"path\": "
	     "\"a\", \"size\": 0, \"sha256\": \"%s\", \"blocks\": []}]}",
	     "manifest lists 'a', which is not in contents"},
	};
	char assetfs[1024], json[2048], err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(t); i++) {
		struct meta m;

		/* The first %s is the empty file's digest (another one for
		 * the "differs" row), the second another digest for the rows
		 * about blocks. */
		subst(assetfs, sizeof(assetfs), t[i].assetfs,
		      strstr(t[i].msg, "differs") ? otherhex : okhex,
		      strstr(t[i].msg, "block") &&
			      !strstr(t[i].msg, "missing") &&
			      !strstr(t[i].msg, "differs")
			  ? otherhex
			  : okhex);
		snprintf(json, sizeof(json),
			 "{\"push_date\": \"2021-01-02T03:04:05\", "
			 "\"is_directory\": %s, \"assetfs\": %s}",
			 t[i].is_dir_contents, assetfs);
		err[0] = '\0';
		if (parse(json, &m, err) != -EINVAL) {
			test_fail(__FILE__, __LINE__, "row %zu accepted: %s", i,
				  json);
			meta_clear(&m);
			continue;
		}
		if (!strstr(err, t[i].msg))
			test_fail(__FILE__, __LINE__,
				  "row %zu: \"%s\", want \"%s\"", i, err,
				  t[i].msg);
		CHECK(m.manifest == NULL && m.contents == NULL);
	}
}

test(manifest_empty_file_digest_checked)
{
	struct meta m;
	char err[SPEC_ERR_MAX];

	CHECK_INT(parse("{\"push_date\": \"2021-01-02T03:04:05\", "
			"\"is_directory\": false, \"assetfs\": {\"format\": 1, "
			"\"block_size\": 65536, \"files\": [{\"path\": \"\", "
			"\"size\": 0, \"sha256\": "
			"\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410"
			"ff61f20015ad\", "
			"\"blocks\": []}]}}",
			&m, err),
		  -EINVAL);
	CHECK_STR_CONTAINS(err, "sha256 of an empty file is wrong");
}

test(manifest_optional_forms)
{
	struct meta m;
	char err[SPEC_ERR_MAX];

	/* "assetfs": null is no manifest. */
	CHECK_INT(parse("{\"push_date\": \"2021-01-02T03:04:05\", "
			"\"is_directory\": false, \"assetfs\": null}",
			&m, err),
		  0);
	CHECK(m.manifest == NULL);
	meta_clear(&m);
	/* A newer format is read as a version without a manifest. */
	CHECK_INT(parse("{\"push_date\": \"2021-01-02T03:04:05\", "
			"\"is_directory\": false, \"assetfs\": {\"format\": 2, "
			"\"whatever\": []}}",
			&m, err),
		  0);
	CHECK(m.manifest == NULL);
	meta_clear(&m);
	/* Uppercase hex digests are accepted. */
	CHECK_INT(parse("{\"push_date\": \"2021-01-02T03:04:05\", "
			"\"is_directory\": false, \"assetfs\": {\"format\": 1, "
			"\"block_size\": 65536, \"files\": [{\"path\": \"\", "
			"\"size\": 0, \"sha256\": "
			"\"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495"
			"991B7852B855\", "
			"\"blocks\": [], \"extra\": 1}]}}",
			&m, err),
		  0);
	CHECK(m.manifest != NULL);
	meta_clear(&m);
}

test(block_count_table)
{
	static const struct {
		uint64_t size;
		uint32_t bs;
		uint64_t want;
	} t[] = {
	    {0, 4194304, 0},
	    {1, 4194304, 1},
	    {4194303, 4194304, 1},
	    {4194304, 4194304, 1},
	    {4194305, 4194304, 2},
	    {10485760, 4194304, 3},
	    {UINT64_MAX, 65536, UINT64_MAX / 65536 + 1},
	    {5, 0, 0},
	};

	for (size_t i = 0; i < N(t); i++)
		CHECK_INT(manifest_block_count(t[i].size, t[i].bs), t[i].want);
}

test(size_cap_refused_unread)
{
	struct meta m;
	char err[SPEC_ERR_MAX];
	size_t big = (size_t)META_MAX_BYTES + 1;
	char *doc = malloc(big);

	/* Not even valid JSON: refused on the length alone. */
	memset(doc, '{', big);
	CHECK_INT(meta_parse(doc, big, &m, err, sizeof(err)), -EFBIG);
	CHECK_STR_CONTAINS(
	    err,
	    ".meta document of 8388609 bytes is over the 8388608 byte cap");
	CHECK(m.contents == NULL);
	free(doc);
}

test(huge_and_deep_documents)
{
	struct buf b;
	struct meta m;
	char err[SPEC_ERR_MAX];
	size_t n = 0;

	/* A folder of 200k files, just under the cap. */
	buf_init(&b, 0);
	buf_puts(&b, "{\"push_date\": \"2021-01-02T03:04:05\", "
		     "\"is_directory\": true, \"contents\": [");
	for (size_t i = 0; b.len < 4u << 20; i++, n++)
		buf_printf(&b, "%s\"d%zu/f%zu.bin\"", i ? "," : "", i % 97, i);
	buf_puts(&b, "]}");
	CHECK_INT(meta_parse(b.data, b.len, &m, err, sizeof(err)), 0);
	CHECK_INT(m.n_contents, n);
	for (size_t i = 1; i < m.n_contents; i++) {
		if (strcmp(m.contents[i - 1], m.contents[i]) >= 0) {
			test_fail(__FILE__, __LINE__, "not sorted at %zu", i);
			break;
		}
	}
	meta_clear(&m);

	/* Deep nesting in an ignored key: an error, not a stack overflow. */
	buf_reset(&b);
	buf_puts(&b, "{\"push_date\": \"2021-01-02T03:04:05\", "
		     "\"is_directory\": false, \"x\": ");
	for (int i = 0; i < 200000; i++)
		buf_puts(&b, "[");
	for (int i = 0; i < 200000; i++)
		buf_puts(&b, "]");
	buf_puts(&b, "}");
	CHECK_INT(meta_parse(b.data, b.len, &m, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "not valid JSON");

	/* A very long string entry is refused, and the message stays short. */
	buf_reset(&b);
	buf_puts(&b, "{\"push_date\": \"2021-01-02T03:04:05\", "
		     "\"is_directory\": true, \"contents\": [\"");
	for (int i = 0; i < 100000; i++)
		buf_puts(&b, "abcdefghij");
	buf_puts(&b, "\"]}");
	CHECK_INT(meta_parse(b.data, b.len, &m, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "longer than 4096 bytes");
	CHECK(strlen(err) < SPEC_ERR_MAX);
	buf_free(&b);
}

test(format_round_trip)
{
	struct buf b, b2;
	struct meta m, back;
	char err[SPEC_ERR_MAX];

	buf_init(&b, 0);
	buf_printf(&b,
		   "{\"push_date\": \"2021-01-02T05:04:05.123456789+02:00\", "
		   "\"is_directory\": true, \"contents\": [\"/z\\\"q.bin\", "
		   "\"a\\\\b.json\", \"big\"], \"assetfs\": {\"format\": 1, "
		   "\"block_size\": %d, \"files\": [",
		   BS);
	add_file(&b, "z\\\"q.bin", 10, 1, BS);
	buf_puts(&b, ", ");
	add_file(&b, "a\\\\b.json", 0, 2, BS);
	buf_puts(&b, ", ");
	add_file(&b, "big", 2 * BS + 5, 3, BS);
	buf_puts(&b, "]}}");
	CHECK_INT(parse(b.data, &m, err), 0);
	buf_init(&b2, 0);
	CHECK_INT(meta_format(&m, &b2), 0);
	CHECK_STR_CONTAINS(b2.data,
			   "\"push_date\":\"2021-01-02T03:04:05.123456Z\"");
	CHECK_STR_CONTAINS(
	    b2.data, "\"contents\":[\"a\\\\b.json\",\"big\",\"z\\\"q.bin\"]");
	CHECK_INT(meta_parse(b2.data, b2.len, &back, err, sizeof(err)), 0);
	CHECK_INT(back.push_date, T0);
	CHECK_INT(back.push_date_nsec, 123456000);
	CHECK(back.is_directory);
	CHECK_INT(back.n_contents, 3);
	for (size_t i = 0; i < back.n_contents && i < m.n_contents; i++)
		CHECK_STR(back.contents[i], m.contents[i]);
	CHECK(back.manifest != NULL);
	if (back.manifest && m.manifest) {
		CHECK_INT(back.manifest->block_size, BS);
		CHECK_INT(back.manifest->n_files, 3);
		for (size_t i = 0; i < 3; i++) {
			const struct manifest_file *x = &m.manifest->files[i];
			const struct manifest_file *y =
			    &back.manifest->files[i];

			CHECK_STR(y->path, x->path);
			CHECK_INT(y->size, x->size);
			CHECK(digest_equal(&y->sha256, &x->sha256));
			CHECK_INT(y->n_blocks, x->n_blocks);
			for (size_t k = 0; k < x->n_blocks && k < y->n_blocks;
			     k++)
				CHECK(
				    digest_equal(&y->blocks[k], &x->blocks[k]));
		}
	}
	meta_clear(&back);
	meta_clear(&m);
	buf_free(&b2);

	/* A file asset: no contents key at all. */
	CHECK_INT(parse("{\"push_date\": \"2021-01-02T03:04:05\", "
			"\"is_directory\": false}",
			&m, err),
		  0);
	buf_init(&b2, 0);
	CHECK_INT(meta_format(&m, &b2), 0);
	CHECK_STR(b2.data, "{\"push_date\":\"2021-01-02T03:04:05.000000Z\","
			   "\"is_directory\":false}");
	buf_free(&b2);
	/* The output buffer's cap is honoured. */
	buf_init(&b2, 8);
	CHECK_INT(meta_format(&m, &b2), -EFBIG);
	buf_free(&b2);
	meta_clear(&m);
	buf_free(&b);
}

test(large_sizes_round_trip)
{
	/* Sizes past 32 bits survive parse and format exactly. */
	static const uint64_t sizes[] = {5000000000ull, 1ull << 40,
					 (1ull << 53) - 1};
	char hex[DIGEST_HEX_LEN + 1];
	struct digest d;

	memset(&d, 0xab, sizeof(d));
	digest_to_hex(&d, hex);
	for (size_t i = 0; i < N(sizes); i++) {
		uint32_t bs = MANIFEST_BLOCK_MAX;
		uint64_t nb = manifest_block_count(sizes[i], bs);
		struct buf b, b2;
		struct meta m, back;
		char err[SPEC_ERR_MAX];

		if (nb > 200000)
			continue; /* keep the document small */
		buf_init(&b, 0);
		buf_printf(
		    &b,
		    "{\"push_date\": \"2021-01-02T03:04:05\", "
		    "\"is_directory\": false, \"assetfs\": {\"format\": 1, "
		    "\"block_size\": %u, \"files\": [{\"path\": \"\", "
		    "\"size\": %llu, \"sha256\": \"%s\", \"blocks\": [",
		    bs, (unsigned long long)sizes[i], hex);
		for (uint64_t k = 0; k < nb; k++)
			buf_printf(&b, "%s\"%s\"", k ? "," : "", hex);
		buf_puts(&b, "]}]}}");
		CHECK_INT(meta_parse(b.data, b.len, &m, err, sizeof(err)), 0);
		if (!m.manifest) {
			test_fail(__FILE__, __LINE__, "size %llu: %s",
				  (unsigned long long)sizes[i], err);
			buf_free(&b);
			continue;
		}
		CHECK_INT(m.manifest->files[0].size, sizes[i]);
		buf_init(&b2, 0);
		CHECK_INT(meta_format(&m, &b2), 0);
		CHECK_INT(meta_parse(b2.data, b2.len, &back, err, sizeof(err)),
			  0);
		CHECK(back.manifest &&
		      back.manifest->files[0].size == sizes[i]);
		meta_clear(&back);
		meta_clear(&m);
		buf_free(&b);
		buf_free(&b2);
	}
}

test(format_refuses_unwritable_dates)
{
	/* Parsable, but an hour before year 0: cannot be written back as a
	 * four-digit year, so meta_format() refuses instead of writing a
	 * document meta_parse() would reject. */
	struct meta m;
	char err[SPEC_ERR_MAX];
	struct buf b;

	CHECK_INT(parse("{\"push_date\": \"0000-01-01T00:00:00+01:00\", "
			"\"is_directory\": false}",
			&m, err),
		  0);
	buf_init(&b, 0);
	CHECK_INT(meta_format(&m, &b), -EINVAL);
	CHECK_INT(b.len, 0);
	meta_clear(&m);
	CHECK_INT(parse("{\"push_date\": \"9999-12-31T23:59:59-01:00\", "
			"\"is_directory\": false}",
			&m, err),
		  0);
	CHECK_INT(meta_format(&m, &b), -EINVAL);
	meta_clear(&m);
	buf_free(&b);
}

/* Parsing from several threads at once: each gets its own result and its
 * own error message. */
static void *parse_many(void *arg)
{
	long id = (long)arg;
	long bad = 0;

	for (int i = 0; i < 300; i++) {
		char json[256], err[SPEC_ERR_MAX], want[64];
		struct meta m;
		int ret;

		if ((i + id) % 2) {
			snprintf(json, sizeof(json),
				 "{\"push_date\": \"2021-01-02T03:04:05\", "
				 "\"is_directory\": true, \"contents\": "
				 "[\"t%ld/f%d\"]}",
				 id, i);
			ret = meta_parse(json, strlen(json), &m, err,
					 sizeof(err));
			snprintf(want, sizeof(want), "t%ld/f%d", id, i);
			if (ret != 0 || m.n_contents != 1 ||
			    strcmp(m.contents[0], want) != 0)
				bad++;
			meta_clear(&m);
		} else {
			snprintf(json, sizeof(json),
				 "{\"push_date\": \"2021-01-02T03:04:05\", "
				 "\"is_directory\": true, \"contents\": "
				 "[\"t%ld/../f%d\"]}",
				 id, i);
			ret = meta_parse(json, strlen(json), &m, err,
					 sizeof(err));
			snprintf(want, sizeof(want), "'t%ld/../f%d'", id, i);
			if (ret != -EINVAL || !strstr(err, want))
				bad++;
		}
	}
	return (void *)bad;
}

test(parse_from_many_threads)
{
	pthread_t th[4];

	for (long i = 0; i < 4; i++)
		CHECK_INT(pthread_create(&th[i], NULL, parse_many, (void *)i),
			  0);
	for (int i = 0; i < 4; i++) {
		void *bad = NULL;

		pthread_join(th[i], &bad);
		CHECK_INT((long)bad, 0);
	}
}
