/**
 * The wrappers around a deflate stream: gzip members (RFC 1952, every field kept verbatim:
 * mtime, XFL, OS, extra, name, comment, header CRC) and the zlib header (RFC 1950).
 */

export type Container = 'gzip' | 'zlib' | 'raw';

const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;
const RESERVED_FLAGS = 0xe0;
/** A header longer than this (a huge name or extra field) is not one a compressor writes. */
export const MAX_GZIP_HEADER = 1 << 16;

export type HeaderParse = { kind: 'header'; length: number } | { kind: 'need-more' } | { kind: 'invalid'; why: string };

/** Length of the gzip member header at b[0..], or why it is not one. */
export function parseGzipHeader(b: Uint8Array, atEnd: boolean): HeaderParse {
  const need: HeaderParse = atEnd ? { kind: 'invalid', why: 'gzip header is cut short' } : { kind: 'need-more' };
  if (b.length < 10) return need;
  if (b[0] !== 0x1f || b[1] !== 0x8b) return { kind: 'invalid', why: 'not gzip (no 1f 8b magic)' };
  if (b[2] !== 8) return { kind: 'invalid', why: `gzip compression method ${b[2]} is not deflate` };
  const flags = b[3]!;
  if (flags & RESERVED_FLAGS) return { kind: 'invalid', why: 'gzip header has reserved flags set' };
  let pos = 10;
  if (flags & FEXTRA) {
    if (b.length < pos + 2) return need;
    pos += 2 + (b[pos]! | (b[pos + 1]! << 8));
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (!(flags & flag)) continue;
    const end = b.indexOf(0, pos);
    if (end < 0) return b.length >= MAX_GZIP_HEADER ? { kind: 'invalid', why: 'gzip name or comment is unterminated' } : need;
    pos = end + 1;
  }
  if (flags & FHCRC) pos += 2;
  if (pos > MAX_GZIP_HEADER) return { kind: 'invalid', why: 'gzip header is longer than 64 KiB' };
  return pos <= b.length ? { kind: 'header', length: pos } : need;
}

/** The zlib header (2 bytes) or why it is not one we can rebuild (a preset dictionary). */
export function parseZlibHeader(b: Uint8Array, atEnd: boolean): HeaderParse {
  if (b.length < 2) return atEnd ? { kind: 'invalid', why: 'zlib header is cut short' } : { kind: 'need-more' };
  const cmf = b[0]!;
  const flg = b[1]!;
  if ((cmf & 15) !== 8 || cmf >> 4 > 7 || (cmf * 256 + flg) % 31 !== 0) return { kind: 'invalid', why: 'not a zlib stream' };
  if (flg & 0x20) return { kind: 'invalid', why: 'zlib stream uses a preset dictionary' };
  return { kind: 'header', length: 2 };
}

export function trailerLength(container: Container): number {
  return container === 'gzip' ? 8 : container === 'zlib' ? 4 : 0;
}

/** The XFL byte: 2 = maximum compression, 4 = fastest (zlib, GNU gzip and Go all write it so). */
export function gzipXfl(header: Uint8Array): number {
  return header[8] ?? 0;
}
