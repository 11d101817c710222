/*
 * grpc_server - the gRPC front end's event loops (see grpc_server.h and
 * grpc_server_int.h): HTTP/2 on libnghttp2, one epoll loop per thread.
 *
 * The worker binds the port (SO_REUSEPORT: the kernel spreads
 * connections over the worker processes); loop 0 accepts and hands each
 * new socket to the loops in turn through their inbox and eventfd, the
 * only hand-off between threads. From then on a connection belongs to its
 * loop: reads, the calls they complete (answered inline, grpc_call.c),
 * and one write of everything queued, every turn. A client that does not
 * read its answers fills its own output (GH_OUT_MAX) and is then not read
 * either; the other connections never wait on it.
 *
 * Timers (every second): keepalive PINGs on connections quiet for
 * --grpc-keepalive, closed when the answer does not come in time; calls
 * past their grpc-timeout; connections that never said hello or stay
 * without calls for GH_IDLE_MS, or whose calls wait (it holds held_max
 * of answers) while none has left for GH_IDLE_MS. Stop: GOAWAY on every connection, the
 * calls in flight finish within the grace, then everything is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/grpc_server_int.h"

#define GH_READ_CHUNK 65536
#define GH_READ_TURN (4 * GH_READ_CHUNK) /* per connection, per turn */
#define GH_EVENTS 64

static void conn_close(struct gh_conn *c)
{
	struct gh_loop *l = c->loop;

	epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->h2)
		gh_session_free(c);
	if (c->ssl)
		SSL_free(c->ssl);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	l->n_conns--;
	free(c->out);
	free(c);
}

/* Tell epoll what @c waits for now. */
static void conn_watch(struct gh_conn *c)
{
	struct epoll_event ev = {.data.ptr = c};

	if (!c->paused)
		ev.events |= EPOLLIN;
	if (c->out_len > c->out_off || c->tls_want_out)
		ev.events |= EPOLLOUT;
	if (ev.events == c->events)
		return;
	if (epoll_ctl(c->loop->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = ev.events;
}

/*
 * Move what the session has into the socket until one of them is full
 * (or the session is empty). Returns 0 or a negative errno (close).
 */
static int conn_flush(struct gh_conn *c)
{
	ssize_t n;

	if (!c->hello_done)
		return 0;
	for (;;) {
		if (gh_session_send(c) < 0)
			return -EPROTO;
		if (c->out_off == c->out_len) {
			/* answers that left make room for calls that wait */
			if (gh_session_resume(c) > 0)
				continue;
			break;
		}
		n = gh_io_write(c, c->out + c->out_off,
				c->out_len - c->out_off);
		if (n == -EAGAIN)
			break;
		if (n < 0)
			return (int)n;
		c->out_off += (size_t)n;
		if (c->out_off == c->out_len)
			c->out_off = c->out_len = 0;
		else
			break; /* the socket took part: it is full */
	}
	c->paused = c->out_len - c->out_off >= GH_OUT_MAX;
	if (!nghttp2_session_want_read(c->h2) &&
	    !nghttp2_session_want_write(c->h2) && c->out_off == c->out_len)
		return -ECONNRESET; /* GOAWAY done, or the client's */
	return 0;
}

/* Read what the client sent (a turn's worth) into the session. */
static int conn_read(struct gh_conn *c)
{
	uint8_t buf[GH_READ_CHUNK];
	size_t total = 0;
	ssize_t n;
	int r;

	if (!c->hello_done) {
		r = gh_tls_hello(c);
		if (r <= 0)
			return r;
		c->hello_done = true;
	}
	while (!c->paused && total < GH_READ_TURN) {
		n = gh_io_read(c, buf, sizeof(buf));
		if (n == -EAGAIN)
			break;
		if (n <= 0)
			return n == 0 ? -ECONNRESET : (int)n;
		total += (size_t)n;
		c->last_rx_ns = time_mono_ns();
		if (gh_session_recv(c, buf, (size_t)n) < 0)
			return -EPROTO;
		/* answers queued by those bytes may fill the output */
		if (c->out_len - c->out_off >= GH_OUT_MAX / 2) {
			r = conn_flush(c);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static void conn_event(struct gh_conn *c, uint32_t ev)
{
	bool was_paused = c->paused;
	int r = 0;

	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
		r = conn_read(c);
	if (r == 0 && (ev & EPOLLOUT) && !c->hello_done)
		r = conn_read(c); /* the handshake wanted to write */
	if (r == 0)
		r = conn_flush(c);
	/* a client that took its answers is read again, and what OpenSSL
	 * holds already would raise no event */
	if (r == 0 && was_paused && !c->paused) {
		r = conn_read(c);
		if (r == 0)
			r = conn_flush(c);
	}
	if (r < 0) {
		c->dead = true;
		return;
	}
	conn_watch(c);
}

static void conn_adopt(struct gh_loop *l, int fd)
{
	struct grpc_front *g = l->g;
	struct epoll_event ev = {.events = EPOLLIN};
	struct gh_conn *c;
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	c->fd = fd;
	c->loop = l;
	c->serial = ++l->serials;
	c->born_ns = c->last_rx_ns = c->last_call_ns = time_mono_ns();
	c->moved_ns = c->born_ns;
	if (gh_session_new(g, c) < 0)
		goto fail;
	if (g->tls) {
		if (gh_tls_conn(g->tls, c) < 0)
			goto fail;
	} else {
		c->hello_done = true;
	}
	ev.data.ptr = c;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail;
	c->events = EPOLLIN;
	c->next = l->conns;
	if (l->conns)
		l->conns->prev = c;
	l->conns = c;
	l->n_conns++;
	if (conn_flush(c) < 0) /* our SETTINGS */
		c->dead = true;
	else
		conn_watch(c);
	return;
fail:
	if (c) {
		if (c->h2)
			gh_session_free(c);
		SSL_free(c->ssl);
		free(c);
	}
	close(fd);
}

/* Replies the loader made for this loop's calls. */
static void take_done(struct gh_loop *l)
{
	struct gh_job *j, *nx;
	struct gh_conn *c;

	pthread_mutex_lock(&l->lock);
	j = l->done;
	l->done = NULL;
	pthread_mutex_unlock(&l->lock);
	for (; j; j = nx) {
		nx = j->next;
		for (c = l->conns; c; c = c->next)
			if (c == j->conn && c->serial == j->serial)
				break;
		if (!c || c->dead) {
			free(j->r.out);
			free(j->body);
			free(j);
			continue;
		}
		gh_job_done(c, j);
		if (conn_flush(c) < 0)
			c->dead = true;
		else
			conn_watch(c);
	}
}

static void *loader_run(void *arg)
{
	struct grpc_front *g = arg;
	struct gh_job *j;
	uint64_t one = 1;

	for (;;) {
		pthread_mutex_lock(&g->jlock);
		while (!g->jobs && !g->jstop)
			pthread_cond_wait(&g->jcond, &g->jlock);
		j = g->jobs;
		if (j)
			g->jobs = j->next;
		pthread_mutex_unlock(&g->jlock);
		if (!j)
			return NULL; /* stopping, nothing left */
		/* here a lazy load may block: only this thread waits */
		j->m->fn(g->ctx, j->body + 5, j->len, &j->r);
		pthread_mutex_lock(&j->loop->lock);
		j->next = j->loop->done;
		j->loop->done = j;
		pthread_mutex_unlock(&j->loop->lock);
		if (write(j->loop->evfd, &one, sizeof(one)) < 0)
			log_warn("grpc: eventfd: %s", strerror(errno));
	}
}

static void jobs_free(struct gh_job *j)
{
	struct gh_job *nx;

	for (; j; j = nx) {
		nx = j->next;
		free(j->r.out);
		free(j->body);
		free(j);
	}
}

static void take_inbox(struct gh_loop *l)
{
	uint64_t v;
	size_t i, n;
	int fds[64];

	if (read(l->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("grpc: eventfd: %s", strerror(errno));
	take_done(l);
	do {
		pthread_mutex_lock(&l->lock);
		n = l->n_inbox < 64 ? l->n_inbox : 64;
		if (n)
			memcpy(fds, l->inbox + l->n_inbox - n,
			       n * sizeof(int));
		l->n_inbox -= n;
		pthread_mutex_unlock(&l->lock);
		for (i = 0; i < n; i++)
			conn_adopt(l, fds[i]);
	} while (n == 64);
}

static void give(struct gh_loop *l, int fd)
{
	uint64_t one = 1;
	int *ni;

	pthread_mutex_lock(&l->lock);
	if (l->n_inbox == l->cap_inbox) {
		ni = realloc(l->inbox, (l->cap_inbox * 2 + 16) * sizeof(int));
		if (!ni) {
			pthread_mutex_unlock(&l->lock);
			close(fd);
			return;
		}
		l->inbox = ni;
		l->cap_inbox = l->cap_inbox * 2 + 16;
	}
	l->inbox[l->n_inbox++] = fd;
	pthread_mutex_unlock(&l->lock);
	if (write(l->evfd, &one, sizeof(one)) < 0)
		log_warn("grpc: eventfd: %s", strerror(errno));
}

static void accept_all(struct gh_loop *l)
{
	struct grpc_front *g = l->g;
	struct gh_loop *to;
	int fd;

	for (;;) {
		fd = accept4(g->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_warn("grpc: accept: %s", strerror(errno));
			return;
		}
		to = &g->loops[atomic_fetch_add(&g->next_loop, 1) %
			       g->n_loops];
		if (to == l)
			conn_adopt(l, fd);
		else
			give(to, fd);
	}
}

/* Once a second: keepalive, deadlines, idle and silent connections. */
static void sweep(struct gh_loop *l, int64_t now)
{
	struct grpc_front *g = l->g;
	struct gh_conn *c;

	l->last_sweep_ns = now;
	for (c = l->conns; c; c = c->next) {
		if (!c->seen_frame &&
		    now - c->born_ns > (int64_t)GH_HELLO_MS * 1000000) {
			c->dead = true;
			continue;
		}
		if (c->ping_ns &&
		    now - c->ping_ns >
			(int64_t)g->keepalive_timeout_ms * 1000000) {
			c->dead = true; /* the peer is gone */
			continue;
		}
		if (!c->ping_ns && c->hello_done &&
		    now - c->last_rx_ns > (int64_t)g->keepalive_ms * 1000000 &&
		    nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL) == 0)
			c->ping_ns = now;
		if (c->n_waiting &&
		    now - c->moved_ns > (int64_t)GH_IDLE_MS * 1000000) {
			c->dead = true; /* its client takes no answers */
			continue;
		}
		if (c->n_streams)
			gh_session_expire(c, now);
		else if (now - c->last_call_ns > (int64_t)GH_IDLE_MS * 1000000)
			nghttp2_session_terminate_session(c->h2,
							  NGHTTP2_NO_ERROR);
		if (conn_flush(c) < 0)
			c->dead = true;
		else
			conn_watch(c);
	}
}

/* Stopping: GOAWAY once on every connection (the calls it already
 * has finish; new ones are refused and retried elsewhere). */
static void goaway(struct gh_loop *l)
{
	struct gh_conn *c;

	l->goaway_sent = true;
	for (c = l->conns; c; c = c->next) {
		nghttp2_submit_goaway(
		    c->h2, NGHTTP2_FLAG_NONE,
		    nghttp2_session_get_last_proc_stream_id(c->h2),
		    NGHTTP2_NO_ERROR, NULL, 0);
		if (conn_flush(c) < 0)
			c->dead = true;
		else
			conn_watch(c);
	}
}

static void reap(struct gh_loop *l)
{
	struct gh_conn *c, *nx;

	for (c = l->conns; c; c = nx) {
		nx = c->next;
		if (c->dead)
			conn_close(c);
	}
}

static void *loop_run(void *arg)
{
	struct gh_loop *l = arg;
	struct grpc_front *g = l->g;
	struct epoll_event ev[GH_EVENTS];
	int64_t now;
	int i, n;

	for (;;) {
		if (atomic_load(&g->stopping)) {
			if (!l->goaway_sent) {
				if (l == g->loops)
					epoll_ctl(l->ep, EPOLL_CTL_DEL, g->lfd,
						  NULL);
				goaway(l);
				reap(l);
			}
			if (!l->conns || time_mono_ns() > g->stop_by_ns)
				break;
		}
		n = epoll_wait(l->ep, ev, GH_EVENTS, l->conns ? 1000 : -1);
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == &g->lfd)
				accept_all(l);
			else if (ev[i].data.ptr == &l->evfd)
				take_inbox(l);
			else
				conn_event(ev[i].data.ptr, ev[i].events);
		}
		now = time_mono_ns();
		if (now - l->last_sweep_ns >= 1000000000)
			sweep(l, now);
		reap(l);
	}
	while (l->conns)
		conn_close(l->conns);
	return NULL;
}

static int listen_on(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_ANY)};
	int fd, one = 1, e;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 1024) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static int methods_new(struct grpc_front *g)
{
	const struct grpc_method **m;
	size_t i, k = 0;

	m = calloc(grpc_v2_n_methods + grpc_seldon_n_methods + 1,
		   sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (i = 0; i < grpc_v2_n_methods; i++)
		m[k++] = &grpc_v2_methods[i];
	for (i = 0; i < grpc_seldon_n_methods; i++)
		m[k++] = &grpc_seldon_methods[i];
	g->methods = m;
	return 0;
}

static int loop_init(struct grpc_front *g, struct gh_loop *l)
{
	struct epoll_event ev = {.events = EPOLLIN};

	l->g = g;
	l->evfd = -1;
	l->ctx = g->own_ctx;
	l->ctx.load_deferred = &l->deferred;
	pthread_mutex_init(&l->lock, NULL);
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0)
		return -errno;
	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->evfd < 0)
		return -errno;
	ev.data.ptr = &l->evfd;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->evfd, &ev) < 0)
		return -errno;
	if (l == g->loops) {
		ev.data.ptr = &g->lfd;
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, g->lfd, &ev) < 0)
			return -errno;
	}
	return 0;
}

int grpc_front_start(const struct grpc_opts *o, struct server_ctx *ctx,
		     struct grpc_front **out, char *err, size_t errlen)
{
	struct grpc_front *g;
	unsigned t;
	int ret;

	*out = NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->lfd = -1;
	/* a lazy load in progress answers UNAVAILABLE rather than parking
	 * a loop behind it */
	g->own_ctx = *ctx;
	g->own_ctx.no_wait = true;
	g->ctx = &g->own_ctx;
	pthread_mutex_init(&g->jlock, NULL);
	pthread_cond_init(&g->jcond, NULL);
	g->max_message = o->max_message;
	g->held_max = 2 * g->max_message > GH_HELD_MIN ? 2 * g->max_message
						       : GH_HELD_MIN;
	g->max_streams = o->max_streams ? o->max_streams : 100;
	g->keepalive_ms = o->keepalive_ms ? o->keepalive_ms : 60000;
	g->keepalive_timeout_ms =
	    o->keepalive_timeout_ms ? o->keepalive_timeout_ms : 20000;
	snprintf(err, errlen, "out of memory");
	ret = methods_new(g);
	if (ret == 0)
		ret = gh_h2_init(g);
	if (ret < 0)
		goto fail;
	if (o->tls_cert || o->tls_key) {
		ret = gh_tls_new(o->tls_cert, o->tls_key, &g->tls, err, errlen);
		if (ret < 0)
			goto fail;
	}
	g->lfd = listen_on(o->port);
	if (g->lfd < 0) {
		ret = g->lfd == -EADDRINUSE ? -EADDRINUSE : g->lfd;
		snprintf(err, errlen, "cannot listen on gRPC port %d: %s",
			 o->port, strerror(-ret));
		goto fail;
	}
	g->n_loops = o->threads ? o->threads : 2;
	g->loops = calloc(g->n_loops, sizeof(*g->loops));
	ret = -ENOMEM;
	if (!g->loops)
		goto fail;
	for (t = 0; t < g->n_loops; t++) {
		ret = loop_init(g, &g->loops[t]);
		if (ret < 0) {
			snprintf(err, errlen, "cannot set up a gRPC loop: %s",
				 strerror(-ret));
			goto fail;
		}
	}
	ret = -pthread_create(&g->loader, NULL, loader_run, g);
	if (ret < 0) {
		snprintf(err, errlen, "cannot start the gRPC threads");
		goto fail;
	}
	g->loader_started = true;
	for (t = 0; t < g->n_loops; t++) {
		ret = -pthread_create(&g->loops[t].thread, NULL, loop_run,
				      &g->loops[t]);
		if (ret < 0) {
			snprintf(err, errlen, "cannot start the gRPC threads");
			goto fail;
		}
		g->loops[t].started = true;
	}
	*out = g;
	return 0;
fail:
	grpc_front_stop(g, 0);
	return ret;
}

uint64_t grpc_front_done(struct grpc_front *g)
{
	return g ? atomic_load(&g->done) : 0;
}

void grpc_front_stop(struct grpc_front *g, unsigned grace_ms)
{
	struct gh_loop *l;
	uint64_t one = 1;
	unsigned t;

	if (!g)
		return;
	g->stop_by_ns = time_mono_ns() + (int64_t)grace_ms * 1000000;
	atomic_store(&g->stopping, true);
	for (t = 0; g->loops && t < g->n_loops; t++) {
		l = &g->loops[t];
		if (l->started) {
			if (write(l->evfd, &one, sizeof(one)) < 0)
				log_warn("grpc: eventfd: %s", strerror(errno));
			pthread_join(l->thread, NULL);
		}
	}
	if (g->loader_started) {
		pthread_mutex_lock(&g->jlock);
		g->jstop = true;
		pthread_cond_signal(&g->jcond);
		pthread_mutex_unlock(&g->jlock);
		pthread_join(g->loader, NULL);
	}
	jobs_free(g->jobs);
	for (t = 0; g->loops && t < g->n_loops; t++) {
		l = &g->loops[t];
		jobs_free(l->done);
		for (; l->n_inbox; l->n_inbox--)
			close(l->inbox[l->n_inbox - 1]);
		free(l->inbox);
		if (l->ep >= 0 && l->g)
			close(l->ep);
		if (l->evfd >= 0 && l->g)
			close(l->evfd);
		pthread_mutex_destroy(&l->lock);
	}
	if (g->lfd >= 0)
		close(g->lfd);
	free(g->loops);
	gh_tls_free(g->tls);
	if (g->cbs)
		gh_h2_fini(g);
	free((void *)g->methods);
	pthread_mutex_destroy(&g->jlock);
	pthread_cond_destroy(&g->jcond);
	free(g);
}
