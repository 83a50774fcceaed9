/**
 * DeltaRecord <-> one JSON line. Decoding validates every field, because the
 * entries file is input from outside: a malformed record is a corrupt delta.
 */
import { decodePairTransform, encodePairTransform, TransformParamsError, type PairTransform } from '../exefilter/index.js';
import type { Entry, RelPath } from '../tree/entry.js';
import { DeltaimgError } from '../util/errors.js';
import {
  ASSEMBLED_ESCAPED_MAX_BYTES,
  ASSEMBLED_MAX_BYTES,
  ASSEMBLED_MAX_SOURCES,
  type AssembledSource,
  type ContentOp,
  type DeltaRecord,
  type GzipInner,
  PACK_MAX_BYTES,
  type Payload,
  type RecordMeta,
} from './format.js';

/** Raw bytes held latin1 -> JSON: a UTF-8 string when the bytes are valid UTF-8, else { b64 }. */
type BytesJson = string | { b64: string };

export function bytesToJson(latin1: string): BytesJson {
  const bytes = Buffer.from(latin1, 'latin1');
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : { b64: bytes.toString('base64') };
}

export function bytesFromJson(v: unknown, field: string, line: number): string {
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
  if (r.meta.xattrs.length) o.xattrs = encodeXattrs(r.meta.xattrs);
  Object.assign(o, kindFields(r));
  return JSON.stringify(o);
}

/**
 * The fields of a record's kind (a file's size, sha256 and content, a link's target, a device's
 * numbers): all of them, or with `same` (a source entry of the same kind, for the runs coding)
 * only those that differ from it.
 */
export function kindFields(r: DeltaRecord, same?: Entry): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  switch (r.kind) {
    case 'file':
      if (same && r.content.op === 'same') break;
      o.size = r.size;
      // Bytes copied from the source need only a short per-file check; the full hashes are
      // covered by the header's target tree digest (docs/format.md, 'What apply checks').
      o.sha256 = isSourceCopy(r.content) ? r.sha256.slice(0, SOURCE_COPY_SHA_CHARS) : r.sha256;
      o.content = encodeContent(r.content);
      break;
    case 'symlink':
      if (same?.kind !== 'symlink' || same.target !== r.target) o.target = bytesToJson(r.target);
      break;
    case 'hardlink':
      if (same?.kind !== 'hardlink' || same.linkTo !== r.linkTo) o.linkTo = bytesToJson(r.linkTo);
      break;
    case 'chardev':
    case 'blockdev':
      if (same?.kind !== r.kind || same.major !== r.major || same.minor !== r.minor) {
        o.major = r.major;
        o.minor = r.minor;
      }
      break;
    case 'dir':
    case 'fifo':
      break;
  }
  return o;
}

export function encodeContent(c: ContentOp): Record<string, unknown> {
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
        ...(c.segmented ? { segmented: true } : {}),
        ...encodePayload(c.payload),
      };
    case 'brotli':
    case 'raw':
      return { op: c.op, ...encodePayload(c.payload) };
    case 'gzip':
      return { op: 'gzip', innerSize: c.innerSize, inner: encodeGzipInner(c.inner), recipe: encodePayload(c.recipe) };
    case 'assembled':
      return {
        op: 'assembled',
        sources: c.sources.map((s) => ({
          path: bytesToJson(s.path),
          size: s.size,
          sha256: s.sha256,
          ...(s.target ? { target: true } : {}),
          ...(s.escape ? { escape: s.escape } : {}),
        })),
        ...(c.brotli ? { brotli: true } : {}),
        ...encodePayload(c.payload),
      };
  }
}

/**
 * The parts of an assembled source: 1 to ASSEMBLED_MAX_SOURCES distinct paths of non-empty
 * files, ASSEMBLED_MAX_BYTES at most in all (what diff makes); anything else is refused here,
 * before a byte of the source is read.
 */
function decodeAssembledSources(v: unknown, line: number): AssembledSource[] {
  if (!Array.isArray(v) || v.length === 0) throw bad(line, 'has an assembled op without sources');
  if (v.length > ASSEMBLED_MAX_SOURCES) throw bad(line, `has an assembled op with more than ${ASSEMBLED_MAX_SOURCES} sources`);
  const seen = new Set<string>();
  let total = 0;
  return v.map((s: unknown, i) => {
    if (!isObject(s)) throw bad(line, `has an invalid assembled source ${i}`);
    const path = bytesFromJson(s.path, `sources[${i}].path`, line) as RelPath;
    if (s.target !== undefined && s.target !== true) throw bad(line, `has an assembled source ${i} whose target flag is not true`);
    if (s.escape !== undefined && s.escape !== 'json') throw bad(line, `has an assembled source ${i} with an unknown escape`);
    const key = `${s.target ? 'target' : 'source'}:${s.escape ?? 'raw'}:${path}`;
    if (seen.has(key)) throw bad(line, 'names one assembled source twice');
    seen.add(key);
    const size = uint(s.size, `sources[${i}].size`, line);
    if (size === 0) throw bad(line, `has an empty assembled source ${i}`);
    if (s.escape && size > ASSEMBLED_ESCAPED_MAX_BYTES) {
      throw bad(line, `has an assembled source ${i} taken as JSON text over ${ASSEMBLED_ESCAPED_MAX_BYTES} bytes`);
    }
    total += s.escape ? 6 * size : size;
    if (total > ASSEMBLED_MAX_BYTES) throw bad(line, `has assembled sources over ${ASSEMBLED_MAX_BYTES} bytes in all`);
    return {
      path,
      size,
      sha256: sha(s.sha256, `sources[${i}].sha256`, line),
      ...(s.target ? { target: true as const } : {}),
      ...(s.escape ? { escape: 'json' as const } : {}),
    };
  });
}

function encodeGzipInner(i: GzipInner): Record<string, unknown> {
  if (i.op === 'brotli') return { op: 'brotli', ...encodePayload(i.payload) };
  return {
    op: 'vcdiff',
    from: bytesToJson(i.from),
    fromSha256: i.fromSha256,
    ...(i.gunzipFrom ? { gunzipFrom: true } : {}),
    ...encodePayload(i.payload),
  };
}

function decodeGzipInner(v: unknown, line: number): GzipInner {
  if (!isObject(v)) throw bad(line, 'has a gzip op without inner');
  if (v.op === 'brotli') return { op: 'brotli', payload: decodePayload(v, line) };
  if (v.op !== 'vcdiff') throw bad(line, `has unknown gzip inner op ${JSON.stringify(v.op)}`);
  return {
    op: 'vcdiff',
    from: bytesFromJson(v.from, 'inner.from', line) as RelPath,
    fromSha256: sha(v.fromSha256, 'inner.fromSha256', line),
    gunzipFrom: v.gunzipFrom === true,
    payload: decodePayload(v, line),
  };
}

function encodePayload(p: Payload): Record<string, string | number[]> {
  if ('blob' in p) return { blob: p.blob };
  if ('packed' in p) return { packed: [p.packed.at, p.packed.size] };
  return { inline: p.inline.toString('base64') };
}

function decodePayload(c: Record<string, unknown>, line: number): Payload {
  if (typeof c.inline === 'string') {
    if (c.inline.length > INLINE_MAX_BASE64_CHARS) throw bad(line, `has an inline payload over ${INLINE_MAX_BYTES} bytes`);
    return { inline: base64(c.inline, 'inline', line) };
  }
  if (c.packed !== undefined) {
    // Bounds against the pack are checked where it is read (PayloadReader): the record does not know its size.
    if (!Array.isArray(c.packed) || c.packed.length !== 2) throw bad(line, 'has invalid packed (not [at, size])');
    const at = uint(c.packed[0], 'packed offset', line);
    const size = uint(c.packed[1], 'packed size', line);
    if (at + size > PACK_MAX_BYTES) throw bad(line, `has a packed payload past the largest pack (${PACK_MAX_BYTES} bytes)`);
    return { packed: { at, size } };
  }
  return { blob: sha(c.blob, 'blob', line) };
}

/** One line of the entries file as a JSON object, or the damaged-delta error naming the line. */
export function parseLine(text: string, line: number): Record<string, unknown> {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw bad(line, 'is not valid JSON');
  }
  if (!isObject(o)) throw bad(line, 'is not an object');
  return o;
}

export function decodeRecord(text: string, line: number): DeltaRecord {
  const o = parseLine(text, line);
  const path = bytesFromJson(o.path, 'path', line) as RelPath;
  const meta = decodeMeta(o, line);
  const base = { path, meta };
  switch (o.kind) {
    case 'file': {
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
      return { ...base, kind: o.kind, major: device(o.major, 'major', MAX_MAJOR, line), minor: device(o.minor, 'minor', MAX_MINOR, line) };
    default:
      throw bad(line, `has unknown kind ${JSON.stringify(o.kind)}`);
  }
}

/**
 * The metadata fields, each checked against what Linux can store exactly, so that what apply
 * writes is what the record says (a wider value would be silently truncated on the way).
 */
function decodeMeta(o: Record<string, unknown>, line: number): RecordMeta {
  return {
    mode: decodeMode(o.mode, line),
    uid: id(o.uid, 'uid', line),
    gid: id(o.gid, 'gid', line),
    mtimeNs: mtime(o.mtime, line),
    xattrs: o.xattrs === undefined ? [] : decodeXattrs(o.xattrs, line),
  };
}

export function encodeXattrs(xattrs: RecordMeta['xattrs']): [string, string][] {
  return xattrs.map((x) => [x.name, x.value.toString('base64')]);
}

export function decodeXattrs(xattrs: unknown, line: number): RecordMeta['xattrs'] {
  if (!Array.isArray(xattrs)) throw bad(line, 'has invalid xattrs');
  if (xattrs.length > MAX_XATTRS) throw bad(line, `has more than ${MAX_XATTRS} xattrs`);
  const decoded = xattrs.map((x: unknown) => decodeXattr(x, line));
  for (let i = 1; i < decoded.length; i++) {
    if (!(decoded[i - 1]!.name < decoded[i]!.name)) throw bad(line, 'has xattrs not sorted by name, or a name twice');
  }
  return decoded;
}

export function decodeMode(v: unknown, line: number): number {
  const mode = uint(v, 'mode', line);
  if (mode > 0o7777) throw bad(line, 'has invalid mode (permission bits are at most 07777)');
  return mode;
}

/** uid_t/gid_t values; 2^32-1 is -1 to chown ("leave unchanged"), so it cannot be restored. */
export const MAX_ID = 2 ** 32 - 2;
/** Linux's dev_t as the kernel stores it: 12-bit major, 20-bit minor. */
export const MAX_MAJOR = 2 ** 12 - 1;
export const MAX_MINOR = 2 ** 20 - 1;
/** Nanoseconds in a signed 64-bit integer: what utimensat's timespec and apply's calls carry exactly. */
const MIN_MTIME_NS = -(2n ** 63n);
const MAX_MTIME_NS = 2n ** 63n - 1n;
/** Linux: XATTR_NAME_MAX, XATTR_SIZE_MAX; and a bound on how many one record may list. */
const MAX_XATTR_NAME_BYTES = 255;
const MAX_XATTR_VALUE_BYTES = 65536;
const MAX_XATTRS = 1024;

export function id(v: unknown, field: string, line: number): number {
  const n = uint(v, field, line);
  if (n > MAX_ID) throw bad(line, `has invalid ${field} (at most ${MAX_ID})`);
  return n;
}

function mtime(v: unknown, line: number): bigint {
  return inMtimeRange(decimalNs(v, 'mtime', line), line);
}

/** A decimal string of nanoseconds (an mtime, or in format v3 the difference of two). */
export function decimalNs(v: unknown, field: string, line: number): bigint {
  if (typeof v !== 'string' || !/^-?\d{1,20}$/.test(v)) throw bad(line, `has no valid ${field}`);
  return BigInt(v);
}

export function inMtimeRange(ns: bigint, line: number): bigint {
  if (ns < MIN_MTIME_NS || ns > MAX_MTIME_NS) throw bad(line, 'has an mtime outside the signed 64-bit nanosecond range');
  return ns;
}

/**
 * An xattr name is a JSON string holding the name's raw bytes one character per byte
 * (U+0000..U+00FF, as paths are held inside deltaimg); a character above U+00FF is not a
 * byte and is refused rather than truncated. The value is canonical base64.
 */
export function decodeXattr(x: unknown, line: number): { name: string; value: Buffer } {
  if (!Array.isArray(x) || x.length !== 2 || typeof x[0] !== 'string' || typeof x[1] !== 'string') throw bad(line, 'has invalid xattrs');
  const name: string = x[0];
  if (name.length === 0 || name.length > MAX_XATTR_NAME_BYTES || !/^[\x01-\xff]+$/.test(name)) {
    throw bad(line, `has an invalid xattr name (1..${MAX_XATTR_NAME_BYTES} bytes, one character U+0001..U+00FF per byte)`);
  }
  const value = base64(x[1], `xattr ${JSON.stringify(name)} value`, line);
  if (value.length > MAX_XATTR_VALUE_BYTES) throw bad(line, `has an xattr value over ${MAX_XATTR_VALUE_BYTES} bytes`);
  return { name, value };
}

/** Canonical base64 only: Buffer.from skips what it does not understand, which would hide damage. */
function base64(v: string, field: string, line: number): Buffer {
  const bytes = Buffer.from(v, 'base64');
  if (bytes.toString('base64') !== v) throw bad(line, `has invalid base64 in ${field}`);
  return bytes;
}

export function decodeContent(c: unknown, line: number): ContentOp {
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
        ...segmentedFlag(c.segmented, line),
        payload: decodePayload(c, line),
        ...(c.exe === undefined ? {} : { exe: decodeExe(c.exe, line) }),
      };
    case 'brotli':
    case 'raw':
      return { op: c.op, payload: decodePayload(c, line) };
    case 'gzip':
      if (!isObject(c.recipe)) throw bad(line, 'has a gzip op without recipe');
      return {
        op: 'gzip',
        innerSize: uint(c.innerSize, 'innerSize', line),
        inner: decodeGzipInner(c.inner, line),
        recipe: decodePayload(c.recipe, line),
      };
    case 'assembled':
      return {
        op: 'assembled',
        sources: decodeAssembledSources(c.sources, line),
        brotli: c.brotli === true,
        payload: decodePayload(c, line),
      };
    default:
      throw bad(line, `has unknown content op ${JSON.stringify(c.op)}`);
  }
}

function segmentedFlag(value: unknown, line: number): { segmented?: true } {
  if (value === undefined) return {};
  if (value === true) return { segmented: true };
  throw bad(line, 'has a segmented flag that is not true');
}

function decodeExe(v: unknown, line: number): PairTransform {
  try {
    return decodePairTransform(v);
  } catch (err) {
    if (err instanceof TransformParamsError) throw bad(line, `has an invalid executable transform: ${err.message}`);
    throw err;
  }
}

/** Payloads up to this size ride inside the record (docs/format.md); a longer inline one is not ours. */
export const INLINE_MAX_BYTES = 2048;
const INLINE_MAX_BASE64_CHARS = Math.ceil(INLINE_MAX_BYTES / 3) * 4;

/** Hex digits of sha256 kept for files whose bytes are copied from the source (`same`, `copy`). */
export const SOURCE_COPY_SHA_CHARS = 16;

export function isSourceCopy(c: ContentOp): boolean {
  return c.op === 'same' || c.op === 'copy';
}

export function shaPrefix(v: unknown, line: number): string {
  if (typeof v !== 'string' || !/^[0-9a-f]+$/.test(v) || (v.length !== SOURCE_COPY_SHA_CHARS && v.length !== 64)) {
    throw bad(line, 'has invalid sha256');
  }
  return v;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function uint(v: unknown, field: string, line: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(line, `has invalid ${field}`);
  return v;
}

export function device(v: unknown, field: string, max: number, line: number): number {
  const n = uint(v, field, line);
  if (n > max) throw bad(line, `has invalid ${field} (at most ${max})`);
  return n;
}

export function sha(v: unknown, field: string, line: number): string {
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) throw bad(line, `has invalid ${field}`);
  return v;
}

export function bad(line: number, what: string): DeltaimgError {
  return new DeltaimgError('CORRUPT_DELTA', `delta entries record ${line} ${what}; the delta is damaged, make it again`);
}
