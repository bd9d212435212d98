/**
 * The HTTP binary content mode: event attributes travel as `ce-*` headers
 * (percent-encoded, as CloudEvents HTTP binding v1.0.2 §3.1.3.2 requires),
 * `datacontenttype` as `Content-Type`, and the data as the body.
 *
 * @module
 */

import { excerpt, InvalidArgumentError, ValidationError, type ValidationIssue } from "../errors.ts";
import type { CloudEvent } from "../event.ts";
import { ATTRIBUTE_HEADER_PREFIX } from "./constants.ts";
import { isJsonMediaType, isTextMediaType, isUtf8Charset, parseMediaType } from "./media_type.ts";

const CORE_HEADER_ATTRIBUTES = [
  "specversion",
  "id",
  "source",
  "type",
  "subject",
  "time",
  "dataschema",
];
// Attributes that must never arrive as ce-* headers: datacontenttype rides on
// Content-Type, and "data" would smuggle a payload past the body.
const FORBIDDEN_HEADER_ATTRIBUTES = new Set(["datacontenttype", "data", "data_base64"]);

const utf8 = new TextEncoder();

/**
 * Percent-encodes a header value: space, `"`, `%` and everything outside
 * printable ASCII, as UTF-8 bytes.
 */
export function encodeHeaderValue(text: string): string {
  let out = "";
  for (const char of text) {
    const code = char.codePointAt(0) as number;
    if (code > 0x20 && code < 0x7f && code !== 0x22 && code !== 0x25) {
      out += char;
      continue;
    }
    for (const byte of utf8.encode(char)) {
      out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    }
  }
  return out;
}

/** True when the request carries at least one `ce-*` header: it claims binary mode. */
export function hasAttributeHeaders(headers: Headers): boolean {
  for (const name of headers.keys()) {
    if (name.startsWith(ATTRIBUTE_HEADER_PREFIX)) return true;
  }
  return false;
}

// What a header value may hold: visible ASCII, Latin-1 text, space and tab.
const HEADER_TEXT = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The `ce-*` headers and `Content-Type` of an event in binary mode. Throws
 * {@linkcode InvalidArgumentError} when `datacontenttype` cannot be a
 * `Content-Type` (a repeated parameter, characters no header carries): such
 * an event travels in structured mode.
 */
export function binaryHeaders(event: CloudEvent): Headers {
  const headers = new Headers();
  const attributes = event as unknown as Record<string, unknown>;
  for (const name of CORE_HEADER_ATTRIBUTES) {
    const value = attributes[name];
    if (value !== undefined) {
      headers.set(ATTRIBUTE_HEADER_PREFIX + name, encodeHeaderValue(String(value)));
    }
  }
  for (const [name, value] of Object.entries(event.extensions)) {
    headers.set(ATTRIBUTE_HEADER_PREFIX + name, encodeHeaderValue(String(value)));
  }
  const contentType = event.datacontenttype ?? defaultContentType(event.data);
  if (contentType !== undefined) headers.set("content-type", checkContentType(contentType));
  return headers;
}

function checkContentType(contentType: string): string {
  const repeated = parseMediaType(contentType)?.repeated;
  const problem = repeated !== undefined
    ? `repeats the parameter ${excerpt(repeated)}`
    : HEADER_TEXT.test(contentType)
    ? undefined
    : "holds characters an HTTP header cannot carry";
  if (problem === undefined) return contentType;
  throw new InvalidArgumentError(
    "event",
    `datacontenttype ${excerpt(contentType)} ${problem}, so it cannot be the Content-Type ` +
      'of binary mode; send this event with mode: "structured"',
  );
}

function defaultContentType(data: unknown): string | undefined {
  if (data === undefined) return undefined;
  if (data instanceof Uint8Array) return "application/octet-stream";
  return "application/json";
}

/**
 * The body of an event in binary mode: bytes as they are, text as text for a
 * non-JSON media type, anything else as JSON.
 */
export function binaryBody(event: CloudEvent): Uint8Array | string | null {
  const data = event.data;
  if (data === undefined) return null;
  if (data instanceof Uint8Array) return data;
  const type = parseMediaType(event.datacontenttype);
  if (typeof data === "string" && type !== undefined && !isJsonMediaType(type.essence)) return data;
  return JSON.stringify(data);
}

/**
 * Rebuilds the JSON-format object of a binary-mode request, ready for
 * `CloudEvent.fromJSON`. Throws {@linkcode ValidationError} naming the
 * attribute for a badly encoded header, a forbidden one, or a body that does
 * not match its JSON media type.
 */
export function wireFromBinary(headers: Headers, body: Uint8Array): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  const issues: ValidationIssue[] = [];
  for (const [name, value] of headers) {
    if (!name.startsWith(ATTRIBUTE_HEADER_PREFIX)) continue;
    const attribute = name.slice(ATTRIBUTE_HEADER_PREFIX.length);
    if (FORBIDDEN_HEADER_ATTRIBUTES.has(attribute)) {
      issues.push({
        path: attribute,
        message: attribute === "datacontenttype"
          ? "must travel as Content-Type in binary mode, not as a ce- header"
          : "cannot be sent as a ce- header; the data is the request body",
      });
      continue;
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(value);
    } catch {
      issues.push({
        path: excerpt(attribute).slice(1, -1),
        message: "its header is not valid percent-encoded UTF-8",
      });
      continue;
    }
    // defineProperty keeps names like "__proto__" as plain own data.
    Object.defineProperty(wire, attribute, {
      value: decoded,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  const contentType = headers.get("content-type");
  const type = parseMediaType(contentType);
  if (type?.repeated !== undefined) {
    issues.push({
      path: "datacontenttype",
      message: `Content-Type repeats the parameter ${excerpt(type.repeated)}`,
    });
  }
  if (contentType !== null) wire.datacontenttype = contentType;
  if (body.byteLength > 0) {
    if (type === undefined || !isTextMediaType(type.essence) || !isUtf8Charset(type)) {
      wire.data = body;
    } else {
      let text: string | undefined;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(body);
      } catch {
        issues.push({ path: "data", message: `is not valid UTF-8 text (${type.essence})` });
      }
      if (text !== undefined && isJsonMediaType(type.essence)) {
        try {
          wire.data = JSON.parse(text);
        } catch (error) {
          issues.push({
            path: "data",
            message: `is not valid JSON for Content-Type ${type.essence} (${
              error instanceof Error ? error.message.slice(0, 80) : "parse error"
            })`,
          });
        }
      } else if (text !== undefined) {
        wire.data = text;
      }
    }
  }
  if (issues.length > 0) throw new ValidationError(issues, { context: "binary-mode CloudEvent" });
  return wire;
}
