/*
 * digest - see digest.h. SHA-256 through OpenSSL's EVP interface (which picks
 * the SHA-NI / AVX2 code paths), xxh3 through libxxhash.
 */
#include "common/digest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <xxhash.h>

struct hasher {
	EVP_MD_CTX *ctx;
};

int digest_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int digest_from_hex(const char *hex, struct digest *out)
{
	if (!hex || strlen(hex) != DIGEST_HEX_LEN)
		return -EINVAL;
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		int hi = digest_hexval(hex[2 * i]);
		int lo = digest_hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out->b[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void digest_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char xd[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = xd[in[i] >> 4];
		out[2 * i + 1] = xd[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void digest_to_hex(const struct digest *d, char out[DIGEST_HEX_LEN + 1])
{
	digest_hex_encode(d->b, DIGEST_LEN, out);
}

bool digest_equal(const struct digest *a, const struct digest *b)
{
	return memcmp(a->b, b->b, DIGEST_LEN) == 0;
}

int digest_buf(const void *data, size_t len, struct digest *out)
{
	unsigned int n = 0;

	if (!EVP_Digest(data, len, out->b, &n, EVP_sha256(), NULL) ||
	    n != DIGEST_LEN)
		return -ENOMEM;
	return 0;
}

struct hasher *hasher_new(void)
{
	struct hasher *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL)) {
		hasher_free(h);
		return NULL;
	}
	return h;
}

void hasher_update(struct hasher *h, const void *data, size_t len)
{
	EVP_DigestUpdate(h->ctx, data, len);
}

int hasher_final(struct hasher *h, struct digest *out)
{
	unsigned int n = 0;

	if (!EVP_DigestFinal_ex(h->ctx, out->b, &n) || n != DIGEST_LEN)
		return -EIO;
	if (!EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))
		return -EIO;
	return 0;
}

void hasher_free(struct hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

uint64_t digest_xxh3(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}
