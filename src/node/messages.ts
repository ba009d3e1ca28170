// Messages for the terminal: every error the CLI prints is one line, with whatever came from a
// file (a tensor name, a PNG chunk type, a decoder's message) made harmless to print.

/** Control characters (C0, DEL, C1), line / paragraph separators and bidi overrides. */
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** The message on one line: line breaks folded into one space, other control characters as \xNN / \uNNNN. */
export function oneLine(message: string): string {
  return message
    .replace(/\s*[\r\n]+\s*/g, ' ')
    .trim()
    .replace(UNPRINTABLE, (c) => {
      const code = c.charCodeAt(0);
      return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    });
}

/** The errno code of a Node file-system error (ENOSPC, EACCES, ...), else its message. */
export function errorCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
}
