/**
 * HTTP for registries on node:http(s): keep-alive agents with the registry's TLS settings,
 * redirects followed (Authorization dropped when the host changes, as for blob storage URLs),
 * and retries with exponential backoff on connection failures, 429 and 5xx.
 */
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

export interface TlsSettings {
  /** Trusted CAs: the system's plus --cert-dir / certs.d ones (undefined: Node's defaults). */
  ca?: Buffer[];
  /** Client certificate and key (certs.d/HOST/client.cert + client.key). */
  cert?: Buffer;
  key?: Buffer;
  /** --insecure: do not verify the server certificate. */
  skipVerify?: boolean;
}

export interface RequestSpec {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  /** Bodies are buffers (uploads are cut into bounded chunks), so any request can be sent again. */
  body?: Buffer;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  /** The URL that answered (after redirects). */
  url: URL;
}

/** A connection that stays silent this long is dropped (and retried). */
const IDLE_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 5;

export class HttpAgent {
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent: https.Agent;

  constructor(tls: TlsSettings) {
    this.httpsAgent = new https.Agent({
      keepAlive: true,
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
      ...(tls.skipVerify ? { rejectUnauthorized: false } : {}),
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** One request, redirects followed; the reply body must be consumed or destroyed. */
  async send(spec: RequestSpec): Promise<Reply> {
    let url = spec.url;
    let headers = { ...spec.headers };
    let method = spec.method;
    let body = spec.body;
    for (let hop = 0; ; hop++) {
      const reply = await this.once({ method, url, headers, ...(body ? { body } : {}) });
      const location = reply.headers.location;
      if (
        ![301, 302, 303, 307, 308].includes(reply.status) ||
        !location ||
        hop >= MAX_REDIRECTS ||
        method === 'PUT' ||
        method === 'PATCH' ||
        method === 'POST'
      )
        return reply;
      reply.body.resume();
      const next = new URL(location, url);
      if (next.host !== url.host) {
        const { authorization: _dropped, Authorization: _dropped2, ...rest } = headers;
        headers = rest;
      }
      if (reply.status === 303) {
        method = 'GET';
        body = undefined;
      }
      url = next;
    }
  }

  private once(spec: RequestSpec): Promise<Reply> {
    const secure = spec.url.protocol === 'https:';
    const mod = secure ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        spec.url,
        {
          method: spec.method,
          agent: secure ? this.httpsAgent : this.httpAgent,
          headers: { 'User-Agent': 'deltaimg', ...spec.headers, ...(spec.body ? { 'Content-Length': String(spec.body.length) } : {}) },
        },
        (res) => {
          res.setTimeout(IDLE_TIMEOUT_MS, () => res.destroy(Object.assign(new Error('no data for 60 s'), { code: 'ETIMEDOUT' })));
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url: spec.url });
        },
      );
      req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('no answer for 60 s'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(spec.body);
    });
  }
}

/** Bytes received from registries by this process (reply bodies read), for pull's report. */
export const traffic = { received: 0 };

/** Reads a reply body whole, refusing more than `max` bytes. */
export async function readReply(reply: Reply, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of reply.body as AsyncIterable<Buffer>) {
    n += c.length;
    traffic.received += c.length;
    if (n > max) {
      reply.body.destroy();
      throw new Error(`${what} is over ${max} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** A dropped or refused connection, worth another try. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRYABLE_CODES.has(code);
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

export const RETRY = { attempts: 5, firstDelayMs: 200 };

/** Waits before attempt `n` (1-based retries): 200 ms, 400 ms, 800 ms, ... with jitter. */
export async function backoff(n: number): Promise<void> {
  const base = RETRY.firstDelayMs * 2 ** (n - 1);
  await sleep(base / 2 + Math.random() * base);
}

/** TLS handshake failures that mean "this port speaks plain HTTP". */
export function isPlainHttpAnswer(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return (
    e?.code === 'EPROTO' ||
    e?.code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
    (typeof e?.message === 'string' && /wrong version number|packet length too long/.test(e.message))
  );
}
