/*
 * test_fuzz_replay - runs the libFuzzer targets of tests/fuzz/ inside the
 * normal unit test run, so every build (and the ASan/UBSan one) exercises
 * the parsers on hostile input even without clang.
 *
 * Each target is compiled into this program under its own entry point
 * name, with FUZZ_CHECK reporting a test failure. Each test feeds the
 * target every file of tests/fuzz/corpus/<name>/ and then a few thousand
 * deterministic mutations of them (bit flips, interesting bytes, JSON and
 * path tokens, deletions, duplications, splices), seeded so that a failure
 * reproduces: run ./test_fuzz_replay NAME. FUZZ_REPLAY_ITERS in the
 * environment changes the number of mutations.
 *
 * The corpus is found from the source path the compiler saw (__FILE__),
 * relative to the build directory three levels above this executable, or
 * from ASSETFS_FUZZ_CORPUS.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fileutil.h"
#include "test.h"

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			test_fail(__FILE__, __LINE__, "invariant: %s", #cond); \
	} while (0)

#define FUZZ_ENTRY fuzz_spec_entry
#include "tests/fuzz/fuzz_spec.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_versions_entry
#include "tests/fuzz/fuzz_versions.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_meta_entry
#include "tests/fuzz/fuzz_meta.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_assets_index_entry
#include "tests/fuzz/fuzz_assets_index.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_xml_entry
#include "tests/fuzz/fuzz_xml.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_pyframe_entry
#include "tests/fuzz/fuzz_pyframe.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_infer_entry
#include "tests/fuzz/fuzz_infer.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_level_entry
#include "tests/fuzz/fuzz_level.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_objinfo_entry
#include "tests/fuzz/fuzz_objinfo.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_pins_entry
#include "tests/fuzz/fuzz_pins.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_handover_entry
#include "tests/fuzz/fuzz_handover.c"
#undef FUZZ_ENTRY
#ifdef HAVE_GRPC
#define FUZZ_ENTRY fuzz_grpc_entry
#include "tests/fuzz/fuzz_grpc.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_h2grpc_entry
#include "tests/fuzz/fuzz_h2grpc.c"
#undef FUZZ_ENTRY
#endif

#define REPLAY_MAX_INPUT (256u << 10)
#define REPLAY_MAX_FILES 256
#define REPLAY_ITERS 3000

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

struct corpus {
	struct buf files[REPLAY_MAX_FILES];
	size_t n;
};

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic, good enough to pick mutations. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static size_t rng_below(size_t n)
{
	return n ? (size_t)(rng() % n) : 0;
}

/* Format a path; false if it was cut. */
static bool path_fmt(char *out, size_t len, const char *a, const char *b,
		     const char *c)
{
	int n = snprintf(out, len, "%s%s%s%s%s", a, b ? "/" : "", b ? b : "",
			 c ? "/" : "", c ? c : "");

	return n > 0 && (size_t)n < len && access(out, R_OK) == 0;
}

/* The corpus folder of target @name, or -ENOENT. */
static int corpus_dir(const char *name, char *out, size_t len)
{
	const char *env = getenv("ASSETFS_FUZZ_CORPUS");
	char exe[PATH_MAX], src[PATH_MAX];
	ssize_t n;
	int levels = 3; /* <build>/tests/unit/test_fuzz_replay */

	if (env && *env) {
		return path_fmt(out, len, env, name, NULL) ? 0 : -ENOENT;
	}
	snprintf(src, sizeof(src), "%s", __FILE__);
	/* Strip "unit/test_fuzz_replay.c" to get ".../tests/". */
	for (int i = 0; i < 2; i++) {
		char *slash = strrchr(src, '/');

		if (!slash)
			return -ENOENT;
		*slash = '\0';
	}
	if (strlen(src) + 16 >= sizeof(src))
		return -ENOENT;
	strcat(src, "/fuzz/corpus");
	if (src[0] == '/')
		return path_fmt(out, len, src, name, NULL) ? 0 : -ENOENT;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -ENOENT;
	exe[n] = '\0';
	while (levels--) {
		char *slash = strrchr(exe, '/');

		if (!slash)
			return -ENOENT;
		*slash = '\0';
	}
	if (path_fmt(out, len, exe, src, name))
		return 0;
	/* Last resort: relative to the working directory. */
	return path_fmt(out, len, src, name, NULL) ? 0 : -ENOENT;
}

static int cmp_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void corpus_load(const char *name, struct corpus *c)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent **ents = NULL;
	int n;

	c->n = 0;
	if (corpus_dir(name, dir, sizeof(dir)) < 0) {
		test_fail(__FILE__, __LINE__,
			  "no corpus for %s (set ASSETFS_FUZZ_CORPUS)", name);
		return;
	}
	n = scandir(dir, &ents, NULL, cmp_name);
	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.' && c->n < REPLAY_MAX_FILES) {
			buf_init(&c->files[c->n], 0);
			if (path_fmt(path, sizeof(path), dir, ents[i]->d_name,
				     NULL) &&
			    file_read_capped(path, REPLAY_MAX_INPUT,
					     &c->files[c->n]) == 0)
				c->n++;
			else
				buf_free(&c->files[c->n]);
		}
		free(ents[i]);
	}
	free(ents);
	if (c->n == 0)
		test_fail(__FILE__, __LINE__, "empty corpus in %s", dir);
}

static void corpus_free(struct corpus *c)
{
	for (size_t i = 0; i < c->n; i++)
		buf_free(&c->files[i]);
	c->n = 0;
}

static const char *const tokens[] = {
    "\"",
    "\\",
    "\\\"",
    "\\u0000",
    "\\ud800",
    "\\u00e9",
    "/",
    "//",
    "..",
    "/../",
    ".",
    "[",
    "]",
    "{",
    "}",
    "[]",
    "{}",
    ",",
    ":",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "1e999",
    "-0",
    "99999999999999999999",
    "2147483647",
    "2147483648",
    "4294967296",
    "9007199254740993",
    "18446744073709551616",
    "\"versions\"",
    "\"assets\"",
    "\"contents\"",
    "\"push_date\"",
    "\"is_directory\"",
    "\"assetfs\"",
    "\"format\"",
    "\"block_size\"",
    "\"files\"",
    "\"path\"",
    "\"size\"",
    "\"sha256\"",
    "\"blocks\"",
    "65536",
    "4194304",
    "Z",
    "+02:00",
    "-0530",
    ".123456789",
    "T",
    "-",
    "2021-02-29T00-00-00Z",
    "9999-12-31T23:59:59-01:00",
    "0000-01-01T00:00:00+01:00",
    "\xff",
    "\xc3\xa9",
    "\n",
    " ",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
};

/* Apply 1-4 random edits to @b (capped at REPLAY_MAX_INPUT). */
static void mutate(struct buf *b, const struct corpus *c)
{
	static const char bytes[] = {'"',  '[', ']',  '{',	  '}', ',', ':',
				     '\\', '/', '.',  '0',	  '-', '9', 'T',
				     'a',  ' ', '\0', (char)0xff, '\n'};
	int edits = 1 + (int)rng_below(4);

	for (int e = 0; e < edits; e++) {
		size_t len = b->len, pos = rng_below(len + 1);
		struct buf nb;
		const char *ins = NULL;
		size_t ins_len = 0, del = 0;

		switch (rng_below(7)) {
		case 0: /* flip a bit */
			if (len)
				b->data[rng_below(len)] ^=
				    (char)(1 << rng_below(8));
			continue;
		case 1: /* an interesting byte */
			if (len)
				b->data[rng_below(len)] =
				    bytes[rng_below(sizeof(bytes))];
			continue;
		case 2: /* delete a range */
			del = rng_below(len - pos + 1);
			if (del > 64)
				del = rng_below(64);
			break;
		case 3: /* insert a token */
		case 4:
			ins = tokens[rng_below(sizeof(tokens) /
					       sizeof(tokens[0]))];
			ins_len = strlen(ins);
			break;
		case 5: /* duplicate a piece of itself */
			if (!len)
				continue;
			ins_len = rng_below(len - pos + 1);
			if (ins_len > 256)
				ins_len = 256;
			ins = b->data + pos;
			break;
		default: { /* splice in a piece of another corpus file */
			const struct buf *o = &c->files[rng_below(c->n)];
			size_t from;

			if (!o->len)
				continue;
			from = rng_below(o->len);
			ins = o->data + from;
			ins_len = rng_below(o->len - from + 1);
			break;
		}
		}
		if (len - del + ins_len > REPLAY_MAX_INPUT)
			continue;
		buf_init(&nb, 0);
		if (buf_append(&nb, b->data ? b->data : "", pos) < 0 ||
		    buf_append(&nb, ins ? ins : "", ins_len) < 0 ||
		    buf_append(&nb, b->data ? b->data + pos + del : "",
			       len - pos - del) < 0) {
			buf_free(&nb);
			continue;
		}
		buf_free(b);
		*b = nb;
	}
}

static void replay(const char *name, fuzz_fn fn, uint64_t seed)
{
	const char *it = getenv("FUZZ_REPLAY_ITERS");
	size_t iters = it ? strtoul(it, NULL, 10) : REPLAY_ITERS;
	struct corpus *c = calloc(1, sizeof(*c));

	if (!c)
		return;
	corpus_load(name, c);
	for (size_t i = 0; i < c->n; i++)
		fn((const uint8_t *)(c->files[i].data ? c->files[i].data : ""),
		   c->files[i].len);
	/* Degenerate inputs. */
	fn((const uint8_t *)"", 0);
	fn((const uint8_t *)"\0", 1);
	rng_state = seed;
	for (size_t i = 0; c->n && i < iters; i++) {
		const struct buf *src = &c->files[rng_below(c->n)];
		struct buf b;

		buf_init(&b, 0);
		if (buf_append(&b, src->data ? src->data : "", src->len) == 0) {
			mutate(&b, c);
			/* Exactly b.len bytes in a buffer of its own, so
			 * ASan catches any read past the end. */
			uint8_t *exact = malloc(b.len ? b.len : 1);

			if (exact) {
				if (b.len)
					memcpy(exact, b.data, b.len);
				fn(exact, b.len);
				free(exact);
			}
		}
		buf_free(&b);
	}
	printf("     %s: %zu corpus files, %zu mutations\n", name, c->n,
	       c->n ? iters : 0);
	corpus_free(c);
	free(c);
}

test(replay_spec)
{
	replay("spec", fuzz_spec_entry, 0x5eed0001);
}

test(replay_versions)
{
	replay("versions", fuzz_versions_entry, 0x5eed0002);
}

test(replay_meta)
{
	replay("meta", fuzz_meta_entry, 0x5eed0003);
}

test(replay_assets_index)
{
	replay("assets_index", fuzz_assets_index_entry, 0x5eed0004);
}

test(replay_xml)
{
	replay("xml", fuzz_xml_entry, 0x5eed0005);
}

test(replay_pyframe)
{
	replay("pyframe", fuzz_pyframe_entry, 0x5eed0006);
}

test(replay_infer)
{
	replay("infer", fuzz_infer_entry, 0x5eed0007);
}

test(replay_level)
{
	replay("level", fuzz_level_entry, 0x5eed0009);
}

test(replay_objinfo)
{
	replay("objinfo", fuzz_objinfo_entry, 0x5eed000a);
}

test(replay_pins)
{
	replay("pins", fuzz_pins_entry, 0x5eed000b);
}

test(replay_handover)
{
	replay("handover", fuzz_handover_entry, 0x5eed000c);
}

#ifdef HAVE_GRPC
test(replay_grpc)
{
	replay("grpc", fuzz_grpc_entry, 0x5eed0008);
}

test(replay_h2grpc)
{
	replay("h2grpc", fuzz_h2grpc_entry, 0x5eed0009);
}
#endif
