/*
 * test - the unit test harness: tests register themselves and the runner
 * in test.c runs them all, reporting each failed check with file and line
 * and ending with "N passed, N failed".
 *
 *   test(spec_rejects_empty_segment)
 *   {
 *           struct spec s = {0};
 *           char err[SPEC_ERR_MAX];
 *
 *           CHECK_INT(spec_parse("a//b", &s, err, sizeof(err)), -EINVAL);
 *           CHECK_STR_CONTAINS(err, "empty segment");
 *   }
 *
 * A failed CHECK marks the current test failed and carries on, so one run
 * shows every broken case of a table. Run one test: ./test_spec NAME.
 */
#ifndef ASSETFS_TESTS_TEST_H
#define ASSETFS_TESTS_TEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

void test_register(const char *name, void (*fn)(void));
void test_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define test(fn)                                                        \
	static void fn(void);                                           \
	__attribute__((constructor)) static void test_reg_##fn(void)    \
	{                                                               \
		test_register(#fn, fn);                                 \
	}                                                               \
	static void fn(void)

#define CHECK(cond)                                                     \
	do {                                                            \
		if (!(cond))                                            \
			test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); \
	} while (0)

#define CHECK_INT(got, want)                                            \
	do {                                                            \
		long long g_ = (long long)(got), w_ = (long long)(want); \
		if (g_ != w_)                                           \
			test_fail(__FILE__, __LINE__, "%s = %lld, want %lld", \
				  #got, g_, w_);                        \
	} while (0)

#define CHECK_STR(got, want)                                            \
	do {                                                            \
		const char *g_ = (got), *w_ = (want);                   \
		if (!g_ || !w_ || strcmp(g_, w_) != 0)                  \
			test_fail(__FILE__, __LINE__, "%s = \"%s\", want \"%s\"", \
				  #got, g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
	} while (0)

#define CHECK_STR_CONTAINS(got, needle)                                 \
	do {                                                            \
		const char *g_ = (got), *n_ = (needle);                 \
		if (!g_ || !strstr(g_, n_))                             \
			test_fail(__FILE__, __LINE__, "%s = \"%s\", want it to contain \"%s\"", \
				  #got, g_ ? g_ : "(null)", n_);        \
	} while (0)

#endif
