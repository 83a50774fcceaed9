/** Types of elf-programs.mjs (plain JavaScript so that bench/ can import it). */
export type Arch = 'x86-64' | 'arm64';
export const COMPILERS: Readonly<Record<Arch, string>>;
/** Compiles both versions of the generated program for `arch` into `dir`: the two executables' paths. */
export function compiledPair(dir: string, arch: Arch): Promise<{ a: string; b: string }>;
