/**
 * One registry repository over the distribution API (/v2/): manifests, blobs (downloads that
 * resume with Range after a dropped connection; uploads by mount, monolithic PUT or PATCH
 * chunks), referrers. It finds the scheme (HTTPS; plain HTTP only for loopback or --insecure),
 * the TLS trust (system CAs + --cert-dir or /etc/docker/certs.d/HOST), and authenticates on
 * the registry's first 401. Every failure is one DeltaimgError line naming the reference.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { DeltaimgError } from '../../util/errors.js';
import { sha256Digest } from '../digest-stream.js';
import { isJsonObject } from '../../util/json-input.js';
import { Authenticator } from './auth.js';
import { findCredentials, type CredentialOptions } from './credentials.js';
import {
  backoff,
  HttpAgent,
  isConnectionError,
  isPlainHttpAnswer,
  isRetryableStatus,
  readReply,
  RETRY,
  traffic,
  type Reply,
  type RequestSpec,
  type TlsSettings,
} from './http.js';
import { apiHost, isLoopback } from './ref.js';

export interface RegistryOptions extends CredentialOptions {
  /** Directory of *.crt CAs (and client.cert/client.key) for the registry; default /etc/docker/certs.d/HOST. */
  certDir?: string;
  /** Allow plain HTTP and unverified TLS for a registry that is not on loopback. */
  insecure?: boolean;
}

/** Manifests and indexes are small; anything bigger is refused. */
export const MAX_MANIFEST_BYTES = 4 << 20;
/** Uploads go in chunks of this size (and blobs smaller than it in one PUT). */
export const UPLOAD_CHUNK_BYTES = 16 << 20;
const CERTS_D = '/etc/docker/certs.d';

type Method = RequestSpec['method'];

export interface FetchedManifest {
  mediaType: string | undefined;
  bytes: Buffer;
  digest: string;
}

export type BlobPush = 'exists' | 'mounted' | 'uploaded';

/** HTTP connections per registry host, shared by its repositories. */
class Connection {
  private baseUrl: Promise<URL> | undefined;

  constructor(
    readonly registry: string,
    readonly agent: HttpAgent,
    private readonly allowPlain: boolean,
  ) {}

  /** https://host/, or http://host/ when allowed and the port answers the TLS hello in plain HTTP. */
  base(): Promise<URL> {
    this.baseUrl ??= this.probe();
    return this.baseUrl;
  }

  private async probe(): Promise<URL> {
    const host = apiHost(this.registry);
    const https = new URL(`https://${host}/`);
    if (!this.allowPlain) return https;
    try {
      const reply = await this.agent.send({ method: 'GET', url: new URL('/v2/', https) });
      reply.body.resume();
      return https;
    } catch (err) {
      if (isPlainHttpAnswer(err)) return new URL(`http://${host}/`);
      throw unreachable(`docker://${this.registry}`, err);
    }
  }
}

const connections = new Map<string, Connection>();

async function connection(registry: string, opts: RegistryOptions): Promise<Connection> {
  const key = `${registry}\0${opts.certDir ?? ''}\0${opts.insecure ? 1 : 0}`;
  let c = connections.get(key);
  if (!c) {
    c = new Connection(registry, new HttpAgent(await tlsSettings(registry, opts)), opts.insecure === true || isLoopback(registry));
    connections.set(key, c);
  }
  return c;
}

/** Registry reply bytes this process has read so far. */
export function bytesReceived(): number {
  return traffic.received;
}

/** Closes the keep-alive sockets (so the process can exit). */
export function closeConnections(): void {
  for (const c of connections.values()) c.agent.close();
  connections.clear();
}

async function tlsSettings(registry: string, opts: RegistryOptions): Promise<TlsSettings> {
  const dir = opts.certDir ?? join(CERTS_D, registry);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (opts.certDir !== undefined)
      throw new DeltaimgError('USAGE', `--cert-dir ${dir}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    names = [];
  }
  const settings: TlsSettings = opts.insecure ? { skipVerify: true } : {};
  const cas = await Promise.all(
    names
      .filter((n) => n.endsWith('.crt'))
      .sort()
      .map((n) => readFile(join(dir, n))),
  );
  if (cas.length) settings.ca = [...rootCertificates.map((c) => Buffer.from(c)), ...cas];
  const cert = names.find((n) => n.endsWith('.cert'));
  if (cert) {
    const key = cert.replace(/\.cert$/, '.key');
    if (!names.includes(key))
      throw new DeltaimgError('USAGE', `${join(dir, cert)} has no ${key} beside it (client certificates need both)`);
    settings.cert = await readFile(join(dir, cert));
    settings.key = await readFile(join(dir, key));
  }
  return settings;
}

export class RegistryClient {
  private readonly auth: Authenticator;

  private constructor(
    private readonly conn: Connection,
    readonly repository: string,
    private readonly scopes: string[],
    auth: Authenticator,
    /** "docker://host/repo": names the repository in errors. */
    readonly where: string,
  ) {
    this.auth = auth;
  }

  /** A client for one repository; `push` asks tokens for push too; `mountFrom` adds pull on those repositories. */
  static async open(
    registry: string,
    repository: string,
    opts: RegistryOptions & { push?: boolean; mountFrom?: string[] } = {},
  ): Promise<RegistryClient> {
    const conn = await connection(registry, opts);
    const where = `docker://${registry}/${repository}`;
    const creds = await findCredentials(registry, opts);
    const scopes = [
      `repository:${repository}:${opts.push ? 'pull,push' : 'pull'}`,
      ...(opts.mountFrom ?? []).filter((r) => r !== repository).map((r) => `repository:${r}:pull`),
    ];
    return new RegistryClient(conn, repository, scopes, new Authenticator(conn.agent, creds, where), where);
  }

  get registry(): string {
    return this.conn.registry;
  }

  // ------------------------------------------------------------ manifests

  /** GET a manifest or index by tag or digest; undefined on 404. A digest reference is checked. */
  async getManifest(reference: string, accept: string[]): Promise<FetchedManifest | undefined> {
    const reply = await this.request('GET', `manifests/${reference}`, { headers: { Accept: accept.join(', ') } }, [200, 404]);
    const bytes = await this.readBody(reply, MAX_MANIFEST_BYTES, `manifest ${reference}`);
    if (reply.status === 404) return undefined;
    const digest = sha256Digest(bytes);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new DeltaimgError('REGISTRY', `${this.where}@${reference}: the registry sent a manifest that hashes to ${digest}; refusing it`);
    }
    const type = reply.headers['content-type']?.split(';')[0]?.trim();
    return { mediaType: type && type !== 'application/json' && type !== 'text/plain' ? type : undefined, bytes, digest };
  }

  /** PUT a manifest (by digest or tag); checks the digest the registry computed. */
  async putManifest(reference: string, mediaType: string, bytes: Buffer): Promise<{ digest: string; subjectHandled: boolean }> {
    const reply = await this.request('PUT', `manifests/${reference}`, { headers: { 'Content-Type': mediaType }, body: bytes }, [201]);
    reply.body.resume();
    const digest = sha256Digest(bytes);
    const said = reply.headers['docker-content-digest'];
    if (typeof said === 'string' && said !== digest)
      throw new DeltaimgError('REGISTRY', `${this.where}: the registry stored manifest ${reference} as ${said}, not ${digest}`);
    return { digest, subjectHandled: typeof reply.headers['oci-subject'] === 'string' };
  }

  /** Deletes a manifest by digest; false when the registry does not allow deletes (405) or has none. */
  async deleteManifest(digest: string): Promise<boolean> {
    const reply = await this.request('DELETE', `manifests/${digest}`, {}, [202, 404, 405, 400]);
    reply.body.resume();
    return reply.status === 202;
  }

  // ------------------------------------------------------------ blobs

  async hasBlob(digest: string): Promise<boolean> {
    const reply = await this.request('HEAD', `blobs/${digest}`, {}, [200, 404]);
    reply.body.resume();
    return reply.status === 200;
  }

  /** A small blob (config, referrers artifacts' configs) read whole and checked. */
  async getSmallBlob(digest: string, max: number): Promise<Buffer> {
    const reply = await this.request('GET', `blobs/${digest}`, {}, [200]);
    const bytes = await this.readBody(reply, max, `blob ${digest}`);
    if (sha256Digest(bytes) !== digest)
      throw new DeltaimgError('REGISTRY', `${this.where}: blob ${digest} as sent hashes to ${sha256Digest(bytes)}; refusing it`);
    return bytes;
  }

  /**
   * The blob's bytes as a stream (unchecked: the caller checks digest and size). A dropped
   * connection is resumed from the byte reached with a Range request (or re-read and skipped
   * when the server ignores Range), up to RETRY.attempts times.
   */
  openBlob(digest: string, size: number): Readable {
    return Readable.from(this.download(digest, size), { objectMode: false });
  }

  private async *download(digest: string, size: number): AsyncGenerator<Buffer> {
    let offset = 0;
    for (let failures = 0; ;) {
      try {
        const reply = await this.request(
          'GET',
          `blobs/${digest}`,
          { headers: offset > 0 ? { Range: `bytes=${offset}-` } : {} },
          [200, 206],
        );
        let skip = reply.status === 200 ? offset : 0;
        for await (const chunk of reply.body as AsyncIterable<Buffer>) {
          let c = chunk;
          if (skip > 0) {
            const n = Math.min(skip, c.length);
            skip -= n;
            c = c.subarray(n);
            if (c.length === 0) continue;
          }
          offset += c.length;
          traffic.received += c.length;
          failures = 0;
          yield c;
        }
        if (offset >= size) return;
        throw Object.assign(new Error(`connection closed after ${offset} of ${size} bytes`), { code: 'ECONNRESET' });
      } catch (err) {
        if (!isConnectionError(err) || ++failures >= RETRY.attempts) {
          throw err instanceof DeltaimgError ? err : unreachable(`${this.where}: blob ${digest}`, err);
        }
        await backoff(failures);
      }
    }
  }

  /**
   * Pushes a blob unless the repository has it: mounted from `mountFrom` when that repository
   * of the same registry holds it, else uploaded (one PUT, or PATCH chunks then PUT). `open`
   * must give a stream that fails at its end when the bytes are not `digest`: the closing
   * PUT is only sent after that check, so a wrong blob is never committed. A dropped
   * connection restarts the upload.
   */
  async pushBlob(digest: string, size: number, open: () => Promise<NodeJS.ReadableStream>, mountFrom?: string): Promise<BlobPush> {
    if (await this.hasBlob(digest)) return 'exists';
    for (let failures = 0; ;) {
      let location: URL | undefined;
      try {
        const started = await this.startUpload(digest, mountFrom);
        if (started === 'mounted') return 'mounted';
        location = started;
        await this.upload(location, digest, await open());
        return 'uploaded';
      } catch (err) {
        if (location) await this.cancelUpload(location);
        if (!isConnectionError(err) || ++failures >= RETRY.attempts)
          throw err instanceof DeltaimgError ? err : unreachable(`${this.where}: pushing blob ${digest}`, err);
        await backoff(failures);
      }
    }
  }

  private async startUpload(digest: string, mountFrom: string | undefined): Promise<URL | 'mounted'> {
    const query =
      mountFrom && mountFrom !== this.repository ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}` : '';
    const reply = await this.request('POST', `blobs/uploads/${query}`, { body: Buffer.alloc(0) }, [201, 202]);
    reply.body.resume();
    if (reply.status === 201) return 'mounted';
    return this.location(reply, 'upload start');
  }

  private async upload(start: URL, digest: string, stream: NodeJS.ReadableStream): Promise<void> {
    let location = start;
    let offset = 0;
    let pending: Buffer | undefined;
    for await (const chunk of chunks(stream, UPLOAD_CHUNK_BYTES)) {
      if (pending) {
        location = await this.patch(location, pending, offset);
        offset += pending.length;
      }
      pending = chunk;
    }
    // The stream ended (its digest check passed): commit with the last chunk.
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const body = pending ?? Buffer.alloc(0);
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
    if (offset > 0 && body.length) headers['Content-Range'] = `${offset}-${offset + body.length - 1}`;
    const reply = await this.requestUrl('PUT', url, { headers, body }, [201], `blob ${digest}`);
    reply.body.resume();
  }

  private async patch(location: URL, chunk: Buffer, offset: number): Promise<URL> {
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + chunk.length - 1}` };
    const reply = await this.requestUrl('PATCH', location, { headers, body: chunk }, [202], 'blob upload chunk');
    reply.body.resume();
    return this.location(reply, 'upload chunk');
  }

  private async cancelUpload(location: URL): Promise<void> {
    try {
      const reply = await this.requestUrl('DELETE', location, {}, [204, 404], 'upload cancel');
      reply.body.resume();
    } catch {
      // Best effort: the registry expires abandoned uploads itself.
    }
  }

  private location(reply: Reply, what: string): URL {
    const loc = reply.headers.location;
    if (!loc) throw new DeltaimgError('REGISTRY', `${this.where}: the registry's ${what} answer has no Location`);
    return new URL(loc, reply.url);
  }

  // ------------------------------------------------------------ referrers

  /** The referrers API's index for a manifest, or undefined when the registry lacks the API. */
  async referrers(digest: string, artifactType: string): Promise<Buffer | undefined> {
    const reply = await this.request(
      'GET',
      `referrers/${digest}?artifactType=${encodeURIComponent(artifactType)}`,
      { headers: { Accept: 'application/vnd.oci.image.index.v1+json' } },
      [200, 404, 400, 405],
    );
    const bytes = await this.readBody(reply, MAX_MANIFEST_BYTES, `referrers of ${digest}`);
    const type = reply.headers['content-type']?.split(';')[0]?.trim();
    // Registries without the API answer 404 (distribution 2.8: "404 page not found", not an index).
    return reply.status === 200 && type === 'application/vnd.oci.image.index.v1+json' ? bytes : undefined;
  }

  // ------------------------------------------------------------ requests

  private async request(
    method: Method,
    path: string,
    spec: { headers?: Record<string, string>; body?: Buffer },
    ok: number[],
  ): Promise<Reply> {
    const url = new URL(`/v2/${this.repository}/${path}`, await this.conn.base());
    return this.requestUrl(method, url, spec, ok, path);
  }

  /**
   * One request with auth (a 401 is answered once with the challenge's credentials) and
   * retries on connection failures and 429/5xx; a status outside `ok` is an error naming `what`.
   */
  private async requestUrl(
    method: Method,
    url: URL,
    spec: { headers?: Record<string, string>; body?: Buffer },
    ok: number[],
    what: string,
  ): Promise<Reply> {
    for (let failures = 0; ;) {
      let reply: Reply;
      try {
        reply = await this.authorized(method, url, spec);
      } catch (err) {
        if (err instanceof DeltaimgError) throw err;
        if (!isConnectionError(err) || ++failures >= RETRY.attempts) throw unreachable(`${this.where}: ${what}`, err);
        await backoff(failures);
        continue;
      }
      if (ok.includes(reply.status)) return reply;
      const body = await this.readBody(reply, 64 << 10, 'error body').catch(() => Buffer.alloc(0));
      if (isRetryableStatus(reply.status) && ++failures < RETRY.attempts) {
        await backoff(failures);
        continue;
      }
      if (reply.status === 401 || reply.status === 403) throw this.auth.refused(reply.status);
      throw new DeltaimgError('REGISTRY', `${this.where}: ${method} ${what}: HTTP ${reply.status}${registryErrorText(body)}`);
    }
  }

  private async authorized(method: Method, url: URL, spec: { headers?: Record<string, string>; body?: Buffer }): Promise<Reply> {
    const send = (authorization: string | undefined) =>
      this.conn.agent.send({
        method,
        url,
        headers: { ...spec.headers, ...(authorization ? { Authorization: authorization } : {}) },
        ...(spec.body ? { body: spec.body } : {}),
      });
    const first = await send(await this.auth.header(this.scopes));
    if (first.status !== 401) return first;
    first.body.resume();
    return send(await this.auth.onUnauthorized(first.headers['www-authenticate'], this.scopes));
  }

  private async readBody(reply: Reply, max: number, what: string): Promise<Buffer> {
    try {
      return await readReply(reply, max, what);
    } catch (err) {
      throw unreachable(`${this.where}: ${what}`, err);
    }
  }
}

/** The registry's own words: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}. */
function registryErrorText(body: Buffer): string {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    const text = body.toString('utf8').trim().split('\n')[0]?.slice(0, 200);
    return text ? ` (${text})` : '';
  }
  const first = isJsonObject(json) && Array.isArray(json.errors) ? json.errors[0] : undefined;
  if (!isJsonObject(first)) return '';
  const code = typeof first.code === 'string' ? first.code : '';
  const message = typeof first.message === 'string' ? first.message : '';
  return ` (${[code, message].filter(Boolean).join(': ')})`;
}

function unreachable(where: string, err: unknown): DeltaimgError {
  if (err instanceof DeltaimgError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? `${e.code}: ` : '';
  const tls =
    typeof e?.code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(e.code)
      ? ' (add its CA with --cert-dir DIR or /etc/docker/certs.d/HOST/ca.crt)'
      : '';
  return new DeltaimgError('REGISTRY', `${where}: ${code}${String(e?.message ?? err)}${tls}`, { cause: err });
}

/** Re-cuts a stream into buffers of `size` bytes (the last one shorter). */
async function* chunks(stream: NodeJS.ReadableStream, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    let chunk = c;
    while (have + chunk.length >= size) {
      const take = size - have;
      parts.push(chunk.subarray(0, take));
      yield Buffer.concat(parts);
      parts = [];
      have = 0;
      chunk = chunk.subarray(take);
    }
    if (chunk.length) {
      parts.push(chunk);
      have += chunk.length;
    }
  }
  if (have > 0) yield Buffer.concat(parts);
}
