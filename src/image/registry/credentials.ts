/**
 * Registry credentials, found the way docker, skopeo and crane find them: --creds USER:PASS,
 * else $DOCKER_CONFIG/config.json (default ~/.docker/config.json): `credHelpers[host]`, then
 * `credsStore`, calling `docker-credential-NAME get` with the server on stdin, then the base64
 * `auths[host].auth`. No credentials is not an error: anonymous access may be enough.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { DeltaimgError } from '../../util/errors.js';
import { isJsonObject, JsonFields, type JsonObject } from '../../util/json-input.js';

export type Credentials =
  | { kind: 'basic'; username: string; password: string; from: string }
  /** An OAuth2 refresh token (docker login to ACR and others store "identitytoken"). */
  | { kind: 'identity-token'; token: string; from: string };

export interface CredentialOptions {
  /** --creds USER[:PASS]. */
  creds?: string;
  /** Directory holding config.json (default: $DOCKER_CONFIG, else ~/.docker). */
  configDir?: string;
}

export function parseCredsFlag(creds: string): Credentials {
  const colon = creds.indexOf(':');
  if (colon <= 0) throw new DeltaimgError('USAGE', '--creds takes USER:PASSWORD');
  return { kind: 'basic', username: creds.slice(0, colon), password: creds.slice(colon + 1), from: '--creds' };
}

export async function findCredentials(registry: string, opts: CredentialOptions): Promise<Credentials | undefined> {
  if (opts.creds !== undefined) return parseCredsFlag(opts.creds);
  const dir = opts.configDir ?? process.env.DOCKER_CONFIG ?? join(homedir(), '.docker');
  const path = join(dir, 'config.json');
  const config = await readConfig(path);
  if (!config) return undefined;
  const helpers = config.credHelpers;
  const helper = isJsonObject(helpers) ? helpers[registry] : undefined;
  if (typeof helper === 'string' && helper) return fromHelper(helper, registry);
  const store = config.credsStore;
  if (typeof store === 'string' && store) {
    const found = await fromHelper(store, registry);
    if (found) return found;
  }
  return fromAuths(config.auths, registry, path);
}

async function readConfig(path: string): Promise<JsonObject | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DeltaimgError('IO', `cannot read ${path}: ${(err as Error).message}`);
  }
  const f = configFields(path);
  return f.object(f.parse(text), '');
}

/** The keys docker uses for a registry in `auths` (Docker Hub keeps its old v1 URL). */
function authKeys(registry: string): string[] {
  const keys = [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
  if (registry === 'docker.io') keys.push('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io');
  return keys;
}

function configFields(path: string): JsonFields {
  return new JsonFields(path, 'USAGE', 'fix it or run docker login again');
}

function fromAuths(auths: unknown, registry: string, path: string): Credentials | undefined {
  if (!isJsonObject(auths)) return undefined;
  const key = authKeys(registry).find((k) => isJsonObject(auths[k]));
  if (!key) return undefined;
  const f = configFields(path);
  const entry = f.object(auths[key], `auths[${JSON.stringify(key)}]`);
  const str = (name: string) => f.optional(entry[name], `auths[${JSON.stringify(key)}].${name}`, (v, vf) => f.string(v, vf));
  const identity = str('identitytoken');
  if (identity) return { kind: 'identity-token', token: identity, from: path };
  const auth = str('auth');
  if (!auth) return undefined;
  const decoded = Buffer.from(auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw new DeltaimgError('USAGE', `${path}: auths["${key}"].auth is not base64 of USER:PASSWORD; run docker login again`);
  return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1), from: path };
}

/** `docker-credential-NAME get`: the server on stdin, {"Username","Secret"} on stdout. */
async function fromHelper(name: string, registry: string): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  const server = registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry;
  const result = await execa(program, ['get'], { input: server, reject: false, timeout: 60_000 });
  if ((result as { code?: string }).code === 'ENOENT' || (result.failed && result.exitCode === undefined)) {
    throw new DeltaimgError(
      'REGISTRY',
      `credential helper ${program} (configured for ${registry} in config.json) is not on PATH; install it or remove it from config.json`,
    );
  }
  if (result.exitCode !== 0) {
    const said =
      String(result.stdout || result.stderr)
        .trim()
        .split('\n')[0] ?? '';
    // The helpers' protocol: "credentials not found in native keychain" means none stored.
    if (/credentials not found/i.test(said)) return undefined;
    throw new DeltaimgError('REGISTRY', `credential helper ${program} failed for ${registry}: ${said || `exit ${result.exitCode}`}`);
  }
  const f = new JsonFields(
    `credential helper ${program} (for ${registry})`,
    'REGISTRY',
    'check the helper with: echo SERVER | ' + program + ' get',
  );
  const json = f.object(f.parse(String(result.stdout)), '');
  const username = f.string(json.Username, 'Username');
  const secret = f.string(json.Secret, 'Secret');
  const from = `docker-credential-${name}`;
  // Helpers return an identity (refresh) token with the user name "<token>".
  return username === '<token>' ? { kind: 'identity-token', token: secret, from } : { kind: 'basic', username, password: secret, from };
}
