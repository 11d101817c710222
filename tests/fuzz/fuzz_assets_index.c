/*
 * fuzz_assets_index - libFuzzer target for assets_index_parse(),
 * assets_index_add() and assets_index_format().
 *
 * Invariants: names valid, sorted and unique; adding a present name is a
 * no-op, adding the input's first line keeps the invariants; formatting
 * and parsing again gives the same list.
 */
#include <errno.h>

#include "resolver/assets_index.h"
#include "resolver/spec.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void fuzz_ix_check(const struct assets_index *ix)
{
	char err[SPEC_ERR_MAX];

	for (size_t i = 0; i < ix->n; i++) {
		FUZZ_CHECK(spec_check_name(ix->names[i], err, sizeof(err)) ==
			   0);
		if (i)
			FUZZ_CHECK(strcmp(ix->names[i - 1], ix->names[i]) < 0);
	}
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct assets_index ix, back;
	char err[SPEC_ERR_MAX];
	char *line, *nl;
	struct buf b;
	size_t n;
	int ret;

	ret =
	    assets_index_parse((const char *)data, size, &ix, err, sizeof(err));
	if (ret < 0) {
		FUZZ_CHECK(ret == -EINVAL || ret == -EFBIG || ret == -ENOMEM);
		FUZZ_CHECK(fuzz_err_ok(err, sizeof(err)));
		FUZZ_CHECK(ix.names == NULL && ix.n == 0);
		return 0;
	}
	fuzz_ix_check(&ix);
	n = ix.n;
	if (n)
		FUZZ_CHECK(assets_index_add(&ix, ix.names[n / 2]) == 0 &&
			   ix.n == n);
	line = fuzz_strndup(data, size < 2048 ? size : 2048);
	if (line) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		ret = assets_index_add(&ix, line);
		FUZZ_CHECK(ret == 0 || (ret == -EINVAL && ix.n == n));
		FUZZ_CHECK(ret != 0 ||
			   spec_check_name(line, err, sizeof(err)) == 0);
		fuzz_ix_check(&ix);
		free(line);
	}
	buf_init(&b, 0);
	FUZZ_CHECK(assets_index_format(&ix, &b) == 0);
	FUZZ_CHECK(assets_index_parse(b.data, b.len, &back, err, sizeof(err)) ==
		   0);
	FUZZ_CHECK(back.n == ix.n && back.n_invalid == 0);
	for (size_t i = 0; i < back.n && i < ix.n; i++)
		FUZZ_CHECK(strcmp(back.names[i], ix.names[i]) == 0);
	assets_index_clear(&back);
	assets_index_clear(&ix);
	buf_free(&b);
	return 0;
}
