/**
 * The recipe: everything needed, besides the decompressed bytes, to rebuild a compressed
 * stream byte for byte. Binary, versioned, validated field by field when read.
 *
 *   "DFLR" magic, version byte (1), container byte (0 raw, 1 gzip, 2 zlib)
 *   varints: compressed size, decompressed size; sha256 of the compressed bytes (32 bytes)
 *   varint member count, then per member:
 *     varint header length + header bytes (gzip/zlib header verbatim)
 *     varint decompressed size
 *     method byte: 0 tokens (from the token section), 1 zlib (level, memLevel, strategy, windowBits bytes)
 *     varint trailer length + trailer bytes (CRC/size or Adler-32 verbatim)
 *   varint trailing length + bytes after the last member (verbatim, at most 64 KiB)
 *   varint token section length + brotli of the token bytes of every "tokens" member in order
 */
import { DeltaimgError } from '../util/errors.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { type Container, MAX_GZIP_HEADER } from './container.js';
import { MAX_TRAILING } from './scan.js';

export const RECIPE_VERSION = 1;
const MAGIC = Buffer.from('DFLR');
const CONTAINERS: readonly Container[] = ['raw', 'gzip', 'zlib'];

export interface ZlibSettings {
  level: number;
  memLevel: number;
  strategy: number;
  windowBits: number;
}

export type MemberMethod = { kind: 'tokens' } | ({ kind: 'zlib' } & ZlibSettings);

export interface RecipeMember {
  header: Buffer;
  decompressedSize: number;
  method: MemberMethod;
  trailer: Buffer;
}

export interface Recipe {
  container: Container;
  compressedSize: number;
  decompressedSize: number;
  sha256: Buffer;
  members: RecipeMember[];
  trailing: Buffer;
  /** Brotli-compressed token bytes (empty when no member uses tokens). */
  tokens: Buffer;
}

export function encodeRecipe(r: Recipe): Buffer {
  const w = new ByteWriter();
  w.raw(MAGIC);
  w.byte(RECIPE_VERSION);
  w.byte(CONTAINERS.indexOf(r.container));
  w.varint(r.compressedSize);
  w.varint(r.decompressedSize);
  w.raw(r.sha256);
  w.varint(r.members.length);
  for (const m of r.members) {
    w.varint(m.header.length);
    w.raw(m.header);
    w.varint(m.decompressedSize);
    if (m.method.kind === 'tokens') w.byte(0);
    else {
      w.byte(1);
      for (const v of [m.method.level, m.method.memLevel, m.method.strategy, m.method.windowBits]) w.byte(v);
    }
    w.varint(m.trailer.length);
    w.raw(m.trailer);
  }
  w.varint(r.trailing.length);
  w.raw(r.trailing);
  w.varint(r.tokens.length);
  w.raw(r.tokens);
  return w.take();
}

function corrupt(what: string): DeltaimgError {
  return new DeltaimgError('CORRUPT_DELTA', `deflate recipe is damaged: ${what}; the delta cannot be used, make it again`);
}

/** Reads and checks a recipe; every size is bounded by the recorded compressed size. */
export function decodeRecipe(bytes: Uint8Array): Recipe {
  const r = new ByteReader(bytes, corrupt);
  if (!Buffer.from(r.take(4, 'magic')).equals(MAGIC)) throw corrupt('no DFLR magic');
  const version = r.byte('version');
  if (version !== RECIPE_VERSION)
    throw new DeltaimgError(
      'UNSUPPORTED_VERSION',
      `deflate recipe version ${version} is newer than this deltaimg reads (${RECIPE_VERSION}); upgrade deltaimg`,
    );
  const container = CONTAINERS[r.byte('container')];
  if (!container) throw corrupt('unknown container');
  const compressedSize = r.varint('compressed size');
  const decompressedSize = r.varint('decompressed size');
  const sha256 = Buffer.from(r.take(32, 'digest'));
  const count = r.varint('member count', Math.max(1, compressedSize));
  if (count === 0) throw corrupt('no members');
  if (container !== 'gzip' && count !== 1) throw corrupt(`a ${container} stream has ${count} members`);
  const members: RecipeMember[] = [];
  let framing = 0;
  let inflated = 0;
  for (let i = 0; i < count; i++) {
    const header = Buffer.from(r.take(r.varint('header length', MAX_GZIP_HEADER), 'header'));
    const size = r.varint('member size', decompressedSize - inflated);
    inflated += size;
    const method = readMethod(r);
    const trailer = Buffer.from(r.take(r.varint('trailer length', 8), 'trailer'));
    const wantTrailer = container === 'gzip' ? 8 : container === 'zlib' ? 4 : 0;
    if (trailer.length !== wantTrailer) throw corrupt(`trailer of ${trailer.length} bytes for ${container}`);
    if (container === 'raw' && header.length !== 0) throw corrupt('raw stream with a header');
    framing += header.length + trailer.length;
    members.push({ header, decompressedSize: size, method, trailer });
  }
  if (inflated !== decompressedSize) throw corrupt('member sizes do not add up');
  const trailing = Buffer.from(r.take(r.varint('trailing length', MAX_TRAILING), 'trailing bytes'));
  framing += trailing.length;
  if (framing > compressedSize) throw corrupt('headers are larger than the stream');
  const tokens = Buffer.from(r.take(r.varint('token section length', r.remaining), 'token section'));
  if (r.remaining !== 0) throw corrupt('bytes after the token section');
  const usesTokens = members.some((m) => m.method.kind === 'tokens');
  if (usesTokens !== tokens.length > 0) throw corrupt('token section does not match the members');
  return { container, compressedSize, decompressedSize, sha256, members, trailing, tokens };
}

function readMethod(r: ByteReader): MemberMethod {
  const kind = r.byte('method');
  if (kind === 0) return { kind: 'tokens' };
  if (kind !== 1) throw corrupt(`unknown method ${kind}`);
  const level = r.byte('level');
  const memLevel = r.byte('memLevel');
  const strategy = r.byte('strategy');
  const windowBits = r.byte('windowBits');
  if (level < 0 || level > 9 || memLevel < 1 || memLevel > 9 || strategy > 4 || windowBits < 9 || windowBits > 15)
    throw corrupt('zlib settings out of range');
  return { kind: 'zlib', level, memLevel, strategy, windowBits };
}

/** A one-line account of a recipe, for inspect and reports. */
export function describeRecipe(r: Recipe): string {
  const kinds = new Set(
    r.members.map((m) => (m.method.kind === 'zlib' ? `zlib level ${m.method.level} memLevel ${m.method.memLevel}` : 'tokens')),
  );
  return `${r.container}, ${r.members.length} member${r.members.length === 1 ? '' : 's'}, ${[...kinds].join(' + ')}`;
}
