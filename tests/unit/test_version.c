/*
 * test_version - versioning systems, .versions parsing, ordering,
 * resolution and the next version a push creates (DESIGN §3).
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "common/timeutil.h"
#include "resolver/spec.h"
#include "resolver/version.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Parse @json (auto-detected unless @sys) and return the list joined. */
static int parse_join(const char *json, enum versioning sys, char *out,
		      size_t outlen, struct version_list *l)
{
	char err[SPEC_ERR_MAX];
	int ret = versions_parse(json, strlen(json), sys, l, err, sizeof(err));
	size_t o = 0;

	out[0] = '\0';
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < l->n; i++)
		o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? " " : "",
				      l->v[i]);
	return 0;
}

test(major_minor_valid_table)
{
	static const char *const ok[] = {
	    "0.0",     "1.0", "0.1", "1.10", "10.0", "2147483647.2147483647",
	    "123.456",
	};
	static const char *const bad[] = {
	    "",
	    "1",
	    "1.",
	    ".1",
	    "1.2.3",
	    "a.b",
	    "-1.0",
	    "+1.0",
	    "1.-1",
	    "01.0",
	    "1.01",
	    "00.0",
	    " 1.0",
	    "1.0 ",
	    "1,0",
	    "1.0a",
	    "2147483648.0",
	    "0.2147483648",
	    "99999999999999999999.0",
	    "0.99999999999999999999",
	    "1e3.0",
	    "0x1.0",
	    "2021-01-02T03-04-05Z",
	};

	for (size_t i = 0; i < N(ok); i++) {
		if (!version_valid(VERSIONING_MAJOR_MINOR, ok[i]))
			test_fail(__FILE__, __LINE__, "'%s' rejected", ok[i]);
	}
	for (size_t i = 0; i < N(bad); i++) {
		if (version_valid(VERSIONING_MAJOR_MINOR, bad[i]))
			test_fail(__FILE__, __LINE__, "'%s' accepted", bad[i]);
	}
	CHECK(!version_valid(VERSIONING_MAJOR_MINOR, NULL));
}

test(major_partial_table)
{
	CHECK(version_is_major("0"));
	CHECK(version_is_major("1"));
	CHECK(version_is_major("10"));
	CHECK(version_is_major("2147483647"));
	CHECK(!version_is_major("2147483648"));
	CHECK(!version_is_major("99999999999999999999"));
	CHECK(!version_is_major("01"));
	CHECK(!version_is_major("1.0"));
	CHECK(!version_is_major(""));
	CHECK(!version_is_major("-1"));
	CHECK(!version_is_major(NULL));
	CHECK_INT(version_major("1.10"), 1);
	CHECK_INT(version_major("10.0"), 10);
	CHECK_INT(version_major("2147483647.0"), 2147483647);
}

test(simple_date_valid_table)
{
	static const char *const ok[] = {
	    "2021-01-02T03-04-05Z", "1999-12-31T23-59-59Z",
	    "2024-02-29T00-00-00Z", "2000-02-29T12-00-00Z",
	    "0000-01-01T00-00-00Z",
	};
	static const char *const bad[] = {
	    "",
	    "2021-01-02",
	    "2021-01-02T03-04-05",
	    "2021-01-02T03:04:05Z",
	    "2021-01-02 03-04-05Z",
	    "2021-13-02T03-04-05Z",
	    "2021-00-02T03-04-05Z",
	    "2021-01-32T03-04-05Z",
	    "2021-02-29T03-04-05Z",
	    "1900-02-29T03-04-05Z",
	    "2021-04-31T03-04-05Z",
	    "2021-01-02T24-04-05Z",
	    "2021-01-02T03-60-05Z",
	    "2021-01-02T03-04-60Z",
	    "2021-01-02T03-04-05z",
	    "2021-01-02T03-04-05Z ",
	    "20a1-01-02T03-04-05Z",
	    "1.0",
	    "2021",
	    "2021-1-2T3-4-5Z",
	};

	for (size_t i = 0; i < N(ok); i++) {
		if (!version_valid(VERSIONING_SIMPLE_DATE, ok[i]))
			test_fail(__FILE__, __LINE__, "'%s' rejected", ok[i]);
	}
	for (size_t i = 0; i < N(bad); i++) {
		if (version_valid(VERSIONING_SIMPLE_DATE, bad[i]))
			test_fail(__FILE__, __LINE__, "'%s' accepted", bad[i]);
	}
	CHECK(version_valid(VERSIONING_AUTO, "1.0"));
	CHECK(version_valid(VERSIONING_AUTO, "2021-01-02T03-04-05Z"));
	CHECK(!version_valid(VERSIONING_AUTO, "1"));
}

test(cmp_orders_numerically)
{
	static const struct {
		const char *a, *b;
		int want;
	} t[] = {
	    {"1.10", "1.2", 1},
	    {"1.2", "1.10", -1},
	    {"10.0", "9.99", 1},
	    {"2.0", "10.0", -1},
	    {"1.0", "1.0", 0},
	    {"0.0", "0.1", -1},
	    {"2147483647.0", "2147483646.2147483647", 1},
	};

	for (size_t i = 0; i < N(t); i++) {
		int c = version_cmp(VERSIONING_MAJOR_MINOR, t[i].a, t[i].b);

		c = c < 0 ? -1 : c > 0;
		if (c != t[i].want)
			test_fail(__FILE__, __LINE__,
				  "cmp(%s, %s) = %d, want %d", t[i].a, t[i].b,
				  c, t[i].want);
	}
	CHECK(version_cmp(VERSIONING_SIMPLE_DATE, "2021-01-02T03-04-05Z",
			  "2020-12-31T23-59-59Z") > 0);
	CHECK(version_cmp(VERSIONING_SIMPLE_DATE, "2021-01-02T03-04-05Z",
			  "2021-01-02T03-04-06Z") < 0);
	CHECK(version_cmp(VERSIONING_SIMPLE_DATE, "2021-01-02T03-04-05Z",
			  "2021-01-02T03-04-05Z") == 0);
}

test(versioning_names_and_env)
{
	enum versioning v;

	CHECK_INT(versioning_parse("auto", &v), 0);
	CHECK_INT(v, VERSIONING_AUTO);
	CHECK_INT(versioning_parse("major_minor", &v), 0);
	CHECK_INT(v, VERSIONING_MAJOR_MINOR);
	CHECK_INT(versioning_parse("simple_date", &v), 0);
	CHECK_INT(v, VERSIONING_SIMPLE_DATE);
	CHECK_INT(versioning_parse("semver", &v), -EINVAL);
	CHECK_INT(versioning_parse("", &v), -EINVAL);
	CHECK_INT(versioning_parse(NULL, &v), -EINVAL);
	CHECK_STR(versioning_name(VERSIONING_MAJOR_MINOR), "major_minor");
	CHECK_STR(versioning_name(VERSIONING_SIMPLE_DATE), "simple_date");
	CHECK_STR(versioning_name(VERSIONING_AUTO), "auto");

	unsetenv("MODELKIT_ASSETS_VERSIONING_SYSTEM");
	CHECK_INT(versioning_from_env(&v), 0);
	CHECK_INT(v, VERSIONING_AUTO);
	setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "simple_date", 1);
	CHECK_INT(versioning_from_env(&v), 0);
	CHECK_INT(v, VERSIONING_SIMPLE_DATE);
	setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "major_minor", 1);
	CHECK_INT(versioning_from_env(&v), 0);
	CHECK_INT(v, VERSIONING_MAJOR_MINOR);
	setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "bogus", 1);
	CHECK_INT(versioning_from_env(&v), -EINVAL);
	setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "", 1);
	CHECK_INT(versioning_from_env(&v), 0);
	CHECK_INT(v, VERSIONING_AUTO);
	unsetenv("MODELKIT_ASSETS_VERSIONING_SYSTEM");
}

test(parse_sorts_and_dedupes)
{
	static const struct {
		const char *json;
		const char *want;
		size_t n_invalid;
	} t[] = {
	    {"{\"versions\": [\"1.0\", \"0.1\", \"0.0\"]}", "1.0 0.1 0.0", 0},
	    {"{\"versions\": [\"0.0\", \"0.1\", \"1.0\"]}", "1.0 0.1 0.0", 0},
	    {"{\"versions\": [\"1.2\", \"10.0\", \"1.10\", \"1.0\"]}",
	     "10.0 1.10 1.2 1.0", 0},
	    {"{\"versions\": [\"1.0\", \"1.0\", \"0.0\", \"1.0\", \"0.0\"]}",
	     "1.0 0.0", 0},
	    {"{\"versions\": []}", "", 0},
	    {"{\"versions\": [\"1.0\", 3, null, true, {}, [], \"x\", "
	     "\"01.0\", \"99999999999999999999.0\", \"1\"]}",
	     "1.0", 9},
	    /* Unknown keys are ignored. */
	    {"{\"other\": 1, \"versions\": [\"0.0\"]}", "0.0", 0},
	    {"  \n{\"versions\":[\"0.0\"]}\n  ", "0.0", 0},
	};

	for (size_t i = 0; i < N(t); i++) {
		struct version_list l;
		char got[1024];

		CHECK_INT(parse_join(t[i].json, VERSIONING_AUTO, got,
				     sizeof(got), &l),
			  0);
		CHECK_STR(got, t[i].want);
		CHECK_INT(l.n_invalid, t[i].n_invalid);
		CHECK_INT(l.sys, VERSIONING_MAJOR_MINOR);
		version_list_clear(&l);
		CHECK(l.v == NULL && l.n == 0);
		version_list_clear(&l);
	}
	version_list_clear(NULL);
}

test(parse_detects_dates)
{
	struct version_list l;
	char got[1024];

	CHECK_INT(
	    parse_join("{\"versions\": [\"2021-01-02T03-04-05Z\", "
		       "\"2022-01-02T03-04-05Z\", \"2021-01-02T03-04-05Z\", "
		       "\"2020-12-31T23-59-59Z\"]}",
		       VERSIONING_AUTO, got, sizeof(got), &l),
	    0);
	CHECK_INT(l.sys, VERSIONING_SIMPLE_DATE);
	CHECK_STR(got, "2022-01-02T03-04-05Z 2021-01-02T03-04-05Z "
		       "2020-12-31T23-59-59Z");
	CHECK_INT(l.n_invalid, 0);
	version_list_clear(&l);

	/* One major_minor version among dates: major_minor, dates dropped. */
	CHECK_INT(
	    parse_join("{\"versions\": [\"2021-01-02T03-04-05Z\", \"1.0\"]}",
		       VERSIONING_AUTO, got, sizeof(got), &l),
	    0);
	CHECK_INT(l.sys, VERSIONING_MAJOR_MINOR);
	CHECK_STR(got, "1.0");
	CHECK_INT(l.n_invalid, 1);
	version_list_clear(&l);

	/* Junk does not stop detection of dates. */
	CHECK_INT(parse_join(
		      "{\"versions\": [\"2021-01-02T03-04-05Z\", \"junk\", 4]}",
		      VERSIONING_AUTO, got, sizeof(got), &l),
		  0);
	CHECK_INT(l.sys, VERSIONING_SIMPLE_DATE);
	CHECK_INT(l.n_invalid, 2);
	version_list_clear(&l);

	/* An empty list is major_minor (a push then creates 0.0). */
	CHECK_INT(parse_join("{\"versions\": []}", VERSIONING_AUTO, got,
			     sizeof(got), &l),
		  0);
	CHECK_INT(l.sys, VERSIONING_MAJOR_MINOR);
	version_list_clear(&l);
}

test(parse_forced_system_overrides_detection)
{
	struct version_list l;
	char got[1024];
	enum versioning env;

	/* As the mount does: the env var picks the system, not the data. */
	setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "major_minor", 1);
	CHECK_INT(versioning_from_env(&env), 0);
	CHECK_INT(parse_join("{\"versions\": [\"2021-01-02T03-04-05Z\"]}", env,
			     got, sizeof(got), &l),
		  0);
	CHECK_INT(l.sys, VERSIONING_MAJOR_MINOR);
	CHECK_INT(l.n, 0);
	CHECK_INT(l.n_invalid, 1);
	version_list_clear(&l);

	setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "simple_date", 1);
	CHECK_INT(versioning_from_env(&env), 0);
	CHECK_INT(
	    parse_join("{\"versions\": [\"1.0\", \"2021-01-02T03-04-05Z\"]}",
		       env, got, sizeof(got), &l),
	    0);
	CHECK_INT(l.sys, VERSIONING_SIMPLE_DATE);
	CHECK_STR(got, "2021-01-02T03-04-05Z");
	CHECK_INT(l.n_invalid, 1);
	version_list_clear(&l);
	/* An empty list keeps the forced system. */
	CHECK_INT(parse_join("{\"versions\": []}", env, got, sizeof(got), &l),
		  0);
	CHECK_INT(l.sys, VERSIONING_SIMPLE_DATE);
	version_list_clear(&l);
	unsetenv("MODELKIT_ASSETS_VERSIONING_SYSTEM");
}

test(parse_errors_table)
{
	static const struct {
		const char *json;
		const char *msg;
	} bad[] = {
	    {"", "versions document is empty"},
	    {"{", "not valid JSON"},
	    {"{\"versions\": [\"1.0\",]}", "not valid JSON"},
	    {"{\"versions\": [\"1.0\"]", "not valid JSON"},
	    {"[\"1.0\"]", "not a JSON object"},
	    {"\"1.0\"", "not a JSON object"},
	    {"null", "not a JSON object"},
	    {"{}", "no \"versions\""},
	    {"{\"version\": [\"1.0\"]}", "no \"versions\""},
	    {"{\"versions\": \"1.0\"}",
	     "\"versions\" in versions document is not an array"},
	    {"{\"versions\": {\"a\": \"1.0\"}}", "is not an array"},
	    {"{\"versions\": null}", "is not an array"},
	    {"{\"versions\": [\"1.0\"]} trailing", "not valid JSON"},
	};

	for (size_t i = 0; i < N(bad); i++) {
		struct version_list l = {0};
		char err[SPEC_ERR_MAX] = "";

		CHECK_INT(versions_parse(bad[i].json, strlen(bad[i].json),
					 VERSIONING_AUTO, &l, err, sizeof(err)),
			  -EINVAL);
		CHECK_STR_CONTAINS(err, bad[i].msg);
		CHECK(l.v == NULL && l.n == 0);
	}
}

test(parse_respects_length)
{
	/* Only @len bytes are read: the rest of the buffer is not JSON. */
	const char *doc = "{\"versions\": [\"1.0\"]}GARBAGE";
	struct version_list l;
	char err[SPEC_ERR_MAX];

	CHECK_INT(
	    versions_parse(doc, 21, VERSIONING_AUTO, &l, err, sizeof(err)), 0);
	CHECK_INT(l.n, 1);
	version_list_clear(&l);
	CHECK_INT(
	    versions_parse(doc, 20, VERSIONING_AUTO, &l, err, sizeof(err)),
	    -EINVAL);
}

test(parse_caps_and_huge_inputs)
{
	struct version_list l;
	char err[SPEC_ERR_MAX];
	size_t big = VERSIONS_MAX_BYTES + 1;
	char *doc = malloc(big + 64);
	size_t o;

	/* Over the cap: refused before parsing (content is irrelevant). */
	memset(doc, ' ', big);
	CHECK_INT(
	    versions_parse(doc, big, VERSIONING_AUTO, &l, err, sizeof(err)),
	    -EFBIG);
	CHECK_STR_CONTAINS(err, "over the");

	/* Just under the cap: ~400k entries with many duplicates. */
	o = (size_t)sprintf(doc, "{\"versions\": [");
	for (size_t i = 0; o + 32 < VERSIONS_MAX_BYTES; i++)
		o += (size_t)sprintf(doc + o, "\"%zu.%zu\",", i % 1000, i % 7);
	o += (size_t)sprintf(doc + o, "\"0.0\"]}");
	CHECK_INT(versions_parse(doc, o, VERSIONING_AUTO, &l, err, sizeof(err)),
		  0);
	CHECK_INT(l.n, 7000);
	CHECK_STR(l.v[0], "999.6");
	CHECK_STR(l.v[l.n - 1], "0.0");
	for (size_t i = 1; i < l.n; i++)
		CHECK(version_cmp(l.sys, l.v[i - 1], l.v[i]) > 0);
	version_list_clear(&l);

	/* Deep nesting: an error, not a stack overflow. */
	o = (size_t)sprintf(doc, "{\"versions\": ");
	for (size_t i = 0; i < 100000; i++)
		doc[o++] = '[';
	for (size_t i = 0; i < 100000; i++)
		doc[o++] = ']';
	doc[o++] = '}';
	CHECK_INT(versions_parse(doc, o, VERSIONING_AUTO, &l, err, sizeof(err)),
		  -EINVAL);
	/* Nesting within limits inside the array: entries dropped. */
	{
		const char *nest = "{\"versions\": [[[[\"1.0\"]]], \"0.0\"]}";

		CHECK_INT(versions_parse(nest, strlen(nest), VERSIONING_AUTO,
					 &l, err, sizeof(err)),
			  0);
	}
	CHECK_INT(l.n, 1);
	CHECK_INT(l.n_invalid, 1);
	version_list_clear(&l);
	free(doc);
}

/* The brief's central case: "x:1" is 1.10, never 10.0. */
test(resolve_major_minor_table)
{
	static const struct {
		const char *want;
		int ret;
		const char *got; /* or the message */
	} t[] = {
	    {NULL, 0, "10.0"},
	    {"1", 0, "1.10"},
	    {"10", 0, "10.0"},
	    {"1.2", 0, "1.2"},
	    {"1.0", 0, "1.0"},
	    {"1.10", 0, "1.10"},
	    {"10.0", 0, "10.0"},
	    {"0", -ENOENT,
	     "no such version '0' of 'x': no version with major 0"},
	    {"2", -ENOENT, "no such version '2' of 'x'"},
	    {"100", -ENOENT, "no such version '100' of 'x'"},
	    {"1.3", -ENOENT, "no such version '1.3' of 'x'"},
	    {"10.1", -ENOENT, "no such version '10.1' of 'x'"},
	    {"01", -EINVAL, "invalid version '01' of 'x'"},
	    {"1.", -EINVAL, "invalid version '1.' of 'x'"},
	    {"latest", -EINVAL,
	     "invalid version 'latest' of 'x': major_minor versions are MAJOR "
	     "or MAJOR.MINOR"},
	    {"99999999999999999999", -EINVAL,
	     "invalid version '99999999999999999999'"},
	    {"2021-01-02T03-04-05Z", -EINVAL, "invalid version"},
	    {"", -EINVAL, "invalid version '' of 'x'"},
	};
	static const char *const v[] = {"10.0", "1.10", "1.2", "1.0"};
	struct version_list l;

	CHECK_INT(version_list_from(v, N(v), VERSIONING_AUTO, &l), 0);
	CHECK_INT(l.sys, VERSIONING_MAJOR_MINOR);
	for (size_t i = 0; i < N(t); i++) {
		char err[SPEC_ERR_MAX] = "";
		const char *got = (const char *)1;
		int ret =
		    version_resolve(&l, "x", t[i].want, &got, err, sizeof(err));

		if (ret != t[i].ret) {
			test_fail(
			    __FILE__, __LINE__, "resolve(%s) = %d, want %d",
			    t[i].want ? t[i].want : "NULL", ret, t[i].ret);
			continue;
		}
		if (ret == 0) {
			CHECK_STR(got, t[i].got);
		} else {
			CHECK(got == NULL);
			CHECK_STR_CONTAINS(err, t[i].got);
		}
	}
	version_list_clear(&l);
}

test(resolve_simple_date)
{
	static const char *const v[] = {
	    "2021-01-02T03-04-05Z",
	    "2023-06-01T00-00-00Z",
	    "2022-12-31T23-59-59Z",
	};
	struct version_list l;
	char err[SPEC_ERR_MAX];
	const char *got;

	CHECK_INT(version_list_from(v, N(v), VERSIONING_AUTO, &l), 0);
	CHECK_INT(l.sys, VERSIONING_SIMPLE_DATE);
	CHECK_INT(version_resolve(&l, "d", NULL, &got, err, sizeof(err)), 0);
	CHECK_STR(got, "2023-06-01T00-00-00Z");
	CHECK_INT(version_resolve(&l, "d", "2022-12-31T23-59-59Z", &got, err,
				  sizeof(err)),
		  0);
	CHECK_STR(got, "2022-12-31T23-59-59Z");
	CHECK_INT(version_resolve(&l, "d", "2022-12-31T23-59-58Z", &got, err,
				  sizeof(err)),
		  -ENOENT);
	CHECK_STR(err, "no such version '2022-12-31T23-59-58Z' of 'd'");
	/* No partials for dates. */
	CHECK_INT(version_resolve(&l, "d", "2023", &got, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR_CONTAINS(err, "invalid version '2023' of 'd': simple_date "
				"versions are YYYY-MM-DDTHH-MM-SSZ");
	CHECK_INT(version_resolve(&l, "d", "1", &got, err, sizeof(err)),
		  -EINVAL);
	CHECK_INT(version_resolve(&l, "d", "1.0", &got, err, sizeof(err)),
		  -EINVAL);
	version_list_clear(&l);
}

test(resolve_empty_list)
{
	struct version_list l = {0};
	char err[SPEC_ERR_MAX];
	const char *got;

	CHECK_INT(version_list_from(NULL, 0, VERSIONING_AUTO, &l), 0);
	CHECK_INT(
	    version_resolve(&l, "fraud/xgb", NULL, &got, err, sizeof(err)),
	    -ENOENT);
	CHECK_STR(err, "no versions of 'fraud/xgb'");
	CHECK_INT(version_resolve(&l, "fraud/xgb", "1", &got, err, sizeof(err)),
		  -ENOENT);
	CHECK_STR_CONTAINS(err, "no such version '1' of 'fraud/xgb'");
	CHECK_INT(
	    version_resolve(&l, "fraud/xgb", "1.0", &got, err, sizeof(err)),
	    -ENOENT);
	/* A NULL name is allowed. */
	CHECK_INT(version_resolve(&l, NULL, "1.0", &got, err, sizeof(err)),
		  -ENOENT);
	version_list_clear(&l);
}

test(resolve_with_duplicates_from_document)
{
	struct version_list l;
	char got_s[256], err[SPEC_ERR_MAX];
	const char *got;

	CHECK_INT(parse_join("{\"versions\": [\"1.2\", \"1.10\", \"1.2\", "
			     "\"10.0\", \"1.10\", \"0.9\", \"10.0\"]}",
			     VERSIONING_AUTO, got_s, sizeof(got_s), &l),
		  0);
	CHECK_STR(got_s, "10.0 1.10 1.2 0.9");
	CHECK_INT(version_resolve(&l, "x", "1", &got, err, sizeof(err)), 0);
	CHECK_STR(got, "1.10");
	CHECK_INT(version_resolve(&l, "x", "0", &got, err, sizeof(err)), 0);
	CHECK_STR(got, "0.9");
	version_list_clear(&l);
}

test(list_add_keeps_order)
{
	struct version_list l = {0};
	static const char *const adds[] = {"1.0", "0.0", "10.0", "1.10",
					   "1.2", "1.0", "0.0"};
	char err[SPEC_ERR_MAX];
	const char *got;

	for (size_t i = 0; i < N(adds); i++)
		CHECK_INT(version_list_add(&l, adds[i]), 0);
	CHECK_INT(l.sys, VERSIONING_MAJOR_MINOR);
	CHECK_INT(l.n, 5);
	CHECK_STR(l.v[0], "10.0");
	CHECK_STR(l.v[1], "1.10");
	CHECK_STR(l.v[2], "1.2");
	CHECK_STR(l.v[3], "1.0");
	CHECK_STR(l.v[4], "0.0");
	CHECK_INT(version_list_add(&l, "1"), -EINVAL);
	CHECK_INT(version_list_add(&l, "2021-01-02T03-04-05Z"), -EINVAL);
	CHECK_INT(version_list_add(&l, "01.0"), -EINVAL);
	CHECK_INT(l.n, 5);
	CHECK_INT(version_resolve(&l, "x", "1", &got, err, sizeof(err)), 0);
	CHECK_STR(got, "1.10");
	version_list_clear(&l);

	/* A zeroed list takes its system from the first version. */
	CHECK_INT(version_list_add(&l, "2021-01-02T03-04-05Z"), 0);
	CHECK_INT(l.sys, VERSIONING_SIMPLE_DATE);
	CHECK_INT(version_list_add(&l, "2020-01-02T03-04-05Z"), 0);
	CHECK_INT(version_list_add(&l, "2022-01-02T03-04-05Z"), 0);
	CHECK_STR(l.v[0], "2022-01-02T03-04-05Z");
	CHECK_STR(l.v[2], "2020-01-02T03-04-05Z");
	CHECK_INT(version_list_add(&l, "1.0"), -EINVAL);
	version_list_clear(&l);
}

test(list_from_counts_invalid)
{
	static const char *const v[] = {"1.0", NULL, "x", "1.0", "0.5"};
	struct version_list l;

	CHECK_INT(version_list_from(v, N(v), VERSIONING_MAJOR_MINOR, &l), 0);
	CHECK_INT(l.n, 2);
	CHECK_INT(l.n_invalid, 2);
	CHECK_STR(l.v[0], "1.0");
	CHECK_STR(l.v[1], "0.5");
	version_list_clear(&l);
}

test(next_major_minor)
{
	static const struct {
		const char *const v[4];
		size_t n;
		bool major;
		const char *want;
	} t[] = {
	    {{NULL}, 0, false, "0.0"},
	    {{NULL}, 0, true, "0.0"},
	    {{"0.0"}, 1, false, "0.1"},
	    {{"0.0"}, 1, true, "1.0"},
	    {{"1.9", "0.3"}, 2, false, "1.10"},
	    {{"10.0", "1.10", "1.2"}, 3, false, "10.1"},
	    {{"10.0", "1.10", "1.2"}, 3, true, "11.0"},
	    {{"1.0", "1.0", "0.0"}, 3, false, "1.1"},
	};
	char buf[64];

	for (size_t i = 0; i < N(t); i++) {
		struct version_list l;

		CHECK_INT(
		    version_list_from(t[i].v, t[i].n, VERSIONING_AUTO, &l), 0);
		CHECK_INT(version_next(&l, t[i].major, buf, sizeof(buf)),
			  strlen(t[i].want));
		CHECK_STR(buf, t[i].want);
		version_list_clear(&l);
	}
}

test(next_overflow_and_space)
{
	static const char *const top_minor[] = {"1.2147483647"};
	static const char *const top_major[] = {"2147483647.0"};
	struct version_list l;
	char buf[64];

	CHECK_INT(version_list_from(top_minor, 1, VERSIONING_AUTO, &l), 0);
	CHECK_INT(version_next(&l, false, buf, sizeof(buf)), -EOVERFLOW);
	CHECK_INT(version_next(&l, true, buf, sizeof(buf)), 3);
	CHECK_STR(buf, "2.0");
	CHECK_INT(version_next(&l, true, buf, 3), -ENOSPC);
	version_list_clear(&l);
	CHECK_INT(version_list_from(top_major, 1, VERSIONING_AUTO, &l), 0);
	CHECK_INT(version_next(&l, true, buf, sizeof(buf)), -EOVERFLOW);
	CHECK_INT(version_next(&l, false, buf, sizeof(buf)), 12);
	CHECK_STR(buf, "2147483647.1");
	version_list_clear(&l);
}

test(next_simple_date)
{
	static const char *const future[] = {"9998-12-31T23-59-58Z"};
	struct version_list l = {.sys = VERSIONING_SIMPLE_DATE};
	char buf[64], now_s[64];
	int64_t sec;
	int32_t nsec;
	struct tm tm;
	time_t t;

	/* Empty: the current UTC time. */
	time_now(&sec, &nsec);
	t = (time_t)sec;
	gmtime_r(&t, &tm);
	strftime(now_s, sizeof(now_s), "%Y-%m-%dT%H-", &tm);
	CHECK_INT(version_next(&l, false, buf, sizeof(buf)), 20);
	CHECK(version_valid(VERSIONING_SIMPLE_DATE, buf));
	CHECK(strncmp(buf, now_s, 14) == 0);
	/* Never older than the newest: one second after it. */
	CHECK_INT(version_list_from(future, 1, VERSIONING_SIMPLE_DATE, &l), 0);
	CHECK_INT(version_next(&l, false, buf, sizeof(buf)), 20);
	CHECK_STR(buf, "9998-12-31T23-59-59Z");
	CHECK_INT(version_next(&l, false, buf, 20), -ENOSPC);
	version_list_clear(&l);
}

test(format_round_trip)
{
	static const char *const v[] = {"0.0", "1.10", "10.0", "1.2"};
	struct version_list l, back;
	char err[SPEC_ERR_MAX];
	struct buf b;

	buf_init(&b, 0);
	CHECK_INT(version_list_from(v, N(v), VERSIONING_AUTO, &l), 0);
	CHECK_INT(versions_format(&l, &b), 0);
	CHECK_STR(b.data,
		  "{\"versions\": [\"10.0\", \"1.10\", \"1.2\", \"0.0\"]}\n");
	CHECK_INT(versions_parse(b.data, b.len, VERSIONING_AUTO, &back, err,
				 sizeof(err)),
		  0);
	CHECK_INT(back.n, 4);
	for (size_t i = 0; i < back.n && i < l.n; i++)
		CHECK_STR(back.v[i], l.v[i]);
	version_list_clear(&back);
	buf_free(&b);

	/* The buffer's cap is honoured. */
	buf_init(&b, 10);
	CHECK_INT(versions_format(&l, &b), -EFBIG);
	buf_free(&b);
	version_list_clear(&l);

	l = (struct version_list){.sys = VERSIONING_MAJOR_MINOR};
	buf_init(&b, 0);
	CHECK_INT(versions_format(&l, &b), 0);
	CHECK_STR(b.data, "{\"versions\": []}\n");
	buf_free(&b);
}
