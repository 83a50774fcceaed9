/** What the verbs print on stdout. */

/** A --json report: indented, bigints as decimal strings; on stdout unless stdout carries data. */
export function printJson(value: unknown, stream: NodeJS.WritableStream = process.stdout): void {
  stream.write(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
}
