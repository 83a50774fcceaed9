#!/usr/bin/env node
// Builds the large synthetic-but-real file pair of the benchmark, deterministically:
//   A = the concatenation of the given real files (>= 300 MB of real binaries);
//   B = A with a 4 MiB block moved 256 MiB further on, a 1 KiB insertion and 20 scattered small edits.
// Every byte of A and B comes from the real inputs: the inserted and edited bytes are copied from
// another real file (the "donor"), at offsets picked by a fixed-seed generator, so two runs give
// identical bytes. Streams in 1 MiB chunks: memory stays small whatever the sizes.
//
// usage: node bench/make-big-pair.mjs OUT_A OUT_B DONOR INPUT...
import { createReadStream, createWriteStream, openSync, readSync, closeSync, statSync } from 'node:fs';
import { once } from 'node:events';

const MiB = 1024 * 1024;
const MOVE_FROM = 16 * MiB;
const MOVE_LENGTH = 4 * MiB;
const MOVE_DISTANCE = 256 * MiB;
const INSERT_AT = 100 * MiB + 12345; // in A coordinates, inside the kept (not moved) region
const INSERT_LENGTH = 1024;
const EDIT_COUNT = 20;

/** Small fixed-seed linear congruential generator: reproducible offsets, no dependency. */
function makeRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function readDonorBytes(donorPath, offset, length) {
  const fd = openSync(donorPath, 'r');
  try {
    const buf = Buffer.alloc(length);
    const got = readSync(fd, buf, 0, length, offset);
    if (got !== length) throw new Error(`${donorPath}: short read at ${offset}, the donor file is too small`);
    return buf;
  } finally {
    closeSync(fd);
  }
}

async function concatenate(inputs, outPath) {
  const out = createWriteStream(outPath);
  for (const input of inputs) {
    for await (const chunk of createReadStream(input, { highWaterMark: MiB })) {
      if (!out.write(chunk)) await once(out, 'drain');
    }
  }
  out.end();
  await once(out, 'finish');
}

/** B as a list of pieces: ranges of A (half-open) or literal real bytes. */
function planB(sizeA, donorPath) {
  if (sizeA < MOVE_FROM + MOVE_DISTANCE + MOVE_LENGTH) throw new Error(`A is ${sizeA} bytes; it must be >= 300 MB`);
  const inserted = readDonorBytes(donorPath, MiB, INSERT_LENGTH);
  const moveTo = MOVE_FROM + MOVE_DISTANCE;
  return [
    { kind: 'range', start: 0, end: MOVE_FROM },
    { kind: 'range', start: MOVE_FROM + MOVE_LENGTH, end: INSERT_AT },
    { kind: 'bytes', bytes: inserted },
    { kind: 'range', start: INSERT_AT, end: moveTo },
    { kind: 'range', start: MOVE_FROM, end: MOVE_FROM + MOVE_LENGTH },
    { kind: 'range', start: moveTo, end: sizeA },
  ];
}

/** 20 small overwrites (8..64 bytes) at spread-out B offsets, with bytes copied from the donor. */
function planEdits(sizeB, donorPath, random) {
  const donorSize = statSync(donorPath).size;
  const edits = [];
  for (let i = 0; i < EDIT_COUNT; i++) {
    const slot = sizeB / EDIT_COUNT;
    const at = Math.floor(slot * i + random() * (slot - 64));
    const length = 8 + Math.floor(random() * 57);
    const from = Math.floor(random() * (donorSize - length));
    edits.push({ at, bytes: readDonorBytes(donorPath, from, length) });
  }
  return edits;
}

/** Overwrites the parts of `chunk` (which sits at `offset` in B) that the edits cover. */
function applyEdits(chunk, offset, edits) {
  for (const { at, bytes } of edits) {
    const lo = Math.max(at, offset);
    const hi = Math.min(at + bytes.length, offset + chunk.length);
    if (lo < hi) bytes.copy(chunk, lo - offset, lo - at, hi - at);
  }
}

async function writeB(aPath, pieces, edits, outPath) {
  const out = createWriteStream(outPath);
  let offset = 0;
  const emit = async (chunk) => {
    applyEdits(chunk, offset, edits);
    offset += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  };
  for (const piece of pieces) {
    if (piece.kind === 'bytes') {
      await emit(Buffer.from(piece.bytes));
      continue;
    }
    const stream = createReadStream(aPath, { start: piece.start, end: piece.end - 1, highWaterMark: MiB });
    for await (const chunk of stream) await emit(chunk);
  }
  out.end();
  await once(out, 'finish');
  return offset;
}

async function main() {
  const [outA, outB, donor, ...inputs] = process.argv.slice(2);
  if (!outA || !outB || !donor || inputs.length === 0) {
    console.error('usage: node bench/make-big-pair.mjs OUT_A OUT_B DONOR INPUT...');
    process.exit(2);
  }
  await concatenate(inputs, outA);
  const sizeA = statSync(outA).size;
  const pieces = planB(sizeA, donor);
  const sizeB = sizeA + INSERT_LENGTH;
  const edits = planEdits(sizeB, donor, makeRandom(20260101));
  const written = await writeB(outA, pieces, edits, outB);
  if (written !== sizeB) throw new Error(`B is ${written} bytes, expected ${sizeB}`);
  console.log(`big pair: A ${sizeA} bytes, B ${sizeB} bytes (moved 4 MiB by 256 MiB, 1 KiB inserted, ${EDIT_COUNT} edits)`);
}

await main();
