/*
 * test_spec - asset names, relative paths and specs (DESIGN §3): tables of
 * valid and invalid inputs, with the exact message a user would read.
 */
#include <errno.h>
#include <stdlib.h>

#include "resolver/spec.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

test(name_valid_table)
{
	static const char *const ok[] = {
	    "a",
	    "xgb",
	    "fraud/xgb",
	    "a/b/c/d",
	    "A9",
	    "a.b",
	    "a_b",
	    "a-b",
	    "a..b",
	    "v1.2.3",
	    "my-model_v2.final",
	    "0",
	    "9/9",
	    "a/b-c/d_e/f.g",
	};
	char err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(ok); i++) {
		err[0] = '\0';
		if (spec_check_name(ok[i], err, sizeof(err)) != 0)
			test_fail(__FILE__, __LINE__, "'%s' rejected: %s",
				  ok[i], err);
	}
}

test(name_invalid_table)
{
	static const struct {
		const char *name;
		const char *msg;
	} bad[] = {
	    {"", "invalid asset name '': empty"},
	    {"a//b", "invalid asset name 'a//b': empty segment"},
	    {"/a", "invalid asset name '/a': leading '/'"},
	    {"a/", "invalid asset name 'a/': trailing '/'"},
	    {".", "invalid asset name '.': segment '.' is not allowed"},
	    {"..", "invalid asset name '..': segment '..' is not allowed"},
	    {"a/../b",
	     "invalid asset name 'a/../b': segment '..' is not allowed"},
	    {"a/./b", "invalid asset name 'a/./b': segment '.' is not allowed"},
	    {"a b", "invalid asset name 'a b': invalid character ' '"},
	    {"a:b", "invalid asset name 'a:b': invalid character ':'"},
	    {"a[b", "invalid asset name 'a[b': invalid character '['"},
	    {"a\\b", "invalid asset name 'a\\b': invalid character '\\'"},
	    {"a\nb", "invalid asset name 'a\\x0ab': invalid character '\\x0a'"},
	    {"caf\xc3\xa9",
	     "invalid asset name 'caf\\xc3\\xa9': invalid character '\\xc3'"},
	    {"-a", "invalid asset name '-a': segment '-a' must start and end "
		   "with a letter or digit"},
	    {"a-", "invalid asset name 'a-': segment 'a-' must start and end "
		   "with a letter or digit"},
	    {"a/.hidden", "invalid asset name 'a/.hidden': segment '.hidden' "
			  "must start and end with a letter or digit"},
	    {"a/_b", "segment '_b' must start and end"},
	    {"a/b.", "segment 'b.' must start and end"},
	    {"a/b/", "trailing '/'"},
	    {"//", "leading '/'"},
	};
	char err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(bad); i++) {
		err[0] = '\0';
		CHECK_INT(spec_check_name(bad[i].name, err, sizeof(err)),
			  -EINVAL);
		CHECK_STR_CONTAINS(err, bad[i].msg);
	}
	CHECK_INT(spec_check_name(NULL, err, sizeof(err)), -EINVAL);
	/* A NULL or zero-length error buffer is allowed. */
	CHECK_INT(spec_check_name("a//b", NULL, 0), -EINVAL);
	CHECK_INT(spec_check_name("a//b", err, 0), -EINVAL);
}

test(name_length_cap)
{
	char err[SPEC_ERR_MAX];
	char *max = repeat('a', SPEC_NAME_MAX);
	char *over = repeat('a', SPEC_NAME_MAX + 1);
	char *huge = repeat('b', 1 << 20);

	CHECK_INT(spec_check_name(max, err, sizeof(err)), 0);
	CHECK_INT(spec_check_name(over, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "longer than 1024 bytes");
	/* The echoed name is cut, so the message still fits. */
	CHECK_STR_CONTAINS(err, "...': longer");
	CHECK_INT(spec_check_name(huge, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "longer than 1024 bytes");
	free(max);
	free(over);
	free(huge);
}

test(error_message_truncated_to_buffer)
{
	char small[16];

	CHECK_INT(spec_check_name("a//b", small, sizeof(small)), -EINVAL);
	CHECK_INT(strlen(small), sizeof(small) - 1);
	CHECK(strncmp(small, "invalid asset n", 15) == 0);
}

test(relpath_table)
{
	static const char *const ok[] = {
	    "model.json", "a/b/c.bin", "a b/c d", ".hidden",	     "a/.b",
	    "...",	  "a..b",      "x/y/z/w", "caf\xc3\xa9.txt", "[x]",
	    "a:b",
	};
	static const struct {
		const char *path;
		const char *msg;
	} bad[] = {
	    {"", "invalid path '': empty"},
	    {"/etc/passwd", "invalid path '/etc/passwd': absolute path"},
	    {"../x", "invalid path '../x': segment '..' is not allowed"},
	    {"a/../../x", "segment '..' is not allowed"},
	    {"..", "segment '..' is not allowed"},
	    {"./a", "invalid path './a': segment '.' is not allowed"},
	    {"a/.", "segment '.' is not allowed"},
	    {"a//b", "invalid path 'a//b': empty segment"},
	    {"a/", "invalid path 'a/': trailing '/'"},
	    {"a\tb", "invalid path 'a\\x09b': invalid character '\\x09'"},
	    {"a\x7f", "invalid character '\\x7f'"},
	};
	char err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(ok); i++) {
		if (spec_check_relpath(ok[i], err, sizeof(err)) != 0)
			test_fail(__FILE__, __LINE__, "'%s' rejected: %s",
				  ok[i], err);
	}
	for (size_t i = 0; i < N(bad); i++) {
		err[0] = '\0';
		CHECK_INT(spec_check_relpath(bad[i].path, err, sizeof(err)),
			  -EINVAL);
		CHECK_STR_CONTAINS(err, bad[i].msg);
	}
	CHECK_INT(spec_check_relpath(NULL, err, sizeof(err)), -EINVAL);
}

test(relpath_length_cap)
{
	char err[SPEC_ERR_MAX];
	char *max = repeat('p', SPEC_PATH_MAX);
	char *over = repeat('p', SPEC_PATH_MAX + 1);

	CHECK_INT(spec_check_relpath(max, err, sizeof(err)), 0);
	CHECK_INT(spec_check_relpath(over, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "longer than 4096 bytes");
	free(max);
	free(over);
}

test(spec_parse_valid_table)
{
	static const struct {
		const char *text, *name, *version, *sub;
	} ok[] = {
	    {"xgb", "xgb", NULL, NULL},
	    {"fraud/xgb", "fraud/xgb", NULL, NULL},
	    {"fraud/xgb:1", "fraud/xgb", "1", NULL},
	    {"fraud/xgb:1.2", "fraud/xgb", "1.2", NULL},
	    {"fraud/xgb:1.2[model.json]", "fraud/xgb", "1.2", "model.json"},
	    {"fraud/xgb[model.json]", "fraud/xgb", NULL, "model.json"},
	    {"a:2021-01-02T03-04-05Z", "a", "2021-01-02T03-04-05Z", NULL},
	    {"a:1[sub/dir/f.bin]", "a", "1", "sub/dir/f.bin"},
	    {"a[x[y]]", "a", NULL, "x[y]"},
	    {"a[x:y]", "a", NULL, "x:y"},
	    /* The version text is only checked for its alphabet here. */
	    {"a:latest", "a", "latest", NULL},
	};
	char err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(ok); i++) {
		struct spec s = {0};
		char back[8192];
		int ret = spec_parse(ok[i].text, &s, err, sizeof(err));

		if (ret != 0) {
			test_fail(__FILE__, __LINE__, "'%s' rejected: %s",
				  ok[i].text, err);
			continue;
		}
		CHECK_STR(s.name, ok[i].name);
		if (ok[i].version)
			CHECK_STR(s.version, ok[i].version);
		else
			CHECK(s.version == NULL);
		if (ok[i].sub)
			CHECK_STR(s.sub, ok[i].sub);
		else
			CHECK(s.sub == NULL);
		/* Formatting gives the text back. */
		CHECK_INT(spec_format(&s, back, sizeof(back)),
			  strlen(ok[i].text));
		CHECK_STR(back, ok[i].text);
		spec_clear(&s);
		CHECK(s.name == NULL);
		spec_clear(&s); /* twice is fine */
	}
	spec_clear(NULL);
}

test(spec_parse_invalid_table)
{
	static const struct {
		const char *text;
		const char *msg;
	} bad[] = {
	    {"", "invalid spec '': empty"},
	    {"a//b", "invalid asset name 'a//b': empty segment"},
	    {"a//b:1.0[x]", "invalid asset name 'a//b': empty segment"},
	    {":1", "invalid asset name '': empty"},
	    {"/abs:1", "invalid asset name '/abs': leading '/'"},
	    {"../x", "invalid asset name '../x': segment '..' is not allowed"},
	    {"a:", "invalid version '' in spec 'a:': empty"},
	    {"a:[x]", "invalid version '' in spec 'a:[x]': empty"},
	    {"a:1:2",
	     "invalid version '1:2' in spec 'a:1:2': invalid character ':'"},
	    {"a:1 2", "invalid character ' '"},
	    {"a:1/2", "invalid version '1/2'"},
	    {"a[x", "invalid spec 'a[x': '[' without a closing ']' at the end"},
	    {"a[x]y", "'[' without a closing ']'"},
	    {"a[]", "invalid sub path '': empty"},
	    {"a:1[/etc/passwd]",
	     "invalid sub path '/etc/passwd': absolute path"},
	    {"a:1[../x]",
	     "invalid sub path '../x': segment '..' is not allowed"},
	    {"a[x//y]", "invalid sub path 'x//y': empty segment"},
	    {"a[x/]", "invalid sub path 'x/': trailing '/'"},
	    {"a]", "invalid asset name 'a]': invalid character ']'"},
	    {"a b:1", "invalid asset name 'a b': invalid character ' '"},
	};
	char err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(bad); i++) {
		struct spec s = {(char *)"junk", (char *)"junk", NULL};

		err[0] = '\0';
		CHECK_INT(spec_parse(bad[i].text, &s, err, sizeof(err)),
			  -EINVAL);
		CHECK_STR_CONTAINS(err, bad[i].msg);
		/* Left empty on error. */
		CHECK(s.name == NULL && s.version == NULL && s.sub == NULL);
	}
	CHECK_INT(spec_parse(NULL, &(struct spec){0}, err, sizeof(err)),
		  -EINVAL);
}

test(spec_parse_caps)
{
	char err[SPEC_ERR_MAX];
	struct spec s = {0};
	char *name = repeat('n', SPEC_NAME_MAX + 1);
	char *ver = malloc(SPEC_VERSION_MAX + 8);
	char *huge = repeat('x', 10 << 20);

	CHECK_INT(spec_parse(name, &s, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "longer than 1024 bytes");
	snprintf(ver, SPEC_VERSION_MAX + 8, "a:%s", "1");
	memset(ver + 2, '1', SPEC_VERSION_MAX + 1);
	ver[SPEC_VERSION_MAX + 3] = '\0';
	CHECK_INT(spec_parse(ver, &s, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "longer than 64 bytes");
	ver[SPEC_VERSION_MAX + 2] = '\0'; /* exactly the cap */
	CHECK_INT(spec_parse(ver, &s, err, sizeof(err)), 0);
	spec_clear(&s);
	CHECK_INT(spec_parse(huge, &s, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "invalid spec 'xxxx");
	CHECK_STR_CONTAINS(err, "longer than");
	free(name);
	free(ver);
	free(huge);
}

test(spec_format_nospace)
{
	struct spec s = {(char *)"fraud/xgb", (char *)"1.2",
			 (char *)"model.json"};
	char buf[64];

	CHECK_INT(spec_format(&s, buf, sizeof(buf)), 25);
	CHECK_STR(buf, "fraud/xgb:1.2[model.json]");
	CHECK_INT(spec_format(&s, buf, 25), -ENOSPC);
	CHECK_INT(spec_format(&s, buf, 0), -ENOSPC);
	s.sub = NULL;
	CHECK_INT(spec_format(&s, buf, sizeof(buf)), 13);
	CHECK_STR(buf, "fraud/xgb:1.2");
}
