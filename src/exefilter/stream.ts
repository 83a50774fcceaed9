/**
 * The branch transform over a stream of file bytes: it holds back at most a few bytes (an
 * instruction cut by a chunk boundary), so files of any size go through in bounded memory.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MAX_INSTRUCTION_BYTES, transformRange, type BranchTransform, type Direction } from './transform.js';
import { relabelUnwindFile } from './unwind.js';

export class BranchFilter {
  /** Bytes not yet final, starting at file position `pendingStart`. */
  private pending: Buffer = Buffer.alloc(0);
  private pendingStart = 0;
  /** Where the scan resumes (may lie past the bytes seen so far). */
  private next = 0;

  constructor(
    private readonly transform: BranchTransform,
    private readonly direction: Direction,
  ) {}

  /** Takes the next bytes of the file (not modified, not kept); returns the bytes now final. */
  push(chunk: Uint8Array): Buffer {
    return this.run(Buffer.concat([this.pending, chunk]), false);
  }

  /** The file ended: returns the last bytes. */
  end(): Buffer {
    return this.run(this.pending, true);
  }

  private run(buf: Buffer, final: boolean): Buffer {
    const base = this.pendingStart;
    const bufEnd = base + buf.length;
    const stop = final ? bufEnd : bufEnd - (MAX_INSTRUCTION_BYTES - 1);
    if (this.next < stop) this.next = transformRange(this.transform, this.direction, buf, base, this.next, stop);
    const done = final ? bufEnd : Math.min(this.next, bufEnd);
    this.pending = buf.subarray(done - base);
    this.pendingStart = done;
    return buf.subarray(0, done - base);
  }
}

/** A stream stage applying the transform. */
export function branchFilterStream(transform: BranchTransform, direction: Direction): Transform {
  const filter = new BranchFilter(transform, direction);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const out = filter.push(chunk);
      callback(null, out.length ? out : undefined);
    },
    flush(callback) {
      const out = filter.end();
      callback(null, out.length ? out : undefined);
    },
  });
}

/** Writes the transformed bytes of `input` to the new file `output` (which must not exist). */
export async function transformFile(
  input: string | Buffer,
  output: string | Buffer,
  transform: BranchTransform,
  direction: Direction,
): Promise<void> {
  await pipeline(createReadStream(input), branchFilterStream(transform, direction), createWriteStream(output, { flags: 'wx' }));
}

/** A source's whole transform into the new file `output`: branches (and words) forward, then its unwind tables. */
export async function transformSourceFile(input: string | Buffer, output: string | Buffer, transform: BranchTransform): Promise<void> {
  await transformFile(input, output, transform, 'forward');
  const map = transform.addressMap;
  if (map?.unwind) relabelUnwindFile(map, map.unwind, output, (await stat(output)).size);
}
