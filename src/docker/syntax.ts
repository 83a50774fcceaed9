/**
 * Writing values into a Dockerfile so the builder reads back exactly those bytes.
 *
 * - Exec form (RUN/CMD/ENTRYPOINT/SHELL/VOLUME ["a", "b"]) is a JSON array; if it does not
 *   parse, the builder silently falls back to shell form, so it is always JSON.stringify'd.
 * - Words of ENV/LABEL/USER/WORKDIR/STOPSIGNAL/EXPOSE go through the builder's shell-like lexer
 *   with variable expansion: inside double quotes only \" \\ and \$ are escapes, so those three are
 *   escaped and everything else is literal.
 * - A newline cannot be written inside any instruction: values holding one are refused.
 */
import { DeltaimgError } from '../util/errors.js';

/** A JSON array for exec-form instructions. */
export function execForm(args: readonly string[]): string {
  return JSON.stringify(args);
}

/** A double-quoted Dockerfile word holding `value` verbatim. `what` names it in errors. */
export function quoted(value: string, what: string): string {
  refuseNewlines(value, what);
  return `"${value.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
}

export function refuseNewlines(value: string, what: string): void {
  if (/[\r\n]/.test(value)) {
    throw new DeltaimgError('DOCKER', `${what} holds a newline, which a Dockerfile cannot express: ${JSON.stringify(value).slice(0, 120)}`);
  }
}

/** Stage names the generated Dockerfiles use; an image reference equal to one would be shadowed. */
export const STAGE_NAMES = ['deltaimg-delta', 'deltaimg-applied', 'deltaimg-fixup'] as const;

/**
 * Checks an image reference before it goes into FROM / COPY --from: name[:tag][@digest] with no
 * whitespace or quotes. Image ids are refused: BuildKit would look them up on Docker Hub.
 */
export function imageRefToken(ref: string, role: string): string {
  if (/^(sha256:)?[0-9a-f]{12,64}$/i.test(ref)) {
    throw new DeltaimgError(
      'USAGE',
      `${role} ${ref} looks like an image id; give it a name first (docker tag ${ref} NAME:TAG) and pass NAME:TAG`,
    );
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/.test(ref)) {
    throw new DeltaimgError('USAGE', `${role} ${JSON.stringify(ref)} is not an image reference (expected NAME[:TAG][@DIGEST])`);
  }
  if ((STAGE_NAMES as readonly string[]).includes(ref.toLowerCase())) {
    throw new DeltaimgError(
      'USAGE',
      `${role} ${ref} has the name of a build stage deltaimg uses; tag it differently (docker tag ${ref} ${ref}-image)`,
    );
  }
  return ref;
}
