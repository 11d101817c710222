/*
 * test - the runner of the unit test harness (see test.h). Tests run in
 * registration order, in one process; argv[1], if given, selects one test
 * by name.
 */
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>

#define TEST_MAX 1024

static struct {
	const char *name;
	void (*fn)(void);
} tests[TEST_MAX];
static int n_tests;
static int cur_failed;

void test_register(const char *name, void (*fn)(void))
{
	if (n_tests == TEST_MAX) {
		fprintf(stderr, "too many tests\n");
		exit(2);
	}
	tests[n_tests].name = name;
	tests[n_tests].fn = fn;
	n_tests++;
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cur_failed = 1;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	for (int i = 0; i < n_tests; i++) {
		if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
			continue;
		cur_failed = 0;
		tests[i].fn();
		printf("%s %s\n", cur_failed ? "FAIL" : "ok  ", tests[i].name);
		fflush(stdout);
		if (cur_failed)
			failed++;
		else
			passed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
