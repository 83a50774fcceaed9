/**
 * The branch transform: relative branch/call displacements in an executable's code become
 * absolute targets, so that every call to one function carries the same bytes wherever the
 * call sits, and a function that moved between two builds changes all its calls the same
 * way. bsdiff then matches source and target with far fewer differing bytes.
 *
 * Exactly reversible for ANY bytes, not just real code: the scan only ever decides on
 * opcode bytes, which it never changes, and on whether a displacement lies in a range the
 * mapping preserves (a bijection of that range, identity outside it); and no converted
 * field overlaps the bytes another decision reads. So decoding finds the same positions
 * (docs/bsdiff.md, "Executable transform").
 */

import { shiftAt, type AddressMap } from './address-map.js';

export type Arch = 'x86-64' | 'arm64';

/** A run of code in the file: `size` bytes at file `offset`, loaded at `vaddr` (mod 2^32). */
export interface Region {
  offset: number;
  size: number;
  vaddr: number;
}

export type BranchTransform =
  /**
   * E8 call rel32, and RIP-relative LEA/MOV loads (REX.W 48 or 4C, 8D or 8B, ModRM mod=00
   * rm=101, disp32), with displacements in [-2^(rangeBits-1), 2^(rangeBits-1)). Not E9 jmp
   * nor 0F 80..8F jcc: most stay inside a function, where relative is what stays the same. On
   * containerd's .text: calls alone made the patch 11.3% smaller than plain bsdiff, calls and
   * RIP-relative loads 21.4%; calls and jmps 4.4%; calls, jmps and jccs 3.0% larger.
   */
  | { arch: 'x86-64'; rangeBits: number; regions: readonly Region[]; addressMap?: AddressMap }
  /** BL imm26 (every one) and ADRP whose page delta lies within +-512 MiB. */
  | { arch: 'arm64'; regions: readonly Region[]; addressMap?: AddressMap };
// `addressMap` (a source's transform only, forward only): the absolute targets are relabelled
// to the target file's addresses, and so is every aligned 8-byte word outside the code whose
// value lies in the map's range (address-map.ts).

export type Direction = 'forward' | 'inverse';

/** Bytes one decision may read from its position on (an 8-byte data word; a RIP-relative load is 7). */
export const MAX_INSTRUCTION_BYTES = 8;

/**
 * Transforms, in place, the instructions that start at file positions in [from, stop)
 * of `buf`, which holds the file's bytes from position `base`. Returns the position the
 * next call must resume at: every byte before it is final. Instructions must lie whole
 * inside their region and inside `buf`.
 */
export function transformRange(t: BranchTransform, dir: Direction, buf: Uint8Array, base: number, from: number, stop: number): number {
  const map = t.addressMap;
  if (map && dir === 'inverse') throw new Error('an address map relabels a source; it has no inverse');
  const bufEnd = base + buf.length;
  let k = from;
  for (const r of t.regions) {
    const end = Math.min(r.offset + r.size, bufEnd);
    if (k >= end) continue;
    if (k < r.offset) {
      k = map ? relabelWords(map, buf, base, k, Math.min(stop, r.offset), r.offset) : r.offset;
      if (k < r.offset) return k;
    }
    if (k >= stop) return k;
    const scan: Scan = { r, dir, map, buf, base, stop: Math.min(stop, end), end };
    k = t.arch === 'x86-64' ? scanX86(scan, t.rangeBits, k) : scanArm64(scan, k);
    if (k < end) return k;
  }
  if (map && k < stop) k = relabelWords(map, buf, base, k, stop, Infinity);
  return Math.max(k, stop);
}

/**
 * Relabels the 8-byte little-endian words at file positions that are multiples of 8, from `k`
 * on, starting before `limit` and ending by `gapEnd` (the next code region) and the buffer's
 * end. Returns where to resume; the bytes before it are final.
 */
function relabelWords(map: AddressMap, buf: Uint8Array, base: number, k: number, limit: number, gapEnd: number): number {
  const end = Math.min(gapEnd, base + buf.length);
  let w = k + ((8 - (k % 8)) % 8);
  for (; w < limit && w + 8 <= end; w += 8) {
    const i = w - base;
    const high = (buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24)) >>> 0;
    if (high * 2 ** 32 >= map.end) continue;
    const v = high * 2 ** 32 + ((buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) >>> 0);
    const shift = shiftAt(map, v);
    if (shift === 0 || v + shift < 0) continue;
    const out = v + shift;
    const low = out % 2 ** 32;
    const up = Math.floor(out / 2 ** 32);
    buf[i] = low & 0xff;
    buf[i + 1] = (low >>> 8) & 0xff;
    buf[i + 2] = (low >>> 16) & 0xff;
    buf[i + 3] = (low >>> 24) & 0xff;
    buf[i + 4] = up & 0xff;
    buf[i + 5] = (up >>> 8) & 0xff;
    buf[i + 6] = (up >>> 16) & 0xff;
    buf[i + 7] = (up >>> 24) & 0xff;
  }
  if (w >= limit) return w;
  // The next word would overlap the code (skip to it) or run past the end of the file.
  return end === gapEnd ? gapEnd : limit;
}

/** The address `target` (mod 2^32) relabelled by `map` (the same when there is none). */
function relabelled(map: AddressMap | undefined, target: number): number {
  return map ? target + shiftAt(map, target >>> 0) : target;
}

/** One region's scan: instructions starting before `stop`, lying whole before `end` (the region's end, or the buffer's). */
interface Scan {
  r: Region;
  dir: Direction;
  map: AddressMap | undefined;
  /** The file's bytes from position `base`. */
  buf: Uint8Array;
  base: number;
  stop: number;
  end: number;
}

/** Transforms a whole file held in `buf`, in place. */
export function transformBuffer(t: BranchTransform, dir: Direction, buf: Uint8Array): void {
  transformRange(t, dir, buf, 0, 0, buf.length);
}

/**
 * x86-64. At a candidate (an E8 call or a RIP-relative load whose instruction fits the
 * region) the scan always moves past the whole instruction, converted or not: a later
 * conversion then never touches the bytes this decision read. Elsewhere it moves one byte; a
 * load's opcode bytes at k+1 (8D/8B) cannot start a conversion, so none changes its ModRM at
 * k+2 either. The condition (displacement in the signed rangeBits range) is preserved by the
 * mapping, which adds the next instruction's address mod 2^rangeBits and sign-extends.
 */
function scanX86({ r, dir, map, buf, base, stop, end }: Scan, bits: number, k: number): number {
  const shift = 32 - bits;
  while (k < stop) {
    const i = k - base;
    const len = x86CandidateLength(buf, i, end - k);
    if (len === 0) {
      k++;
      continue;
    }
    const at = i + len - 4;
    const v = buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24);
    const high = v >> (bits - 1);
    if (high === 0 || high === -1) {
      // The address of the next instruction, mod 2^32 (vaddr is kept mod 2^32).
      const pc = (r.vaddr + (k - r.offset) + len) | 0;
      const target = dir === 'forward' ? relabelled(map, v + pc) : v - pc;
      const w = ((target | 0) << shift) >> shift;
      buf[at] = w & 0xff;
      buf[at + 1] = (w >>> 8) & 0xff;
      buf[at + 2] = (w >>> 16) & 0xff;
      buf[at + 3] = (w >>> 24) & 0xff;
    }
    k += len;
  }
  return k;
}

/** Length of the candidate instruction at buf[i] (0: none), given `room` bytes left in the region. */
function x86CandidateLength(buf: Uint8Array, i: number, room: number): number {
  const op = buf[i]!;
  if (op === 0xe8) return room >= 5 ? 5 : 0;
  if (op !== 0x48 && op !== 0x4c) return 0;
  if (room < 7) return 0;
  const opcode = buf[i + 1]!;
  return (opcode === 0x8d || opcode === 0x8b) && (buf[i + 2]! & 0xc7) === 0x05 ? 7 : 0;
}

/** ADRP page deltas within [-2^17, 2^17) pages (+-512 MiB) are converted; others are data or far. */
const ADRP_RANGE_BITS = 18;

/**
 * ARM64: 4-byte words at 4-byte steps from the region's start. Each word is decided on its
 * own opcode bits (unchanged) and, for ADRP, on a range the mapping preserves.
 */
function scanArm64({ r, dir, map, buf, base, stop, end }: Scan, k: number): number {
  const sign = dir === 'forward' ? 1 : -1;
  const misaligned = (k - r.offset) % 4;
  if (misaligned) k += 4 - misaligned;
  for (; k < stop && k + 4 <= end; k += 4) {
    const i = k - base;
    const ins = (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) >>> 0;
    let out: number;
    if (ins >>> 26 === 0x25) {
      // BL: imm26 counts words; the absolute target word address mod 2^26.
      const pcWords = (r.vaddr + (k - r.offset)) / 4;
      const words = map ? Math.floor(relabelled(map, (pcWords + ((ins << 6) >> 6)) * 4) / 4) : ins + sign * pcWords;
      out = (ins & 0xfc000000) | (words & 0x03ffffff);
    } else if ((ins & 0x9f000000) >>> 0 === 0x90000000) {
      // ADRP: immhi (bits 5..23) : immlo (bits 29..30) is a signed 21-bit page delta.
      const imm = ((ins >>> 29) & 3) | ((ins >>> 3) & 0x1ffffc);
      const v = (imm << 11) >> 11;
      const high = v >> (ADRP_RANGE_BITS - 1);
      if (high !== 0 && high !== -1) continue;
      const pcPage = Math.floor((r.vaddr + (k - r.offset)) / 4096);
      const page = map ? relabelAdrp(map, buf, i, k + 8 <= end, pcPage + v, ins & 0x1f) : v + sign * pcPage;
      const shift = 32 - ADRP_RANGE_BITS;
      const w = ((page | 0) << shift) >> shift;
      out = (ins & 0x9f00001f) | ((w & 3) << 29) | ((w & 0x1ffffc) << 3);
    } else {
      continue;
    }
    buf[i] = out & 0xff;
    buf[i + 1] = (out >>> 8) & 0xff;
    buf[i + 2] = (out >>> 16) & 0xff;
    buf[i + 3] = (out >>> 24) & 0xff;
  }
  // Stopped short of `stop`: the region's last bytes hold no whole word, all of it is final.
  return k >= stop ? k : end;
}

/**
 * Source side only: the page an ADRP at buf[i] reaches (`page`, for register `reg`), relabelled.
 * When the next word (`paired`: inside the region) completes the address from the same
 * register (ADD immediate, or a load/store with an unsigned offset), the whole address is
 * relabelled and that word's low 12 bits are rewritten too: the page of an object that moved
 * by less than a page changes with where in its page it lies.
 */
function relabelAdrp(map: AddressMap, buf: Uint8Array, i: number, paired: boolean, page: number, reg: number): number {
  const next = paired ? buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24) : 0;
  const scale = paired && ((next >>> 5) & 0x1f) === reg ? LOW12_SCALE.get((next & 0xffc00000) >>> 0) : undefined;
  if (!scale) return Math.floor(relabelled(map, page * 4096) / 4096);
  const moved = relabelled(map, page * 4096 + ((next >>> 10) & 0xfff) * scale);
  const low = ((moved % 4096) + 4096) % 4096;
  if (low % scale === 0) {
    const out = (next & ~(0xfff << 10)) | ((low / scale) << 10);
    buf[i + 4] = out & 0xff;
    buf[i + 5] = (out >>> 8) & 0xff;
    buf[i + 6] = (out >>> 16) & 0xff;
    buf[i + 7] = (out >>> 24) & 0xff;
  }
  return Math.floor(moved / 4096);
}

/** Instructions (top 10 bits) that add a 12-bit immediate to an ADRP's page, by its scale. */
const LOW12_SCALE = new Map<number, number>([
  [0x91000000, 1], // ADD Xd, Xn, #imm12
  [0x39400000, 1], // LDRB Wt, [Xn, #imm]
  [0x79400000, 2], // LDRH
  [0xb9400000, 4], // LDR Wt
  [0xf9400000, 8], // LDR Xt
  [0xb9000000, 4], // STR Wt
  [0xf9000000, 8], // STR Xt
  [0xbd400000, 4], // LDR St
  [0xfd400000, 8], // LDR Dt
  [0x3dc00000, 16], // LDR Qt
]);
