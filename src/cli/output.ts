/** What the verbs print on stdout. */

/** A --json report: indented, bigints as decimal strings. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
}
