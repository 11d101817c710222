/*
 * http - libmicrohttpd behind a small request/response interface.
 *
 * Per connection a struct conn_track (the socket context) records when the
 * connection last started waiting for a request and whether a request is
 * arriving; a watchdog thread shuts down the socket of any connection that
 * takes longer than the request timeout to deliver a request, which
 * libmicrohttpd's idle timeout alone cannot do (one byte a second is never
 * idle). The watchdog also closes idle keep-alive connections, those whose
 * client sent nothing since its last answer (idle_now): libmicrohttpd
 * times a connection out from its own last read, and checks timeouts
 * before reading what epoll reported, so a server stalled past the
 * keep-alive (CPU starved, paging, frozen) closed, unanswered, the
 * connections whose requests came in meanwhile. Its own timeout stays as a
 * backstop (an answer its client does not read), at twice the keep-alive
 * plus the request timeout. Per request a struct
 * req_ctx (created by the URI callback, freed by the completion callback)
 * collects the body into a capped buffer.
 *
 * Lock order: s->lock is a leaf; it is held only to walk or change the
 * list of tracked connections and never while calling out.
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/tcp.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/http.h"

struct conn_track {
	struct conn_track *prev, *next; /* protected by s->lock */
	int fd;
	int64_t t0_ns;	/* connection start or last request done */
	int64_t req_ns; /* request line arrived; 0 when idle */
	int serving;	/* the request is in; answering it has no deadline */
	bool killed;	/* protected by s->lock */
	/* the watchdog's: the t0_ns and client data segment count with which
	 * it last saw the connection idle past the keep-alive */
	int64_t idle_t0;
	uint32_t idle_segs;
};

struct req_ctx {
	struct http_server *s;
	struct conn_track *track;
	struct buf body;
	int64_t start_ns;
	bool started;
	bool responded;
};

struct http_server {
	struct MHD_Daemon *d;
	struct http_opts o;
	http_handler_fn fn;
	void *ctx;
	pthread_mutex_t lock;
	struct conn_track *tracks; /* protected by lock */
	pthread_t watchdog;
	bool watchdog_started;
	atomic_bool stop;
	atomic_uint_fast64_t done;
	atomic_int inflight;
	atomic_bool quiesced;
};

int http_listen(int port)
{
	struct sockaddr_in sa;
	int one = 1;
	int fd, ret;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		ret = -errno;
		goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		goto fail;
	}
	if (listen(fd, 1024) < 0) {
		ret = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}

static void on_connection(void *cls, struct MHD_Connection *c,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *s = cls;
	struct conn_track *t = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return;
		ci = MHD_get_connection_info(c,
					     MHD_CONNECTION_INFO_CONNECTION_FD);
		t->fd = ci ? ci->connect_fd : -1;
		t->t0_ns = time_mono_ns();
		pthread_mutex_lock(&s->lock);
		t->next = s->tracks;
		if (s->tracks)
			s->tracks->prev = t;
		s->tracks = t;
		pthread_mutex_unlock(&s->lock);
		*socket_context = t;
		return;
	}
	if (!t)
		return;
	pthread_mutex_lock(&s->lock);
	if (t->prev)
		t->prev->next = t->next;
	else
		s->tracks = t->next;
	if (t->next)
		t->next->prev = t->prev;
	pthread_mutex_unlock(&s->lock);
	free(t);
	*socket_context = NULL;
}

static struct conn_track *track_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct http_server *s = cls;
	struct req_ctx *r;

	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->s = s;
	r->start_ns = time_mono_ns();
	buf_init(&r->body, s->o.max_body);
	r->track = track_of(c);
	atomic_fetch_add(&s->inflight, 1);
	if (r->track)
		__atomic_store_n(&r->track->req_ns, r->start_ns,
				 __ATOMIC_RELAXED);
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct req_ctx *r = *con_cls;
	struct conn_track *t;

	t = r ? r->track : track_of(c);
	if (t) {
		__atomic_store_n(&t->req_ns, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&t->t0_ns, time_mono_ns(), __ATOMIC_RELAXED);
		__atomic_store_n(&t->serving, 0, __ATOMIC_RELAXED);
	}
	if (r) {
		buf_free(&r->body);
		free(r);
		atomic_fetch_sub(&s->inflight, 1);
	}
	*con_cls = NULL;
	atomic_fetch_add(&s->done, 1);
}

/*
 * Is @t idle past the keep-alive, its client silent since its last answer?
 * Neither unread bytes nor bytes libmicrohttpd has read but not yet parsed
 * (right after a stall, the watchdog may run first) may count as silence:
 * the connection must look idle on two ticks in a row with no data segment
 * from the client in between (TCP_INFO), and nothing unread (FIONREAD).
 * Called with s->lock held.
 */
static bool idle_now(struct conn_track *t, int64_t t0)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int unread = 0;
	bool same;

	if (ioctl(t->fd, FIONREAD, &unread) < 0 || unread > 0 ||
	    getsockopt(t->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) {
		t->idle_t0 = 0;
		return false;
	}
	same = t->idle_t0 == t0 && t->idle_segs == ti.tcpi_data_segs_in;
	t->idle_t0 = t0;
	t->idle_segs = ti.tcpi_data_segs_in;
	return same;
}

static void *watchdog_main(void *arg)
{
	struct http_server *s = arg;
	int64_t timeout = (int64_t)s->o.request_timeout_ms * 1000000;
	/* no keep-alive timeout: an idle connection has the request timeout */
	int64_t idle = s->o.keepalive_s
			   ? (int64_t)s->o.keepalive_s * 1000000000
			   : timeout;
	struct conn_track *t;
	int64_t now, req, t0;

	while (!atomic_load(&s->stop)) {
		usleep(200 * 1000);
		now = time_mono_ns();
		pthread_mutex_lock(&s->lock);
		for (t = s->tracks; t; t = t->next) {
			req = __atomic_load_n(&t->req_ns, __ATOMIC_RELAXED);
			t0 = __atomic_load_n(&t->t0_ns, __ATOMIC_RELAXED);
			if (t->killed || t->fd < 0 ||
			    __atomic_load_n(&t->serving, __ATOMIC_RELAXED))
				continue;
			if (req && timeout && now - req > timeout) {
				log_info("closing a connection that took over "
					 "%u ms to send its request",
					 s->o.request_timeout_ms);
			} else if (!req && idle && now - t0 > idle &&
				   idle_now(t, t0)) {
				log_debug("closing an idle keep-alive "
					  "connection");
			} else {
				if (req || now - t0 <= idle)
					t->idle_t0 = 0;
				continue;
			}
			shutdown(t->fd, SHUT_RDWR);
			t->killed = true;
		}
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

const char *http_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_query(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
					   name);
}

/* Copy at most @max bytes of client text, escaping what could forge a
 * log line (control bytes, quotes, non-ASCII) as \xNN. */
static void log_safe(char *out, size_t outlen, const char *s, size_t max)
{
	size_t o = 0, i;

	for (i = 0; s[i] && i < max && o + 5 < outlen; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x",
					      ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

static void access_log(struct MHD_Connection *c, const char *method,
		       const char *url, const struct http_response *resp,
		       int64_t start_ns)
{
	const union MHD_ConnectionInfo *ci;
	char addr[64] = "-";
	char line[1400], m[40], u[820];
	char ts[40];
	int64_t sec;
	int32_t nsec;
	int n;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET,
			  &((struct sockaddr_in *)ci->client_addr)->sin_addr,
			  addr, sizeof(addr));
	time_now(&sec, &nsec);
	if (time_format_iso8601(sec, nsec, ts, sizeof(ts)) < 0)
		strcpy(ts, "-");
	log_safe(m, sizeof(m), method, 16);
	log_safe(u, sizeof(u), url, 200);
	n = snprintf(line, sizeof(line), "%s %s \"%s %s\" %d %zu %.3fms\n", ts,
		     addr, m, u, resp->status, resp->body.len,
		     (double)(time_mono_ns() - start_ns) / 1e6);
	if (n > 0)
		(void)!write(2, line,
			     (size_t)n < sizeof(line) ? (size_t)n
						      : sizeof(line) - 1);
}

static enum MHD_Result queue(struct http_server *s, struct MHD_Connection *c,
			     struct http_response *resp)
{
	struct MHD_Response *mr;
	enum MHD_Result ret;
	size_t len = resp->body.len;
	char *data = buf_steal(&resp->body);

	if (!data)
		return MHD_NO;
	mr = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!mr) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
				resp->content_type ? resp->content_type
						   : "application/json");
	if (atomic_load(&s->quiesced))
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION,
					"close");
	ret = MHD_queue_response(c, (unsigned)resp->status, mr);
	MHD_destroy_response(mr);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct http_server *s = cls;
	struct req_ctx *r = *con_cls;
	struct http_response resp;
	struct http_request req;
	enum MHD_Result ret;
	const char *cl;

	if (!r) {
		r = on_uri(s, url, c);
		if (!r)
			return MHD_NO;
		*con_cls = r;
	}
	if (r->responded)
		return MHD_YES;
	if (!r->started) {
		r->started = true;
		cl = MHD_lookup_connection_value(
		    c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && s->o.max_body &&
		    strtoull(cl, NULL, 10) > s->o.max_body) {
			memset(&resp, 0, sizeof(resp));
			buf_init(&resp.body, 0);
			resp.status = 413;
			buf_printf(&resp.body,
				   "{\"error\": \"request body larger than "
				   "%zu bytes\"}",
				   s->o.max_body);
			r->responded = true;
			if (s->o.access_log)
				access_log(c, method, url, &resp, r->start_ns);
			return queue(s, c, &resp);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (s->o.request_timeout_ms &&
		    time_mono_ns() - r->start_ns >
			(int64_t)s->o.request_timeout_ms * 1000000)
			return MHD_NO;
		if (buf_append(&r->body, upload, *upload_size) < 0)
			return MHD_NO; /* over the cap without a length */
		*upload_size = 0;
		return MHD_YES;
	}
	/* the request is in: from here on only the idle timeout applies */
	if (r->track)
		__atomic_store_n(&r->track->serving, 1, __ATOMIC_RELAXED);
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = url;
	req.body = r->body.data ? r->body.data : "";
	req.body_len = r->body.len;
	req.start_ns = r->start_ns;
	req.conn = c;
	memset(&resp, 0, sizeof(resp));
	resp.status = 200;
	buf_init(&resp.body, 0);
	s->fn(s->ctx, &req, &resp);
	r->responded = true;
	if (s->o.access_log && !(s->o.access_log_skip &&
				 strcmp(url, s->o.access_log_skip) == 0))
		access_log(c, method, url, &resp, r->start_ns);
	ret = queue(s, c, &resp);
	buf_free(&resp.body);
	return ret;
}

int http_start(const struct http_opts *o, http_handler_fn fn, void *ctx,
	       struct http_server **out)
{
	struct http_server *s;
	unsigned flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_TURBO;
	unsigned pool = 0;
	/* the backstop: the watchdog closes idle connections (see the top) */
	unsigned mhd_timeout =
	    o->keepalive_s
		? 2 * o->keepalive_s + (o->request_timeout_ms + 999) / 1000
		: 0;
	int fd = o->listen_fd;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *o;
	s->fn = fn;
	s->ctx = ctx;
	pthread_mutex_init(&s->lock, NULL);
	if (fd < 0) {
		fd = http_listen(o->port);
		if (fd < 0) {
			ret = fd;
			goto fail;
		}
	}
	if (o->single_threaded) {
		flags |= MHD_USE_EPOLL;
	} else if (o->threads == 0) {
		flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
	} else {
		flags |= MHD_USE_EPOLL;
		pool = o->threads > 1 ? o->threads : 0;
	}
	s->d = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_THREAD_POOL_SIZE, pool, MHD_OPTION_CONNECTION_LIMIT,
	    o->conn_limit ? o->conn_limit : 1024u,
	    MHD_OPTION_CONNECTION_TIMEOUT, mhd_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, s, MHD_OPTION_END);
	if (!s->d) {
		ret = -EIO;
		if (o->listen_fd < 0)
			close(fd);
		goto fail;
	}
	if (o->request_timeout_ms || o->keepalive_s) {
		if (pthread_create(&s->watchdog, NULL, watchdog_main, s) == 0)
			s->watchdog_started = true;
	}
	*out = s;
	return 0;
fail:
	pthread_mutex_destroy(&s->lock);
	free(s);
	return ret;
}

void http_quiesce(struct http_server *s)
{
	MHD_socket fd;

	if (!s || atomic_load(&s->quiesced))
		return;
	atomic_store(&s->quiesced, true);
	fd = MHD_quiesce_daemon(s->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

unsigned http_connections(struct http_server *s)
{
	const union MHD_DaemonInfo *di;

	di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return di ? di->num_connections : 0;
}

unsigned http_inflight(struct http_server *s)
{
	int n = atomic_load(&s->inflight);

	return n > 0 ? (unsigned)n : 0;
}

uint64_t http_requests_done(struct http_server *s)
{
	return atomic_load(&s->done);
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	if (s->watchdog_started)
		pthread_join(s->watchdog, NULL);
	MHD_stop_daemon(s->d);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
