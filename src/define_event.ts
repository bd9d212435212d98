/**
 * Typed events: {@linkcode defineEvent} turns a type name and a zod schema
 * into an event class whose `data` is checked at construction.
 *
 * @module
 */

import type { z } from "zod";
import {
  checkAbsoluteUri,
  checkMediaType,
  checkNonEmptyString,
  checkUriReference,
} from "./attributes.ts";
import { excerpt, InvalidArgumentError, ValidationError, type ValidationIssue } from "./errors.ts";
import {
  CloudEvent,
  type CloudEventInit,
  type CloudEventOptions,
  EventScope,
  type ExtensionValue,
  type FromJSONOptions,
  initEvent,
  isEventScope,
  type KnownData,
  ScopedEvent,
} from "./event.ts";
import { dataIssues, eventInitIssues, NO_ISSUES, readOptions } from "./event_checks.ts";
import { DEFAULT_MAX_DATA_DEPTH, formatDataPath, shorten, thrownText } from "./json_checks.ts";
import { isBoundedSchema, isZodSchema, jsonOutputDepth } from "./zod_schema.ts";

/**
 * What a typed event class takes: the CloudEvents attributes other than `type`
 * (fixed by the definition), and `data` in the schema's input shape.
 */
export interface TypedEventInit<I> {
  /** Payload, checked (and coerced) by the definition's schema. */
  data: I;
  /** Event source; defaults to the definition's `source`. */
  source?: string;
  /** Event id; default `crypto.randomUUID()`. */
  id?: string;
  /** Subject within the source. */
  subject?: string;
  /** RFC 3339 timestamp or Date; default now; `null` for none. */
  time?: string | Date | null;
  /** Media type; defaults to the definition's `datacontenttype`. */
  datacontenttype?: string;
  /** Schema URI; defaults to the definition's `dataschema`. */
  dataschema?: string;
  /** Extension attributes. */
  extensions?: Record<string, ExtensionValue>;
}

/** An instance of a typed event class: a `ScopedEvent` with a fixed type and typed data. */
export type TypedEvent<T extends string, D> = ScopedEvent<D> & {
  readonly type: T;
  readonly data: D;
};

/**
 * A typed event class made by {@linkcode defineEvent}.
 *
 * @example
 * ```ts
 * import { defineEvent, type EventDefinition } from "@opensecflow/eventbus";
 * import { z } from "zod";
 * const Ping = defineEvent({ type: "ping", data: z.object({ n: z.number() }), source: "/p" });
 * const def: EventDefinition = Ping;
 * console.log(def.type); // "ping"
 * ```
 */
export interface EventDefinition<
  T extends string = string,
  // The zod schema's shape is spelled out (rather than z.ZodType) so the
  // public API names no type this module does not export.
  // deno-lint-ignore no-explicit-any
  S extends { readonly _zod: { input: unknown; output: unknown } } = any,
> {
  /**
   * Builds an event, checking `data` against the schema; `options.maxDepth`
   * bounds the nesting of `data`, checked before the schema sees it.
   */
  new (
    init: TypedEventInit<S["_zod"]["input"]>,
    options?: CloudEventOptions,
  ): TypedEvent<T, S["_zod"]["output"]>;
  /** Instances, for `instanceof`. */
  readonly prototype: TypedEvent<T, S["_zod"]["output"]>;
  /** The CloudEvents type every instance has. */
  readonly type: T;
  /** Where instances are delivered. */
  readonly scope: EventScope;
  /** The zod schema of `data`. */
  readonly schema: S;
  /** Default source, if the definition has one. */
  readonly source: string | undefined;
  /**
   * Builds a typed event from a wire object, JSON text or a plain CloudEvent;
   * the schema's coercions apply. Throws {@linkcode ValidationError} on any
   * problem, including a `type` other than this definition's, and data
   * nested deeper than `options.maxDepth` (checked before the schema runs).
   */
  parse(input: unknown, options?: FromJSONOptions): TypedEvent<T, S["_zod"]["output"]>;
}

/** The event type an {@linkcode EventDefinition} builds, like pydantic's model instance type. */
// deno-lint-ignore no-explicit-any
export type EventOf<E extends EventDefinition<string, any>> = InstanceType<E>;

/**
 * Options of {@linkcode defineEvent}.
 */
export interface DefineEventOptions<
  T extends string,
  S extends { readonly _zod: { input: unknown; output: unknown } },
> {
  /** The CloudEvents type, e.g. `"order.created"`. */
  type: T;
  /** zod schema of `data`. */
  data: S;
  /** Delivery scope; default `EventScope.APP`, as in the Python library. */
  scope?: EventScope;
  /** Default source for instances. */
  source?: string;
  /** Default `datacontenttype` for instances. */
  datacontenttype?: string;
  /** Default `dataschema` for instances. */
  dataschema?: string;
}

/** Longest zod message kept: some (unrecognized keys) quote the input. */
const MAX_ZOD_MESSAGE_LENGTH = 200;

/** Maps zod issues onto validation issues under `data`, quoting input only in excerpts. */
export function zodIssues(error: z.ZodError, root = "data"): ValidationIssue[] {
  return error.issues.map((issue) => ({
    path: formatDataPath(root, issue.path),
    message: shorten(issue.message, MAX_ZOD_MESSAGE_LENGTH),
  }));
}

/**
 * Defines a typed event: a class extending {@linkcode ScopedEvent} whose
 * `data` must match a zod schema. The Python library's pydantic event classes
 * become these.
 *
 * An event that crosses a serializing broker (Redis, HTTP) is parsed again
 * from its JSON on the other side, so the schema must accept its own JSON
 * output: use `z.coerce.date()` rather than `z.date()`, and avoid
 * `.transform()` whose output the input schema refuses.
 *
 * @example
 * ```ts
 * import { defineEvent, EventScope } from "@opensecflow/eventbus";
 * import { z } from "zod";
 *
 * const OrderCreated = defineEvent({
 *   type: "order.created",
 *   scope: EventScope.PROCESS,
 *   source: "/orders",
 *   data: z.object({ orderId: z.string(), amount: z.number().positive() }),
 * });
 * const e = new OrderCreated({ data: { orderId: "A1", amount: 12.5 } });
 * console.log(e.data.amount, e instanceof OrderCreated); // 12.5 true
 * const back = OrderCreated.parse(JSON.stringify(e));
 * console.log(back.data.orderId); // "A1"
 * ```
 */
export function defineEvent<
  T extends string,
  S extends { readonly _zod: { input: unknown; output: unknown } },
>(
  options: DefineEventOptions<T, S>,
): EventDefinition<T, S> {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "defineEvent needs { type, data }");
  }
  const { type, scope = EventScope.APP, source, datacontenttype, dataschema } = options;
  const schema: unknown = options.data;
  const typeProblem = checkNonEmptyString(type);
  if (typeProblem) throw new InvalidArgumentError("type", `the event type ${typeProblem}`);
  if (!isZodSchema(schema)) {
    throw new InvalidArgumentError(
      "data",
      "must be a zod 4 schema such as z.object({...}); zod 3 schemas are not supported, " +
        `got ${excerpt(schema)}`,
    );
  }
  if (!isEventScope(scope)) {
    throw new InvalidArgumentError(
      "scope",
      `must be EventScope.PROCESS or EventScope.APP, got ${excerpt(scope)}`,
    );
  }
  const defaults: [string, string | undefined, (v: unknown) => string | undefined][] = [
    ["source", source, checkUriReference],
    ["datacontenttype", datacontenttype, checkMediaType],
    ["dataschema", dataschema, checkAbsoluteUri],
  ];
  for (const [name, value, check] of defaults) {
    const problem = value === undefined ? undefined : check(value);
    if (problem) throw new InvalidArgumentError(name, problem);
  }

  const zodSchema: z.ZodType = schema;
  const context = `event "${type}"`;

  // Data deeper than a bounded schema is never walked by zod, so the check
  // that bounds its depth can wait for zod's output. That output needs no
  // check either when the schema builds JSON data only, no deeper than allowed.
  const checkInputFirst = !isBoundedSchema(schema);
  const outputDepth = jsonOutputDepth(schema);
  const outputKnown = (maxDepth: number): KnownData =>
    outputDepth === undefined || outputDepth > maxDepth
      ? "unknown"
      : outputDepth <= 1
      ? "flat-json"
      : "json";
  const knownByDefault = outputKnown(DEFAULT_MAX_DATA_DEPTH);

  /**
   * The attributes of an instance, with `data` checked against the schema
   * and then for whether the schema's output can travel as JSON. A schema
   * that could recurse into the data or run the application's code on it
   * gets the data only once that check has passed on the input, so deep or
   * cyclic input never reaches it. One error lists every problem.
   */
  function typedAttributes(
    init: TypedEventInit<unknown>,
    options: CloudEventOptions | undefined,
  ): CloudEventInit<unknown> {
    if (init === null || typeof init !== "object") {
      throw new ValidationError([{ path: "", message: `${type}: expected { data, source? }` }]);
    }
    const maxDepth = readOptions(options);
    let issues = checkInputFirst ? dataIssues(init.data, maxDepth) : NO_ISSUES;
    let data: unknown;
    if (issues.length === 0) {
      const parsed = parseData(init.data, maxDepth);
      if (parsed.success) data = parsed.data;
      else issues = parsed.issues;
    }
    const eventSource = init.source ?? source;
    const attributes: CloudEventInit<unknown> = {
      id: init.id,
      source: eventSource ?? "/",
      type,
      subject: init.subject,
      time: init.time,
      datacontenttype: init.datacontenttype ?? datacontenttype,
      dataschema: init.dataschema ?? dataschema,
      extensions: init.extensions,
      data,
    };
    if (issues.length === 0 && eventSource !== undefined) return attributes;
    const all = [...issues];
    if (eventSource === undefined) {
      all.push({
        path: "source",
        message: `is required: pass source, or give "${type}" a default source in defineEvent`,
      });
    }
    const seen = new Set(all.map((issue) => issue.path));
    attributes.data = undefined;
    for (const issue of eventInitIssues(attributes, options)) {
      if (!seen.has(issue.path)) all.push(issue);
    }
    throw new ValidationError(all, { context });
  }

  /**
   * Runs the schema. One that throws (an async refinement, a transform, a
   * getter of the data) is a problem too, named where the data says why.
   */
  function parseData(
    input: unknown,
    maxDepth: number,
  ): { success: true; data: unknown } | { success: false; issues: readonly ValidationIssue[] } {
    try {
      const parsed = zodSchema.safeParse(input);
      return parsed.success ? parsed : { success: false, issues: zodIssues(parsed.error) };
    } catch (error) {
      const issues = dataIssues(input, maxDepth);
      return {
        success: false,
        issues: issues.length > 0
          ? issues
          : [{ path: "data", message: `the schema failed: ${thrownText(error)}` }],
      };
    }
  }

  // Typed does not `extends ScopedEvent`: its prototype chain is joined to
  // ScopedEvent's below and its constructor does ScopedEvent's work itself.
  // V8 never optimizes the constructor of a derived class whose `name` was
  // redefined (every compilation aborts on a map dependency), and the name
  // must be the event's, so a derived class would build events at half speed.
  class Typed {
    static readonly type: T = type;
    static readonly scope: EventScope = scope;
    static readonly schema: S = options.data;
    static readonly source: string | undefined = source;
    /** Where the event is delivered. */
    declare readonly scope: EventScope;

    constructor(init: TypedEventInit<unknown>, eventOptions?: CloudEventOptions) {
      const event = this as unknown as ScopedEvent<unknown>;
      const attributes = typedAttributes(init, eventOptions);
      const known = eventOptions?.maxDepth === undefined
        ? knownByDefault
        : outputKnown(readOptions(eventOptions));
      // Only data given: every other attribute is the definition's, checked when it was defined.
      const onlyData = eventOptions === undefined && init.id === undefined &&
        init.subject === undefined && init.time === undefined && init.extensions === undefined &&
        init.datacontenttype === undefined && init.dataschema === undefined &&
        (init.source === undefined || init.source === source);
      initEvent(event, attributes, eventOptions, known, onlyData);
      (event as { scope: EventScope }).scope = scope;
      if (new.target === Typed) Object.freeze(this);
    }

    static parse(input: unknown, parseOptions?: FromJSONOptions): Typed {
      if (input instanceof Typed) return input;
      const event = CloudEvent.fromJSON(input, parseOptions);
      if (event.type !== type) {
        throw new ValidationError([{
          path: "type",
          message: `expected "${type}", got ${excerpt(event.type)}`,
        }], { context });
      }
      return new Typed({
        id: event.id,
        source: event.source,
        subject: event.subject,
        time: event.time ?? null,
        datacontenttype: event.datacontenttype,
        dataschema: event.dataschema,
        extensions: event.extensions,
        data: event.data,
      }, parseOptions);
    }
  }
  Object.setPrototypeOf(Typed.prototype, ScopedEvent.prototype);
  Object.setPrototypeOf(Typed, ScopedEvent);
  Object.defineProperty(Typed, "name", { value: typeNameToClassName(type) });
  return Typed as unknown as EventDefinition<T, S>;
}

/** `"order.created"` -> `"OrderCreated"`, for readable stack traces and logs. */
function typeNameToClassName(type: string): string {
  const name = type.split(/[^A-Za-z0-9]+/).filter(Boolean)
    .map((part) => part[0].toUpperCase() + part.slice(1)).join("");
  return /^[A-Za-z]/.test(name) ? name : `Event${name}`;
}
