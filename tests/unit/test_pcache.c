/*
 * test_pcache - assetfs-server's native prediction cache (LRU by entry
 * count, keyed by model, version and input) and the shared metrics
 * segment's rendering.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"
#include "server/pcache.h"
#include "tests/unit/test.h"

test(native_lru)
{
	struct pcache *c = NULL;
	char err[256];
	double x1[2] = {1, 2}, x2[2] = {1, 3}, x3[2] = {2, 2};
	double y[2] = {0.25, 0.75}, got[2];
	uint64_t k1 = pcache_key(x1, 1, 2), k2 = pcache_key(x2, 1, 2),
		 k3 = pcache_key(x3, 1, 2);

	setenv("MODELKIT_CACHE_PROVIDER", "native", 1);
	setenv("MODELKIT_CACHE_MAX_SIZE", "2", 1);
	CHECK_INT(pcache_from_env(&c, err, sizeof(err)), 0);
	CHECK(c != NULL);
	CHECK_STR(pcache_kind(c), "native");
	CHECK(k1 != k2 && k1 != k3);
	CHECK(pcache_key(x1, 2, 1) != k1); /* the shape is part of the key */
	CHECK_INT(pcache_get(c, "m", "1.0", k1, got, 2), -ENOENT);
	pcache_put(c, "m", "1.0", k1, y, 2);
	CHECK_INT(pcache_get(c, "m", "1.0", k1, got, 2), 0);
	CHECK(got[0] == 0.25 && got[1] == 0.75);
	/* another version or model is another entry */
	CHECK_INT(pcache_get(c, "m", "1.1", k1, got, 2), -ENOENT);
	CHECK_INT(pcache_get(c, "n", "1.0", k1, got, 2), -ENOENT);
	/* LRU: k1 used last, so k2 goes when k3 arrives */
	pcache_put(c, "m", "1.0", k2, y, 2);
	CHECK_INT(pcache_get(c, "m", "1.0", k1, got, 2), 0);
	pcache_put(c, "m", "1.0", k3, y, 2);
	CHECK_INT(pcache_get(c, "m", "1.0", k2, got, 2), -ENOENT);
	CHECK_INT(pcache_get(c, "m", "1.0", k1, got, 2), 0);
	CHECK_INT(pcache_get(c, "m", "1.0", k3, got, 2), 0);
	pcache_free(c);
}

test(env_settings)
{
	struct pcache *c = NULL;
	char err[256];

	unsetenv("MODELKIT_CACHE_PROVIDER");
	CHECK_INT(pcache_from_env(&c, err, sizeof(err)), 0);
	CHECK(c == NULL);
	setenv("MODELKIT_CACHE_PROVIDER", "memcached", 1);
	CHECK_INT(pcache_from_env(&c, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "native or redis");
	setenv("MODELKIT_CACHE_PROVIDER", "native", 1);
	setenv("MODELKIT_CACHE_MAX_SIZE", "-3", 1);
	CHECK_INT(pcache_from_env(&c, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "MODELKIT_CACHE_MAX_SIZE");
	unsetenv("MODELKIT_CACHE_PROVIDER");
	unsetenv("MODELKIT_CACHE_MAX_SIZE");
}

test(metrics_rendering)
{
	struct metrics *m = NULL;
	struct buf b;

	CHECK_INT(metrics_new(&m), 0);
	metrics_request(m, "iris", "1.0", "v2", 200, 300000);
	metrics_request(m, "iris", "1.0", "v2", 200, 2000000000);
	metrics_request(m, "iris", "1.0", "seldon", 400, 1000);
	metrics_model_load(m, 0, 0, "iris", "1.0", true, 5000000);
	metrics_model_load(m, 1, 0, "iris", "1.1", false, 0);
	metrics_model_serving(m, 0, 0, "iris", "1.0");
	metrics_model_serving(m, 1, 0, "iris", "1.0");
	metrics_cache(m, true);
	/* labels longer than kept are still one series */
	for (int i = 0; i < 3; i++)
		metrics_request(m, "iris",
				"1.0-a-very-long-version-name-that-goes-on-and-"
				"on-past-sixty-four-bytes",
				"v2", 200, 1000);
	buf_init(&b, 0);
	CHECK_INT(metrics_render(m, &b), 0);
	CHECK_STR_CONTAINS(
	    b.data, "assetfs_server_requests_total{model=\"iris"
		    "\",version=\"1.0\",protocol=\"v2\",status=\"200\"} 2");
	CHECK_STR_CONTAINS(b.data, "protocol=\"seldon\",status=\"400\"} 1");
	CHECK_STR_CONTAINS(b.data, "protocol=\"v2\",status=\"200\",le=\"0.0005"
				   "\"} 1");
	CHECK_STR_CONTAINS(b.data, "protocol=\"v2\",status=\"200\",le=\"2.5\"} "
				   "2");
	CHECK_STR_CONTAINS(b.data, "assetfs_server_model_loads_total{model=\""
				   "iris\"} 1");
	CHECK_STR_CONTAINS(b.data, "assetfs_server_model_load_failures_total{"
				   "model=\"iris\"} 1");
	CHECK_STR_CONTAINS(b.data, "assetfs_server_model_serving{model=\"iris"
				   "\",version=\"1.0\"} 2");
	CHECK_STR_CONTAINS(b.data, "assetfs_server_cache_hits_total 1");
	CHECK_STR_CONTAINS(b.data, "on-past-sixty-fou\",protocol=\"v2\",status="
				   "\"200\"} 3");
	metrics_worker_gone(m, 1);
	buf_reset(&b);
	CHECK_INT(metrics_render(m, &b), 0);
	CHECK_STR_CONTAINS(b.data, "assetfs_server_model_serving{model=\"iris"
				   "\",version=\"1.0\"} 1");
	buf_free(&b);
	metrics_free(m);
}
