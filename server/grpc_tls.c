/*
 * grpc_tls - TLS for the gRPC front end (OpenSSL): a server context from
 * --grpc-tls-cert/--grpc-tls-key (TLS 1.2 or later, ALPN "h2" required,
 * as gRPC clients offer it), and the non-blocking reads and writes of a
 * connection, plaintext or TLS, behind one pair of functions.
 *
 * Threads: a context is shared read-only by every loop; a connection's
 * SSL is only touched by its loop's thread. Errors: negative errno, the
 * OpenSSL error queue is cleared on the way out.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "server/grpc_server_int.h"

static int alpn_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		   const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned int i;

	(void)ssl;
	(void)arg;
	for (i = 0; i < inlen; i += 1u + in[i]) {
		if (in[i] == 2 && i + 3 <= inlen && memcmp(in + i + 1, "h2", 2) == 0) {
			*out = in + i + 1;
			*outlen = 2;
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int tls_fail(const char *what, const char *path, char *err,
		    size_t errlen)
{
	char e[160];

	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	ERR_clear_error();
	snprintf(err, errlen, "%s %s: %s", what, path, e);
	return -EINVAL;
}

int gh_tls_new(const char *cert, const char *key, SSL_CTX **out, char *err,
	       size_t errlen)
{
	const char *miss = NULL;
	SSL_CTX *t;
	int ret;

	*out = NULL;
	if (!cert || !key) {
		snprintf(err, errlen,
			 "TLS needs both --grpc-tls-cert and --grpc-tls-key");
		return -EINVAL;
	}
	if (access(cert, R_OK) != 0)
		miss = cert;
	else if (access(key, R_OK) != 0)
		miss = key;
	if (miss) {
		snprintf(err, errlen, "cannot read %s: %s", miss,
			 strerror(errno));
		return -EINVAL;
	}
	t = SSL_CTX_new(TLS_server_method());
	if (!t)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(t, TLS1_2_VERSION);
	/* HTTP/2 forbids renegotiation and compression */
	SSL_CTX_set_options(t, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(t, SSL_MODE_ENABLE_PARTIAL_WRITE |
				SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(t, alpn_h2, NULL);
	if (SSL_CTX_use_certificate_chain_file(t, cert) != 1)
		ret = tls_fail("the TLS certificate is not usable:", cert,
			       err, errlen);
	else if (SSL_CTX_use_PrivateKey_file(t, key, SSL_FILETYPE_PEM) != 1)
		ret = tls_fail("the TLS key is not usable:", key, err, errlen);
	else if (SSL_CTX_check_private_key(t) != 1)
		ret = tls_fail("the TLS key does not match", cert, err, errlen);
	else
		ret = 0;
	if (ret < 0) {
		SSL_CTX_free(t);
		return ret;
	}
	*out = t;
	return 0;
}

void gh_tls_free(SSL_CTX *t)
{
	SSL_CTX_free(t);
}

int gh_tls_conn(SSL_CTX *t, struct gh_conn *c)
{
	c->ssl = SSL_new(t);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		ERR_clear_error();
		return -ENOMEM;
	}
	SSL_set_accept_state(c->ssl);
	return 0;
}

/* What an SSL_* return of @r means for a non-blocking caller. */
static int tls_errno(struct gh_conn *c, int r)
{
	int e = SSL_get_error(c->ssl, r);

	c->tls_want_out = e == SSL_ERROR_WANT_WRITE;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return -EAGAIN;
	ERR_clear_error();
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	return e == SSL_ERROR_SYSCALL ? -EIO : -EPROTO;
}

int gh_tls_hello(struct gh_conn *c)
{
	int r = SSL_do_handshake(c->ssl);

	if (r == 1) {
		c->tls_want_out = false;
		return 1;
	}
	r = tls_errno(c, r);
	return r == -EAGAIN ? 0 : -EPROTO;
}

ssize_t gh_io_read(struct gh_conn *c, void *p, size_t n)
{
	ssize_t r;
	int k;

	if (!c->ssl) {
		r = read(c->fd, p, n);
		if (r < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN
								 : -EIO;
		return r;
	}
	k = SSL_read(c->ssl, p, n > 0x7fffffff ? 0x7fffffff : (int)n);
	if (k > 0)
		return k;
	return tls_errno(c, k);
}

ssize_t gh_io_write(struct gh_conn *c, const void *p, size_t n)
{
	ssize_t r;
	int k;

	if (!c->ssl) {
		r = send(c->fd, p, n, MSG_NOSIGNAL);
		if (r < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN
								 : -EIO;
		return r;
	}
	k = SSL_write(c->ssl, p, n > 0x7fffffff ? 0x7fffffff : (int)n);
	if (k > 0)
		return k;
	k = tls_errno(c, k);
	return k == 0 ? -EIO : k;
}
