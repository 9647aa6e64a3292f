// Helpers for error messages and log lines (internal). Messages read
// "Cannot X because Y. Do Z.": one line, one full stop per sentence, and
// nothing a caller typed can break out of its quotes or start a new line.

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators:
// everything a terminal or log viewer may treat as a line break or escape.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

function escapeControls(text: string): string {
  return text.replace(CONTROL, (c) => {
    switch (c) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    }
  });
}

/**
 * Quotes a value a caller supplied (an id, a host, a flag, a path) for an
 * error message: in double quotes, with backslashes, quotes and control
 * characters escaped, cut to `max` characters. An id holding a newline
 * comes out as `"a\nb"`, on the same line.
 */
export function quoteInput(value: unknown, max = 70): string {
  const text = typeof value === 'string' ? value : String(value);
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return `"${escapeControls(cut.replace(/\\/g, '\\\\').replace(/"/g, '\\"'))}"`;
}

/**
 * Like {@link quoteInput} for a value of any type a caller configured: a
 * string is quoted, anything else shown as JSON (`12`, `true`, `["a"]`),
 * with control characters escaped and cut to `max` characters.
 */
export function quoteValue(value: unknown, max = 70): string {
  if (typeof value === 'string') return quoteInput(value, max);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return escapeControls(text.length > max ? `${text.slice(0, max)}…` : text);
}

/**
 * A message (or an underlying error's message) as one clause to embed in
 * another sentence: on one line (controls escaped), without its trailing
 * full stops, so "because ${clause(m)}." ends with exactly one.
 */
export function clause(message: string): string {
  return escapeControls(message.trim()).replace(/[.\s]+$/, '');
}

/**
 * The message of an error from Node or PostgreSQL with its code once:
 * `ENOENT: no such file …` stays as is (Node already starts with the code),
 * `42P01` errors get `42P01: ` in front.
 */
export function messageWithCode(error: unknown): string {
  if (!(error instanceof Error) && (typeof error !== 'object' || error === null)) {
    return clause(String(error));
  }
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = clause(typeof message === 'string' && message !== '' ? message : String(error));
  if (
    typeof code !== 'string' ||
    code === '' ||
    text.startsWith(`${code}:`) ||
    text.startsWith(`${code} `)
  ) {
    return text;
  }
  return `${code}: ${text}`;
}
