/*
 * fuzz_pins - libFuzzer target for pins_file_parse(), the parser of a
 * mount's pin file (it comes from a ConfigMap: hostile input).
 *
 * Invariants: every spec it returns is non-empty, free of blanks,
 * newlines and '#', normalises to itself (pins_spec_norm()), and appears
 * once; parsing the specs joined by newlines gives the same list. On
 * error: -ENOMEM and nothing returned.
 */
#include <errno.h>

#include "common/log.h"
#include "fs/mount/pins.h"
#include "resolver/spec.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	char key[SPEC_NAME_MAX + SPEC_VERSION_MAX + 2], err[SPEC_ERR_MAX];
	char **specs = NULL, **back = NULL;
	size_t n = 0, nb = 0;
	struct buf b;
	int ret;

	/* a skipped line logs a warning: keep the fuzzer's output short */
	log_set_level(LOG_LVL_ERROR);
	ret = pins_file_parse((const char *)data, size, "fuzz", &specs, &n);
	if (ret < 0) {
		FUZZ_CHECK(ret == -ENOMEM);
		FUZZ_CHECK(specs == NULL && n == 0);
		return 0;
	}
	buf_init(&b, 0);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(specs[i][0] != '\0');
		FUZZ_CHECK(strpbrk(specs[i], " \t\r\n#") == NULL);
		FUZZ_CHECK(pins_spec_norm(specs[i], key, sizeof(key), err,
					  sizeof(err)) == 0);
		FUZZ_CHECK(strcmp(key, specs[i]) == 0);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(specs[j], specs[i]) != 0);
		FUZZ_CHECK(buf_puts(&b, specs[i]) == 0 &&
			   buf_puts(&b, "\n") == 0);
	}
	ret = pins_file_parse(b.data ? b.data : "", b.len, "fuzz", &back, &nb);
	FUZZ_CHECK(ret == 0 && nb == n);
	for (size_t i = 0; i < nb && i < n; i++)
		FUZZ_CHECK(strcmp(back[i], specs[i]) == 0);
	pins_specs_free(back, nb);
	pins_specs_free(specs, n);
	buf_free(&b);
	return 0;
}
