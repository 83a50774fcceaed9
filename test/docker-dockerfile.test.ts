/**
 * The generated Dockerfiles, without Docker: structure, exec-form JSON that parses back to the
 * exact arguments, labels and config instructions, and refusal of what a Dockerfile cannot say.
 * (test/docker-engine.test.ts builds such instructions on the real engine and reads them back.)
 */
import { describe, expect, it } from 'vitest';
import { configInstructions } from '../src/docker/config-instructions.js';
import { applyDockerfile, diffDockerfile } from '../src/docker/dockerfile.js';
import type { ImageInfo } from '../src/docker/image.js';
import { pickConfig } from '../src/docker/image.js';
import { LABELS, readDeltaImage } from '../src/docker/labels.js';
import { checkLayeredConfig, needsRootForRun } from '../src/docker/layered-config.js';
import { envOrderNote, storageNote } from '../src/docker/plan.js';
import { imageRefToken, quoted } from '../src/docker/syntax.js';
import { DeltaimgError } from '../src/util/errors.js';

const A: ImageInfo = {
  ref: 'app:1',
  id: `sha256:${'a'.repeat(64)}`,
  config: { Cmd: ['/bin/app'] },
  layers: [],
  os: 'linux',
  architecture: 'amd64',
};
const B: ImageInfo = {
  ref: 'registry.local:5000/team/app:2',
  id: `sha256:${'b'.repeat(64)}`,
  config: {
    Env: ['PATH=/bin', 'QUOTE=say "hi" \\ $HOME'],
    Cmd: ['/bin/app', '--port', '80'],
    User: '1000:1000',
    Labels: { 'org.example.v': '2' },
  },
  layers: [],
  os: 'linux',
  architecture: 'amd64',
};

/** Instructions as the builder sees them: continuation lines joined, comments and blanks dropped. */
function instructionsOf(dockerfile: string): string[] {
  return dockerfile
    .replace(/ \\\n\s*/g, ' ')
    .split('\n')
    .filter((l) => /^[A-Z]+ /.test(l));
}

/** The JSON array of the first `instr` in exec form, after its --flags. */
function execArgs(dockerfile: string, instr: string): string[] {
  const line = instructionsOf(dockerfile).find((l) => l.startsWith(`${instr} `) && l.includes(' ['));
  if (!line) throw new Error(`no exec-form ${instr} in:\n${dockerfile}`);
  return JSON.parse(line.slice(line.indexOf(' [') + 1)) as string[];
}

/** The --mount flags of the first RUN. */
function runMounts(dockerfile: string): string[] {
  const run = instructionsOf(dockerfile).find((l) => l.startsWith('RUN ')) ?? '';
  return run.split(' ').filter((w) => w.startsWith('--mount='));
}

/** The builder's reading of a double-quoted word: \" \\ \$ are escapes, other backslashes stay. */
function unquote(word: string): string {
  expect(word.startsWith('"') && word.endsWith('"')).toBe(true);
  return word.slice(1, -1).replace(/\\(["\\$])/g, '$1');
}

/** LABEL "k"="v" pairs of the Dockerfile's last LABEL, read back as the builder would. */
function labelsOf(dockerfile: string): Record<string, string> {
  const joined = dockerfile.replace(/ \\\n\s*/g, ' ');
  const line =
    joined
      .split('\n')
      .filter((l) => l.startsWith('LABEL '))
      .pop() ?? '';
  const out: Record<string, string> = {};
  for (const m of line.slice(6).matchAll(/("(?:[^"\\]|\\.)*")=("(?:[^"\\]|\\.)*")/g)) out[unquote(m[1]!)] = unquote(m[2]!);
  return out;
}

describe('diff Dockerfile', () => {
  it('compares both roots in a scratch stage and makes a labelled image FROM A', () => {
    const df = diffDockerfile({ base: A, target: B, runtimeImage: 'deltaimg/runtime:9.9.9', linked: true, toolVersion: '9.9.9' });
    const instructions = instructionsOf(df);
    expect(instructions[0]).toBe('FROM scratch AS deltaimg-delta');
    expect(runMounts(df)).toEqual([
      '--mount=type=bind,from=deltaimg/runtime:9.9.9,source=/opt/deltaimg,target=/opt/deltaimg',
      '--mount=type=bind,from=app:1,source=/,target=/__src__',
      '--mount=type=bind,from=registry.local:5000/team/app:2,source=/,target=/__dst__',
    ]);
    const run = execArgs(df, 'RUN');
    // --progress plain: lines in the build log instead of silence.
    expect(run.slice(0, 8)).toEqual([
      '/opt/deltaimg/deltaimg',
      'diff',
      '/__src__',
      '/__dst__',
      '--out',
      '/__delta__',
      '--progress',
      'plain',
    ]);
    expect(run[8]).toBe('--annotations-json');
    const annotations = JSON.parse(run[9]!) as { docker: { base: { id: string }; target: { id: string; config: unknown } } };
    expect(annotations.docker.base.id).toBe(A.id);
    expect(annotations.docker.target.id).toBe(B.id);
    expect(annotations.docker.target.config).toEqual(B.config);
    expect(instructions).toContain('FROM app:1');
    expect(instructions).toContain('COPY --from=deltaimg-delta /__delta__ /__delta__');

    const labels = labelsOf(df);
    expect(labels[LABELS.baseId]).toBe(A.id);
    expect(labels[LABELS.targetId]).toBe(B.id);
    expect(labels[LABELS.linked]).toBe('true');
    // The target config survives the label quoting byte for byte ($, quotes, backslashes).
    expect(JSON.parse(labels[LABELS.targetConfig]!)).toEqual(B.config);
    const meta = readDeltaImage({ ...A, ref: 'app:1-to-2', config: { Labels: labels } });
    expect(meta).toMatchObject({
      version: 1,
      linked: true,
      base: { ref: 'app:1', id: A.id },
      target: { ref: B.ref, id: B.id, config: B.config },
    });
  });

  it("--copy: the runtime and both roots COPY'd into the scratch stage, then the same RUN, no --mount", () => {
    const df = diffDockerfile({ base: A, target: B, runtimeImage: 'rt:1', linked: true, toolVersion: '1', shape: 'copy' });
    const instructions = instructionsOf(df);
    expect(instructions.slice(0, 4)).toEqual([
      'FROM scratch AS deltaimg-delta',
      'COPY --from=rt:1 /opt/deltaimg /opt/deltaimg',
      'COPY --from=app:1 / /__src__/',
      'COPY --from=registry.local:5000/team/app:2 / /__dst__/',
    ]);
    expect(df).not.toMatch(/--mount/);
    expect(execArgs(df, 'RUN').slice(0, 6)).toEqual(['/opt/deltaimg/deltaimg', 'diff', '/__src__', '/__dst__', '--out', '/__delta__']);
    expect(instructions).toContain('FROM app:1');
    expect(instructions).toContain('COPY --from=deltaimg-delta /__delta__ /__delta__');
  });

  it('--unlinked: the delta image is FROM scratch', () => {
    const df = diffDockerfile({ base: A, target: B, runtimeImage: 'rt:1', linked: false, toolVersion: '1' });
    expect(df).toMatch(/^FROM scratch\nCOPY --from=deltaimg-delta \/__delta__ \/__delta__$/m);
    expect(df).not.toMatch(/^FROM app:1$/m);
    expect(labelsOf(df)[LABELS.linked]).toBe('false');
  });
});

describe('apply Dockerfile', () => {
  const meta = readDeltaImage({
    ...A,
    ref: 'app:1-to-2',
    config: { Labels: labelsOf(diffDockerfile({ base: A, target: B, runtimeImage: 'rt:1', linked: true, toolVersion: '1' })) },
  });

  it('applies on a copy of the delta image root and restores the target config on a scratch image', () => {
    const df = applyDockerfile({ deltaImage: 'app:1-to-2', meta, runtimeImage: 'rt:1', toolVersion: '1' });
    const instructions = instructionsOf(df);
    expect(instructions[0]).toBe('FROM scratch AS deltaimg-applied');
    expect(runMounts(df)).toEqual([
      '--mount=type=bind,from=rt:1,source=/opt/deltaimg,target=/opt/deltaimg',
      '--mount=type=bind,from=app:1-to-2,source=/,target=/__src__',
    ]);
    expect(execArgs(df, 'RUN')).toEqual([
      '/opt/deltaimg/deltaimg',
      'apply',
      '/__src__',
      '/__src__/__delta__',
      '--out',
      '/__out__',
      '--progress',
      'plain',
    ]);
    const tail = instructions.slice(instructions.indexOf('FROM scratch'));
    expect(tail.slice(0, 2)).toEqual(['FROM scratch', 'COPY --from=deltaimg-applied /__out__/ /']);
    expect(tail.slice(2)).toEqual(instructionsOf(configInstructions(B.config).join('\n')));
    expect(execArgs(df, 'CMD')).toEqual(B.config.Cmd);
  });

  it("--copy apply: the delta image's root (A plus the delta) copied in; unlinked: A and the delta apart", () => {
    const linked = instructionsOf(
      applyDockerfile({ deltaImage: 'app:1-to-2', meta, runtimeImage: 'rt:1', toolVersion: '1', shape: 'copy' }),
    );
    expect(linked.slice(0, 3)).toEqual([
      'FROM scratch AS deltaimg-applied',
      'COPY --from=rt:1 /opt/deltaimg /opt/deltaimg',
      'COPY --from=app:1-to-2 / /__src__/',
    ]);
    expect(linked[3]).toBe(
      'RUN ["/opt/deltaimg/deltaimg","apply","/__src__","/__src__/__delta__","--out","/__out__","--progress","plain"]',
    );
    const unlinked = instructionsOf(
      applyDockerfile({ deltaImage: 'app:1-to-2', meta, runtimeImage: 'rt:1', unlinkedSource: 'app:1', toolVersion: '1', shape: 'copy' }),
    );
    expect(unlinked.slice(2, 4)).toEqual(['COPY --from=app:1 / /__src__/', 'COPY --from=app:1-to-2 /__delta__ /__delta__']);
    expect(unlinked).toContain('COPY --from=deltaimg-applied /__out__/ /');
  });

  it('--unlinked-source copies A and the delta apart', () => {
    const df = applyDockerfile({ deltaImage: 'app:1-to-2', meta, runtimeImage: 'rt:1', unlinkedSource: 'app:1', toolVersion: '1' });
    expect(runMounts(df).slice(1)).toEqual([
      '--mount=type=bind,from=app:1,source=/,target=/__src__',
      '--mount=type=bind,from=app:1-to-2,source=/__delta__,target=/__delta__',
    ]);
    expect(execArgs(df, 'RUN')).toEqual([
      '/opt/deltaimg/deltaimg',
      'apply',
      '/__src__',
      '/__delta__',
      '--out',
      '/__out__',
      '--progress',
      'plain',
    ]);
  });

  it('--layered: FROM A, one RUN with every mount inside /dev, the fix-up COPY, then the target config', () => {
    const df = applyDockerfile({
      deltaImage: 'app:1-to-2',
      meta,
      runtimeImage: 'rt:1',
      toolVersion: '1',
      layered: { baseImage: 'app:1', runAsRoot: false },
    });
    const instructions = instructionsOf(df);
    const fixupStage = instructions.slice(instructions.indexOf('FROM scratch AS deltaimg-fixup'));
    expect(JSON.parse(fixupStage[1]!.slice(fixupStage[1]!.indexOf(' [') + 1))).toEqual([
      '/opt/deltaimg/deltaimg',
      'layer-fixup',
      '/__src__',
      '/__dst__',
      '--out',
      '/__fixup__',
    ]);
    const tail = instructions.slice(instructions.indexOf('FROM app:1'));
    expect(tail[0]).toBe('FROM app:1');
    expect(tail[1]!.startsWith('RUN ')).toBe(true);
    expect(tail[1]!.split(' ').filter((w) => w.startsWith('--mount='))).toEqual([
      '--mount=type=bind,from=rt:1,source=/opt/deltaimg,target=/dev/.deltaimg/runtime',
      '--mount=type=bind,from=app:1,source=/,target=/dev/.deltaimg/base',
      '--mount=type=bind,from=deltaimg-applied,source=/__out__,target=/dev/.deltaimg/target',
      '--mount=type=bind,from=deltaimg-fixup,source=/__fixup__,target=/dev/.deltaimg/fixup',
    ]);
    expect(JSON.parse(tail[1]!.slice(tail[1]!.indexOf(' [') + 1))).toEqual([
      '/dev/.deltaimg/runtime/deltaimg',
      'layer-sync',
      '/dev/.deltaimg/base',
      '/dev/.deltaimg/target',
      '/',
      '--fixup',
      '/dev/.deltaimg/fixup',
    ]);
    expect(tail[2]).toBe('COPY --from=deltaimg-fixup /__fixup__/ /');
    expect(tail.slice(3)).toEqual(instructionsOf(configInstructions(B.config).join('\n')));
  });

  it('--layered on a base with a non-root USER runs the sync as root', () => {
    const df = applyDockerfile({
      deltaImage: 'app:1-to-2',
      meta,
      runtimeImage: 'rt:1',
      toolVersion: '1',
      layered: { baseImage: 'app:1', runAsRoot: true },
    });
    const instructions = instructionsOf(df);
    expect(instructions[instructions.indexOf('FROM app:1') + 1]).toBe('USER 0:0');
    expect(needsRootForRun({ User: 'app' })).toBe(true);
    expect(needsRootForRun({ User: '1000:1000' })).toBe(true);
    expect(needsRootForRun({ User: 'root' })).toBe(false);
    expect(needsRootForRun({ User: '0:0' })).toBe(false);
    expect(needsRootForRun({})).toBe(false);
  });
});

describe('--layered config check (the target config written over the base config)', () => {
  const ok = (a: ImageInfo['config'], b: ImageInfo['config']) => () => checkLayeredConfig(a, b, 'app:1');

  it('accepts what instructions can add or override', () => {
    expect(
      ok(
        { Env: ['PATH=/bin', 'A=1'], Cmd: ['/a'], Labels: { x: '1' }, User: 'a' },
        { Env: ['PATH=/usr/bin', 'A=2', 'B=3'], Entrypoint: ['/b'], Labels: { x: '2', y: '1' }, User: 'b' },
      ),
    ).not.toThrow();
    expect(ok({}, B.config)).not.toThrow();
    expect(ok({ Env: ['X=1'] }, { Env: ['X=1', 'PATH=/bin'] })).not.toThrow();
  });

  it('refuses what no instruction can remove, naming it', () => {
    const withPath = (c: ImageInfo['config']): ImageInfo['config'] => ({ Env: ['PATH=/bin'], ...c });
    const cases: [ImageInfo['config'], ImageInfo['config'], RegExp][] = [
      [{ Env: ['PATH=/bin', 'ONLY_A=1'] }, { Env: ['PATH=/bin'] }, /environment has ONLY_A, which the target lacks/],
      [{ Env: ['PATH=/bin', 'B=1', 'A=1'] }, { Env: ['PATH=/bin', 'A=1', 'B=1'] }, /another order/],
      [withPath({ Labels: { a: '1' } }), withPath({ Labels: { b: '1' } }), /Labels has "a", which the target lacks/],
      [withPath({ ExposedPorts: { '80/tcp': {} } }), withPath({}), /ExposedPorts has "80\/tcp"/],
      [withPath({ WorkingDir: '/srv' }), withPath({}), /WorkingDir is "\/srv" and the target has none/],
      [withPath({ User: 'app' }), withPath({}), /User is "app"/],
      [withPath({ Entrypoint: ['/a'] }), withPath({ Cmd: ['x'] }), /Entrypoint is set/],
      [withPath({ Cmd: ['/a'] }), withPath({}), /Cmd is set/],
      [withPath({ Healthcheck: { Test: ['CMD', '/h'] } }), withPath({}), /Healthcheck is set/],
      [withPath({ OnBuild: ['RUN x'] }), withPath({}), /ONBUILD triggers/],
      // The builder gives a stage whose base has no PATH its default PATH, after the base's variables.
      [{}, { Env: ['X=1'] }, /environment has PATH, which the target lacks/],
      [{ Env: ['X=1'] }, { Env: ['PATH=/bin', 'X=1'] }, /another order/],
    ];
    for (const [a, b, message] of cases) {
      expect(ok(a, b)).toThrow(DeltaimgError);
      expect(ok(a, b)).toThrow(message);
      expect(ok(a, b)).toThrow(/^--layered builds FROM app:1, whose .*; a Dockerfile cannot remove that: apply without --layered$/);
    }
  });
});

describe('config instructions', () => {
  it('writes every restorable field, ENTRYPOINT before CMD', () => {
    const lines = configInstructions({
      Env: ['PATH=/usr/bin:/bin', 'EMPTY=', 'TRICKY=a "b" \\c $d ${e} ünï'],
      Entrypoint: ['/bin/tini', '--'],
      Cmd: ['/app/server', 'a b', '"quoted"'],
      WorkingDir: '/srv/my app',
      User: 'app:app',
      ExposedPorts: { '8080/tcp': {}, '53/udp': {} },
      Volumes: { '/data': {}, '/var/log app': {} },
      Labels: { 'org.opencontainers.image.title': 'it\'s "x"', b: '$HOME' },
      StopSignal: 'SIGINT',
      Healthcheck: { Test: ['CMD-SHELL', 'probe || exit 1'], Interval: 30e9, Timeout: 1.5e9, StartPeriod: 0, Retries: 3 },
      Shell: ['/bin/ash', '-c'],
      OnBuild: ['COPY . /app'],
    });
    expect(lines).toEqual([
      'SHELL ["/bin/ash","-c"]',
      'ENV PATH="/usr/bin:/bin"',
      'ENV EMPTY=""',
      'ENV TRICKY="a \\"b\\" \\\\c \\$d \\${e} ünï"',
      'WORKDIR "/srv/my app"',
      'USER "app:app"',
      'EXPOSE 53/udp 8080/tcp',
      'VOLUME ["/data","/var/log app"]',
      'LABEL "b"="\\$HOME" \\\n      "org.opencontainers.image.title"="it\'s \\"x\\""',
      'STOPSIGNAL SIGINT',
      'HEALTHCHECK --interval=30s --timeout=1500ms --retries=3 CMD probe || exit 1',
      'ONBUILD COPY . /app',
      'ENTRYPOINT ["/bin/tini","--"]',
      'CMD ["/app/server","a b","\\"quoted\\""]',
    ]);
    expect(unquote(lines[3]!.slice('ENV TRICKY='.length))).toBe('a "b" \\c $d ${e} ünï');
  });

  it('HEALTHCHECK NONE and exec-form checks', () => {
    expect(configInstructions({ Healthcheck: { Test: ['NONE'] } })).toEqual(['HEALTHCHECK NONE']);
    expect(configInstructions({ Healthcheck: { Test: ['CMD', '/probe', '-q'], Interval: 5e9 } })).toEqual([
      'HEALTHCHECK --interval=5s CMD ["/probe","-q"]',
    ]);
  });

  it('refuses what a Dockerfile cannot express, naming it', () => {
    const refuse = (config: Parameters<typeof configInstructions>[0], what: RegExp) => {
      try {
        configInstructions(config);
        expect.unreachable('should have refused');
      } catch (err) {
        expect(err).toBeInstanceOf(DeltaimgError);
        expect((err as DeltaimgError).code).toBe('DOCKER');
        expect((err as Error).message).toMatch(what);
      }
    };
    refuse({ Env: ['MULTI=line1\nline2'] }, /ENV MULTI holds a newline/);
    refuse({ Labels: { k: 'a\r\nb' } }, /label k holds a newline/);
    refuse({ Volumes: { '/data/$X': {} } }, /volume path .* holds a \$/);
    refuse({ Env: ['BAD KEY=1'] }, /environment variable name "BAD KEY"/);
    refuse({ ExposedPorts: { http: {} } }, /exposed port "http"/);
  });

  it('pickConfig drops empty fields so equal configs compare equal', () => {
    expect(pickConfig({ Env: null, Cmd: ['x'], WorkingDir: '', Labels: {}, Volumes: null, Hostname: 'h', Entrypoint: null })).toEqual({
      Cmd: ['x'],
    });
  });
});

describe('image references', () => {
  it('accepts names, tags, registries and digests', () => {
    for (const ok of ['app', 'app:1', 'localhost:5000/a/b:c', `app@sha256:${'0'.repeat(64)}`]) expect(imageRefToken(ok, 'image')).toBe(ok);
  });
  it('refuses ids, stage names and anything that would break the Dockerfile', () => {
    expect(() => imageRefToken(`sha256:${'f'.repeat(64)}`, 'base image')).toThrow(/looks like an image id; give it a name first/);
    expect(() => imageRefToken('0123456789ab', 'base image')).toThrow(/looks like an image id/);
    expect(() => imageRefToken('deltaimg-delta', 'base image')).toThrow(/name of a build stage/);
    expect(() => imageRefToken('app:1 AS x', 'base image')).toThrow(/is not an image reference/);
    expect(() => imageRefToken('app:1\nRUN x', 'base image')).toThrow(/is not an image reference/);
  });
  it('quoted() escapes exactly the three characters the builder unescapes', () => {
    expect(quoted('a"b\\c$d\'e`f', 'x')).toBe('"a\\"b\\\\c\\$d\'e`f"');
  });
});

describe('apply notes', () => {
  const meta = (sizes: { base?: number; target?: number }) =>
    readDeltaImage({
      ...A,
      ref: 'app:1-to-2',
      config: {
        Labels: labelsOf(
          diffDockerfile({
            base: { ...A, size: sizes.base },
            target: { ...B, size: sizes.target },
            runtimeImage: 'rt:1',
            linked: true,
            toolVersion: '1',
          }),
        ),
      },
    });

  it("the sizes recorded at diff time say what the flattened B' costs and what --layered keeps", () => {
    const m = meta({ base: 120_000_000, target: 121_000_000 });
    expect(m.base.size).toBe(120_000_000);
    expect(m.target.size).toBe(121_000_000);
    expect(storageNote(m, false)).toEqual([
      "B' is one flattened layer of 115 MiB (all of B), stored beside app:1's 114 MiB on disk and in a registry; --layered would keep those 114 MiB of app:1's layers shared and add only the changed files",
    ]);
    expect(storageNote(m, true)).toEqual(["B' is app:1's layers (114 MiB, shared, stored once) plus one layer of what B changes"]);
    // A delta image made before the size labels: no note, no error.
    expect(storageNote(meta({}), false)).toEqual([]);
  });

  it('names the Env order difference the builders impose, only when there is one', () => {
    expect(envOrderNote({ Env: ['APP_MODE=b', 'PATH=/x'] })).toEqual([
      "B' lists PATH first and the rest of B's environment in B's order (B has PATH at position 2): builders give a FROM scratch image PATH before any ENV",
    ]);
    expect(envOrderNote({ Env: ['PATH=/x', 'APP_MODE=b'] })).toEqual([]);
    expect(envOrderNote({})).toEqual([]);
  });
});
