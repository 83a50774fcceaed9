/**
 * Who reads our stdout: `deltaimg dockerfile diff A B | DOCKER_BUILDKIT=1 docker build -` sets
 * the variable for docker alone, so our own environment does not say which builder will run the
 * Dockerfile. On Linux, the process whose stdin is the pipe our stdout writes to is visible in
 * /proc (same user): its command line and environment are what the build will use.
 */
import { readFile, readdir, readlink } from 'node:fs/promises';

export interface PipeReader {
  pid: number;
  /** The executable, resolved (/proc/PID/exe), when readable. */
  exe?: string;
  argv: string[];
  env: Record<string, string>;
}

/**
 * The process reading our stdout through a pipe, or undefined when stdout is not a pipe, the
 * reader is not visible (another user, no /proc) or it has not started yet.
 */
export async function findPipeReader(): Promise<PipeReader | undefined> {
  const ours = await readlink('/proc/self/fd/1').catch(() => undefined);
  if (!ours?.startsWith('pipe:')) return undefined;
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid);
  const readers: number[] = [];
  await Promise.all(
    pids.map(async (pid) => {
      if ((await readlink(`/proc/${pid}/fd/0`).catch(() => undefined)) === ours) readers.push(Number(pid));
    }),
  );
  // Several readers (a subshell that forked the reader and waits): the one started last has exec'd.
  const pid = readers.sort((x, y) => y - x)[0];
  if (pid === undefined) return undefined;
  const [cmdline, environ, exe] = await Promise.all([
    readFile(`/proc/${pid}/cmdline`).catch(() => undefined),
    readFile(`/proc/${pid}/environ`).catch(() => undefined),
    readlink(`/proc/${pid}/exe`).catch(() => undefined),
  ]);
  if (!cmdline) return undefined;
  const env: Record<string, string> = {};
  for (const pair of nulSeparated(environ)) {
    const eq = pair.indexOf('=');
    if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return { pid, argv: nulSeparated(cmdline), env, ...(exe ? { exe } : {}) };
}

function nulSeparated(buf: Buffer | undefined): string[] {
  if (!buf) return [];
  return buf
    .toString('utf8')
    .split('\0')
    .filter((s, i, all) => s !== '' || i < all.length - 1);
}
