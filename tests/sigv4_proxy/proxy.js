#!/usr/bin/env node
/*
 * sigv4_proxy - a reverse proxy in front of s3rver that re-verifies the
 * AWS Signature V4 of every request with AWS's own JavaScript signer
 * (@smithy/signature-v4), because s3rver does not check signatures.
 *
 * A request is forwarded only if: it carries an Authorization header
 * (unless --allow-anonymous), the credential scope names our access key,
 * region and service "s3", the signed headers include host, x-amz-date,
 * x-amz-content-sha256 and every x-amz-* header sent, x-amz-date is within
 * 15 minutes, a hex x-amz-content-sha256 matches the body, and the
 * signature recomputed by @smithy/signature-v4 is the one sent. Anything
 * else gets 403 with an S3-style XML error, and is logged on stderr.
 *
 * GET /__sigv4_proxy/stats returns {"verified": N, "rejected": N,
 * "anonymous": N} (not forwarded).
 *
 * Usage: node proxy.js --port P --upstream http://127.0.0.1:U
 *          --access-key AK --secret-key SK [--region us-east-1]
 *          [--allow-anonymous]
 * Prints "listening PORT" on stdout once ready.
 */
'use strict';
const http = require('http');
const crypto = require('crypto');
const path = require('path');
const nm = path.join(__dirname, '..', 'node', 'node_modules');
const { SignatureV4 } = require(path.join(nm, '@smithy', 'signature-v4'));
const { Sha256 } = require(path.join(nm, '@aws-crypto', 'sha256-js'));

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  if (i < 0) return def;
  return process.argv[i + 1];
}
const port = parseInt(arg('port', '0'), 10);
const upstream = new URL(arg('upstream', 'http://127.0.0.1:4568'));
const accessKey = arg('access-key');
const secretKey = arg('secret-key');
const region = arg('region', 'us-east-1');
const allowAnon = process.argv.includes('--allow-anonymous');
if (!accessKey || !secretKey) {
  console.error('sigv4_proxy: --access-key and --secret-key are required');
  process.exit(2);
}
const stats = { verified: 0, rejected: 0, anonymous: 0 };

const signer = new SignatureV4({
  credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
  region, service: 's3', sha256: Sha256, uriEscapePath: false,
  applyChecksum: false,
});

function reject(res, code, why, req) {
  stats.rejected++;
  console.error(`sigv4_proxy: reject ${req.method} ${req.url.split('?')[0]}: ${why}`);
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${why.replace(/[<&>]/g, ' ')}</Message></Error>`;
  res.writeHead(403, { 'Content-Type': 'application/xml',
    'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function parseAuth(h) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(h);
  if (!m) return null;
  return { credential: m[1], signed: m[2].split(';'), signature: m[3] };
}

function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  if (!m) return null;
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

async function verify(req, body) {
  const auth = req.headers.authorization;
  if (!auth) return allowAnon ? 'anonymous' : 'no Authorization header';
  const a = parseAuth(auth);
  if (!a) return 'malformed Authorization header';
  const scope = a.credential.split('/');
  if (scope.length !== 5 || scope[0] !== accessKey || scope[2] !== region ||
      scope[3] !== 's3' || scope[4] !== 'aws4_request')
    return `bad credential scope ${scope.slice(1).join('/')}`;
  const date = parseAmzDate(req.headers['x-amz-date']);
  if (!date) return 'missing or malformed x-amz-date';
  if (scope[1] !== req.headers['x-amz-date'].slice(0, 8))
    return 'scope date differs from x-amz-date';
  if (Math.abs(Date.now() - date.getTime()) > 15 * 60 * 1000)
    return 'x-amz-date too far from now';
  for (const need of ['host', 'x-amz-date', 'x-amz-content-sha256'])
    if (!a.signed.includes(need)) return `${need} is not signed`;
  for (const h of Object.keys(req.headers))
    if (h.startsWith('x-amz-') && !a.signed.includes(h))
      return `${h} is sent but not signed`;
  const ph = req.headers['x-amz-content-sha256'];
  if (ph !== 'UNSIGNED-PAYLOAD') {
    if (!/^[0-9a-f]{64}$/.test(ph || '')) return 'bad x-amz-content-sha256';
    const got = crypto.createHash('sha256').update(body).digest('hex');
    if (got !== ph) return 'body does not match x-amz-content-sha256';
  }
  const u = new URL(req.url, 'http://placeholder');
  const query = {};
  for (const part of (u.search ? u.search.slice(1).split('&') : [])) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const v = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    if (k in query) query[k] = [].concat(query[k], v); else query[k] = v;
  }
  const headers = {};
  for (const h of a.signed) {
    if (req.headers[h] === undefined) return `signed header ${h} is missing`;
    headers[h] = req.headers[h];
  }
  const rawPath = req.url.split('?')[0];
  const signed = await signer.sign({
    method: req.method, protocol: 'http:', hostname: req.headers.host,
    path: rawPath, query, headers, body: undefined,
  }, { signingDate: date });
  const sa = parseAuth(signed.headers.authorization ||
                       signed.headers.Authorization || '');
  if (!sa) return 'verifier produced no signature';
  if (sa.signed.join(';') !== a.signed.join(';'))
    return `signed headers differ (${sa.signed.join(';')} vs ${a.signed.join(';')})`;
  if (sa.signature !== a.signature) return 'SignatureDoesNotMatch';
  return null;
}

const server = http.createServer((req, res) => {
  if (req.url === '/__sigv4_proxy/stats') {
    const b = JSON.stringify(stats);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(b);
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = Buffer.concat(chunks);
    let why;
    try {
      why = await verify(req, body);
    } catch (e) {
      why = `verifier error: ${e.message}`;
    }
    if (why === 'anonymous') {
      stats.anonymous++;
      why = null;
    } else if (why) {
      reject(res, why === 'SignatureDoesNotMatch' ? 'SignatureDoesNotMatch'
        : 'AccessDenied', why, req);
      return;
    } else {
      stats.verified++;
    }
    const headers = { ...req.headers };
    delete headers['transfer-encoding'];
    headers['content-length'] = String(body.length);
    const up = http.request({
      host: upstream.hostname, port: upstream.port, method: req.method,
      path: req.url, headers,
    }, (ures) => {
      res.writeHead(ures.statusCode, ures.headers);
      ures.pipe(res);
    });
    up.on('error', (e) => {
      res.writeHead(502);
      res.end(String(e));
    });
    up.end(body);
  });
});
server.keepAliveTimeout = 30000;
server.listen(port, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
