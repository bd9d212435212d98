/**
 * Reading the `Content-Type` header: its essence (type/subtype, lowercased)
 * and its parameters, and the families of media types the HTTP binding cares
 * about.
 *
 * @module
 */

/** A parsed media type. */
export interface MediaType {
  /** `type/subtype`, lowercased, e.g. `"application/cloudevents+json"`. */
  readonly essence: string;
  /** Parameters with lowercased names, e.g. `{ charset: "utf-8" }`; the first of a repeated name. */
  readonly parameters: Readonly<Record<string, string>>;
  /**
   * The first parameter name given twice (names are case-insensitive, RFC
   * 9110 §8.3.1), which makes the media type malformed; else `undefined`.
   */
  readonly repeated: string | undefined;
}

const ESSENCE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/;

/** Parses a `Content-Type` value; `undefined` when absent or not `type/subtype`. */
export function parseMediaType(value: string | null | undefined): MediaType | undefined {
  if (!value) return undefined;
  const [head, ...rest] = value.split(";");
  const essence = head.trim().toLowerCase();
  if (!ESSENCE.test(essence)) return undefined;
  // No prototype: a parameter named "__proto__" stays plain data.
  const parameters: Record<string, string> = Object.create(null);
  let repeated: string | undefined;
  for (const part of rest) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    if (Object.hasOwn(parameters, name)) {
      repeated ??= name;
      continue;
    }
    const raw = part.slice(eq + 1).trim();
    // Quoted strings are rare here (charset); strip the quotes, keep the text.
    parameters[name] = raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2
      ? raw.slice(1, -1)
      : raw;
  }
  return { essence, parameters, repeated };
}

/** `application/json`, `text/json` and any `+json` suffix. */
export function isJsonMediaType(essence: string): boolean {
  return essence === "application/json" || essence === "text/json" || essence.endsWith("+json");
}

/** Media types whose body is text: `text/*`, XML, and the JSON family. */
export function isTextMediaType(essence: string): boolean {
  return essence.startsWith("text/") || essence === "application/xml" ||
    essence.endsWith("+xml") || isJsonMediaType(essence);
}

/** True when the charset parameter is absent or UTF-8 (the only one JSON allows). */
export function isUtf8Charset(type: MediaType): boolean {
  const charset = type.parameters.charset;
  return charset === undefined || /^utf-?8$/i.test(charset);
}
