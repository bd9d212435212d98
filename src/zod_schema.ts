/**
 * What `defineEvent` needs to know about a zod schema: that it is a zod 4
 * schema, whether parsing it can be led by the data into recursion or into
 * code of the application (see {@linkcode isBoundedSchema}), and whether its
 * output is JSON data by construction (see {@linkcode jsonOutputDepth}).
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
  entries?: unknown;
  values?: unknown;
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

/**
 * How deeply the output of `schema` nests objects and arrays, when that
 * output is JSON data whatever the input: zod builds every object and array
 * of it, and its leaves are strings, finite numbers, booleans, `null`, valid
 * Dates and JSON literals; no input passes through (`z.any()`, a loose
 * object), no code of the application runs. `undefined` when not so, or not
 * known. An event's data from such a schema needs no check after parsing.
 */
export function jsonOutputDepth(schema: unknown): number | undefined {
  try {
    return outputDepth(schema, false, new Set());
  } catch {
    return undefined;
  }
}

function outputDepth(schema: unknown, inArray: boolean, path: Set<object>): number | undefined {
  if (schema === null || typeof schema !== "object" || path.has(schema)) return undefined;
  const def = (schema as { _zod?: { def?: SchemaDef } })._zod?.def;
  if (def === undefined || !pureChecks(def.checks)) return undefined;
  path.add(schema);
  try {
    return typeDepth(def, inArray, path);
  } finally {
    path.delete(schema);
  }
}

function typeDepth(def: SchemaDef, inArray: boolean, path: Set<object>): number | undefined {
  const child = (schema: unknown, childInArray: boolean) => outputDepth(schema, childInArray, path);
  switch (def.type) {
    case "string":
    case "number":
    case "int":
    case "boolean":
    case "null":
    case "date":
    case "template_literal":
      return 0;
    case "enum":
      return isRecord(def.entries) && Object.values(def.entries).every(isJsonScalar)
        ? 0
        : undefined;
    case "literal":
      return Array.isArray(def.values) && def.values.every(isJsonScalar) ? 0 : undefined;
    case "optional":
      // An absent member is fine; `undefined` in an array is written as null.
      return inArray ? undefined : child(def.innerType, inArray);
    case "nullable":
    case "nonoptional":
    case "readonly":
      return child(def.innerType, inArray);
    case "object": {
      // Only the declared members: a catchall (a loose object) passes input
      // through, unless it is a strict object's `never`.
      if (
        !isRecord(def.shape) || (def.catchall !== undefined && typeOf(def.catchall) !== "never")
      ) {
        return undefined;
      }
      // Written as a key, "__proto__" would set the output's prototype instead.
      if (Object.hasOwn(def.shape, "__proto__")) return undefined;
      return container(Object.values(def.shape).map((member) => child(member, false)));
    }
    case "array":
      return container([child(def.element, true)]);
    case "tuple": {
      if (!Array.isArray(def.items)) return undefined;
      const rest = def.rest == null ? [] : [child(def.rest, true)];
      return container([...def.items.map((item) => child(item, true)), ...rest]);
    }
    case "record":
      return child(def.keyType, false) === 0 ? container([child(def.valueType, false)]) : undefined;
    case "union":
      return Array.isArray(def.options)
        ? deepest(def.options.map((option) => child(option, inArray)))
        : undefined;
    case "intersection":
      return deepest([child(def.left, inArray), child(def.right, inArray)]);
    case "pipe":
      return def.transform === undefined && isBoundedSchema(def.in)
        ? child(def.out, inArray)
        : undefined;
    default:
      return undefined;
  }
}

/** Depth of a container whose members have these depths. */
function container(members: readonly (number | undefined)[]): number | undefined {
  const depth = deepest(members);
  return depth === undefined ? undefined : depth + 1;
}

function deepest(depths: readonly (number | undefined)[]): number | undefined {
  let max = 0;
  for (const depth of depths) {
    if (depth === undefined) return undefined;
    if (depth > max) max = depth;
  }
  return max;
}

function typeOf(schema: unknown): unknown {
  return (schema as { _zod?: { def?: SchemaDef } })?._zod?.def?.type;
}

function isJsonScalar(value: unknown): boolean {
  return typeof value === "string" || typeof value === "boolean" || value === null ||
    (typeof value === "number" && Number.isFinite(value));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object";
}
