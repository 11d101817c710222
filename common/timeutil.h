/*
 * timeutil - clocks and ISO-8601 timestamps.
 *
 * Monotonic time for timeouts and TTLs; wall time only for what users read
 * (push_date, logs). All functions are pure or read a clock: thread-safe.
 */
#ifndef ASSETFS_COMMON_TIMEUTIL_H
#define ASSETFS_COMMON_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds / milliseconds. */
int64_t time_mono_ns(void);
int64_t time_mono_ms(void);

/* CLOCK_REALTIME as seconds and nanoseconds since the epoch. */
void time_now(int64_t *sec, int32_t *nsec);

/*
 * Parse an ISO-8601 date-time: "YYYY-MM-DDTHH:MM:SS" with an optional
 * fraction of 1 to 9 digits, and an optional zone: "Z", "+HH:MM", "+HHMM",
 * "-HH:MM" (none means UTC, as Python's utcnow().isoformat() writes).
 * A space is accepted in place of 'T'. Returns 0 or -EINVAL; the result is
 * UTC seconds since the epoch and nanoseconds.
 */
int time_parse_iso8601(const char *s, int64_t *sec, int32_t *nsec);

/*
 * Format as "YYYY-MM-DDTHH:MM:SS.ffffffZ" (microseconds, UTC). Returns the
 * length written, -ENOSPC if @len < 28, or -EINVAL for a time outside the
 * years 0000..9999.
 */
int time_format_iso8601(int64_t sec, int32_t nsec, char *buf, size_t len);

#endif
