/**
 * Bus middleware: code that runs around every publish and around every
 * handler call, for logging, tracing and metrics. The first middleware added
 * is the outermost, as in Koa or Hono.
 *
 * @module
 */

import type { MessageContext } from "./broker.ts";
import type { CloudEvent, EventScope } from "./event.ts";

/**
 * A publish going through the bus.
 */
export interface PublishCall {
  /** The event being published. */
  readonly event: CloudEvent;
  /** Scope it is routed by. */
  readonly scope: EventScope;
  /** Broker channel it goes to. */
  readonly channel: string;
}

/**
 * A handler call going through the bus.
 */
export interface HandleCall {
  /** The event, already converted to the handler's type. */
  readonly event: CloudEvent;
  /** Scope of the broker that delivered it. */
  readonly scope: EventScope;
  /** Broker channel it arrived on. */
  readonly channel: string;
  /** Name of the subscription running the handler. */
  readonly subscription: string;
  /** The broker's delivery context. */
  readonly context: MessageContext;
}

/**
 * Middleware around publishes and handler calls. Either hook is optional.
 * A `publish` hook must call `next()` once (or throw to stop). A `handle`
 * hook may also return without calling `next()`: the handler is skipped and
 * the message acknowledged, which is what a de-duplication or feature-flag
 * middleware needs; it may throw `AckMessage`, `NackMessage` or
 * `RejectMessage` like a handler. Calling `next()` twice is an error.
 *
 * @example
 * ```ts
 * import { EventBus, type Middleware } from "@opensecflow/eventbus";
 * const timing: Middleware = {
 *   async handle(call, next) {
 *     const started = performance.now();
 *     try {
 *       return await next();
 *     } finally {
 *       console.log(call.subscription, call.event.type, performance.now() - started, "ms");
 *     }
 *   },
 * };
 * const bus = new EventBus().use(timing);
 * ```
 */
export interface Middleware {
  /**
   * Runs around `bus.publish` and `bus.request`. `next(event)` publishes a
   * replacement instead: events are immutable, so that is how a hook adds an
   * attribute (e.g. a trace context extension); later hooks and the broker
   * see the replacement.
   */
  publish?(call: PublishCall, next: (event?: CloudEvent) => Promise<void>): Promise<void>;
  /** Runs around each handler call; resolves with the handler's result. */
  handle?(call: HandleCall, next: () => Promise<unknown>): Promise<unknown>;
}

/**
 * Key of an optional method of a middleware object, for the package's own
 * middleware: it returns true while the middleware would do nothing but call
 * `next()` (e.g. tracing with no OpenTelemetry SDK registered). The bus then
 * does not call its hooks, so an idle middleware costs one question per call.
 * Asked per call, so the middleware may wake up later (an SDK registered
 * after it was added).
 *
 * @example
 * ```ts
 * import { PASSES_THROUGH, type Middleware } from "./middleware.ts";
 * let enabled = false;
 * const logging: Middleware & { [PASSES_THROUGH](): boolean } = {
 *   publish(call, next) {
 *     console.log("publish", call.event.type);
 *     return next();
 *   },
 *   [PASSES_THROUGH]: () => !enabled,
 * };
 * ```
 */
export const PASSES_THROUGH: unique symbol = Symbol("eventbus.middleware.passesThrough");

/** A middleware that may say it passes calls through; see {@linkcode PASSES_THROUGH}. */
export interface MayPassThrough {
  /** True while the middleware would only call `next()`. */
  [PASSES_THROUGH]?(): boolean;
}
