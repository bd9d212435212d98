/**
 * Places data schemas under `components.schemas`. zod's `$ref`s point into
 * the schema's own root (`#`, `#/definitions/...`), which inside an AsyncAPI
 * document would point at the document, so each is rewritten to the
 * component it now lives in.
 *
 * @module
 */

import type { DataSchema } from "./data_schema.ts";
import { type KeyAllocator, pascalCase } from "./names.ts";
import type { JsonSchema } from "./types.ts";

/** Keywords whose values are data, not schemas: a `$ref` in them is text. */
const DATA_KEYWORDS = new Set(["const", "default", "enum", "examples"]);

/**
 * Adds a data schema and its definitions to `schemas` under fresh keys, and
 * returns the reference to the data schema.
 */
export function placeDataSchema(
  data: DataSchema,
  base: string,
  keys: KeyAllocator,
  schemas: Record<string, JsonSchema>,
): string {
  const root = keys.allocate(`${base}Data`);
  const targets = new Map<string, string>([["#", componentRef(root)]]);
  for (const name of Object.keys(data.definitions)) {
    const key = keys.allocate(`${root}${pascalCase(name)}`);
    targets.set(`#/definitions/${escapePointer(name)}`, componentRef(key));
  }
  schemas[root] = rewriteRefs(data.schema, targets) as JsonSchema;
  for (const [name, schema] of Object.entries(data.definitions)) {
    const key = targets.get(`#/definitions/${escapePointer(name)}`)!.slice(REF_PREFIX.length);
    schemas[key] = rewriteRefs(schema, targets) as JsonSchema;
  }
  return componentRef(root);
}

const REF_PREFIX = "#/components/schemas/";

function componentRef(key: string): string {
  return REF_PREFIX + key;
}

/** RFC 6901 escaping of one pointer token. */
function escapePointer(token: string): string {
  return token.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** Keywords whose values map names to schemas: a name there is never a keyword. */
const SCHEMA_MAPS = new Set(["properties", "patternProperties", "definitions", "$defs"]);

function rewriteRefs(value: unknown, targets: ReadonlyMap<string, string>): unknown {
  if (Array.isArray(value)) return value.map((item) => rewriteRefs(item, targets));
  if (value === null || typeof value !== "object") return value;
  const out: JsonSchema = {};
  for (const [key, item] of Object.entries(value)) {
    if (key === "$ref" && typeof item === "string") {
      out[key] = targets.get(item) ?? item;
    } else if (SCHEMA_MAPS.has(key) && item !== null && typeof item === "object") {
      out[key] = Object.fromEntries(
        Object.entries(item).map(([name, schema]) => [name, rewriteRefs(schema, targets)]),
      );
    } else {
      out[key] = DATA_KEYWORDS.has(key) ? item : rewriteRefs(item, targets);
    }
  }
  return out;
}
