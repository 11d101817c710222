/*
 * metrics_http - see metrics_http.h. We bind the listening socket
 * ourselves (so a busy port is reported as EADDRINUSE, not as a NULL
 * daemon) and hand it to libmicrohttpd, which closes it on stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/metrics_http.h"

#define METRICS_HTTP_CONNS 32u
#define METRICS_HTTP_IDLE_S 10u

struct metrics_http {
	struct MHD_Daemon *d;
	metrics_http_render_fn fn;
	void *ctx;
	const char *path; /* "/metrics", or the caller's (borrowed) */
};

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_ret;
#else
typedef int mhd_ret;
#endif

/* @addr:@port as a socket address; -EINVAL if @addr is not numeric. */
static int sockaddr_of(const char *addr, int port, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (!addr || port <= 0 || port > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}

bool metrics_http_addr_valid(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;

	return sockaddr_of(addr, 1, &ss, &len) == 0;
}

static mhd_ret reply(struct MHD_Connection *conn, unsigned status,
		     const char *type, const char *body, size_t len)
{
	struct MHD_Response *r;
	mhd_ret ret;

	r = MHD_create_response_from_buffer(len, (void *)body,
					    MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static mhd_ret on_request(void *cls, struct MHD_Connection *conn,
			  const char *url, const char *method,
			  const char *version, const char *upload,
			  size_t *upload_len, void **con_cls)
{
	static const char text[] = "text/plain; charset=utf-8";
	struct metrics_http *h = cls;
	struct buf body;
	mhd_ret ret;

	/* the first call only announces the request; a body is ignored */
	if (!*con_cls) {
		*con_cls = h;
		return MHD_YES;
	}
	if (*upload_len) {
		*upload_len = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text,
			     "only GET /metrics\n", 18);
	if (strcmp(url, h->path) != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, text,
			     "not found: no counters at this path\n", 36);
	buf_init(&body, METRICS_HTTP_BODY_MAX);
	if (h->fn(h->ctx, &body) < 0)
		ret = reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, text,
			    "cannot render the counters\n", 27);
	else
		ret = reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4",
			    body.data ? body.data : "", body.len);
	buf_free(&body);
	return ret;
}

int metrics_http_start(const char *addr, int port, metrics_http_render_fn fn,
		       void *ctx, struct metrics_http **out)
{
	return metrics_http_start_at(addr, port, "/metrics", fn, ctx, out);
}

int metrics_http_start_at(const char *addr, int port, const char *path,
			  metrics_http_render_fn fn, void *ctx,
			  struct metrics_http **out)
{
	struct sockaddr_storage ss;
	struct metrics_http *h = NULL;
	socklen_t salen;
	unsigned flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_POLL;
	int fd = -1, one = 1, ret;

	ret = sockaddr_of(addr, port, &ss, &salen);
	if (ret < 0 || !fn || !path || path[0] != '/')
		return ret < 0 ? ret : -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->fn = fn;
	h->ctx = ctx;
	h->path = path;
	fd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, salen) < 0 || listen(fd, 64) < 0) {
		ret = -errno;
		goto fail;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	errno = 0;
	h->d = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, METRICS_HTTP_CONNS,
	    MHD_OPTION_CONNECTION_TIMEOUT, METRICS_HTTP_IDLE_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
	    MHD_OPTION_END);
	if (!h->d) {
		ret = errno ? -errno : -EIO;
		goto fail;
	}
	*out = h;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(h);
	return ret;
}

void metrics_http_stop(struct metrics_http **hp)
{
	struct metrics_http *h = hp ? *hp : NULL;

	if (!h)
		return;
	MHD_stop_daemon(h->d); /* closes the listening socket too */
	free(h);
	*hp = NULL;
}
