/*
 * progress - a one-line progress bar on stderr for long transfers
 * (`assetfs push`, the server's batch command).
 *
 *   pushing fraud/xgb:1.3  [######------]  45%  12.0/26.7 MiB  85.2 MiB/s
 *
 * The bar is drawn only when stderr is a terminal (or ASSETFS_PROGRESS=1
 * forces it; ASSETFS_PROGRESS=0 turns it off), at most ten times a second,
 * each redraw one write(2) starting with '\r'. progress_finish() ends the
 * line so later messages start on a fresh one.
 *
 * Not thread-safe: one owner updates a struct progress. No errors: a
 * failed write to stderr is ignored.
 */
#ifndef ASSETFS_COMMON_PROGRESS_H
#define ASSETFS_COMMON_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROGRESS_LABEL_MAX 64

struct progress {
	char label[PROGRESS_LABEL_MAX]; /* truncated copy */
	uint64_t total; /* 0: unknown (no percentage or bar) */
	uint64_t done;
	int64_t start_ms, last_ms;
	bool active; /* drawing at all */
	bool drawn;  /* something is on the line */
};

/*
 * Start a bar for @total bytes labelled @label (borrowed, copied). It is
 * active if stderr is a terminal and @total >= @min_total (small transfers
 * finish before a bar is useful), subject to ASSETFS_PROGRESS.
 */
void progress_init(struct progress *p, const char *label, uint64_t total,
		   uint64_t min_total);

/* Record @done bytes so far; redraws if 100 ms have passed. */
void progress_update(struct progress *p, uint64_t done);

/* Draw the final state and end the line (if anything was drawn). */
void progress_finish(struct progress *p);

/* Erase the line without a final state (on failure). */
void progress_abort(struct progress *p);

/*
 * Write @bytes to @out (@len bytes, NUL-terminated, truncated to fit) as a
 * person reads a size: "812 B", "3.0 MiB", "9.5 GiB" (binary units, one
 * decimal above 1 KiB).
 */
void progress_fmt_size(uint64_t bytes, char *out, size_t len);

#endif
