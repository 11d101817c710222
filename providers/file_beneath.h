/*
 * file_beneath - open paths of a file:// store without ever leaving it
 * (DESIGN §4: a file store is opened beneath its root).
 *
 * Every path of the store is resolved relative to a descriptor of the
 * store root. Symlinks are followed only while they stay beneath the root:
 * a relative link whose ".." climbs above the root, an absolute link (even
 * one naming a place inside the store: its meaning depends on where the
 * store is mounted) and a magic link (/proc/self/fd/N) fail with -EXDEV.
 * The kernel does this with openat2(2) and RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS; where openat2 is missing (ENOSYS: kernels before
 * 5.6, some seccomp filters) an equivalent walk opens one component at a
 * time with O_NOFOLLOW, reads each link and resolves it by hand against a
 * stack of directory descriptors, so a rename racing the walk cannot
 * carry it outside either. ASSETFS_FILE_NO_OPENAT2=1 forces the walk
 * (tests run both).
 *
 * Threads: no shared mutable state but a once-only probe; safe
 * concurrently. Errors: a descriptor (>= 0) or a negative errno.
 */
#ifndef ASSETFS_PROVIDERS_FILE_BENEATH_H
#define ASSETFS_PROVIDERS_FILE_BENEATH_H

#include <stdbool.h>

#define FB_MAX_LINKS 40 /* symlinks followed in one resolution, as Linux */

/*
 * Open @rel ('/'-separated, relative; "" is the root itself) beneath the
 * directory @rootfd (borrowed) with open(2) @flags (O_CREAT is not
 * supported; O_CLOEXEC is added). Returns the new descriptor, -EXDEV if
 * the path or a symlink on it leaves the root, -ELOOP past FB_MAX_LINKS
 * links, or open(2)'s errors (-ENOENT, -ENOTDIR, ...).
 */
int fb_open(int rootfd, const char *rel, int flags);

/* Whether fb_open() uses openat2(2) (false: the walk by hand). */
bool fb_uses_openat2(void);

#endif
