/*
 * spec - see spec.h. Also home of the resolver's private helpers
 * (resolver_int.h): quoting hostile input into error messages and the
 * relative path check shared with meta.c.
 *
 * Every check walks the input once with explicit lengths, so a spec is
 * parsed without copying its parts first and an over-long input costs at
 * most one bounded scan.
 */
#include "resolver/spec.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/resolver_int.h"

/* Room for a quoted piece: every byte may become "\xNN", plus "...". */
#define QUOTE_BUF (RESOLVER_QUOTE_MAX * 4 + 8)
#define SPEC_TEXT_MAX (SPEC_NAME_MAX + 1 + SPEC_VERSION_MAX + 2 + SPEC_PATH_MAX)

void resolver_quote(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	size_t lim = n > RESOLVER_QUOTE_MAX ? RESOLVER_QUOTE_MAX : n;

	if (!outlen)
		return;
	for (size_t i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[5];
		size_t tl;

		if (c >= 0x20 && c < 0x7f) {
			tmp[0] = (char)c;
			tl = 1;
		} else {
			snprintf(tmp, sizeof(tmp), "\\x%02x", c);
			tl = 4;
		}
		if (o + tl >= outlen)
			break;
		memcpy(out + o, tmp, tl);
		o += tl;
	}
	if (lim < n && o + 3 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

int resolver_json_parse(const char *json, size_t len, const char *what,
			cJSON **root, char *err, size_t errlen)
{
	const char *end = NULL;
	size_t off;
	cJSON *r;

	/*
	 * cJSON records the last error position in a global of its own
	 * (cJSON_GetErrorPtr). We never read it: the position comes from
	 * return_parse_end, which is per call, so concurrent parses in
	 * several threads give each caller its own correct message.
	 */
	*root = NULL;
	if (!json || len == 0) {
		resolver_err(err, errlen, "%s is empty", what);
		return -EINVAL;
	}
	r = cJSON_ParseWithLengthOpts(json, len, &end, 0);
	off =
	    end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
	if (!r) {
		resolver_err(err, errlen, "%s is not valid JSON (at byte %zu)",
			     what, off);
		return -EINVAL;
	}
	for (; off < len; off++) {
		char c = json[off];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			cJSON_Delete(r);
			resolver_err(
			    err, errlen,
			    "%s is not valid JSON (trailing data at byte %zu)",
			    what, off);
			return -EINVAL;
		}
	}
	*root = r;
	return 0;
}

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool is_name_char(unsigned char c)
{
	return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

/* Describe byte @c for a message: "' '" or "'\x01'". */
static void char_desc(unsigned char c, char out[8])
{
	if (c >= 0x20 && c < 0x7f)
		snprintf(out, 8, "'%c'", c);
	else
		snprintf(out, 8, "'\\x%02x'", c);
}

static int check_name_n(const char *s, size_t n, char *err, size_t errlen)
{
	char q[QUOTE_BUF], cd[8];
	size_t seg = 0; /* start of the current segment */

	resolver_quote(s, n, q, sizeof(q));
	if (n == 0) {
		resolver_err(err, errlen, "invalid asset name '': empty");
		return -EINVAL;
	}
	if (n > SPEC_NAME_MAX) {
		resolver_err(err, errlen,
			     "invalid asset name '%s': longer than %d bytes", q,
			     SPEC_NAME_MAX);
		return -EINVAL;
	}
	if (s[0] == '/') {
		resolver_err(err, errlen,
			     "invalid asset name '%s': leading '/'", q);
		return -EINVAL;
	}
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = i < n ? (unsigned char)s[i] : '/';
		size_t len;

		if (c != '/') {
			if (!is_name_char(c)) {
				char_desc(c, cd);
				resolver_err(err, errlen,
					     "invalid asset name '%s': invalid "
					     "character %s",
					     q, cd);
				return -EINVAL;
			}
			continue;
		}
		len = i - seg;
		if (len == 0) {
			resolver_err(
			    err, errlen,
			    i == n ? "invalid asset name '%s': trailing '/'"
				   : "invalid asset name '%s': empty segment",
			    q);
			return -EINVAL;
		}
		if ((len == 1 && s[seg] == '.') ||
		    (len == 2 && s[seg] == '.' && s[seg + 1] == '.')) {
			resolver_err(err, errlen,
				     "invalid asset name '%s': segment '%.*s' "
				     "is not allowed",
				     q, (int)len, s + seg);
			return -EINVAL;
		}
		if (!is_alnum((unsigned char)s[seg]) ||
		    !is_alnum((unsigned char)s[i - 1])) {
			char qs[QUOTE_BUF];

			resolver_quote(s + seg, len, qs, sizeof(qs));
			resolver_err(
			    err, errlen,
			    "invalid asset name '%s': segment '%s' must start "
			    "and end with a letter or digit",
			    q, qs);
			return -EINVAL;
		}
		seg = i + 1;
	}
	return 0;
}

int resolver_check_relpath(const char *p, size_t n, const char *what, char *err,
			   size_t errlen)
{
	char q[QUOTE_BUF], cd[8];
	size_t seg = 0;

	resolver_quote(p, n, q, sizeof(q));
	if (n == 0) {
		resolver_err(err, errlen, "invalid %s '': empty", what);
		return -EINVAL;
	}
	if (n > SPEC_PATH_MAX) {
		resolver_err(err, errlen,
			     "invalid %s '%s': longer than %d bytes", what, q,
			     SPEC_PATH_MAX);
		return -EINVAL;
	}
	if (p[0] == '/') {
		resolver_err(err, errlen, "invalid %s '%s': absolute path",
			     what, q);
		return -EINVAL;
	}
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = i < n ? (unsigned char)p[i] : '/';
		size_t len;

		if (c != '/') {
			if (c < 0x20 || c == 0x7f) {
				char_desc(c, cd);
				resolver_err(
				    err, errlen,
				    "invalid %s '%s': invalid character %s",
				    what, q, cd);
				return -EINVAL;
			}
			continue;
		}
		len = i - seg;
		if (len == 0) {
			resolver_err(err, errlen,
				     i == n ? "invalid %s '%s': trailing '/'"
					    : "invalid %s '%s': empty segment",
				     what, q);
			return -EINVAL;
		}
		if ((len == 1 && p[seg] == '.') ||
		    (len == 2 && p[seg] == '.' && p[seg + 1] == '.')) {
			resolver_err(
			    err, errlen,
			    "invalid %s '%s': segment '%.*s' is not allowed",
			    what, q, (int)len, p + seg);
			return -EINVAL;
		}
		seg = i + 1;
	}
	return 0;
}

int spec_check_name(const char *name, char *err, size_t errlen)
{
	if (!name) {
		resolver_err(err, errlen, "invalid asset name: none given");
		return -EINVAL;
	}
	return check_name_n(name, strnlen(name, SPEC_NAME_MAX + 1), err,
			    errlen);
}

int spec_check_relpath(const char *path, char *err, size_t errlen)
{
	if (!path) {
		resolver_err(err, errlen, "invalid path: none given");
		return -EINVAL;
	}
	return resolver_check_relpath(path, strnlen(path, SPEC_PATH_MAX + 1),
				      "path", err, errlen);
}

static int check_version_text(const char *v, size_t n, const char *spec_q,
			      char *err, size_t errlen)
{
	char q[QUOTE_BUF], cd[8];

	resolver_quote(v, n, q, sizeof(q));
	if (n == 0) {
		resolver_err(err, errlen,
			     "invalid version '' in spec '%s': empty", spec_q);
		return -EINVAL;
	}
	if (n > SPEC_VERSION_MAX) {
		resolver_err(
		    err, errlen,
		    "invalid version '%s' in spec '%s': longer than %d bytes",
		    q, spec_q, SPEC_VERSION_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!is_name_char((unsigned char)v[i])) {
			char_desc((unsigned char)v[i], cd);
			resolver_err(err, errlen,
				     "invalid version '%s' in spec '%s': "
				     "invalid character %s",
				     q, spec_q, cd);
			return -EINVAL;
		}
	}
	return 0;
}

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int spec_parse(const char *text, struct spec *out, char *err, size_t errlen)
{
	char q[QUOTE_BUF];
	const char *lb, *colon;
	size_t n, head, name_len;
	struct spec s = {0};
	int ret;

	memset(out, 0, sizeof(*out));
	if (!text) {
		resolver_err(err, errlen, "invalid spec: none given");
		return -EINVAL;
	}
	n = strnlen(text, SPEC_TEXT_MAX + 1);
	resolver_quote(text, n, q, sizeof(q));
	if (n == 0) {
		resolver_err(err, errlen, "invalid spec '': empty");
		return -EINVAL;
	}
	if (n > SPEC_TEXT_MAX) {
		resolver_err(err, errlen,
			     "invalid spec '%s': longer than %d bytes", q,
			     SPEC_TEXT_MAX);
		return -EINVAL;
	}
	/* The sub path starts at the first '[' (names and versions never hold
	 * one) and runs to a final ']'. */
	lb = memchr(text, '[', n);
	head = lb ? (size_t)(lb - text) : n;
	if (lb) {
		if (text[n - 1] != ']') {
			resolver_err(err, errlen,
				     "invalid spec '%s': '[' without a closing "
				     "']' at the end",
				     q);
			return -EINVAL;
		}
		ret = resolver_check_relpath(lb + 1, n - head - 2, "sub path",
					     err, errlen);
		if (ret < 0)
			return ret;
	}
	colon = memchr(text, ':', head);
	name_len = colon ? (size_t)(colon - text) : head;
	ret = check_name_n(text, name_len, err, errlen);
	if (ret < 0)
		return ret;
	if (colon) {
		ret = check_version_text(colon + 1, head - name_len - 1, q, err,
					 errlen);
		if (ret < 0)
			return ret;
	}
	s.name = dup_n(text, name_len);
	if (!s.name)
		goto nomem;
	if (colon) {
		s.version = dup_n(colon + 1, head - name_len - 1);
		if (!s.version)
			goto nomem;
	}
	if (lb) {
		s.sub = dup_n(lb + 1, n - head - 2);
		if (!s.sub)
			goto nomem;
	}
	*out = s;
	return 0;
nomem:
	spec_clear(&s);
	resolver_err(err, errlen, "out of memory");
	return -ENOMEM;
}

void spec_clear(struct spec *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->version);
	free(s->sub);
	s->name = NULL;
	s->version = NULL;
	s->sub = NULL;
}

int spec_format(const struct spec *s, char *buf, size_t len)
{
	int n;

	if (!len)
		return -ENOSPC;
	n = snprintf(buf, len, "%s%s%s%s%s%s", s->name ? s->name : "",
		     s->version ? ":" : "", s->version ? s->version : "",
		     s->sub ? "[" : "", s->sub ? s->sub : "",
		     s->sub ? "]" : "");
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= len)
		return -ENOSPC;
	return n;
}
