/*
 * mount_handle - the registry of open file and dir handles, by the number
 * the kernel holds as fh (see struct mnt_handle in mount_int.h).
 *
 * Numbers are (generation << 32) | counter: the generation is the count
 * of workers the mount has had (kept by the supervisor and carried over a
 * takeover), so a worker never hands out a number a predecessor handed
 * out. Opens and releases are journaled to the supervisor, which keeps the
 * list of open handles for a takeover.
 *
 * Threads: any worker thread; one mutex (m->hlock) over the chains.
 */
#include <stdlib.h>

#include "fs/mount/mount_int.h"

static size_t bucket(uint64_t id)
{
	return (size_t)((id ^ (id >> 32)) * 0x9e3779b97f4a7c15ull >> 52) &
	       (MNT_HANDLE_BUCKETS - 1);
}

static void journal(struct mnt *m, enum ho_type type, const struct mnt_handle *h)
{
	struct ho_msg *msg;

	if (!m->io)
		return;
	msg = malloc(sizeof(*msg));
	if (!msg)
		return;
	ho_msg_start(msg, type);
	ho_put_u64(msg, h->id);
	if (type == HO_OPEN) {
		ho_put_u64(msg, h->ino);
		ho_put_u32(msg, h->dir ? 1 : 0);
	}
	mount_io_send(m->io, msg);
	free(msg);
}

static void insert(struct mnt *m, struct mnt_handle *h)
{
	size_t b = bucket(h->id);

	h->hnext = m->handles[b];
	m->handles[b] = h;
}

uint64_t mnt_handle_add(struct mnt *m, struct mnt_handle *h, uint64_t ino,
			bool dir)
{
	pthread_mutex_lock(&m->hlock);
	h->id = m->handle_next++;
	h->ino = ino;
	h->dir = dir;
	insert(m, h);
	pthread_mutex_unlock(&m->hlock);
	journal(m, HO_OPEN, h);
	return h->id;
}

static struct mnt_handle *find(struct mnt *m, uint64_t id)
{
	struct mnt_handle *h;

	for (h = m->handles[bucket(id)]; h; h = h->hnext)
		if (h->id == id)
			return h;
	return NULL;
}

struct mnt_handle *mnt_handle_get(struct mnt *m, uint64_t id, bool dir)
{
	struct mnt_handle *h;

	pthread_mutex_lock(&m->hlock);
	h = find(m, id);
	if (h && h->dir != dir)
		h = NULL;
	pthread_mutex_unlock(&m->hlock);
	return h;
}

struct mnt_handle *mnt_handle_adopt(struct mnt *m, struct mnt_handle *h,
				    uint64_t id, uint64_t ino, bool dir)
{
	struct mnt_handle *old;

	pthread_mutex_lock(&m->hlock);
	old = find(m, id);
	if (!old) {
		h->id = id;
		h->ino = ino;
		h->dir = dir;
		insert(m, h);
	}
	pthread_mutex_unlock(&m->hlock);
	return old ? old : h;
}

static void unlink_locked(struct mnt *m, struct mnt_handle *h)
{
	struct mnt_handle **pp = &m->handles[bucket(h->id)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == h) {
			*pp = h->hnext;
			h->hnext = NULL;
			return;
		}
	}
}

void mnt_handle_del(struct mnt *m, struct mnt_handle *h)
{
	pthread_mutex_lock(&m->hlock);
	unlink_locked(m, h);
	pthread_mutex_unlock(&m->hlock);
	journal(m, HO_RELEASE, h);
}

struct mnt_handle *mnt_handle_take(struct mnt *m, uint64_t id, bool dir)
{
	struct mnt_handle *h, gone = { .id = id, .dir = dir };

	pthread_mutex_lock(&m->hlock);
	h = find(m, id);
	if (h && h->dir == dir)
		unlink_locked(m, h);
	else
		h = NULL;
	pthread_mutex_unlock(&m->hlock);
	journal(m, HO_RELEASE, h ? h : &gone);
	return h;
}

struct mnt_handle *mnt_handle_pop(struct mnt *m, bool dir)
{
	struct mnt_handle *h = NULL;
	size_t b;

	pthread_mutex_lock(&m->hlock);
	for (b = 0; b < MNT_HANDLE_BUCKETS && !h; b++)
		for (h = m->handles[b]; h && h->dir != dir; h = h->hnext)
			;
	if (h)
		unlink_locked(m, h);
	pthread_mutex_unlock(&m->hlock);
	return h;
}
