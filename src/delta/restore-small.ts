/**
 * Restores one target file whose inputs fit in memory: its source and payload are read
 * once, checked there (source sha256, blob sha256), decoded in memory and written with
 * synchronous calls, the output hashed as it is written and compared with the record.
 * For the thousands of small files of a root filesystem this costs a fraction of streams
 * and worker round trips. Used by apply's main thread and by its restore workers alike.
 */
import { closeSync, constants as fsc, openSync } from 'node:fs';
import type { RelPath } from '../tree/entry.js';
import { applyMetadataSync, type RestoreReport } from '../tree/meta.js';
import { displayPath, toFsPath } from '../tree/paths.js';
import { bsdiffDecodeInMemory } from '../bsdiff/index.js';
import { decodeInMemory } from '../vcdiff/index.js';
import { DeltaimgError, isDeltaimgError } from '../util/errors.js';
import { vcdiffMaxBytes } from '../util/byte-limit.js';
import { writeAllSync } from '../util/write-all.js';
import { checkExeFits, decodeTransformedSync } from './exe-codec.js';
import { copySmallFileSync, writeSmallFileSync, type Written } from './file-codecs.js';
import { readAssembledSource } from './assembled-source.js';
import { assembledBound, type FileRecord } from './format.js';
import type { PayloadReader } from './payload-store.js';
import { sourceReadError, wrongSource, type SourceTree } from './source-tree.js';

/**
 * Files up to this size, with sources and payloads up to it, are restored in memory;
 * larger ones stream, in parallel jobs. It covers every bsdiff patch diff makes (pairs up to
 * 24 MiB): the streaming bsdiff decoder runs on this thread too, and starved by the in-memory
 * restores it finished last (kernel modules pair: amdgpu.ko, 19 MB, 1.2 s after the rest).
 */
export const IN_MEMORY_MAX_BYTES = 32 * 1024 * 1024;

export class SmallFileRestorer {
  constructor(
    private readonly out: string,
    private readonly source: SourceTree,
    private readonly payloads: PayloadReader,
    private readonly report: RestoreReport,
    /** The target files already restored, read as parts of assembled sources. */
    private readonly restored: SourceTree,
  ) {}

  /**
   * Restores `r` with its metadata and verifies it; false (nothing written) when the file,
   * its source or its payload is too large for memory. For a copied file `r.sha256` (a
   * prefix in the delta) is replaced by the full hash of what was written.
   */
  async restore(r: FileRecord): Promise<boolean> {
    const abs = toFsPath(this.out, r.path);
    let written: Written | null;
    try {
      written = await this.write(r, abs);
    } catch (err) {
      throw withPath(r, err);
    }
    if (written === null) return false;
    verifyWritten(r, written);
    applyMetadataSync(abs, r, this.report);
    return true;
  }

  private async write(r: FileRecord, abs: Buffer): Promise<Written | null> {
    const c = r.content;
    if (r.size > IN_MEMORY_MAX_BYTES) return null;
    switch (c.op) {
      case 'same':
      case 'copy': {
        const from = c.op === 'same' ? r.path : c.from;
        const source = this.source.pathSync(from);
        let written: Written;
        try {
          written = copySmallFileSync(source, abs);
        } catch (err) {
          throw sourceReadError(from, err);
        }
        return checkCopied(r, from, written);
      }
      case 'raw':
      case 'brotli': {
        // The declared size bounds the output: more is a corrupt payload, refused before a byte is written.
        const bytes = this.payloads.readSmallSync(c.payload, displayPath(r.path), {
          brotli: c.op === 'brotli',
          maxBytes: IN_MEMORY_MAX_BYTES,
          declaredBytes: r.size,
        });
        if (bytes !== null && bytes.length > r.size) throw exceedsDeclared(r);
        return bytes === null ? null : writeSmallFileSync(bytes, abs);
      }
      case 'gzip':
        // Restored as a parallel job (apply.ts): its recipe rebuild is asynchronous.
        return null;
      case 'assembled': {
        if (assembledBound(c.sources) > IN_MEMORY_MAX_BYTES) return null;
        const delta = this.payloads.readSmallSync(c.payload, displayPath(r.path), {
          brotli: c.brotli,
          maxBytes: IN_MEMORY_MAX_BYTES,
          declaredBytes: c.brotli ? vcdiffMaxBytes(r.size) : undefined,
        });
        if (delta === null) return null;
        // Copied out of readVerifiedSync's reused buffer part by part: the parts are checked, then joined.
        const source = readAssembledSource(c.sources, (part) =>
          (part.target ? this.restored : this.source).readVerifiedSync(part.path, part.sha256, part.size),
        );
        return this.decodeVcdiff(r, `the assembled source of ${displayPath(r.path)}`, source, delta, abs);
      }
      case 'vcdiff': {
        const source = this.source.readVerifiedSync(c.from, c.fromSha256, IN_MEMORY_MAX_BYTES);
        if (source === null) return null;
        const delta = this.payloads.readSmallSync(c.payload, displayPath(r.path), {
          brotli: c.brotli,
          maxBytes: IN_MEMORY_MAX_BYTES,
          declaredBytes: c.brotli ? vcdiffMaxBytes(r.size) : undefined,
        });
        if (delta === null) return null;
        return this.decodeVcdiff(r, `source file ${displayPath(c.from)}`, source, delta, abs);
      }
      case 'bsdiff': {
        // A segmented patch is for a file too large to hold: it streams.
        if (c.segmented) return null;
        const source = this.source.readVerifiedSync(c.from, c.fromSha256, IN_MEMORY_MAX_BYTES);
        if (source === null) return null;
        const patch = this.payloads.readSmallSync(c.payload, displayPath(r.path), { brotli: false, maxBytes: IN_MEMORY_MAX_BYTES });
        if (patch === null) return null;
        const names = { patch: `the bsdiff payload for ${displayPath(r.path)}`, source: `source file ${displayPath(c.from)}` };
        if (c.exe) checkExeFits(c.exe, source.length, r.size, displayPath(r.path));
        const fd = openSync(abs, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
        try {
          const limits = { ...names, targetSize: r.size };
          if (c.exe)
            return decodeTransformedSync(c.exe, source, fd, (transformed, write) =>
              bsdiffDecodeInMemory(transformed, patch, write, limits),
            );
          return bsdiffDecodeInMemory(source, patch, (chunk) => writeAllSync(fd, chunk), limits);
        } finally {
          closeSync(fd);
        }
      }
    }
  }

  private async decodeVcdiff(r: FileRecord, sourceName: string, source: Buffer, delta: Buffer, abs: Buffer): Promise<Written> {
    const fd = openSync(abs, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      const out = await decodeInMemory(
        {
          source,
          delta,
          outFd: fd,
          deltaName: `the VCDIFF payload for ${displayPath(r.path)}`,
          sourceName,
          outName: displayPath(r.path),
        },
        { maxOutputBytes: r.size },
      );
      return { bytes: out.outputBytes, sha256: out.outputSha256 };
    } finally {
      closeSync(fd);
    }
  }
}

/** The record holds a prefix of a copied file's hash; the full one joins the target tree digest. */
export function checkCopied(r: FileRecord, from: RelPath, written: Written): Written {
  if (!written.sha256.startsWith(r.sha256)) throw wrongSource(from, r.sha256, written.sha256);
  r.sha256 = written.sha256;
  return written;
}

function exceedsDeclared(r: FileRecord): DeltaimgError {
  return new DeltaimgError(
    'CORRUPT_DELTA',
    `payload for ${displayPath(r.path)} holds more than the ${r.size} bytes its record declares; the delta is damaged`,
  );
}

export function verifyWritten(r: FileRecord, written: Written): void {
  if (written.bytes !== r.size) {
    throw new DeltaimgError(
      'VERIFY_FAILED',
      `restored ${displayPath(r.path)} does not match the delta (${written.bytes} bytes, expected ${r.size}); the delta or its base is damaged`,
    );
  }
  if (written.sha256 !== r.sha256) {
    throw new DeltaimgError(
      'VERIFY_FAILED',
      `restored ${displayPath(r.path)} does not match the delta (sha256 ${written.sha256.slice(0, 12)}..., ` +
        `expected ${r.sha256.slice(0, 12)}...); the delta or its base is damaged`,
    );
  }
}

/** Errors from the engine or zlib name a blob; say which target file it was for. */
export function withPath(r: FileRecord, err: unknown): unknown {
  if (isDeltaimgError(err)) {
    if (err.message.includes(displayPath(r.path))) return err;
    return new DeltaimgError(err.code, `${displayPath(r.path)}: ${err.message}`, { cause: err });
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EXCEEDS_DECLARED_SIZE') {
    return new DeltaimgError(
      'CORRUPT_DELTA',
      `payload for ${displayPath(r.path)} decodes to more than the ${r.size} bytes its record declares; the delta is damaged`,
    );
  }
  if (e?.code === 'Z_DATA_ERROR' || e?.code === 'ERR__ERROR_FORMAT_PADDING_1' || /brotli|decompress/i.test(e?.message ?? '')) {
    return new DeltaimgError('CORRUPT_DELTA', `payload for ${displayPath(r.path)} cannot be decompressed; the delta is damaged`);
  }
  return new DeltaimgError('IO', `cannot restore ${displayPath(r.path)}: ${e?.code ?? ''} ${e?.message ?? String(err)}`.trim(), {
    cause: err,
  });
}
