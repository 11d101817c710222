/*
 * version - versioning systems, version lists and resolution (DESIGN §3).
 *
 * major_minor: "MAJOR.MINOR", digits only, no sign, no leading zero ("01.0"
 * is not a spelling of "1.0"), each part fits in 31 bits (larger values are
 * invalid, never wrapped); a partial "MAJOR" names the newest version with
 * exactly that major (never 10.x for "1"). simple_date:
 * "YYYY-MM-DDTHH-MM-SSZ" (a real date and time), ordered as strings, no
 * partials. A version list is always de-duplicated and sorted newest first
 * whatever the order and duplicates of the `.versions` document it came
 * from.
 *
 * Pure functions, no I/O, thread-safe. Errors: 0 or a negative errno with a
 * message in @err (SPEC_ERR_MAX bytes is a good size).
 */
#ifndef ASSETFS_RESOLVER_VERSION_H
#define ASSETFS_RESOLVER_VERSION_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

#define VERSIONS_MAX_BYTES (4u << 20) /* cap on a .versions document */

enum versioning {
	VERSIONING_AUTO = 0, /* detect per asset: all dates -> simple_date */
	VERSIONING_MAJOR_MINOR,
	VERSIONING_SIMPLE_DATE,
};

/* "auto", "major_minor", "simple_date" -> enum. 0 or -EINVAL. */
int versioning_parse(const char *s, enum versioning *out);
const char *versioning_name(enum versioning v);

/*
 * The system from MODELKIT_ASSETS_VERSIONING_SYSTEM (unset -> AUTO).
 * Returns 0 or -EINVAL for an unknown value.
 */
int versioning_from_env(enum versioning *out);

/* Is @v a complete version under @sys? (AUTO: under either system.) */
bool version_valid(enum versioning sys, const char *v);

/* Is @v a partial major_minor version ("1")? */
bool version_is_major(const char *v);

/*
 * Order two complete versions of @sys: <0 if @a is older than @b, 0 if
 * equal, >0 if newer. Undefined for invalid versions.
 */
int version_cmp(enum versioning sys, const char *a, const char *b);

/* The major of a valid major_minor version. */
unsigned long version_major(const char *v);

struct version_list {
	enum versioning sys; /* never AUTO once built */
	char **v;	     /* owned strings, newest first, no duplicates */
	size_t n;
	size_t n_invalid; /* entries dropped as not valid under sys */
};

/*
 * Parse a `.versions` document {"versions": [...]} of @len bytes. With
 * @sys AUTO the system is detected (every valid entry a date ->
 * simple_date, else major_minor). Entries that are not strings or not valid
 * under the system are dropped and counted in n_invalid (the caller logs).
 * Returns 0, -EINVAL (not JSON, no "versions" array; message in @err),
 * -EFBIG (over VERSIONS_MAX_BYTES) or -ENOMEM.
 */
int versions_parse(const char *json, size_t len, enum versioning sys,
		   struct version_list *out, char *err, size_t errlen);

/*
 * Free the strings and zero @l (sys back to AUTO, so a later
 * version_list_add() detects the system again); @l may be reused. NULL-safe.
 */
void version_list_clear(struct version_list *l);

/*
 * Build a list from @n strings (copied), validating, de-duplicating and
 * sorting as versions_parse() does.
 */
int version_list_from(const char *const *v, size_t n, enum versioning sys,
		      struct version_list *out);

/*
 * Insert a copy of complete version @v keeping order; a duplicate is a
 * no-op. A zeroed list takes its system from @v. Returns 0, -EINVAL if @v
 * is not a complete version of the list's system, or -ENOMEM.
 */
int version_list_add(struct version_list *l, const char *v);

/*
 * Resolve @want in @l: NULL -> newest; a complete version -> itself if
 * present; a major ("1", major_minor only) -> newest "1.*". On success
 * *@out points into @l. Returns 0, -ENOENT ("no such version '1' of
 * 'fraud/xgb'"-style message naming @want; @name is used in the message
 * only and may be NULL), or -EINVAL when @want is malformed for the system.
 */
int version_resolve(const struct version_list *l, const char *name,
		    const char *want, const char **out, char *err,
		    size_t errlen);

/*
 * The version a push creates next: "0.0" for an empty list (major_minor),
 * else the newest's minor + 1, or (with @bump_major) newest major + 1 ".0".
 * simple_date: the current UTC time (later than the newest).
 * Returns the length or -ENOSPC / -EOVERFLOW.
 */
int version_next(const struct version_list *l, bool bump_major, char *buf,
		 size_t len);

/* Append {"versions": [...]} (newest first) to @out. 0 or -ENOMEM/-EFBIG. */
int versions_format(const struct version_list *l, struct buf *out);

#endif
