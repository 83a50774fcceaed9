/**
 * Reads an OCI image layout (a directory or the files of an archive): index.json -> manifests
 * (an image index is followed one level, attestation manifests skipped) -> config + layers.
 * Every manifest and config is checked against its digest and size here; layer blobs are
 * checked for presence and size, and against their digests as they are read.
 */
import { DeltaimgError } from '../util/errors.js';
import { sha256Digest } from './digest-stream.js';
import { decodeManifestOrIndex, type Descriptor, type IndexDoc, type ManifestDoc } from './schema.js';
import { checkLayerCount, configFacts } from './image-config.js';
import { storedLayer } from './layer.js';
import { type LayoutFiles, missing, readSmall } from './layout-files.js';
import { compressionOf, isIndexType, isManifestType } from './media-types.js';
import { blobPath } from './names.js';
import type { Image, Layer } from './types.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
export const CONTAINERD_NAME = 'io.containerd.image.name';

export type { Descriptor };

/** The top-level descriptors of index.json. */
export async function readIndex(files: LayoutFiles): Promise<Descriptor[]> {
  return indexDoc(await readSmall(files, 'index.json'), undefined, `${files.where}: index.json`).manifests;
}

/** Images of the layout, selected by REF (a ref name annotation or @N) when given. */
export async function readOciLayout(files: LayoutFiles, ref?: string): Promise<Image[]> {
  if ((await files.size('oci-layout')) === undefined) {
    const hint = (await files.size('manifest.json')) !== undefined ? ' (it looks like docker save output: use docker-archive:)' : '';
    throw new DeltaimgError('BAD_IMAGE', `${files.where}: no oci-layout file; not an OCI image layout${hint}`);
  }
  const selected = selectByRef(files.where, await readIndex(files), ref);
  const images: Image[] = [];
  for (const desc of selected) images.push(...(await imagesOf(files, desc, refNames(desc))));
  if (images.length === 0) throw new DeltaimgError('BAD_IMAGE', `${files.where}: index.json names no image manifest`);
  return images;
}

/** The image's name: Docker >= 25 puts the full name in the containerd annotation and only the tag in the OCI one. */
export function refNames(desc: Descriptor): string[] {
  const name = desc.annotations?.[CONTAINERD_NAME] || desc.annotations?.[REF_NAME];
  return name ? [name] : [];
}

/** Every name REF may select an index entry by. */
function selectableNames(desc: Descriptor): string[] {
  return [desc.annotations?.[CONTAINERD_NAME], desc.annotations?.[REF_NAME]].filter((n): n is string => !!n);
}

function selectByRef(where: string, descs: Descriptor[], ref: string | undefined): Descriptor[] {
  if (ref === undefined) return descs;
  const at = /^@(\d+)$/.exec(ref);
  const picked = at ? descs.slice(Number(at[1]), Number(at[1]) + 1) : descs.filter((d) => selectableNames(d).includes(ref));
  if (picked.length === 0) {
    const known = descs.flatMap(selectableNames);
    throw new DeltaimgError(
      'USAGE',
      `${where}: no image named ${ref} (names here: ${known.join(', ') || 'none'}; or use @0..@${descs.length - 1})`,
    );
  }
  return picked;
}

async function imagesOf(files: LayoutFiles, desc: Descriptor, names: string[]): Promise<Image[]> {
  if (isManifestType(desc.mediaType)) return [await manifestImage(files, desc, names)];
  if (!isIndexType(desc.mediaType)) throw unsupported(files.where, desc);
  const index = indexDoc(await readBlob(files, desc, 'image index'), desc.mediaType, `${files.where}: image index ${desc.digest}`);
  const images: Image[] = [];
  for (const child of index.manifests) {
    // One level of nesting only; deeper indexes and attestations are not images to run.
    if (!isManifestType(child.mediaType) || isAttestation(child)) continue;
    images.push(await manifestImage(files, child, names));
  }
  return images;
}

function isAttestation(d: Descriptor): boolean {
  return (
    d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' ||
    (d.platform?.os === 'unknown' && d.platform?.architecture === 'unknown')
  );
}

/** One image from its manifest descriptor: manifest, config and layer blobs all checked. */
export async function manifestImage(files: LayoutFiles, desc: Descriptor, names: string[]): Promise<Image> {
  const where = `${files.where}: manifest ${desc.digest}`;
  const bytes = await readBlob(files, desc, 'manifest');
  const m = manifestDoc(bytes, desc.mediaType, where);
  const configDesc = m.config;
  const config = await readBlob(files, configDesc, 'config');
  const facts = configFacts(config, `${files.where}: config ${configDesc.digest}`);
  const layerDescs = m.layers;
  checkLayerCount(where, facts.diffIds, layerDescs.length);
  const layers: Layer[] = [];
  for (const [i, ld] of layerDescs.entries()) layers.push(await layerOf(files, ld, facts.diffIds[i]!));
  return {
    platform: facts.platform,
    config,
    configDigest: configDesc.digest,
    manifest: { mediaType: desc.mediaType, bytes, digest: desc.digest },
    layers,
    names,
  };
}

async function layerOf(files: LayoutFiles, d: Descriptor, diffId: string): Promise<Layer> {
  const name = blobPath(d.digest);
  const label = `${files.where}: layer ${name}`;
  const compression = compressionOf(d.mediaType);
  if (!compression) throw new DeltaimgError('BAD_IMAGE', `${label} has media type ${d.mediaType}, not a layer type deltaimg reads`);
  if (compression === 'none' && d.digest !== diffId) {
    throw new DeltaimgError('BAD_IMAGE', `${label} is an uncompressed tar but its digest differs from its diff_id ${diffId}`);
  }
  const size = await files.size(name);
  if (size === undefined) throw missing(files.where, name);
  if (size !== d.size)
    throw new DeltaimgError('BAD_IMAGE', `${label} is ${size} bytes but the manifest says ${d.size} (damaged or truncated)`);
  return storedLayer({ diffId, digest: d.digest, size, mediaType: d.mediaType, compression, label, openRaw: () => files.open(name) });
}

/** A small blob (manifest, index, config), checked against its descriptor's size and digest. */
export async function readBlob(files: LayoutFiles, d: Descriptor, what: string): Promise<Buffer> {
  const name = blobPath(d.digest);
  const bytes = await readSmall(files, name);
  if (bytes.length !== d.size)
    throw new DeltaimgError('BAD_IMAGE', `${files.where}: ${what} ${name} is ${bytes.length} bytes, expected ${d.size}`);
  const actual = sha256Digest(bytes);
  if (actual !== d.digest)
    throw new DeltaimgError('BAD_IMAGE', `${files.where}: ${what} ${name} hashes to ${actual}, expected ${d.digest} (damaged)`);
  return bytes;
}

export function indexDoc(bytes: Buffer, mediaType: string | undefined, where: string): IndexDoc {
  const doc = decodeManifestOrIndex(bytes, mediaType, where);
  if (doc.kind !== 'index') throw new DeltaimgError('BAD_IMAGE', `${where} has no manifests list; not an image index`);
  return doc;
}

export function manifestDoc(bytes: Buffer, mediaType: string | undefined, where: string): ManifestDoc {
  const doc = decodeManifestOrIndex(bytes, mediaType, where);
  if (doc.kind !== 'manifest') throw new DeltaimgError('BAD_IMAGE', `${where} is an index, not an image manifest`);
  return doc;
}

function unsupported(where: string, d: Descriptor): DeltaimgError {
  return new DeltaimgError(
    'BAD_IMAGE',
    `${where}: index entry ${d.digest} has media type ${d.mediaType}, neither an image manifest nor an index`,
  );
}

export { missing };
