/*
 * sdnotify - tell systemd (Type=notify units) that a daemon is ready or
 * stopping, with libsystemd's sd_notify() on $NOTIFY_SOCKET. Without
 * NOTIFY_SOCKET (not run by systemd) every call is a no-op.
 *
 * Thread-safe. Errors: 0 (also when there is no socket) or a negative errno.
 */
#ifndef ASSETFS_COMMON_SDNOTIFY_H
#define ASSETFS_COMMON_SDNOTIFY_H

/* Send @state, e.g. "READY=1", "STOPPING=1", "STATUS=mounted /assets". */
int sd_notify_state(const char *state);

#endif
