/**
 * `docker image inspect` output and a delta image's config label are outside data: each field
 * deltaimg keeps is checked for its type, and a wrong one is a one-line error naming it, never
 * a TypeError later (`config.Env.map is not a function`).
 */
import { describe, expect, it } from 'vitest';
import { imageInfoFromInspect, pickConfig } from '../../src/docker/image.js';
import { DeltaimgError } from '../../src/util/errors.js';

const ID = `sha256:${'a'.repeat(64)}`;
const good = {
  Id: ID,
  Os: 'linux',
  Architecture: 'amd64',
  RootFS: { Type: 'layers', Layers: [ID] },
  Config: { Env: ['A=1'], Cmd: ['sh'], Labels: { x: 'y' }, Healthcheck: { Test: ['CMD', 'true'], Interval: 5e9 } },
};

describe('docker image inspect, validated where it enters', () => {
  it('keeps the fields of a well-formed inspect', () => {
    expect(imageInfoFromInspect('app:1', good)).toMatchObject({
      ref: 'app:1',
      id: ID,
      os: 'linux',
      architecture: 'amd64',
      layers: [ID],
      config: { Env: ['A=1'], Cmd: ['sh'], Labels: { x: 'y' }, Healthcheck: { Test: ['CMD', 'true'], Interval: 5e9 } },
    });
  });

  const cases: [string, unknown, RegExp][] = [
    [
      'Env a string',
      { ...good, Config: { Env: 'A=1' } },
      /docker image inspect app:1: field Config\.Env is the string "A=1", not an array/,
    ],
    ['a label value a number', { ...good, Config: { Labels: { x: 1 } } }, /field Config\.Labels\["x"\] is the number 1, not a string/],
    ['Id not a digest', { ...good, Id: 'abc' }, /field Id is "abc", not of the expected form/],
    ['RootFS.Layers an object', { ...good, RootFS: { Layers: {} } }, /field RootFS\.Layers is an object, not an array/],
    [
      'Healthcheck.Retries negative',
      { ...good, Config: { Healthcheck: { Retries: -1 } } },
      /field Config\.Healthcheck\.Retries is the number -1/,
    ],
    ['the element not an object', 'text', /docker image inspect app:1: is the string "text", not an object/],
  ];
  for (const [name, raw, message] of cases) {
    it(name, () => {
      let err: unknown;
      try {
        imageInfoFromInspect('app:1', raw);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DeltaimgError);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('pickConfig drops empty fields and unknown ones, as before', () => {
    expect(
      pickConfig({ Env: null, Cmd: ['x'], WorkingDir: '', Labels: {}, Volumes: null, Hostname: 'h', Entrypoint: null, Healthcheck: {} }),
    ).toEqual({ Cmd: ['x'] });
  });
});
