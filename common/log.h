/*
 * log - one line per event on stderr, readable by a person and by journald.
 *
 * Format: "2026-11-22T01:02:03Z assetfs[1234] warn: message". Each line is
 * written with one write(2), so lines from several threads never interleave.
 * The level and program name are process-wide settings made once in main()
 * (the only mutable globals of common/); everything else is thread-safe.
 *
 * Never pass a secret to these functions: logs are shipped and shared.
 */
#ifndef ASSETFS_COMMON_LOG_H
#define ASSETFS_COMMON_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/*
 * Set the program name shown in each line (borrowed: must outlive logging)
 * and the most verbose level printed. If the environment variable
 * ASSETFS_LOG is one of error|warn|info|debug it overrides @level.
 */
void log_init(const char *prog, enum log_level level);

/* Change the level at run time. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parse "error", "warn", "info" or "debug". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

/*
 * Write a message into a caller's error buffer @err of @errlen bytes
 * (truncated; nothing when @err is NULL or @errlen 0): the "char *err,
 * size_t errlen" convention of parsers and stores.
 */
void log_errbuf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
