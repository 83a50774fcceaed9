/** Damaging bytes on purpose, refusing an index outside them (a typed array drops such a write silently). */
export function xorByte(bytes: Uint8Array, at: number, mask: number): void {
  const b = bytes[at];
  if (b === undefined || !Number.isInteger(at)) throw new RangeError(`cannot damage byte ${at} of ${bytes.length}`);
  bytes[at] = b ^ mask;
}
