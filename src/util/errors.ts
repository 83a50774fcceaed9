/**
 * Every failure a user can cause (bad input, wrong base, damaged delta, hostile path)
 * is a DeltaimgError: the CLI prints its message as one line and exits non-zero.
 * Anything else escaping to the CLI is a bug and is printed with its stack.
 */
export type ErrorCode =
  | 'USAGE'
  | 'IO'
  | 'CORRUPT_DELTA'
  | 'WRONG_SOURCE'
  | 'UNSUPPORTED_VERSION'
  | 'HOSTILE_PATH'
  | 'VERIFY_FAILED'
  | 'DOCKER'
  | 'BAD_IMAGE'
  /** The input is well-formed but asks for what a policy flag (e.g. --no-devices) refuses. */
  | 'POLICY'
  /** A registry refused, failed or could not be reached (auth, TLS, 404, 5xx after retries). */
  | 'REGISTRY'
  | 'INSTALL'
  | 'INTERNAL';

export class DeltaimgError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeltaimgError';
    this.code = code;
  }
}

export function isDeltaimgError(err: unknown): err is DeltaimgError {
  return err instanceof DeltaimgError;
}

/** Turns an fs error into a one-line message naming the path and the errno. */
export function ioError(action: string, path: string, err: unknown): DeltaimgError {
  const e = err as NodeJS.ErrnoException;
  const why = e?.code ? `${e.code}${e.message ? `: ${e.message.replace(/^[A-Z]+: /, '')}` : ''}` : String(err);
  return new DeltaimgError('IO', `cannot ${action} ${path}: ${why}`, { cause: err });
}
