/**
 * `deltaimg inspect DELTA`: what a delta holds and what it saves, for each form a delta takes:
 * a delta directory, a `.dimg` file, or a delta image (`dockerfile diff`'s A-TO-B, named
 * `docker-daemon:NAME`, `NAME:TAG`, or any transport the image module reads). For the last two
 * the saving is also given on compressed bytes, which is what a registry stores and a transfer
 * moves: uncompressed sizes overstate it (B's files compress, the delta hardly does).
 */
import { stat } from 'node:fs/promises';
import { DeltaimgError } from '../util/errors.js';
import { isJsonObject } from '../util/json-input.js';
import { formatBytes } from '../util/progress.js';
import { printJson } from './output.js';

/** The header of a delta inside a delta image: small, like any delta header. */
const HEADER_MAX_BYTES = 16 * 1024 * 1024;

export async function inspectDelta(arg: string, opts: { json?: boolean }): Promise<void> {
  const kind = await kindOf(arg);
  if (kind === 'dir') return inspectDirectory(arg, opts);
  if (kind === 'dimg') return inspectDimgFile(arg, opts);
  return inspectDeltaImage(arg, opts);
}

/** A path that exists is a directory or a .dimg; otherwise an image reference, if it reads as one. */
async function kindOf(arg: string): Promise<'dir' | 'dimg' | 'image'> {
  const { isPlainImageName, parseImageRef } = await import('../image/index.js');
  if (/^(docker-archive|oci|oci-archive|docker-daemon):|^docker:\/\//.test(arg)) {
    parseImageRef(arg); // its one-line error when malformed
    return 'image';
  }
  const st = await stat(arg).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (st?.isDirectory()) return 'dir';
  if (st?.isFile()) return 'dimg';
  if (!st && isPlainImageName(arg)) return 'image';
  throw new DeltaimgError(
    'USAGE',
    `${arg} is ${st ? 'neither a directory nor a file' : 'not a file, a directory or an image reference'}: pass a delta directory, a .dimg file, or a delta image (docker-daemon:NAME:TAG, NAME:TAG, docker://REGISTRY/REPO:TAG, oci:DIR, docker-archive:PATH)`,
  );
}

async function inspectDirectory(deltaDir: string, opts: { json?: boolean }): Promise<void> {
  const { readHeader } = await import('../delta/header.js');
  const { inspectReport, summarize } = await import('../delta/summary.js');
  const header = await readHeader(deltaDir);
  if (opts.json) printJson({ delta: deltaDir, ...summarize(header) });
  else process.stdout.write(inspectReport(deltaDir, header) + '\n');
}

async function inspectDimgFile(path: string, opts: { json?: boolean }): Promise<void> {
  const { readDimgHeader, inspectDimg } = await import('../imagedelta/index.js');
  const header = await readDimgHeader(path);
  const { size } = await stat(path);
  let transfer = dimgTransfer(header, size);
  const only = header.images.length === 1 ? header.images[0] : undefined;
  if (transfer.targetCompressed === undefined && only) {
    // B in the local engine (by its image id): its layers the base lacks, gzip'd as a push would.
    const local = await targetTransfer({ ref: only.target.configDigest, id: only.target.configDigest }, only.base.diffIds);
    if (local.targetCompressed !== undefined)
      transfer = withSavings({ ...transfer, targetCompressed: local.targetCompressed, missing: undefined });
  }
  if (opts.json) printJson({ dimg: path, bytes: size, transfer, header });
  else process.stdout.write(`${inspectDimg(path, header)}\n\n${transferLines(transfer).join('\n')}\n`);
}

/** What moving B's layers that A lacks would cost, against this file. */
export interface Transfer {
  /** The delta as it travels: the .dimg file, or the delta layer gzip'd. */
  deltaBytes: number;
  /** The delta layer as a tar (a delta image); a .dimg has no other form. */
  deltaUncompressed?: number;
  /** B's layers A lacks, compressed as stored or pushed; undefined when not known. */
  targetCompressed?: number;
  /** The same uncompressed. */
  targetUncompressed?: number;
  /** 1 - delta / target, on compressed bytes (the real saving) and on uncompressed ones. */
  savingCompressed?: number;
  savingUncompressed?: number;
  /** Why the compressed comparison is missing, when it is. */
  missing?: string;
}

function dimgTransfer(header: Awaited<ReturnType<typeof import('../imagedelta/index.js').readDimgHeader>>, fileBytes: number): Transfer {
  const rebuilt = new Map<string, { size: number; stored?: { size: number; compression: string } }>();
  for (const image of header.images) for (const l of image.target.layers) if (l.from === 'rebuilt') rebuilt.set(l.diffId, l);
  const layers = [...rebuilt.values()];
  if (!layers.length) return { deltaBytes: fileBytes, missing: 'B has no layer A lacks: only its config and manifest travel' };
  const uncompressed = layers.reduce((n, l) => n + l.size, 0);
  const compressed = layers.every((l) => l.stored && l.stored.compression !== 'none')
    ? layers.reduce((n, l) => n + l.stored!.size, 0)
    : undefined;
  return withSavings({
    deltaBytes: fileBytes,
    targetUncompressed: uncompressed,
    ...(compressed === undefined
      ? { missing: "B's archive stored those layers uncompressed (docker save does) and B is not in the local Docker engine to gzip them" }
      : { targetCompressed: compressed }),
  });
}

function withSavings(t: Transfer): Transfer {
  const saving = (part: number, whole: number | undefined) => (whole ? 1 - part / whole : undefined);
  const [c, u] = [saving(t.deltaBytes, t.targetCompressed), saving(t.deltaUncompressed ?? t.deltaBytes, t.targetUncompressed)];
  return { ...t, ...(c === undefined ? {} : { savingCompressed: c }), ...(u === undefined ? {} : { savingUncompressed: u }) };
}

function transferLines(t: Transfer): string[] {
  const pct = (x: number | undefined) => (x === undefined ? '?' : `${(x * 100).toFixed(1)}%`);
  const gz = t.deltaUncompressed === undefined ? 'the delta' : "the delta layer, gzip'd";
  const lines = ['transfer (what a registry stores and a pull moves):', `  ${gz.padEnd(28)} ${formatBytes(t.deltaBytes).padStart(10)}`];
  if (t.targetCompressed !== undefined)
    lines.push(`  B's layers A lacks, gzip'd   ${formatBytes(t.targetCompressed).padStart(10)}   saved ${pct(t.savingCompressed)}`);
  if (t.deltaUncompressed !== undefined) lines.push(`  the delta layer, as a tar    ${formatBytes(t.deltaUncompressed).padStart(10)}`);
  if (t.targetUncompressed !== undefined)
    lines.push(
      `  B's layers A lacks, as tars  ${formatBytes(t.targetUncompressed).padStart(10)}   saved ${pct(t.savingUncompressed)} (uncompressed: overstates the saving)`,
    );
  if (t.missing) lines.push(`  compressed saving unknown: ${t.missing}`);
  return lines;
}

async function inspectDeltaImage(arg: string, opts: { json?: boolean }): Promise<void> {
  const { openImageSource, parseImageRef, isPlainImageName } = await import('../image/index.js');
  const { readLayerFile, gzippedSize } = await import('../image/layer-probe.js');
  const { readDeltaImage, DELTA_PATH } = await import('../docker/labels.js');
  const { decodeHeader } = await import('../delta/header.js');
  const { inspectReport, summarize } = await import('../delta/summary.js');
  const { JsonFields } = await import('../util/json-input.js');
  const ref = parseImageRef(isPlainImageName(arg) ? `docker-daemon:${arg}` : arg);
  const source = await openImageSource(ref);
  try {
    const image = source.images()[0];
    if (!image) throw new DeltaimgError('BAD_IMAGE', `${arg} holds no image`);
    const meta = readDeltaImage({
      ref: arg,
      id: image.configDigest,
      config: await configOf(image.config, arg),
      layers: image.layers.map((l) => l.diffId),
      os: '',
      architecture: '',
    });
    const top = image.layers.at(-1);
    const where = `delta image ${arg}`;
    const bytes = top && (await readLayerFile(top, `${DELTA_PATH.slice(1)}/deltaimg.json`, HEADER_MAX_BYTES, where));
    if (!top || !bytes)
      throw new DeltaimgError(
        'BAD_IMAGE',
        `${where} has no ${DELTA_PATH}/deltaimg.json in its top layer; make it with deltaimg dockerfile diff`,
      );
    const fields = new JsonFields(
      `${DELTA_PATH}/deltaimg.json in ${arg}`,
      'CORRUPT_DELTA',
      'rebuild the delta image with deltaimg dockerfile diff',
    );
    const header = decodeHeader(fields.parse(bytes.toString('utf8')), fields, `${arg}:${DELTA_PATH}`);
    const baseLayers = meta.linked ? image.layers.slice(0, -1).map((l) => l.diffId) : await layersOf(meta.base.ref, meta.base.id);
    const transfer = withSavings({
      deltaBytes: await gzippedSize(top),
      ...(top.compression === 'none' ? { deltaUncompressed: top.size } : {}),
      ...(await targetTransfer(meta.target, baseLayers)),
    });
    if (opts.json) {
      printJson({ image: arg, deltaImage: meta, ...summarize(header), transfer });
      return;
    }
    const lines = [
      `${arg}: deltaimg delta image v${meta.version} (${meta.linked ? `FROM ${meta.base.ref}: its layers plus the delta layer` : 'FROM scratch: the delta alone'}), made by deltaimg ${meta.tool || '?'}`,
      `rebuilds ${meta.target.ref} (${meta.target.id}) from ${meta.base.ref} (${meta.base.id})`,
      '',
      inspectReport(`${arg}:${DELTA_PATH}`, header),
      '',
      ...transferLines(transfer),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await source.close();
  }
}

/** The image config's `config` object (labels, env...), validated as an object. */
async function configOf(configBytes: Buffer, where: string): Promise<ReturnType<typeof import('../docker/image.js').pickConfig>> {
  const { pickConfig } = await import('../docker/image.js');
  let parsed: unknown;
  try {
    parsed = JSON.parse(configBytes.toString('utf8'));
  } catch {
    throw new DeltaimgError('BAD_IMAGE', `${where}: its image config is not valid JSON`);
  }
  const inner = isJsonObject(parsed) ? parsed.config : undefined;
  return pickConfig(isJsonObject(inner) ? inner : {});
}

/** The base's layers, when it is in the local engine under its recorded name and id. */
async function layersOf(ref: string, id: string): Promise<string[] | undefined> {
  const { lookupImage } = await import('../docker/engine.js');
  const found = await lookupImage(ref).catch(() => ({ found: false as const }));
  return found.found && found.info.id === id ? found.info.layers : undefined;
}

/** B's layers the base lacks, gzip'd and as tars, when B is in the local engine (read through docker save). */
async function targetTransfer(
  target: { ref: string; id: string },
  baseLayers: string[] | undefined,
): Promise<Omit<Transfer, 'deltaBytes'>> {
  const { lookupImage } = await import('../docker/engine.js');
  const found = await lookupImage(target.ref).catch(() => ({ found: false as const }));
  if (!found.found || found.info.id !== target.id) {
    return {
      missing: `the target ${target.ref} (${target.id.slice(0, 19)}) is not in the local Docker engine to compare with; run inspect where it is`,
    };
  }
  if (!baseLayers) return { missing: "the base image is not in the local Docker engine, so which of B's layers it shares is unknown" };
  const { openImageSource } = await import('../image/index.js');
  const { gzippedSize } = await import('../image/layer-probe.js');
  const source = await openImageSource({ transport: 'docker-daemon', name: target.ref });
  try {
    const own = (source.images()[0]?.layers ?? []).filter((l) => !baseLayers.includes(l.diffId));
    let compressed = 0;
    let uncompressed = 0;
    for (const layer of own) {
      compressed += await gzippedSize(layer);
      uncompressed += layer.compression === 'none' ? layer.size : 0;
    }
    return { targetCompressed: compressed, ...(own.every((l) => l.compression === 'none') ? { targetUncompressed: uncompressed } : {}) };
  } finally {
    await source.close();
  }
}
