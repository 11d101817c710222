/*
 * test_assets_index - `assets.index` parsing, adding and formatting
 * (DESIGN §2): invalid names dropped and counted, sorted and unique, caps.
 */
#include <errno.h>
#include <stdlib.h>

#include "resolver/assets_index.h"
#include "resolver/spec.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int parse(const char *json, struct assets_index *ix, char *err)
{
	err[0] = '\0';
	return assets_index_parse(json, strlen(json), ix, err, SPEC_ERR_MAX);
}

static void join(const struct assets_index *ix, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < ix->n; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? " " : "",
				      ix->names[i]);
}

test(parse_table)
{
	static const struct {
		const char *json, *want;
		size_t n_invalid;
	} t[] = {
	    {"{\"assets\": []}", "", 0},
	    {"{\"assets\": [\"fraud/xgb\", \"a\"]}", "a fraud/xgb", 0},
	    {"{\"assets\": [\"b\", \"a\", \"b\", \"a\", \"c\"]}", "a b c", 0},
	    {"{\"assets\": [\"../x\", \"/abs\", \"a//b\", \"ok\", 1, null, "
	     "[], {}, \"\", \".\", \"a b\"]}",
	     "ok", 10},
	    {"{\"other\": 1, \"assets\": [\"x\"]}", "x", 0},
	    {"\n {\"assets\" : [ \"x\" ] } \n", "x", 0},
	};
	char got[512], err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(t); i++) {
		struct assets_index ix;

		if (parse(t[i].json, &ix, err) != 0) {
			test_fail(__FILE__, __LINE__, "row %zu: %s", i, err);
			continue;
		}
		join(&ix, got, sizeof(got));
		CHECK_STR(got, t[i].want);
		CHECK_INT(ix.n_invalid, t[i].n_invalid);
		assets_index_clear(&ix);
		CHECK(ix.names == NULL && ix.n == 0);
		assets_index_clear(&ix);
	}
	assets_index_clear(NULL);
}

test(parse_errors_table)
{
	static const struct {
		const char *json, *msg;
	} bad[] = {
	    {"", "assets.index is empty"},
	    {"{", "assets.index is not valid JSON (at byte"},
	    {"{\"assets\": [\"a\",]}", "not valid JSON"},
	    {"{\"assets\": []} x", "trailing data at byte 15"},
	    {"[\"a\"]", "assets.index is not a JSON object"},
	    {"{}", "assets.index: \"assets\" is missing"},
	    {"{\"assets\": \"a\"}", "assets.index: \"assets\" is not an array"},
	    {"{\"assets\": null}", "\"assets\" is not an array"},
	};
	char err[SPEC_ERR_MAX];

	for (size_t i = 0; i < N(bad); i++) {
		struct assets_index ix = {.n = 42};

		CHECK_INT(parse(bad[i].json, &ix, err), -EINVAL);
		CHECK_STR_CONTAINS(err, bad[i].msg);
		CHECK(ix.names == NULL && ix.n == 0);
	}
}

test(caps_and_huge)
{
	struct assets_index ix;
	char err[SPEC_ERR_MAX];
	size_t big = (size_t)ASSETS_INDEX_MAX_BYTES + 1;
	char *doc = malloc(big);
	struct buf b;
	size_t n = 0;

	memset(doc, ' ', big);
	CHECK_INT(assets_index_parse(doc, big, &ix, err, sizeof(err)), -EFBIG);
	CHECK_STR_CONTAINS(err, "over the");
	free(doc);

	/* 100k names in reverse order with duplicates. */
	buf_init(&b, 0);
	buf_puts(&b, "{\"assets\": [");
	for (int i = 99999; i >= 0; i--, n++)
		buf_printf(&b, "%s\"ns%d/m%05d\"", n ? "," : "", (i / 2) % 10,
			   i / 2);
	buf_puts(&b, "]}");
	CHECK_INT(assets_index_parse(b.data, b.len, &ix, err, sizeof(err)), 0);
	CHECK_INT(ix.n, 50000);
	CHECK_STR(ix.names[0], "ns0/m00000");
	for (size_t i = 1; i < ix.n; i++)
		CHECK(strcmp(ix.names[i - 1], ix.names[i]) < 0);
	assets_index_clear(&ix);

	/* Deep nesting. */
	buf_reset(&b);
	buf_puts(&b, "{\"assets\": ");
	for (int i = 0; i < 100000; i++)
		buf_puts(&b, "[");
	CHECK_INT(assets_index_parse(b.data, b.len, &ix, err, sizeof(err)),
		  -EINVAL);
	buf_free(&b);
}

test(add_keeps_sorted_unique)
{
	struct assets_index ix = {0};
	static const char *const adds[] = {"m", "a/b", "z", "a", "m", "a/b"};
	char got[256];

	for (size_t i = 0; i < N(adds); i++)
		CHECK_INT(assets_index_add(&ix, adds[i]), 0);
	join(&ix, got, sizeof(got));
	CHECK_STR(got, "a a/b m z");
	CHECK_INT(assets_index_add(&ix, "../x"), -EINVAL);
	CHECK_INT(assets_index_add(&ix, ""), -EINVAL);
	CHECK_INT(assets_index_add(&ix, "a//b"), -EINVAL);
	CHECK_INT(assets_index_add(&ix, NULL), -EINVAL);
	CHECK_INT(ix.n, 4);
	assets_index_clear(&ix);
}

test(format_round_trip)
{
	struct assets_index ix, back;
	char err[SPEC_ERR_MAX], a[256], b2[256];
	struct buf b;

	CHECK_INT(parse("{\"assets\": [\"fraud/xgb\", \"a\", \"fraud/lgbm\"]}",
			&ix, err),
		  0);
	buf_init(&b, 0);
	CHECK_INT(assets_index_format(&ix, &b), 0);
	CHECK_STR(b.data,
		  "{\"assets\": [\"a\", \"fraud/lgbm\", \"fraud/xgb\"]}\n");
	CHECK_INT(assets_index_parse(b.data, b.len, &back, err, sizeof(err)),
		  0);
	join(&ix, a, sizeof(a));
	join(&back, b2, sizeof(b2));
	CHECK_STR(b2, a);
	assets_index_clear(&back);
	buf_free(&b);
	buf_init(&b, 5);
	CHECK_INT(assets_index_format(&ix, &b), -EFBIG);
	buf_free(&b);
	assets_index_clear(&ix);

	buf_init(&b, 0);
	CHECK_INT(assets_index_format(&ix, &b), 0);
	CHECK_STR(b.data, "{\"assets\": []}\n");
	buf_free(&b);
}
