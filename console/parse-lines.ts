/** Parsing of the connect form's multi-line fields. Pure: unit-tested without a browser. */

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** `key=value` per line; blank lines are skipped; the value may contain `=`. */
export function parseTagLines(text: string): Parsed<Record<string, string>> {
  const tags: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    const eq = line.indexOf("=");
    if (eq <= 0) return { ok: false, error: `tags, line ${i + 1}: expected key=value, got ${JSON.stringify(line)}` };
    const key = line.slice(0, eq).trim();
    if (key === "") return { ok: false, error: `tags, line ${i + 1}: the key is empty` };
    if (Object.hasOwn(tags, key)) return { ok: false, error: `tags, line ${i + 1}: ${key} is given twice` };
    tags[key] = line.slice(eq + 1).trim();
  }
  return { ok: true, value: tags };
}

/** One message per non-blank line, as typed (not trimmed inside: whitespace can matter). */
export function parseMessageLines(text: string): string[] {
  return text.split(/\r?\n/).filter((line) => line.trim() !== "");
}
