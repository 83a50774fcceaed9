/**
 * The alignment a patch encodes: which target bytes were matched (approximately) against which
 * source bytes. Read back from a finished DIMGBSD1 patch's control section, so an encoder can
 * learn where things moved from a first pass (the executable transform's address relabelling,
 * src/exefilter/address-map.ts).
 */
import { readFile } from 'node:fs/promises';
import { brotliDecompressSync } from 'node:zlib';
import { DeltaimgError, ioError } from '../util/errors.js';
import { decodeHeader, MAGIC, sectionOffsets, unzigzag, VarintReader } from './format.js';
import { showPath, type PathLike } from './paths.js';

/** `length` target bytes at `target` were coded as differences from the source at `source`. */
export interface MatchedBlock {
  source: number;
  target: number;
  length: number;
}

/** The matched blocks of the DIMGBSD1 patch at `patchPath`, in target order; undefined for a segmented patch. */
export async function bsdiffMatches(patchPath: PathLike): Promise<MatchedBlock[] | undefined> {
  const shown = showPath(patchPath);
  let patch: Buffer;
  try {
    patch = await readFile(patchPath);
  } catch (err) {
    throw ioError('read patch', shown, err);
  }
  if (!patch.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const header = decodeHeader(patch, patch.length, shown);
  const at = sectionOffsets(header).control;
  const corrupt = () => new DeltaimgError('CORRUPT_DELTA', `bsdiff patch ${shown} is damaged: its control section does not decode`);
  let control: Buffer;
  try {
    control = brotliDecompressSync(patch.subarray(at, at + header.sections.control.storedLength), {
      maxOutputLength: header.sections.control.rawLength,
    });
  } catch {
    throw corrupt();
  }
  const reader = new VarintReader(control, 0, control.length, corrupt, corrupt);
  const blocks: MatchedBlock[] = [];
  let source = 0;
  let target = 0;
  while (reader.at < control.length) {
    const diffLength = reader.next();
    const extraLength = reader.next();
    const seek = unzigzag(reader.next());
    if (diffLength > 0) blocks.push({ source, target, length: diffLength });
    source += diffLength + seek;
    target += diffLength + extraLength;
  }
  return blocks;
}
