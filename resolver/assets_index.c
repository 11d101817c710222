/*
 * assets_index - see assets_index.h. The names array is kept sorted by
 * strcmp() and unique, so lookups and inserts are binary searches.
 */
#include "resolver/assets_index.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/resolver_int.h"
#include "resolver/spec.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void assets_index_clear(struct assets_index *ix)
{
	if (!ix)
		return;
	for (size_t i = 0; i < ix->n; i++)
		free(ix->names[i]);
	free(ix->names);
	ix->names = NULL;
	ix->n = 0;
	ix->n_invalid = 0;
}

int assets_index_parse(const char *json, size_t len, struct assets_index *out,
		       char *err, size_t errlen)
{
	cJSON *root = NULL, *arr, *it;
	size_t n, w;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (len > ASSETS_INDEX_MAX_BYTES) {
		resolver_err(
		    err, errlen,
		    "assets.index of %zu bytes is over the %u byte cap", len,
		    ASSETS_INDEX_MAX_BYTES);
		return -EFBIG;
	}
	ret =
	    resolver_json_parse(json, len, "assets.index", &root, err, errlen);
	if (ret < 0)
		return ret;
	if (!cJSON_IsObject(root)) {
		resolver_err(err, errlen, "assets.index is not a JSON object");
		ret = -EINVAL;
		goto out;
	}
	arr = cJSON_GetObjectItemCaseSensitive(root, "assets");
	if (!cJSON_IsArray(arr)) {
		resolver_err(err, errlen, "assets.index: \"assets\" %s",
			     arr ? "is not an array" : "is missing");
		ret = -EINVAL;
		goto out;
	}
	n = (size_t)cJSON_GetArraySize(arr);
	if (n) {
		out->names = calloc(n, sizeof(*out->names));
		if (!out->names)
			goto nomem;
	}
	cJSON_ArrayForEach(it, arr)
	{
		if (out->n >= n)
			break;
		if (!cJSON_IsString(it) ||
		    spec_check_name(it->valuestring, NULL, 0) < 0) {
			out->n_invalid++;
			continue;
		}
		out->names[out->n] = strdup(it->valuestring);
		if (!out->names[out->n])
			goto nomem;
		out->n++;
	}
	if (out->n > 1)
		qsort(out->names, out->n, sizeof(*out->names), cmp_str);
	w = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (w > 0 && strcmp(out->names[w - 1], out->names[i]) == 0) {
			free(out->names[i]);
			continue;
		}
		out->names[w++] = out->names[i];
	}
	out->n = w;
	goto out;
nomem:
	resolver_err(err, errlen, "out of memory");
	ret = -ENOMEM;
out:
	cJSON_Delete(root);
	if (ret < 0)
		assets_index_clear(out);
	return ret;
}

int assets_index_add(struct assets_index *ix, const char *name)
{
	size_t lo = 0, hi = ix->n;
	char **nv, *copy;

	if (spec_check_name(name, NULL, 0) < 0)
		return -EINVAL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ix->names[mid], name);

		if (c == 0)
			return 0;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	nv = realloc(ix->names, (ix->n + 1) * sizeof(*nv));
	if (!nv) {
		free(copy);
		return -ENOMEM;
	}
	ix->names = nv;
	memmove(ix->names + lo + 1, ix->names + lo,
		(ix->n - lo) * sizeof(*ix->names));
	ix->names[lo] = copy;
	ix->n++;
	return 0;
}

int assets_index_format(const struct assets_index *ix, struct buf *out)
{
	int ret;

	/* Valid names hold only [A-Za-z0-9._/-]: nothing to escape. */
	ret = buf_puts(out, "{\"assets\": [");
	for (size_t i = 0; ret == 0 && i < ix->n; i++)
		ret = buf_printf(out, "%s\"%s\"", i ? ", " : "", ix->names[i]);
	if (ret == 0)
		ret = buf_puts(out, "]}\n");
	return ret;
}
