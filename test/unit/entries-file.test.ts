import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEntriesWriter, readEntries } from '../../src/delta/entries-file.js';
import type { DeltaRecord } from '../../src/delta/format.js';
import type { RelPath } from '../../src/tree/entry.js';

const dir = mkdtempSync(join(tmpdir(), 'deltaimg-entries-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function dirRecord(i: number): DeltaRecord {
  return {
    kind: 'dir',
    path: `d${i}/${'x'.repeat(i % 97)}` as RelPath,
    meta: { mode: 0o755, uid: i, gid: 0, mtimeNs: BigInt(i) * 1_000_003n, xattrs: [] },
  };
}

async function roundTrip(name: string, count: number): Promise<{ rawBytes: number; records: DeltaRecord[] }> {
  const path = join(dir, name);
  const writer = createEntriesWriter(path);
  for (let i = 0; i < count; i++) await writer.write(dirRecord(i));
  const header = await writer.finish();
  expect(header.count).toBe(count);
  const records: DeltaRecord[] = [];
  for await (const r of readEntries(path, header)) records.push(r);
  return { rawBytes: header.rawBytes, records };
}

describe('entries file', () => {
  // Held in memory and compressed at the end (quality 11 / 10), or streamed (past 4 MiB):
  // each way must read back as the same records.
  it.each([
    ['small', 100, 0],
    ['medium', 20_000, 1024 * 1024],
    ['streamed', 60_000, 4 * 1024 * 1024],
  ])('reads back %s files record for record', async (name, count, moreThan) => {
    const { rawBytes, records } = await roundTrip(`${name}.jsonl.br`, count);
    expect(rawBytes).toBeGreaterThan(moreThan);
    expect(records).toHaveLength(count);
    expect(records[count - 1]).toEqual(dirRecord(count - 1));
    expect(records[count >> 1]).toEqual(dirRecord(count >> 1));
  });
});
