/**
 * The JSON Schema of an event's `data`, from zod 4's `z.toJSONSchema`.
 *
 * Choices, so the schema describes the JSON that actually travels:
 * - draft-07, the base of AsyncAPI's default schema format;
 * - the schema's output side: a bus serializes the parsed data, and a schema
 *   must accept its own JSON output, so the output is what every sender emits;
 * - a `Date` becomes an RFC 3339 string (`format: date-time`), which is what
 *   `JSON.stringify` makes of it;
 * - anything else JSON Schema cannot express (a transform, a bigint, a Map,
 *   `z.custom()`...) is refused with the paths that hold it, or, when asked,
 *   documented as any value.
 *
 * @module
 */

import { z } from "zod";
import type { EventDefinition } from "../define_event.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { JsonSchema } from "./types.ts";

/** A data schema and the shared definitions its `$ref`s point to. */
export interface DataSchema {
  /** The schema of `data`, without `$schema` or `definitions`. */
  readonly schema: JsonSchema;
  /** Named subschemas (recursive or registered ones), by the name zod gave them. */
  readonly definitions: Record<string, JsonSchema>;
  /** The schema accepts an event without data. */
  readonly optional: boolean;
}

/** zod schema kinds without a JSON Schema equivalent (dates are mapped instead). */
const UNREPRESENTABLE = new Set([
  "bigint",
  "symbol",
  "undefined",
  "void",
  "nan",
  "custom",
  "function",
  "transform",
  "map",
  "set",
]);

/** Converts a definition's zod schema; see the module doc for the choices. */
export function dataSchemaOf(
  definition: EventDefinition,
  unrepresentable: "throw" | "any",
): DataSchema {
  const problems: string[] = [];
  const zodSchema = definition.schema as z.ZodType;
  let converted: JsonSchema;
  try {
    converted = z.toJSONSchema(zodSchema, {
      target: "draft-07",
      io: "output",
      // Every site is reported through override below, with its path, so none is lost.
      unrepresentable: "any",
      override(context): void {
        const def = context.zodSchema._zod.def as { type: string; values?: unknown[] };
        if (def.type === "date") {
          Object.assign(context.jsonSchema, { type: "string", format: "date-time" });
        } else if (UNREPRESENTABLE.has(def.type) || hasUnrepresentableLiteral(def)) {
          problems.push(`${dataPath(context.path)} (${def.type})`);
        }
      },
    }) as JsonSchema;
  } catch (error) {
    throw new InvalidArgumentError(
      "bus",
      `the data schema of "${definition.type}" cannot be converted to JSON Schema: ${
        error instanceof Error ? error.message : String(error)
      }`,
      { cause: error },
    );
  }
  if (problems.length > 0 && unrepresentable === "throw") {
    throw new InvalidArgumentError(
      "bus",
      `the data schema of "${definition.type}" has parts JSON Schema cannot express: ${
        problems.join(", ")
      }; describe the JSON form instead (e.g. z.string() rather than a transform), ` +
        `or pass { unrepresentable: "any" } to document them as any value`,
    );
  }
  const { $schema: _dialect, definitions = {}, ...schema } = converted;
  return {
    schema,
    definitions: definitions as Record<string, JsonSchema>,
    optional: zodSchema.safeParse(undefined).success,
  };
}

function hasUnrepresentableLiteral(def: { type: string; values?: unknown[] }): boolean {
  return def.type === "literal" &&
    (def.values ?? []).some((value) => value === undefined || typeof value === "bigint");
}

/** A JSON Schema path (`properties`, `items`...) read as a path in the data. */
function dataPath(path: readonly (string | number)[]): string {
  let out = "data";
  for (let i = 0; i < path.length; i++) {
    const token = path[i];
    const next = path[i + 1];
    if (token === "properties" && next !== undefined) {
      out += `.${next}`;
      i++;
    } else if (token === "items" || token === "prefixItems") {
      out += typeof next === "number" ? `[${next}]` : "[]";
      if (typeof next === "number") i++;
    } else if (token === "additionalProperties") {
      out += ".*";
    } else if (["anyOf", "oneOf", "allOf"].includes(String(token)) && typeof next === "number") {
      i++;
    } else if ((token === "definitions" || token === "$defs") && next !== undefined) {
      out = `data(${next})`;
      i++;
    } else {
      out += `/${token}`;
    }
  }
  return out;
}
