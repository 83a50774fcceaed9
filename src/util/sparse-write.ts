/**
 * Writing files that may be sparse (a disk image, a huge executable-like file with holes):
 * whole zero blocks are skipped, not written, so a hole in the input stays a hole and an
 * all-zero region costs no disk; the file gets its full length at the end.
 */
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

/** Output blocks of this size, at multiples of it in the file, that are all zero are not written. */
export const HOLE_BYTES = 4096;
const ZERO_BLOCK = Buffer.alloc(HOLE_BYTES);

/** Writes `bytes` at file `position`, except the whole zero blocks (aligned to HOLE_BYTES in the file) among them. */
export async function writeSkippingZeros(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let runStart = 0;
  // The first block boundary in the file at or after `position`.
  let at = (HOLE_BYTES - (position % HOLE_BYTES)) % HOLE_BYTES;
  for (; at + HOLE_BYTES <= view.length; at += HOLE_BYTES) {
    if (!view.subarray(at, at + HOLE_BYTES).equals(ZERO_BLOCK)) continue;
    if (at > runStart) await writeAllAt(fh, view.subarray(runStart, at), position + runStart);
    runStart = at + HOLE_BYTES;
  }
  if (runStart < view.length) await writeAllAt(fh, view.subarray(runStart), position + runStart);
}

async function writeAllAt(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * A write stream into `fh` (from its start) that leaves whole zero blocks as holes and, at
 * the end, sets the file's length to what was written. Writes end on block boundaries (the
 * rest waits for the next chunk), so where the chunks happen to split changes nothing. The
 * caller closes `fh`.
 */
export function sparseFileSink(fh: FileHandle): Writable {
  let position = 0;
  let pending: Buffer = Buffer.alloc(0);
  const put = async (bytes: Buffer) => {
    await writeSkippingZeros(fh, bytes, position);
    position += bytes.length;
  };
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const bytes = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      const whole = bytes.length - (bytes.length % HOLE_BYTES);
      // Copied: the stream may reuse the chunk's memory once this write is done.
      pending = Buffer.from(bytes.subarray(whole));
      put(bytes.subarray(0, whole)).then(() => callback(), callback);
    },
    final(callback) {
      put(pending)
        .then(() => fh.truncate(position))
        .then(() => callback(), callback);
    },
  });
}
