/**
 * What `defineEvent` needs to know about a zod schema: that it is a zod 4
 * schema, and whether parsing it can be led by the data into recursion or
 * into code of the application (see {@linkcode isBoundedSchema}).
 *
 * @module
 */

import type { z } from "zod";

/** Tells whether a value is a zod 4 schema: zod 3 schemas have no `_zod`. */
export function isZodSchema(value: unknown): value is z.ZodType {
  return value !== null && typeof value === "object" && "_zod" in value &&
    typeof (value as { safeParse?: unknown }).safeParse === "function";
}

/** Schema types that parse their own structure only, running no function of the application. */
const LEAF_TYPES: ReadonlySet<string> = new Set([
  "string",
  "number",
  "int",
  "boolean",
  "bigint",
  "symbol",
  "null",
  "undefined",
  "void",
  "never",
  "any",
  "unknown",
  "date",
  "enum",
  "literal",
  "nan",
  "template_literal",
]);

/** Checks that only compare or measure the value. */
const PURE_CHECKS: ReadonlySet<string> = new Set([
  "less_than",
  "greater_than",
  "multiple_of",
  "number_format",
  "bigint_format",
  "max_size",
  "min_size",
  "size_equals",
  "max_length",
  "min_length",
  "length_equals",
  "string_format",
  "mime_type",
]);

/** The parts of a zod 4 schema definition read here. */
interface SchemaDef {
  type?: unknown;
  checks?: unknown;
  shape?: unknown;
  catchall?: unknown;
  element?: unknown;
  items?: unknown;
  rest?: unknown;
  options?: unknown;
  left?: unknown;
  right?: unknown;
  keyType?: unknown;
  valueType?: unknown;
  innerType?: unknown;
  in?: unknown;
  out?: unknown;
  transform?: unknown;
}

/**
 * Tells whether parsing `schema` can only go as deep as the schema itself
 * and runs no function of the application: no `z.lazy` or other recursion,
 * no transform, refinement, `catch` or custom check, and only schema types
 * known here. Data nested deeper than the schema is then never walked by
 * zod, so it needs no depth check before parsing. Anything unknown counts as
 * unbounded, which only costs that check.
 */
export function isBoundedSchema(schema: unknown): boolean {
  try {
    return bounded(schema, new Set(), new Set());
  } catch {
    // A shape getter that throws, say: the schema gets the full check.
    return false;
  }
}

function bounded(schema: unknown, path: Set<object>, done: Set<object>): boolean {
  if (schema === null || typeof schema !== "object") return schema === undefined;
  if (done.has(schema)) return true;
  // Met again below itself: the schema recurses.
  if (path.has(schema)) return false;
  const def = (schema as { _zod?: { def?: SchemaDef } })._zod?.def;
  if (def === undefined || typeof def.type !== "string" || !pureChecks(def.checks)) return false;
  path.add(schema);
  const ok = LEAF_TYPES.has(def.type) ||
    childrenOf(def)?.every((child) => bounded(child, path, done)) === true;
  path.delete(schema);
  if (ok) done.add(schema);
  return ok;
}

/** The schemas inside a container type; `undefined` for a type not known to be bounded. */
function childrenOf(def: SchemaDef): unknown[] | undefined {
  switch (def.type) {
    case "object":
      return def.shape !== null && typeof def.shape === "object"
        ? [...Object.values(def.shape), def.catchall]
        : undefined;
    case "array":
      return [def.element];
    case "tuple":
      return Array.isArray(def.items) ? [...def.items, def.rest ?? undefined] : undefined;
    case "union":
      return Array.isArray(def.options) ? def.options : undefined;
    case "intersection":
      return [def.left, def.right];
    case "record":
      return [def.keyType, def.valueType];
    case "optional":
    case "nullable":
    case "nonoptional":
    case "readonly":
    case "default":
    case "prefault":
    case "success":
      return [def.innerType];
    case "pipe":
      // A codec's pipe carries its own transform functions.
      return def.transform === undefined ? [def.in, def.out] : undefined;
    default:
      return undefined;
  }
}

function pureChecks(checks: unknown): boolean {
  if (checks === undefined) return true;
  if (!Array.isArray(checks)) return false;
  return checks.every((check) => {
    const def = (check as { _zod?: { def?: { check?: unknown; when?: unknown } } })?._zod?.def;
    return def !== undefined && typeof def.check === "string" && PURE_CHECKS.has(def.check) &&
      def.when === undefined;
  });
}
