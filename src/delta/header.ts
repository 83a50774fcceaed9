/**
 * Reading and validating deltaimg.json, the header that makes a delta complete: every field
 * is checked here into a typed DeltaHeader (one-line errors naming the field), so nothing
 * after this reads the parsed JSON.
 */
import { join } from 'node:path';
import { DeltaimgError, ioError } from '../util/errors.js';
import { checkReaderVersion, JsonFields, type JsonObject } from '../util/json-input.js';
import { openRegular } from '../util/regular-file.js';
import {
  FORMAT_NAME,
  FORMAT_VERSION,
  HEADER_FILE,
  PACK_MAX_BYTES,
  type ContentOpName,
  type DeltaHeader,
  type DeltaStats,
  type EntriesCoding,
} from './format.js';

/** deltaimg.json is small (annotations hold at most an image config); a bigger one is not ours. */
const HEADER_MAX_BYTES = 16 * 1024 * 1024;

export async function readHeader(deltaDir: string): Promise<DeltaHeader> {
  const path = join(deltaDir, HEADER_FILE);
  const fields = new JsonFields(path, 'CORRUPT_DELTA', 'the delta is damaged, copy it again');
  return decodeHeader(fields.parse(await readHeaderText(deltaDir, path)), fields, deltaDir);
}

async function readHeaderText(deltaDir: string, path: string): Promise<string> {
  let opened;
  try {
    opened = await openRegular(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `${deltaDir} is not a complete deltaimg delta (no ${HEADER_FILE}); make it with 'deltaimg diff' or copy it again`,
      );
    }
    if (code === 'EINVAL') throw new DeltaimgError('CORRUPT_DELTA', `${path} is not a regular file; the delta is damaged, copy it again`);
    throw ioError('read', path, err);
  }
  try {
    if (opened.size > HEADER_MAX_BYTES) {
      throw new DeltaimgError(
        'CORRUPT_DELTA',
        `${path} has ${opened.size} bytes, more than a delta header can (${HEADER_MAX_BYTES}); the delta is damaged`,
      );
    }
    return await opened.fh.readFile('utf8');
  } catch (err) {
    if (err instanceof DeltaimgError) throw err;
    throw ioError('read', path, err);
  } finally {
    await opened.fh.close();
  }
}

/** The header's JSON as a typed DeltaHeader; the version gate comes first, as a newer format may differ in anything else. */
export function decodeHeader(json: unknown, f: JsonFields, deltaDir: string): DeltaHeader {
  const h = f.object(json, '');
  if (h.format !== FORMAT_NAME)
    throw f.error('format', `is ${JSON.stringify(h.format)?.slice(0, 60) ?? 'missing'}, not "${FORMAT_NAME}": not a deltaimg delta header`);
  const { version, minReaderVersion } = checkReaderVersion(f, h, FORMAT_VERSION, `${deltaDir} uses delta format`);
  const entries = f.object(h.entries, 'entries');
  return {
    format: FORMAT_NAME,
    version,
    minReaderVersion,
    tool: f.string(h.tool, 'tool'),
    created: f.string(h.created, 'created'),
    entries: {
      file: f.string(entries.file, 'entries.file', /^[A-Za-z0-9._-]{1,255}$/),
      sha256: f.string(entries.sha256, 'entries.sha256', SHA256_HEX),
      count: f.uint(entries.count, 'entries.count'),
      rawBytes: f.uint(entries.rawBytes, 'entries.rawBytes'),
      coding: entries.coding === undefined ? 'records' : f.oneOf(entries.coding, 'entries.coding', ENTRIES_CODINGS),
    },
    source: treeInfo(f, h.source, 'source'),
    target: treeInfo(f, h.target, 'target'),
    stats: stats(f, h.stats),
    largest: f.array(h.largest, 'largest', (x, field) => {
      const l = f.object(x, field);
      return {
        path: f.string(l.path, `${field}.path`),
        op: f.oneOf(l.op, `${field}.op`, CONTENT_OPS),
        bytes: f.uint(l.bytes, `${field}.bytes`),
      };
    }),
    ...(h.pack === undefined ? {} : { pack: pack(f, h.pack) }),
    ...(h.annotations === undefined ? {} : { annotations: h.annotations }),
  };
}

function pack(f: JsonFields, v: unknown): { blob: string; bytes: number } {
  const p = f.object(v, 'pack');
  const bytes = f.uint(p.bytes, 'pack.bytes');
  if (bytes > PACK_MAX_BYTES) throw f.error('pack.bytes', `is ${bytes}, more than a pack may hold (${PACK_MAX_BYTES})`);
  return { blob: f.string(p.blob, 'pack.blob', SHA256_HEX), bytes };
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const ENTRIES_CODINGS: readonly EntriesCoding[] = ['records', 'runs'];
const CONTENT_OPS: readonly ContentOpName[] = ['same', 'copy', 'vcdiff', 'bsdiff', 'brotli', 'raw', 'gzip', 'assembled'];

function treeInfo(f: JsonFields, v: unknown, field: string): { treeSha256: string; entries: number } {
  const t = f.object(v, field);
  return { treeSha256: f.string(t.treeSha256, `${field}.treeSha256`, SHA256_HEX), entries: f.uint(t.entries, `${field}.entries`) };
}

type Count = 'unchanged' | 'moved' | 'delta' | 'new' | 'deleted' | 'metadataOnly' | 'other' | 'targetFileBytes' | 'deltaBytes';

function stats(f: JsonFields, v: unknown): DeltaStats {
  const s = f.object(v, 'stats');
  const count = (name: Count): number => f.uint(s[name], `stats.${name}`);
  const p: JsonObject = f.object(s.payloadBytes, 'stats.payloadBytes');
  return {
    unchanged: count('unchanged'),
    moved: count('moved'),
    delta: count('delta'),
    new: count('new'),
    deleted: count('deleted'),
    metadataOnly: count('metadataOnly'),
    other: count('other'),
    targetFileBytes: count('targetFileBytes'),
    deltaBytes: count('deltaBytes'),
    payloadBytes: {
      vcdiff: f.uint(p.vcdiff, 'stats.payloadBytes.vcdiff'),
      // Deltas from before bsdiff existed have no such count.
      bsdiff: p.bsdiff === undefined ? 0 : f.uint(p.bsdiff, 'stats.payloadBytes.bsdiff'),
      brotli: f.uint(p.brotli, 'stats.payloadBytes.brotli'),
      raw: f.uint(p.raw, 'stats.payloadBytes.raw'),
      // Deltas from before the gzip op have no such count.
      gzip: p.gzip === undefined ? 0 : f.uint(p.gzip, 'stats.payloadBytes.gzip'),
      // Deltas from before the assembled op have no such count.
      assembled: p.assembled === undefined ? 0 : f.uint(p.assembled, 'stats.payloadBytes.assembled'),
    },
  };
}
