/**
 * Bad input of issue #13 refused cleanly: FIFOs where files belong (never a hang), records
 * whose fields Linux would store differently (never a silent difference), decoders that would
 * write past the declared size (never a disk fill), headers with odd fields (never a crash).
 * Each test fails without its fix: it hangs, exits 0 with a different tree, or crashes.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompressSync, constants as zc } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta } from '../src/delta/apply.js';
import { diffTrees } from '../src/delta/diff.js';
import { BLOBS_DIR, ENTRIES_FILE, HEADER_FILE, type DeltaRecord, type FileRecord } from '../src/delta/format.js';
import { readHeader } from '../src/delta/header.js';
import { fsext } from '../src/tree/fsext.js';
import { bsdiffEncode } from '../src/bsdiff/index.js';
import { VcdiffPool } from '../src/vcdiff/index.js';
import { DeltaimgError } from '../src/util/errors.js';
import { craftDelta, META, rel, rootRecord } from './helpers/craft-delta.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');

let work: string;
let pool: VcdiffPool;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'deltaimg-hostile-'));
  pool = new VcdiffPool();
});
afterAll(async () => {
  await pool?.close();
  await rm(work, { recursive: true, force: true });
});

let counter = 0;
const fresh = (name: string) => join(work, `${name}-${counter++}`);

/** applyDelta, failing the test instead of hanging when it does not settle within 20 s. */
async function applyPromptly(src: string, delta: string, out: string): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('apply did not settle within 20 s (hang)')), 20_000);
  });
  try {
    return await Promise.race([
      applyDelta(src, delta, out, { pool }).then(
        () => 'ok',
        (err: unknown) => err,
      ),
      hang,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The refusal: a DeltaimgError, one line, and neither OUT nor any temp dir beside it. */
function expectRefusal(result: unknown, out: string, message: RegExp): void {
  expect(result).toBeInstanceOf(DeltaimgError);
  const err = result as DeltaimgError;
  expect(err.message).toMatch(message);
  expect(err.message).not.toContain('\n');
  const dir = join(out, '..');
  const left = readdirSync(dir).filter((n) => n.includes(`${out.split('/').pop()!}`));
  expect(left).toEqual([]);
}

function mkfifo(path: string): void {
  fsext().mknod(Buffer.from(path), 'fifo', 0o644, 0, 0);
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A source and target tree: an unchanged small file, an edited one, a new incompressible one (a blob). */
async function honestPair(): Promise<{ a: string; b: string; delta: string }> {
  const a = fresh('a');
  const b = fresh('b');
  const text = Array.from({ length: 400 }, (_, i) => `line ${i} of a config file\n`).join('');
  for (const root of [a, b]) {
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(join(root, 'etc/same'), 'unchanged\n');
  }
  await writeFile(join(a, 'etc/edited'), text);
  await writeFile(join(b, 'etc/edited'), text.replace('line 7 ', 'line seven '));
  await writeFile(join(b, 'etc/new.bin'), randomBytes(8192));
  const delta = fresh('delta');
  await diffTrees(a, b, delta, { pool });
  return { a, b, delta };
}

describe('FIFOs where files belong end promptly with one line, nothing left', () => {
  it('an honest wrong base: a FIFO in place of an unchanged file and of a delta source', async () => {
    const { a, delta } = await honestPair();
    // An unchanged entry is taken from the source as it is there (a FIFO): the digest of its
    // directory names it. A changed one's line gives fields of a file: the FIFO is named at once.
    for (const victim of ['etc/same', 'etc/edited']) {
      const base = fresh('base');
      execFileSync('cp', ['-a', a, base]);
      await unlink(join(base, victim));
      mkfifo(join(base, victim));
      const out = fresh('out');
      expectRefusal(
        await applyPromptly(base, delta, out),
        out,
        victim === 'etc/same' ? /differs from the delta's target in directory \/etc / : /\/etc\/edited is a fifo there/,
      );
    }
  });

  it('a FIFO in place of a blob, the entries file or the header', async () => {
    const { a, delta } = await honestPair();
    const blob = readdirSync(join(delta, BLOBS_DIR))[0]!;
    const cases: [string, RegExp][] = [
      [join(BLOBS_DIR, blob), /blob .* is not a regular file/],
      [ENTRIES_FILE, /entries\.jsonl\.br is not a regular file/],
      [HEADER_FILE, /deltaimg\.json is not a regular file/],
    ];
    for (const [member, message] of cases) {
      const damaged = fresh('fifo-delta');
      execFileSync('cp', ['-a', delta, damaged]);
      await unlink(join(damaged, member));
      mkfifo(join(damaged, member));
      const out = fresh('out');
      expectRefusal(await applyPromptly(a, damaged, out), out, message);
    }
  });

  it('through the CLI: exit 1, one line on stderr', async () => {
    const { a, delta } = await honestPair();
    const damaged = fresh('fifo-delta');
    execFileSync('cp', ['-a', delta, damaged]);
    await unlink(join(damaged, ENTRIES_FILE));
    mkfifo(join(damaged, ENTRIES_FILE));
    const fail = await run('node', [CLI, 'apply', a, damaged, '--out', fresh('out')], { timeout: 30_000 }).catch((e: unknown) => e);
    expect(fail).toMatchObject({ code: 1, killed: false });
    const stderr = (fail as { stderr: string }).stderr.trim();
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^deltaimg: error: .*entries\.jsonl\.br is not a regular file/);
  });

  it('the native copier refuses a FIFO without blocking its thread', async () => {
    const dir = fresh('native');
    await mkdir(dir);
    mkfifo(join(dir, 'fifo'));
    const addon = fsext();
    if (!addon.copyFiles) throw new Error('the native addon has no copyFiles');
    const rows = await addon.copyFiles([[Buffer.from(join(dir, 'fifo')), Buffer.from(join(dir, 'out')), 0, 0, 0o644, 0, 0]]);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.[0]).toBe(2); // step: not a regular file
  });
});

/** A delta of one file record `f` (plus its directory) whose bytes come from the source tree. */
function fileRecord(path: string, content: string, extra: Partial<FileRecord> = {}): FileRecord {
  return {
    path: rel(path),
    kind: 'file',
    meta: META,
    size: content.length,
    sha256: sha(content).slice(0, 16),
    content: { op: 'same' },
    ...extra,
  };
}

describe('record fields Linux would store differently are refused up front', () => {
  async function sourceWith(files: Record<string, string>): Promise<string> {
    const src = fresh('src');
    await mkdir(src);
    for (const [p, c] of Object.entries(files)) await writeFile(join(src, p), c);
    return src;
  }

  const cases: [string, DeltaRecord, RegExp][] = [
    [
      'uid 2^32 + 1000 (the native copier would keep 1000)',
      fileRecord('f', 'x\n', { meta: { ...META, uid: 2 ** 32 + 1000 } }),
      /invalid uid/,
    ],
    ['uid 2^32 - 1 (chown reads it as "leave unchanged")', fileRecord('f', 'x\n', { meta: { ...META, uid: 2 ** 32 - 1 } }), /invalid uid/],
    ['gid 2^40', fileRecord('f', 'x\n', { meta: { ...META, gid: 2 ** 40 } }), /invalid gid/],
    [
      'a chardev major of 2^32 + 1 (mknod would make 1:1, /dev/mem)',
      { path: rel('mem'), kind: 'chardev', meta: META, major: 2 ** 32 + 1, minor: 1 },
      /invalid major/,
    ],
    ['a blockdev minor of 2^20', { path: rel('sda'), kind: 'blockdev', meta: META, major: 8, minor: 2 ** 20 }, /invalid minor/],
    ['an mtime of 10^30 ns', fileRecord('f', 'x\n', { meta: { ...META, mtimeNs: 10n ** 30n } }), /mtime/],
    [
      'an xattr name with a character above U+00FF',
      fileRecord('f', 'x\n', { meta: { ...META, xattrs: [{ name: 'user.\u20ac', value: Buffer.from('v') }] } }),
      /invalid xattr name/,
    ],
    [
      'xattrs listed twice',
      fileRecord('f', 'x\n', {
        meta: {
          ...META,
          xattrs: [
            { name: 'user.a', value: Buffer.from('1') },
            { name: 'user.a', value: Buffer.from('2') },
          ],
        },
      }),
      /not sorted by name, or a name twice/,
    ],
    ['mode bits beyond 07777', fileRecord('f', 'x\n', { meta: { ...META, mode: 0o170755 } }), /invalid mode/],
  ];
  for (const [name, record, message] of cases) {
    it(name, async () => {
      const src = await sourceWith({ f: 'x\n' });
      const delta = fresh('delta');
      await craftDelta(delta, [rootRecord(), record]);
      const out = fresh('out');
      expectRefusal(await applyPromptly(src, delta, out), out, message);
    });
  }

  it('the native addon refuses what it would narrow instead of truncating it', () => {
    const dir = join(work, 'native-args');
    expect(() => fsext().mknod(Buffer.from(join(dir, 'mem')), 'char', 0o600, 2 ** 32 + 1, 1)).toThrow(/in range/);
    expect(() => fsext().lsetxattr(Buffer.from(dir), 'user.\u20ac', Buffer.from('v'))).toThrow(/U\+0001\.\.U\+00FF/);
    const copyFiles = (fsext() as unknown as { copyFiles: (jobs: unknown[][]) => Promise<unknown> }).copyFiles;
    expect(() => copyFiles([[Buffer.from('/a'), Buffer.from('/b'), 2 ** 32 + 1000, 0, 0o644, 0, 0]])).toThrow(/uid 0\.\.2\^32-2/);
  });

  it('an xattr name of UTF-8 bytes (user.€ on disk) round-trips exactly', async () => {
    const a = fresh('xa');
    const b = fresh('xb');
    const name = Buffer.from('user.€', 'utf8').toString('latin1');
    for (const root of [a, b]) {
      await mkdir(root);
      await writeFile(join(root, 'f'), 'content\n');
    }
    try {
      fsext().lsetxattr(Buffer.from(join(b, 'f')), name, Buffer.from('euro'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTSUP') return; // a filesystem without user xattrs
      throw err;
    }
    const delta = fresh('delta');
    await diffTrees(a, b, delta, { pool });
    const out = fresh('out');
    await applyDelta(a, delta, out, { pool });
    expect(fsext().llistxattr(Buffer.from(join(out, 'f')))).toContain(name);
    expect(
      fsext()
        .lgetxattr(Buffer.from(join(out, 'f')), name)
        .toString(),
    ).toBe('euro');
  });

  it('an mtime the filesystem under OUT cannot hold is refused, never restored as another', async () => {
    // 1874: inside the 64-bit nanosecond range, before what ext4 stores (1901); tmpfs keeps it.
    const mtimeNs = -3_000_000_000_000_000_000n;
    const src = await sourceWith({ f: 'x\n' });
    const delta = fresh('delta');
    const raw: DeltaRecord = {
      path: rel('f'),
      kind: 'file',
      meta: { ...META, mtimeNs },
      size: 2,
      sha256: sha('x\n'),
      content: { op: 'raw', payload: { inline: Buffer.from('x\n') } },
    };
    await craftDelta(delta, [rootRecord(), raw]);
    const out = fresh('out');
    const result = await applyPromptly(src, delta, out);
    if (result === 'ok') expect(lstatSync(join(out, 'f'), { bigint: true }).mtimeNs).toBe(mtimeNs);
    else expectRefusal(result, out, /restored \/f differs from its record on disk \(mtime/);
  });
});

describe('decoders stop at the declared size', () => {
  it('a brotli payload expanding far beyond its record, inline and as a blob', async () => {
    const src = fresh('src');
    await mkdir(src);
    const bomb = brotliCompressSync(Buffer.alloc(64 * 1024 * 1024), { params: { [zc.BROTLI_PARAM_QUALITY]: 5 } });
    expect(bomb.length).toBeLessThan(2048);
    const inline: DeltaRecord = {
      path: rel('f'),
      kind: 'file',
      meta: META,
      size: 100,
      sha256: sha(Buffer.alloc(100)),
      content: { op: 'brotli', payload: { inline: bomb } },
    };
    let delta = fresh('delta');
    await craftDelta(delta, [rootRecord(), inline]);
    let out = fresh('out');
    expectRefusal(await applyPromptly(src, delta, out), out, /payload for \/f .*more than the 100 bytes/);

    const big = Buffer.concat([bomb, randomBytes(0)]);
    delta = fresh('delta');
    await craftDelta(delta, [
      rootRecord(),
      { ...inline, size: 40 * 1024 * 1024, sha256: sha('x'), content: { op: 'brotli', payload: { blob: sha(big) } } },
    ]);
    await writeFile(join(delta, BLOBS_DIR, sha(big)), big);
    out = fresh('out');
    expectRefusal(await applyPromptly(src, delta, out), out, /payload for \/f .*more than the 41943040 bytes/);
  });

  it('a VCDIFF expanding beyond its record, in memory and streaming', async () => {
    const dir = fresh('vc');
    await mkdir(dir);
    await writeFile(join(dir, 'source'), 'a small source\n');
    await writeFile(join(dir, 'target'), Buffer.alloc(20 * 1024 * 1024, 7));
    await pool.encodeFile(join(dir, 'source'), join(dir, 'target'), join(dir, 'vcdiff'));
    const payload = await readFile(join(dir, 'vcdiff'));
    const src = fresh('src');
    await mkdir(src);
    await writeFile(join(src, 'source'), 'a small source\n');
    const delta = fresh('delta');
    const record: DeltaRecord = {
      path: rel('f'),
      kind: 'file',
      meta: META,
      size: 100,
      sha256: sha('y'),
      content: {
        op: 'vcdiff',
        from: rel('source'),
        fromSha256: sha('a small source\n'),
        brotli: false,
        payload: payload.length <= 2048 ? { inline: payload } : { blob: sha(payload) },
      },
    };
    await craftDelta(delta, [rootRecord(), record]);
    if ('blob' in (record.content as { payload: object }).payload) await writeFile(join(delta, BLOBS_DIR, sha(payload)), payload);
    const out = fresh('out');
    expectRefusal(await applyPromptly(src, delta, out), out, /output exceeds the 100 bytes expected/);
    const streamed = await pool
      .decodeFile(join(dir, 'source'), join(dir, 'vcdiff'), join(dir, 'out'), { maxOutputBytes: 1000 })
      .catch((e: unknown) => e);
    expect(streamed).toBeInstanceOf(DeltaimgError);
    expect((streamed as Error).message).toMatch(/output exceeds the 1000 bytes expected/);
    expect(() => lstatSync(join(dir, 'out'))).toThrow(/ENOENT/);
  });

  it('a bsdiff patch building more than its record', async () => {
    const dir = fresh('bs');
    await mkdir(dir);
    const source = Buffer.from(Array.from({ length: 3000 }, (_, i) => `row ${i}\n`).join(''));
    await writeFile(join(dir, 'source'), source);
    await writeFile(join(dir, 'target'), Buffer.concat([source, source]));
    await bsdiffEncode(join(dir, 'source'), join(dir, 'target'), join(dir, 'patch'));
    const patch = await readFile(join(dir, 'patch'));
    const src = fresh('src');
    await mkdir(src);
    await writeFile(join(src, 'source'), source);
    const delta = fresh('delta');
    await craftDelta(delta, [
      rootRecord(),
      {
        path: rel('f'),
        kind: 'file',
        meta: META,
        size: 100,
        sha256: sha('y'),
        content: { op: 'bsdiff', from: rel('source'), fromSha256: sha(source), payload: { blob: sha(patch) } },
      },
    ]);
    await writeFile(join(delta, BLOBS_DIR, sha(patch)), patch);
    const out = fresh('out');
    expectRefusal(await applyPromptly(src, delta, out), out, /builds \d+ bytes, not the 100 expected/);
  });

  it('an entries file that decompresses beyond its rawBytes, or has an over-long line', async () => {
    const src = fresh('src');
    await mkdir(src);
    let delta = fresh('delta');
    await craftDelta(delta, [rootRecord()], (h) => {
      h.entries.rawBytes -= 1;
    });
    let out = fresh('out');
    expectRefusal(await applyPromptly(src, delta, out), out, /decompresses to more than the \d+ bytes the header says/);

    // 70 MiB on one line: beyond the whole-read size, so the streaming reader's line cap refuses it.
    delta = fresh('delta');
    await craftDelta(delta, [rootRecord()]);
    const line = Buffer.alloc(70 * 1024 * 1024, 0x61);
    const stored = brotliCompressSync(line, { params: { [zc.BROTLI_PARAM_QUALITY]: 1 } });
    await writeFile(join(delta, ENTRIES_FILE), stored);
    const header = JSON.parse(await readFile(join(delta, HEADER_FILE), 'utf8'));
    header.entries = { ...header.entries, sha256: sha(stored), rawBytes: line.length, count: 1 };
    await writeFile(join(delta, HEADER_FILE), JSON.stringify(header));
    out = fresh('out');
    expectRefusal(await applyPromptly(src, delta, out), out, /has a record line longer than 4194304 bytes/);
  });
});

describe('headers with odd fields are refused in one line, naming the field', () => {
  const headerCases: [string, (h: Record<string, unknown>) => void, RegExp][] = [
    ['minReaderVersion as a string', (h) => (h.minReaderVersion = '9'), /field minReaderVersion is the string "9", not an integer/],
    ['no stats', (h) => delete h.stats, /field stats is missing, not an object/],
    ['largest as a number', (h) => (h.largest = 5), /field largest is the number 5, not an array/],
    ['source as a string', (h) => (h.source = 'x'), /field source is the string "x", not an object/],
    [
      'a largest path that is not a string',
      (h) => (h.largest = [{ path: 1, op: 'raw', bytes: 1 }]),
      /field largest\[0\]\.path is the number 1/,
    ],
    ['entries.rawBytes missing', (h) => delete (h.entries as Record<string, unknown>).rawBytes, /field entries\.rawBytes is missing/],
  ];
  for (const [name, edit, message] of headerCases) {
    it(name, async () => {
      const delta = fresh('delta');
      await craftDelta(delta, [rootRecord()]);
      const h = JSON.parse(await readFile(join(delta, HEADER_FILE), 'utf8'));
      edit(h);
      await writeFile(join(delta, HEADER_FILE), JSON.stringify(h));
      const err = await readHeader(delta).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeltaimgError);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('deltaimg inspect: exit 1 and one line, not an internal error', async () => {
    const delta = fresh('delta');
    await craftDelta(delta, [rootRecord()]);
    const h = JSON.parse(await readFile(join(delta, HEADER_FILE), 'utf8'));
    delete h.largest;
    await writeFile(join(delta, HEADER_FILE), JSON.stringify(h));
    const fail = await run('node', [CLI, 'inspect', delta]).catch((e: unknown) => e);
    expect(fail).toMatchObject({ code: 1 });
    expect((fail as { stderr: string }).stderr.trim()).toMatch(
      /^deltaimg: error: .*deltaimg\.json: field largest is missing, not an array; the delta is damaged/,
    );
  });
});

describe('ordinary input that used to crash', () => {
  it('a source path of 20,000 components is refused, not a stack overflow', async () => {
    const src = fresh('src');
    await mkdir(src);
    const deep = Array.from({ length: 20_000 }, () => 'd').join('/');
    const dirs: DeltaRecord[] = [];
    const delta = fresh('delta');
    await craftDelta(delta, [rootRecord(), ...dirs, { ...fileRecord('f', 'x\n'), content: { op: 'copy', from: rel(`${deep}/f`) } }]);
    const out = fresh('out');
    expectRefusal(await applyPromptly(src, delta, out), out, /source file \/d is missing or not a regular file/);
  });

  it("OUT's parent missing: one line", async () => {
    const { a, delta } = await honestPair();
    const out = join(fresh('missing'), 'out');
    const result = await applyPromptly(a, delta, out);
    expect(result).toBeInstanceOf(DeltaimgError);
    expect((result as Error).message).toMatch(/cannot create a scratch directory beside .*missing.*ENOENT/);
  });
});

describe('privilege policy: --no-devices and --no-privileged-metadata', () => {
  const CAP = Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const content = 'x\n';
  const raw = (path: string, meta = META): DeltaRecord => ({
    path: rel(path),
    kind: 'file',
    meta,
    size: 2,
    sha256: sha(content),
    content: { op: 'raw', payload: { inline: Buffer.from(content) } },
  });
  const records: DeltaRecord[] = [
    rootRecord(),
    { path: rel('null'), kind: 'chardev', meta: { ...META, mode: 0o666 }, major: 1, minor: 3 },
    raw('ping', { ...META, xattrs: [{ name: 'security.capability', value: CAP }] }),
    raw('su', { ...META, mode: 0o4755 }),
  ];

  it('by default restores them and counts them; the flags refuse the delta before writing, naming the entry', async () => {
    const src = fresh('src');
    await mkdir(src);
    const delta = fresh('delta');
    await craftDelta(delta, records);
    const refusals: [Parameters<typeof applyDelta>[3], RegExp][] = [
      [
        { policy: { devices: false, privilegedMetadata: true } },
        /holds device node \/null \(chardev 1:3\), which --no-devices refuses; nothing was written/,
      ],
      [
        { policy: { devices: true, privilegedMetadata: false } },
        /holds xattr security\.capability on \/ping, which --no-privileged-metadata refuses/,
      ],
    ];
    for (const [opts, message] of refusals) {
      const out = fresh('out');
      const err = await applyDelta(src, delta, out, { pool, ...opts }).catch((e: unknown) => e);
      expectRefusal(err, out, message);
      expect((err as DeltaimgError).code).toBe('POLICY');
    }
    const noSetid = fresh('delta');
    await craftDelta(noSetid, [rootRecord(), raw('su', { ...META, mode: 0o4755 })]);
    const out = fresh('out');
    expectRefusal(
      await applyDelta(src, noSetid, out, { pool, policy: { devices: true, privilegedMetadata: false } }).catch((e: unknown) => e),
      out,
      /\/su with mode 4755 \(setuid\/setgid\)/,
    );

    if (process.getuid?.() !== 0) return;
    const ok = fresh('out');
    const result = await applyDelta(src, delta, ok, { pool });
    expect(result.privileged).toEqual({ devices: 1, setuidSetgid: 1, privilegedXattrs: 1 });
    expect(lstatSync(join(ok, 'su')).mode & 0o7777).toBe(0o4755);
    const cli = await run('node', [CLI, 'apply', src, delta, '--out', fresh('out')]);
    expect(cli.stderr).toContain('restored with privilege: 1 device node, 1 setuid/setgid entry, 1 trusted.*/security.* xattr');
    const refused = await run('node', [CLI, 'apply', '--no-devices', src, delta, '--out', fresh('out')]).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toMatch(/^deltaimg: error: .*which --no-devices refuses/);
  });
});

describe('memory for the records', () => {
  it('a header announcing more records than the memory budget holds is refused before reading them', async () => {
    const src = fresh('src');
    await mkdir(src);
    const delta = fresh('delta');
    await craftDelta(delta, [rootRecord()], (h) => {
      h.entries.count = 3_000_000;
    });
    const out = fresh('out');
    const err = await applyDelta(src, delta, out, { pool, memoryBytes: 1 << 30 }).catch((e: unknown) => e);
    expectRefusal(err, out, /holds 3000000 entries .* more than the 1\.0 GiB budget; give apply --memory 2G/);
    // With the budget raised, the records are read, and the false count is what is refused.
    const raised = await applyDelta(src, delta, out, { pool, memoryBytes: 4 * 2 ** 30 }).catch((e: unknown) => e);
    expectRefusal(raised, out, /holds 1 records, the header says 3000000/);
  });
});

describe('smaller messages', () => {
  it('a size-only mismatch says sizes, not two equal hashes', async () => {
    const src = fresh('src');
    await mkdir(src);
    await writeFile(join(src, 'f'), 'abc\n');
    const delta = fresh('delta');
    await craftDelta(delta, [
      rootRecord(),
      {
        path: rel('f'),
        kind: 'file',
        meta: META,
        size: 5,
        sha256: sha('abc\n'),
        content: { op: 'raw', payload: { inline: Buffer.from('abc\n') } },
      },
    ]);
    const out = fresh('out');
    expectRefusal(await applyPromptly(src, delta, out), out, /restored \/f does not match the delta \(4 bytes, expected 5\)/);
  });
});
