/**
 * Manifests, indexes and descriptors decoded from JSON into typed values, field by field (the
 * delta/records.ts model): every outside document is validated here, once, and an error names
 * where it came from and the field that is wrong. Nothing after this casts parsed JSON.
 */
import { DeltaimgError } from '../util/errors.js';
import { checkDigest } from './names.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(x: unknown): x is JsonObject {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export function parseJsonBytes(bytes: Buffer, where: string, what: string): Json {
  try {
    return JSON.parse(bytes.toString('utf8')) as Json;
  } catch {
    throw bad(where, `${what} is not valid JSON`);
  }
}

export function bad(where: string, why: string): DeltaimgError {
  return new DeltaimgError('BAD_IMAGE', `${where}: ${why}`);
}

/** Field readers: each names `what.field` in its error. */
export const field = {
  object(o: JsonObject, key: string, where: string, what: string): JsonObject {
    const v = o[key];
    if (!isObject(v)) throw bad(where, `${what}.${key} is not an object`);
    return v;
  },
  string(o: JsonObject, key: string, where: string, what: string): string {
    const v = o[key];
    if (typeof v !== 'string') throw bad(where, `${what}.${key} is not a string`);
    return v;
  },
  optString(o: JsonObject, key: string, where: string, what: string): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw bad(where, `${what}.${key} is not a string`);
    return v;
  },
  size(o: JsonObject, key: string, where: string, what: string): number {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(where, `${what}.${key} is not a byte count`);
    return v;
  },
  array(o: JsonObject, key: string, where: string, what: string): Json[] {
    const v = o[key];
    if (!Array.isArray(v)) throw bad(where, `${what}.${key} is not a list`);
    return v;
  },
  /** A string -> string map (annotations); absent is undefined. */
  stringMap(o: JsonObject, key: string, where: string, what: string): Record<string, string> | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (!isObject(v)) throw bad(where, `${what}.${key} is not an object`);
    const out: Record<string, string> = {};
    for (const [k, s] of Object.entries(v)) {
      if (typeof s !== 'string') throw bad(where, `${what}.${key}.${k} is not a string`);
      out[k] = s;
    }
    return out;
  },
};

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

export function decodeDescriptor(x: Json | undefined, where: string, what: string): Descriptor {
  if (!isObject(x)) throw bad(where, `${what} is not a descriptor (mediaType, digest, size)`);
  const d: Descriptor = {
    mediaType: field.string(x, 'mediaType', where, what),
    digest: checkDigest(where, what, x.digest),
    size: field.size(x, 'size', where, what),
  };
  if (isObject(x.platform)) {
    const p = x.platform;
    const variant = field.optString(p, 'variant', where, `${what}.platform`);
    d.platform = { os: field.string(p, 'os', where, `${what}.platform`), architecture: field.string(p, 'architecture', where, `${what}.platform`), ...(variant ? { variant } : {}) };
  }
  const annotations = field.stringMap(x, 'annotations', where, what);
  if (annotations) d.annotations = annotations;
  const artifactType = field.optString(x, 'artifactType', where, what);
  if (artifactType) d.artifactType = artifactType;
  return d;
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

/** An OCI image index or Docker manifest list. */
export interface IndexDoc {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/**
 * Decodes a manifest or an index. `mediaType` is what the transport said (a registry's
 * Content-Type, a descriptor's mediaType); the document's own field wins when present.
 */
export function decodeManifestOrIndex(bytes: Buffer, mediaTypeHint: string | undefined, where: string): ManifestDoc | IndexDoc {
  const json = parseJsonBytes(bytes, where, 'the manifest');
  if (!isObject(json)) throw bad(where, 'the manifest is not a JSON object');
  if (json.schemaVersion !== 2) throw bad(where, `manifest schemaVersion is ${JSON.stringify(json.schemaVersion)}; only schema 2 (OCI, Docker v2) is read`);
  const mediaType = field.optString(json, 'mediaType', where, 'manifest') ?? mediaTypeHint ?? (Array.isArray(json.manifests) ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json');
  const annotations = field.stringMap(json, 'annotations', where, 'manifest');
  if (Array.isArray(json.manifests)) {
    const manifests = json.manifests.map((d, i) => decodeDescriptor(d, where, `manifests[${i}]`));
    return { kind: 'index', mediaType, manifests, ...(annotations ? { annotations } : {}) };
  }
  const config = decodeDescriptor(json.config, where, 'config');
  const layers = Array.isArray(json.layers) ? json.layers.map((d, i) => decodeDescriptor(d, where, `layers[${i}]`)) : [];
  const out: ManifestDoc = { kind: 'manifest', mediaType, config, layers };
  const artifactType = field.optString(json, 'artifactType', where, 'manifest');
  if (artifactType) out.artifactType = artifactType;
  if (json.subject !== undefined) out.subject = decodeDescriptor(json.subject, where, 'subject');
  if (annotations) out.annotations = annotations;
  return out;
}
