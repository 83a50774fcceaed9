/**
 * Manifests, indexes and descriptors decoded from JSON into typed values at the edge, field by
 * field with the shared JsonFields reader (util/json-input.ts): an error names where the document
 * came from and the field that is wrong. Nothing after this casts parsed JSON.
 */
import { JsonFields } from '../util/json-input.js';
import { MT } from './media-types.js';

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Fields of an image document from `where` (an archive, a layout, a registry reference). */
export function imageFields(where: string): JsonFields {
  return new JsonFields(where, 'BAD_IMAGE', 'the image is damaged or not an OCI / Docker v2 image');
}

export interface DescriptorPlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: DescriptorPlatform;
  annotations?: Record<string, string>;
  artifactType?: string;
}

export function decodeDescriptor(f: JsonFields, x: unknown, field: string): Descriptor {
  const o = f.object(x, field);
  const d: Descriptor = {
    mediaType: f.string(o.mediaType, `${field}.mediaType`),
    digest: f.string(o.digest, `${field}.digest`, DIGEST),
    size: f.uint(o.size, `${field}.size`),
  };
  if (o.platform !== undefined && o.platform !== null) {
    const p = f.object(o.platform, `${field}.platform`);
    const variant = f.optional(p.variant, `${field}.platform.variant`, (v, vf) => f.string(v, vf));
    d.platform = {
      os: f.string(p.os, `${field}.platform.os`),
      architecture: f.string(p.architecture, `${field}.platform.architecture`),
      ...(variant ? { variant } : {}),
    };
  }
  const annotations = stringMap(f, o.annotations, `${field}.annotations`);
  if (annotations) d.annotations = annotations;
  const artifactType = f.optional(o.artifactType, `${field}.artifactType`, (v, vf) => f.string(v, vf));
  if (artifactType) d.artifactType = artifactType;
  return d;
}

function stringMap(f: JsonFields, x: unknown, field: string): Record<string, string> | undefined {
  if (x === undefined || x === null) return undefined;
  const o = f.object(x, field);
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f.string(v, `${field}[${JSON.stringify(k)}]`)]));
}

/** An image (or artifact) manifest: OCI image manifest or Docker schema 2. */
export interface ManifestDoc {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  artifactType?: string;
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An OCI image index or Docker manifest list (index.json of a layout too). */
export interface IndexDoc {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/**
 * Decodes a manifest or an index. `mediaTypeHint` is what the transport said (a registry's
 * Content-Type, a descriptor's mediaType); the document's own field wins when present.
 */
export function decodeManifestOrIndex(bytes: Buffer, mediaTypeHint: string | undefined, where: string): ManifestDoc | IndexDoc {
  const f = imageFields(where);
  const o = f.object(f.parse(bytes.toString('utf8')), '');
  if (o.schemaVersion !== 2)
    throw f.error('schemaVersion', `is ${JSON.stringify(o.schemaVersion)?.slice(0, 20)}, not 2 (only OCI and Docker schema 2 are read)`);
  const isIndex = Array.isArray(o.manifests);
  const mediaType =
    f.optional(o.mediaType, 'mediaType', (v, vf) => f.string(v, vf)) ?? mediaTypeHint ?? (isIndex ? MT.ociIndex : MT.ociManifest);
  const annotations = stringMap(f, o.annotations, 'annotations');
  if (isIndex) {
    const manifests = f.array(o.manifests, 'manifests', (x, xf) => decodeDescriptor(f, x, xf));
    return { kind: 'index', mediaType, manifests, ...(annotations ? { annotations } : {}) };
  }
  const out: ManifestDoc = {
    kind: 'manifest',
    mediaType,
    config: decodeDescriptor(f, o.config, 'config'),
    layers: o.layers === undefined || o.layers === null ? [] : f.array(o.layers, 'layers', (x, xf) => decodeDescriptor(f, x, xf)),
  };
  const artifactType = f.optional(o.artifactType, 'artifactType', (v, vf) => f.string(v, vf));
  if (artifactType) out.artifactType = artifactType;
  if (o.subject !== undefined && o.subject !== null) out.subject = decodeDescriptor(f, o.subject, 'subject');
  if (annotations) out.annotations = annotations;
  return out;
}
