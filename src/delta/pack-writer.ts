/**
 * The pack (format v3): once every file is encoded, the small payloads of many records are put
 * into one brotli stream instead of being compressed each on its own. A thousand new source files
 * compressed one by one each pay again for the vocabulary, the licence header and the idioms they
 * share; compressed together they pay once (1,000 generated files of the many-files benchmark:
 * 901 kB one by one, 504 kB together). Small VCDIFFs go in plain, so that their added bytes share
 * that context too. The pack is kept only when it beats what its members cost on their own.
 */
import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, constants as zc } from 'node:zlib';
import type { ContentOp, DeltaRecord, PackedPayload, Payload } from './format.js';
import { PACK_MAX_BYTES } from './format.js';
import { brotliMemory } from './file-codecs.js';

/** A member's uncompressed bytes: files (or plain VCDIFFs) larger than this stay on their own. */
const PACK_MEMBER_MAX_BYTES = 1024 * 1024;
/** What a blob costs besides its bytes in a gzip'd delta directory: its tar header, compressed. */
const BLOB_OVERHEAD_BYTES = 100;
/** What a packed payload adds to its record: `"packed":[at,size]`, brotli'd with the rest. */
const PACKED_RECORD_BYTES = 8;
/** Brotli's best quality up to this much; above it quality 9 (11 runs at ~1 MB/s). */
const PACK_BEST_QUALITY_BYTES = 8 * 1024 * 1024;

const brotli = promisify(brotliCompress);

/** One encoded target entry, as diff holds it before writing the entries file. */
export interface PackableEntry {
  record: DeltaRecord;
  payloadBytes: number;
}

/** What the pack writer needs of the encoder. */
export interface PackSink {
  /** The target file's bytes (for a raw or brotli record). */
  targetBytes(record: DeltaRecord & { kind: 'file' }): Promise<Buffer>;
  /** A payload's stored bytes (a blob's file, or the inline bytes). */
  payloadBytes(payload: Payload): Promise<Buffer>;
  /** Stores the compressed pack as a blob; returns its sha256. */
  keepPack(compressed: Buffer): Promise<string>;
  /** Drops a payload a record no longer uses. */
  release(payload: Payload): Promise<void>;
  /** Runs `job` once `bytes` of the memory budget are free. */
  withMemory<T>(bytes: number, job: () => Promise<T>): Promise<T>;
}

/** A record that may join the pack; its bytes are read only once it is chosen (the pack's cap bounds the memory). */
type Candidate = {
  at: number;
  estimate: number;
  cost: number;
  key: string;
  load: () => Promise<Buffer | undefined>;
  content: (packed: PackedPayload) => ContentOp;
};
type Member = Candidate & { bytes: Buffer };

/**
 * Moves the payloads that gain from it into one pack; rewrites their records in `encoded` and
 * returns the header's `pack`, or undefined when no pack pays for itself.
 */
export async function packPayloads(encoded: PackableEntry[], sink: PackSink): Promise<{ blob: string; bytes: number } | undefined> {
  const candidates = encoded.flatMap((e, at) => candidateOf(e, at, sink) ?? []);
  // Smallest first: they gain most from a shared context, and the cap then leaves out the large.
  candidates.sort((a, b) => a.estimate - b.estimate);
  const members: Member[] = [];
  let total = 0;
  for (const c of candidates) {
    if (total + c.estimate > PACK_MAX_BYTES) break;
    const bytes = await c.load();
    if (!bytes || bytes.length > PACK_MEMBER_MAX_BYTES || total + bytes.length > PACK_MAX_BYTES) continue;
    members.push({ ...c, bytes });
    total += bytes.length;
  }
  if (members.length < 2) return undefined;
  // Like with like: files of one kind side by side (brotli's context models adapt), in path
  // order within it (one package's files together).
  members.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const raw = Buffer.concat(members.map((m) => m.bytes));
  // The input and output, the 16 MiB window and the encoder's tables around it (brotliMemory).
  const compressed = await sink.withMemory(2 * raw.length + brotliMemory(raw.length), () =>
    brotli(raw, {
      params: {
        [zc.BROTLI_PARAM_QUALITY]: raw.length <= PACK_BEST_QUALITY_BYTES ? 11 : 9,
        [zc.BROTLI_PARAM_LGWIN]: 24,
        [zc.BROTLI_PARAM_SIZE_HINT]: raw.length,
      },
    }),
  );
  const alone = members.reduce((n, m) => n + m.cost, 0);
  if (compressed.length + BLOB_OVERHEAD_BYTES + members.length * PACKED_RECORD_BYTES >= alone) return undefined;
  const blob = await sink.keepPack(compressed);
  let offset = 0;
  for (const m of members) {
    const before = encoded[m.at]!;
    const size = m.bytes.length;
    if (before.record.kind !== 'file' || !('payload' in before.record.content)) throw new Error('pack member without a payload');
    await sink.release(before.record.content.payload);
    encoded[m.at] = {
      record: { ...before.record, content: m.content({ at: offset, size }) },
      // The member's share of the pack, so that the header's payload counts still add up.
      payloadBytes: Math.round((compressed.length * size) / raw.length),
    };
    offset += size;
  }
  return { blob, bytes: raw.length };
}

/** What the plain VCDIFF of a brotli'd one is taken to weigh before it is read (text VCDIFFs brotli ~3:1). */
const BROTLI_RATIO_ESTIMATE = 3;

/** The candidate an encoded entry makes, or undefined when it stays as it is. */
function candidateOf(e: PackableEntry, at: number, sink: PackSink): Candidate | undefined {
  const r = e.record;
  if (r.kind !== 'file') return undefined;
  const c = r.content;
  const cost = e.payloadBytes + ('payload' in c && 'blob' in c.payload ? BLOB_OVERHEAD_BYTES : 0);
  switch (c.op) {
    case 'raw':
    case 'brotli':
      if (r.size > PACK_MEMBER_MAX_BYTES) return undefined;
      return {
        at,
        estimate: r.size,
        cost,
        key: `0${extensionOf(r.path)}\0${r.path}`,
        load: () => (c.op === 'raw' ? sink.payloadBytes(c.payload) : sink.targetBytes(r)),
        content: (packed) => ({ op: 'raw', payload: { packed } }),
      };
    case 'vcdiff':
    case 'assembled': {
      // A VCDIFF brotli'd on its own is stored plain in the pack (the pack is brotli'd as a whole).
      const estimate = c.brotli ? e.payloadBytes * BROTLI_RATIO_ESTIMATE : e.payloadBytes;
      if (estimate > PACK_MEMBER_MAX_BYTES) return undefined;
      return {
        at,
        estimate,
        cost,
        key: `1${extensionOf(r.path)}\0${r.path}`,
        load: async () => {
          const stored = await sink.payloadBytes(c.payload);
          // One that decompresses past the member limit stays on its own.
          return c.brotli ? unbrotli(stored, { maxOutputLength: PACK_MEMBER_MAX_BYTES }).catch(() => undefined) : stored;
        },
        content: (packed) => ({ ...c, brotli: false, payload: { packed } }),
      };
    }
    default:
      return undefined;
  }
}

const unbrotli = promisify(brotliDecompress);

/** `js` for `a/b.min.js`, `` for `README`: what kind of text a file holds, as far as its name tells. */
function extensionOf(path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1) : '';
}
