/**
 * The CloudEvents v1.0.2 type system for context attributes: each check
 * returns `undefined` when the value is valid, else a readable message.
 *
 * @module
 */

import { isBase64 } from "./base64.ts";
import { excerpt, InvalidArgumentError } from "./errors.ts";

/** Types an extension attribute can be declared with (CloudEvents "Type System"). */
export type AttributeType =
  | "boolean"
  | "integer"
  | "string"
  | "binary"
  | "uri"
  | "uri-reference"
  | "timestamp";

/**
 * Longest string an attribute may hold. The spec asks intermediaries to accept
 * whole events of at least 64 KiB, so a single attribute above that is a
 * mistake, and refusing it early keeps hostile input from costing much.
 */
export const MAX_ATTRIBUTE_LENGTH = 65_536;

/**
 * Longest extension name accepted. The spec says names SHOULD NOT exceed 20
 * characters; a generous bound still refuses names that are really payloads.
 */
export const MAX_EXTENSION_NAME_LENGTH = 256;

/** Names of the attributes the spec defines; extensions may not reuse them. */
export const CORE_ATTRIBUTES: ReadonlySet<string> = new Set([
  "specversion",
  "id",
  "source",
  "type",
  "datacontenttype",
  "dataschema",
  "subject",
  "time",
  "data",
  "data_base64",
]);

const EXTENSION_NAME = /^[a-z0-9]+$/;
// Control characters (C0, DEL, C1: exactly \p{Cc}) and noncharacters
// (U+FDD0-U+FDEF, U+xFFFE, U+xFFFF) are not "allowable Unicode characters".
const CONTROL = /\p{Cc}/u;
const NONCHARACTER = /\p{Noncharacter_Code_Point}/u;
// RFC 3986 characters, with percent signs checked separately.
const URI_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/;
const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const FIRST_SEGMENT_COLON = /^[^/?#]*:/;
// RFC 3339 date-time; the numeric ranges are checked after the match.
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const MEDIA_TYPE = new RegExp(
  `^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|"(?:[^"\\\\]|\\\\.)*"))*[ \\t]*$`,
);
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** Checks a CloudEvents String: allowable Unicode, no control characters, bounded. */
export function checkString(value: unknown): string | undefined {
  if (typeof value !== "string") return `must be a string, got ${describeType(value)}`;
  if (value.length > MAX_ATTRIBUTE_LENGTH) {
    return `is ${value.length} characters long; the limit is ${MAX_ATTRIBUTE_LENGTH}`;
  }
  if (!value.isWellFormed()) return "contains a lone surrogate (not valid Unicode)";
  if (CONTROL.test(value)) return "contains a control character";
  if (NONCHARACTER.test(value)) return "contains a Unicode noncharacter";
  return undefined;
}

/** Checks a required String attribute: a string, and not empty. */
export function checkNonEmptyString(value: unknown): string | undefined {
  const problem = checkString(value);
  if (problem) return problem;
  return value === "" ? "must be a non-empty string" : undefined;
}

/** Checks a URI-reference (RFC 3986), relative or absolute. */
export function checkUriReference(value: unknown): string | undefined {
  const problem = checkNonEmptyString(value);
  if (problem) return problem;
  const text = value as string;
  if (!URI_CHARS.test(text) || BAD_PERCENT.test(text)) {
    return "must be a URI-reference (RFC 3986): contains characters that must be percent-encoded";
  }
  // A relative reference may not have a colon in its first path segment.
  if (!SCHEME.test(text) && FIRST_SEGMENT_COLON.test(text)) {
    return "must be a URI-reference (RFC 3986): the scheme is malformed";
  }
  return undefined;
}

/** Checks an absolute URI (RFC 3986): a URI-reference with a scheme. */
export function checkAbsoluteUri(value: unknown): string | undefined {
  const problem = checkUriReference(value);
  if (problem) return problem;
  return SCHEME.test(value as string) ? undefined : "must be an absolute URI with a scheme";
}

/** Checks an RFC 3339 timestamp, including the ranges of each field. */
export function checkTimestamp(value: unknown): string | undefined {
  const problem = checkNonEmptyString(value);
  if (problem) return problem;
  const match = RFC3339.exec(value as string);
  if (!match) return "must be an RFC 3339 timestamp such as 2024-01-31T12:00:00Z";
  const [, y, mo, d, h, mi, s, , , oh, om] = match;
  const year = Number(y), month = Number(mo), day = Number(d);
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  const lastDay = new Date(0);
  lastDay.setUTCFullYear(year, month, 0);
  const daysInMonth = lastDay.getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) {
    return "must be an RFC 3339 timestamp: the date does not exist";
  }
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) {
    return "must be an RFC 3339 timestamp: the time of day is out of range";
  }
  if (oh !== undefined && (Number(oh) > 23 || Number(om) > 59)) {
    return "must be an RFC 3339 timestamp: the offset is out of range";
  }
  return undefined;
}

/** Checks an RFC 2046 media type such as `application/json; charset=utf-8`. */
export function checkMediaType(value: unknown): string | undefined {
  const problem = checkNonEmptyString(value);
  if (problem) return problem;
  return MEDIA_TYPE.test(value as string)
    ? undefined
    : "must be an RFC 2046 media type such as application/json";
}

/** Checks an extension attribute name: lower-case letters and digits, not a core name. */
export function checkExtensionName(name: string): string | undefined {
  if (name.length > MAX_EXTENSION_NAME_LENGTH) {
    return `is not a valid extension name: ${name.length} characters long; the limit is ${MAX_EXTENSION_NAME_LENGTH}`;
  }
  if (!EXTENSION_NAME.test(name)) {
    return "is not a valid extension name: use only lower-case letters a-z and digits 0-9";
  }
  if (CORE_ATTRIBUTES.has(name)) return "is a core attribute and cannot be an extension";
  return undefined;
}

/**
 * Checks an extension value: boolean, 32-bit integer or string; when a type is
 * declared, also the canonical string form of that type.
 */
export function checkExtensionValue(value: unknown, type?: AttributeType): string | undefined {
  switch (type) {
    case "boolean":
      return typeof value === "boolean" ? undefined : "must be a boolean";
    case "integer":
      return checkInteger(value);
    case "string":
      return checkString(value);
    case "binary": {
      const problem = checkString(value);
      if (problem) return problem;
      return isBase64(value as string) ? undefined : "must be base64-encoded binary";
    }
    case "uri":
      return checkAbsoluteUri(value);
    case "uri-reference":
      return checkUriReference(value);
    case "timestamp":
      return checkTimestamp(value);
  }
  if (typeof value === "boolean") return undefined;
  if (typeof value === "number") return checkInteger(value);
  if (typeof value === "string") return checkString(value);
  return `must be a boolean, a 32-bit integer or a string, got ${describeType(value)}`;
}

function checkInteger(value: unknown): string | undefined {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    return `must be an integer, got ${describeType(value)}`;
  }
  return value < INT32_MIN || value > INT32_MAX
    ? "is out of the 32-bit signed integer range"
    : undefined;
}

/** Names a value's JSON type for messages. */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number" && !Number.isInteger(value)) return "a non-integer number";
  if (typeof value !== "object") return `a ${typeof value}`;
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) return "an object";
  const name = typeof proto?.constructor?.name === "string" ? proto.constructor.name : "";
  return /^[A-Za-z_$][\w$]{0,40}$/.test(name) ? `a ${name}` : "an object";
}

/** Tells whether a media type carries JSON (`application/json`, `*+json`, or absent). */
export function isJsonMediaType(value: string | undefined): boolean {
  if (value === undefined) return true;
  const essence = value.split(";", 1)[0].trim().toLowerCase();
  return essence === "application/json" || essence === "text/json" || essence.endsWith("+json");
}

/** Every attribute type an `extensionTypes` option may name. */
const ATTRIBUTE_TYPES: ReadonlySet<string> = new Set<AttributeType>([
  "boolean",
  "integer",
  "string",
  "binary",
  "uri",
  "uri-reference",
  "timestamp",
]);

/** Checks the `extensionTypes` option: a plain object of attribute type names. */
export function checkExtensionTypes(value: unknown): Record<string, AttributeType> | undefined {
  if (value === undefined) return undefined;
  const proto = value !== null && typeof value === "object" ? Object.getPrototypeOf(value) : 0;
  if (proto !== Object.prototype && proto !== null) {
    throw new InvalidArgumentError(
      "extensionTypes",
      `must be an object such as { sent: "timestamp" }, got ${excerpt(value)}`,
    );
  }
  for (const [name, type] of Object.entries(value as Record<string, unknown>)) {
    const badName = checkExtensionName(name);
    if (badName) throw new InvalidArgumentError("extensionTypes", `${excerpt(name)} ${badName}`);
    if (typeof type !== "string" || !ATTRIBUTE_TYPES.has(type)) {
      throw new InvalidArgumentError(
        `extensionTypes.${excerpt(name).slice(1, -1)}`,
        `must be one of ${[...ATTRIBUTE_TYPES].join(", ")}, got ${excerpt(type)}`,
      );
    }
  }
  return value as Record<string, AttributeType>;
}
