/**
 * Bus middleware: code that runs around every publish and around every
 * handler call, for logging, tracing and metrics. The first middleware added
 * is the outermost, as in Koa or Hono.
 *
 * @module
 */

import type { MessageContext } from "./broker.ts";
import { EventBusError } from "./errors.ts";
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

type Hook<C, R, A> = (call: C, next: (replacement?: A) => Promise<R>) => Promise<R>;

/**
 * Runs `hooks` as an onion around `last`, the first hook outermost. A hook
 * may call `next()` once. With `mayShortCircuit` (handler calls) a hook that
 * returns without calling it skips the rest and its result stands; without
 * (publishes, which must never be swallowed silently) that is an error. A
 * hook that passes `next` a replacement gets it folded into the call by
 * `replace`, which also checks it; without `replace` a replacement is refused.
 */
export function runChain<C, R, A = never>(
  hooks: readonly Hook<C, R, A>[],
  call: C,
  last: (call: C) => R | Promise<R>,
  mayShortCircuit = false,
  replace?: (call: C, replacement: A) => C,
): Promise<R> {
  // No async functions here: each step costs one hook call, not a promise per await.
  const step = (index: number, current: C): Promise<R> => {
    if (index === hooks.length) {
      try {
        return Promise.resolve(last(current));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    let called = false;
    const next = (replacement?: A): Promise<R> => {
      if (called) {
        return Promise.reject(
          new EventBusError("MIDDLEWARE", `middleware #${index + 1} called next() twice`),
        );
      }
      called = true;
      if (replacement === undefined) return step(index + 1, current);
      if (replace === undefined) {
        return Promise.reject(
          new EventBusError(
            "MIDDLEWARE",
            `middleware #${index + 1} passed a value to next(); this hook takes none`,
          ),
        );
      }
      try {
        return step(index + 1, replace(current, replacement));
      } catch (error) {
        return Promise.reject(error);
      }
    };
    let result: Promise<R>;
    try {
      result = Promise.resolve(hooks[index](current, next));
    } catch (error) {
      return Promise.reject(error);
    }
    // A handle hook may skip the rest; a publish hook must have called next() by the time it settles.
    if (mayShortCircuit) return result;
    return result.then((value) => {
      if (!called) {
        throw new EventBusError(
          "MIDDLEWARE",
          `middleware #${index + 1} returned without calling next(); throw to stop a call instead`,
        );
      }
      return value;
    });
  };
  return step(0, call);
}
