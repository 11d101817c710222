/*
 * catalog_sig - signatures of the `.meta` copies the catalog keeps. With a
 * verify key (the store's, loaded again by the catalog), a `.meta` is used
 * only once store_get_meta() verified it; its `.meta.sig` is then kept
 * (hex) under "assetfs:sig:NAME/VERSION.meta.sig" beside the document.
 * The documents are shared by every mount on the cache dir, with or
 * without a key, so nothing in them is trusted: offline, a cached `.meta`
 * is used only if the cached signature verifies its exact bytes with this
 * mount's key. -EBADMSG (a refused signature) is never a store outage, so
 * it never falls back to a cached copy.
 *
 * Threads: safe concurrently (no shared state of its own). Errors: 0 or
 * -EBADMSG with a message in @err.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/digest.h"
#include "common/log.h"
#include "fs/catalog/catalog_int.h"

/* Decode exactly SIGN_SIG_LEN bytes of hex. 0 or -EBADMSG. */
static int sig_unhex(const char *s, size_t len, uint8_t out[SIGN_SIG_LEN])
{
	size_t i;

	if (!s || len != 2 * SIGN_SIG_LEN)
		return -EBADMSG;
	for (i = 0; i < SIGN_SIG_LEN; i++) {
		int hi = digest_hexval(s[2 * i]);
		int lo = digest_hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EBADMSG;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int sig_doc_key(const char *name, const char *version, char *buf,
		       size_t len)
{
	char skey[STORE_KEY_MAX];
	int ret = store_key_sig(name, version, skey, sizeof(skey));

	if (ret < 0)
		return ret;
	ret = snprintf(buf, len, "%s%s", CAT_OBJ_SIG, skey);
	return ret < 0 || (size_t)ret >= len ? -ENAMETOOLONG : 0;
}

int cat_keep_signed(struct catalog *c, const char *name, const char *version,
		    const char *key, const struct buf *raw, const char *etag,
		    char *err, size_t errlen)
{
	char skey[STORE_KEY_MAX], dkey[STORE_KEY_MAX + sizeof(CAT_OBJ_SIG)];
	char hex[2 * SIGN_SIG_LEN + 1];
	struct buf sig;
	int ret;

	buf_init(&sig, CAT_SIG_MAX);
	if (store_key_sig(name, version, skey, sizeof(skey)) < 0 ||
	    sig_doc_key(name, version, dkey, sizeof(dkey)) < 0) {
		ret = 0; /* cannot be kept; still verified */
		goto out;
	}
	stats_inc(c->stats, STAT_STORE_REQUESTS);
	ret = prov_get_buf(store_prov(c->st), skey, CAT_SIG_MAX, &sig, NULL);
	if (ret < 0 && cat_store_down(ret)) {
		log_debug("cannot keep %s for offline use: %s", skey,
			  strerror(-ret));
		ret = 0;
		goto out;
	}
	if (ret == 0 && sig.len == SIGN_SIG_LEN)
		ret = sign_verify(c->verify, raw->data ? raw->data : "",
				  raw->len, sig.data, sig.len);
	else
		ret = -EBADMSG; /* gone, oversized or not a signature */
	if (ret == -EBADMSG) {
		snprintf(err, errlen,
			 "%s:%s: .meta signature changed while it was read "
			 "(no longer verifies with %s)",
			 name, version, sign_key_name(c->verify));
		goto out;
	}
	if (ret < 0) { /* OpenSSL could not check: do not keep */
		ret = 0;
		goto out;
	}
	digest_hex_encode((const uint8_t *)sig.data, SIGN_SIG_LEN, hex);
	cat_doc_put(c, dkey, hex, 2 * SIGN_SIG_LEN, NULL);
	cat_doc_put(c, key, raw->data, raw->len, etag);
out:
	buf_free(&sig);
	return ret;
}

int cat_cached_sig_ok(struct catalog *c, const char *name, const char *version,
		      const struct buf *raw, char *err, size_t errlen)
{
	char dkey[STORE_KEY_MAX + sizeof(CAT_OBJ_SIG)];
	uint8_t sig[SIGN_SIG_LEN];
	struct buf hex;
	int ret;

	buf_init(&hex, 2 * SIGN_SIG_LEN + 16);
	ret = sig_doc_key(name, version, dkey, sizeof(dkey));
	if (ret == 0)
		ret = cat_doc_get(c, dkey, &hex);
	if (ret == 0)
		ret = sig_unhex(hex.data, hex.len, sig);
	if (ret == 0)
		ret = sign_verify(c->verify, raw->data ? raw->data : "",
				  raw->len, sig, sizeof(sig));
	if (ret == -ENOENT)
		snprintf(err, errlen,
			 "%s:%s: store unreachable and no signature of the "
			 "cached .meta is kept to verify with %s",
			 name, version, sign_key_name(c->verify));
	else if (ret < 0)
		snprintf(err, errlen,
			 "%s:%s: store unreachable and the cached .meta does "
			 "not verify with %s",
			 name, version, sign_key_name(c->verify));
	buf_free(&hex);
	return ret < 0 ? -EBADMSG : 0;
}
