/*
 * fuzz_spec - libFuzzer target for spec_parse(), spec_check_name(),
 * spec_check_relpath() and spec_format().
 *
 * Invariants: a parsed spec has a valid name, a version of the allowed
 * alphabet and length, a valid sub path; formatting it gives the input back
 * exactly; every error has a message that fits its buffer.
 */
#include <errno.h>

#include "resolver/spec.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void fuzz_spec_check_version(const char *v)
{
	size_t n = strlen(v);

	FUZZ_CHECK(n > 0 && n <= SPEC_VERSION_MAX);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(strchr("abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
				  v[i]) != NULL);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	char err[SPEC_ERR_MAX], err2[SPEC_ERR_MAX], small[7];
	struct spec s = {0}, again = {0};
	char *text, *back = NULL;
	int ret, n;

	text = fuzz_strndup(data, size);
	if (!text)
		return 0;
	ret = spec_parse(text, &s, err, sizeof(err));
	if (ret == 0) {
		FUZZ_CHECK(s.name != NULL);
		FUZZ_CHECK(spec_check_name(s.name, err2, sizeof(err2)) == 0);
		if (s.version)
			fuzz_spec_check_version(s.version);
		if (s.sub)
			FUZZ_CHECK(
			    spec_check_relpath(s.sub, err2, sizeof(err2)) == 0);
		back = malloc(strlen(text) + 1);
		if (back) {
			n = spec_format(&s, back, strlen(text) + 1);
			FUZZ_CHECK(n == (int)strlen(text));
			FUZZ_CHECK(strcmp(back, text) == 0);
			FUZZ_CHECK(
			    spec_parse(back, &again, err2, sizeof(err2)) == 0);
			FUZZ_CHECK(again.name &&
				   strcmp(again.name, s.name) == 0);
			FUZZ_CHECK(!again.version == !s.version);
			FUZZ_CHECK(!again.sub == !s.sub);
			/* One byte short: -ENOSPC. */
			FUZZ_CHECK(spec_format(&s, back, strlen(text)) ==
				   -ENOSPC);
		}
	} else {
		FUZZ_CHECK(ret == -EINVAL);
		FUZZ_CHECK(fuzz_err_ok(err, sizeof(err)));
		FUZZ_CHECK(s.name == NULL && s.version == NULL &&
			   s.sub == NULL);
	}
	/* The plain checks, and messages cut to a tiny buffer. */
	ret = spec_check_name(text, err, sizeof(err));
	FUZZ_CHECK(ret == 0 ||
		   (ret == -EINVAL && fuzz_err_ok(err, sizeof(err))));
	ret = spec_check_relpath(text, small, sizeof(small));
	FUZZ_CHECK(ret == 0 ||
		   (ret == -EINVAL && fuzz_err_ok(small, sizeof(small))));
	spec_clear(&s);
	spec_clear(&again);
	free(back);
	free(text);
	return 0;
}
