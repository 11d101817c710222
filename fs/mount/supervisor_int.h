/*
 * supervisor_int - what the two files of the supervisor share:
 * supervisor.c (mounting, the control socket and both sides of a
 * takeover, the signal loop, mount_run()) calls supervisor_worker.c (the
 * worker: starting it, its journal, its death), never the other way.
 *
 * Threads: one (the supervisor's). Errors: negative errno.
 */
#ifndef ASSETFS_FS_MOUNT_SUPERVISOR_INT_H
#define ASSETFS_FS_MOUNT_SUPERVISOR_INT_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>

#include "fs/mount/handover.h"
#include "fs/mount/mount.h"

enum sup_end { SUP_RUN = 0, SUP_UNMOUNTED, SUP_HANDED_OVER, SUP_FAILED };

struct sup {
	const struct mount_opts *o;
	struct ho_state st;
	int fuse_fd;
	int sig_fd;
	int listen_fd;
	char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat ctl_st; /* the socket file we bound */
	pid_t worker;	/* 0: none */
	int wctl;	/* our end of the worker's socket, or -1 */
	bool worker_ready; /* the worker said HO_READY */
	bool said_ready;   /* we told our caller */
	bool stopping;	   /* SIGTERM & co: unmounted, waiting for the end */
	int failed_starts;
	struct timespec stop_at;
	enum sup_end end;
};


/* Tell our caller (and systemd) the mount answers, or failed; once. */
void sup_say_ready(struct sup *s, int status);
/*
 * Fork a worker on s->fuse_fd with s->st (@await_state: it prepares, then
 * reads the state from its socket, see struct mount_worker). 0 or errno.
 */
int sup_spawn_worker(struct sup *s, bool await_state);
/* Log whether the kernel resends what a dead worker held. */
void sup_log_kernel(const struct ho_state *st);
/* Apply what the worker sent; 0, or -EPIPE once it is gone. */
int sup_read_journal(struct sup *s, struct ho_msg *m);
/*
 * The worker exited with @status: the mount ended (s->end), or a new
 * worker runs on the connection after the kernel was told to resend.
 */
void sup_worker_died(struct sup *s, int status, struct ho_msg *m);

#endif
