/**
 * The payload of a message: a CloudEvent in structured mode
 * (`application/cloudevents+json`), the form the bus itself writes with
 * `JSON.stringify(event)`. Structured mode keeps every attribute in the
 * payload, so one schema describes the whole event whatever the protocol; a
 * binary-mode binding (HTTP `ce-*` headers) carries the same attributes.
 *
 * @module
 */

import type { JsonSchema } from "./types.ts";

/** What the envelope of one event type needs. */
export interface EnvelopeInput {
  /** The event type, the only value `type` may take. */
  readonly type: string;
  /** The definition's default source, shown as an example. */
  readonly source: string | undefined;
  /** `$ref` of the data schema. */
  readonly dataRef: string;
  /** The data schema accepts an event without data. */
  readonly dataOptional: boolean;
}

/** The JSON Schema of a structured-mode CloudEvent of one type. */
export function envelopeSchema(input: EnvelopeInput): JsonSchema {
  const source: JsonSchema = {
    type: "string",
    minLength: 1,
    format: "uri-reference",
    description: "URI-reference of the context the event happened in.",
  };
  if (input.source !== undefined) source.examples = [input.source];
  return {
    type: "object",
    required: ["specversion", "id", "source", "type", ...(input.dataOptional ? [] : ["data"])],
    properties: {
      specversion: { type: "string", const: "1.0", description: "CloudEvents version." },
      id: { type: "string", minLength: 1, description: "Unique per source." },
      source,
      type: { type: "string", const: input.type, description: "The event type." },
      time: { type: "string", format: "date-time", description: "RFC 3339 timestamp." },
      subject: { type: "string", minLength: 1, description: "Subject within the source." },
      datacontenttype: {
        type: "string",
        minLength: 1,
        description: "Media type of data; JSON when absent.",
      },
      dataschema: { type: "string", format: "uri", description: "Schema URI of data." },
      data: { $ref: input.dataRef },
    },
    // Extension attributes sit at the top level: lower-case letters and digits, scalar values.
    propertyNames: { pattern: "^[a-z0-9]+$" },
    additionalProperties: {
      type: ["string", "integer", "boolean"],
      description: "An extension attribute.",
    },
  };
}
