/*
 * timeutil - see timeutil.h. Date arithmetic uses timegm() on a struct tm
 * that we validate field by field first, so "2021-02-30" is an error rather
 * than silently normalised to March.
 */
#include "common/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t time_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t time_mono_ms(void)
{
	return time_mono_ns() / 1000000;
}

void time_now(int64_t *sec, int32_t *nsec)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	*sec = ts.tv_sec;
	*nsec = (int32_t)ts.tv_nsec;
}

/* Read exactly @n digits at *@p; advance. Returns the value or -1. */
static int take_digits(const char **p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return v;
}

static int days_in_month(int y, int m)
{
	static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 ? 28 + leap : dm[m - 1];
}

int time_parse_iso8601(const char *s, int64_t *sec, int32_t *nsec)
{
	const char *p = s;
	int y, mo, d, h, mi, se, off = 0;
	int32_t frac = 0;
	struct tm tm;
	time_t t;

	if (!s)
		return -EINVAL;
	y = take_digits(&p, 4);
	if (y < 0 || *p++ != '-')
		return -EINVAL;
	mo = take_digits(&p, 2);
	if (mo < 1 || mo > 12 || *p++ != '-')
		return -EINVAL;
	d = take_digits(&p, 2);
	if (d < 1 || d > days_in_month(y, mo))
		return -EINVAL;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -EINVAL;
	p++;
	h = take_digits(&p, 2);
	if (h < 0 || h > 23 || *p++ != ':')
		return -EINVAL;
	mi = take_digits(&p, 2);
	if (mi < 0 || mi > 59 || *p++ != ':')
		return -EINVAL;
	se = take_digits(&p, 2);
	if (se < 0 || se > 60)
		return -EINVAL;
	if (*p == '.' || *p == ',') {
		int digits = 0;

		p++;
		while (isdigit((unsigned char)*p)) {
			if (digits < 9) {
				frac = frac * 10 + (*p - '0');
				digits++;
			}
			p++;
		}
		if (digits == 0)
			return -EINVAL;
		while (digits++ < 9)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;
		int oh, om;

		oh = take_digits(&p, 2);
		if (*p == ':')
			p++;
		om = take_digits(&p, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -EINVAL;
		off = sign * (oh * 3600 + om * 60);
	}
	if (*p != '\0')
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	*sec = (int64_t)t - off;
	*nsec = frac;
	return 0;
}

int time_format_iso8601(int64_t sec, int32_t nsec, char *buf, size_t len)
{
	struct tm tm;
	time_t t = (time_t)sec;
	int n;

	if (len < 28)
		return -ENOSPC;
	if (!gmtime_r(&t, &tm))
		return -EINVAL;
	/* Only four-digit years read back as ISO-8601 (and fit 27 bytes). */
	if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return -EINVAL;
	n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		     tm.tm_min, tm.tm_sec, (int)(nsec / 1000));
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}
