/*
 * curl_req - the retrying request runner of the remote backends (see
 * cr_run() in curl_pool.h).
 *
 * One attempt = one curl_easy_perform() on a pooled handle. Its outcome
 * is classified as done, retryable (connection trouble, 5xx, 429, stall,
 * truncated or misplaced body) or final. Each attempt's CURLOPT_TIMEOUT_MS
 * is what is left of the deadline, so the whole request never exceeds
 * opts.timeout_ms; the backoff before a retry (exponential, full jitter,
 * at least Retry-After) must also fit in it, or the request fails at once.
 * Body bytes are checked against Content-Range before any reach the sink,
 * so the sink sees each byte of its range once, in order.
 */
#include "providers/curl_pool_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "providers/curl_util.h"
#include "providers/curl_xml.h"

#define ERRBODY_MAX 4096
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 4000
#define MAX_ATTEMPTS 12

/* ---- one attempt ---- */

struct attempt {
	struct cr_req *r;
	struct prov *p;
	CURL *h;
	long status; /* from the status line of the last answer */
	uint64_t req_start;  /* first byte asked for in this attempt */
	bool decided;        /* first body byte of a 2xx seen */
	bool bad_range;      /* a 206 for another range: aborted */
	bool past_end;       /* the range ends past the object: aborted */
	bool done_early;     /* our range is complete in a longer 200 body */
	uint64_t raw;        /* raw 2xx body bytes received */
	uint64_t skip;       /* bytes of a 200 to drop before our range */
	uint64_t want;       /* bytes still wanted (UINT64_MAX: to the end) */
	uint64_t got;        /* body bytes delivered in this attempt */
	bool have_cr;        /* Content-Range seen */
	uint64_t cr_start;
	int sink_err;
	int retry_after_s;   /* -1: none */
	struct buf errbody;
	uint64_t body_pos;   /* upload position relative to body start */
	int64_t stall_ms;    /* no byte for this long (after the answer
				started; twice that before) is a stall */
	int64_t last_ms;     /* when bytes last moved */
	curl_off_t last_now; /* bytes moved so far (down + up) */
	bool stalled;        /* aborted by the stall detector */
};

static bool hdr_is(const char *line, size_t n, const char *name, size_t *voff)
{
	size_t nl = strlen(name);

	if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return false;
	*voff = nl + 1;
	while (*voff < n && (line[*voff] == ' ' || line[*voff] == '\t'))
		(*voff)++;
	return true;
}

static void copy_val(char *dst, size_t cap, const char *v, size_t n)
{
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' ||
			 v[n - 1] == ' '))
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nitems, void *arg)
{
	struct attempt *a = arg;
	struct cr_req *r = a->r;
	size_t n = size * nitems, vo;
	char tmp[256];

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a new answer (after 100 Continue, say): forget the old */
		const char *sp = memchr(data, ' ', n);

		a->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		r->etag[0] = '\0';
		r->have_length = false;
		r->have_total = false;
		r->mtime = 0;
		r->err_code[0] = '\0';
		r->captured[0] = '\0';
		a->have_cr = false;
		a->retry_after_s = -1;
		return n;
	}
	if (hdr_is(data, n, "ETag", &vo)) {
		copy_val(r->etag, sizeof(r->etag), data + vo, n - vo);
	} else if (hdr_is(data, n, "Content-Length", &vo)) {
		copy_val(tmp, sizeof(tmp), data + vo, n - vo);
		r->content_length = strtoull(tmp, NULL, 10);
		r->have_length = true;
	} else if (hdr_is(data, n, "Content-Range", &vo)) {
		unsigned long long s, e, t;

		copy_val(tmp, sizeof(tmp), data + vo, n - vo);
		if (sscanf(tmp, "bytes %llu-%llu/%llu", &s, &e, &t) == 3) {
			a->have_cr = true;
			a->cr_start = s;
			r->total_size = t;
			r->have_total = true;
		} else if (sscanf(tmp, "bytes */%llu", &t) == 1) {
			r->total_size = t;
			r->have_total = true;
		}
	} else if (hdr_is(data, n, "Last-Modified", &vo)) {
		int64_t t;

		copy_val(tmp, sizeof(tmp), data + vo, n - vo);
		t = cu_parse_http_date(tmp);
		r->mtime = t > 0 ? t : 0;
	} else if (hdr_is(data, n, "Retry-After", &vo)) {
		copy_val(tmp, sizeof(tmp), data + vo, n - vo);
		if (isdigit((unsigned char)tmp[0])) {
			long v = strtol(tmp, NULL, 10);

			a->retry_after_s = v > 3600 ? 3600 : (int)v;
		} else {
			int64_t t = cu_parse_http_date(tmp), now, ns;
			int32_t nsec;

			time_now(&now, &nsec);
			ns = t - now;
			if (t > 0)
				a->retry_after_s = ns < 0 ? 0 :
						   ns > 3600 ? 3600 : (int)ns;
		}
	} else if (hdr_is(data, n, "x-ms-error-code", &vo)) {
		copy_val(r->err_code, sizeof(r->err_code), data + vo, n - vo);
	} else if (r->capture_hdr && hdr_is(data, n, r->capture_hdr, &vo)) {
		copy_val(r->captured, sizeof(r->captured), data + vo, n - vo);
	}
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct attempt *a = arg;
	struct cr_req *r = a->r;
	size_t n = size * nmemb, give;
	int ret;

	if (a->status < 200 || a->status >= 300) {
		size_t room = ERRBODY_MAX - a->errbody.len;

		buf_append(&a->errbody, data, n < room ? n : room);
		return n;
	}
	if (!a->decided) {
		a->decided = true;
		/* a 200's length is the whole object's */
		if (a->status == 200 && !a->have_cr && r->have_length) {
			r->total_size = r->content_length;
			r->have_total = true;
		}
		if (a->status == 206 && a->have_cr &&
		    a->cr_start != a->req_start) {
			a->bad_range = true;
			return 0;
		}
		if (r->ranged && r->len != PROV_WHOLE && r->have_total &&
		    r->off + r->len > r->total_size) {
			a->past_end = true;
			return 0;
		}
		/* a 200 ignores our Range: drop what precedes it */
		if (a->status == 200 && !a->have_cr)
			a->skip = a->req_start;
	}
	a->raw += n;
	if (a->skip > 0) {
		size_t s = a->skip < n ? (size_t)a->skip : n;

		data += s;
		n -= s;
		a->skip -= s;
		if (n == 0)
			return size * nmemb;
	}
	give = n;
	if (a->want != UINT64_MAX && give > a->want)
		give = (size_t)a->want; /* the server sent more than asked */
	if (give > 0) {
		if (r->sink) {
			ret = r->sink(r->sink_arg, data, give);
			if (ret < 0) {
				a->sink_err = ret;
				return 0;
			}
		} else if (r->out) {
			ret = buf_append(r->out, data, give);
			if (ret < 0) {
				a->sink_err = ret;
				return 0;
			}
		}
		if (a->want != UINT64_MAX)
			a->want -= give;
		a->got += give;
		r->delivered += give;
	}
	if (a->want == 0 && a->status == 200) {
		/* a server that ignores Range sends the whole object: stop
		   once our range is in (the connection is then dropped) */
		a->done_early = true;
		return 0;
	}
	return size * nmemb;
}

static size_t on_read(char *dst, size_t size, size_t nitems, void *arg)
{
	struct attempt *a = arg;
	struct cr_req *r = a->r;
	uint64_t total = r->body_fd >= 0 ? r->body_size : r->body_len;
	size_t n = size * nitems;

	if (a->body_pos >= total)
		return 0;
	if (n > total - a->body_pos)
		n = (size_t)(total - a->body_pos);
	if (r->body_fd >= 0) {
		ssize_t got = pread(r->body_fd, dst, n,
				    (off_t)(r->body_off + a->body_pos));

		if (got <= 0)
			return CURL_READFUNC_ABORT;
		n = (size_t)got;
	} else {
		memcpy(dst, (const char *)r->body + a->body_pos, n);
	}
	a->body_pos += n;
	if (r->progress)
		r->progress(r->progress_arg, r->progress_base + a->body_pos,
			    r->progress_total);
	return n;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct attempt *a = arg;

	if (origin != SEEK_SET || off < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	a->body_pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

/* The stall detector: abort an attempt when no byte moves for too long. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct attempt *a = arg;
	int64_t now = time_mono_ms(), limit;

	(void)dltotal;
	(void)ultotal;
	if (dlnow + ulnow != a->last_now || a->last_ms == 0) {
		a->last_now = dlnow + ulnow;
		a->last_ms = now;
		return 0;
	}
	limit = a->status ? a->stall_ms : 2 * a->stall_ms;
	if (now - a->last_ms > limit) {
		a->stalled = true;
		return 1;
	}
	return 0;
}

int cr_status_errno(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 404:
		return -ENOENT;
	case 401:
	case 403:
		return -EACCES;
	case 412:
		return -ESTALE;
	case 416:
	case 400:
		return -EINVAL;
	case 405:
	case 501:
		return -ENOTSUP;
	case 408:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

static bool status_retryable(long status)
{
	return status == 429 || status == 408 || (status >= 500 && status != 501);
}

static bool curl_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
		return true;
	default:
		return false;
	}
}

/* Copy printable ASCII of @s (max @n bytes) into @out. */
static void printable(char *out, size_t cap, const char *s, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < n && j + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
	}
	out[j] = '\0';
}

/* The service's error code from an error body: S3/Azure XML or JSON. */
static void error_code_from_body(struct cr_req *r, struct buf *b)
{
	struct buf code;
	cJSON *j = NULL, *e, *m;

	if (r->err_code[0] || !b->data || b->len == 0)
		return;
	buf_init(&code, 120);
	if (b->data[0] == '<' &&
	    cx_find_text(b->data, b->len, "Code", &code) == 0 && code.data) {
		printable(r->err_code, sizeof(r->err_code), code.data,
			  code.len);
		buf_free(&code);
		return;
	}
	buf_free(&code);
	j = cJSON_ParseWithLength(b->data, b->len);
	if (!j)
		return;
	e = cJSON_GetObjectItemCaseSensitive(j, "error");
	if (cJSON_IsString(e)) { /* OAuth: {"error": "invalid_grant"} */
		printable(r->err_code, sizeof(r->err_code), e->valuestring,
			  strlen(e->valuestring));
	} else if (cJSON_IsObject(e)) { /* GCS: {"error": {"message": ..}} */
		m = cJSON_GetObjectItemCaseSensitive(e, "message");
		if (cJSON_IsString(m))
			printable(r->err_code, sizeof(r->err_code),
				  m->valuestring,
				  strnlen(m->valuestring, 100));
	}
	cJSON_Delete(j);
}

static int thread_rand(void)
{
	static __thread unsigned int seed;

	if (seed == 0)
		seed = (unsigned int)time_mono_ns() ^
		       (unsigned int)(uintptr_t)&seed;
	return rand_r(&seed);
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Build this attempt's header set: fixed + Range + If-Match + auth. */
static int build_headers(struct cr_req *r, const char *pinned,
			 struct cr_hdrs *h)
{
	int ret = 0;

	for (size_t i = 0; r->headers && r->headers[i]; i++) {
		char *l = strdup(r->headers[i]);

		if (!l)
			return -ENOMEM;
		if (h->n >= CR_MAX_HDRS) {
			free(l);
			return -E2BIG;
		}
		h->line[h->n++] = l;
	}
	if (r->ranged) {
		uint64_t start = r->off + r->delivered;

		if (r->len == PROV_WHOLE)
			ret = cr_hdr_add(h, "Range", "bytes=%" PRIu64 "-",
					 start);
		else
			ret = cr_hdr_add(h, "Range",
					 "bytes=%" PRIu64 "-%" PRIu64, start,
					 r->off + r->len - 1);
	} else if (r->resumable && r->delivered > 0) {
		ret = cr_hdr_add(h, "Range", "bytes=%" PRIu64 "-",
				 r->delivered);
	}
	if (ret == 0 && pinned && !r->pin_query)
		ret = cr_hdr_add(h, "If-Match", "%s", pinned);
	if (ret == 0 && r->has_body)
		ret = cr_hdr_add(h, "Content-Length", "%" PRIu64,
				 r->body_fd >= 0 ? r->body_size :
						   (uint64_t)r->body_len);
	if (ret == 0 && r->has_body)
		ret = cr_hdr_add(h, "Expect", "%s", "");
	return ret;
}

enum outcome { OUT_DONE, OUT_RETRY, OUT_FAIL };

int cr_run(struct cpool *pool, struct prov *p, struct cr_req *r)
{
	int64_t start_ms = time_mono_ms();
	int64_t deadline = start_ms + pool->timeout_ms;
	char pinned[CR_ETAG_MAX] = "", curl_err[CURL_ERROR_SIZE];
	char last[300] = "";
	size_t out_base = r->out ? r->out->len : 0;
	struct buf url_pin;
	const char *url;
	int attempt_no = 0, ret = -EIO;
	bool pin_set = false;

	r->delivered = 0;
	r->status = 0;
	buf_init(&url_pin, PROV_URL_MAX * 4 + CR_ETAG_MAX * 3);
	if (r->if_match) {
		snprintf(pinned, sizeof(pinned), "%s", r->if_match);
		pin_set = true;
	}
	if (r->ranged && r->len == 0)
		return 0;

	for (;;) {
		struct attempt a = { .r = r, .p = p, .retry_after_s = -1 };
		struct cr_hdrs hdrs = { 0 };
		struct curl_slist *sl = NULL;
		enum outcome oc = OUT_FAIL;
		int64_t now = time_mono_ms(), left = deadline - now;
		long stall_s;
		CURLcode rc;
		bool broken = false;

		attempt_no++;
		if (left <= 0) {
			ret = -ETIMEDOUT;
			prov_set_error("%s: gave up after %d ms (%d attempts)%s%s",
				       r->what, pool->timeout_ms,
				       attempt_no - 1, last[0] ? ": " : "",
				       last);
			break;
		}
		buf_init(&a.errbody, ERRBODY_MAX);
		a.h = cpool_get_handle(pool);
		if (!a.h) {
			ret = -ENOMEM;
			break;
		}
		if (!r->resumable && r->out) { /* start over */
			r->out->len = out_base;
			if (r->out->data)
				r->out->data[out_base] = '\0';
			r->delivered = 0;
		}
		a.want = UINT64_MAX;
		if (r->ranged && r->len != PROV_WHOLE)
			a.want = r->len - r->delivered;
		ret = build_headers(r, pin_set ? pinned : NULL, &hdrs);
		buf_reset(&url_pin);
		url = r->url;
		if (ret == 0 && pin_set && r->pin_query) {
			ret = buf_printf(&url_pin, "%s%c%s=", r->url,
					 strchr(r->url, '?') ? '&' : '?',
					 r->pin_query);
			if (ret == 0)
				ret = cu_url_encode(&url_pin, pinned, false);
			url = url_pin.data;
		}
		if (ret == 0 && r->sign) {
			prov_set_error("%s", "");
			ret = r->sign(r->sign_arg, r->method, url, &hdrs);
		}
		for (size_t i = 0; ret == 0 && i < hdrs.n; i++) {
			struct curl_slist *t = curl_slist_append(sl,
								 hdrs.line[i]);

			if (!t)
				ret = -ENOMEM;
			else
				sl = t;
		}
		if (ret < 0) {
			char why[400];

			/* the signer may have said why (a token refused) */
			snprintf(why, sizeof(why), "%s", prov_last_error());
			if (why[0])
				prov_set_error("%s: %s", r->what, why);
			else
				prov_set_error("%s: cannot build the request "
					       "(%s)", r->what, strerror(-ret));
			cr_hdrs_clear(&hdrs);
			curl_slist_free_all(sl);
			buf_free(&a.errbody);
			cpool_put_handle(pool, a.h, false);
			break;
		}

		curl_easy_setopt(a.h, CURLOPT_SHARE, pool->share);
		curl_easy_setopt(a.h, CURLOPT_URL, url);
		curl_easy_setopt(a.h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(a.h, CURLOPT_HTTPHEADER, sl);
		curl_easy_setopt(a.h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(a.h, CURLOPT_HEADERDATA, &a);
		curl_easy_setopt(a.h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(a.h, CURLOPT_WRITEDATA, &a);
		curl_easy_setopt(a.h, CURLOPT_ERRORBUFFER, curl_err);
		curl_easy_setopt(a.h, CURLOPT_TIMEOUT_MS, (long)left);
		curl_easy_setopt(a.h, CURLOPT_CONNECTTIMEOUT_MS,
				 (long)(left < pool->connect_timeout_ms ?
						left :
						pool->connect_timeout_ms));
		/* Stalls: no byte for a quarter of the budget (1..10 s) is
		   given up and retried (on_progress); a trickle under
		   1 KiB/s for twice that, too (curl's low-speed limit). */
		a.stall_ms = pool->timeout_ms / 4;
		a.stall_ms = a.stall_ms < 1000 ? 1000 :
			     a.stall_ms > 10000 ? 10000 : a.stall_ms;
		stall_s = (long)(a.stall_ms * 2 / 1000);
		curl_easy_setopt(a.h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
		curl_easy_setopt(a.h, CURLOPT_LOW_SPEED_TIME, stall_s);
		curl_easy_setopt(a.h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(a.h, CURLOPT_XFERINFODATA, &a);
		curl_easy_setopt(a.h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(a.h, CURLOPT_TCP_KEEPALIVE, 1L);
		/* bigger reads: fewer callbacks on fast links */
		curl_easy_setopt(a.h, CURLOPT_BUFFERSIZE, 256L * 1024);
		curl_easy_setopt(a.h, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(a.h, CURLOPT_SSL_VERIFYHOST, 2L);
		curl_easy_setopt(a.h, CURLOPT_PROTOCOLS_STR, "http,https");
		if (pool->ca_file)
			curl_easy_setopt(a.h, CURLOPT_CAINFO, pool->ca_file);
		if (strcmp(r->method, "HEAD") == 0) {
			curl_easy_setopt(a.h, CURLOPT_NOBODY, 1L);
		} else if (strcmp(r->method, "GET") != 0) {
			curl_easy_setopt(a.h, CURLOPT_CUSTOMREQUEST, r->method);
		}
		if (r->has_body) {
			uint64_t sz = r->body_fd >= 0 ? r->body_size :
							 (uint64_t)r->body_len;

			curl_easy_setopt(a.h, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(a.h, CURLOPT_INFILESIZE_LARGE,
					 (curl_off_t)sz);
			curl_easy_setopt(a.h, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(a.h, CURLOPT_READDATA, &a);
			curl_easy_setopt(a.h, CURLOPT_SEEKFUNCTION, on_seek);
			curl_easy_setopt(a.h, CURLOPT_SEEKDATA, &a);
		}
		a.req_start = (r->ranged ? r->off : 0) + r->delivered;
		curl_err[0] = '\0';
		rc = curl_easy_perform(a.h);
		r->status = a.status;
		if (rc == CURLE_OK)
			curl_easy_getinfo(a.h, CURLINFO_RESPONSE_CODE,
					  &r->status);

		if (rc == CURLE_WRITE_ERROR && a.done_early) {
			rc = CURLE_OK; /* all we asked for arrived */
			broken = true;
		}
		if (a.past_end) {
			ret = -EINVAL;
			prov_set_error("%s: range past the end (%" PRIu64
				       " bytes)", r->what, r->total_size);
			oc = OUT_FAIL;
		} else if (a.bad_range) {
			snprintf(last, sizeof(last),
				 "answer for the wrong range");
			ret = -EIO;
			oc = OUT_RETRY;
		} else if (a.sink_err) {
			ret = a.sink_err;
			if (ret == -EFBIG)
				prov_set_error("%s: larger than allowed",
					       r->what);
			else
				prov_set_error("%s: aborted by the reader (%s)",
					       r->what, strerror(-ret));
			oc = OUT_FAIL;
		} else if (rc == CURLE_ABORTED_BY_CALLBACK && a.stalled) {
			snprintf(last, sizeof(last),
				 "stalled: no data for %" PRId64 " ms",
				 a.stall_ms);
			ret = -ETIMEDOUT;
			oc = OUT_RETRY;
			broken = true;
		} else if (rc != CURLE_OK) {
			char msg[200];

			printable(msg, sizeof(msg), curl_err[0] ? curl_err :
						curl_easy_strerror(rc),
				  strlen(curl_err[0] ? curl_err :
						curl_easy_strerror(rc)));
			/* never echo a URL query back */
			if (strchr(msg, '?'))
				*strchr(msg, '?') = '\0';
			snprintf(last, sizeof(last), "%s", msg);
			if (rc == CURLE_PEER_FAILED_VERIFICATION ||
			    rc == CURLE_SSL_CACERT_BADFILE ||
			    rc == CURLE_SSL_CERTPROBLEM) {
				ret = -EACCES;
				prov_set_error("%s: TLS verification failed: %s",
					       r->what, msg);
				oc = OUT_FAIL;
			} else if (curl_retryable(rc)) {
				ret = rc == CURLE_OPERATION_TIMEDOUT ?
					      -ETIMEDOUT : -EIO;
				oc = OUT_RETRY;
				broken = true;
			} else {
				ret = -EIO;
				prov_set_error("%s: %s", r->what, msg);
				oc = OUT_FAIL;
				broken = true;
			}
		} else if (r->status >= 200 && r->status < 300) {
			if (r->ranged && a.want != UINT64_MAX &&
				   a.want > 0 &&
				   !(r->have_total &&
				     r->off + r->delivered >= r->total_size)) {
				snprintf(last, sizeof(last),
					 "truncated body (%" PRIu64
					 " bytes missing)", a.want);
				ret = -EIO;
				oc = OUT_RETRY;
			} else if (strcmp(r->method, "HEAD") != 0 &&
				   r->have_length && r->status != 204 &&
				   !a.done_early && a.raw < r->content_length) {
				snprintf(last, sizeof(last),
					 "truncated body (%" PRIu64 " of %"
					 PRIu64 " bytes)",
					 a.raw, r->content_length);
				ret = -EIO;
				oc = OUT_RETRY;
			} else {
				ret = 0;
				oc = OUT_DONE;
			}
		} else if (r->status == 416 && r->ranged &&
			   r->len == PROV_WHOLE && r->have_total &&
			   r->off + r->delivered == r->total_size) {
			ret = 0; /* from the very end to the end: nothing */
			oc = OUT_DONE;
		} else {
			error_code_from_body(r, &a.errbody);
			if (r->status == 416)
				snprintf(r->err_code, sizeof(r->err_code),
					 "range past the end");
			ret = cr_status_errno(r->status);
			snprintf(last, sizeof(last), "HTTP %ld%s%s", r->status,
				 r->err_code[0] ? " " : "", r->err_code);
			if (status_retryable(r->status)) {
				oc = OUT_RETRY;
			} else {
				oc = OUT_FAIL;
				if (ret == -ESTALE)
					prov_set_error("%s: HTTP 412: the object "
						       "changed (If-Match)",
						       r->what);
				else
					prov_set_error("%s: %s", r->what, last);
			}
		}
		/* pin what we started reading, so a resume cannot mix */
		if (oc != OUT_FAIL && !pin_set && r->resumable &&
		    r->delivered > 0) {
			const char *v = r->pin_query ? r->captured : r->etag;

			if (v[0]) {
				snprintf(pinned, sizeof(pinned), "%s", v);
				pin_set = true;
			}
		}
		curl_easy_setopt(a.h, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(a.h, CURLOPT_ERRORBUFFER, NULL);
		curl_easy_setopt(a.h, CURLOPT_SHARE, NULL);
		cpool_put_handle(pool, a.h, broken);
		curl_slist_free_all(sl);
		cr_hdrs_clear(&hdrs);
		buf_free(&a.errbody);

		if (oc == OUT_DONE || oc == OUT_FAIL)
			break;
		/* retry: a resumable transfer keeps what it delivered; the
		   others must not have handed anything on */
		if (!r->resumable && r->delivered > 0 && r->sink) {
			prov_set_error("%s: %s (not resumable)", r->what, last);
			break;
		}
		if (attempt_no >= MAX_ATTEMPTS) {
			prov_set_error("%s: %s (gave up after %d attempts)",
				       r->what, last, attempt_no);
			break;
		}
		{
			int64_t cap = BACKOFF_BASE_MS << (attempt_no < 6 ?
							  attempt_no : 6);
			int64_t wait, remain;

			if (cap > BACKOFF_CAP_MS)
				cap = BACKOFF_CAP_MS;
			wait = cap / 2 + thread_rand() % (cap / 2 + 1);
			if (a.retry_after_s >= 0 &&
			    (int64_t)a.retry_after_s * 1000 > wait)
				wait = (int64_t)a.retry_after_s * 1000;
			remain = deadline - time_mono_ms();
			if (wait >= remain) {
				ret = -ETIMEDOUT;
				prov_set_error("%s: %s; no time left to retry "
					       "within %d ms",
					       r->what, last, pool->timeout_ms);
				break;
			}
			log_debug("%s: %s; retrying in %" PRId64 " ms",
				  r->what, last, wait);
			atomic_fetch_add(&p->stats.retries, 1);
			sleep_ms(wait);
		}
	}
	buf_free(&url_pin);
	return ret;
}
