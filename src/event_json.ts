/**
 * The CloudEvents JSON format (structured mode), single events and batches:
 * reading wire objects or text into events, writing events back. The event
 * class is passed in, so this module depends on `CloudEvent` by type only.
 *
 * @module
 */

import type { AttributeType } from "./attributes.ts";
import { describeType } from "./attributes.ts";
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { excerpt, InvalidArgumentError, ValidationError, type ValidationIssue } from "./errors.ts";
import type { CloudEvent, CloudEventInit, CloudEventOptions, ExtensionValue } from "./event.ts";
import { eventInitIssues, extensionIssues, isPlainObject, readOptions } from "./event_checks.ts";
import { thrownText } from "./json_checks.ts";

/**
 * The structured-mode JSON form of an event: core attributes, extensions at
 * the top level, and `data` or `data_base64`.
 */
export interface CloudEventJSON {
  /** Always `"1.0"`. */
  specversion: "1.0";
  /** Event id. */
  id: string;
  /** Event source. */
  source: string;
  /** Event type. */
  type: string;
  /** Media type of the data. */
  datacontenttype?: string;
  /** Schema URI of the data. */
  dataschema?: string;
  /** Subject. */
  subject?: string;
  /** RFC 3339 timestamp. */
  time?: string;
  /** JSON or text payload. */
  data?: unknown;
  /** Binary payload, base64. */
  data_base64?: string;
  /** Extension attributes. */
  [extension: string]: unknown;
}

/**
 * Options of {@linkcode CloudEvent.fromJSON}, {@linkcode CloudEvent.batchFromJSON}
 * and a typed event's `parse`.
 *
 * @example
 * ```ts
 * import { CloudEvent } from "@opensecflow/eventbus";
 * const e = CloudEvent.fromJSON(
 *   { specversion: "1.0", id: "1", type: "t", source: "/s", sent: "2024-01-01T00:00:00Z" },
 *   { extensionTypes: { sent: "timestamp" }, maxDepth: 32 },
 * );
 * ```
 */
export interface FromJSONOptions extends CloudEventOptions {
  /** Declared types of known extensions, checked in their canonical string form. */
  extensionTypes?: Record<string, AttributeType>;
}

/** The event class the codec builds, `CloudEvent` or a subclass. */
export type EventClass<E extends CloudEvent> = new (
  init: CloudEventInit<unknown>,
  options?: CloudEventOptions,
) => E;

const OPTIONAL_ATTRIBUTES = ["datacontenttype", "dataschema", "subject", "time"] as const;
const REQUIRED_ATTRIBUTES = ["id", "source", "type"] as const;
const KNOWN_MEMBERS: ReadonlySet<string> = new Set([
  "specversion",
  ...REQUIRED_ATTRIBUTES,
  ...OPTIONAL_ATTRIBUTES,
  "data",
  "data_base64",
]);

/** The structured-mode JSON object of an event; binary data becomes `data_base64`. */
export function eventToJSON(event: CloudEvent): CloudEventJSON {
  const json: CloudEventJSON = {
    specversion: "1.0",
    id: event.id,
    source: event.source,
    type: event.type,
  };
  for (const name of OPTIONAL_ATTRIBUTES) {
    if (event[name] !== undefined) json[name] = event[name];
  }
  for (const name in event.extensions) json[name] = event.extensions[name];
  if (event.data instanceof Uint8Array) json.data_base64 = encodeBase64(event.data);
  else if (event.data !== undefined) json.data = event.data;
  return json;
}

/** Reads one event from JSON text or a parsed wire object; an event is taken as it is. */
export function eventFromJSON<E extends CloudEvent>(
  input: unknown,
  options: FromJSONOptions | undefined,
  Event: EventClass<E>,
): E {
  checkFromJSONOptions(options);
  return eventFromWire(parseJSONText(input), "", options, Event);
}

/** Reads a JSON batch; any invalid member rejects the batch, issues prefixed by index. */
export function batchFromJSON<E extends CloudEvent>(
  input: unknown,
  options: FromJSONOptions | undefined,
  Event: EventClass<E>,
): E[] {
  checkFromJSONOptions(options);
  const value = parseJSONText(input);
  if (!Array.isArray(value)) {
    throw new ValidationError([{
      path: "",
      message: `a batch must be a JSON array, got ${describeType(value)}`,
    }]);
  }
  const events: E[] = [];
  const issues: ValidationIssue[] = [];
  for (let index = 0; index < value.length; index++) {
    try {
      events.push(eventFromWire(value[index], `[${index}]`, options, Event));
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      issues.push(...error.issues);
    }
  }
  if (issues.length > 0) throw new ValidationError(issues, { context: "CloudEvents batch" });
  return events;
}

/** Writes events as JSON text in the batch format; anything but an event is refused. */
export function batchToJSON(events: readonly CloudEvent[], Event: EventClass<CloudEvent>): string {
  if (!Array.isArray(events)) {
    throw new ValidationError([{ path: "", message: "a batch must be an array of CloudEvent" }]);
  }
  const issues: ValidationIssue[] = [];
  events.forEach((event, index) => {
    if (!(event instanceof Event)) {
      issues.push({
        path: `[${index}]`,
        message: `must be a CloudEvent, got ${describeType(event)}`,
      });
    }
  });
  if (issues.length > 0) throw new ValidationError(issues, { context: "CloudEvents batch" });
  return JSON.stringify(events);
}

const ATTRIBUTE_TYPES: ReadonlySet<string> = new Set<AttributeType>([
  "boolean",
  "integer",
  "string",
  "binary",
  "uri",
  "uri-reference",
  "timestamp",
]);

/** Throws {@linkcode InvalidArgumentError} for options that would be misread. */
function checkFromJSONOptions(options: FromJSONOptions | undefined): void {
  if (options === undefined) return;
  readOptions(options);
  const types: unknown = options.extensionTypes;
  if (types === undefined) return;
  if (!isPlainObject(types)) {
    throw new InvalidArgumentError(
      "extensionTypes",
      `must be an object of extension name to type, got ${describeType(types)}`,
    );
  }
  for (const [name, type] of Object.entries(types)) {
    if (typeof type !== "string" || !ATTRIBUTE_TYPES.has(type)) {
      throw new InvalidArgumentError(
        "extensionTypes",
        `${excerpt(name)}: must be one of ${[...ATTRIBUTE_TYPES].join(", ")}, got ${excerpt(type)}`,
      );
    }
  }
}

function parseJSONText(input: unknown): unknown {
  if (typeof input !== "string") return input;
  try {
    return JSON.parse(input);
  } catch (error) {
    throw new ValidationError([{
      path: "",
      message: `is not valid JSON (${
        error instanceof Error ? error.message.slice(0, 80) : "parse error"
      })`,
    }]);
  }
}

/** Builds an event from a wire object, issues prefixed with `prefix` (for batches). */
function eventFromWire<E extends CloudEvent>(
  value: unknown,
  prefix: string,
  options: FromJSONOptions | undefined,
  Event: EventClass<E>,
): E {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError([{
      path: prefix,
      message: `an event must be a JSON object, got ${describeType(value)}`,
    }]);
  }
  if (value instanceof Event) return value;
  const { init, issues } = readWireSafely(value as Record<string, unknown>, prefix, options);
  if (issues.length === 0) {
    try {
      return new Event(init, options);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      throw prefixed(error.issues, prefix);
    }
  }
  // The wire's own problems come first; the constructor's add what they do not name.
  const seen = new Set(issues.map((issue) => issue.path));
  for (const issue of eventInitIssues(init, options)) {
    if (!seen.has(issue.path)) issues.push(issue);
  }
  throw prefixed(issues, prefix);
}

/** {@linkcode readWire}, with a getter or proxy that throws reported as a problem of the input. */
function readWireSafely(
  wire: Record<string, unknown>,
  prefix: string,
  options: FromJSONOptions | undefined,
): { init: CloudEventInit<unknown>; issues: ValidationIssue[] } {
  try {
    return readWire(wire, options);
  } catch (error) {
    if (error instanceof ValidationError || error instanceof InvalidArgumentError) throw error;
    throw new ValidationError([{
      path: prefix,
      message: `an event object that cannot be read (${thrownText(error)})`,
    }]);
  }
}

/** Maps wire members onto constructor input, with the problems only the wire form can have. */
function readWire(
  wire: Record<string, unknown>,
  options: FromJSONOptions | undefined,
): { init: CloudEventInit<unknown>; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = [];
  if (wire.specversion !== "1.0") {
    issues.push({
      path: "specversion",
      message: wire.specversion === undefined
        ? "is required"
        : `must be "1.0", got ${excerpt(wire.specversion)}`,
    });
  }
  for (const name of REQUIRED_ATTRIBUTES) {
    if (wire[name] == null) issues.push({ path: name, message: "is required" });
  }
  const hasData = wire.data != null;
  const hasBinary = wire.data_base64 != null;
  let data: unknown = hasData ? wire.data : undefined;
  if (hasData && hasBinary) {
    issues.push({ path: "data_base64", message: "data and data_base64 are mutually exclusive" });
  } else if (hasBinary) {
    data = typeof wire.data_base64 === "string" ? decodeBase64(wire.data_base64) : undefined;
    if (data === undefined) issues.push({ path: "data_base64", message: "must be base64 text" });
  }
  const extensions: Record<string, ExtensionValue> = {};
  for (const name of Object.keys(wire)) {
    if (KNOWN_MEMBERS.has(name) || wire[name] === null) continue;
    // defineProperty keeps a member named "__proto__" an own key, not a prototype.
    Object.defineProperty(extensions, name, { value: wire[name], enumerable: true });
  }
  // Declared extension types are a wire concern: the constructor checks the generic rules.
  if (options?.extensionTypes !== undefined) {
    issues.push(...extensionIssues(extensions, options.extensionTypes));
  }
  const optional = (name: string): string | undefined => (wire[name] ?? undefined) as string;
  const init: CloudEventInit<unknown> = {
    id: wire.id as string,
    source: wire.source as string,
    type: wire.type as string,
    datacontenttype: optional("datacontenttype"),
    dataschema: optional("dataschema"),
    subject: optional("subject"),
    // Without a time on the wire, the event has none: it must not become "now".
    time: optional("time") ?? null,
    data,
    extensions,
  };
  return { init, issues };
}

function prefixed(issues: readonly ValidationIssue[], prefix: string): ValidationError {
  const moved = prefix
    ? issues.map((issue) => ({ ...issue, path: issue.path ? `${prefix}.${issue.path}` : prefix }))
    : issues;
  return new ValidationError(moved, { context: "CloudEvent" });
}
