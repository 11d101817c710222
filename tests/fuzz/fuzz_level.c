/*
 * fuzz_level - libFuzzer target for cat_level_from_json(), the parser of
 * the namespace level the catalog keeps in the cache for offline use
 * (the cache dir is shared, so the document is hostile input).
 *
 * Invariants: on success every entry is one valid name component (no
 * '/', readdir shows it as it is), assets and namespaces each sorted and
 * unique, and writing the level and parsing it again gives the same
 * level. On error: -EINVAL or -ENOMEM and an empty level.
 */
#include <errno.h>

#include "fs/catalog/catalog_int.h"
#include "resolver/spec.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void fuzz_level_strv_check(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(strchr(v[i], '/') == NULL);
		FUZZ_CHECK(spec_check_name(v[i], NULL, 0) == 0);
		if (i)
			FUZZ_CHECK(strcmp(v[i - 1], v[i]) < 0);
	}
}

static void fuzz_level_free(struct cat_level *l)
{
	cat_strv_free(l->assets, l->n_assets);
	cat_strv_free(l->namespaces, l->n_namespaces);
	memset(l, 0, sizeof(*l));
}

static bool fuzz_level_strv_eq(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct cat_level l, back;
	struct buf b;
	int ret;

	memset(&l, 0, sizeof(l));
	ret = cat_level_from_json((const char *)data, size, &l);
	if (ret < 0) {
		FUZZ_CHECK(ret == -EINVAL || ret == -ENOMEM);
		FUZZ_CHECK(l.assets == NULL && l.n_assets == 0);
		FUZZ_CHECK(l.namespaces == NULL && l.n_namespaces == 0);
		return 0;
	}
	fuzz_level_strv_check(l.assets, l.n_assets);
	fuzz_level_strv_check(l.namespaces, l.n_namespaces);

	buf_init(&b, 0);
	memset(&back, 0, sizeof(back));
	ret = cat_level_to_json(&l, &b);
	FUZZ_CHECK(ret == 0);
	if (ret == 0) {
		ret = cat_level_from_json(b.data, b.len, &back);
		FUZZ_CHECK(ret == 0);
		FUZZ_CHECK(fuzz_level_strv_eq(l.assets, l.n_assets,
					      back.assets, back.n_assets));
		FUZZ_CHECK(fuzz_level_strv_eq(l.namespaces, l.n_namespaces,
					      back.namespaces,
					      back.n_namespaces));
	}
	fuzz_level_free(&back);
	buf_free(&b);
	fuzz_level_free(&l);
	return 0;
}
