/**
 * The compressors real streams come from, run as real programs: GNU gzip, pigz, Python's zlib
 * (the system zlib), and Go's compress/gzip (a tiny program compiled once per test process,
 * the deflater `docker push` and BuildKit use).
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let goGzipBinary: Promise<string> | undefined;

const GO_GZIP = `package main

import (
	"compress/gzip"
	"io"
	"os"
	"strconv"
)

func main() {
	level, err := strconv.Atoi(os.Args[1])
	if err != nil {
		panic(err)
	}
	w, err := gzip.NewWriterLevel(os.Stdout, level)
	if err != nil {
		panic(err)
	}
	if _, err := io.Copy(w, os.Stdin); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
}
`;

/** Builds the Go gzip program once; Go's levels: -1 default (6), 1 BestSpeed, 9 BestCompression, -2 Huffman only. */
export function goGzipPath(): Promise<string> {
  goGzipBinary ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'deltaimg-gogzip-'));
    await writeFile(join(dir, 'main.go'), GO_GZIP);
    await writeFile(join(dir, 'go.mod'), 'module gogzip\n\ngo 1.19\n');
    const cache = join(tmpdir(), 'deltaimg-go-cache');
    await mkdir(cache, { recursive: true });
    await execa('go', ['build', '-o', 'gogzip', '.'], { cwd: dir, env: { GOCACHE: cache, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' } });
    return join(dir, 'gogzip');
  })();
  return goGzipBinary;
}

/** Go's compress/gzip output of a file. */
export async function goGzipFile(input: string, output: string, level: number): Promise<void> {
  await execa(await goGzipPath(), [String(level)], { inputFile: input, stdout: { file: output } });
}

export async function gnuGzipFile(input: string, output: string, args: string[]): Promise<void> {
  await execa('gzip', [...args, '-c', input], { stdout: { file: output } });
}

export async function pigzFile(input: string, output: string, args: string[]): Promise<void> {
  await execa('pigz', [...args, '-c', input], { stdout: { file: output } });
}

/** Python's zlib (the system libz, not Node's bundled one): wbits 31 gzip, 15 zlib, -15 raw. */
export async function pythonZlibFile(
  input: string,
  output: string,
  level: number,
  wbits: number,
  strategy = 0,
  memLevel = 8,
): Promise<void> {
  const script = `import sys, zlib
data = open(sys.argv[1], 'rb').read()
c = zlib.compressobj(${level}, zlib.DEFLATED, ${wbits}, ${memLevel}, ${strategy})
open(sys.argv[2], 'wb').write(c.compress(data) + c.flush())`;
  await execa('python3', ['-c', script, input, output]);
}

export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}
