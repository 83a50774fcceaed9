/**
 * The refusal every bad-input test of a tree apply expects: a DeltaimgError with the given code,
 * one line, OUT not created, and no temporary or scratch directory left beside it in `parent`.
 */
import { readdir } from 'node:fs/promises';
import { expect } from 'vitest';
import { DeltaimgError } from '../../src/util/errors.js';

export async function expectApplyRefused(
  promise: Promise<unknown>,
  code: DeltaimgError['code'],
  out: string,
  parent: string,
): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeltaimgError);
  expect((err as DeltaimgError).code).toBe(code);
  expect((err as Error).message).not.toContain('\n');
  await expect(readdir(out)).rejects.toThrow();
  const leftovers = (await readdir(parent)).filter((n) => n.includes('deltaimg-tmp') || n.includes('deltaimg-scratch'));
  expect(leftovers).toEqual([]);
  return (err as Error).message;
}
