/**
 * Text from plans and hosts (names, paths, messages a host wrote) made safe to print on a
 * terminal, in a CI log or in a step summary: every character that could move the cursor,
 * recolour, ring, end a line, reorder text (bidi controls) or start a GitHub workflow command is
 * shown as a visible escape instead (`\x1b`, `\u202e`, `:\x3a`). Our own colours are added after.
 */

/** C0 and C1 controls (tab and newline too: a name has none), DEL, bidi controls and marks, line and paragraph separators. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]/g;

/** One character as a visible escape: `\x1b`, `\u202e` (the HTML report's esc() uses it too). */
export const escape = (ch: string) => {
  const n = ch.codePointAt(0)!;
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
};

/** One piece of text as it may be printed: unsafe characters escaped, no `::` a runner could read as a command. */
export function shown(text: string): string {
  const t = String(text);
  // Most text is safe: test once, build a new string only when something must change.
  if (!RISKY.test(t)) return t;
  return t.replace(UNSAFE, escape).replace(/::/g, ':\\x3a');
}

/** Anything shown() would change (no g flag: test() keeps no state). */
const RISKY = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]|::/;

/** Several lines of our own text with values inside: each line made safe, the newlines between kept. */
export function shownLines(text: string): string {
  return String(text).split('\n').map(shown).join('\n');
}

/** Every string in a value (an event, a blueprint) made safe; numbers and structure unchanged. */
export function shownDeep<T>(value: T): T {
  if (typeof value === 'string') return shown(value) as T;
  if (Array.isArray(value)) return value.map((v) => shownDeep(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = shownDeep(v);
    return out as T;
  }
  return value;
}
