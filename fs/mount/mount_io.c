/*
 * mount_io - the worker's side of the FUSE connection: how requests are
 * read from /dev/fuse and replies written (libfuse's custom I/O hooks,
 * fuse_session_custom_io()), the journal to the supervisor, and the
 * registry of open handles.
 *
 * Why custom I/O: the worker never mounts; it serves a descriptor the
 * supervisor opened (and that a predecessor may already have served), so
 * it hands libfuse that descriptor with fuse_session_custom_io() instead
 * of calling fuse_session_mount(). The hooks then give us four things the
 * public API has no other way to reach:
 *
 * - INIT replay. libfuse 3.14 answers EIO to every request until it has
 *   processed FUSE_INIT (fuse_session_process_buf_int checks
 *   se->got_init), and do_init() is the only code that sets the
 *   negotiated state (proto_minor, capable/want, bufsize, max_write);
 *   none of it can be set from outside. The kernel sends INIT once per
 *   mount. So a worker joining an initialised connection is fed, as its
 *   first request, the INIT request the kernel sent to the first worker
 *   (kept by the supervisor), and the reply libfuse writes to it is
 *   swallowed: the kernel already has one. libfuse then holds the same
 *   state as if INIT had just happened. Requests read meanwhile by other
 *   threads wait until the replay is done.
 * - INIT capture: the first worker passes the real INIT exchange to the
 *   supervisor once its reply went out.
 * - Drain: on HO_DRAIN (takeover) no thread reads a new request; once
 *   every request taken is answered the worker says HO_DRAINED and waits.
 *   A request counts as held from the read that took it until its thread
 *   comes back to read (every op of the mount replies before returning).
 * - Resent requests (the kernel marks them with FUSE_UNIQUE_RESEND) are
 *   counted.
 *
 * Reads poll the descriptor (made O_NONBLOCK) and an eventfd that says
 * "stopping changed"; the read itself is done under a read lock that the
 * drain takes for writing, so once the drain holds it no thread is between
 * its check and its read.
 *
 * Threads: the hooks run on libfuse's worker threads; the command thread
 * reads the supervisor's messages. Errors: 0 or a negative errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "fs/mount/mount_int.h"

/* include/uapi/linux/fuse.h, protocol 7.40 (Linux 6.9) */
#define IO_UNIQUE_RESEND (1ull << 63)

enum replay_state { REPLAY_NONE = 0, REPLAY_PENDING, REPLAY_RUNNING };

struct mount_io {
	int fd;	  /* /dev/fuse: the session's, O_NONBLOCK */
	int ctl;  /* to the supervisor, or -1 */
	int wake; /* eventfd: readable while stopping */
	pthread_rwlock_t gate; /* read: taking a request; write: drain */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;		 /* protected by lock (set under gate) */
	unsigned inflight;	 /* protected by lock */
	enum replay_state replay; /* protected by lock */
	unsigned char *replay_in; /* INIT to replay */
	size_t replay_in_len;
	const unsigned char *want_out; /* the reply the kernel got */
	size_t want_out_len;
	uint64_t replay_unique;
	unsigned char *init_in; /* protected by lock: a real INIT taken */
	size_t init_in_len;	/* protected by lock */
	uint64_t init_unique;	/* protected by lock; 0: none */
	struct stats *stats;
	atomic_uint_fast64_t resent;
	atomic_bool ctl_dead;
	pthread_t cmd;
	bool cmd_started;
};

/* Whether this thread took a request it has not come back from. */
static __thread bool io_holding;

int mount_io_new(int fd, int ctl, const struct ho_state *st,
		 struct stats *stats, struct mount_io **out)
{
	struct mount_io *io = calloc(1, sizeof(*io));
	int fl;

	*out = NULL;
	if (!io)
		return -ENOMEM;
	io->fd = fd;
	io->ctl = ctl;
	io->stats = stats;
	pthread_rwlock_init(&io->gate, NULL);
	pthread_mutex_init(&io->lock, NULL);
	pthread_cond_init(&io->cond, NULL);
	atomic_init(&io->resent, 0);
	atomic_init(&io->ctl_dead, ctl < 0);
	io->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fl = fcntl(fd, F_GETFL);
	if (io->wake < 0 || fl < 0 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int err = -errno;

		mount_io_free(io);
		return err;
	}
	if (st && st->init_in && st->init_in_len >= sizeof(struct fuse_in_header)) {
		struct fuse_in_header ih;

		io->replay_in = malloc(st->init_in_len);
		if (!io->replay_in) {
			mount_io_free(io);
			return -ENOMEM;
		}
		memcpy(io->replay_in, st->init_in, st->init_in_len);
		io->replay_in_len = st->init_in_len;
		memcpy(&ih, io->replay_in, sizeof(ih));
		io->replay_unique = ih.unique;
		io->want_out = st->init_out;
		io->want_out_len = st->init_out_len;
		io->replay = REPLAY_PENDING;
	}
	*out = io;
	return 0;
}

void mount_io_free(struct mount_io *io)
{
	if (!io)
		return;
	if (io->cmd_started) {
		pthread_cancel(io->cmd);
		pthread_join(io->cmd, NULL);
	}
	if (io->wake >= 0)
		close(io->wake);
	free(io->replay_in);
	free(io->init_in);
	pthread_cond_destroy(&io->cond);
	pthread_mutex_destroy(&io->lock);
	pthread_rwlock_destroy(&io->gate);
	free(io);
}

uint64_t mount_io_resent(const struct mount_io *io)
{
	return io ? atomic_load(&io->resent) : 0;
}

/* ---- the journal ---- */

void mount_io_send(struct mount_io *io, const struct ho_msg *msg)
{
	if (!io || atomic_load(&io->ctl_dead))
		return;
	if (ho_send(io->ctl, msg, -1) < 0 &&
	    !atomic_exchange(&io->ctl_dead, true))
		log_warn("mount: the supervisor is gone: serving on, but a "
			 "crash of this process can no longer be recovered");
}

void mount_io_journal(void *arg, const struct inode *n, int64_t delta)
{
	struct mount_io *io = arg;
	struct ho_msg *msg;

	if (!io || atomic_load(&io->ctl_dead))
		return;
	msg = malloc(sizeof(*msg));
	if (!msg)
		return; /* the copy lags: a leak after a crash at worst */
	if (delta > 0) {
		ho_msg_start(msg, HO_NODE);
		ho_put_u64(msg, n->ino);
		ho_put_u64(msg, n->parent);
		ho_put_u64(msg, (uint64_t)delta);
		ho_put_u32(msg, (uint32_t)n->kind);
		ho_put_str(msg, n->path);
		ho_put_str(msg, n->name);
		ho_put_str(msg, n->version);
		ho_put_str(msg, n->relpath);
	} else {
		ho_msg_start(msg, HO_FORGET);
		ho_put_u64(msg, n->ino);
		ho_put_u64(msg, (uint64_t)-delta);
	}
	mount_io_send(io, msg);
	free(msg);
}

/* ---- the custom I/O hooks ---- */

static void unlock_mutex(void *arg)
{
	pthread_mutex_unlock(arg);
}

/* Wait while stopping or while the INIT replay runs; cancellable. */
static void wait_turn(struct mount_io *io)
{
	pthread_mutex_lock(&io->lock);
	pthread_cleanup_push(unlock_mutex, &io->lock);
	while (io->stopping || io->replay == REPLAY_RUNNING)
		pthread_cond_wait(&io->cond, &io->lock);
	pthread_cleanup_pop(1);
}

/* Look at a request just taken: INIT to capture, a resend to count. */
static void inspect(struct mount_io *io, const void *buf, size_t n)
{
	struct fuse_in_header ih;
	struct ho_msg msg;

	if (n < sizeof(ih))
		return;
	memcpy(&ih, buf, sizeof(ih));
	if (ih.unique & IO_UNIQUE_RESEND) {
		atomic_fetch_add(&io->resent, 1);
		stats_inc(io->stats, STAT_RESENT_REQUESTS);
		ho_msg_start(&msg, HO_RESENT);
		ho_put_u64(&msg, 1);
		mount_io_send(io, &msg);
	}
	if (ih.opcode == FUSE_INIT) {
		unsigned char *copy = malloc(n);

		if (!copy)
			return;
		memcpy(copy, buf, n);
		pthread_mutex_lock(&io->lock);
		free(io->init_in);
		io->init_in = copy;
		io->init_in_len = n;
		io->init_unique = ih.unique;
		pthread_mutex_unlock(&io->lock);
	}
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	struct mount_io *io = ((struct mnt *)userdata)->io;
	struct pollfd p[2];
	ssize_t n;
	int err;

	if (io_holding) {
		io_holding = false;
		pthread_mutex_lock(&io->lock);
		if (--io->inflight == 0)
			pthread_cond_broadcast(&io->cond);
		pthread_mutex_unlock(&io->lock);
	}
	pthread_mutex_lock(&io->lock);
	if (io->replay == REPLAY_PENDING && len >= io->replay_in_len) {
		io->replay = REPLAY_RUNNING;
		pthread_mutex_unlock(&io->lock);
		memcpy(buf, io->replay_in, io->replay_in_len);
		return (ssize_t)io->replay_in_len;
	}
	pthread_mutex_unlock(&io->lock);
	for (;;) {
		wait_turn(io);
		p[0].fd = fd;
		p[0].events = POLLIN;
		p[1].fd = io->wake;
		p[1].events = POLLIN;
		p[0].revents = p[1].revents = 0;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p[1].revents & POLLIN)
			continue; /* stopping: wait_turn() parks us */
		if (!p[0].revents)
			continue;
		pthread_rwlock_rdlock(&io->gate);
		pthread_mutex_lock(&io->lock);
		if (io->stopping) {
			pthread_mutex_unlock(&io->lock);
			pthread_rwlock_unlock(&io->gate);
			continue;
		}
		pthread_mutex_unlock(&io->lock);
		n = read(fd, buf, len);
		err = errno;
		if (n > 0) {
			pthread_mutex_lock(&io->lock);
			io->inflight++;
			pthread_mutex_unlock(&io->lock);
			io_holding = true;
		}
		pthread_rwlock_unlock(&io->gate);
		if (n > 0) {
			inspect(io, buf, (size_t)n);
			return n;
		}
		/* another thread took it, or it was interrupted: wait on */
		if (n < 0 && (err == EAGAIN || err == EINTR || err == ENOENT))
			continue;
		errno = n < 0 ? err : EIO;
		return -1;
	}
}

static size_t iov_total(const struct iovec *iov, int count)
{
	size_t t = 0;
	int i;

	for (i = 0; i < count; i++)
		t += iov[i].iov_len;
	return t;
}

/* Flatten @iov into a fresh buffer (the INIT reply: small). */
static unsigned char *iov_copy(const struct iovec *iov, int count, size_t *n)
{
	unsigned char *b;
	size_t off = 0;
	int i;

	*n = iov_total(iov, count);
	b = malloc(*n ? *n : 1);
	if (!b)
		return NULL;
	for (i = 0; i < count; i++) {
		memcpy(b + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	return b;
}

/* The replayed INIT's reply: compare with what the kernel got, drop it. */
static ssize_t replay_done(struct mount_io *io, struct iovec *iov, int count)
{
	const size_t hdr = sizeof(struct fuse_out_header);
	struct fuse_init_out got, want;
	unsigned char *b;
	size_t n;

	b = iov_copy(iov, count, &n);
	if (b && io->want_out && n >= hdr + 24 && io->want_out_len >= hdr + 24) {
		memset(&got, 0, sizeof(got));
		memset(&want, 0, sizeof(want));
		memcpy(&got, b + hdr, n - hdr < sizeof(got) ? n - hdr :
							       sizeof(got));
		memcpy(&want, io->want_out + hdr,
		       io->want_out_len - hdr < sizeof(want) ?
			       io->want_out_len - hdr :
			       sizeof(want));
		if (got.flags != want.flags || got.flags2 != want.flags2 ||
		    got.max_write != want.max_write)
			log_warn("mount: this build would negotiate FUSE flags "
				 "%#x/%#x max_write %u, the connection has "
				 "%#x/%#x max_write %u: serving within the "
				 "connection's", got.flags, got.flags2,
				 got.max_write, want.flags, want.flags2,
				 want.max_write);
	}
	free(b);
	pthread_mutex_lock(&io->lock);
	io->replay = REPLAY_NONE;
	pthread_cond_broadcast(&io->cond);
	pthread_mutex_unlock(&io->lock);
	return (ssize_t)iov_total(iov, count);
}

/* A real INIT was answered: hand the exchange to the supervisor. */
static void capture_init(struct mount_io *io, struct iovec *iov, int count)
{
	struct ho_msg *msg = malloc(sizeof(*msg));
	unsigned char *out;
	size_t nout;

	out = iov_copy(iov, count, &nout);
	if (msg && out) {
		ho_msg_start(msg, HO_INIT);
		pthread_mutex_lock(&io->lock);
		ho_put_bytes(msg, io->init_in, io->init_in_len);
		io->init_unique = 0;
		pthread_mutex_unlock(&io->lock);
		ho_put_bytes(msg, out, nout);
		mount_io_send(io, msg);
	}
	free(out);
	free(msg);
}

static ssize_t io_writev(int fd, struct iovec *iov, int count,
			 void *userdata)
{
	struct mount_io *io = ((struct mnt *)userdata)->io;
	struct fuse_out_header oh;
	bool init = false;
	ssize_t n;

	if (count < 1 || iov[0].iov_len < sizeof(oh))
		return writev(fd, iov, count);
	memcpy(&oh, iov[0].iov_base, sizeof(oh));
	pthread_mutex_lock(&io->lock);
	if (io->replay == REPLAY_RUNNING && oh.unique == io->replay_unique) {
		pthread_mutex_unlock(&io->lock);
		return replay_done(io, iov, count);
	}
	init = io->init_unique && oh.unique == io->init_unique;
	pthread_mutex_unlock(&io->lock);
	n = writev(fd, iov, count);
	if (init && n >= 0 && oh.error == 0)
		capture_init(io, iov, count);
	return n;
}

const struct fuse_custom_io mount_io_hooks = {
	.read = io_read,
	.writev = io_writev,
};

/* ---- drain and resume, on the supervisor's word ---- */

static void drain(struct mount_io *io)
{
	uint64_t one = 1;

	pthread_rwlock_wrlock(&io->gate);
	pthread_mutex_lock(&io->lock);
	io->stopping = true;
	pthread_mutex_unlock(&io->lock);
	pthread_rwlock_unlock(&io->gate);
	if (write(io->wake, &one, sizeof(one)) < 0) {
		/* the counter is already set */
	}
	pthread_mutex_lock(&io->lock);
	while (io->inflight > 0)
		pthread_cond_wait(&io->cond, &io->lock);
	pthread_mutex_unlock(&io->lock);
	log_info("mount: drained: no request held, handing over");
}

static void resume(struct mount_io *io)
{
	uint64_t v;

	pthread_mutex_lock(&io->lock);
	io->stopping = false;
	if (read(io->wake, &v, sizeof(v)) < 0) {
		/* not set */
	}
	pthread_cond_broadcast(&io->cond);
	pthread_mutex_unlock(&io->lock);
	log_info("mount: serving again");
}

static void *cmd_thread(void *arg)
{
	struct mount_io *io = arg;
	struct ho_msg *msg = malloc(sizeof(*msg));
	int t;

	if (!msg)
		return NULL;
	pthread_cleanup_push(free, msg);
	for (;;) {
		t = ho_recv(io->ctl, msg, NULL, -1);
		if (t <= 0)
			break;
		if (t == HO_DRAIN) {
			drain(io);
			ho_msg_start(msg, HO_DRAINED);
			mount_io_send(io, msg);
		} else if (t == HO_RESUME) {
			resume(io);
		}
	}
	pthread_cleanup_pop(1);
	return NULL;
}

int mount_io_start(struct mount_io *io)
{
	int ret;

	if (io->ctl < 0)
		return 0;
	ret = -pthread_create(&io->cmd, NULL, cmd_thread, io);
	if (ret == 0)
		io->cmd_started = true;
	return ret;
}
