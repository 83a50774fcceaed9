/**
 * The executable transform alone: exact inverse on random and adversarial bytes (whole
 * buffer and streamed in random chunks), ELF parsing of real x86-64 and ARM64 executables,
 * of mislabelled, truncated and mutated ones (never a throw, never a region outside the
 * file), and refusal of hostile recorded parameters.
 */
import { statSync } from 'node:fs';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  choosePairTransform,
  decodePairTransform,
  encodePairTransform,
  parseElfCode,
  readElfCode,
  regionsOutside,
  transformBuffer,
  transformFile,
  TransformParamsError,
  type BranchTransform,
} from '../src/exefilter/index.js';
import { rng, streamed } from './helpers/branch-streams.js';
import { compiledPair } from './helpers/elf-programs.mjs';

type ProgramPair = { a: string; b: string };

let dir: string;
const programs: Partial<Record<'x86-64' | 'arm64', ProgramPair>> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltaimg-exefilter-'));
  programs['x86-64'] = await compiledPair(dir, 'x86-64');
  programs.arm64 = await compiledPair(dir, 'arm64');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * Bytes dense in the opcodes the transform looks at (E8, 48/4C 8D/8B ModRM 05, and E9 and 0F 8x that
 * it must leave alone; ARM64 BL and ADRP words)
 * and in displacements near the range edges, so overlapping candidates and boundary values
 * are exercised, not just what random bytes hit by chance.
 */
function adversarial(length: number, seed: number): Buffer {
  const next = rng(seed);
  const out = Buffer.alloc(length);
  const special = [
    0xe8, 0xe9, 0x0f, 0x80, 0x8f, 0x00, 0xff, 0x94, 0x97, 0x90, 0xb0, 0xf0, 0x7f, 0x01, 0xfe, 0x48, 0x4c, 0x8d, 0x8b, 0x05, 0x0d, 0x3d,
  ];
  for (let i = 0; i < length; i++) {
    const r = next();
    out[i] = r % 3 === 0 ? r >>> 8 : special[(r >>> 8) % special.length]!;
  }
  return out;
}

function transformsFor(length: number, seed: number): BranchTransform[] {
  const next = rng(seed * 7 + 1);
  const regions = () => {
    const out = [];
    let at = next() % 7;
    while (at < length && out.length < 5) {
      const size = 1 + (next() % Math.max(1, length >> 2));
      out.push({ offset: at, size: Math.min(size, length - at), vaddr: (next() % 0x40000000) * 4 });
      at += size + (next() % 9);
    }
    return out;
  };
  return [16, 20, 26, 31, 32]
    .map((rangeBits): BranchTransform => ({ arch: 'x86-64', rangeBits, regions: regions() }))
    .concat([
      { arch: 'arm64', regions: regions() },
      { arch: 'arm64', regions: [{ offset: 0, size: length, vaddr: 0xfffff000 }] },
    ]);
}

describe('branch transform', () => {
  it('is exactly inverted on random and adversarial bytes, whole and streamed', () => {
    let changed = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const length = 1 + (rng(seed)() % 5000);
      const input = seed % 2 ? adversarial(length, seed) : Buffer.from(Array.from({ length }, rng(seed + 1000)).map((x) => x & 0xff));
      for (const t of transformsFor(length, seed)) {
        const forward = Buffer.from(input);
        transformBuffer(t, 'forward', forward);
        if (!forward.equals(input)) changed++;
        expect(streamed(t, 'forward', input, seed)).toEqual(forward);
        const back = Buffer.from(forward);
        transformBuffer(t, 'inverse', back);
        expect(back.equals(input)).toBe(true);
        expect(streamed(t, 'inverse', forward, seed + 1).equals(input)).toBe(true);
      }
    }
    // The transform did something on most of them (else this test would prove nothing).
    expect(changed).toBeGreaterThan(150);
  });

  it('turns x86-64 calls to one target into the same bytes', () => {
    // Two calls to address 0x1000 from different places: rel32 differ, the transformed bytes do not.
    const code = Buffer.alloc(64, 0x90);
    code.writeUInt8(0xe8, 0);
    code.writeInt32LE(0x1000 - 5, 1);
    code.writeUInt8(0xe8, 40);
    code.writeInt32LE(0x1000 - 45, 41);
    transformBuffer({ arch: 'x86-64', rangeBits: 20, regions: [{ offset: 0, size: 64, vaddr: 0 }] }, 'forward', code);
    expect(code.readInt32LE(1)).toBe(0x1000);
    expect(code.readInt32LE(41)).toBe(0x1000);
  });

  it('turns x86-64 RIP-relative LEA and MOV into absolute addresses, and leaves jmp and jcc alone', () => {
    const code = Buffer.alloc(32, 0x90);
    Buffer.from([0x48, 0x8d, 0x05]).copy(code, 0); // lea rax, [rip + 0x100]
    code.writeInt32LE(0x100, 3);
    Buffer.from([0x4c, 0x8b, 0x3d]).copy(code, 7); // mov r15, [rip - 0x20]
    code.writeInt32LE(-0x20, 10);
    Buffer.from([0xe9, 1, 0, 0, 0, 0x0f, 0x84, 2, 0, 0, 0]).copy(code, 14); // jmp +1; je +2
    const before = Buffer.from(code);
    transformBuffer({ arch: 'x86-64', rangeBits: 20, regions: [{ offset: 0, size: 32, vaddr: 0x1000 }] }, 'forward', code);
    expect(code.readInt32LE(3)).toBe(0x1000 + 7 + 0x100);
    expect(code.readInt32LE(10)).toBe(0x1000 + 14 - 0x20);
    expect(code.subarray(14)).toEqual(before.subarray(14));
  });

  it('turns ARM64 BL and ADRP into absolute targets', () => {
    const code = Buffer.alloc(16);
    code.writeUInt32LE((0x94000000 | 0x10) >>> 0, 4); // bl +0x40 from 0x10004
    code.writeUInt32LE((0x90000000 | (1 << 29)) >>> 0, 8); // adrp x0, +1 page from page 0x10
    transformBuffer({ arch: 'arm64', regions: [{ offset: 0, size: 16, vaddr: 0x10000 }] }, 'forward', code);
    expect(code.readUInt32LE(4)).toBe((0x94000000 | (0x10004 / 4 + 0x10)) >>> 0);
    const adrp = code.readUInt32LE(8);
    expect(((adrp >>> 29) & 3) | ((adrp >>> 3) & 0x1ffffc)).toBe(0x10 + 1);
  });

  it('streams a real executable through files: forward then inverse gives it back', async () => {
    for (const arch of ['x86-64', 'arm64'] as const) {
      const { b } = programs[arch]!;
      const bytes = await readFile(b);
      const code = readElfCode(b, bytes.length)!;
      const t = choosePairTransform(code, code)!.target;
      await transformFile(b, join(dir, `${arch}.fwd`), t, 'forward');
      await transformFile(join(dir, `${arch}.fwd`), join(dir, `${arch}.back`), t, 'inverse');
      const fwd = await readFile(join(dir, `${arch}.fwd`));
      expect(fwd.equals(bytes)).toBe(false);
      expect((await readFile(join(dir, `${arch}.back`))).equals(bytes)).toBe(true);
    }
  });
});

describe('ELF code regions', () => {
  it('finds the executable sections of real x86-64 and ARM64 programs', async () => {
    for (const arch of ['x86-64', 'arm64'] as const) {
      const { a } = programs[arch]!;
      const size = (await readFile(a)).length;
      const code = readElfCode(a, size);
      expect(code?.arch).toBe(arch);
      // .init, .plt, .text, .fini at least; all inside the file, sorted, disjoint.
      expect(code!.regions.length).toBeGreaterThanOrEqual(3);
      let end = 0;
      for (const r of code!.regions) {
        expect(r.offset).toBeGreaterThanOrEqual(end);
        end = r.offset + r.size;
      }
      expect(end).toBeLessThanOrEqual(size);
    }
  });

  it("reads the system's own executables (/bin/ls) as code of this machine", () => {
    const ls = readElfCode('/bin/ls', statSync('/bin/ls').size);
    expect(ls?.arch).toBe(process.arch === 'arm64' ? 'arm64' : 'x86-64');
  });

  it('falls back on a non-ELF file mislabelled as ELF, a truncated ELF and mutated headers', async () => {
    const real = await readFile(programs['x86-64']!.a);
    const fake = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), adversarial(4000, 3)]);
    expect(parseElfCode(reader(fake), fake.length)).toBeUndefined();
    await writeFile(join(dir, 'fake'), fake);
    expect(readElfCode(join(dir, 'fake'), fake.length)).toBeUndefined();
    expect(readElfCode(join(dir, 'missing'), 100)).toBeUndefined();
    for (const cut of [0, 10, 63, 64, 1000, real.length >> 1, real.length - 1]) {
      const truncated = real.subarray(0, cut);
      const code = parseElfCode(reader(truncated), truncated.length);
      for (const r of code?.regions ?? []) expect(r.offset + r.size).toBeLessThanOrEqual(cut);
    }
    // The section table sits at the end of the file: cut it off and the code is not trusted.
    expect(
      parseElfCode(reader(real.subarray(0, real.length - 64)), real.length - 64)?.regions.every(
        (r) => r.offset + r.size <= real.length - 64,
      ) ?? true,
    ).toBe(true);
    const next = rng(99);
    for (let i = 0; i < 3000; i++) {
      const mutated = Buffer.from(real);
      const shoff = Number(real.readBigUInt64LE(40));
      for (let j = 0; j < 4; j++) {
        const at = j % 2 ? next() % 64 : shoff + (next() % (real.length - shoff));
        mutated[at] = next() & 0xff;
      }
      const code = parseElfCode(reader(mutated), mutated.length);
      for (const r of code?.regions ?? []) expect(r.offset + r.size).toBeLessThanOrEqual(mutated.length);
    }
  });
});

describe('recorded parameters', () => {
  const good = {
    source: { arch: 'x86-64', rangeBits: 26, regions: [[64, 100, 0x401000]] },
    target: { arch: 'x86-64', rangeBits: 26, regions: [[64, 120, 0x401000]] },
  };

  it('round-trip through their JSON form', () => {
    const t = decodePairTransform(JSON.parse(JSON.stringify(good)));
    expect(encodePairTransform(t)).toEqual(good);
    expect(regionsOutside(t.target, 184)).toBeUndefined();
    expect(regionsOutside(t.target, 183)).toMatch(/end at byte 184 of a 183-byte file/);
  });

  it('refuse hostile values, each with its reason', () => {
    const hostile: [unknown, RegExp][] = [
      [null, /not an object/],
      [{ ...good, source: { ...good.source, arch: 'mips' } }, /unknown arch/],
      [{ ...good, target: { ...good.target, arch: 'arm64', regions: [[0, 4, 0]] } }, /different architectures/],
      [{ ...good, source: { ...good.source, rangeBits: 33 } }, /rangeBits/],
      [{ ...good, source: { ...good.source, rangeBits: 2.5 } }, /rangeBits/],
      [{ ...good, target: { ...good.target, rangeBits: 27 } }, /different rangeBits/],
      [{ ...good, source: { ...good.source, regions: [] } }, /1 to 64 regions/],
      [{ ...good, source: { ...good.source, regions: Array.from({ length: 65 }, (_, i) => [i * 10, 5, 0]) } }, /1 to 64 regions/],
      [{ ...good, source: { ...good.source, regions: [[-1, 10, 0]] } }, /not \[offset, size, vaddr\]/],
      [{ ...good, source: { ...good.source, regions: [[0, 10]] } }, /not \[offset, size, vaddr\]/],
      [{ ...good, source: { ...good.source, regions: [['0', 10, 0]] } }, /not \[offset, size, vaddr\]/],
      [{ ...good, source: { ...good.source, regions: [[2 ** 53, 10, 0]] } }, /not \[offset, size, vaddr\]/],
      [{ ...good, source: { ...good.source, regions: [[2 ** 52, 2 ** 52, 0]] } }, /out of order/],
      [{ ...good, source: { ...good.source, regions: [[10, 0, 0]] } }, /empty/],
      [
        {
          ...good,
          source: {
            ...good.source,
            regions: [
              [10, 10, 0],
              [15, 10, 0],
            ],
          },
        },
        /overlaps/,
      ],
      [{ ...good, source: { ...good.source, regions: [[0, 10, 2 ** 32]] } }, /invalid vaddr/],
      [{ source: { arch: 'arm64', regions: [[0, 8, 2]] }, target: { arch: 'arm64', regions: [[0, 8, 0]] } }, /invalid vaddr/],
    ];
    for (const [value, why] of hostile) {
      expect(() => decodePairTransform(value)).toThrow(TransformParamsError);
      expect(() => decodePairTransform(value)).toThrow(why);
    }
  });
});

function reader(bytes: Buffer) {
  return (offset: number, length: number) => bytes.subarray(offset, offset + length);
}
