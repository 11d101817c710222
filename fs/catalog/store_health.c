/*
 * store_health - whether the store answers (see store.h): `online` until
 * a request fails in a way that says the store cannot be reached
 * (connection refused or reset, DNS failure, no answer within `timeout`
 * through the provider's retries, a file store's directory gone), then
 * `offline` until a background probe gets an answer again.
 *
 * While offline, store_health_gate() refuses requests at once, so what is
 * not cached fails with EIO in microseconds instead of each waiting a
 * `timeout`; the probe (a HEAD of assets.index: any answer, 404 included,
 * means the store is back) runs on its own thread with backoff, 250 ms
 * doubling to PROBE_MAX_MS, and flips the state back. Both transitions
 * are logged once and set the stats gauges store_offline and
 * store_state_since.
 *
 * Threads: all calls are safe concurrently; h->lock guards the state and
 * is never held across I/O. The probe thread is joined by
 * store_health_free() (it wakes at once from its backoff sleep).
 * Errors: 0 or a negative errno.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "fs/catalog/stats.h"
#include "fs/catalog/store.h"
#include "fs/catalog/store_int.h"

#define PROBE_FIRST_MS 250
#define PROBE_MAX_MS 4000

struct store_health {
	struct prov *prov; /* borrowed from the store */
	pthread_mutex_t lock;
	pthread_cond_t wake;	 /* the probe's sleep; signalled at free */
	enum store_avail state;	 /* protected by lock */
	int64_t since_s;	 /* protected by lock: realtime seconds */
	int64_t since_mono_ms;	 /* protected by lock */
	struct stats *stats;	 /* protected by lock */
	bool probing;		 /* protected by lock: thread running */
	bool joinable;		 /* protected by lock: thread to join */
	bool closing;		 /* protected by lock */
	pthread_t probe;
};

bool store_err_unreachable(int err)
{
	return err < 0 && err != -ENOENT && err != -EINVAL && err != -EFBIG &&
	       err != -ENOTSUP && err != -ENOMEM && err != -ENAMETOOLONG &&
	       err != -ENOTDIR && err != -EISDIR && err != -EBADMSG &&
	       err != -ESTALE && err != -ERANGE;
}

static void publish(struct store_health *h)
{
	stats_set(h->stats, STAT_STORE_OFFLINE, h->state == STORE_OFFLINE);
	stats_set(h->stats, STAT_STORE_STATE_SINCE, (uint64_t)h->since_s);
}

/* Called with h->lock held. */
static void set_state(struct store_health *h, enum store_avail st)
{
	h->state = st;
	h->since_s = (int64_t)time(NULL);
	h->since_mono_ms = time_mono_ms();
	publish(h);
}

int store_health_new(struct prov *prov, struct store_health **out)
{
	struct store_health *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->prov = prov;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);
	h->state = STORE_ONLINE;
	h->since_s = (int64_t)time(NULL);
	h->since_mono_ms = time_mono_ms();
	*out = h;
	return 0;
}

void store_health_free(struct store_health **hp)
{
	struct store_health *h = hp ? *hp : NULL;
	bool join;

	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->closing = true;
	join = h->joinable;
	pthread_cond_broadcast(&h->wake);
	pthread_mutex_unlock(&h->lock);
	if (join)
		pthread_join(h->probe, NULL);
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h);
	*hp = NULL;
}

void store_health_set_stats(struct store_health *h, struct stats *st)
{
	pthread_mutex_lock(&h->lock);
	h->stats = st;
	publish(h);
	pthread_mutex_unlock(&h->lock);
}

int store_health_gate(struct store_health *h)
{
	enum store_avail st;

	pthread_mutex_lock(&h->lock);
	st = h->state;
	pthread_mutex_unlock(&h->lock);
	return st == STORE_OFFLINE ? -EIO : 0;
}

enum store_avail store_health_state(struct store_health *h, int64_t *since_s)
{
	enum store_avail st;

	pthread_mutex_lock(&h->lock);
	st = h->state;
	if (since_s)
		*since_s = h->since_s;
	pthread_mutex_unlock(&h->lock);
	return st;
}

static void *probe_main(void *arg)
{
	struct store_health *h = arg;
	struct prov_object ob = {0};
	int64_t wait_ms = PROBE_FIRST_MS, down_ms;
	struct timespec ts;
	int ret;

	pthread_mutex_lock(&h->lock);
	while (!h->closing && h->state == STORE_OFFLINE) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += wait_ms / 1000;
		ts.tv_nsec += (wait_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&h->wake, &h->lock, &ts);
		if (h->closing || h->state != STORE_OFFLINE)
			break;
		pthread_mutex_unlock(&h->lock);
		ret = prov_head(h->prov, STORE_INDEX_KEY, &ob);
		prov_object_free(&ob);
		pthread_mutex_lock(&h->lock);
		if (!store_err_unreachable(ret) && h->state == STORE_OFFLINE) {
			down_ms = time_mono_ms() - h->since_mono_ms;
			set_state(h, STORE_ONLINE);
			log_warn("store %s answers again after %lld s offline: "
				 "fetching normally",
				 prov_url(h->prov), (long long)(down_ms / 1000));
		}
		wait_ms = wait_ms * 2 > PROBE_MAX_MS ? PROBE_MAX_MS : wait_ms * 2;
	}
	h->probing = false;
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

void store_health_report(struct store_health *h, int err, const char *what,
			 const char *reason)
{
	bool start = false, join = false;
	pthread_t old;

	if (!store_err_unreachable(err))
		return; /* an answer, even "no such object", is not an outage */
	pthread_mutex_lock(&h->lock);
	if (h->state == STORE_ONLINE && !h->closing) {
		set_state(h, STORE_OFFLINE);
		if (err == -EACCES)
			log_warn("store %s refused access (%s: %s): check its "
				 "credentials (http(s): -o bearer_token_file=FILE "
				 "or $ASSETFS_BEARER_TOKEN_FILE); offline: "
				 "serving the last known lists and cached data, "
				 "uncached reads fail with EIO until it answers",
				 prov_url(h->prov), what,
				 reason && *reason ? reason : strerror(-err));
		else
			log_warn("store %s unreachable (%s: %s); offline: "
				 "serving the last known lists and cached data, "
				 "uncached reads fail with EIO until it answers "
				 "again (probing every %d s at most)",
				 prov_url(h->prov), what,
				 reason && *reason ? reason : strerror(-err),
				 PROBE_MAX_MS / 1000);
		if (!h->probing) {
			join = h->joinable;
			old = h->probe;
			h->probing = true;
			start = true;
		}
	}
	pthread_mutex_unlock(&h->lock);
	if (join)
		pthread_join(old, NULL); /* the last probe, finished */
	if (!start)
		return;
	pthread_mutex_lock(&h->lock);
	h->joinable = pthread_create(&h->probe, NULL, probe_main, h) == 0;
	if (!h->joinable) {
		/* no probe thread: let the next request find out instead */
		h->probing = false;
		set_state(h, STORE_ONLINE);
	}
	pthread_mutex_unlock(&h->lock);
}

void store_health_report_ok(struct store_health *h)
{
	pthread_mutex_lock(&h->lock);
	if (h->state == STORE_OFFLINE && !h->closing) {
		set_state(h, STORE_ONLINE);
		log_warn("store %s answers again: fetching normally",
			 prov_url(h->prov));
	}
	pthread_mutex_unlock(&h->lock);
}
