/*
 * sign - Ed25519 signatures over `.meta` documents (DESIGN §2, §7).
 *
 * `<name>/<version>.meta.sig` holds the raw 64-byte Ed25519 signature
 * (RFC 8032, pure Ed25519: no pre-hash, no context) of the exact bytes of
 * `<name>/<version>.meta`. The manifest inside `.meta` carries the SHA-256
 * of every block of every file, so a verified `.meta` vouches for the data.
 *
 * Keys are PEM files: the private key as PKCS#8 ("BEGIN PRIVATE KEY",
 * unencrypted, mode 0600), the public key as SubjectPublicKeyInfo
 * ("BEGIN PUBLIC KEY") in "<KEY>.pub" — what `openssl genpkey -algorithm
 * ed25519` and `openssl pkey -pubout` make and read. Key files are capped
 * at SIGN_KEY_MAX_BYTES.
 *
 * Built on OpenSSL 3's EVP interface; OpenSSL's error queue is read and
 * cleared in one place (sign.c) and turned into a negative errno and a
 * one-line message.
 *
 * Threads: a struct sign_key is immutable once loaded and may be used by
 * any number of threads at once (each call makes its own EVP context).
 * Errors: 0 or a negative errno; where there is an @err it receives a
 * one-line message naming the file concerned.
 */
#ifndef ASSETFS_FS_SIGN_H
#define ASSETFS_FS_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_SIG_LEN 64		 /* an Ed25519 signature */
#define SIGN_RAW_KEY_LEN 32	 /* a raw Ed25519 public key or seed */
#define SIGN_KEY_MAX_BYTES 16384 /* cap on a key file */
#define SIGN_SIG_SUFFIX ".sig"	 /* "<name>/<version>.meta.sig" */
#define SIGN_PUB_SUFFIX ".pub"	 /* keygen's public key: "<KEY>.pub" */

struct sign_key;

/*
 * Make a new key pair: the private key at @path (created 0600, PKCS#8
 * PEM) and the public key at "@path.pub" (created 0644 less the umask,
 * SubjectPublicKeyInfo PEM). Neither file may exist (-EEXIST): a signing
 * key is never overwritten. On failure nothing is left behind. Returns 0,
 * -EEXIST, -ENAMETOOLONG, the errno of open/write, or -EIO (OpenSSL).
 */
int sign_keygen(const char *path, char *err, size_t errlen);

/*
 * Load the private key at @path (PEM PKCS#8 Ed25519, unencrypted) or the
 * public key (PEM SubjectPublicKeyInfo Ed25519). A key of another type,
 * an encrypted key, or a file that is not PEM is -EINVAL with a message
 * saying what was expected; -EFBIG over SIGN_KEY_MAX_BYTES; the errno of
 * open/read (-ENOENT, -EACCES). *@out is owned by the caller (free with
 * sign_key_free()) and remembers @path for messages.
 */
int sign_load_private(const char *path, struct sign_key **out, char *err,
		      size_t errlen);
int sign_load_public(const char *path, struct sign_key **out, char *err,
		     size_t errlen);

/*
 * Keys from raw bytes (RFC 8032 test vectors, tests): a 32-byte public key
 * or a 32-byte private seed. @label names the key in messages (copied).
 * Returns 0, -EINVAL (OpenSSL refused the bytes) or -ENOMEM.
 */
int sign_public_from_raw(const uint8_t pub[SIGN_RAW_KEY_LEN], const char *label,
			 struct sign_key **out);
int sign_private_from_raw(const uint8_t seed[SIGN_RAW_KEY_LEN],
			  const char *label, struct sign_key **out);

/* NULL-safe; sets *@k to NULL. */
void sign_key_free(struct sign_key **k);

/* The path (or label) the key was loaded from; borrowed. */
const char *sign_key_name(const struct sign_key *k);

/* Does @k hold a private key (can it sign)? */
int sign_key_is_private(const struct sign_key *k);

/*
 * Sign @len bytes at @data with private key @k into @sig. Returns 0,
 * -EINVAL if @k is a public key, -ENOMEM or -EIO (OpenSSL failed).
 */
int sign_bytes(const struct sign_key *k, const void *data, size_t len,
	       uint8_t sig[SIGN_SIG_LEN]);

/*
 * Check that @sig (@siglen bytes) is @k's signature of @data. @k may be a
 * public or a private key. Returns 0 if it verifies, -EBADMSG if it does
 * not (wrong key, altered bytes, or a signature that is not 64 bytes),
 * -ENOMEM or -EIO (OpenSSL could not run the check).
 */
int sign_verify(const struct sign_key *k, const void *data, size_t len,
		const void *sig, size_t siglen);

#endif
