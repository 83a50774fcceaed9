/**
 * RelPath helpers. A RelPath is the raw bytes of a path below a root, held one char per
 * byte (latin1), no leading '/', components joined by '/'; '' is the root itself.
 * Plain string comparison of RelPaths is byte order.
 */
import type { RelPath } from './entry.js';
import { DeltaimgError } from '../util/errors.js';

/** The absolute fs path of `rel` below `root`, as bytes; rel '' gives the root itself. */
export function toFsPath(root: string | Buffer, rel: RelPath): Buffer {
  const rootBytes = typeof root === 'string' ? Buffer.from(root, 'utf8') : root;
  if (rel === '') return rootBytes;
  const needsSlash = rootBytes.length === 0 || rootBytes[rootBytes.length - 1] !== 0x2f;
  return Buffer.concat([rootBytes, needsSlash ? SLASH : EMPTY, Buffer.from(rel, 'latin1')]);
}

const SLASH = Buffer.from('/');
const EMPTY = Buffer.alloc(0);

/**
 * A RelPath from raw bytes, or from a string that already holds one byte per char.
 * A string with a char above U+00FF is not byte-held: that is a programming error.
 * For user-typed (UTF-8) text use relPathFromUtf8.
 */
export function relPath(bytes: Buffer | string): RelPath {
  if (typeof bytes !== 'string') return bytes.toString('latin1') as RelPath;
  if (/[^\x00-\xff]/.test(bytes)) {
    throw new DeltaimgError('INTERNAL', `relPath: string is not byte-held (latin1): ${JSON.stringify(bytes)}`);
  }
  return bytes as RelPath;
}

/** A RelPath from text a user typed (UTF-8), e.g. a CLI argument; a leading '/' is dropped. */
export function relPathFromUtf8(text: string): RelPath {
  return Buffer.from(text.replace(/^\/+/, ''), 'utf8').toString('latin1') as RelPath;
}

/** Joins a directory RelPath and one raw name (Buffer or byte-held string). */
export function joinRel(dir: RelPath, name: Buffer | string): RelPath {
  const n = typeof name === 'string' ? name : name.toString('latin1');
  return (dir === '' ? n : `${dir}/${n}`) as RelPath;
}

/** The parent directory's RelPath; '' for top-level entries (and for the root itself). */
export function parentOf(rel: RelPath): RelPath {
  const slash = rel.lastIndexOf('/');
  return (slash < 0 ? '' : rel.slice(0, slash)) as RelPath;
}

/** The last component (byte-held). */
export function baseName(rel: RelPath): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/** Byte-order comparison for sorting RelPaths (and any byte-held strings). */
export function compareRel(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A path for messages: '/'-prefixed, UTF-8 decoded, one line. Bytes that are not valid
 * UTF-8 show as \xNN and control chars (newline, tab, ...) are escaped, so a hostile
 * name cannot forge or split a line of output.
 */
export function displayPath(rel: RelPath | string): string {
  const bytes = Buffer.from(rel, 'latin1');
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    text = [...bytes].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : hexByte(b))).join('');
  }
  return '/' + text.replace(/[\x00-\x1f\x7f]/g, (c) => CONTROL_ESCAPES[c] ?? hexByte(c.charCodeAt(0)));
}

const CONTROL_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function hexByte(b: number): string {
  return `\\x${b.toString(16).padStart(2, '0')}`;
}

/**
 * Validates a path that came from outside (a delta, a manifest) before it is joined to an
 * output root: relative, no '.' or '..' components, no empty components (so no '//' and
 * no trailing '/'), no NUL, one byte per char. '' (the root itself) is allowed.
 * `what` names the source for the message, e.g. "delta entry" or "hardlink target".
 */
export function assertSafeRelPath(rel: string, what: string): RelPath {
  const reason = hostileReason(rel);
  if (reason) {
    throw new DeltaimgError(
      'HOSTILE_PATH',
      `${what} has a hostile path ${JSON.stringify(displayPath(rel).slice(1))}: ${reason}; refusing to write outside the output root (the input is damaged or malicious)`,
    );
  }
  return rel as RelPath;
}

function hostileReason(rel: string): string | undefined {
  if (rel === '') return undefined;
  if (/[^\x00-\xff]/.test(rel)) return 'not a byte string';
  if (rel.includes('\0')) return 'contains a NUL byte';
  if (rel.startsWith('/')) return 'is absolute';
  for (const part of rel.split('/')) {
    if (part === '') return 'has an empty component';
    if (part === '.' || part === '..') return `has a '${part}' component`;
  }
  return undefined;
}
