/*
 * fuzz_xml - the XML reader the S3 and Azure listings go through
 * (providers/curl_xml.h, libxml2's xmlTextReader), plus the percent and
 * base64 decoders that read connection strings and listings.
 *
 * Invariants: any bytes end in a record walk that returns 0 or a clear
 * error; field texts never exceed their cap and are NUL-terminated;
 * base64 and percent encoding round-trip any bytes.
 */
#include <errno.h>

#include "providers/curl_util.h"
#include "providers/curl_xml.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static int on_record(void *arg, size_t kind, const char *const *vals,
		     const bool *have)
{
	size_t *n = arg;

	for (size_t i = 0; i < 4; i++)
		if (have[i])
			FUZZ_CHECK(vals[i] && strlen(vals[i]) <= 64);
	(void)kind;
	(*n)++;
	return 0;
}

static void scan(const char *doc, size_t size, const char *outer,
		 const char *const *inner)
{
	const struct cx_record k = { outer, inner, 64 };
	size_t n = 0;
	struct buf b;
	int ret;

	ret = cx_records(doc, size, &k, 1, on_record, &n);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -EFBIG ||
		   ret == -ENOMEM);
	for (size_t i = 0; inner[i]; i++) {
		buf_init(&b, 64);
		ret = cx_find_text(doc, size, inner[i], &b);
		FUZZ_CHECK(ret == 0 || ret == -ENOENT || ret == -EINVAL ||
			   ret == -EFBIG);
		FUZZ_CHECK(b.len <= 64);
		if (ret == 0)
			FUZZ_CHECK(b.data && b.data[b.len] == '\0');
		buf_free(&b);
	}
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	static const char *const s3[] = { "Key", "Size", "ETag",
					  "LastModified", NULL };
	static const char *const az[] = { "Name", "Content-Length", "Etag",
					  "Last-Modified", NULL };
	static const char *const pre[] = { "Prefix", "Name", NULL };
	char *s = fuzz_strndup(data, size);
	struct buf enc, dec;

	if (!s)
		return 0;
	scan(s, size, "Contents", s3);
	scan(s, size, "Blob", az);
	scan(s, size, "CommonPrefixes", pre);
	scan(s, size, "BlobPrefix", pre);

	/* encoders round-trip; decoders accept or refuse, never overrun */
	buf_init(&enc, 0);
	buf_init(&dec, 0);
	if (cu_base64(&enc, data, size, false) == 0 &&
	    cu_base64_decode(&dec, enc.data) == 0) {
		FUZZ_CHECK(dec.len == size);
		FUZZ_CHECK(size == 0 || memcmp(dec.data, data, size) == 0);
	}
	buf_reset(&enc);
	buf_reset(&dec);
	if (cu_url_encode(&enc, s, false) == 0 &&
	    cu_url_decode(&dec, enc.data) == 0)
		FUZZ_CHECK(strcmp(dec.data, s) == 0);
	buf_reset(&dec);
	(void)cu_url_decode(&dec, s);
	buf_reset(&dec);
	(void)cu_base64_decode(&dec, s);
	buf_free(&enc);
	buf_free(&dec);
	free(s);
	return 0;
}
