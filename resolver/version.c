/*
 * version - see version.h.
 *
 * major_minor versions are canonical decimal: no sign, no leading zero
 * (so "01.0" is not a second spelling of "1.0"), each part at most
 * INT32_MAX. With canonical forms, version_cmp() == 0 exactly when the
 * strings are equal, which is what lets a sorted list be de-duplicated by
 * comparing neighbours. Numbers are accumulated with an overflow check:
 * "99999999999999999999.0" is invalid, never undefined behaviour.
 */
#include "resolver/version.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/timeutil.h"
#include "resolver/resolver_int.h"
#include "resolver/spec.h"

#define QUOTE_BUF (RESOLVER_QUOTE_MAX * 4 + 8)
#define DATE_LEN 20 /* YYYY-MM-DDTHH-MM-SSZ */

static const char *const versioning_names[] = {
    [VERSIONING_AUTO] = "auto",
    [VERSIONING_MAJOR_MINOR] = "major_minor",
    [VERSIONING_SIMPLE_DATE] = "simple_date",
};

int versioning_parse(const char *s, enum versioning *out)
{
	for (size_t i = 0; s && i < 3; i++) {
		if (strcasecmp(s, versioning_names[i]) == 0) {
			*out = (enum versioning)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *versioning_name(enum versioning v)
{
	if ((unsigned)v > VERSIONING_SIMPLE_DATE)
		return "unknown";
	return versioning_names[v];
}

int versioning_from_env(enum versioning *out)
{
	const char *s = getenv("MODELKIT_ASSETS_VERSIONING_SYSTEM");

	if (!s || !*s) {
		*out = VERSIONING_AUTO;
		return 0;
	}
	return versioning_parse(s, out);
}

/*
 * Parse a canonical decimal number of @n bytes at @s into *@out.
 * Returns false for empty, non-digits, a leading zero or > INT32_MAX.
 */
static bool parse_part(const char *s, size_t n, uint32_t *out)
{
	uint32_t v = 0;

	if (n == 0 || n > 10 || (s[0] == '0' && n > 1))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (INT32_MAX - (uint32_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* Split a complete major_minor version; false if it is not one. */
static bool mm_split(const char *v, uint32_t *major, uint32_t *minor)
{
	const char *dot;
	size_t n;

	if (!v)
		return false;
	n = strnlen(v, SPEC_VERSION_MAX + 1);
	if (n > SPEC_VERSION_MAX)
		return false;
	dot = memchr(v, '.', n);
	if (!dot)
		return false;
	return parse_part(v, (size_t)(dot - v), major) &&
	       parse_part(dot + 1, n - (size_t)(dot - v) - 1, minor);
}

static bool two(const char *p, int lo, int hi, int *out)
{
	int v;

	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return false;
	v = (p[0] - '0') * 10 + (p[1] - '0');
	if (out)
		*out = v;
	return v >= lo && v <= hi;
}

static bool date_valid(const char *v)
{
	static const int dm[] = {31, 29, 31, 30, 31, 30,
				 31, 31, 30, 31, 30, 31};
	int y = 0, mo = 0, d = 0;

	if (!v || strnlen(v, DATE_LEN + 1) != DATE_LEN)
		return false;
	for (int i = 0; i < 4; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		y = y * 10 + (v[i] - '0');
	}
	if (v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != '-' ||
	    v[16] != '-' || v[19] != 'Z')
		return false;
	if (!two(v + 5, 1, 12, &mo) || !two(v + 8, 1, 31, &d) ||
	    !two(v + 11, 0, 23, NULL) || !two(v + 14, 0, 59, NULL) ||
	    !two(v + 17, 0, 59, NULL))
		return false;
	if (d > dm[mo - 1])
		return false;
	if (mo == 2 && d == 29 &&
	    !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	return true;
}

bool version_valid(enum versioning sys, const char *v)
{
	uint32_t a, b;

	switch (sys) {
	case VERSIONING_MAJOR_MINOR:
		return mm_split(v, &a, &b);
	case VERSIONING_SIMPLE_DATE:
		return date_valid(v);
	case VERSIONING_AUTO:
		return mm_split(v, &a, &b) || date_valid(v);
	}
	return false;
}

bool version_is_major(const char *v)
{
	uint32_t m;

	return v && parse_part(v, strnlen(v, 11), &m);
}

int version_cmp(enum versioning sys, const char *a, const char *b)
{
	uint32_t ama = 0, ami = 0, bma = 0, bmi = 0;

	if (sys == VERSIONING_SIMPLE_DATE) {
		int c = strcmp(a, b);

		return c < 0 ? -1 : c > 0;
	}
	mm_split(a, &ama, &ami);
	mm_split(b, &bma, &bmi);
	if (ama != bma)
		return ama < bma ? -1 : 1;
	if (ami != bmi)
		return ami < bmi ? -1 : 1;
	return 0;
}

unsigned long version_major(const char *v)
{
	uint32_t ma = 0, mi = 0;

	if (!mm_split(v, &ma, &mi))
		return 0;
	return ma;
}

void version_list_clear(struct version_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* qsort has no context argument: sort each system with its own function. */
static int cmp_mm_desc(const void *a, const void *b)
{
	return -version_cmp(VERSIONING_MAJOR_MINOR, *(char *const *)a,
			    *(char *const *)b);
}

static int cmp_date_desc(const void *a, const void *b)
{
	return -version_cmp(VERSIONING_SIMPLE_DATE, *(char *const *)a,
			    *(char *const *)b);
}

/*
 * Detect the system of @n candidate strings (NULL entries skipped): every
 * valid entry a date (and at least one) -> simple_date, else major_minor.
 */
static enum versioning detect(const char *const *v, size_t n)
{
	size_t dates = 0, mm = 0;

	for (size_t i = 0; i < n; i++) {
		if (!v[i])
			continue;
		if (date_valid(v[i]))
			dates++;
		else if (version_valid(VERSIONING_MAJOR_MINOR, v[i]))
			mm++;
	}
	return dates > 0 && mm == 0 ? VERSIONING_SIMPLE_DATE
				    : VERSIONING_MAJOR_MINOR;
}

/*
 * Build @out from @n strings (NULL entries count as invalid), copying the
 * valid ones, then sort newest first and drop duplicates.
 */
static int build_list(const char *const *v, size_t n, enum versioning sys,
		      struct version_list *out)
{
	struct version_list l = {0};
	size_t w;

	if (sys == VERSIONING_AUTO)
		sys = detect(v, n);
	l.sys = sys;
	if (n) {
		l.v = calloc(n, sizeof(*l.v));
		if (!l.v)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (!v[i] || !version_valid(sys, v[i])) {
			l.n_invalid++;
			continue;
		}
		l.v[l.n] = strdup(v[i]);
		if (!l.v[l.n]) {
			version_list_clear(&l);
			return -ENOMEM;
		}
		l.n++;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v),
		      sys == VERSIONING_SIMPLE_DATE ? cmp_date_desc
						    : cmp_mm_desc);
	w = 0;
	for (size_t i = 0; i < l.n; i++) {
		if (w > 0 && strcmp(l.v[w - 1], l.v[i]) == 0) {
			free(l.v[i]);
			continue;
		}
		l.v[w++] = l.v[i];
	}
	l.n = w;
	*out = l;
	return 0;
}

int version_list_from(const char *const *v, size_t n, enum versioning sys,
		      struct version_list *out)
{
	memset(out, 0, sizeof(*out));
	return build_list(v, n, sys, out);
}

int versions_parse(const char *json, size_t len, enum versioning sys,
		   struct version_list *out, char *err, size_t errlen)
{
	const char **strs = NULL;
	cJSON *root = NULL, *arr, *it;
	size_t n = 0, i = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	if (len > VERSIONS_MAX_BYTES) {
		resolver_err(
		    err, errlen,
		    "versions document of %zu bytes is over the %u byte cap",
		    len, VERSIONS_MAX_BYTES);
		return -EFBIG;
	}
	ret = resolver_json_parse(json, len, "versions document", &root, err,
				  errlen);
	if (ret < 0)
		return ret;
	if (!cJSON_IsObject(root)) {
		resolver_err(err, errlen,
			     "versions document is not a JSON object");
		ret = -EINVAL;
		goto out;
	}
	arr = cJSON_GetObjectItemCaseSensitive(root, "versions");
	if (!arr) {
		resolver_err(err, errlen,
			     "versions document has no \"versions\"");
		ret = -EINVAL;
		goto out;
	}
	if (!cJSON_IsArray(arr)) {
		resolver_err(
		    err, errlen,
		    "\"versions\" in versions document is not an array");
		ret = -EINVAL;
		goto out;
	}
	n = (size_t)cJSON_GetArraySize(arr);
	if (n) {
		strs = calloc(n, sizeof(*strs));
		if (!strs) {
			ret = -ENOMEM;
			goto out;
		}
	}
	cJSON_ArrayForEach(it, arr)
	{
		if (i >= n)
			break;
		strs[i++] = cJSON_IsString(it) ? it->valuestring : NULL;
	}
	ret = build_list(strs, i, sys, out);
	if (ret == -ENOMEM)
		resolver_err(err, errlen, "out of memory");
out:
	free(strs);
	cJSON_Delete(root);
	return ret;
}

/* First index whose version is not newer than @v (insertion point). */
static size_t lower_bound(const struct version_list *l, const char *v)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (version_cmp(l->sys, l->v[mid], v) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int version_list_add(struct version_list *l, const char *v)
{
	char **nv, *copy;
	size_t at;

	if (l->sys == VERSIONING_AUTO) {
		if (l->n)
			return -EINVAL;
		l->sys = date_valid(v) ? VERSIONING_SIMPLE_DATE
				       : VERSIONING_MAJOR_MINOR;
	}
	if (!version_valid(l->sys, v))
		return -EINVAL;
	at = lower_bound(l, v);
	if (at < l->n && strcmp(l->v[at], v) == 0)
		return 0;
	copy = strdup(v);
	if (!copy)
		return -ENOMEM;
	nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv) {
		free(copy);
		return -ENOMEM;
	}
	l->v = nv;
	memmove(l->v + at + 1, l->v + at, (l->n - at) * sizeof(*l->v));
	l->v[at] = copy;
	l->n++;
	return 0;
}

int version_resolve(const struct version_list *l, const char *name,
		    const char *want, const char **out, char *err,
		    size_t errlen)
{
	enum versioning sys =
	    l->sys == VERSIONING_AUTO ? VERSIONING_MAJOR_MINOR : l->sys;
	char qn[QUOTE_BUF], qw[QUOTE_BUF];

	*out = NULL;
	resolver_quote(name ? name : "", name ? strnlen(name, 4096) : 0, qn,
		       sizeof(qn));
	if (!want) {
		if (l->n == 0) {
			resolver_err(err, errlen, "no versions of '%s'", qn);
			return -ENOENT;
		}
		*out = l->v[0];
		return 0;
	}
	resolver_quote(want, strnlen(want, 4096), qw, sizeof(qw));
	if (version_valid(sys, want)) {
		for (size_t i = 0; i < l->n; i++) {
			if (strcmp(l->v[i], want) == 0) {
				*out = l->v[i];
				return 0;
			}
		}
		resolver_err(err, errlen, "no such version '%s' of '%s'", qw,
			     qn);
		return -ENOENT;
	}
	if (sys == VERSIONING_MAJOR_MINOR && version_is_major(want)) {
		unsigned long major = strtoul(want, NULL, 10);

		/* Newest first: the first match is the newest of the major. */
		for (size_t i = 0; i < l->n; i++) {
			if (version_major(l->v[i]) == major) {
				*out = l->v[i];
				return 0;
			}
		}
		resolver_err(
		    err, errlen,
		    "no such version '%s' of '%s': no version with major %lu",
		    qw, qn, major);
		return -ENOENT;
	}
	if (sys == VERSIONING_SIMPLE_DATE)
		resolver_err(err, errlen,
			     "invalid version '%s' of '%s': simple_date "
			     "versions are YYYY-MM-DDTHH-MM-SSZ",
			     qw, qn);
	else
		resolver_err(err, errlen,
			     "invalid version '%s' of '%s': major_minor "
			     "versions are MAJOR or MAJOR.MINOR",
			     qw, qn);
	return -EINVAL;
}

static int format_date(int64_t sec, char *buf, size_t len)
{
	struct tm tm;
	time_t t = (time_t)sec;
	int n;

	if (!gmtime_r(&t, &tm))
		return -EOVERFLOW;
	if (tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
		return -EOVERFLOW;
	n = snprintf(buf, len, "%04d-%02d-%02dT%02d-%02d-%02dZ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		     tm.tm_min, tm.tm_sec);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

static int64_t date_seconds(const char *v)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = atoi(v) - 1900;
	tm.tm_mon = (v[5] - '0') * 10 + (v[6] - '0') - 1;
	tm.tm_mday = (v[8] - '0') * 10 + (v[9] - '0');
	tm.tm_hour = (v[11] - '0') * 10 + (v[12] - '0');
	tm.tm_min = (v[14] - '0') * 10 + (v[15] - '0');
	tm.tm_sec = (v[17] - '0') * 10 + (v[18] - '0');
	return (int64_t)timegm(&tm);
}

int version_next(const struct version_list *l, bool bump_major, char *buf,
		 size_t len)
{
	uint32_t ma = 0, mi = 0;
	int n;

	if (l->sys == VERSIONING_SIMPLE_DATE) {
		int64_t sec;
		int32_t nsec;

		time_now(&sec, &nsec);
		if (l->n && sec <= date_seconds(l->v[0]))
			sec = date_seconds(l->v[0]) + 1;
		return format_date(sec, buf, len);
	}
	if (l->n == 0) {
		n = snprintf(buf, len, "0.0");
	} else {
		if (!mm_split(l->v[0], &ma, &mi))
			return -EINVAL;
		if (bump_major) {
			if (ma >= INT32_MAX)
				return -EOVERFLOW;
			n = snprintf(buf, len, "%u.0", ma + 1);
		} else {
			if (mi >= INT32_MAX)
				return -EOVERFLOW;
			n = snprintf(buf, len, "%u.%u", ma, mi + 1);
		}
	}
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

int versions_format(const struct version_list *l, struct buf *out)
{
	int ret;

	/* Valid versions hold only [0-9.TZ-]: nothing to escape. */
	ret = buf_puts(out, "{\"versions\": [");
	for (size_t i = 0; ret == 0 && i < l->n; i++)
		ret = buf_printf(out, "%s\"%s\"", i ? ", " : "", l->v[i]);
	if (ret == 0)
		ret = buf_puts(out, "]}\n");
	return ret;
}
