/**
 * Registries for the docker:// tests, beside the plain one test/setup/services.ts starts:
 * Debian's docker-registry with TLS (a CA made here with openssl) and htpasswd basic auth
 * (bcrypt, htpasswd -B), and a loopback proxy in front of a registry that speaks the
 * bearer-token flow with its own token endpoint and misbehaves on request: tokens that
 * expire early, a connection dropped mid-blob, blob bytes that do not match their digest.
 */
import http from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort, startRegistry as startLoopbackRegistry } from '../../scripts/registry.mjs';
import { xorByte } from './bytes.js';

export { freePort };

export interface TestRegistry {
  address: string;
  stop(): Promise<void>;
}

/** A CA and a server certificate for 127.0.0.1, made with openssl in `dir`. */
export async function makeCa(dir: string): Promise<{ caCert: string; cert: string; key: string }> {
  await mkdir(dir, { recursive: true });
  const p = (n: string) => join(dir, n);
  const run = (args: string[]) => execa('openssl', args, { cwd: dir });
  await run([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=deltaimg test CA',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
  ]);
  await run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', p('server.key'), '-out', p('server.csr')]);
  await writeFile(
    p('ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  await run([
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    p('ext.cnf'),
    '-out',
    p('server.crt'),
  ]);
  return { caCert: p('ca.crt'), cert: p('server.crt'), key: p('server.key') };
}

/** docker-registry serve on 127.0.0.1, optionally with TLS and an htpasswd file (scripts/registry.mjs). */
export async function startRegistry(
  dir: string,
  opts: { tls?: { cert: string; key: string }; htpasswd?: string } = {},
): Promise<TestRegistry> {
  const registry = await startLoopbackRegistry(dir, opts);
  return { address: registry.address, stop: registry.stop };
}

export async function htpasswdFile(path: string, user: string, password: string): Promise<void> {
  await execa('htpasswd', ['-B', '-b', '-c', path, user, password]);
}

// ---------------------------------------------------------------- the token proxy

export interface ProxyFaults {
  /** Each token is refused after this many uses (the registry "expired" it before its expires_in). */
  tokenUses?: number;
  /** Blob digests whose first GET is cut after half the bytes. */
  dropMidBlob?: Set<string>;
  /** Blob digests whose bytes are altered on every GET. */
  corruptBlob?: Set<string>;
}

export interface ProxyLog {
  method: string;
  path: string;
  range?: string;
  status?: number;
}

export interface TokenProxy {
  address: string;
  faults: ProxyFaults;
  log: ProxyLog[];
  tokensIssued: number;
  stop(): Promise<void>;
}

/**
 * A bearer-token registry in front of a plain one: /token (Basic user:password) issues tokens;
 * /v2/ requests need one, else 401 with a Bearer challenge naming the realm, service and scope.
 */
export async function startTokenProxy(upstream: string, user: string, password: string): Promise<TokenProxy> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const tokens = new Map<string, number>();
  const state: TokenProxy = { address, faults: {}, log: [], tokensIssued: 0, stop: async () => {} };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${address}`);
    if (url.pathname === '/token') {
      const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"details":"wrong credentials"}');
        return;
      }
      const token = `t${++state.tokensIssued}-${Math.random().toString(36).slice(2)}`;
      tokens.set(token, 0);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    const entry: ProxyLog = { method: req.method ?? '', path: url.pathname, ...(req.headers.range ? { range: req.headers.range } : {}) };
    state.log.push(entry);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const uses = bearer === undefined ? undefined : tokens.get(bearer);
    if (uses === undefined || (state.faults.tokenUses !== undefined && uses >= state.faults.tokenUses)) {
      const repo = /^\/v2\/(.+?)\/(?:manifests|blobs|tags|referrers)\//.exec(url.pathname)?.[1];
      const scope = repo ? `,scope="repository:${repo}:pull"` : '';
      entry.status = 401;
      req.resume();
      res.writeHead(401, {
        'WWW-Authenticate': `Bearer realm="http://${address}/token",service="deltaimg-proxy"${scope}`,
        'Content-Type': 'application/json',
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    tokens.set(bearer!, uses + 1);
    const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const headers = { ...req.headers, host: address };
    delete headers.authorization;
    const up = http.request(
      { host: '127.0.0.1', port: Number(upstream.split(':')[1]), method: req.method, path: req.url, headers },
      (upRes) => {
        entry.status = upRes.statusCode;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (req.method === 'GET' && digest && state.faults.dropMidBlob?.has(digest)) {
          state.faults.dropMidBlob.delete(digest);
          const half = Math.floor(Number(upRes.headers['content-length'] ?? 0) / 2);
          let sent = 0;
          upRes.on('data', (c: Buffer) => {
            if (sent + c.length >= half) {
              upRes.destroy();
              // The first half reaches the client before the connection dies.
              res.write(c.subarray(0, half - sent), () => setTimeout(() => res.socket?.destroy(), 50));
              sent = Infinity;
              return;
            }
            if (sent === Infinity) return;
            sent += c.length;
            res.write(c);
          });
          return;
        }
        if (req.method === 'GET' && digest && state.faults.corruptBlob?.has(digest)) {
          let first = true;
          upRes.on('data', (c: Buffer) => {
            const out = Buffer.from(c);
            if (first && out.length) xorByte(out, out.length - 1, 0xff);
            first = false;
            res.write(out);
          });
          upRes.on('end', () => res.end());
          return;
        }
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  state.stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
