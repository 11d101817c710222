/*
 * sigv4 - AWS Signature Version 4 signing: canonical request, string to
 * sign, derived key, signature. See sigv4.h for the contract.
 */
#include "providers/sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/digest.h"
#include "providers/curl_util.h"

struct lhdr {
	char name[64];
	const char *value;
};

static int cmp_lhdr(const void *a, const void *b)
{
	const struct lhdr *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* "name=value" parameters: by name, then by value (byte order). */
static int cmp_param(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t nx = strcspn(x, "="), ny = strcspn(y, "=");
	int c = memcmp(x, y, nx < ny ? nx : ny);

	if (c != 0)
		return c;
	if (nx != ny)
		return nx < ny ? -1 : 1;
	return strcmp(x + nx, y + ny);
}

/* Append @v trimmed, runs of spaces collapsed to one. */
static int put_value(struct buf *out, const char *v)
{
	bool space = false;
	int ret = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v && ret == 0; v++) {
		if (*v == ' ' || *v == '\t') {
			space = true;
			continue;
		}
		if (space)
			ret = buf_append(out, " ", 1);
		space = false;
		if (ret == 0)
			ret = buf_append(out, v, 1);
	}
	return ret;
}

/* Lower-cased, sorted headers of @r into @h; returns the count or -errno. */
static int sorted_headers(const struct sigv4_req *r, struct lhdr *h)
{
	if (r->n_headers > SIGV4_MAX_HEADERS)
		return -EINVAL;
	for (size_t i = 0; i < r->n_headers; i++) {
		size_t n = strlen(r->headers[i].name);

		if (n == 0 || n >= sizeof(h[i].name))
			return -EINVAL;
		for (size_t j = 0; j <= n; j++)
			h[i].name[j] = (char)tolower(
				(unsigned char)r->headers[i].name[j]);
		h[i].value = r->headers[i].value;
	}
	qsort(h, r->n_headers, sizeof(*h), cmp_lhdr);
	return (int)r->n_headers;
}

static int canonical_query(const char *q, struct buf *out)
{
	char *copy = NULL, **parts = NULL, *save = NULL, *tok;
	size_t n = 0, cap = 0;
	int ret = 0;

	if (!q || !*q)
		return 0;
	copy = strdup(q);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, "&", &save); tok;
	     tok = strtok_r(NULL, "&", &save)) {
		if (n == cap) {
			char **np;

			cap = cap ? cap * 2 : 8;
			np = realloc(parts, cap * sizeof(*parts));
			if (!np) {
				ret = -ENOMEM;
				goto out;
			}
			parts = np;
		}
		parts[n++] = tok;
	}
	qsort(parts, n, sizeof(*parts), cmp_param);
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (i > 0)
			ret = buf_append(out, "&", 1);
		if (ret == 0)
			ret = buf_puts(out, parts[i]);
		if (ret == 0 && !strchr(parts[i], '='))
			ret = buf_append(out, "=", 1);
	}
out:
	free(parts);
	free(copy);
	return ret;
}

/*
 * The SignedHeaders list ("host;x-amz-date"): the names of @h (sorted),
 * each once. The canonical request and the Authorization header must
 * carry exactly the same list, so both use this.
 */
static int put_signed_headers(struct buf *out, const struct lhdr *h, int n)
{
	int ret = 0;

	for (int i = 0; i < n && ret == 0; i++) {
		if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0)
			continue;
		ret = buf_printf(out, "%s%s", i > 0 ? ";" : "", h[i].name);
	}
	return ret;
}

int sigv4_canonical_request(const struct sigv4_req *r, struct buf *out)
{
	struct lhdr h[SIGV4_MAX_HEADERS];
	int n, ret;

	n = sorted_headers(r, h);
	if (n < 0)
		return n;
	ret = buf_printf(out, "%s\n%s\n", r->method, r->path);
	if (ret == 0)
		ret = canonical_query(r->query, out);
	if (ret == 0)
		ret = buf_append(out, "\n", 1);
	for (int i = 0; i < n && ret == 0; i++) {
		/* several headers of one name: values joined by ',' */
		if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0) {
			out->len--; /* drop the '\n' */
			ret = buf_append(out, ",", 1);
		} else {
			ret = buf_printf(out, "%s:", h[i].name);
		}
		if (ret == 0)
			ret = put_value(out, h[i].value);
		if (ret == 0)
			ret = buf_append(out, "\n", 1);
	}
	if (ret == 0)
		ret = buf_append(out, "\n", 1);
	if (ret == 0)
		ret = put_signed_headers(out, h, n);
	if (ret == 0)
		ret = buf_printf(out, "\n%s", r->payload_hash);
	return ret;
}

static int check_date(const char *d)
{
	if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return -EINVAL;
	return 0;
}

int sigv4_string_to_sign(const struct sigv4_req *r, struct buf *out)
{
	struct buf creq;
	char hash[CU_SHA256_HEX_LEN + 1];
	int ret;

	if (check_date(r->amz_date) < 0)
		return -EINVAL;
	buf_init(&creq, 1 << 20);
	ret = sigv4_canonical_request(r, &creq);
	if (ret == 0)
		ret = cu_sha256_hex(creq.data ? creq.data : "", creq.len, hash);
	if (ret == 0)
		ret = buf_printf(out,
				 "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s",
				 r->amz_date, r->amz_date, r->region,
				 r->service, hash);
	buf_free(&creq);
	return ret;
}

int sigv4_signature(const struct sigv4_req *r, const char *secret_key,
		    char out[65])
{
	uint8_t k[CU_SHA256_LEN], k2[CU_SHA256_LEN];
	struct buf sts, key;
	int ret;

	buf_init(&sts, 1 << 16);
	buf_init(&key, 4096);
	ret = sigv4_string_to_sign(r, &sts);
	if (ret == 0)
		ret = buf_printf(&key, "AWS4%s", secret_key);
	if (ret == 0)
		ret = cu_hmac_sha256(key.data, key.len, r->amz_date, 8, k);
	if (ret == 0)
		ret = cu_hmac_sha256(k, sizeof(k), r->region,
				     strlen(r->region), k2);
	if (ret == 0)
		ret = cu_hmac_sha256(k2, sizeof(k2), r->service,
				     strlen(r->service), k);
	if (ret == 0)
		ret = cu_hmac_sha256(k, sizeof(k), "aws4_request", 12, k2);
	if (ret == 0)
		ret = cu_hmac_sha256(k2, sizeof(k2), sts.data, sts.len, k);
	if (ret == 0)
		digest_hex_encode(k, sizeof(k), out);
	if (key.data)
		OPENSSL_cleanse(key.data, key.len);
	OPENSSL_cleanse(k2, sizeof(k2));
	buf_free(&key);
	buf_free(&sts);
	return ret;
}

int sigv4_authorization(const struct sigv4_req *r, const char *access_key,
			const char *secret_key, struct buf *out)
{
	struct lhdr h[SIGV4_MAX_HEADERS];
	char sig[65];
	int n, ret;

	ret = sigv4_signature(r, secret_key, sig);
	if (ret < 0)
		return ret;
	n = sorted_headers(r, h);
	if (n < 0)
		return n;
	ret = buf_printf(out,
			 "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
			 "SignedHeaders=",
			 access_key, r->amz_date, r->region, r->service);
	if (ret == 0)
		ret = put_signed_headers(out, h, n);
	if (ret == 0)
		ret = buf_printf(out, ", Signature=%s", sig);
	return ret;
}
