/**
 * dimg.json, the `.dimg` header, validated field by field into a typed DimgHeader where it
 * enters: a missing or mistyped field is one line naming it (`images[0].target.layers`), and
 * every member the header refers to must be one it lists, so apply never opens a path a
 * hostile header chose.
 */
import { DeltaimgError } from '../util/errors.js';
import { checkReaderVersion, JsonFields } from '../util/json-input.js';
import {
  DIMG_FORMAT,
  DIMG_VERSION,
  MEMBER_NAME,
  type DimgHeader,
  type DimgImage,
  type DimgLayer,
  type DimgMember,
  type DimgTargetLayer,
  type StoredLayer,
} from './format.js';

const ADVICE = "copy it again or make it anew with 'deltaimg image diff'";

/** JsonFields that also know the .dimg's own path, for the refusals that are not about one field's type. */
class DimgFields extends JsonFields {
  constructor(readonly path: string) {
    super(`${path} (its dimg.json)`, 'CORRUPT_DELTA', ADVICE);
  }
}

export function damaged(path: string, why: string): DeltaimgError {
  return new DeltaimgError('CORRUPT_DELTA', `${path} is damaged: ${why}; ${ADVICE}`);
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** The header's JSON text as a DimgHeader; `path` is the .dimg as the user named it. */
export function decodeDimgHeader(path: string, json: unknown): DimgHeader {
  const f = new DimgFields(path);
  const h = f.object(json, '');
  if (h.format !== DIMG_FORMAT) {
    throw damaged(path, `its header names format ${JSON.stringify(h.format)?.slice(0, 60) ?? 'none'}`);
  }
  const { version, minReaderVersion } = checkReaderVersion(f, h, DIMG_VERSION, `${path} uses image delta format`);
  const members = f.array(h.members, 'members', (x, field) => member(f, x, field));
  const header: DimgHeader = {
    format: DIMG_FORMAT,
    version,
    minReaderVersion,
    tool: f.string(h.tool, 'tool'),
    created: f.string(h.created, 'created'),
    images: f.array(h.images, 'images', (x, field) => image(f, x, field)),
    layers: f.array(h.layers, 'layers', (x, field) => layer(f, x, field)),
    inlineMax: f.uint(h.inlineMax, 'inlineMax'),
    members,
  };
  const targetIndex = f.optional(h.targetIndex, 'targetIndex', (v, tf) => {
    const t = f.object(v, tf);
    return {
      mediaType: f.string(t.mediaType, `${tf}.mediaType`),
      digest: f.string(t.digest, `${tf}.digest`, DIGEST),
      member: f.string(t.member, `${tf}.member`),
    };
  });
  if (targetIndex) header.targetIndex = targetIndex;
  if (header.images.length === 0) throw f.error('images', 'is empty');
  checkMemberRefs(f, header);
  return header;
}

function member(f: DimgFields, x: unknown, field: string): DimgMember {
  const m = f.object(x, field);
  const name = f.string(m.name, `${field}.name`);
  if (!MEMBER_NAME.test(name)) {
    throw damaged(f.path, `its header lists an invalid member ${JSON.stringify(name.slice(0, 200))}`);
  }
  return { name, size: f.uint(m.size, `${field}.size`), sha256: f.string(m.sha256, `${field}.sha256`, HEX64) };
}

function image(f: DimgFields, x: unknown, field: string): DimgImage {
  const i = f.object(x, field);
  const base = f.object(i.base, `${field}.base`);
  const target = f.object(i.target, `${field}.target`);
  const manifest = f.optional(target.manifest, `${field}.target.manifest`, (v, mf) => {
    const m = f.object(v, mf);
    return {
      mediaType: f.string(m.mediaType, `${mf}.mediaType`),
      digest: f.string(m.digest, `${mf}.digest`, DIGEST),
      member: f.string(m.member, `${mf}.member`),
    };
  });
  return {
    platform: f.string(i.platform, `${field}.platform`),
    base: {
      configDigest: f.string(base.configDigest, `${field}.base.configDigest`, DIGEST),
      diffIds: f.array(base.diffIds, `${field}.base.diffIds`, (d, df) => f.string(d, df, DIGEST)),
    },
    target: {
      configDigest: f.string(target.configDigest, `${field}.target.configDigest`, DIGEST),
      configMember: f.string(target.configMember, `${field}.target.configMember`),
      ...(manifest ? { manifest } : {}),
      names: f.array(target.names, `${field}.target.names`, (n, nf) => f.string(n, nf)),
      layers: f.array(target.layers, `${field}.target.layers`, (l, lf) => targetLayer(f, l, lf)),
    },
  };
}

function targetLayer(f: DimgFields, x: unknown, field: string): DimgTargetLayer {
  const l = f.object(x, field);
  const stored = f.optional(l.stored, `${field}.stored`, (v, sf) => storedLayer(f, v, sf));
  return {
    diffId: f.string(l.diffId, `${field}.diffId`, DIGEST),
    size: f.uint(l.size, `${field}.size`),
    from: f.oneOf(l.from, `${field}.from`, ['base', 'rebuilt'] as const),
    ...(stored ? { stored } : {}),
  };
}

function storedLayer(f: DimgFields, x: unknown, field: string): StoredLayer {
  const s = f.object(x, field);
  const replay = f.optional(s.replay, `${field}.replay`, (v, rf) => {
    const r = f.object(v, rf);
    return {
      kind: f.oneOf(r.kind, `${rf}.kind`, ['gzip'] as const),
      level: f.uint(r.level, `${rf}.level`, 9),
      headerHex: f.string(r.headerHex, `${rf}.headerHex`, /^(?:[0-9a-f]{2})*$/),
    };
  });
  const recipe = f.optional(s.recipe, `${field}.recipe`, (v, rf) => {
    const r = f.object(v, rf);
    return { member: f.string(r.member, `${rf}.member`), method: f.string(r.method, `${rf}.method`) };
  });
  const inexact = f.optional(s.inexact, `${field}.inexact`, (v, inf) => f.string(v, inf));
  return {
    digest: f.string(s.digest, `${field}.digest`, DIGEST),
    size: f.uint(s.size, `${field}.size`),
    mediaType: f.string(s.mediaType, `${field}.mediaType`),
    compression: f.oneOf(s.compression, `${field}.compression`, ['none', 'gzip', 'zstd'] as const),
    ...(recipe ? { recipe } : {}),
    ...(inexact !== undefined ? { inexact } : {}),
    ...(replay ? { replay } : {}),
  };
}

function layer(f: DimgFields, x: unknown, field: string): DimgLayer {
  const l = f.object(x, field);
  const diffId = f.string(l.diffId, `${field}.diffId`, DIGEST);
  const deltaPrefix = f.string(l.deltaPrefix, `${field}.deltaPrefix`);
  if (!MEMBER_NAME.test(deltaPrefix)) {
    throw damaged(f.path, `its header gives layer ${diffId} an invalid delta prefix ${JSON.stringify(deltaPrefix.slice(0, 200))}`);
  }
  return {
    diffId,
    size: f.uint(l.size, `${field}.size`),
    baseConfigDigest: f.string(l.baseConfigDigest, `${field}.baseConfigDigest`, DIGEST),
    skeletonMember: f.string(l.skeletonMember, `${field}.skeletonMember`),
    skeletonMethod: f.string(l.skeletonMethod, `${field}.skeletonMethod`),
    deltaPrefix,
    files: f.uint(l.files, `${field}.files`),
    contentBytes: f.uint(l.contentBytes, `${field}.contentBytes`),
    deltaBytes: f.uint(l.deltaBytes, `${field}.deltaBytes`),
  };
}

/**
 * Apply opens configs, manifests, skeletons and recipes by the names the header gives; each must be a
 * listed member, or a hostile header could make apply read files outside the unpacked members.
 */
function checkMemberRefs(f: DimgFields, h: DimgHeader): void {
  const listed = new Set(h.members.map((m) => m.name));
  const refs: string[] = [];
  for (const image of h.images) refs.push(image.target.configMember, ...(image.target.manifest ? [image.target.manifest.member] : []));
  for (const l of h.layers) refs.push(l.skeletonMember);
  if (h.targetIndex) refs.push(h.targetIndex.member);
  for (const image of h.images) for (const l of image.target.layers) if (l.stored?.recipe) refs.push(l.stored.recipe.member);
  for (const ref of refs) {
    if (!listed.has(ref)) {
      throw damaged(f.path, `its header refers to member ${JSON.stringify(ref.slice(0, 200))}, which it does not list`);
    }
  }
}
