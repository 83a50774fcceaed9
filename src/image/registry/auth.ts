/**
 * Answers to a registry's WWW-Authenticate challenge: Basic with the credentials, or the
 * bearer-token flow (GET realm?service=..&scope=.. with Basic credentials, or POST with an
 * identity token as an OAuth2 refresh token). Tokens are kept until their expiry and fetched
 * again on expiry or when the registry answers 401 to one.
 */
import { DeltaimgError } from '../../util/errors.js';
import { JsonFields } from '../../util/json-input.js';
import type { Credentials } from './credentials.js';
import { readReply, type HttpAgent } from './http.js';

export type Challenge = { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service?: string; scope?: string };

/** Parses `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"` or `Basic realm=".."`. */
export function parseChallenge(header: string | undefined, where: string): Challenge {
  const text = (header ?? '').trim();
  const scheme = /^(\w+)\s*/.exec(text);
  if (!scheme)
    throw new DeltaimgError('REGISTRY', `${where}: the registry asks for authentication but sends no WWW-Authenticate challenge`);
  const params: Record<string, string> = {};
  const re = /(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let m = re.exec(text.slice(scheme[0].length)); m; m = re.exec(text.slice(scheme[0].length)))
    params[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? '';
  const name = scheme[1]!.toLowerCase();
  if (name === 'basic') return { scheme: 'basic' };
  if (name === 'bearer') {
    if (!params.realm) throw new DeltaimgError('REGISTRY', `${where}: Bearer challenge without a realm`);
    return {
      scheme: 'bearer',
      realm: params.realm,
      ...(params.service ? { service: params.service } : {}),
      ...(params.scope ? { scope: params.scope } : {}),
    };
  }
  throw new DeltaimgError(
    'REGISTRY',
    `${where}: the registry wants ${scheme[1]} authentication, which deltaimg does not speak (Basic, Bearer)`,
  );
}

interface Token {
  header: string;
  /** ms since the epoch; refreshed a little before. */
  expiresAt: number;
}

/** Tokens last 60 s when the server does not say (the distribution spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;
const EXPIRY_MARGIN_MS = 5_000;

export class Authenticator {
  private challenge: Challenge | undefined;
  private token: Token | undefined;

  constructor(
    private readonly agent: HttpAgent,
    private readonly creds: Credentials | undefined,
    private readonly where: string,
  ) {}

  /** The Authorization header for the next request, refreshing an expired token first. */
  async header(scopes: string[]): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') return this.basic();
    if (!this.token || Date.now() > this.token.expiresAt - EXPIRY_MARGIN_MS) this.token = await this.fetchToken(c, scopes);
    return this.token.header;
  }

  /** After a 401: learns the challenge and drops the token the registry refused. */
  async onUnauthorized(wwwAuthenticate: string | undefined, scopes: string[]): Promise<string> {
    const c = parseChallenge(wwwAuthenticate, this.where);
    this.challenge = c;
    this.token = undefined;
    if (c.scheme === 'basic') return this.basic();
    const wanted = c.scope && !scopes.includes(c.scope) ? [...scopes, c.scope] : scopes;
    this.token = await this.fetchToken(c, wanted);
    return this.token.header;
  }

  /** What the registry refused: names the credentials' origin so the user knows what to fix. */
  refused(status: number): DeltaimgError {
    const who = this.creds
      ? this.creds.kind === 'basic'
        ? `user ${this.creds.username} (from ${this.creds.from})`
        : `the identity token from ${this.creds.from}`
      : 'anonymous access';
    const hint = this.creds
      ? 'check the credentials (--creds USER:PASS, docker login)'
      : 'give credentials with --creds USER:PASS or docker login';
    return new DeltaimgError(
      'REGISTRY',
      `${this.where}: ${status === 403 ? 'access denied' : 'authentication failed'} for ${who} (HTTP ${status}); ${hint}`,
    );
  }

  private basic(): string {
    if (!this.creds || this.creds.kind !== 'basic') throw this.refused(401);
    return `Basic ${Buffer.from(`${this.creds.username}:${this.creds.password}`).toString('base64')}`;
  }

  private async fetchToken(c: Extract<Challenge, { scheme: 'bearer' }>, scopes: string[]): Promise<Token> {
    const url = new URL(c.realm);
    const form = new URLSearchParams();
    if (c.service) form.set('service', c.service);
    for (const s of scopes) form.append('scope', s);
    let reply;
    try {
      if (this.creds?.kind === 'identity-token') {
        form.set('grant_type', 'refresh_token');
        form.set('refresh_token', this.creds.token);
        form.set('client_id', 'deltaimg');
        reply = await this.agent.send({
          method: 'POST',
          url,
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          body: Buffer.from(form.toString()),
        });
      } else {
        for (const [k, v] of form) url.searchParams.append(k, v);
        const headers: Record<string, string> = this.creds ? { Authorization: this.basic() } : {};
        reply = await this.agent.send({ method: 'GET', url, headers });
      }
    } catch (err) {
      throw new DeltaimgError('REGISTRY', `${this.where}: cannot reach the token server ${url.origin}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const body = await readReply(reply, 1 << 20, 'token response');
    if (reply.status === 401 || reply.status === 403) throw this.refused(reply.status);
    if (reply.status !== 200)
      throw new DeltaimgError('REGISTRY', `${this.where}: the token server ${url.origin} answered HTTP ${reply.status}`);
    return decodeToken(body, `${this.where}: token server ${url.origin}`);
  }
}

function decodeToken(body: Buffer, where: string): Token {
  const f = new JsonFields(where, 'REGISTRY', 'the token server answered something else than a token');
  const o = f.object(f.parse(body.toString('utf8')), '');
  const token =
    f.optional(o.token, 'token', (v, vf) => f.string(v, vf)) ?? f.optional(o.access_token, 'access_token', (v, vf) => f.string(v, vf));
  if (!token) throw f.error('token', 'is missing');
  const seconds = typeof o.expires_in === 'number' && o.expires_in > 0 ? o.expires_in : DEFAULT_TOKEN_SECONDS;
  return { header: `Bearer ${token}`, expiresAt: Date.now() + seconds * 1000 };
}
