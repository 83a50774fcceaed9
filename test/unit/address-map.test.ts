/**
 * Address relabelling (src/exefilter/address-map.ts): the map built from a bsdiff alignment,
 * what the source transform does with it (data words, x86-64 calls and RIP-relative loads, ARM64
 * BL and ADRP with the instruction that completes the address), that streaming in any chunk
 * sizes gives the same bytes as the whole buffer, its recorded form and the refusal of hostile
 * maps.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { relabelUnwindBuffer, relabelUnwindFile } from '../../src/exefilter/unwind.js';
import {
  addressMapFor,
  decodePairTransform,
  encodePairTransform,
  shiftAt,
  transformBuffer,
  TransformParamsError,
  type AddressMap,
  type BranchTransform,
} from '../../src/exefilter/index.js';
import { rng, streamed } from '../helpers/branch-streams.js';

const map: AddressMap = { start: 0x1000, end: 0x100000, points: [0x2000, 0x8000], shifts: [0x40, -0x1010] };

describe('address map', () => {
  it('shifts each address by the shift of the last point at or below it, nothing outside its range', () => {
    expect([0, 0x1fff, 0x2000, 0x7fff, 0x8000, 0xfffff, 0x100000].map((v) => shiftAt(map, v))).toEqual([
      0, 0, 0x40, 0x40, -0x1010, -0x1010, 0,
    ]);
  });

  it('is built from matched blocks through both files’ segments, ignoring short blocks', () => {
    const source = [
      { offset: 0, fileSize: 0x3000, vaddr: 0x400000, memSize: 0x3000 },
      { offset: 0x3000, fileSize: 0x1000, vaddr: 0x603000, memSize: 0x2000 },
    ];
    const target = [
      { offset: 0, fileSize: 0x3100, vaddr: 0x400000, memSize: 0x3100 },
      { offset: 0x3100, fileSize: 0x1000, vaddr: 0x604100, memSize: 0x2000 },
    ];
    const blocks = [
      { source: 0, target: 0, length: 0x1000 }, // unmoved
      { source: 0x1000, target: 0x1100, length: 0x2000 }, // code after a grown function: +0x100
      { source: 0x2800, target: 0x10, length: 20 }, // too short to say anything
      { source: 0x3000, target: 0x3100, length: 0x1000 }, // data: +0x100 in the file, +0x1100 in memory
    ];
    const m = addressMapFor(blocks, source, target)!;
    expect(m).toEqual({ start: 0x400000, end: 0x605000, points: [0x401000, 0x603000], shifts: [0x100, 0x1100] });
    expect(addressMapFor([{ source: 0, target: 0, length: 0x3000 }], source, target)).toBeUndefined();
    expect(addressMapFor(blocks, [], target)).toBeUndefined();
  });

  it('is coarsened to the longer blocks when it would have more than 65,536 points', () => {
    const segment = [{ offset: 0, fileSize: 2 ** 30, vaddr: 0, memSize: 2 ** 30 }];
    // 70,000 short blocks, each moved differently from its neighbours, then 1,000 long ones.
    const short = Array.from({ length: 70_000 }, (_, i) => ({ source: i * 100, target: i * 100 + (i % 2) * 8, length: 64 }));
    const long = Array.from({ length: 1000 }, (_, i) => ({
      source: 10_000_000 + i * 5000,
      target: 10_000_000 + i * 5000 + i * 16,
      length: 4096,
    }));
    const m = addressMapFor([...short, ...long], segment, segment)!;
    expect(m.points.length).toBe(999);
    expect(shiftAt(m, 10_000_000 + 999 * 5000)).toBe(999 * 16);
  });

  it('relabels aligned data words in its range, x86-64 call and load targets, ARM64 BL and ADRP pairs', () => {
    const x86: BranchTransform = { arch: 'x86-64', rangeBits: 24, regions: [{ offset: 16, size: 16, vaddr: 0x1010 }], addressMap: map };
    const bytes = Buffer.alloc(48, 0x90);
    bytes.writeBigUInt64LE(0x2100n, 0); // a pointer: +0x40
    bytes.writeBigUInt64LE(0x100000n, 8); // past the range: left alone
    bytes.writeUInt8(0xe8, 16); // call 0x9000 from 0x1010 (next instruction 0x1015)
    bytes.writeInt32LE(0x9000 - 0x1015, 17);
    Buffer.from([0x48, 0x8d, 0x05]).copy(bytes, 21); // lea rax, [rip -> 0x3000] (next instruction 0x101c)
    bytes.writeInt32LE(0x3000 - 0x101c, 24);
    bytes.writeBigUInt64LE(0x8008n, 32); // a pointer: -0x1010
    bytes.writeBigUInt64LE(0x2000n, 40);
    transformBuffer(x86, 'forward', bytes);
    expect([bytes.readBigUInt64LE(0), bytes.readBigUInt64LE(8), bytes.readBigUInt64LE(32), bytes.readBigUInt64LE(40)]).toEqual([
      0x2140n,
      0x100000n,
      0x6ff8n,
      0x2040n,
    ]);
    expect(bytes.readInt32LE(17)).toBe(0x9000 - 0x1010);
    expect(bytes.readInt32LE(24)).toBe(0x3040);

    const arm: BranchTransform = { arch: 'arm64', regions: [{ offset: 0, size: 12, vaddr: 0x1000 }], addressMap: map };
    const code = Buffer.alloc(16);
    code.writeUInt32LE((0x94000000 | ((0x9000 - 0x1000) / 4)) >>> 0, 0); // bl 0x9000
    code.writeUInt32LE((0x90000000 | (1 << 29) | 3) >>> 0, 4); // adrp x3, 0x2000 (one page up from 0x1004)
    code.writeUInt32LE((0x91000000 | (0xfe0 << 10) | (3 << 5) | 3) >>> 0, 8); // add x3, x3, #0xfe0: 0x2fe0
    transformBuffer(arm, 'forward', code);
    expect(code.readUInt32LE(0) & 0x03ffffff).toBe((0x9000 - 0x1010) / 4);
    const adrp = code.readUInt32LE(4);
    // 0x2fe0 + 0x40 = 0x3020: the page moves up by one, the low bits wrap.
    expect(((adrp >>> 29) & 3) | ((adrp >>> 3) & 0x1ffffc)).toBe(3);
    expect((code.readUInt32LE(8) >>> 10) & 0xfff).toBe(0x020);
  });

  it('gives the same bytes whole and streamed in random chunks, on random and code-like bytes', () => {
    let changed = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const next = rng(seed);
      const length = 1 + (next() % 6000);
      const input = Buffer.alloc(length);
      const special = [0xe8, 0x48, 0x4c, 0x8d, 0x8b, 0x05, 0x94, 0x90, 0x91, 0xf9, 0x00, 0x00, 0x00];
      for (let i = 0; i < length; i++) input[i] = next() % 3 ? special[next() % special.length]! : next() & 0xff;
      const points = Array.from({ length: 1 + (next() % 20) }, () => next() % 0x10000).sort((a, b) => a - b);
      const unique = [...new Set(points)];
      const random: AddressMap = { start: 0, end: 2 ** 32, points: unique, shifts: unique.map(() => (next() % 0x4000) - 0x2000) };
      const regions = [
        { offset: next() % 50, size: 1 + (next() % Math.max(1, length >> 1)), vaddr: (next() % 0x4000) * 4 },
        { offset: length - (length >> 3), size: length >> 3, vaddr: 0x800000 },
      ].filter((r, i, all) => r.size > 0 && r.offset + r.size <= length && (i === 0 || r.offset >= all[0]!.offset + all[0]!.size));
      for (const t of [
        { arch: 'x86-64', rangeBits: 20, regions, addressMap: random },
        { arch: 'arm64', regions, addressMap: random },
      ] as BranchTransform[]) {
        const whole = Buffer.from(input);
        transformBuffer(t, 'forward', whole);
        if (!whole.equals(input)) changed++;
        expect(streamed(t, 'forward', input, seed + 7).equals(whole)).toBe(true);
        expect(() => transformBuffer(t, 'inverse', Buffer.from(whole))).toThrow(/no inverse/);
      }
    }
    expect(changed).toBeGreaterThan(50);
  });
});

describe('unwind table relabelling', () => {
  /** An .eh_frame_hdr at file 0x100 (address 0x1100) listing two FDEs, one 32-bit, one 64-bit. */
  function unwindFile(): Buffer {
    const f = Buffer.alloc(0x200);
    Buffer.from([1, 0x1b, 0x03, 0x3b]).copy(f, 0x100);
    f.writeInt32LE(0x40, 0x104); // eh_frame_ptr
    f.writeUInt32LE(2, 0x108); // fde_count
    // Function at 0x2000 (moves +0x40), FDE at hdr+0x40 = 0x1140 (does not move): pc_begin relative to 0x1148.
    f.writeInt32LE(0x2000 - 0x1100, 0x10c);
    f.writeInt32LE(0x40, 0x110);
    f.writeUInt32LE(0x14, 0x140);
    f.writeUInt32LE(0x30, 0x144);
    f.writeInt32LE(0x2000 - 0x1148, 0x148);
    // Function at 0x9000 (moves -0x1010), its FDE in the 64-bit format: only the table entry changes.
    f.writeInt32LE(0x9000 - 0x1100, 0x114);
    f.writeInt32LE(0x60, 0x118);
    f.writeUInt32LE(0xffffffff, 0x160);
    f.writeInt32LE(0x1234, 0x168);
    return f;
  }

  it('relabels the header table and the FDEs it points to, leaving 64-bit FDEs and other layouts alone', () => {
    const f = unwindFile();
    relabelUnwindBuffer(map, { offset: 0x100, vaddr: 0x1100 }, f);
    expect([f.readInt32LE(0x10c), f.readInt32LE(0x110), f.readInt32LE(0x148)]).toEqual([0x2040 - 0x1100, 0x40, 0x2040 - 0x1148]);
    expect([f.readInt32LE(0x114), f.readInt32LE(0x168)]).toEqual([0x9000 - 0x1010 - 0x1100, 0x1234]);
    const other = unwindFile();
    other[0x103] = 0x1b; // a table of pcrel entries: not a layout this relabels
    const before = Buffer.from(other);
    relabelUnwindBuffer(map, { offset: 0x100, vaddr: 0x1100 }, other);
    expect(other.equals(before)).toBe(true);
  });

  it('gives the same bytes in memory and through the file, on hostile tables too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'deltaimg-unwind-'));
    try {
      for (let seed = 1; seed <= 40; seed++) {
        const next = rng(seed);
        const f = seed % 2 ? unwindFile() : Buffer.from(Array.from({ length: 0x200 }, () => next() & 0xff));
        const offset = seed % 2 ? 0x100 : next() % 0x200;
        Buffer.from([1, 0x1b, 0x03, 0x3b]).copy(f, Math.min(offset, 0x200 - 4));
        if (seed % 2 === 0 && offset + 12 <= 0x200) f.writeUInt32LE(next() % 100, offset + 8);
        // Entries pointing anywhere: into the table itself, outside the file, at each other.
        for (let i = 0; seed % 4 === 2 && i < 8; i++)
          if (offset + 20 + 8 * i <= 0x200) f.writeInt32LE((next() % 0x300) - 0x180, offset + 16 + 8 * i);
        const header = { offset, vaddr: 0x1000 + (next() % 0x2000) };
        const inMemory = Buffer.from(f);
        relabelUnwindBuffer(map, header, inMemory);
        const path = join(dir, `f${seed}`);
        writeFileSync(path, f);
        relabelUnwindFile(map, header, path, f.length);
        expect(readFileSync(path).equals(inMemory), `seed ${seed}`).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('recorded address maps', () => {
  const regions = [[64, 100, 0x401000]];
  const good = {
    source: { arch: 'x86-64', rangeBits: 26, regions, addressMap: { range: [0x400000, 0x800000], shifts: [0x1000, 16, 0x2000, -32] } },
    target: { arch: 'x86-64', rangeBits: 26, regions },
  };

  it('round-trip through their JSON form (points as gaps)', () => {
    const t = decodePairTransform(JSON.parse(JSON.stringify(good)));
    expect(t.source.addressMap).toEqual({ start: 0x400000, end: 0x800000, points: [0x401000, 0x403000], shifts: [16, -32] });
    expect(encodePairTransform(t)).toEqual(good);
    const unwound = { ...good, source: { ...good.source, addressMap: { ...good.source.addressMap, unwind: [0x2000, 0x402000] } } };
    expect(decodePairTransform(unwound).source.addressMap?.unwind).toEqual({ offset: 0x2000, vaddr: 0x402000 });
    expect(encodePairTransform(decodePairTransform(unwound))).toEqual(unwound);
  });

  it('refuse hostile maps, each with its reason', () => {
    const withMap = (addressMap: unknown) => ({ ...good, source: { ...good.source, addressMap } });
    const hostile: [unknown, RegExp][] = [
      [{ ...good, target: { ...good.target, addressMap: good.source.addressMap } }, /target has an addressMap/],
      [withMap('all'), /addressMap is not an object/],
      [withMap({ range: [5, 5], shifts: [0, 1] }), /range must be/],
      [withMap({ range: [0, 2 ** 53], shifts: [0, 1] }), /range must be/],
      [withMap({ range: [-1, 5], shifts: [0, 1] }), /range must be/],
      [withMap({ range: [0, 100], shifts: [] }), /shifts must hold 1 to 65536/],
      [withMap({ range: [0, 100], shifts: [0, 1, 2] }), /shifts must hold/],
      [withMap({ range: [0, 100], shifts: new Array(2 * 65537).fill(1) }), /shifts must hold/],
      [withMap({ range: [0, 100], shifts: [10, 1, 0, 2] }), /shifts\[2\] is not a gap/],
      [withMap({ range: [0, 100], shifts: [100, 1] }), /shifts\[0\] is not a gap/],
      [withMap({ range: [0, 100], shifts: [1.5, 1] }), /shifts\[0\] is not a gap/],
      [withMap({ range: [0, 100], shifts: [1, 2 ** 52] }), /shifts\[1\] is not an integer shift/],
      [withMap({ range: [0, 100], shifts: [1, '3'] }), /shifts\[1\] is not an integer shift/],
      [withMap({ range: [0, 100], shifts: [1, 3], unwind: [5] }), /unwind is not \[offset, vaddr\]/],
      [withMap({ range: [0, 100], shifts: [1, 3], unwind: [5, -1] }), /unwind is not \[offset, vaddr\]/],
      [withMap({ range: [0, 100], shifts: [1, 3], unwind: [5, 2 ** 52] }), /unwind is not \[offset, vaddr\]/],
    ];
    for (const [value, why] of hostile) {
      expect(() => decodePairTransform(value)).toThrow(TransformParamsError);
      expect(() => decodePairTransform(value)).toThrow(why);
    }
  });
});
