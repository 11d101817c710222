/*
 * fuzz_versions - libFuzzer target for versions_parse() under each
 * versioning system, version_resolve(), version_next(), version_list_add()
 * and versions_format().
 *
 * The input is a `.versions` document; its first line, as a string, is
 * also used as a version to resolve and add. Invariants: the list is
 * strictly newest first and every entry valid under its system (never
 * AUTO); resolving NULL gives the newest, a present version gives itself,
 * a major gives the newest of exactly that major; the next version is
 * valid and newer; formatting and parsing again gives the same list.
 */
#include <errno.h>

#include "resolver/spec.h"
#include "resolver/version.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void fuzz_versions_check_list(const struct version_list *l,
				     const char *want)
{
	char err[SPEC_ERR_MAX], next[64];
	const char *got;
	int ret;

	FUZZ_CHECK(l->sys == VERSIONING_MAJOR_MINOR ||
		   l->sys == VERSIONING_SIMPLE_DATE);
	for (size_t i = 0; i < l->n; i++) {
		FUZZ_CHECK(version_valid(l->sys, l->v[i]));
		if (i)
			FUZZ_CHECK(version_cmp(l->sys, l->v[i - 1], l->v[i]) >
				   0);
	}
	ret = version_resolve(l, "x", NULL, &got, err, sizeof(err));
	if (l->n) {
		FUZZ_CHECK(ret == 0 && got == l->v[0]);
	} else {
		FUZZ_CHECK(ret == -ENOENT && fuzz_err_ok(err, sizeof(err)));
	}
	/* Each present version resolves to itself; majors to the newest. */
	for (size_t i = 0; i < l->n && i < 64; i++) {
		FUZZ_CHECK(version_resolve(l, "x", l->v[i], &got, err,
					   sizeof(err)) == 0 &&
			   got == l->v[i]);
		if (l->sys == VERSIONING_MAJOR_MINOR) {
			char major[16];

			snprintf(major, sizeof(major), "%lu",
				 version_major(l->v[i]));
			FUZZ_CHECK(version_resolve(l, "x", major, &got, err,
						   sizeof(err)) == 0);
			FUZZ_CHECK(version_major(got) ==
				   version_major(l->v[i]));
			FUZZ_CHECK(version_cmp(l->sys, got, l->v[i]) >= 0);
		}
	}
	/* Whatever is asked for: a clean answer, never a crash. */
	ret = version_resolve(l, want, want, &got, err, sizeof(err));
	if (ret == 0) {
		FUZZ_CHECK(got != NULL);
		if (version_valid(l->sys, want))
			FUZZ_CHECK(strcmp(got, want) == 0);
		else
			FUZZ_CHECK(l->sys == VERSIONING_MAJOR_MINOR &&
				   version_is_major(want) &&
				   version_major(got) ==
				       strtoul(want, NULL, 10));
	} else {
		FUZZ_CHECK(ret == -ENOENT || ret == -EINVAL);
		FUZZ_CHECK(got == NULL && fuzz_err_ok(err, sizeof(err)));
	}
	ret = version_next(l, false, next, sizeof(next));
	if (ret >= 0) {
		FUZZ_CHECK(version_valid(l->sys, next));
		if (l->n)
			FUZZ_CHECK(version_cmp(l->sys, next, l->v[0]) > 0);
	} else {
		FUZZ_CHECK(ret == -EOVERFLOW);
	}
	ret = version_next(l, true, next, sizeof(next));
	if (ret >= 0) {
		FUZZ_CHECK(version_valid(l->sys, next));
		if (l->n)
			FUZZ_CHECK(version_cmp(l->sys, next, l->v[0]) > 0);
	} else {
		FUZZ_CHECK(ret == -EOVERFLOW);
	}
}

static void fuzz_versions_round_trip(const struct version_list *l)
{
	struct version_list back;
	char err[SPEC_ERR_MAX];
	struct buf b;

	buf_init(&b, 0);
	FUZZ_CHECK(versions_format(l, &b) == 0);
	FUZZ_CHECK(versions_parse(b.data, b.len, l->sys, &back, err,
				  sizeof(err)) == 0);
	FUZZ_CHECK(back.n == l->n && back.n_invalid == 0);
	for (size_t i = 0; i < back.n && i < l->n; i++)
		FUZZ_CHECK(strcmp(back.v[i], l->v[i]) == 0);
	version_list_clear(&back);
	buf_free(&b);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	static const enum versioning systems[] = {
	    VERSIONING_AUTO,
	    VERSIONING_MAJOR_MINOR,
	    VERSIONING_SIMPLE_DATE,
	};
	char err[SPEC_ERR_MAX];
	char *want, *nl;
	size_t i;

	want = fuzz_strndup(data, size < 128 ? size : 128);
	if (!want)
		return 0;
	nl = strchr(want, '\n');
	if (nl)
		*nl = '\0';
	for (i = 0; i < sizeof(systems) / sizeof(systems[0]); i++) {
		struct version_list l;
		size_t n_before;
		int ret;

		ret = versions_parse((const char *)data, size, systems[i], &l,
				     err, sizeof(err));
		if (ret < 0) {
			FUZZ_CHECK(ret == -EINVAL || ret == -EFBIG);
			FUZZ_CHECK(fuzz_err_ok(err, sizeof(err)));
			FUZZ_CHECK(l.v == NULL && l.n == 0);
			continue;
		}
		if (systems[i] != VERSIONING_AUTO)
			FUZZ_CHECK(l.sys == systems[i]);
		fuzz_versions_check_list(&l, want);
		fuzz_versions_round_trip(&l);
		/* Adding keeps the invariants; a duplicate is a no-op. */
		n_before = l.n;
		ret = version_list_add(&l, want);
		if (ret == 0) {
			FUZZ_CHECK(l.n == n_before || l.n == n_before + 1);
			fuzz_versions_check_list(&l, want);
			FUZZ_CHECK(version_list_add(&l, want) == 0);
		} else {
			FUZZ_CHECK(ret == -EINVAL && l.n == n_before);
		}
		version_list_clear(&l);
	}
	free(want);
	return 0;
}
