/*
 * s3_config - where the s3:// backend gets its keys, region and endpoint:
 * the environment and the AWS CLI's files, read the way the AWS tools read
 * them (see s3.c). Runs once at open; nothing here touches the network.
 *
 * The secret key is read into struct s3 and nowhere else; file buffers
 * that held it are wiped. Errors: 0 or a negative errno.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/fileutil.h"
#include "providers/curl_util.h"
#include "providers/s3_int.h"

#define S3_INI_MAX (1u << 20)
#define S3_PART_SIZE (8ull << 20)
#define S3_MULTIPART_THRESHOLD (64ull << 20)


/*
 * Look up @key in section @section of the INI file @path into a fresh
 * string at *@out. Returns 1 found, 0 not found (or no file), <0 error.
 * *@section_seen is set when the section exists.
 */
static int ini_get(const char *path, const char *section, const char *key,
		   char **out, bool *section_seen)
{
	struct buf b;
	char *line, *save = NULL;
	bool in = false;
	int ret;

	*out = NULL;
	buf_init(&b, S3_INI_MAX);
	ret = file_read_capped(path, S3_INI_MAX, &b);
	if (ret < 0) {
		buf_free(&b);
		return ret == -ENOENT ? 0 : ret;
	}
	if (!b.data) {
		buf_free(&b);
		return 0;
	}
	ret = 0;
	for (line = strtok_r(b.data, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *l = cu_trim(line), *eq;

		if (*l == '#' || *l == ';' || !*l)
			continue;
		if (*l == '[') {
			char *e = strchr(l, ']');

			if (e)
				*e = '\0';
			in = strcmp(cu_trim(l + 1), section) == 0;
			if (in && section_seen)
				*section_seen = true;
			continue;
		}
		if (!in)
			continue;
		eq = strchr(l, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (strcmp(cu_trim(l), key) == 0) {
			*out = strdup(cu_trim(eq + 1));
			ret = *out ? 1 : -ENOMEM;
			break;
		}
	}
	if (b.data)
		OPENSSL_cleanse(b.data, b.len);
	buf_free(&b);
	return ret;
}

static char *home_path(const char *env, const char *rel)
{
	const char *v = getenv(env), *home = getenv("HOME");
	char *out = NULL;

	if (v && *v)
		return strdup(v);
	if (!home || !*home)
		return NULL;
	if (asprintf(&out, "%s/%s", home, rel) < 0)
		return NULL;
	return out;
}

static char *env_dup(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? strdup(v) : NULL;
}

static int s3_load_config(struct s3 *s)
{
	const char *profile_env = getenv("AWS_PROFILE");
	const char *profile;
	char *cred_file = NULL, *conf_file = NULL, *conf_section = NULL;
	bool seen = false;
	int ret = 0;

	if (profile_env && !*profile_env)
		profile_env = NULL; /* set but empty: as if unset */
	profile = profile_env ? profile_env : "default";
	s->access_key = env_dup("AWS_ACCESS_KEY_ID");
	s->secret_key = env_dup("AWS_SECRET_ACCESS_KEY");
	if (s->access_key && s->secret_key) {
		s->token = env_dup("AWS_SESSION_TOKEN");
		profile_env = NULL; /* the environment wins */
	} else {
		free(s->access_key);
		free(s->secret_key);
		s->access_key = s->secret_key = NULL;
	}
	s->region = env_dup("AWS_REGION");
	if (!s->region)
		s->region = env_dup("AWS_DEFAULT_REGION");

	cred_file = home_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	conf_file = home_path("AWS_CONFIG_FILE", ".aws/config");
	if (strcmp(profile, "default") == 0)
		conf_section = strdup("default");
	else if (asprintf(&conf_section, "profile %s", profile) < 0)
		conf_section = NULL;
	if (!conf_section) {
		ret = -ENOMEM;
		goto out;
	}
	if (!s->access_key) {
		const char *files[2] = { cred_file, conf_file };
		const char *sections[2] = { profile, conf_section };

		for (int i = 0; i < 2 && !s->access_key; i++) {
			if (!files[i])
				continue;
			ret = ini_get(files[i], sections[i],
				      "aws_access_key_id", &s->access_key,
				      &seen);
			if (ret < 0)
				goto out;
			ret = ini_get(files[i], sections[i],
				      "aws_secret_access_key", &s->secret_key,
				      &seen);
			if (ret < 0)
				goto out;
			if (!s->access_key || !s->secret_key) {
				free(s->access_key);
				free(s->secret_key);
				s->access_key = s->secret_key = NULL;
				continue;
			}
			ret = ini_get(files[i], sections[i],
				      "aws_session_token", &s->token, &seen);
			if (ret < 0)
				goto out;
		}
	}
	if (!s->region && conf_file) {
		ret = ini_get(conf_file, conf_section, "region", &s->region,
			      &seen);
		if (ret < 0)
			goto out;
	}
	if (!s->access_key && profile_env && !seen) {
		prov_set_error("s3: AWS_PROFILE '%s' is not in %s or %s",
			       profile, cred_file ? cred_file : "(no file)",
			       conf_file ? conf_file : "(no file)");
		ret = -EINVAL;
		goto out;
	}
	if (!s->region)
		s->region = strdup("us-east-1");
	ret = s->region ? 0 : -ENOMEM;
out:
	free(cred_file);
	free(conf_file);
	free(conf_section);
	return ret;
}

/* Host (and port) of an "http(s)://host[:port][/...]" URL. */
static char *url_host(const char *url)
{
	const char *h = strstr(url, "://"), *e;

	if (!h)
		return NULL;
	h += 3;
	e = h + strcspn(h, "/?#");
	return strndup(h, (size_t)(e - h));
}

static int s3_setup_endpoint(struct prov *p, struct s3 *s)
{
	const char *ep = getenv("AWS_ENDPOINT_URL_S3");
	char *base = NULL;

	if (!ep || !*ep)
		ep = getenv("AWS_ENDPOINT_URL");
	if (!ep || !*ep)
		ep = getenv("S3_ENDPOINT");
	if (ep && *ep) {
		size_t n;

		if (strstr(ep, "://"))
			base = strdup(ep);
		else if (asprintf(&base, "https://%s", ep) < 0)
			base = NULL;
		if (!base)
			return -ENOMEM;
		n = strlen(base);
		while (n > 0 && base[n - 1] == '/')
			base[--n] = '\0';
		if (strncmp(base, "http://", 7) != 0 &&
		    strncmp(base, "https://", 8) != 0) {
			prov_set_error("s3: endpoint must be http(s)://...");
			free(base);
			return -EINVAL;
		}
		s->base = base;
		if (asprintf(&s->path_base, "/%s", p->bucket) < 0)
			s->path_base = NULL;
	} else if (strchr(p->bucket, '.')) {
		/* dotted buckets break the wildcard certificate */
		if (asprintf(&s->base, "https://s3.%s.amazonaws.com",
			     s->region) < 0)
			s->base = NULL;
		if (asprintf(&s->path_base, "/%s", p->bucket) < 0)
			s->path_base = NULL;
	} else {
		if (asprintf(&s->base, "https://%s.s3.%s.amazonaws.com",
			     p->bucket, s->region) < 0)
			s->base = NULL;
		s->path_base = strdup("");
	}
	if (!s->base || !s->path_base)
		return -ENOMEM;
	s->host = url_host(s->base);
	if (!s->host)
		return -ENOMEM;
	/* an endpoint with a path ("http://h/s3"): keep it in path_base */
	{
		char *path = strchr(strstr(s->base, "://") + 3, '/');

		if (path) {
			char *np = NULL;

			if (asprintf(&np, "%s%s", path, s->path_base) < 0)
				return -ENOMEM;
			free(s->path_base);
			s->path_base = np;
			*path = '\0';
		}
	}
	return 0;
}

int s3_config_load(struct prov *p, struct s3 *s)
{
	int ret;

	ret = s3_load_config(s);
	if (ret == 0)
		ret = s3_setup_endpoint(p, s);
	if (ret < 0)
		return ret;
	s->part_size = prov_env_u64("ASSETFS_S3_PART_SIZE", S3_PART_SIZE);
	if (s->part_size < (5ull << 20))
		s->part_size = 5ull << 20;
	s->multipart_threshold = prov_env_u64("ASSETFS_MULTIPART_THRESHOLD",
					      S3_MULTIPART_THRESHOLD);
	s->page_size = (int)prov_env_u64("ASSETFS_LIST_PAGE_SIZE", 0);
	if (s->page_size > 1000)
		s->page_size = 1000;
	return 0;
}

void s3_config_free(struct s3 *s)
{
	free(s->base);
	free(s->host);
	free(s->path_base);
	free(s->region);
	if (s->secret_key)
		OPENSSL_cleanse(s->secret_key, strlen(s->secret_key));
	free(s->access_key);
	free(s->secret_key);
	free(s->token);
}
