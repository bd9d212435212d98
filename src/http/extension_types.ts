/**
 * Declared extension types on the wire. HTTP headers carry only strings, and
 * the CloudEvents type system gives every type a canonical string form, so a
 * declared `integer` or `boolean` extension is read from that form
 * (`"42"` -> 42, `"true"` -> true). Other forms (`"042"`, `"TRUE"`) stay
 * strings, and validation refuses them.
 *
 * @module
 */

import { type AttributeType, checkExtensionName } from "../attributes.ts";
import { excerpt, InvalidArgumentError } from "../errors.ts";

const ATTRIBUTE_TYPES: ReadonlySet<string> = new Set<AttributeType>([
  "boolean",
  "integer",
  "string",
  "binary",
  "uri",
  "uri-reference",
  "timestamp",
]);

// The canonical Integer string: the integer part of a JSON number (RFC 7159 §6).
const CANONICAL_INTEGER = /^-?(?:0|[1-9][0-9]{0,9})$/;

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

/** The declared extensions read from strings: those typed `integer` or `boolean`. */
export function convertibleExtensions(
  types: Record<string, AttributeType> | undefined,
): ReadonlyMap<string, "integer" | "boolean"> {
  const out = new Map<string, "integer" | "boolean">();
  for (const [name, type] of Object.entries(types ?? {})) {
    if (type === "integer" || type === "boolean") out.set(name, type);
  }
  return out;
}

/**
 * Replaces, in a wire object, the string values of declared `integer` and
 * `boolean` extensions that are in canonical form by their value. Anything
 * else is left for validation to judge.
 */
export function readCanonicalExtensions(
  wire: unknown,
  convertible: ReadonlyMap<string, "integer" | "boolean">,
): void {
  if (convertible.size === 0 || wire === null || typeof wire !== "object") return;
  const members = wire as Record<string, unknown>;
  for (const [name, type] of convertible) {
    if (!Object.hasOwn(members, name)) continue;
    const value = members[name];
    if (typeof value !== "string") continue;
    if (type === "boolean" && (value === "true" || value === "false")) {
      setMember(members, name, value === "true");
    } else if (type === "integer" && CANONICAL_INTEGER.test(value)) {
      setMember(members, name, Number(value));
    }
  }
}

function setMember(members: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(members, name, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}
