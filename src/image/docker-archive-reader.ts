/**
 * Reads `docker save` output: manifest.json ([{Config, RepoTags, Layers}]) with either the
 * classic members (<hex>.json, <id>/layer.tar, duplicates as symlinks) or the OCI-layout form
 * of Docker >= 25 (blobs/sha256/..., plus index.json whose manifest bytes are kept exactly).
 */
import { DeltaimgError } from '../util/errors.js';
import { hashStream } from '../util/hashing.js';
import { sha256Digest } from './digest-stream.js';
import { checkLayerCount, configFacts } from './image-config.js';
import { storedLayer } from './layer.js';
import { type LayoutFiles, missing, readJson, readSmall } from './layout-files.js';
import { compressionOf, isManifestType, layerMediaType, sniffCompression } from './media-types.js';
import { type Descriptor, manifestDoc, readBlob, readIndex, readOciLayout } from './oci-reader.js';
import type { Compression, Image, ImageManifest, Layer } from './types.js';

interface ArchiveEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

export async function readDockerArchive(files: LayoutFiles, ref?: string): Promise<Image[]> {
  if ((await files.size('manifest.json')) === undefined) {
    // An OCI layout tar given as docker-archive: read it as what it is.
    if ((await files.size('oci-layout')) !== undefined) return readOciLayout(files, ref);
    throw new DeltaimgError('BAD_IMAGE', `${files.where}: no manifest.json; not a docker save archive`);
  }
  const entry = selectEntry(files.where, archiveEntries(files.where, (await readJson(files, 'manifest.json')).json), ref);
  return [await entryImage(files, entry)];
}

function archiveEntries(where: string, json: unknown): ArchiveEntry[] {
  const bad = (why: string) => new DeltaimgError('BAD_IMAGE', `${where}: manifest.json ${why}`);
  if (!Array.isArray(json) || json.length === 0) throw bad('is not a non-empty list of images');
  return json.map((e: Partial<ArchiveEntry> | null, i) => {
    if (typeof e?.Config !== 'string') throw bad(`entry ${i} has no Config`);
    if (!Array.isArray(e.Layers) || e.Layers.some((l) => typeof l !== 'string')) throw bad(`entry ${i} has no Layers list`);
    const tags = Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === 'string') : [];
    return { Config: e.Config, RepoTags: tags, Layers: e.Layers };
  });
}

function selectEntry(where: string, entries: ArchiveEntry[], ref: string | undefined): ArchiveEntry {
  const at = ref === undefined ? undefined : /^@(\d+)$/.exec(ref);
  const picked =
    ref === undefined
      ? entries
      : at
        ? entries.slice(Number(at[1]), Number(at[1]) + 1)
        : entries.filter((e) => e.RepoTags.some((t) => sameTag(t, ref)));
  const tags = entries.flatMap((e) => e.RepoTags).join(', ') || 'none';
  if (picked.length === 0)
    throw new DeltaimgError('USAGE', `${where}: no image ${ref} in this archive (tags: ${tags}; or use @0..@${entries.length - 1})`);
  if (picked.length > 1) {
    throw new DeltaimgError(
      'USAGE',
      `${where} holds ${entries.length} images (tags: ${tags}); name one as docker-archive:PATH:TAG or docker-archive:PATH:@N`,
    );
  }
  return picked[0]!;
}

/** "busybox" means "busybox:latest"; docker.io/library/ is how Docker spells the default. */
function sameTag(tag: string, ref: string): boolean {
  const norm = (s: string) => {
    const t = s.replace(/^docker\.io\/(library\/)?/, '');
    return /:[^/]+$/.test(t) || t.includes('@') ? t : `${t}:latest`;
  };
  return norm(tag) === norm(ref);
}

async function entryImage(files: LayoutFiles, entry: ArchiveEntry): Promise<Image> {
  const config = await readSmall(files, entry.Config);
  const configDigest = sha256Digest(config);
  const named = digestInName(entry.Config);
  if (named && named !== configDigest) {
    throw new DeltaimgError('BAD_IMAGE', `${files.where}: config ${entry.Config} hashes to ${configDigest} (damaged)`);
  }
  const facts = configFacts(config, `${files.where}: config ${entry.Config}`);
  checkLayerCount(`${files.where}: manifest.json`, facts.diffIds, entry.Layers.length);
  const oci = await ociManifestFor(files, configDigest);
  const layers: Layer[] = [];
  for (const [i, path] of entry.Layers.entries()) layers.push(await archiveLayer(files, path, facts.diffIds[i]!, oci?.layers[i]));
  const image: Image = { platform: facts.platform, config, configDigest, layers, names: entry.RepoTags };
  if (oci) image.manifest = oci.manifest;
  return image;
}

/** "<hex>.json" (classic) or "blobs/sha256/<hex>" (Docker >= 25) name their content's digest. */
function digestInName(path: string): string | undefined {
  const m = /(?:^|\/)([0-9a-f]{64})(?:\.json)?$/.exec(path);
  return m && (path.startsWith('blobs/sha256/') || path.endsWith('.json')) ? `sha256:${m[1]}` : undefined;
}

/** Docker >= 25: the exact manifest in index.json whose config is this image's. */
async function ociManifestFor(
  files: LayoutFiles,
  configDigest: string,
): Promise<{ manifest: ImageManifest; layers: Descriptor[] } | undefined> {
  if ((await files.size('index.json')) === undefined) return undefined;
  for (const desc of await readIndex(files)) {
    if (!isManifestType(desc.mediaType)) continue;
    const bytes = await readBlob(files, desc, 'manifest');
    const m = manifestDoc(bytes, desc.mediaType, `${files.where}: manifest ${desc.digest}`);
    if (m.config.digest !== configDigest) continue;
    return { manifest: { mediaType: desc.mediaType, bytes, digest: desc.digest }, layers: m.layers };
  }
  return undefined;
}

async function archiveLayer(files: LayoutFiles, path: string, diffId: string, desc: Descriptor | undefined): Promise<Layer> {
  const label = `${files.where}: layer ${path}`;
  const size = await files.size(path);
  if (size === undefined) throw missing(files.where, path);
  const compression: Compression =
    (desc && compressionOf(desc.mediaType)) ?? (size >= 4 ? sniffCompression(await files.head(path, 4)) : 'none');
  const digest = digestInName(path) ?? (compression === 'none' ? diffId : (await hashStream(await files.open(path))).digest);
  if (desc && (desc.digest !== digest || desc.size !== size)) {
    throw new DeltaimgError('BAD_IMAGE', `${label} does not match the index manifest's layer ${desc.digest} (${desc.size} bytes)`);
  }
  const mediaType = desc?.mediaType ?? layerMediaType('docker', compression);
  return storedLayer({ diffId, digest, size, mediaType, compression, label, openRaw: () => files.open(path) });
}
