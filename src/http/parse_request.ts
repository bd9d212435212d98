/**
 * Turning an HTTP request into validated CloudEvents: picks the content mode
 * (binary, structured, batch), reads the body under its limits, validates
 * every event, and builds typed events for the definitions given. Every
 * refusal is an {@linkcode HttpRequestError} carrying the status to answer.
 *
 * @module
 */

import { type AttributeType, describeType } from "../attributes.ts";
import type { EventDefinition } from "../define_event.ts";
import { excerpt, InvalidArgumentError, ValidationError, type ValidationIssue } from "../errors.ts";
import { CloudEvent, type EventScope, isEventScope, ScopedEvent } from "../event.ts";
import type { FromJSONOptions } from "../event_json.ts";
import { readMaxDepth } from "../json_checks.ts";
import { hasAttributeHeaders, wireFromBinary } from "./binary_mode.ts";
import { BATCH_MEDIA_TYPE, STRUCTURED_MEDIA_TYPE, STRUCTURED_PREFIX } from "./constants.ts";
import { checkExtensionTypes } from "../attributes.ts";
import { convertibleExtensions, readCanonicalExtensions } from "./extension_types.ts";
import { HttpRequestError } from "./http_request_error.ts";
import { isUtf8Charset, parseMediaType } from "./media_type.ts";
import { MAX_PROBLEM_ISSUES } from "./problem.ts";
import { BodyTimeoutError, BodyTooLargeError, readBodyLimited } from "./read_body.ts";

/**
 * The three ways CloudEvents travel over HTTP: `binary` (attributes in
 * `ce-*` headers, data as the body), `structured` (one
 * `application/cloudevents+json` document) and `batch`
 * (`application/cloudevents-batch+json`, an array of events).
 *
 * @example
 * ```ts
 * import type { HttpContentMode } from "@opensecflow/eventbus/http";
 * const modes: HttpContentMode[] = ["binary", "structured"]; // no batches
 * ```
 */
export type HttpContentMode = "binary" | "structured" | "batch";

/**
 * Options of {@linkcode parseRequest}, and the parsing options of `createReceiver`.
 *
 * @example
 * ```ts
 * import type { ParseRequestOptions } from "@opensecflow/eventbus/http";
 * const options: ParseRequestOptions = { maxBodyBytes: 64 * 1024, modes: ["structured"] };
 * ```
 */
export interface ParseRequestOptions {
  /**
   * Typed event definitions. An event whose type has a definition is parsed
   * with it: its data is checked against the schema and it gets its scope.
   */
  definitions?: readonly EventDefinition[];
  /**
   * With `definitions`, whether events of other types are accepted (as plain
   * CloudEvents). Default `true`; `false` refuses them (400 naming `type`).
   */
  allowUnknownTypes?: boolean;
  /** Scope given to accepted events that have no definition. Default: none (a plain CloudEvent). */
  scope?: EventScope;
  /** Largest request body accepted, in bytes; larger ones get 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Longest time to receive the whole body, in ms; slower ones get 408. Default 5000. */
  bodyTimeout?: number;
  /** Content modes accepted; others get 415. Default all three. */
  modes?: readonly HttpContentMode[];
  /**
   * Declared types of known extension attributes, e.g. `{ sent: "timestamp",
   * priority: "integer" }`. Values are read from their canonical string form
   * (`"42"` for an integer, `"true"` for a boolean) in headers and strings.
   */
  extensionTypes?: Record<string, AttributeType>;
  /**
   * Deepest nesting of objects and arrays accepted in an event's `data`, as
   * `CloudEvent.fromJSON` takes it: an integer from 0 to 1000, default
   * `DEFAULT_MAX_DATA_DEPTH` (512). Deeper data gets 400 naming `data`.
   */
  maxDepth?: number;
}

/**
 * Default `maxBodyBytes`: 1 MiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_BODY_BYTES } from "@opensecflow/eventbus/http";
 * console.log(DEFAULT_MAX_BODY_BYTES); // 1048576
 * ```
 */
export const DEFAULT_MAX_BODY_BYTES: number = 1024 * 1024;

/**
 * Default `bodyTimeout`: 5000 ms to receive a whole body.
 *
 * @example
 * ```ts
 * import { DEFAULT_BODY_TIMEOUT } from "@opensecflow/eventbus/http";
 * console.log(DEFAULT_BODY_TIMEOUT); // 5000
 * ```
 */
export const DEFAULT_BODY_TIMEOUT: number = 5000;

const ALL_MODES: readonly HttpContentMode[] = ["binary", "structured", "batch"];

/** {@linkcode ParseRequestOptions}, checked once, with their defaults. */
export interface ParseSettings {
  readonly maxBodyBytes: number;
  readonly bodyTimeout: number;
  readonly modes: ReadonlySet<HttpContentMode>;
  readonly definitions: ReadonlyMap<string, EventDefinition>;
  readonly allowUnknownTypes: boolean;
  readonly scope: EventScope | undefined;
  readonly extensionTypes: Record<string, AttributeType> | undefined;
  readonly convertible: ReadonlyMap<string, "integer" | "boolean">;
  /** What `fromJSON` and a definition's `parse` get. */
  readonly fromJSON: FromJSONOptions | undefined;
}

/** Checks the parsing options; throws {@linkcode InvalidArgumentError} naming the bad one. */
export function resolveParseOptions(options: ParseRequestOptions): ParseSettings {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object");
  }
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new InvalidArgumentError(
      "maxBodyBytes",
      `must be a positive integer, got ${excerpt(maxBodyBytes)}`,
    );
  }
  const bodyTimeout = options.bodyTimeout ?? DEFAULT_BODY_TIMEOUT;
  // setTimeout holds at most a signed 32-bit number of ms.
  if (!Number.isSafeInteger(bodyTimeout) || bodyTimeout < 1 || bodyTimeout > 2 ** 31 - 1) {
    throw new InvalidArgumentError(
      "bodyTimeout",
      `must be a positive integer of ms (at most 2147483647), got ${excerpt(bodyTimeout)}`,
    );
  }
  if (options.scope !== undefined && !isEventScope(options.scope)) {
    throw new InvalidArgumentError(
      "scope",
      `must be EventScope.PROCESS or EventScope.APP, got ${excerpt(options.scope)}`,
    );
  }
  if (options.allowUnknownTypes !== undefined && typeof options.allowUnknownTypes !== "boolean") {
    throw new InvalidArgumentError(
      "allowUnknownTypes",
      `must be a boolean, got ${excerpt(options.allowUnknownTypes)}`,
    );
  }
  const extensionTypes = checkExtensionTypes(options.extensionTypes);
  if (options.maxDepth !== undefined) readMaxDepth(options.maxDepth);
  const fromJSON = extensionTypes === undefined && options.maxDepth === undefined
    ? undefined
    : { extensionTypes, maxDepth: options.maxDepth };
  return {
    maxBodyBytes,
    bodyTimeout,
    modes: checkModes(options.modes),
    definitions: definitionMap(options.definitions),
    allowUnknownTypes: options.allowUnknownTypes ?? true,
    scope: options.scope,
    extensionTypes,
    convertible: convertibleExtensions(extensionTypes),
    fromJSON,
  };
}

function checkModes(value: unknown): ReadonlySet<HttpContentMode> {
  const list = value ?? ALL_MODES;
  if (!Array.isArray(list) || list.length === 0) {
    throw new InvalidArgumentError(
      "modes",
      'must be a non-empty array of "binary", "structured", "batch"',
    );
  }
  for (const mode of list) {
    if (!ALL_MODES.includes(mode)) {
      throw new InvalidArgumentError(
        "modes",
        `unknown content mode ${excerpt(mode)}; use "binary", "structured" or "batch"`,
      );
    }
  }
  return new Set(list);
}

function definitionMap(definitions: unknown): Map<string, EventDefinition> {
  const map = new Map<string, EventDefinition>();
  if (definitions === undefined) return map;
  if (!Array.isArray(definitions)) {
    throw new InvalidArgumentError(
      "definitions",
      "must be an array of event definitions made by defineEvent",
    );
  }
  definitions.forEach((definition: EventDefinition, index) => {
    if (
      typeof definition !== "function" || typeof definition.type !== "string" ||
      typeof definition.parse !== "function"
    ) {
      throw new InvalidArgumentError(
        `definitions[${index}]`,
        "must be an event definition made by defineEvent",
      );
    }
    if (map.has(definition.type)) {
      throw new InvalidArgumentError(
        `definitions[${index}]`,
        `type ${excerpt(definition.type)} is defined twice`,
      );
    }
    map.set(definition.type, definition);
  });
  return map;
}

/**
 * Reads and validates the CloudEvents of an HTTP request, in any content
 * mode (binary, structured, batch), without publishing them: what
 * `createReceiver` does before publishing, for routes that decide themselves
 * what to do with the events. Resolves with the events in order (typed for
 * the `definitions` given). A request without an acceptable CloudEvent
 * rejects with {@linkcode HttpRequestError}, whose `status` and `problem` are
 * the answer `createReceiver` would give; a batch with one bad event is
 * refused whole. Bad options throw `InvalidArgumentError`.
 *
 * @example
 * ```ts
 * import { HttpRequestError, parseRequest } from "@opensecflow/eventbus/http";
 * async function route(request: Request): Promise<Response> {
 *   try {
 *     const events = await parseRequest(request, { maxBodyBytes: 64 * 1024 });
 *     return Response.json({ received: events.map((e) => e.type) });
 *   } catch (error) {
 *     if (error instanceof HttpRequestError) return error.toResponse();
 *     throw error;
 *   }
 * }
 * const answer = await route(
 *   new Request("http://localhost/", {
 *     method: "POST",
 *     headers: { "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "ping" },
 *   }),
 * );
 * console.log(await answer.json()); // { received: ["ping"] }
 * ```
 */
export async function parseRequest(
  request: Request,
  options: ParseRequestOptions = {},
): Promise<CloudEvent[]> {
  if (
    request === null || typeof request !== "object" || typeof request.method !== "string" ||
    typeof request.headers?.get !== "function"
  ) {
    throw new InvalidArgumentError("request", `must be a Request, got ${excerpt(request)}`);
  }
  const settings = resolveParseOptions(options);
  if (request.method !== "POST") {
    await request.body?.cancel().catch(() => {});
    throw new HttpRequestError(
      405,
      `${excerpt(request.method).slice(1, -1)} is not allowed; send CloudEvents with POST`,
      { headers: { allow: "POST" } },
    );
  }
  return await readEvents(request, settings);
}

/**
 * Reads and validates the events of a POST request with checked settings.
 * Throws {@linkcode HttpRequestError} (400, 408, 413, 415); anything else it
 * throws is unexpected.
 */
export async function readEvents(request: Request, settings: ParseSettings): Promise<CloudEvent[]> {
  let mode: HttpContentMode;
  try {
    mode = detectMode(request.headers);
    if (!settings.modes.has(mode)) {
      throw new HttpRequestError(415, `${mode} content mode is not accepted here`);
    }
  } catch (error) {
    // The body will not be read: tell the runtime, so it can drop it.
    await request.body?.cancel().catch(() => {});
    throw error;
  }
  const body = await readBody(request, settings);
  try {
    if (mode === "binary") {
      const wire = wireFromBinary(request.headers, body);
      return [eventFrom(wire, settings)];
    }
    const value = parseJsonBody(body);
    if (mode === "structured") return [eventFrom(value, settings)];
    return batchFrom(value, settings);
  } catch (error) {
    if (error instanceof ValidationError) {
      throw new HttpRequestError(400, error.message, { issues: error.issues, cause: error });
    }
    // Schemas of recursive data (z.json(), z.lazy) recurse once per level.
    if (error instanceof RangeError) {
      throw new HttpRequestError(400, "the event data is nested too deeply to be checked", {
        issues: [{ path: "data", message: "is nested too deeply" }],
        cause: error,
      });
    }
    throw error;
  }
}

/** Which mode a request uses; a 415 (or 400 for a malformed media type) when none fits. */
function detectMode(headers: Headers): HttpContentMode {
  const type = parseMediaType(headers.get("content-type"));
  let mode: HttpContentMode | undefined;
  if (type?.essence === BATCH_MEDIA_TYPE) mode = "batch";
  else if (type?.essence.startsWith(STRUCTURED_PREFIX)) {
    if (type.essence !== STRUCTURED_MEDIA_TYPE) {
      throw new HttpRequestError(
        415,
        `structured mode supports only the JSON event format (${STRUCTURED_MEDIA_TYPE}), got ${
          excerpt(type.essence)
        }`,
      );
    }
    mode = "structured";
  }
  if (mode !== undefined && type !== undefined) {
    if (type.repeated !== undefined) {
      throw new HttpRequestError(
        400,
        `the Content-Type repeats the parameter ${
          excerpt(type.repeated)
        }, which makes it malformed`,
      );
    }
    if (!isUtf8Charset(type)) {
      throw new HttpRequestError(
        415,
        `JSON event formats are UTF-8; charset ${
          excerpt(type.parameters.charset)
        } is not supported`,
      );
    }
    return mode;
  }
  if (hasAttributeHeaders(headers)) return "binary";
  throw new HttpRequestError(
    415,
    `expected a CloudEvent: Content-Type ${STRUCTURED_MEDIA_TYPE} (structured), ` +
      `${BATCH_MEDIA_TYPE} (batch), or ce-* attribute headers (binary); ` +
      `got ${type ? excerpt(type.essence) : "no Content-Type"} without ce-* headers`,
  );
}

async function readBody(request: Request, settings: ParseSettings): Promise<Uint8Array> {
  try {
    return await readBodyLimited(request, settings.maxBodyBytes, settings.bodyTimeout);
  } catch (error) {
    if (error instanceof BodyTooLargeError) {
      throw new HttpRequestError(413, `the request body is larger than ${error.limit} bytes`);
    }
    if (error instanceof BodyTimeoutError) {
      throw new HttpRequestError(408, `the request body did not arrive within ${error.timeout} ms`);
    }
    throw new HttpRequestError(400, "the request body could not be read", { cause: error });
  }
}

function parseJsonBody(body: Uint8Array): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new ValidationError([{ path: "", message: "the body is not valid UTF-8" }]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ValidationError([{
      path: "",
      message: `is not valid JSON (${
        error instanceof Error ? error.message.slice(0, 80) : "parse error"
      })`,
    }]);
  }
  // fromJSON would read a string as JSON text a second time.
  if (typeof value === "string") {
    throw new ValidationError([{
      path: "",
      message: "must be JSON object or array, got a string",
    }]);
  }
  return value;
}

function eventFrom(wire: unknown, settings: ParseSettings): CloudEvent {
  readCanonicalExtensions(wire, settings.convertible);
  return typed(CloudEvent.fromJSON(wire, settings.fromJSON), settings);
}

/**
 * Validates a batch event by event. A refused batch is not checked to its
 * end: once more issues are found than an answer lists, checking stops, so a
 * megabyte of invalid events costs no more than a few of them; the answer
 * then says how many events were left unchecked.
 */
function batchFrom(value: unknown, settings: ParseSettings): CloudEvent[] {
  if (!Array.isArray(value)) {
    throw new ValidationError([{
      path: "",
      message: `a batch must be a JSON array, got ${describeType(value)}`,
    }]);
  }
  const out: CloudEvent[] = [];
  const issues: ValidationIssue[] = [];
  for (let index = 0; index < value.length; index++) {
    const prefix = `[${index}]`;
    const item: unknown = value[index];
    if (item === null || typeof item !== "object" || Array.isArray(item)) {
      issues.push({
        path: prefix,
        message: `an event must be a JSON object, got ${describeType(item)}`,
      });
    } else {
      try {
        readCanonicalExtensions(item, settings.convertible);
        out.push(typed(CloudEvent.fromJSON(item, settings.fromJSON), settings));
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        for (const issue of error.issues) {
          issues.push({
            ...issue,
            path: at(prefix, issue.path),
          });
        }
      }
    }
    if (issues.length > MAX_PROBLEM_ISSUES && index < value.length - 1) {
      const error = new ValidationError(issues, {
        context: `CloudEvents batch (checking stopped at event ${prefix} of ${value.length})`,
      });
      throw new HttpRequestError(400, error.message, {
        issues,
        eventsUnchecked: value.length - index - 1,
        cause: error,
      });
    }
  }
  if (issues.length > 0) throw new ValidationError(issues, { context: "CloudEvents batch" });
  return out;
}

function at(prefix: string, path: string): string {
  return path ? `${prefix}.${path}` : prefix;
}

/** Applies the definition of the event's type, or the fallback scope. */
function typed(event: CloudEvent, settings: ParseSettings): CloudEvent {
  const definition = settings.definitions.get(event.type);
  if (definition !== undefined) return definition.parse(event, settings.fromJSON);
  if (settings.definitions.size > 0 && !settings.allowUnknownTypes) {
    throw new ValidationError([{
      path: "type",
      message: `${excerpt(event.type)} is not accepted here; accepted types: ${
        [...settings.definitions.keys()].join(", ")
      }`,
    }]);
  }
  if (settings.scope === undefined) return event;
  return new ScopedEvent({
    id: event.id,
    source: event.source,
    type: event.type,
    subject: event.subject,
    time: event.time ?? null,
    datacontenttype: event.datacontenttype,
    dataschema: event.dataschema,
    extensions: event.extensions,
    data: event.data,
    scope: settings.scope,
  });
}
