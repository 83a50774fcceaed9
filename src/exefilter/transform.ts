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
  | { arch: 'x86-64'; rangeBits: number; regions: readonly Region[] }
  /** BL imm26 (every one) and ADRP whose page delta lies within +-512 MiB. */
  | { arch: 'arm64'; regions: readonly Region[] };

export type Direction = 'forward' | 'inverse';

/** Bytes one decision may read from its position on (a RIP-relative load: 3 bytes and a disp32). */
export const MAX_INSTRUCTION_BYTES = 7;

/**
 * Transforms, in place, the instructions that start at file positions in [from, stop)
 * of `buf`, which holds the file's bytes from position `base`. Returns the position the
 * next call must resume at: every byte before it is final. Instructions must lie whole
 * inside their region and inside `buf`.
 */
export function transformRange(t: BranchTransform, dir: Direction, buf: Uint8Array, base: number, from: number, stop: number): number {
  const bufEnd = base + buf.length;
  let k = from;
  for (const r of t.regions) {
    const end = Math.min(r.offset + r.size, bufEnd);
    if (k >= end) continue;
    if (k < r.offset) k = r.offset;
    if (k >= stop) return k;
    k =
      t.arch === 'x86-64'
        ? scanX86(t.rangeBits, r, dir, buf, base, k, Math.min(stop, end), end)
        : scanArm64(r, dir, buf, base, k, Math.min(stop, end), end);
    if (k < end) return k;
  }
  return Math.max(k, stop);
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
function scanX86(bits: number, r: Region, dir: Direction, buf: Uint8Array, base: number, k: number, stop: number, end: number): number {
  const shift = 32 - bits;
  const sign = dir === 'forward' ? 1 : -1;
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
      const w = (((v + sign * pc) | 0) << shift) >> shift;
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
function scanArm64(r: Region, dir: Direction, buf: Uint8Array, base: number, k: number, stop: number, end: number): number {
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
      out = (ins & 0xfc000000) | ((ins + sign * pcWords) & 0x03ffffff);
    } else if ((ins & 0x9f000000) >>> 0 === 0x90000000) {
      // ADRP: immhi (bits 5..23) : immlo (bits 29..30) is a signed 21-bit page delta.
      const imm = ((ins >>> 29) & 3) | ((ins >>> 3) & 0x1ffffc);
      const v = (imm << 11) >> 11;
      const high = v >> (ADRP_RANGE_BITS - 1);
      if (high !== 0 && high !== -1) continue;
      const pcPage = Math.floor((r.vaddr + (k - r.offset)) / 4096);
      const shift = 32 - ADRP_RANGE_BITS;
      const w = (((v + sign * pcPage) | 0) << shift) >> shift;
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
