/**
 * The Dockerfiles behind `deltaimg dockerfile diff|apply`. Pure functions of already-checked
 * inputs (see plan.ts for the checks against the engine), so they are tested without Docker.
 *
 * deltaimg runs in a FROM scratch stage with the image roots bind-mounted read-only in
 * subdirectories (RUN --mount=type=bind,from=IMAGE): no copy of the roots, and the roots seen
 * exactly as their layers hold them (BuildKit's COPY would turn device nodes into empty files
 * and drop FIFOs). A RUN on "/" of a real image would also see what the builder mounts there
 * (/proc, /etc/hosts, /etc/resolv.conf, ...), which would neither match the recorded source nor
 * belong in the target. RUN --mount needs BuildKit (DOCKER_BUILDKIT=1 on Docker 20.10).
 */
import { configInstructions, labelLine } from './config-instructions.js';
import type { ImageInfo } from './image.js';
import { DELTA_IMAGE_VERSION, DELTA_PATH, labelsFor, type DeltaImageMeta } from './labels.js';
import { execForm, imageRefToken } from './syntax.js';

/** The launcher inside the runtime image; needs no shell and no libc from the stage. */
export const RUNTIME_ROOT = '/opt/deltaimg';
const LAUNCHER = `${RUNTIME_ROOT}/deltaimg`;
const SRC = '/__src__';
const DST = '/__dst__';
const OUT = '/__out__';

/**
 * How a stage sees the images it works on: read-only bind mounts (RUN --mount, BuildKit), or
 * copies (COPY --from into the scratch stage, --copy: any builder, at the cost of copying them).
 */
export type StageShape = 'mount' | 'copy';

export interface DiffDockerfileInput {
  base: ImageInfo;
  target: ImageInfo;
  runtimeImage: string;
  /** true: the delta image is FROM the base (shares its layers); false: FROM scratch. */
  linked: boolean;
  toolVersion: string;
  /** Default 'mount'. */
  shape?: StageShape;
}

export function diffDockerfile(input: DiffDockerfileInput): string {
  const a = imageRefToken(input.base.ref, 'base image');
  const b = imageRefToken(input.target.ref, 'target image');
  const runtime = imageRefToken(input.runtimeImage, 'runtime image');
  const meta: DeltaImageMeta = {
    version: DELTA_IMAGE_VERSION,
    tool: input.toolVersion,
    linked: input.linked,
    base: { ref: input.base.ref, id: input.base.id, ...(input.base.size === undefined ? {} : { size: input.base.size }) },
    target: {
      ref: input.target.ref,
      id: input.target.id,
      config: input.target.config,
      ...(input.target.size === undefined ? {} : { size: input.target.size }),
    },
  };
  // The delta header carries the same facts as the labels, so a delta copied out of its image still says what it is.
  const annotations = JSON.stringify({ docker: meta });
  const shape = input.shape ?? 'mount';
  return lines(
    `# deltaimg ${input.toolVersion}: a delta image that rebuilds ${b} from ${a}.`,
    `#   deltaimg dockerfile diff ${a} ${b}${input.linked ? '' : ' --unlinked'}${shape === 'copy' ? ' --copy' : ''} | docker build -t NAME -`,
    '',
    shape === 'mount'
      ? `# Stage 1: deltaimg (self-contained, no shell needed) compares the two roots, mounted read-only.`
      : `# Stage 1: both roots copied into a scratch stage (any builder); deltaimg (self-contained) compares them.`,
    `FROM scratch AS deltaimg-delta`,
    ...runStage(
      shape,
      [input_(runtime, RUNTIME_ROOT, RUNTIME_ROOT), input_(a, '/', SRC), input_(b, '/', DST)],
      [LAUNCHER, 'diff', SRC, DST, '--out', DELTA_PATH, '--progress', 'plain', '--annotations-json', annotations],
    ),
    '',
    input.linked
      ? `# Stage 2: the base image plus one layer holding the delta.`
      : `# Stage 2: the delta alone; apply it with --unlinked-source ${a}.`,
    `FROM ${input.linked ? a : 'scratch'}`,
    `COPY --from=deltaimg-delta ${DELTA_PATH} ${DELTA_PATH}`,
    labelLine(Object.entries(labelsFor(meta))),
  );
}

export interface ApplyDockerfileInput {
  /** The delta image (A-TO-B) and what its labels say. */
  deltaImage: string;
  meta: DeltaImageMeta;
  runtimeImage: string;
  /** The base image, for a delta image built with --unlinked (or to take A's root from A itself). */
  unlinkedSource?: string;
  toolVersion: string;
  /** --layered: the restored image is FROM this base image (A, by name) plus one layer of changes. */
  layered?: LayeredInput;
  /** Default 'mount'; 'copy' cannot be --layered (plan.ts refuses the pair). */
  shape?: StageShape;
}

export interface LayeredInput {
  /** A, by a name the engine knows it by. */
  baseImage: string;
  /** A sets a non-root USER: switch to root for the RUN (B's config sets its own user afterwards). */
  runAsRoot: boolean;
}

/**
 * Where the --layered RUN sees its inputs: inside /dev, which the builder mounts as a tmpfs
 * for every RUN, so the mount points it creates never reach the layer (a mount point anywhere
 * else in "/" would be left in the layer as an empty directory by BuildKit 0.8).
 */
const LAYER_MOUNTS = '/dev/.deltaimg';
const LAYER_RUNTIME = `${LAYER_MOUNTS}/runtime`;
const LAYER_BASE = `${LAYER_MOUNTS}/base`;
const LAYER_TARGET = `${LAYER_MOUNTS}/target`;
const LAYER_FIXUP = `${LAYER_MOUNTS}/fixup`;
const APPLIED_STAGE = 'deltaimg-applied';
const FIXUP_STAGE = 'deltaimg-fixup';
const FIXUP = '/__fixup__';

export function applyDockerfile(input: ApplyDockerfileInput): string {
  const delta = imageRefToken(input.deltaImage, 'delta image');
  const runtime = imageRefToken(input.runtimeImage, 'runtime image');
  const source = input.unlinkedSource === undefined ? undefined : imageRefToken(input.unlinkedSource, 'source image');
  // Linked: the delta image's root is A's root plus DELTA_PATH, so the delta sits inside the source
  // root and deltaimg apply leaves it out of the source. Unlinked: A's root and the delta apart.
  const deltaDir = source ? DELTA_PATH : `${SRC}${DELTA_PATH}`;
  const inputs = source ? [input_(source, '/', SRC), input_(delta, DELTA_PATH, DELTA_PATH)] : [input_(delta, '/', SRC)];
  const shape = input.shape ?? 'mount';
  return lines(
    `# deltaimg ${input.toolVersion}: rebuilds ${input.meta.target.ref} (${input.meta.target.id}) from ${delta}.`,
    `#   deltaimg dockerfile apply ${delta}${source ? ` --unlinked-source ${source}` : ''}${input.layered ? ' --layered' : ''}${shape === 'copy' ? ' --copy' : ''} | docker build -t NAME -`,
    '',
    `# Stage 1: the source root (${input.meta.base.ref}, ${input.meta.base.id}) and the delta${shape === 'copy' ? ', copied in' : ''}; deltaimg checks the`,
    `# source against the delta, then writes the target root to ${OUT}.`,
    `FROM scratch AS ${APPLIED_STAGE}`,
    ...runStage(
      shape,
      [input_(runtime, RUNTIME_ROOT, RUNTIME_ROOT), ...inputs],
      [LAUNCHER, 'apply', SRC, deltaDir, '--out', OUT, '--progress', 'plain'],
    ),
    '',
    ...(input.layered ? layeredStage(input.layered, runtime) : flatStage()),
    ...configInstructions(input.meta.target.config),
  );
}

function flatStage(): string[] {
  return [`# Stage 2: the target root as one layer, and the target's config.`, `FROM scratch`, `COPY --from=${APPLIED_STAGE} ${OUT}/ /`];
}

/**
 * FROM A, then one RUN in which deltaimg edits "/" (A's root) into the target: only what
 * changes is written, so the layer holds the changed and new entries and, for removals, the
 * overlay's whiteouts. A's own root (read-only) and the stage 1 result are what it compares.
 * Then a COPY of the directories the builder's own mount stand-ins disturbed during that RUN
 * (layer-fixup; nothing unless A lacks /etc/hosts or /etc/resolv.conf).
 */
function layeredStage(layered: LayeredInput, runtime: string): string[] {
  const base = imageRefToken(layered.baseImage, 'base image');
  return [
    `# Stage 2: the directories the builder's stand-ins for /etc/hosts and /etc/resolv.conf disturb when ${base} lacks them.`,
    `FROM scratch AS ${FIXUP_STAGE}`,
    runWithMounts(
      [bind(runtime, RUNTIME_ROOT, RUNTIME_ROOT), bind(base, '/', SRC), bind(APPLIED_STAGE, OUT, DST)],
      [LAUNCHER, 'layer-fixup', SRC, DST, '--out', FIXUP],
    ),
    '',
    `# Stage 3: ${base} itself plus one layer: the target's changed and new entries, and whiteouts for removals.`,
    `FROM ${base}`,
    ...(layered.runAsRoot ? ['USER 0:0'] : []),
    runWithMounts(
      [
        bind(runtime, RUNTIME_ROOT, LAYER_RUNTIME),
        bind(base, '/', LAYER_BASE),
        bind(APPLIED_STAGE, OUT, LAYER_TARGET),
        bind(FIXUP_STAGE, FIXUP, LAYER_FIXUP),
      ],
      [`${LAYER_RUNTIME}/deltaimg`, 'layer-sync', LAYER_BASE, LAYER_TARGET, '/', '--fixup', LAYER_FIXUP],
    ),
    `COPY --from=${FIXUP_STAGE} ${FIXUP}/ /`,
  ];
}

/** What a stage reads: `source` inside image (or stage) `from`, seen at `target`. */
interface StageInput {
  from: string;
  source: string;
  target: string;
}

function input_(from: string, source: string, target: string): StageInput {
  return { from, source, target };
}

/**
 * One RUN of the runtime over its inputs: bind-mounted read-only (one RUN), or COPY'd into the
 * stage first (COPY --from of "/" copies the root's contents into the target directory).
 */
function runStage(shape: StageShape, inputs: StageInput[], args: string[]): string[] {
  if (shape === 'mount')
    return [
      runWithMounts(
        inputs.map((i) => bind(i.from, i.source, i.target)),
        args,
      ),
    ];
  return [
    ...inputs.map((i) => `COPY --from=${i.from} ${i.source} ${i.source === '/' ? `${i.target}/` : i.target}`),
    `RUN ${execForm(args)}`,
  ];
}

/** An exec-form RUN with one --mount per continued line. */
function runWithMounts(mounts: string[], args: string[]): string {
  const [first, ...rest] = [...mounts, execForm(args)];
  return [`RUN ${first}`, ...rest.map((line) => `    ${line}`)].join(' \\\n');
}

/** A read-only bind mount of `source` inside image `from` at `target` for one RUN. */
function bind(from: string, source: string, target: string): string {
  return `--mount=type=bind,from=${from},source=${source},target=${target}`;
}

function lines(...l: string[]): string {
  return `${l.join('\n')}\n`;
}
