/**
 * Image references in the containers-transports syntax (containers-transports(5)):
 * `docker-archive:PATH[:REF]`, `oci:DIR[:REF]`, `oci-archive:PATH[:REF]`,
 * `docker-daemon:NAME[:TAG]` and `-` for stdin/stdout. As there, PATH ends at its first
 * ':' and REF is the rest (so REF may hold a tag or a registry port).
 */
import { DeltaimgError } from '../util/errors.js';
import { formatRegistryRef, parseRegistryRef, type RegistryRef } from './registry/ref.js';

export type ImageRef =
  /** `docker save` output: classic (manifest.json + <id>/layer.tar) or the OCI-layout form of Docker >= 25. */
  | { transport: 'docker-archive'; path: string; ref?: string }
  /** OCI image layout directory; ref = org.opencontainers.image.ref.name annotation. */
  | { transport: 'oci'; path: string; ref?: string }
  /** Tar of an OCI image layout. */
  | { transport: 'oci-archive'; path: string; ref?: string }
  /** Through `docker save` / `docker load`. */
  | { transport: 'docker-daemon'; name: string }
  /** A registry: `docker://REGISTRY/REPO[:TAG|@sha256:...]`. */
  | ({ transport: 'docker' } & RegistryRef)
  /** `-`: read an archive (docker-archive or oci-archive, detected) from stdin; write a docker-archive to stdout. */
  | { transport: 'stdio' };

export const IMAGE_REF_FORMS = [
  'docker-archive:PATH[:REF]',
  'oci:DIR[:REF]',
  'oci-archive:PATH[:REF]',
  'docker-daemon:NAME[:TAG]',
  'docker://REGISTRY/REPO[:TAG|@DIGEST]',
  '- (stdin/stdout)',
];

type PathTransport = 'docker-archive' | 'oci' | 'oci-archive';
const PATH_TRANSPORTS: readonly PathTransport[] = ['docker-archive', 'oci', 'oci-archive'];

export function parseImageRef(text: string): ImageRef {
  if (text === '-') return { transport: 'stdio' };
  const colon = text.indexOf(':');
  const transport = colon > 0 ? text.slice(0, colon) : '';
  const rest = text.slice(colon + 1);
  if (transport === 'docker') return { transport, ...parseRegistryRef(rest, (why) => badRef(text, why)) };
  if (transport === 'docker-daemon') {
    if (!rest || /\s/.test(rest)) throw badRef(text, 'no image name after docker-daemon:');
    return { transport, name: rest };
  }
  const pathTransport = PATH_TRANSPORTS.find((t) => t === transport);
  if (!pathTransport) throw badRef(text, colon > 0 ? `unknown transport "${transport}"` : 'no transport prefix');
  const sep = rest.indexOf(':');
  const path = sep < 0 ? rest : rest.slice(0, sep);
  const ref = sep < 0 ? undefined : rest.slice(sep + 1);
  if (!path) throw badRef(text, `no path after ${transport}:`);
  if (ref !== undefined && !ref) throw badRef(text, 'empty REF after the path');
  return ref === undefined ? { transport: pathTransport, path } : { transport: pathTransport, path, ref };
}

/**
 * Docker's reference grammar (distribution/reference), with the tag or digest required:
 * [HOST[:PORT]/]PATH[:TAG][@DIGEST], PATH lower-case components joined by '/'.
 */
const DOCKER_NAME = new RegExp(
  '^(?:(?:[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)*(?::[0-9]+)?)/)?' + // optional host[:port]/
    '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*' + // path
    '(?::[\\w][\\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$', // :tag, @digest
);

/**
 * A plain `NAME:TAG` (or `NAME@sha256:...`) with no transport prefix, as `docker images` shows
 * names: the image verbs take it as `docker-daemon:NAME:TAG`. Without a tag or digest it is not
 * one (a bare word is more likely a file name).
 */
export function isPlainImageName(text: string): boolean {
  if (!DOCKER_NAME.test(text)) return false;
  const lastSlash = text.lastIndexOf('/');
  return text.includes('@') || text.indexOf(':', lastSlash + 1) > 0;
}

/** The reference back in the same syntax (for messages). */
export function formatImageRef(ref: ImageRef): string {
  switch (ref.transport) {
    case 'stdio':
      return '-';
    case 'docker-daemon':
      return `docker-daemon:${ref.name}`;
    case 'docker':
      return formatRegistryRef(ref);
    default:
      return `${ref.transport}:${ref.path}${ref.ref ? `:${ref.ref}` : ''}`;
  }
}

function badRef(text: string, why: string): DeltaimgError {
  return new DeltaimgError('USAGE', `bad image reference "${text}": ${why}; use one of ${IMAGE_REF_FORMS.join(', ')}`);
}
