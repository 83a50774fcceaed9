/**
 * The one tar header codec: every rule about header blocks lives here, and both readers use
 * it (image/tar-index.ts indexes image archives, tarsplit/ splits layers byte for byte).
 *
 * Covered: v7, ustar (name + prefix), GNU (magic "ustar  ", long names 'L'/'K', old sparse
 * 'S' with extension blocks, base-256 numbers) and pax ('x' per-member records: `path`,
 * `linkpath`, `size`; GNU.sparse.* marks a pax sparse member).
 *
 * The rules, where tar writers differ:
 * - checksum: the unsigned byte sum with the chksum field as spaces, or the signed one that
 *   old tars wrote; both are accepted, as GNU tar and Go's archive/tar do;
 * - names are bytes: header fields, GNU long names and pax values are returned as latin1-held
 *   strings (one char per byte), never decoded, so no name is altered on the way; a reader
 *   that needs text decodes them (pax values are UTF-8 by POSIX, and so are all names Docker
 *   and Go write);
 * - a malformed pax record (bad length, no '=', a `size` that is not a decimal integer) makes
 *   the whole extended header malformed: what the next member is cannot be known. Strict
 *   readers refuse the archive; the splitter keeps the rest of the tar verbatim.
 */
export const BLOCK = 512;

/** Bytes of padding after a payload of `size` bytes, up to the next block boundary. */
export function paddingFor(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/**
 * The header checksum: the sum of all bytes with the chksum field (148..155) counted as
 * spaces. Old tars summed signed chars; both sums are accepted, as GNU tar does.
 */
export function checksumMatches(block: Buffer): boolean {
  const stored = parseNumeric(block.subarray(148, 156));
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b >= 0x80 ? b - 0x100 : b;
  }
  return stored === unsigned || stored === signed;
}

/** The header checksum: the sum of the block's bytes with the chksum field counted as spaces. */
export function headerChecksum(block: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += block[i]!;
  return sum;
}

/** The chksum field as GNU tar, Go's archive/tar and most writers format it: 6 octal digits, NUL, space. */
export function canonicalChecksumField(sum: number): Buffer {
  return Buffer.from(`${sum.toString(8).padStart(6, '0')}\0 `, 'latin1');
}

/**
 * A numeric header field: octal ASCII (leading spaces, terminated by NUL or space) or GNU
 * base-256 (first byte 0x80 positive, 0xff negative; big-endian in the remaining bytes), used
 * for sizes of 8 GiB and more. undefined when malformed or not a safe integer; an all-empty
 * field is 0, as tar readers treat it.
 */
export function parseNumeric(field: Buffer): number | undefined {
  if (field.length === 0) return undefined;
  const first = field[0]!;
  if (first & 0x80) return parseBase256(field);
  let i = 0;
  while (i < field.length && field[i] === 0x20) i++;
  let value = 0;
  let digits = 0;
  for (; i < field.length; i++) {
    const c = field[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return undefined;
    value = value * 8 + (c - 0x30);
    digits++;
  }
  for (; i < field.length; i++) if (field[i] !== 0 && field[i] !== 0x20) return undefined;
  if (!Number.isSafeInteger(value)) return undefined;
  return digits === 0 ? 0 : value;
}

function parseBase256(field: Buffer): number | undefined {
  if (field[0] === 0xff) return undefined; // negative: never a valid size
  let value = BigInt(field[0]! & 0x7f);
  for (let i = 1; i < field.length; i++) value = (value << 8n) | BigInt(field[i]!);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

/** A NUL-terminated field as latin1-held bytes. */
function cString(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString('latin1');
}

export type HeaderFormat = 'ustar' | 'gnu' | 'v7';

export interface RawHeader {
  /** The typeflag character ('\0' for old v7 regular files). */
  typeflag: string;
  /** The size field as parsed; undefined when malformed. */
  size: number | undefined;
  /** name, or prefix + '/' + name for POSIX ustar; latin1-held bytes. */
  name: string;
  linkname: string;
  format: HeaderFormat;
  /** Old GNU sparse ('S'): one or more 512-byte sparse-map extension blocks follow the header. */
  gnuSparseExtended: boolean;
}

export function parseHeader(block: Buffer): RawHeader {
  const magic = block.subarray(257, 265).toString('latin1');
  const format: HeaderFormat = magic === 'ustar  \0' ? 'gnu' : magic.startsWith('ustar\0') ? 'ustar' : 'v7';
  let name = cString(block.subarray(0, 100));
  if (format === 'ustar') {
    // In GNU headers this area holds atime/ctime and the sparse map instead.
    const prefix = cString(block.subarray(345, 500));
    if (prefix) name = `${prefix}/${name}`;
  }
  const typeflag = String.fromCharCode(block[156]!);
  return {
    typeflag,
    size: parseNumeric(block.subarray(124, 136)),
    name,
    linkname: cString(block.subarray(157, 257)),
    format,
    gnuSparseExtended: format === 'gnu' && typeflag === 'S' && block[482] !== 0,
  };
}

/** In an old-GNU sparse extension block, byte 504 says whether another one follows. */
export function sparseExtensionContinues(block: Buffer): boolean {
  return block[504] !== 0;
}

/** Members whose payload describes the next member rather than being one. */
export function isMetaType(typeflag: string): boolean {
  return typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K' || typeflag === 'X';
}

/**
 * Types that have no payload whatever their size field says (Go's archive/tar, which Docker
 * uses to read and write layers, skips none for them; GNU tar writes 0 there anyway).
 */
export function isHeaderOnlyType(typeflag: string): boolean {
  return typeflag >= '1' && typeflag <= '6';
}

/** Regular files: '0', old '\0' and contiguous '7'. */
export function isRegularType(typeflag: string): boolean {
  return typeflag === '0' || typeflag === '\0' || typeflag === '7';
}

/** What a pax extended header says about the next member, or why it cannot be read. */
export type PaxHeader =
  { ok: true; records: Map<string, string>; path?: string; linkpath?: string; size?: number; sparse: boolean } | { ok: false; why: string };

/**
 * Parses pax extended header records ("LEN key=value\n"), keeping keys and values as
 * latin1-held bytes; later records override earlier ones.
 */
export function parsePax(payload: Buffer): PaxHeader {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < payload.length) {
    // Some writers pad the payload with NULs after the last record.
    if (payload[pos] === 0 && payload.subarray(pos).every((b) => b === 0)) break;
    const space = payload.indexOf(0x20, pos);
    const lenText = space < 0 ? '' : payload.subarray(pos, space).toString('latin1');
    if (!/^[1-9][0-9]*$/.test(lenText)) return { ok: false, why: `bad record length at byte ${pos}` };
    const len = Number(lenText);
    if (len <= space - pos + 1 || pos + len > payload.length || payload[pos + len - 1] !== 0x0a) {
      return { ok: false, why: `record at byte ${pos} does not fit its length ${len}` };
    }
    const record = payload.subarray(space + 1, pos + len - 1); // without the trailing '\n'
    const eq = record.indexOf(0x3d);
    if (eq <= 0) return { ok: false, why: `record at byte ${pos} has no key=value` };
    records.set(record.subarray(0, eq).toString('latin1'), record.subarray(eq + 1).toString('latin1'));
    pos += len;
  }
  const header: PaxHeader = { ok: true, records, sparse: [...records.keys()].some((k) => k.startsWith('GNU.sparse.')) };
  const path = records.get('path');
  if (path !== undefined) header.path = path;
  const linkpath = records.get('linkpath');
  if (linkpath !== undefined) header.linkpath = linkpath;
  const size = records.get('size');
  if (size !== undefined) {
    if (!/^[0-9]+$/.test(size) || !Number.isSafeInteger(Number(size)))
      return { ok: false, why: `size ${JSON.stringify(size)} is not a byte count` };
    header.size = Number(size);
  }
  return header;
}

/** A latin1-held name (bytes) as text: UTF-8, as Docker, Go and GNU tar in UTF-8 locales write names. */
export function nameAsText(name: string): string {
  return Buffer.from(name, 'latin1').toString('utf8');
}

/** The value of a GNU long name/link payload ('L'/'K'): up to the first NUL. */
export function longNameValue(payload: Buffer): string {
  return cString(payload);
}

/**
 * The path a member is extracted at: leading '/' and './' dropped, a trailing '/' dropped
 * (directories). undefined when it is not a safe relative path below the root: a '..' or
 * '.' component, an empty component, a NUL byte, or the root itself.
 */
export function normalizeMemberPath(name: string): string | undefined {
  let p = name;
  for (;;) {
    if (p.startsWith('/')) p = p.slice(1);
    else if (p.startsWith('./')) p = p.slice(2);
    else break;
  }
  while (p.endsWith('/')) p = p.slice(0, -1);
  if (p === '' || p === '.' || p.includes('\0')) return undefined;
  for (const part of p.split('/')) if (part === '' || part === '.' || part === '..') return undefined;
  return p;
}
