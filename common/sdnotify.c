/*
 * sdnotify - see sdnotify.h: libsystemd's sd_notify().
 */
#include "common/sdnotify.h"

#include <systemd/sd-daemon.h>

int sd_notify_state(const char *state)
{
	int r = sd_notify(0, state);

	return r < 0 ? r : 0;
}
