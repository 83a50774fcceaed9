/**
 * Small real executables for the executable-transform tests: one generated C program
 * compiled twice (version B moves a function to the other end of the file and changes
 * one line), for x86-64 and ARM64 with gcc or its cross compiler (installed by scripts/setup.sh),
 * built into the caller's directory. Plain JavaScript: the tests and bench/exe-transform.mjs
 * both use it.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** By target triplet, so either is found on an amd64 or an arm64 host (setup installs the cross one). */
export const COMPILERS = { 'x86-64': 'x86_64-linux-gnu-gcc', arm64: 'aarch64-linux-gnu-gcc' };

/** Enough functions calling each other that the code is tens of KiB, like a small tool. */
const FUNCTIONS = 400;
/** Small helpers every function calls, placed first, like a runtime's (Go's morestack, memmove). */
const HELPERS = 8;
const GROWN = 200;
const MOVED = 100;

/**
 * Version B grows one function in the middle (one changed line), so half the code shifts, and
 * moves another to the other end of the file: every call from the shifted code to the helpers
 * changes its rel32.
 */
/** @param {'a' | 'b'} version */
function program(version) {
  const helpers = Array.from(
    { length: HELPERS },
    (_, h) => `__attribute__((noinline)) long h${h}(long x) { return (x << ${h + 1}) ^ (x >> 3) ^ ${h * 977}; }\n`,
  ).join('');
  /** @param {number} i */
  const body = (i) => {
    const step = version === 'b' && i === GROWN ? 'x * 7 + h1(x) + h2(x ^ 5) + h3(x + 9)' : 'x * 5 + 3';
    const calls = [1, 31].map((d) => (i + d < FUNCTIONS ? `  if (x & ${1 << (i % 5)}) x += f${i + d}(x >> 1);\n` : '')).join('');
    const helperCalls = [0, 3, 5].map((d) => `  x += h${(i + d) % HELPERS}(x);\n`).join('');
    return `__attribute__((noinline)) long f${i}(long x) {\n  x = ${step};\n${helperCalls}${calls}  return x ^ ${i};\n}\n`;
  };
  const order = Array.from({ length: FUNCTIONS }, (_, i) => i);
  if (version === 'b') order.unshift(...order.splice(MOVED, 1));
  const decls = order.map((i) => `long f${i}(long x);\n`).join('');
  return `#include <stdio.h>\n${helpers}${decls}${order.map(body).join('')}int main(int argc, char **argv) {\n  printf("%ld\\n", f0(argc));\n  return 0;\n}\n`;
}

/**
 * Compiles both versions for `arch` into `dir`.
 * @param {string} dir
 * @param {'x86-64' | 'arm64'} arch
 * @returns {Promise<{ a: string, b: string }>}
 */
export async function compiledPair(dir, arch) {
  const out = { a: join(dir, `prog-${arch}-a`), b: join(dir, `prog-${arch}-b`) };
  for (const version of /** @type {const} */ (['a', 'b'])) {
    const src = join(dir, `prog-${arch}-${version}.c`);
    await writeFile(src, program(version));
    await run(COMPILERS[arch], ['-O2', '-o', out[version], src]);
  }
  return out;
}
