/*
 * test_pins - the pin file as a ConfigMap delivers it (pins_file_parse()):
 * comments, blank lines, CRLF and surrounding blanks ignored; a line
 * that is not a pin spec (bad name, a [sub] path) skipped; a spec listed
 * twice pinned once; nothing after a NUL byte.
 */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "fs/mount/pins.h"
#include "test.h"

static const struct {
	const char *text;
	size_t len; /* 0: strlen */
	const char *want; /* the specs, each followed by ';' */
} cases[] = {
    {"", 0, ""},
    {"# only a comment\n\n   \n", 0, ""},
    {"iris\n", 0, "iris;"},
    {"  fraud/xgb:1.latest   # current\r\nteam-a/m:2.0\r\n", 0,
     "fraud/xgb:1.latest;team-a/m:2.0;"},
    {"iris\niris\n iris \niris:1.0\n", 0, "iris;iris:1.0;"},
    {"../etc\nname[sub/path]:1.0\na//b\nok\n", 0, "ok;"},
    {"iris\n\0evil\n", 11, "iris;"},
    {"no-newline-at-end", 0, "no-newline-at-end;"},
};

test(pins_file_parse_table)
{
	size_t i, j;

	log_set_level(LOG_LVL_ERROR);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *t = cases[i].text;
		size_t len = cases[i].len ? cases[i].len : strlen(t);
		char **specs = NULL, got[256] = "";
		size_t n = 99;

		CHECK_INT(pins_file_parse(t, len, "pins.txt", &specs, &n), 0);
		for (j = 0; j < n; j++) {
			strncat(got, specs[j], sizeof(got) - strlen(got) - 2);
			strcat(got, ";");
		}
		CHECK_STR(got, cases[i].want);
		pins_specs_free(specs, n);
	}
}
