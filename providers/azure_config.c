/*
 * azure_config - where the az:// backend gets its account, key or SAS and
 * endpoint: the connection string or the account variables, read the way
 * the Azure tools read them (see azure.c). Runs once at open.
 *
 * The decoded key and the SAS live in struct az only; the copies made
 * while parsing are wiped. Errors: 0 or a negative errno.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "providers/azure_int.h"
#include "providers/curl_util.h"

#define AZ_BLOCK_SIZE (8ull << 20)
#define AZ_PUT_THRESHOLD (64ull << 20)
#define AZ_CONN_MAX 8192
/* Azurite's published development account (not a secret). */
#define AZ_DEV_ACCOUNT "devstoreaccount1"
#define AZ_DEV_KEY                                                        \
	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/" \
	"K1SZFPTOtr/KBHBeksoGMGw=="


/* Value of @name in a "k=v;k=v" connection string, or NULL (fresh). */
static char *conn_get(const char *cs, const char *name)
{
	size_t nl = strlen(name);
	const char *p = cs;

	while (p && *p) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len > 0 && isspace((unsigned char)*p)) {
			p++;
			len--;
		}
		if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == '=')
			return strndup(p + nl + 1, len - nl - 1);
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

static int az_set_key(struct az *a, const char *b64)
{
	int ret = cu_base64_decode(&a->key, b64);

	if (ret < 0 || a->key.len == 0) {
		prov_set_error("az: the account key is not valid base64");
		return -EINVAL;
	}
	return 0;
}

static int az_load_config(struct az *a)
{
	const char *cs = getenv("AZURE_STORAGE_CONNECTION_STRING");
	char *key = NULL, *proto = NULL, *suffix = NULL, *dev = NULL;
	int ret = 0;

	buf_init(&a->key, 1024);
	if (cs && *cs) {
		if (strlen(cs) > AZ_CONN_MAX) {
			prov_set_error("az: AZURE_STORAGE_CONNECTION_STRING is "
				       "too long");
			return -EINVAL;
		}
		dev = conn_get(cs, "UseDevelopmentStorage");
		if (dev && strcasecmp(dev, "true") == 0) {
			a->account = strdup(AZ_DEV_ACCOUNT);
			a->endpoint = strdup("http://127.0.0.1:10000/"
					     AZ_DEV_ACCOUNT);
			key = strdup(AZ_DEV_KEY);
		} else {
			a->account = conn_get(cs, "AccountName");
			a->endpoint = conn_get(cs, "BlobEndpoint");
			key = conn_get(cs, "AccountKey");
			a->sas = conn_get(cs, "SharedAccessSignature");
			proto = conn_get(cs, "DefaultEndpointsProtocol");
			suffix = conn_get(cs, "EndpointSuffix");
		}
	} else {
		a->account = getenv("AZURE_STORAGE_ACCOUNT") ?
				     strdup(getenv("AZURE_STORAGE_ACCOUNT")) :
				     NULL;
		if (getenv("AZURE_STORAGE_KEY") && *getenv("AZURE_STORAGE_KEY"))
			key = strdup(getenv("AZURE_STORAGE_KEY"));
		if (getenv("AZURE_STORAGE_SAS_TOKEN") &&
		    *getenv("AZURE_STORAGE_SAS_TOKEN"))
			a->sas = strdup(getenv("AZURE_STORAGE_SAS_TOKEN"));
	}
	if (a->sas && a->sas[0] == '?')
		memmove(a->sas, a->sas + 1, strlen(a->sas));
	if (key && *key) {
		ret = az_set_key(a, key);
		if (ret < 0)
			goto out;
	}
	if (!a->endpoint) {
		if (!a->account || !*a->account) {
			prov_set_error("az: no account: set "
				       "AZURE_STORAGE_CONNECTION_STRING or "
				       "AZURE_STORAGE_ACCOUNT");
			ret = -EINVAL;
			goto out;
		}
		if (asprintf(&a->endpoint, "%s://%s.blob.%s",
			     proto ? proto : "https", a->account,
			     suffix ? suffix : "core.windows.net") < 0)
			a->endpoint = NULL;
	}
	if (!a->endpoint) {
		ret = -ENOMEM;
		goto out;
	}
	while (*a->endpoint && a->endpoint[strlen(a->endpoint) - 1] == '/')
		a->endpoint[strlen(a->endpoint) - 1] = '\0';
	if (strncmp(a->endpoint, "http://", 7) != 0 &&
	    strncmp(a->endpoint, "https://", 8) != 0) {
		prov_set_error("az: BlobEndpoint must be http(s)://...");
		ret = -EINVAL;
		goto out;
	}
	if (a->key.len && (!a->account || !*a->account)) {
		prov_set_error("az: an AccountKey needs an AccountName");
		ret = -EINVAL;
	}
out:
	if (key)
		OPENSSL_cleanse(key, strlen(key));
	free(key);
	free(proto);
	free(suffix);
	free(dev);
	return ret;
}

int az_config_load(struct az *a)
{
	int ret = az_load_config(a);

	if (ret < 0)
		return ret;
	a->block_size = prov_env_u64("ASSETFS_AZ_BLOCK_SIZE", AZ_BLOCK_SIZE);
	a->put_threshold = prov_env_u64("ASSETFS_MULTIPART_THRESHOLD",
					AZ_PUT_THRESHOLD);
	a->page_size = (int)prov_env_u64("ASSETFS_LIST_PAGE_SIZE", 0);
	if (a->page_size > 5000)
		a->page_size = 5000;
	return 0;
}

void az_config_free(struct az *a)
{
	free(a->endpoint);
	free(a->account);
	if (a->key.data)
		OPENSSL_cleanse(a->key.data, a->key.len);
	buf_free(&a->key);
	if (a->sas)
		OPENSSL_cleanse(a->sas, strlen(a->sas));
	free(a->sas);
}
