/*
 * handover - the state of a mount that outlives the process serving it,
 * and the messages that carry it (DESIGN §4: supervisor and takeover).
 *
 * The kernel keeps, per mount, the inode numbers it was handed (with their
 * lookup counts) and the file handles of open files; a process that serves
 * the connection after another one must know them. struct ho_state holds
 * them: the supervisor keeps one, fed by its worker's journal (one message
 * per change, sent before the kernel sees the change), so that a worker
 * started after a crash begins with every inode the kernel holds; a
 * takeover sends it whole to the new process. It also holds the kernel's
 * FUSE_INIT request and our reply, from which a worker joining a connection
 * that is already initialised rebuilds libfuse's negotiated state
 * (fs/mount/mount_io.c), and the lifecycle counters.
 *
 * Messages go over AF_UNIX SOCK_SEQPACKET sockets: one message per record,
 * a u32 type then the fields in host order (both ends run on one machine).
 * A takeover starts with HO_HELLO carrying HO_VERSION; a peer speaking
 * another version is refused before anything changes. Every field read is
 * bounds-checked: a short or malformed message is -EPROTO.
 *
 * Threads: a struct ho_state is used by one thread (the supervisor's);
 * ho_send() on one socket is safe from several threads (one message per
 * sendmsg). Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_FS_MOUNT_HANDOVER_H
#define ASSETFS_FS_MOUNT_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/mount/inode.h"

/* The hand-over format: bump on any change of a message's fields. */
#define HO_VERSION 1
/* Largest message: a node's path, name, version and relpath. */
#define HO_MSG_MAX 20480

enum ho_type {
	HO_HELLO = 1, /* u32 version, u32 pid: first message both ways */
	HO_REFUSE,    /* str why: the peer will not hand over */
	HO_NODE,      /* u64 ino, parent, nlookup; u32 kind; str path, name,
			 version, relpath: add lookups (make the node) */
	HO_FORGET,    /* u64 ino, n */
	HO_OPEN,      /* u64 id, ino; u32 dir: an open file or dir handle */
	HO_RELEASE,   /* u64 id */
	HO_INIT,      /* bytes request, bytes reply: the FUSE_INIT exchange */
	HO_COUNTERS,  /* u64 gen, takeovers, worker_restarts, resent,
			 mounted_at */
	HO_RESENT,    /* u64 n: requests the kernel sent again */
	HO_READY,     /* worker -> supervisor: the mount answers */
	HO_DRAIN,     /* supervisor -> worker: take no more requests */
	HO_DRAINED,   /* worker: every request taken is answered */
	HO_RESUME,    /* supervisor -> worker: serve again */
	HO_STATE,     /* the state follows; carries the /dev/fuse fd */
	HO_END,	      /* end of the state */
	HO_COMMIT,    /* new process: I serve from now */
	HO_BYE,	      /* old process: gone, the control socket is yours */
};

/* An open handle: the fh the kernel was given, and what it opened. */
struct ho_handle {
	uint64_t id;
	uint64_t ino;
	bool dir;
};

struct ho_state {
	struct inode_table *it;
	struct ho_handle *h; /* open handles, unordered */
	size_t n_h, cap_h;
	unsigned char *init_in; /* FUSE_INIT request as read, or NULL */
	size_t init_in_len;
	unsigned char *init_out; /* our reply to it */
	size_t init_out_len;
	uint64_t gen;		  /* workers started in the mount's life */
	uint64_t takeovers;	  /* hand-overs to a new process */
	uint64_t worker_restarts; /* workers started after one died */
	uint64_t resent;	  /* requests the kernel sent again */
	int64_t mounted_at;	  /* unix seconds of the first mount */
};

/* A state with an inode table holding the root. 0 or -ENOMEM. */
int ho_state_init(struct ho_state *s);
/* Free what @s holds (NULL-safe fields); @s is zeroed. */
void ho_state_clear(struct ho_state *s);

/* A message being built or read. */
struct ho_msg {
	unsigned char b[HO_MSG_MAX];
	size_t len; /* bytes in b */
	size_t off; /* read position */
	bool bad;   /* a put overflowed or a get ran short */
};

void ho_msg_start(struct ho_msg *m, enum ho_type type);
void ho_put_u32(struct ho_msg *m, uint32_t v);
void ho_put_u64(struct ho_msg *m, uint64_t v);
/* A string or NULL (kept distinct from ""). */
void ho_put_str(struct ho_msg *m, const char *s);
void ho_put_bytes(struct ho_msg *m, const void *p, size_t n);

/* The message's type, and the position set after it. */
uint32_t ho_msg_type(struct ho_msg *m);
uint32_t ho_get_u32(struct ho_msg *m);
uint64_t ho_get_u64(struct ho_msg *m);
/*
 * A string as put (borrowed from @m, NUL-terminated in place: valid while
 * @m is), or NULL; a NULL put reads back as NULL, garbage sets m->bad.
 */
const char *ho_get_str(struct ho_msg *m);
/* Bytes as put: *@n set, pointer into @m. */
const void *ho_get_bytes(struct ho_msg *m, size_t *n);

/*
 * Send @m as one message, with @fd passed along (SCM_RIGHTS) if >= 0.
 * Returns 0, -EPIPE (peer gone), -EMSGSIZE (m->bad) or a negative errno.
 */
int ho_send(int sock, const struct ho_msg *m, int fd);
/*
 * Receive one message into @m, waiting at most @timeout_ms (-1: forever).
 * A passed fd is stored in *@fd (close it) when @fd is not NULL, else
 * closed. Returns the message type, 0 at end of stream, -ETIMEDOUT or a
 * negative errno.
 */
int ho_recv(int sock, struct ho_msg *m, int *fd, int timeout_ms);

/* Send the type-only message @type. */
int ho_send_type(int sock, enum ho_type type);

/*
 * Apply a state message (NODE, FORGET, OPEN, RELEASE, INIT, COUNTERS,
 * RESENT) to @s. Returns 1 if applied, 0 if @m is no state message,
 * -EPROTO for a malformed one, -ENOMEM.
 */
int ho_apply(struct ho_state *s, struct ho_msg *m);

/*
 * Send @s whole: HO_STATE (carrying @fuse_fd), COUNTERS, INIT, the nodes,
 * the handles, HO_END. Returns 0 or a negative errno.
 */
int ho_send_state(int sock, const struct ho_state *s, int fuse_fd);

/*
 * A state as one buffer, for the unit's file-descriptor store across a
 * `systemctl restart` (fs/mount/supervisor_sd.c keeps it in a memfd):
 * HO_FILE_MAGIC, u32 HO_VERSION, then the messages ho_send_state() sends
 * after HO_STATE (COUNTERS, INIT, the nodes, the handles, HO_END), each as
 * a u32 length and its bytes. *@buf is malloc'd (free it). 0 or -ENOMEM.
 */
#define HO_FILE_MAGIC "AFHO"
int ho_state_encode(const struct ho_state *s, unsigned char **buf,
		    size_t *len);
/*
 * Read a buffer made by ho_state_encode() into @s (initialised, empty).
 * *@version gets the version it says (0 if not even the magic is there).
 * Returns 0, -EPROTONOSUPPORT (another version: nothing applied),
 * -EPROTO (not a state, malformed, or cut short: @s may hold a part of
 * it; clear it) or -ENOMEM. Any input is safe (tests/fuzz/fuzz_handover).
 */
int ho_state_decode(struct ho_state *s, const unsigned char *buf, size_t len,
		    uint32_t *version);

/*
 * Receive a state sent by ho_send_state() into @s (initialised, empty):
 * *@fuse_fd gets the descriptor. Each message must come within
 * @timeout_ms. Returns 0, -EPROTO (unexpected message, no fd) or a
 * negative errno; on error *@fuse_fd is -1.
 */
int ho_recv_state(int sock, struct ho_state *s, int *fuse_fd,
		  int timeout_ms);

#endif
