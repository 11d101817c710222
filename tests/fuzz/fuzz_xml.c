/*
 * fuzz_xml - the capped XML scanner the S3 and Azure listings go through
 * (providers/curl_util.h), plus the percent and base64 decoders that
 * read connection strings and listings.
 *
 * Invariants: every cursor the scanner returns lies inside the document
 * and is well ordered; each step moves forward (so a listing loop ends);
 * decoded text never exceeds its buf's cap; base64 and percent encoding
 * round-trip any bytes.
 */
#include <errno.h>

#include "providers/curl_util.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void scan(const char *doc, size_t size, const char *outer,
		 const char *const *inner)
{
	struct cu_xml x = { doc, doc + size }, in;
	const char *prev = doc;

	while (cu_xml_next(&x, outer, &in)) {
		FUZZ_CHECK(in.p >= doc && in.end <= doc + size);
		FUZZ_CHECK(in.p <= in.end);
		FUZZ_CHECK(x.p > prev && x.p <= doc + size);
		prev = x.p;
		for (size_t i = 0; inner[i]; i++) {
			struct buf b;
			int ret;

			buf_init(&b, 64);
			ret = cu_xml_text(&in, inner[i], &b);
			FUZZ_CHECK(ret == 0 || ret == -ENOENT ||
				   ret == -EINVAL || ret == -EFBIG);
			FUZZ_CHECK(b.len <= 64);
			if (ret == 0)
				FUZZ_CHECK(b.data && b.data[b.len] == '\0');
			buf_free(&b);
		}
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
