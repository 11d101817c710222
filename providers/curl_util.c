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
