/*
 * test_catalog_docs - the documents the catalog keeps in the cache for
 * offline use, read back as hostile input (catalog_offline.c): a level's
 * entries that readdir could not show as they are, and objinfo sizes that
 * are not a whole number of bytes, are skipped; a document without its
 * array is refused and leaves nothing behind; sizes survive the round
 * trip to the byte.
 */
#include <errno.h>
#include <string.h>

#include "fs/catalog/catalog_int.h"
#include "test.h"

static void level_free(struct cat_level *l)
{
	cat_strv_free(l->assets, l->n_assets);
	cat_strv_free(l->namespaces, l->n_namespaces);
	memset(l, 0, sizeof(*l));
}

test(level_doc_skips_what_readdir_cannot_show)
{
	static const char doc[] =
	    "{\"assets\": [\"b\", \"..\", \".\", \"a/b\", \"\", 7, null, "
	    "\"a\", \"b\"], \"namespaces\": [\"../etc\", \"ns\", {}]}";
	struct cat_level l = {0};

	CHECK_INT(cat_level_from_json(doc, strlen(doc), &l), 0);
	CHECK_INT(l.n_assets, 2);
	if (l.n_assets == 2) {
		CHECK_STR(l.assets[0], "a");
		CHECK_STR(l.assets[1], "b");
	}
	CHECK_INT(l.n_namespaces, 1);
	if (l.n_namespaces == 1)
		CHECK_STR(l.namespaces[0], "ns");
	level_free(&l);
}

test(level_doc_without_its_arrays_is_not_kept)
{
	static const char *const docs[] = {
	    "{\"assets\": [\"a\"]}",
	    "{\"assets\": [\"a\"], \"namespaces\": {}}",
	    "[\"a\"]",
	    "{\"assets\": [\"a\"",
	};
	size_t i;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct cat_level l = {0};

		CHECK_INT(cat_level_from_json(docs[i], strlen(docs[i]), &l),
			  -EINVAL);
		CHECK(l.assets == NULL && l.n_assets == 0);
		CHECK(l.namespaces == NULL && l.n_namespaces == 0);
	}
}

test(objinfo_doc_sizes)
{
	static const char doc[] =
	    "{\"files\": ["
	    "{\"p\": \"neg\", \"s\": -1, \"e\": \"\"},"
	    "{\"p\": \"frac\", \"s\": 1.5, \"e\": \"\"},"
	    "{\"p\": \"inf\", \"s\": 1e400, \"e\": \"\"},"
	    "{\"p\": \"2^64\", \"s\": 18446744073709551616, \"e\": \"\"},"
	    "{\"p\": \"str\", \"s\": \"5\", \"e\": \"\"},"
	    "{\"p\": \"noetag\", \"s\": 5},"
	    "{\"p\": \"big\", \"s\": 9007199254740992, \"e\": \"\\\"x\\\"\"},"
	    "{\"p\": \"\", \"s\": 0, \"e\": \"\"}]}";
	struct objinfo oi = {0}, back = {0};
	struct buf b;

	CHECK_INT(cat_objinfo_from_json(doc, strlen(doc), &oi), 0);
	CHECK_INT(oi.n, 2);
	CHECK_INT(cat_objinfo_find(&oi, "big"), 0);
	CHECK_INT(cat_objinfo_find(&oi, ""), 1);
	CHECK_INT(cat_objinfo_find(&oi, "inf"), -ENOENT);
	if (oi.n == 2) {
		CHECK(oi.sizes[0] == 9007199254740992ull);
		CHECK_STR(oi.etags[0], "\"x\"");
	}
	/* written back and read again: the same bytes count, exactly */
	buf_init(&b, 0);
	CHECK_INT(cat_objinfo_to_json(&oi, &b), 0);
	CHECK_INT(cat_objinfo_from_json(b.data, b.len, &back), 0);
	CHECK_INT(back.n, 2);
	if (back.n == 2)
		CHECK(back.sizes[0] == 9007199254740992ull);
	buf_free(&b);
	cat_objinfo_clear(&back);
	cat_objinfo_clear(&oi);

	CHECK_INT(cat_objinfo_from_json("{\"files\": {}}", 13, &oi), -EINVAL);
	CHECK(oi.n == 0 && oi.paths == NULL);
	CHECK_INT(cat_objinfo_from_json("{}", 2, &oi), -EINVAL);
}
