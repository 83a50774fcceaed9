import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BLOBS_DIR, type Payload } from '../../src/delta/format.js';

/** What a payload costs in a delta: a blob's size, the inline bytes, or (an upper bound) its uncompressed slice of the pack. */
export async function payloadSize(delta: string, p: Payload): Promise<number> {
  if ('blob' in p) return (await stat(join(delta, BLOBS_DIR, p.blob))).size;
  return 'inline' in p ? p.inline.length : p.packed.size;
}
