/**
 * Reading outside JSON (headers of deltas and .dimg files) into typed values, field by field,
 * where it enters: each check names the file and the field (`images[0].target.layers`) in a
 * one-line error, so nothing past the edge casts or re-checks parsed JSON.
 */
import { DeltaimgError, type ErrorCode } from './errors.js';

export type JsonObject = Record<string, unknown>;

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class JsonFields {
  /**
   * @param file what the JSON is, as the user knows it (a path, `dimg.json in x.dimg`)
   * @param code the error code of a refusal (CORRUPT_DELTA, BAD_IMAGE, ...)
   * @param advice what to do, ending every message
   */
  constructor(
    readonly file: string,
    private readonly code: ErrorCode,
    private readonly advice: string,
  ) {}

  error(field: string, what: string): DeltaimgError {
    const at = field === '' ? '' : ` field ${field}`;
    return new DeltaimgError(this.code, `${this.file}:${at} ${what}; ${this.advice}`);
  }

  /** JSON.parse, refusing text that is not JSON. */
  parse(text: string): unknown {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new DeltaimgError(this.code, `${this.file} is not valid JSON; ${this.advice}`);
    }
  }

  object(v: unknown, field: string): JsonObject {
    if (!isJsonObject(v)) throw this.error(field, `is ${describe(v)}, not an object`);
    return v;
  }

  string(v: unknown, field: string, pattern?: RegExp): string {
    if (typeof v !== 'string') throw this.error(field, `is ${describe(v)}, not a string`);
    if (pattern && !pattern.test(v)) throw this.error(field, `is ${JSON.stringify(v.slice(0, 80))}, not of the expected form`);
    return v;
  }

  /** A non-negative integer JavaScript holds exactly (at most `max`). */
  uint(v: unknown, field: string, max = Number.MAX_SAFE_INTEGER): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) {
      throw this.error(field, `is ${describe(v)}, not an integer from 0 to ${max}`);
    }
    return v;
  }

  boolean(v: unknown, field: string): boolean {
    if (typeof v !== 'boolean') throw this.error(field, `is ${describe(v)}, not true or false`);
    return v;
  }

  oneOf<T extends string>(v: unknown, field: string, values: readonly T[]): T {
    const found = values.find((x) => x === v);
    if (found === undefined) throw this.error(field, `is ${describe(v)}, not one of ${values.join(', ')}`);
    return found;
  }

  array<T>(v: unknown, field: string, item: (x: unknown, field: string) => T): T[] {
    if (!Array.isArray(v)) throw this.error(field, `is ${describe(v)}, not an array`);
    return v.map((x, i) => item(x, `${field}[${i}]`));
  }

  /** `read(v)` when the field is present, else undefined. */
  optional<T>(v: unknown, field: string, read: (x: unknown, field: string) => T): T | undefined {
    return v === undefined ? undefined : read(v, field);
  }
}

/**
 * The version gate of a versioned header, checked before any other field (a newer format may
 * differ in all of them): `minReaderVersion`, an integer (`version` when absent), at most
 * `readable`. `subject` starts the refusal: "x.dimg uses image delta format".
 */
export function checkReaderVersion(
  f: JsonFields,
  h: JsonObject,
  readable: number,
  subject: string,
): { version: number; minReaderVersion: number } {
  const version = f.uint(h.version, 'version');
  const minReaderVersion = h.minReaderVersion === undefined ? version : f.uint(h.minReaderVersion, 'minReaderVersion');
  if (minReaderVersion > readable) {
    const tool = typeof h.tool === 'string' ? h.tool.slice(0, 80) : 'a newer deltaimg';
    throw new DeltaimgError(
      'UNSUPPORTED_VERSION',
      `${subject} v${minReaderVersion} (made by ${tool}); this deltaimg reads up to v${readable}: upgrade deltaimg to apply it`,
    );
  }
  return { version, minReaderVersion };
}

/** What a value is, briefly, for an error message (never the whole value: it may be huge or hostile). */
function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a ${v.length}-character string` : `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}
