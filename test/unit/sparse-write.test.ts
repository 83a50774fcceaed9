/**
 * Sparse output: whole zero blocks become holes (the file's allocated size stays small),
 * every byte reads back as written, chunk edges not on block boundaries included, and the
 * file gets its full length when it ends in zeros.
 */
import { randomBytes } from 'node:crypto';
import { readFile, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HOLE_BYTES, sparseFileSink } from '../../src/util/sparse-write.js';

const MiB = 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaimg-sparse-write-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `content` through the sink in chunks of `chunk` bytes; returns what was stored. */
async function throughSink(name: string, content: Buffer, chunk: number): Promise<{ bytes: Buffer; allocated: number }> {
  const path = join(dir, name);
  const fh = await open(path, 'wx');
  try {
    const chunks = [];
    for (let at = 0; at < content.length; at += chunk) chunks.push(content.subarray(at, at + chunk));
    await pipeline(Readable.from(chunks), sparseFileSink(fh));
  } finally {
    await fh.close();
  }
  return { bytes: await readFile(path), allocated: (await stat(path)).blocks * 512 };
}

it('leaves 16 MiB of zeros between data as a hole, and a trailing run of zeros too, every byte read back', async () => {
  const data = randomBytes(100_000);
  const content = Buffer.concat([data, Buffer.alloc(16 * MiB), data, Buffer.alloc(3 * MiB + 7)]);
  for (const chunk of [1 * MiB, 65_537, HOLE_BYTES * 3 + 1]) {
    const { bytes, allocated } = await throughSink(`sparse-${chunk}`, content, chunk);
    expect(bytes.equals(content)).toBe(true);
    // The data (two 100 kB runs) and the blocks they touch; the zeros cost nothing.
    expect(allocated).toBeLessThan(1 * MiB);
  }
});

it('writes a file without zero blocks whole', async () => {
  const content = randomBytes(3 * MiB + 11);
  const { bytes, allocated } = await throughSink('dense', content, 100_003);
  expect(bytes.equals(content)).toBe(true);
  expect(allocated).toBeGreaterThanOrEqual(3 * MiB);
});
