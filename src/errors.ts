/**
 * The typed errors of the event bus. Every error a public entry throws is an
 * {@linkcode EventBusError}, so one `instanceof` check catches them all, and
 * each subclass names what went wrong in a field a program can read.
 *
 * @module
 */

/** One problem found while validating input: where, and what is wrong. */
export interface ValidationIssue {
  /** Attribute path, e.g. `"time"`, `"data.amount"` or `"[2].id"` for a batch. */
  readonly path: string;
  /** Readable message, e.g. `"must be a non-empty string"`. */
  readonly message: string;
}

/**
 * Base class of every error this library throws.
 *
 * @example
 * ```ts
 * import { EventBusError, MemoryBroker } from "@opensecflow/eventbus";
 * const broker = new MemoryBroker();
 * try {
 *   await broker.publish("hi", "greetings"); // not started yet
 * } catch (error) {
 *   console.assert(error instanceof EventBusError);
 * }
 * ```
 */
export class EventBusError extends Error {
  /** Stable machine-readable code, e.g. `"NOT_STARTED"`. */
  readonly code: string;

  /** Creates an error with a code and a message. */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Issues a ValidationError message lists; `issues` keeps them all. */
const MAX_LISTED_ISSUES = 10;

/** Longest excerpt of user input an error message may quote. */
const EXCERPT_LENGTH = 60;

/**
 * Quotes at most a short excerpt of a value, so an error never echoes a large
 * or sensitive input back in full.
 *
 * @example
 * ```ts
 * import { excerpt } from "./errors.ts";
 * console.assert(excerpt("x".repeat(1000)).length < 100);
 * ```
 */
export function excerpt(value: unknown): string {
  let text: string;
  try {
    text = typeof value === "string" ? JSON.stringify(value) : String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > EXCERPT_LENGTH ? `${text.slice(0, EXCERPT_LENGTH)}…` : text;
}

/**
 * Input failed validation: a CloudEvents attribute, an event's `data` against
 * its zod schema, or a batch. `issues` lists every problem with its path.
 *
 * @example
 * ```ts
 * import { CloudEvent, ValidationError } from "@opensecflow/eventbus";
 * try {
 *   CloudEvent.fromJSON({ specversion: "1.0", id: "", type: "t", source: "/s" });
 * } catch (error) {
 *   if (error instanceof ValidationError) console.log(error.issues[0].path); // "id"
 * }
 * ```
 */
export class ValidationError extends EventBusError {
  /** Every problem found, in input order. */
  readonly issues: readonly ValidationIssue[];

  /** Creates the error from its issues; the message lists them. */
  constructor(issues: readonly ValidationIssue[], options?: ErrorOptions & { context?: string }) {
    const head = options?.context ? `${options.context}: ` : "";
    const shown = issues.slice(0, MAX_LISTED_ISSUES)
      .map((issue) => `${issue.path || "(input)"}: ${issue.message}`).join("; ");
    const more = issues.length > MAX_LISTED_ISSUES
      ? `; and ${issues.length - MAX_LISTED_ISSUES} more (see .issues)`
      : "";
    const list = shown + more;
    super("VALIDATION", `${head}invalid input: ${list}`, options);
    this.issues = Object.freeze(issues.map((issue) => Object.freeze({ ...issue })));
  }
}

/**
 * An argument or option of a public entry is wrong (a missing name, a negative
 * timeout, a handler that is not a function...). The message says how to fix it.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError, MemoryBroker } from "@opensecflow/eventbus";
 * try {
 *   new MemoryBroker({ maxQueueSize: -1 });
 * } catch (error) {
 *   console.assert(error instanceof InvalidArgumentError);
 * }
 * ```
 */
export class InvalidArgumentError extends EventBusError {
  /** Name of the offending argument or option. */
  readonly argument: string;

  /** Creates the error for one argument. */
  constructor(argument: string, message: string, options?: ErrorOptions) {
    super("INVALID_ARGUMENT", `${argument}: ${message}`, options);
    this.argument = argument;
  }
}

/**
 * A broker (or the bus) was used while not started: publish before `start()`
 * or after `stop()`.
 *
 * @example
 * ```ts
 * import { MemoryBroker, NotStartedError } from "@opensecflow/eventbus";
 * const broker = new MemoryBroker();
 * await broker.publish("x", "ch").catch((e) => console.assert(e instanceof NotStartedError));
 * ```
 */
export class NotStartedError extends EventBusError {
  /** What was not started, e.g. `"MemoryBroker"` or `"EventBus"`. */
  readonly component: string;
  /** Its state at the time of the call. */
  readonly state: string;

  /** Creates the error for a component in a given state. */
  constructor(component: string, state: string, action: string) {
    super(
      "NOT_STARTED",
      `${component} is not started (state: ${state}): cannot ${action}; call start() first`,
    );
    this.component = component;
    this.state = state;
  }
}

/**
 * A `request()` got no reply within its timeout.
 *
 * @example
 * ```ts
 * import { MemoryBroker, RequestTimeoutError } from "@opensecflow/eventbus";
 * await using broker = new MemoryBroker();
 * broker.subscribe("slow", () => new Promise(() => {}), { name: "never" });
 * await broker.start();
 * await broker.request("ping", "slow", { timeout: 10 })
 *   .catch((e) => console.assert(e instanceof RequestTimeoutError));
 * ```
 */
export class RequestTimeoutError extends EventBusError {
  /** Channel the request went to. */
  readonly channel: string;
  /** Timeout that ran out, in milliseconds. */
  readonly timeout: number;

  /** Creates the error for a channel and timeout. */
  constructor(channel: string, timeout: number) {
    super("REQUEST_TIMEOUT", `no reply on channel "${channel}" within ${timeout} ms`);
    this.channel = channel;
    this.timeout = timeout;
  }
}

/**
 * A `request()` went to a channel that nobody subscribes to, so no reply can
 * ever come.
 *
 * @example
 * ```ts
 * import { MemoryBroker, NoSubscribersError } from "@opensecflow/eventbus";
 * await using broker = new MemoryBroker();
 * await broker.start();
 * await broker.request("ping", "nobody").catch((e) => console.assert(e instanceof NoSubscribersError));
 * ```
 */
export class NoSubscribersError extends EventBusError {
  /** The channel without subscribers. */
  readonly channel: string;

  /** Creates the error for a channel. */
  constructor(channel: string) {
    super("NO_SUBSCRIBERS", `no subscriber on channel "${channel}"`);
    this.channel = channel;
  }
}

/**
 * A subscriber's queue is full and the broker's overflow policy is `"reject"`.
 *
 * @example
 * ```ts
 * import { MemoryBroker, QueueFullError } from "@opensecflow/eventbus";
 * const broker = new MemoryBroker({ maxQueueSize: 1, overflow: "reject" });
 * console.assert(typeof QueueFullError === "function", broker.stats().published === 0);
 * ```
 */
export class QueueFullError extends EventBusError {
  /** Channel whose subscriber is full. */
  readonly channel: string;
  /** Name of the full subscription. */
  readonly subscription: string;

  /** Creates the error for a channel and subscription. */
  constructor(channel: string, subscription: string, size: number) {
    super(
      "QUEUE_FULL",
      `queue of subscription "${subscription}" on channel "${channel}" is full (${size} messages)`,
    );
    this.channel = channel;
    this.subscription = subscription;
  }
}

/**
 * Every handler of a request failed, so no reply will come. The message
 * carries the handler's error name and message on every broker; in-process
 * brokers also keep the original error as `cause`.
 *
 * @example
 * ```ts
 * import { MemoryBroker, RequestFailedError, silentLogger } from "@opensecflow/eventbus";
 * await using broker = new MemoryBroker({ logger: silentLogger });
 * broker.subscribe("prices", function price() {
 *   throw new TypeError("no such sku");
 * });
 * await broker.start();
 * try {
 *   await broker.request("X", "prices");
 * } catch (error) {
 *   console.assert(error instanceof RequestFailedError && error.subscription === "price");
 * }
 * ```
 */
export class RequestFailedError extends EventBusError {
  /** Channel the request went to. */
  readonly channel: string;
  /** Name of the subscription whose handler failed last. */
  readonly subscription: string;
  /** Name of the handler's error, e.g. `"TypeError"`. */
  readonly errorName: string;

  /** Creates the error from the failed handler's error name and message. */
  constructor(
    channel: string,
    subscription: string,
    errorName: string,
    errorMessage: string,
    options?: ErrorOptions,
  ) {
    super(
      "REQUEST_FAILED",
      `request to "${channel}" failed: handler "${subscription}" threw ${errorName}: ${errorMessage}`,
      options,
    );
    this.channel = channel;
    this.subscription = subscription;
    this.errorName = errorName;
  }

  /** The error for a handler failure seen in this process; `cause` is the original error. */
  static from(channel: string, subscription: string, error: unknown): RequestFailedError {
    const { name, message } = describeError(error);
    return new RequestFailedError(channel, subscription, name, message, { cause: error });
  }
}

/**
 * The name and message of anything thrown, bounded in length so a huge
 * message cannot travel on.
 */
export function describeError(error: unknown): { name: string; message: string } {
  const limit = 1_000;
  const cut = (text: string) => text.length > limit ? `${text.slice(0, limit)}…` : text;
  if (error instanceof Error) return { name: error.name || "Error", message: cut(error.message) };
  return { name: typeof error, message: excerpt(error) };
}

/**
 * The transport failed: the broker could not reach its server, the server
 * refused the command, or the message could not be encoded. `cause` holds the
 * underlying error (with credentials removed from its message).
 *
 * @example
 * ```ts
 * import { BrokerError } from "@opensecflow/eventbus";
 * const error = new BrokerError("publish failed: connection refused");
 * console.assert(error.code === "BROKER");
 * ```
 */
export class BrokerError extends EventBusError {
  /** Creates the error; `options.cause` keeps the original. */
  constructor(message: string, options?: ErrorOptions) {
    super("BROKER", message, options);
  }
}

/**
 * The module-level bus was used in the wrong order: `getEventBus()` before
 * `initEventBus()`, or `initEventBus()` a second time without
 * `resetEventBus()` in between.
 *
 * @example
 * ```ts
 * import { EventBusStateError, getEventBus } from "@opensecflow/eventbus";
 * try {
 *   getEventBus();
 * } catch (error) {
 *   console.assert(error instanceof EventBusStateError);
 * }
 * ```
 */
export class EventBusStateError extends EventBusError {
  /** Creates the error; `code` is `"NOT_INITIALIZED"` or `"ALREADY_INITIALIZED"`. */
  constructor(code: "NOT_INITIALIZED" | "ALREADY_INITIALIZED", message: string) {
    super(code, message);
  }
}
