/**
 * The v3 entries coding (src/delta/runs.ts) without a filesystem: the target written as edits of
 * the source's listing expands back to the very same records, unchanged entries cost nothing,
 * and lines that do not fit the source or are malformed are refused in one line.
 */
import { describe, expect, it } from 'vitest';
import type { DeltaRecord } from '../../src/delta/format.js';
import { RunsDecoder, RunsEncoder } from '../../src/delta/runs.js';
import type { Entry, Metadata, RelPath } from '../../src/tree/entry.js';
import { DeltaimgError } from '../../src/util/errors.js';

const p = (s: string) => s as RelPath;
const meta = (mtimeNs: bigint, extra: Partial<Metadata> = {}): Metadata => ({ mode: 0o644, uid: 0, gid: 0, mtimeNs, xattrs: [], ...extra });
const T0 = 1_700_000_000_000_000_000n;
const SHA = (c: string) => c.repeat(64);

/** A source of 200 files in 4 directories, with a symlink, a hardlink and a device. */
function sourceEntries(): Entry[] {
  const out: Entry[] = [{ path: p(''), kind: 'dir', meta: meta(T0, { mode: 0o755 }) }];
  for (const d of ['a', 'b', 'c', 'd']) {
    out.push({ path: p(d), kind: 'dir', meta: meta(T0, { mode: 0o755 }) });
    for (let i = 0; i < 50; i++) {
      out.push({
        path: p(`${d}/f${String(i).padStart(2, '0')}`),
        kind: 'file',
        meta: meta(T0 + BigInt(i)),
        size: 100 + i,
        sha256: SHA('1'),
      });
    }
  }
  out.push({ path: p('e'), kind: 'dir', meta: meta(T0, { mode: 0o755 }) });
  out.push({ path: p('e/dev'), kind: 'chardev', meta: meta(T0), major: 1, minor: 3 });
  out.push({ path: p('e/hard'), kind: 'hardlink', meta: meta(T0 + 7n), linkTo: p('a/f07') });
  out.push({ path: p('e/link'), kind: 'symlink', meta: meta(T0, { mode: 0o777 }), target: '../a/f00' });
  return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

/** The target records as diff makes them: unchanged files are `same` with their full sha256. */
function asRecord(e: Entry): DeltaRecord {
  return e.kind === 'file' ? { ...e, sha256: e.sha256!, content: { op: 'same' } } : e;
}

async function encode(source: Entry[], target: DeltaRecord[]): Promise<string[]> {
  const lines: string[] = [];
  const enc = new RunsEncoder(source, async (l) => {
    lines.push(l);
  });
  for (const r of target) await enc.add(r);
  await enc.finish([Buffer.from('00112233', 'hex')]);
  return lines;
}

function decode(source: Entry[], lines: string[]): { records: DeltaRecord[]; digests: Buffer[] } {
  const dec = new RunsDecoder(source, '/src');
  const records: DeltaRecord[] = [];
  lines.forEach((l, i) => dec.decode(l, i + 1, (r) => records.push(r)));
  return { records, digests: dec.finish() };
}

/** What apply compares: a kept or same-content file carries no hash until it is copied. */
function withoutCopiedSha(r: DeltaRecord): DeltaRecord {
  return r.kind === 'file' && r.content.op === 'same' ? { ...r, sha256: '' } : r;
}

describe('runs: the v3 entries coding', () => {
  it('an unchanged tree is the root line, one keep run and the digests', async () => {
    const source = sourceEntries();
    const lines = await encode(source, source.map(asRecord));
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[1]!)).toEqual({ keep: source.length - 1 });
    expect(decode(source, lines).records).toEqual(source.map(asRecord).map(withoutCopiedSha));
  });

  it('a rebuild that stamps every entry anew costs a few bytes of mtime per entry, and expands exactly', async () => {
    const source = sourceEntries();
    const rebuilt = source.map((e, i): DeltaRecord => {
      const m = { ...e.meta, mtimeNs: T0 + 86_400_000_000_000n + BigInt(i) * 4_000_000n };
      if (e.kind === 'hardlink') return { ...e, meta: { ...e.meta, mtimeNs: T0 + 86_400_000_000_000n + 7n * 4_000_000n } };
      return asRecord({ ...e, meta: m } as Entry);
    });
    // The hardlink's file (a/f07) has its own new time; the link shares it.
    const f07 = rebuilt.findIndex((r) => r.path === 'a/f07');
    const hardIdx = rebuilt.findIndex((r) => r.kind === 'hardlink');
    rebuilt[hardIdx] = { ...(rebuilt[hardIdx] as Extract<DeltaRecord, { kind: 'hardlink' }>), meta: rebuilt[f07]!.meta };
    const lines = await encode(source, rebuilt);
    // Every entry needs its own line, but only `dt`: the time since the last one given.
    const middle = lines.slice(1, -1);
    expect(middle.every((l) => /^\{"dt":"-?\d+"\}$/.test(l))).toBe(true);
    expect(middle.filter((l) => l === '{"dt":"4000000"}').length).toBeGreaterThan(190);
    expect(decode(source, lines).records).toEqual(rebuilt.map(withoutCopiedSha));
  });

  it('changes, moves, deletions and new entries of every kind round-trip', async () => {
    const source = sourceEntries();
    const target: DeltaRecord[] = [];
    for (const e of source) {
      if (e.path === 'b/f10' || e.path.startsWith('c/') || e.path === 'c') continue; // deleted
      if (e.path === 'a/f03') {
        target.push({
          ...asRecord(e),
          meta: meta(T0 + 99n, { mode: 0o4755, uid: 7, xattrs: [{ name: 'user.x', value: Buffer.from('y') }] }),
        } as DeltaRecord);
        continue;
      }
      if (e.path === 'a/f04') {
        target.push({
          path: e.path,
          kind: 'file',
          meta: e.meta,
          size: 5,
          sha256: SHA('2'),
          content: { op: 'raw', payload: { inline: Buffer.from('hello') } },
        });
        continue;
      }
      if (e.path === 'e/link') {
        target.push({ path: e.path, kind: 'symlink', meta: e.meta, target: '../b/f00' });
        continue;
      }
      if (e.path === 'e/dev') {
        target.push({ path: e.path, kind: 'file', meta: e.meta, size: 0, sha256: SHA('3'), content: { op: 'copy', from: p('a/f00') } });
        continue;
      }
      target.push(asRecord(e));
    }
    target.push({ path: p('f'), kind: 'dir', meta: meta(T0 + 5n, { mode: 0o700, uid: 1000, gid: 1000 }) });
    target.push({ path: p('f/fifo'), kind: 'fifo', meta: meta(T0 + 5n, { uid: 1000, gid: 1000 }) });
    target.push({ path: p('f/null'), kind: 'blockdev', meta: meta(T0 - 5n), major: 8, minor: 1 });
    const lines = await encode(source, target);
    const { records, digests } = decode(source, lines);
    const copyPrefix = (r: DeltaRecord) => (r.kind === 'file' && r.content.op === 'copy' ? { ...r, sha256: r.sha256.slice(0, 16) } : r);
    expect(records).toEqual(target.map(withoutCopiedSha).map(copyPrefix));
    expect(digests).toEqual([Buffer.from('00112233', 'hex')]);
    expect(lines).toContain('{"drop":51}'); // directory c and its 50 files
  });

  it('refuses a source that does not fit, naming the path, and damaged lines', async () => {
    const source = sourceEntries();
    const lines = await encode(source, source.map(asRecord));
    const refused = (src: Entry[], ls: string[]) => {
      try {
        decode(src, ls);
      } catch (err) {
        expect(err).toBeInstanceOf(DeltaimgError);
        expect((err as Error).message).not.toContain('\n');
        return { code: (err as DeltaimgError).code, message: (err as Error).message };
      }
      throw new Error('not refused');
    };
    // A source with an entry more, or one less, than the base.
    const extra = [...source, { path: p('zz'), kind: 'fifo', meta: meta(T0) } as Entry];
    expect(refused(extra, lines)).toMatchObject({ code: 'WRONG_SOURCE', message: expect.stringContaining('/zz') });
    expect(refused(source.slice(0, -1), lines)).toMatchObject({ code: 'WRONG_SOURCE', message: expect.stringContaining('fewer entries') });
    const root = lines[0]!;
    for (const [bad, code] of [
      [[root, '{"keep":0}'], 'CORRUPT_DELTA'],
      [[root, '{"keep":-3}'], 'CORRUPT_DELTA'],
      [[root, '{"keep":1.5}'], 'CORRUPT_DELTA'],
      [[root, '{"drop":1e300}'], 'CORRUPT_DELTA'],
      [[root, `{"keep":${2 ** 40}}`], 'WRONG_SOURCE'],
      [[root, '{"keep":1,"drop":1}'], 'CORRUPT_DELTA'],
      [[root, '{"dirs":"0011"}'], 'CORRUPT_DELTA'],
      [[root, '{"dirs":"zz112233"}'], 'CORRUPT_DELTA'],
      [[root, '{"dirs":"00112233"}', '{"keep":1}'], 'CORRUPT_DELTA'],
      [[root, '{"size":1}'], 'WRONG_SOURCE'], // a file's field for `a`, a directory in this source
      [[root, '{"kind":"dir","size":1}'], 'CORRUPT_DELTA'], // a directory given a file's field
      [[root, '{"kind":"symlink"}'], 'CORRUPT_DELTA'], // a symlink without target
      [[root, '{"path":"0","kind":"file","mode":420,"uid":0,"gid":0}'], 'CORRUPT_DELTA'], // new file without content
      [[root, '{"path":"0","kind":"dir","uid":0,"gid":0}'], 'CORRUPT_DELTA'], // new entry without mode
      [[root, '{"path":"0","kind":"dir","mode":493,"uid":0,"gid":0,"dt":"99999999999999999999"}'], 'CORRUPT_DELTA'],
      [[root, '{"path":"0","kind":"sock","mode":493,"uid":0,"gid":0}'], 'CORRUPT_DELTA'],
      [[root, '{"dt":"1"}', '{"path":"b","kind":"dir","mode":493,"uid":0,"gid":0}'], 'WRONG_SOURCE'], // the source has a/f00 before b
      [[root, 'not json'], 'CORRUPT_DELTA'],
    ] as const) {
      expect(refused(source, [...bad]).code, bad.join(' ')).toBe(code);
    }
  });
});
