/** Which words the image verbs take as a plain NAME:TAG of the local engine (image/ref.ts). */
import { describe, expect, it } from 'vitest';
import { isPlainImageName, parseImageRef } from '../../src/image/ref.js';

describe('isPlainImageName', () => {
  it.each([
    'app:1',
    'app:1-to-2',
    'library/debian:12.5',
    'registry.example/app:2',
    'localhost:5000/team/app:v1.2_rc',
    `app@sha256:${'a'.repeat(64)}`,
  ])('%s is a plain image name', (name) => expect(isPlainImageName(name)).toBe(true));

  it.each([
    'app', // no tag: more likely a file
    'b.tar',
    'App:1', // upper case repository
    'app:', // empty tag
    './app:1',
    '/tmp/app:1',
    'app:1 2',
    'localhost:5000/app', // a port, no tag
    `app@sha256:${'a'.repeat(63)}`,
  ])('%s is not', (name) => expect(isPlainImageName(name)).toBe(false));

  it('never shadows a transport: those parse as themselves', () => {
    for (const ref of ['docker-archive:a.tar', 'oci:dir:tag', 'docker-daemon:app:1']) {
      expect(() => parseImageRef(ref)).not.toThrow();
    }
  });
});
