/**
 * Writes delta directories by hand, for tests that need a damaged or crafted delta
 * (hostile paths, newer format versions) that `deltaimg diff` would never produce.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TreeDigest } from '../../src/delta/digest.js';
import { createEntriesWriter } from '../../src/delta/entries-file.js';
import {
  BLOBS_DIR,
  ENTRIES_FILE,
  FORMAT_NAME,
  FORMAT_VERSION,
  HEADER_FILE,
  type DeltaHeader,
  type DeltaRecord,
  emptyStats,
} from '../../src/delta/format.js';
import type { Metadata, RelPath } from '../../src/tree/entry.js';

export const META: Metadata = { mode: 0o755, uid: 0, gid: 0, mtimeNs: 1_700_000_000_123_456_789n, xattrs: [] };

export const rel = (p: string) => p as RelPath;

export function rootRecord(): DeltaRecord {
  return { path: rel(''), kind: 'dir', meta: META };
}

export async function craftDelta(dir: string, records: DeltaRecord[], patch: (h: DeltaHeader) => void = () => {}): Promise<void> {
  await mkdir(join(dir, BLOBS_DIR), { recursive: true });
  const writer = createEntriesWriter(join(dir, ENTRIES_FILE));
  const digest = new TreeDigest();
  for (const r of records) {
    await writer.write(r);
    digest.add(r);
  }
  const entries = await writer.finish();
  const header: DeltaHeader = {
    format: FORMAT_NAME,
    version: FORMAT_VERSION,
    minReaderVersion: FORMAT_VERSION,
    tool: 'test',
    created: new Date(0).toISOString(),
    entries: { file: ENTRIES_FILE, ...entries, coding: 'records' }, // createEntriesWriter writes one JSON record per entry
    source: { treeSha256: '0'.repeat(64), entries: 0 },
    target: { treeSha256: digest.digest(), entries: digest.entries },
    stats: emptyStats(),
    largest: [],
  };
  patch(header);
  await writeFile(join(dir, HEADER_FILE), JSON.stringify(header));
}
