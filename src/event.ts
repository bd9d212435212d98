/**
 * CloudEvents v1.0 events: {@linkcode CloudEvent}, its JSON format (single
 * and batch), and {@linkcode ScopedEvent}, an event that knows whether it stays
 * in the process or reaches every instance of the application.
 *
 * @module
 */

import {
  type AttributeType,
  checkAbsoluteUri,
  checkExtensionName,
  checkExtensionValue,
  checkMediaType,
  checkNonEmptyString,
  checkTimestamp,
  checkUriReference,
  describeType,
} from "./attributes.ts";
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { excerpt, ValidationError, type ValidationIssue } from "./errors.ts";

/** A value an extension attribute can hold. */
export type ExtensionValue = string | number | boolean;

/**
 * What `new CloudEvent(...)` takes. `id` defaults to a random UUID, `time` to
 * now (pass `null` for an event without time). As in the JSON format, `null`
 * for any optional attribute means the attribute is absent.
 *
 * @example
 * ```ts
 * import type { CloudEventInit } from "@opensecflow/eventbus";
 * const init: CloudEventInit = { type: "order.created", source: "/orders", data: { id: 1 } };
 * ```
 */
export interface CloudEventInit<D = unknown> {
  /** Event id; unique per source. Default: `crypto.randomUUID()`. */
  id?: string;
  /** URI-reference of the context the event happened in. */
  source: string;
  /** Event type, e.g. `"com.example.order.created"`. */
  type: string;
  /** Only `"1.0"` is supported. */
  specversion?: "1.0";
  /** RFC 2046 media type of `data`. */
  datacontenttype?: string;
  /** Absolute URI of the schema `data` adheres to. */
  dataschema?: string;
  /** Subject of the event within the source. */
  subject?: string;
  /** RFC 3339 timestamp or a Date; default now; `null` means no time. */
  time?: string | Date | null;
  /** The payload. `Uint8Array` is binary data (`data_base64` in JSON). */
  data?: D;
  /** Extension attributes. */
  extensions?: Record<string, ExtensionValue>;
}

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
 * Options of {@linkcode CloudEvent.fromJSON}.
 *
 * @example
 * ```ts
 * import { CloudEvent } from "@opensecflow/eventbus";
 * const e = CloudEvent.fromJSON(
 *   { specversion: "1.0", id: "1", type: "t", source: "/s", sent: "2024-01-01T00:00:00Z" },
 *   { extensionTypes: { sent: "timestamp" } },
 * );
 * ```
 */
export interface FromJSONOptions {
  /** Declared types of known extensions, checked in their canonical string form. */
  extensionTypes?: Record<string, AttributeType>;
}

const EMPTY: Readonly<Record<string, ExtensionValue>> = Object.freeze({});
const OPTIONAL_ATTRIBUTES = ["datacontenttype", "dataschema", "subject", "time"] as const;
const KNOWN_JSON_MEMBERS = new Set([
  "specversion",
  "id",
  "source",
  "type",
  ...OPTIONAL_ATTRIBUTES,
  "data",
  "data_base64",
]);

/**
 * Freezes plain objects and arrays all the way down; other objects are left
 * alone. Iterative, so hostile input nested 100 000 levels deep cannot
 * overflow the call stack.
 */
export function deepFreeze<T>(value: T): T {
  // Only unfrozen objects are queued, so flat data (the common case) freezes
  // without allocating.
  let pending: object[] | undefined;
  let item: unknown = value;
  while (true) {
    if (item !== null && typeof item === "object" && !Object.isFrozen(item)) {
      if (Array.isArray(item)) {
        Object.freeze(item);
        for (const child of item) {
          if (child !== null && typeof child === "object") (pending ??= []).push(child);
        }
      } else if (isPlainObject(item)) {
        Object.freeze(item);
        for (const key in item) {
          const child = item[key];
          if (child !== null && typeof child === "object") (pending ??= []).push(child);
        }
      }
    }
    if (pending === undefined || pending.length === 0) return value;
    item = pending.pop();
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** JavaScript callers may pass `null` for an optional attribute: it means absent, as in JSON. */
function absentIfNull<T>(value: T | null | undefined): T | undefined {
  return value === null ? undefined : value;
}

// Events of one kind repeat the same source and type: remembering the last
// valid value of each skips re-checking them on the hot path.
let lastValidSource: unknown;
let lastValidType: unknown;

let lastMillis = -1;
let lastTimestamp = "";

/**
 * The current time as RFC 3339. Formatting a Date costs more than the rest of
 * building an event, and events built in the same millisecond share a
 * timestamp, so the text is reused within a millisecond.
 */
function nowTimestamp(): string {
  const millis = Date.now();
  if (millis !== lastMillis) {
    lastMillis = millis;
    lastTimestamp = new Date(millis).toISOString();
  }
  return lastTimestamp;
}

/**
 * A CloudEvents v1.0 event. Validated at construction, frozen afterwards.
 *
 * Plain-object and array `data` is frozen in place, deeply (so pass a copy if
 * you need to keep changing the original); a `Uint8Array` cannot be frozen
 * and should be treated as read-only. A subclass that adds fields must freeze
 * its instances itself: only `CloudEvent`, `ScopedEvent` and `defineEvent`
 * classes are frozen here.
 *
 * @example
 * ```ts
 * import { CloudEvent } from "@opensecflow/eventbus";
 * const e = new CloudEvent({ type: "order.created", source: "/orders", data: { orderId: "A1" } });
 * const wire = JSON.stringify(e);            // structured-mode JSON
 * const back = CloudEvent.fromJSON(wire);    // validated
 * console.log(back.id === e.id, back.data);  // true { orderId: "A1" }
 * ```
 */
export class CloudEvent<D = unknown> {
  /** Always `"1.0"`. */
  readonly specversion: "1.0" = "1.0";
  /** Event id, unique per source. */
  declare readonly id: string;
  /** URI-reference of the context the event happened in. */
  declare readonly source: string;
  /** Event type. */
  declare readonly type: string;
  /** RFC 2046 media type of `data`. */
  declare readonly datacontenttype?: string;
  /** Absolute URI of the data's schema. */
  declare readonly dataschema?: string;
  /** Subject within the source. */
  declare readonly subject?: string;
  /** RFC 3339 timestamp. */
  declare readonly time?: string;
  /** Payload. */
  declare readonly data?: D;
  /** Extension attributes (frozen). */
  declare readonly extensions: Readonly<Record<string, ExtensionValue>>;

  /** Builds and validates an event; throws {@linkcode ValidationError} listing every problem. */
  constructor(init: CloudEventInit<D>) {
    if (init === null || typeof init !== "object") {
      throw new ValidationError([{
        path: "",
        message: `must be an object, got ${describeType(init)}`,
      }]);
    }
    const issues: ValidationIssue[] = [];
    const check = (path: string, problem: string | undefined) => {
      if (problem) issues.push({ path, message: problem });
    };
    if (init.specversion !== undefined && init.specversion !== "1.0") {
      check("specversion", `must be "1.0", got ${excerpt(init.specversion)}`);
    }
    const id = init.id === undefined ? crypto.randomUUID() : init.id;
    if (init.id !== undefined) check("id", checkNonEmptyString(id));
    if (init.source !== lastValidSource) {
      const problem = checkUriReference(init.source);
      if (problem) check("source", problem);
      else lastValidSource = init.source;
    }
    if (init.type !== lastValidType) {
      const problem = checkNonEmptyString(init.type);
      if (problem) check("type", problem);
      else lastValidType = init.type;
    }
    const datacontenttype = absentIfNull(init.datacontenttype);
    const dataschema = absentIfNull(init.dataschema);
    const subject = absentIfNull(init.subject);
    if (datacontenttype !== undefined) check("datacontenttype", checkMediaType(datacontenttype));
    if (dataschema !== undefined) check("dataschema", checkAbsoluteUri(dataschema));
    if (subject !== undefined) check("subject", checkNonEmptyString(subject));
    let time: string | undefined;
    if (init.time === undefined) time = nowTimestamp();
    else if (init.time instanceof Date) {
      const year = init.time.getUTCFullYear();
      if (Number.isNaN(init.time.getTime())) check("time", "is an invalid Date");
      else if (year < 0 || year > 9999) {
        check("time", "is outside the years 0000-9999 an RFC 3339 timestamp can write");
      } else time = init.time.toISOString();
    } else if (init.time !== null) {
      check("time", checkTimestamp(init.time));
      time = init.time;
    }
    const extensions = absentIfNull(init.extensions) === undefined
      ? EMPTY
      : copyExtensions(init.extensions, issues);
    if (issues.length > 0) throw new ValidationError(issues, { context: "CloudEvent" });

    this.id = id;
    this.source = init.source;
    this.type = init.type;
    if (datacontenttype !== undefined) this.datacontenttype = datacontenttype;
    if (dataschema !== undefined) this.dataschema = dataschema;
    if (subject !== undefined) this.subject = subject;
    if (time !== undefined) this.time = time;
    if (init.data !== undefined) this.data = deepFreeze(init.data);
    this.extensions = extensions;
    if (new.target === CloudEvent) Object.freeze(this);
  }

  /**
   * The structured-mode JSON object: extensions at the top level, binary data
   * as `data_base64`. `JSON.stringify(event)` calls it.
   *
   * @example
   * ```ts
   * import { CloudEvent } from "@opensecflow/eventbus";
   * const e = new CloudEvent({ type: "t", source: "/s", data: new Uint8Array([1, 2]) });
   * console.log(e.toJSON().data_base64); // "AQI="
   * ```
   */
  toJSON(): CloudEventJSON {
    const json: CloudEventJSON = {
      specversion: "1.0",
      id: this.id,
      source: this.source,
      type: this.type,
    };
    for (const name of OPTIONAL_ATTRIBUTES) {
      if (this[name] !== undefined) json[name] = this[name];
    }
    for (const name in this.extensions) json[name] = this.extensions[name];
    if (this.data instanceof Uint8Array) json.data_base64 = encodeBase64(this.data);
    else if (this.data !== undefined) json.data = this.data;
    return json;
  }

  /**
   * Parses and validates one event in the JSON format, from text or from an
   * already-parsed object. Unknown top-level members become extensions; `null`
   * for an optional attribute means it is absent.
   *
   * @example
   * ```ts
   * import { CloudEvent } from "@opensecflow/eventbus";
   * const e = CloudEvent.fromJSON('{"specversion":"1.0","id":"1","type":"t","source":"/s","tenant":"acme"}');
   * console.log(e.extensions.tenant); // "acme"
   * ```
   */
  static fromJSON(input: string | unknown, options?: FromJSONOptions): CloudEvent {
    return eventFromWire(parseJSONText(input), "", options);
  }

  /**
   * Parses a batch in the JSON batch format (an array of events). Any invalid
   * member rejects the whole batch, with issues prefixed by its index.
   *
   * @example
   * ```ts
   * import { CloudEvent } from "@opensecflow/eventbus";
   * const events = CloudEvent.batchFromJSON('[{"specversion":"1.0","id":"1","type":"t","source":"/s"}]');
   * console.log(events.length); // 1
   * ```
   */
  static batchFromJSON(input: string | unknown, options?: FromJSONOptions): CloudEvent[] {
    const value = parseJSONText(input);
    if (!Array.isArray(value)) {
      throw new ValidationError([{
        path: "",
        message: `a batch must be a JSON array, got ${describeType(value)}`,
      }]);
    }
    const events: CloudEvent[] = [];
    const issues: ValidationIssue[] = [];
    value.forEach((item, index) => {
      try {
        events.push(eventFromWire(item, `[${index}]`, options));
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        issues.push(...error.issues);
      }
    });
    if (issues.length > 0) throw new ValidationError(issues, { context: "CloudEvents batch" });
    return events;
  }

  /**
   * Writes events as JSON text in the JSON batch format.
   *
   * @example
   * ```ts
   * import { CloudEvent } from "@opensecflow/eventbus";
   * const text = CloudEvent.batchToJSON([new CloudEvent({ type: "t", source: "/s" })]);
   * console.log(CloudEvent.batchFromJSON(text).length); // 1
   * ```
   */
  static batchToJSON(events: readonly CloudEvent[]): string {
    if (!Array.isArray(events)) {
      throw new ValidationError([{ path: "", message: "a batch must be an array of CloudEvent" }]);
    }
    const issues: ValidationIssue[] = [];
    events.forEach((event, index) => {
      if (!(event instanceof CloudEvent)) {
        issues.push({
          path: `[${index}]`,
          message: `must be a CloudEvent, got ${describeType(event)}`,
        });
      }
    });
    if (issues.length > 0) throw new ValidationError(issues, { context: "CloudEvents batch" });
    return JSON.stringify(events);
  }
}

function copyExtensions(
  input: unknown,
  issues: ValidationIssue[],
  types?: Record<string, AttributeType>,
): Readonly<Record<string, ExtensionValue>> {
  // A Map or class instance would pass `typeof` and then lose its entries.
  if (!isPlainObject(input)) {
    issues.push({
      path: "extensions",
      message: `must be a plain object, got ${describeType(input)}`,
    });
    return EMPTY;
  }
  const out: Record<string, ExtensionValue> = {};
  for (const name of Object.keys(input)) {
    const value = (input as Record<string, unknown>)[name];
    const problem = checkExtensionName(name) ??
      checkExtensionValue(value, types && Object.hasOwn(types, name) ? types[name] : undefined);
    if (problem) {
      issues.push({ path: excerpt(name).slice(1, -1) || name, message: problem });
      continue;
    }
    // defineProperty keeps names like "constructor" as plain own data.
    Object.defineProperty(out, name, { value, enumerable: true });
  }
  return Object.freeze(out);
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
function eventFromWire(value: unknown, prefix: string, options?: FromJSONOptions): CloudEvent {
  const at = (name: string) => (prefix ? `${prefix}.${name}` : name);
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError([{
      path: prefix,
      message: `an event must be a JSON object, got ${describeType(value)}`,
    }]);
  }
  if (value instanceof CloudEvent) return value;
  const wire = value as Record<string, unknown>;
  const issues: ValidationIssue[] = [];
  if (wire.specversion !== "1.0") {
    issues.push({
      path: at("specversion"),
      message: wire.specversion === undefined
        ? "is required"
        : `must be "1.0", got ${excerpt(wire.specversion)}`,
    });
  }
  for (const name of ["id", "source", "type"]) {
    if (wire[name] === undefined || wire[name] === null) {
      issues.push({ path: at(name), message: "is required" });
    }
  }
  const hasData = wire.data !== undefined && wire.data !== null;
  const hasBinary = wire.data_base64 !== undefined && wire.data_base64 !== null;
  let data: unknown = hasData ? wire.data : undefined;
  if (hasData && hasBinary) {
    issues.push({
      path: at("data_base64"),
      message: "data and data_base64 are mutually exclusive",
    });
  } else if (hasBinary) {
    data = typeof wire.data_base64 === "string" ? decodeBase64(wire.data_base64) : undefined;
    if (data === undefined) {
      issues.push({ path: at("data_base64"), message: "must be base64 text" });
    }
  }
  const extensionInput: Record<string, unknown> = {};
  for (const name of Object.keys(wire)) {
    if (KNOWN_JSON_MEMBERS.has(name) || wire[name] === null) continue;
    Object.defineProperty(extensionInput, name, { value: wire[name], enumerable: true });
  }
  const extensionIssues: ValidationIssue[] = [];
  const extensions = copyExtensions(extensionInput, extensionIssues, options?.extensionTypes);
  for (const issue of extensionIssues) issues.push({ ...issue, path: at(issue.path) });
  const optional = (name: string) => (wire[name] === null ? undefined : wire[name]);
  let event: CloudEvent | undefined;
  try {
    event = new CloudEvent({
      id: wire.id as string,
      source: wire.source as string,
      type: wire.type as string,
      datacontenttype: optional("datacontenttype") as string | undefined,
      dataschema: optional("dataschema") as string | undefined,
      subject: optional("subject") as string | undefined,
      time: (optional("time") ?? null) as string | null,
      data,
      extensions,
    });
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    const seen = new Set(issues.map((issue) => issue.path));
    for (const issue of error.issues) {
      if (!seen.has(at(issue.path))) issues.push({ ...issue, path: at(issue.path) });
    }
  }
  if (issues.length > 0 || event === undefined) {
    throw new ValidationError(issues, { context: "CloudEvent" });
  }
  return event;
}

/**
 * The problems `new CloudEvent(init)` would report, as a list. Subclasses use
 * it when their own checks fail, so one error lists every problem.
 */
export function attributeIssues(init: CloudEventInit<unknown>): ValidationIssue[] {
  try {
    new CloudEvent(init);
    return [];
  } catch (error) {
    if (error instanceof ValidationError) return [...error.issues];
    throw error;
  }
}

/**
 * Where an event is delivered: `PROCESS` keeps it inside this process, `APP`
 * sends it to every instance of the application.
 *
 * @example
 * ```ts
 * import { EventScope } from "@opensecflow/eventbus";
 * console.log(EventScope.PROCESS, EventScope.APP); // "process" "app"
 * ```
 */
export const EventScope: {
  /** Stays inside this process (in-memory broker). */
  readonly PROCESS: "process";
  /** Reaches every instance of the application (distributed broker). */
  readonly APP: "app";
} = Object.freeze({ PROCESS: "process", APP: "app" });

/** `"process"` or `"app"`. */
export type EventScope = typeof EventScope[keyof typeof EventScope];

/** Checks a scope value. */
export function isEventScope(value: unknown): value is EventScope {
  return value === EventScope.PROCESS || value === EventScope.APP;
}

/**
 * What `new ScopedEvent(...)` takes: a CloudEvent plus its scope (default APP).
 */
export interface ScopedEventInit<D = unknown> extends CloudEventInit<D> {
  /** Where the event is delivered; default `EventScope.APP`. */
  scope?: EventScope;
}

/**
 * A CloudEvent with a delivery scope. The scope routes the event on the bus; it
 * is not a CloudEvents attribute and is not serialized.
 *
 * @example
 * ```ts
 * import { EventScope, ScopedEvent } from "@opensecflow/eventbus";
 * const e = new ScopedEvent({ type: "cache.invalidated", source: "/cache", scope: EventScope.PROCESS });
 * console.log(e.scope); // "process"
 * ```
 */
export class ScopedEvent<D = unknown> extends CloudEvent<D> {
  /** Where the event is delivered. */
  declare readonly scope: EventScope;

  /** Builds and validates an event; the scope defaults to APP. */
  constructor(init: ScopedEventInit<D>) {
    const scope = init?.scope ?? EventScope.APP;
    if (!isEventScope(scope)) {
      // Report the scope together with the attributes' problems, not after them.
      // The data is left out: a throwaway event must not freeze the caller's object.
      throw new ValidationError([...attributeIssues({ ...init, data: undefined }), {
        path: "scope",
        message: `must be "process" or "app", got ${excerpt(scope)}`,
      }], { context: "CloudEvent" });
    }
    super(init);
    this.scope = scope;
    if (new.target === ScopedEvent) Object.freeze(this);
  }
}
