/**
 * A stored layer blob, from any source: its stored bytes checked against its digest, and its
 * tar (gunzip with node:zlib, zstd with the zstd CLI) checked against its diff_id.
 */
import { createGunzip } from 'node:zlib';
import { PassThrough, type Readable } from 'node:stream';
import { execa } from 'execa';
import { DeltaimgError } from '../util/errors.js';
import { chain, digestCheck } from './digest-stream.js';
import type { Compression, RawLayer } from './types.js';

export interface StoredLayerInfo {
  diffId: string;
  digest: string;
  size: number;
  mediaType: string;
  compression: Compression;
  /** Names the blob in errors: "archive X: blobs/sha256/..". */
  label: string;
  openRaw(): Promise<Readable>;
}

export function storedLayer(info: StoredLayerInfo): RawLayer {
  const openStored = async () => chain(await info.openRaw(), digestCheck({ digest: info.digest, size: info.size, label: info.label }));
  return {
    diffId: info.diffId,
    digest: info.digest,
    size: info.size,
    mediaType: info.mediaType,
    compression: info.compression,
    openStored,
    openStoredUnchecked: info.openRaw,
    async openUncompressed() {
      // Stored as the tar itself: the stored-digest check is the diff_id check.
      if (info.compression === 'none' && info.digest === info.diffId) return openStored();
      const tarLabel = `${info.label} (uncompressed, diff_id ${info.diffId})`;
      const check = digestCheck({ digest: info.diffId, label: tarLabel });
      return chain(decompress(await openStored(), info.compression, info.label), check);
    },
  };
}

/** The tar inside a stored blob. */
export function decompress(stored: Readable, compression: Compression, label: string): Readable {
  switch (compression) {
    case 'none':
      return stored;
    case 'gzip':
      return gunzip(stored, label);
    case 'zstd':
      return zstdDecompress(stored, label);
  }
}

function gunzip(stored: Readable, label: string): Readable {
  const inflate = createGunzip();
  const out = new PassThrough();
  stored.on('error', (err) => out.destroy(err));
  inflate.on('error', (err) => out.destroy(new DeltaimgError('BAD_IMAGE', `${label}: cannot gunzip the layer: ${err.message}`)));
  stored.pipe(inflate).pipe(out);
  out.once('close', () => stored.destroy());
  return out;
}

/** Node 20 has no zstd in zlib: the zstd CLI, streaming through its stdin/stdout. */
function zstdDecompress(stored: Readable, label: string): Readable {
  const out = new PassThrough();
  const proc = execa('zstd', ['-dc'], { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: { stdout: false, stderr: true } });
  stored.on('error', (err) => {
    out.destroy(err);
    proc.kill();
  });
  stored.pipe(proc.stdin!);
  proc.stdout!.pipe(out, { end: false });
  proc.then(
    () => out.end(),
    (err: { code?: string; stderr?: string; isTerminated?: boolean }) => {
      if (out.destroyed) return;
      const why =
        err.code === 'ENOENT'
          ? 'the zstd command is not installed (apt-get install zstd)'
          : String(err.stderr ?? '')
              .trim()
              .split('\n')[0] || 'zstd failed';
      out.destroy(new DeltaimgError('BAD_IMAGE', `${label}: cannot decompress the zstd layer: ${why}`));
    },
  );
  out.once('close', () => {
    if (proc.exitCode === null) proc.kill();
  });
  return out;
}
