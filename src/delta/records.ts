/**
 * DeltaRecord <-> one JSON line. Decoding validates every field, because the
 * entries file is input from outside: a malformed record is a corrupt delta.
 */
import { decodePairTransform, encodePairTransform, TransformParamsError, type PairTransform } from '../exefilter/index.js';
import type { RelPath } from '../tree/entry.js';
import { DeltaimgError } from '../util/errors.js';
import type { ContentOp, DeltaRecord, Payload, RecordMeta } from './format.js';

/** Raw bytes held latin1 -> JSON: a UTF-8 string when the bytes are valid UTF-8, else { b64 }. */
type BytesJson = string | { b64: string };

export function bytesToJson(latin1: string): BytesJson {
  const bytes = Buffer.from(latin1, 'latin1');
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : { b64: bytes.toString('base64') };
}

function bytesFromJson(v: unknown, field: string, line: number): string {
  if (typeof v === 'string') return Buffer.from(v, 'utf8').toString('latin1');
  if (isObject(v) && typeof v.b64 === 'string') return Buffer.from(v.b64, 'base64').toString('latin1');
  throw bad(line, `${field} is not a path`);
}

export function encodeRecord(r: DeltaRecord): string {
  const o: Record<string, unknown> = {
    path: bytesToJson(r.path),
    kind: r.kind,
    mode: r.meta.mode,
    uid: r.meta.uid,
    gid: r.meta.gid,
    mtime: r.meta.mtimeNs.toString(),
  };
  if (r.meta.xattrs.length) o.xattrs = r.meta.xattrs.map((x) => [x.name, x.value.toString('base64')]);
  switch (r.kind) {
    case 'file':
      o.size = r.size;
      // Bytes copied from the source need only a short per-file check; the full hashes are
      // covered by the header's target tree digest (docs/format.md, 'What apply checks').
      o.sha256 = isSourceCopy(r.content) ? r.sha256.slice(0, SOURCE_COPY_SHA_CHARS) : r.sha256;
      o.content = encodeContent(r.content);
      break;
    case 'symlink':
      o.target = bytesToJson(r.target);
      break;
    case 'hardlink':
      o.linkTo = bytesToJson(r.linkTo);
      break;
    case 'chardev':
    case 'blockdev':
      o.major = r.major;
      o.minor = r.minor;
      break;
    case 'dir':
    case 'fifo':
      break;
  }
  return JSON.stringify(o);
}

function encodeContent(c: ContentOp): Record<string, unknown> {
  switch (c.op) {
    case 'same':
      return { op: 'same' };
    case 'copy':
      return { op: 'copy', from: bytesToJson(c.from) };
    case 'vcdiff':
      return {
        op: 'vcdiff',
        from: bytesToJson(c.from),
        fromSha256: c.fromSha256,
        ...(c.brotli ? { brotli: true } : {}),
        ...encodePayload(c.payload),
      };
    case 'bsdiff':
      return {
        op: 'bsdiff',
        from: bytesToJson(c.from),
        fromSha256: c.fromSha256,
        ...(c.exe ? { exe: encodePairTransform(c.exe) } : {}),
        ...encodePayload(c.payload),
      };
    case 'brotli':
    case 'raw':
      return { op: c.op, ...encodePayload(c.payload) };
  }
}

function encodePayload(p: Payload): Record<string, string> {
  return 'blob' in p ? { blob: p.blob } : { inline: p.inline.toString('base64') };
}

function decodePayload(c: Record<string, unknown>, line: number): Payload {
  if (typeof c.inline === 'string') return { inline: Buffer.from(c.inline, 'base64') };
  return { blob: sha(c.blob, 'blob', line) };
}

export function decodeRecord(text: string, line: number): DeltaRecord {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw bad(line, 'is not valid JSON');
  }
  if (!isObject(o)) throw bad(line, 'is not an object');
  const path = bytesFromJson(o.path, 'path', line) as RelPath;
  const meta = decodeMeta(o, line);
  const base = { path, meta };
  switch (o.kind) {
    case 'file':
    {
      const content = decodeContent(o.content, line);
      const sha256 = isSourceCopy(content) ? shaPrefix(o.sha256, line) : sha(o.sha256, 'sha256', line);
      return { ...base, kind: 'file', size: uint(o.size, 'size', line), sha256, content };
    }
    case 'dir':
    case 'fifo':
      return { ...base, kind: o.kind };
    case 'symlink':
      return { ...base, kind: 'symlink', target: bytesFromJson(o.target, 'target', line) };
    case 'hardlink':
      return { ...base, kind: 'hardlink', linkTo: bytesFromJson(o.linkTo, 'linkTo', line) as RelPath };
    case 'chardev':
    case 'blockdev':
      return { ...base, kind: o.kind, major: uint(o.major, 'major', line), minor: uint(o.minor, 'minor', line) };
    default:
      throw bad(line, `has unknown kind ${JSON.stringify(o.kind)}`);
  }
}

function decodeMeta(o: Record<string, unknown>, line: number): RecordMeta {
  if (typeof o.mtime !== 'string' || !/^-?\d+$/.test(o.mtime)) throw bad(line, 'has no valid mtime');
  const xattrs = o.xattrs === undefined ? [] : o.xattrs;
  if (!Array.isArray(xattrs)) throw bad(line, 'has invalid xattrs');
  return {
    mode: uint(o.mode, 'mode', line) & 0o7777,
    uid: uint(o.uid, 'uid', line),
    gid: uint(o.gid, 'gid', line),
    mtimeNs: BigInt(o.mtime),
    xattrs: xattrs.map((x: unknown) => {
      if (!Array.isArray(x) || typeof x[0] !== 'string' || typeof x[1] !== 'string') throw bad(line, 'has invalid xattrs');
      return { name: x[0], value: Buffer.from(x[1], 'base64') };
    }),
  };
}

function decodeContent(c: unknown, line: number): ContentOp {
  if (!isObject(c)) throw bad(line, 'has no content');
  switch (c.op) {
    case 'same':
      return { op: 'same' };
    case 'copy':
      return { op: 'copy', from: bytesFromJson(c.from, 'from', line) as RelPath };
    case 'vcdiff':
      return {
        op: 'vcdiff',
        from: bytesFromJson(c.from, 'from', line) as RelPath,
        fromSha256: sha(c.fromSha256, 'fromSha256', line),
        brotli: c.brotli === true,
        payload: decodePayload(c, line),
      };
    case 'bsdiff':
      return {
        op: 'bsdiff',
        from: bytesFromJson(c.from, 'from', line) as RelPath,
        fromSha256: sha(c.fromSha256, 'fromSha256', line),
        payload: decodePayload(c, line),
        ...(c.exe === undefined ? {} : { exe: decodeExe(c.exe, line) }),
      };
    case 'brotli':
    case 'raw':
      return { op: c.op, payload: decodePayload(c, line) };
    default:
      throw bad(line, `has unknown content op ${JSON.stringify(c.op)}`);
  }
}

function decodeExe(v: unknown, line: number): PairTransform {
  try {
    return decodePairTransform(v);
  } catch (err) {
    if (err instanceof TransformParamsError) throw bad(line, `has an invalid executable transform: ${err.message}`);
    throw err;
  }
}

/** Hex digits of sha256 kept for files whose bytes are copied from the source (`same`, `copy`). */
export const SOURCE_COPY_SHA_CHARS = 16;

export function isSourceCopy(c: ContentOp): boolean {
  return c.op === 'same' || c.op === 'copy';
}

function shaPrefix(v: unknown, line: number): string {
  if (typeof v !== 'string' || !/^[0-9a-f]+$/.test(v) || (v.length !== SOURCE_COPY_SHA_CHARS && v.length !== 64)) {
    throw bad(line, 'has invalid sha256');
  }
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function uint(v: unknown, field: string, line: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(line, `has invalid ${field}`);
  return v;
}

function sha(v: unknown, field: string, line: number): string {
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) throw bad(line, `has invalid ${field}`);
  return v;
}

function bad(line: number, what: string): DeltaimgError {
  return new DeltaimgError('CORRUPT_DELTA', `delta entries record ${line} ${what}; the delta is damaged, make it again`);
}
