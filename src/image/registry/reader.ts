/**
 * Reads an image from a registry: the manifest (or index, one level, attestations skipped),
 * each config fetched and checked; layer blobs are only fetched when a job opens them, and
 * checked against their digests as they stream, so layers a job does not need (B's layers
 * that A shares) are never downloaded.
 */
import { DeltaimgError } from '../../util/errors.js';
import { checkLayerCount, configFacts } from '../image-config.js';
import { storedLayer } from '../layer.js';
import { compressionOf, isIndexType, MT } from '../media-types.js';
import { decodeManifestOrIndex, type Descriptor, type IndexDoc, type ManifestDoc } from '../schema.js';
import type { Image, ImageManifest, Layer } from '../types.js';
import { MAX_MANIFEST_BYTES, RegistryClient, type FetchedManifest, type RegistryOptions } from './client.js';
import { formatRegistryRef, manifestReference, type RegistryRef } from './ref.js';

export const MANIFEST_ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest];
/** Configs are small JSON documents. */
const MAX_CONFIG_BYTES = 16 << 20;

export interface RegistryImages {
  images: Image[];
  /** The top-level document when it is an index (multi-platform), exact bytes. */
  index?: ImageManifest;
  /** The digest the reference resolves to (the index's or the single manifest's). */
  digest: string;
}

export async function readRegistryImages(ref: RegistryRef, opts: RegistryOptions = {}): Promise<RegistryImages> {
  const where = formatRegistryRef(ref);
  const client = await RegistryClient.open(ref.registry, ref.repository, opts);
  const reference = manifestReference(ref);
  const top = await client.getManifest(reference, MANIFEST_ACCEPT);
  if (!top)
    throw new DeltaimgError(
      'REGISTRY',
      `${where}: no such manifest (HTTP 404: the tag or digest does not exist in ${ref.registry}/${ref.repository})`,
    );
  const doc = decodeManifestOrIndex(top.bytes, top.mediaType, where);
  const name = `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}`;
  if (doc.kind === 'manifest') {
    return { images: [await imageOf(client, where, top, doc, [name])], digest: top.digest };
  }
  const images: Image[] = [];
  for (const child of runnableManifests(doc)) {
    const fetched = await client.getManifest(child.digest, MANIFEST_ACCEPT);
    if (!fetched)
      throw new DeltaimgError('REGISTRY', `${where}: index names manifest ${child.digest}, which the registry does not have (HTTP 404)`);
    if (fetched.bytes.length !== child.size)
      throw new DeltaimgError(
        'REGISTRY',
        `${where}: manifest ${child.digest} is ${fetched.bytes.length} bytes, the index says ${child.size}`,
      );
    const childDoc = decodeManifestOrIndex(fetched.bytes, child.mediaType, `${where}@${child.digest}`);
    if (childDoc.kind !== 'manifest') continue; // deeper indexes are not images to run
    images.push(await imageOf(client, `${where}@${child.digest}`, { ...fetched, mediaType: child.mediaType }, childDoc, [name]));
  }
  if (images.length === 0) throw new DeltaimgError('BAD_IMAGE', `${where}: the index names no image manifest`);
  return { images, index: { mediaType: doc.mediaType, bytes: top.bytes, digest: top.digest }, digest: top.digest };
}

/** Image manifests of an index; attestation manifests (buildkit's unknown/unknown) are not images. */
function runnableManifests(doc: IndexDoc): Descriptor[] {
  return doc.manifests.filter(
    (d) =>
      !isIndexType(d.mediaType) &&
      d.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest' &&
      !(d.platform?.os === 'unknown' && d.platform.architecture === 'unknown'),
  );
}

async function imageOf(client: RegistryClient, where: string, fetched: FetchedManifest, doc: ManifestDoc, names: string[]): Promise<Image> {
  if (doc.artifactType || (doc.config.mediaType !== MT.ociConfig && doc.config.mediaType !== MT.dockerConfig)) {
    throw new DeltaimgError(
      'BAD_IMAGE',
      `${where}: not a container image (config media type ${doc.config.mediaType}${doc.artifactType ? `, artifact ${doc.artifactType}` : ''})`,
    );
  }
  if (doc.config.size > MAX_CONFIG_BYTES)
    throw new DeltaimgError('BAD_IMAGE', `${where}: config ${doc.config.digest} is ${doc.config.size} bytes, too big for an image config`);
  const config = await client.getSmallBlob(doc.config.digest, Math.min(MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES * 4));
  if (config.length !== doc.config.size)
    throw new DeltaimgError(
      'BAD_IMAGE',
      `${where}: config ${doc.config.digest} is ${config.length} bytes, the manifest says ${doc.config.size}`,
    );
  const facts = configFacts(config, `${where}: config ${doc.config.digest}`);
  checkLayerCount(where, facts.diffIds, doc.layers.length);
  const layers: Layer[] = doc.layers.map((d, i) => layerOf(client, where, d, facts.diffIds[i]!));
  const mediaType = doc.mediaType;
  return {
    platform: facts.platform,
    config,
    configDigest: doc.config.digest,
    manifest: { mediaType, bytes: fetched.bytes, digest: fetched.digest },
    layers,
    names,
  };
}

function layerOf(client: RegistryClient, where: string, d: Descriptor, diffId: string): Layer {
  const label = `${where}: layer ${d.digest}`;
  const compression = compressionOf(d.mediaType);
  if (!compression) throw new DeltaimgError('BAD_IMAGE', `${label} has media type ${d.mediaType}, not a layer type deltaimg reads`);
  if (compression === 'none' && d.digest !== diffId)
    throw new DeltaimgError('BAD_IMAGE', `${label} is an uncompressed tar but its digest differs from its diff_id ${diffId}`);
  const layer = storedLayer({
    diffId,
    digest: d.digest,
    size: d.size,
    mediaType: d.mediaType,
    compression,
    label,
    openRaw: async () => client.openBlob(d.digest, d.size),
  });
  return { ...layer, blobSource: { registry: client.registry, repository: client.repository } };
}

/** The descriptor of what a reference points at (an index or a manifest), from one small GET. */
export async function topDescriptor(ref: RegistryRef, opts: RegistryOptions = {}): Promise<Descriptor> {
  const client = await RegistryClient.open(ref.registry, ref.repository, opts);
  const top = await client.getManifest(manifestReference(ref), MANIFEST_ACCEPT);
  if (!top) throw new DeltaimgError('REGISTRY', `${formatRegistryRef(ref)}: no such manifest (HTTP 404)`);
  const doc = decodeManifestOrIndex(top.bytes, top.mediaType, formatRegistryRef(ref));
  return { mediaType: doc.mediaType, digest: top.digest, size: top.bytes.length };
}
