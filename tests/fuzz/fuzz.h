/*
 * fuzz - shared bits of the libFuzzer targets in this folder.
 *
 * Each fuzz_<name>.c defines its entry point as FUZZ_ENTRY, which is
 * LLVMFuzzerTestOneInput unless the includer picked another name: the unit
 * test tests/unit/test_fuzz_replay.c includes every target into one program
 * (each under its own name) and replays the corpus and mutations of it
 * under the normal build and the sanitizer build.
 *
 * FUZZ_CHECK(cond) states an invariant of a parser's output. Under
 * libFuzzer a violation traps (a crash libFuzzer saves as a reproducer);
 * the replay test defines it to report a test failure instead.
 */
#ifndef ASSETFS_TESTS_FUZZ_H
#define ASSETFS_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_CHECK
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			__builtin_trap();                                      \
		}                                                              \
	} while (0)
#endif

/* A NUL-terminated copy of the input (libFuzzer's bytes are not), or NULL. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return NULL;
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* An error message must be set, terminated and fit its buffer. */
static inline int fuzz_err_ok(const char *err, size_t len)
{
	size_t n = strnlen(err, len);

	return n > 0 && n < len;
}

#endif
