/*
 * test_sigv4 - AWS Signature Version 4 against AWS's published examples:
 * the SigV4 test suite (credentials AKIDEXAMPLE, scope
 * 20150830/us-east-1/service) and the S3 header-auth examples of the S3
 * API reference (AKIAIOSFODNN7EXAMPLE, 20130524/us-east-1/s3). The
 * expected canonical requests, strings to sign and signatures are the
 * published values.
 *
 * The other pure parts of the remote machinery are tested here too: the
 * HTTP status -> errno mapping, HTTP dates, header sets, listing assembly,
 * encodings and the XML scanner.
 */
#include <errno.h>
#include <stdio.h>

#include "providers/curl_list.h"
#include "providers/curl_pool.h"
#include "providers/curl_util.h"
#include "providers/curl_xml.h"
#include "providers/sigv4.h"
#include "test.h"

#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EMPTY_HASH \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const struct sigv4_hdr suite_hdrs[] = {
	{ "Host", "example.amazonaws.com" },
	{ "X-Amz-Date", "20150830T123600Z" },
};

static struct sigv4_req suite_req(const char *method, const char *query)
{
	struct sigv4_req r = {
		.method = method, .path = "/", .query = query,
		.headers = suite_hdrs, .n_headers = 2,
		.payload_hash = EMPTY_HASH, .amz_date = "20150830T123600Z",
		.region = "us-east-1", .service = "service",
	};
	return r;
}

test(sigv4_get_vanilla)
{
	struct sigv4_req r = suite_req("GET", NULL);
	struct buf b;
	char sig[65];

	buf_init(&b, 0);
	CHECK_INT(sigv4_canonical_request(&r, &b), 0);
	CHECK_STR(b.data, "GET\n/\n\nhost:example.amazonaws.com\n"
			  "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
			  EMPTY_HASH);
	buf_reset(&b);
	CHECK_INT(sigv4_string_to_sign(&r, &b), 0);
	CHECK_STR(b.data, "AWS4-HMAC-SHA256\n20150830T123600Z\n"
			  "20150830/us-east-1/service/aws4_request\n"
			  "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
	CHECK_INT(sigv4_signature(&r, SUITE_SECRET, sig), 0);
	CHECK_STR(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	buf_reset(&b);
	CHECK_INT(sigv4_authorization(&r, "AKIDEXAMPLE", SUITE_SECRET, &b), 0);
	CHECK_STR(b.data,
		  "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
		  "service/aws4_request, SignedHeaders=host;x-amz-date, "
		  "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	buf_free(&b);
}

test(sigv4_get_vanilla_query_order_key_case)
{
	struct sigv4_req r = suite_req("GET", "Param2=value2&Param1=value1");
	struct buf b;
	char sig[65];

	buf_init(&b, 0);
	CHECK_INT(sigv4_canonical_request(&r, &b), 0);
	CHECK_STR(b.data, "GET\n/\nParam1=value1&Param2=value2\n"
			  "host:example.amazonaws.com\n"
			  "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
			  EMPTY_HASH);
	CHECK_INT(sigv4_signature(&r, SUITE_SECRET, sig), 0);
	CHECK_STR(sig, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
	buf_free(&b);
}

/* S3 API reference, "Example: GET Object" (first 10 bytes of test.txt). */
test(sigv4_s3_get_object_range)
{
	static const struct sigv4_hdr h[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Range", "bytes=0-9" },
		{ "x-amz-content-sha256", EMPTY_HASH },
		{ "x-amz-date", "20130524T000000Z" },
	};
	struct sigv4_req r = {
		.method = "GET", .path = "/test.txt", .headers = h,
		.n_headers = 4, .payload_hash = EMPTY_HASH,
		.amz_date = "20130524T000000Z", .region = "us-east-1",
		.service = "s3",
	};
	struct buf b;
	char sig[65];

	buf_init(&b, 0);
	CHECK_INT(sigv4_canonical_request(&r, &b), 0);
	CHECK_STR(b.data, "GET\n/test.txt\n\n"
			  "host:examplebucket.s3.amazonaws.com\n"
			  "range:bytes=0-9\n"
			  "x-amz-content-sha256:" EMPTY_HASH "\n"
			  "x-amz-date:20130524T000000Z\n\n"
			  "host;range;x-amz-content-sha256;x-amz-date\n"
			  EMPTY_HASH);
	buf_reset(&b);
	CHECK_INT(sigv4_string_to_sign(&r, &b), 0);
	CHECK_STR(b.data, "AWS4-HMAC-SHA256\n20130524T000000Z\n"
			  "20130524/us-east-1/s3/aws4_request\n"
			  "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	CHECK_INT(sigv4_signature(&r, S3_SECRET, sig), 0);
	CHECK_STR(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	buf_free(&b);
}

/* S3 API reference, "Example: PUT Object" (test$file.text, body hashed). */
test(sigv4_s3_put_object)
{
	static const char body[] = "Welcome to Amazon S3.";
	char hash[65], sig[65];
	struct buf path, b;

	CHECK_INT(cu_sha256_hex(body, sizeof(body) - 1, hash), 0);
	CHECK_STR(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	buf_init(&path, 0);
	buf_init(&b, 0);
	CHECK_INT(buf_puts(&path, "/"), 0);
	CHECK_INT(cu_url_encode(&path, "test$file.text", true), 0);
	CHECK_STR(path.data, "/test%24file.text");
	{
		const struct sigv4_hdr h[] = {
			{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
			{ "Host", "examplebucket.s3.amazonaws.com" },
			{ "x-amz-content-sha256", hash },
			{ "x-amz-date", "20130524T000000Z" },
			{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
		};
		struct sigv4_req r = {
			.method = "PUT", .path = path.data, .headers = h,
			.n_headers = 5, .payload_hash = hash,
			.amz_date = "20130524T000000Z",
			.region = "us-east-1", .service = "s3",
		};

		CHECK_INT(sigv4_string_to_sign(&r, &b), 0);
		CHECK_STR(b.data, "AWS4-HMAC-SHA256\n20130524T000000Z\n"
				  "20130524/us-east-1/s3/aws4_request\n"
				  "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
		CHECK_INT(sigv4_signature(&r, S3_SECRET, sig), 0);
		CHECK_STR(sig, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	}
	buf_free(&path);
	buf_free(&b);
}

/* S3 API reference, "Example: GET Bucket (List Objects)": ?max-keys=2&prefix=J */
test(sigv4_s3_list_objects)
{
	static const struct sigv4_hdr h[] = {
		{ "host", "examplebucket.s3.amazonaws.com" },
		{ "x-amz-content-sha256", EMPTY_HASH },
		{ "x-amz-date", "20130524T000000Z" },
	};
	struct sigv4_req r = {
		.method = "GET", .path = "/", .query = "prefix=J&max-keys=2",
		.headers = h, .n_headers = 3, .payload_hash = EMPTY_HASH,
		.amz_date = "20130524T000000Z", .region = "us-east-1",
		.service = "s3",
	};
	char sig[65];

	CHECK_INT(sigv4_signature(&r, S3_SECRET, sig), 0);
	CHECK_STR(sig, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

test(sigv4_canonical_form_details)
{
	static const struct sigv4_hdr h[] = {
		{ "X-Amz-Meta-A", "  two   spaces  " },
		{ "host", "h" },
		{ "x-amz-meta-a", "second" },
	};
	struct sigv4_req r = {
		.method = "GET", .path = "/k", .query = "a-b=1&a=2&a=1&c",
		.headers = h, .n_headers = 3,
		.payload_hash = "UNSIGNED-PAYLOAD",
		.amz_date = "20130524T000000Z", .region = "r", .service = "s3",
	};
	struct buf b;

	buf_init(&b, 0);
	CHECK_INT(sigv4_canonical_request(&r, &b), 0);
	/* names sorted before values, bare names get '=', values trimmed
	   and collapsed, repeated headers joined with ',' */
	CHECK_STR(b.data, "GET\n/k\na=1&a=2&a-b=1&c=\nhost:h\n"
			  "x-amz-meta-a:two spaces,second\n\n"
			  "host;x-amz-meta-a\nUNSIGNED-PAYLOAD");
	r.amz_date = "2013-05-24";
	buf_reset(&b);
	CHECK_INT(sigv4_string_to_sign(&r, &b), -EINVAL);
	buf_free(&b);
}

test(sigv4_url_encoding)
{
	static const struct {
		const char *in;
		bool slash;
		const char *want;
	} cases[] = {
		{ "a b", true, "a%20b" },
		{ "a+b=c&d", true, "a%2Bb%3Dc%26d" },
		{ "fraud/xgb/1.0", true, "fraud/xgb/1.0" },
		{ "fraud/xgb/1.0", false, "fraud%2Fxgb%2F1.0" },
		{ "A-z_0.9~", false, "A-z_0.9~" },
		{ "\xc3\xa9", true, "%C3%A9" },
		{ "", true, "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;

		buf_init(&b, 0);
		CHECK_INT(cu_url_encode(&b, cases[i].in, cases[i].slash), 0);
		CHECK_STR(b.data, cases[i].want);
		buf_free(&b);
	}
}

struct xml_seen {
	int n_obj, n_pre;
	char keys[4][64];
	bool size_seen[4];
};

static int xml_rec(void *arg, size_t kind, const char *const *vals,
		   const bool *have)
{
	struct xml_seen *x = arg;

	if (kind == 1) {
		x->n_pre++;
		return 0;
	}
	if (x->n_obj < 4) {
		snprintf(x->keys[x->n_obj], sizeof(x->keys[0]), "%s",
			 have[0] ? vals[0] : "(none)");
		x->size_seen[x->n_obj] = have[1];
	}
	x->n_obj++;
	return 0;
}

test(sigv4_xml_reader)
{
	static const char doc[] =
		"<?xml version=\"1.0\"?><R xmlns=\"http://s3\">"
		"<KeyCount>2</KeyCount>"
		"<Contents><Key>a&amp;b&#x2F;c&#233;</Key><Size>3</Size>"
		"</Contents><Contents><Key><![CDATA[<z>]]></Key><Size/>"
		"</Contents><P><Prefix>p/</Prefix></P><Contents/></R>";
	static const char *const obj[] = { "Key", "Size", NULL };
	static const char *const pre[] = { "Prefix", NULL };
	const struct cx_record kinds[] = {
		{ "Contents", obj, 64 }, { "P", pre, 64 },
	};
	struct xml_seen x = { 0 };
	struct buf b;

	CHECK_INT(cx_records(doc, sizeof(doc) - 1, kinds, 2, xml_rec, &x), 0);
	CHECK_INT(x.n_obj, 3);
	CHECK_INT(x.n_pre, 1);
	CHECK_STR(x.keys[0], "a&b/c\xc3\xa9");
	CHECK_STR(x.keys[1], "<z>");
	CHECK(x.size_seen[1]); /* <Size/> is present and empty */
	CHECK_STR(x.keys[2], "(none)");
	buf_init(&b, 64);
	CHECK_INT(cx_find_text(doc, sizeof(doc) - 1, "KeyCount", &b), 0);
	CHECK_STR(b.data, "2");
	buf_reset(&b);
	CHECK_INT(cx_find_text(doc, sizeof(doc) - 1, "Nope", &b), -ENOENT);
	/* an undeclared entity, a DTD, a broken document */
	CHECK_INT(cx_find_text("<R><Key>&bogus;</Key></R>", 25, "Key", &b),
		  -EINVAL);
	CHECK_INT(cx_find_text("<!DOCTYPE R [<!ENTITY e \"x\">]><R><K>&e;"
			       "</K></R>", 46, "K", &b), -EINVAL);
	/* an error body cut at its cap still gives what came before */
	CHECK_INT(cx_find_text("<R><K>1</K><X>2</", 17, "K", &b), 0);
	CHECK_STR(b.data, "1");
	CHECK_INT(cx_find_text("<R><X>1</X", 10, "K", &b), -EINVAL);
	buf_free(&b);
	/* a cap on what a hostile listing can make us allocate */
	buf_init(&b, 2);
	CHECK_INT(cx_find_text(doc, sizeof(doc) - 1, "Key", &b), -EFBIG);
	buf_free(&b);
	buf_init(&b, 0);
	CHECK_INT(cx_escape(&b, "a<b&'\"c>"), 0);
	CHECK_STR(b.data, "a&lt;b&amp;'&quot;c&gt;");
	buf_free(&b);
}

test(sigv4_base64_roundtrip)
{
	struct buf b, d;

	buf_init(&b, 0);
	buf_init(&d, 0);
	CHECK_INT(cu_base64(&b, "any carnal pleas", 16, false), 0);
	CHECK_STR(b.data, "YW55IGNhcm5hbCBwbGVhcw==");
	CHECK_INT(cu_base64_decode(&d, b.data), 0);
	CHECK_STR(d.data, "any carnal pleas");
	buf_reset(&b);
	CHECK_INT(cu_base64(&b, "\xfb\xff", 2, true), 0);
	CHECK_STR(b.data, "-_8");
	buf_reset(&d);
	CHECK_INT(cu_base64_decode(&d, "no*base64"), -EINVAL);
	buf_free(&b);
	buf_free(&d);
}

/* The other pure parts of the remote machinery live beside SigV4. */

test(curl_status_to_errno)
{
	static const struct {
		long status;
		int want;
	} cases[] = {
		{ 200, 0 }, { 204, 0 }, { 206, 0 }, { 404, -ENOENT },
		{ 401, -EACCES }, { 403, -EACCES }, { 412, -ESTALE },
		{ 416, -EINVAL }, { 400, -EINVAL }, { 405, -ENOTSUP },
		{ 501, -ENOTSUP }, { 408, -ETIMEDOUT }, { 500, -EIO },
		{ 503, -EIO }, { 429, -EIO }, { 302, -EIO }, { 0, -EIO },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_INT(cr_status_errno(cases[i].status), cases[i].want);
}

test(curl_http_dates)
{
	char buf[64];

	CHECK_INT(cu_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
		  784111777);
	cu_http_date(784111777, buf, sizeof(buf));
	CHECK_STR(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
	CHECK_INT(cu_parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), -1);
	CHECK_INT(cu_parse_http_date("yesterday"), -1);
	CHECK_INT(cu_parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), -1);
}

test(curl_headers)
{
	struct cr_hdrs h = { 0 };

	CHECK_INT(cr_hdr_add(&h, "Range", "bytes=%d-%d", 0, 9), 0);
	CHECK_INT(cr_hdr_add(&h, "x-ms-date", "%s", "now"), 0);
	CHECK_STR(cr_hdr_get(&h, "range"), "bytes=0-9");
	CHECK_STR(cr_hdr_get(&h, "X-MS-DATE"), "now");
	CHECK(cr_hdr_get(&h, "x-ms") == NULL);
	for (int i = 2; i < CR_MAX_HDRS; i++)
		CHECK_INT(cr_hdr_add(&h, "X", "%d", i), 0);
	CHECK_INT(cr_hdr_add(&h, "Y", "%s", "full"), -E2BIG);
	cr_hdrs_clear(&h);
	CHECK_INT((int)h.n, 0);
}

test(curl_listing_builder)
{
	struct prov_listing l;
	struct cl_builder b;

	cl_init(&b, &l, "modelkit-assets/");
	CHECK_INT(cl_add_object(&b, "modelkit-assets/b/x", 3, "\"e\"", 7), 0);
	CHECK_INT(cl_add_object(&b, "modelkit-assets/a.versions", 1, NULL, 0),
		  0);
	/* a second page repeating an entry, a directory marker, a key
	   outside the prefix, the prefix itself */
	CHECK_INT(cl_add_object(&b, "modelkit-assets/b/x", 3, "\"e\"", 7), 0);
	CHECK_INT(cl_add_object(&b, "modelkit-assets/dir/", 0, NULL, 0), 0);
	CHECK_INT(cl_add_object(&b, "other/y", 1, NULL, 0), 0);
	CHECK_INT(cl_add_prefix(&b, "modelkit-assets/"), 0);
	CHECK_INT(cl_add_prefix(&b, "modelkit-assets/z/"), 0);
	CHECK_INT(cl_add_prefix(&b, "modelkit-assets/c/"), 0);
	CHECK_INT(cl_add_prefix(&b, "modelkit-assets/c/"), 0);
	cl_finish(&b);
	CHECK_INT((int)l.n_objects, 2);
	CHECK_STR(l.objects[0].key, "a.versions");
	CHECK_STR(l.objects[1].key, "b/x");
	CHECK_STR(l.objects[1].etag, "\"e\"");
	CHECK_INT((int)l.objects[1].size, 3);
	CHECK_INT((int)l.n_prefixes, 2);
	CHECK_STR(l.prefixes[0], "c/");
	CHECK_STR(l.prefixes[1], "z/");
	prov_listing_free(&l);
}
