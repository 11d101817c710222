/*
 * fuzz_meta - libFuzzer target for meta_parse(), manifest_find() and
 * meta_format().
 *
 * Invariants of a parsed .meta: contents (folders only) sorted, unique,
 * each a valid relative path, none both a file and a directory; a manifest
 * has a block size in bounds, files sorted and unique with the block count
 * their size needs, exactly one "" entry for a file asset and exactly the
 * contents for a folder; formatting and parsing again gives the same
 * document (push_date to the microsecond). On error: a message and an
 * empty result.
 */
#include <errno.h>

#include "resolver/meta.h"
#include "resolver/spec.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void fuzz_meta_check(const struct meta *m)
{
	char err[SPEC_ERR_MAX];
	const struct manifest *mf = m->manifest;

	FUZZ_CHECK(m->push_date_nsec >= 0 && m->push_date_nsec < 1000000000);
	if (!m->is_directory)
		FUZZ_CHECK(m->n_contents == 0 && m->contents == NULL);
	for (size_t i = 0; i < m->n_contents; i++) {
		FUZZ_CHECK(
		    spec_check_relpath(m->contents[i], err, sizeof(err)) == 0);
		if (i)
			FUZZ_CHECK(strcmp(m->contents[i - 1], m->contents[i]) <
				   0);
	}
	if (!mf)
		return;
	FUZZ_CHECK(mf->format == MANIFEST_FORMAT);
	FUZZ_CHECK(mf->block_size >= MANIFEST_BLOCK_MIN &&
		   mf->block_size <= MANIFEST_BLOCK_MAX &&
		   !(mf->block_size & (mf->block_size - 1)));
	if (!m->is_directory) {
		FUZZ_CHECK(mf->n_files == 1 && mf->files[0].path[0] == '\0');
	} else {
		FUZZ_CHECK(mf->n_files == m->n_contents);
	}
	for (size_t i = 0; i < mf->n_files; i++) {
		const struct manifest_file *f = &mf->files[i];

		FUZZ_CHECK(f->n_blocks ==
			   manifest_block_count(f->size, mf->block_size));
		FUZZ_CHECK(manifest_find(mf, f->path) == f);
		if (m->is_directory)
			FUZZ_CHECK(strcmp(f->path, m->contents[i]) == 0);
		if (i)
			FUZZ_CHECK(strcmp(mf->files[i - 1].path, f->path) < 0);
	}
}

static void fuzz_meta_round_trip(const struct meta *m)
{
	char err[SPEC_ERR_MAX];
	struct meta back;
	struct buf b;
	int ret;

	buf_init(&b, 0);
	ret = meta_format(m, &b);
	/* Only a push_date outside years 0..9999 cannot be written. */
	if (ret == -EINVAL) {
		FUZZ_CHECK(m->push_date < -62167219200ll ||
			   m->push_date > 253402300799ll);
		buf_free(&b);
		return;
	}
	FUZZ_CHECK(ret == 0);
	ret = meta_parse(b.data, b.len, &back, err, sizeof(err));
	if (ret != 0)
		fprintf(stderr, "re-parse failed: %s\n%s\n", err, b.data);
	FUZZ_CHECK(ret == 0);
	if (ret == 0) {
		FUZZ_CHECK(back.push_date == m->push_date);
		FUZZ_CHECK(back.push_date_nsec ==
			   m->push_date_nsec / 1000 * 1000);
		FUZZ_CHECK(back.is_directory == m->is_directory);
		FUZZ_CHECK(back.n_contents == m->n_contents);
		for (size_t i = 0; i < back.n_contents && i < m->n_contents;
		     i++)
			FUZZ_CHECK(strcmp(back.contents[i], m->contents[i]) ==
				   0);
		FUZZ_CHECK(!back.manifest == !m->manifest);
		if (back.manifest && m->manifest) {
			FUZZ_CHECK(back.manifest->n_files ==
				   m->manifest->n_files);
			for (size_t i = 0; i < back.manifest->n_files &&
					   i < m->manifest->n_files;
			     i++) {
				const struct manifest_file *x =
				    &m->manifest->files[i];
				const struct manifest_file *y =
				    &back.manifest->files[i];

				FUZZ_CHECK(strcmp(x->path, y->path) == 0);
				FUZZ_CHECK(x->size == y->size);
				FUZZ_CHECK(
				    digest_equal(&x->sha256, &y->sha256));
				FUZZ_CHECK(x->n_blocks == y->n_blocks);
			}
		}
		meta_clear(&back);
	}
	buf_free(&b);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	char err[SPEC_ERR_MAX];
	struct meta m;
	int ret;

	ret = meta_parse((const char *)data, size, &m, err, sizeof(err));
	if (ret < 0) {
		FUZZ_CHECK(ret == -EINVAL || ret == -EFBIG || ret == -ENOMEM);
		FUZZ_CHECK(fuzz_err_ok(err, sizeof(err)));
		FUZZ_CHECK(m.contents == NULL && m.manifest == NULL &&
			   m.n_contents == 0);
		return 0;
	}
	fuzz_meta_check(&m);
	fuzz_meta_round_trip(&m);
	FUZZ_CHECK(manifest_find(m.manifest, "\x01") == NULL);
	meta_clear(&m);
	return 0;
}
