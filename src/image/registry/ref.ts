/**
 * `docker://REGISTRY/REPO[:TAG|@sha256:...]` references (containers-transports(5), skopeo):
 * the host is the first component when it looks like one (a dot, a port, or localhost), else
 * Docker Hub, where one-component names live under library/.
 */
export interface RegistryRef {
  /** host[:port] as written ("docker.io" for Docker Hub). */
  registry: string;
  /** Repository path inside the registry, e.g. "team/app". */
  repository: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$/;

/** Parses what follows `docker:` (it must start with //); `bad` makes the error for a reason. */
export function parseRegistryRef(rest: string, bad: (why: string) => Error): RegistryRef {
  if (!rest.startsWith('//')) throw bad('docker: takes //REGISTRY/REPO');
  let name = rest.slice(2);
  let digest: string | undefined;
  const at = name.indexOf('@');
  if (at >= 0) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`"${digest}" is not a sha256:<64 hex> digest`);
  }
  let tag: string | undefined;
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`"${tag}" is not a valid tag`);
  }
  const parts = name.split('/');
  let registry = 'docker.io';
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))) {
    registry = first;
    parts.shift();
    if (!HOST.test(registry)) throw bad(`"${registry}" is not a host[:port]`);
  } else if (parts.length === 1) {
    parts.unshift('library');
  }
  if (parts.length === 0 || !parts.every((p) => COMPONENT.test(p)))
    throw bad(`"${parts.join('/')}" is not a repository name (lowercase letters, digits, . _ - and /)`);
  return { registry, repository: parts.join('/'), ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export function formatRegistryRef(r: RegistryRef): string {
  return `docker://${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** The manifest reference to fetch: the digest when pinned, else the tag (latest by default). */
export function manifestReference(r: RegistryRef): string {
  return r.digest ?? r.tag ?? 'latest';
}

/** Docker Hub's API host differs from its name. */
export function apiHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}

/** Loopback registries may speak plain HTTP without --insecure (as dockerd allows 127.0.0.0/8). */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
