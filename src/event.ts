/**
 * CloudEvents v1.0 events: {@linkcode CloudEvent} and {@linkcode ScopedEvent},
 * an event that knows whether it stays in the process or reaches every
 * instance of the application. The JSON format lives in `event_json.ts`, the
 * checks in `event_checks.ts`.
 *
 * @module
 */

import { excerpt, ValidationError } from "./errors.ts";
import { copyExtensions, eventInitIssues, isPlainObject } from "./event_checks.ts";
import {
  batchFromJSON,
  batchToJSON,
  type CloudEventJSON,
  eventFromJSON,
  eventToJSON,
  type FromJSONOptions,
} from "./event_json.ts";
import { takeCheckedFlat, thrownText } from "./json_checks.ts";

export type { CloudEventJSON, FromJSONOptions } from "./event_json.ts";
export { DEFAULT_MAX_DATA_DEPTH } from "./json_checks.ts";

/** A value an extension attribute can hold. */
export type ExtensionValue = string | number | boolean;

/**
 * What `new CloudEvent(...)` takes. `id` defaults to a random UUID, `time` to
 * now (pass `null` for an event without time). As in the JSON format, `null`
 * for any optional attribute means the attribute is absent.
 *
 * `data` must be able to travel as JSON, since an event may cross Redis or
 * HTTP: plain objects (prototype `Object.prototype` or `null`), arrays,
 * strings, finite numbers, booleans and `null`, nested at most `maxDepth`
 * levels (default {@linkcode DEFAULT_MAX_DATA_DEPTH}). A `Date` is accepted
 * and travels as its ISO text; an object member whose value is `undefined` is
 * absent, as JSON writes it. A `Uint8Array` as the whole data is binary data
 * (`data_base64`). Anything else (`NaN`, `Infinity`, functions, symbols,
 * bigints, `undefined` in an array, class instances such as `Map`, cycles, a
 * getter or proxy that throws) is refused with a `ValidationError` naming
 * its path.
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
  /** The payload, JSON data or a `Uint8Array` (`data_base64` in JSON). */
  data?: D;
  /** Extension attributes. */
  extensions?: Record<string, ExtensionValue>;
}

/**
 * How an event is checked, beyond the CloudEvents rules: taken by the
 * constructors and, with more, by {@linkcode CloudEvent.fromJSON}.
 *
 * @example
 * ```ts
 * import { CloudEvent, type CloudEventOptions } from "@opensecflow/eventbus";
 * const strict: CloudEventOptions = { maxDepth: 8 };
 * new CloudEvent({ type: "t", source: "/s", data: { a: [1] } }, strict);
 * ```
 */
export interface CloudEventOptions {
  /**
   * Deepest nesting of objects and arrays accepted in `data`: an integer from
   * 0 to 1000, default {@linkcode DEFAULT_MAX_DATA_DEPTH} (512). `{"a": 1}`
   * is depth 1, `[[1]]` depth 2.
   */
  maxDepth?: number;
}

const EMPTY: Readonly<Record<string, ExtensionValue>> = Object.freeze({});

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

/** Freezes checked data; a proxy that refuses to freeze is a problem of the data. */
function freezeData<T>(data: T, known: KnownData): T {
  try {
    // Flat data has no member to freeze: one call freezes it all. A Date,
    // the one other object JSON data holds, is left alone as deepFreeze does.
    const flat = known === "flat-json"
      ? data !== null && typeof data === "object" && !(data instanceof Date)
      : takeCheckedFlat(data);
    return flat ? Object.freeze(data) : deepFreeze(data);
  } catch (error) {
    throw new ValidationError([{
      path: "data",
      message: `cannot be frozen: ${thrownText(error)}`,
    }], { context: "CloudEvent" });
  }
}

/** A CloudEvent under construction, before it is frozen. */
type Writable<E> = { -readonly [K in keyof E]: E[K] };

/**
 * What the caller of {@linkcode initEvent} knows of `init.data` already:
 * nothing (it is checked), that it can travel as JSON (`"json"`), or that it
 * can and has no object or array inside, Dates aside (`"flat-json"`).
 */
export type KnownData = "unknown" | "json" | "flat-json";

/**
 * The constructor's work, shared with classes that are built without calling
 * it (see `defineEvent`): checks `init` (throwing {@linkcode ValidationError}
 * with every problem) and sets the attributes on `event`. Freezing is left to
 * the caller, since a subclass adds fields first.
 */
export function initEvent<D>(
  event: CloudEvent<D>,
  init: CloudEventInit<D>,
  options: CloudEventOptions | undefined,
  known: KnownData = "unknown",
  attributesChecked = false,
): void {
  // A caller that built every attribute from values checked before (a
  // definition's own type and defaults, a fresh id and time) skips the check.
  if (!attributesChecked || known === "unknown") {
    const issues = eventInitIssues(init, options, known === "unknown");
    if (issues.length > 0) throw new ValidationError(issues, { context: "CloudEvent" });
  }
  const target = event as Writable<CloudEvent<D>>;
  target.specversion = "1.0";
  target.id = init.id === undefined ? crypto.randomUUID() : init.id;
  target.source = init.source;
  target.type = init.type;
  if (init.datacontenttype != null) target.datacontenttype = init.datacontenttype;
  if (init.dataschema != null) target.dataschema = init.dataschema;
  if (init.subject != null) target.subject = init.subject;
  const time = init.time;
  if (time === undefined) target.time = nowTimestamp();
  else if (time instanceof Date) target.time = time.toISOString();
  else if (time !== null) target.time = time;
  target.extensions = init.extensions == null ? EMPTY : copyExtensions(init.extensions);
  if (init.data !== undefined) target.data = freezeData(init.data, known);
}

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
 * and should be treated as read-only. `data` must be able to travel as JSON
 * (see {@linkcode CloudEventInit}). A subclass that adds fields must freeze
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
  declare readonly specversion: "1.0";
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

  /**
   * Builds and validates an event; throws {@linkcode ValidationError} listing
   * every problem, and `InvalidArgumentError` for a bad `options.maxDepth`.
   */
  constructor(init: CloudEventInit<D>, options?: CloudEventOptions) {
    initEvent(this, init, options);
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
    return eventToJSON(this);
  }

  /**
   * Parses and validates one event in the JSON format, from text or from an
   * already-parsed object. Unknown top-level members become extensions; `null`
   * for an optional attribute means it is absent. `data` nested deeper than
   * `options.maxDepth` (default {@linkcode DEFAULT_MAX_DATA_DEPTH}) is refused.
   *
   * @example
   * ```ts
   * import { CloudEvent } from "@opensecflow/eventbus";
   * const e = CloudEvent.fromJSON('{"specversion":"1.0","id":"1","type":"t","source":"/s","tenant":"acme"}');
   * console.log(e.extensions.tenant); // "acme"
   * ```
   */
  static fromJSON(input: string | unknown, options?: FromJSONOptions): CloudEvent {
    return eventFromJSON(input, options, CloudEvent);
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
    return batchFromJSON(input, options, CloudEvent);
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
    return batchToJSON(events, CloudEvent);
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
  constructor(init: ScopedEventInit<D>, options?: CloudEventOptions) {
    const scope = init?.scope ?? EventScope.APP;
    if (!isEventScope(scope)) {
      // Report the scope together with the attributes' problems, not after them.
      throw new ValidationError([...eventInitIssues(init, options), {
        path: "scope",
        message: `must be "process" or "app", got ${excerpt(scope)}`,
      }], { context: "CloudEvent" });
    }
    super(init, options);
    this.scope = scope;
    if (new.target === ScopedEvent) Object.freeze(this);
  }
}
