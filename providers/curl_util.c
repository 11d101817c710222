/*
 * curl_util - encoding, hashing and XML scanning helpers for the remote
 * backends. See curl_util.h for the contracts; nothing here keeps state.
 */
#include "providers/curl_util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/digest.h"

int cu_url_encode(struct buf *out, const char *s, bool keep_slash)
{
	int ret = 0;

	for (;;) {
		size_t n = keep_slash ? strcspn(s, "/") : strlen(s);
		char *e;

		if (n > INT_MAX)
			return -EINVAL;
		if (n) { /* curl_easy_escape() takes 0 to mean strlen() */
			e = curl_easy_escape(NULL, s, (int)n);
			if (!e)
				return -ENOMEM;
			ret = buf_puts(out, e);
			curl_free(e);
			if (ret < 0)
				return ret;
		}
		if (!s[n])
			break;
		ret = buf_append(out, "/", 1);
		if (ret < 0)
			return ret;
		s += n + 1;
	}
	if (!out->data) /* make "" a valid string */
		return buf_append(out, "", 0);
	return 0;
}

int cu_url_decode(struct buf *out, const char *s)
{
	size_t len = strlen(s);
	char *d;
	int n = 0, ret;

	if (len > INT_MAX)
		return -EINVAL;
	d = curl_easy_unescape(NULL, s, (int)len, &n);
	if (!d)
		return -ENOMEM;
	/* a value with a NUL in it cannot be a name, key or token */
	ret = memchr(d, '\0', (size_t)n) ? -EINVAL : buf_append(out, d, (size_t)n);
	curl_free(d);
	if (ret == 0 && !out->data)
		ret = buf_append(out, "", 0);
	return ret;
}

int cu_sha256_hex(const void *data, size_t len,
		  char out[CU_SHA256_HEX_LEN + 1])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen != CU_SHA256_LEN)
		return -EIO;
	digest_hex_encode(md, CU_SHA256_LEN, out);
	return 0;
}

int cu_hmac_sha256(const void *key, size_t key_len, const void *data,
		   size_t data_len, uint8_t out[CU_SHA256_LEN])
{
	unsigned int len = 0;

	if (!HMAC(EVP_sha256(), key, (int)key_len, data, data_len, out, &len) ||
	    len != CU_SHA256_LEN)
		return -EIO;
	return 0;
}

int cu_base64(struct buf *out, const void *in, size_t n, bool url)
{
	unsigned char *enc;
	size_t len;
	int ret;

	if (n > (size_t)INT_MAX / 4 * 3 - 3)
		return -EFBIG;
	enc = malloc(4 * ((n + 2) / 3) + 1);
	if (!enc)
		return -ENOMEM;
	len = (size_t)EVP_EncodeBlock(enc, in, (int)n);
	if (url) { /* RFC 4648 §5: another alphabet, no padding */
		for (size_t i = 0; i < len; i++)
			enc[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_'
								     : enc[i];
		while (len && enc[len - 1] == '=')
			len--;
	}
	ret = buf_append(out, enc, len);
	free(enc);
	if (ret == 0 && !out->data)
		ret = buf_append(out, "", 0);
	return ret;
}

int cu_base64_decode(struct buf *out, const char *s)
{
	EVP_ENCODE_CTX *ctx = NULL;
	unsigned char *dec = NULL;
	size_t len = strlen(s);
	int n = 0, fin = 0, ret = 0;

	if (len > INT_MAX)
		return -EFBIG;
	ctx = EVP_ENCODE_CTX_new();
	dec = malloc(len / 4 * 3 + 3);
	if (!ctx || !dec) {
		ret = -ENOMEM;
		goto out;
	}
	/* EVP_DecodeUpdate() skips whitespace and checks the padding */
	EVP_DecodeInit(ctx);
	if (EVP_DecodeUpdate(ctx, dec, &n, (const unsigned char *)s,
			     (int)len) < 0 ||
	    EVP_DecodeFinal(ctx, dec + n, &fin) < 0) {
		ret = -EINVAL;
		goto out;
	}
	ret = buf_append(out, dec, (size_t)(n + fin));
	if (ret == 0 && !out->data)
		ret = buf_append(out, "", 0);
out:
	free(dec);
	EVP_ENCODE_CTX_free(ctx);
	return ret;
}

/* Find @needle (not NUL-terminated search) in [p, end). */
static const char *memfind(const char *p, const char *end, const char *needle)
{
	size_t n = strlen(needle);

	if (n == 0 || (size_t)(end - p) < n)
		return NULL;
	return memmem(p, (size_t)(end - p), needle, n);
}

bool cu_xml_next(struct cu_xml *x, const char *name, struct cu_xml *in)
{
	char open[80], close[84];
	const char *p = x->p;
	size_t nl = strlen(name);

	if (nl + 4 > sizeof(open))
		return false;
	snprintf(open, sizeof(open), "<%s", name);
	snprintf(close, sizeof(close), "</%s>", name);
	while (p < x->end) {
		const char *s = memfind(p, x->end, open), *gt, *e;

		if (!s)
			return false;
		p = s + nl + 1;
		if (p >= x->end)
			return false;
		/* "<Key>" or "<Key attr=...>", not "<KeyMarker>" */
		if (*p != '>' && *p != ' ' && *p != '/' && *p != '\t' &&
		    *p != '\r' && *p != '\n')
			continue;
		gt = memchr(p, '>', (size_t)(x->end - p));
		if (!gt)
			return false;
		if (gt > p && gt[-1] == '/') { /* <Name/>: empty element */
			in->p = in->end = gt + 1;
			x->p = gt + 1;
			return true;
		}
		e = memfind(gt + 1, x->end, close);
		if (!e)
			return false;
		in->p = gt + 1;
		in->end = e;
		x->p = e + strlen(close);
		return true;
	}
	return false;
}

static int xml_decode(struct buf *out, const char *p, const char *end)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		{ "&quot;", '"' }, { "&apos;", '\'' },
	};
	int ret;

	/* CDATA sections are passed through verbatim. */
	if (end - p >= 12 && memcmp(p, "<![CDATA[", 9) == 0 &&
	    memcmp(end - 3, "]]>", 3) == 0)
		return buf_append(out, p + 9, (size_t)(end - p - 12));
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *semi;
		size_t i;

		if (!amp)
			return buf_append(out, p, (size_t)(end - p));
		ret = buf_append(out, p, (size_t)(amp - p));
		if (ret < 0)
			return ret;
		semi = memchr(amp, ';', (size_t)(end - amp));
		if (!semi || semi - amp > 10)
			return -EINVAL;
		for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
			size_t n = strlen(ents[i].ent);

			if ((size_t)(semi + 1 - amp) == n &&
			    memcmp(amp, ents[i].ent, n) == 0)
				break;
		}
		if (i < sizeof(ents) / sizeof(ents[0])) {
			ret = buf_append(out, &ents[i].c, 1);
		} else if (amp[1] == '#') {
			unsigned long cp = 0;
			char u[4];
			size_t n;
			const char *q = amp + 2;
			int base = 10;

			if (*q == 'x' || *q == 'X') {
				base = 16;
				q++;
			}
			if (q == semi)
				return -EINVAL;
			for (; q < semi; q++) {
				int v = digest_hexval(*q);

				if (v < 0 || v >= base)
					return -EINVAL;
				cp = cp * (unsigned long)base + (unsigned long)v;
				if (cp > 0x10ffff)
					return -EINVAL;
			}
			if (cp == 0)
				return -EINVAL;
			if (cp < 0x80) {
				u[0] = (char)cp;
				n = 1;
			} else if (cp < 0x800) {
				u[0] = (char)(0xc0 | (cp >> 6));
				u[1] = (char)(0x80 | (cp & 0x3f));
				n = 2;
			} else if (cp < 0x10000) {
				u[0] = (char)(0xe0 | (cp >> 12));
				u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
				u[2] = (char)(0x80 | (cp & 0x3f));
				n = 3;
			} else {
				u[0] = (char)(0xf0 | (cp >> 18));
				u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
				u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
				u[3] = (char)(0x80 | (cp & 0x3f));
				n = 4;
			}
			ret = buf_append(out, u, n);
		} else {
			return -EINVAL;
		}
		if (ret < 0)
			return ret;
		p = semi + 1;
	}
	return 0;
}

int cu_xml_text(const struct cu_xml *x, const char *name, struct buf *out)
{
	struct cu_xml cur = *x, in;
	int ret;

	if (!cu_xml_next(&cur, name, &in))
		return -ENOENT;
	ret = xml_decode(out, in.p, in.end);
	if (ret == 0 && !out->data)
		ret = buf_append(out, "", 0);
	return ret;
}

int cu_xml_escape(struct buf *out, const char *s)
{
	int ret = 0;

	for (; *s && ret == 0; s++) {
		switch (*s) {
		case '&': ret = buf_puts(out, "&amp;"); break;
		case '<': ret = buf_puts(out, "&lt;"); break;
		case '>': ret = buf_puts(out, "&gt;"); break;
		case '"': ret = buf_puts(out, "&quot;"); break;
		case '\'': ret = buf_puts(out, "&apos;"); break;
		default: ret = buf_append(out, s, 1); break;
		}
	}
	return ret;
}

static const char *const wdays[] = { "Sun", "Mon", "Tue", "Wed",
				     "Thu", "Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
				      "May", "Jun", "Jul", "Aug",
				      "Sep", "Oct", "Nov", "Dec" };

void cu_http_date(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 wdays[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int64_t cu_parse_http_date(const char *s)
{
	time_t t = curl_getdate(s, NULL);

	return t < 0 ? -1 : (int64_t)t;
}

char *cu_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}
