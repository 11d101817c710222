/*
 * test_sign - fs/sign.c: RFC 8032 Ed25519 vectors through sign_verify()
 * and sign_bytes(), keygen's files and modes, round trips, and the
 * refusals: a flipped byte, a wrong key, a truncated signature, malformed
 * and wrong-kind key files with their messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/catalog/sign.h"
#include "tests/unit/test.h"

/* RFC 8032 section 7.1, TESTs 1-3 and SHA(abc). */
static const struct {
	const char *seed, *pub, *msg, *sig;
} vectors[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555f"
     "b8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da08"
     "5ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18"
     "ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    {"833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
     "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"},
};

/* Decode @hex into @out; returns the byte count. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	if (n > cap)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return 0;
		out[i] = (uint8_t)b;
	}
	return n;
}

test(sign_rfc8032_vectors_verify)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		uint8_t pub[32], sig[64], msg[64];
		size_t ml;
		struct sign_key *k = NULL;

		CHECK_INT(unhex(vectors[i].pub, pub, sizeof(pub)), 32);
		CHECK_INT(unhex(vectors[i].sig, sig, sizeof(sig)), 64);
		ml = unhex(vectors[i].msg, msg, sizeof(msg));
		CHECK_INT(ml, strlen(vectors[i].msg) / 2);
		CHECK_INT(sign_public_from_raw(pub, "rfc8032", &k), 0);
		if (!k)
			continue;
		CHECK_INT(sign_verify(k, msg, ml, sig, sizeof(sig)), 0);
		/* one flipped bit in the signature, then in the message */
		sig[5] ^= 0x01;
		CHECK_INT(sign_verify(k, msg, ml, sig, sizeof(sig)), -EBADMSG);
		sig[5] ^= 0x01;
		if (ml) {
			msg[0] ^= 0x80;
			CHECK_INT(sign_verify(k, msg, ml, sig, sizeof(sig)),
				  -EBADMSG);
			msg[0] ^= 0x80;
		}
		/* a truncated signature is not a signature */
		CHECK_INT(sign_verify(k, msg, ml, sig, 63), -EBADMSG);
		sign_key_free(&k);
		CHECK(k == NULL);
	}
}

test(sign_rfc8032_vectors_sign)
{
	/* Ed25519 is deterministic: the seed must give the RFC's bytes. */
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		uint8_t seed[32], want[64], got[64], msg[64];
		size_t ml;
		struct sign_key *k = NULL;

		unhex(vectors[i].seed, seed, sizeof(seed));
		unhex(vectors[i].sig, want, sizeof(want));
		ml = unhex(vectors[i].msg, msg, sizeof(msg));
		CHECK_INT(sign_private_from_raw(seed, "seed", &k), 0);
		if (!k)
			continue;
		CHECK(sign_key_is_private(k));
		CHECK_INT(sign_bytes(k, msg, ml, got), 0);
		CHECK(memcmp(got, want, 64) == 0);
		/* a private key verifies too */
		CHECK_INT(sign_verify(k, msg, ml, got, 64), 0);
		sign_key_free(&k);
	}
}

test(sign_public_key_cannot_sign)
{
	uint8_t pub[32], sig[64];
	struct sign_key *k = NULL;

	unhex(vectors[0].pub, pub, sizeof(pub));
	CHECK_INT(sign_public_from_raw(pub, "pub", &k), 0);
	CHECK(!sign_key_is_private(k));
	CHECK_INT(sign_bytes(k, "x", 1, sig), -EINVAL);
	sign_key_free(&k);
	sign_key_free(&k); /* NULL-safe */
	sign_key_free(NULL);
}

/* A fresh temp dir for key files; @dir gets its path. */
static void tmpdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/test_sign.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
}

static void rmkeys(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK_INT(system(cmd), 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
}

test(sign_keygen_round_trip)
{
	static const char doc[] = "{\"push_date\": \"2026-01-01T00:00:00Z\", "
				  "\"is_directory\": false}";
	char dir[64], key[128], pub[128], key2[128], pub2[128];
	char err[1024] = "";
	struct sign_key *priv = NULL, *pubk = NULL, *other = NULL;
	uint8_t sig[64];
	struct stat st;

	tmpdir(dir, sizeof(dir));
	snprintf(key, sizeof(key), "%s/k", dir);
	snprintf(pub, sizeof(pub), "%s/k.pub", dir);
	snprintf(key2, sizeof(key2), "%s/other", dir);
	snprintf(pub2, sizeof(pub2), "%s/other.pub", dir);
	CHECK_INT(sign_keygen(key, err, sizeof(err)), 0);
	CHECK_INT(stat(key, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(stat(pub, &st), 0);
	CHECK(S_ISREG(st.st_mode));

	CHECK_INT(sign_load_private(key, &priv, err, sizeof(err)), 0);
	CHECK_INT(sign_load_public(pub, &pubk, err, sizeof(err)), 0);
	if (!priv || !pubk)
		goto out;
	CHECK_STR(sign_key_name(pubk), pub);
	CHECK_INT(sign_bytes(priv, doc, sizeof(doc) - 1, sig), 0);
	CHECK_INT(sign_verify(pubk, doc, sizeof(doc) - 1, sig, 64), 0);

	/* one flipped byte anywhere in the document */
	for (size_t i = 0; i < sizeof(doc) - 1; i += 7) {
		char bad[sizeof(doc)];

		memcpy(bad, doc, sizeof(doc));
		bad[i] ^= 0x20;
		CHECK_INT(sign_verify(pubk, bad, sizeof(doc) - 1, sig, 64),
			  -EBADMSG);
	}
	/* a byte appended */
	CHECK_INT(sign_verify(pubk, doc, sizeof(doc), sig, 64), -EBADMSG);

	/* another key pair does not verify it */
	CHECK_INT(sign_keygen(key2, err, sizeof(err)), 0);
	CHECK_INT(sign_load_public(pub2, &other, err, sizeof(err)), 0);
	if (other)
		CHECK_INT(sign_verify(other, doc, sizeof(doc) - 1, sig, 64),
			  -EBADMSG);

	/* a key is never overwritten */
	CHECK_INT(sign_keygen(key, err, sizeof(err)), -EEXIST);
	CHECK_STR_CONTAINS(err, "never overwritten");
out:
	sign_key_free(&priv);
	sign_key_free(&pubk);
	sign_key_free(&other);
	rmkeys(dir);
}

test(sign_keygen_refuses_half_existing_pair)
{
	char dir[64], key[128], pub[128], err[1024] = "";
	struct stat st;

	tmpdir(dir, sizeof(dir));
	snprintf(key, sizeof(key), "%s/k", dir);
	snprintf(pub, sizeof(pub), "%s/k.pub", dir);
	/* KEY exists, KEY.pub not: fails, and leaves no KEY.pub behind */
	write_file(key, "keep me\n");
	CHECK_INT(sign_keygen(key, err, sizeof(err)), -EEXIST);
	CHECK_STR_CONTAINS(err, key);
	CHECK_INT(stat(pub, &st), -1);
	unlink(key);
	/* KEY.pub exists: fails before writing KEY */
	write_file(pub, "keep me\n");
	CHECK_INT(sign_keygen(key, err, sizeof(err)), -EEXIST);
	CHECK_STR_CONTAINS(err, pub);
	CHECK_INT(stat(key, &st), -1);
	rmkeys(dir);
}

test(sign_malformed_key_files)
{
	char dir[64], path[128], key[128], pub[128];
	char err[1024] = "";
	struct sign_key *k = NULL;
	char *big;

	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/bad", dir);

	/* missing */
	CHECK_INT(sign_load_public(path, &k, err, sizeof(err)), -ENOENT);
	CHECK_STR_CONTAINS(err, path);
	CHECK(k == NULL);

	/* not PEM at all */
	write_file(path, "hello, I am not a key\n");
	CHECK_INT(sign_load_public(path, &k, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "not an Ed25519 public key");
	CHECK_STR_CONTAINS(err, path);
	CHECK_INT(sign_load_private(path, &k, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "not an Ed25519 private key");

	/* PEM armour around garbage */
	write_file(path, "-----BEGIN PUBLIC KEY-----\n"
			 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
			 "-----END PUBLIC KEY-----\n");
	CHECK_INT(sign_load_public(path, &k, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "not an Ed25519 public key");

	/* a private key where a public one is wanted, and vice versa */
	snprintf(key, sizeof(key), "%s/k", dir);
	snprintf(pub, sizeof(pub), "%s/k.pub", dir);
	CHECK_INT(sign_keygen(key, err, sizeof(err)), 0);
	CHECK_INT(sign_load_public(key, &k, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "a private key; verify with the public key");
	CHECK_INT(sign_load_private(pub, &k, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "not an Ed25519 private key");

	/* over the cap */
	big = malloc(SIGN_KEY_MAX_BYTES + 2);
	CHECK(big != NULL);
	if (big) {
		memset(big, 'A', SIGN_KEY_MAX_BYTES + 1);
		big[SIGN_KEY_MAX_BYTES + 1] = '\0';
		write_file(path, big);
		free(big);
		CHECK_INT(sign_load_public(path, &k, err, sizeof(err)), -EFBIG);
		CHECK_STR_CONTAINS(err, "larger than");
	}
	CHECK(k == NULL);
	rmkeys(dir);
}

test(sign_loads_openssl_made_keys)
{
	/* The formats are OpenSSL's own: keys made by the openssl tool load,
	   and a signature by ours verifies with theirs. */
	char dir[64], cmd[1024], key[128], pub[160], err[1024] = "";
	struct sign_key *priv = NULL, *pubk = NULL;
	uint8_t sig[64];

	tmpdir(dir, sizeof(dir));
	snprintf(key, sizeof(key), "%s/o.pem", dir);
	snprintf(pub, sizeof(pub), "%s/o.pub", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl genpkey -algorithm ed25519 -out %s 2>/dev/null && "
		 "openssl pkey -in %s -pubout -out %s 2>/dev/null",
		 key, key, pub);
	if (system(cmd) != 0) {
		printf("  (no openssl tool: skipped)\n");
		rmkeys(dir);
		return;
	}
	CHECK_INT(sign_load_private(key, &priv, err, sizeof(err)), 0);
	CHECK_INT(sign_load_public(pub, &pubk, err, sizeof(err)), 0);
	if (priv && pubk) {
		CHECK_INT(sign_bytes(priv, "abc", 3, sig), 0);
		CHECK_INT(sign_verify(pubk, "abc", 3, sig, 64), 0);
	}
	sign_key_free(&priv);
	sign_key_free(&pubk);

	/* a P-256 key: the right format, the wrong type */
	snprintf(cmd, sizeof(cmd),
		 "openssl genpkey -algorithm EC -pkeyopt "
		 "ec_paramgen_curve:P-256 -out %s.ec 2>/dev/null && "
		 "openssl pkey -in %s.ec -pubout -out %s.ecpub 2>/dev/null",
		 key, key, key);
	CHECK_INT(system(cmd), 0);
	snprintf(pub, sizeof(pub), "%s.ecpub", key);
	CHECK_INT(sign_load_public(pub, &pubk, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "a EC key, not an Ed25519 public key");
	snprintf(pub, sizeof(pub), "%s.ec", key);
	CHECK_INT(sign_load_private(pub, &priv, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "not an Ed25519 private key");
	CHECK(!priv && !pubk);
	rmkeys(dir);
}

struct verify_job {
	const struct sign_key *k;
	const uint8_t *sig;
	int good, bad;
};

static void *verify_many(void *arg)
{
	struct verify_job *j = arg;
	uint8_t bad[64];

	memcpy(bad, j->sig, 64);
	bad[63] ^= 0x01;
	for (int i = 0; i < 200; i++) {
		if (sign_verify(j->k, "abc", 3, j->sig, 64) == 0)
			j->good++;
		if (sign_verify(j->k, "abc", 3, bad, 64) == -EBADMSG)
			j->bad++;
	}
	return NULL;
}

test(sign_one_key_verifies_from_many_threads)
{
	/* The mount verifies from FUSE worker threads with one store key. */
	uint8_t seed[32], sig[64];
	struct sign_key *k = NULL;
	struct verify_job jobs[8];
	pthread_t t[8];

	unhex(vectors[0].seed, seed, sizeof(seed));
	CHECK_INT(sign_private_from_raw(seed, "seed", &k), 0);
	if (!k)
		return;
	CHECK_INT(sign_bytes(k, "abc", 3, sig), 0);
	for (int i = 0; i < 8; i++) {
		jobs[i] = (struct verify_job){.k = k, .sig = sig};
		CHECK_INT(pthread_create(&t[i], NULL, verify_many, &jobs[i]),
			  0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK_INT(jobs[i].good, 200);
		CHECK_INT(jobs[i].bad, 200);
	}
	sign_key_free(&k);
}
