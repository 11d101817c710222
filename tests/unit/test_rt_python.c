/*
 * test_rt_python - the pure parts of assetfs-server's Python runtimes: a
 * model's limits from its config (defaults, sizes, refusals), the
 * --model KEY=VALUE options that feed it, which runtime a version's files
 * call for, and the checks on what a model process sends back.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/options.h"
#include "server/pyproc.h"
#include "server/rt_python.h"
#include "server/runtime.h"
#include "tests/unit/test.h"

test(conf_defaults_and_values)
{
	struct pyrt_conf c;
	char err[256];

	CHECK_INT(pyrt_conf_parse(NULL, &c, err, sizeof(err)), 0);
	CHECK_INT(c.replicas, 1);
	CHECK_INT(c.timeout_ms, 60000);
	CHECK_INT(c.max_memory, 0);
	CHECK_INT(c.max_batch_rows, 64);
	CHECK_INT(c.max_wait_us, 500);
	CHECK_INT(pyrt_conf_parse("{\"replicas\": \"3\", \"timeout\": 0.5, "
				  "\"max_memory\": \"512M\", "
				  "\"max_batch_size\": 8, "
				  "\"max_batch_wait_us\": \"0\"}",
				  &c, err, sizeof(err)),
		  0);
	CHECK_INT(c.replicas, 3);
	CHECK_INT(c.timeout_ms, 500);
	CHECK_INT(c.max_memory, 512ull << 20);
	CHECK_INT(c.max_batch_rows, 8);
	CHECK_INT(c.max_wait_us, 0);
	CHECK_INT(pyrt_conf_parse("{\"max_memory\": \"2GiB\"}", &c, err,
				  sizeof(err)),
		  0);
	CHECK_INT(c.max_memory, 2ull << 30);
	CHECK_INT(pyrt_conf_parse("{\"max_memory\": 1073741824}", &c, err,
				  sizeof(err)),
		  0);
	CHECK_INT(c.max_memory, 1ull << 30);
}

test(conf_refusals_name_the_key)
{
	static const struct {
		const char *conf, *needle;
	} bad[] = {
	    {"{\"replicas\": 0}", "replicas"},
	    {"{\"replicas\": \"two\"}", "replicas"},
	    {"{\"replicas\": 65}", "replicas"},
	    {"{\"timeout\": -1}", "timeout"},
	    {"{\"max_memory\": \"12X\"}", "max_memory"},
	    {"{\"max_memory\": \"1M\"}", "at least 64M"},
	    {"{\"max_batch_size\": [1]}", "max_batch_size"},
	    {"[1, 2]", "not a JSON object"},
	    {"{", "not a JSON object"},
	};
	struct pyrt_conf c;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK_INT(pyrt_conf_parse(bad[i].conf, &c, err, sizeof(err)),
			  -EINVAL);
		CHECK_STR_CONTAINS(err, bad[i].needle);
	}
}

test(model_option_keys_land_in_the_config)
{
	struct model_opt mo;
	char err[256];

	CHECK_INT(options_parse_model("m=team/m:1,class=pkg.mod.Cls,"
				      "replicas=2,max_memory=1G,timeout=5",
				      &mo, err, sizeof(err)),
		  0);
	CHECK_STR(mo.name, "m");
	CHECK_STR(mo.spec, "team/m:1");
	CHECK(mo.runtime == NULL);
	CHECK_STR(mo.config, "{\"class\":\"pkg.mod.Cls\",\"replicas\":\"2\","
			     "\"max_memory\":\"1G\",\"timeout\":\"5\"}");
	free(mo.name);
	free(mo.spec);
	free(mo.config);
	CHECK_INT(options_parse_model("m=team/m,colour=red", &mo, err,
				      sizeof(err)),
		  -EINVAL);
	CHECK_STR_CONTAINS(err, "unknown option 'colour=red'");
}

static char root[PATH_MAX];

static void touch(const char *rel)
{
	char p[PATH_MAX * 2];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	f = fopen(p, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
}

static const char *detect(const char *sub, const char *file,
			  const char *config)
{
	char p[PATH_MAX * 2];

	snprintf(p, sizeof(p), "%s/%s", root, sub);
	return runtime_detect(p, file, config)->name;
}

test(runtime_detected_from_files)
{
	char cmd[PATH_MAX + 16];
	const char *dirs[] = {"skl", "so", "both", "xgb", "settings", "py"};
	size_t i;

	snprintf(root, sizeof(root), "/tmp/test_rt_python.XXXXXX");
	CHECK(mkdtemp(root) != NULL);
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(cmd, sizeof(cmd), "%s/%s", root, dirs[i]);
		CHECK_INT(mkdir(cmd, 0755), 0);
	}
	touch("skl/feature_names.json");
	touch("skl/pipeline.joblib");
	touch("so/model.so");
	touch("both/model.so");
	touch("both/model.json");
	touch("xgb/model.ubj");
	touch("settings/model-settings.json");
	touch("settings/model.joblib");
	touch("py/m.py");
	touch("file.pkl");
	CHECK_STR(detect("skl", NULL, NULL), "sklearn");
	CHECK_STR(detect("so", NULL, NULL), "plugin");
	CHECK_STR(detect("both", NULL, NULL), "xgboost");
	CHECK_STR(detect("xgb", NULL, NULL), "xgboost");
	CHECK_STR(detect("settings", NULL, NULL), "python");
	CHECK_STR(detect("py", NULL, "{\"class\": \"m.M\"}"), "python");
	CHECK_STR(detect("py", NULL, "{\"replicas\": 2}"), "xgboost");
	CHECK_STR(detect("file.pkl", NULL, NULL), "sklearn");
	CHECK_STR(detect("skl", "x.so", NULL), "plugin");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	CHECK_INT(system(cmd), 0);
}

test(reply_headers_are_checked)
{
	struct pyframe_hdr h = {.magic = PYFRAME_MAGIC, .type = PYF_RESULT,
				.rows = 2, .cols = 3, .len = 48};
	static const char good[] = "{\"n_features\": 4, \"n_outputs\": 3, "
				   "\"classifier\": true, \"objective\": \"x\"}";
	struct pyhello hello;
	char err[256];

	CHECK_INT(pyframe_check_reply(&h, 48, err, sizeof(err)), 0);
	CHECK_INT(pyframe_check_reply(&h, 40, err, sizeof(err)), -EPROTO);
	h.len = 40;
	CHECK_INT(pyframe_check_reply(&h, 1 << 20, err, sizeof(err)), -EPROTO);
	CHECK_STR_CONTAINS(err, "2x3 result in 40 bytes");
	h.type = PYF_ERROR;
	h.len = PYFRAME_MAX_TEXT + 1;
	CHECK_INT(pyframe_check_reply(&h, 0, err, sizeof(err)), -EPROTO);
	h.type = PYF_PREDICT; /* the server's own type is no reply */
	h.len = 0;
	CHECK_INT(pyframe_check_reply(&h, 0, err, sizeof(err)), -EPROTO);
	h.type = PYF_HELLO;
	h.magic = 0;
	CHECK_INT(pyframe_check_reply(&h, 0, err, sizeof(err)), -EPROTO);

	CHECK_INT(pyhello_parse(good, strlen(good), &hello, err, sizeof(err)),
		  0);
	CHECK_INT(hello.n_features, 4);
	CHECK_INT(hello.n_outputs, 3);
	CHECK(hello.is_classifier);
	CHECK_STR(hello.objective, "x");
	CHECK_INT(pyhello_parse("{\"n_features\": 4, \"n_outputs\": 0}", 34,
				&hello, err, sizeof(err)),
		  -EPROTO);
	CHECK_INT(pyhello_parse("{\"n_outputs\": 2}", 16, &hello, err,
				sizeof(err)),
		  -EPROTO);
}
