/**
 * Text from outside (header strings, paths) made safe to print on a terminal: control
 * characters (C0, DEL, C1) become \xNN escapes, so a crafted header cannot move the cursor,
 * retitle the window or hide lines with ESC sequences. Everything else prints as is.
 */
export function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
