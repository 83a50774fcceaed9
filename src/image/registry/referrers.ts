/**
 * OCI 1.1 artifacts attached to an image (their manifest's `subject` names it), listed through
 * the referrers API (GET /v2/NAME/referrers/DIGEST) where the registry has it, and through the
 * referrers tag schema where it does not (distribution 2.8): an image index tagged
 * `sha256-<hex of the subject digest>` listing the artifacts, which the pusher keeps up to date.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { DeltaimgError } from '../../util/errors.js';
import { digestCheck, sha256Digest } from '../digest-stream.js';
import { MT } from '../media-types.js';
import { decodeManifestOrIndex, type Descriptor } from '../schema.js';
import { RegistryClient } from './client.js';

export const EMPTY_CONFIG = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
};
const EMPTY_JSON = Buffer.from('{}');

export interface ArtifactToPush {
  artifactType: string;
  /** The image the artifact belongs to (its top-level manifest or index). */
  subject: Descriptor;
  annotations: Record<string, string>;
  /** One file, the artifact's single layer. */
  file: { path: string; digest: string; mediaType: string; title: string };
  /** Earlier artifacts this one supersedes: unlisted and deleted (where the registry allows) once it is pushed. */
  replaces?: (existing: Descriptor) => boolean;
}

export interface PushedArtifact {
  descriptor: Descriptor;
  /** How it can be found: the registry indexed it (referrers API) or the tag schema index was updated. */
  listedBy: 'referrers-api' | 'tag-schema';
}

/** The tag under which the referrers tag schema lists a subject's artifacts. */
export function referrersTag(subjectDigest: string): string {
  return subjectDigest.replace(':', '-');
}

/** Pushes the file blob, the empty config, the artifact manifest by digest, then lists it. */
export async function pushArtifact(client: RegistryClient, artifact: ArtifactToPush): Promise<PushedArtifact> {
  const { file } = artifact;
  const size = (await stat(file.path)).size;
  await client.pushBlob(file.digest, size, async () =>
    createReadStream(file.path).pipe(digestCheck({ digest: file.digest, size, label: file.path })),
  );
  await client.pushBlob(EMPTY_CONFIG.digest, EMPTY_CONFIG.size, async () => Readable.from([EMPTY_JSON]));
  const manifest = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType: artifact.artifactType,
    config: EMPTY_CONFIG,
    layers: [{ mediaType: file.mediaType, digest: file.digest, size, annotations: { 'org.opencontainers.image.title': file.title } }],
    subject: { mediaType: artifact.subject.mediaType, digest: artifact.subject.digest, size: artifact.subject.size },
    annotations: artifact.annotations,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const { digest, subjectHandled } = await client.putManifest(sha256Digest(bytes), MT.ociManifest, bytes);
  const descriptor: Descriptor = {
    mediaType: MT.ociManifest,
    digest,
    size: bytes.length,
    artifactType: artifact.artifactType,
    annotations: artifact.annotations,
  };
  const viaApi = subjectHandled || (await client.referrers(artifact.subject.digest, artifact.artifactType)) !== undefined;
  const replaced = (await listReferrers(client, artifact.subject.digest, artifact.artifactType)).filter(
    (d) => d.digest !== digest && artifact.replaces?.(d),
  );
  if (!viaApi) await addToTagIndex(client, artifact.subject.digest, descriptor, new Set(replaced.map((d) => d.digest)));
  // The new one is listed before the old ones go: a reader never finds none.
  for (const old of replaced) await client.deleteManifest(old.digest);
  return { descriptor, listedBy: viaApi ? 'referrers-api' : 'tag-schema' };
}

/** Adds the descriptor to the `sha256-<hex>` index (once), without the `dropped` ones. */
async function addToTagIndex(client: RegistryClient, subjectDigest: string, descriptor: Descriptor, dropped: Set<string>): Promise<void> {
  const tag = referrersTag(subjectDigest);
  const existing = await tagIndex(client, subjectDigest);
  const manifests = [...existing.filter((d) => d.digest !== descriptor.digest && !dropped.has(d.digest)), descriptor];
  const index = { schemaVersion: 2, mediaType: MT.ociIndex, manifests };
  await client.putManifest(tag, MT.ociIndex, Buffer.from(JSON.stringify(index)));
}

async function tagIndex(client: RegistryClient, subjectDigest: string): Promise<Descriptor[]> {
  const fetched = await client.getManifest(referrersTag(subjectDigest), [MT.ociIndex]);
  if (!fetched) return [];
  const doc = decodeManifestOrIndex(fetched.bytes, fetched.mediaType, `${client.where}:${referrersTag(subjectDigest)}`);
  if (doc.kind !== 'index')
    throw new DeltaimgError(
      'REGISTRY',
      `${client.where}:${referrersTag(subjectDigest)} is not an image index; it cannot be a referrers tag`,
    );
  return doc.manifests;
}

/** The artifacts of `artifactType` whose subject is `subjectDigest`: referrers API, else the tag schema. */
export async function listReferrers(client: RegistryClient, subjectDigest: string, artifactType: string): Promise<Descriptor[]> {
  const viaApi = await client.referrers(subjectDigest, artifactType);
  const list = viaApi
    ? decodeIndexManifests(viaApi, `${client.where} referrers of ${subjectDigest}`)
    : await tagIndex(client, subjectDigest);
  return list.filter((d) => d.artifactType === artifactType);
}

function decodeIndexManifests(bytes: Buffer, where: string): Descriptor[] {
  const doc = decodeManifestOrIndex(bytes, MT.ociIndex, where);
  if (doc.kind !== 'index') throw new DeltaimgError('REGISTRY', `${where}: the registry answered something that is not an image index`);
  return doc.manifests;
}

/** An artifact's manifest, decoded: its single layer is the file. */
export async function artifactFile(client: RegistryClient, descriptor: Descriptor): Promise<Descriptor> {
  const fetched = await client.getManifest(descriptor.digest, [MT.ociManifest]);
  if (!fetched)
    throw new DeltaimgError('REGISTRY', `${client.where}@${descriptor.digest}: the artifact is listed but its manifest is gone (HTTP 404)`);
  const doc = decodeManifestOrIndex(fetched.bytes, fetched.mediaType, `${client.where}@${descriptor.digest}`);
  if (doc.kind !== 'manifest' || doc.layers.length !== 1)
    throw new DeltaimgError('REGISTRY', `${client.where}@${descriptor.digest}: not a single-file artifact`);
  return doc.layers[0]!;
}
