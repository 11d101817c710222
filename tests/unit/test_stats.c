/*
 * test_stats - the mount's counter table (fs/catalog/stats): every row
 * obeys the Prometheus conventions promtool checks (so a row added by a
 * later change cannot break the endpoint unnoticed), `assetfs stats`
 * keys stay distinct, and labelled series from registered sources are
 * appended with their values escaped.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/catalog/stats.h"
#include "tests/unit/test.h"

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool snake(const char *s)
{
	if (!islower((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) &&
		    !isdigit((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

test(table_rows_follow_prometheus_conventions)
{
	int i, j;

	for (i = 0; i < STAT__COUNT; i++) {
		const char *p = stats_prom_name((enum stat_id)i);
		const char *k = stats_name((enum stat_id)i);

		CHECK(snake(p) && snake(k));
		CHECK(strncmp(p, "assetfs_", 8) == 0);
		CHECK(strlen(stats_help((enum stat_id)i)) > 0);
		CHECK(!strchr(stats_help((enum stat_id)i), '\n'));
		if (stats_is_gauge((enum stat_id)i))
			CHECK(!ends_with(p, "_total"));
		else
			CHECK(ends_with(p, "_total"));
		for (j = 0; j < i; j++) {
			CHECK(strcmp(p, stats_prom_name((enum stat_id)j)) != 0);
			CHECK(strcmp(k, stats_name((enum stat_id)j)) != 0);
		}
	}
	CHECK_STR(stats_name(STAT_BYTES_FETCHED), "bytes_fetched");
	CHECK_STR(stats_prom_name(STAT_BYTES_FETCHED),
		  "assetfs_fetched_bytes_total");
	CHECK(stats_is_gauge(STAT_CACHE_BYTES));
}

test(formats_share_the_table)
{
	struct stats *s = stats_new();
	struct buf b;

	CHECK(s != NULL);
	stats_add(s, STAT_BYTES_FETCHED, 42);
	stats_set(s, STAT_CACHE_BYTES, 7);
	buf_init(&b, 0);
	CHECK_INT(stats_format(s, STATS_FMT_TEXT, &b), 0);
	CHECK_STR_CONTAINS(b.data, "bytes_fetched 42\n");
	CHECK_STR_CONTAINS(b.data, "cache_bytes 7\n");
	buf_reset(&b);
	CHECK_INT(stats_format(s, STATS_FMT_PROM, &b), 0);
	CHECK_STR_CONTAINS(b.data,
			   "# HELP assetfs_fetched_bytes_total Body "
			   "bytes received from the store.\n"
			   "# TYPE assetfs_fetched_bytes_total counter\n"
			   "assetfs_fetched_bytes_total 42\n");
	CHECK_STR_CONTAINS(b.data, "# TYPE assetfs_cache_bytes gauge\n"
				   "assetfs_cache_bytes 7\n");
	buf_reset(&b);
	CHECK_INT(stats_format(s, STATS_FMT_JSON, &b), 0);
	CHECK_STR_CONTAINS(b.data, "\"bytes_fetched\": 42");
	buf_free(&b);
	/* a capped buffer fails cleanly */
	buf_init(&b, 16);
	CHECK_INT(stats_format(s, STATS_FMT_PROM, &b), -EFBIG);
	buf_free(&b);
	stats_free(s);
}

static int pin_source(void *ctx, struct buf *out)
{
	const char *labels[] = {"spec", ctx, "version", "1.0"};
	int ret;

	ret = stats_prom_family(out, "assetfs_test_ready", STAT_KIND_GAUGE,
				"A labelled gauge.");
	return ret ? ret
		   : stats_prom_sample(out, "assetfs_test_ready", labels, 2, 1);
}

static int failing_source(void *ctx, struct buf *out)
{
	return -EIO;
}

test(sources_append_labelled_series)
{
	struct stats *s = stats_new();
	char spec[] = "a\"b\\c\nd";
	struct buf b;
	int i;

	CHECK(s != NULL);
	CHECK_INT(stats_add_source(s, pin_source, spec), 0);
	buf_init(&b, 0);
	CHECK_INT(stats_format(s, STATS_FMT_PROM, &b), 0);
	CHECK_STR_CONTAINS(b.data,
			   "# HELP assetfs_test_ready A labelled "
			   "gauge.\n# TYPE assetfs_test_ready gauge\n"
			   "assetfs_test_ready{spec=\"a\\\"b\\\\c\\nd\","
			   "version=\"1.0\"} 1\n");
	/* not in `assetfs stats`: it prints the table only */
	buf_reset(&b);
	CHECK_INT(stats_format(s, STATS_FMT_TEXT, &b), 0);
	CHECK(!strstr(b.data, "test_ready"));
	/* removed: gone; a failing source fails the scrape */
	stats_remove_source(s, pin_source, spec);
	buf_reset(&b);
	CHECK_INT(stats_format(s, STATS_FMT_PROM, &b), 0);
	CHECK(!strstr(b.data, "test_ready"));
	CHECK_INT(stats_add_source(s, failing_source, NULL), 0);
	buf_reset(&b);
	CHECK_INT(stats_format(s, STATS_FMT_PROM, &b), -EIO);
	stats_remove_source(s, failing_source, NULL);
	for (i = 0; i < STATS_SOURCES_MAX; i++)
		CHECK_INT(stats_add_source(s, pin_source, spec), 0);
	CHECK_INT(stats_add_source(s, pin_source, spec), -ENOSPC);
	buf_free(&b);
	stats_free(s);
}
