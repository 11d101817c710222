/*
 * metrics - see metrics.h. poll(2) on the listening socket and a pipe, so
 * metrics_stop() can wake the thread without signals.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/fileutil.h"
#include "fs/mount/metrics.h"

#define METRICS_BODY_MAX (64u << 10)

struct metrics {
	int lfd;
	int wake[2];
	pthread_t thread;
	struct stats *stats;
	struct cache *cache;
	struct prov *prov;
};

static void refresh(struct metrics *mx)
{
	stats_pull(mx->stats, mx->cache, mx->prov);
}

static void serve_one(struct metrics *mx, int fd)
{
	struct timeval tv = { .tv_sec = 2 };
	struct buf body, head;
	char req[4096];
	size_t got = 0;
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* read the request head (bounded); its content does not matter */
	while (got < sizeof(req) - 1) {
		n = read(fd, req + got, sizeof(req) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	buf_init(&body, METRICS_BODY_MAX);
	buf_init(&head, 1024);
	refresh(mx);
	if (stats_format(mx->stats, STATS_FMT_PROM, &body) == 0 &&
	    buf_printf(&head,
		       "HTTP/1.1 200 OK\r\n"
		       "Content-Type: text/plain; version=0.0.4\r\n"
		       "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		       body.len) == 0) {
		write_all(fd, head.data, head.len);
		write_all(fd, body.data, body.len);
	}
	buf_free(&body);
	buf_free(&head);
}

static void *metrics_thread(void *arg)
{
	struct metrics *mx = arg;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = mx->lfd, .events = POLLIN },
			{ .fd = mx->wake[0], .events = POLLIN },
		};
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		fd = accept4(mx->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_one(mx, fd);
		close(fd);
	}
	return NULL;
}

/* @addr:@port as a socket address; -EINVAL if @addr is not numeric. */
static int metrics_sockaddr(const char *addr, int port,
			    struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (!addr)
		addr = METRICS_DEFAULT_ADDR;
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

bool metrics_addr_valid(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;

	return metrics_sockaddr(addr, 1, &ss, &len) == 0;
}

int metrics_start(const char *addr, int port, struct stats *stats,
		  struct cache *cache, struct prov *prov,
		  struct metrics **out)
{
	struct sockaddr_storage ss;
	socklen_t salen;
	struct metrics *mx;
	int one = 1, ret;

	if (port <= 0 || port > 65535)
		return -EINVAL;
	ret = metrics_sockaddr(addr, port, &ss, &salen);
	if (ret < 0)
		return ret;
	mx = calloc(1, sizeof(*mx));
	if (!mx)
		return -ENOMEM;
	mx->stats = stats;
	mx->cache = cache;
	mx->prov = prov;
	mx->wake[0] = mx->wake[1] = -1;
	mx->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (mx->lfd < 0) {
		ret = -errno;
		goto fail;
	}
	setsockopt(mx->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(mx->lfd, (struct sockaddr *)&ss, salen) < 0 ||
	    listen(mx->lfd, 16) < 0) {
		ret = -errno;
		goto fail;
	}
	if (pipe2(mx->wake, O_CLOEXEC) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = -pthread_create(&mx->thread, NULL, metrics_thread, mx);
	if (ret < 0)
		goto fail;
	*out = mx;
	return 0;
fail:
	if (mx->lfd >= 0)
		close(mx->lfd);
	if (mx->wake[0] >= 0) {
		close(mx->wake[0]);
		close(mx->wake[1]);
	}
	free(mx);
	return ret;
}

void metrics_stop(struct metrics **mxp)
{
	struct metrics *mx = mxp ? *mxp : NULL;

	if (!mx)
		return;
	if (write(mx->wake[1], "x", 1) < 0) {
		/* the thread then stays in poll; nothing better to do */
	}
	pthread_join(mx->thread, NULL);
	close(mx->lfd);
	close(mx->wake[0]);
	close(mx->wake[1]);
	free(mx);
	*mxp = NULL;
}
