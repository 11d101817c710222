/*
 * fuzz_objinfo - libFuzzer target for cat_objinfo_from_json(), the parser
 * of the sizes and ETags of a version without a manifest that the catalog
 * keeps in the cache for offline use (hostile: the cache dir is shared).
 *
 * Invariants: on success every size is a whole number of bytes within
 * 2^53 (no float-to-integer overflow on the way), each path is found by
 * cat_objinfo_find() at or before its own index, and writing the objinfo
 * and parsing it again gives the same entries. On error: -EINVAL or
 * -ENOMEM and an empty objinfo.
 */
#include <errno.h>

#include "fs/catalog/catalog_int.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct objinfo oi, back;
	struct buf b;
	int ret;

	memset(&oi, 0, sizeof(oi));
	ret = cat_objinfo_from_json((const char *)data, size, &oi);
	if (ret < 0) {
		FUZZ_CHECK(ret == -EINVAL || ret == -ENOMEM);
		FUZZ_CHECK(oi.n == 0 && oi.paths == NULL && oi.sizes == NULL &&
			   oi.etags == NULL);
		return 0;
	}
	for (size_t i = 0; i < oi.n; i++) {
		int k = cat_objinfo_find(&oi, oi.paths[i]);

		FUZZ_CHECK(oi.sizes[i] <= (1ull << 53));
		FUZZ_CHECK(oi.etags[i] != NULL);
		FUZZ_CHECK(k >= 0 && (size_t)k <= i);
	}

	buf_init(&b, 0);
	memset(&back, 0, sizeof(back));
	ret = cat_objinfo_to_json(&oi, &b);
	FUZZ_CHECK(ret == 0);
	if (ret == 0) {
		ret = cat_objinfo_from_json(b.data, b.len, &back);
		FUZZ_CHECK(ret == 0);
		FUZZ_CHECK(back.n == oi.n);
		for (size_t i = 0; i < back.n && i < oi.n; i++) {
			FUZZ_CHECK(strcmp(back.paths[i], oi.paths[i]) == 0);
			FUZZ_CHECK(back.sizes[i] == oi.sizes[i]);
			FUZZ_CHECK(strcmp(back.etags[i], oi.etags[i]) == 0);
		}
	}
	cat_objinfo_clear(&back);
	buf_free(&b);
	cat_objinfo_clear(&oi);
	return 0;
}
