/*
 * supervisor_int - what the two files of the supervisor share:
 * supervisor.c (mounting, the control socket and both sides of a
 * takeover, the signal loop, mount_run()) calls supervisor_sd.c (systemd:
 * a `systemctl restart` keeps the mount in the unit's fd store), and both
 * call supervisor_worker.c (the worker: starting it, draining it, its
 * journal, its death), never the other way.
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

/* SUP_STORED: kept in systemd's fd store for the unit's next start */
/* How long a SIGKILLed child is waited for before going on (ms). */
#define SUP_REAP_MS 5000

enum sup_end { SUP_RUN = 0, SUP_UNMOUNTED, SUP_HANDED_OVER, SUP_STORED,
	       SUP_FAILED };

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
	bool worker_ready; /* the worker said HO_READY (its loop runs) */
	pid_t prober;	   /* 0: none; see sup_probe_start() */
	struct timespec probe_end; /* CLOCK_MONOTONIC: give up on it then */
	bool said_ready;   /* we told our caller */
	bool stopping;	   /* SIGTERM & co: unmounted, waiting for the end */
	int failed_starts;
	struct timespec stop_at;
	enum sup_end end;
};


/* Tell our caller (and systemd) the mount answers, or failed; once. */
void sup_say_ready(struct sup *s, int status);
/*
 * A worker's loop runs (HO_READY): unless we said ready already or a
 * prober runs, fork one, a child that stats the mountpoint and exits
 * with 0 or the errno; sup_probe_done() once it is reaped, or
 * sup_probe_tick() once it has taken too long, says ready.
 */
void sup_probe_start(struct sup *s);
/* The prober exited with @status (waitpid()'s). */
void sup_probe_done(struct sup *s, int status);
/*
 * Past the prober's limit: kill it (it is reaped when its request is
 * answered or the connection ends) and say ready all the same. Returns
 * how many ms the loop may sleep before asking again, -1 for no limit.
 */
int sup_probe_tick(struct sup *s);
/*
 * SIGKILL @pid (a worker or the prober) and reap it, waiting at most
 * @limit_ms (a pidfd): a process may take long to die (a thread in the
 * kernel); it is then left to SIGCHLD and the end of this process.
 * Returns true once reaped.
 */
bool sup_reap(pid_t pid, int limit_ms);
/*
 * Fork a worker on s->fuse_fd with s->st (@await_state: it prepares, then
 * reads the state from its socket, see struct mount_worker). 0 or errno.
 */
int sup_spawn_worker(struct sup *s, bool await_state);
/*
 * Ask the worker to drain (take no more requests, answer the ones it
 * holds) and wait for HO_DRAINED at most @limit_ms a message, applying
 * the journal meanwhile. 0, or an error (the worker may be resumed).
 */
int sup_drain_worker(struct sup *s, struct ho_msg *m, int limit_ms);
/* Log whether the kernel resends what a dead worker held. */
void sup_log_kernel(const struct ho_state *st);
/* Apply what the worker sent; 0, or -EPIPE once it is gone. */
int sup_read_journal(struct sup *s, struct ho_msg *m);
/*
 * The worker exited with @status: the mount ended (s->end), or a new
 * worker runs on the connection after the kernel was told to resend.
 */
void sup_worker_died(struct sup *s, int status, struct ho_msg *m);

/* ---- supervisor_sd.c ---- */

/*
 * Is the unit that runs us being restarted (`systemctl restart`), with a
 * file-descriptor store to keep the mount in? Asks systemd over D-Bus
 * (the unit of our pid, its job's type, FileDescriptorStoreMax). @why
 * gets the reason either way, for the one line the caller logs.
 */
bool sup_sd_restarting(char *why, size_t len);
/*
 * Drain the worker, then hand the /dev/fuse descriptor and the state (a
 * memfd, ho_state_encode()) to systemd's fd store, and stop the worker:
 * the caller then exits without unmounting. 0, or a negative errno with
 * @why set (the worker serves on; nothing stays in the store).
 */
int sup_sd_store(struct sup *s, struct ho_msg *m, char *why, size_t len);
/*
 * At start: adopt a mount kept by sup_sd_store() and passed back by
 * systemd (LISTEN_FDS, names SUP_SD_FUSE and SUP_SD_STATE) like a
 * takeover's receiver: s->fuse_fd and s->st set, a worker serving.
 * @mounted: the mountpoint holds a fuse.assetfs mount. Returns 1 when
 * adopted, 0 when nothing was passed, -ESTALE when something was but
 * cannot be used (the caller detaches the old mount and mounts afresh;
 * one line said why). The store is emptied either way.
 */
int sup_sd_adopt(struct sup *s, bool mounted);

#endif
