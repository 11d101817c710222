/*
 * handover - see handover.h. Messages are built in a fixed buffer (no
 * allocation on the worker's journal path) and read back with bounds
 * checks; a state is a plain inode table plus an array of handles.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs/mount/handover.h"

#define HO_NULL_STR 0xffffffffu

int ho_state_init(struct ho_state *s)
{
	memset(s, 0, sizeof(*s));
	s->it = inode_table_new();
	return s->it ? 0 : -ENOMEM;
}

void ho_state_clear(struct ho_state *s)
{
	inode_table_free(s->it);
	free(s->h);
	free(s->init_in);
	free(s->init_out);
	memset(s, 0, sizeof(*s));
}

/* ---- building and reading messages ---- */

void ho_msg_start(struct ho_msg *m, enum ho_type type)
{
	m->len = 0;
	m->off = 0;
	m->bad = false;
	ho_put_u32(m, (uint32_t)type);
}

void ho_put_bytes(struct ho_msg *m, const void *p, size_t n)
{
	if (n > HO_MSG_MAX - 4 || m->len + 4 + n > HO_MSG_MAX) {
		m->bad = true;
		return;
	}
	ho_put_u32(m, (uint32_t)n);
	memcpy(m->b + m->len, p, n);
	m->len += n;
}

void ho_put_u32(struct ho_msg *m, uint32_t v)
{
	if (m->len + sizeof(v) > HO_MSG_MAX) {
		m->bad = true;
		return;
	}
	memcpy(m->b + m->len, &v, sizeof(v));
	m->len += sizeof(v);
}

void ho_put_u64(struct ho_msg *m, uint64_t v)
{
	if (m->len + sizeof(v) > HO_MSG_MAX) {
		m->bad = true;
		return;
	}
	memcpy(m->b + m->len, &v, sizeof(v));
	m->len += sizeof(v);
}

void ho_put_str(struct ho_msg *m, const char *s)
{
	if (!s) {
		ho_put_u32(m, HO_NULL_STR);
		return;
	}
	/* the NUL goes along, so a reader can hand out pointers in place */
	ho_put_bytes(m, s, strlen(s) + 1);
}

static const void *take(struct ho_msg *m, size_t n)
{
	const void *p;

	if (m->bad || n > m->len || m->off > m->len - n) {
		m->bad = true;
		return NULL;
	}
	p = m->b + m->off;
	m->off += n;
	return p;
}

uint32_t ho_get_u32(struct ho_msg *m)
{
	const void *p = take(m, 4);
	uint32_t v = 0;

	if (p)
		memcpy(&v, p, sizeof(v));
	return v;
}

uint64_t ho_get_u64(struct ho_msg *m)
{
	const void *p = take(m, 8);
	uint64_t v = 0;

	if (p)
		memcpy(&v, p, sizeof(v));
	return v;
}

uint32_t ho_msg_type(struct ho_msg *m)
{
	m->off = 0;
	m->bad = false;
	return ho_get_u32(m);
}

const void *ho_get_bytes(struct ho_msg *m, size_t *n)
{
	uint32_t len = ho_get_u32(m);

	*n = 0;
	if (m->bad || len == HO_NULL_STR)
		return NULL;
	*n = len;
	return take(m, len);
}

const char *ho_get_str(struct ho_msg *m)
{
	size_t off = m->off, n;
	const char *s;

	if (ho_get_u32(m) == HO_NULL_STR || m->bad)
		return NULL;
	m->off = off;
	s = ho_get_bytes(m, &n);
	if (!s || n == 0 || s[n - 1] != '\0' || strlen(s) != n - 1) {
		m->bad = true;
		return NULL;
	}
	return s;
}

/* ---- sockets ---- */

int ho_send(int sock, const struct ho_msg *m, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = (void *)m->b, .iov_len = m->len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (m->bad)
		return -EMSGSIZE;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? -EPIPE : -errno;
	return (size_t)n == m->len ? 0 : -EIO;
}

int ho_send_type(int sock, enum ho_type type)
{
	struct ho_msg m;

	ho_msg_start(&m, type);
	return ho_send(sock, &m, -1);
}

int ho_recv(int sock, struct ho_msg *m, int *fd, int timeout_ms)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { .iov_base = m->b, .iov_len = sizeof(m->b) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct cmsghdr *c;
	ssize_t n;
	int r;

	if (fd)
		*fd = -1;
	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -errno;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t i, k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + i * sizeof(int),
			       sizeof(int));
			if (fd && *fd < 0)
				*fd = got;
			else
				close(got);
		}
	}
	if (n == 0)
		return 0;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		if (fd && *fd >= 0) {
			close(*fd);
			*fd = -1;
		}
		return -EPROTO;
	}
	m->len = (size_t)n;
	r = (int)ho_msg_type(m);
	return m->bad || r <= 0 ? -EPROTO : r;
}

/* ---- applying state ---- */

static int add_handle(struct ho_state *s, uint64_t id, uint64_t ino, bool dir)
{
	if (s->n_h == s->cap_h) {
		size_t ncap = s->cap_h ? s->cap_h * 2 : 64;
		struct ho_handle *nh = realloc(s->h, ncap * sizeof(*nh));

		if (!nh)
			return -ENOMEM;
		s->h = nh;
		s->cap_h = ncap;
	}
	s->h[s->n_h].id = id;
	s->h[s->n_h].ino = ino;
	s->h[s->n_h].dir = dir;
	s->n_h++;
	return 0;
}

static void del_handle(struct ho_state *s, uint64_t id)
{
	size_t i;

	for (i = s->n_h; i-- > 0;) {
		if (s->h[i].id == id) {
			s->h[i] = s->h[--s->n_h];
			return;
		}
	}
}

static int set_init(struct ho_state *s, struct ho_msg *m)
{
	const void *in, *out;
	size_t nin, nout;
	unsigned char *a, *b;

	in = ho_get_bytes(m, &nin);
	out = ho_get_bytes(m, &nout);
	if (m->bad || !in || !out || nin < 8 || nout < 8)
		return -EPROTO;
	a = malloc(nin);
	b = malloc(nout);
	if (!a || !b) {
		free(a);
		free(b);
		return -ENOMEM;
	}
	memcpy(a, in, nin);
	memcpy(b, out, nout);
	free(s->init_in);
	free(s->init_out);
	s->init_in = a;
	s->init_in_len = nin;
	s->init_out = b;
	s->init_out_len = nout;
	return 1;
}

int ho_apply(struct ho_state *s, struct ho_msg *m)
{
	struct inode proto;
	uint64_t a, b, c;
	uint32_t type = ho_msg_type(m);
	int ret;

	switch (type) {
	case HO_NODE:
		memset(&proto, 0, sizeof(proto));
		proto.ino = ho_get_u64(m);
		proto.parent = ho_get_u64(m);
		a = ho_get_u64(m);
		proto.kind = (enum inode_kind)ho_get_u32(m);
		proto.path = (char *)ho_get_str(m);
		proto.name = (char *)ho_get_str(m);
		proto.version = (char *)ho_get_str(m);
		proto.relpath = (char *)ho_get_str(m);
		if (m->bad || !proto.path || proto.kind > INODE_ALIAS)
			return -EPROTO;
		ret = inode_restore(s->it, &proto, a);
		return ret == -EINVAL ? -EPROTO : ret < 0 ? ret : 1;
	case HO_FORGET:
		a = ho_get_u64(m);
		b = ho_get_u64(m);
		if (m->bad)
			return -EPROTO;
		inode_forget(s->it, a, b);
		return 1;
	case HO_OPEN:
		a = ho_get_u64(m);
		b = ho_get_u64(m);
		c = ho_get_u32(m);
		if (m->bad)
			return -EPROTO;
		ret = add_handle(s, a, b, c != 0);
		return ret < 0 ? ret : 1;
	case HO_RELEASE:
		a = ho_get_u64(m);
		if (m->bad)
			return -EPROTO;
		del_handle(s, a);
		return 1;
	case HO_INIT:
		return set_init(s, m);
	case HO_COUNTERS:
		s->gen = ho_get_u64(m);
		s->takeovers = ho_get_u64(m);
		s->worker_restarts = ho_get_u64(m);
		s->resent = ho_get_u64(m);
		s->mounted_at = (int64_t)ho_get_u64(m);
		return m->bad ? -EPROTO : 1;
	case HO_RESENT:
		s->resent += ho_get_u64(m);
		return m->bad ? -EPROTO : 1;
	default:
		return 0;
	}
}

/* ---- a whole state ---- */

/* Where the messages of a state go: a socket, or a buffer. */
typedef int (*ho_sink_fn)(void *arg, const struct ho_msg *m);

struct node_ctx {
	ho_sink_fn put;
	void *arg;
	struct ho_msg m;
};

static int send_node(void *arg, const struct inode *n, uint64_t nlookup)
{
	struct node_ctx *x = arg;

	ho_msg_start(&x->m, HO_NODE);
	ho_put_u64(&x->m, n->ino);
	ho_put_u64(&x->m, n->parent);
	ho_put_u64(&x->m, nlookup);
	ho_put_u32(&x->m, (uint32_t)n->kind);
	ho_put_str(&x->m, n->path);
	ho_put_str(&x->m, n->name);
	ho_put_str(&x->m, n->version);
	ho_put_str(&x->m, n->relpath);
	return x->put(x->arg, &x->m);
}

/* COUNTERS, INIT, the nodes, the handles, HO_END through x->put. */
static int emit_state(const struct ho_state *s, struct node_ctx *x)
{
	size_t i;
	int ret;

	ho_msg_start(&x->m, HO_COUNTERS);
	ho_put_u64(&x->m, s->gen);
	ho_put_u64(&x->m, s->takeovers);
	ho_put_u64(&x->m, s->worker_restarts);
	ho_put_u64(&x->m, s->resent);
	ho_put_u64(&x->m, (uint64_t)s->mounted_at);
	ret = x->put(x->arg, &x->m);
	if (ret == 0 && s->init_in) {
		ho_msg_start(&x->m, HO_INIT);
		ho_put_bytes(&x->m, s->init_in, s->init_in_len);
		ho_put_bytes(&x->m, s->init_out, s->init_out_len);
		ret = x->put(x->arg, &x->m);
	}
	if (ret == 0)
		ret = inode_foreach(s->it, send_node, x);
	for (i = 0; i < s->n_h && ret == 0; i++) {
		ho_msg_start(&x->m, HO_OPEN);
		ho_put_u64(&x->m, s->h[i].id);
		ho_put_u64(&x->m, s->h[i].ino);
		ho_put_u32(&x->m, s->h[i].dir ? 1 : 0);
		ret = x->put(x->arg, &x->m);
	}
	if (ret == 0) {
		ho_msg_start(&x->m, HO_END);
		ret = x->put(x->arg, &x->m);
	}
	return ret;
}

static int put_sock(void *arg, const struct ho_msg *m)
{
	return ho_send(*(int *)arg, m, -1);
}

int ho_send_state(int sock, const struct ho_state *s, int fuse_fd)
{
	struct node_ctx *x = malloc(sizeof(*x));
	int ret;

	if (!x)
		return -ENOMEM;
	x->put = put_sock;
	x->arg = &sock;
	ho_msg_start(&x->m, HO_STATE);
	ret = ho_send(sock, &x->m, fuse_fd);
	if (ret == 0)
		ret = emit_state(s, x);
	free(x);
	return ret;
}

/* ---- a whole state in one buffer ---- */

struct buf_sink {
	unsigned char *p;
	size_t len, cap;
};

static int put_buf(void *arg, const struct ho_msg *m)
{
	struct buf_sink *b = arg;
	uint32_t n = (uint32_t)m->len;

	if (m->bad)
		return -EMSGSIZE;
	if (b->len + 4 + m->len > b->cap) {
		size_t ncap = b->cap ? b->cap : 65536;
		unsigned char *np;

		while (b->len + 4 + m->len > ncap)
			ncap *= 2;
		np = realloc(b->p, ncap);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, &n, 4);
	memcpy(b->p + b->len + 4, m->b, m->len);
	b->len += 4 + m->len;
	return 0;
}

int ho_state_encode(const struct ho_state *s, unsigned char **buf,
		    size_t *len)
{
	struct buf_sink b = { 0 };
	struct node_ctx *x = malloc(sizeof(*x));
	uint32_t v = HO_VERSION;
	int ret = -ENOMEM;

	*buf = NULL;
	*len = 0;
	if (!x)
		return -ENOMEM;
	x->put = put_buf;
	x->arg = &b;
	b.cap = 65536;
	b.p = malloc(b.cap);
	if (b.p) {
		memcpy(b.p, HO_FILE_MAGIC, 4);
		memcpy(b.p + 4, &v, 4);
		b.len = 8;
		ret = emit_state(s, x);
	}
	free(x);
	if (ret < 0) {
		free(b.p);
		return ret;
	}
	*buf = b.p;
	*len = b.len;
	return 0;
}

int ho_state_decode(struct ho_state *s, const unsigned char *buf, size_t len,
		    uint32_t *version)
{
	struct ho_msg *m;
	size_t off = 8;
	uint32_t n;
	int ret = -EPROTO;

	*version = 0;
	if (len < 8 || memcmp(buf, HO_FILE_MAGIC, 4) != 0)
		return -EPROTO;
	memcpy(version, buf + 4, 4);
	if (*version != HO_VERSION)
		return -EPROTONOSUPPORT;
	m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	while (len - off >= 4) {
		memcpy(&n, buf + off, 4);
		off += 4;
		if (n < 4 || n > HO_MSG_MAX || n > len - off)
			break;
		memcpy(m->b, buf + off, n);
		m->len = n;
		m->bad = false;
		off += n;
		if (ho_msg_type(m) == HO_END) {
			/* the end, and nothing after it */
			ret = off == len ? 0 : -EPROTO;
			break;
		}
		ret = ho_apply(s, m);
		if (ret <= 0) {
			ret = ret < 0 ? ret : -EPROTO;
			break;
		}
		ret = -EPROTO; /* no HO_END yet */
	}
	free(m);
	return ret;
}

int ho_recv_state(int sock, struct ho_state *s, int *fuse_fd, int timeout_ms)
{
	struct ho_msg *m = malloc(sizeof(*m));
	int ret, fd = -1;

	*fuse_fd = -1;
	if (!m)
		return -ENOMEM;
	ret = ho_recv(sock, m, &fd, timeout_ms);
	if (ret != HO_STATE || fd < 0) {
		ret = ret < 0 ? ret : -EPROTO;
		goto out;
	}
	for (;;) {
		ret = ho_recv(sock, m, NULL, timeout_ms);
		if (ret == HO_END) {
			ret = 0;
			break;
		}
		if (ret <= 0) {
			ret = ret < 0 ? ret : -EPROTO;
			break;
		}
		ret = ho_apply(s, m);
		if (ret <= 0) {
			ret = ret < 0 ? ret : -EPROTO;
			break;
		}
	}
out:
	if (ret == 0)
		*fuse_fd = fd;
	else if (fd >= 0)
		close(fd);
	free(m);
	return ret;
}
