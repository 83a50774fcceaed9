/**
 * Damaged `.dimg` files of issue #13: every truncation point and every fuzzed header field is a
 * one-line refusal (exit 1), never an internal error (exit 70), a hang or a partial output.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseImageRef } from '../src/image/ref.js';
import { applyImageDelta, readDimgHeader } from '../src/imagedelta/index.js';
import { diffImages } from '../src/imagedelta/diff.js';
import { DeltaimgError } from '../src/util/errors.js';
import { writeTar } from './helpers/image-archives.js';
import { smallImagePair } from './helpers/small-images.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');

let work: string;
let aTar: string;
let dimg: string;
let dimgBytes: Buffer;
let members: { name: string; data: Buffer }[];
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'deltaimg-hostile-dimg-'));
  const pair = await smallImagePair(work);
  aTar = pair.aTar;
  dimg = join(work, 'good.dimg');
  await diffImages(parseImageRef(`docker-archive:${aTar}`), parseImageRef(`docker-archive:${pair.bTar}`), dimg);
  dimgBytes = await readFile(dimg);
  members = [];
  const extract = tar.extract();
  extract.end(dimgBytes);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    members.push({ name: entry.header.name, data: Buffer.concat(chunks) });
  }
}, 120_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let counter = 0;

/** applyImageDelta in-process, settling within 30 s or failing the test as a hang. */
async function applyPromptly(file: string): Promise<{ result: unknown; out: string }> {
  const out = join(work, `out-${counter++}`);
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`apply of ${file} did not settle within 30 s (hang)`)), 30_000);
  });
  try {
    const applying = applyImageDelta(parseImageRef(`docker-archive:${aTar}`), file, parseImageRef(`oci:${out}`)).then(
      () => 'ok',
      (err: unknown) => err,
    );
    return { result: await Promise.race([applying, hang]), out };
  } finally {
    clearTimeout(timer);
  }
}

function expectOneLineRefusal(result: unknown, message: RegExp): void {
  expect(result, String((result as Error)?.stack)).toBeInstanceOf(DeltaimgError);
  expect((result as Error).message).toMatch(message);
  expect((result as Error).message).not.toContain('\n');
}

/** A .dimg of exactly these members, in this order. */
async function packDimgOf(name: string, entries: { name: string; data: Buffer }[]): Promise<string> {
  const path = join(work, name);
  await writeTar(path, new Map(entries.map((e) => [e.name, e.data])));
  return path;
}

describe('truncated .dimg', () => {
  it('the untouched file applies (the fixture is sound)', async () => {
    const { result, out } = await applyPromptly(dimg);
    expect(result).toBe('ok');
    expect(existsSync(out)).toBe(true);
  });

  it('every one of 40 evenly spaced cut points, and cuts inside each member, is a one-line "truncated" refusal', async () => {
    // Offsets inside each member's data (a member ends after its 512-byte-aligned data).
    const cuts = new Set<number>();
    for (let i = 1; i < 40; i++) cuts.add(Math.floor((dimgBytes.length * i) / 40));
    let at = 0;
    for (const m of members) {
      const dataStart = at + 512;
      cuts.add(dataStart + Math.floor(m.data.length / 2));
      cuts.add(dataStart - 100); // inside the header block
      at = dataStart + Math.ceil(m.data.length / 512) * 512;
    }
    for (const cut of [...cuts].sort((a, b) => a - b)) {
      const file = join(work, `cut-${cut}.dimg`);
      await writeFile(file, dimgBytes.subarray(0, cut));
      const { result, out } = await applyPromptly(file);
      expectOneLineRefusal(result, /truncated|not a readable tar|is empty/);
      expect(existsSync(out), `output left after the cut at ${cut}`).toBe(false);
    }
  }, 240_000);

  it('through the CLI: exit 1 (not 70) and one line, for image apply and image inspect', async () => {
    for (const cut of [Math.floor(dimgBytes.length / 3), Math.floor(dimgBytes.length * 0.9)]) {
      const file = join(work, `cli-cut-${cut}.dimg`);
      await writeFile(file, dimgBytes.subarray(0, cut));
      const fail = await run('node', [CLI, 'image', 'apply', `docker-archive:${aTar}`, file, '-o', `oci:${join(work, `cli-out-${cut}`)}`], {
        timeout: 60_000,
      }).catch((e: unknown) => e);
      expect(fail, String(fail)).toMatchObject({ code: 1, killed: false });
      expect((fail as { stderr: string }).stderr.trim().split('\n')).toHaveLength(1);
      expect((fail as { stderr: string }).stderr).toMatch(/truncated/);
    }
    const file = join(work, 'cli-cut-header.dimg');
    await writeFile(file, dimgBytes.subarray(0, 700));
    const fail = await run('node', [CLI, 'image', 'inspect', file], { timeout: 60_000 }).catch((e: unknown) => e);
    expect(fail).toMatchObject({ code: 1 });
    expect((fail as { stderr: string }).stderr).toMatch(/^deltaimg: error: .*truncated/);
  }, 120_000);
});

describe('dimg.json with missing or mistyped fields', () => {
  const header = () => JSON.parse(members[0]!.data.toString('utf8'));
  // The header as loosely typed JSON: each edit reaches into it the way a damaged file would.
  type Loose = Record<string, any>;
  const edits: [string, (h: Loose) => void, RegExp][] = [
    ['target.layers a number', (h) => (h.images[0].target.layers = 5), /field images\[0\]\.target\.layers is the number 5, not an array/],
    ['images[0].base missing', (h) => delete h.images[0].base, /field images\[0\]\.base is missing, not an object/],
    [
      'a layer size as a string',
      (h) => (h.images[0].target.layers[0].size = '12'),
      /field images\[0\]\.target\.layers\[0\]\.size is the string "12"/,
    ],
    [
      'a diffId that is not a digest',
      (h) => (h.images[0].base.diffIds[0] = 'sha256:zz'),
      /field images\[0\]\.base\.diffIds\[0\] is "sha256:zz", not of the expected form/,
    ],
    ['minReaderVersion "9"', (h) => (h.minReaderVersion = '9'), /field minReaderVersion is the string "9", not an integer/],
    ['layers null', (h) => (h.layers = null), /field layers is null, not an array/],
    ['a member sha256 of the wrong length', (h) => (h.members[0].sha256 = 'abc'), /field members\[0\]\.sha256/],
    [
      'a stored layer with an unknown compression',
      (h) =>
        (h.images[0].target.layers[0].stored = {
          digest: h.images[0].target.layers[0].diffId,
          size: 1,
          mediaType: 'x',
          compression: 'lz4',
        }),
      /compression is the string "lz4", not one of none, gzip, zstd/,
    ],
  ];
  for (const [name, edit, message] of edits) {
    it(name, async () => {
      const h = header();
      edit(h);
      const file = await packDimgOf(`header-${counter++}.dimg`, [
        { name: 'dimg.json', data: Buffer.from(JSON.stringify(h)) },
        ...members.slice(1),
      ]);
      expectOneLineRefusal(await readDimgHeader(file).catch((e: unknown) => e), message);
      const { result, out } = await applyPromptly(file);
      expectOneLineRefusal(result, message);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('a dimg.json too large for a header says so', async () => {
    const file = await packDimgOf('huge-header.dimg', [{ name: 'dimg.json', data: Buffer.alloc(65 * 1024 * 1024, 0x20) }]);
    expectOneLineRefusal(
      await readDimgHeader(file).catch((e: unknown) => e),
      /its dimg\.json has 68157440 bytes, more than a header can \(67108864\)/,
    );
  });

  it('image inspect escapes control characters in header strings', async () => {
    const h = header();
    h.tool = 'evil\u001b]0;pwned\u0007\u001b[2J';
    h.images[0].target.names = ['app:\u009b31m'];
    const file = await packDimgOf('escape.dimg', [{ name: 'dimg.json', data: Buffer.from(JSON.stringify(h)) }, ...members.slice(1)]);
    const { stdout } = await run('node', [CLI, 'image', 'inspect', file]);
    expect(stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(stdout).toContain('evil\\x1b]0;pwned\\x07\\x1b[2J');
    expect(stdout).toContain('app:\\x9b31m');
  });
});

describe('a FIFO inside a crafted .dimg where a content file belongs', () => {
  it('is refused without hanging', async () => {
    // Members are unpacked as regular files only; a non-file member type is refused at once.
    const pack = tar.pack();
    pack.entry({ name: 'dimg.json' }, members[0]!.data);
    pack.entry({ name: members[1]!.name, type: 'fifo' });
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
    const file = join(work, 'fifo-member.dimg');
    await mkdir(work, { recursive: true });
    await writeFile(file, Buffer.concat(chunks));
    const { result } = await applyPromptly(file);
    expectOneLineRefusal(result, /is not a regular file/);
  });
});

describe('a layer rebuild stops at the sizes its skeleton declares', () => {
  it('an encoded skeleton (brotli, and VCDIFF against references) that decodes past its declared size', async () => {
    const { splitTar, encodeSkeleton, decodeSkeleton } = await import('../src/tarsplit/index.js');
    const { Readable } = await import('node:stream');
    const dir = join(work, 'skel');
    await mkdir(dir, { recursive: true });
    const layerTar = join(work, 'a.tar'); // any tar will do: the image archive itself
    await splitTar(Readable.from([await readFile(layerTar)]), join(dir, 'skeleton'), join(dir, 'content'), { inlineMax: 1 << 20 });
    const cases: [string, string[]][] = [
      ['alone', []],
      ['against a reference', [join(dir, 'skeleton')]],
    ];
    for (const [name, refs] of cases) {
      const encoded = join(dir, `encoded-${refs.length}`);
      await encodeSkeleton(join(dir, 'skeleton'), refs, encoded);
      const blob = await readFile(encoded);
      blob.writeBigUInt64BE(100n, 16); // the declared skeleton size
      await writeFile(encoded, blob);
      const err = await decodeSkeleton(encoded, refs, join(dir, `decoded-${refs.length}`)).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(DeltaimgError);
      expect((err as Error).message, name).toMatch(/decodes to more than|output exceeds the 100 bytes/);
      expect(existsSync(join(dir, `decoded-${refs.length}`))).toBe(false);
    }
  });

  it('a skeleton whose ops build more than the tar size it declares', async () => {
    const { splitTar, joinTar } = await import('../src/tarsplit/index.js');
    const { Readable, Writable } = await import('node:stream');
    const dir = join(work, 'join');
    await mkdir(dir, { recursive: true });
    await splitTar(Readable.from([await readFile(join(work, 'a.tar'))]), join(dir, 'skeleton'), join(dir, 'content'));
    const skeleton = await readFile(join(dir, 'skeleton'));
    skeleton.writeBigUInt64BE(1000n, 32); // the declared tar size
    await writeFile(join(dir, 'skeleton'), skeleton);
    let written = 0;
    const sink = new Writable({
      write: (c: Buffer, _e, cb) => {
        written += c.length;
        cb();
      },
    });
    const err = await joinTar(join(dir, 'skeleton'), join(dir, 'content'), sink).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeltaimgError);
    expect((err as Error).message).toMatch(/builds more than the 1000-byte tar it declares/);
    expect(written).toBeLessThanOrEqual(1000);
  });
});
