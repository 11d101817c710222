/*
 * progress - see progress.h. The line is formatted into a stack buffer
 * and written with one write(2) so it never interleaves with log lines
 * (which are also single writes).
 */
#include "common/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/timeutil.h"

#define PROGRESS_BAR_WIDTH 24
#define PROGRESS_REDRAW_MS 100

void progress_init(struct progress *p, const char *label, uint64_t total,
		   uint64_t min_total)
{
	const char *env = getenv("ASSETFS_PROGRESS");

	memset(p, 0, sizeof(*p));
	snprintf(p->label, sizeof(p->label), "%s", label ? label : "");
	p->total = total;
	p->start_ms = time_mono_ms();
	if (env && strcmp(env, "1") == 0)
		p->active = true;
	else if (env && strcmp(env, "0") == 0)
		p->active = false;
	else
		p->active = isatty(STDERR_FILENO) && total >= min_total;
}

static void progress_draw(struct progress *p)
{
	char line[256], bar[PROGRESS_BAR_WIDTH + 1];
	int64_t ms = time_mono_ms() - p->start_ms;
	double mib = 1024.0 * 1024.0;
	double rate =
	    ms > 0 ? (double)p->done / mib / ((double)ms / 1000.0) : 0.0;
	int n;

	if (p->total) {
		uint64_t done = p->done > p->total ? p->total : p->done;
		size_t fill = (size_t)(done * PROGRESS_BAR_WIDTH / p->total);

		memset(bar, '#', fill);
		memset(bar + fill, '-', PROGRESS_BAR_WIDTH - fill);
		bar[PROGRESS_BAR_WIDTH] = '\0';
		n = snprintf(line, sizeof(line),
			     "\r%s  [%s] %3u%%  %.1f/%.1f MiB  %.1f MiB/s ",
			     p->label, bar, (unsigned)(done * 100 / p->total),
			     (double)done / mib, (double)p->total / mib, rate);
	} else {
		n = snprintf(line, sizeof(line), "\r%s  %.1f MiB  %.1f MiB/s ",
			     p->label, (double)p->done / mib, rate);
	}
	if (n > 0) {
		size_t len =
		    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;

		if (write(STDERR_FILENO, line, len) < 0) {
			/* nothing useful to do */
		}
	}
	p->drawn = true;
	p->last_ms = time_mono_ms();
}

void progress_update(struct progress *p, uint64_t done)
{
	p->done = done;
	if (!p->active)
		return;
	if (p->drawn && time_mono_ms() - p->last_ms < PROGRESS_REDRAW_MS)
		return;
	progress_draw(p);
}

void progress_finish(struct progress *p)
{
	if (!p->active)
		return;
	progress_draw(p);
	if (write(STDERR_FILENO, "\n", 1) < 0) {
		/* ignored */
	}
	p->drawn = false;
	p->active = false;
}

void progress_abort(struct progress *p)
{
	static const char clear[] = "\r\033[K";

	if (p->active && p->drawn) {
		if (write(STDERR_FILENO, clear, sizeof(clear) - 1) < 0) {
			/* ignored */
		}
	}
	p->drawn = false;
	p->active = false;
}

void progress_fmt_size(uint64_t b, char *out, size_t len)
{
	if (b >= (1ull << 30))
		snprintf(out, len, "%.1f GiB", (double)b / (1ull << 30));
	else if (b >= (1ull << 20))
		snprintf(out, len, "%.1f MiB", (double)b / (1ull << 20));
	else if (b >= (1ull << 10))
		snprintf(out, len, "%.1f KiB", (double)b / (1ull << 10));
	else
		snprintf(out, len, "%llu B", (unsigned long long)b);
}
