/**
 * One pass over a tar stream as a sequence of events that, concatenated, are exactly the
 * input bytes:
 *
 * - `header`: a valid header block (512 bytes);
 * - `raw`: other bytes that are not a regular file's content (sparse extension
 *   blocks, pax / GNU long-name payloads, non-regular payloads, the end-of-archive blocks and
 *   whatever follows them, a truncated tail, anything after a block that is not a valid header);
 * - `member`: a member's header has been read (its raw bytes were already emitted), with the
 *   path and size it has after its pax / GNU long-name headers are applied;
 * - `content`: a piece of a regular member's payload (only between `member` and `padding`);
 * - `padding`: the bytes after a regular member's payload up to the block boundary.
 *
 * Regular members are '0', '\0' and '7' that are not pax sparse files (GNU.sparse.*: their
 * payload is a sparse map plus data, not the file's content, so it is reported as `raw`).
 * Everything after the first zero block (or first invalid header) is `raw`: tars from Docker
 * end with two or more zero blocks, GNU tar pads to 10 KiB records, and some tools append more.
 */
import {
  BLOCK,
  checksumMatches,
  isHeaderOnlyType,
  isMetaType,
  isRegularType,
  isZeroBlock,
  longNameValue,
  paddingFor,
  parseHeader,
  parsePax,
  sparseExtensionContinues,
} from '../tar/header.js';
import { ByteReader } from './reader.js';

export interface Member {
  typeflag: string;
  /** The member's path as recorded (pax path > GNU 'L' > header), latin1-held, not normalized. */
  name: string;
  /** The hardlink / symlink target as recorded (pax linkpath > GNU 'K' > header). */
  linkname: string;
  /** Payload bytes on tape (not counting padding). */
  size: number;
  /** A regular file whose payload is its content: `content` events follow. */
  regular: boolean;
}

export type TarEvent =
  | { kind: 'raw'; bytes: Buffer }
  | { kind: 'header'; bytes: Buffer }
  | { kind: 'member'; member: Member }
  | { kind: 'content'; bytes: Buffer }
  | { kind: 'padding'; bytes: Buffer };

/** Payloads of meta members ('x', 'L', ...) bigger than this are passed through unparsed. */
const MAX_META_PAYLOAD = 8 * 1024 * 1024;

/** What pax 'x' and GNU 'L'/'K' members say about the next member. */
interface Pending {
  name?: string;
  linkname?: string;
  size?: number;
  paxSparse?: boolean;
  /** A pax header we cannot read: where the next member ends is unknown. */
  malformed?: boolean;
}

export async function* scanTar(reader: ByteReader): AsyncGenerator<TarEvent> {
  let pending: Pending = {};
  for (;;) {
    const block = await reader.read(BLOCK);
    if (block.length < BLOCK || isZeroBlock(block) || !checksumMatches(block)) {
      yield* tail(reader, block);
      return;
    }
    const header = parseHeader(block);
    yield { kind: 'header', bytes: block };
    if (header.gnuSparseExtended) yield* sparseExtensions(reader);

    // A pax `size` is for the next member proper, not for another meta header before it.
    const size = isHeaderOnlyType(header.typeflag) ? 0 : isMetaType(header.typeflag) ? header.size : (pending.size ?? header.size);
    if (size === undefined) {
      // A size we cannot read: we cannot find the next header, so the rest is kept as is.
      yield* tail(reader, Buffer.alloc(0));
      return;
    }

    // A meta payload too big to parse is passed through below as an opaque payload.
    if (isMetaType(header.typeflag) && size <= MAX_META_PAYLOAD) {
      const payload = await reader.read(size + paddingFor(size));
      yield { kind: 'raw', bytes: payload };
      pending = mergeMeta(pending, header.typeflag, payload.subarray(0, size));
      if (pending.malformed) {
        // As after an invalid header: the rest is kept verbatim, uninterpreted.
        yield* tail(reader, Buffer.alloc(0));
        return;
      }
      continue;
    }

    const member: Member = {
      typeflag: header.typeflag,
      name: pending.name ?? header.name,
      linkname: pending.linkname ?? header.linkname,
      size,
      regular: isRegularType(header.typeflag) && !pending.paxSparse,
    };
    if (!isMetaType(header.typeflag)) pending = {};
    yield { kind: 'member', member };
    if (member.regular) {
      for await (const bytes of reader.take(size)) yield { kind: 'content', bytes };
      const pad = paddingFor(size);
      if (pad) yield { kind: 'padding', bytes: await reader.read(pad) };
    } else {
      for await (const bytes of reader.take(size + paddingFor(size))) yield { kind: 'raw', bytes };
    }
  }
}

function* rawPieces(first: Buffer): Generator<TarEvent> {
  if (first.length) yield { kind: 'raw', bytes: first };
}

/** The end-of-archive marker and everything after it, verbatim. */
async function* tail(reader: ByteReader, first: Buffer): AsyncGenerator<TarEvent> {
  yield* rawPieces(first);
  for await (const bytes of reader.rest()) yield { kind: 'raw', bytes };
}

/** Old GNU sparse members: extension blocks of the sparse map, chained by a flag. */
async function* sparseExtensions(reader: ByteReader): AsyncGenerator<TarEvent> {
  for (;;) {
    const ext = await reader.read(BLOCK);
    if (ext.length) yield { kind: 'raw', bytes: ext };
    if (ext.length < BLOCK || !sparseExtensionContinues(ext)) return;
  }
}

function mergeMeta(pending: Pending, typeflag: string, payload: Buffer): Pending {
  switch (typeflag) {
    case 'L':
      return { ...pending, name: longNameValue(payload) };
    case 'K':
      return { ...pending, linkname: longNameValue(payload) };
    case 'x':
    case 'X': {
      const pax = parsePax(payload);
      if (!pax.ok) return { ...pending, malformed: true };
      const next = { ...pending };
      if (pax.path !== undefined) next.name = pax.path;
      if (pax.linkpath !== undefined) next.linkname = pax.linkpath;
      if (pax.size !== undefined) next.size = pax.size;
      if (pax.sparse) next.paxSparse = true;
      return next;
    }
    default:
      // 'g' (global) records: Go's archive/tar, Docker's reader, does not apply them either.
      return pending;
  }
}
