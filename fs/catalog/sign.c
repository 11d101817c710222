/*
 * sign - Ed25519 keys and signatures through OpenSSL 3's EVP interface
 * (see sign.h).
 *
 * Ed25519 is a one-shot algorithm: EVP_DigestSign()/EVP_DigestVerify()
 * with a NULL digest over the whole message, no streaming. OpenSSL reports
 * failures on its thread-local error queue; sign_ossl_err() is the one
 * place that reads it, clears it and picks the errno, so no stale entry
 * leaks into a later, unrelated message.
 *
 * Threads: keys are read-only after loading; every call builds its own
 * EVP_MD_CTX. Errors: negative errno, messages in @err.
 */
#include "fs/catalog/sign.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/buf.h"
#include "common/fileutil.h"
#include "common/log.h"

struct sign_key {
	EVP_PKEY *pkey; /* owned */
	bool priv;
	char *name; /* owned: path or label, for messages */
};

/*
 * The one mapping of OpenSSL failures: drain the error queue, keep the
 * last reason for the message (into @reason, may be NULL), and return
 * -ENOMEM for an allocation failure, else @fallback.
 */
static int sign_ossl_err(int fallback, char *reason, size_t rlen)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (reason && rlen) {
		const char *r = last ? ERR_reason_error_string(last) : NULL;

		snprintf(reason, rlen, "%s", r ? r : "unknown OpenSSL error");
	}
	if (last && ERR_GET_REASON(last) == ERR_R_MALLOC_FAILURE)
		return -ENOMEM;
	return fallback;
}

static int sign_key_wrap(EVP_PKEY *pkey, bool priv, const char *name,
			 struct sign_key **out)
{
	struct sign_key *k;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		goto fail;
	k->name = strdup(name ? name : "(key)");
	if (!k->name)
		goto fail;
	k->pkey = pkey;
	k->priv = priv;
	*out = k;
	return 0;
fail:
	if (k)
		free(k->name);
	free(k);
	EVP_PKEY_free(pkey);
	return -ENOMEM;
}

void sign_key_free(struct sign_key **k)
{
	if (!k || !*k)
		return;
	EVP_PKEY_free((*k)->pkey);
	free((*k)->name);
	free(*k);
	*k = NULL;
}

const char *sign_key_name(const struct sign_key *k)
{
	return k->name;
}

int sign_key_is_private(const struct sign_key *k)
{
	return k->priv;
}

/* PEM pass-phrase callback: encrypted keys are refused, never prompted. */
static int sign_no_pass(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(bool *)u = true;
	return -1;
}

static int sign_load(const char *path, bool priv, struct sign_key **out,
		     char *err, size_t errlen)
{
	const char *what = priv ? "an Ed25519 private key (PEM PKCS#8, "
				  "\"BEGIN PRIVATE KEY\")"
				: "an Ed25519 public key (PEM "
				  "SubjectPublicKeyInfo, \"BEGIN PUBLIC KEY\")";
	char reason[256];
	EVP_PKEY *pkey = NULL;
	bool asked = false;
	struct buf b;
	BIO *bio = NULL;
	int ret;

	*out = NULL;
	buf_init(&b, SIGN_KEY_MAX_BYTES);
	ret = file_read_capped(path, SIGN_KEY_MAX_BYTES, &b);
	if (ret == -EFBIG) {
		log_errbuf(err, errlen, "%s: larger than %u bytes: not a key",
			   path, SIGN_KEY_MAX_BYTES);
		goto out;
	}
	if (ret < 0) {
		log_errbuf(err, errlen, "cannot read key %s: %s", path,
			   strerror(-ret));
		goto out;
	}
	bio = BIO_new_mem_buf(b.data ? b.data : "", (int)b.len);
	if (!bio) {
		ret = sign_ossl_err(-ENOMEM, NULL, 0);
		log_errbuf(err, errlen, "out of memory");
		goto out;
	}
	if (priv)
		pkey = PEM_read_bio_PrivateKey(bio, NULL, sign_no_pass, &asked);
	else
		pkey = PEM_read_bio_PUBKEY(bio, NULL, sign_no_pass, &asked);
	if (!pkey) {
		ret = sign_ossl_err(-EINVAL, reason, sizeof(reason));
		if (ret == -EINVAL && asked)
			log_errbuf(err, errlen,
				   "%s: an encrypted key; assetfs needs an "
				   "unencrypted %s",
				   path, what);
		else if (ret == -EINVAL && !priv && b.data &&
			 strstr(b.data, "PRIVATE KEY-----"))
			log_errbuf(err, errlen,
				   "%s: a private key; verify with the public "
				   "key (%s" SIGN_PUB_SUFFIX " from 'assetfs "
				   "keygen %s')",
				   path, path, path);
		else if (ret == -EINVAL)
			log_errbuf(err, errlen, "%s: not %s (%s)", path, what,
				   reason);
		else
			log_errbuf(err, errlen, "out of memory");
		goto out;
	}
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
		log_errbuf(err, errlen, "%s: a %s key, not %s", path,
			   EVP_PKEY_get0_type_name(pkey)
			       ? EVP_PKEY_get0_type_name(pkey)
			       : "non-Ed25519",
			   what);
		ret = -EINVAL;
		goto out;
	}
	ret = sign_key_wrap(pkey, priv, path, out);
	pkey = NULL; /* consumed */
	if (ret < 0)
		log_errbuf(err, errlen, "out of memory");
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	if (b.data)
		OPENSSL_cleanse(b.data, b.len);
	buf_free(&b);
	ERR_clear_error();
	return ret;
}

int sign_load_private(const char *path, struct sign_key **out, char *err,
		      size_t errlen)
{
	return sign_load(path, true, out, err, errlen);
}

int sign_load_public(const char *path, struct sign_key **out, char *err,
		     size_t errlen)
{
	return sign_load(path, false, out, err, errlen);
}

static int sign_from_raw(const uint8_t raw[SIGN_RAW_KEY_LEN], bool priv,
			 const char *label, struct sign_key **out)
{
	EVP_PKEY *pkey;

	*out = NULL;
	pkey = priv ? EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw,
						   SIGN_RAW_KEY_LEN)
		    : EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw,
						  SIGN_RAW_KEY_LEN);
	if (!pkey)
		return sign_ossl_err(-EINVAL, NULL, 0);
	return sign_key_wrap(pkey, priv, label, out);
}

int sign_public_from_raw(const uint8_t pub[SIGN_RAW_KEY_LEN], const char *label,
			 struct sign_key **out)
{
	return sign_from_raw(pub, false, label, out);
}

int sign_private_from_raw(const uint8_t seed[SIGN_RAW_KEY_LEN],
			  const char *label, struct sign_key **out)
{
	return sign_from_raw(seed, true, label, out);
}

int sign_bytes(const struct sign_key *k, const void *data, size_t len,
	       uint8_t sig[SIGN_SIG_LEN])
{
	EVP_MD_CTX *ctx = NULL;
	size_t siglen = SIGN_SIG_LEN;
	int ret = 0;

	if (!k->priv)
		return -EINVAL;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return sign_ossl_err(-ENOMEM, NULL, 0);
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, data, len) != 1 ||
	    siglen != SIGN_SIG_LEN)
		ret = sign_ossl_err(-EIO, NULL, 0);
	EVP_MD_CTX_free(ctx);
	return ret;
}

int sign_verify(const struct sign_key *k, const void *data, size_t len,
		const void *sig, size_t siglen)
{
	EVP_MD_CTX *ctx = NULL;
	int ret, ok;

	if (siglen != SIGN_SIG_LEN)
		return -EBADMSG;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return sign_ossl_err(-ENOMEM, NULL, 0);
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) != 1) {
		ret = sign_ossl_err(-EIO, NULL, 0);
		goto out;
	}
	ok = EVP_DigestVerify(ctx, sig, siglen, data, len);
	/* 0: does not verify; < 0: OpenSSL also calls a malformed
	   signature (e.g. S >= L) an error. Both mean "not signed by k". */
	ret = ok == 1 ? 0 : sign_ossl_err(-EBADMSG, NULL, 0);
out:
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ret;
}

/*
 * Create @path with O_EXCL and @mode and write @len bytes. On failure the
 * file is removed. Returns 0 or a negative errno (message in @err).
 */
static int sign_write_new(const char *path, mode_t mode, const void *data,
			  size_t len, char *err, size_t errlen)
{
	int fd, ret;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		ret = -errno;
		log_errbuf(err, errlen, "cannot create %s: %s%s", path,
			   strerror(-ret),
			   ret == -EEXIST ? " (a key is never overwritten; "
					    "remove it or pick another path)"
					  : "");
		return ret;
	}
	ret = write_all(fd, data, len);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret < 0) {
		log_errbuf(err, errlen, "cannot write %s: %s", path,
			   strerror(-ret));
		unlink(path);
	}
	return ret;
}

/* PEM of @pkey's private (PKCS#8) or public (SPKI) half, appended to @out. */
static int sign_pem(EVP_PKEY *pkey, bool priv, struct buf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;
	int ret;

	if (!bio)
		return sign_ossl_err(-ENOMEM, NULL, 0);
	/* PEM_write_bio_PrivateKey writes PKCS#8 in OpenSSL 3. */
	if ((priv ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL,
					     NULL)
		  : PEM_write_bio_PUBKEY(bio, pkey)) != 1) {
		ret = sign_ossl_err(-EIO, NULL, 0);
		goto out;
	}
	n = BIO_get_mem_data(bio, &p);
	ret = n > 0 ? buf_append(out, p, (size_t)n) : -EIO;
out:
	BIO_free(bio);
	return ret;
}

int sign_keygen(const char *path, char *err, size_t errlen)
{
	char pub[4096];
	struct buf privpem, pubpem;
	EVP_PKEY *pkey = NULL;
	struct stat st;
	int ret;

	buf_init(&privpem, 0);
	buf_init(&pubpem, 0);
	if ((size_t)snprintf(pub, sizeof(pub), "%s" SIGN_PUB_SUFFIX, path) >=
	    sizeof(pub)) {
		log_errbuf(err, errlen, "key path too long: %s", path);
		return -ENAMETOOLONG;
	}
	/* Check both first: a half-made pair is worse than none. */
	if (lstat(pub, &st) == 0) {
		log_errbuf(err, errlen,
			   "cannot create %s: it exists (a key is never "
			   "overwritten; remove it or pick another path)",
			   pub);
		return -EEXIST;
	}
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!pkey) {
		ret = sign_ossl_err(-EIO, NULL, 0);
		log_errbuf(err, errlen, "cannot generate an Ed25519 key");
		goto out;
	}
	ret = sign_pem(pkey, true, &privpem);
	if (ret == 0)
		ret = sign_pem(pkey, false, &pubpem);
	if (ret < 0) {
		log_errbuf(err, errlen, "cannot encode the key as PEM");
		goto out;
	}
	ret =
	    sign_write_new(path, 0600, privpem.data, privpem.len, err, errlen);
	if (ret < 0)
		goto out;
	ret = sign_write_new(pub, 0644, pubpem.data, pubpem.len, err, errlen);
	if (ret < 0)
		unlink(path);
out:
	if (privpem.data)
		OPENSSL_cleanse(privpem.data, privpem.len);
	buf_free(&privpem);
	buf_free(&pubpem);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return ret;
}
